//! What the change check reads: records whose Piwigo row was touched
//! since a watermark (`images.lastmodified`, indexed by Piwigo), and
//! records in id order after the slow pass's cursor, each with what its
//! record says of the file. Both positions live in the state table, so a
//! restart goes on where the last run stopped.

use chrono::NaiveDateTime;
use sqlx::{MySqlPool, QueryBuilder, Row};

use super::item::Item;
use crate::db::{DbError, Tables};
use crate::piwigo::FileStat;

/// A recorded photo or format and what its record says of its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub image_id: u32,
    pub item: Item,
    /// The photo's `images.path` (a format's file lies beside it).
    pub path: String,
    /// The size of the recorded object.
    pub size: u64,
    /// `stat()` when it was hashed; `None` for records made before
    /// versions were kept.
    pub stat: Option<FileStat>,
    /// Piwigo's `filesize` then and now.
    pub piwigo_filesize: Option<u32>,
    pub piwigo_filesize_now: Option<u32>,
}

/// The poll's position: the last row it read, by (`lastmodified`, id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermark {
    pub at: NaiveDateTime,
    pub id: u32,
}

const WATERMARK: &str = "changes_watermark";
const CURSOR: &str = "changes_cursor";
/// When `run --until-idle` last took the slow pass's share (Unix ms).
const PASS_CLOCK: &str = "changes_pass_clock_ms";

const STAMP: &str = "%Y-%m-%d %H:%M:%S";

/// The poll's watermark; on the first run, the newest settled second:
/// what was touched before the daemon kept versions is the slow pass's.
pub async fn watermark(pool: &MySqlPool, t: &Tables) -> Result<Watermark, DbError> {
    let stored = super::state::get(pool, t, WATERMARK).await?.and_then(|v| {
        let (at, id) = v.split_once('|')?;
        Some(Watermark {
            at: NaiveDateTime::parse_from_str(at, STAMP).ok()?,
            id: id.parse().ok()?,
        })
    });
    if let Some(w) = stored {
        return Ok(w);
    }
    let now: NaiveDateTime = sqlx::query_scalar("SELECT NOW() - INTERVAL 1 SECOND")
        .fetch_one(pool)
        .await
        .map_err(DbError::query("changes: read the time"))?;
    let w = Watermark {
        at: now,
        id: u32::MAX,
    };
    set_watermark(pool, t, w).await?;
    Ok(w)
}

pub async fn set_watermark(pool: &MySqlPool, t: &Tables, w: Watermark) -> Result<(), DbError> {
    let value = format!("{}|{}", w.at.format(STAMP), w.id);
    super::state::set(pool, t, WATERMARK, &value).await
}

/// The record columns every candidate query reads, `r` being the record.
const RECORD: &str = "r.size, r.file_size, r.file_mtime_ns, \
     CAST(r.piwigo_filesize AS UNSIGNED) AS piwigo_filesize";

fn candidate(
    r: &sqlx::mysql::MySqlRow,
    image_id: u32,
    item: Item,
) -> Result<Candidate, sqlx::Error> {
    let file_size: Option<u64> = r.try_get("file_size")?;
    let mtime_ns: Option<i64> = r.try_get("file_mtime_ns")?;
    let then: Option<u64> = r.try_get("piwigo_filesize")?;
    let now: Option<u64> = r.try_get("now_filesize")?;
    Ok(Candidate {
        image_id,
        item,
        path: crate::piwigo::text_column(r, "path")?,
        size: r.try_get("size")?,
        stat: file_size
            .zip(mtime_ns)
            .map(|(size, mtime_ns)| FileStat { size, mtime_ns }),
        piwigo_filesize: then.and_then(|f| u32::try_from(f).ok()),
        piwigo_filesize_now: now.and_then(|f| u32::try_from(f).ok()),
    })
}

