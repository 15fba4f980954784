//! The daemon's side of the companion Piwigo plugin
//! (`piwigo-plugin/s3upload_companion/`), which talks to the daemon through
//! the database and `/presign`:
//!
//! - [`heartbeat`]: "daemon alive, version, host" for the plugin's tab;
//! - [`requests`]: Batch Manager selections and retries the plugin files,
//!   carried out with the queue's own code;
//! - [`presign`]: short-lived download links for private buckets;
//! - [`import`]: moving over from the old S3Upload plugin's table.

pub mod heartbeat;
pub mod import;
pub mod presign;
pub mod requests;

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::MySqlPool;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::db::{DbError, Tables};
use crate::worker;

/// How often the heartbeat row is refreshed, with a bucket check (one
/// HEAD request): the plugin reports a daemon silent for a minute as not
/// seen, and its links fall back to Piwigo's own download within this of
/// S3 refusing the daemon.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(10);

/// One round: heartbeat (when due) and the plugin's waiting requests.
/// Returns how many photos were queued or put back to pending.
pub async fn once(
    pool: &MySqlPool,
    t: &Tables,
    ctx: &worker::Context,
    beat: bool,
) -> Result<u64, DbError> {
    if beat {
        let at_once = u16::try_from(ctx.metrics.upload_slots()).unwrap_or(u16::MAX);
        crate::queue::heartbeat::beat(pool, t, ctx.queue.owner(), at_once).await?;
    }
    requests::drain(pool, t, &ctx.queue, ctx.upload.prevent_duplicates_by_md5).await
}

/// Every `monitor.poll_interval` until `shutdown`: carries out the plugin's
/// requests and keeps the heartbeat fresh, waking the workers when photos
/// were queued. Both the context and the config are followed across
/// reloads (the heartbeat reports whether monitoring is on now). Errors
/// are logged once until the database answers again.
pub async fn run(
    pool: MySqlPool,
    t: Tables,
    current: watch::Receiver<Arc<worker::Context>>,
    configs: watch::Receiver<crate::config::Config>,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
) {
    if let Err(e) = crate::queue::heartbeat::forget_old(&pool, &t).await {
        tracing::debug!(error = %e, "could not forget old heartbeats");
    }
    let mut last_beat: Option<Instant> = None;
    let mut failures = crate::periodic::Failures::default();
    loop {
        let ctx = current.borrow().clone();
        let (interval, monitoring) = {
            let monitor = &configs.borrow().monitor;
            (
                monitor.poll_interval,
                monitor.enabled || monitor.tag.is_some(),
            )
        };
        let beat = last_beat.is_none_or(|at| at.elapsed() >= HEARTBEAT_EVERY);
        match once(&pool, &t, &ctx, beat).await {
            Ok(queued) => {
                if beat {
                    last_beat = Some(Instant::now());
                    let view = heartbeat::S3View::check(&ctx.target).await;
                    if let Err(e) = heartbeat::record_s3(
                        &pool,
                        &t,
                        ctx.queue.owner(),
                        &view,
                        (&ctx.target, monitoring),
                    )
                    .await
                    {
                        tracing::debug!(error = %e, "could not record the S3 check in the heartbeat");
                    }
                }
                failures.succeeded();
                if queued > 0 {
                    wake.notify_one();
                }
            }
            Err(e) => failures.failed(
                &e,
                "could not read or answer the plugin's requests; retrying",
            ),
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.cancelled() => break,
        }
    }
    let ctx = current.borrow().clone();
    if let Err(e) = crate::queue::heartbeat::stopped(&pool, &t, ctx.queue.owner()).await {
        tracing::debug!(error = %e, "could not record the stop in the heartbeat");
    }
}
