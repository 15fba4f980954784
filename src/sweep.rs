//! The sweep of incomplete multipart uploads a killed daemon left behind:
//! shortly after start, then periodically. Uploads on photos claimed right
//! now are spared, however long they take.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::db::DbError;
use crate::s3::S3Error;
use crate::s3::stale::Swept;
use crate::worker;

/// Between sweeps: abandoned parts cost little for a few minutes more.
const EVERY: Duration = Duration::from_secs(15 * 60);
/// The first sweep of a running daemon (`run --until-idle` sweeps at once,
/// beside its uploads).
const FIRST_AFTER: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    S3(#[from] S3Error),
}

/// One sweep with the running configuration.
async fn once(ctx: &worker::Context) -> Result<Swept, SweepError> {
    let claims = ctx.queue.live_claims().await?;
    let live: HashSet<String> = claims
        .iter()
        .filter(|c| !c.new_version)
        .filter_map(|c| ctx.target.key_for_item(&c.item, &c.image).ok())
        .map(|k| k.key)
        .collect();
    // A new version's key names its md5, known only to the worker that
    // hashed it: everything under its photo's versions is spared.
    let versions: Vec<String> = claims
        .iter()
        .filter(|c| c.new_version)
        .map(|c| ctx.target.versions_of(c.image_id))
        .collect();
    let min_age = ctx.target.stale_after(ctx.upload.claim_lease);
    let spared = |key: &str| live.contains(key) || versions.iter().any(|v| key.starts_with(v));
    Ok(ctx.target.abort_stale_uploads(min_age, spared).await?)
}

/// One sweep, logged, unless `stop` comes first: `false` if it did.
pub async fn once_unless_stopped(ctx: &worker::Context, stop: &CancellationToken) -> bool {
    tokio::select! {
        result = once(ctx) => {
            report(&result);
            true
        }
        _ = stop.cancelled() => false,
    }
}

/// Logs a sweep's outcome; a failed sweep is no reason to stop uploading.
fn report(result: &Result<Swept, SweepError>) {
    match result {
        Ok(s) if s.aborted > 0 => tracing::info!(
            aborted = s.aborted,
            kept = s.kept,
            "aborted incomplete multipart uploads"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(
            error = %e,
            "cannot sweep incomplete multipart uploads; a bucket lifecycle rule (AbortIncompleteMultipartUpload) removes them instead"
        ),
    }
}

/// Sweeps shortly after start and then every [`EVERY`] until `stop`, with
/// whatever configuration is running at the time.
pub async fn run(ctx: watch::Receiver<Arc<worker::Context>>, stop: CancellationToken) {
    // Start-up (migrations, the first claims) goes first.
    tokio::select! {
        _ = tokio::time::sleep(FIRST_AFTER) => {}
        _ = stop.cancelled() => return,
    }
    loop {
        let current = ctx.borrow().clone();
        if !once_unless_stopped(&current, &stop).await {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = stop.cancelled() => return,
        }
    }
}
