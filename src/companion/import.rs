//! `import-s3upload`: takes over from the old S3Upload plugin's table
//! (`<prefix>s3upload`). Its `uploaded` rows become upload records, its
//! pending and failed photos are queued, and the monitoring watermark
//! starts where the old plugin stopped, so nothing is uploaded twice and
//! nothing added since is missed. Safe to run again: what is recorded
//! stays, and queueing skips what is queued or uploaded.

use sqlx::MySqlPool;

use crate::db::{DbError, Tables};
use crate::piwigo::{self, GalleryRoot, OldRow};
use crate::queue::Queue;
use crate::queue::import::{self, OldUpload};

use super::requests;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(
        "import: there is no table {0} in this database: nothing to import (the old S3Upload plugin was never installed here with this table prefix)"
    )]
    NoOldTable(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// One old upload that could not become a record, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub image_id: u32,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub rows: u64,
    pub imported: u64,
    pub already_recorded: u64,
    pub skipped: Vec<Skipped>,
    /// Pending or failed in the old plugin, plus photos added after it
    /// stopped but behind this daemon's watermark.
    pub to_queue: u64,
    pub queued: u64,
    /// The old plugin's watermark (`install` row) and newest photo seen.
    pub old_watermark: Option<u32>,
    pub newest_old_photo: Option<u32>,
    /// Set by this import (`Some`) or kept as the daemon had it (`None`).
    pub watermark_set: Option<u32>,
}

impl ImportReport {
    pub fn to_text(&self, table: &str) -> String {
        let mut lines = vec![
            format!("old plugin table {table}: {} rows", self.rows),
            format!(
                "  {} uploads imported as upload records, {} already recorded",
                self.imported, self.already_recorded
            ),
        ];
        if !self.skipped.is_empty() {
            lines.push(format!("  {} could not be imported:", self.skipped.len()));
            for s in &self.skipped {
                lines.push(format!("    photo {}: {}", s.image_id, s.reason));
            }
        }
        lines.push(format!(
            "  {} photos queued of {} pending, failed or added since the old plugin stopped",
            self.queued, self.to_queue
        ));
        match (self.watermark_set, self.old_watermark.max(self.newest_old_photo)) {
            (Some(w), _) => lines.push(format!("  monitoring watermark set to photo {w}")),
            (None, Some(w)) => lines.push(format!(
                "  monitoring watermark kept (this daemon ran before); photos after {w} were queued above"
            )),
            (None, None) => {}
        }
        lines.join("\n") + "\n"
    }
}

/// Runs the import. `bucket` is the configured bucket, used for URLs that
/// do not name one (a custom endpoint or `public_url`).
pub async fn run(
    pool: &MySqlPool,
    t: &Tables,
    queue: &Queue,
    root: Option<&GalleryRoot>,
    bucket: &str,
    public_base: Option<&str>,
    dedupe: bool,
) -> Result<ImportReport, ImportError> {
    let Some(old) = piwigo::old_rows(pool, t).await? else {
        return Err(ImportError::NoOldTable(t.old_plugin.clone()));
    };

    let mut report = ImportReport {
        rows: old.len() as u64,
        ..ImportReport::default()
    };
    let mut pending = Vec::new();
    for row in &old {
        match row.status.as_str() {
            "install" => report.old_watermark = report.old_watermark.max(Some(row.img_id)),
            "uploaded" => {
                report.newest_old_photo = report.newest_old_photo.max(Some(row.img_id));
                match record(pool, t, root, row, bucket, public_base).await? {
                    Ok(true) => report.imported += 1,
                    Ok(false) => report.already_recorded += 1,
                    Err(reason) => report.skipped.push(Skipped {
                        image_id: row.img_id,
                        reason,
                    }),
                }
            }
            // pending, failed_code_N: the old plugin never finished them.
            _ if row.img_id > 0 => {
                report.newest_old_photo = report.newest_old_photo.max(Some(row.img_id));
                pending.push(row.img_id);
            }
            _ => {}
        }
    }

    let stop = report
        .old_watermark
        .max(report.newest_old_photo)
        .unwrap_or(0);
    let (set, current) = import::start_watermark(pool, t, stop).await?;
    if set {
        report.watermark_set = Some(stop);
    }
    // This daemon ran first and put its watermark past photos the old
    // plugin never saw: those are queued like a batch selection.
    let gap = (current > stop).then_some((stop + 1, current));
    report.to_queue = pending.len() as u64;
    if !pending.is_empty() || gap.is_some() {
        let request = crate::queue::requests::file(pool, t, &pending, gap).await?;
        report.to_queue = crate::queue::requests::photos(pool, t, request).await?;
        report.queued = requests::drain(pool, t, queue, dedupe).await?;
    }
    Ok(report)
}

