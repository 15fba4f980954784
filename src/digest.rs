//! The md5 of every file before it is sent: of the whole file (for
//! records, de-duplication and Content-MD5), and the checksum of each part
//! a multipart file is sent in: its md5 for Content-MD5, or, where the
//! server is known to check it, a CRC32C that costs a fraction of a second
//! md5 over the same bytes (`s3.checksum`). One read of the file either way.
//!
//! Each photo is hashed on its own task of the blocking pool, so one file
//! whose `open()` or `read()` hangs (a hard-mounted NFS gallery, a FIFO
//! swapped in for a photo) holds up that photo alone. A read that makes no
//! progress for the stall limit fails the photo and frees its worker; the
//! stuck thread is left to the kernel and stops as soon as its call returns.

use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::md5::Md5;

/// Bytes read per call: large enough to run at disk speed, small enough
/// that many photos hashed at once stay within a few MiB.
const CHUNK: usize = 256 * 1024;

/// What the server checks each part of a multipart upload against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartCheck {
    /// Content-MD5: every server takes it, and the part's ETag repeats it.
    ContentMd5,
    /// `x-amz-checksum-crc32c`, for servers shown to refuse a part whose
    /// bytes do not match it.
    Crc32c,
}

/// How a file is cut for a multipart upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    pub part_size: u64,
    pub check: PartCheck,
}

/// The checksum of one part, as its [`PartCheck`] asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartSum {
    Md5([u8; 16]),
    Crc32c([u8; 4]),
}

/// The md5 of a whole file and the checksum of each part it will be sent
/// in.
#[derive(Debug, Clone)]
pub struct FileDigest {
    pub size: u64,
    pub md5: [u8; 16],
    /// One entry per part when the file goes multipart, else empty.
    pub parts: Vec<PartSum>,
    pub part_size: u64,
}

impl FileDigest {
    pub fn md5_hex(&self) -> String {
        hex(&self.md5)
    }

    /// The ETag S3 gives an object uploaded from these bytes: the md5 for
    /// one PUT, the md5 of the part md5s and their count for multipart.
    /// `None` for parts checked by CRC: their md5s were never taken.
    pub fn etag(&self) -> Option<String> {
        if self.parts.is_empty() {
            return Some(self.md5_hex());
        }
        let mut h = Md5::new();
        for p in &self.parts {
            match p {
                PartSum::Md5(md5) => h.update(md5),
                PartSum::Crc32c(_) => return None,
            }
        }
        Some(format!("{}-{}", hex(&h.finalize()), self.parts.len()))
    }
}

/// Lower-case hex, as S3 and Piwigo write an md5.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The md5 of a few bytes held in memory, in hex.
pub fn md5_hex(bytes: &[u8]) -> String {
    hex(&Md5::digest(bytes))
}

/// The md5 of several texts, each followed by a NUL so that ("ab", "c")
/// and ("a", "bc") differ: for fingerprints and key reservations.
pub fn md5_hex_of(parts: &[&str]) -> String {
    let mut h = Md5::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update(&[0u8]);
    }
    hex(&h.finalize())
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("{0}")]
    Io(#[from] io::Error),
    /// `open()` or `read()` returned nothing for this long.
    #[error("reading made no progress for {}", humantime::format_duration(*.0))]
    Stalled(Duration),
}

/// Reads `path` once, hashing the whole file and, when `split` is given,
/// every part of its size. Fails with [`HashError::Stalled`] when no byte
/// arrives for `stall`.
pub async fn digest(
    path: PathBuf,
    split: Option<Split>,
    stall: Duration,
) -> Result<FileDigest, HashError> {
    let progress = Arc::new(AtomicU64::new(0));
    // Set when nobody waits any more (stalled, or the worker was stopped):
    // a thread that wakes up later stops at its next chunk.
    let abandoned = Abandon(Arc::new(AtomicBool::new(false)));
    let task = {
        let progress = progress.clone();
        let abandoned = abandoned.0.clone();
        tokio::task::spawn_blocking(move || hash_file(&path, split, &progress, &abandoned))
    };
    tokio::pin!(task);
    let check = (stall / 4).max(Duration::from_millis(50));
    let mut seen = 0;
    let mut last_move = tokio::time::Instant::now();
    loop {
        tokio::select! {
            done = &mut task => {
                return match done {
                    Ok(result) => result.map_err(HashError::Io),
                    // A panic in one photo's hashing fails that photo alone.
                    Err(e) => Err(HashError::Io(io::Error::other(format!("hashing failed unexpectedly: {e}")))),
                };
            }
            _ = tokio::time::sleep(check) => {
                let now = progress.load(Ordering::Relaxed);
                if now != seen {
                    seen = now;
                    last_move = tokio::time::Instant::now();
                } else if last_move.elapsed() >= stall {
                    return Err(HashError::Stalled(stall));
                }
            }
        }
    }
}

