//! Photos deleted in Piwigo. Each look at Piwigo's images table marks the
//! recorded photos whose row is gone (their objects stay), unmarks those
//! that came back, and lets the guard hold every deletion when much
//! disappears at once or the table looks emptied or replaced. With
//! `[retention] deleted` set to a duration and no hold, the objects of
//! photos deleted that long ago are removed (`remove`).
//!
//! A look costs two small queries while nothing is deleted: the images
//! table's count and highest id are compared with the last look's, plus
//! the rows added since. Only when they disagree are the records
//! compared with Piwigo's rows, [`deleted::CHUNK`] ids per statement. A
//! slow sweep goes through the records the same way, one chunk a minute,
//! for what the counts cannot see (one photo deleted while another came
//! back) and to note the albums photos were moved to.

pub mod guard;
mod remove;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::MySqlPool;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::{Retain, RetentionConfig};
use crate::db::{DbError, Tables};
use crate::piwigo;
use crate::queue::deleted;
use crate::worker;
pub use remove::Removed;

/// Between two chunks of the slow sweep.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// Backoff cap while the database is unreachable.
const MAX_ERROR_BACKOFF: Duration = Duration::from_secs(60);

/// When the slow sweep's next chunk is due; where it is, is kept in the
/// database (`queue::deleted`), so runs and daemons carry on from there.
#[derive(Debug)]
pub struct Sweep {
    next_at: Instant,
}

impl Default for Sweep {
    fn default() -> Self {
        Self {
            next_at: Instant::now() + SWEEP_EVERY,
        }
    }
}

impl Sweep {
    /// A sweep whose next chunk is due at once (`run --until-idle` would
    /// otherwise never sweep; tests).
    pub fn due_now() -> Self {
        Self {
            next_at: Instant::now(),
        }
    }

    /// Whether a chunk is due now; if so, the next one is a minute away.
    fn due(&mut self) -> bool {
        if Instant::now() < self.next_at {
            return false;
        }
        self.next_at = Instant::now() + SWEEP_EVERY;
        true
    }
}

/// What one look did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Looked {
    pub marked: u64,
    pub returned: u64,
    /// The hold this look set (none when one stood already).
    pub held: Option<String>,
}

/// One look at Piwigo: marks, unmarks and the guard.
pub async fn look(
    pool: &MySqlPool,
    t: &Tables,
    cfg: &RetentionConfig,
    sweep: &mut Sweep,
) -> Result<Looked, DbError> {
    let mut looked = Looked::default();
    let Some(now) = piwigo::gallery_signal(pool, t).await? else {
        looked.held = hold(pool, t, &guard::Reason::TableMissing).await?;
        return Ok(looked);
    };
    deleted::note_new_places(pool, t).await?;
    let before = deleted::baseline(pool, t).await?;
    // Rows added since the last look: what the count should have grown by.
    let added = match &before {
        Some(b) if now.max_id >= b.max_id => Some(piwigo::count_above(pool, t, b.max_id).await?),
        _ => None,
    };
    let changed = match (&before, added) {
        (Some(b), Some(added)) => {
            b.database != now.database || b.created != now.created || now.count != b.count + added
        }
        _ => true,
    };
    let mut gone = Vec::new();
    if changed {
        let last = deleted::last_recorded_id(pool, t).await?;
        let mut lo = 0u32;
        while lo <= last {
            let hi = lo.saturating_add(deleted::CHUNK - 1);
            gone.extend(deleted::newly_missing(pool, t, lo, hi).await?);
            lo = match hi.checked_add(1) {
                Some(next) => next,
                None => break,
            };
        }
        looked.returned = deleted::unmark_returned(pool, t, 0, u32::MAX).await?;
    } else {
        if let (Some(b), Some(1..)) = (&before, added) {
            // Rows above the last look's highest id may be marked photos
            // coming back after the table was emptied (a restore).
            looked.returned =
                deleted::unmark_returned(pool, t, b.max_id.saturating_add(1), u32::MAX).await?;
        }
        if sweep.due() {
            let last = deleted::last_recorded_id(pool, t).await?;
            let (lo, hi) = deleted::next_sweep_chunk(pool, t, last).await?;
            deleted::refresh_places(pool, t, lo, hi).await?;
            gone = deleted::newly_missing(pool, t, lo, hi).await?;
            // A photo back while another went leaves the count as it was.
            looked.returned += deleted::unmark_returned(pool, t, lo, hi).await?;
        }
    }
    if !gone.is_empty() {
        let verdict = guard::judge(
            &guard::Look {
                before: before.as_ref(),
                now: &now,
                gone: gone.len() as u64,
                vanished: match (&before, added) {
                    (Some(b), Some(added)) => (b.count + added).saturating_sub(now.count),
                    _ => 0,
                },
                albums: albums_of(pool, t, &gone).await?,
            },
            cfg,
        );
        // Held before marked: no removal, here or in another daemon, can
        // come between the two.
        if let Some(reason) = verdict {
            looked.held = hold(pool, t, &reason).await?;
        }
        looked.marked = deleted::mark(pool, t, &gone).await?;
        tracing::info!(
            marked = looked.marked,
            retention.deleted = %cfg.deleted,
            "recorded photos deleted in Piwigo: marked deleted, their objects stay in the bucket"
        );
    }
    // Rows added move the baseline too: the next look counts from here.
    if before.as_ref() != Some(&now) {
        deleted::set_baseline(pool, t, &now).await?;
    }
    Ok(looked)
}

