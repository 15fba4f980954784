//! `verify`: is every photo backed up, and is every backed-up photo intact
//! in the bucket (and, with `--disk`, on disk)? The answer is a report, an
//! exit code, and a few numbers kept for `/metrics`.

pub mod bucket;
pub mod disk;
mod render;
pub mod resend;

use serde::Serialize;
use sqlx::MySqlPool;

use crate::config::{Config, ServerSideEncryption};
use crate::db::{DbError, Tables};
use crate::piwigo::GalleryRoot;
use crate::queue::{coverage, records};
use crate::s3::{S3Error, Target};

pub use render::to_text;

#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// `--read-data`: download and hash the objects, this percentage of
    /// those S3's ETag already proves (unproven ones are always read).
    pub read_data: Option<f64>,
    /// Hash every recorded file and compare it with the record.
    pub disk: bool,
    /// List objects under the prefix that no record explains.
    pub orphans: bool,
    /// Queue the photos that are neither recorded nor queued.
    pub enqueue: bool,
    /// Send missing or damaged objects again from files that still hold
    /// the recorded bytes.
    pub resend: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    S3(#[from] S3Error),
    #[error(
        "verify: gallery root {path}: {source} (set piwigo.root to Piwigo's install directory)"
    )]
    Root {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// What `--enqueue` queued.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Enqueued {
    pub photos: u64,
    pub formats: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// True when nothing is missing, failing or damaged, and every object
    /// is proven intact by S3's checksum or by its downloaded bytes.
    pub ok: bool,
    pub checked_at: String,
    pub bucket_name: String,
    pub prefix: String,
    pub coverage: coverage::Coverage,
    /// With `--enqueue`: how many photos and formats were queued.
    pub enqueued: Option<Enqueued>,
    pub bucket: bucket::BucketAudit,
    pub disk: Option<disk::DiskAudit>,
    /// With `--resend`: what was sent again and what could not be.
    pub resend: Option<resend::ResendReport>,
    /// Recorded photos and formats whose file changed, their new version
    /// queued and not recorded yet: (image id, `photo` or `format`, format
    /// id or 0). The bucket holds their earlier bytes only.
    pub changed_waiting: Vec<(u32, String, u32)>,
    /// Earlier versions kept in the bucket (not orphans).
    pub versions_kept: u64,
}

impl Report {
    pub fn objects_missing(&self) -> u64 {
        self.count_bucket(|p| p == bucket::Problem::Missing)
    }

    pub fn objects_damaged(&self) -> u64 {
        self.count_bucket(|p| p != bucket::Problem::Missing)
    }

    fn count_bucket(&self, pick: impl Fn(bucket::Problem) -> bool) -> u64 {
        self.bucket
            .problems
            .iter()
            .filter(|p| pick(p.problem))
            .count() as u64
    }

    pub fn files_with_problems(&self) -> u64 {
        self.disk.as_ref().map_or(0, |d| d.problems.len() as u64)
    }
}

