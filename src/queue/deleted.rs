//! Photos deleted in Piwigo: where each recorded photo was last seen, the
//! marks of those whose row is gone, and what the deletion guard remembers
//! between two looks (Piwigo's images table and a hold). The removal of
//! their objects is `queue::removal`.

use sqlx::{MySqlPool, QueryBuilder};

use crate::db::{DbError, Tables};
use crate::piwigo::GallerySignal;

/// Recorded photos looked at per statement: each anti-join or refresh
/// stays short, so Piwigo's MyISAM tables are never read-locked for long.
pub const CHUNK: u32 = 20_000;

/// The `state` row holding the last look at the images table.
const BASELINE: &str = "deletions_baseline";
/// The `state` row holding the hold's reason while deletions are held.
const HOLD: &str = "deletions_hold";
/// The last uploaded-table row whose place was noted.
const PLACES_CURSOR: &str = "places_cursor";
/// Where the slow sweep goes on: the first photo id of its next chunk.
const SWEEP_CURSOR: &str = "deletions_sweep_from";

/// Notes where recorded photos are: the ones recorded since the last call
/// (up to [`CHUNK`] records), from Piwigo's row and album links. Returns
/// how many records it went through.
pub async fn note_new_places(pool: &MySqlPool, t: &Tables) -> Result<u64, DbError> {
    let err = DbError::query;
    let cursor: u64 = super::state::get(pool, t, PLACES_CURSOR)
        .await?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let newest: Option<u64> = sqlx::query_scalar(&format!("SELECT MAX(id) FROM {}", t.uploaded))
        .fetch_one(pool)
        .await
        .map_err(err("places: find new records"))?;
    let newest = newest.unwrap_or(0);
    if newest <= cursor {
        return Ok(0);
    }
    let upto = newest.min(cursor + u64::from(CHUNK));
    sqlx::query(&format!(
        "INSERT INTO {p} (image_id, path, albums, seen_at) \
         SELECT i.id, i.path, {albums}, NOW(3) FROM {u} u JOIN {i} i ON i.id = u.image_id \
         WHERE u.id > ? AND u.id <= ? {UPSERT}",
        p = t.places,
        u = t.uploaded,
        i = t.images,
        albums = albums_of(t),
    ))
    .bind(cursor)
    .bind(upto)
    .execute(pool)
    .await
    .map_err(err("places: note new records"))?;
    super::state::set(pool, t, PLACES_CURSOR, &upto.to_string()).await?;
    Ok(upto - cursor)
}

/// Notes again where the recorded photos with ids in `lo..=hi` are (a
/// photo moved to another album since its upload).
pub async fn refresh_places(pool: &MySqlPool, t: &Tables, lo: u32, hi: u32) -> Result<(), DbError> {
    sqlx::query(&format!(
        "INSERT INTO {p} (image_id, path, albums, seen_at) \
         SELECT i.id, i.path, {albums}, NOW(3) FROM {u} u JOIN {i} i ON i.id = u.image_id \
         WHERE u.image_id BETWEEN ? AND ? {UPSERT}",
        p = t.places,
        u = t.uploaded,
        i = t.images,
        albums = albums_of(t),
    ))
    .bind(lo)
    .bind(hi)
    .execute(pool)
    .await
    .map_err(DbError::query("places: refresh"))?;
    Ok(())
}

const UPSERT: &str = "ON DUPLICATE KEY UPDATE path = VALUES(path), albums = VALUES(albums), \
     seen_at = VALUES(seen_at)";

/// The album ids of photo `i.id`, comma-separated, as SQL.
fn albums_of(t: &Tables) -> String {
    format!(
        "(SELECT LEFT(GROUP_CONCAT(ic.category_id ORDER BY ic.category_id), 1024) \
         FROM {} ic WHERE ic.image_id = i.id)",
        t.image_category
    )
}

/// The slow sweep's next chunk of photo ids, moving its cursor past it;
/// after `last` it starts over from the first id.
pub async fn next_sweep_chunk(
    pool: &MySqlPool,
    t: &Tables,
    last: u32,
) -> Result<(u32, u32), DbError> {
    let from: u32 = super::state::get(pool, t, SWEEP_CURSOR)
        .await?
        .and_then(|v| v.parse().ok())
        .filter(|from| *from <= last)
        .unwrap_or(0);
    let to = from.saturating_add(CHUNK - 1);
    super::state::set(pool, t, SWEEP_CURSOR, &to.saturating_add(1).to_string()).await?;
    Ok((from, to))
}

/// The highest recorded photo id (where a pass over the records ends).
pub async fn last_recorded_id(pool: &MySqlPool, t: &Tables) -> Result<u32, DbError> {
    let max: Option<u32> = sqlx::query_scalar(&format!("SELECT MAX(image_id) FROM {}", t.uploaded))
        .fetch_one(pool)
        .await
        .map_err(DbError::query("deletions: find the last record"))?;
    Ok(max.unwrap_or(0))
}

