//! The removal of a deleted photo's objects, in three steps: its records
//! move to the removed table (in one transaction, so no new photo is ever
//! de-duplicated against an object about to go), the objects are deleted
//! from the bucket, and the removal is confirmed. A failed delete leaves
//! the objects listed in the removed table and is tried again; nothing is
//! dropped on the way.

use std::time::Duration;

use sqlx::{MySqlConnection, MySqlPool};

use super::{backoff, micros_from_now};
use crate::db::{DbError, Tables};

/// The `state` row counting the objects removed so far.
const OBJECTS_REMOVED: &str = "objects_removed";

/// An object a deleted photo's record pointed at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// `photo` or `format`.
    pub kind: &'static str,
    pub bucket: String,
    pub key: String,
    pub size: Option<u64>,
    pub md5: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TakeError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(
        "deletions: photo {image_id}'s object {key} is recorded in bucket {bucket}, not in s3.bucket ({configured}); it is left there (delete it by hand, or point s3.bucket at it while it is removed)"
    )]
    OtherBucket {
        image_id: u32,
        key: String,
        bucket: String,
        configured: String,
    },
}

/// Deleted photos whose retention has run out, whose next attempt is due,
/// and whose id Piwigo has not given back (a photo that came back is never
/// removed, even before its mark goes).
pub async fn due(
    pool: &MySqlPool,
    t: &Tables,
    retain: Duration,
    limit: u32,
) -> Result<Vec<u32>, DbError> {
    sqlx::query_scalar(&format!(
        "SELECT d.image_id FROM {d} d LEFT JOIN {i} i ON i.id = d.image_id \
         WHERE d.removed_at IS NULL AND d.next_attempt_at <= NOW(3) \
         AND d.deleted_at <= NOW(3) - INTERVAL ? MICROSECOND AND i.id IS NULL \
         ORDER BY d.deleted_at LIMIT ?",
        d = t.deleted,
        i = t.images,
    ))
    .bind(retain.as_micros() as u64)
    .bind(limit)
    .fetch_all(pool)
    .await
    .map_err(DbError::query("deletions: find removals due"))
}

/// Every object a deleted photo's records point at: its photo record's
/// object, its formats' objects, and the earlier versions of both still in
/// the bucket (not a `duplicate` row's: that object is another photo's).
async fn objects_of(
    conn: &mut MySqlConnection,
    t: &Tables,
    image_id: u32,
) -> Result<Vec<Object>, DbError> {
    type Row = (String, String, String, Option<u64>, Option<String>);
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT 'photo', bucket, s3_key, size, md5 FROM {u} WHERE image_id = ? \
             UNION ALL SELECT 'format', bucket, s3_key, size, md5 FROM {f} \
             WHERE image_id = ? AND s3_key IS NOT NULL AND bucket IS NOT NULL \
             UNION ALL SELECT 'version', bucket, s3_key, size, md5 FROM {v} \
             WHERE image_id = ? AND removed_at IS NULL AND outcome <> 'duplicate'",
        u = t.uploaded,
        f = t.formats,
        v = t.versions,
    ))
    .bind(image_id)
    .bind(image_id)
    .bind(image_id)
    .fetch_all(&mut *conn)
    .await
    .map_err(DbError::query("deletions: list a deleted photo's objects"))?;
    Ok(rows
        .into_iter()
        .map(|(kind, bucket, key, size, md5)| Object {
            kind: match kind.as_str() {
                "photo" => "photo",
                "version" => "version",
                _ => "format",
            },
            bucket,
            key,
            size,
            md5,
        })
        .collect())
}

/// A photo whose record still uses the object at `o` (not `image_id`, and
/// not itself a deleted photo past its retention), or a queued photo that
/// holds the key's reservation (it may be about to record the object).
async fn user_of(
    conn: &mut MySqlConnection,
    t: &Tables,
    image_id: u32,
    o: &Object,
    reservation: &str,
    retain: Duration,
) -> Result<Option<u32>, DbError> {
    let err = DbError::query;
    let Some(md5) = &o.md5 else {
        return Ok(None);
    };
    let cutoff = format!(
        "NOT EXISTS (SELECT 1 FROM {d} d WHERE d.image_id = r.image_id AND d.removed_at IS NULL \
         AND d.deleted_at <= NOW(3) - INTERVAL {micros} MICROSECOND)",
        d = t.deleted,
        micros = retain.as_micros(),
    );
    let user: Option<u32> = sqlx::query_scalar(&format!(
        "SELECT r.image_id FROM {u} r WHERE r.md5 = ? AND r.s3_key = ? AND r.bucket = ? \
         AND r.image_id <> ? AND {cutoff} \
         UNION ALL SELECT r.image_id FROM {f} r WHERE r.md5 = ? AND r.s3_key = ? AND r.bucket = ? \
         AND r.image_id <> ? AND {cutoff} \
         UNION ALL SELECT image_id FROM {q} WHERE key_md5 = ? LIMIT 1",
        u = t.uploaded,
        f = t.formats,
        q = t.queue,
    ))
    .bind(md5)
    .bind(&o.key)
    .bind(&o.bucket)
    .bind(image_id)
    .bind(md5)
    .bind(&o.key)
    .bind(&o.bucket)
    .bind(image_id)
    .bind(reservation)
    .fetch_optional(&mut *conn)
    .await
    .map_err(err("deletions: look for other records of an object"))?;
    Ok(user)
}

