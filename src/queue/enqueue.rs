//! Putting photos in the queue: the monitor's watermark, the tag, and batch
//! selections. All set-based: one statement queues a million rows.

use sqlx::{MySqlPool, QueryBuilder};

use super::selection::Selection;
use crate::db::{DbError, Tables};
use crate::piwigo::SKIPPED_PATHS_SQL;

/// What a monitoring poll did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Poll {
    pub queued: u64,
    pub watermark: u32,
    /// True on the very first poll: the watermark was set to the newest
    /// photo and nothing older is queued.
    pub initialised: bool,
}

/// Moves the watermark to the newest photo, queueing what lies between
/// when monitoring is enabled. In one transaction on our (InnoDB) state
/// row, so two daemons never queue the same range twice and a crash
/// queues nothing or everything.
pub async fn poll(pool: &MySqlPool, t: &Tables, enabled: bool) -> Result<Poll, DbError> {
    let err = DbError::query;
    let mut tx = pool.begin().await.map_err(err("poll: begin"))?;
    let current: Option<String> = sqlx::query_scalar(&format!(
        "SELECT value FROM {} WHERE name = 'watermark' FOR UPDATE",
        t.state
    ))
    .fetch_optional(&mut *tx)
    .await
    .map_err(err("poll: read watermark"))?;
    let newest: u32 =
        sqlx::query_scalar::<_, Option<u32>>(&format!("SELECT MAX(id) FROM {}", t.images))
            .fetch_one(&mut *tx)
            .await
            .map_err(err("poll: read newest photo id"))?
            .unwrap_or(0);

    let Some(current) = current.and_then(|v| v.parse::<u32>().ok()) else {
        // First run: photos that predate the daemon are for `enqueue`.
        set_watermark(&mut tx, t, newest).await?;
        tx.commit().await.map_err(err("poll: commit"))?;
        return Ok(Poll {
            queued: 0,
            watermark: newest,
            initialised: true,
        });
    };
    if newest <= current {
        tx.commit().await.map_err(err("poll: commit"))?;
        return Ok(Poll {
            queued: 0,
            watermark: current,
            initialised: false,
        });
    }
    let mut queued = 0;
    if enabled {
        queued = sqlx::query(&format!(
            "INSERT IGNORE INTO {} (image_id, source, piwigo_md5) \
             SELECT i.id, 'monitor', IF(CHAR_LENGTH(i.md5sum) = 32, i.md5sum, NULL) \
             FROM {} i WHERE i.id > ? AND i.id <= ? AND {SKIPPED_PATHS_SQL}",
            t.queue, t.images
        ))
        .bind(current)
        .bind(newest)
        .execute(&mut *tx)
        .await
        .map_err(err("poll: queue new photos"))?
        .rows_affected();
    }
    // Disabled monitoring still moves the watermark: photos added while it
    // was off are never queued by monitoring later.
    set_watermark(&mut tx, t, newest).await?;
    tx.commit().await.map_err(err("poll: commit"))?;
    Ok(Poll {
        queued,
        watermark: newest,
        initialised: false,
    })
}

async fn set_watermark(
    tx: &mut sqlx::Transaction<'_, sqlx::MySql>,
    t: &Tables,
    value: u32,
) -> Result<(), DbError> {
    sqlx::query(&format!(
        "INSERT INTO {} (name, value) VALUES ('watermark', ?) \
         ON DUPLICATE KEY UPDATE value = VALUES(value), updated_at = NOW(3)",
        t.state
    ))
    .bind(value.to_string())
    .execute(&mut **tx)
    .await
    .map_err(DbError::query("poll: store watermark"))?;
    Ok(())
}

/// The tag id the monitor follows, remembered so that renaming the tag in
/// Piwigo does not lose it.
pub async fn remembered_tag(pool: &MySqlPool, t: &Tables) -> Result<Option<u32>, DbError> {
    let v: Option<String> = sqlx::query_scalar(&format!(
        "SELECT value FROM {} WHERE name = 'monitor_tag_id'",
        t.state
    ))
    .fetch_optional(pool)
    .await
    .map_err(DbError::query("read followed tag"))?;
    Ok(v.and_then(|v| v.parse().ok()))
}

pub async fn remember_tag(pool: &MySqlPool, t: &Tables, id: u32) -> Result<(), DbError> {
    sqlx::query(&format!(
        "INSERT INTO {} (name, value) VALUES ('monitor_tag_id', ?) \
         ON DUPLICATE KEY UPDATE value = VALUES(value), updated_at = NOW(3)",
        t.state
    ))
    .bind(id.to_string())
    .execute(pool)
    .await
    .map_err(DbError::query("store followed tag"))?;
    Ok(())
}

/// Queues every photo with the tag that is neither queued nor uploaded.
pub async fn queue_tagged(pool: &MySqlPool, t: &Tables, tag_id: u32) -> Result<u64, DbError> {
    let done = sqlx::query(&format!(
        "INSERT IGNORE INTO {q} (image_id, source, piwigo_md5) \
         SELECT i.id, 'tag', IF(CHAR_LENGTH(i.md5sum) = 32, i.md5sum, NULL) \
         FROM {it} it JOIN {images} i ON i.id = it.image_id \
         WHERE it.tag_id = ? AND {SKIPPED_PATHS_SQL} \
         AND NOT EXISTS (SELECT 1 FROM {u} u WHERE u.image_id = i.id) \
         AND NOT EXISTS (SELECT 1 FROM {q} q WHERE q.image_id = i.id)",
        q = t.queue,
        it = t.image_tag,
        images = t.images,
        u = t.uploaded,
    ))
    .bind(tag_id)
    .execute(pool)
    .await
    .map_err(DbError::query("queue tagged photos"))?;
    Ok(done.rows_affected())
}

