//! A photo's file as Piwigo lays it out (a format beside its photo) and
//! what reading one can fail with: each error maps to its own queue
//! status, and filesystem calls run off the runtime so a hung mount holds
//! up one photo alone.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::digest::HashError;
use crate::status::{Failure, Retry, Status};

/// Where Piwigo keeps the format `ext` of the photo at `photo_path`:
/// `<dir>/pwg_format/<basename>.<ext>`.
pub fn format_path(photo_path: &str, ext: &str) -> String {
    let (dir, name) = photo_path.rsplit_once('/').unwrap_or((".", photo_path));
    let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
    format!("{dir}/pwg_format/{stem}.{ext}")
}

/// Why a photo's file cannot be read. Each maps to its own queue status.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error(
        "path `{path}` resolves outside the gallery root {root} (add its directory to piwigo.extra_roots if it is legitimate)"
    )]
    OutsideRoot { path: String, root: PathBuf },
    #[error("file {0} is missing")]
    Missing(PathBuf),
    #[error("file {path} is unreadable: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error(
        "file {path}: {reason} (a hung network mount or a FIFO in place of the photo; other photos go on); it is retried with backoff"
    )]
    Stalled { path: PathBuf, reason: String },
    #[error(
        "file {path} changed while it was sent ({reason}); it is retried once the writer is done"
    )]
    Changed { path: PathBuf, reason: String },
}

/// Runs a filesystem call about `path` on the blocking pool: on a hung
/// network mount `stat()` hangs as `open()` does, and must hold up one
/// photo alone. No answer within `limit` is [`FileError::Stalled`]; the
/// thread is left to the kernel.
pub async fn off_runtime<T: Send + 'static>(
    path: &Path,
    limit: Duration,
    call: impl FnOnce() -> T + Send + 'static,
) -> Result<T, FileError> {
    match tokio::time::timeout(limit, tokio::task::spawn_blocking(call)).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(e)) => Err(FileError::Unreadable {
            path: path.to_owned(),
            reason: format!("the filesystem call failed unexpectedly: {e}"),
        }),
        Err(_) => Err(FileError::Stalled {
            path: path.to_owned(),
            reason: format!("the filesystem did not answer within {}s", limit.as_secs()),
        }),
    }
}

/// A file that changed under us is retried after this pause: the writer
/// (a replace in Piwigo, a copy still running) is usually done by then.
pub const CHANGED_WAIT: Duration = Duration::from_secs(5);

impl FileError {
    /// Classifies a failed read of the photo at `path`.
    pub fn from_hash(path: &Path, e: HashError) -> Self {
        match e {
            HashError::Stalled(_) => Self::Stalled {
                path: path.to_owned(),
                reason: e.to_string(),
            },
            HashError::Io(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Self::Missing(path.to_owned())
            }
            HashError::Io(e) => Self::Unreadable {
                path: path.to_owned(),
                reason: e.to_string(),
            },
        }
    }

    pub fn failure(&self) -> Failure {
        let (status, retry) = match self {
            Self::OutsideRoot { .. } => (Status::FailedPathOutsideRoot, Retry::Backoff),
            Self::Missing(_) => (Status::FailedFileMissing, Retry::Backoff),
            Self::Unreadable { .. } => (Status::FailedFileUnreadable, Retry::Backoff),
            Self::Stalled { .. } => (Status::FailedFileStalled, Retry::Backoff),
            Self::Changed { .. } => (Status::FailedFileChanged, Retry::Soon(CHANGED_WAIT)),
        };
        Failure::new(status, self.to_string(), retry)
    }
}

/// What `stat()` says of a file: what the change check compares with the
/// record of its upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStat {
    pub size: u64,
    /// Nanoseconds since 1970; 0 where the filesystem keeps no mtime.
    pub mtime_ns: i64,
}

impl FileStat {
    pub fn of(meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Self {
            size: meta.len(),
            mtime_ns: meta
                .mtime()
                .saturating_mul(1_000_000_000)
                .saturating_add(meta.mtime_nsec()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_live_in_pwg_format() {
        assert_eq!(
            format_path("./upload/2024/01/02/20240102-abcd1234.jpg", "cr2"),
            "./upload/2024/01/02/pwg_format/20240102-abcd1234.cr2"
        );
        assert_eq!(
            format_path("./galleries/a/b.c.jpg", "tif"),
            "./galleries/a/pwg_format/b.c.tif"
        );
    }
}
