//! The daemon's heartbeat: one row per running daemon with its host,
//! version, when it was last seen and what it last found of S3, so the
//! plugin can say whether a daemon is alive ("not seen for 12 min") and
//! whether its links can work, without reaching it. The table's SQL is
//! `queue::heartbeat`'s; the bucket check is here.

use std::time::Duration;

use sqlx::MySqlPool;

use crate::db::{DbError, Tables};
use crate::queue::heartbeat::{self as table, S3Report};
use crate::s3::Target;

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
    let report = S3Report {
        state: view.state(),
        detail: view.detail(),
        bucket: &target.bucket,
        prefix,
        key_format,
        monitoring,
    };
    table::record_s3(pool, t, daemon, &report).await
}