/// Marks the hashing abandoned when its waiter goes away, however it goes.
struct Abandon(Arc<AtomicBool>);

impl Drop for Abandon {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn hash_file(
    path: &std::path::Path,
    split: Option<Split>,
    progress: &AtomicU64,
    abandoned: &AtomicBool,
) -> io::Result<FileDigest> {
    let mut file = File::open(path)?;
    progress.fetch_add(1, Ordering::Relaxed);
    let mut buf = vec![0u8; CHUNK];
    let mut whole = Md5::new();
    let mut size = 0u64;
    let mut part = split.map(|split| Parts {
        size: split.part_size,
        state: PartState::new(split.check),
        filled: 0,
        done: Vec::new(),
    });
    loop {
        if abandoned.load(Ordering::Relaxed) {
            return Err(io::Error::other("hashing abandoned"));
        }
        // Never read across a part boundary.
        let want = match &part {
            Some(p) => usize::try_from(p.size - p.filled).map_or(CHUNK, |left| left.min(CHUNK)),
            None => CHUNK,
        };
        let n = match file.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        progress.fetch_add(n as u64, Ordering::Relaxed);
        let chunk = &buf[..n];
        whole.update(chunk);
        size += n as u64;
        if let Some(p) = &mut part {
            p.state.update(chunk);
            p.filled += n as u64;
            if p.filled == p.size {
                let check = p.state.check();
                p.done
                    .push(std::mem::replace(&mut p.state, PartState::new(check)).finish());
                p.filled = 0;
            }
        }
    }
    let (parts, part_size) = match part {
        Some(mut p) => {
            // An empty file still goes as one (empty) part.
            if p.filled > 0 || p.done.is_empty() {
                p.done.push(p.state.finish());
            }
            (p.done, p.size)
        }
        None => (Vec::new(), 0),
    };
    Ok(FileDigest {
        size,
        md5: whole.finalize(),
        parts,
        part_size,
    })
}

struct Parts {
    size: u64,
    state: PartState,
    filled: u64,
    done: Vec<PartSum>,
}

/// The running checksum of the part being read.
enum PartState {
    Md5(Md5),
    Crc32c(Box<dyn aws_smithy_checksums::http::HttpChecksum>),
}

impl PartState {
    fn new(check: PartCheck) -> Self {
        match check {
            PartCheck::ContentMd5 => Self::Md5(Md5::new()),
            PartCheck::Crc32c => {
                Self::Crc32c(aws_smithy_checksums::ChecksumAlgorithm::Crc32c.into_impl())
            }
        }
    }

    fn check(&self) -> PartCheck {
        match self {
            Self::Md5(_) => PartCheck::ContentMd5,
            Self::Crc32c(_) => PartCheck::Crc32c,
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            Self::Md5(h) => h.update(bytes),
            Self::Crc32c(h) => h.update(bytes),
        }
    }

