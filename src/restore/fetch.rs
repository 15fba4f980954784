//! One file back from the bucket: download to a temporary name beside the
//! destination, check size and md5, then move it into place without ever
//! replacing other bytes (unless asked to).

use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;

use super::owner;
use crate::md5::Md5;
use crate::piwigo::GalleryRoot;
use crate::s3::Target;
use crate::verify::disk::md5_file;

/// One object to bring back and where it goes.
#[derive(Debug, Clone)]
pub struct Job {
    pub image_id: Option<u32>,
    pub bucket: String,
    pub key: String,
    pub size: u64,
    /// What the bytes must hash to; `None` only for objects from before
    /// objects carried their md5, whose single-part ETag is not an md5
    /// either (then the size alone is checked).
    pub md5: Option<String>,
    /// Piwigo's `images.path` (or the format's path), relative to the root.
    pub rel: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Restored {
        bytes: u64,
        /// Directories created for it.
        dirs: u64,
        /// Why it could not take its directory's owner and mode (a
        /// restore not run as root cannot give files to another user).
        not_owned: Option<String>,
    },
    /// The file is there with the right bytes already.
    InPlace,
    /// `--missing`: the file is on disk, whatever its bytes.
    OnDisk,
    /// Another file is at the destination: left as it is.
    KeptDifferent,
    WouldRestore,
    /// The downloaded bytes are not the recorded ones: not written.
    Refused(String),
    NoObject,
    /// The path leads outside the tree, or is not a file.
    Skipped(String),
    Failed(String),
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Mode {
    pub overwrite: bool,
    pub dry_run: bool,
    pub missing_only: bool,
}

/// The temporary name beside `dest`. Fixed per destination, so a run that
/// was killed leaves at most one, which the next run reuses.
pub fn temp_name(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dest.with_file_name(format!(".{name}.s3restore"))
}

pub async fn one(target: &Target, root: &GalleryRoot, job: &Job, mode: Mode) -> Outcome {
    let dest = match root.destination(&job.rel) {
        Ok(d) => d,
        Err(e) => return Outcome::Skipped(e.to_string()),
    };
    match tokio::fs::symlink_metadata(&dest).await {
        Ok(_) if mode.missing_only => return Outcome::OnDisk,
        Ok(meta) if !meta.is_file() => {
            return Outcome::Skipped(format!("{} is not a regular file", dest.display()));
        }
        Ok(meta) => {
            if let Some(md5) = &job.md5
                && meta.len() == job.size
                && hash(&dest).await.as_deref() == Some(md5.as_str())
            {
                return Outcome::InPlace;
            }
            if !mode.overwrite {
                return Outcome::KeptDifferent;
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Outcome::Failed(format!("{}: {e}", dest.display())),
    }
    if mode.dry_run {
        return Outcome::WouldRestore;
    }
    let temp = temp_name(&dest);
    let result = download(target, job, &dest, &temp).await;
    if !matches!(result, Outcome::Restored { .. }) {
        // Nothing half-written stays behind; a failure to remove is moot.
        let _ = tokio::fs::remove_file(&temp).await;
        return result;
    }
    place(&temp, &dest, mode.overwrite).await.unwrap_or(result)
}

async fn hash(path: &Path) -> Option<String> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || md5_file(&path).ok().map(|(m, _)| m))
        .await
        .ok()
        .flatten()
}

/// Streams the object into `temp`, hashing as it goes.
async fn download(target: &Target, job: &Job, dest: &Path, temp: &Path) -> Outcome {
    let mut body = match target.open_object(&job.bucket, &job.key).await {
        Ok(Some(body)) => body,
        Ok(None) => return Outcome::NoObject,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let io = |e: std::io::Error| Outcome::Failed(format!("{}: {e}", temp.display()));
    let dir = dest.parent().unwrap_or(Path::new("/")).to_owned();
    let made = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || owner::create_dirs(&dir)).await
    };
    let dirs = match made {
        Ok(Ok(made)) => made.len() as u64,
        Ok(Err(e)) => return Outcome::Failed(format!("create {}: {e}", dir.display())),
        Err(e) => return Outcome::Failed(format!("create {}: {e}", dir.display())),
    };
    let mut file = match tokio::fs::File::create(temp).await {
        Ok(f) => f,
        Err(e) => return io(e),
    };
    let mut hasher = Md5::new();
    let mut len = 0u64;
    loop {
        match body.try_next().await {
            Ok(Some(chunk)) => {
                hasher.update(&chunk);
                len += chunk.len() as u64;
                if let Err(e) = file.write_all(&chunk).await {
                    return io(e);
                }
            }
            Ok(None) => break,
            Err(e) => return Outcome::Failed(format!("s3: get object {}: {e}", job.key)),
        }
    }
    if let Err(e) = file.sync_all().await {
        return io(e);
    }
    drop(file);
    if len != job.size {
        return Outcome::Refused(format!("{len} bytes downloaded, {} expected", job.size));
    }
    let md5 = crate::digest::hex(&hasher.finalize());
    if let Some(want) = &job.md5
        && *want != md5
    {
        return Outcome::Refused(format!("md5 {md5} downloaded, {want} expected"));
    }
    // Before it takes its name, so it never appears with the wrong owner.
    let owned = {
        let temp = temp.to_owned();
        tokio::task::spawn_blocking(move || owner::Like::of(&dir)?.apply(&temp, false)).await
    };
    let not_owned = match owned {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(e) => Some(e.to_string()),
    };
    Outcome::Restored {
        bytes: len,
        dirs,
        not_owned,
    }
}

/// Moves the checked file into place. Without `overwrite` a hard link
/// makes the name appear only if nothing is there (atomically); a file
/// that appeared meanwhile is kept.
async fn place(temp: &Path, dest: &Path, overwrite: bool) -> Option<Outcome> {
    let failed = |e: std::io::Error| Some(Outcome::Failed(format!("{}: {e}", dest.display())));
    if overwrite {
        return tokio::fs::rename(temp, dest).await.err().and_then(failed);
    }
    match tokio::fs::hard_link(temp, dest).await {
        Ok(()) => {
            let _ = tokio::fs::remove_file(temp).await;
            None
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            // Put there meanwhile (another restore of the same file): the
            // same bytes are this file in place.
            let (ours, theirs) = (hash(temp).await, hash(dest).await);
            let same = ours.is_some() && ours == theirs;
            let _ = tokio::fs::remove_file(temp).await;
            Some(if same {
                Outcome::InPlace
            } else {
                Outcome::KeptDifferent
            })
        }
        // File systems without hard links: check, then rename.
        Err(_) if tokio::fs::symlink_metadata(dest).await.is_err() => {
            tokio::fs::rename(temp, dest).await.err().and_then(failed)
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(temp).await;
            failed(e)
        }
    }
}
