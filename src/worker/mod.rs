//! One claimed item (a photo or one of its formats), start to finish:
//! read the Piwigo row, resolve the file, hash it, de-duplicate (photos),
//! reserve its key and look at it, then, in an upload slot, upload
//! without overwriting and record. The kinds differ only where
//! `queue::item::Item` says so. `send` is the trip to the bucket,
//! `record` how the end is written down.

pub mod lease;
mod record;
mod send;

use lease::leased;
pub use record::panicked;
use record::{complete, counted, fail, s3_fail};
use send::{Looked, look, upload};

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::UploadConfig;
use crate::db::DbError;
use crate::digest::{self, FileDigest};
use crate::metrics::Metrics;
use crate::piwigo::{FileError, FileStat, GalleryRoot};
use crate::queue::{Backoff, Claimed, Outcome, Queue, Record, Reservation};
use crate::redact::Redactor;
use crate::s3::Target;
use crate::s3::keys::ObjectKey;
use crate::s3::outage::Outage;
use crate::status::Status;

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
    /// One permit per upload in flight (`upload.workers`, or the figure
    /// found when it is "auto"); photos hashed ahead wait here. Shared
    /// across reloads.
    pub uploads: Arc<Semaphore>,
}

impl Context {
    fn backoff(&self) -> Backoff {
        Backoff {
            min: self.upload.retry_backoff_min,
            max: self.upload.retry_backoff_max,
        }
    }
}

/// The fix for a key that holds other bytes is said once per run, not
/// once per photo.
static KEY_TAKEN_WARNED: AtomicBool = AtomicBool::new(false);

