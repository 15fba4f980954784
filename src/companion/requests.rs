//! Requests filed by the companion plugin: a Batch Manager selection to
//! queue, or "retry failed now". The daemon carries them out with the same
//! code as `enqueue` and `retry`, so the queue's rules live in one place,
//! and writes the counts back for the admin to see.
//!
//! The plugin writes a request as `draft`, then its photo ids, then marks
//! it `new`; a daemon takes it (`working`), and ends it `done` or `failed`.
//! A request whose daemon died is taken again after [`RETAKE_AFTER_SECS`]:
//! queueing is idempotent, so doing it twice queues nothing twice.

use sqlx::MySqlPool;

use crate::db::{DbError, Tables};
use crate::piwigo::Selection;
use crate::queue::Queue;
use crate::queue::enqueue::{self, EnqueueReport};

/// A `working` request older than this is taken again.
const RETAKE_AFTER_SECS: u32 = 300;
/// Drafts the plugin never finished (its PHP process died) are removed
/// after this long.
const DRAFT_TTL_HOURS: u32 = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Working,
    Done,
    Failed,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            State::Working => "working",
            State::Done => "done",
            State::Failed => "failed",
        }
    }
}

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
    while let Some((id, kind)) = take_next(pool, t, queue.owner()).await? {
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
                finish(pool, t, id, Err(&message)).await?;
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
                finish(pool, t, id, Ok(&report)).await?;
            }
            // The request stays `working` and is taken again later.
            Err(e) if e.is_connection() => return Err(e),
            Err(e) => {
                tracing::warn!(request.id = id, error = %e, "a request from the Piwigo plugin failed");
                finish(pool, t, id, Err(&e.to_string())).await?;
            }
        }
    }
    forget_drafts(pool, t).await?;
    Ok(queued)
}

