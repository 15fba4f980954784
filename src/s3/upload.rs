//! Streaming a file to the bucket: one PUT for small files, multipart for
//! large ones, every body read from disk as it is sent (memory stays flat
//! whatever the file size) and checked by S3: a single PUT against
//! Content-MD5, each part against its Content-MD5 or its CRC32C
//! ([`PartCheck`]).

use std::path::Path;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::CompletedPart;
use aws_smithy_types::base64;

use super::Target;
use super::error::S3Error;
use super::file_body::Reading;
use super::keys::ObjectKey;
use super::multipart::Multipart;
use super::stall::{self, Progress};
use crate::digest::{FileDigest, PartCheck, PartSum, Split};
use crate::piwigo::{FileError, off_runtime};

/// Read size for streaming bodies: large enough to run at disk speed, small
/// enough that 8 workers stay within a few MiB.
const CHUNK: usize = 256 * 1024;

/// What is at a key already.
#[derive(Debug, Clone)]
pub struct Present {
    pub etag: Option<String>,
    pub size: u64,
}

/// A finished upload.
#[derive(Debug, Clone)]
pub struct Put {
    pub etag: Option<String>,
}

impl Present {
    /// Whether the object holds the bytes of `digest`, judged by size and
    /// ETag. `None` when the ETag cannot tell (encrypted with KMS, or
    /// sent in parts of another size): then only the bytes can.
    pub fn holds(&self, digest: &FileDigest) -> Option<bool> {
        if self.size != digest.size {
            return Some(false);
        }
        let etag = self.etag.as_deref()?.trim_matches('"');
        if digest.etag().is_some_and(|ours| ours == etag)
            || (!etag.contains('-') && etag == digest.md5_hex())
        {
            Some(true)
        } else {
            None
        }
    }
}

