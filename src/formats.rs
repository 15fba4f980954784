//! Piwigo's formats: the RAW, TIFF or PSD files attached to a photo
//! (`<prefix>image_format`, files at `<dir>/pwg_format/<basename>.<ext>`).
//! Once a photo is recorded, each of its formats is queued in our own
//! table and sent as its own object next to the photo's key, with the
//! photo's rules: never overwrite, md5-checked, recorded with size and md5.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sqlx::{MySqlPool, Row};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::db::{DbError, Tables};
use crate::digest::{FileDigest, digest};
use crate::piwigo::FileError;
use crate::queue;
use crate::queue::status::{Failure, Retry, Status};
use crate::s3::S3Error;
use crate::s3::keys::ObjectKey;
use crate::s3::upload::PutError;
use crate::worker::Context;

/// Formats sent per pass; the next pass follows at once while some are due.
const BATCH: u32 = 16;

/// Where Piwigo keeps a format of the photo at `photo_path`.
pub fn rel_path(photo_path: &str, ext: &str) -> String {
    let (dir, name) = photo_path.rsplit_once('/').unwrap_or((".", photo_path));
    let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
    format!("{dir}/pwg_format/{stem}.{ext}")
}

/// The format's object: the photo's key with the format's extension.
pub fn key(photo: &ObjectKey, ext: &str) -> ObjectKey {
    let (dir, name) = match photo.key.rsplit_once('/') {
        Some((dir, name)) => (format!("{dir}/"), name),
        None => (String::new(), photo.key.as_str()),
    };
    let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
    ObjectKey {
        key: format!("{dir}{stem}.{ext}"),
        content_type: mime_guess::from_ext(ext)
            .first_raw()
            .unwrap_or("application/octet-stream")
            .to_owned(),
        metadata: Default::default(),
    }
}

/// Queues the formats of recorded photos not queued yet. Nothing when this
/// Piwigo has no formats table (before 13).
pub async fn discover(pool: &MySqlPool, t: &Tables) -> Result<u64, DbError> {
    if !crate::piwigo::table_exists(pool, &format!("{}image_format", t.prefix)).await? {
        return Ok(0);
    }
    let done = sqlx::query(&format!(
        "INSERT IGNORE INTO {f} (format_id, image_id, ext) \
         SELECT pf.format_id, pf.image_id, pf.ext FROM {pf} pf \
         WHERE EXISTS (SELECT 1 FROM {u} u WHERE u.image_id = pf.image_id) \
         AND NOT EXISTS (SELECT 1 FROM {f} f WHERE f.format_id = pf.format_id)",
        f = t.formats,
        pf = t.image_format,
        u = t.uploaded,
    ))
    .execute(pool)
    .await
    .map_err(DbError::query("formats: queue new formats"))?;
    Ok(done.rows_affected())
}

/// A claimed format with its photo's row.
struct Due {
    format_id: u32,
    image_id: u32,
    ext: String,
    attempts: u32,
    /// The photo's `path` and `file`; `None` when it was deleted.
    photo: Option<(String, String)>,
}

fn token() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("formats:{}:{nanos:x}", std::process::id())
}

async fn claim(
    pool: &MySqlPool,
    t: &Tables,
    token: &str,
    lease: Duration,
) -> Result<Vec<Due>, DbError> {
    let err = DbError::query;
    sqlx::query(&format!(
        "UPDATE {} SET claimed_by = ?, claimed_until = NOW(3) + INTERVAL ? MICROSECOND \
         WHERE status NOT IN ('uploaded', 'already_present') AND next_attempt_at <= NOW(3) \
         AND (claimed_until IS NULL OR claimed_until < NOW(3)) ORDER BY format_id LIMIT ?",
        t.formats
    ))
    .bind(token)
    .bind(lease.as_micros() as u64)
    .bind(BATCH)
    .execute(pool)
    .await
    .map_err(err("formats: claim"))?;
    let rows = sqlx::query(&format!(
        "SELECT f.format_id, f.image_id, f.ext, f.attempts, i.id AS present, i.path, i.file \
         FROM {} f LEFT JOIN {} i ON i.id = f.image_id WHERE f.claimed_by = ? ORDER BY f.format_id",
        t.formats, t.images
    ))
    .bind(token)
    .fetch_all(pool)
    .await
    .map_err(err("formats: read claimed"))?;
    rows.into_iter()
        .map(|r| -> Result<Due, sqlx::Error> {
            let present: Option<u32> = r.try_get("present")?;
            Ok(Due {
                format_id: r.try_get("format_id")?,
                image_id: r.try_get("image_id")?,
                ext: r.try_get("ext")?,
                attempts: r.try_get("attempts")?,
                photo: match present {
                    Some(_) => Some((
                        crate::piwigo::text_column(&r, "path")?,
                        crate::piwigo::text_column(&r, "file")?,
                    )),
                    None => None,
                },
            })
        })
        .collect::<Result<_, _>>()
        .map_err(err("formats: read claimed"))
}

