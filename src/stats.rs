//! Counters of what the workers did, shared by the daemon's summary and
//! its metrics.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Stats {
    pub uploaded: AtomicU64,
    pub already_present: AtomicU64,
    pub duplicates: AtomicU64,
    pub failed: AtomicU64,
    pub deleted: AtomicU64,
    pub bytes: AtomicU64,
}

/// A snapshot of [`Stats`], returned when the daemon stops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub uploaded: u64,
    pub already_present: u64,
    pub duplicates: u64,
    pub failed: u64,
    pub deleted: u64,
    pub bytes: u64,
}

impl Stats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn summary(&self) -> Summary {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Summary {
            uploaded: get(&self.uploaded),
            already_present: get(&self.already_present),
            duplicates: get(&self.duplicates),
            failed: get(&self.failed),
            deleted: get(&self.deleted),
            bytes: get(&self.bytes),
        }
    }
}
