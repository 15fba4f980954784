//! All of the queue's SQL, one file per concern: `claim` (leases,
//! heartbeats, hand-backs), `reserve` (md5 and key reservations, waits),
//! `record` (success, failure with backoff, rows Piwigo dropped), `retry`
//! (rows made due again, work left), `item` (what a row stands for),
//! `formats`, `versions` (new versions and their history), `uploaded`
//! (the steps of a success that `record` and `versions` share), `changes`
//! (what the change check reads), `enqueue` (with `selection`, the photos a batch command picks), `report`, `records` (the
//! records `verify` audits and `restore` reads), `coverage` (what
//! `verify` finds neither recorded nor queued), `import` (the old plugin's uploads taken over), `heartbeat` and
//! `requests` (the companion plugin's tables), `state` (named values kept
//! between runs) and `last_snapshot` (the last snapshot's result in it), `migrate` and `schema`;
//! `deleted` (photos deleted in Piwigo, the guard's memory) and `removal`
//! (their objects leaving the records). This file holds the types they
//! share.
//!
//! A row belongs to a worker while `claimed_by` holds that worker's claim
//! token and `claimed_until` is in the future; every write that finishes a
//! row checks the token, so a worker that lost its claim changes nothing.

pub mod changes;
mod claim;
pub mod coverage;
pub use claim::LiveClaim;
pub mod deleted;
pub mod enqueue;
pub mod formats;
pub mod heartbeat;
pub mod import;
pub mod item;
pub mod last_snapshot;
pub mod migrate;
mod record;
pub mod records;
pub mod removal;
mod reserve;
mod retry;
pub use retry::retry_changed_photos;
pub mod report;
pub mod requests;
pub mod schema;
pub mod selection;
pub mod state;
mod uploaded;
pub mod versions;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::MySqlPool;

use crate::db::{DbError, Tables};
use item::Item;
// Where every module has found them; the enums live below the queue, so
// that metrics, piwigo and s3 name them without importing the queue.
pub use crate::status;
pub use crate::status::Outcome;

/// `next_attempt_at` of a photo that waits for a change (of the photo or
/// the settings, or `retry`) rather than for time to pass.
const UNTIL_CHANGED: &str = "9999-12-31 00:00:00";

/// The bounds of the exponential backoff between attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub min: Duration,
    pub max: Duration,
}

/// How a claim is taken: `SKIP LOCKED` lets daemons pass each other's
/// locked rows (MariaDB 10.6+, MySQL 8.0+); older servers serialise on a
/// plain locking `UPDATE ... LIMIT`, which is correct, only slower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimStrategy {
    SkipLocked,
    UpdateLimit,
}

impl ClaimStrategy {
    /// From `SELECT VERSION()`, e.g. `10.11.19-MariaDB-0+deb12u1` or `8.0.36`.
    pub fn for_version(version: &str) -> Self {
        let mut nums = version
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|n| n.parse::<u32>().ok());
        let major = nums.next().unwrap_or(0);
        let minor = nums.next().unwrap_or(0);
        let supported = if version.to_ascii_lowercase().contains("mariadb") {
            (major, minor) >= (10, 6)
        } else {
            major >= 8
        };
        if supported {
            Self::SkipLocked
        } else {
            Self::UpdateLimit
        }
    }
}

#[derive(Debug, Clone)]
pub struct Queue {
    pool: MySqlPool,
    t: Tables,
    owner: String,
    seq: std::sync::Arc<AtomicU64>,
    strategy: ClaimStrategy,
    /// Whether this Piwigo has formats: a photo recorded then queues its
    /// formats in the same transaction.
    formats: bool,
}

