//! Changed files of recorded photos and formats: each poll looks at the
//! rows Piwigo touched, and a slow pass `stat()`s every recorded file in
//! turn, evenly over `changes.full_pass`. A file whose size or mtime is
//! not what its record says (or whose Piwigo `filesize` moved) is queued
//! as a new version; nothing is read here, so an unchanged file costs one
//! `stat()`. The worker hashes a queued file, and one touched without new
//! bytes only refreshes its record.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

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

/// `run --until-idle`'s look (cron): one poll, then the slow pass's share
/// of the time since the last such run; both counted as the running
/// daemon's task counts them.
pub async fn once(
    pool: &MySqlPool,
    t: &Tables,
    (root, stall): (&GalleryRoot, Duration),
    full_pass: Duration,
    metrics: &Metrics,
) -> Result<(), DbError> {
    let polled = poll_once(pool, t, root, stall).await?;
    metrics.changes("poll", polled.files, polled.queued);
    let passed = pass_since_last_run(pool, t, (root, stall), full_pass, SystemTime::now()).await?;
    counted_pass(metrics, passed);
    Ok(())
}

/// A step of the slow pass in the metrics, and in the log when it reached
/// the end of the records.
fn counted_pass(metrics: &Metrics, (passed, wrapped): (Checked, bool)) {
    metrics.changes("pass", passed.files, passed.queued);
    if wrapped {
        tracing::info!("the slow pass covered every recorded file; starting over");
    }
}

/// For `run --until-idle` (cron): the slow pass's share of the time since
/// the last such run, so that a gallery backed up by cron alone still has
/// every recorded file checked once per `period`, as a running daemon
/// would. The first run only starts the clock; time worth less than one
/// record is kept for the next run, and a long gap is one whole pass.
async fn pass_since_last_run(
    pool: &MySqlPool,
    t: &Tables,
    (root, stall): (&GalleryRoot, Duration),
    period: Duration,
    now: SystemTime,
) -> Result<(Checked, bool), DbError> {
    let now_ms = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let Some(last) = changes::pass_clock(pool, t).await? else {
        changes::set_pass_clock(pool, t, now_ms).await?;
        return Ok((Checked::default(), false));
    };
    // A clock set back counts as no time at all.
    let elapsed = Duration::from_millis(now_ms.saturating_sub(last));
    let total = changes::recorded_count(pool, t).await?;
    let Some((share, counted)) = cron_share(total, elapsed, period) else {
        return Ok((Checked::default(), false));
    };
    let done = pass_step(pool, t, root, stall, share).await?;
    let upto = counted.map_or(now_ms, |c| {
        last.saturating_add(u64::try_from(c.as_millis()).unwrap_or(u64::MAX))
    });
    changes::set_pass_clock(pool, t, upto).await?;
    Ok(done)
}

/// The records a run owes after `elapsed` for a whole pass of `total` in
/// `period`, and the time they account for (`None`: all of it, the whole
/// pass being due). `None` when not one record is due yet.
fn cron_share(total: u64, elapsed: Duration, period: Duration) -> Option<(u64, Option<Duration>)> {
    if elapsed >= period {
        return (total > 0).then_some((total, None));
    }
    let share = budget(total, elapsed, period, &mut 0.0);
    (share > 0).then(|| (share, Some(period.mul_f64(share as f64 / total as f64))))
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
            let queued = polled.queued + passed.queued;
            counted_pass(&metrics, (passed, wrapped));
            Ok::<_, DbError>(queued)
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

    /// Cron runs cover the pass in shares of the time between them; time
    /// worth less than a record waits, and a long gap is one whole pass.
    #[test]
    fn a_cron_run_owes_its_share_of_the_pass() {
        let day = Duration::from_secs(86_400);
        let hour = Duration::from_secs(3600);
        assert_eq!(cron_share(0, day, day), None);
        assert_eq!(cron_share(2400, hour, day), Some((100, Some(hour))));
        assert_eq!(cron_share(2400, 3 * day, day), Some((2400, None)));
        // 50 records a day: a 15-minute run owes 0.52 of one, so none yet,
        // and the clock stays where it was until a whole one is due.
        assert_eq!(cron_share(50, Duration::from_secs(900), day), None);
        let (share, counted) = cron_share(50, Duration::from_secs(1800), day).unwrap();
        assert_eq!(share, 1);
        assert_eq!(counted, Some(day.mul_f64(1.0 / 50.0)));
        // Fifteen-minute runs over a day cover the whole pass.
        let (mut clock, mut now, mut covered) = (Duration::ZERO, Duration::ZERO, 0);
        while now < day {
            now += Duration::from_secs(900);
            if let Some((share, counted)) = cron_share(50, now - clock, day) {
                covered += share;
                clock = counted.map_or(now, |c| clock + c);
            }
        }
        assert_eq!(covered, 50);
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
