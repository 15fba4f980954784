//! The upload slots: one semaphore permit per upload at once, the figure
//! it holds now (which the pipeline's claim-ahead follows), and the task
//! that moves the figure with `concurrency::Controller` when
//! `upload.workers = "auto"`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, watch};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::concurrency::{Controller, Window};
use crate::config::{Config, Workers};
use crate::metrics::Metrics;
use crate::s3::Sent;

/// How often the task looks whether photos wait for a slot.
const LOOK_EVERY: Duration = Duration::from_millis(100);
/// A window lasts as long as the controller asks, and until as many
/// uploads finished as there are slots (each slot has had its say), or
/// this long, for large files on slow links.
const MAX_WINDOW: Duration = Duration::from_secs(30);
/// Looks in a row with no photo waiting that make a window quiet rather
/// than not yet begun (a second).
const QUIET_LOOKS: u32 = 10;

#[derive(Debug)]
pub(super) struct Slots {
    sem: Arc<Semaphore>,
    figure: AtomicUsize,
    metrics: Arc<Metrics>,
    /// What the uploads' connections have taken, which the windows
    /// measure.
    sent: Sent,
}

impl Slots {
    pub(super) fn new(n: usize, metrics: Arc<Metrics>) -> Arc<Self> {
        metrics.set_upload_slots(n);
        Arc::new(Self {
            sem: Arc::new(Semaphore::new(n)),
            figure: AtomicUsize::new(n),
            metrics,
            sent: Sent::default(),
        })
    }

    pub(super) fn semaphore(&self) -> Arc<Semaphore> {
        self.sem.clone()
    }

    /// The counter every target the daemon uploads through adds to.
    pub(super) fn sent(&self) -> Sent {
        self.sent.clone()
    }

    /// Uploads allowed at once now.
    pub(super) fn figure(&self) -> usize {
        self.figure.load(Ordering::Relaxed)
    }

    /// Grows at once; shrinks as the photos holding slots finish. The
    /// previous figure.
    pub(super) fn set(&self, to: usize) -> usize {
        let from = self.figure.swap(to, Ordering::Relaxed);
        self.metrics.set_upload_slots(to);
        if to > from {
            self.sem.add_permits(to - from);
        } else if let Ok(n) = u32::try_from(from - to)
            && n > 0
        {
            let sem = self.sem.clone();
            tokio::spawn(async move {
                if let Ok(p) = sem.acquire_many_owned(n).await {
                    p.forget();
                }
            });
        }
        from
    }

    /// Photos wait for a slot: every slot is taken and more photos are
    /// held than there are slots.
    fn backlog(&self) -> bool {
        self.sem.available_permits() == 0 && self.metrics.in_flight() > self.figure() as u64
    }
}

/// A window being measured: the counters at its start.
struct Open {
    started: Instant,
    /// Bytes the connections had taken.
    sent: u64,
    finished: u64,
    slow_downs: u64,
    /// Looks taken, and how many of them saw photos waiting for a slot.
    looks: u32,
    waiting: u32,
    /// Looks before the first that saw photos waiting: the window opened
    /// again at each (see [`Open::look`]).
    not_begun: u32,
}

impl Open {
    fn new(slots: &Slots) -> Self {
        let m = &slots.metrics;
        let s = m.summary();
        Self {
            started: Instant::now(),
            sent: slots.sent.get(),
            finished: s.uploaded + s.already_present + s.duplicates + s.failed,
            slow_downs: m.slow_downs(),
            looks: 0,
            waiting: 0,
            not_begun: 0,
        }
    }

    /// Counts a look. A window begins at the first look that finds photos
    /// waiting for a slot: before it, at the start, after a quiet spell or
    /// a step up, the pipeline is still filling, and what it finishes says
    /// little of the link (at the start over 100 ms, half a second of the
    /// first hashes and connections, counted as the throughput of the
    /// first figure). Until then the window opens again at each look, for
    /// a second at most; after that it is a quiet one. Push-back counts
    /// from the first opening: it is never lost.
    fn look(&mut self, waiting: bool, slots: &Slots) {
        if !waiting && self.waiting == 0 && self.not_begun < QUIET_LOOKS {
            *self = Self {
                not_begun: self.not_begun + 1,
                slow_downs: self.slow_downs,
                ..Self::new(slots)
            };
            return;
        }
        self.looks += 1;
        if waiting {
            self.waiting += 1;
        }
    }

