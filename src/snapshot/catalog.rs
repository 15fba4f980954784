//! The snapshots in the bucket: each one's manifest (written last, so a
//! snapshot without one is incomplete), the listing `snapshot --list`
//! prints, and the last result the daemon shows in `status` and
//! `/metrics`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sqlx::MySqlPool;

use super::SnapshotError;
use super::dump::{Consistency, TableCount};
use super::keys::{self, Part, SnapshotName};
use crate::db::{DbError, Tables};
use crate::s3::Target;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub name: String,
    /// Unix time the snapshot started.
    pub taken_at: i64,
    pub piwigo_version: String,
    pub encrypted: bool,
    pub consistency: Consistency,
    pub tables: Vec<TableCount>,
    pub rows: u64,
    pub database_key: String,
    /// The object's size (compressed, and encrypted when it is).
    pub database_bytes: u64,
    /// The SQL's size before compression.
    pub sql_bytes: u64,
    pub local_files: u64,
    pub local_bytes: u64,
    pub seconds: f64,
}

impl Manifest {
    pub async fn store(&self, target: &Target, prefix: &str) -> Result<(), SnapshotError> {
        let name = SnapshotName::parse(&self.name)
            .ok_or_else(|| SnapshotError::Manifest(self.name.clone(), "bad name".into()))?;
        let body = serde_json::to_vec_pretty(self)
            .map_err(|e| SnapshotError::Manifest(self.name.clone(), e.to_string()))?;
        target
            .put_bytes(&name.manifest_key(prefix), body, "application/json")
            .await?;
        Ok(())
    }
}

/// One snapshot as the bucket holds it.
#[derive(Debug, Clone)]
pub struct Listed {
    pub name: SnapshotName,
    /// Every object of the snapshot.
    pub keys: Vec<String>,
    pub bytes: u64,
    pub database_key: Option<String>,
    /// `None` for an incomplete snapshot (or an unreadable manifest).
    pub manifest: Option<Manifest>,
}

impl Listed {
    pub fn complete(&self) -> bool {
        self.manifest.is_some() && self.database_key.is_some()
    }
}

/// Every snapshot under the prefix, oldest first, with its manifest.
pub async fn list(target: &Target, prefix: &str) -> Result<Vec<Listed>, SnapshotError> {
    let objects = target.list_under(&keys::base(prefix)).await?;
    let mut by_name: BTreeMap<String, Listed> = BTreeMap::new();
    let mut manifests = Vec::new();
    for obj in objects {
        let Some((name, part)) = keys::parse_key(prefix, &obj.key) else {
            continue;
        };
        let entry = by_name.entry(name.as_string()).or_insert_with(|| Listed {
            name: name.clone(),
            keys: Vec::new(),
            bytes: 0,
            database_key: None,
            manifest: None,
        });
        entry.bytes += obj.size;
        match part {
            Part::Database { .. } => entry.database_key = Some(obj.key.clone()),
            Part::Manifest => manifests.push((name.as_string(), obj.key.clone())),
            Part::Local { .. } => {}
        }
        entry.keys.push(obj.key);
    }
    for (name, key) in manifests {
        let bytes = target.get_bytes(&key).await?;
        match serde_json::from_slice::<Manifest>(&bytes) {
            Ok(m) => {
                if let Some(entry) = by_name.get_mut(&name) {
                    entry.manifest = Some(m);
                }
            }
            Err(e) => {
                tracing::warn!(s3.key = %key, error = %e, "snapshot manifest unreadable; the snapshot counts as incomplete")
            }
        }
    }
    // The stamp sorts by time.
    Ok(by_name.into_values().collect())
}

/// The text `snapshot --list` prints.
pub fn to_text(listed: &[Listed]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    if listed.is_empty() {
        out.push_str("no snapshot in the bucket yet; `piwigo-s3upload snapshot` takes one\n");
        return out;
    }
    let _ = writeln!(
        out,
        "{:<40} {:<20} {:>12} {:>7} {:>10} {:<9} NOTE",
        "NAME", "TIME (UTC)", "SIZE", "TABLES", "ROWS", "PIWIGO"
    );
    for s in listed {
        let time = s.name.taken_at.format("%Y-%m-%d %H:%M:%S").to_string();
        let size = bytesize::ByteSize::b(s.bytes).to_string();
        match &s.manifest {
            Some(m) => {
                let _ = writeln!(
                    out,
                    "{:<40} {:<20} {:>12} {:>7} {:>10} {:<9} {}",
                    s.name.as_string(),
                    time,
                    size,
                    m.tables.len(),
                    m.rows,
                    m.piwigo_version,
                    if m.encrypted { "encrypted (age)" } else { "" }
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "{:<40} {:<20} {:>12} {:>7} {:>10} {:<9} incomplete: not usable",
                    s.name.as_string(),
                    time,
                    size,
                    "-",
                    "-",
                    s.name.piwigo_version
                );
            }
        }
    }
    out
}

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
    pub async fn store(&self, pool: &MySqlPool, t: &Tables) -> Result<(), DbError> {
        let values = [
            ("snapshot_at", self.at.to_string()),
            ("snapshot_ok", i64::from(self.ok).to_string()),
            ("snapshot_name", self.name.clone()),
            ("snapshot_bytes", self.bytes.to_string()),
            ("snapshot_last_ok_at", self.last_ok_at.to_string()),
            ("snapshot_error", self.error.chars().take(250).collect()),
        ];
        crate::queue::state::set_many(pool, t, &values).await
    }

    /// `None` until a snapshot was attempted against this database (also
    /// before the daemon's first start, when its tables do not exist yet:
    /// `init` and `check` ask this of a fresh install).
    pub async fn load(pool: &MySqlPool, t: &Tables) -> Result<Option<Self>, DbError> {
        let rows = match crate::queue::state::with_prefix(pool, t, PREFIX).await {
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
