//! All of the queue's SQL: claiming with a lease, heartbeats, success,
//! failure with backoff, and taking back what crashed workers held.
//!
//! A row belongs to a worker while `claimed_by` holds that worker's claim
//! token and `claimed_until` is in the future; every write that finishes a
//! row checks the token, so a worker that lost its claim changes nothing.

pub mod enqueue;
pub mod formats;
pub mod item;
pub mod migrate;
pub mod report;
pub mod schema;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::{MySqlPool, Row};

use crate::db::{DbError, Tables};
use item::Item;
// Where every module has found them; the enums live below the queue, so
// that metrics, piwigo and s3 name them without importing the queue.
pub use crate::status;
pub use crate::status::Outcome;
use status::{Failure, Retry, Status};

/// `next_attempt_at` of a photo that waits for a change (of the photo or
/// the settings, or `retry`) rather than for time to pass.
const UNTIL_CHANGED: &str = "9999-12-31 00:00:00";

/// The bounds of the exponential backoff between attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub min: Duration,
    pub max: Duration,
}

/// How a claim is taken: `SKIP LOCKED` lets daemons pass each other's
/// locked rows (MariaDB 10.6+, MySQL 8.0+); older servers serialise on a
/// plain locking `UPDATE ... LIMIT`, which is correct, only slower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimStrategy {
    SkipLocked,
    UpdateLimit,
}

impl ClaimStrategy {
    /// From `SELECT VERSION()`, e.g. `10.11.19-MariaDB-0+deb12u1` or `8.0.36`.
    pub fn for_version(version: &str) -> Self {
        let mut nums = version
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|n| n.parse::<u32>().ok());
        let major = nums.next().unwrap_or(0);
        let minor = nums.next().unwrap_or(0);
        let supported = if version.to_ascii_lowercase().contains("mariadb") {
            (major, minor) >= (10, 6)
        } else {
            major >= 8
        };
        if supported {
            Self::SkipLocked
        } else {
            Self::UpdateLimit
        }
    }
}

#[derive(Debug, Clone)]
pub struct Queue {
    pool: MySqlPool,
    t: Tables,
    owner: String,
    seq: std::sync::Arc<AtomicU64>,
    strategy: ClaimStrategy,
    /// Whether this Piwigo has formats: a photo recorded then queues its
    /// formats in the same transaction.
    formats: bool,
}

/// A row a worker holds.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: u64,
    pub image_id: u32,
    pub attempts: u32,
    pub token: String,
    /// The photo itself or one of its formats.
    pub item: Item,
    /// The key this photo was last about to be sent to (its md5), by any
    /// daemon: an object there with its bytes is its own upload.
    pub sent_key: Option<String>,
    /// The photo's Piwigo row as it was at claim time; `None` when the
    /// photo, or the format this row stands for, has been deleted.
    pub image: Option<crate::piwigo::Image>,
}

#[derive(Debug, Clone)]
pub struct Record {
    pub outcome: Outcome,
    pub bucket: String,
    pub key: String,
    pub size: u64,
    pub md5: String,
    pub etag: Option<String>,
    pub url: String,
    pub duplicate_of: Option<u32>,
}

/// An earlier copy of the same bytes.
#[derive(Debug, Clone)]
pub struct Existing {
    pub image_id: u32,
    pub bucket: String,
    pub key: String,
    pub url: String,
    pub etag: Option<String>,
}

/// Result of reserving an md5 or an object key for a photo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    Ours,
    /// Another queued photo holds it and goes first.
    HeldBy(u32),
}