/// Processes one claimed row, keeping its lease alive: hash the file,
/// reserve its key and look at it, wait for an upload slot, upload. On
/// `cancel` the row is handed back untouched, and so it is on `stop`
/// while it waits for a slot; if the lease is lost the work stops and
/// whoever took the row over finishes it.
pub async fn run(
    ctx: Arc<Context>,
    claim: Claimed,
    stop: CancellationToken,
    cancel: CancellationToken,
) {
    let span = tracing::info_span!(
        "upload",
        image.id = claim.image_id,
        queue.id = claim.id,
        item.kind = claim.item.kind(),
        item.label = claim.item.label()
    );
    async move {
        let started = Instant::now();
        let lease = ctx.upload.claim_lease;
        let hashed = leased(
            &ctx.queue,
            lease,
            &claim,
            &cancel,
            prepare(&ctx, &claim, started),
        )
        .await;
        let Some(Some(prepared)) = hashed.and_then(recorded) else {
            return;
        };
        // The database's part and the HEAD before the slot: a slot is an
        // upload in flight, and over a long link a HEAD inside it was a
        // round trip of every photo's turn.
        let reserved = leased(
            &ctx.queue,
            lease,
            &claim,
            &cancel,
            reserve(&ctx, &claim, prepared, started),
        )
        .await;
        let Some(Some(ready)) = reserved.and_then(recorded) else {
            return;
        };
        let uploads = ctx.uploads.clone().acquire_owned();
        let Some(Ok(_slot)) = leased(&ctx.queue, lease, &claim, &stop, uploads).await else {
            return;
        };
        if let Some(result) = leased(
            &ctx.queue,
            lease,
            &claim,
            &cancel,
            upload(&ctx, &claim, ready, started),
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

/// A photo hashed and ready to go.
struct Prepared {
    key: ObjectKey,
    path: PathBuf,
    digest: FileDigest,
    /// The file before it was hashed, recorded with the object.
    stat: FileStat,
}

/// A photo whose key is reserved and looked at, waiting for its slot.
struct Ready {
    prepared: Prepared,
    md5: String,
    /// Sent to this key by an earlier attempt of this photo.
    ours: bool,
    looked: Looked,
}

/// Resolves and hashes the file. `None` when the row is finished already:
/// deleted from Piwigo, or failed and rescheduled.
async fn prepare(
    ctx: &Context,
    claim: &Claimed,
    started: Instant,
) -> Result<Option<Prepared>, DbError> {
    let q = &ctx.queue;
    let Some(image) = claim.image.clone() else {
        if q.forget(claim).await? {
            if counted(claim) {
                ctx.metrics.deleted();
            }
            tracing::warn!(
                "photo was deleted from Piwigo before it was uploaded; removed from the queue"
            );
        }
        return Ok(None);
    };
    let stall = ctx.upload.read_stall_timeout;
    let rel = claim.item.source_path(&image.path);
    let (path, stat) = match ctx.root.locate(&rel, stall).await {
        Ok(located) => located,
        Err(e) => return fail(ctx, claim, e.failure(), started).await.map(|()| None),
    };
    let key = match ctx.target.key_for_item(&claim.item, &image) {
        Ok(k) => k,
        Err(e) => return fail(ctx, claim, e.failure(), started).await.map(|()| None),
    };
    // A new version starts from the object recorded now; an item whose
    // record has gone is sent as a first upload.
    let current = match claim.new_version {
        true => q.current(claim).await?,
        false => None,
    };
    let split = ctx.target.split_for(stat.size);
    let digest = match digest::digest(path.clone(), split, stall).await {
        Ok(d) => d,
        Err(e) => {
            let failure = FileError::from_hash(&path, e).failure();
            return fail(ctx, claim, failure, started).await.map(|()| None);
        }
    };
    ctx.metrics.hashed(digest.size);
    // The size may have changed between stat and read (a file replaced or
    // still growing): the parts must match what was hashed.
    if split != ctx.target.split_for(digest.size) {
        let e = FileError::Changed {
            path,
            reason: "its size changed while it was hashed".into(),
        };
        return fail(ctx, claim, e.failure(), started).await.map(|()| None);
    }
    let md5 = digest.md5_hex();
    let key = match current {
        // Touched, not changed: nothing new to keep.
        Some(c) if c.md5 == md5 && c.size == digest.size => {
            if q.refresh(claim, stat, claim.piwigo).await? {
                tracing::info!(s3.key = %c.key, "the file was touched but its bytes are the recorded ones; record refreshed, nothing uploaded");
            }
            return Ok(None);
        }
        Some(c) => {
            let version = c.version + 1;
            match ctx
                .target
                .key_for_version(&claim.item, claim.image_id, &image, version, &md5)
            {
                Ok(k) => k,
                Err(e) => return fail(ctx, claim, e.failure(), started).await.map(|()| None),
            }
        }
        None => key,
    };
    let key = key.describing(claim.image_id, &rel, &md5, claim.item.label());
    tracing::debug!(s3.key = %key.key, file.size = digest.size, file.md5 = %md5, "hashed");
    Ok(Some(Prepared {
        key,
        path,
        digest,
        stat,
    }))
}

/// De-duplicates a hashed photo, reserves its key and looks at it. `None`
/// when the row is finished already: a duplicate recorded, put aside to
/// wait for the photo holding its md5 or key, or failed.
async fn reserve(
    ctx: &Context,
    claim: &Claimed,
    prepared: Prepared,
    started: Instant,
) -> Result<Option<Ready>, DbError> {
    let q = &ctx.queue;
    let lease = ctx.upload.claim_lease;
    let md5 = prepared.digest.md5_hex();
    let reservation = ctx.target.reservation_for(&prepared.key.key);
    let dedupes = ctx.upload.prevent_duplicates_by_md5 && claim.item.dedupes_by_md5();
    // Both at once when neither is held (one commit, not two); when one
    // is, one at a time below, which finds which.
    let both = dedupes && q.reserve_md5_and_key(claim, &md5, &reservation).await?;
    if dedupes {
        // Reserve first, then look for a finished copy: a photo finishes by
        // releasing its reservation and recording its upload in one
        // transaction, so in this order no finished copy can be missed.
        if !both && let Reservation::HeldBy(other) = q.reserve_md5(claim, &md5).await? {
            tracing::debug!(
                duplicate_of = other,
                "same bytes as a photo being uploaded; waiting for it"
            );
            return q
                .wait(claim, Status::WaitingForDuplicate, other, &md5, lease)
                .await
                .map(|()| None);
        }
        if let Some(first) = q.uploaded_with_md5(&md5, prepared.digest.size).await?
            && first.image_id != claim.image_id
        {
            let record = Record {
                outcome: Outcome::Duplicate,
                bucket: first.bucket,
                key: first.key,
                size: prepared.digest.size,
                md5,
                etag: first.etag,
                url: first.url,
                duplicate_of: Some(first.image_id),
                stat: prepared.stat,
                piwigo: claim.piwigo,
            };
            return complete(ctx, claim, record, started).await.map(|()| None);
        }
    }
    // The key next: two photos sent to one key at once would both pass the
    // HEAD on a server that ignores If-None-Match, and one would replace
    // the other.
    if !both && let Reservation::HeldBy(other) = q.reserve_key(claim, &reservation).await? {
        tracing::debug!(s3.key = %prepared.key.key, key_held_by = other, "another photo is being sent to this key; waiting for it");
        return q
            .wait(claim, Status::WaitingForKey, other, &reservation, lease)
            .await
            .map(|()| None);
    }
    // Sent to this key by an earlier attempt of this photo, whose record
    // was lost: an object with its bytes there is its own upload.
    let ours = claim.sent_key.as_deref() == Some(reservation.as_str());
    let looked = match look(&ctx.target, &prepared.key.key).await {
        Ok(looked) => looked,
        Err(e) => return s3_fail(ctx, claim, &e, started).await.map(|()| None),
    };
    Ok(Some(Ready {
        prepared,
        md5,
        ours,
        looked,
    }))
}