/// Holds deletions; returns the reason when this hold is new.
async fn hold(
    pool: &MySqlPool,
    t: &Tables,
    reason: &guard::Reason,
) -> Result<Option<String>, DbError> {
    let text = reason.to_string();
    if !deleted::set_hold(pool, t, &text).await? {
        return Ok(None);
    }
    tracing::warn!(
        reason = %text,
        "every deletion from the bucket is held; see `piwigo-s3upload retention`, and confirm with `piwigo-s3upload retention --release`"
    );
    Ok(Some(text))
}

/// For each album the gone photos were last seen in: how many of them,
/// and how many photos it holds now.
async fn albums_of(
    pool: &MySqlPool,
    t: &Tables,
    gone: &[u32],
) -> Result<BTreeMap<u32, (u64, u64)>, DbError> {
    let mut albums: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    for (_, list) in deleted::last_albums(pool, t, gone).await? {
        for album in list {
            albums.entry(album).or_default().0 += 1;
        }
    }
    let ids: Vec<u32> = albums.keys().copied().collect();
    for (album, left) in deleted::album_sizes(pool, t, &ids).await? {
        if let Some(entry) = albums.get_mut(&album) {
            entry.1 = left;
        }
    }
    Ok(albums)
}

/// One round: a look, then the removals due unless deletions are held.
pub async fn once(
    pool: &MySqlPool,
    t: &Tables,
    cfg: &RetentionConfig,
    sweep: &mut Sweep,
    ctx: &worker::Context,
) -> Result<Removed, DbError> {
    look(pool, t, cfg, sweep).await?;
    if matches!((cfg.deleted, cfg.versions), (Retain::Keep, Retain::Keep)) {
        return Ok(Removed::default());
    }
    // A hold stops every deletion from the bucket, earlier versions too.
    if deleted::hold(pool, t).await?.is_some() {
        return Ok(Removed::default());
    }
    let mut done = match cfg.deleted {
        Retain::For(after) => remove::due(pool, t, after, ctx).await?,
        Retain::Keep => Removed::default(),
    };
    if let Retain::For(after) = cfg.versions {
        let v = remove::versions_due(pool, t, after, ctx).await?;
        done.objects += v.objects;
        done.failed += v.failed;
    }
    Ok(done)
}

/// Looks every `monitor.poll_interval` until `stop`, with the `[retention]`
/// settings running at the time (a reload applies them); database errors
/// back off and are logged once until the database is back.
pub async fn run(
    pool: MySqlPool,
    t: Tables,
    configs: watch::Receiver<crate::config::Config>,
    contexts: watch::Receiver<Arc<worker::Context>>,
    stop: CancellationToken,
) {
    let mut sweep = Sweep::default();
    let mut failures = crate::periodic::Failures::default();
    let mut backoff: Option<Duration> = None;
    loop {
        let ctx = contexts.borrow().clone();
        let (cfg, every) = {
            let c = configs.borrow();
            (c.retention.clone(), c.monitor.poll_interval)
        };
        let delay = match once(&pool, &t, &cfg, &mut sweep, &ctx).await {
            Ok(_) => {
                failures.succeeded();
                backoff = None;
                every
            }
            Err(e) => {
                failures.failed(&e, "look failed; nothing is deleted, retrying with backoff");
                let next = backoff.map_or(every, |d| (d * 2).min(MAX_ERROR_BACKOFF));
                backoff = Some(next);
                next
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.cancelled() => return,
        }
    }
}
