//! The bucket audit: list the prefix once (1,000 objects per request) and
//! compare each record's size and ETag; HEAD only the objects the listing
//! cannot settle (multipart ETags, keys outside the prefix, other buckets);
//! with `--read-data`, download and hash.
//!
//! An object is called intact only on a proof S3 computed itself (its MD5
//! ETag, or the ETag it gave our upload after checking every part's
//! Content-MD5) or on the md5 of its downloaded bytes. The size alone, or
//! the md5 an uploader wrote into `x-amz-meta-md5` (which S3 never checks),
//! leaves it unproven.

use std::collections::{HashMap, HashSet};

use futures_util::StreamExt;
use serde::Serialize;

use crate::queue::records::{Recorded, bare_etag};
use crate::s3::{S3Error, Target};

/// Objects downloaded at once by `--read-data`.
const READ_PARALLEL: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Problem {
    /// No object at the recorded key.
    Missing,
    /// The object's size differs from the recorded one (truncated,
    /// replaced).
    WrongSize,
    /// Same size, other bytes (its MD5 ETag, md5 metadata or downloaded
    /// bytes differ).
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

/// How an intact object was proven.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Proof {
    /// A single-part ETag, the MD5 S3 computed, equals the recorded md5.
    EtagMd5,
    /// The ETag S3 gave our upload (after checking each part's
    /// Content-MD5) is unchanged.
    UploadEtag,
    /// Downloaded and hashed (`--read-data`).
    Read,
}

#[derive(Debug, Clone, Serialize)]
pub struct ObjectProblem {
    pub image_id: u32,
    /// A format's extension; `None` for the photo itself.
    pub format: Option<String>,
    pub bucket: String,
    pub key: String,
    pub problem: Problem,
    pub detail: String,
}

/// An object whose size is right but whose bytes nothing proves.
#[derive(Debug, Clone, Serialize)]
pub struct Unproven {
    pub image_id: u32,
    pub format: Option<String>,
    pub key: String,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Orphan {
    pub key: String,
    pub size: u64,
}

/// Intact objects by how they were proven.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Proven {
    pub etag_md5: u64,
    pub upload_etag: u64,
    pub read: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct BucketAudit {
    pub records: u64,
    /// Proven intact, whichever way (`proven` says how).
    pub intact: u64,
    pub proven: Proven,
    /// Size right, but nothing S3 computed proves the bytes: a multipart
    /// or encrypted object whose ETag is not the one of our upload. Only
    /// `--read-data` settles these.
    pub unproven: Vec<Unproven>,
    pub problems: Vec<ObjectProblem>,
    pub objects_listed: u64,
    pub list_requests: u64,
    pub head_requests: u64,
    /// With `--read-data`: objects downloaded and their bytes.
    pub objects_read: u64,
    pub bytes_read: u64,
    /// Only with `--orphans`.
    pub orphans: Option<Vec<Orphan>>,
    /// Records of photos deleted in Piwigo whose objects are kept (under
    /// `retention.deleted`): known objects, audited like the others.
    pub of_deleted_photos: u64,
    /// Objects of deleted photos whose removal is under way or failed
    /// (tried again): known, not orphans.
    pub removal_pending: u64,
}

/// What the listing (or a HEAD) says about one record's object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Intact(Proof),
    Bad(Problem, String),
    /// The ETag cannot prove the bytes.
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
        return Verdict::Intact(Proof::EtagMd5);
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
        return Verdict::Intact(Proof::UploadEtag);
    }
    Verdict::Unsettled
}

/// What to download with `--read-data`.
#[derive(Debug, Clone, Copy)]
pub struct ReadData {
    /// Share of the objects already proven by their ETag that are read
    /// too, 0 to 100; unproven objects are always read.
    pub percent: f64,
    /// Picks a different sample on each run.
    pub seed: u64,
}

impl ReadData {
    /// Whether `key` is in this run's sample: a hash of the seed and the
    /// key, so a run reads each object at most once and the next run
    /// reads others.
    pub fn picks(&self, key: &str) -> bool {
        if self.percent >= 100.0 {
            return true;
        }
        let h = crate::digest::md5_hex_of(&[&self.seed.to_string(), key]);
        let n = u32::from_str_radix(&h[..8], 16).unwrap_or(0);
        f64::from(n) / f64::from(u32::MAX) * 100.0 < self.percent
    }
}

