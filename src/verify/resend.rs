//! `verify --resend`: objects the audit found missing or damaged are sent
//! again from the gallery, when a file there still holds the recorded
//! bytes. A missing object goes back to its own key; a damaged one is
//! never overwritten, so its good copy goes to a key of its own in
//! `s3upload-resent/` (see [`ObjectKey::resent`]), and the records follow
//! it. What cannot be mended (file gone, changed, photo deleted) is listed.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use sqlx::MySqlPool;

use super::bucket::{ObjectProblem, Problem};
use crate::db::{DbError, Tables};
use crate::digest::{FileDigest, digest};
use crate::piwigo::GalleryRoot;
use crate::queue::records::{self, Recorded};
use crate::s3::Target;
use crate::s3::keys::ObjectKey;
use crate::s3::upload::PutError;

/// How long a file may give no byte while it is hashed.
const READ_STALL: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Serialize)]
pub struct Resent {
    /// The photos whose records now point at the new object (a photo and
    /// its md5 duplicates, or one format).
    pub image_ids: Vec<u32>,
    pub format: Option<String>,
    pub old_key: String,
    pub new_key: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct NotResent {
    pub image_ids: Vec<u32>,
    pub format: Option<String>,
    pub key: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ResendReport {
    pub resent: Vec<Resent>,
    pub cannot: Vec<NotResent>,
}

/// Sends again every object in `problems`. `prefix` is `s3.prefix`,
/// `stamp` names this repair's folder.
pub async fn run(
    pool: &MySqlPool,
    t: &Tables,
    target: &Target,
    root: &GalleryRoot,
    prefix: &str,
    problems: &[ObjectProblem],
    recs: &[Recorded],
) -> Result<ResendReport, DbError> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    // One object per (bucket, key): duplicates share their original's.
    let mut objects: BTreeMap<(&str, &str), (Problem, Vec<&Recorded>)> = BTreeMap::new();
    for p in problems {
        let matching = recs.iter().filter(|r| {
            r.image_id == p.image_id
                && r.format == p.format
                && r.key == p.key
                && r.bucket == p.bucket
        });
        let entry = objects
            .entry((p.bucket.as_str(), p.key.as_str()))
            .or_insert((p.problem, Vec::new()));
        entry.1.extend(matching);
    }
    let mut report = ResendReport::default();
    for ((bucket, key), (problem, group)) in objects {
        let Some(first) = group.first() else { continue };
        let image_ids: Vec<u32> = group.iter().map(|r| r.image_id).collect();
        let not = |reason: String| NotResent {
            image_ids: image_ids.clone(),
            format: first.format.clone(),
            key: key.to_owned(),
            reason,
        };
        let (rec, path, digest) = match good_file(target, root, &group).await {
            Ok(found) => found,
            Err(reason) => {
                report.cannot.push(not(reason));
                continue;
            }
        };
        // Nothing at the key: the copy may take it again. Anything there
        // stays: the copy goes beside it.
        let new_key = if problem == Problem::Missing && bucket == target.bucket {
            ObjectKey {
                key: key.to_owned(),
                content_type: mime_guess::from_path(key)
                    .first_raw()
                    .unwrap_or("application/octet-stream")
                    .to_owned(),
                metadata: Default::default(),
            }
        } else {
            match ObjectKey::resent(prefix, key, &stamp) {
                Ok(k) => k,
                Err(e) => {
                    report.cannot.push(not(e.to_string()));
                    continue;
                }
            }
        };
        let new_key = new_key.describing(
            rec.image_id,
            rec.path.as_deref().unwrap_or_default(),
            &rec.md5,
            rec.format.as_deref().unwrap_or("original"),
        );
        let etag = match send(target, &new_key, &path, &digest).await {
            Ok(etag) => etag,
            Err(reason) => {
                report.cannot.push(not(reason));
                continue;
            }
        };
        let moved = records::Moved {
            bucket: &target.bucket,
            key: &new_key.key,
            etag: etag.as_deref(),
            url: &target.url_for(&new_key.key),
        };
        records::move_to(pool, t, bucket, key, first.format.is_some(), &moved).await?;
        report.resent.push(Resent {
            image_ids,
            format: first.format.clone(),
            old_key: key.to_owned(),
            new_key: new_key.key,
        });
    }
    Ok(report)
}

/// The first file of `group` that still holds the recorded bytes, hashed
/// for sending; else why none does.
async fn good_file<'a>(
    target: &Target,
    root: &GalleryRoot,
    group: &[&'a Recorded],
) -> Result<(&'a Recorded, std::path::PathBuf, FileDigest), String> {
    let mut why = Vec::new();
    for rec in group {
        let Some(rel) = rec.path.as_deref() else {
            why.push(format!(
                "photo {} was deleted from Piwigo: no file to send",
                rec.image_id
            ));
            continue;
        };
        let path = match root.resolve(rel) {
            Ok(p) => p,
            Err(e) => {
                why.push(format!("{rel}: {e}"));
                continue;
            }
        };
        let size = match tokio::fs::metadata(&path).await {
            Ok(m) => m.len(),
            Err(e) => {
                why.push(format!("{rel}: {e}"));
                continue;
            }
        };
        match digest(path.clone(), target.split_for(size), READ_STALL).await {
            Ok(d) if d.md5_hex() == rec.md5 && d.size == rec.size => {
                return Ok((rec, path, d));
            }
            Ok(d) => why.push(format!(
                "{rel} changed since it was backed up (md5 {} on disk, {} recorded): the backed-up bytes are not on disk any more",
                d.md5_hex(),
                rec.md5
            )),
            Err(e) => why.push(format!("{rel}: {e}")),
        }
    }
    Err(why.join("; "))
}

/// Sends the file unless an object is at the key already: the same bytes
/// there are the copy; other bytes are never overwritten.
async fn send(
    target: &Target,
    key: &ObjectKey,
    path: &std::path::Path,
    digest: &FileDigest,
) -> Result<Option<String>, String> {
    match target.head(&key.key).await {
        Err(e) => return Err(e.to_string()),
        Ok(Some(present)) => {
            let same = match present.holds(digest) {
                Some(same) => same,
                None => {
                    target
                        .object_md5(&key.key)
                        .await
                        .map_err(|e| e.to_string())?
                        == digest.md5_hex()
                }
            };
            return if same {
                Ok(present.etag)
            } else {
                Err(format!(
                    "the key {} holds other bytes now; it is never overwritten",
                    key.key
                ))
            };
        }
        Ok(None) => {}
    }
    match target.put(key, path, digest).await {
        Ok(put) => Ok(put.etag),
        Err(PutError::S3(e)) => Err(e.to_string()),
        Err(PutError::Local(e)) => Err(e.to_string()),
    }
}
