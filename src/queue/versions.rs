//! Versions: a recorded photo (or format) whose file changed is queued
//! again as a new version; when that version is recorded, the record moves
//! to its object and the object it replaces joins the version history
//! (`<prefix>s3upload_versions`), in one transaction. A file touched
//! without new bytes only refreshes what its record says of it. The
//! history is listed here for `restore`, `status`, the plugin and the
//! retention code, which deletes old objects and sets `removed_at`.

use std::time::Duration;

use chrono::NaiveDateTime;
use sqlx::{MySqlPool, Row};

use super::item::Item;
use super::{Claimed, Outcome, PiwigoSeen, Queue, Record};
use crate::db::{DbError, Tables};
use crate::piwigo::FileStat;

/// The recorded object of an item, as a new version starts from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Current {
    pub key: String,
    pub md5: String,
    pub size: u64,
    /// 1 for the first object; the new one is `version + 1`.
    pub version: u32,
}

/// One superseded object of the version history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superseded {
    /// The history row's id.
    pub id: u64,
    pub image_id: u32,
    pub item_kind: String,
    /// 0 for the photo, the format's id for a format.
    pub kind_id: u32,
    pub version: u32,
    /// `duplicate` when the object was another photo's (never this one's
    /// to remove).
    pub outcome: String,
    pub bucket: String,
    pub key: String,
    pub md5: String,
    pub size: u64,
    pub uploaded_at: NaiveDateTime,
    pub superseded_at: NaiveDateTime,
    pub removed_at: Option<NaiveDateTime>,
}

/// The record's table and the `WHERE` that finds an item's row in it.
fn record_of(t: &Tables, item: &Item) -> (String, &'static str, &'static str) {
    match item {
        Item::Photo => (t.uploaded.clone(), "image_id = ?", "outcome"),
        Item::Format { .. } => (t.formats.clone(), "format_id = ?", "status"),
    }
}

/// The id `record_of`'s `WHERE` binds.
fn record_id(image_id: u32, item: &Item) -> u32 {
    item.format_id().unwrap_or(image_id)
}

impl Queue {
    /// The recorded object of the item a new version is claimed for;
    /// `None` when it has no record (then it is sent as a first upload).
    pub async fn current(&self, c: &Claimed) -> Result<Option<Current>, DbError> {
        let (table, by, _) = record_of(&self.t, &c.item);
        let row = sqlx::query(&format!(
            "SELECT s3_key, md5, size, version FROM {table} WHERE {by}"
        ))
        .bind(record_id(c.image_id, &c.item))
        .fetch_optional(&self.pool)
        .await
        .map_err(DbError::query("new version: read the record"))?;
        row.map(|r| -> Result<Current, sqlx::Error> {
            Ok(Current {
                key: r.try_get("s3_key")?,
                md5: r.try_get("md5")?,
                size: r.try_get("size")?,
                version: r.try_get("version")?,
            })
        })
        .transpose()
        .map_err(DbError::query("new version: read the record"))
    }

    /// A file touched without new bytes: its record takes what was seen
    /// now, the row goes, nothing is uploaded. Returns whether the claim
    /// was still ours.
    pub async fn refresh(
        &self,
        c: &Claimed,
        stat: FileStat,
        piwigo: PiwigoSeen,
    ) -> Result<bool, DbError> {
        let err = DbError::query;
        let mut tx = self.pool.begin().await.map_err(err("refresh: begin"))?;
        let dequeued = super::uploaded::dequeue(&mut tx, &self.t, c)
            .await
            .map_err(err("refresh: dequeue"))?;
        if !dequeued {
            tx.rollback().await.map_err(err("refresh: rollback"))?;
            return Ok(false);
        }
        let (table, by, _) = record_of(&self.t, &c.item);
        sqlx::query(&format!(
            "UPDATE {table} SET file_size = ?, file_mtime_ns = ?, piwigo_filesize = ?, \
             piwigo_lastmodified = ? WHERE {by}"
        ))
        .bind(stat.size)
        .bind(stat.mtime_ns)
        .bind(piwigo.filesize)
        .bind(piwigo.lastmodified)
        .bind(record_id(c.image_id, &c.item))
        .execute(&mut *tx)
        .await
        .map_err(err("refresh: update the record"))?;
        tx.commit().await.map_err(err("refresh: commit"))?;
        Ok(true)
    }
}

