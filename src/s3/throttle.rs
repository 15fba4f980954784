//! The bandwidth cap: one token bucket shared by every upload, and a body
//! that waits for tokens before each chunk it reads from disk.

use std::io::SeekFrom;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::primitives::{ByteStream, SdkBody};
use bytes::Bytes;
use http_body::Frame;
use http_body_util::StreamBody;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::Mutex;
use tokio::time::Instant;

/// Chunk read and paid for at once: small enough to keep the rate smooth.
const CHUNK: usize = 64 * 1024;

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

/// `path[offset..offset + length]` as a body paced by `limiter`; rebuilt
/// from the file for each retry of the request.
pub fn body(path: PathBuf, offset: u64, length: u64, limiter: Arc<Limiter>) -> ByteStream {
    let sdk = SdkBody::retryable(move || {
        SdkBody::from_body_1_x(paced(path.clone(), offset, length, limiter.clone()))
    });
    ByteStream::new(sdk)
}

struct Reader {
    path: PathBuf,
    offset: u64,
    remaining: u64,
    file: Option<tokio::fs::File>,
    limiter: Arc<Limiter>,
}

fn paced(
    path: PathBuf,
    offset: u64,
    length: u64,
    limiter: Arc<Limiter>,
) -> StreamBody<impl futures_util::Stream<Item = Result<Frame<Bytes>, std::io::Error>> + Send + Sync>
{
    let start = Reader {
        path,
        offset,
        remaining: length,
        file: None,
        limiter,
    };
    let stream = futures_util::stream::try_unfold(start, |mut r| async move {
        if r.remaining == 0 {
            return Ok(None);
        }
        let file = match r.file.as_mut() {
            Some(f) => f,
            None => {
                let mut f = tokio::fs::File::open(&r.path).await?;
                f.seek(SeekFrom::Start(r.offset)).await?;
                r.file.insert(f)
            }
        };
        let n = (r.remaining as usize).min(CHUNK);
        let mut buf = vec![0u8; n];
        // A file that shrank since it was hashed ends the body early; S3
        // then refuses the upload for its length or its Content-MD5.
        file.read_exact(&mut buf).await?;
        r.limiter.take(n).await;
        r.remaining -= n as u64;
        Ok(Some((Frame::data(Bytes::from(buf)), r)))
    });
    StreamBody::new(stream)
}

#[cfg(test)]
mod tests {
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
