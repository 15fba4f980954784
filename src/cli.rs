//! The command line: `run`, `enqueue`, `status`, `retry`, `check`, `verify`,
//! `restore`, `import-s3upload`, `init`, `health`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::Config;
use crate::daemon::{self, RunOptions};
use crate::piwigo::{self, Selection};
use crate::queue::{self, Queue};
use crate::shutdown::Shutdown;
use crate::{restore, verify};

#[derive(Debug, Parser)]
#[command(
    name = "piwigo-s3upload",
    version,
    about = "Copies every full-size photo of a Piwigo gallery to S3"
)]
pub struct Cli {
    /// The configuration file.
    #[arg(
        long,
        global = true,
        default_value = "/etc/piwigo-s3upload.toml",
        env = "PIWIGO_S3UPLOAD_CONFIG"
    )]
    pub config: PathBuf,
    /// Log format: human-readable lines or one JSON object per line.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: monitor Piwigo and upload until SIGINT/SIGTERM.
    Run {
        /// Poll once, upload everything due, then exit (for cron or tests).
        #[arg(long)]
        until_idle: bool,
    },
    /// Queue photos by selection (the batch method). Selectors combine:
    /// `--album 3 --since 2024-01-01` queues that album's photos since then.
    Enqueue {
        /// Photo ids and ranges: 1,2,5-9.
        #[arg(long)]
        ids: Option<String>,
        /// An album id; its sub-albums are included.
        #[arg(long)]
        album: Option<u32>,
        /// A tag, by name or URL name.
        #[arg(long)]
        tag: Option<String>,
        /// Photos in the Batch Manager selection (Piwigo's caddie).
        #[arg(long)]
        caddie: bool,
        /// Photos added on or after this date (YYYY-MM-DD or YYYY-MM-DD HH:MM:SS).
        #[arg(long)]
        since: Option<String>,
        /// Every photo in the gallery.
        #[arg(long)]
        all: bool,
    },
    /// The 10 most recent pending or failed uploads, the 10 most recent
    /// successes, and counts per status.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Put failed photos back to pending now.
    Retry {
        /// Only these photo ids and ranges: 1,2,5-9.
        #[arg(long)]
        ids: Option<String>,
    },
    /// Check the config, the database, Piwigo's tables, the daemon's own
    /// tables, the gallery root and the bucket, and say what to fix.
    Check,
    /// Re-create the daemon's tables or columns that were dropped by hand
    /// (or lost with an older dump); rows already there, upload records
    /// above all, are kept.
    Repair,
    /// Write a starter config (the file named by --config): asks for what
    /// the flags do not give, checks it live as `check` does, writes it
    /// with mode 0600 and prints the next two commands.
    Init(crate::init::InitArgs),
    /// Ask the running daemon's HTTP listener ([http] listen) whether it
    /// is alive; exits 0 when it is (for a container HEALTHCHECK).
    Health {
        /// Ask whether it is ready instead: database and bucket reachable.
        #[arg(long)]
        ready: bool,
    },
    /// Take over from the old S3Upload plugin (table <prefix>s3upload): its
    /// uploads become upload records, its pending and failed photos are
    /// queued, and monitoring starts where it stopped. Safe to run again.
    ImportS3upload,
    /// Is every photo backed up and intact? Lists photos neither uploaded
    /// nor queued (by album) and objects missing or damaged in the bucket.
    /// Exit code 0 when all is well, 1 when something is missing or wrong.
    Verify {
        /// Also hash every recorded file and compare it with the upload.
        #[arg(long)]
        disk: bool,
        /// Also list objects under the prefix that no record explains.
        #[arg(long)]
        orphans: bool,
        /// Queue the photos that are neither uploaded nor queued.
        #[arg(long)]
        enqueue: bool,
        #[arg(long)]
        json: bool,
    },
    /// Bring files back from the bucket to where Piwigo expects them. Each
    /// file is downloaded under a temporary name, checked against its md5,
    /// then renamed into place; another file already there is kept.
    Restore {
        /// Photo ids and ranges: 1,2,5-9.
        #[arg(long)]
        ids: Option<String>,
        /// An album id; its sub-albums are included.
        #[arg(long)]
        album: Option<u32>,
        /// Every backed-up photo.
        #[arg(long)]
        all: bool,
        /// Only files missing on disk (combines with the others; alone it
        /// means all of them).
        #[arg(long)]
        missing: bool,
        /// Restore into this directory instead of piwigo.root.
        #[arg(long, value_name = "DIR")]
        to: Option<PathBuf>,
        /// Replace a file that holds other bytes.
        #[arg(long)]
        overwrite: bool,
        /// Say what would be restored, write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Without the database: every object under the prefix goes back
        /// to the path its metadata names.
        #[arg(long)]
        from_bucket: bool,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        gallery: restore::gallery::GalleryArgs,
    },
    /// Take a snapshot of Piwigo's database (every table with its prefix)
    /// and local/ settings now, into the bucket; or list them.
    Snapshot {
        /// List the snapshots in the bucket: time, size, tables, rows,
        /// Piwigo version.
        #[arg(long)]
        list: bool,
    },
}

