//! Where snapshots live in the bucket. Every snapshot object is under
//! `<s3.prefix>s3upload-snapshots/`, one of the folders `ObjectKey`
//! reserves (`s3::keys::RESERVED_DIRS`): it refuses to make a photo key
//! inside one in any layout, so no photo can ever land on a snapshot's
//! key, nor a snapshot on a photo's. (AWS advises against a backslash in
//! keys, which is why the folder is not marked by one.)

use chrono::{DateTime, NaiveDateTime, Utc};

/// The database dump's name inside a snapshot.
const DATABASE: &str = "database.sql.gz";
/// Piwigo's `local/` directory inside a snapshot.
const LOCAL: &str = "local/";
/// Written last, once the dump is verified in the bucket: a snapshot
/// without it is incomplete.
const MANIFEST: &str = "manifest.json";
/// Added to the name of every encrypted object.
pub const AGE_SUFFIX: &str = ".age";
const STAMP: &str = "%Y%m%dT%H%M%SZ";

/// One snapshot's place: `<base><stamp>-piwigo-<version>/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotName {
    pub taken_at: DateTime<Utc>,
    pub piwigo_version: String,
}

/// The folder every snapshot of this bucket prefix is in.
pub fn base(prefix: &str) -> String {
    format!("{prefix}{}/", crate::s3::keys::SNAPSHOTS_DIR)
}

impl SnapshotName {
    pub fn new(taken_at: DateTime<Utc>, piwigo_version: &str) -> Self {
        // The version goes into a key: only what a version holds.
        let clean: String = piwigo_version
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
            .take(32)
            .collect();
        Self {
            taken_at,
            piwigo_version: if clean.is_empty() {
                "unknown".into()
            } else {
                clean
            },
        }
    }

    /// `20261204T184500Z-piwigo-16.4.0`, the name `--snapshot` takes.
    pub fn as_string(&self) -> String {
        format!(
            "{}-piwigo-{}",
            self.taken_at.format(STAMP),
            self.piwigo_version
        )
    }

    pub fn parse(name: &str) -> Option<Self> {
        let (stamp, version) = name.split_once("-piwigo-")?;
        let at = NaiveDateTime::parse_from_str(stamp, STAMP).ok()?.and_utc();
        let parsed = Self::new(at, version);
        (parsed.as_string() == name).then_some(parsed)
    }

    pub fn folder(&self, prefix: &str) -> String {
        format!("{}{}/", base(prefix), self.as_string())
    }

    pub fn database_key(&self, prefix: &str, encrypted: bool) -> String {
        let suffix = if encrypted { AGE_SUFFIX } else { "" };
        format!("{}{DATABASE}{suffix}", self.folder(prefix))
    }

    pub fn manifest_key(&self, prefix: &str) -> String {
        format!("{}{MANIFEST}", self.folder(prefix))
    }

    pub fn local_key(&self, prefix: &str, rel: &str, encrypted: bool) -> String {
        let suffix = if encrypted { AGE_SUFFIX } else { "" };
        format!("{}{LOCAL}{rel}{suffix}", self.folder(prefix))
    }
}

/// What a key under [`base`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Database {
        encrypted: bool,
    },
    Manifest,
    /// A file of `local/`, by its path inside it.
    Local {
        rel: String,
        encrypted: bool,
    },
}

/// Splits a listed key into its snapshot and part; `None` for anything
/// that is not a snapshot object.
pub fn parse_key(prefix: &str, key: &str) -> Option<(SnapshotName, Part)> {
    let rest = key.strip_prefix(&base(prefix))?;
    let (name, inside) = rest.split_once('/')?;
    let name = SnapshotName::parse(name)?;
    let (inside, encrypted) = match inside.strip_suffix(AGE_SUFFIX) {
        Some(plain) => (plain, true),
        None => (inside, false),
    };
    if inside == MANIFEST {
        return Some((name, Part::Manifest));
    }
    if inside == DATABASE {
        return Some((name, Part::Database { encrypted }));
    }
    let rel = inside.strip_prefix(LOCAL)?;
    (!rel.is_empty()).then(|| {
        (
            name,
            Part::Local {
                rel: rel.to_owned(),
                encrypted,
            },
        )
    })
}

