//! The end of an attempt: success (the row goes, the record comes, in one
//! transaction), failure with its next attempt, or a row dropped because
//! Piwigo no longer has its photo. Every write checks the claim token.

use super::item::Item;
use super::status::{Failure, Retry, Status};
use super::uploaded::{count_outcome, dequeue, insert_record};
use super::{
    Backoff, Claimed, Queue, Record, UNTIL_CHANGED, formats, micros_from_now, retrying, versions,
};
use crate::db::DbError;

impl Queue {
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
            Retry::Backoff => micros_from_now(super::backoff(c.attempts, backoff.min, backoff.max)),
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
        let dequeued = dequeue(&mut tx, &self.t, c)
            .await
            .map_err(err("record success: dequeue"))?;
        if !dequeued {
            tx.rollback()
                .await
                .map_err(err("record success: rollback"))?;
            return Ok(false);
        }
        // Photos with the same bytes or key settle now, not after a wait.
        self.wake_waiters(&mut tx, c.image_id, &Status::WAITING)
            .await?;
        match &c.item {
            _ if c.new_version => {
                versions::supersede(&mut tx, &self.t, c, r).await?;
            }
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
        let inserted = insert_record(tx, &self.t, c.image_id, r).await;
        match inserted {
            Ok(_) => count_outcome(tx, &self.t, r.outcome).await?,
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
}
