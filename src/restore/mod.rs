//! `restore`: files back from the bucket to where Piwigo expects them
//! (or under `--to DIR`), each checked against its md5 before it takes
//! its real name. With the database lost too, `--from-bucket` reads what
//! each object says about itself.

pub mod fetch;
pub mod from_bucket;
pub mod gallery;
pub mod owner;

use std::collections::HashMap;
use std::path::PathBuf;

use futures_util::StreamExt;
use serde::Serialize;
use sqlx::MySqlPool;

use crate::config::Config;
use crate::db::{DbError, Tables};
use crate::piwigo::GalleryRoot;
use crate::progress::Progress;
use crate::queue::records::{self, Filter};
use crate::s3::{S3Error, Target};
pub use fetch::{Job, Mode, Outcome};

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub filter: Filter,
    /// Restore into this tree instead of Piwigo's root.
    pub to: Option<PathBuf>,
    pub mode: Mode,
    /// Downloads at once.
    pub jobs: usize,
    /// Restore photos Piwigo deleted too: from their records, to the path
    /// they were last seen at; with `--from-bucket`, from the objects.
    pub include_deleted: bool,
    /// `--at`: the versions current at this time (UTC), not the latest.
    pub at: Option<chrono::NaiveDateTime>,
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    S3(#[from] S3Error),
    #[error(
        "restore: target directory {path}: {source} (it must exist or be creatable, and be writable)"
    )]
    Root {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The records as they were at `at`: an object recorded later gives way to
/// the version of the history current then; one uploaded after `at` with
/// nothing before it is left out (it was not backed up yet).
async fn as_of(
    pool: &MySqlPool,
    t: &Tables,
    recs: Vec<records::Recorded>,
    at: chrono::NaiveDateTime,
) -> Result<Vec<records::Recorded>, DbError> {
    let mut out = Vec::with_capacity(recs.len());
    for mut r in recs {
        if r.uploaded_at.is_none_or(|u| u <= at) {
            out.push(r);
            continue;
        }
        if let Some(v) =
            crate::queue::versions::current_at(pool, t, r.image_id, r.format_id, at).await?
        {
            r.outcome = v.outcome;
            r.bucket = v.bucket;
            r.key = v.key;
            r.size = v.size;
            r.md5 = v.md5;
            r.etag = None;
            r.uploaded_at = Some(v.uploaded_at);
            out.push(r);
        }
    }
    Ok(out)
}

/// One file that did not come back as it should.
#[derive(Debug, Clone, Serialize)]
pub struct NotRestored {
    pub image_id: Option<u32>,
    pub key: String,
    pub path: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub selected: u64,
    pub restored: u64,
    pub bytes: u64,
    /// Directories created on the way, each with its parent's owner and
    /// mode.
    pub dirs_created: u64,
    /// Restored files that kept the restoring user as owner, and why.
    pub not_owned: Vec<NotRestored>,
    pub already_in_place: u64,
    /// With `--missing`: files on disk, not looked at.
    pub on_disk: u64,
    pub would_restore: u64,
    /// Records of photos deleted from Piwigo: no path to restore to.
    pub deleted_from_piwigo: u64,
    /// Keys of objects with no path in their metadata or key
    /// (`--from-bucket`).
    pub unplaceable: Vec<String>,
    /// `--from-bucket`: keys of objects without metadata (uploaded before
    /// objects carried it), placed from their key, their md5 unknown
    /// unless their ETag is one.
    pub no_metadata: Vec<String>,
    /// `--from-bucket`: md5 duplicates Piwigo lists beside an object's
    /// photo, restored from that object.
    pub duplicates: u64,
    pub kept_different: Vec<NotRestored>,
    pub refused: Vec<NotRestored>,
    pub failed: Vec<NotRestored>,
}

impl Summary {
    /// Everything selected is on disk with the backed-up bytes.
    pub fn ok(&self) -> bool {
        self.kept_different.is_empty()
            && self.refused.is_empty()
            && self.failed.is_empty()
            && self.unplaceable.is_empty()
    }

    fn count(&mut self, job: &Job, outcome: Outcome) {
        let not = |reason: String| NotRestored {
            image_id: job.image_id,
            key: job.key.clone(),
            path: job.rel.clone(),
            reason,
        };
        match outcome {
            Outcome::Restored {
                bytes,
                dirs,
                not_owned,
            } => {
                self.restored += 1;
                self.bytes += bytes;
                self.dirs_created += dirs;
                if let Some(why) = not_owned {
                    self.not_owned.push(not(format!(
                        "restored, but not given its directory's owner and mode: {why}"
                    )));
                }
            }
            Outcome::InPlace => self.already_in_place += 1,
            Outcome::OnDisk => self.on_disk += 1,
            Outcome::WouldRestore => self.would_restore += 1,
            Outcome::KeptDifferent => self.kept_different.push(not(
                "another file is there; left as it is (--overwrite replaces it)".into(),
            )),
            Outcome::Refused(why) => self.refused.push(not(format!(
                "the object's bytes are not the backed-up ones: {why}; not written"
            ))),
            Outcome::NoObject => self.failed.push(not("no object at this key".into())),
            Outcome::Skipped(why) | Outcome::Failed(why) => self.failed.push(not(why)),
        }
    }

    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "restore: {} selected: {} restored ({} bytes), {} already in place{}{}{}",
            self.selected,
            self.restored,
            self.bytes,
            self.already_in_place,
            opt(self.on_disk, "on disk, not checked (--missing)"),
            opt(self.would_restore, "would be restored (--dry-run)"),
            opt(
                self.deleted_from_piwigo,
                "deleted from Piwigo, skipped (`--include-deleted` restores them)"
            ),
        );
        if self.restored > 0 {
            let _ = writeln!(
                out,
                "  restored files and the {} directories created took the owner, group and mode of the directory they are in",
                self.dirs_created
            );
        }
        if self.duplicates > 0 {
            let _ = writeln!(
                out,
                "  {} md5 duplicates (photos with the bytes of another photo, never sent on their own) restored from that photo's object, as Piwigo's md5sum lists them",
                self.duplicates
            );
        }
        if !self.no_metadata.is_empty() {
            let _ = writeln!(
                out,
                "  {} objects carry no metadata (uploaded before objects carried it): placed by their key, checked by their ETag or size only",
                self.no_metadata.len()
            );
            for key in self.no_metadata.iter().take(50) {
                let _ = writeln!(out, "  NO META  {key}");
            }
        }
        if !self.unplaceable.is_empty() {
            let _ = writeln!(
                out,
                "  {} objects carry no path (uploaded before objects carried metadata, in a layout that does not keep the file name): not restored",
                self.unplaceable.len()
            );
            for key in &self.unplaceable {
                let _ = writeln!(out, "  NO PATH  {key}");
            }
        }
        for (label, list) in [
            ("KEPT", &self.kept_different),
            ("REFUSED", &self.refused),
            ("FAILED", &self.failed),
            ("OWNER", &self.not_owned),
        ] {
            for n in list {
                let id = n
                    .image_id
                    .map(|i| format!("photo {i} "))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "  {label:<8} {id}{}  ({}): {}",
                    n.path, n.key, n.reason
                );
            }
        }
        out
    }
}

