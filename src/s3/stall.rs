//! The watch on a photo's body while it is sent: a server that stops
//! taking bytes fails that request after [`GRACE`], as the SDK's own
//! stalled-stream protection would, so one stuck connection holds up one
//! photo for a bounded time.
//!
//! The SDK's protection is turned off for file bodies because of what it
//! costs on a slow link: it wakes every upload in flight ten times a
//! second to look at its throughput. Over 100 ms at 50 Mbit/s, with 8
//! uploads at once for 13 s, that was about a quarter of the daemon's
//! context switches and 15-25% of its CPU. This watch wakes once per
//! [`GRACE`] and upload, and only looks: the body itself notes each chunk
//! taken.
//! Snapshots and other bodies held in memory keep the SDK's protection.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_s3::config::StalledStreamProtectionConfig;
use tokio::time::Instant;

use super::error::S3Error;

/// How long a body may go without the server taking a byte of it: the
/// SDK's default grace period for its own protection.
pub const GRACE: Duration = Duration::from_secs(20);

/// When a body last gave a chunk to the connection, and whether it has
/// given them all. Shared by the body (and each retry's new body) and the
/// watch.
#[derive(Debug, Clone)]
pub struct Progress(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    start: Instant,
    /// Milliseconds from `start` to the last chunk taken.
    last: AtomicU64,
    /// Every byte was taken: what remains is the server's answer, which
    /// the watch does not judge (the SDK's protection does not either).
    sent: AtomicBool,
}

impl Progress {
    pub fn new() -> Self {
        Self(Arc::new(Inner {
            start: Instant::now(),
            last: AtomicU64::new(0),
            sent: AtomicBool::new(false),
        }))
    }

    /// A body starts (again, for a retry): watched from now.
    pub(super) fn restart(&self) {
        self.moved();
        self.0.sent.store(false, Ordering::Relaxed);
    }

    /// A chunk was taken.
    pub(super) fn moved(&self) {
        let ms = u64::try_from(self.0.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.0.last.store(ms, Ordering::Relaxed);
    }

    /// The last chunk was taken.
    pub(super) fn sent(&self) {
        self.0.sent.store(true, Ordering::Relaxed);
    }

    pub(super) fn is_sent(&self) -> bool {
        self.0.sent.load(Ordering::Relaxed)
    }

    fn last(&self) -> Instant {
        self.0.start + Duration::from_millis(self.0.last.load(Ordering::Relaxed))
    }
}

/// The body stalled: no byte taken for this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stalled(pub Duration);

impl Stalled {
    /// As an S3 error with no answer: the photo's send failed, and is
    /// tried again after its backoff, as after any network failure.
    pub(super) fn error(self, op: &'static str, key: &str) -> S3Error {
        S3Error {
            op,
            target: key.to_owned(),
            http_status: 0,
            code: None,
            message: format!(
                "the server took no byte of the body for {} s",
                self.0.as_secs()
            ),
        }
    }
}

/// The SDK's stalled-stream protection off for uploads (this module
/// watches them), kept for the answers' bodies.
pub(super) fn sdk_watch_off() -> aws_sdk_s3::config::Builder {
    aws_sdk_s3::config::Builder::new().stalled_stream_protection(
        StalledStreamProtectionConfig::enabled()
            .upload_enabled(false)
            .build(),
    )
}

/// Runs `send` while its body moves: `Err` when no chunk of it was taken
/// for `grace` before it was all sent.
pub async fn watch<F: Future>(
    progress: &Progress,
    grace: Duration,
    send: F,
) -> Result<F::Output, Stalled> {
    tokio::pin!(send);
    loop {
        tokio::select! {
            out = &mut send => return Ok(out),
            () = tokio::time::sleep_until(progress.last() + grace) => {
                if progress.is_sent() {
                    return Ok(send.await);
                }
                if progress.last() + grace <= Instant::now() {
                    return Err(Stalled(grace));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A send that never ends, watched from now: it must fail after
    /// exactly the grace.
    async fn fails_after_the_grace(p: &Progress) {
        let started = Instant::now();
        let out = watch(p, GRACE, std::future::pending::<()>()).await;
        assert_eq!(out, Err(Stalled(GRACE)));
        assert_eq!(started.elapsed(), GRACE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stops_moving_fails_after_the_grace() {
        let p = Progress::new();
        p.restart();
        fails_after_the_grace(&p).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_moves_is_never_failed() {
        let p = Progress::new();
        p.restart();
        let mover = p.clone();
        // A chunk every 15 s for two minutes, then the answer.
        let send = async move {
            for _ in 0..8 {
                tokio::time::sleep(Duration::from_secs(15)).await;
                mover.moved();
            }
            "answered"
        };
        assert_eq!(watch(&p, GRACE, send).await, Ok("answered"));
    }

    #[tokio::test(start_paused = true)]
    async fn the_wait_for_the_answer_is_not_judged() {
        let p = Progress::new();
        p.restart();
        let mover = p.clone();
        let send = async move {
            mover.moved();
            mover.sent();
            // The server takes a minute to answer once it has every byte.
            tokio::time::sleep(Duration::from_secs(60)).await;
            "answered"
        };
        assert_eq!(watch(&p, GRACE, send).await, Ok("answered"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_is_watched_afresh() {
        let p = Progress::new();
        p.restart();
        p.sent();
        tokio::time::sleep(Duration::from_secs(30)).await;
        // The SDK sends the body again: it must move again.
        p.restart();
        fails_after_the_grace(&p).await;
    }
}