    fn finish(self) -> PartSum {
        match self {
            Self::Md5(h) => PartSum::Md5(h.finalize()),
            Self::Crc32c(h) => {
                let crc = h.finalize();
                // Four bytes, big-endian, as S3 sends it. Were it ever
                // another length, the zeros sent instead make the server
                // refuse the part: wrong bytes are never stored.
                PartSum::Crc32c(<[u8; 4]>::try_from(&crc[..]).unwrap_or_default())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STALL: Duration = Duration::from_secs(30);

    /// An md5 from another implementation than the one under test.
    fn reference_md5(bytes: &[u8]) -> [u8; 16] {
        use ::md5::Digest as _;
        ::md5::Md5::digest(bytes).into()
    }

    fn data(seed: usize, len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| ((i * 7 + seed * 13) % 251) as u8)
            .collect()
    }

    /// Known answers, so the digest is checked against md5 itself and not
    /// against the same crate it is computed with.
    #[tokio::test]
    async fn known_md5_values() {
        let dir = tempfile::tempdir().unwrap();
        for (text, want) in [
            (&b""[..], "d41d8cd98f00b204e9800998ecf8427e"),
            (b"abc", "900150983cd24fb0d6963f7d28e17f72"),
            (
                b"The quick brown fox jumps over the lazy dog",
                "9e107d9d372bb6826bd81d3542a419d6",
            ),
        ] {
            let path = dir.path().join("f");
            std::fs::write(&path, text).unwrap();
            let d = digest(path, None, STALL).await.unwrap();
            assert_eq!(d.md5_hex(), want);
            assert_eq!(d.etag().as_deref(), Some(want));
        }
    }

    #[tokio::test]
    async fn whole_and_part_digests() {
        let dir = tempfile::tempdir().unwrap();
        let part = 300_000u64;
        let lens = [0, 1, 63, 64, 65, CHUNK, CHUNK * 3 + 123, 900_000, 1_000_001];
        for (i, &len) in lens.iter().enumerate() {
            let bytes = data(i, len);
            let path = dir.path().join(format!("f{i}"));
            std::fs::write(&path, &bytes).unwrap();
            let split = (i % 2 == 0).then_some(Split {
                part_size: part,
                check: PartCheck::ContentMd5,
            });
            let d = digest(path, split, STALL).await.unwrap();
            assert_eq!(d.size, bytes.len() as u64);
            assert_eq!(d.md5, reference_md5(&bytes));
            match split {
                Some(split) => {
                    let mut want: Vec<PartSum> = bytes
                        .chunks(split.part_size as usize)
                        .map(|c| PartSum::Md5(reference_md5(c)))
                        .collect();
                    if want.is_empty() {
                        want.push(PartSum::Md5(reference_md5(b"")));
                    }
                    assert_eq!(d.parts, want, "{} bytes", bytes.len());
                    assert_eq!(d.part_size, split.part_size);
                    let etag = d.etag().unwrap();
                    assert!(etag.ends_with(&format!("-{}", want.len())));
                }
                None => assert!(d.parts.is_empty()),
            }
        }
    }

    /// CRC32C parts, checked against the algorithm's published check
    /// value ("123456789" gives e3069283) and against the part boundaries;
    /// the whole file's md5 is taken all the same, and no multipart ETag
    /// can be foretold without the parts' md5s.
    #[tokio::test]
    async fn crc32c_parts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"123456789123456789").unwrap();
        let split = Split {
            part_size: 9,
            check: PartCheck::Crc32c,
        };
        let d = digest(path, Some(split), STALL).await.unwrap();
        let check = PartSum::Crc32c([0xe3, 0x06, 0x92, 0x83]);
        assert_eq!(d.parts, vec![check, check]);
        assert_eq!(d.md5_hex(), md5_hex(b"123456789123456789"));
        assert_eq!(d.etag(), None);
    }

    #[tokio::test]
    async fn a_missing_file_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = digest(dir.path().join("absent"), None, STALL)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, HashError::Io(e) if e.kind() == io::ErrorKind::NotFound),
            "{err:?}"
        );
    }

    /// A FIFO with no writer blocks `open()` for good: the photo fails as
    /// stalled while another file is hashed meanwhile.
    #[tokio::test]
    async fn a_hanging_open_stalls_that_file_alone() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.jpg");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let stuck = tokio::spawn(digest(fifo.clone(), None, Duration::from_millis(400)));
        let other = dir.path().join("other.jpg");
        std::fs::write(&other, b"abc").unwrap();
        let fine = digest(other, None, STALL).await.unwrap();
        assert_eq!(fine.md5_hex(), "900150983cd24fb0d6963f7d28e17f72");
        let err = stuck.await.unwrap().unwrap_err();
        assert!(matches!(err, HashError::Stalled(_)), "{err:?}");
        // Free the blocked thread so the runtime can shut down.
        drop(std::fs::OpenOptions::new().write(true).open(&fifo).unwrap());
    }
}
