//! Objects whose bytes are made as they are sent (database snapshots):
//! a multipart upload fed one in-memory part at a time, so memory holds
//! one part whatever the object's size; plus the listing, reading and
//! deleting those objects need.

use std::collections::HashMap;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedPart, Delete, ObjectIdentifier};
use aws_smithy_types::base64;

use super::Target;
use super::error::S3Error;
use super::multipart::Multipart;
use crate::digest::{PartCheck, PartSum, hex};
use crate::md5::Md5;

/// S3's smallest part (all but the last).
pub const MIN_PART: usize = 5 * 1024 * 1024;

/// An object under a prefix, as listed.
#[derive(Debug, Clone)]
pub struct ListedObject {
    pub key: String,
    pub size: u64,
}

/// A multipart upload being fed.
pub struct StreamUpload {
    upload: Multipart,
    key: String,
    parts: Vec<CompletedPart>,
    /// The md5 of each part, for the multipart ETag the server should give.
    part_md5s: Vec<[u8; 16]>,
    /// The md5 of all the bytes: some servers give it as the ETag of a
    /// multipart object.
    whole: Md5,
    size: u64,
}

/// A finished streamed object: its size and the ETag it must have.
#[derive(Debug, Clone)]
pub struct Streamed {
    pub key: String,
    pub size: u64,
    /// S3's multipart ETag (md5 of the parts' md5s, `-N`).
    pub etag: String,
    /// The md5 of the whole object.
    pub md5: String,
}

impl Streamed {
    /// Whether an ETag the server gives is one of this object's.
    pub fn matches_etag(&self, etag: &str) -> bool {
        let etag = etag.trim_matches('"');
        etag == self.etag || etag == self.md5
    }
}

impl Target {
    /// Starts a multipart upload at `key`; nothing is visible until
    /// [`StreamUpload::finish`], and a dropped upload is aborted.
    pub async fn start_stream(
        &self,
        key: &str,
        content_type: &str,
        metadata: HashMap<String, String>,
    ) -> Result<StreamUpload, S3Error> {
        // Parts are in memory: their md5 is the check every server takes.
        let upload = self
            .create_multipart(key, content_type, metadata, PartCheck::ContentMd5)
            .await?;
        Ok(StreamUpload {
            upload,
            key: key.to_owned(),
            parts: Vec::new(),
            part_md5s: Vec::new(),
            whole: Md5::new(),
            size: 0,
        })
    }

    /// Every object under `prefix`, in key order (one pager: `read.rs`).
    pub async fn list_under(&self, prefix: &str) -> Result<Vec<ListedObject>, S3Error> {
        let mut out = Vec::new();
        self.list_prefix(prefix, |obj| {
            if !obj.key.is_empty() {
                out.push(ListedObject {
                    key: obj.key,
                    size: obj.size,
                });
            }
        })
        .await?;
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// The object's body as a stream, read as it is consumed.
    pub async fn get_stream(&self, key: &str) -> Result<ByteStream, S3Error> {
        self.client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map(|out| out.body)
            .map_err(|e| S3Error::from_sdk("get object", key, e))
    }

    /// The user metadata of the object at `key`, `None` when absent.
    pub async fn metadata_of(&self, key: &str) -> Result<Option<HashMap<String, String>>, S3Error> {
        Ok(self
            .head_object(&self.bucket, key)
            .await?
            .map(|out| out.metadata.unwrap_or_default()))
    }

    /// Deletes `keys` (at most 1000 a request, as S3 allows).
    pub async fn delete_keys(&self, keys: &[String]) -> Result<(), S3Error> {
        for chunk in keys.chunks(1000) {
            let ids: Vec<ObjectIdentifier> = chunk
                .iter()
                .filter_map(|k| ObjectIdentifier::builder().key(k).build().ok())
                .collect();
            let delete = Delete::builder()
                .set_objects(Some(ids))
                .quiet(true)
                .build()
                .map_err(|e| S3Error {
                    op: "delete objects",
                    target: chunk[0].clone(),
                    http_status: 0,
                    code: None,
                    message: e.to_string(),
                })?;
            let out = self
                .client
                .delete_objects()
                .bucket(&self.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| S3Error::from_sdk("delete objects", &chunk[0], e))?;
            if let Some(err) = out.errors.unwrap_or_default().into_iter().next() {
                return Err(S3Error {
                    op: "delete object",
                    target: err.key.unwrap_or_default(),
                    http_status: 0,
                    code: err.code,
                    message: err.message.unwrap_or_default(),
                });
            }
        }
        Ok(())
    }
}

impl StreamUpload {
    /// Sends one part, checked by the server against its Content-MD5.
    pub async fn part(&mut self, bytes: Vec<u8>) -> Result<(), S3Error> {
        let md5 = Md5::digest(&bytes);
        self.whole.update(&bytes);
        let len = bytes.len() as u64;
        let number = self.parts.len() as i32 + 1;
        let part = self
            .upload
            .send_part(
                number,
                len,
                PartSum::Md5(md5),
                ByteStream::from(bytes),
                None,
            )
            .await?;
        self.parts.push(part);
        self.part_md5s.push(md5);
        self.size += len;
        Ok(())
    }

    /// Completes the upload; refused (412) where an object is already at
    /// the key and the server honours `If-None-Match`.
    pub async fn finish(mut self) -> Result<Streamed, S3Error> {
        if self.parts.is_empty() {
            self.part(Vec::new()).await?;
        }
        self.upload.complete(self.parts).await?;
        let mut all = Md5::new();
        for md5 in &self.part_md5s {
            all.update(md5);
        }
        Ok(Streamed {
            etag: format!("{}-{}", hex(&all.finalize()), self.part_md5s.len()),
            md5: hex(&self.whole.finalize()),
            key: self.key,
            size: self.size,
        })
    }
}

impl Target {
    /// A small object from memory, never over another one.
    pub async fn put_bytes(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<(), S3Error> {
        let md5 = Md5::digest(&bytes);
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .content_md5(base64::encode(md5))
            .if_none_match("*")
            .set_storage_class(self.storage_class.clone())
            .set_server_side_encryption(self.encryption.clone())
            .set_ssekms_key_id(self.kms_key_id.clone())
            .set_acl(self.acl.clone())
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| S3Error::from_sdk("put object", key, e))
    }

    /// A small object read whole (a manifest).
    pub async fn get_bytes(&self, key: &str) -> Result<Vec<u8>, S3Error> {
        let body = self.get_stream(key).await?;
        body.collect()
            .await
            .map(|b| b.into_bytes().to_vec())
            .map_err(|e| S3Error {
                op: "get object",
                target: key.to_owned(),
                http_status: 0,
                code: None,
                message: e.to_string(),
            })
    }
}
