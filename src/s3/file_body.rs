//! A request body read from a range of a file, chunk by chunk as it is
//! sent, and read again from the file for each retry of the request.
//!
//! Each chunk is first asked of the page cache on the runtime thread
//! (`preadv2` with `RWF_NOWAIT`), which the kernel answers at once or
//! refuses without waiting for the disk. A photo is hashed moments before
//! it is sent, so its bytes are nearly always there: the common chunk costs
//! no hand-over to the blocking pool and back (two thread wake-ups a chunk
//! with tokio's file reads). A chunk the cache cannot give, and every read
//! of a filesystem without `RWF_NOWAIT`, is read on the blocking pool, so a
//! file on a hung mount still holds up its own upload alone.

use std::fs::File;
use std::io::{Error, ErrorKind, IoSliceMut};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use aws_sdk_s3::primitives::{ByteStream, SdkBody};
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::StreamBody;
use rustix::io::{Errno, ReadWriteFlags};

use super::stall::Progress;
use super::throttle::Limiter;
use crate::piwigo::off_runtime;

/// How a body is read.
#[derive(Debug, Clone)]
pub struct Reading {
    /// Bytes read, and sent, at a time.
    pub chunk: usize,
    /// A filesystem call that does not answer within this is an error.
    pub stall: Duration,
    /// The bandwidth cap, paid for each chunk before it is sent.
    pub limiter: Option<Arc<Limiter>>,
    /// Where each chunk the connection takes is counted.
    pub sent: Sent,
}

/// Bytes the connections have taken from file bodies, retried requests
/// and uploads still in flight included: what the link carries as it
/// carries it. Bytes of finished uploads come in lumps at each upload's
/// end, a few a second on a slow link, too few to tell one figure of
/// `upload.workers = "auto"` from another within seconds.
#[derive(Debug, Clone, Default)]
pub struct Sent(Arc<AtomicU64>);

impl Sent {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn add(&self, n: usize) {
        self.0.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// `path[offset..offset + length]` as a body, noting in `progress` each
/// chunk the connection takes.
pub fn body(
    path: PathBuf,
    offset: u64,
    length: u64,
    reading: Reading,
    progress: Progress,
) -> ByteStream {
    ByteStream::new(SdkBody::retryable(move || {
        progress.restart();
        if length == 0 {
            progress.sent();
        }
        SdkBody::from_body_1_x(Exact {
            inner: StreamBody::new(Box::pin(chunks(
                path.clone(),
                offset,
                length,
                reading.clone(),
            ))),
            remaining: length,
            progress: progress.clone(),
            sent: reading.sent.clone(),
        })
    }))
}

struct Range {
    path: PathBuf,
    file: Option<Arc<File>>,
    next: u64,
    end: u64,
    reading: Reading,
    /// Whether this filesystem takes `RWF_NOWAIT`; a refusal turns it off
    /// for the rest of the body.
    nowait: bool,
}

fn chunks(
    path: PathBuf,
    offset: u64,
    length: u64,
    reading: Reading,
) -> impl futures_util::Stream<Item = Result<Frame<Bytes>, Error>> + Send + Sync {
    let range = Range {
        path,
        file: None,
        next: offset,
        end: offset.saturating_add(length),
        reading,
        nowait: true,
    };
    futures_util::stream::try_unfold(range, |mut r| async move {
        if r.next >= r.end {
            return Ok(None);
        }
        let data = r.read_chunk().await?;
        if let Some(limiter) = &r.reading.limiter {
            limiter.take(data.len()).await;
        }
        Ok(Some((Frame::data(data), r)))
    })
}

impl Range {
    async fn read_chunk(&mut self) -> Result<Bytes, Error> {
        let file = match &self.file {
            Some(file) => file.clone(),
            None => {
                let path = self.path.clone();
                let opened = off_runtime(&self.path, self.reading.stall, move || File::open(path))
                    .await
                    .map_err(Error::other)??;
                self.file.insert(Arc::new(opened)).clone()
            }
        };
        let want = usize::try_from(self.end - self.next)
            .map_or(self.reading.chunk, |left| left.min(self.reading.chunk));
        let mut buf = vec![0u8; want];
        let cached = if self.nowait {
            self.read_cached(&file, &mut buf)?
        } else {
            None
        };
        let read = match cached {
            Some(n) => {
                buf.truncate(n);
                buf
            }
            None => {
                let at = self.next;
                off_runtime(&self.path, self.reading.stall, move || {
                    let n = file.read_at(&mut buf, at)?;
                    buf.truncate(n);
                    Ok::<_, Error>(buf)
                })
                .await
                .map_err(Error::other)??
            }
        };
        if read.is_empty() {
            // Shorter than when it was hashed: S3 then refuses the upload
            // for its length, and the file is found changed.
            return Err(Error::new(
                ErrorKind::UnexpectedEof,
                format!(
                    "{} ended {} bytes early",
                    self.path.display(),
                    self.end - self.next
                ),
            ));
        }
        self.next += read.len() as u64;
        Ok(Bytes::from(read))
    }

