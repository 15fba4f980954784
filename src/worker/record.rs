//! How an item's end is written down: a record for an object in the
//! bucket, a failure with its status and backoff, and the counters of the
//! run (which count photos, not their formats).

use std::time::Instant;

use super::Context;
use crate::db::DbError;
use crate::queue::item::Item;
use crate::queue::{Claimed, Outcome, Record};
use crate::s3::S3Error;
use crate::status::{Failure, Retry, Status};

/// Records a finished photo; a record the database refuses is a counted,
/// visible failure (retried), never a silent loop.
pub(super) async fn complete(
    ctx: &Context,
    claim: &Claimed,
    record: Record,
    started: Instant,
) -> Result<(), DbError> {
    match ctx.queue.complete(claim, &record).await {
        Ok(true) => {
            if counted(claim) {
                ctx.metrics
                    .finished(record.outcome, record.size, started.elapsed());
            }
            match record.outcome {
                Outcome::Uploaded => {
                    tracing::info!(s3.key = %record.key, file.size = record.size, "uploaded");
                }
                Outcome::AlreadyPresent => {
                    tracing::info!(s3.key = %record.key, "this photo's bytes are at its key already; left as they are");
                }
                Outcome::Duplicate => {
                    tracing::info!(
                        duplicate_of = record.duplicate_of,
                        "same bytes as a photo already uploaded; not uploaded again"
                    );
                }
            }
            Ok(())
        }
        Ok(false) => {
            tracing::warn!(s3.key = %record.key, "claim lost before the result was recorded; the next worker finds the object and records it");
            Ok(())
        }
        Err(e) => {
            let message = format!(
                "the object {} is in the bucket, but recording it failed: {e}; it is retried, and then recorded",
                record.key
            );
            fail(
                ctx,
                claim,
                Failure::new(Status::FailedRecord, message, Retry::Backoff),
                started,
            )
            .await
        }
    }
}

/// An S3 failure: during an outage the per-photo line is quiet, the
/// outage itself was logged once.
pub(super) async fn s3_fail(
    ctx: &Context,
    claim: &Claimed,
    e: &S3Error,
    started: Instant,
) -> Result<(), DbError> {
    let message = ctx.redact.scrub(&e.to_string());
    let quiet = ctx.outage.failed(e, &message);
    record_failure(ctx, claim, e.failure(message), started, quiet).await
}

pub(super) async fn fail(
    ctx: &Context,
    claim: &Claimed,
    mut failure: Failure,
    started: Instant,
) -> Result<(), DbError> {
    failure.message = ctx.redact.scrub(&failure.message);
    record_failure(ctx, claim, failure, started, false).await
}

pub(super) async fn record_failure(
    ctx: &Context,
    claim: &Claimed,
    failure: Failure,
    started: Instant,
    quiet: bool,
) -> Result<(), DbError> {
    let status = failure.status.as_str();
    if counted(claim) {
        ctx.metrics.failed(&status, started.elapsed());
    }
    let retry = failure.retry;
    if quiet {
        tracing::debug!(status = %status, error = %failure.message, ?retry, "upload failed");
    } else {
        tracing::warn!(status = %status, error = %failure.message, ?retry, "upload failed");
    }
    ctx.queue.fail(claim, &failure, ctx.backoff()).await
}

/// The counters and the run's summary are of photos: a photo's formats
/// are logged and recorded, not counted as photos.
pub(super) fn counted(claim: &Claimed) -> bool {
    claim.item == Item::Photo
}

/// A worker task that panicked: a failure of that photo alone.
pub async fn panicked(ctx: &Context, claim: &Claimed, e: &tokio::task::JoinError) {
    tracing::error!(image.id = claim.image_id, error = %e, "worker failed unexpectedly; the photo is retried");
    let failure = Failure::new(
        Status::FailedInternalError,
        "internal error; see the daemon's log",
        Retry::Backoff,
    );
    if counted(claim) {
        ctx.metrics
            .failed(&failure.status.as_str(), Default::default());
    }
    if let Err(e) = ctx.queue.fail(claim, &failure, ctx.backoff()).await {
        tracing::warn!(error = %e, "could not record the failure; the photo returns after the claim lease");
    }
}
