//! The steps every success shares, inside the caller's transaction:
//! the claimed row leaves the queue, the record goes into `uploaded`, and
//! the outcome is counted for `status`. `record` (a first upload) and
//! `versions` (a new version) both build on them.

use super::{Claimed, Record};
use crate::db::DbError;

/// Inserts a photo's record (the row of `uploaded`) as it is. The callers
/// decide what a row already there means.
pub(super) async fn insert_record(
    tx: &mut sqlx::MySqlConnection,
    t: &crate::db::Tables,
    image_id: u32,
    r: &Record,
) -> Result<sqlx::mysql::MySqlQueryResult, sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO {} (image_id, outcome, bucket, s3_key, size, md5, etag, url, duplicate_of, \
         file_size, file_mtime_ns, piwigo_filesize, piwigo_lastmodified) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        t.uploaded
    ))
    .bind(image_id)
    .bind(r.outcome.as_str())
    .bind(&r.bucket)
    .bind(&r.key)
    .bind(r.size)
    .bind(&r.md5)
    .bind(&r.etag)
    .bind(&r.url)
    .bind(r.duplicate_of)
    .bind(r.stat.size)
    .bind(r.stat.mtime_ns)
    .bind(r.piwigo.filesize)
    .bind(r.piwigo.lastmodified)
    .execute(tx)
    .await
}

/// One more record with `outcome` in the counts `status` reads.
pub(super) async fn count_outcome(
    tx: &mut sqlx::MySqlConnection,
    t: &crate::db::Tables,
    outcome: crate::status::Outcome,
) -> Result<(), DbError> {
    sqlx::query(&format!(
        "INSERT INTO {} (outcome, n) VALUES (?, 1) ON DUPLICATE KEY UPDATE n = n + 1",
        t.counts
    ))
    .bind(outcome.as_str())
    .execute(tx)
    .await
    .map_err(DbError::query("record success: count"))?;
    Ok(())
}

/// Takes the claimed row out of the queue inside `tx`; false when the
/// claim is no longer ours (another worker took the row over), and then
/// nothing may be recorded.
pub(super) async fn dequeue(
    tx: &mut sqlx::MySqlConnection,
    t: &crate::db::Tables,
    c: &Claimed,
) -> Result<bool, sqlx::Error> {
    let deleted = sqlx::query(&format!(
        "DELETE FROM {} WHERE id = ? AND claimed_by = ?",
        t.queue
    ))
    .bind(c.id)
    .bind(&c.token)
    .execute(tx)
    .await?;
    Ok(deleted.rows_affected() == 1)
}