/// Up to `limit` photos whose row Piwigo touched after `after`, in
/// (`lastmodified`, id) order, up to the last settled second (`NOW()`
/// is the current second: a row written later in it is read at the next
/// poll). Returns
/// the recorded ones, and the new watermark (the last row read, recorded or not). The `lastmodified`
/// index makes a poll with nothing touched one empty range read.
pub async fn touched(
    pool: &MySqlPool,
    t: &Tables,
    after: Watermark,
    limit: u32,
) -> Result<(Vec<Candidate>, Watermark), DbError> {
    let err = DbError::query;
    let rows = sqlx::query(&format!(
        "SELECT i.id, i.path, CAST(i.lastmodified AS DATETIME) AS lastmodified, CAST(i.filesize AS UNSIGNED) AS now_filesize, \
         r.image_id AS recorded, {RECORD} \
         FROM {images} i LEFT JOIN {uploaded} r ON r.image_id = i.id \
         WHERE i.lastmodified >= ? AND (i.lastmodified > ? OR i.id > ?) \
         AND i.lastmodified < NOW() \
         ORDER BY i.lastmodified, i.id LIMIT ?",
        images = t.images,
        uploaded = t.uploaded,
    ))
    .bind(after.at)
    .bind(after.at)
    .bind(after.id)
    .bind(limit)
    .fetch_all(pool)
    .await
    .map_err(err("changes: read touched photos"))?;
    let mut next = after;
    let mut found = Vec::new();
    for r in &rows {
        // Every recorded row touched is looked at, even one whose
        // `lastmodified` is what its record saw: a second holds many
        // writes, and a `stat()` costs little.
        let read = || -> Result<(Watermark, Option<Candidate>), sqlx::Error> {
            let id: u32 = r.try_get("id")?;
            let at: NaiveDateTime = r.try_get("lastmodified")?;
            let recorded: Option<u32> = r.try_get("recorded")?;
            let c = match recorded {
                Some(_) => Some(candidate(r, id, Item::Photo)?),
                None => None,
            };
            Ok((Watermark { at, id }, c))
        };
        let (at, c) = read().map_err(err("changes: read touched photos"))?;
        next = at;
        found.extend(c);
    }
    let ids: Vec<u32> = found.iter().map(|c| c.image_id).collect();
    found.extend(formats_of(pool, t, Ids::List(&ids)).await?);
    Ok((found, next))
}

/// Which photos' formats to read.
enum Ids<'a> {
    List(&'a [u32]),
    /// `(after, through]`
    Range(u32, u32),
}