/// A row a worker holds.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: u64,
    pub image_id: u32,
    pub attempts: u32,
    pub token: String,
    /// The photo itself or one of its formats.
    pub item: Item,
    /// The key this photo was last about to be sent to (its md5), by any
    /// daemon: an object there with its bytes is its own upload.
    pub sent_key: Option<String>,
    /// The photo's Piwigo row as it was at claim time; `None` when the
    /// photo, or the format this row stands for, has been deleted.
    pub image: Option<crate::piwigo::Image>,
    /// A new version of the item's recorded object (its file changed).
    pub new_version: bool,
    /// Piwigo's view of the file at claim time, recorded with the object.
    pub piwigo: PiwigoSeen,
}

/// Piwigo's `filesize` (KB) of the item (the photo's row, or the format's)
/// and the photo's `lastmodified`, as seen before the file was hashed:
/// recorded so that a later change of either is noticed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PiwigoSeen {
    pub filesize: Option<u32>,
    pub lastmodified: Option<chrono::NaiveDateTime>,
}

#[derive(Debug, Clone)]
pub struct Record {
    pub outcome: Outcome,
    pub bucket: String,
    pub key: String,
    pub size: u64,
    pub md5: String,
    pub etag: Option<String>,
    pub url: String,
    pub duplicate_of: Option<u32>,
    /// The file as `stat()` saw it before it was hashed: a later change of
    /// size or mtime means new bytes may be there.
    pub stat: crate::piwigo::FileStat,
    pub piwigo: PiwigoSeen,
}

/// An earlier copy of the same bytes.
#[derive(Debug, Clone)]
pub struct Existing {
    pub image_id: u32,
    pub bucket: String,
    pub key: String,
    pub url: String,
    pub etag: Option<String>,
}

/// Result of reserving an md5 or an object key for a photo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    Ours,
    /// Another queued photo holds it and goes first.
    HeldBy(u32),
}

impl Queue {
    pub fn new(pool: MySqlPool, t: Tables, strategy: ClaimStrategy) -> Self {
        // Unique per process and start, readable in `status` and logs.
        let host = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .map(|h| h.trim().chars().take(40).collect::<String>())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "host".into());
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let owner = format!("{host}:{}:{nanos:08x}", std::process::id());
        Self {
            pool,
            t,
            owner,
            seq: Default::default(),
            strategy,
            formats: false,
        }
    }

    /// Queues a photo's formats as the photo is recorded (see
    /// [`crate::piwigo::has_formats`]).
    pub fn with_formats(mut self, formats: bool) -> Self {
        self.formats = formats;
        self
    }

    /// This daemon's name in claims, heartbeats and requests.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Picks the claim strategy from the server's version.
    pub async fn detect_strategy(pool: &MySqlPool) -> Result<ClaimStrategy, DbError> {
        let version: String = sqlx::query_scalar("SELECT VERSION()")
            .fetch_one(pool)
            .await
            .map_err(DbError::query("read server version"))?;
        let strategy = ClaimStrategy::for_version(&version);
        if strategy == ClaimStrategy::UpdateLimit {
            tracing::warn!(
                db.version = %version,
                "database server predates SKIP LOCKED (MariaDB 10.6 / MySQL 8.0): claims are serialised, which is correct but slower with several daemons"
            );
        }
        Ok(strategy)
    }

    fn next_token(&self) -> String {
        format!(
            "{}:{}",
            self.owner,
            self.seq.fetch_add(1, Ordering::Relaxed)
        )
    }
}

/// Tries of a statement that InnoDB keeps picking as a deadlock's victim.
const LOCK_TRIES: u32 = 8;

/// Runs `op` again when InnoDB picked it as the victim of a deadlock (or a
/// lock wait timed out): rows of photos that share bytes or a key are
/// written by several workers at once, and the loser only has to retry.
/// One that loses every try keeps its claim until the lease ends.
async fn retrying<T, F, Fut>(mut op: F) -> Result<T, DbError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, DbError>>,
{
    let mut tried = 1;
    loop {
        match op().await {
            Err(e) if e.is_lock_conflict() && tried < LOCK_TRIES => {
                tokio::time::sleep(lock_retry_delay(tried, spread())).await;
                tried += 1;
            }
            result => return result,
        }
    }
}

