//! What the server does, asked once at start with a throwaway object under
//! the reserved folder `<prefix>s3upload-probe/`: whether it refuses a
//! write over an existing object when told `If-None-Match: *`. Where it
//! does (AWS, moto, SeaweedFS), the HEAD before each upload is skipped;
//! where it does not (rclone, Garage) or the probe cannot tell, the HEAD
//! stays, so an unclear answer never lets an object be overwritten.

use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_types::base64;
use md5::Digest;

use super::Target;
use super::error::S3Error;
use super::keys::PROBE_DIR;
use crate::config::IfNoneMatch;

/// The probe object's bytes: small, and saying what it is to whoever
/// lists the bucket.
const PROBE_BODY: &[u8] =
    b"piwigo-s3upload checks with this object whether the server honours If-None-Match; it is safe to delete\n";

/// A probe that has not answered by then counts as "cannot tell": start
/// is not held up by a server that is down.
const PROBE_LIMIT: Duration = Duration::from_secs(10);

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
    pub async fn settle_if_none_match(&mut self, setting: IfNoneMatch) -> Settled {
        let settled = match setting {
            IfNoneMatch::Honoured => Settled {
                honoured: true,
                why: "s3.honours_if_none_match = true".into(),
            },
            IfNoneMatch::Ignored => Settled {
                honoured: false,
                why: "s3.honours_if_none_match = false".into(),
            },
            IfNoneMatch::Auto => {
                match tokio::time::timeout(PROBE_LIMIT, self.probe_if_none_match()).await {
                    Ok(Ok(true)) => Settled {
                        honoured: true,
                        why: "the probe's second write with If-None-Match: * was refused (412)"
                            .into(),
                    },
                    Ok(Ok(false)) => Settled {
                        honoured: false,
                        why: "the server accepted a write over the probe object despite If-None-Match: *".into(),
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
                }
            }
        };
        self.honours_if_none_match = settled.honoured;
        settled
    }

    /// The probe's key for this bucket prefix: one fixed key, reused by
    /// every start, so a probe object that could not be deleted (the
    /// minimal policy has no `s3:DeleteObject`) never piles up.
    fn probe_key(&self, name: &str) -> String {
        format!("{}{PROBE_DIR}/{name}", self.prefix)
    }

    /// Writes the probe object twice with `If-None-Match: *`: a server
    /// that honours it refuses the second write with 412. The first write
    /// may meet an object an earlier probe left, and be refused too.
    pub async fn probe_if_none_match(&self) -> Result<bool, S3Error> {
        let key = self.probe_key("if-none-match");
        if let Err(e) = self.put_probe(&key).await
            && !e.is_precondition_failed()
        {
            return Err(e);
        }
        let honoured = match self.put_probe(&key).await {
            Ok(()) => false,
            Err(e) if e.is_precondition_failed() => true,
            Err(e) => return Err(e),
        };
        self.remove_probe(&key).await;
        Ok(honoured)
    }

    /// One write of the probe object, with the upload options photos get
    /// (a bucket policy may require encryption or a storage class).
    async fn put_probe(&self, key: &str) -> Result<(), S3Error> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("text/plain")
            .content_md5(base64::encode(md5::Md5::digest(PROBE_BODY)))
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
    async fn remove_probe(&self, key: &str) {
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