/// Exit codes: 0 done, 1 failed at run time, 2 bad configuration or usage.
pub const EXIT_FAILURE: u8 = 1;
pub const EXIT_CONFIG: u8 = 2;

pub async fn execute(cli: Cli, config: Config) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run { until_idle } => {
            let shutdown = Shutdown::from_signals()?;
            let opts = RunOptions {
                until_idle,
                config_path: Some(cli.config.clone()),
            };
            daemon::run(config, shutdown, opts).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Enqueue {
            ids,
            album,
            tag,
            caddie,
            since,
            all,
        } => {
            let (pool, t) = daemon::open_database(&config, 2).await?;
            let mut sel = Selection {
                album,
                caddie,
                all,
                ..Selection::default()
            };
            if let Some(ids) = ids {
                sel.ids = piwigo::parse_id_list(&ids).map_err(usage)?;
            }
            if let Some(since) = since {
                sel.since = Some(parse_since(&since).map_err(usage)?);
            }
            if let Some(id) = album
                && !piwigo::album_exists(&pool, &t, id).await?
            {
                return Err(usage(format!(
                    "no Piwigo album has id {id}; the id is in the album's admin page address (cat_id=...)"
                )));
            }
            if let Some(name) = tag {
                match piwigo::tag_id(&pool, &t, &name).await? {
                    Some(id) => sel.tag = Some(id),
                    None => return Err(usage(format!("no Piwigo tag is named `{name}`"))),
                }
            }
            if sel.is_empty() {
                return Err(usage(
                    "say what to queue: --ids, --album, --tag, --caddie, --since or --all".into(),
                ));
            }
            let mut progress = crate::progress::Progress::new(
                "enqueue {bar:40} {pos}/{len} photo ids scanned ({eta} left)",
                "enqueue: photo ids scanned",
                u64::from(queue::enqueue::CHUNK_IDS),
            );
            let report = queue::enqueue::selection(
                &pool,
                &t,
                &sel,
                config.upload.prevent_duplicates_by_md5,
                &mut |scanned, total| progress.update(scanned, total),
            )
            .await?;
            progress.finish();
            println!(
                "queued {} of {} selected photos; skipped {} already uploaded, {} already queued, {} md5 duplicates",
                report.queued,
                report.selected,
                report.already_uploaded,
                report.already_queued,
                report.duplicates
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { json } => {
            let (pool, t) = daemon::open_database(&config, 2).await?;
            let report = queue::report::report(&pool, &t, 10).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.to_text());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Retry { ids } => {
            let (pool, t) = daemon::open_database(&config, 2).await?;
            let ranges = ids
                .map(|s| piwigo::parse_id_list(&s).map_err(usage))
                .transpose()?;
            let strategy = Queue::detect_strategy(&pool).await?;
            let n = Queue::new(pool, t, strategy)
                .retry_now(ranges.as_deref())
                .await?;
            println!(
                "{n} photos put back to pending; a running daemon picks them up at its next claim"
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Repair => repair(&config).await,
        Command::Init(args) => {
            crate::init::run(&cli.config, args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Health { ready } => {
            let Some(listen) = config.http.listen else {
                return Err(usage(
                    "health asks the daemon's HTTP listener: set [http] listen in the config, e.g. \"127.0.0.1:9187\"".into(),
                ));
            };
            let path = if ready { "/readyz" } else { "/healthz" };
            let (code, body) =
                crate::health::probe(listen, path, std::time::Duration::from_secs(5)).await?;
            println!("{body}");
            Ok(if code == 200 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_FAILURE)
            })
        }
        Command::ImportS3upload => {
            let (pool, t) = daemon::open_database(&config, 2).await?;
            let strategy = Queue::detect_strategy(&pool).await?;
            let queue = Queue::new(pool.clone(), t.clone(), strategy);
            let root =
                piwigo::GalleryRoot::new(&config.piwigo.root, &config.piwigo.extra_roots).ok();
            let report = crate::companion::import::run(
                &pool,
                &t,
                &queue,
                root.as_ref(),
                &config.s3.bucket,
                config.s3.public_url.as_deref(),
                config.upload.prevent_duplicates_by_md5,
            )
            .await?;
            print!("{}", report.to_text(&t.old_plugin));
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify {
            disk,
            orphans,
            enqueue,
            json,
        } => {
            let (pool, t) = daemon::open_database(&config, 2).await?;
            let opts = verify::Options {
                disk,
                orphans,
                enqueue,
            };
            let report = verify::run(&config, &pool, &t, opts).await?;
            verify::LastRun::of(&report).store(&pool, &t).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", verify::to_text(&report));
            }
            Ok(if report.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_FAILURE)
            })
        }
        Command::Restore {
            ids,
            album,
            all,
            missing,
            to,
            overwrite,
            dry_run,
            from_bucket,
            json,
            gallery,
        } => {
            if gallery.wanted() {
                return restore::gallery::run(&config, gallery, dry_run).await;
            }
            if ids.is_none() && album.is_none() && !all && !missing {
                return Err(usage(
                    "say what to restore: --ids, --album, --all or --missing".into(),
                ));
            }
            let mut opts = restore::Options {
                to,
                mode: restore::Mode {
                    overwrite,
                    dry_run,
                    missing_only: missing,
                },
                jobs: config.upload.workers,
                ..restore::Options::default()
            };
            opts.filter.album = album;
            if let Some(ids) = ids {
                opts.filter.ids = piwigo::parse_id_list(&ids).map_err(usage)?;
            }
            let summary = if from_bucket {
                if album.is_some() {
                    return Err(usage(
                        "--album needs the database; with --from-bucket use --ids, --all or --missing".into(),
                    ));
                }
                restore::from_bucket::run(&config, &opts).await?
            } else {
                let (pool, t) = daemon::open_database(&config, 2).await?;
                restore::from_records(&config, &pool, &t, &opts).await?
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                print!("{}", summary.to_text());
            }
            Ok(if summary.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_FAILURE)
            })
        }
        Command::Snapshot { list } => crate::snapshot::command::run(&config, list).await,
        Command::Check => {
            let findings = crate::check::run(&config).await;
            print!("{}", crate::check::render(&findings));
            if findings.iter().all(|f| f.ok) {
                println!("all checks passed");
                Ok(ExitCode::SUCCESS)
            } else {
                Ok(ExitCode::from(EXIT_FAILURE))
            }
        }
    }
}