/// Objects in the bucket that no record holds and that are no orphans:
/// earlier versions of changed photos, and deleted photos' objects whose
/// removal is under way.
#[derive(Debug, Default)]
pub struct Known<'a> {
    pub kept_versions: HashSet<&'a str>,
    pub removing: HashSet<String>,
}

/// Audits `records` against the bucket of `target` under `prefix`.
pub async fn audit(
    target: &Target,
    prefix: &str,
    records: &[Recorded],
    known: &Known<'_>,
    etag_is_md5: bool,
    orphans: bool,
    read: Option<ReadData>,
) -> Result<BucketAudit, S3Error> {
    let Known {
        kept_versions,
        removing,
    } = known;
    let mut audit = BucketAudit {
        records: records.len() as u64,
        of_deleted_photos: records.iter().filter(|r| r.path.is_none()).count() as u64,
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
    let mut proven: Vec<(&Recorded, Proof)> = Vec::new();
    let mut unsettled: Vec<&Recorded> = Vec::new();
    let mut found_orphans = Vec::new();
    let objects_listed = &mut audit.objects_listed;
    let removal_pending = &mut audit.removal_pending;
    let problems = &mut audit.problems;
    audit.list_requests = target
        .list_prefix(prefix, |obj| {
            *objects_listed += 1;
            match by_key.remove(obj.key.as_str()) {
                Some(recs) => {
                    for rec in recs {
                        match judge(rec, obj.size, obj.etag.as_deref(), etag_is_md5) {
                            Verdict::Intact(proof) => proven.push((rec, proof)),
                            Verdict::Bad(problem, detail) => {
                                problems.push(problem_of(rec, problem, detail))
                            }
                            Verdict::Unsettled => unsettled.push(rec),
                        }
                    }
                }
                // A deleted photo's object on its way out: known.
                None if removing.contains(&obj.key) => *removal_pending += 1,
                // Snapshots and the start-up probe's object live under
                // the prefix too, in folders no photo key reaches, and
                // earlier versions of changed photos are kept in the
                // version history: not orphans.
                None if orphans
                    && !crate::snapshot::keys::is_snapshot_key(prefix, &obj.key)
                    && !crate::s3::probe::is_probe_key(prefix, &obj.key)
                    && !kept_versions.contains(obj.key.as_str()) =>
                {
                    found_orphans.push(Orphan {
                        key: obj.key,
                        size: obj.size,
                    })
                }
                None => {}
            }
        })
        .await?;
    // Whatever the listing did not show is missing, unless it lives where
    // the listing did not look.
    for rec in by_key.into_values().flatten() {
        audit.problems.push(problem_of(
            rec,
            Problem::Missing,
            "no object at this key".into(),
        ));
    }
    let mut unproven: Vec<(&Recorded, String)> = Vec::new();
    for rec in elsewhere.into_iter().chain(unsettled) {
        audit.head_requests += 1;
        let Some(meta) = target.head_meta(&rec.bucket, &rec.key).await? else {
            audit.problems.push(problem_of(
                rec,
                Problem::Missing,
                "no object at this key".into(),
            ));
            continue;
        };
        match judge(rec, meta.size, meta.etag.as_deref(), etag_is_md5) {
            Verdict::Intact(proof) => proven.push((rec, proof)),
            Verdict::Bad(problem, detail) => audit.problems.push(problem_of(rec, problem, detail)),
            // The md5 in the metadata is what the uploader wrote, never
            // checked by S3: a different one is damage, the same one
            // proves nothing.
            Verdict::Unsettled => match meta.md5 {
                Some(m) if m != rec.md5 => audit.problems.push(problem_of(
                    rec,
                    Problem::OtherBytes,
                    format!(
                        "the object's md5 metadata {m} is not the recorded md5 {}",
                        rec.md5
                    ),
                )),
                Some(_) => unproven.push((
                    rec,
                    "size right; its ETag is not our upload's and S3 never checks the md5 metadata"
                        .into(),
                )),
                None => unproven.push((
                    rec,
                    "size right; its ETag is not our upload's and it carries no md5 metadata"
                        .into(),
                )),
            },
        }
    }
    match read {
        Some(read) => {
            read_back(target, &mut audit, read, proven, unproven).await?;
        }
        None => {
            for (_, proof) in proven {
                audit.count(proof);
            }
            audit.unproven = unproven
                .into_iter()
                .map(|(rec, detail)| Unproven {
                    image_id: rec.image_id,
                    format: rec.format.clone(),
                    key: rec.key.clone(),
                    detail,
                })
                .collect();
        }
    }
    audit.problems.sort_by_key(|p| p.image_id);
    audit.unproven.sort_by_key(|p| p.image_id);
    if orphans {
        found_orphans.sort_by(|a, b| a.key.cmp(&b.key));
        audit.orphans = Some(found_orphans);
    }
    Ok(audit)
}

impl BucketAudit {
    fn count(&mut self, proof: Proof) {
        self.intact += 1;
        match proof {
            Proof::EtagMd5 => self.proven.etag_md5 += 1,
            Proof::UploadEtag => self.proven.upload_etag += 1,
            Proof::Read => self.proven.read += 1,
        }
    }
}

/// `--read-data`: downloads and hashes every unproven object and the
/// sampled share of the proven ones.
async fn read_back(
    target: &Target,
    audit: &mut BucketAudit,
    read: ReadData,
    proven: Vec<(&Recorded, Proof)>,
    unproven: Vec<(&Recorded, String)>,
) -> Result<(), S3Error> {
    let mut to_read: Vec<&Recorded> = unproven.into_iter().map(|(rec, _)| rec).collect();
    for (rec, proof) in proven {
        if read.picks(&rec.key) {
            to_read.push(rec);
        } else {
            audit.count(proof);
        }
    }
    let mut reads = futures_util::stream::iter(
        to_read
            .into_iter()
            .map(|rec| async move { (rec, target.read_md5(&rec.bucket, &rec.key).await) }),
    )
    .buffer_unordered(READ_PARALLEL);
    while let Some((rec, got)) = reads.next().await {
        audit.objects_read += 1;
        match got? {
            None => audit.problems.push(problem_of(
                rec,
                Problem::Missing,
                "no object at this key (deleted while reading)".into(),
            )),
            Some((_, len)) if len != rec.size => {
                audit.bytes_read += len;
                audit.problems.push(problem_of(
                    rec,
                    Problem::WrongSize,
                    format!("{len} bytes downloaded, {} recorded", rec.size),
                ))
            }
            Some((md5, len)) if md5 != rec.md5 => {
                audit.bytes_read += len;
                audit.problems.push(problem_of(
                    rec,
                    Problem::OtherBytes,
                    format!(
                        "the downloaded bytes hash to {md5}, not the recorded md5 {}",
                        rec.md5
                    ),
                ))
            }
            Some((_, len)) => {
                audit.bytes_read += len;
                audit.count(Proof::Read);
            }
        }
    }
    Ok(())
}

fn problem_of(rec: &Recorded, problem: Problem, detail: String) -> ObjectProblem {
    ObjectProblem {
        image_id: rec.image_id,
        format: rec.format.clone(),
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
            deleted_path: None,
            format: None,
            format_id: None,
            uploaded_at: None,
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
            Verdict::Intact(Proof::EtagMd5)
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
    fn a_sample_reads_about_its_share_and_changes_with_the_seed() {
        let keys: Vec<String> = (0..10_000).map(|i| format!("photos/{i}.jpg")).collect();
        let count = |percent, seed| {
            let r = ReadData { percent, seed };
            keys.iter().filter(|k| r.picks(k)).count()
        };
        assert_eq!(count(100.0, 1), 10_000);
        assert_eq!(count(0.0, 1), 0);
        let ten = count(10.0, 1);
        assert!((800..1200).contains(&ten), "{ten}");
        let a = ReadData {
            percent: 10.0,
            seed: 1,
        };
        let b = ReadData {
            percent: 10.0,
            seed: 2,
        };
        assert!(keys.iter().any(|k| a.picks(k) != b.picks(k)));
    }

    #[test]
    fn multipart_etags_match_the_recorded_one_or_need_a_head() {
        let r = rec("uploaded", Some("\"abc-3\""));
        assert_eq!(
            judge(&r, 10, Some("\"abc-3\""), true),
            Verdict::Intact(Proof::UploadEtag)
        );
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
