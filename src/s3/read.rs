//! Reading the bucket back: a prefix listed page by page, an object's
//! body opened (with its 404 mapped to `None`), an object downloaded only
//! to hash it (`verify --read-data`), and presigned links to objects.

use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;

use super::{S3Error, Target};
use crate::md5::Md5;

/// One object as a listing shows it.
#[derive(Debug, Clone)]
pub struct Listed {
    pub key: String,
    pub size: u64,
    pub etag: Option<String>,
}

impl Target {
    /// Calls `each` for every object under `prefix`, a page (1,000 objects)
    /// at a time so memory stays flat; returns the requests made.
    pub async fn list_prefix(
        &self,
        prefix: &str,
        mut each: impl FnMut(Listed),
    ) -> Result<u64, S3Error> {
        let mut requests = 0;
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            requests += 1;
            let page = page.map_err(|e| S3Error::from_sdk("list objects", prefix, e))?;
            for obj in page.contents.unwrap_or_default() {
                each(Listed {
                    key: obj.key.unwrap_or_default(),
                    size: obj.size.unwrap_or(0).max(0) as u64,
                    etag: obj.e_tag,
                });
            }
        }
        Ok(requests)
    }

    /// The body of the object at `bucket`/`key`, read as it is consumed;
    /// `None` when there is no object.
    pub async fn open_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<ByteStream>, S3Error> {
        match self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(out.body)),
            Err(e) => {
                let err = S3Error::from_sdk("get object", key, e);
                if err.is_missing_object() {
                    Ok(None)
                } else {
                    Err(err)
                }
            }
        }
    }

    /// A link that lets whoever holds it download `bucket`/`key` for
    /// `expiry`, signed with the daemon's keys: signed here, no request is
    /// sent. The error says what could not be signed.
    pub async fn presign_get(
        &self,
        bucket: &str,
        key: &str,
        expiry: Duration,
    ) -> Result<String, String> {
        let failed = |e: &dyn std::fmt::Display| format!("s3: presign {key}: {e}");
        let config = PresigningConfig::expires_in(expiry).map_err(|e| failed(&e))?;
        self.client
            .get_object()
            .bucket(bucket)
            .key(key)
            .presigned(config)
            .await
            .map(|signed| signed.uri().to_owned())
            .map_err(|e| failed(&e))
    }

    /// Downloads `key` and returns the md5 (hex) and length of its bytes,
    /// or `None` when there is no object.
    pub async fn read_md5(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<(String, u64)>, S3Error> {
        let Some(mut body) = self.open_object(bucket, key).await? else {
            return Ok(None);
        };

        let mut h = Md5::new();
        let mut len = 0u64;
        loop {
            match body.try_next().await {
                Ok(Some(chunk)) => {
                    len += chunk.len() as u64;
                    h.update(&chunk);
                }
                Ok(None) => return Ok(Some((crate::digest::hex(&h.finalize()), len))),
                Err(e) => {
                    return Err(S3Error {
                        op: "get object",
                        target: key.to_owned(),
                        http_status: 0,
                        code: None,
                        message: e.to_string(),
                    });
                }
            }
        }
    }
}
