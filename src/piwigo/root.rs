//! The gallery root: `images.path` resolved to a file under it (or under
//! an allowed extra root), symlinks followed only inside.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use super::files::{FileError, FileStat, off_runtime};

/// The gallery root and any extra allowed directories, canonicalised once.
#[derive(Debug, Clone)]
pub struct GalleryRoot {
    root: PathBuf,
    allowed: Vec<PathBuf>,
}

impl GalleryRoot {
    pub fn new(root: &Path, extra: &[PathBuf]) -> std::io::Result<Self> {
        let root = root.canonicalize()?;
        let mut allowed = vec![root.clone()];
        for dir in extra {
            // A missing extra root is not fatal: it may be mounted later.
            allowed.push(dir.canonicalize().unwrap_or_else(|_| dir.clone()));
        }
        Ok(Self { root, allowed })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Resolves `images.path` to a regular file inside an allowed directory,
    /// following symlinks only as far as they stay inside.
    pub fn resolve(&self, rel: &str) -> Result<PathBuf, FileError> {
        self.resolve_with_size(rel).map(|(path, _)| path)
    }

    /// [`resolve`](Self::resolve) and the file's size and mtime, asked
    /// [`off_runtime`].
    pub async fn locate(
        &self,
        rel: &str,
        limit: Duration,
    ) -> Result<(PathBuf, FileStat), FileError> {
        let root = self.clone();
        let owned = rel.to_owned();
        off_runtime(&self.root.join(rel), limit, move || {
            root.resolve_with_size(&owned)
        })
        .await?
    }

    fn resolve_with_size(&self, rel: &str) -> Result<(PathBuf, FileStat), FileError> {
        let outside = || self.outside(rel);
        let lexical = self.lexical(rel)?;
        if !self.is_allowed(&lexical) {
            return Err(outside());
        }
        let real = match lexical.canonicalize() {
            Ok(p) => p,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(FileError::Missing(lexical));
            }
            Err(e) => {
                return Err(FileError::Unreadable {
                    path: lexical,
                    reason: e.to_string(),
                });
            }
        };
        // Symlinks are followed, but only to places that are allowed.
        if !self.is_allowed(&real) {
            return Err(outside());
        }
        let meta = std::fs::metadata(&real).map_err(|e| FileError::Unreadable {
            path: real.clone(),
            reason: e.to_string(),
        })?;
        if !meta.is_file() {
            return Err(FileError::Unreadable {
                path: real,
                reason: "not a regular file".into(),
            });
        }
        Ok((real, FileStat::of(&meta)))
    }

    /// Where a file for `rel` may be written: the same confinement as
    /// `resolve`, for a file that need not exist yet. The nearest existing
    /// directory must itself be inside, so a symlinked folder cannot lead
    /// a write outside.
    pub fn destination(&self, rel: &str) -> Result<PathBuf, FileError> {
        let outside = || self.outside(rel);
        let lexical = self.lexical(rel)?;
        if !self.is_allowed(&lexical) || self.allowed.contains(&lexical) {
            return Err(outside());
        }
        let mut existing = lexical.parent();
        while let Some(dir) = existing {
            if let Ok(real) = dir.canonicalize() {
                if !self.is_allowed(&real) {
                    return Err(outside());
                }
                break;
            }
            existing = dir.parent();
        }
        Ok(lexical)
    }

    /// `rel` joined to the root without touching the disk: `..` is applied
    /// as written, so the result can be checked before anything is opened
    /// (it may only lead into an extra root).
    fn lexical(&self, rel: &str) -> Result<PathBuf, FileError> {
        let rel_path = Path::new(rel);
        if rel.contains('\0') || rel.is_empty() || rel_path.has_root() {
            return Err(self.outside(rel));
        }
        let mut lexical = self.root.clone();
        for c in rel_path.components() {
            match c {
                Component::Normal(p) => lexical.push(p),
                Component::ParentDir => {
                    lexical.pop();
                }
                Component::CurDir => {}
                Component::RootDir | Component::Prefix(_) => return Err(self.outside(rel)),
            }
        }
        Ok(lexical)
    }

