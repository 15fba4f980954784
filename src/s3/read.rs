//! Reading the bucket back: a prefix listed page by page, and an object
//! downloaded only to hash it (`verify --read-data`).

use md5::{Digest, Md5};

use super::{S3Error, Target};

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

    /// Downloads `key` and returns the md5 (hex) and length of its bytes,
    /// or `None` when there is no object.
    pub async fn read_md5(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<(String, u64)>, S3Error> {
        let out = match self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                let err = S3Error::from_sdk("get object", key, e);
                return if err.is_missing_object() {
                    Ok(None)
                } else {
                    Err(err)
                };
            }
        };
        let mut body = out.body;
        let mut h = Md5::new();
        let mut len = 0u64;
        loop {
            match body.try_next().await {
                Ok(Some(chunk)) => {
                    len += chunk.len() as u64;
                    h.update(&chunk);
                }
                Ok(None) => return Ok(Some((format!("{:x}", h.finalize()), len))),
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
