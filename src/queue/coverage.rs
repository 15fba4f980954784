//! Coverage, for `verify`: is every Piwigo photo recorded (uploaded,
//! already present or a duplicate) or at least queued? The rest are listed
//! by album, and `verify --enqueue` queues them.

use serde::Serialize;
use sqlx::{MySqlPool, Row};

use crate::db::{DbError, Tables};
use crate::piwigo::SKIPPED_PATHS_SQL;
use crate::status::Status;

/// Photos neither recorded nor queued in one album (`id` 0: in no album,
/// e.g. still in Piwigo's lounge).
#[derive(Debug, Clone, Serialize)]
pub struct AlbumGap {
    pub album_id: u32,
    pub album: String,
    pub photos: u64,
    /// The first few ids, to look at one.
    pub sample_ids: Vec<u32>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Coverage {
    /// Piwigo photos with a file of this gallery.
    pub photos: u64,
    pub recorded: u64,
    pub queued: u64,
    /// Queued rows whose last attempt failed (`failed_*`).
    pub failing: u64,
    pub not_backed_up: u64,
    /// `not_backed_up` as id ranges, ready for `enqueue --ids`.
    pub not_backed_up_ids: String,
    /// A photo in several albums counts in each.
    pub by_album: Vec<AlbumGap>,
    /// Piwigo's formats (RAW, TIFF... beside a photo), counted like the
    /// photos; a format whose photo is queued counts as queued.
    pub formats: FormatCoverage,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct FormatCoverage {
    pub total: u64,
    pub recorded: u64,
    pub queued: u64,
    pub failing: u64,
    pub not_backed_up: u64,
}

/// Counts the photos and lists the gaps, every id (as ranges) and by album.
pub async fn check(pool: &MySqlPool, t: &Tables) -> Result<Coverage, DbError> {
    let err = DbError::query;
    let row = sqlx::query(&format!(
        "SELECT COUNT(*) AS photos, \
         CAST(COALESCE(SUM(u.image_id IS NOT NULL), 0) AS SIGNED) AS recorded, \
         CAST(COALESCE(SUM(u.image_id IS NULL AND q.image_id IS NOT NULL), 0) AS SIGNED) AS queued, \
         CAST(COALESCE(SUM(u.image_id IS NULL AND q.status LIKE '{failed}'), 0) AS SIGNED) AS failing \
         FROM {images} i LEFT JOIN {u} u ON u.image_id = i.id \
         LEFT JOIN {q} q ON q.image_id = i.id AND q.kind = 'photo' WHERE {SKIPPED_PATHS_SQL}",
        images = t.images,
        u = t.uploaded,
        q = t.queue,
        failed = Status::failed_like(),
    ))
    .fetch_one(pool)
    .await
    .map_err(err("verify: count photos"))?;
    let count = |name| count_column(&row, name, "verify: count photos");
    let mut cov = Coverage {
        photos: count("photos")?,
        recorded: count("recorded")?,
        queued: count("queued")?,
        failing: count("failing")?,
        ..Coverage::default()
    };

    cov.formats = formats(pool, t).await?;
    let gap = gap_sql(t);
    let ids: Vec<u32> = sqlx::query_scalar(&format!(
        "SELECT i.id FROM {} i WHERE {gap} ORDER BY i.id",
        t.images
    ))
    .fetch_all(pool)
    .await
    .map_err(err("verify: list photos not backed up"))?;
    cov.not_backed_up = ids.len() as u64;
    cov.not_backed_up_ids = crate::piwigo::id_ranges(&ids);
    if ids.is_empty() {
        return Ok(cov);
    }

    // SUBSTRING_INDEX over GROUP_CONCAT: the first ids of each album,
    // on MySQL as well as MariaDB.
    let rows = sqlx::query(&format!(
        "SELECT CAST(COALESCE(c.id, 0) AS SIGNED) AS album_id, COALESCE(c.name, '') AS album, COUNT(*) AS n, \
         SUBSTRING_INDEX(GROUP_CONCAT(i.id ORDER BY i.id SEPARATOR ','), ',', 10) AS sample \
         FROM {images} i LEFT JOIN {ic} ic ON ic.image_id = i.id \
         LEFT JOIN {c} c ON c.id = ic.category_id \
         WHERE {gap} GROUP BY c.id, c.name ORDER BY c.id",
        images = t.images,
        ic = t.image_category,
        c = t.categories,
    ))
    .fetch_all(pool)
    .await
    .map_err(err("verify: group photos by album"))?;
    for r in rows {
        let read = || -> Result<AlbumGap, sqlx::Error> {
            let album_id: i64 = r.try_get("album_id")?;
            let n: i64 = r.try_get("n")?;
            let sample = crate::piwigo::text_column(&r, "sample")?;
            let name = crate::piwigo::text_column(&r, "album")?;
            Ok(AlbumGap {
                album_id: album_id.max(0) as u32,
                album: if album_id == 0 {
                    "(in no album)".into()
                } else {
                    crate::piwigo::decode_piwigo_html(&name)
                },
                photos: n.max(0) as u64,
                sample_ids: sample.split(',').filter_map(|s| s.parse().ok()).collect(),
            })
        };
        cov.by_album
            .push(read().map_err(err("verify: group photos by album"))?);
    }
    Ok(cov)
}

/// Formats of this gallery's photos by state: recorded in the formats
/// table, queued or failing as items of the queue, or neither (and their
/// photo not queued either, which would queue them); all zero when Piwigo
/// has no formats table (before 13).
async fn formats(pool: &MySqlPool, t: &Tables) -> Result<FormatCoverage, DbError> {
    let err = DbError::query;
    let table = format!("{}image_format", t.prefix);
    if !crate::piwigo::table_exists(pool, &table).await? {
        return Ok(FormatCoverage::default());
    }
    let row = sqlx::query(&format!(
        "SELECT COUNT(*) AS total, \
         CAST(COALESCE(SUM(f.format_id IS NOT NULL), 0) AS SIGNED) AS recorded, \
         CAST(COALESCE(SUM(f.format_id IS NULL AND qf.status LIKE '{failed}'), 0) AS SIGNED) AS failing, \
         CAST(COALESCE(SUM(f.format_id IS NULL AND qf.id IS NULL AND q.id IS NULL), 0) AS SIGNED) AS missing \
         FROM {pf} pf JOIN {images} i ON i.id = pf.image_id \
         LEFT JOIN {f} f ON f.format_id = pf.format_id \
         LEFT JOIN {q} qf ON qf.image_id = pf.image_id AND qf.kind = 'format' \
         AND qf.kind_id = pf.format_id \
         LEFT JOIN {q} q ON q.image_id = pf.image_id AND q.kind = 'photo' WHERE {SKIPPED_PATHS_SQL}",
        pf = t.image_format,
        images = t.images,
        f = t.formats,
        q = t.queue,
        failed = Status::failed_like(),
    ))
    .fetch_one(pool)
    .await
    .map_err(err("verify: count formats"))?;
    let n = |name| count_column(&row, name, "verify: count formats");
    let (total, recorded, failing, missing) =
        (n("total")?, n("recorded")?, n("failing")?, n("missing")?);
    Ok(FormatCoverage {
        total,
        recorded,
        queued: total.saturating_sub(recorded + missing),
        failing,
        not_backed_up: missing,
    })
}

/// A count column of `row` (SUMs come back signed).
fn count_column(
    row: &sqlx::mysql::MySqlRow,
    name: &str,
    verb: &'static str,
) -> Result<u64, DbError> {
    let n: i64 = row.try_get(name).map_err(DbError::query(verb))?;
    Ok(n.max(0) as u64)
}

/// Photos of this gallery neither recorded nor queued, as a condition on
/// `i` (`<prefix>images`).
fn gap_sql(t: &Tables) -> String {
    format!(
        "{SKIPPED_PATHS_SQL} \
         AND NOT EXISTS (SELECT 1 FROM {u} u WHERE u.image_id = i.id) \
         AND NOT EXISTS (SELECT 1 FROM {q} q WHERE q.image_id = i.id AND q.kind = 'photo')",
        u = t.uploaded,
        q = t.queue
    )
}

/// Queues every photo neither recorded nor queued. No Piwigo-md5 shortcut
/// here: each photo gets a record of its own, and the worker recognises a
/// duplicate from its bytes.
pub async fn enqueue_gaps(pool: &MySqlPool, t: &Tables) -> Result<u64, DbError> {
    let done = sqlx::query(&format!(
        "INSERT IGNORE INTO {} (image_id, source, piwigo_md5) \
         SELECT i.id, 'verify', IF(CHAR_LENGTH(i.md5sum) = 32, i.md5sum, NULL) \
         FROM {} i WHERE {}",
        t.queue,
        t.images,
        gap_sql(t)
    ))
    .execute(pool)
    .await
    .map_err(DbError::query("verify: queue photos not backed up"))?;
    Ok(done.rows_affected())
}
