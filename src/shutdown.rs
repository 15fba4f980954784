//! Signals in, tokens out: the first SIGINT/SIGTERM asks for a graceful
//! stop, a second one stops at once; SIGHUP asks for a config reload.
//! Tests pass their own tokens.

use std::sync::Arc;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The two stages of stopping, and the reload request.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    /// Stop claiming; let uploads in flight finish within the limit.
    pub graceful: CancellationToken,
    /// Stop uploads in flight now and hand their photos back.
    pub now: CancellationToken,
    /// Re-read the config file.
    pub reload: Arc<Notify>,
}

impl Shutdown {
    /// Wires SIGINT, SIGTERM and SIGHUP to the tokens.
    pub fn from_signals() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        let shutdown = Self::default();
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut hup = signal(SignalKind::hangup())?;
        let tokens = shutdown.clone();
        tokio::spawn(async move {
            let mut seen = 0;
            loop {
                let name = tokio::select! {
                    _ = term.recv() => "SIGTERM",
                    _ = int.recv() => "SIGINT",
                    _ = hup.recv() => {
                        tracing::info!(signal = "SIGHUP", "reloading the configuration");
                        tokens.reload.notify_one();
                        continue;
                    }
                };
                seen += 1;
                if seen == 1 {
                    tracing::info!(
                        signal = name,
                        "stopping: no new uploads; uploads in flight may finish (send the signal again to stop now)"
                    );
                    tokens.graceful.cancel();
                } else {
                    tracing::warn!(
                        signal = name,
                        "stopping now: uploads in flight are handed back to the queue"
                    );
                    tokens.graceful.cancel();
                    tokens.now.cancel();
                }
            }
        });
        Ok(shutdown)
    }
}