/// `retry`: the photos the request names (the plugin's per-photo button),
/// or every failure when it names none ("Retry failed now").
async fn retry(pool: &MySqlPool, t: &Tables, queue: &Queue, request: u64) -> Result<u64, DbError> {
    let ids: Vec<u32> = sqlx::query_scalar(&format!(
        "SELECT image_id FROM {} WHERE request_id = ? ORDER BY image_id",
        t.request_images
    ))
    .bind(request)
    .fetch_all(pool)
    .await
    .map_err(DbError::query("requests: read the photos to retry"))?;
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

/// Takes the oldest waiting request for this daemon.
async fn take_next(
    pool: &MySqlPool,
    t: &Tables,
    owner: &str,
) -> Result<Option<(u64, String)>, DbError> {
    let err = DbError::query;
    let taken = sqlx::query(&format!(
        "UPDATE {} SET status = ?, claimed_by = ?, claimed_at = NOW(3) \
         WHERE status = 'new' \
         OR (status = ? AND claimed_at < NOW(3) - INTERVAL {RETAKE_AFTER_SECS} SECOND) \
         ORDER BY id LIMIT 1",
        t.requests
    ))
    .bind(State::Working.as_str())
    .bind(owner)
    .bind(State::Working.as_str())
    .execute(pool)
    .await
    .map_err(err("requests: take the next"))?
    .rows_affected();
    if taken == 0 {
        return Ok(None);
    }
    sqlx::query_as(&format!(
        "SELECT id, kind FROM {} WHERE status = ? AND claimed_by = ? ORDER BY id LIMIT 1",
        t.requests
    ))
    .bind(State::Working.as_str())
    .bind(owner)
    .fetch_optional(pool)
    .await
    .map_err(err("requests: read the taken one"))
}

async fn finish(
    pool: &MySqlPool,
    t: &Tables,
    id: u64,
    outcome: Result<&EnqueueReport, &str>,
) -> Result<(), DbError> {
    let err = DbError::query;
    let (state, report, error) = match outcome {
        Ok(r) => (State::Done, *r, None),
        Err(e) => (
            State::Failed,
            EnqueueReport::default(),
            Some(e.chars().take(1000).collect::<String>()),
        ),
    };
    sqlx::query(&format!(
        "UPDATE {} SET status = ?, selected = ?, queued = ?, already_uploaded = ?, \
         already_queued = ?, duplicates = ?, error = ?, done_at = NOW(3) WHERE id = ?",
        t.requests
    ))
    .bind(state.as_str())
    .bind(report.selected)
    .bind(report.queued)
    .bind(report.already_uploaded)
    .bind(report.already_queued)
    .bind(report.duplicates)
    .bind(error)
    .bind(id)
    .execute(pool)
    .await
    .map_err(err("requests: record the result"))?;
    // The ids have served; a large selection should not stay in the table.
    forget_ids(pool, t, id).await
}

async fn forget_ids(pool: &MySqlPool, t: &Tables, id: u64) -> Result<(), DbError> {
    sqlx::query(&format!(
        "DELETE FROM {} WHERE request_id = ?",
        t.request_images
    ))
    .bind(id)
    .execute(pool)
    .await
    .map_err(DbError::query("requests: remove a request's photo ids"))?;
    Ok(())
}

async fn forget_drafts(pool: &MySqlPool, t: &Tables) -> Result<(), DbError> {
    let err = DbError::query;
    let stale: Vec<u64> = sqlx::query_scalar(&format!(
        "SELECT id FROM {} WHERE status = 'draft' \
         AND created_at < NOW(3) - INTERVAL {DRAFT_TTL_HOURS} HOUR",
        t.requests
    ))
    .fetch_all(pool)
    .await
    .map_err(err("requests: find abandoned drafts"))?;
    for id in stale {
        forget_ids(pool, t, id).await?;
        sqlx::query(&format!("DELETE FROM {} WHERE id = ?", t.requests))
            .bind(id)
            .execute(pool)
            .await
            .map_err(err("requests: remove an abandoned draft"))?;
    }
    Ok(())
}

/// Photo ids written per INSERT when filing a request.
const IDS_PER_INSERT: usize = 5000;

/// Files an `enqueue` request the way the plugin does (draft, ids, then
/// new): `ids`, plus every photo in `range` when given. Returns its id.
pub async fn file(
    pool: &MySqlPool,
    t: &Tables,
    ids: &[u32],
    range: Option<(u32, u32)>,
) -> Result<u64, DbError> {
    let err = DbError::query;
    let id = sqlx::query(&format!(
        "INSERT INTO {} (kind, status) VALUES ('enqueue', 'draft')",
        t.requests
    ))
    .execute(pool)
    .await
    .map_err(err("requests: file"))?
    .last_insert_id();
    for chunk in ids.chunks(IDS_PER_INSERT) {
        let mut qb = sqlx::QueryBuilder::new(format!(
            "INSERT IGNORE INTO {} (request_id, image_id) ",
            t.request_images
        ));
        qb.push_values(chunk, |mut row, image_id| {
            row.push_bind(id).push_bind(*image_id);
        });
        qb.build()
            .execute(pool)
            .await
            .map_err(err("requests: file the photo ids"))?;
    }
    if let Some((lo, hi)) = range {
        sqlx::query(&format!(
            "INSERT IGNORE INTO {} (request_id, image_id) SELECT ?, id FROM {} WHERE id BETWEEN ? AND ?",
            t.request_images, t.images
        ))
        .bind(id)
        .bind(lo)
        .bind(hi)
        .execute(pool)
        .await
        .map_err(err("requests: file a range of photos"))?;
    }
    sqlx::query(&format!(
        "UPDATE {} SET status = 'new', \
         photos = (SELECT COUNT(*) FROM {} WHERE request_id = ?) WHERE id = ?",
        t.requests, t.request_images
    ))
    .bind(id)
    .bind(id)
    .execute(pool)
    .await
    .map_err(err("requests: file"))?;
    Ok(id)
}

/// How many photos a request holds.
pub async fn photos(pool: &MySqlPool, t: &Tables, id: u64) -> Result<u64, DbError> {
    sqlx::query_scalar::<_, u32>(&format!("SELECT photos FROM {} WHERE id = ?", t.requests))
        .bind(id)
        .fetch_one(pool)
        .await
        .map(u64::from)
        .map_err(DbError::query("requests: count photos"))
}
