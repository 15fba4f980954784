//! The event loop. Each turn waits for one event (a stop, a reload, a
//! tick, a claim's answer, a photo finished, photos due) and handles it;
//! then, if the pipeline has room and photos may be due, one claim starts.
//! A photo's life from here on is in `worker`.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures_util::future::OptionFuture;
use tokio::sync::Notify;
use tokio::task::{Id, JoinError, JoinSet};
use tokio::time::{Instant, MissedTickBehavior};

use super::housekeeping::Housekeeping;
use super::settings::Settings;
use crate::db::DbError;
use crate::queue::Claimed;
use crate::shutdown::Shutdown;
use crate::worker;

/// How soon an empty queue is asked again when running until idle.
const IDLE_RECHECK: Duration = Duration::from_millis(250);
/// Backoff while the database refuses claims: first and longest wait.
const DB_BACKOFF_MIN: Duration = Duration::from_millis(500);
const DB_BACKOFF_MAX: Duration = Duration::from_secs(30);

enum Event {
    Stop,
    Reload,
    Tick,
    Claimed(Result<Vec<Claimed>, DbError>),
    Finished(Result<(Id, ()), JoinError>),
    /// The monitor queued photos, or a reload made failed ones due.
    Woken,
    /// A wait (empty queue, database backoff) is over.
    WaitOver,
}

type Claim = Pin<Box<dyn Future<Output = Result<Vec<Claimed>, DbError>> + Send>>;

/// Why no claim starts for now.
struct Wait {
    until: Instant,
    /// The database failed: only time ends this wait, not a wake-up.
    backoff: bool,
}

struct Pipeline {
    until_idle: bool,
    shutdown: Shutdown,
    photos: JoinSet<()>,
    running: HashMap<Id, Claimed>,
    claim: Option<Claim>,
    wait: Option<Wait>,
    db_down_since: Option<std::time::Instant>,
    db_delay: Duration,
}

/// Claims photos and runs them until a stop (or, with `until_idle`, until
/// nothing is left), then lets the ones in flight finish.
pub(super) async fn run(
    settings: &mut Settings,
    wake: &Notify,
    shutdown: Shutdown,
    until_idle: bool,
) {
    let mut p = Pipeline {
        until_idle,
        shutdown,
        photos: JoinSet::new(),
        running: HashMap::new(),
        claim: None,
        wait: None,
        db_down_since: None,
        db_delay: DB_BACKOFF_MIN,
    };
    let mut housekeeping = Housekeeping::new(&settings.ctx().metrics);
    let mut tick = tokio::time::interval(Housekeeping::interval());
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        p.start_claim(settings);
        let wait_until = p.wait.as_ref().map(|w| w.until);
        let event = tokio::select! {
            biased;
            _ = p.shutdown.graceful.cancelled() => Event::Stop,
            _ = p.shutdown.reload.notified() => Event::Reload,
            _ = tick.tick() => Event::Tick,
            Some(r) = OptionFuture::from(p.claim.as_mut()), if p.claim.is_some() => Event::Claimed(r),
            Some(done) = p.photos.join_next_with_id(), if !p.photos.is_empty() => Event::Finished(done),
            _ = wake.notified() => Event::Woken,
            _ = until(wait_until) => Event::WaitOver,
        };
        match event {
            Event::Stop => break,
            Event::Reload => settings.reload().await,
            Event::Tick => housekeeping.tick(&settings.ctx()).await,
            Event::Claimed(result) => {
                p.claim = None;
                if p.claimed(settings, result).await {
                    break;
                }
            }
            Event::Finished(done) => {
                p.finished(&settings.ctx(), done).await;
                // Its slot is free, and photos waiting for its md5 or its
                // key may be due now.
                p.end_idle_wait();
            }
            Event::Woken => p.end_idle_wait(),
            Event::WaitOver => p.wait = None,
        }
    }
    p.hand_back_claim_in_flight(&settings.ctx()).await;
    p.drain(&settings.ctx()).await;
}

/// How many photos to claim now, holding `held` with `figure` uploads
/// allowed at once and room for `capacity`. A claim is a transaction of
/// several statements: one per finished photo was a third of the
/// database's work on a backlog. So while the photos held cover every
/// slot, a claim waits until room for half the figure is free; as soon
/// as they no longer do, whatever room there is is claimed.
fn room_to_claim(held: usize, figure: usize, capacity: usize) -> usize {
    let room = capacity.saturating_sub(held);
    if held < figure || room >= (figure / 2).max(1) {
        room
    } else {
        0
    }
}

