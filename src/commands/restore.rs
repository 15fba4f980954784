//! `restore`: files back from the bucket to where Piwigo expects them.

use std::process::ExitCode;

use crate::cli::RestoreArgs;
use crate::config::Config;
use crate::exit::usage;
use crate::piwigo;
use crate::restore;

pub(super) async fn run(config: &Config, args: RestoreArgs) -> anyhow::Result<ExitCode> {
    let RestoreArgs {
        ids,
        album,
        all,
        missing,
        to,
        overwrite,
        dry_run,
        from_bucket,
        include_deleted,
        json,
        gallery,
    } = args;
    if gallery.wanted() {
        return restore::gallery::run(config, gallery, dry_run).await;
    }
    if ids.is_none() && album.is_none() && !all && !missing {
        return Err(usage(
            "say what to restore: --ids, --album, --all or --missing".into(),
        ));
    }
    // Without --gallery, --at picks the versions of photos current then.
    let at = match &gallery.at {
        Some(text) => Some(
            restore::gallery::parse_time(text)
                .ok_or_else(|| {
                    usage(format!(
                        "--at `{text}` is not a time; write YYYY-MM-DD or \"YYYY-MM-DD HH:MM:SS\" (UTC)"
                    ))
                })?
                .naive_utc(),
        ),
        None => None,
    };
    if at.is_some() && from_bucket {
        return Err(usage(
            "--at needs the version history in the database; leave out --from-bucket".into(),
        ));
    }
    let mut opts = restore::Options {
        at,
        to,
        mode: restore::Mode {
            overwrite,
            dry_run,
            missing_only: missing,
        },
        jobs: config.upload.initial_workers(),
        include_deleted,
        ..restore::Options::default()
    };
    opts.filter.album = album;
    if let Some(ids) = ids {
        opts.filter.ids = piwigo::parse_id_list(&ids).map_err(usage)?;
    }
    let summary = if from_bucket {
        if album.is_some() {
            return Err(usage(
                "--album needs the database; with --from-bucket use --ids, --all or --missing"
                    .into(),
            ));
        }
        // Piwigo's rows, where they are left, tell deleted photos
        // and md5 duplicates; the restore goes on without them.
        let gallery = match crate::db::connect(config.database_url(), 2).await {
            Ok(pool) => Some(pool),
            Err(e) => {
                eprintln!(
                    "restore: Piwigo's database is not reachable ({e}): photos deleted from Piwigo cannot be left out, nor md5 duplicates found"
                );
                None
            }
        };
        let t = crate::db::Tables::new(&config.piwigo.table_prefix);
        restore::from_bucket::run(config, &opts, gallery.as_ref().map(|p| (p, &t))).await?
    } else {
        let (pool, t) = super::open_database(config).await?;
        if let Some(id) = album
            && !piwigo::album_exists(&pool, &t, id).await?
        {
            return Err(super::no_album(id));
        }
        let summary = restore::from_records(config, &pool, &t, &opts).await?;
        if summary.selected == 0 {
            let why = restore::why_nothing_selected(&pool, &t, &opts.filter).await?;
            return Err(usage(why));
        }
        summary
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", summary.to_text());
    }
    Ok(super::exit_code(summary.ok()))
}