/// Why a PUT failed: S3's answer, or the local file (which is never an S3
/// failure and never opens an outage).
#[derive(Debug, thiserror::Error)]
pub enum PutError {
    #[error(transparent)]
    S3(#[from] S3Error),
    #[error(transparent)]
    Local(#[from] FileError),
}

impl Target {
    /// How a file of `size` bytes is sent in parts, `None` below the
    /// multipart threshold. The part size grows past the configured one
    /// for huge files: S3 allows at most 10,000 parts.
    pub fn split_for(&self, size: u64) -> Option<Split> {
        if size <= self.multipart_threshold {
            return None;
        }
        const MIB: u64 = 1024 * 1024;
        let needed = size.div_ceil(10_000).div_ceil(MIB) * MIB;
        Some(Split {
            part_size: self.part_size.max(needed),
            check: self.part_check(),
        })
    }

    /// Whether an object is at `key` already; `None` when there is none.
    pub async fn head(&self, key: &str) -> Result<Option<Present>, S3Error> {
        Ok(self
            .head_object(&self.bucket, key)
            .await?
            .map(|out| Present {
                etag: out.e_tag,
                size: out.content_length.unwrap_or(0).max(0) as u64,
            }))
    }

    /// The md5 (hex) of the object at `key`, read back: for the rare
    /// object whose ETag cannot say whether it holds a photo's bytes.
    pub async fn object_md5(&self, key: &str) -> Result<String, S3Error> {
        match self.read_md5(&self.bucket, key).await? {
            Some((md5, _)) => Ok(md5),
            None => Err(S3Error {
                op: "get object",
                target: key.to_owned(),
                http_status: 404,
                code: Some("NoSuchKey".into()),
                message: "the object was gone when it was read back; it is looked at again".into(),
            }),
        }
    }

    /// Uploads `path` to `key`. With `If-None-Match: *` the server refuses
    /// to overwrite (412) where it supports conditional writes. A failure
    /// that comes from the file (it changed, vanished or cannot be read)
    /// is a [`PutError::Local`], whatever the SDK wrapped it in.
    pub async fn put(
        &self,
        key: &ObjectKey,
        path: &Path,
        digest: &FileDigest,
    ) -> Result<Put, PutError> {
        let result = if digest.parts.is_empty() {
            self.put_single(key, path, digest).await
        } else {
            self.put_multipart(key, path, digest).await
        };
        match result {
            Err(PutError::S3(e)) if e.is_bad_digest() => Err(FileError::Changed {
                path: path.to_owned(),
                reason: "its bytes no longer match the md5 taken before sending".into(),
            }
            .into()),
            // No answer: the body may have failed to read rather than the
            // network; the file says which.
            Err(PutError::S3(e)) if e.http_status == 0 => {
                Err(match self.local_cause(path, digest).await {
                    Some(local) => local.into(),
                    None => e.into(),
                })
            }
            other => other,
        }
    }

    async fn put_single(
        &self,
        key: &ObjectKey,
        path: &Path,
        digest: &FileDigest,
    ) -> Result<Put, PutError> {
        let progress = Progress::new();
        let body = self.body(path, 0, digest.size, &progress);
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&key.key)
            .content_type(&key.content_type)
            .set_metadata(Some(key.metadata.clone()).filter(|m| !m.is_empty()))
            .content_length(digest.size as i64)
            .content_md5(base64::encode(digest.md5))
            .if_none_match("*")
            .set_storage_class(self.storage_class.clone())
            .set_server_side_encryption(self.encryption.clone())
            .set_ssekms_key_id(self.kms_key_id.clone())
            .set_acl(self.acl.clone())
            .body(body)
            .customize()
            .config_override(stall::sdk_watch_off())
            .send();
        let out = stall::watch(&progress, stall::GRACE, request)
            .await
            .map_err(|stalled| stalled.error("put object", &key.key))?
            .map_err(|e| S3Error::from_sdk("put object", &key.key, e))?;
        self.stored_as_read(path, out.e_tag.as_deref(), &digest.md5)?;
        Ok(Put { etag: out.e_tag })
    }

    /// Whether the server stored the bytes we read, judged by the ETag it
    /// gave where that is an md5 (not with SSE-KMS): a server that does not
    /// check Content-MD5 stores whatever arrives, and those bytes must
    /// never be recorded as this file's.
    fn stored_as_read(
        &self,
        path: &Path,
        etag: Option<&str>,
        md5: &[u8; 16],
    ) -> Result<(), FileError> {
        use crate::config::ServerSideEncryption as Sse;
        let kms = self
            .encryption
            .as_ref()
            .is_some_and(|e| e.as_str() != Sse::Aes256.as_str());
        let Some(etag) = etag.map(|e| e.trim_matches('"')) else {
            return Ok(());
        };
        let is_md5 = etag.len() == 32 && etag.bytes().all(|b| b.is_ascii_hexdigit());
        let ours = crate::digest::hex(md5);
        if kms || !is_md5 || etag.eq_ignore_ascii_case(&ours) {
            return Ok(());
        }
        Err(FileError::Changed {
            path: path.to_owned(),
            reason: format!(
                "the server stored other bytes than were read (its ETag {etag}, our md5 {ours}): they were altered on the way, and are not recorded"
            ),
        })
    }

    async fn put_multipart(
        &self,
        key: &ObjectKey,
        path: &Path,
        digest: &FileDigest,
    ) -> Result<Put, PutError> {
        let check = match digest.parts.first() {
            Some(PartSum::Crc32c(_)) => PartCheck::Crc32c,
            _ => PartCheck::ContentMd5,
        };
        // Dropped half-way (this future fails or is cancelled), the upload
        // is aborted: nothing becomes visible.
        let upload = self
            .create_multipart(&key.key, &key.content_type, key.metadata.clone(), check)
            .await?;
        // Parts go up a few at a time: one large video then uses several
        // connections, while memory stays flat (bodies stream from disk).
        let parts = digest
            .parts
            .iter()
            .enumerate()
            .map(|(n, sum)| self.put_part(&upload, path, digest, n, *sum))
            .collect();
        let completed = send_parts(parts, self.part_concurrency).await?;
        let etag = upload.complete(completed).await?;
        Ok(Put { etag })
    }
}

/// Runs `parts`, `at_once` at a time. After the first failure no part is
/// started, the parts in flight are waited for, and the failure that says
/// most is returned ([`telling`]): parts fail together, and the first
/// answer to arrive is not always the cause. A part refused for its bytes
/// (the file changed) must not be reported as the upload having vanished
/// because another part's answer came first.
async fn send_parts<F>(parts: Vec<F>, at_once: usize) -> Result<Vec<CompletedPart>, PutError>
where
    F: std::future::Future<Output = Result<CompletedPart, PutError>>,
{
    use futures_util::StreamExt;
    use futures_util::stream::FuturesUnordered;
    let mut waiting = parts.into_iter();
    let mut running = FuturesUnordered::new();
    running.extend(waiting.by_ref().take(at_once.max(1)));
    let mut completed = Vec::new();
    let mut failed: Option<PutError> = None;
    while let Some(result) = running.next().await {
        match result {
            Ok(part) => completed.push(part),
            Err(e) => {
                failed = Some(match failed.take() {
                    Some(before) if telling(&before) <= telling(&e) => before,
                    _ => e,
                });
            }
        }
        if failed.is_none() {
            running.extend(waiting.next());
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(completed),
    }
}

/// How much a failed part says about why, most first: the file itself,
/// bytes refused for not matching their sum (the file changed), any other
/// answer, and last the upload gone (404 `NoSuchUpload`), which another
/// part's failure may have caused.
fn telling(e: &PutError) -> u8 {
    match e {
        PutError::Local(_) => 0,
        PutError::S3(s3) if s3.is_bad_digest() => 1,
        PutError::S3(s3) if s3.code.as_deref() == Some("NoSuchUpload") => 3,
        PutError::S3(_) => 2,
    }
}

impl Target {
    async fn put_part(
        &self,
        upload: &Multipart,
        path: &Path,
        digest: &FileDigest,
        n: usize,
        sum: PartSum,
    ) -> Result<CompletedPart, PutError> {
        let offset = n as u64 * digest.part_size;
        let length = digest.part_size.min(digest.size - offset);
        let progress = Progress::new();
        let body = self.body(path, offset, length, &progress);
        let part = upload
            .send_part(n as i32 + 1, length, sum, body, Some(&progress))
            .await?;
        // A part stored with other bytes fails the upload before it is
        // completed: it is aborted and nothing becomes visible. A part
        // sent with its CRC32C was checked by the server itself (the probe
        // showed it refuses a wrong one); its ETag is an md5 never taken.
        if let PartSum::Md5(md5) = sum {
            self.stored_as_read(path, part.e_tag(), &md5)?;
        }
        Ok(part)
    }

    /// A body streamed from `path[offset..offset+length]`, re-readable so
    /// the SDK can retry it, paced when a bandwidth cap is set. A file that
    /// cannot be opened or read fails the request without an answer, and
    /// [`Self::local_cause`] then says why.
    fn body(&self, path: &Path, offset: u64, length: u64, progress: &Progress) -> ByteStream {
        let reading = Reading {
            chunk: match self.limiter {
                Some(_) => super::throttle::CHUNK,
                None => CHUNK,
            },
            stall: self.read_stall,
            limiter: self.limiter.clone(),
            sent: self.sent.clone(),
        };
        super::file_body::body(path.to_owned(), offset, length, reading, progress.clone())
    }

    /// What the file says after a send failed without an answer: gone,
    /// unreadable, stalled, or another size than was hashed. `None` when
    /// it looks as it did, and the failure was the network's. Asked
    /// [`off_runtime`]: a hung mount must not hold up a runtime thread.
    async fn local_cause(&self, path: &Path, digest: &FileDigest) -> Option<FileError> {
        let owned = path.to_owned();
        match off_runtime(path, self.read_stall, move || std::fs::metadata(owned)).await {
            Ok(meta) => file_cause(path, digest, meta),
            Err(e) => Some(e),
        }
    }
}

fn file_cause(
    path: &Path,
    digest: &FileDigest,
    meta: std::io::Result<std::fs::Metadata>,
) -> Option<FileError> {
    match meta {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Some(FileError::Missing(path.to_owned()))
        }
        Err(e) => Some(FileError::Unreadable {
            path: path.to_owned(),
            reason: e.to_string(),
        }),
        Ok(m) if m.len() != digest.size => Some(FileError::Changed {
            path: path.to_owned(),
            reason: format!("{} bytes when hashed, {} now", digest.size, m.len()),
        }),
        Ok(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    fn refused(status: u16, code: &str) -> PutError {
        PutError::S3(S3Error {
            op: "upload part",
            target: "v.mp4".into(),
            http_status: status,
            code: Some(code.into()),
            message: "m".into(),
        })
    }

    fn code(r: Result<Vec<CompletedPart>, PutError>) -> Option<String> {
        match r {
            Err(PutError::S3(e)) => e.code,
            other => panic!("{other:?}"),
        }
    }

    /// A part answers in `after_ms` with `outcome`; `started` counts the
    /// parts that began.
    async fn part(
        started: &AtomicUsize,
        after_ms: u64,
        outcome: Option<(u16, &str)>,
    ) -> Result<CompletedPart, PutError> {
        started.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(after_ms)).await;
        match outcome {
            Some((status, c)) => Err(refused(status, c)),
            None => Ok(CompletedPart::builder().part_number(1).build()),
        }
    }

    /// The upload gone, answered first, does not hide a part refused for
    /// its bytes still in flight; and no part starts after a failure.
    #[tokio::test(start_paused = true)]
    async fn the_failure_that_names_the_cause_wins() {
        let started = AtomicUsize::new(0);
        let parts = vec![
            part(&started, 50, Some((400, "BadDigest"))),
            part(&started, 10, Some((404, "NoSuchUpload"))),
            part(&started, 30, None),
            part(&started, 1, None),
        ];
        let r = send_parts(parts, 3).await;
        assert_eq!(code(r).as_deref(), Some("BadDigest"));
        assert_eq!(started.load(Ordering::SeqCst), 3);
        // Among equals the first answer stands.
        let parts = vec![
            part(&started, 20, Some((500, "InternalError"))),
            part(&started, 10, Some((503, "SlowDown"))),
        ];
        assert_eq!(
            code(send_parts(parts, 2).await).as_deref(),
            Some("SlowDown")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn all_parts_go_up_when_none_fails() {
        let started = AtomicUsize::new(0);
        let parts = (0..7).map(|n| part(&started, 10 * (n % 3), None)).collect();
        assert_eq!(send_parts(parts, 2).await.map(|p| p.len()).ok(), Some(7));
        assert_eq!(started.load(Ordering::SeqCst), 7);
    }

    #[test]
    fn what_a_failure_says() {
        let changed = PutError::Local(FileError::Missing("/g/v.mp4".into()));
        let order = [
            telling(&changed),
            telling(&refused(400, "BadDigest")),
            telling(&refused(403, "AccessDenied")),
            telling(&refused(404, "NoSuchUpload")),
        ];
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    }
}