fn opt(n: u64, what: &str) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(", {n} {what}")
    }
}

/// The tree files go back into.
pub fn destination_root(
    config: &Config,
    to: Option<&PathBuf>,
) -> Result<GalleryRoot, RestoreError> {
    let (base, extra) = match to {
        Some(dir) => (dir.clone(), Vec::new()),
        None => (
            config.piwigo.root.clone(),
            config.piwigo.extra_roots.clone(),
        ),
    };
    let made = std::fs::create_dir_all(&base).and_then(|()| GalleryRoot::new(&base, &extra));
    made.map_err(|source| RestoreError::Root { path: base, source })
}

/// Why a selection of records came out empty, as the message to show:
/// no records at all (the daemon's tables were lost or never filled), or
/// none matching the ids or album asked for.
pub async fn why_nothing_selected(
    pool: &MySqlPool,
    t: &Tables,
    filter: &Filter,
) -> Result<String, DbError> {
    let records = records::count(pool, t).await?;
    if records == 0 {
        return Ok(format!(
            "restore: no upload records exist ({} is empty: the daemon's tables were lost or nothing was uploaded yet); bring the files back from the objects themselves with `restore --from-bucket --all`",
            t.uploaded
        ));
    }
    let mut asked = Vec::new();
    if !filter.ids.is_empty() {
        let ids: Vec<String> = filter
            .ids
            .iter()
            .map(|(lo, hi)| {
                if lo == hi {
                    lo.to_string()
                } else {
                    format!("{lo}-{hi}")
                }
            })
            .collect();
        asked.push(format!("ids {}", ids.join(",")));
    }
    if let Some(album) = filter.album {
        asked.push(format!("album {album} and its sub-albums"));
    }
    Ok(format!(
        "restore: no backed-up photo matches {} ({records} photos have upload records); `verify` lists what is backed up, `restore --all` brings back everything",
        asked.join(" in ")
    ))
}

