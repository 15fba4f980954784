//! `enqueue`: photos queued by selection (the batch method).

use std::process::ExitCode;

use crate::cli::EnqueueArgs;
use crate::config::Config;
use crate::exit::usage;
use crate::piwigo;
use crate::queue;
use crate::queue::selection::Selection;

pub(super) async fn run(config: &Config, args: EnqueueArgs) -> anyhow::Result<ExitCode> {
    let EnqueueArgs {
        ids,
        album,
        tag,
        caddie,
        since,
        all,
    } = args;
    let (pool, t) = super::open_database(config).await?;
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
        return Err(super::no_album(id));
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
}
