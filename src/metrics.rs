//! What the daemon did, counted once and read three ways: the summary at
//! exit, progress lines in the log, and Prometheus text on `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::status::Outcome;

type Labels = Vec<(String, String)>;

fn label(name: &str, value: &str) -> Labels {
    vec![(name.to_owned(), value.to_owned())]
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    uploads: Family<Labels, Counter>,
    bytes: Counter,
    failures: Family<Labels, Counter>,
    deleted: Counter,
    upload_seconds: Histogram,
    poll_seconds: Histogram,
    queue_depth: Family<Labels, Gauge>,
    /// Unix time of the last successful poll, in milliseconds (0: none).
    last_poll_ms: AtomicU64,
    /// All failures, for the summary (the family cannot be iterated).
    failed_total: AtomicU64,
    /// Photos claimed by this daemon and not settled yet.
    in_flight: AtomicU64,
    /// Unix time in milliseconds when a photo last settled (any outcome or
    /// failure), or when work arrived after an idle spell.
    last_progress_ms: AtomicU64,
    /// Bytes read to hash files, whatever became of them.
    hashed_bytes: Counter,
    /// New versions queued, by what found the change (`poll`, `pass`).
    changes: Family<Labels, Counter>,
    /// Recorded files `stat()`ed to look for a change, by `poll` or `pass`.
    checked: Family<Labels, Counter>,
    /// Changed photos queued and earlier versions kept, from the tables.
    versions: Family<Labels, Gauge>,
    /// The last `verify`, as stored in the state table.
    verify: Family<Labels, Gauge>,
    /// The last database snapshot, as stored in the state table.
    snapshot: Family<Labels, Gauge>,
    /// Photos deleted in Piwigo, as the deleted and removed tables hold them.
    deletions: Family<Labels, Gauge>,
    /// Uploads allowed at once now (`upload.workers`, or its figure when
    /// "auto").
    upload_slots: Gauge,
    /// S3 answers that asked us to slow down (503 SlowDown, 429), each
    /// attempt.
    slow_downs: Counter,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A snapshot of the counters, returned when the daemon stops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub uploaded: u64,
    pub already_present: u64,
    pub duplicates: u64,
    pub failed: u64,
    pub deleted: u64,
    pub bytes: u64,
    pub hashed_bytes: u64,
    /// New versions queued because a recorded file changed.
    pub changes_queued: u64,
    /// Recorded files looked at by the change check.
    pub files_checked: u64,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("piwigo_s3upload");
        let uploads = Family::<Labels, Counter>::default();
        registry.register(
            "uploads",
            "Photos finished, by outcome (uploaded, already_present, duplicate)",
            uploads.clone(),
        );
        let bytes = Counter::default();
        registry.register(
            "uploaded_bytes",
            "Bytes sent to S3 by finished uploads",
            bytes.clone(),
        );
        let failures = Family::<Labels, Counter>::default();
        registry.register(
            "failures",
            "Failed attempts, by queue status",
            failures.clone(),
        );
        let deleted = Counter::default();
        registry.register(
            "deleted_before_upload",
            "Queued photos deleted from Piwigo before their upload",
            deleted.clone(),
        );
        let upload_seconds = Histogram::new(exponential_buckets(0.01, 2.0, 16));
        registry.register(
            "upload_duration_seconds",
            "Time from claim to recorded result of one photo",
            upload_seconds.clone(),
        );
        let poll_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        registry.register(
            "poll_duration_seconds",
            "Time of one monitoring poll",
            poll_seconds.clone(),
        );
        let queue_depth = Family::<Labels, Gauge>::default();
        registry.register(
            "queue_depth",
            "Photos in the queue and records of finished photos, by status",
            queue_depth.clone(),
        );
        let hashed_bytes = Counter::default();
        registry.register(
            "hashed_bytes",
            "Bytes read from the gallery to hash files",
            hashed_bytes.clone(),
        );
        let changes = Family::<Labels, Counter>::default();
        registry.register(
            "changes_queued",
            "New versions of recorded photos and formats queued, by what found the change (poll, pass)",
            changes.clone(),
        );
        let checked = Family::<Labels, Counter>::default();
        registry.register(
            "change_checks",
            "Recorded files stat()ed to look for a change, by poll or pass",
            checked.clone(),
        );
        let versions = Family::<Labels, Gauge>::default();
        registry.register(
            "versions",
            "changed_queued: new versions of changed photos and formats waiting; versions_kept: earlier objects kept in the bucket",
            versions.clone(),
        );
        let verify = Family::<Labels, Gauge>::default();
        registry.register(
            "verify",
            "The last verify: finished_at (Unix time, 0 = never), ok (1/0), not_backed_up, objects_missing, objects_damaged, files_with_problems",
            verify.clone(),
        );
        let snapshot = Family::<Labels, Gauge>::default();
        registry.register(
            "snapshot",
            "The last database snapshot: finished_at (Unix time), ok (1/0), bytes, last_ok_at (Unix time of the last good one, 0 = none)",
            snapshot.clone(),
        );
        let deletions = Family::<Labels, Gauge>::default();
        registry.register(
            "deletions",
            "Photos deleted in Piwigo: retained (objects kept), objects_removed (by retention.deleted), removals_failing, held (1 while the guard holds every deletion)",
            deletions.clone(),
        );
        let upload_slots = Gauge::default();
        registry.register(
            "upload_slots",
            "Uploads allowed at once now: upload.workers, or the figure found when it is \"auto\"",
            upload_slots.clone(),
        );
        let slow_downs = Counter::default();
        registry.register(
            "s3_slow_downs",
            "S3 answers that asked to slow down (503 SlowDown, 429), each attempt counted, retried ones included",
            slow_downs.clone(),
        );
        Self {
            registry,
            upload_slots,
            slow_downs,
            hashed_bytes,
            changes,
            checked,
            versions,
            verify,
            snapshot,
            deletions,
            uploads,
            bytes,
            failures,
            deleted,
            upload_seconds,
            poll_seconds,
            queue_depth,
            last_poll_ms: AtomicU64::new(0),
            failed_total: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            last_progress_ms: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    pub fn finished(&self, outcome: Outcome, bytes: u64, took: Duration) {
        self.uploads
            .get_or_create(&label("outcome", outcome.as_str()))
            .inc();
        if outcome == Outcome::Uploaded {
            self.bytes.inc_by(bytes);
        }
        self.upload_seconds.observe(took.as_secs_f64());
    }

    /// Photos held by this daemon now; work arriving after an idle spell
    /// starts the no-progress clock afresh.
    pub fn set_in_flight(&self, n: usize) {
        let before = self.in_flight.swap(n as u64, Ordering::Relaxed);
        if before == 0 && n > 0 {
            self.progressed();
        }
    }

    /// Photos claimed by this daemon and not settled yet.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub fn set_upload_slots(&self, n: usize) {
        self.upload_slots.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Uploads allowed at once now, as the gauge shows it.
    pub fn upload_slots(&self) -> i64 {
        self.upload_slots.get()
    }

    pub fn slowed_down(&self) {
        self.slow_downs.inc();
    }

    /// Slow-downs so far, for the concurrency controller.
    pub fn slow_downs(&self) -> u64 {
        self.slow_downs.get()
    }

    fn progressed(&self) {
        self.last_progress_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// How long photos have been in flight without any settling, when
    /// that is `limit` or longer: the pipeline is stuck.
    pub fn stalled(&self, limit: Duration) -> Option<Duration> {
        if self.in_flight.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let since = self.last_progress_ms.load(Ordering::Relaxed);
        let age = Duration::from_millis(now_ms().saturating_sub(since));
        (age >= limit).then_some(age)
    }

    pub fn failed(&self, status: &str, took: Duration) {
        self.failures.get_or_create(&label("status", status)).inc();
        self.failed_total.fetch_add(1, Ordering::Relaxed);
        self.upload_seconds.observe(took.as_secs_f64());
        self.progressed();
    }

    pub fn hashed(&self, bytes: u64) {
        self.hashed_bytes.inc_by(bytes);
    }

    /// `found_by` (`poll` or `pass`) looked at `checked` recorded files
    /// and queued `queued` new versions.
    pub fn changes(&self, found_by: &str, checked: u64, queued: u64) {
        self.checked
            .get_or_create(&label("by", found_by))
            .inc_by(checked);
        self.changes
            .get_or_create(&label("found_by", found_by))
            .inc_by(queued);
    }

    pub fn deleted(&self) {
        self.deleted.inc();
    }

    pub fn polled(&self, took: Duration) {
        self.poll_seconds.observe(took.as_secs_f64());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        self.last_poll_ms.store(now, Ordering::Relaxed);
    }

    /// Seconds since the last successful poll, `None` before the first.
    pub fn last_poll_age(&self) -> Option<f64> {
        let at = self.last_poll_ms.load(Ordering::Relaxed);
        if at == 0 {
            return None;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(at);
        Some(now.saturating_sub(at) as f64 / 1000.0)
    }

    /// Replaces the queue depth gauges with fresh counts.
    pub fn set_queue_depth<'a>(&self, counts: impl IntoIterator<Item = (&'a String, &'a u64)>) {
        self.queue_depth.clear();
        for (status, n) in counts {
            self.queue_depth
                .get_or_create(&label("status", status))
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
    }

    /// Shows the version counts, one gauge per figure.
    pub fn set_versions<'a>(&self, figures: impl IntoIterator<Item = (&'a str, i64)>) {
        for (what, value) in figures {
            self.versions.get_or_create(&label("what", what)).set(value);
        }
    }

    /// Shows the last verify's result, one gauge per figure.
    pub fn set_verify<'a>(&self, figures: impl IntoIterator<Item = (&'a str, i64)>) {
        for (what, value) in figures {
            self.verify.get_or_create(&label("what", what)).set(value);
        }
    }

    /// Shows the last snapshot's result, one gauge per figure.
    pub fn set_snapshot<'a>(&self, figures: impl IntoIterator<Item = (&'a str, i64)>) {
        for (what, value) in figures {
            self.snapshot.get_or_create(&label("what", what)).set(value);
        }
    }

    /// Shows the deleted photos' figures, one gauge per figure.
    pub fn set_deletions<'a>(&self, figures: impl IntoIterator<Item = (&'a str, i64)>) {
        for (what, value) in figures {
            self.deletions
                .get_or_create(&label("what", what))
                .set(value);
        }
    }

    pub fn summary(&self) -> Summary {
        let outcome = |o: Outcome| {
            self.uploads
                .get_or_create(&label("outcome", o.as_str()))
                .get()
        };
        Summary {
            uploaded: outcome(Outcome::Uploaded),
            already_present: outcome(Outcome::AlreadyPresent),
            duplicates: outcome(Outcome::Duplicate),
            failed: self.failed_total.load(Ordering::Relaxed),
            deleted: self.deleted.get(),
            bytes: self.bytes.get(),
            hashed_bytes: self.hashed_bytes.get(),
            changes_queued: ["poll", "pass"]
                .iter()
                .map(|by| self.changes.get_or_create(&label("found_by", by)).get())
                .sum(),
            files_checked: ["poll", "pass"]
                .iter()
                .map(|by| self.checked.get_or_create(&label("by", by)).get())
                .sum(),
        }
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_show_in_summary_and_text() {
        let m = Metrics::default();
        m.finished(Outcome::Uploaded, 100, Duration::from_millis(20));
        m.finished(Outcome::Uploaded, 50, Duration::from_millis(20));
        m.finished(Outcome::Duplicate, 50, Duration::from_millis(1));
        m.failed("failed_code_403", Duration::from_millis(5));
        m.failed("failed_code_0", Duration::from_millis(5));
        m.failed("failed_code_0", Duration::from_millis(5));
        let s = m.summary();
        assert_eq!(
            (s.uploaded, s.duplicates, s.failed, s.bytes),
            (2, 1, 3, 150)
        );
        let text = m.encode();
        assert!(
            text.contains("piwigo_s3upload_uploads_total{outcome=\"uploaded\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("piwigo_s3upload_failures_total{status=\"failed_code_0\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("piwigo_s3upload_uploaded_bytes_total 150"),
            "{text}"
        );
        assert!(
            text.contains("piwigo_s3upload_upload_duration_seconds_count 6"),
            "{text}"
        );
    }

    #[test]
    fn queue_depth_is_replaced_not_accumulated() {
        let m = Metrics::default();
        let a = [("pending".to_string(), 5u64)];
        m.set_queue_depth(a.iter().map(|(k, v)| (k, v)));
        let b = [("failed_code_403".to_string(), 2u64)];
        m.set_queue_depth(b.iter().map(|(k, v)| (k, v)));
        let text = m.encode();
        assert!(!text.contains("status=\"pending\""), "{text}");
        assert!(
            text.contains("piwigo_s3upload_queue_depth{status=\"failed_code_403\"} 2"),
            "{text}"
        );
    }

    #[test]
    fn the_last_verify_shows() {
        let m = Metrics::default();
        m.set_verify([
            ("finished_at", 1_700_000_000),
            ("ok", 0),
            ("not_backed_up", 3),
            ("objects_missing", 2),
        ]);
        let text = m.encode();
        for line in [
            "piwigo_s3upload_verify{what=\"finished_at\"} 1700000000",
            "piwigo_s3upload_verify{what=\"ok\"} 0",
            "piwigo_s3upload_verify{what=\"not_backed_up\"} 3",
            "piwigo_s3upload_verify{what=\"objects_missing\"} 2",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }

    #[test]
    fn poll_age_is_unknown_until_the_first_poll() {
        let m = Metrics::default();
        assert!(m.last_poll_age().is_none());
        m.polled(Duration::from_millis(1));
        assert!(m.last_poll_age().unwrap() < 5.0);
    }

    #[test]
    fn no_progress_is_reported_only_while_photos_are_in_flight() {
        let m = Metrics::default();
        assert_eq!(m.stalled(Duration::ZERO), None, "idle is not stuck");
        m.set_in_flight(2);
        assert!(m.stalled(Duration::ZERO).is_some());
        assert_eq!(
            m.stalled(Duration::from_secs(3600)),
            None,
            "work just arrived"
        );
        m.last_progress_ms.store(1, Ordering::Relaxed);
        assert!(
            m.stalled(Duration::from_secs(3600)).is_some(),
            "nothing settled for ages"
        );
        m.failed("failed_file_stalled", Duration::ZERO);
        assert_eq!(
            m.stalled(Duration::from_secs(3600)),
            None,
            "a failure is progress"
        );
        m.set_in_flight(0);
        assert_eq!(m.stalled(Duration::ZERO), None);
    }
}
