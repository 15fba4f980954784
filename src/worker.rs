//! One claimed photo, start to finish: read the Piwigo row, resolve the
//! file, hash it, de-duplicate, upload without overwriting, record.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::UploadConfig;
use crate::db::DbError;
use crate::digest::{FileDigest, Hasher};
use crate::metrics::Metrics;
use crate::piwigo::{FileError, GalleryRoot};
use crate::queue::{self, Claimed, Md5Claim, Outcome, Queue, Record};
use crate::redact::Redactor;
use crate::s3::outage::Outage;
use crate::s3::{S3Error, Target};

/// How long a photo waits before looking again at the photo with the same
/// bytes that is being uploaded.
const DUPLICATE_WAIT: Duration = Duration::from_secs(5);
/// A file changed under us: retry soon, once the writer is done.
const CHANGED_WAIT: Duration = Duration::from_secs(5);

/// Everything a worker needs, shared by all of them.
#[derive(Debug, Clone)]
pub struct Context {
    pub queue: Queue,
    pub target: Target,
    pub root: GalleryRoot,
    pub upload: UploadConfig,
    pub redact: Redactor,
    pub metrics: Arc<Metrics>,
    /// Shared across reloads: an outage outlives a config change.
    pub outage: Arc<Outage>,
    /// Shared across reloads, like the two below.
    pub hasher: Arc<Hasher>,
    /// One permit per upload in flight (`upload.workers`); photos hashed
    /// ahead wait here.
    pub uploads: Arc<Semaphore>,
}

/// Processes one claimed row, keeping its lease alive: hash the file, wait
/// for an upload slot, upload. On `cancel` the row is handed back
/// untouched, and so it is on `stop` while it waits for a slot; if the
/// lease is lost the work stops and whoever took the row over finishes it.
pub async fn run(
    ctx: Arc<Context>,
    claim: Claimed,
    stop: CancellationToken,
    cancel: CancellationToken,
) {
    let span = tracing::info_span!("upload", image.id = claim.image_id, queue.id = claim.id);
    async move {
        let started = std::time::Instant::now();
        let hashed = leased(&ctx, &claim, &cancel, prepare(&ctx, &claim, started)).await;
        let Some(Some(prepared)) = hashed.and_then(recorded) else {
            return;
        };
        let uploads = ctx.uploads.clone().acquire_owned();
        let Some(Ok(_slot)) = leased(&ctx, &claim, &stop, uploads).await else {
            return;
        };
        if let Some(result) = leased(
            &ctx,
            &claim,
            &cancel,
            finish(&ctx, &claim, prepared, started),
        )
        .await
        {
            recorded(result);
        }
    }
    .instrument(span)
    .await
}

/// A database error while recording: the row keeps its claim until the
/// lease ends, then is taken again.
fn recorded<T>(result: Result<T, DbError>) -> Option<T> {
    match result {
        Ok(next) => Some(next),
        Err(e) => {
            tracing::warn!(error = %e, "could not record the result; the photo is retried after the claim lease");
            None
        }
    }
}

/// Drives `work` while renewing the claim's lease. `None` when the work did
/// not finish: the claim was lost, or `cancel` fired and the row was handed
/// back.
async fn leased<T>(
    ctx: &Context,
    claim: &Claimed,
    cancel: &CancellationToken,
    work: impl std::future::Future<Output = T>,
) -> Option<T> {
    let lease = ctx.upload.claim_lease;
    tokio::pin!(work);
    let mut beat = tokio::time::interval(lease / 3);
    beat.tick().await;
    loop {
        // Cancellation first: a photo whose slot comes free after a stop
        // was asked for goes back to the queue instead of starting.
        tokio::select! {
            biased;
            _ = cancel.cancelled() => {
                if let Err(e) = ctx.queue.release(claim).await {
                    tracing::warn!(error = %e, "could not hand the photo back; it returns after the claim lease");
                }
                return None;
            }
            result = &mut work => return Some(result),
            _ = beat.tick() => match ctx.queue.heartbeat(claim, lease).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!("claim lost (lease expired); another worker takes this photo over");
                    return None;
                }
                Err(e) => tracing::warn!(error = %e, "heartbeat failed; retrying"),
            },
        }
    }
}