/// What became of one format.
enum Done {
    Recorded {
        outcome: queue::Outcome,
        key: String,
        size: u64,
        md5: String,
        etag: Option<String>,
    },
    Failed(Failure),
    /// The photo or the format is gone from Piwigo.
    Gone,
}

async fn record(
    pool: &MySqlPool,
    t: &Tables,
    ctx: &Context,
    due: &Due,
    token: &str,
    done: Done,
) -> Result<(), DbError> {
    let finish = "claimed_by = NULL, claimed_until = NULL, updated_at = NOW(3) \
                  WHERE format_id = ? AND claimed_by = ?";
    let result =
        match done {
            Done::Recorded {
                outcome,
                key,
                size,
                md5,
                etag,
            } => sqlx::query(&format!(
                "UPDATE {} SET status = ?, bucket = ?, s3_key = ?, size = ?, md5 = ?, etag = ?, \
                 last_error = NULL, uploaded_at = NOW(3), {finish}",
                t.formats
            ))
            .bind(outcome.as_str())
            .bind(&ctx.target.bucket)
            .bind(key)
            .bind(size)
            .bind(md5)
            .bind(etag)
            .bind(due.format_id)
            .bind(token)
            .execute(pool)
            .await,
            Done::Failed(f) => {
                // Formats have no "until changed" state of their own: the
                // longest backoff stands in for it.
                let delay = match f.retry {
                    Retry::Backoff => queue::backoff(
                        due.attempts,
                        ctx.upload.retry_backoff_min,
                        ctx.upload.retry_backoff_max,
                    ),
                    Retry::Soon(d) => d,
                    Retry::UntilChanged => ctx.upload.retry_backoff_max,
                };
                sqlx::query(&format!(
                    "UPDATE {} SET status = ?, last_error = ?, attempts = attempts + 1, \
                     next_attempt_at = NOW(3) + INTERVAL ? MICROSECOND, {finish}",
                    t.formats
                ))
                .bind(f.status.as_str())
                .bind(
                    ctx.redact
                        .scrub(&f.message)
                        .chars()
                        .take(1000)
                        .collect::<String>(),
                )
                .bind(delay.as_micros() as u64)
                .bind(due.format_id)
                .bind(token)
                .execute(pool)
                .await
            }
            Done::Gone => {
                sqlx::query(&format!(
                    "DELETE FROM {} WHERE format_id = ? AND claimed_by = ?",
                    t.formats
                ))
                .bind(due.format_id)
                .bind(token)
                .execute(pool)
                .await
            }
        };
    result.map_err(DbError::query("formats: record"))?;
    Ok(())
}

/// Sends one format: resolve, hash, HEAD, PUT without overwriting.
async fn send(pool: &MySqlPool, t: &Tables, ctx: &Context, due: &Due) -> Result<Done, DbError> {
    let Some((photo_path, file)) = &due.photo else {
        return Ok(Done::Gone);
    };
    let rel = rel_path(photo_path, &due.ext);
    let local = |e: FileError| Done::Failed(e.failure());
    let stall = ctx.upload.read_stall_timeout;
    let (path, size) = match ctx.root.locate(&rel, stall).await {
        Ok(located) => located,
        Err(FileError::Missing(p)) => {
            // Deleted from Piwigo with its row: nothing to send.
            let still: Option<u32> = sqlx::query_scalar(&format!(
                "SELECT format_id FROM {} WHERE format_id = ?",
                t.image_format
            ))
            .bind(due.format_id)
            .fetch_optional(pool)
            .await
            .map_err(DbError::query("formats: look up format"))?;
            return Ok(match still {
                None => Done::Gone,
                Some(_) => local(FileError::Missing(p)),
            });
        }
        Err(e) => return Ok(local(e)),
    };
    let photo_key = match ctx.target.key_for(photo_path, file) {
        Ok(k) => k,
        Err(e) => {
            return Ok(Done::Failed(Failure::new(
                Status::FailedBadFileName,
                format!("cannot name the object: {e}"),
                Retry::UntilChanged,
            )));
        }
    };
    let part_size = ctx.target.part_size_for(size);
    let digest = match digest(path.clone(), part_size, stall).await {
        Ok(d) => d,
        Err(e) => return Ok(local(FileError::from_hash(&path, e))),
    };
    let md5 = digest.md5_hex();
    let key = key(&photo_key, &due.ext).describing(due.image_id, &rel, &md5, &due.ext);
    Ok(put(ctx, &key, &path, &digest, md5).await)
}

