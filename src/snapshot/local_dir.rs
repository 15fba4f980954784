//! Piwigo's `local/` directory (the admin's `config/config.inc.php`,
//! language and CSS overrides) copied beside each dump, one object a
//! file, encrypted like the dump. `config/database.inc.php` stays out:
//! it holds this host's database credentials.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::SnapshotError;
use super::keys::SnapshotName;
use super::seal::Sealer;
use super::ship::Shipper;
use crate::s3::Target;

/// Relative to `local/`: never copied.
pub const EXCLUDED: &str = "config/database.inc.php";

#[derive(Debug, Clone, Copy, Default)]
pub struct Copied {
    pub files: u64,
    pub bytes: u64,
}

/// Every regular file under `dir`, by its path relative to it (`/`
/// separated); symbolic links are not followed out of the tree.
pub fn files(dir: &Path) -> Result<Vec<(String, PathBuf)>, SnapshotError> {
    let mut out = Vec::new();
    let mut todo = vec![(String::new(), dir.to_owned())];
    while let Some((rel, path)) = todo.pop() {
        let entries = match std::fs::read_dir(&path) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && rel.is_empty() => {
                return Ok(out);
            }
            Err(source) => return Err(SnapshotError::Local { path, source }),
        };
        for entry in entries {
            let entry = entry.map_err(|source| SnapshotError::Local {
                path: path.clone(),
                source,
            })?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                tracing::warn!(path = %entry.path().display(), "local/: a name that is not UTF-8 is not copied");
                continue;
            };
            let child_rel = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let kind = entry.file_type().map_err(|source| SnapshotError::Local {
                path: entry.path(),
                source,
            })?;
            if kind.is_dir() {
                todo.push((child_rel, entry.path()));
            } else if kind.is_file() && child_rel != EXCLUDED {
                out.push((child_rel, entry.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

pub async fn copy(
    target: &Target,
    root: &Path,
    name: &SnapshotName,
    prefix: &str,
    recipient: Option<&age::x25519::Recipient>,
    part_size: u64,
) -> Result<Copied, SnapshotError> {
    let mut copied = Copied::default();
    for (rel, path) in files(&root.join("local"))? {
        let key = name.local_key(prefix, &rel, recipient.is_some());
        let upload = target
            .start_stream(&key, "application/octet-stream", Default::default())
            .await?;
        let mut ship = Shipper::new(Sealer::new(recipient, false)?, upload, part_size);
        let mut file = std::fs::File::open(&path).map_err(|source| SnapshotError::Local {
            path: path.clone(),
            source,
        })?;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = file.read(&mut buf).map_err(|source| SnapshotError::Local {
                path: path.clone(),
                source,
            })?;
            if n == 0 {
                break;
            }
            ship.write_all(&buf[..n])?;
            ship.ship_full_parts().await?;
        }
        copied.bytes += ship.written();
        ship.finish().await?;
        copied.files += 1;
    }
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_settings_stay_out() {
        let dir = tempfile::tempdir().unwrap();
        let local = dir.path().join("local");
        std::fs::create_dir_all(local.join("config")).unwrap();
        std::fs::create_dir_all(local.join("language/fr_FR")).unwrap();
        std::fs::write(
            local.join("config/database.inc.php"),
            "<?php $conf['db_password']='x';",
        )
        .unwrap();
        std::fs::write(local.join("config/config.inc.php"), "<?php").unwrap();
        std::fs::write(local.join("language/fr_FR/local.lang.php"), "<?php").unwrap();
        let found: Vec<String> = files(&local).unwrap().into_iter().map(|f| f.0).collect();
        assert_eq!(
            found,
            ["config/config.inc.php", "language/fr_FR/local.lang.php"]
        );
        assert!(files(&dir.path().join("absent")).unwrap().is_empty());
    }
}
