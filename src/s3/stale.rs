//! Multipart uploads a killed daemon left unfinished (SIGKILL, power loss:
//! the abort on failure never ran). Their parts cost storage until someone
//! aborts them; a bucket lifecycle rule is the second line of defence.

use std::time::{Duration, SystemTime};

use super::Target;
use super::error::S3Error;

/// With no `s3.prefix` the whole bucket is the daemon's namespace, but
/// other programs may upload there too: only uploads this old are taken
/// for abandoned, whoever started them.
pub const UNPREFIXED_MIN_AGE: Duration = Duration::from_secs(24 * 3600);

/// Listing pages read per sweep; the rest waits for the next sweep.
const MAX_PAGES: usize = 100;

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub aborted: usize,
    /// Uploads left alone: too recent, or on a photo being uploaded now.
    pub kept: usize,
}

impl Target {
    /// How old an incomplete upload must be before it counts as abandoned:
    /// the claim lease (a live upload's photo stays claimed, and its key is
    /// spared) or, without a prefix, [`UNPREFIXED_MIN_AGE`].
    pub fn stale_after(&self, lease: Duration) -> Duration {
        if self.prefix.is_empty() {
            UNPREFIXED_MIN_AGE.max(lease)
        } else {
            lease
        }
    }

    /// Aborts incomplete multipart uploads under the prefix initiated more
    /// than `min_age` ago, except those on keys `live` says are claimed
    /// right now (possibly uploading for longer than the lease).
    pub async fn abort_stale_uploads(
        &self,
        min_age: Duration,
        live: impl Fn(&str) -> bool,
    ) -> Result<Swept, S3Error> {
        let cutoff = SystemTime::now() - min_age;
        let mut swept = Swept::default();
        let mut key_marker: Option<String> = None;
        let mut id_marker: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self
                .client
                .list_multipart_uploads()
                .bucket(&self.bucket)
                .prefix(&self.prefix)
                .set_key_marker(key_marker.take())
                .set_upload_id_marker(id_marker.take())
                .send()
                .await
                .map_err(|e| S3Error::from_sdk("list multipart uploads", &self.bucket, e))?;
            for upload in page.uploads() {
                let (Some(key), Some(id)) = (upload.key(), upload.upload_id()) else {
                    continue;
                };
                let old = upload
                    .initiated()
                    .and_then(|t| SystemTime::try_from(*t).ok())
                    .is_some_and(|t| t < cutoff);
                if !old || live(key) || !key.starts_with(&self.prefix) {
                    swept.kept += 1;
                    continue;
                }
                match self
                    .client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(id)
                    .send()
                    .await
                {
                    Ok(_) => {
                        tracing::info!(s3.key = %key, "aborted an incomplete multipart upload left by a stopped daemon");
                        swept.aborted += 1;
                    }
                    // Gone already: completed or aborted by someone else.
                    Err(e) => {
                        let e = S3Error::from_sdk("abort multipart upload", key, e);
                        if e.http_status != 404 {
                            return Err(e);
                        }
                    }
                }
            }
            if page.is_truncated() != Some(true) {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_owned);
            id_marker = page.next_upload_id_marker().map(str::to_owned);
            if key_marker.is_none() {
                break;
            }
        }
        Ok(swept)
    }
}