/// Moves the item's record to the new version `r` and puts the object it
/// held into the history, in the caller's transaction. An item whose
/// record is gone is recorded as a first upload.
pub(super) async fn supersede(
    tx: &mut sqlx::MySqlConnection,
    t: &Tables,
    c: &Claimed,
    r: &Record,
) -> Result<(), DbError> {
    let err = DbError::query;
    let (table, by, outcome_column) = record_of(t, &c.item);
    let id = record_id(c.image_id, &c.item);
    let old = sqlx::query(&format!(
        "SELECT {outcome_column} AS outcome, version FROM {table} WHERE {by} FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await
    .map_err(err("record version: read the record"))?;
    let Some(old) = old else {
        return match &c.item {
            Item::Photo => insert_first(tx, t, c, r).await,
            Item::Format { format_id, ext } => {
                super::formats::record(tx, t, c.image_id, *format_id, ext, r).await
            }
        };
    };
    let old_outcome: String = old
        .try_get("outcome")
        .map_err(err("record version: read the record"))?;
    sqlx::query(&format!(
        "INSERT INTO {versions} (image_id, kind, kind_id, version, outcome, bucket, s3_key, \
         size, md5, etag, uploaded_at) \
         SELECT ?, ?, ?, version, {outcome_column}, bucket, s3_key, size, md5, etag, uploaded_at \
         FROM {table} WHERE {by}",
        versions = t.versions
    ))
    .bind(c.image_id)
    .bind(c.item.kind())
    .bind(c.item.kind_id())
    .bind(id)
    .execute(&mut *tx)
    .await
    .map_err(err("record version: keep the old object in the history"))?;
    let url = match c.item {
        Item::Photo => ", url = ?, duplicate_of = ?",
        Item::Format { .. } => "",
    };
    let sql = format!(
        "UPDATE {table} SET {outcome_column} = ?, bucket = ?, s3_key = ?, size = ?, md5 = ?, \
         etag = ?, version = version + 1, uploaded_at = NOW(3), file_size = ?, \
         file_mtime_ns = ?, piwigo_filesize = ?, piwigo_lastmodified = ?{url} WHERE {by}"
    );
    let mut update = sqlx::query(&sql)
        .bind(r.outcome.as_str())
        .bind(&r.bucket)
        .bind(&r.key)
        .bind(r.size)
        .bind(&r.md5)
        .bind(&r.etag)
        .bind(r.stat.size)
        .bind(r.stat.mtime_ns)
        .bind(r.piwigo.filesize)
        .bind(r.piwigo.lastmodified);
    if c.item == Item::Photo {
        update = update.bind(&r.url).bind(r.duplicate_of);
    }
    update
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(err("record version: move the record"))?;
    if c.item == Item::Photo && old_outcome != r.outcome.as_str() {
        // The counts are of records: one moved from an outcome to another.
        sqlx::query(&format!(
            "UPDATE {} SET n = n - 1 WHERE outcome = ? AND n > 0",
            t.counts
        ))
        .bind(&old_outcome)
        .execute(&mut *tx)
        .await
        .map_err(err("record version: count"))?;
        super::uploaded::count_outcome(tx, t, r.outcome).await?;
    }
    Ok(())
}

/// A photo's first record, for a version whose record has gone.
async fn insert_first(
    tx: &mut sqlx::MySqlConnection,
    t: &Tables,
    c: &Claimed,
    r: &Record,
) -> Result<(), DbError> {
    super::uploaded::insert_record(tx, t, c.image_id, r)
        .await
        .map_err(DbError::query("record version: insert the record"))?;
    super::uploaded::count_outcome(tx, t, r.outcome).await
}

/// Queues a new version of a recorded item. Returns whether a row was
/// added: one already queued for it (not yet claimed, or being sent)
/// hashes the file when its turn comes, so it takes this change too.
pub async fn queue_change(
    pool: &MySqlPool,
    t: &Tables,
    image_id: u32,
    item: &Item,
) -> Result<bool, DbError> {
    let ext = match item {
        Item::Photo => None,
        Item::Format { ext, .. } => Some(ext.as_str()),
    };
    let done = sqlx::query(&format!(
        "INSERT IGNORE INTO {} (image_id, kind, kind_id, ext, source) VALUES (?, ?, ?, ?, 'change')",
        t.queue
    ))
    .bind(image_id)
    .bind(item.queue_kind(true))
    .bind(item.kind_id())
    .bind(ext)
    .execute(pool)
    .await
    .map_err(DbError::query("queue a changed photo"))?;
    Ok(done.rows_affected() == 1)
}

const COLUMNS: &str = "v.id, v.image_id, v.kind, v.kind_id, v.version, v.outcome, v.bucket, \
     v.s3_key, v.md5, v.size, v.uploaded_at, v.superseded_at, v.removed_at";

fn superseded(r: &sqlx::mysql::MySqlRow) -> Result<Superseded, sqlx::Error> {
    Ok(Superseded {
        id: r.try_get("id")?,
        image_id: r.try_get("image_id")?,
        item_kind: r.try_get("kind")?,
        kind_id: r.try_get("kind_id")?,
        version: r.try_get("version")?,
        outcome: r.try_get("outcome")?,
        bucket: r.try_get("bucket")?,
        key: r.try_get("s3_key")?,
        md5: r.try_get("md5")?,
        size: r.try_get("size")?,
        uploaded_at: r.try_get("uploaded_at")?,
        superseded_at: r.try_get("superseded_at")?,
        removed_at: r.try_get("removed_at")?,
    })
}

/// Every superseded object of a photo and its formats, removed ones
/// included, the photo's first and then each format's, oldest first.
pub async fn of_photo(
    pool: &MySqlPool,
    t: &Tables,
    image_id: u32,
) -> Result<Vec<Superseded>, DbError> {
    let err = DbError::query("list a photo's versions");
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM {} v WHERE v.image_id = ? ORDER BY v.kind_id, v.version",
        t.versions
    ))
    .bind(image_id)
    .fetch_all(pool)
    .await
    .map_err(err)?
    .iter()
    .map(superseded)
    .collect::<Result<_, _>>()
    .map_err(DbError::query("list a photo's versions"))
}

