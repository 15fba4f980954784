//! What the server does, asked with a throwaway object under the reserved
//! folder `<prefix>s3upload-probe/`:
//! - at start, whether it refuses a write over an existing object when
//!   told `If-None-Match: *`. Where it does (AWS, moto, SeaweedFS), the
//!   HEAD before each upload is skipped; where it does not (rclone,
//!   Garage) or the probe cannot tell, the HEAD stays, so an unclear
//!   answer never lets an object be overwritten;
//! - at start, when `s3.checksum` is `auto`, whether it refuses a part of
//!   a multipart upload whose bytes do not match its `x-amz-checksum-crc32c`
//!   header. Where it does, parts are checked by CRC32C instead of a second
//!   md5 of their bytes; where it does not, or the probe cannot tell,
//!   Content-MD5 stays, so a wrong byte is never stored unseen;
//! - in `check`, whether it refuses a body that does not match its
//!   Content-MD5 (the trailing-checksum probe is `trailer`'s).

use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_types::base64;
use tokio::time::error::Elapsed;

use super::Target;
use super::error::S3Error;
use super::keys::PROBE_DIR;
use crate::config::{Checksum, IfNoneMatch};
use crate::digest::{PartCheck, PartSum};

/// The probe object's bytes: small, and saying what it is to whoever
/// lists the bucket.
pub(super) const PROBE_BODY: &[u8] =
    b"piwigo-s3upload checks with this object whether the server honours If-None-Match; it is safe to delete\n";

/// A probe that has not answered by then counts as "cannot tell": start
/// is not held up by a server that is down.
const PROBE_LIMIT: Duration = Duration::from_secs(10);

/// Whether `key` is a probe object under `prefix`: left there when the
/// keys cannot delete, it is the daemon's own, never an orphan.
pub fn is_probe_key(prefix: &str, key: &str) -> bool {
    key.strip_prefix(prefix)
        .is_some_and(|rest| rest.starts_with(&format!("{PROBE_DIR}/")))
}

/// How the HEAD question is settled, and why: for the start-up log and
/// `check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    pub honoured: bool,
    pub why: String,
}

impl Target {
    /// Decides [`Target::honours_if_none_match`] from the setting, probing
    /// the server when it is `auto`.
    pub async fn settle_if_none_match(&self, setting: IfNoneMatch) -> Settled {
        let settled = self.if_none_match_answer(setting).await;
        self.set_honours_if_none_match(settled.honoured);
        settled
    }

    /// Both settings at start, their probes run side by side: on a long
    /// link each costs a few round trips. Uploads through any clone of
    /// this target take each answer as soon as its own probe gives it.
    pub async fn settle(
        &self,
        if_none_match: IfNoneMatch,
        checksum: Checksum,
    ) -> (Settled, SettledCheck) {
        tokio::join!(
            self.settle_if_none_match(if_none_match),
            self.settle_checksum(checksum)
        )
    }

    async fn if_none_match_answer(&self, setting: IfNoneMatch) -> Settled {
        match setting {
            IfNoneMatch::Honoured => Settled {
                honoured: true,
                why: "s3.honours_if_none_match = true".into(),
            },
            IfNoneMatch::Ignored => Settled {
                honoured: false,
                why: "s3.honours_if_none_match = false".into(),
            },
            IfNoneMatch::Auto => match self.probe_if_none_match().await {
                Ok(Ok(true)) => Settled {
                    honoured: true,
                    why: "the probe's second write with If-None-Match: * was refused (412)".into(),
                },
                Ok(Ok(false)) => Settled {
                    honoured: false,
                    why:
                        "the server accepted a write over the probe object despite If-None-Match: *"
                            .into(),
                },
                Ok(Err(e)) => Settled {
                    honoured: false,
                    why: format!("the probe failed ({e}); the HEAD stays, as is safe"),
                },
                Err(_) => Settled {
                    honoured: false,
                    why: format!(
                        "the probe had no answer within {}; the HEAD stays, as is safe",
                        humantime::format_duration(PROBE_LIMIT)
                    ),
                },
            },
        }
    }

    /// The probe's key for this bucket prefix: one fixed key, reused by
    /// every start, so a probe object that could not be deleted (the
    /// minimal policy has no `s3:DeleteObject`) never piles up.
    pub(super) fn probe_key(&self, name: &str) -> String {
        format!("{}{PROBE_DIR}/{name}", self.prefix)
    }

