//! The state table (`<prefix>s3upload_state`): named values the daemon
//! keeps between runs: the monitor's watermark and tag, the change check's
//! watermark and cursor, the deletions guard's memory and hold, the last
//! `verify` and snapshot results. One reader and one writer for all.

use sqlx::MySqlPool;

use crate::db::{DbError, Tables};

/// The value named `name`, if one was stored.
pub async fn get(pool: &MySqlPool, t: &Tables, name: &str) -> Result<Option<String>, DbError> {
    sqlx::query_scalar(&format!("SELECT value FROM {} WHERE name = ?", t.state))
        .bind(name)
        .fetch_optional(pool)
        .await
        .map_err(DbError::query("read the daemon's state"))
}

/// Stores `value` under `name`, replacing what was there.
pub async fn set(pool: &MySqlPool, t: &Tables, name: &str, value: &str) -> Result<(), DbError> {
    set_many(pool, t, &[(name, value.to_owned())]).await
}

/// Stores several values in one statement: a result read back never mixes
/// two runs.
pub async fn set_many(
    pool: &MySqlPool,
    t: &Tables,
    values: &[(&str, String)],
) -> Result<(), DbError> {
    let mut qb = sqlx::QueryBuilder::new(format!("INSERT INTO {} (name, value) ", t.state));
    qb.push_values(values, |mut b, (name, v)| {
        b.push_bind(*name).push_bind(v);
    });
    qb.push(" ON DUPLICATE KEY UPDATE value = VALUES(value), updated_at = NOW(3)");
    qb.build()
        .execute(pool)
        .await
        .map_err(DbError::query("store the daemon's state"))?;
    Ok(())
}

/// Every value whose name starts with `prefix` (e.g. `verify_`).
pub async fn with_prefix(
    pool: &MySqlPool,
    t: &Tables,
    prefix: &str,
) -> Result<Vec<(String, String)>, DbError> {
    let pattern = format!("{}%", prefix.replace('\\', "\\\\").replace('_', "\\_"));
    sqlx::query_as(&format!(
        "SELECT name, value FROM {} WHERE name LIKE ?",
        t.state
    ))
    .bind(pattern)
    .fetch_all(pool)
    .await
    .map_err(DbError::query("read the daemon's state"))
}
