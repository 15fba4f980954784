//! The companion plugin's request tables (`<prefix>s3upload_requests` and
//! `_request_images`): a request's states (`draft` written by the plugin,
//! `new`, `working`, `done`, `failed`), taking one, recording its result,
//! and filing one as the plugin does. What a request does is
//! `companion::requests`'.

use sqlx::MySqlPool;

use crate::db::{DbError, Tables};
use crate::queue::enqueue::EnqueueReport;

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

/// The photo ids a request names, in order.
pub async fn photo_ids(pool: &MySqlPool, t: &Tables, request: u64) -> Result<Vec<u32>, DbError> {
    sqlx::query_scalar(&format!(
        "SELECT image_id FROM {} WHERE request_id = ? ORDER BY image_id",
        t.request_images
    ))
    .bind(request)
    .fetch_all(pool)
    .await
    .map_err(DbError::query("requests: read the photos to retry"))
}

/// Takes the oldest waiting request for this daemon.
pub async fn take_next(
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

/// Ends a request: `done` with the counts, or `failed` with the reason.
pub async fn finish(
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

pub async fn forget_drafts(pool: &MySqlPool, t: &Tables) -> Result<(), DbError> {
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