/// The wait before try `tried + 1`: 10 ms doubling with each try, times
/// 0.5 to 1.5 by `spread` (0 to 1), about 1.3 s over all the tries. The
/// photos that deadlocked did so because they wrote at once (thirty
/// identical photos woken together, each reserving the same md5): retried
/// after the same fixed waits, they met again in every try, and under
/// load one lost all five and sat out its claim lease.
fn lock_retry_delay(tried: u32, spread: f64) -> Duration {
    let base = Duration::from_millis(10).saturating_mul(1 << tried.saturating_sub(1).min(10));
    base.mul_f64(0.5 + spread.clamp(0.0, 1.0))
}

/// A number from 0 to 1 that differs between callers a few microseconds
/// apart: enough to take apart retries and backoffs that would otherwise
/// run in step.
fn spread() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    f64::from(nanos % 1000) / 1000.0
}

/// SQL for a moment `d` from now.
fn micros_from_now(d: Duration) -> String {
    format!("NOW(3) + INTERVAL {} MICROSECOND", d.as_micros())
}

/// Exponential backoff from the number of attempts so far, capped, with a
/// little spread so a burst of failures does not retry in lockstep.
pub fn backoff(attempts: u32, min: Duration, max: Duration) -> Duration {
    let factor = 2u32.saturating_pow(attempts.min(20));
    let base = min.saturating_mul(factor).min(max);
    // Up to +10%, never above the cap.
    (base + base.mul_f64(spread() / 10.0)).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_strategy_from_version() {
        use ClaimStrategy::*;
        assert_eq!(
            ClaimStrategy::for_version("10.11.19-MariaDB-0+deb12u1"),
            SkipLocked
        );
        assert_eq!(ClaimStrategy::for_version("10.6.0-MariaDB"), SkipLocked);
        assert_eq!(
            ClaimStrategy::for_version("10.5.22-MariaDB-log"),
            UpdateLimit
        );
        assert_eq!(ClaimStrategy::for_version("11.4.2-MariaDB"), SkipLocked);
        assert_eq!(ClaimStrategy::for_version("8.0.36"), SkipLocked);
        assert_eq!(ClaimStrategy::for_version("5.7.44-log"), UpdateLimit);
        assert_eq!(ClaimStrategy::for_version("garbage"), UpdateLimit);
    }

    #[test]
    fn backoff_grows_and_caps() {
        let min = Duration::from_secs(10);
        let max = Duration::from_secs(3600);
        let b0 = backoff(0, min, max);
        assert!(b0 >= min && b0 <= min.mul_f64(1.1));
        let b3 = backoff(3, min, max);
        assert!(b3 >= Duration::from_secs(80) && b3 <= Duration::from_secs(89));
        assert_eq!(backoff(30, min, max), max);
        assert_eq!(backoff(u32::MAX, min, max), max);
    }

    #[test]
    fn lock_retries_double_and_spread_apart() {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        assert_eq!(ms(lock_retry_delay(1, 0.5)), 10.0);
        assert_eq!(ms(lock_retry_delay(1, 0.0)), 5.0);
        assert_eq!(ms(lock_retry_delay(1, 1.0)), 15.0);
        assert_eq!(ms(lock_retry_delay(4, 0.5)), 80.0);
        // Two photos that met in one try wait apart in the next.
        assert!(lock_retry_delay(3, 0.1) + Duration::from_millis(20) < lock_retry_delay(3, 0.9));
        let all: Duration = (1..LOCK_TRIES).map(|t| lock_retry_delay(t, 1.0)).sum();
        assert!(all < Duration::from_secs(2), "{all:?}");
        // Out-of-range spreads and tries stay bounded.
        assert_eq!(lock_retry_delay(u32::MAX, 9.0), lock_retry_delay(11, 1.0));
        let s = spread();
        assert!((0.0..1.0).contains(&s), "{s}");
    }
}