/// Step one: the photo's records leave the uploaded and formats tables
/// for the removed table, with their counts, in one transaction. An
/// object another record still uses is noted as kept for it and stays.
/// Returns the keys to delete from the bucket (with those an earlier
/// attempt left unconfirmed).
pub async fn take_records(
    pool: &MySqlPool,
    t: &Tables,
    image_id: u32,
    bucket: &str,
    reservation: impl Fn(&str) -> String,
    retain: Duration,
) -> Result<Vec<String>, TakeError> {
    let err = DbError::query;
    let mut tx = pool.begin().await.map_err(err("deletions: begin"))?;
    // Locks the mark: two daemons never take one photo's records at once.
    let still: Option<u32> = sqlx::query_scalar(&format!(
        "SELECT image_id FROM {} WHERE image_id = ? AND removed_at IS NULL FOR UPDATE",
        t.deleted
    ))
    .bind(image_id)
    .fetch_optional(&mut *tx)
    .await
    .map_err(err("deletions: lock the mark"))?;
    if still.is_none() {
        return Ok(Vec::new());
    }
    let objects = objects_of(&mut tx, t, image_id).await?;
    if let Some(o) = objects.iter().find(|o| o.bucket != bucket) {
        return Err(TakeError::OtherBucket {
            image_id,
            key: o.key.clone(),
            bucket: o.bucket.clone(),
            configured: bucket.to_owned(),
        });
    }
    for o in &objects {
        let kept_for = user_of(&mut tx, t, image_id, o, &reservation(&o.key), retain).await?;
        sqlx::query(&format!(
            "INSERT INTO {} (image_id, kind, bucket, s3_key, size, md5, kept_for, removed_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, IF(? IS NULL, NULL, NOW(3)))",
            t.removed
        ))
        .bind(image_id)
        .bind(o.kind)
        .bind(&o.bucket)
        .bind(&o.key)
        .bind(o.size)
        .bind(&o.md5)
        .bind(kept_for)
        .bind(kept_for)
        .execute(&mut *tx)
        .await
        .map_err(err("deletions: note an object to remove"))?;
    }
    let outcome: Option<String> = sqlx::query_scalar(&format!(
        "SELECT outcome FROM {} WHERE image_id = ?",
        t.uploaded
    ))
    .bind(image_id)
    .fetch_optional(&mut *tx)
    .await
    .map_err(err("deletions: read the record"))?;
    if let Some(outcome) = outcome {
        sqlx::query(&format!(
            "UPDATE {} SET n = n - 1 WHERE outcome = ? AND n > 0",
            t.counts
        ))
        .bind(outcome)
        .execute(&mut *tx)
        .await
        .map_err(err("deletions: count the record out"))?;
    }
    // The version history's rows move too: their objects are listed above.
    for table in [&t.uploaded, &t.formats, &t.versions] {
        sqlx::query(&format!("DELETE FROM {table} WHERE image_id = ?"))
            .bind(image_id)
            .execute(&mut *tx)
            .await
            .map_err(err("deletions: take the records"))?;
    }
    sqlx::query(&format!("DELETE FROM {} WHERE image_id = ?", t.places))
        .bind(image_id)
        .execute(&mut *tx)
        .await
        .map_err(err("deletions: forget the place"))?;
    let keys: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT s3_key FROM {} WHERE image_id = ? AND removed_at IS NULL AND kept_for IS NULL",
        t.removed
    ))
    .bind(image_id)
    .fetch_all(&mut *tx)
    .await
    .map_err(err("deletions: list the keys to delete"))?;
    tx.commit().await.map_err(err("deletions: commit"))?;
    Ok(keys)
}

