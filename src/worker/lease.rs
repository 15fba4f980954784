//! Keeping a claimed row's lease alive while its work runs, and handing
//! the row back when the work is called off.

use std::future::Future;
use std::time::Duration;

use futures_util::FutureExt;
use tokio_util::sync::CancellationToken;

use crate::queue::{Claimed, Queue};

/// How `work` ended when it did not finish.
enum CalledOff {
    Cancelled,
    Lost,
}

/// Drives `work` while renewing the claim's lease every third of `lease`.
/// `None` when the work did not finish: the claim was lost, or `cancel`
/// fired and the row was handed back.
///
/// The heartbeat runs beside the work, never in its place: the work may
/// hold a transaction that has locked the row, and a heartbeat awaited
/// while the work is paused would wait for that lock, held by its own
/// task, until the server gives up (`innodb_lock_wait_timeout`, 50 s by
/// default). For the same reason the work is dropped, and its
/// transaction rolled back, before the row is handed back.
pub async fn leased<T>(
    queue: &Queue,
    lease: Duration,
    claim: &Claimed,
    cancel: &CancellationToken,
    work: impl Future<Output = T>,
) -> Option<T> {
    let mut work = Box::pin(work);
    let beats = keep_alive(queue, claim, lease);
    tokio::pin!(beats);
    // Cancellation first: a photo whose slot comes free after a stop was
    // asked for goes back to the queue instead of starting.
    let called_off = tokio::select! {
        biased;
        _ = cancel.cancelled() => CalledOff::Cancelled,
        result = &mut work => return Some(result),
        () = &mut beats => CalledOff::Lost,
    };
    match called_off {
        CalledOff::Lost => {
            // A record that removed the row ends the lease too: when the
            // work has finished, its result stands.
            if let Some(result) = work.now_or_never() {
                return Some(result);
            }
            tracing::warn!("claim lost (lease expired); another worker takes this photo over");
        }
        CalledOff::Cancelled => {
            drop(work);
            if let Err(e) = queue.release(claim).await {
                tracing::warn!(error = %e, "could not hand the photo back; it returns after the claim lease");
            }
        }
    }
    None
}

/// Renews the lease until the row is no longer this claim's.
async fn keep_alive(queue: &Queue, claim: &Claimed, lease: Duration) {
    let mut beat = tokio::time::interval(lease / 3);
    beat.tick().await;
    loop {
        beat.tick().await;
        match queue.heartbeat(claim, lease).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => tracing::warn!(error = %e, "heartbeat failed; retrying"),
        }
    }
}
