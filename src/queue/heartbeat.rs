//! The heartbeat table (`<prefix>s3upload_heartbeat`): one row per running
//! daemon with its host, version, when it was last seen and what it last
//! found of S3. Times come from the database's clock, which the plugin
//! compares with: the hosts' clocks do not matter.

use sqlx::MySqlPool;

use crate::db::{DbError, Tables};

/// Rows of daemons gone this long are removed.
const FORGET_AFTER_DAYS: u32 = 7;

/// Records that this daemon is alive now, with the uploads it allows at
/// once. Times come from the database's clock, which the plugin compares
/// with: the hosts' clocks do not matter.
pub async fn beat(
    pool: &MySqlPool,
    t: &Tables,
    daemon: &str,
    uploads_at_once: u16,
) -> Result<(), DbError> {
    let host = daemon.split(':').next().unwrap_or(daemon);
    sqlx::query(&format!(
        "INSERT INTO {} (daemon, host, version, started_at, last_seen, uploads_at_once) \
         VALUES (?, ?, ?, NOW(3), NOW(3), ?) \
         ON DUPLICATE KEY UPDATE last_seen = NOW(3), stopped_at = NULL, \
         uploads_at_once = VALUES(uploads_at_once)",
        t.heartbeat
    ))
    .bind(daemon)
    .bind(host)
    .bind(env!("CARGO_PKG_VERSION"))
    .bind(uploads_at_once)
    .execute(pool)
    .await
    .map_err(DbError::query("heartbeat: record"))?;
    Ok(())
}

/// What a daemon reports of S3 and of its settings, as the plugin's tab
/// shows them.
#[derive(Debug)]
pub struct S3Report<'a> {
    /// `ok`, `refused` or `unreachable`; the plugin keeps the same list.
    pub state: &'static str,
    /// The status and S3's error code, never more (no key can be in it).
    pub detail: Option<&'a str>,
    pub bucket: &'a str,
    pub prefix: &'a str,
    pub key_format: &'a str,
    pub monitoring: bool,
}

/// Records what this daemon last found of S3, with its settings.
pub async fn record_s3(
    pool: &MySqlPool,
    t: &Tables,
    daemon: &str,
    r: &S3Report<'_>,
) -> Result<(), DbError> {
    sqlx::query(&format!(
        "UPDATE {} SET s3_state = ?, s3_detail = ?, s3_checked_at = NOW(3), \
         bucket = ?, s3_prefix = ?, key_format = ?, monitoring = ? WHERE daemon = ?",
        t.heartbeat
    ))
    .bind(r.state)
    .bind(r.detail)
    .bind(r.bucket)
    .bind(r.prefix)
    .bind(r.key_format)
    .bind(r.monitoring)
    .bind(daemon)
    .execute(pool)
    .await
    .map_err(DbError::query("heartbeat: record the S3 check"))?;
    Ok(())
}

/// Records a graceful stop, so the plugin says "stopped" rather than
/// "not seen".
pub async fn stopped(pool: &MySqlPool, t: &Tables, daemon: &str) -> Result<(), DbError> {
    sqlx::query(&format!(
        "UPDATE {} SET stopped_at = NOW(3), last_seen = NOW(3) WHERE daemon = ?",
        t.heartbeat
    ))
    .bind(daemon)
    .execute(pool)
    .await
    .map_err(DbError::query("heartbeat: record the stop"))?;
    Ok(())
}

/// Removes rows of daemons not seen for a week (each start adds a row).
pub async fn forget_old(pool: &MySqlPool, t: &Tables) -> Result<u64, DbError> {
    let done = sqlx::query(&format!(
        "DELETE FROM {} WHERE last_seen < NOW(3) - INTERVAL {FORGET_AFTER_DAYS} DAY",
        t.heartbeat
    ))
    .execute(pool)
    .await
    .map_err(DbError::query("heartbeat: forget old daemons"))?;
    Ok(done.rows_affected())
}
