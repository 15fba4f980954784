//! The snapshots in the bucket: each one's manifest (written last, so a
//! snapshot without one is incomplete) and the listing `snapshot --list`
//! prints. The last result is kept by `queue::last_snapshot`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::SnapshotError;
use super::dump::{Consistency, TableCount};
use super::keys::{self, Part, SnapshotName};
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