/// Whether `key` is a snapshot's, for the listings of photo objects.
pub fn is_snapshot_key(prefix: &str, key: &str) -> bool {
    key.starts_with(&base(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3::keys::{KeyFormat, ObjectKey};

    const FORMATS: [KeyFormat; 6] = [
        KeyFormat::None,
        KeyFormat::File,
        KeyFormat::FileUnique,
        KeyFormat::Path,
        KeyFormat::PathAndFile,
        KeyFormat::PathAndFileUnique,
    ];

    /// The proof that no photo key is a snapshot key: no photo key lies
    /// under the snapshot folder, whatever `images.path` and `images.file`
    /// hold, in any of the six layouts, and every snapshot key does.
    #[test]
    fn no_photo_key_of_any_layout_is_under_the_snapshot_folder() {
        let paths: Vec<String> = vec![
            "./upload/2024/01/02/20240102030405-abcdef12.jpg".into(),
            "./galleries/s3upload-snapshots/x.jpg".into(),
            "./s3upload-snapshots/20261204T184500Z-piwigo-16.4.0/database.sql.gz".into(),
            "s3upload-snapshots\\a\\b.jpg".into(),
            "./galleries/s3upload-snapshots\\a/b.jpg".into(),
            "./upload/s3upload-snapshots/b.jpg".into(),
            "./galleries/a\\/b/c.jpg".into(),
            "..\\..\\x.jpg".into(),
        ];
        let files: Vec<String> = vec![
            "s3upload-snapshots".into(),
            "s3upload-snapshots/x.jpg".into(),
            "a\\b.jpg".into(),
            "\\".into(),
            "database.sql.gz".into(),
            "x.jpg".into(),
        ];
        // And a few thousand names made of the characters that matter.
        let alphabet = ['a', '\\', '/', '.', '-', 'p', '&', ';', ' ', '2'];
        let folder = crate::s3::keys::SNAPSHOTS_DIR;
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |len: usize| -> String {
            (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    alphabet[(seed % alphabet.len() as u64) as usize]
                })
                .collect()
        };
        // Every fixed path with every fixed name, then generated pairs.
        let mut pairs: Vec<(String, String)> = paths
            .iter()
            .flat_map(|p| files.iter().map(move |f| (p.clone(), f.clone())))
            .collect();
        for n in 0..3000 {
            let file = next(n % 13 + 1);
            pairs.push((format!("./upload/{}.jpg", next(n % 17 + 1)), file.clone()));
            pairs.push((
                format!("./galleries/{}/x.jpg", next(n % 9 + 1)),
                file.clone(),
            ));
            pairs.push((format!("./galleries/{folder}{}/x.jpg", next(n % 5)), file));
        }
        for prefix in ["", "photos/"] {
            let snapshots = base(prefix);
            for (path, file) in &pairs {
                for format in FORMATS {
                    let Ok(k) = ObjectKey::for_image(prefix, format, path, file) else {
                        continue;
                    };
                    assert!(
                        !k.key.starts_with(&snapshots),
                        "{format:?} {path:?} {file:?}: {}",
                        k.key
                    );
                    assert!(!is_snapshot_key(prefix, &k.key), "{}", k.key);
                }
            }
            let name = SnapshotName::new(Utc::now(), "16.4.0");
            for key in [
                name.database_key(prefix, false),
                name.database_key(prefix, true),
                name.local_key(prefix, "config/config.inc.php", true),
            ] {
                assert!(key.starts_with(&snapshots));
            }
        }
    }

    #[test]
    fn names_and_keys_round_trip() {
        let at = NaiveDateTime::parse_from_str("20261204T184500Z", STAMP)
            .unwrap()
            .and_utc();
        let name = SnapshotName::new(at, "16.4.0");
        assert_eq!(name.as_string(), "20261204T184500Z-piwigo-16.4.0");
        assert_eq!(SnapshotName::parse(&name.as_string()), Some(name.clone()));
        assert_eq!(
            name.database_key("p/", true),
            "p/s3upload-snapshots/20261204T184500Z-piwigo-16.4.0/database.sql.gz.age"
        );
        assert_eq!(
            parse_key("p/", &name.database_key("p/", true)),
            Some((name.clone(), Part::Database { encrypted: true }))
        );
        assert_eq!(
            parse_key("p/", &name.local_key("p/", "language/fr_FR/x.php", false)),
            Some((
                name.clone(),
                Part::Local {
                    rel: "language/fr_FR/x.php".into(),
                    encrypted: false
                }
            ))
        );
        assert_eq!(parse_key("p/", "p/20240101-x.jpg"), None);
        assert_eq!(SnapshotName::new(at, "16/../x").piwigo_version, "16..x");
        assert_eq!(SnapshotName::new(at, "").piwigo_version, "unknown");
    }
}
