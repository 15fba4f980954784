//! The lease keeper (`worker::lease::leased`) on a real MariaDB: a
//! heartbeat that comes due while the work holds the claimed row locked
//! in a transaction runs beside the work, and never waits for a lock its
//! own paused work holds; a cancelled work's transaction is rolled back
//! before the row is handed back.

mod common;

use std::time::Duration;

use common::*;
use piwigo_s3upload::queue::enqueue;
use piwigo_s3upload::queue::selection::Selection;
use piwigo_s3upload::queue::{Claimed, Queue};
use piwigo_s3upload::worker::lease::leased;
use tokio_util::sync::CancellationToken;

/// A hang guard, not a figure: the broken keeper waits for its own lock
/// until MariaDB gives up (50 s), again at every beat.
const GUARD: Duration = Duration::from_secs(30);

/// A beat every 200 ms.
const LEASE: Duration = Duration::from_millis(600);

async fn claimed(g: &Gallery) -> (Queue, Claimed) {
    let t = g.migrated().await;
    g.add_upload(1, "held.jpg", &photo_bytes(1, 1000)).await;
    let all = Selection {
        all: true,
        ..Default::default()
    };
    enqueue::selection(&g.pool, &t, &all, true, &mut |_, _| {})
        .await
        .unwrap();
    let queue = g.queue().await;
    let claim = queue.claim(1, LEASE).await.unwrap().remove(0);
    (queue, claim)
}

/// Locks the claimed row in a transaction, like a record does.
async fn lock_row(g: &Gallery, claim: &Claimed) -> sqlx::Transaction<'static, sqlx::MySql> {
    let mut tx = g.pool.begin().await.unwrap();
    sqlx::query(&format!(
        "UPDATE {} SET attempts = attempts WHERE id = ?",
        g.table("s3upload_queue")
    ))
    .bind(claim.id)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx
}

/// Heartbeats of this test's database being executed by the server: with
/// the row locked by the work, such a heartbeat waits for that lock.
async fn heartbeats_running(g: &Gallery) -> i64 {
    g.scalar_i64(
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
         WHERE DB = DATABASE() AND INFO LIKE 'UPDATE %SET claimed_until = %'",
    )
    .await
}

async fn claimed_until(g: &Gallery, claim: &Claimed) -> chrono::NaiveDateTime {
    sqlx::query_scalar(&format!(
        "SELECT claimed_until FROM {} WHERE id = ?",
        g.table("s3upload_queue")
    ))
    .bind(claim.id)
    .fetch_one(&g.pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_due_while_the_work_holds_the_row_runs_beside_it() {
    let g = Gallery::new().await;
    let (queue, claim) = claimed(&g).await;
    let before = claimed_until(&g, &claim).await;
    // The work commits only once a heartbeat is seen at the server, where
    // it waits for the work's lock: the work must go on running while the
    // heartbeat waits.
    let work = async {
        let tx = lock_row(&g, &claim).await;
        while heartbeats_running(&g).await == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tx.commit().await.unwrap();
        "recorded"
    };
    let out = tokio::time::timeout(
        GUARD,
        leased(&queue, LEASE, &claim, &CancellationToken::new(), work),
    )
    .await;
    assert_eq!(out, Ok(Some("recorded")));
    // The heartbeat went through once the lock was free.
    wait_for("the lease renewed", GUARD, || async {
        claimed_until(&g, &claim).await > before
    })
    .await;
    g.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_work_holding_the_row_still_hands_it_back() {
    let g = Gallery::new().await;
    let (queue, claim) = claimed(&g).await;
    let cancel = CancellationToken::new();
    let work = async {
        let _tx = lock_row(&g, &claim).await;
        cancel.cancel();
        std::future::pending::<()>().await
    };
    let out = tokio::time::timeout(GUARD, leased(&queue, LEASE, &claim, &cancel, work)).await;
    assert_eq!(out, Ok(None));
    let held = g
        .scalar_i64(&format!(
            "SELECT COUNT(*) FROM {} WHERE claimed_by IS NOT NULL",
            g.table("s3upload_queue")
        ))
        .await;
    assert_eq!(held, 0, "the row was handed back");
    g.drop_database().await;
}
