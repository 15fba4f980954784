//! Formats added to a photo after it was recorded: looked for now and
//! then, queued as items of the one pipeline, which is then woken. A
//! photo's formats at the time it is recorded are queued with its record.

use std::sync::Arc;
use std::time::Duration;

use sqlx::MySqlPool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::db::Tables;
use crate::queue;

/// How often formats of recorded photos are looked for.
pub(super) const INTERVAL: Duration = Duration::from_secs(30);

pub(super) async fn run(pool: MySqlPool, t: Tables, wake: Arc<Notify>, stop: CancellationToken) {
    let mut failures = crate::periodic::Failures::default();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(INTERVAL) => {}
        }
        let found = queue::formats::discover(&pool, &t).await;
        if found.is_ok() {
            failures.succeeded();
        }
        match found {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(
                    formats.queued = n,
                    "queued formats added to recorded photos"
                );
                wake.notify_one();
            }
            Err(e) => failures.failed(&e, "could not look for new formats; retrying"),
        }
    }
}