    /// Writes the probe object twice with `If-None-Match: *`: a server
    /// that honours it refuses the second write with 412. The first write
    /// may meet an object an earlier probe left, and be refused too.
    ///
    /// The object is removed whatever the answer: a write that failed, or
    /// ran out of time, may still have landed.
    async fn probe_if_none_match(&self) -> Result<Result<bool, S3Error>, Elapsed> {
        let key = self.probe_key("if-none-match");
        let answer = tokio::time::timeout(PROBE_LIMIT, self.write_probe_twice(&key)).await;
        // Bounded too: a server that stopped answering must not hold the
        // daemon's stop, which waits for the probes.
        let _ = tokio::time::timeout(PROBE_LIMIT, self.remove_probe(&key)).await;
        answer
    }

    async fn write_probe_twice(&self, key: &str) -> Result<bool, S3Error> {
        if let Err(e) = self.put_probe(key).await
            && !e.is_precondition_failed()
        {
            return Err(e);
        }
        match self.put_probe(key).await {
            Ok(()) => Ok(false),
            Err(e) if e.is_precondition_failed() => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// One write of the probe object, with the upload options photos get
    /// (a bucket policy may require encryption or a storage class).
    async fn put_probe(&self, key: &str) -> Result<(), S3Error> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("text/plain")
            .content_md5(base64::encode(crate::md5::Md5::digest(PROBE_BODY)))
            .if_none_match("*")
            .set_storage_class(self.storage_class.clone())
            .set_server_side_encryption(self.encryption.clone())
            .set_ssekms_key_id(self.kms_key_id.clone())
            .body(ByteStream::from_static(PROBE_BODY))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| S3Error::from_sdk("put object", key, e))
    }

    /// Deletes the probe object, and nothing else: the key must be this
    /// prefix's probe key. A refusal is fine (the next start reuses the
    /// key); it is logged, never a failure.
    pub(super) async fn remove_probe(&self, key: &str) {
        if !key.starts_with(&self.probe_key("")) {
            tracing::error!(s3.key = %key, "refusing to delete an object outside the probe folder");
            return;
        }
        let deleted = self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        if let Err(e) = deleted {
            let e = S3Error::from_sdk("delete object", key, e);
            tracing::debug!(error = %e, "the probe object stays (the next start reuses its key)");
        }
    }
}

impl Target {
    /// Whether the server refuses a body that does not match its
    /// Content-MD5, the integrity check every upload relies on today.
    pub async fn probe_content_md5(&self) -> Result<bool, S3Error> {
        let key = self.probe_key("content-md5");
        let sent = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type("text/plain")
            .content_md5(base64::encode(crate::md5::Md5::digest(b"other bytes")))
            .set_storage_class(self.storage_class.clone())
            .set_server_side_encryption(self.encryption.clone())
            .set_ssekms_key_id(self.kms_key_id.clone())
            .body(ByteStream::from_static(PROBE_BODY))
            .send()
            .await
            .map_err(|e| S3Error::from_sdk("put object", &key, e));
        match sent {
            Ok(_) => {
                self.remove_probe(&key).await;
                Ok(false)
            }
            Err(e) if e.is_bad_digest() => Ok(true),
            Err(e) => Err(e),
        }
    }
}

/// What a server does with a checksum sent beside a body: a part's CRC32C
/// header, or a trailing checksum of one algorithm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Taken, and a body that does not match it is refused.
    Checked,
    /// Taken, but a body that does not match it is stored all the same.
    Unchecked,
    /// Not taken at all (R2 answers 501, some servers 400): the answer.
    Refused(String),
}

impl Verdict {
    /// A refusal of the checksum itself, told apart from a server that is
    /// down or failing (which tells nothing).
    pub(super) fn refused(e: S3Error) -> Result<Self, S3Error> {
        if e.http_status == 0 || (e.http_status >= 500 && e.http_status != 501) {
            return Err(e);
        }
        Ok(Self::Refused(format!(
            "HTTP {}{}: {}",
            e.http_status,
            e.code.map(|c| format!(" {c}")).unwrap_or_default(),
            e.message
        )))
    }
}

/// How `s3.checksum` is settled, and why: for the start-up log and
/// `check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettledCheck {
    pub check: PartCheck,
    pub why: String,
}

