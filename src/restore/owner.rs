//! Restored files and directories take the owner, group and mode of the
//! directory they land in: a restore run as root must not leave root-owned
//! folders that the web server (Piwigo's uploader) can no longer write to.

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt, chown};
use std::path::{Path, PathBuf};

/// The owner, group and mode a new entry copies from its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Like {
    pub uid: u32,
    pub gid: u32,
    /// The parent directory's permission bits (setgid included).
    pub mode: u32,
}

impl Like {
    pub fn of(dir: &Path) -> io::Result<Self> {
        let meta = std::fs::metadata(dir)?;
        Ok(Self {
            uid: meta.uid(),
            gid: meta.gid(),
            mode: meta.mode() & 0o7777,
        })
    }

    /// Gives `path` this owner and group, and this mode: a directory keeps
    /// every bit, a file loses the execute and special bits.
    pub fn apply(&self, path: &Path, is_dir: bool) -> io::Result<()> {
        let meta = std::fs::symlink_metadata(path)?;
        if (meta.uid(), meta.gid()) != (self.uid, self.gid) {
            chown(path, Some(self.uid), Some(self.gid))?;
        }
        let mode = if is_dir { self.mode } else { self.mode & 0o666 };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
    }
}

/// Creates `dir` and its missing ancestors, each like its own parent.
/// Returns the directories created, outermost first.
pub fn create_dirs(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut missing = Vec::new();
    let mut cur = dir;
    while std::fs::symlink_metadata(cur).is_err() {
        missing.push(cur.to_owned());
        match cur.parent() {
            Some(p) => cur = p,
            None => break,
        }
    }
    missing.reverse();
    for d in &missing {
        match std::fs::create_dir(d) {
            Ok(()) => {}
            // Another download made it meanwhile: it is set up by that one.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
        let parent = d.parent().unwrap_or(Path::new("/"));
        Like::of(parent)?.apply(d, true)?;
    }
    Ok(missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_directories_and_files_copy_their_parent() {
        let top = tempfile::tempdir().unwrap();
        let base = top.path().join("g");
        std::fs::create_dir(&base).unwrap();
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o2770)).unwrap();
        let made = create_dirs(&base.join("a/b")).unwrap();
        assert_eq!(made, vec![base.join("a"), base.join("a/b")]);
        let like = Like::of(&base).unwrap();
        assert_eq!(Like::of(&base.join("a/b")).unwrap(), like);
        let file = base.join("a/b/f");
        std::fs::write(&file, b"x").unwrap();
        like.apply(&file, false).unwrap();
        let mode = std::fs::metadata(&file).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o660);
        assert!(create_dirs(&base.join("a/b")).unwrap().is_empty());
    }
}