    /// What the page cache holds of the next chunk, without waiting:
    /// `None` when the kernel would have to wait for the disk.
    fn read_cached(&mut self, file: &File, buf: &mut [u8]) -> Result<Option<usize>, Error> {
        let asked = rustix::io::preadv2(
            file,
            &mut [IoSliceMut::new(buf)],
            self.next,
            ReadWriteFlags::NOWAIT,
        );
        match asked {
            Ok(n) => Ok(Some(n)),
            Err(Errno::AGAIN) => Ok(None),
            // A filesystem or kernel without RWF_NOWAIT, or a seccomp
            // filter that refuses preadv2 (`SystemCallErrorNumber=EPERM`;
            // the unit's `@system-service` set allows it).
            Err(Errno::OPNOTSUPP | Errno::INVAL | Errno::NOSYS | Errno::PERM) => {
                self.nowait = false;
                Ok(None)
            }
            Err(Errno::INTR) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// A body whose length is known: the length goes out as Content-Length,
/// and a body that ends short is an error, not a shorter request.
struct Exact<B> {
    inner: B,
    remaining: u64,
    progress: Progress,
    sent: Sent,
}

impl<B> Body for Exact<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            this.remaining = this.remaining.saturating_sub(data.len() as u64);
            this.progress.moved();
            this.sent.add(data.len());
            if this.remaining == 0 {
                this.progress.sent();
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(chunk: usize) -> Reading {
        Reading {
            chunk,
            stall: Duration::from_secs(10),
            limiter: None,
            sent: Sent::default(),
        }
    }

    async fn collect(body: ByteStream) -> Result<Vec<u8>, String> {
        body.collect()
            .await
            .map(|b| b.into_bytes().to_vec())
            .map_err(|e| format!("{e:?}"))
    }

    fn file_of(len: usize) -> (tempfile::TempDir, PathBuf, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("photo.jpg");
        let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        (dir, path, bytes)
    }

    /// Every byte a connection takes is counted once per sending: a retry
    /// sends, and counts, the body again.
    #[tokio::test]
    async fn the_bytes_taken_are_counted_as_they_go() {
        let (_dir, path, _) = file_of(700_000);
        let read = reading(65_536);
        let sent = read.sent.clone();
        let body = body(path, 100, 600_000, read, Progress::new()).into_inner();
        let again = body.try_clone().expect("retryable");
        collect(ByteStream::new(body)).await.unwrap();
        assert_eq!(sent.get(), 600_000);
        collect(ByteStream::new(again)).await.unwrap();
        assert_eq!(sent.get(), 1_200_000);
    }

    #[tokio::test]
    async fn a_range_comes_whole_in_chunks_of_any_size() {
        let (_dir, path, bytes) = file_of(1_000_003);
        for chunk in [4096, 256 * 1024, 2_000_000] {
            for (offset, length) in [(0, 1_000_003), (5, 0), (65_536, 300_001), (999_999, 4)] {
                let progress = Progress::new();
                let body = body(
                    path.clone(),
                    offset,
                    length,
                    reading(chunk),
                    progress.clone(),
                );
                let got = collect(body).await.unwrap();
                // The watch stops judging once every byte was taken (an
                // empty body has nothing to take).
                assert!(progress.is_sent(), "{chunk} {offset} {length}");
                let start = offset as usize;
                assert_eq!(
                    got,
                    bytes[start..start + length as usize],
                    "{chunk} {offset}"
                );
            }
        }
    }

    #[tokio::test]
    async fn a_file_shorter_than_its_range_is_an_error() {
        let (_dir, path, _) = file_of(1000);
        let err = collect(body(path, 0, 2000, reading(256), Progress::new()))
            .await
            .unwrap_err();
        assert!(err.contains("ended 1000 bytes early"), "{err}");
    }

    #[tokio::test]
    async fn a_missing_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = collect(body(
            dir.path().join("gone.jpg"),
            0,
            10,
            reading(256),
            Progress::new(),
        ))
        .await
        .unwrap_err();
        assert!(err.contains("NotFound"), "{err}");
    }

    #[tokio::test]
    async fn a_body_is_read_again_for_a_retry() {
        let (_dir, path, bytes) = file_of(70_000);
        let body = body(path, 0, 70_000, reading(4096), Progress::new());
        let again = body.into_inner().try_clone().expect("retryable");
        assert_eq!(collect(ByteStream::new(again)).await.unwrap(), bytes);
    }

    #[tokio::test]
    async fn without_rwf_nowait_every_chunk_comes_from_the_blocking_pool() {
        let (_dir, path, bytes) = file_of(300_000);
        let mut range = Range {
            path,
            file: None,
            next: 1000,
            end: 300_000,
            reading: reading(65_536),
            nowait: false,
        };
        let mut got = Vec::new();
        while range.next < range.end {
            got.extend_from_slice(&range.read_chunk().await.unwrap());
        }
        assert_eq!(got, bytes[1000..]);
    }

    #[tokio::test]
    async fn a_fifo_in_place_of_the_photo_stalls_its_body_alone() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("photo.jpg");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let mut slow = reading(4096);
        slow.stall = Duration::from_millis(200);
        let stuck = tokio::spawn(collect(body(fifo.clone(), 0, 10, slow, Progress::new())));
        let (_dir, path, bytes) = file_of(5000);
        assert_eq!(
            collect(body(path, 0, 5000, reading(4096), Progress::new()))
                .await
                .unwrap(),
            bytes
        );
        let err = stuck.await.unwrap().unwrap_err();
        assert!(err.contains("did not answer"), "{err}");
        // Free the blocked thread so the runtime can shut down.
        drop(std::fs::OpenOptions::new().write(true).open(&fifo).unwrap());
    }

    #[tokio::test]
    async fn the_size_is_known_before_a_byte_is_read() {
        let (_dir, path, _) = file_of(10);
        let body = body(path, 2, 8, reading(4096), Progress::new());
        assert_eq!(body.size_hint(), (8, Some(8)));
    }
}
