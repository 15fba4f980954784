//! The upload records (photos and formats) joined with Piwigo's rows:
//! what `verify` audits and `restore` brings back, and the move of a
//! record to an object `verify --resend` sent again.

use sqlx::{MySqlPool, QueryBuilder, Row};

use crate::db::{DbError, Tables};

/// One photo as recorded in `<prefix>s3upload_uploaded`.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub image_id: u32,
    pub outcome: String,
    pub bucket: String,
    pub key: String,
    pub size: u64,
    pub md5: String,
    pub etag: Option<String>,
    /// Piwigo's `images.path` (for a format, its file in `pwg_format/`);
    /// `None` when the photo was deleted from Piwigo since.
    pub path: Option<String>,
    /// For a photo deleted from Piwigo since and marked so, the path it
    /// was last seen at (for a format, its file beside it).
    pub deleted_path: Option<String>,
    /// A format's extension; `None` for the photo itself.
    pub format: Option<String>,
    /// A format's id; `None` for the photo itself.
    pub format_id: Option<u32>,
    /// When the recorded object became the current one (`restore --at`).
    pub uploaded_at: Option<chrono::NaiveDateTime>,
}

/// Which records to read.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub ids: Vec<(u32, u32)>,
    /// An album and its sub-albums.
    pub album: Option<u32>,
}

/// The records of photos and of their formats, by photo id.
pub async fn load(pool: &MySqlPool, t: &Tables, filter: &Filter) -> Result<Vec<Recorded>, DbError> {
    let photos = format!(
        "SELECT u.image_id, u.outcome, u.bucket, u.s3_key, u.size, u.md5, u.etag, i.path, \
         d.path AS deleted_path, CAST(NULL AS CHAR) AS ext, \
         CAST(NULL AS UNSIGNED) AS format_id, u.uploaded_at \
         FROM {} u LEFT JOIN {} i ON i.id = u.image_id \
         LEFT JOIN {} d ON d.image_id = u.image_id AND i.id IS NULL WHERE TRUE",
        t.uploaded, t.images, t.deleted
    );
    let formats = format!(
        "SELECT f.image_id, f.status AS outcome, COALESCE(f.bucket, '') AS bucket, \
         COALESCE(f.s3_key, '') AS s3_key, CAST(COALESCE(f.size, 0) AS UNSIGNED) AS size, \
         COALESCE(f.md5, '') AS md5, f.etag, i.path, d.path AS deleted_path, f.ext, \
         CAST(f.format_id AS UNSIGNED) AS format_id, f.uploaded_at \
         FROM {} f LEFT JOIN {} i ON i.id = f.image_id \
         LEFT JOIN {} d ON d.image_id = f.image_id AND i.id IS NULL \
         WHERE f.status IN ('uploaded', 'already_present')",
        t.formats, t.images, t.deleted
    );
    let mut out = Vec::new();
    for (sql, column) in [(photos, "u.image_id"), (formats, "f.image_id")] {
        let mut qb = QueryBuilder::new(sql);
        push_filter(&mut qb, t, filter, column);
        qb.push(format!(" ORDER BY {column}"));
        let rows = qb
            .build()
            .fetch_all(pool)
            .await
            .map_err(DbError::query("read upload records"))?;
        for r in rows {
            out.push(read(&r).map_err(DbError::query("read upload records"))?);
        }
    }
    out.sort_by_key(|r| r.image_id);
    Ok(out)
}

fn read(r: &sqlx::mysql::MySqlRow) -> Result<Recorded, sqlx::Error> {
    let format: Option<String> = r.try_get("ext")?;
    let format_id: Option<u64> = r.try_get("format_id")?;
    let path = crate::piwigo::optional_text_column(r, "path")?;
    let deleted_path: Option<String> = r.try_get("deleted_path")?;
    let beside = |p: Option<String>| match (&format, p) {
        (Some(ext), Some(p)) => Some(crate::piwigo::format_path(&p, ext)),
        (_, p) => p,
    };
    Ok(Recorded {
        image_id: r.try_get("image_id")?,
        outcome: r.try_get("outcome")?,
        bucket: r.try_get("bucket")?,
        key: r.try_get("s3_key")?,
        size: r.try_get("size")?,
        md5: r.try_get("md5")?,
        etag: r.try_get("etag")?,
        path: beside(path),
        deleted_path: beside(deleted_path),
        format,
        format_id: format_id.and_then(|f| u32::try_from(f).ok()),
        uploaded_at: r.try_get("uploaded_at")?,
    })
}

fn push_filter<'a>(
    qb: &mut QueryBuilder<'a, sqlx::MySql>,
    t: &Tables,
    filter: &'a Filter,
    column: &str,
) {
    if !filter.ids.is_empty() {
        qb.push(" AND ");
        crate::piwigo::push_id_ranges(qb, column, &filter.ids);
    }
    if let Some(album) = filter.album {
        crate::piwigo::push_in_album(qb, t, column, album);
    }
}

/// How many photos have a record (none: the daemon's tables were lost or
/// nothing was uploaded yet).
pub async fn count(pool: &MySqlPool, t: &Tables) -> Result<i64, DbError> {
    sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {}", t.uploaded))
        .fetch_one(pool)
        .await
        .map_err(DbError::query("restore: count upload records"))
}

/// The bucket and key a photo's record points at, `None` when it has no
/// record.
pub async fn object_of(
    pool: &MySqlPool,
    t: &Tables,
    image_id: u32,
) -> Result<Option<(String, String)>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT bucket, s3_key FROM {} WHERE image_id = ?",
        t.uploaded
    ))
    .bind(image_id)
    .fetch_optional(pool)
    .await
}

/// An ETag without its quotes, lower case.
pub fn bare_etag(etag: &str) -> String {
    etag.trim().trim_matches('"').to_ascii_lowercase()
}

/// Where a re-sent object now lives.
#[derive(Debug, Clone, Copy)]
pub struct Moved<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    pub etag: Option<&'a str>,
    pub url: &'a str,
}

/// Points every record of the object at `old_bucket`/`old_key` (a photo
/// and its md5 duplicates, or a format) at its re-sent copy; the copy is
/// our upload, so `already_present` becomes `uploaded`.
pub async fn move_to(
    pool: &MySqlPool,
    t: &Tables,
    old_bucket: &str,
    old_key: &str,
    is_format: bool,
    to: &Moved<'_>,
) -> Result<u64, DbError> {
    let sql = if is_format {
        format!(
            "UPDATE {} SET bucket = ?, s3_key = ?, etag = ?, status = 'uploaded', \
             updated_at = NOW(3) WHERE bucket = ? AND s3_key = ? \
             AND status IN ('uploaded', 'already_present')",
            t.formats
        )
    } else {
        format!(
            "UPDATE {} SET bucket = ?, s3_key = ?, etag = ?, url = ?, \
             outcome = IF(outcome = 'duplicate', outcome, 'uploaded') \
             WHERE bucket = ? AND s3_key = ?",
            t.uploaded
        )
    };
    let mut q = sqlx::query(&sql).bind(to.bucket).bind(to.key).bind(to.etag);
    if !is_format {
        q = q.bind(to.url);
    }
    let done = q
        .bind(old_bucket)
        .bind(old_key)
        .execute(pool)
        .await
        .map_err(DbError::query("verify: record a re-sent object"))?;
    Ok(done.rows_affected())
}