async fn put(
    ctx: &Context,
    key: &ObjectKey,
    path: &Path,
    digest: &FileDigest,
    md5: String,
) -> Done {
    let s3_failed = |e: S3Error| Done::Failed(e.failure(ctx.redact.scrub(&e.to_string())));
    let recorded = |outcome, etag| Done::Recorded {
        outcome,
        key: key.key.clone(),
        size: digest.size,
        md5: md5.clone(),
        etag,
    };
    // As for photos: an object with the same bytes is this format's copy,
    // one with other bytes is never overwritten.
    let present = match ctx.target.head(&key.key).await {
        Ok(p) => p,
        Err(e) => return s3_failed(e),
    };
    if let Some(present) = present {
        let same = match present.holds(digest) {
            Some(same) => same,
            None => match ctx.target.object_md5(&key.key).await {
                Ok(m) => m == digest.md5,
                Err(e) => return s3_failed(e),
            },
        };
        if same {
            return recorded(queue::Outcome::AlreadyPresent, present.etag);
        }
        return Done::Failed(Failure::new(
            Status::FailedKeyTaken,
            format!(
                "the key {} holds other bytes ({} bytes); it is never overwritten, so this format is not backed up",
                key.key, present.size
            ),
            Retry::UntilChanged,
        ));
    }
    match ctx.target.put(key, path, digest).await {
        Ok(put) => recorded(queue::Outcome::Uploaded, put.etag),
        // Lost a race: look again at what is there now.
        Err(PutError::S3(e)) if e.is_precondition_failed() => Done::Failed(Failure::new(
            Status::FailedCode(412),
            e.to_string(),
            Retry::Soon(Duration::from_secs(5)),
        )),
        Err(PutError::S3(e)) => s3_failed(e),
        Err(PutError::Local(e)) => Done::Failed(e.failure()),
    }
}

/// One pass: queue new formats, send those due. Returns how many were
/// claimed (0: nothing left to do now).
pub async fn pass(pool: &MySqlPool, t: &Tables, ctx: &Context) -> Result<usize, DbError> {
    discover(pool, t).await?;
    let token = token();
    let due = claim(pool, t, &token, ctx.upload.claim_lease).await?;
    for d in &due {
        // A format takes an upload slot like a photo.
        let Ok(_slot) = ctx.uploads.acquire().await else {
            break;
        };
        let done = send(pool, t, ctx, d).await?;
        match &done {
            Done::Recorded { key, .. } => {
                tracing::info!(image.id = d.image_id, format.ext = %d.ext, s3.key = %key, "format recorded")
            }
            Done::Failed(f) => {
                tracing::warn!(image.id = d.image_id, format.ext = %d.ext, status = %f.status, error = %ctx.redact.scrub(&f.message), "format upload failed")
            }
            Done::Gone => {}
        }
        record(pool, t, ctx, d, &token, done).await?;
    }
    Ok(due.len())
}

/// Until nothing is due (for `run --until-idle`).
pub async fn until_idle(pool: &MySqlPool, t: &Tables, ctx: &Context) -> Result<(), DbError> {
    while pass(pool, t, ctx).await? > 0 {}
    Ok(())
}

/// The daemon's formats loop: a pass every `interval`, with the running
/// configuration.
pub async fn run(
    pool: MySqlPool,
    t: Tables,
    ctx: watch::Receiver<Arc<Context>>,
    interval: Duration,
    stop: CancellationToken,
) {
    // The first pass waits too: start-up belongs to the photos' queue.
    let mut wait = interval;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        let current = ctx.borrow().clone();
        // Stopping drops a pass half-way: its claims come back after the
        // lease, and an unfinished multipart upload is aborted.
        let result = tokio::select! {
            _ = stop.cancelled() => return,
            r = pass(&pool, &t, &current) => r,
        };
        wait = match result {
            Ok(n) if n > 0 => Duration::ZERO,
            Ok(_) => interval,
            Err(e) => {
                tracing::warn!(error = %e, "formats: pass failed; retrying");
                interval
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_live_in_pwg_format_and_take_the_photo_key() {
        assert_eq!(
            rel_path("./upload/2024/01/02/20240102-abcd1234.jpg", "cr2"),
            "./upload/2024/01/02/pwg_format/20240102-abcd1234.cr2"
        );
        assert_eq!(
            rel_path("./galleries/a/b.c.jpg", "tif"),
            "./galleries/a/pwg_format/b.c.tif"
        );
        let photo = ObjectKey::for_image(
            "photos/",
            crate::s3::keys::KeyFormat::File,
            "./upload/2024/01/02/20240102010203-abcd1234.jpg",
            "beach.jpg",
        )
        .unwrap();
        let k = key(&photo, "cr2");
        assert_eq!(k.key, "photos/20240102010203-beach.cr2");
        assert_eq!(
            key(
                &ObjectKey {
                    key: "x".into(),
                    ..photo.clone()
                },
                "tif"
            )
            .key,
            "x.tif"
        );
    }
}
