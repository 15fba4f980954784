//! Secrets kept in files of their own (`*_file` keys), so the config file
//! itself can be world-readable: systemd credentials (`LoadCredential=`,
//! found in `$CREDENTIALS_DIRECTORY`) and Docker secrets (`/run/secrets`)
//! are files named by a bare name.

use std::path::{Path, PathBuf};

use crate::secret::Secret;

/// Where Docker and compose mount secrets.
pub const DOCKER_SECRETS: &str = "/run/secrets";

#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    #[error(
        "config: {field}: {path} does not exist (create it, or fix the path; a bare name is looked up in {searched})"
    )]
    Missing {
        field: &'static str,
        path: PathBuf,
        searched: String,
    },
    #[error(
        "config: {field}: cannot read {path}: {reason} (let the daemon's user read it, e.g. chgrp piwigo-s3upload and chmod 640)"
    )]
    Unreadable {
        field: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("config: {field}: {path} is empty; write the secret in it")]
    Empty { field: &'static str, path: PathBuf },
}

/// The directories a bare name is looked up in, in order.
fn search_dirs(credentials_dir: Option<&Path>) -> Vec<PathBuf> {
    credentials_dir
        .into_iter()
        .map(Path::to_owned)
        .chain([PathBuf::from(DOCKER_SECRETS)])
        .collect()
}

/// Which file a `*_file` value names: an absolute or `./` path as it is;
/// a bare name in `$CREDENTIALS_DIRECTORY`, then in /run/secrets.
pub fn locate(name: &Path, credentials_dir: Option<&Path>) -> PathBuf {
    if name.is_absolute() || name.components().count() > 1 {
        return name.to_owned();
    }
    let dirs = search_dirs(credentials_dir);
    dirs.iter()
        .map(|d| d.join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| dirs[0].join(name))
}

/// Reads one secret: the whole file, less trailing line breaks (editors
/// and `echo` add one).
pub fn read(
    field: &'static str,
    name: &Path,
    credentials_dir: Option<&Path>,
) -> Result<Secret, SecretFileError> {
    let path = locate(name, credentials_dir);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let searched = search_dirs(credentials_dir)
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(" and ");
            return Err(SecretFileError::Missing {
                field,
                path,
                searched,
            });
        }
        Err(e) => {
            return Err(SecretFileError::Unreadable {
                field,
                path,
                reason: e.to_string(),
            });
        }
    };
    let text = String::from_utf8(bytes).map_err(|_| SecretFileError::Unreadable {
        field,
        path: path.clone(),
        reason: "it is not UTF-8 text".into(),
    })?;
    let secret = text.trim_end_matches(['\n', '\r']);
    if secret.trim().is_empty() {
        return Err(SecretFileError::Empty { field, path });
    }
    Ok(Secret::new(secret))
}

/// `$CREDENTIALS_DIRECTORY`, set by systemd when the unit has
/// `LoadCredential=`.
pub fn credentials_dir_from_env() -> Option<PathBuf> {
    std::env::var_os("CREDENTIALS_DIRECTORY")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_newlines_are_trimmed_and_inner_text_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        std::fs::write(&p, "  sec ret\r\n\n").unwrap();
        assert_eq!(read("f", &p, None).unwrap().expose(), "  sec ret");
    }

    #[test]
    fn bare_names_are_found_in_the_credentials_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("db_pw"), "pw\n").unwrap();
        let s = read("f", Path::new("db_pw"), Some(dir.path())).unwrap();
        assert_eq!(s.expose(), "pw");
        assert_eq!(
            locate(Path::new("/abs/x"), Some(dir.path())),
            PathBuf::from("/abs/x")
        );
    }

    #[test]
    fn missing_empty_and_unreadable_files_say_so() {
        let dir = tempfile::tempdir().unwrap();
        let e = read(
            "s3.secret_access_key_file",
            Path::new("nope"),
            Some(dir.path()),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("s3.secret_access_key_file"), "{e}");
        assert!(e.contains("does not exist"), "{e}");
        assert!(e.contains("/run/secrets"), "{e}");

        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let e = read("f", &empty, None).unwrap_err().to_string();
        assert!(e.contains("is empty"), "{e}");

        // A directory stands in for a file nobody can read (tests run as
        // root, for whom permissions do not apply).
        let e = read("f", dir.path(), None).unwrap_err().to_string();
        assert!(e.contains("cannot read"), "{e}");
    }
}
