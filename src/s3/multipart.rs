//! One multipart upload, whoever feeds it (a photo's parts read from disk,
//! a snapshot's made in memory): created with the target's storage class,
//! encryption and ACL, each part sent with the checksum the server checks,
//! completed only where no object is at the key (where the server honours
//! `If-None-Match`), and aborted when dropped unfinished, so no orphaned
//! parts keep costing storage.

use std::collections::HashMap;

use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use aws_smithy_types::base64;

use super::Target;
use super::error::S3Error;
use super::stall::{self, Progress};
use crate::digest::{PartCheck, PartSum};

/// An open multipart upload. Dropped before [`Multipart::complete`] or
/// [`Multipart::abort`], it is aborted in the background.
pub(super) struct Multipart {
    target: Target,
    key: String,
    upload_id: String,
    open: bool,
}

impl Target {
    /// Starts a multipart upload at `key` whose parts will carry `check`.
    pub(super) async fn create_multipart(
        &self,
        key: &str,
        content_type: &str,
        metadata: HashMap<String, String>,
        check: PartCheck,
    ) -> Result<Multipart, S3Error> {
        // Parts sent with a CRC32C must say so when the upload is created
        // (AWS refuses them otherwise); Content-MD5 needs no declaration.
        let algorithm = match check {
            PartCheck::ContentMd5 => None,
            PartCheck::Crc32c => Some(ChecksumAlgorithm::Crc32C),
        };
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .set_metadata(Some(metadata).filter(|m| !m.is_empty()))
            .set_checksum_algorithm(algorithm)
            .set_storage_class(self.storage_class.clone())
            .set_server_side_encryption(self.encryption.clone())
            .set_ssekms_key_id(self.kms_key_id.clone())
            .set_acl(self.acl.clone())
            .send()
            .await;
        let upload_id = match created {
            Ok(out) => out.upload_id,
            // Servers built on gofakes3 (`rclone serve s3`) answer 200 with
            // a root element the SDK does not accept; the id is still there.
            Err(SdkError::ServiceError(se)) if se.raw().status().is_success() => {
                se.raw().body().bytes().and_then(upload_id_from_xml)
            }
            Err(e) => return Err(S3Error::from_sdk("create multipart upload", key, e)),
        }
        .ok_or_else(|| S3Error {
            op: "create multipart upload",
            target: key.to_owned(),
            http_status: 200,
            code: None,
            message: "the answer holds no UploadId".into(),
        })?;
        Ok(Multipart {
            target: self.clone(),
            key: key.to_owned(),
            upload_id,
            open: true,
        })
    }
}

impl Multipart {
    /// Sends part `number` (from 1), `length` bytes of `body`, with its
    /// checksum as a header, worked out before the body is sent: no
    /// aws-chunked encoding, which several servers refuse. A body read
    /// from a file comes with its `progress`, and is watched by
    /// [`stall::watch`] instead of the SDK.
    pub(super) async fn send_part(
        &self,
        number: i32,
        length: u64,
        sum: PartSum,
        body: ByteStream,
        progress: Option<&Progress>,
    ) -> Result<CompletedPart, S3Error> {
        let request = self
            .target
            .client
            .upload_part()
            .bucket(&self.target.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .part_number(number)
            .content_length(length as i64);
        let (request, crc) = match sum {
            PartSum::Md5(md5) => (request.content_md5(base64::encode(md5)), None),
            PartSum::Crc32c(crc) => {
                let crc = base64::encode(crc);
                (request.checksum_crc32_c(&crc), Some(crc))
            }
        };
        let request = request.body(body);
        let sent = match progress {
            Some(progress) => {
                let sent = request
                    .customize()
                    .config_override(stall::sdk_watch_off())
                    .send();
                stall::watch(progress, stall::GRACE, sent)
                    .await
                    .map_err(|stalled| stalled.error("upload part", &self.key))?
            }
            None => request.send().await,
        };
        let out = sent.map_err(|e| S3Error::from_sdk("upload part", &self.key, e))?;
        Ok(CompletedPart::builder()
            .part_number(number)
            .set_e_tag(out.e_tag)
            .set_checksum_crc32_c(crc)
            .build())
    }

    /// Completes the upload from `parts` (in any order) and returns the
    /// object's ETag; refused (412) where an object is already at the key
    /// and the server honours `If-None-Match`.
    pub(super) async fn complete(
        mut self,
        mut parts: Vec<CompletedPart>,
    ) -> Result<Option<String>, S3Error> {
        parts.sort_by_key(|p| p.part_number);
        let out = self
            .target
            .client
            .complete_multipart_upload()
            .bucket(&self.target.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .if_none_match("*")
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| S3Error::from_sdk("complete multipart upload", &self.key, e))?;
        self.open = false;
        Ok(out.e_tag)
    }

    /// Aborts the upload now, and waits for the answer.
    pub(super) async fn abort(mut self) {
        self.open = false;
        abort(&self.target, &self.key, &self.upload_id).await;
    }
}

impl Drop for Multipart {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        let target = self.target.clone();
        let key = std::mem::take(&mut self.key);
        let upload_id = std::mem::take(&mut self.upload_id);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { abort(&target, &key, &upload_id).await });
        }
    }
}

async fn abort(target: &Target, key: &str, upload_id: &str) {
    let result = target
        .client
        .abort_multipart_upload()
        .bucket(&target.bucket)
        .key(key)
        .upload_id(upload_id)
        .send()
        .await;
    match result {
        Ok(_) => tracing::debug!(s3.key = %key, "aborted unfinished multipart upload"),
        Err(e) => {
            let e = S3Error::from_sdk("abort multipart upload", key, e);
            tracing::warn!(s3.key = %key, error = %e, "could not abort multipart upload; a bucket lifecycle rule for incomplete uploads cleans it up");
        }
    }
}

fn upload_id_from_xml(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<UploadId>")? + "<UploadId>".len();
    let len = text[start..].find("</UploadId>")?;
    Some(text[start..start + len].trim().to_owned()).filter(|id| !id.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_id_is_found_in_a_nonstandard_answer() {
        let xml = b"<?xml version=\"1.0\"?>\n<InitiateMultipartUpload><Bucket>b</Bucket><UploadId>abc-123</UploadId></InitiateMultipartUpload>";
        assert_eq!(upload_id_from_xml(xml).as_deref(), Some("abc-123"));
        assert_eq!(upload_id_from_xml(b"<UploadId></UploadId>"), None);
        assert_eq!(upload_id_from_xml(b"garbage"), None);
    }
}
