//! The disk audit (`--disk`): does each recorded photo's file still hold
//! the bytes that were uploaded?

use std::io::Read;
use std::path::Path;

use futures_util::StreamExt;
use serde::Serialize;

use crate::md5::Md5;
use crate::piwigo::{FileError, GalleryRoot};
use crate::queue::records::Recorded;

/// Files hashed at once: the disk, not the CPU, is the limit.
const PARALLEL: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileProblem {
    Missing,
    /// Other bytes than were uploaded: edited or replaced after upload.
    Changed,
    Unreadable,
}

impl FileProblem {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Changed => "changed",
            Self::Unreadable => "unreadable",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DiskFinding {
    pub image_id: u32,
    /// A format's extension; `None` for the photo itself.
    pub format: Option<String>,
    pub path: String,
    pub problem: FileProblem,
    pub detail: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DiskAudit {
    pub checked: u64,
    pub intact: u64,
    /// Records whose photo was deleted from Piwigo: nothing to compare.
    pub deleted_from_piwigo: u64,
    pub problems: Vec<DiskFinding>,
}

/// The md5 (hex) and length of a file, read in 1 MiB blocks.
pub fn md5_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        len += n as u64;
    }
    Ok((crate::digest::hex(&hasher.finalize()), len))
}

pub async fn audit(root: &GalleryRoot, records: &[Recorded]) -> DiskAudit {
    let mut audit = DiskAudit::default();
    let checks = records.iter().filter_map(|rec| {
        let path = rec.path.clone()?;
        let root = root.clone();
        let (id, size, md5) = (rec.image_id, rec.size, rec.md5.clone());
        let format = rec.format.clone();
        Some(async move {
            let rel = path.clone();
            let found = tokio::task::spawn_blocking(move || check_one(&root, &rel, size, &md5))
                .await
                .unwrap_or_else(|e| Err((FileProblem::Unreadable, e.to_string())));
            (id, format, path, found)
        })
    });
    audit.deleted_from_piwigo = records.iter().filter(|r| r.path.is_none()).count() as u64;
    let mut results = futures_util::stream::iter(checks).buffer_unordered(PARALLEL);
    while let Some((image_id, format, path, found)) = results.next().await {
        audit.checked += 1;
        match found {
            Ok(()) => audit.intact += 1,
            Err((problem, detail)) => audit.problems.push(DiskFinding {
                image_id,
                format,
                path,
                problem,
                detail,
            }),
        }
    }
    audit.problems.sort_by_key(|p| p.image_id);
    audit
}

fn check_one(
    root: &GalleryRoot,
    rel: &str,
    size: u64,
    md5: &str,
) -> Result<(), (FileProblem, String)> {
    let path = root.resolve(rel).map_err(|e| match e {
        FileError::Missing(_) => (FileProblem::Missing, e.to_string()),
        other => (FileProblem::Unreadable, other.to_string()),
    })?;
    let len = std::fs::metadata(&path)
        .map_err(|e| (FileProblem::Unreadable, e.to_string()))?
        .len();
    if len != size {
        return Err((
            FileProblem::Changed,
            format!("{len} bytes on disk, {size} uploaded"),
        ));
    }
    let (found, _) = md5_file(&path).map_err(|e| (FileProblem::Unreadable, e.to_string()))?;
    if found != md5 {
        return Err((
            FileProblem::Changed,
            format!("md5 {found} on disk, {md5} uploaded"),
        ));
    }
    Ok(())
}