/// Restores the recorded photos the filter selects.
pub async fn from_records(
    config: &Config,
    pool: &MySqlPool,
    t: &Tables,
    opts: &Options,
) -> Result<Summary, RestoreError> {
    let root = destination_root(config, opts.to.as_ref())?;
    let mut recs = records::load(pool, t, &opts.filter).await?;
    if let Some(at) = opts.at {
        recs = as_of(pool, t, recs, at).await?;
    }
    let mut summary = Summary {
        selected: recs.len() as u64,
        ..Summary::default()
    };
    let jobs: Vec<Job> = recs
        .into_iter()
        .filter_map(
            |r| match r.path.or(r.deleted_path.filter(|_| opts.include_deleted)) {
                Some(rel) => Some(Job {
                    image_id: Some(r.image_id),
                    bucket: r.bucket,
                    key: r.key,
                    size: r.size,
                    md5: Some(r.md5),
                    rel,
                }),
                None => {
                    summary.deleted_from_piwigo += 1;
                    None
                }
            },
        )
        .collect();
    let target = Target::new(&config.s3, &config.upload).await;
    run_jobs(&target, &root, jobs, opts, &mut summary).await;
    Ok(summary)
}

/// Runs the downloads, `opts.jobs` at a time: each streams to disk, so
/// memory stays flat whatever the sizes.
pub async fn run_jobs(
    target: &Target,
    root: &GalleryRoot,
    jobs: Vec<Job>,
    opts: &Options,
    summary: &mut Summary,
) {
    let total = jobs.len() as u64;
    let mut progress = Progress::new(
        "restore {bar:40} {pos}/{len} files ({eta} left)",
        "restore: files done",
        20,
    );
    let mode = opts.mode;
    // Jobs for one destination (two photos sharing one file) run one after
    // the other: the second finds the first's file in place, and two
    // downloads never race on one temporary name.
    let mut groups: Vec<Vec<&Job>> = Vec::new();
    let mut by_dest: HashMap<&str, usize> = HashMap::new();
    for job in &jobs {
        match by_dest.get(job.rel.as_str()) {
            Some(&i) => groups[i].push(job),
            None => {
                by_dest.insert(&job.rel, groups.len());
                groups.push(vec![job]);
            }
        }
    }
    let mut results = futures_util::stream::iter(groups.into_iter().map(|group| async move {
        let mut done = Vec::with_capacity(group.len());
        for job in group {
            done.push((job, fetch::one(target, root, job, mode).await));
        }
        done
    }))
    .buffer_unordered(opts.jobs.max(1));
    let mut done = 0;
    while let Some(group) = results.next().await {
        for (job, outcome) in group {
            done += 1;
            progress.update(done, total);
            summary.count(job, outcome);
        }
    }
    progress.finish();
}
