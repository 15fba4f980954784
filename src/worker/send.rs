//! Sending a hashed item without overwriting anything: HEAD first (or the
//! server's 412), the object found at the key judged by its bytes, or the
//! file streamed up; then the record made.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::record::{complete, fail, s3_fail};
use super::{Context, KEY_TAKEN_WARNED, Prepared, Ready};
use crate::db::DbError;
use crate::digest::FileDigest;
use crate::queue::{Claimed, Outcome, Record};
use crate::s3::keys::ObjectKey;
use crate::s3::upload::{Present, PutError};
use crate::s3::{S3Error, Target};
use crate::status::{Failure, Retry, Status};

/// A HEAD older than this when the slot comes is asked again. A photo
/// waits for its slot about as long as two uploads take; far longer means
/// the uploads ahead of it are slow or stalled, and the time in which
/// something outside the queue could write at the key unseen stays
/// bounded.
const LOOK_FRESH: Duration = Duration::from_secs(10);

/// What was found at a reserved key before its photo had a slot.
pub(super) enum Looked {
    /// Not looked: the server answers 412 to a PUT over an object.
    NotNeeded,
    /// Looked at then: the object found there, if any.
    At(Instant, Option<Present>),
}

/// HEAD first: not every S3-compatible server honours If-None-Match, and
/// an existing object must never be overwritten. Where the server does,
/// its 412 answers the same question without a round trip of its own.
pub(super) async fn look(target: &Target, key: &str) -> Result<Looked, S3Error> {
    if target.honours_if_none_match() {
        return Ok(Looked::NotNeeded);
    }
    let at = Instant::now();
    Ok(Looked::At(at, target.head(key).await?))
}

pub(super) async fn upload(
    ctx: &Context,
    claim: &Claimed,
    ready: Ready,
    started: Instant,
) -> Result<(), DbError> {
    let Ready {
        prepared,
        md5,
        ours,
        looked,
    } = ready;
    let Prepared {
        key,
        path,
        digest,
        stat,
    } = prepared;
    let target = &ctx.target;
    let looked = match looked {
        Looked::At(at, _) if at.elapsed() > LOOK_FRESH => look(target, &key.key).await,
        looked => Ok(looked),
    };
    let existing = match looked {
        Ok(Looked::NotNeeded) => None,
        Ok(Looked::At(_, present)) => present,
        Err(e) => return s3_fail(ctx, claim, &e, started).await,
    };
    let (outcome, etag) = match existing {
        Some(present) => match found(ctx, &key, &present, &digest, ours).await {
            Ok(Some(outcome)) => (outcome, present.etag),
            Ok(None) => return key_taken(ctx, claim, &key, &present, started).await,
            Err(e) => return s3_fail(ctx, claim, &e, started).await,
        },
        None => match target.put(&key, &path, &digest).await {
            Ok(put) => (Outcome::Uploaded, put.etag),
            Err(PutError::S3(e)) if e.is_precondition_failed() => {
                // Created between our HEAD and PUT by something outside the
                // queue: judge it like any object found there.
                let present = match target.head(&key.key).await {
                    Ok(Some(p)) => p,
                    Ok(None) => return s3_fail(ctx, claim, &e, started).await,
                    Err(e) => return s3_fail(ctx, claim, &e, started).await,
                };
                match found(ctx, &key, &present, &digest, ours).await {
                    Ok(Some(outcome)) => (outcome, present.etag),
                    Ok(None) => return key_taken(ctx, claim, &key, &present, started).await,
                    Err(e) => return s3_fail(ctx, claim, &e, started).await,
                }
            }
            Err(PutError::S3(e)) => return s3_fail(ctx, claim, &e, started).await,
            Err(PutError::Local(e)) => {
                tracing::info!(error = %ctx.redact.scrub(&e.to_string()), "the file could not be sent as hashed");
                return fail(ctx, claim, e.failure(), started).await;
            }
        },
    };
    ctx.outage.succeeded();
    let record = Record {
        outcome,
        bucket: target.bucket.clone(),
        url: target.url_for(&key.key),
        key: key.key.clone(),
        size: digest.size,
        md5,
        etag,
        duplicate_of: None,
        stat,
        piwigo: claim.piwigo,
    };
    complete(ctx, claim, record, started).await
}

/// What an object found at the key means for this photo: its upload (an
/// earlier attempt of its own), `already_present` (the same bytes, put
/// there by something else), or `None` for other bytes.
pub(super) async fn found(
    ctx: &Context,
    key: &ObjectKey,
    present: &Present,
    digest: &FileDigest,
    ours: bool,
) -> Result<Option<Outcome>, S3Error> {
    let same = match present.holds(digest) {
        Some(same) => same,
        // The ETag cannot tell: read the object back.
        None => ctx.target.object_md5(&key.key).await? == digest.md5_hex(),
    };
    Ok(match (same, ours) {
        (false, _) => None,
        (true, true) => Some(Outcome::Uploaded),
        (true, false) => Some(Outcome::AlreadyPresent),
    })
}

/// Another object is at this photo's key: never overwritten, so this photo
/// is not backed up. It waits for a change of layout (or of the photo).
pub(super) async fn key_taken(
    ctx: &Context,
    claim: &Claimed,
    key: &ObjectKey,
    present: &Present,
    started: Instant,
) -> Result<(), DbError> {
    let fix = "set s3.key_format to \"file_unique\" or \"path_and_file_unique\" so that every photo gets a key of its own";
    if !KEY_TAKEN_WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(s3.key = %key.key, fix, "an object with other bytes is at a photo's key; it is never overwritten, so that photo is NOT backed up");
    }
    let message = format!(
        "the key {} holds other bytes ({} bytes, ETag {}); it is never overwritten, so this {} is not backed up: {fix}",
        key.key,
        present.size,
        present.etag.as_deref().unwrap_or("none"),
        claim.item.kind(),
    );
    fail(
        ctx,
        claim,
        Failure::new(Status::FailedKeyTaken, message, Retry::UntilChanged),
        started,
    )
    .await
}
