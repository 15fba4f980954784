//! `retention`: what became of photos deleted in Piwigo, and whether the
//! guard holds their deletions; `--release` is the admin's confirmation.

use std::process::ExitCode;

use crate::config::{Config, Retain};
use crate::piwigo;
use crate::queue::{deleted, removal};

/// Marks listed.
const SHOWN: u32 = 10;

pub(super) async fn run(config: &Config, release: bool) -> anyhow::Result<ExitCode> {
    let (pool, t) = super::open_database(config).await?;
    let policy = config.retention.deleted;
    let counts = removal::counts(&pool, &t).await?;
    if release {
        let now = piwigo::gallery_signal(&pool, &t).await?;
        match deleted::release(&pool, &t, now.as_ref()).await? {
            Some(reason) => {
                println!("released the hold ({reason})");
                match policy {
                    Retain::Keep => println!(
                        "{} deleted photos keep their objects: retention.deleted is \"keep\"",
                        counts.retained
                    ),
                    Retain::For(d) => println!(
                        "{} deleted photos' objects are removed by the daemon once deleted for {} ({} are already)",
                        counts.retained,
                        humantime::format_duration(d),
                        removal::due_count(&pool, &t, d).await?
                    ),
                }
            }
            None => println!("nothing is held; deletions follow retention.deleted ({policy})"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    match deleted::hold(&pool, &t).await? {
        Some((reason, since)) => println!(
            "HELD since {since}: {reason}\n  no object leaves the bucket until `piwigo-s3upload retention --release`"
        ),
        None => println!("not held"),
    }
    println!("retention.deleted: {policy}");
    println!("deleted photos keeping their objects: {}", counts.retained);
    if let Retain::For(d) = policy {
        println!(
            "  past the retention, to be removed: {}",
            removal::due_count(&pool, &t, d).await?
        );
    }
    if counts.failing > 0 {
        println!("  last removal failed (tried again): {}", counts.failing);
    }
    println!("objects removed by the policy: {}", counts.objects_removed);
    let marks = deleted::recent_marks(&pool, &t, SHOWN).await?;
    if !marks.is_empty() {
        println!("\nmost recently deleted:");
        for m in marks {
            println!(
                "  #{} deleted {} path {} albums {}{}",
                m.image_id,
                m.deleted_at,
                m.path.as_deref().unwrap_or("(not seen)"),
                m.albums
                    .as_deref()
                    .filter(|a| !a.is_empty())
                    .unwrap_or("none"),
                m.last_error
                    .map(|e| format!(" — removal failed {} times: {e}", m.attempts))
                    .unwrap_or_default()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
