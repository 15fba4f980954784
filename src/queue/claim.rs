//! Claims: due rows taken with a lease in a short transaction (expired
//! leases of crashed workers included), the lease renewed while an item
//! is worked on, handed back on shutdown, and the claims alive now.

use std::time::Duration;

use sqlx::Row;

use super::item::{self, Item};
use super::{ClaimStrategy, Claimed, Queue};
use crate::db::DbError;

/// An item some daemon works on right now.
#[derive(Debug, Clone)]
pub struct LiveClaim {
    pub image_id: u32,
    pub image: crate::piwigo::Image,
    pub item: Item,
    /// A new version: its key is known only once the file is hashed.
    pub new_version: bool,
}

impl Queue {
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
        let (format_present, filesize) = if self.formats {
            let format = |column: &str| {
                format!(
                    "(SELECT pf.{column} FROM {} pf WHERE q.kind IN ('format', 'format_version') \
                     AND pf.format_id = q.kind_id)",
                    self.t.image_format
                )
            };
            (
                format("format_id"),
                format!("IF(q.kind_id = 0, i.filesize, {})", format("filesize")),
            )
        } else {
            ("q.kind_id".into(), "i.filesize".into())
        };
        let rows = sqlx::query(&format!(
            "SELECT q.id, q.image_id, q.kind, q.kind_id, q.ext, q.attempts, q.sent_key_md5, \
             i.id AS present, {format_present} AS format_present, i.file, i.path, \
             CAST({filesize} AS UNSIGNED) AS piwigo_filesize, \
             CAST(i.lastmodified AS DATETIME) AS lastmodified \
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
                let (item, new_version) =
                    Item::from_columns(&kind, r.try_get("kind_id")?, r.try_get("ext")?)
                        .ok_or_else(|| {
                            sqlx::Error::Decode(format!("unknown kind {kind:?}").into())
                        })?;
                let filesize: Option<u64> = r.try_get("piwigo_filesize")?;
                let piwigo = super::PiwigoSeen {
                    filesize: filesize.and_then(|f| u32::try_from(f).ok()),
                    lastmodified: r.try_get("lastmodified")?,
                };
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
                    new_version,
                    piwigo,
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

    /// The items claimed right now, by any daemon, with their photo's
    /// row: their multipart uploads are alive however old they are.
    pub async fn live_claims(&self) -> Result<Vec<LiveClaim>, DbError> {
        let err = DbError::query("list live claims");
        sqlx::query(&format!(
            "SELECT q.image_id, i.file, i.path, q.kind, q.kind_id, q.ext FROM {} q \
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
            let (item, new_version) =
                Item::from_columns(&kind, r.try_get("kind_id")?, r.try_get("ext")?)
                    .ok_or_else(|| sqlx::Error::Decode(format!("unknown kind {kind:?}").into()))?;
            Ok(LiveClaim {
                image_id: r.try_get("image_id")?,
                image,
                item,
                new_version,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(DbError::query("list live claims"))
    }
}