impl Target {
    /// Decides [`Target::part_check`] from the setting. `auto` and
    /// `crc32c` both probe the server: CRC32C is used unless the server is
    /// shown to take a wrong one (or not to take one at all), since a part
    /// it does not check could be stored with altered bytes. Only where
    /// the probe cannot tell do they differ: `auto` stays with
    /// Content-MD5, `crc32c` trusts the setting.
    pub async fn settle_checksum(&self, setting: Checksum) -> SettledCheck {
        let settled = self.checksum_answer(setting).await;
        self.set_part_check(settled.check);
        settled
    }

    async fn checksum_answer(&self, setting: Checksum) -> SettledCheck {
        if setting == Checksum::ContentMd5 {
            SettledCheck {
                check: PartCheck::ContentMd5,
                why: "s3.checksum = \"content-md5\"".into(),
            }
        } else {
            let asked = match setting {
                Checksum::Crc32c => "s3.checksum = \"crc32c\", but ",
                _ => "",
            };
            let content_md5 = |why: String| SettledCheck {
                check: PartCheck::ContentMd5,
                why: format!("{asked}{why}; Content-MD5 is used"),
            };
            let untold = |why: String| match setting {
                Checksum::Crc32c => SettledCheck {
                    check: PartCheck::Crc32c,
                    why: format!("s3.checksum = \"crc32c\" ({why})"),
                },
                _ => SettledCheck {
                    check: PartCheck::ContentMd5,
                    why: format!("{why}; Content-MD5 stays, as is safe"),
                },
            };
            match tokio::time::timeout(PROBE_LIMIT, self.probe_part_crc32c()).await {
                Ok(Ok(Verdict::Checked)) => SettledCheck {
                    check: PartCheck::Crc32c,
                    why: "the probe's part with a wrong CRC32C was refused".into(),
                },
                Ok(Ok(Verdict::Unchecked)) => content_md5(
                    "the server stored a part whose CRC32C did not match its bytes".into(),
                ),
                Ok(Ok(Verdict::Refused(why))) => {
                    content_md5(format!("the server does not take a part's CRC32C ({why})"))
                }
                Ok(Err(e)) => untold(format!("the probe failed: {e}")),
                Err(_) => untold(format!(
                    "the probe had no answer within {}",
                    humantime::format_duration(PROBE_LIMIT)
                )),
            }
        }
    }

    /// Starts a multipart upload declared with CRC32C on the probe key,
    /// sends part 1 with its right CRC32C (it must be taken) and part 2
    /// with a wrong one (it must be refused), then aborts the upload:
    /// nothing of it ever becomes an object.
    pub async fn probe_part_crc32c(&self) -> Result<Verdict, S3Error> {
        let key = self.probe_key("part-checksum");
        let upload = match self
            .create_multipart(&key, "text/plain", Default::default(), PartCheck::Crc32c)
            .await
        {
            Ok(upload) => upload,
            Err(e) => return Verdict::refused(e),
        };
        // The CRC32C of the probe text, sent with either body.
        let mut crc = aws_smithy_checksums::ChecksumAlgorithm::Crc32c.into_impl();
        crc.update(PROBE_BODY);
        let crc = <[u8; 4]>::try_from(&crc.finalize()[..]).unwrap_or_default();
        let part = |number, body: &'static [u8]| {
            upload.send_part(
                number,
                body.len() as u64,
                PartSum::Crc32c(crc),
                ByteStream::from_static(body),
                None,
            )
        };
        let verdict = match part(1, PROBE_BODY).await {
            Err(e) => Verdict::refused(e),
            Ok(_) => match part(2, b"other bytes").await {
                Ok(_) => Ok(Verdict::Unchecked),
                Err(e) if (400..500).contains(&e.http_status) => Ok(Verdict::Checked),
                Err(e) => Err(e),
            },
        };
        upload.abort().await;
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_keys_are_told_from_photo_keys() {
        assert!(is_probe_key(
            "photos/",
            "photos/s3upload-probe/if-none-match"
        ));
        assert!(is_probe_key("", "s3upload-probe/checksum"));
        assert!(!is_probe_key("photos/", "s3upload-probe/if-none-match"));
        assert!(!is_probe_key("photos/", "photos/s3upload-probe.jpg"));
        assert!(!is_probe_key("photos/", "photos/2024/s3upload-probe/x"));
    }
}
