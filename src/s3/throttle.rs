//! The bandwidth cap: one token bucket shared by every upload. A capped
//! body (`file_body`) waits for tokens before each chunk it sends.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// Chunk read and paid for at once: small enough to keep the rate smooth.
pub const CHUNK: usize = 64 * 1024;

#[derive(Debug)]
pub struct Limiter {
    rate: f64,
    burst: f64,
    bucket: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Limiter {
    pub fn new(bytes_per_second: u64) -> Self {
        let rate = bytes_per_second.max(1) as f64;
        // A tenth of a second of burst, at least one chunk.
        let burst = (rate / 10.0).max(CHUNK as f64);
        Self {
            rate,
            burst,
            bucket: Mutex::new(Bucket {
                tokens: burst,
                last: Instant::now(),
            }),
        }
    }

    /// Waits until `n` bytes may be sent. Waiters queue in order (the lock
    /// is fair and held while waiting), so no upload starves.
    pub async fn take(&self, n: usize) {
        let mut b = self.bucket.lock().await;
        let now = Instant::now();
        let earned = now.duration_since(b.last).as_secs_f64() * self.rate;
        b.tokens = (b.tokens + earned).min(self.burst) - n as f64;
        b.last = now;
        if b.tokens < 0.0 {
            // The debt is paid by the time that passes while we sleep.
            tokio::time::sleep(Duration::from_secs_f64(-b.tokens / self.rate)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn limiter_holds_the_rate() {
        let l = Limiter::new(1024 * 1024);
        let start = Instant::now();
        // 10 MiB at 1 MiB/s, less the initial burst of one chunk.
        for _ in 0..160 {
            l.take(CHUNK).await;
        }
        let took = start.elapsed().as_secs_f64();
        assert!((9.9..10.1).contains(&took), "{took}");
    }

    #[tokio::test(start_paused = true)]
    async fn shared_limiter_divides_the_rate() {
        let l = Arc::new(Limiter::new(512 * 1024));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let l = l.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..16 {
                    l.take(CHUNK).await;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        // 4 MiB at 512 KiB/s.
        let took = start.elapsed().as_secs_f64();
        assert!((7.8..8.1).contains(&took), "{took}");
    }
}
