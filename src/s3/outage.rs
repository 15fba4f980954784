//! S3 outages logged once: the first failure that says "no answer" or
//! "server error" opens an outage and is logged as an error (a warning
//! when the server only asked to slow down); failures during
//! it are logged at debug level only; the next success closes it with a
//! "reachable again" line. Without this, an outage would log a line per
//! photo per retry.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::S3Error;

#[derive(Debug, Default)]
pub struct Outage {
    since: Mutex<Option<Instant>>,
    failures: AtomicU64,
}

impl Outage {
    /// Records a failure; returns whether it belongs to an outage (then
    /// the caller logs the photo's failure quietly).
    pub fn failed(&self, e: &S3Error, scrubbed: &str) -> bool {
        if !(e.http_status == 0 || e.http_status >= 500) {
            return false;
        }
        self.failures.fetch_add(1, Ordering::Relaxed);
        let Ok(mut since) = self.since.lock() else {
            return false;
        };
        if since.is_none() {
            *since = Some(Instant::now());
            if e.is_slow_down() {
                // A busy server is not a broken one: with the adaptive
                // figure a throttling server says so in normal operation.
                tracing::warn!(
                    error = %scrubbed,
                    "S3 asks to slow down; the photo is retried with backoff (with upload.workers = \"auto\", fewer uploads run at once)"
                );
            } else {
                tracing::error!(
                    error = %scrubbed,
                    "S3 unreachable or failing; uploads are retried with backoff until it answers again"
                );
            }
        }
        true
    }

    pub fn succeeded(&self) {
        let Ok(mut since) = self.since.lock() else {
            return;
        };
        if let Some(at) = since.take() {
            let failures = self.failures.swap(0, Ordering::Relaxed);
            tracing::info!(
                down_for = ?at.elapsed(),
                failed_attempts = failures,
                "S3 reachable again"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(status: u16) -> S3Error {
        S3Error {
            op: "put object",
            target: "k".into(),
            http_status: status,
            code: None,
            message: "m".into(),
        }
    }

    #[test]
    fn slow_down_is_told_from_a_failing_server() {
        let slow = |status, code: Option<&str>| S3Error {
            code: code.map(str::to_owned),
            ..err(status)
        };
        assert!(slow(429, None).is_slow_down());
        assert!(slow(503, Some("SlowDown")).is_slow_down());
        assert!(!slow(503, Some("ServiceUnavailable")).is_slow_down());
        assert!(!slow(500, Some("InternalError")).is_slow_down());
        assert!(!slow(0, None).is_slow_down());
        // Either way an outage is opened, so the photos after it are quiet.
        let o = Outage::default();
        assert!(o.failed(&slow(503, Some("SlowDown")), "x"));
        assert!(o.since.lock().unwrap().is_some());
    }

    #[test]
    fn only_unanswered_and_server_errors_open_an_outage() {
        let o = Outage::default();
        assert!(!o.failed(&err(403), "x"));
        assert!(!o.failed(&err(404), "x"));
        assert!(o.failed(&err(0), "x"));
        assert!(o.failed(&err(503), "x"));
        assert!(o.since.lock().unwrap().is_some());
        o.succeeded();
        assert!(o.since.lock().unwrap().is_none());
        assert_eq!(o.failures.load(Ordering::Relaxed), 0);
    }
}
