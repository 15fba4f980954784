//! The daemon's heartbeat: one row per running daemon with its host,
//! version, when it was last seen and what it last found of S3, so the
//! plugin can say whether a daemon is alive ("not seen for 12 min") and
//! whether its links can work, without reaching it.

use std::time::Duration;

use sqlx::MySqlPool;

use crate::db::{DbError, Tables};
use crate::s3::Target;

/// Rows of daemons gone this long are removed.
const FORGET_AFTER_DAYS: u32 = 7;

/// A bucket check answers within this, reachable or not: the requests the
/// plugin files wait behind it.
const S3_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// What the daemon last found of S3, as the plugin reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum S3View {
    Ok,
    /// S3 answered no: keys, policy or bucket are wrong.
    Refused(String),
    /// No answer, or S3 failing on its side.
    Unreachable(String),
}

impl S3View {
    /// Checks the bucket once. The detail is the status and S3's error
    /// code only, so the row can never hold a key.
    pub async fn check(target: &Target) -> Self {
        match tokio::time::timeout(S3_CHECK_TIMEOUT, target.check_bucket()).await {
            Ok(Ok(())) => Self::Ok,
            Ok(Err(e)) if e.is_refusal() => Self::Refused(e.summary()),
            Ok(Err(e)) => Self::Unreachable(e.summary()),
            Err(_) => {
                Self::Unreachable(format!("no answer within {}s", S3_CHECK_TIMEOUT.as_secs()))
            }
        }
    }

    /// The `s3_state` column's word; the plugin keeps the same list.
    fn state(&self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Refused(_) => "refused",
            Self::Unreachable(_) => "unreachable",
        }
    }

    fn detail(&self) -> Option<&str> {
        match self {
            Self::Ok => None,
            Self::Refused(d) | Self::Unreachable(d) => Some(d),
        }
    }
}

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

/// Records what this daemon last found of S3, with the settings the
/// plugin's tab shows (bucket, prefix, key layout, monitoring).
pub async fn record_s3(
    pool: &MySqlPool,
    t: &Tables,
    daemon: &str,
    view: &S3View,
    (target, monitoring): (&Target, bool),
) -> Result<(), DbError> {
    let (prefix, key_format) = target.layout();
    sqlx::query(&format!(
        "UPDATE {} SET s3_state = ?, s3_detail = ?, s3_checked_at = NOW(3), \
         bucket = ?, s3_prefix = ?, key_format = ?, monitoring = ? WHERE daemon = ?",
        t.heartbeat
    ))
    .bind(view.state())
    .bind(view.detail())
    .bind(&target.bucket)
    .bind(prefix)
    .bind(key_format)
    .bind(monitoring)
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