/// What `enqueue` did with a selection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct EnqueueReport {
    pub selected: u64,
    pub queued: u64,
    pub already_uploaded: u64,
    pub already_queued: u64,
    pub duplicates: u64,
}

/// Photo ids scanned per statement: bounds each transaction and lets a
/// large selection report progress.
pub const CHUNK_IDS: u32 = 100_000;

/// Queues a batch selection, skipping photos already uploaded or queued
/// and, with `dedupe`, photos whose Piwigo md5 matches one that is. Works
/// through the id range in chunks, calling `progress(scanned, total)` after
/// each.
pub async fn selection(
    pool: &MySqlPool,
    t: &Tables,
    sel: &Selection,
    dedupe: bool,
    progress: &mut (dyn FnMut(u64, u64) + Send),
) -> Result<EnqueueReport, DbError> {
    let err = DbError::query;
    let (lo, hi): (Option<u32>, Option<u32>) =
        sqlx::query_as(&format!("SELECT MIN(id), MAX(id) FROM {}", t.images))
            .fetch_one(pool)
            .await
            .map_err(err("enqueue: read the id range"))?;
    let mut report = EnqueueReport::default();
    let (Some(lo), Some(hi)) = (lo, hi) else {
        return Ok(report);
    };
    let total = u64::from(hi - lo) + 1;
    let mut start = lo;
    loop {
        let end = start.saturating_add(CHUNK_IDS - 1).min(hi);
        let part = chunk(pool, t, sel, dedupe, (start, end)).await?;
        report.selected += part.selected;
        report.queued += part.queued;
        report.already_uploaded += part.already_uploaded;
        report.already_queued += part.already_queued;
        report.duplicates += part.duplicates;
        progress(u64::from(end - lo) + 1, total);
        if end >= hi {
            break;
        }
        start = end + 1;
    }
    Ok(report)
}

async fn chunk(
    pool: &MySqlPool,
    t: &Tables,
    sel: &Selection,
    dedupe: bool,
    (lo, hi): (u32, u32),
) -> Result<EnqueueReport, DbError> {
    let err = DbError::query;
    let dup_sql = if dedupe {
        format!(
            "(i.md5sum IS NOT NULL AND CHAR_LENGTH(i.md5sum) = 32 \
             AND (EXISTS (SELECT 1 FROM {u} u2 WHERE u2.md5 = i.md5sum) \
             OR EXISTS (SELECT 1 FROM {q} q2 WHERE q2.piwigo_md5 = i.md5sum) \
             OR EXISTS (SELECT 1 FROM {q} q3 WHERE q3.md5 = i.md5sum)))",
            u = t.uploaded,
            q = t.queue
        )
    } else {
        "FALSE".into()
    };
    let mut tx = pool.begin().await.map_err(err("enqueue: begin"))?;

    // The md5 look-ups run once, in the INSERT: what the selection holds
    // beyond the queued, the uploaded and the already queued is duplicates.
    let mut qb = QueryBuilder::new(format!(
        "SELECT COUNT(*), \
         CAST(COALESCE(SUM(u.image_id IS NOT NULL), 0) AS UNSIGNED), \
         CAST(COALESCE(SUM(u.image_id IS NULL AND q.image_id IS NOT NULL), 0) AS UNSIGNED) \
         FROM {} i LEFT JOIN {} u ON u.image_id = i.id \
         LEFT JOIN {} q ON q.image_id = i.id AND q.kind = 'photo'",
        t.images, t.uploaded, t.queue
    ));
    sel.push_where(&mut qb, t);
    push_range(&mut qb, lo, hi);
    let (selected, already_uploaded, already_queued): (i64, u64, u64) = qb
        .build_query_as()
        .fetch_one(&mut *tx)
        .await
        .map_err(err("enqueue: count selection"))?;

    let queued = if selected > 0 {
        let mut qb = QueryBuilder::new(format!(
            "INSERT IGNORE INTO {} (image_id, source, piwigo_md5) \
             SELECT i.id, 'enqueue', IF(CHAR_LENGTH(i.md5sum) = 32, i.md5sum, NULL) FROM {} i",
            t.queue, t.images
        ));
        sel.push_where(&mut qb, t);
        push_range(&mut qb, lo, hi);
        qb.push(format!(
            " AND NOT EXISTS (SELECT 1 FROM {u} u WHERE u.image_id = i.id) \
             AND NOT EXISTS (SELECT 1 FROM {q} q WHERE q.image_id = i.id) AND NOT {dup_sql}",
            u = t.uploaded,
            q = t.queue
        ));
        qb.build()
            .execute(&mut *tx)
            .await
            .map_err(err("enqueue: queue selection"))?
            .rows_affected()
    } else {
        0
    };
    tx.commit().await.map_err(err("enqueue: commit"))?;
    let selected = selected.max(0) as u64;
    Ok(EnqueueReport {
        selected,
        queued,
        already_uploaded,
        already_queued,
        duplicates: selected.saturating_sub(queued + already_uploaded + already_queued),
    })
}

fn push_range(qb: &mut QueryBuilder<'_, sqlx::MySql>, lo: u32, hi: u32) {
    qb.push(" AND i.id BETWEEN ");
    qb.push_bind(lo);
    qb.push(" AND ");
    qb.push_bind(hi);
}