impl Queue {
    pub fn new(pool: MySqlPool, t: Tables, strategy: ClaimStrategy) -> Self {
        // Unique per process and start, readable in `status` and logs.
        let host = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .map(|h| h.trim().chars().take(40).collect::<String>())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "host".into());
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let owner = format!("{host}:{}:{nanos:08x}", std::process::id());
        Self {
            pool,
            t,
            owner,
            seq: Default::default(),
            strategy,
            formats: false,
        }
    }

    /// Queues a photo's formats as the photo is recorded (see
    /// [`crate::piwigo::has_formats`]).
    pub fn with_formats(mut self, formats: bool) -> Self {
        self.formats = formats;
        self
    }

    /// This daemon's name in claims, heartbeats and requests.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Picks the claim strategy from the server's version.
    pub async fn detect_strategy(pool: &MySqlPool) -> Result<ClaimStrategy, DbError> {
        let version: String = sqlx::query_scalar("SELECT VERSION()")
            .fetch_one(pool)
            .await
            .map_err(DbError::query("read server version"))?;
        let strategy = ClaimStrategy::for_version(&version);
        if strategy == ClaimStrategy::UpdateLimit {
            tracing::warn!(
                db.version = %version,
                "database server predates SKIP LOCKED (MariaDB 10.6 / MySQL 8.0): claims are serialised, which is correct but slower with several daemons"
            );
        }
        Ok(strategy)
    }

    fn next_token(&self) -> String {
        format!(
            "{}:{}",
            self.owner,
            self.seq.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// Claims up to `limit` due rows for `lease`. Expired claims of crashed
    /// workers are due again, so they are taken back here too.
    pub async fn claim(&self, limit: usize, lease: Duration) -> Result<Vec<Claimed>, DbError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let token = self.next_token();
        let q = &self.t.queue;
        let due = format!(
            "next_attempt_at <= NOW(3) AND (claimed_until IS NULL OR claimed_until < NOW(3)) \
             AND {}",
            item::known_kinds_sql()
        );
        let lease_us = lease.as_micros() as u64;
        let err = DbError::query;
        match self.strategy {
            ClaimStrategy::SkipLocked => {
                let mut tx = self.pool.begin().await.map_err(err("claim: begin"))?;
                let ids: Vec<u64> = sqlx::query_scalar(&format!(
                    "SELECT id FROM {q} WHERE {due} ORDER BY next_attempt_at, id LIMIT ? \
                     FOR UPDATE SKIP LOCKED"
                ))
                .bind(limit as u64)
                .fetch_all(&mut *tx)
                .await
                .map_err(err("claim: select due rows"))?;
                if ids.is_empty() {
                    tx.commit().await.map_err(err("claim: commit"))?;
                    return Ok(Vec::new());
                }
                let mut qb = sqlx::QueryBuilder::new(format!("UPDATE {q} SET claimed_by = "));
                qb.push_bind(&token);
                qb.push(", claimed_until = NOW(3) + INTERVAL ");
                qb.push_bind(lease_us);
                qb.push(" MICROSECOND WHERE id IN (");
                let mut sep = qb.separated(", ");
                for id in &ids {
                    sep.push_bind(*id);
                }
                qb.push(")");
                qb.build()
                    .execute(&mut *tx)
                    .await
                    .map_err(err("claim: mark rows"))?;
                tx.commit().await.map_err(err("claim: commit"))?;
            }
            ClaimStrategy::UpdateLimit => {
                sqlx::query(&format!(
                    "UPDATE {q} SET claimed_by = ?, claimed_until = NOW(3) + INTERVAL ? MICROSECOND \
                     WHERE {due} ORDER BY next_attempt_at, id LIMIT ?"
                ))
                .bind(&token)
                .bind(lease_us)
                .bind(limit as u64)
                .execute(&self.pool)
                .await
                .map_err(err("claim: mark rows"))?;
            }
        }
        // Piwigo's rows come along in the same read: one query less per
        // item. A format deleted in Piwigo is gone like a deleted photo.
        let format_present = if self.formats {
            format!(
                "(SELECT pf.format_id FROM {} pf WHERE q.kind = 'format' \
                 AND pf.format_id = q.kind_id)",
                self.t.image_format
            )
        } else {
            "q.kind_id".into()
        };
        let rows = sqlx::query(&format!(
            "SELECT q.id, q.image_id, q.kind, q.kind_id, q.ext, q.attempts, q.sent_key_md5, \
             i.id AS present, {format_present} AS format_present, i.file, i.path \
             FROM {q} q LEFT JOIN {images} i ON i.id = q.image_id \
             WHERE q.claimed_by = ? ORDER BY q.id",
            images = self.t.images
        ))
        .bind(&token)
        .fetch_all(&self.pool)
        .await
        .map_err(err("claim: read claimed rows"))?;
        rows.into_iter()
            .map(|r| {
                let image_id: u32 = r.try_get("image_id")?;
                let kind: String = r.try_get("kind")?;
                let item = Item::from_columns(&kind, r.try_get("kind_id")?, r.try_get("ext")?)
                    .ok_or_else(|| sqlx::Error::Decode(format!("unknown kind {kind:?}").into()))?;
                let present: Option<u32> = r.try_get("present")?;
                let format_present: Option<u32> = r.try_get("format_present")?;
                let gone = present.is_none() || item != Item::Photo && format_present.is_none();
                let image = match gone {
                    false => Some(crate::piwigo::Image {
                        file: crate::piwigo::text_column(&r, "file")?,
                        path: crate::piwigo::text_column(&r, "path")?,
                    }),
                    true => None,
                };
                Ok(Claimed {
                    id: r.try_get("id")?,
                    image_id,
                    item,
                    attempts: r.try_get("attempts")?,
                    sent_key: r.try_get("sent_key_md5")?,
                    token: token.clone(),
                    image,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(err("claim: read claimed rows"))
    }

    /// Extends the lease; `false` means the claim was lost and the work
    /// must stop.
    pub async fn heartbeat(&self, c: &Claimed, lease: Duration) -> Result<bool, DbError> {
        let done = sqlx::query(&format!(
            "UPDATE {} SET claimed_until = NOW(3) + INTERVAL ? MICROSECOND \
             WHERE id = ? AND claimed_by = ?",
            self.t.queue
        ))
        .bind(lease.as_micros() as u64)
        .bind(c.id)
        .bind(&c.token)
        .execute(&self.pool)
        .await
        .map_err(DbError::query("heartbeat"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Hands a row back untouched (shutdown): due again at once.
    pub async fn release(&self, c: &Claimed) -> Result<(), DbError> {
        sqlx::query(&format!(
            "UPDATE {} SET claimed_by = NULL, claimed_until = NULL, key_md5 = NULL \
             WHERE id = ? AND claimed_by = ?",
            self.t.queue
        ))
        .bind(c.id)
        .bind(&c.token)
        .execute(&self.pool)
        .await
        .map_err(DbError::query("release claim"))?;
        Ok(())
    }

    /// Records a failure and schedules the next attempt by its retry
    /// policy: the one place a delay is computed. The key reservation goes
    /// (photos waiting for the key look at once); a photo that waits for a
    /// change also gives up its md5: photos with its bytes then upload
    /// themselves, and one whose key holds other bytes never becomes the
    /// original of a later copy of its bytes.
    pub async fn fail(&self, c: &Claimed, f: &Failure, backoff: Backoff) -> Result<(), DbError> {
        retrying(|| self.fail_once(c, f, backoff)).await
    }

    async fn fail_once(&self, c: &Claimed, f: &Failure, backoff: Backoff) -> Result<(), DbError> {
        let error: String = f.message.chars().take(1000).collect();
        let next = match f.retry {
            Retry::UntilChanged => format!("'{UNTIL_CHANGED}'"),
            Retry::Backoff => micros_from_now(self::backoff(c.attempts, backoff.min, backoff.max)),
            Retry::Soon(d) => micros_from_now(d),
        };
        let drops_md5 = f.retry == Retry::UntilChanged;
        let err = DbError::query;
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(err("record failure: begin"))?;
        let done = sqlx::query(&format!(
            "UPDATE {} SET status = ?, attempts = attempts + 1, last_error = ?, \
             next_attempt_at = {next}, claimed_by = NULL, claimed_until = NULL, \
             key_md5 = NULL, md5 = IF(?, NULL, md5), updated_at = NOW(3) \
             WHERE id = ? AND claimed_by = ?",
            self.t.queue
        ))
        .bind(f.status.as_str())
        .bind(error)
        .bind(drops_md5)
        .bind(c.id)
        .bind(&c.token)
        .execute(&mut *tx)
        .await
        .map_err(err("record failure"))?;
        if done.rows_affected() == 1 {
            let woken: &[Status] = if drops_md5 {
                &Status::WAITING
            } else {
                &[Status::WaitingForKey]
            };
            self.wake_waiters(&mut tx, c.image_id, woken).await?;
        }
        tx.commit().await.map_err(err("record failure: commit"))?;
        Ok(())
    }

    /// Makes the photos waiting on `holder` due now.
    async fn wake_waiters(
        &self,
        tx: &mut sqlx::MySqlConnection,
        holder: u32,
        waiting: &[Status],
    ) -> Result<(), DbError> {
        let mut qb = sqlx::QueryBuilder::new(format!(
            "UPDATE {} SET next_attempt_at = NOW(3) WHERE waiting_for = ",
            self.t.queue
        ));
        qb.push_bind(holder);
        qb.push(" AND status IN (");
        let mut sep = qb.separated(", ");
        for s in waiting {
            sep.push_bind(s.as_str());
        }
        qb.push(")");
        qb.build()
            .execute(tx)
            .await
            .map_err(DbError::query("wake waiting photos"))?;
        Ok(())
    }

    /// Puts the row aside, without counting an attempt, until `holder`
    /// is done with `held` (the md5 or key md5 this photo could not
    /// reserve), which wakes it; or after `fallback`, should the holder's
    /// daemon die.
    pub async fn wait(
        &self,
        c: &Claimed,
        status: Status,
        holder: u32,
        held: &str,
        fallback: Duration,
    ) -> Result<(), DbError> {
        retrying(|| self.wait_once(c, status, holder, held, fallback)).await
    }

    async fn wait_once(
        &self,
        c: &Claimed,
        status: Status,
        holder: u32,
        held: &str,
        fallback: Duration,
    ) -> Result<(), DbError> {
        sqlx::query(&format!(
            "UPDATE {} SET status = ?, waiting_for = ?, key_md5 = NULL, \
             next_attempt_at = NOW(3) + INTERVAL ? MICROSECOND, \
             claimed_by = NULL, claimed_until = NULL, updated_at = NOW(3) \
             WHERE id = ? AND claimed_by = ?",
            self.t.queue
        ))
        .bind(status.as_str())
        .bind(holder)
        .bind(fallback.as_micros() as u64)
        .bind(c.id)
        .bind(&c.token)
        .execute(&self.pool)
        .await
        .map_err(DbError::query("postpone"))?;
        // The holder may have finished (and woken its waiters) between the
        // reservation that failed and the line above: look once more.
        let column = if status == Status::WaitingForKey {
            "key_md5"
        } else {
            "md5"
        };
        let still: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM {} WHERE image_id = ? AND {column} = ?",
            self.t.queue
        ))
        .bind(holder)
        .bind(held)
        .fetch_one(&self.pool)
        .await
        .map_err(DbError::query("postpone: look at the holder"))?;
        if still == 0 {
            sqlx::query(&format!(
                "UPDATE {} SET next_attempt_at = NOW(3) WHERE id = ? AND claimed_by IS NULL",
                self.t.queue
            ))
            .bind(c.id)
            .execute(&self.pool)
            .await
            .map_err(DbError::query("postpone: wake"))?;
        }
        Ok(())
    }

    /// Drops a row whose photo no longer exists in Piwigo.
    pub async fn forget(&self, c: &Claimed) -> Result<bool, DbError> {
        let done = sqlx::query(&format!(
            "DELETE FROM {} WHERE id = ? AND claimed_by = ?",
            self.t.queue
        ))
        .bind(c.id)
        .bind(&c.token)
        .execute(&self.pool)
        .await
        .map_err(DbError::query("drop deleted photo"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Success: the queue row goes and the uploaded row comes in one
    /// transaction, only if the claim is still ours. Returns whether it was.
    pub async fn complete(&self, c: &Claimed, r: &Record) -> Result<bool, DbError> {
        retrying(|| self.complete_once(c, r)).await
    }

    async fn complete_once(&self, c: &Claimed, r: &Record) -> Result<bool, DbError> {
        let err = DbError::query;
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(err("record success: begin"))?;
        let deleted = sqlx::query(&format!(
            "DELETE FROM {} WHERE id = ? AND claimed_by = ?",
            self.t.queue
        ))
        .bind(c.id)
        .bind(&c.token)
        .execute(&mut *tx)
        .await
        .map_err(err("record success: dequeue"))?;
        if deleted.rows_affected() != 1 {
            tx.rollback()
                .await
                .map_err(err("record success: rollback"))?;
            return Ok(false);
        }
        // Photos with the same bytes or key settle now, not after a wait.
        self.wake_waiters(&mut tx, c.image_id, &Status::WAITING)
            .await?;
        match &c.item {
            Item::Photo => {
                self.record_photo(&mut tx, c, r).await?;
                if self.formats {
                    formats::queue_of_photo(&mut tx, &self.t, c.image_id).await?;
                }
            }
            Item::Format { format_id, ext } => {
                formats::record(&mut tx, &self.t, c.image_id, *format_id, ext, r).await?;
            }
        }
        tx.commit().await.map_err(err("record success: commit"))?;
        Ok(true)
    }

    /// The photo's record and its count.
    async fn record_photo(
        &self,
        tx: &mut sqlx::MySqlConnection,
        c: &Claimed,
        r: &Record,
    ) -> Result<(), DbError> {
        let err = DbError::query;
        let inserted = sqlx::query(&format!(
            "INSERT INTO {} (image_id, outcome, bucket, s3_key, size, md5, etag, url, duplicate_of) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            self.t.uploaded
        ))
        .bind(c.image_id)
        .bind(r.outcome.as_str())
        .bind(&r.bucket)
        .bind(&r.key)
        .bind(r.size)
        .bind(&r.md5)
        .bind(&r.etag)
        .bind(&r.url)
        .bind(r.duplicate_of)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {
                sqlx::query(&format!(
                    "INSERT INTO {} (outcome, n) VALUES (?, 1) ON DUPLICATE KEY UPDATE n = n + 1",
                    self.t.counts
                ))
                .bind(r.outcome.as_str())
                .execute(&mut *tx)
                .await
                .map_err(err("record success: count"))?;
            }
            // Recorded before (by an earlier run): the first record stands.
            // A failed statement does not end the transaction in MySQL.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {}
            Err(e) => {
                return Err(DbError::Query {
                    verb: "record success: insert",
                    source: e,
                });
            }
        }
        Ok(())
    }

    /// The earliest upload of these bytes (same md5 and same size), if any.
    pub async fn uploaded_with_md5(
        &self,
        md5: &str,
        size: u64,
    ) -> Result<Option<Existing>, DbError> {
        let row = sqlx::query(&format!(
            "SELECT image_id, bucket, s3_key, url, etag FROM {} \
             WHERE md5 = ? AND size = ? AND outcome <> ? ORDER BY id LIMIT 1",
            self.t.uploaded
        ))
        .bind(md5)
        .bind(size)
        .bind(Outcome::Duplicate.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(DbError::query("look up md5"))?;
        row.map(|r| -> Result<Existing, sqlx::Error> {
            Ok(Existing {
                image_id: r.try_get("image_id")?,
                bucket: r.try_get("bucket")?,
                key: r.try_get("s3_key")?,
                url: r.try_get("url")?,
                etag: r.try_get("etag")?,
            })
        })
        .transpose()
        .map_err(DbError::query("look up md5"))
    }

    /// Reserves `md5` for this row; the unique index makes exactly one of
    /// several photos with the same bytes the one that uploads.
    pub async fn reserve_md5(&self, c: &Claimed, md5: &str) -> Result<Reservation, DbError> {
        retrying(|| self.reserve_md5_once(c, md5)).await
    }

    async fn reserve_md5_once(&self, c: &Claimed, md5: &str) -> Result<Reservation, DbError> {
        let q = &self.t.queue;
        let result = sqlx::query(&format!(
            "UPDATE {q} SET md5 = ? WHERE id = ? AND claimed_by = ?"
        ))
        .bind(md5)
        .bind(c.id)
        .bind(&c.token)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(Reservation::Ours),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                let holder: Option<u32> =
                    sqlx::query_scalar(&format!("SELECT image_id FROM {q} WHERE md5 = ?"))
                        .bind(md5)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(DbError::query("look up md5 holder"))?;
                match holder {
                    Some(id) if id != c.image_id => Ok(Reservation::HeldBy(id)),
                    // The holder finished in between: try once more.
                    _ => Box::pin(self.reserve_md5_once(c, md5)).await,
                }
            }
            Err(e) => Err(DbError::Query {
                verb: "reserve md5",
                source: e,
            }),
        }
    }

    /// Reserves the object key (its md5, `key_md5`) for this row, across
    /// every daemon sharing the queue: two photos are never sent to one
    /// key at once. A key still held by a row nobody has claimed (its
    /// daemon died) is taken over. Also notes that this row is about to
    /// send to the key, which tells its own upload from another's later.
    pub async fn reserve_key(&self, c: &Claimed, key_md5: &str) -> Result<Reservation, DbError> {
        retrying(|| self.reserve_key_once(c, key_md5)).await
    }

    async fn reserve_key_once(&self, c: &Claimed, key_md5: &str) -> Result<Reservation, DbError> {
        let q = &self.t.queue;
        let err = DbError::query;
        let result = sqlx::query(&format!(
            "UPDATE {q} SET key_md5 = ?, sent_key_md5 = ? WHERE id = ? AND claimed_by = ?"
        ))
        .bind(key_md5)
        .bind(key_md5)
        .bind(c.id)
        .bind(&c.token)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(Reservation::Ours),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                let holder: Option<(u32, i64)> = sqlx::query_as(&format!(
                    "SELECT image_id, CAST(claimed_until > NOW(3) AS SIGNED) FROM {q} \
                     WHERE key_md5 = ?"
                ))
                .bind(key_md5)
                .fetch_optional(&self.pool)
                .await
                .map_err(err("look up key holder"))?;
                match holder {
                    Some((id, 1)) => Ok(Reservation::HeldBy(id)),
                    // Held by a row nobody works on (its daemon died):
                    // take the key over.
                    Some(_) => {
                        sqlx::query(&format!(
                            "UPDATE {q} SET key_md5 = NULL WHERE key_md5 = ? \
                             AND (claimed_until IS NULL OR claimed_until < NOW(3))"
                        ))
                        .bind(key_md5)
                        .execute(&self.pool)
                        .await
                        .map_err(err("reserve key: free a stale reservation"))?;
                        Box::pin(self.reserve_key_once(c, key_md5)).await
                    }
                    // The holder finished in between: try once more.
                    None => Box::pin(self.reserve_key_once(c, key_md5)).await,
                }
            }
            Err(e) => Err(DbError::Query {
                verb: "reserve key",
                source: e,
            }),
        }
    }

    /// Makes every failed or waiting row due now; returns how many.
    pub async fn retry_now(&self, ids: Option<&[(u32, u32)]>) -> Result<u64, DbError> {
        let mut qb = sqlx::QueryBuilder::new(format!(
            "UPDATE {q} SET status = '{pending}', attempts = 0, next_attempt_at = NOW(3), \
             updated_at = NOW(3) WHERE status <> '{pending}'",
            q = self.t.queue,
            pending = Status::Pending,
        ));
        if let Some(ranges) = ids {
            qb.push(" AND ");
            crate::piwigo::push_id_ranges(&mut qb, "image_id", ranges);
        }
        let done = qb
            .build()
            .execute(&self.pool)
            .await
            .map_err(DbError::query("retry failed rows"))?;
        Ok(done.rows_affected())
    }

    /// When the S3 settings differ from the last run's, failures recorded
    /// under the old ones are retried at once: fixing a key or bucket must
    /// not leave photos waiting out a long backoff.
    pub async fn retry_if_settings_changed(&self, fingerprint: &str) -> Result<u64, DbError> {
        let err = DbError::query;
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(err("compare settings: begin"))?;
        let old: Option<String> = sqlx::query_scalar(&format!(
            "SELECT value FROM {} WHERE name = 's3_settings' FOR UPDATE",
            self.t.state
        ))
        .fetch_optional(&mut *tx)
        .await
        .map_err(err("compare settings: read"))?;
        let mut retried = 0;
        if old.as_deref() != Some(fingerprint) {
            sqlx::query(&format!(
                "INSERT INTO {} (name, value) VALUES ('s3_settings', ?) \
                 ON DUPLICATE KEY UPDATE value = VALUES(value), updated_at = NOW(3)",
                self.t.state
            ))
            .bind(fingerprint)
            .execute(&mut *tx)
            .await
            .map_err(err("compare settings: store"))?;
            if old.is_some() {
                retried = sqlx::query(&format!(
                    "UPDATE {} SET next_attempt_at = NOW(3), attempts = 0 \
                     WHERE status LIKE '{}'",
                    self.t.queue,
                    Status::failed_like()
                ))
                .execute(&mut *tx)
                .await
                .map_err(err("compare settings: retry failures"))?
                .rows_affected();
            }
        }
        tx.commit().await.map_err(err("compare settings: commit"))?;
        Ok(retried)
    }

    /// Photos due now or being uploaded: what is left of a backlog.
    pub async fn backlog(&self) -> Result<u64, DbError> {
        let n: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM {} WHERE next_attempt_at <= NOW(3)",
            self.t.queue
        ))
        .fetch_one(&self.pool)
        .await
        .map_err(DbError::query("count the backlog"))?;
        Ok(n.max(0) as u64)
    }

    /// Whether anything is left for `--until-idle`: a row due now (a claim
    /// can pass over a row another transaction holds for an instant, so an
    /// empty claim alone does not prove it), or a photo waiting on another
    /// that is finished, due or being uploaded (its wait ends soon).
    pub async fn has_work_left(&self) -> Result<bool, DbError> {
        let q = &self.t.queue;
        let n: i64 = sqlx::query_scalar(&format!(
            "SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM {q} WHERE next_attempt_at <= NOW(3) \
             AND {known} LIMIT 1) d) \
             + (SELECT COUNT(*) FROM (SELECT 1 FROM {q} w LEFT JOIN {q} h ON h.image_id = w.waiting_for \
             WHERE w.status IN (?, ?) \
             AND (h.id IS NULL OR h.next_attempt_at <= NOW(3) OR h.claimed_until > NOW(3)) \
             LIMIT 1) d)",
            known = item::known_kinds_sql()
        ))
        .bind(Status::WaitingForDuplicate.as_str())
        .bind(Status::WaitingForKey.as_str())
        .fetch_one(&self.pool)
        .await
        .map_err(DbError::query("look for work left"))?;
        Ok(n > 0)
    }
}

/// Runs `op` again when InnoDB picked it as the victim of a deadlock (or a
/// lock wait timed out): rows of photos that share bytes or a key are
/// written by several workers at once, and the loser only has to retry.
async fn retrying<T, F, Fut>(mut op: F) -> Result<T, DbError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, DbError>>,
{
    const TRIES: u32 = 5;
    let mut tried = 1;
    loop {
        match op().await {
            Err(e) if e.is_lock_conflict() && tried < TRIES => {
                tokio::time::sleep(Duration::from_millis(10 * u64::from(tried))).await;
                tried += 1;
            }
            result => return result,
        }
    }
}

/// Photos that wait for a change and whose Piwigo row changed since their
/// failure (renamed, replaced: `lastmodified` moves on every update) are
/// due again. Returns how many.
pub async fn retry_changed_photos(pool: &MySqlPool, t: &Tables) -> Result<u64, DbError> {
    let done = sqlx::query(&format!(
        "UPDATE {q} q JOIN {images} i ON i.id = q.image_id \
         SET q.next_attempt_at = NOW(3), q.attempts = 0 \
         WHERE q.next_attempt_at = '{UNTIL_CHANGED}' AND i.lastmodified > q.updated_at",
        q = t.queue,
        images = t.images
    ))
    .execute(pool)
    .await
    .map_err(DbError::query("retry photos changed in Piwigo"))?;
    Ok(done.rows_affected())
}

/// SQL for a moment `d` from now.
fn micros_from_now(d: Duration) -> String {
    format!("NOW(3) + INTERVAL {} MICROSECOND", d.as_micros())
}

/// Exponential backoff from the number of attempts so far, capped, with a
/// little spread so a burst of failures does not retry in lockstep.
pub fn backoff(attempts: u32, min: Duration, max: Duration) -> Duration {
    let factor = 2u32.saturating_pow(attempts.min(20));
    let base = min.saturating_mul(factor).min(max);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    // Up to +10%, never above the cap.
    let spread = base.mul_f64(f64::from(nanos % 1000) / 10_000.0);
    (base + spread).min(max)
}

impl Queue {
    /// The items claimed right now, by any daemon, with their photo's
    /// row: their multipart uploads are alive however old they are.
    pub async fn live_claims(&self) -> Result<Vec<(crate::piwigo::Image, Item)>, DbError> {
        let err = DbError::query("list live claims");
        sqlx::query(&format!(
            "SELECT i.file, i.path, q.kind, q.kind_id, q.ext FROM {} q \
             JOIN {} i ON i.id = q.image_id WHERE q.claimed_until > NOW(3)",
            self.t.queue, self.t.images
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(err)?
        .iter()
        .map(|r| {
            let image = crate::piwigo::Image {
                file: crate::piwigo::text_column(r, "file")?,
                path: crate::piwigo::text_column(r, "path")?,
            };
            // Another kind's upload (a newer daemon's) cannot be named
            // here: no sweep then, rather than one that aborts it.
            let kind: String = r.try_get("kind")?;
            let item = Item::from_columns(&kind, r.try_get("kind_id")?, r.try_get("ext")?)
                .ok_or_else(|| sqlx::Error::Decode(format!("unknown kind {kind:?}").into()))?;
            Ok((image, item))
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(DbError::query("list live claims"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_strategy_from_version() {
        use ClaimStrategy::*;
        assert_eq!(
            ClaimStrategy::for_version("10.11.19-MariaDB-0+deb12u1"),
            SkipLocked
        );
        assert_eq!(ClaimStrategy::for_version("10.6.0-MariaDB"), SkipLocked);
        assert_eq!(
            ClaimStrategy::for_version("10.5.22-MariaDB-log"),
            UpdateLimit
        );
        assert_eq!(ClaimStrategy::for_version("11.4.2-MariaDB"), SkipLocked);
        assert_eq!(ClaimStrategy::for_version("8.0.36"), SkipLocked);
        assert_eq!(ClaimStrategy::for_version("5.7.44-log"), UpdateLimit);
        assert_eq!(ClaimStrategy::for_version("garbage"), UpdateLimit);
    }

    #[test]
    fn backoff_grows_and_caps() {
        let min = Duration::from_secs(10);
        let max = Duration::from_secs(3600);
        let b0 = backoff(0, min, max);
        assert!(b0 >= min && b0 <= min.mul_f64(1.1));
        let b3 = backoff(3, min, max);
        assert!(b3 >= Duration::from_secs(80) && b3 <= Duration::from_secs(89));
        assert_eq!(backoff(30, min, max), max);
        assert_eq!(backoff(u32::MAX, min, max), max);
    }
}
