//! Rows made due again (by `retry`, a change of settings or of the photo
//! in Piwigo) and what is left to do.

use sqlx::MySqlPool;

use super::item;
use super::status::Status;
use super::{Queue, UNTIL_CHANGED};
use crate::db::{DbError, Tables};

impl Queue {
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
