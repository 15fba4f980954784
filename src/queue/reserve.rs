//! Reservations: the md5 and the object key of an item, each held by one
//! row at a time through a unique key, across every daemon sharing the
//! queue; a row that cannot reserve waits for the holder.

use std::time::Duration;

use sqlx::Row;

use super::status::Status;
use super::{Claimed, Existing, Outcome, Queue, Reservation, retrying};
use crate::db::DbError;

impl Queue {
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

    /// Reserves `md5` and the object key (`key_md5`, see
    /// [`Queue::reserve_key`]) in one statement: the common case, where
    /// neither is held, then costs one commit instead of two. `false`
    /// when either is held, and nothing was written (a statement that
    /// fails a unique index changes no column): the caller then reserves
    /// them one at a time, which says which one and by whom.
    pub async fn reserve_md5_and_key(
        &self,
        c: &Claimed,
        md5: &str,
        key_md5: &str,
    ) -> Result<bool, DbError> {
        retrying(|| self.reserve_md5_and_key_once(c, md5, key_md5)).await
    }

    async fn reserve_md5_and_key_once(
        &self,
        c: &Claimed,
        md5: &str,
        key_md5: &str,
    ) -> Result<bool, DbError> {
        let result = self
            .set_on_claimed(
                c,
                "md5 = ?, key_md5 = ?, sent_key_md5 = ?",
                &[md5, key_md5, key_md5],
            )
            .await;
        written(result, "reserve md5 and key")
    }

    /// Reserves `md5` for this row; the unique index makes exactly one of
    /// several photos with the same bytes the one that uploads.
    pub async fn reserve_md5(&self, c: &Claimed, md5: &str) -> Result<Reservation, DbError> {
        retrying(|| self.reserve_md5_once(c, md5)).await
    }

    async fn reserve_md5_once(&self, c: &Claimed, md5: &str) -> Result<Reservation, DbError> {
        let q = &self.t.queue;
        let result = self.set_on_claimed(c, "md5 = ?", &[md5]).await;
        if written(result, "reserve md5")? {
            return Ok(Reservation::Ours);
        }
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
        let result = self
            .set_on_claimed(c, "key_md5 = ?, sent_key_md5 = ?", &[key_md5, key_md5])
            .await;
        if written(result, "reserve key")? {
            return Ok(Reservation::Ours);
        }
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
            // Held by a row nobody works on (its daemon died): take the
            // key over.
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
}

impl Queue {
    /// The reserving UPDATE: `set` (`column = ?, ...`, bound to `values`
    /// in order) on this row, only while the claim is ours.
    async fn set_on_claimed(
        &self,
        c: &Claimed,
        set: &str,
        values: &[&str],
    ) -> Result<sqlx::mysql::MySqlQueryResult, sqlx::Error> {
        let sql = format!(
            "UPDATE {} SET {set} WHERE id = ? AND claimed_by = ?",
            self.t.queue
        );
        let mut query = sqlx::query(&sql);
        for value in values {
            query = query.bind(*value);
        }
        query.bind(c.id).bind(&c.token).execute(&self.pool).await
    }
}

/// Whether a reserving UPDATE was written: `false` when a unique index
/// refused it (another row holds what it reserves; nothing was written),
/// an error for anything else.
fn written(
    result: Result<sqlx::mysql::MySqlQueryResult, sqlx::Error>,
    verb: &'static str,
) -> Result<bool, DbError> {
    match result {
        Ok(_) => Ok(true),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
        Err(source) => Err(DbError::Query { verb, source }),
    }
}
