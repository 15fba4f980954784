//! The retention policy at work: the objects of photos deleted longer ago
//! than `[retention] deleted`, and earlier versions superseded longer ago
//! than `[retention] versions`, leave the bucket, through the one delete of
//! `s3/` (deleting an absent key succeeds, so a removal interrupted at any
//! point is simply done again). A failure is logged, kept on the photo's
//! mark for `status` and `retention`, and tried again after a backoff.

use std::time::Duration;

use sqlx::MySqlPool;

use crate::db::{DbError, Tables};
use crate::queue::removal::{self, TakeError};
use crate::worker;

/// Deleted photos handled per round.
const BATCH: u32 = 100;

/// What a round of removals did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    pub photos: u64,
    pub objects: u64,
    pub failed: u64,
}

/// Removes the objects of photos deleted more than `after` ago.
pub(super) async fn due(
    pool: &MySqlPool,
    t: &Tables,
    after: Duration,
    ctx: &worker::Context,
) -> Result<Removed, DbError> {
    let mut done = Removed::default();
    for image_id in removal::due(pool, t, after, BATCH).await? {
        match one(pool, t, image_id, after, ctx).await {
            Ok(objects) => {
                done.photos += 1;
                done.objects += objects;
                tracing::info!(
                    image.id = image_id,
                    objects,
                    "deleted photo's objects removed from the bucket (retention.deleted)"
                );
            }
            Err(Failed::Db(e)) => return Err(e),
            Err(Failed::Other(message)) => {
                done.failed += 1;
                let message = ctx.redact.scrub(&message);
                tracing::warn!(image.id = image_id, error = %message, "deleted photo's objects not removed; trying again later");
                removal::fail(
                    pool,
                    t,
                    image_id,
                    &message,
                    ctx.upload.retry_backoff_min,
                    ctx.upload.retry_backoff_max,
                )
                .await?;
            }
        }
    }
    Ok(done)
}

enum Failed {
    Db(DbError),
    Other(String),
}

async fn one(
    pool: &MySqlPool,
    t: &Tables,
    image_id: u32,
    after: Duration,
    ctx: &worker::Context,
) -> Result<u64, Failed> {
    let target = &ctx.target;
    let keys = removal::take_records(
        pool,
        t,
        image_id,
        &target.bucket,
        |key| target.reservation_for(key),
        after,
    )
    .await
    .map_err(|e| match e {
        TakeError::Db(e) => Failed::Db(e),
        other => Failed::Other(other.to_string()),
    })?;
    target
        .delete_keys(&keys)
        .await
        .map_err(|e| Failed::Other(e.to_string()))?;
    removal::confirm(pool, t, image_id)
        .await
        .map_err(Failed::Db)
}

/// Removes earlier versions superseded more than `after` ago (never one a
/// record holds now, nor a `duplicate`'s object: the listing leaves those
/// out). A failure leaves the row as it was, for the next round.
pub(super) async fn versions_due(
    pool: &MySqlPool,
    t: &Tables,
    after: Duration,
    ctx: &worker::Context,
) -> Result<Removed, DbError> {
    let mut done = Removed::default();
    for v in crate::queue::versions::superseded_before(pool, t, after, BATCH).await? {
        if v.bucket != ctx.target.bucket {
            // Written to another bucket: not this configuration's to delete.
            continue;
        }
        match ctx.target.delete_keys(std::slice::from_ref(&v.key)).await {
            Ok(()) => {
                crate::queue::versions::mark_removed(pool, t, v.id).await?;
                done.objects += 1;
                tracing::info!(
                    image.id = v.image_id,
                    key = %v.key,
                    "earlier version removed from the bucket (retention.versions)"
                );
            }
            Err(e) => {
                done.failed += 1;
                tracing::warn!(image.id = v.image_id, error = %ctx.redact.scrub(&e.to_string()), "earlier version not removed; trying again later");
            }
        }
    }
    Ok(done)
}