pub async fn run(
    config: &Config,
    pool: &MySqlPool,
    t: &Tables,
    opts: Options,
) -> Result<Report, VerifyError> {
    let coverage = coverage::check(pool, t).await?;
    let enqueued =
        if opts.enqueue && (coverage.not_backed_up > 0 || coverage.formats.not_backed_up > 0) {
            // Formats of recorded photos are queued now; those of photos just
            // queued follow their photo.
            Some(Enqueued {
                photos: coverage::enqueue_gaps(pool, t).await?,
                formats: crate::queue::formats::discover(pool, t).await?,
            })
        } else {
            None
        };
    let recs = records::load(pool, t, &records::Filter::default()).await?;
    let target = Target::new(&config.s3, &config.upload).await;
    let etag_is_md5 = !config
        .s3
        .server_side_encryption
        .is_some_and(ServerSideEncryption::uses_kms);
    let read = opts.read_data.map(|percent| bucket::ReadData {
        percent,
        seed: chrono::Utc::now().timestamp_micros().unsigned_abs(),
    });
    let kept = crate::queue::versions::kept_keys(pool, t).await?;
    let kept_here: std::collections::HashSet<&str> = kept
        .iter()
        .filter(|(b, _)| *b == target.bucket)
        .map(|(_, k)| k.as_str())
        .collect();
    let changed_waiting = crate::queue::versions::changed_waiting(pool, t).await?;
    let known = bucket::Known {
        kept_versions: kept_here,
        removing: crate::queue::removal::pending_keys(pool, t, &config.s3.bucket).await?,
    };
    let bucket = bucket::audit(
        &target,
        &config.s3.prefix,
        &recs,
        &known,
        etag_is_md5,
        opts.orphans,
        read,
    )
    .await?;
    let root = if opts.disk || opts.resend {
        Some(
            GalleryRoot::new(&config.piwigo.root, &config.piwigo.extra_roots).map_err(
                |source| VerifyError::Root {
                    path: config.piwigo.root.clone(),
                    source,
                },
            )?,
        )
    } else {
        None
    };
    let disk = match (&root, opts.disk) {
        (Some(root), true) => Some(disk::audit(root, &recs).await),
        _ => None,
    };
    let resend = match (&root, opts.resend) {
        (Some(root), true) => Some(
            resend::run(
                pool,
                t,
                &target,
                root,
                &config.s3.prefix,
                &bucket.problems,
                &recs,
            )
            .await?,
        ),
        _ => None,
    };
    let mut report = Report {
        ok: false,
        checked_at: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        bucket_name: config.s3.bucket.clone(),
        prefix: config.s3.prefix.clone(),
        coverage,
        enqueued,
        bucket,
        disk,
        changed_waiting,
        versions_kept: kept.len() as u64,
        resend,
    };
    let c = &report.coverage;
    report.ok = c.not_backed_up == 0
        && c.failing == 0
        && c.formats.not_backed_up == 0
        && c.formats.failing == 0
        && report.bucket.problems.is_empty()
        && report.bucket.unproven.is_empty()
        && report.files_with_problems() == 0;
    Ok(report)
}

/// The last result, kept in our state table for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LastRun {
    /// Unix time the verify finished.
    pub at: i64,
    pub ok: bool,
    pub not_backed_up: u64,
    pub objects_missing: u64,
    pub objects_damaged: u64,
    pub files_with_problems: u64,
}

const STATE_NAMES: [&str; 6] = [
    "verify_at",
    "verify_ok",
    "verify_not_backed_up",
    "verify_objects_missing",
    "verify_objects_damaged",
    "verify_files_with_problems",
];

impl LastRun {
    /// The figures `/metrics` shows, by name.
    pub fn figures(&self) -> [(&'static str, i64); 6] {
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        [
            ("finished_at", self.at),
            ("ok", i64::from(self.ok)),
            ("not_backed_up", n(self.not_backed_up)),
            ("objects_missing", n(self.objects_missing)),
            ("objects_damaged", n(self.objects_damaged)),
            ("files_with_problems", n(self.files_with_problems)),
        ]
    }

    pub fn of(report: &Report) -> Self {
        Self {
            at: chrono::Utc::now().timestamp(),
            ok: report.ok,
            not_backed_up: report.coverage.not_backed_up + report.coverage.formats.not_backed_up,
            objects_missing: report.objects_missing(),
            objects_damaged: report.objects_damaged(),
            files_with_problems: report.files_with_problems(),
        }
    }

    fn values(&self) -> [i64; 6] {
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        [
            self.at,
            i64::from(self.ok),
            n(self.not_backed_up),
            n(self.objects_missing),
            n(self.objects_damaged),
            n(self.files_with_problems),
        ]
    }

    pub async fn store(&self, pool: &MySqlPool, t: &Tables) -> Result<(), DbError> {
        let values: Vec<(&str, String)> = STATE_NAMES
            .iter()
            .zip(self.values())
            .map(|(name, v)| (*name, v.to_string()))
            .collect();
        crate::queue::state::set_many(pool, t, &values).await
    }

    /// `None` until a verify has run against this database.
    pub async fn load(pool: &MySqlPool, t: &Tables) -> Result<Option<Self>, DbError> {
        let rows = crate::queue::state::with_prefix(pool, t, "verify_").await?;
        let get = |name: &str| {
            rows.iter()
                .find(|(n, _)| n == name)
                .and_then(|(_, v)| v.parse::<i64>().ok())
        };
        let Some(at) = get("verify_at") else {
            return Ok(None);
        };
        let n = |name: &str| get(name).unwrap_or(0).max(0) as u64;
        Ok(Some(Self {
            at,
            ok: get("verify_ok") == Some(1),
            not_backed_up: n("verify_not_backed_up"),
            objects_missing: n("verify_objects_missing"),
            objects_damaged: n("verify_objects_damaged"),
            files_with_problems: n("verify_files_with_problems"),
        }))
    }
}
