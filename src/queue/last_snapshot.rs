//! The last snapshot's result (when, whether it worked, its name and
//! size, the last good one), kept in the state table for `status`,
//! `/metrics`, `check` and the next snapshot.

use serde::Serialize;
use sqlx::MySqlPool;

use crate::db::{DbError, Tables};

/// The last snapshot the daemon (or the command) took, in our state table.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LastSnapshot {
    /// Unix time it ended.
    pub at: i64,
    pub ok: bool,
    pub name: String,
    pub bytes: u64,
    /// Unix time of the last one that succeeded; 0 for none.
    pub last_ok_at: i64,
    /// Why the last one failed (already scrubbed of secrets).
    pub error: String,
}

const PREFIX: &str = "snapshot_";

impl LastSnapshot {
    /// A snapshot named `name` of `bytes` that ended at `at`.
    pub fn succeeded(at: i64, name: String, bytes: u64) -> Self {
        Self {
            at,
            ok: true,
            name,
            bytes,
            last_ok_at: at,
            error: String::new(),
        }
    }

    /// A snapshot that failed at `at` with `error` (already scrubbed);
    /// the last good one is carried over from `previous`.
    pub fn failed(at: i64, error: String, previous: Option<&Self>) -> Self {
        Self {
            at,
            ok: false,
            error,
            last_ok_at: previous.map_or(0, |p| p.last_ok_at),
            ..Self::default()
        }
    }

    pub async fn store(&self, pool: &MySqlPool, t: &Tables) -> Result<(), DbError> {
        let values = [
            ("snapshot_at", self.at.to_string()),
            ("snapshot_ok", i64::from(self.ok).to_string()),
            ("snapshot_name", self.name.clone()),
            ("snapshot_bytes", self.bytes.to_string()),
            ("snapshot_last_ok_at", self.last_ok_at.to_string()),
            ("snapshot_error", self.error.chars().take(250).collect()),
        ];
        super::state::set_many(pool, t, &values).await
    }

    /// `None` until a snapshot was attempted against this database (also
    /// before the daemon's first start, when its tables do not exist yet:
    /// `init` and `check` ask this of a fresh install).
    pub async fn load(pool: &MySqlPool, t: &Tables) -> Result<Option<Self>, DbError> {
        let rows = match super::state::with_prefix(pool, t, PREFIX).await {
            Ok(rows) => rows,
            Err(DbError::Query { source, .. }) if crate::db::is_missing_table(&source) => {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let get = |name: &str| {
            rows.iter()
                .find(|(n, _)| n.strip_prefix(PREFIX) == Some(name))
                .map(|(_, v)| v.clone())
        };
        let num = |name: &str| get(name).and_then(|v| v.parse::<i64>().ok());
        let Some(at) = num("at") else {
            return Ok(None);
        };
        Ok(Some(Self {
            at,
            ok: num("ok") == Some(1),
            name: get("name").unwrap_or_default(),
            bytes: num("bytes").unwrap_or(0).max(0) as u64,
            last_ok_at: num("last_ok_at").unwrap_or(0),
            error: get("error").unwrap_or_default(),
        }))
    }

    /// The line `status` shows.
    pub fn to_text(&self) -> String {
        let when = |t: i64| {
            chrono::DateTime::from_timestamp(t, 0)
                .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_else(|| "never".into())
        };
        if self.ok {
            format!(
                "Last snapshot: {} at {}, {}",
                self.name,
                when(self.at),
                bytesize::ByteSize::b(self.bytes)
            )
        } else {
            format!(
                "WARNING: the last snapshot failed at {}: {} (last good one: {})",
                when(self.at),
                self.error,
                if self.last_ok_at == 0 {
                    "none".to_owned()
                } else {
                    when(self.last_ok_at)
                }
            )
        }
    }

    /// The figures `/metrics` shows, by name.
    pub fn figures(&self) -> [(&'static str, i64); 4] {
        [
            ("finished_at", self.at),
            ("ok", i64::from(self.ok)),
            ("bytes", i64::try_from(self.bytes).unwrap_or(i64::MAX)),
            ("last_ok_at", self.last_ok_at),
        ]
    }

    /// A warning when the last snapshot failed or none succeeded for
    /// longer than two intervals; `None` when all is well.
    pub fn warning(&self, interval: std::time::Duration, now: i64) -> Option<String> {
        if !self.ok {
            return Some(format!("the last snapshot failed: {}", self.error));
        }
        let overdue = i64::try_from(interval.as_secs().saturating_mul(2)).unwrap_or(i64::MAX);
        (now - self.last_ok_at > overdue).then(|| {
            format!(
                "no snapshot succeeded for {}; see the daemon's log",
                humantime::format_duration(std::time::Duration::from_secs(
                    (now - self.last_ok_at).max(0) as u64
                ))
            )
        })
    }
}