/// A photo hashed and ready to go.
struct Prepared {
    key: crate::s3::keys::ObjectKey,
    path: PathBuf,
    digest: FileDigest,
}

/// Resolves and hashes the file. `None` when the row is finished already:
/// deleted from Piwigo, or failed and rescheduled.
async fn prepare(
    ctx: &Context,
    claim: &Claimed,
    started: std::time::Instant,
) -> Result<Option<Prepared>, DbError> {
    let q = &ctx.queue;
    let Some(image) = claim.image.clone() else {
        if q.forget(claim).await? {
            ctx.metrics.deleted();
            tracing::warn!(
                "photo was deleted from Piwigo before it was uploaded; removed from the queue"
            );
        }
        return Ok(None);
    };
    let path = match ctx.root.resolve(&image.path) {
        Ok(p) => p,
        Err(e) => return fail_local(ctx, claim, &e, started).await.map(|()| None),
    };
    let key = match ctx.target.key_for(&image.path, &image.file) {
        Ok(k) => k,
        Err(e) => {
            let msg = format!("cannot name the object: {e}");
            return fail(ctx, claim, "failed_bad_file_name", &msg, started)
                .await
                .map(|()| None);
        }
    };
    let part_size = std::fs::metadata(&path)
        .ok()
        .and_then(|m| ctx.target.part_size_for(m.len()));
    let digest = match ctx.hasher.digest(path.clone(), part_size).await {
        Ok(d) => d,
        Err(e) => {
            let err = if e.kind() == std::io::ErrorKind::NotFound {
                FileError::Missing(path.clone())
            } else {
                FileError::Unreadable {
                    path: path.clone(),
                    reason: e.to_string(),
                }
            };
            return fail_local(ctx, claim, &err, started).await.map(|()| None);
        }
    };
    // The size may have changed between stat and read (a file replaced or
    // still growing): the parts must match what was hashed.
    if part_size != ctx.target.part_size_for(digest.size) {
        q.wait(claim, queue::PENDING, CHANGED_WAIT, None).await?;
        return Ok(None);
    }
    let key = key.describing(claim.image_id, &image.path, &digest.md5_hex(), "original");
    tracing::debug!(s3.key = %key.key, file.size = digest.size, file.md5 = %digest.md5_hex(), "hashed");
    Ok(Some(Prepared { key, path, digest }))
}

/// De-duplicates, uploads and records a hashed photo.
async fn finish(
    ctx: &Context,
    claim: &Claimed,
    prepared: Prepared,
    started: std::time::Instant,
) -> Result<(), DbError> {
    let q = &ctx.queue;
    let Prepared { key, path, digest } = prepared;
    let md5 = digest.md5_hex();
    if ctx.upload.prevent_duplicates_by_md5 {
        // Reserve first, then look for a finished copy: a photo finishes by
        // releasing its reservation and recording its upload in one
        // transaction, so in this order no finished copy can be missed.
        if let Md5Claim::HeldBy(other) = q.reserve_md5(claim, &md5).await? {
            tracing::debug!(
                duplicate_of = other,
                "same bytes as a photo being uploaded; waiting for it"
            );
            q.wait(
                claim,
                queue::WAITING_FOR_DUPLICATE,
                DUPLICATE_WAIT,
                Some(other),
            )
            .await?;
            return Ok(());
        }
        if let Some(first) = q.uploaded_with_md5(&md5).await?
            && first.image_id != claim.image_id
        {
            let record = Record {
                outcome: Outcome::Duplicate,
                bucket: first.bucket,
                key: first.key,
                size: digest.size,
                md5,
                etag: first.etag,
                url: first.url,
                duplicate_of: Some(first.image_id),
            };
            if q.complete(claim, &record).await? {
                ctx.metrics
                    .finished(Outcome::Duplicate.as_str(), record.size, started.elapsed());
                tracing::info!(
                    duplicate_of = first.image_id,
                    "same bytes as a photo already uploaded; not uploaded again"
                );
            }
            return Ok(());
        }
    }
    upload(ctx, claim, &key, &path, digest, md5, started).await
}

