//! The daemon's heartbeat: one row per running daemon with its host,
//! version and when it was last seen, so the plugin can say whether a
//! daemon is alive ("not seen for 12 min") without reaching it.

use sqlx::MySqlPool;

use crate::db::{DbError, Tables};

/// Rows of daemons gone this long are removed.
const FORGET_AFTER_DAYS: u32 = 7;

/// Records that this daemon is alive now. Times come from the database's
/// clock, which the plugin compares with: the hosts' clocks do not matter.
pub async fn beat(pool: &MySqlPool, t: &Tables, daemon: &str) -> Result<(), DbError> {
    let host = daemon.split(':').next().unwrap_or(daemon);
    sqlx::query(&format!(
        "INSERT INTO {} (daemon, host, version, started_at, last_seen) \
         VALUES (?, ?, ?, NOW(3), NOW(3)) \
         ON DUPLICATE KEY UPDATE last_seen = NOW(3), stopped_at = NULL",
        t.heartbeat
    ))
    .bind(daemon)
    .bind(host)
    .bind(env!("CARGO_PKG_VERSION"))
    .execute(pool)
    .await
    .map_err(DbError::query("heartbeat: record"))?;
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
