//! The daemon's own tables, created by numbered migrations that are
//! tracked in a table of their own and safe to run again, from several
//! daemons at once.

use sqlx::{Executor, MySqlPool};

use crate::db::{DbError, Tables};

struct Migration {
    version: u32,
    description: &'static str,
    sql: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "create queue, uploaded and state tables",
        sql: include_str!("../../migrations/0001_create_tables.sql"),
    },
    Migration {
        version: 2,
        description: "keep counts of recorded outcomes",
        sql: include_str!("../../migrations/0002_outcome_counts.sql"),
    },
    Migration {
        version: 3,
        description: "heartbeat and requests for the companion plugin",
        sql: include_str!("../../migrations/0003_companion.sql"),
    },
    Migration {
        version: 4,
        description: "reserve object keys; url fits any key",
        sql: include_str!("../../migrations/0004_key_reservations.sql"),
    },
    Migration {
        version: 5,
        description: "queue and record Piwigo's formats",
        sql: include_str!("../../migrations/0005_formats.sql"),
    },
];

/// MySQL's "duplicate column name" and "duplicate key name": an `ALTER
/// TABLE ... ADD` that ran before a crash, met again on the re-run.
const ALREADY_ADDED: [u16; 2] = [1060, 1061];

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(
        "database: migration {version} was changed after it was applied (recorded checksum {recorded}, now {current}); restore the original migrations/ files"
    )]
    Modified {
        version: u32,
        recorded: String,
        current: String,
    },
    #[error("database: another daemon held the migration lock for 60s; is one stuck?")]
    LockTimeout,
}

/// Runs every migration not yet applied. Returns how many ran.
pub async fn run(pool: &MySqlPool, t: &Tables) -> Result<usize, MigrateError> {
    // One connection for the whole run: GET_LOCK belongs to a session.
    let mut conn = pool
        .acquire()
        .await
        .map_err(DbError::query("migrate: get a connection"))?;
    let lock_name = format!("{}s3upload_migrate", t.prefix);
    let got: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(?, 60)")
        .bind(&lock_name)
        .fetch_one(&mut *conn)
        .await
        .map_err(DbError::query("migrate: take the lock"))?;
    if got != Some(1) {
        return Err(MigrateError::LockTimeout);
    }
    let result = apply(&mut conn, t).await;
    // The lock also goes with the session; releasing early lets others on.
    sqlx::query("SELECT RELEASE_LOCK(?)")
        .bind(&lock_name)
        .execute(&mut *conn)
        .await
        .map_err(DbError::query("migrate: release the lock"))?;
    result
}

async fn apply(conn: &mut sqlx::MySqlConnection, t: &Tables) -> Result<usize, MigrateError> {
    let create = format!(
        "CREATE TABLE IF NOT EXISTS {} (
            version INT UNSIGNED NOT NULL PRIMARY KEY,
            description VARCHAR(255) NOT NULL,
            checksum CHAR(32) NOT NULL,
            applied_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        t.migrations
    );
    conn.execute(create.as_str())
        .await
        .map_err(DbError::query("migrate: create the migrations table"))?;
    let applied: Vec<(u32, String)> =
        sqlx::query_as(&format!("SELECT version, checksum FROM {}", t.migrations))
            .fetch_all(&mut *conn)
            .await
            .map_err(DbError::query("migrate: list applied migrations"))?;

    let mut ran = 0;
    for m in MIGRATIONS {
        let current = crate::digest::md5_hex(m.sql.as_bytes());
        if let Some((_, recorded)) = applied.iter().find(|(v, _)| *v == m.version) {
            if *recorded != current {
                return Err(MigrateError::Modified {
                    version: m.version,
                    recorded: recorded.clone(),
                    current,
                });
            }
            continue;
        }
        let sql = m.sql.replace("{prefix}", &t.prefix);
        // MySQL commits each DDL statement on its own; every statement is
        // written to be idempotent so a crash half-way can simply re-run.
        for statement in statements(&sql) {
            match conn.execute(statement).await {
                Ok(_) => {}
                Err(sqlx::Error::Database(e))
                    if e.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                        .is_some_and(|e| ALREADY_ADDED.contains(&e.number())) => {}
                Err(e) => {
                    return Err(DbError::Query {
                        verb: "migrate: apply a migration",
                        source: e,
                    }
                    .into());
                }
            }
        }
        sqlx::query(&format!(
            "INSERT INTO {} (version, description, checksum) VALUES (?, ?, ?)",
            t.migrations
        ))
        .bind(m.version)
        .bind(m.description)
        .bind(&current)
        .execute(&mut *conn)
        .await
        .map_err(DbError::query("migrate: record a migration"))?;
        tracing::info!(
            migration.version = m.version,
            migration.description = m.description,
            "applied migration"
        );
        ran += 1;
    }
    Ok(ran)
}

/// Splits a migration file into statements: our files end every statement
/// with `;` at the end of a line and use no `;` elsewhere.
fn statements(sql: &str) -> impl Iterator<Item = &str> {
    sql.split(";\n")
        .map(|s| s.trim().trim_end_matches(';').trim())
        .filter(|s| {
            s.lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with("--"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_the_shipped_migrations() {
        let n: usize = MIGRATIONS.iter().map(|m| statements(m.sql).count()).sum();
        assert_eq!(n, 14);
        for m in MIGRATIONS {
            for s in statements(m.sql) {
                // Safe to run again after a crash half-way.
                assert!(
                    s.contains("CREATE TABLE IF NOT EXISTS")
                        || s.contains("INSERT IGNORE")
                        || s.contains(" ADD ")
                        || s.contains(" MODIFY "),
                    "{s}"
                );
            }
        }
    }
}