/// The recorded formats of some photos.
async fn formats_of(pool: &MySqlPool, t: &Tables, ids: Ids<'_>) -> Result<Vec<Candidate>, DbError> {
    if matches!(ids, Ids::List([])) || !crate::piwigo::has_formats(pool, t).await? {
        return Ok(Vec::new());
    }
    let mut qb = QueryBuilder::new(format!(
        "SELECT r.image_id, r.format_id, r.ext, i.path, \
         CAST(pf.filesize AS UNSIGNED) AS now_filesize, {RECORD} \
         FROM {formats} r JOIN {images} i ON i.id = r.image_id \
         LEFT JOIN {image_format} pf ON pf.format_id = r.format_id WHERE ",
        formats = t.formats,
        images = t.images,
        image_format = t.image_format,
    ));
    match ids {
        Ids::List(ids) => {
            qb.push("r.image_id IN (");
            let mut sep = qb.separated(", ");
            for id in ids {
                sep.push_bind(*id);
            }
            qb.push(")");
        }
        Ids::Range(after, through) => {
            qb.push("r.image_id > ");
            qb.push_bind(after);
            qb.push(" AND r.image_id <= ");
            qb.push_bind(through);
        }
    }
    qb.push(" ORDER BY r.image_id, r.format_id");
    let err = DbError::query("changes: read recorded formats");
    qb.build()
        .fetch_all(pool)
        .await
        .map_err(err)?
        .iter()
        .map(|r| {
            let item = Item::Format {
                format_id: r.try_get("format_id")?,
                ext: crate::piwigo::text_column(r, "ext")?,
            };
            candidate(r, r.try_get("image_id")?, item)
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(DbError::query("changes: read recorded formats"))
}

/// The slow pass's next `limit` recorded photos after its cursor, with
/// their formats, and the cursor after them (back to 0 at the end: the
/// next pass starts over).
pub async fn next_recorded(
    pool: &MySqlPool,
    t: &Tables,
    limit: u32,
) -> Result<(Vec<Candidate>, u32), DbError> {
    let cursor: u32 = super::state::get(pool, t, CURSOR)
        .await?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let err = DbError::query;
    let rows = sqlx::query(&format!(
        "SELECT r.image_id, i.path, CAST(i.filesize AS UNSIGNED) AS now_filesize, {RECORD} \
         FROM {uploaded} r JOIN {images} i ON i.id = r.image_id \
         WHERE r.image_id > ? ORDER BY r.image_id LIMIT ?",
        uploaded = t.uploaded,
        images = t.images,
    ))
    .bind(cursor)
    .bind(limit)
    .fetch_all(pool)
    .await
    .map_err(err("changes: read recorded photos"))?;
    let mut found = rows
        .iter()
        .map(|r| candidate(r, r.try_get("image_id")?, Item::Photo))
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(err("changes: read recorded photos"))?;
    let through = match found.last() {
        Some(last) if rows.len() as u32 == limit => last.image_id,
        // The end: the rest of the id range, formats included.
        _ => u32::MAX,
    };
    found.extend(formats_of(pool, t, Ids::Range(cursor, through)).await?);
    let next = if through == u32::MAX { 0 } else { through };
    Ok((found, next))
}

pub async fn set_cursor(pool: &MySqlPool, t: &Tables, cursor: u32) -> Result<(), DbError> {
    super::state::set(pool, t, CURSOR, &cursor.to_string()).await
}

/// Where `run --until-idle`'s share of the slow pass was counted up to
/// (Unix ms), if it ever ran.
pub async fn pass_clock(pool: &MySqlPool, t: &Tables) -> Result<Option<u64>, DbError> {
    Ok(super::state::get(pool, t, PASS_CLOCK)
        .await?
        .and_then(|v| v.parse().ok()))
}

pub async fn set_pass_clock(pool: &MySqlPool, t: &Tables, unix_ms: u64) -> Result<(), DbError> {
    super::state::set(pool, t, PASS_CLOCK, &unix_ms.to_string()).await
}

/// How many records the slow pass has to cover: photos and formats.
pub async fn recorded_count(pool: &MySqlPool, t: &Tables) -> Result<u64, DbError> {
    let photos: Option<i64> =
        sqlx::query_scalar(&format!("SELECT CAST(SUM(n) AS SIGNED) FROM {}", t.counts))
            .fetch_one(pool)
            .await
            .map_err(DbError::query("changes: count records"))?;
    Ok(photos.unwrap_or(0).max(0) as u64)
}

/// A record made before versions were kept, whose file still has the
/// size uploaded: what is on disk now becomes what later checks compare.
pub async fn adopt(
    pool: &MySqlPool,
    t: &Tables,
    c: &Candidate,
    stat: FileStat,
) -> Result<(), DbError> {
    let (table, by, id) = match &c.item {
        Item::Photo => (&t.uploaded, "image_id", c.image_id),
        Item::Format { format_id, .. } => (&t.formats, "format_id", *format_id),
    };
    sqlx::query(&format!(
        "UPDATE {table} SET file_size = ?, file_mtime_ns = ? WHERE {by} = ? AND file_size IS NULL"
    ))
    .bind(stat.size)
    .bind(stat.mtime_ns)
    .bind(id)
    .execute(pool)
    .await
    .map_err(DbError::query("changes: adopt what is on disk"))?;
    Ok(())
}
