//! The formats' side of the queue. A photo's formats are queued as items
//! of their own (kind `format`) once the photo is recorded, and a format
//! sent is recorded in the formats table, as a photo is in the uploaded
//! table. Everything in between is the photo's pipeline.

use sqlx::MySqlPool;

use super::Record;
use crate::db::{DbError, Tables};

/// `INSERT IGNORE ... SELECT` of formats not recorded yet; the queue's
/// unique key on (image_id, kind, kind_id) skips those queued already.
fn insert_sql(t: &Tables, photos: &str) -> String {
    format!(
        "INSERT IGNORE INTO {q} (image_id, kind, kind_id, ext, source) \
         SELECT pf.image_id, 'format', pf.format_id, pf.ext, 'format' FROM {pf} pf \
         WHERE {photos} \
         AND NOT EXISTS (SELECT 1 FROM {f} f WHERE f.format_id = pf.format_id)",
        q = t.queue,
        pf = t.image_format,
        f = t.formats,
    )
}

/// Queues the formats of every recorded photo not queued or recorded yet:
/// formats added to a photo after it was sent. Nothing when this Piwigo
/// has no formats (before 13).
pub async fn discover(pool: &MySqlPool, t: &Tables) -> Result<u64, DbError> {
    if !crate::piwigo::has_formats(pool, t).await? {
        return Ok(0);
    }
    let recorded = format!(
        "EXISTS (SELECT 1 FROM {u} u WHERE u.image_id = pf.image_id)",
        u = t.uploaded
    );
    let done = sqlx::query(&insert_sql(t, &recorded))
        .execute(pool)
        .await
        .map_err(DbError::query("formats: queue new formats"))?;
    Ok(done.rows_affected())
}

/// Queues the formats of the photo being recorded, in its transaction.
pub(super) async fn queue_of_photo(
    tx: &mut sqlx::MySqlConnection,
    t: &Tables,
    image_id: u32,
) -> Result<(), DbError> {
    sqlx::query(&insert_sql(t, "pf.image_id = ?"))
        .bind(image_id)
        .execute(tx)
        .await
        .map_err(DbError::query("record success: queue the photo's formats"))?;
    Ok(())
}

/// A format's record. Recorded before (by an earlier run): the first
/// record stands.
pub(super) async fn record(
    tx: &mut sqlx::MySqlConnection,
    t: &Tables,
    image_id: u32,
    format_id: u32,
    ext: &str,
    r: &Record,
) -> Result<(), DbError> {
    sqlx::query(&format!(
        "INSERT IGNORE INTO {} (format_id, image_id, ext, status, bucket, s3_key, size, md5, \
         etag, uploaded_at, updated_at, file_size, file_mtime_ns, piwigo_filesize, \
         piwigo_lastmodified) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NOW(3), NOW(3), ?, ?, ?, ?)",
        t.formats
    ))
    .bind(format_id)
    .bind(image_id)
    .bind(ext)
    .bind(r.outcome.as_str())
    .bind(&r.bucket)
    .bind(&r.key)
    .bind(r.size)
    .bind(&r.md5)
    .bind(&r.etag)
    .bind(r.stat.size)
    .bind(r.stat.mtime_ns)
    .bind(r.piwigo.filesize)
    .bind(r.piwigo.lastmodified)
    .execute(tx)
    .await
    .map_err(DbError::query("record success: record the format"))?;
    Ok(())
}