    /// Photos waited at three looks in four or more: a look right after a
    /// change may catch the pipeline claiming its new room.
    fn backlog(&self) -> bool {
        self.looks > 0 && self.waiting * 4 >= self.looks * 3
    }

    /// The finished window, once it has lasted long enough.
    fn close(&self, slots: &Slots, shortest: Duration) -> Option<Window> {
        let took = self.started.elapsed();
        let m = &slots.metrics;
        let s = m.summary();
        let finished = s.uploaded + s.already_present + s.duplicates + s.failed - self.finished;
        let pushed_back = m.slow_downs() - self.slow_downs;
        let enough = finished >= slots.figure() as u64 || pushed_back > 0 || took >= MAX_WINDOW;
        (took >= shortest && enough).then(|| Window {
            bytes: slots.sent.get().saturating_sub(self.sent),
            seconds: took.as_secs_f64(),
            pushed_back,
            backlog: self.backlog(),
        })
    }
}

/// Moves the figure while `upload.workers` is "auto"; a fixed figure is
/// set by the reload itself (and kept here). Follows the bounds across
/// reloads.
pub(super) async fn run(
    slots: Arc<Slots>,
    mut configs: watch::Receiver<Config>,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(LOOK_EVERY);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut tuned: Option<((usize, usize), Controller)> = None;
    let mut open = Open::new(&slots);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let (workers, bounds) = {
            let up = &configs.borrow_and_update().upload;
            (up.workers, (up.min_workers, up.max_workers))
        };
        if let Workers::Fixed(n) = workers {
            // Set by the reload already, unless a window of the "auto"
            // before it closed in between.
            if slots.figure() != n {
                change(&slots, n, "upload.workers");
            }
            tuned = None;
            continue;
        }
        let controller = match &mut tuned {
            Some((b, c)) if *b == bounds => c,
            _ => {
                // Started, switched to "auto" or new bounds: from the
                // figure running now, kept within the bounds.
                let c = Controller::new(bounds.0, bounds.1, slots.figure());
                change(&slots, c.current(), "upload.min_workers/max_workers");
                open = Open::new(&slots);
                &mut tuned.insert((bounds, c)).1
            }
        };
        open.look(slots.backlog(), &slots);
        let Some(window) = open.close(&slots, controller.shortest_window()) else {
            continue;
        };
        tracing::debug!(
            slots = slots.figure(),
            mb_per_s = window.bytes as f64 / 1e6 / window.seconds,
            seconds = window.seconds,
            backlog = window.backlog,
            pushed_back = window.pushed_back,
            "measurement window"
        );
        if let Some((to, why)) = controller.window(window) {
            change(&slots, to, why.as_str());
        }
        open = Open::new(&slots);
    }
}

fn change(slots: &Slots, to: usize, why: &str) {
    let from = slots.set(to);
    if from != to {
        tracing::info!(from, to, why, "uploads at once changed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_begins_when_photos_first_wait() {
        let slots = Slots::new(8, Arc::default());
        let mut open = Open::new(&slots);
        let first = open.started;
        for _ in 0..3 {
            open.look(false, &slots);
        }
        assert_eq!((open.looks, open.waiting, open.not_begun), (0, 0, 3));
        assert!(open.started >= first);
        // Photos wait: the window has begun, and the looks before it do
        // not make it quiet.
        open.look(true, &slots);
        open.look(true, &slots);
        open.look(false, &slots);
        assert_eq!((open.looks, open.waiting), (3, 2));
        assert!(!open.backlog());
        open.look(true, &slots);
        open.look(true, &slots);
        assert!(open.backlog());
    }

    #[test]
    fn a_second_with_nothing_waiting_is_a_quiet_window() {
        // No slot: the window is long enough with nothing finished.
        let slots = Slots::new(0, Arc::default());
        let mut open = Open::new(&slots);
        for _ in 0..QUIET_LOOKS + 4 {
            open.look(false, &slots);
        }
        assert_eq!((open.looks, open.not_begun), (4, QUIET_LOOKS));
        open.look(true, &slots);
        assert!(!open.backlog());
        let closed = open.close(&slots, Duration::ZERO).map(|w| w.backlog);
        assert_eq!(closed, Some(false));
    }

    #[test]
    fn push_back_before_the_window_begins_is_kept() {
        let slots = Slots::new(8, Arc::default());
        let mut open = Open::new(&slots);
        slots.metrics.slowed_down();
        open.look(false, &slots);
        open.look(false, &slots);
        let w = open.close(&slots, Duration::ZERO);
        assert_eq!(w.map(|w| w.pushed_back), Some(1));
    }
}