    fn outside(&self, rel: &str) -> FileError {
        FileError::OutsideRoot {
            path: rel.escape_debug().to_string(),
            root: self.root.clone(),
        }
    }

    fn is_allowed(&self, path: &Path) -> bool {
        self.allowed.iter().any(|dir| path.starts_with(dir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gallery() -> (tempfile::TempDir, GalleryRoot) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("piwigo");
        std::fs::create_dir_all(root.join("upload/2024/01/02")).unwrap();
        std::fs::write(root.join("upload/2024/01/02/a.jpg"), b"jpeg").unwrap();
        std::fs::create_dir_all(dir.path().join("outside")).unwrap();
        std::fs::write(dir.path().join("outside/secret.txt"), b"x").unwrap();
        let g = GalleryRoot::new(&root, &[]).unwrap();
        (dir, g)
    }

    #[tokio::test]
    async fn locate_gives_path_size_and_mtime_off_the_runtime_with_resolves_rules() {
        let (_dir, g) = gallery();
        let limit = Duration::from_secs(10);
        let (path, stat) = g.locate("./upload/2024/01/02/a.jpg", limit).await.unwrap();
        assert_eq!(
            (path.clone(), stat.size),
            (g.root().join("upload/2024/01/02/a.jpg"), 4)
        );
        let then = std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(then)
            .unwrap();
        let (_, touched) = g.locate("./upload/2024/01/02/a.jpg", limit).await.unwrap();
        assert_eq!(touched.mtime_ns, 1_700_000_000_000_000_000);
        assert_ne!(touched, stat);
        assert!(matches!(
            g.locate("upload/gone.jpg", limit).await,
            Err(FileError::Missing(_))
        ));
        assert!(matches!(
            g.locate("../outside/secret.txt", limit).await,
            Err(FileError::OutsideRoot { .. })
        ));
        assert!(matches!(
            g.locate("upload/2024", limit).await,
            Err(FileError::Unreadable { .. })
        ));
    }

    #[test]
    fn resolves_files_inside() {
        let (_d, g) = gallery();
        let p = g.resolve("./upload/2024/01/02/a.jpg").unwrap();
        assert!(p.ends_with("upload/2024/01/02/a.jpg"));
    }

    #[test]
    fn refuses_escapes() {
        let (d, g) = gallery();
        for bad in [
            "../outside/secret.txt",
            "./upload/../../outside/secret.txt",
            "/etc/passwd",
            "./upload/a\0.jpg",
            "",
        ] {
            assert!(
                matches!(g.resolve(bad), Err(FileError::OutsideRoot { .. })),
                "{bad:?}"
            );
        }
        std::os::unix::fs::symlink(
            d.path().join("outside/secret.txt"),
            g.root().join("upload/link.jpg"),
        )
        .unwrap();
        assert!(matches!(
            g.resolve("./upload/link.jpg"),
            Err(FileError::OutsideRoot { .. })
        ));
    }

    #[test]
    fn destinations_stay_inside() {
        let (d, g) = gallery();
        let dest = g.destination("./upload/2030/01/01/new.jpg").unwrap();
        assert_eq!(dest, g.root().join("upload/2030/01/01/new.jpg"));
        for bad in ["../outside/x.jpg", "/etc/x", "./upload/..", ""] {
            assert!(g.destination(bad).is_err(), "{bad:?}");
        }
        std::os::unix::fs::symlink(d.path().join("outside"), g.root().join("upload/out")).unwrap();
        assert!(g.destination("./upload/out/sub/x.jpg").is_err());
    }

    #[test]
    fn extra_roots_allow_a_sibling_upload_dir() {
        let (d, g) = gallery();
        let g2 = GalleryRoot::new(g.root(), &[d.path().join("outside")]).unwrap();
        assert!(g2.resolve("../outside/secret.txt").is_ok());
    }

    #[test]
    fn missing_and_directories_are_told_apart() {
        let (_d, g) = gallery();
        assert!(matches!(
            g.resolve("./upload/none.jpg"),
            Err(FileError::Missing(_))
        ));
        assert!(matches!(
            g.resolve("./upload/2024"),
            Err(FileError::Unreadable { .. })
        ));
    }
}