/// Recorded photos with ids in `lo..=hi` that Piwigo no longer has and
/// that are not marked yet.
pub async fn newly_missing(
    pool: &MySqlPool,
    t: &Tables,
    lo: u32,
    hi: u32,
) -> Result<Vec<u32>, DbError> {
    sqlx::query_scalar(&format!(
        "SELECT u.image_id FROM {u} u LEFT JOIN {i} i ON i.id = u.image_id \
         LEFT JOIN {d} d ON d.image_id = u.image_id \
         WHERE u.image_id BETWEEN ? AND ? AND i.id IS NULL AND d.image_id IS NULL \
         ORDER BY u.image_id",
        u = t.uploaded,
        i = t.images,
        d = t.deleted,
    ))
    .bind(lo)
    .bind(hi)
    .fetch_all(pool)
    .await
    .map_err(DbError::query(
        "deletions: find recorded photos Piwigo no longer has",
    ))
}

/// The albums each of `ids` was last seen in.
pub async fn last_albums(
    pool: &MySqlPool,
    t: &Tables,
    ids: &[u32],
) -> Result<Vec<(u32, Vec<u32>)>, DbError> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(1000) {
        let mut qb = QueryBuilder::new(format!(
            "SELECT image_id, albums FROM {} WHERE image_id IN (",
            t.places
        ));
        push_ids(&mut qb, chunk);
        let rows: Vec<(u32, Option<String>)> = qb
            .build_query_as()
            .fetch_all(pool)
            .await
            .map_err(DbError::query("deletions: read last albums"))?;
        out.extend(rows.into_iter().map(|(id, albums)| {
            let list = albums
                .unwrap_or_default()
                .split(',')
                .filter_map(|a| a.trim().parse().ok())
                .collect();
            (id, list)
        }));
    }
    Ok(out)
}

/// How many photos each of `albums` holds in Piwigo now.
pub async fn album_sizes(
    pool: &MySqlPool,
    t: &Tables,
    albums: &[u32],
) -> Result<Vec<(u32, u64)>, DbError> {
    let mut out = Vec::new();
    for chunk in albums.chunks(1000) {
        let mut qb = QueryBuilder::new(format!(
            "SELECT category_id, COUNT(*) FROM {} WHERE category_id IN (",
            t.image_category
        ));
        push_ids(&mut qb, chunk);
        qb.push(" GROUP BY category_id");
        let rows: Vec<(u32, i64)> = qb
            .build_query_as()
            .fetch_all(pool)
            .await
            .map_err(DbError::query("deletions: count photos per album"))?;
        out.extend(rows.into_iter().map(|(a, n)| (a, n.max(0) as u64)));
    }
    Ok(out)
}

/// Marks `ids` deleted now, with the place each was last seen. Returns
/// how many were new marks (another daemon may have marked some).
pub async fn mark(pool: &MySqlPool, t: &Tables, ids: &[u32]) -> Result<u64, DbError> {
    let mut marked = 0;
    for chunk in ids.chunks(1000) {
        let mut qb = QueryBuilder::new(format!(
            "INSERT IGNORE INTO {d} (image_id, path, albums) \
             SELECT u.image_id, p.path, p.albums FROM {u} u \
             LEFT JOIN {p} p ON p.image_id = u.image_id WHERE u.image_id IN (",
            d = t.deleted,
            u = t.uploaded,
            p = t.places,
        ));
        push_ids(&mut qb, chunk);
        marked += qb
            .build()
            .execute(pool)
            .await
            .map_err(DbError::query("deletions: mark deleted photos"))?
            .rows_affected();
    }
    Ok(marked)
}

/// Photos marked deleted that Piwigo has again (same id, in `lo..=hi`):
/// the marks go. Those whose objects were removed meanwhile are queued to
/// be sent again. Returns how many came back.
pub async fn unmark_returned(
    pool: &MySqlPool,
    t: &Tables,
    lo: u32,
    hi: u32,
) -> Result<u64, DbError> {
    let err = DbError::query;
    let back: Vec<(u32, bool)> = sqlx::query_as(&format!(
        "SELECT d.image_id, d.removed_at IS NOT NULL FROM {d} d JOIN {i} i ON i.id = d.image_id \
         WHERE d.image_id BETWEEN ? AND ?",
        d = t.deleted,
        i = t.images,
    ))
    .bind(lo)
    .bind(hi)
    .fetch_all(pool)
    .await
    .map_err(err("deletions: find photos that came back"))?;
    for (id, removed) in &back {
        let mut tx = pool.begin().await.map_err(err("deletions: begin"))?;
        if *removed {
            sqlx::query(&format!(
                "INSERT IGNORE INTO {} (image_id, source) VALUES (?, 'returned')",
                t.queue
            ))
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(err("deletions: queue a photo that came back"))?;
        }
        sqlx::query(&format!("DELETE FROM {} WHERE image_id = ?", t.deleted))
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(err("deletions: unmark a photo that came back"))?;
        tx.commit().await.map_err(err("deletions: commit"))?;
        tracing::info!(
            image.id = id,
            requeued = removed,
            "a photo marked deleted is in Piwigo again: unmarked"
        );
    }
    Ok(back.len() as u64)
}