/// Records one old upload. `Ok(Err(reason))` when it cannot be.
async fn record(
    pool: &MySqlPool,
    t: &Tables,
    root: Option<&GalleryRoot>,
    row: &OldRow,
    bucket: &str,
    public_base: Option<&str>,
) -> Result<Result<bool, String>, DbError> {
    if row.img_id == 0 {
        return Ok(Err("no photo id in the old row".into()));
    }
    let Some((obj_bucket, key)) = object_of_url(&row.s3_url, bucket, public_base) else {
        return Ok(Err(format!(
            "s3_url `{}` does not name an object of bucket `{bucket}`; set s3.bucket (or s3.public_url) to what the old plugin used",
            row.s3_url
        )));
    };
    let image = piwigo::path_and_md5(pool, t, row.img_id).await?;
    let (path, piwigo_md5) = image.unwrap_or_default();
    // The old plugin sent the file without hashing it: its md5 is
    // Piwigo's, when Piwigo had one.
    let md5 = [row.md5.as_str(), piwigo_md5.as_deref().unwrap_or("")]
        .into_iter()
        .find(|m| m.len() == 32 && m.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or("")
        .to_ascii_lowercase();
    let size = root
        .filter(|_| !path.is_empty())
        .and_then(|r| r.resolve(&path).ok())
        .and_then(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .unwrap_or(0);
    let old = OldUpload {
        image_id: row.img_id,
        bucket: &obj_bucket,
        key: &key,
        size,
        md5: &md5,
        url: &row.s3_url,
        uploaded_at: row.date,
    };
    Ok(Ok(import::record_old_upload(pool, t, &old).await?))
}

/// The bucket and key an old plugin URL points at: AWS virtual-host and
/// path styles, a custom endpoint naming `bucket`, or `public_base`.
pub fn object_of_url(
    url: &str,
    bucket: &str,
    public_base: Option<&str>,
) -> Option<(String, String)> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .ok()
            .map(|k| k.into_owned())
            .filter(|k| !k.is_empty())
    };
    if let Some(base) = public_base.map(|b| b.trim_end_matches('/'))
        && let Some(rest) = url.strip_prefix(base).and_then(|r| r.strip_prefix('/'))
    {
        return decode(rest).map(|k| (bucket.to_owned(), k));
    }
    let parsed = url::Url::parse(url).ok()?;
    let host = parsed.host_str()?;
    let path = parsed.path().trim_start_matches('/');
    if host.ends_with(".amazonaws.com") {
        if host.starts_with("s3.") || host.starts_with("s3-") {
            let (b, key) = path.split_once('/')?;
            return decode(key).map(|k| (b.to_owned(), k));
        }
        let (b, _) = host.split_once(".s3")?;
        return decode(path).map(|k| (b.to_owned(), k));
    }
    if host.starts_with(&format!("{bucket}.")) {
        return decode(path).map(|k| (bucket.to_owned(), k));
    }
    let key = path.strip_prefix(bucket)?.strip_prefix('/')?;
    decode(key).map(|k| (bucket.to_owned(), k))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(url: &str) -> Option<(String, String)> {
        object_of_url(url, "pics", Some("https://cdn.example.net/"))
    }

    #[test]
    fn old_plugin_urls_name_their_object() {
        let want = |b: &str, k: &str| Some((b.to_owned(), k.to_owned()));
        assert_eq!(
            obj("https://old.s3.amazonaws.com/photos/a%20b.jpg"),
            want("old", "photos/a b.jpg")
        );
        assert_eq!(
            obj("https://old.s3-eu-west-1.amazonaws.com/x.jpg"),
            want("old", "x.jpg")
        );
        assert_eq!(
            obj("https://s3.amazonaws.com/old/photos/x.jpg"),
            want("old", "photos/x.jpg")
        );
        assert_eq!(
            obj("http://127.0.0.1:9000/pics/photos/x.jpg"),
            want("pics", "photos/x.jpg")
        );
        assert_eq!(
            obj("https://cdn.example.net/photos/x.jpg"),
            want("pics", "photos/x.jpg")
        );
        assert_eq!(obj("https://elsewhere.example.org/x.jpg"), None);
        assert_eq!(obj("not a url"), None);
        assert_eq!(obj("https://old.s3.amazonaws.com/"), None);
    }
}
