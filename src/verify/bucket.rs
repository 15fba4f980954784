//! The bucket audit: list the prefix once (1,000 objects per request) and
//! compare each record's size and ETag; HEAD only the objects the listing
//! cannot settle (multipart ETags, keys outside the prefix, other buckets).

use std::collections::HashMap;

use serde::Serialize;

use super::records::{Recorded, bare_etag};
use crate::s3::{S3Error, Target};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Problem {
    /// No object at the recorded key.
    Missing,
    /// The object's size differs from the recorded one (truncated,
    /// replaced).
    WrongSize,
    /// Same size, other bytes (its MD5 ETag or md5 metadata differs).
    OtherBytes,
}

impl Problem {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::WrongSize => "wrong size",
            Self::OtherBytes => "other bytes",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ObjectProblem {
    pub image_id: u32,
    pub bucket: String,
    pub key: String,
    pub problem: Problem,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Orphan {
    pub key: String,
    pub size: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct BucketAudit {
    pub records: u64,
    pub intact: u64,
    /// Size right, but neither the ETag nor metadata can prove the bytes
    /// (multipart objects uploaded before objects carried their md5).
    pub unverified: u64,
    pub problems: Vec<ObjectProblem>,
    pub objects_listed: u64,
    pub list_requests: u64,
    pub head_requests: u64,
    /// Only with `--orphans`.
    pub orphans: Option<Vec<Orphan>>,
}

/// What the listing (or a HEAD) says about one record's object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Intact,
    Bad(Problem, String),
    /// Needs the md5 metadata from a HEAD.
    Unsettled,
}

/// Judges an object by size and ETag. `etag_is_md5`: false under SSE-KMS,
/// where even single-part ETags are not the md5.
pub fn judge(rec: &Recorded, size: u64, etag: Option<&str>, etag_is_md5: bool) -> Verdict {
    if size != rec.size {
        return Verdict::Bad(
            Problem::WrongSize,
            format!("{size} bytes in the bucket, {} recorded", rec.size),
        );
    }
    let Some(etag) = etag.map(bare_etag) else {
        return Verdict::Unsettled;
    };
    if etag == rec.md5 {
        return Verdict::Intact;
    }
    let single_part = etag.len() == 32 && etag.bytes().all(|b| b.is_ascii_hexdigit());
    if single_part && etag_is_md5 {
        return Verdict::Bad(
            Problem::OtherBytes,
            format!("ETag {etag} is not the recorded md5 {}", rec.md5),
        );
    }
    // The ETag S3 gave when we sent the bytes (it checked them against
    // Content-MD5 then): unchanged since. Not proof for an object that was
    // there before us.
    if rec.outcome == "uploaded" && rec.etag.as_deref().map(bare_etag).as_deref() == Some(&etag) {
        return Verdict::Intact;
    }
    Verdict::Unsettled
}

/// Audits `records` against the bucket of `target` under `prefix`.
pub async fn audit(
    target: &Target,
    prefix: &str,
    records: &[Recorded],
    etag_is_md5: bool,
    orphans: bool,
) -> Result<BucketAudit, S3Error> {
    let mut audit = BucketAudit {
        records: records.len() as u64,
        ..BucketAudit::default()
    };
    // Records by key; several photos share a key as duplicates.
    let mut by_key: HashMap<&str, Vec<&Recorded>> = HashMap::new();
    let mut elsewhere: Vec<&Recorded> = Vec::new();
    for r in records {
        if r.bucket == target.bucket && r.key.starts_with(prefix) {
            by_key.entry(r.key.as_str()).or_default().push(r);
        } else {
            elsewhere.push(r);
        }
    }
    let mut unsettled: Vec<&Recorded> = Vec::new();
    let mut found_orphans = Vec::new();
    let mut pages = target
        .client
        .list_objects_v2()
        .bucket(&target.bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        audit.list_requests += 1;
        let page = page.map_err(|e| S3Error::from_sdk("list objects", prefix, e))?;
        for obj in page.contents.unwrap_or_default() {
            audit.objects_listed += 1;
            let key = obj.key.unwrap_or_default();
            let size = obj.size.unwrap_or(0).max(0) as u64;
            match by_key.remove(key.as_str()) {
                Some(recs) => {
                    for rec in recs {
                        match judge(rec, size, obj.e_tag.as_deref(), etag_is_md5) {
                            Verdict::Intact => audit.intact += 1,
                            Verdict::Bad(problem, detail) => {
                                audit.problems.push(problem_of(rec, problem, detail))
                            }
                            Verdict::Unsettled => unsettled.push(rec),
                        }
                    }
                }
                // Snapshots live under the prefix too, in a folder no
                // photo key reaches: not orphans.
                None if orphans && !crate::snapshot::keys::is_snapshot_key(prefix, &key) => {
                    found_orphans.push(Orphan { key, size })
                }
                None => {}
            }
        }
    }
    // Whatever the listing did not show is missing, unless it lives where
    // the listing did not look.
    for rec in by_key.into_values().flatten() {
        audit.problems.push(problem_of(
            rec,
            Problem::Missing,
            "no object at this key".into(),
        ));
    }
    for rec in elsewhere {
        audit.head_requests += 1;
        match target.head_meta(&rec.bucket, &rec.key).await? {
            None => audit.problems.push(problem_of(
                rec,
                Problem::Missing,
                "no object at this key".into(),
            )),
            Some(meta) => match judge(rec, meta.size, meta.etag.as_deref(), etag_is_md5) {
                Verdict::Intact => audit.intact += 1,
                Verdict::Bad(problem, detail) => {
                    audit.problems.push(problem_of(rec, problem, detail))
                }
                Verdict::Unsettled => settle(&mut audit, rec, meta.md5.as_deref()),
            },
        }
    }
    for rec in unsettled {
        audit.head_requests += 1;
        match target.head_meta(&rec.bucket, &rec.key).await? {
            None => audit.problems.push(problem_of(
                rec,
                Problem::Missing,
                "no object at this key (deleted while listing)".into(),
            )),
            Some(meta) => settle(&mut audit, rec, meta.md5.as_deref()),
        }
    }
    audit.problems.sort_by_key(|p| p.image_id);
    if orphans {
        found_orphans.sort_by(|a, b| a.key.cmp(&b.key));
        audit.orphans = Some(found_orphans);
    }
    Ok(audit)
}

/// The md5 the object carries in its metadata decides; without one the
/// object is counted as unverified.
fn settle(audit: &mut BucketAudit, rec: &Recorded, meta_md5: Option<&str>) {
    match meta_md5 {
        Some(m) if m == rec.md5 => audit.intact += 1,
        Some(m) => audit.problems.push(problem_of(
            rec,
            Problem::OtherBytes,
            format!(
                "the object's md5 metadata {m} is not the recorded md5 {}",
                rec.md5
            ),
        )),
        None => audit.unverified += 1,
    }
}

fn problem_of(rec: &Recorded, problem: Problem, detail: String) -> ObjectProblem {
    ObjectProblem {
        image_id: rec.image_id,
        bucket: rec.bucket.clone(),
        key: rec.key.clone(),
        problem,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MD5: &str = "0123456789abcdef0123456789abcdef";

    fn rec(outcome: &str, etag: Option<&str>) -> Recorded {
        Recorded {
            image_id: 1,
            outcome: outcome.into(),
            bucket: "b".into(),
            key: "k".into(),
            size: 10,
            md5: MD5.into(),
            etag: etag.map(str::to_owned),
            path: None,
            format: None,
        }
    }

    #[test]
    fn size_then_md5_etag_decide() {
        let r = rec("uploaded", None);
        assert!(matches!(
            judge(&r, 9, Some(MD5), true),
            Verdict::Bad(Problem::WrongSize, _)
        ));
        assert_eq!(
            judge(&r, 10, Some(&format!("\"{}\"", MD5.to_uppercase())), true),
            Verdict::Intact
        );
        assert!(matches!(
            judge(&r, 10, Some("\"ffffffffffffffffffffffffffffffff\""), true),
            Verdict::Bad(Problem::OtherBytes, _)
        ));
        // Under SSE-KMS a single-part ETag proves nothing.
        assert_eq!(
            judge(&r, 10, Some("ffffffffffffffffffffffffffffffff"), false),
            Verdict::Unsettled
        );
    }

    #[test]
    fn multipart_etags_match_the_recorded_one_or_need_a_head() {
        let r = rec("uploaded", Some("\"abc-3\""));
        assert_eq!(judge(&r, 10, Some("\"abc-3\""), true), Verdict::Intact);
        assert_eq!(judge(&r, 10, Some("\"def-3\""), true), Verdict::Unsettled);
        // An object that was there before: its ETag never proved our bytes.
        let before = rec("already_present", Some("\"abc-3\""));
        assert_eq!(
            judge(&before, 10, Some("\"abc-3\""), true),
            Verdict::Unsettled
        );
        assert_eq!(judge(&r, 10, None, true), Verdict::Unsettled);
    }
}
