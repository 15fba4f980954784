//! Object metadata: what each object says about itself (`x-amz-meta-*`),
//! so that files can be put back where they belong without any database.

use std::collections::HashMap;

use aws_sdk_s3::operation::head_object::HeadObjectOutput;

use super::{S3Error, Target};

pub const IMAGE_ID: &str = "piwigo-image-id";
pub const PATH: &str = "piwigo-path";
pub const MD5: &str = "md5";
/// `original` for the photo itself, else the format's extension.
pub const FORMAT: &str = "piwigo-format";

/// Header values must be ASCII: everything else in a path is
/// percent-encoded, and `%` itself.
const PATH_SET: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS.add(b'%');

/// What a HEAD found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectMeta {
    pub size: u64,
    pub etag: Option<String>,
    pub image_id: Option<u32>,
    pub path: Option<String>,
    pub md5: Option<String>,
    pub format: Option<String>,
}

/// The metadata an upload attaches.
pub fn for_upload(image_id: u32, path: &str, md5: &str, format: &str) -> HashMap<String, String> {
    HashMap::from([
        (IMAGE_ID.to_owned(), image_id.to_string()),
        (PATH.to_owned(), encode_path(path)),
        (MD5.to_owned(), md5.to_owned()),
        (FORMAT.to_owned(), format.to_owned()),
    ])
}

pub fn encode_path(path: &str) -> String {
    // Bytes outside ASCII are always encoded.
    percent_encoding::utf8_percent_encode(path, PATH_SET).to_string()
}

pub fn decode_path(value: &str) -> String {
    percent_encoding::percent_decode_str(value)
        .decode_utf8_lossy()
        .into_owned()
}

impl ObjectMeta {
    fn from_map(size: u64, etag: Option<String>, meta: Option<&HashMap<String, String>>) -> Self {
        let get = |k: &str| {
            meta.and_then(|m| {
                m.iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case(k))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .filter(|v| !v.is_empty())
        };
        Self {
            size,
            etag,
            image_id: get(IMAGE_ID).and_then(|v| v.parse().ok()),
            path: get(PATH).map(|p| decode_path(&p)),
            md5: get(MD5)
                .map(|m| m.to_ascii_lowercase())
                .filter(|m| m.len() == 32 && m.bytes().all(|b| b.is_ascii_hexdigit())),
            format: get(FORMAT),
        }
    }
}

impl Target {
    /// The one HEAD: what S3 says of the object at `key` in `bucket`, `None`
    /// when there is none (a 404 is an answer here, not an error).
    pub(super) async fn head_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<HeadObjectOutput>, S3Error> {
        match self
            .client
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(out)),
            Err(e) => {
                let err = S3Error::from_sdk("head object", key, e);
                if err.is_missing_object() {
                    Ok(None)
                } else {
                    Err(err)
                }
            }
        }
    }

    /// HEAD with the object's metadata; `None` when there is no object.
    pub async fn head_meta(&self, bucket: &str, key: &str) -> Result<Option<ObjectMeta>, S3Error> {
        Ok(self.head_object(bucket, key).await?.map(|out| {
            ObjectMeta::from_map(
                out.content_length.unwrap_or(0).max(0) as u64,
                out.e_tag,
                out.metadata.as_ref(),
            )
        }))
    }
}
