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

/// Downloads run side by side; one that found a parent made by another,
/// but not yet given its owner and mode, would copy the half-made one. So
/// directories are made one download at a time: it is rare and quick, and
/// a failure still belongs to the one file whose folder it is.
static MAKING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Creates `dir` and its missing ancestors, each like the nearest ancestor
/// that was already there (so like its own parent, which is like it too).
/// Returns the directories this call created, outermost first.
pub fn create_dirs(dir: &Path) -> io::Result<Vec<PathBuf>> {
    // A panic elsewhere while holding it leaves nothing half-done here
    // that the next caller would not check again.
    let _one_at_a_time = MAKING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut missing = Vec::new();
    let mut cur = dir;
    while std::fs::symlink_metadata(cur).is_err() {
        missing.push(cur.to_owned());
        match cur.parent() {
            Some(p) => cur = p,
            None => break,
        }
    }
    let Some(outermost) = missing.last() else {
        return Ok(Vec::new());
    };
    let like = Like::of(outermost.parent().unwrap_or(Path::new("/")))?;
    missing.reverse();
    let mut made = Vec::with_capacity(missing.len());
    for d in missing {
        match std::fs::create_dir(&d) {
            Ok(()) => {}
            // Another program made it meanwhile: it is that one's to set up.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
        like.apply(&d, true)?;
        made.push(d);
    }
    Ok(made)
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

    /// Downloads landing in one new folder at once count each directory
    /// once between them, and every one ends like the folder above.
    #[test]
    fn concurrent_downloads_count_each_directory_once() {
        for round in 0..40 {
            let top = tempfile::tempdir().unwrap();
            let base = top.path().join("g");
            std::fs::create_dir(&base).unwrap();
            std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o2750)).unwrap();
            let leaf = base.join("2024/05/17");
            let start = std::sync::Barrier::new(6);
            let counts: Vec<usize> = std::thread::scope(|s| {
                let runs: Vec<_> = (0..6)
                    .map(|_| {
                        s.spawn(|| {
                            start.wait();
                            create_dirs(&leaf).unwrap().len()
                        })
                    })
                    .collect();
                runs.into_iter().map(|r| r.join().unwrap()).collect()
            });
            assert_eq!(counts.iter().sum::<usize>(), 3, "round {round}: {counts:?}");
            let like = Like::of(&base).unwrap();
            for d in ["2024", "2024/05", "2024/05/17"] {
                assert_eq!(Like::of(&base.join(d)).unwrap(), like, "round {round}: {d}");
            }
        }
    }
}