/// Step three: the bucket said the objects are gone.
pub async fn confirm(pool: &MySqlPool, t: &Tables, image_id: u32) -> Result<u64, DbError> {
    let err = DbError::query;
    let mut tx = pool.begin().await.map_err(err("deletions: begin"))?;
    let objects = sqlx::query(&format!(
        "UPDATE {} SET removed_at = NOW(3) WHERE image_id = ? AND removed_at IS NULL",
        t.removed
    ))
    .bind(image_id)
    .execute(&mut *tx)
    .await
    .map_err(err("deletions: confirm the objects' removal"))?
    .rows_affected();
    // Kept as a running count: `status` and /metrics read one row, not a
    // history that only grows.
    sqlx::query(&format!(
        "INSERT INTO {} (name, value) VALUES ('{OBJECTS_REMOVED}', ?) \
         ON DUPLICATE KEY UPDATE value = CAST(value AS UNSIGNED) + VALUES(value), updated_at = NOW(3)",
        t.state
    ))
    .bind(objects)
    .execute(&mut *tx)
    .await
    .map_err(err("deletions: count the objects removed"))?;
    sqlx::query(&format!(
        "UPDATE {} SET removed_at = NOW(3), last_error = NULL WHERE image_id = ?",
        t.deleted
    ))
    .bind(image_id)
    .execute(&mut *tx)
    .await
    .map_err(err("deletions: confirm the removal"))?;
    tx.commit().await.map_err(err("deletions: commit"))?;
    Ok(objects)
}

/// A removal that failed: tried again after a backoff, its error kept for
/// `retention` and `status`.
pub async fn fail(
    pool: &MySqlPool,
    t: &Tables,
    image_id: u32,
    error: &str,
    min: Duration,
    max: Duration,
) -> Result<(), DbError> {
    let attempts: Option<u32> = sqlx::query_scalar(&format!(
        "SELECT attempts FROM {} WHERE image_id = ?",
        t.deleted
    ))
    .bind(image_id)
    .fetch_optional(pool)
    .await
    .map_err(DbError::query("deletions: read attempts"))?;
    let next = micros_from_now(backoff(attempts.unwrap_or(0), min, max));
    let error: String = error.chars().take(1000).collect();
    sqlx::query(&format!(
        "UPDATE {} SET attempts = attempts + 1, last_error = ?, next_attempt_at = {next} \
         WHERE image_id = ?",
        t.deleted
    ))
    .bind(error)
    .bind(image_id)
    .execute(pool)
    .await
    .map_err(DbError::query("deletions: record a failed removal"))?;
    Ok(())
}

/// What removals have done and what waits, for `status` and `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Deleted photos whose objects are still in the bucket.
    pub retained: u64,
    /// Objects deleted from the bucket by the retention policy.
    pub objects_removed: u64,
    /// Deleted photos whose last removal attempt failed.
    pub failing: u64,
}

pub async fn counts(pool: &MySqlPool, t: &Tables) -> Result<Counts, DbError> {
    let err = DbError::query;
    let (retained, failing): (i64, i64) = sqlx::query_as(&format!(
        "SELECT COUNT(*), CAST(COALESCE(SUM(last_error IS NOT NULL), 0) AS SIGNED) \
         FROM {} WHERE removed_at IS NULL",
        t.deleted
    ))
    .fetch_one(pool)
    .await
    .map_err(err("deletions: count marks"))?;
    let removed: Option<String> = sqlx::query_scalar(&format!(
        "SELECT value FROM {} WHERE name = '{OBJECTS_REMOVED}'",
        t.state
    ))
    .fetch_optional(pool)
    .await
    .map_err(err("deletions: count removed objects"))?;
    Ok(Counts {
        retained: retained.max(0) as u64,
        objects_removed: removed.and_then(|v| v.parse().ok()).unwrap_or(0),
        failing: failing.max(0) as u64,
    })
}

/// How many deleted photos are past `retain` and not removed yet.
pub async fn due_count(pool: &MySqlPool, t: &Tables, retain: Duration) -> Result<u64, DbError> {
    let n: i64 = sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM {} WHERE removed_at IS NULL \
         AND deleted_at <= NOW(3) - INTERVAL ? MICROSECOND",
        t.deleted
    ))
    .bind(retain.as_micros() as u64)
    .fetch_one(pool)
    .await
    .map_err(DbError::query("deletions: count removals due"))?;
    Ok(n.max(0) as u64)
}

/// Keys in `bucket` whose removal is under way or failed: `verify` knows
/// them as deleted photos' objects, not orphans.
pub async fn pending_keys(
    pool: &MySqlPool,
    t: &Tables,
    bucket: &str,
) -> Result<std::collections::HashSet<String>, DbError> {
    let keys: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT s3_key FROM {} WHERE removed_at IS NULL AND kept_for IS NULL AND bucket = ?",
        t.removed
    ))
    .bind(bucket)
    .fetch_all(pool)
    .await
    .map_err(DbError::query("deletions: list objects being removed"))?;
    Ok(keys.into_iter().collect())
}
