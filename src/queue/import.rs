//! `import-s3upload`'s writes: the old plugin's uploads become records,
//! and the monitoring watermark starts where the old plugin stopped.

use sqlx::MySqlPool;

use super::Outcome;
use super::uploaded::count_outcome;
use crate::db::{DbError, Tables};

/// One old upload as it is recorded.
#[derive(Debug, Clone)]
pub struct OldUpload<'a> {
    pub image_id: u32,
    pub bucket: &'a str,
    pub key: &'a str,
    pub size: u64,
    pub md5: &'a str,
    pub url: &'a str,
    /// When the old plugin sent it; now when it did not say.
    pub uploaded_at: Option<chrono::NaiveDateTime>,
}

/// Records one old upload unless the photo has a record already; whether
/// it was recorded.
pub async fn record_old_upload(
    pool: &MySqlPool,
    t: &Tables,
    old: &OldUpload<'_>,
) -> Result<bool, DbError> {
    let err = DbError::query;
    let outcome = Outcome::Uploaded;
    let mut tx = pool.begin().await.map_err(err("import: begin"))?;
    let inserted = sqlx::query(&format!(
        "INSERT IGNORE INTO {} (image_id, outcome, bucket, s3_key, size, md5, url, uploaded_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, COALESCE(?, NOW(3)))",
        t.uploaded
    ))
    .bind(old.image_id)
    .bind(outcome.as_str())
    .bind(old.bucket)
    .bind(old.key)
    .bind(old.size)
    .bind(old.md5)
    .bind(old.url)
    .bind(old.uploaded_at)
    .execute(&mut *tx)
    .await
    .map_err(err("import: record an old upload"))?
    .rows_affected();
    if inserted == 1 {
        count_outcome(&mut tx, t, outcome).await?;
    }
    tx.commit().await.map_err(err("import: commit"))?;
    Ok(inserted == 1)
}

/// Sets the monitoring watermark to `stop` unless the daemon has one;
/// whether it was set, and the watermark in force.
pub async fn start_watermark(
    pool: &MySqlPool,
    t: &Tables,
    stop: u32,
) -> Result<(bool, u32), DbError> {
    let err = DbError::query;
    let set = sqlx::query(&format!(
        "INSERT IGNORE INTO {} (name, value) VALUES ('watermark', ?)",
        t.state
    ))
    .bind(stop.to_string())
    .execute(pool)
    .await
    .map_err(err("import: set the watermark"))?
    .rows_affected();
    let current: u32 = sqlx::query_scalar::<_, String>(&format!(
        "SELECT value FROM {} WHERE name = 'watermark'",
        t.state
    ))
    .fetch_one(pool)
    .await
    .map_err(err("import: read the watermark"))?
    .parse()
    .unwrap_or(0);
    Ok((set == 1, current))
}