async fn repair(config: &Config) -> anyhow::Result<ExitCode> {
    let pool = crate::db::connect(config.database_url(), 2).await?;
    let t = crate::db::Tables::new(&config.piwigo.table_prefix);
    let repaired = queue::migrate::repair(&pool, &t).await?;
    pool.close().await;
    if repaired.found.is_empty() {
        println!("the daemon's tables are complete; nothing to repair");
    }
    for damage in &repaired.found {
        println!("repaired: {damage}");
    }
    let lost = |name: &str| {
        repaired.found.iter().any(|d| {
            matches!(d, queue::schema::Damage::MissingTable(table)
                if *table == format!("{}{name}", t.prefix))
        })
    };
    if lost("s3upload_queue") {
        println!(
            "photos queued before the table was lost are no longer queued: queue them again with `enqueue` (photos already uploaded are skipped)"
        );
    }
    if lost("s3upload_uploaded") {
        println!(
            "upload records were lost with the table: `enqueue` queues those photos again, and each one already in the bucket is recorded as already_present without a second upload"
        );
    }
    if repaired.left.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        anyhow::bail!(
            "database: still damaged after repair: {}; compare the tables with the files in migrations/",
            repaired
                .left
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        )
    }
}

/// A usage mistake: exits with the config/usage code.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

fn usage(message: String) -> anyhow::Error {
    UsageError(message).into()
}

fn parse_since(text: &str) -> Result<chrono::NaiveDateTime, String> {
    let text = text.trim();
    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
        .or_else(|_| {
            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map(|d| d.and_time(chrono::NaiveTime::MIN))
        })
        .map_err(|_| {
            format!("--since `{text}` is not a date; write YYYY-MM-DD or \"YYYY-MM-DD HH:MM:SS\"")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_accepts_dates_and_times() {
        assert_eq!(
            parse_since("2024-03-01").unwrap().to_string(),
            "2024-03-01 00:00:00"
        );
        assert_eq!(
            parse_since("2024-03-01 12:30:00").unwrap().to_string(),
            "2024-03-01 12:30:00"
        );
        assert!(parse_since("yesterday").is_err());
    }

    #[test]
    fn cli_parses() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
