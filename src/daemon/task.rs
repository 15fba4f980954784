//! A background task the daemon starts and, at the end, stops: its own
//! stop token, awaited so nothing it holds outlives the daemon, and a
//! span named for it, so its log lines say which task wrote them.

use std::future::Future;

use tracing::Instrument;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub(super) struct Task {
    name: &'static str,
    handle: JoinHandle<()>,
    stop: CancellationToken,
}

impl Task {
    /// Spawns `work`, which must end soon after `stop` is cancelled.
    pub(super) fn spawn(
        name: &'static str,
        stop: CancellationToken,
        work: impl Future<Output = ()> + Send + 'static,
    ) -> Self {
        Self {
            name,
            handle: tokio::spawn(work.instrument(tracing::info_span!("task", name))),
            stop,
        }
    }

    pub(super) async fn stop(self) {
        self.stop.cancel();
        self.finish().await;
    }

    /// Waits for the work to end by itself (or by its stop token, if
    /// something else cancels it).
    pub(super) async fn finish(self) {
        if let Err(e) = self.handle.await {
            tracing::error!(task = self.name, error = %e, "background task ended abnormally");
        }
    }
}