/// Superseded objects still in the bucket (`removed_at` unset) that were
/// superseded longer than `age` ago, oldest first, at most `limit`. Never
/// listed, because deleting them would take another record's object: a
/// `duplicate` (the object is another photo's), and an object some
/// photo's or format's record holds now.
pub async fn superseded_before(
    pool: &MySqlPool,
    t: &Tables,
    age: Duration,
    limit: u32,
) -> Result<Vec<Superseded>, DbError> {
    let err = DbError::query("list superseded objects");
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM {versions} v \
         WHERE v.removed_at IS NULL AND v.superseded_at < NOW(3) - INTERVAL ? MICROSECOND \
         AND v.outcome <> ? \
         AND NOT EXISTS (SELECT 1 FROM {uploaded} u WHERE u.md5 = v.md5 \
             AND u.bucket = v.bucket AND u.s3_key = v.s3_key) \
         AND NOT EXISTS (SELECT 1 FROM {formats} f WHERE f.md5 = v.md5 \
             AND f.bucket = v.bucket AND f.s3_key = v.s3_key) \
         ORDER BY v.superseded_at, v.id LIMIT ?",
        versions = t.versions,
        uploaded = t.uploaded,
        formats = t.formats,
    ))
    .bind(age.as_micros() as u64)
    .bind(Outcome::Duplicate.as_str())
    .bind(limit)
    .fetch_all(pool)
    .await
    .map_err(err)?
    .iter()
    .map(superseded)
    .collect::<Result<_, _>>()
    .map_err(DbError::query("list superseded objects"))
}

/// A superseded object left the bucket under `[retention] versions`.
pub async fn mark_removed(pool: &MySqlPool, t: &Tables, id: u64) -> Result<(), DbError> {
    sqlx::query(&format!(
        "UPDATE {} SET removed_at = NOW(3) WHERE id = ? AND removed_at IS NULL",
        t.versions
    ))
    .bind(id)
    .execute(pool)
    .await
    .map_err(DbError::query("versions: record a removal"))?;
    Ok(())
}

/// The superseded objects still in the bucket, as (bucket, key): `verify`
/// does not take them for orphans.
pub async fn kept_keys(pool: &MySqlPool, t: &Tables) -> Result<Vec<(String, String)>, DbError> {
    sqlx::query_as(&format!(
        "SELECT bucket, s3_key FROM {} WHERE removed_at IS NULL",
        t.versions
    ))
    .fetch_all(pool)
    .await
    .map_err(DbError::query("list kept versions"))
}

/// Recorded items whose file changed and whose new version is not
/// recorded yet, as (image id, kind, kind id), by image id.
pub async fn changed_waiting(
    pool: &MySqlPool,
    t: &Tables,
) -> Result<Vec<(u32, String, u32)>, DbError> {
    let rows: Vec<(u32, String, u32)> = sqlx::query_as(&format!(
        "SELECT image_id, kind, kind_id FROM {} \
         WHERE kind IN ('photo_version', 'format_version') ORDER BY image_id, kind_id",
        t.queue
    ))
    .fetch_all(pool)
    .await
    .map_err(DbError::query("list changed photos waiting"))?;
    Ok(rows
        .into_iter()
        .map(|(id, kind, kind_id)| (id, kind.trim_end_matches("_version").to_owned(), kind_id))
        .collect())
}

/// The object of an item (photo: `format_id` `None`) that was current at
/// `at`, when that was a version since superseded; `None` when the record
/// was current then, or nothing was uploaded yet.
pub async fn current_at(
    pool: &MySqlPool,
    t: &Tables,
    image_id: u32,
    format_id: Option<u32>,
    at: NaiveDateTime,
) -> Result<Option<Superseded>, DbError> {
    let (kind, kind_id) = match format_id {
        None => ("photo", 0),
        Some(f) => ("format", f),
    };
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM {} v WHERE v.image_id = ? AND v.kind = ? AND v.kind_id = ? \
         AND v.uploaded_at <= ? AND v.superseded_at > ? ORDER BY v.version DESC LIMIT 1",
        t.versions
    ))
    .bind(image_id)
    .bind(kind)
    .bind(kind_id)
    .bind(at)
    .bind(at)
    .fetch_optional(pool)
    .await
    .map_err(DbError::query("find the version current at a time"))?;
    row.as_ref()
        .map(superseded)
        .transpose()
        .map_err(DbError::query("find the version current at a time"))
}
