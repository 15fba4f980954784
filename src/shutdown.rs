//! Signals in, tokens out: the first SIGINT/SIGTERM asks for a graceful
//! stop, a second one stops at once. Tests pass their own tokens.

use tokio_util::sync::CancellationToken;

/// The two stages of stopping.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    /// Stop claiming; let uploads in flight finish within the limit.
    pub graceful: CancellationToken,
    /// Stop uploads in flight now and hand their photos back.
    pub now: CancellationToken,
}

impl Shutdown {
    /// Wires SIGINT and SIGTERM to the tokens.
    pub fn from_signals() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        let shutdown = Self::default();
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let tokens = shutdown.clone();
        tokio::spawn(async move {
            let mut seen = 0;
            loop {
                let name = tokio::select! {
                    _ = term.recv() => "SIGTERM",
                    _ = int.recv() => "SIGINT",
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
