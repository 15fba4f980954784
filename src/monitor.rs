//! Active monitoring: every poll moves the watermark over new photos and
//! queues them, and queues photos given the configured tag.

use std::sync::Arc;
use std::time::Duration;

use sqlx::MySqlPool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::MonitorConfig;
use crate::db::{DbError, Tables};
use crate::metrics::Metrics;
use crate::piwigo;
use crate::queue::{self, enqueue};

/// Backoff cap while the database is unreachable.
const MAX_ERROR_BACKOFF: Duration = Duration::from_secs(60);

/// One poll: new photos (when enabled) and tagged photos. Returns how many
/// rows were queued.
pub async fn poll_once(pool: &MySqlPool, t: &Tables, cfg: &MonitorConfig) -> Result<u64, DbError> {
    let poll = enqueue::poll(pool, t, cfg.enabled).await?;
    if poll.initialised {
        tracing::info!(
            watermark = poll.watermark,
            "first run: monitoring starts after the newest photo; queue older ones with `enqueue`"
        );
    }
    let mut queued = poll.queued;
    if let Some(name) = &cfg.tag
        && let Some(tag_id) = follow_tag(pool, t, name).await?
    {
        queued += enqueue::queue_tagged(pool, t, tag_id).await?;
    }
    if queued > 0 {
        tracing::info!(queued, watermark = poll.watermark, "queued photos");
    }
    let changed = queue::retry_changed_photos(pool, t).await?;
    if changed > 0 {
        tracing::info!(
            retried = changed,
            "photos changed in Piwigo: retrying failures that waited for a change"
        );
    }
    Ok(queued + changed)
}

/// Resolves the tag by name, falling back to the id seen before when the
/// tag was renamed in Piwigo.
async fn follow_tag(pool: &MySqlPool, t: &Tables, name: &str) -> Result<Option<u32>, DbError> {
    let remembered = enqueue::remembered_tag(pool, t).await?;
    match piwigo::tag_id(pool, t, name).await? {
        Some(id) => {
            if remembered != Some(id) {
                enqueue::remember_tag(pool, t, id).await?;
            }
            Ok(Some(id))
        }
        None => match remembered {
            Some(id) => match piwigo::tag_name(pool, t, id).await? {
                Some(new_name) => {
                    tracing::warn!(tag.id = id, tag.name = %new_name, "monitor.tag was renamed in Piwigo; following it by id (update monitor.tag)");
                    Ok(Some(id))
                }
                None => Ok(None),
            },
            None => Ok(None),
        },
    }
}

/// Polls until `shutdown`, waking the workers after each poll that queued
/// something. Database errors back off and are logged once until the
/// database is back.
pub async fn run(
    pool: MySqlPool,
    t: Tables,
    cfg: MonitorConfig,
    wake: Arc<Notify>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let mut failures = crate::periodic::Failures::default();
    let mut delay = cfg.poll_interval;
    loop {
        let started = std::time::Instant::now();
        match poll_once(&pool, &t, &cfg).await {
            Ok(queued) => {
                metrics.polled(started.elapsed());
                failures.succeeded();
                delay = cfg.poll_interval;
                if queued > 0 {
                    wake.notify_one();
                }
            }
            Err(e) => {
                failures.failed(&e, "poll failed; retrying with backoff");
                delay = (delay * 2).min(MAX_ERROR_BACKOFF);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}
