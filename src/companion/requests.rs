//! Requests filed by the companion plugin: a Batch Manager selection to
//! queue, or "retry failed now". The daemon carries them out with the same
//! code as `enqueue` and `retry`, so the queue's rules live in one place,
//! and writes the counts back for the admin to see.
//!
//! The plugin writes a request as `draft`, then its photo ids, then marks
//! it `new`; a daemon takes it (`working`), and ends it `done` or `failed`.
//! A request whose daemon died is taken again after a while
//! (`queue::requests`, which holds the table's SQL): queueing is
//! idempotent, so doing it twice queues nothing twice.

use sqlx::MySqlPool;

use crate::db::{DbError, Tables};
use crate::queue::enqueue::{self, EnqueueReport};
use crate::queue::selection::Selection;
use crate::queue::{Queue, requests};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Enqueue,
    Retry,
}

impl Kind {
    fn parse(text: &str) -> Option<Kind> {
        match text {
            "enqueue" => Some(Kind::Enqueue),
            "retry" => Some(Kind::Retry),
            _ => None,
        }
    }
}

/// Carries out every request waiting; returns how many photos were put in
/// the queue or back to pending (to wake the workers).
pub async fn drain(
    pool: &MySqlPool,
    t: &Tables,
    queue: &Queue,
    dedupe: bool,
) -> Result<u64, DbError> {
    let mut queued = 0;
    while let Some((id, kind)) = requests::take_next(pool, t, queue.owner()).await? {
        let result = match Kind::parse(&kind) {
            Some(Kind::Enqueue) => {
                let sel = Selection {
                    request: Some(id),
                    ..Selection::default()
                };
                enqueue::selection(pool, t, &sel, dedupe, &mut |_, _| {}).await
            }
            Some(Kind::Retry) => retry(pool, t, queue, id).await.map(|n| EnqueueReport {
                queued: n,
                ..EnqueueReport::default()
            }),
            None => {
                let message = format!(
                    "unknown request kind `{kind}`: the plugin is newer than this daemon; upgrade piwigo-s3upload"
                );
                requests::finish(pool, t, id, Err(&message)).await?;
                continue;
            }
        };
        match result {
            Ok(report) => {
                tracing::info!(
                    request.id = id,
                    request.kind = %kind,
                    selected = report.selected,
                    queued = report.queued,
                    "carried out a request from the Piwigo plugin"
                );
                queued += report.queued;
                requests::finish(pool, t, id, Ok(&report)).await?;
            }
            // The request stays `working` and is taken again later.
            Err(e) if e.is_connection() => return Err(e),
            Err(e) => {
                tracing::warn!(request.id = id, error = %e, "a request from the Piwigo plugin failed");
                requests::finish(pool, t, id, Err(&e.to_string())).await?;
            }
        }
    }
    requests::forget_drafts(pool, t).await?;
    Ok(queued)
}

/// `retry`: the photos the request names (the plugin's per-photo button),
/// or every failure when it names none ("Retry failed now").
async fn retry(pool: &MySqlPool, t: &Tables, queue: &Queue, request: u64) -> Result<u64, DbError> {
    let ids = requests::photo_ids(pool, t, request).await?;
    if ids.is_empty() {
        return queue.retry_now(None).await;
    }
    let mut ranges: Vec<(u32, u32)> = Vec::new();
    for id in ids {
        match ranges.last_mut() {
            Some((_, hi)) if *hi + 1 == id => *hi = id,
            _ => ranges.push((id, id)),
        }
    }
    queue.retry_now(Some(&ranges)).await
}
