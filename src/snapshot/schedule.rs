//! The daemon's snapshot task: one snapshot every `snapshots.interval`,
//! counted from the newest complete one in the bucket (so a restart or a
//! reload does not take an extra one), retried sooner after a failure.
//! It follows the configuration across reloads (SIGHUP), never cutting a
//! snapshot short for one. Each result is stored for `status` and
//! `/metrics`.

use std::time::{Duration, Instant};

use chrono::Utc;
use sqlx::MySqlPool;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::catalog;
use crate::config::{Config, SnapshotsConfig};
use crate::db::Tables;
use crate::queue::last_snapshot::LastSnapshot;
use crate::redact::Redactor;
use crate::s3::Target;

/// After a failure, the next try comes this soon (or at the interval,
/// when that is shorter).
const RETRY_AFTER: Duration = Duration::from_secs(15 * 60);

pub async fn run(
    mut configs: watch::Receiver<Config>,
    pool: MySqlPool,
    t: Tables,
    stop: CancellationToken,
) {
    // After a failure: when the next try is due, whatever the bucket says.
    let mut retry_at: Option<Instant> = None;
    loop {
        // Taken afresh after each snapshot and each reload: a reload that
        // adds, pauses or changes [snapshots] applies at once.
        let config = configs.borrow_and_update().clone();
        let Some(snap) = config.snapshots.clone().filter(|s| s.enabled) else {
            tokio::select! {
                changed = configs.changed() => if changed.is_err() { return },
                () = stop.cancelled() => return,
            }
            continue;
        };
        let redact = Redactor::new(config.secrets());
        let wait = match retry_at {
            Some(at) => at.saturating_duration_since(Instant::now()),
            None => match first_wait(&config, &snap).await {
                Ok(w) => w,
                Err(e) => {
                    tracing::warn!(error = %redact.scrub(&e.to_string()), "cannot list the bucket; taking one now");
                    Duration::ZERO
                }
            },
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            changed = configs.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
            () = stop.cancelled() => return,
        }
        let previous = LastSnapshot::load(&pool, &t).await.ok().flatten();
        let result = tokio::select! {
            r = super::take(&config, &snap, &pool, &t) => r,
            // Dropped mid-way: the upload is aborted, the connection
            // (and its locks) closed.
            () = stop.cancelled() => return,
        };
        let now = Utc::now().timestamp();
        let last = match &result {
            Ok(taken) => {
                retry_at = None;
                LastSnapshot::succeeded(
                    now,
                    taken.manifest.name.clone(),
                    taken.manifest.database_bytes,
                )
            }
            Err(e) => {
                let error = redact.scrub(&e.to_string());
                let after = RETRY_AFTER.min(snap.interval);
                tracing::warn!(error = %error, retry_in = ?after, "snapshot failed; trying again later");
                retry_at = Some(Instant::now() + after);
                LastSnapshot::failed(now, error, previous.as_ref())
            }
        };
        if let Err(e) = last.store(&pool, &t).await {
            tracing::warn!(error = %e, "cannot store the result for status");
        }
    }
}

/// Until the next snapshot is due: now when none is complete.
async fn first_wait(
    config: &Config,
    snap: &SnapshotsConfig,
) -> Result<Duration, super::SnapshotError> {
    let target = Target::new(&config.s3, &config.upload).await;
    let listed = catalog::list(&target, &config.s3.prefix).await?;
    let Some(newest) = listed.iter().rev().find(|s| s.complete()) else {
        return Ok(Duration::ZERO);
    };
    let age = (Utc::now() - newest.name.taken_at)
        .to_std()
        .unwrap_or_default();
    Ok(snap.interval.saturating_sub(age))
}
