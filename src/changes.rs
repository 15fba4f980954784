//! Changed files of recorded photos and formats: each poll looks at the
//! rows Piwigo touched, and a slow pass `stat()`s every recorded file in
//! turn, evenly over `changes.full_pass`. A file whose size or mtime is
//! not what its record says (or whose Piwigo `filesize` moved) is queued
//! as a new version; nothing is read here, so an unchanged file costs one
//! `stat()`. The worker hashes a queued file, and one touched without new
//! bytes only refreshes its record.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::MySqlPool;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::db::{DbError, Tables};
use crate::metrics::Metrics;
use crate::piwigo::{FileError, FileStat, GalleryRoot};
use crate::queue::changes::{self, Candidate};
use crate::queue::versions;

/// Touched rows read per poll at most; more are read at the next one.
const POLL_BATCH: u32 = 1000;
/// Records the slow pass reads from the database at once.
const PASS_BATCH: u32 = 500;

/// What a check did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checked {
    /// Recorded files `stat()`ed.
    pub files: u64,
    /// New versions queued.
    pub queued: u64,
}

/// Whether `now` on disk (and Piwigo's `filesize`) differ from the record.
/// `None` when the record predates versions and the size is the one
/// uploaded: then `now` is adopted as the record's.
fn changed(c: &Candidate, now: FileStat) -> Option<bool> {
    let piwigo_moved = c.piwigo_filesize.is_some()
        && c.piwigo_filesize_now.is_some()
        && c.piwigo_filesize != c.piwigo_filesize_now;
    match c.stat {
        Some(then) => Some(then != now || piwigo_moved),
        None if now.size != c.size => Some(true),
        None => None,
    }
}

/// Looks at each candidate's file and queues those that changed.
async fn check(
    pool: &MySqlPool,
    t: &Tables,
    root: &GalleryRoot,
    stall: Duration,
    candidates: &[Candidate],
) -> Result<Checked, DbError> {
    let mut done = Checked::default();
    for c in candidates {
        let rel = c.item.source_path(&c.path);
        let now = match root.locate(&rel, stall).await {
            Ok((_, stat)) => stat,
            // A missing file is not a new version (a deleted photo is for
            // the retention rules); a hung or refused file is logged and
            // looked at again next time.
            Err(FileError::Missing(_)) => continue,
            Err(e) => {
                tracing::debug!(image.id = c.image_id, error = %e, "changes: cannot stat a recorded file");
                continue;
            }
        };
        done.files += 1;
        match changed(c, now) {
            Some(false) => {}
            Some(true) => {
                if versions::queue_change(pool, t, c.image_id, &c.item).await? {
                    tracing::info!(
                        image.id = c.image_id,
                        item.kind = c.item.kind(),
                        item.label = c.item.label(),
                        "the file of a recorded photo changed; a new version is queued"
                    );
                    done.queued += 1;
                }
            }
            None => changes::adopt(pool, t, c, now).await?,
        }
    }
    Ok(done)
}

/// One poll: the rows Piwigo touched since the last, up to
/// [`POLL_BATCH`].
pub async fn poll_once(
    pool: &MySqlPool,
    t: &Tables,
    root: &GalleryRoot,
    stall: Duration,
) -> Result<Checked, DbError> {
    let after = changes::watermark(pool, t).await?;
    let (candidates, next) = changes::touched(pool, t, after, POLL_BATCH).await?;
    let done = check(pool, t, root, stall, &candidates).await?;
    if next != after {
        changes::set_watermark(pool, t, next).await?;
    }
    Ok(done)
}

/// The slow pass's next `budget` records (at least one batch's worth is
/// read from the database, up to [`PASS_BATCH`] at once); the cursor is
/// stored after each batch. Returns what it did and whether it reached
/// the end of the records (the next call starts over).
pub async fn pass_step(
    pool: &MySqlPool,
    t: &Tables,
    root: &GalleryRoot,
    stall: Duration,
    budget: u64,
) -> Result<(Checked, bool), DbError> {
    let mut done = Checked::default();
    let mut left = budget;
    while left > 0 {
        let n = left.min(u64::from(PASS_BATCH)) as u32;
        let (candidates, next) = changes::next_recorded(pool, t, n).await?;
        let step = check(pool, t, root, stall, &candidates).await?;
        done.files += step.files;
        done.queued += step.queued;
        changes::set_cursor(pool, t, next).await?;
        if next == 0 {
            return Ok((done, true));
        }
        left = left.saturating_sub(u64::from(n));
    }
    Ok((done, false))
}