/// The last look at the images table, if any.
pub async fn baseline(pool: &MySqlPool, t: &Tables) -> Result<Option<GallerySignal>, DbError> {
    Ok(super::state::get(pool, t, BASELINE)
        .await?
        .and_then(|v| serde_json::from_str(&v).ok()))
}

pub async fn set_baseline(pool: &MySqlPool, t: &Tables, s: &GallerySignal) -> Result<(), DbError> {
    // Serialising plain strings and numbers cannot fail; an empty value
    // would only mean "no baseline", which the guard treats with care.
    let value = serde_json::to_string(s).unwrap_or_default();
    super::state::set(pool, t, BASELINE, &value).await
}

/// Why deletions are held, and since when; `None` when they are not.
pub async fn hold(pool: &MySqlPool, t: &Tables) -> Result<Option<(String, String)>, DbError> {
    sqlx::query_as(&format!(
        "SELECT value, CAST(updated_at AS CHAR) FROM {} WHERE name = ?",
        t.state
    ))
    .bind(HOLD)
    .fetch_optional(pool)
    .await
    .map_err(DbError::query("deletions: read the hold"))
}

/// Holds every deletion, keeping the first reason while one stands.
pub async fn set_hold(pool: &MySqlPool, t: &Tables, reason: &str) -> Result<bool, DbError> {
    let reason: String = reason.chars().take(255).collect();
    let done = sqlx::query(&format!(
        "INSERT IGNORE INTO {} (name, value) VALUES (?, ?)",
        t.state
    ))
    .bind(HOLD)
    .bind(reason)
    .execute(pool)
    .await
    .map_err(DbError::query("deletions: hold"))?;
    Ok(done.rows_affected() == 1)
}

/// Lets held deletions proceed: the hold goes, and the current look at
/// the images table becomes the one the next look compares with (the
/// admin has seen the gallery as it is). Returns the released reason.
pub async fn release(
    pool: &MySqlPool,
    t: &Tables,
    now: Option<&GallerySignal>,
) -> Result<Option<String>, DbError> {
    let err = DbError::query;
    let mut tx = pool.begin().await.map_err(err("deletions: begin"))?;
    let reason: Option<String> = sqlx::query_scalar(&format!(
        "SELECT value FROM {} WHERE name = ? FOR UPDATE",
        t.state
    ))
    .bind(HOLD)
    .fetch_optional(&mut *tx)
    .await
    .map_err(err("deletions: read the hold"))?;
    sqlx::query(&format!("DELETE FROM {} WHERE name = ?", t.state))
        .bind(HOLD)
        .execute(&mut *tx)
        .await
        .map_err(err("deletions: release"))?;
    tx.commit().await.map_err(err("deletions: commit"))?;
    if let Some(s) = now {
        set_baseline(pool, t, s).await?;
    }
    Ok(reason)
}

pub(super) fn push_ids(qb: &mut QueryBuilder<'_, sqlx::MySql>, ids: &[u32]) {
    let mut sep = qb.separated(", ");
    for id in ids {
        sep.push_bind(*id);
    }
    qb.push(")");
}

/// A photo marked deleted, for `retention`.
#[derive(Debug, Clone)]
pub struct Mark {
    pub image_id: u32,
    pub deleted_at: String,
    pub path: Option<String>,
    pub albums: Option<String>,
    pub attempts: u32,
    pub last_error: Option<String>,
}

/// The most recent marks whose objects are still in the bucket.
pub async fn recent_marks(pool: &MySqlPool, t: &Tables, limit: u32) -> Result<Vec<Mark>, DbError> {
    type Row = (
        u32,
        String,
        Option<String>,
        Option<String>,
        u32,
        Option<String>,
    );
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT image_id, CAST(deleted_at AS CHAR), path, albums, attempts, last_error \
         FROM {} WHERE removed_at IS NULL ORDER BY deleted_at DESC, image_id LIMIT ?",
        t.deleted
    ))
    .bind(limit)
    .fetch_all(pool)
    .await
    .map_err(DbError::query("deletions: list marks"))?;
    Ok(rows
        .into_iter()
        .map(
            |(image_id, deleted_at, path, albums, attempts, last_error)| Mark {
                image_id,
                deleted_at,
                path,
                albums,
                attempts,
                last_error,
            },
        )
        .collect())
}