/// Ready at `at`; never when there is nothing to wait for.
async fn until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Pipeline {
    /// Photos may be due: an empty queue is asked again at once. A
    /// database backoff runs its course.
    fn end_idle_wait(&mut self) {
        self.wait = self.wait.take().filter(|w| w.backoff);
    }

    /// Claims as many photos as there is room for, unless a claim is
    /// under way or a wait is not over.
    fn start_claim(&mut self, settings: &Settings) {
        let room = room_to_claim(
            self.running.len(),
            settings.uploads_at_once(),
            settings.capacity(),
        );
        if self.claim.is_some() || self.wait.is_some() || room == 0 {
            return;
        }
        let ctx = settings.ctx();
        let queue = ctx.queue.clone();
        let lease = ctx.upload.claim_lease;
        self.claim = Some(Box::pin(async move { queue.claim(room, lease).await }));
    }

    /// Starts the claimed photos. `true` when running until idle and
    /// nothing is left.
    async fn claimed(
        &mut self,
        settings: &Settings,
        result: Result<Vec<Claimed>, DbError>,
    ) -> bool {
        let rows = match result {
            Ok(rows) => rows,
            Err(e) => {
                self.db_failed(&e);
                return false;
            }
        };
        if let Some(since) = self.db_down_since.take() {
            tracing::info!(down_for = ?since.elapsed(), "database reachable again");
        }
        self.db_delay = DB_BACKOFF_MIN;
        if !rows.is_empty() {
            let ctx = settings.ctx();
            for row in rows {
                self.start(&ctx, row);
            }
            return false;
        }
        if self.until_idle && self.photos.is_empty() {
            match settings.ctx().queue.has_work_left().await {
                Ok(false) => return true,
                Ok(true) => {}
                Err(e) => tracing::warn!(error = %e, "could not look for work left"),
            }
        }
        let pause = if self.until_idle {
            IDLE_RECHECK
        } else {
            settings.config().monitor.poll_interval
        };
        self.wait = Some(Wait {
            until: Instant::now() + pause,
            backoff: false,
        });
        false
    }

    fn start(&mut self, ctx: &std::sync::Arc<worker::Context>, row: Claimed) {
        let work = worker::run(
            ctx.clone(),
            row.clone(),
            self.shutdown.graceful.clone(),
            self.shutdown.now.clone(),
        );
        let handle = self.photos.spawn(work);
        self.running.insert(handle.id(), row);
        ctx.metrics.set_in_flight(self.running.len());
    }

    fn db_failed(&mut self, e: &DbError) {
        if self.db_down_since.is_none() {
            if e.is_connection() {
                tracing::error!(
                    error = %e,
                    "cannot claim photos: database unreachable; retrying with backoff"
                );
            } else {
                tracing::error!(
                    error = %e,
                    "cannot claim photos: the database refused the query; retrying with backoff until it is fixed"
                );
            }
            self.db_down_since = Some(std::time::Instant::now());
        }
        self.wait = Some(Wait {
            until: Instant::now() + self.db_delay,
            backoff: true,
        });
        self.db_delay = (self.db_delay * 2).min(DB_BACKOFF_MAX);
    }

    /// A finished photo; one that panicked is a failure of that photo
    /// alone.
    async fn finished(&mut self, ctx: &worker::Context, done: Result<(Id, ()), JoinError>) {
        let (id, panic) = match done {
            Ok((id, ())) => (id, None),
            Err(e) => (e.id(), Some(e)),
        };
        let claim = self.running.remove(&id);
        ctx.metrics.set_in_flight(self.running.len());
        if let (Some(e), Some(claim)) = (panic, claim) {
            worker::panicked(ctx, &claim, &e).await;
        }
    }

    /// Photos claimed just as the stop came never start: they go straight
    /// back to the queue.
    async fn hand_back_claim_in_flight(&mut self, ctx: &worker::Context) {
        let Some(claim) = self.claim.take() else {
            return;
        };
        let Ok(rows) = claim.await else {
            return;
        };
        for row in rows {
            if let Err(e) = ctx.queue.release(&row).await {
                tracing::warn!(image.id = row.image_id, error = %e, "could not hand the photo back; it returns after the claim lease");
            }
        }
    }

    /// Lets uploads in flight finish within the limit, then stops the rest
    /// (they hand their photos back to the queue).
    async fn drain(&mut self, ctx: &worker::Context) {
        crate::systemd::stopping();
        if self.photos.is_empty() {
            return;
        }
        let limit = ctx.upload.shutdown_timeout;
        tracing::info!(in_flight = self.photos.len(), limit = ?limit, "waiting for uploads in flight");
        let deadline = tokio::time::sleep(limit);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                done = self.photos.join_next_with_id() => match done {
                    Some(done) => self.finished(ctx, done).await,
                    None => return,
                },
                _ = &mut deadline => break,
                _ = self.shutdown.now.cancelled() => break,
            }
        }
        tracing::warn!(
            in_flight = self.photos.len(),
            "stopping uploads in flight; their photos go back to the queue"
        );
        self.shutdown.now.cancel();
        while let Some(done) = self.photos.join_next_with_id().await {
            self.finished(ctx, done).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::room_to_claim;

    #[test]
    fn claims_come_in_batches_while_every_slot_has_a_photo() {
        // 8 uploads at once, room for 16: one photo finished out of 16
        // held claims nothing; half the figure free claims it all.
        assert_eq!(room_to_claim(15, 8, 16), 0);
        assert_eq!(room_to_claim(13, 8, 16), 0);
        assert_eq!(room_to_claim(12, 8, 16), 4);
        assert_eq!(room_to_claim(0, 8, 16), 16);
    }

    #[test]
    fn a_slot_without_a_photo_claims_at_once() {
        // Fewer held than slots: any room is claimed, however small.
        assert_eq!(room_to_claim(7, 8, 8), 1);
        // The figure fell below what is held: nothing until photos finish.
        assert_eq!(room_to_claim(20, 8, 16), 0);
    }

    #[test]
    fn one_upload_at_once_still_claims_one_by_one() {
        assert_eq!(room_to_claim(1, 1, 2), 1);
        assert_eq!(room_to_claim(2, 1, 2), 0);
        assert_eq!(room_to_claim(0, 1, 2), 2);
    }
}