/// Records to cover in `elapsed` for a whole pass of `total` in `period`,
/// with the fraction carried over in `carry` so that a slow tick rate
/// still covers everything in time.
fn budget(total: u64, elapsed: Duration, period: Duration, carry: &mut f64) -> u64 {
    let due = total as f64 * elapsed.as_secs_f64() / period.as_secs_f64().max(1.0) + *carry;
    let whole = due.floor();
    *carry = due - whole;
    whole as u64
}

/// Until `stop`: each `monitor.poll_interval`, the rows Piwigo touched and
/// the slow pass's share of the records, with the configuration and the
/// gallery root running at the time (a reload applies `[changes]` at the
/// next round; `enabled = false` pauses both).
pub async fn run(
    (pool, t): (MySqlPool, Tables),
    mut configs: watch::Receiver<crate::config::Config>,
    contexts: watch::Receiver<Arc<crate::worker::Context>>,
    metrics: Arc<Metrics>,
    wake: Arc<Notify>,
    stop: CancellationToken,
) {
    let mut carry = 0.0;
    let mut last = Instant::now();
    let mut failures = crate::periodic::Failures::default();
    loop {
        let (cfg, poll_interval) = {
            let c = configs.borrow_and_update();
            (c.changes.clone(), c.monitor.poll_interval)
        };
        if !cfg.enabled {
            tokio::select! {
                _ = stop.cancelled() => return,
                changed = configs.changed() => if changed.is_err() { return },
            }
            last = Instant::now();
            continue;
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(poll_interval) => {}
        }
        let ctx = contexts.borrow().clone();
        let (root, stall) = (&ctx.root, ctx.upload.read_stall_timeout);
        let elapsed = last.elapsed();
        last = Instant::now();
        let step = async {
            let polled = poll_once(&pool, &t, root, stall).await?;
            metrics.changes("poll", polled.files, polled.queued);
            let total = changes::recorded_count(&pool, &t).await?;
            let n = budget(total, elapsed, cfg.full_pass, &mut carry);
            let (passed, wrapped) = pass_step(&pool, &t, root, stall, n).await?;
            metrics.changes("pass", passed.files, passed.queued);
            if wrapped {
                tracing::info!("the slow pass covered every recorded file; starting over");
            }
            Ok::<_, DbError>(polled.queued + passed.queued)
        };
        let result = tokio::select! {
            _ = stop.cancelled() => return,
            r = step => r,
        };
        match result {
            Ok(queued) => {
                failures.succeeded();
                if queued > 0 {
                    wake.notify_one();
                }
            }
            Err(e) => failures.failed(&e, "could not look for changed files; retrying"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::item::Item;

    fn candidate(stat: Option<FileStat>, then: Option<u32>, now: Option<u32>) -> Candidate {
        Candidate {
            image_id: 1,
            item: Item::Photo,
            path: "./upload/a.jpg".into(),
            size: 100,
            stat,
            piwigo_filesize: then,
            piwigo_filesize_now: now,
        }
    }

    #[test]
    fn a_change_is_size_mtime_or_piwigo_filesize() {
        let then = FileStat {
            size: 100,
            mtime_ns: 5,
        };
        let c = candidate(Some(then), Some(1), Some(1));
        assert_eq!(changed(&c, then), Some(false));
        assert_eq!(
            changed(
                &c,
                FileStat {
                    mtime_ns: 6,
                    ..then
                }
            ),
            Some(true)
        );
        assert_eq!(changed(&c, FileStat { size: 101, ..then }), Some(true));
        assert_eq!(
            changed(&candidate(Some(then), Some(1), Some(2)), then),
            Some(true)
        );
        // Piwigo without a filesize says nothing.
        assert_eq!(
            changed(&candidate(Some(then), None, Some(2)), then),
            Some(false)
        );
        // Records older than versions: another size is a change; the same
        // size adopts what is on disk.
        let old = candidate(None, None, Some(1));
        assert_eq!(changed(&old, FileStat { size: 99, ..then }), Some(true));
        assert_eq!(changed(&old, then), None);
    }

    #[test]
    fn the_pass_covers_everything_in_its_period() {
        let day = Duration::from_secs(86_400);
        let mut carry = 0.0;
        let mut covered = 0;
        // A tick every 2 s for a day: a million records, no more, no less.
        for _ in 0..43_200 {
            covered += budget(1_000_000, Duration::from_secs(2), day, &mut carry);
        }
        assert!((999_999..=1_000_000).contains(&covered), "{covered}");
        let mut carry = 0.0;
        assert_eq!(budget(10, Duration::from_secs(1), day, &mut carry), 0);
        assert!(carry > 0.0);
    }
}
