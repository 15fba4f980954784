//! What the event loop does on each tick: feed the systemd watchdog while
//! the pipeline moves (starve it, once logged, when it does not), and log
//! progress while a backlog drains.

use std::time::{Duration, Instant};

use crate::metrics::Metrics;
use crate::{systemd, worker};

pub(super) struct Housekeeping {
    progress: Progress,
    /// The stuck pipeline was logged; cleared once it moves again.
    stall_reported: bool,
}

impl Housekeeping {
    pub(super) fn new(metrics: &Metrics) -> Self {
        Self {
            progress: Progress::new(metrics),
            stall_reported: false,
        }
    }

    /// How often the loop ticks: at least twice per watchdog period.
    pub(super) fn interval() -> Duration {
        systemd::watchdog_interval()
            .unwrap_or(Duration::from_secs(5))
            .min(Duration::from_secs(5))
    }

    pub(super) async fn tick(&mut self, ctx: &worker::Context) {
        // A pipeline that holds photos and settles none is stuck: starve
        // the watchdog so systemd restarts the daemon (photos come back
        // after the claim lease), and say why once.
        match ctx.metrics.stalled(ctx.upload.no_progress_alarm) {
            None => {
                systemd::watchdog();
                self.stall_reported = false;
            }
            Some(stuck_for) if !self.stall_reported => {
                self.stall_reported = true;
                tracing::error!(
                    stuck_for = ?stuck_for,
                    "no photo has settled for upload.no_progress_alarm while photos are in flight; /healthz fails and the watchdog is no longer fed"
                );
            }
            Some(_) => {}
        }
        if self.progress.due(ctx.upload.progress_interval) {
            match ctx.queue.backlog().await {
                Ok(left) => self.progress.log(&ctx.metrics, left),
                Err(e) => tracing::debug!(error = %e, "could not count the backlog"),
            }
        }
    }
}

/// Progress of a draining backlog: rate and ETA, logged at intervals.
struct Progress {
    last: Instant,
    done: u64,
    bytes: u64,
}

impl Progress {
    fn new(m: &Metrics) -> Self {
        let s = m.summary();
        Self {
            last: Instant::now(),
            done: s.uploaded + s.already_present + s.duplicates,
            bytes: s.bytes,
        }
    }

    fn due(&self, every: Duration) -> bool {
        self.last.elapsed() >= every
    }

    fn log(&mut self, m: &Metrics, left: u64) {
        let s = m.summary();
        let done = s.uploaded + s.already_present + s.duplicates;
        let secs = self.last.elapsed().as_secs_f64().max(0.001);
        let files = done - self.done;
        let mb_per_s = (s.bytes - self.bytes) as f64 / secs / 1e6;
        if files > 0 {
            let rate = files as f64 / secs;
            let eta = Duration::from_secs((left as f64 / rate) as u64);
            tracing::info!(
                done = files,
                left,
                photos_per_s = format_args!("{rate:.1}"),
                mb_per_s = format_args!("{mb_per_s:.1}"),
                eta = %humantime::format_duration(eta),
                "progress"
            );
            systemd::status(&format!("{left} photos left, {mb_per_s:.1} MB/s"));
        }
        self.last = Instant::now();
        self.done = done;
        self.bytes = s.bytes;
    }
}