async fn upload(
    ctx: &Context,
    claim: &Claimed,
    key: &crate::s3::keys::ObjectKey,
    path: &std::path::Path,
    digest: FileDigest,
    md5: String,
    started: std::time::Instant,
) -> Result<(), DbError> {
    let target = &ctx.target;
    // HEAD first: not every S3-compatible server honours If-None-Match, and
    // an existing object must never be overwritten.
    let existing = match target.head(&key.key).await {
        Ok(e) => e,
        Err(e) => return s3_fail(ctx, claim, &e, started).await,
    };
    let (outcome, etag) = match existing {
        Some(present) => (Outcome::AlreadyPresent, present.etag),
        None => match target.put(key, path, &digest).await {
            Ok(put) => (Outcome::Uploaded, put.etag),
            Err(e) if e.is_precondition_failed() => {
                let etag = target
                    .head(&key.key)
                    .await
                    .ok()
                    .flatten()
                    .and_then(|p| p.etag);
                (Outcome::AlreadyPresent, etag)
            }
            Err(e) if e.is_bad_digest() => {
                tracing::info!(error = %ctx.redact.scrub(&e.to_string()), "file changed while it was sent; retrying");
                return fail_after(
                    ctx,
                    claim,
                    "failed_file_changed",
                    &e.to_string(),
                    CHANGED_WAIT,
                    started,
                )
                .await;
            }
            Err(e) => return s3_fail(ctx, claim, &e, started).await,
        },
    };
    let record = Record {
        outcome,
        bucket: target.bucket.clone(),
        url: target.url_for(&key.key),
        key: key.key.clone(),
        size: digest.size,
        md5,
        etag,
        duplicate_of: None,
    };
    ctx.outage.succeeded();
    if ctx.queue.complete(claim, &record).await? {
        ctx.metrics
            .finished(outcome.as_str(), digest.size, started.elapsed());
        match outcome {
            Outcome::Uploaded => {
                tracing::info!(s3.key = %key.key, file.size = digest.size, "uploaded");
            }
            _ => {
                tracing::info!(s3.key = %key.key, "an object is at this key already; left as it is");
            }
        }
    } else {
        tracing::warn!(s3.key = %key.key, "claim lost before the result was recorded; the next worker finds the object and records it");
    }
    Ok(())
}

/// An S3 failure: during an outage the per-photo line is quiet, the
/// outage itself was logged once.
async fn s3_fail(
    ctx: &Context,
    claim: &Claimed,
    e: &S3Error,
    started: std::time::Instant,
) -> Result<(), DbError> {
    let message = ctx.redact.scrub(&e.to_string());
    let quiet = ctx.outage.failed(e, &message);
    let delay = queue::backoff(
        claim.attempts,
        ctx.upload.retry_backoff_min,
        ctx.upload.retry_backoff_max,
    );
    record_failure(ctx, claim, &e.status(), &message, delay, started, quiet).await
}

async fn fail_local(
    ctx: &Context,
    claim: &Claimed,
    e: &FileError,
    started: std::time::Instant,
) -> Result<(), DbError> {
    fail(ctx, claim, e.status(), &e.to_string(), started).await
}

async fn fail(
    ctx: &Context,
    claim: &Claimed,
    status: &str,
    message: &str,
    started: std::time::Instant,
) -> Result<(), DbError> {
    let delay = queue::backoff(
        claim.attempts,
        ctx.upload.retry_backoff_min,
        ctx.upload.retry_backoff_max,
    );
    fail_after(ctx, claim, status, message, delay, started).await
}

async fn fail_after(
    ctx: &Context,
    claim: &Claimed,
    status: &str,
    message: &str,
    delay: Duration,
    started: std::time::Instant,
) -> Result<(), DbError> {
    let message = ctx.redact.scrub(message);
    record_failure(ctx, claim, status, &message, delay, started, false).await
}

async fn record_failure(
    ctx: &Context,
    claim: &Claimed,
    status: &str,
    message: &str,
    delay: Duration,
    started: std::time::Instant,
    quiet: bool,
) -> Result<(), DbError> {
    ctx.metrics.failed(status, started.elapsed());
    if quiet {
        tracing::debug!(status, error = %message, retry_in = ?delay, "upload failed");
    } else {
        tracing::warn!(status, error = %message, retry_in = ?delay, "upload failed");
    }
    ctx.queue.fail(claim, status, message, delay).await
}
