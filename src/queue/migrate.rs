//! The daemon's own tables, created by numbered migrations that are
//! tracked in a table of their own and safe to run again, from several
//! daemons at once.

use sqlx::{Executor, MySqlConnection, MySqlPool};

use super::schema::{self, Damage, TableDef, statements};
use crate::db::{self, DbError, Tables};

/// One numbered migration, as shipped in `migrations/`.
#[derive(Debug)]
pub struct Migration {
    pub version: u32,
    pub description: &'static str,
    /// The SQL with `{prefix}` standing for Piwigo's table prefix.
    pub sql: &'static str,
}

/// Every migration of this version, in order.
pub const MIGRATIONS: &[Migration] = &[
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
    Migration {
        version: 6,
        description: "one queue for photos and formats",
        sql: include_str!("../../migrations/0006_one_queue.sql"),
    },
    Migration {
        version: 7,
        description: "the daemon's view of S3 in its heartbeat",
        sql: include_str!("../../migrations/0007_heartbeat_s3.sql"),
    },
    Migration {
        version: 8,
        description: "record what the change check compares; the version history",
        sql: include_str!("../../migrations/0008_versions.sql"),
    },
    Migration {
        version: 9,
        description: "deleted photos, where they were, and objects removed",
        sql: include_str!("../../migrations/0009_deletions.sql"),
    },
    Migration {
        version: 10,
        description: "uploads at once in the heartbeat",
        sql: include_str!("../../migrations/0010_heartbeat_uploads_at_once.sql"),
    },
];

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
    locked(pool, t, async |conn| apply(conn, t, MIGRATIONS).await).await
}

/// Runs the migrations up to `version` only: the database as an earlier
/// release left it, for upgrade tests.
pub async fn run_through(
    pool: &MySqlPool,
    t: &Tables,
    version: u32,
) -> Result<usize, MigrateError> {
    let through = MIGRATIONS.partition_point(|m| m.version <= version);
    locked(pool, t, async |conn| {
        apply(conn, t, &MIGRATIONS[..through]).await
    })
    .await
}

/// The migrations this version ships that the database has not applied.
pub async fn pending(pool: &MySqlPool, t: &Tables) -> Result<Vec<&'static Migration>, DbError> {
    let applied = applied_versions(pool, t).await?;
    Ok(MIGRATIONS
        .iter()
        .filter(|m| !applied.contains(&m.version))
        .collect())
}

/// Runs `f` holding the migration lock, so daemons starting together (or a
/// `repair` beside a starting daemon) do not interleave their DDL.
async fn locked<T>(
    pool: &MySqlPool,
    t: &Tables,
    f: impl AsyncFnOnce(&mut MySqlConnection) -> Result<T, MigrateError>,
) -> Result<T, MigrateError> {
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
    let result = f(&mut conn).await;
    // The lock also goes with the session; releasing early lets others on.
    sqlx::query("SELECT RELEASE_LOCK(?)")
        .bind(&lock_name)
        .execute(&mut *conn)
        .await
        .map_err(DbError::query("migrate: release the lock"))?;
    result
}

/// Adds, from their definitions, columns that re-running the migrations
/// did not bring back (a column dropped from a table that still exists).
async fn add_missing_columns(
    conn: &mut MySqlConnection,
    pool: &MySqlPool,
    t: &Tables,
    expected: &[TableDef],
) -> Result<(), MigrateError> {
    for damage in schema::damage(pool, t, expected).await? {
        let Damage::MissingColumns { table, columns } = damage else {
            continue;
        };
        let Some(def) = expected
            .iter()
            .find(|d| format!("{}{}", t.prefix, d.name).eq_ignore_ascii_case(&table))
        else {
            continue;
        };
        for column in columns {
            let Some((_, definition)) = def.columns.iter().find(|(c, _)| *c == column) else {
                continue;
            };
            conn.execute(
                format!("ALTER TABLE `{table}` ADD COLUMN `{column}` {definition}").as_str(),
            )
            .await
            .map_err(DbError::query("repair: add a missing column"))?;
            tracing::info!(table = %table, column = %column, "repair: column added");
        }
    }
    Ok(())
}

/// The versions recorded as applied; none when the record table itself is
/// missing (a new install, or the record dropped: `run` re-applies all).
async fn applied_versions(pool: &MySqlPool, t: &Tables) -> Result<Vec<u32>, DbError> {
    let exists: Option<String> = sqlx::query_scalar(
        "SELECT CAST(table_name AS CHAR) FROM information_schema.tables \
         WHERE table_schema = DATABASE() AND table_name = ?",
    )
    .bind(format!("{}s3upload_migrations", t.prefix))
    .fetch_optional(pool)
    .await
    .map_err(DbError::query("migrate: look for the migrations table"))?;
    if exists.is_none() {
        return Ok(Vec::new());
    }
    sqlx::query_scalar(&format!("SELECT version FROM {}", t.migrations))
        .fetch_all(pool)
        .await
        .map_err(DbError::query("migrate: list applied migrations"))
}

/// The daemon's tables as the applied migrations define them.
pub async fn expected_schema(pool: &MySqlPool, t: &Tables) -> Result<Vec<TableDef>, DbError> {
    let applied = applied_versions(pool, t).await?;
    Ok(schema::expected(
        MIGRATIONS
            .iter()
            .filter(|m| applied.contains(&m.version))
            .map(|m| m.sql),
    ))
}

/// What the applied migrations created and the database no longer holds.
pub async fn check(pool: &MySqlPool, t: &Tables) -> Result<Vec<Damage>, DbError> {
    let expected = expected_schema(pool, t).await?;
    schema::damage(pool, t, &expected).await
}

/// What `repair` found and what is still missing after it.
#[derive(Debug)]
pub struct Repaired {
    pub found: Vec<Damage>,
    pub left: Vec<Damage>,
}

/// Server errors that mean a statement's work is already done when a
/// migration runs again: duplicate column, duplicate key, nothing to drop.
const ALREADY_DONE: [u16; 3] = [1060, 1061, 1091];

/// Re-creates missing tables and columns: every migration runs again (each
/// statement is idempotent and none drops or deletes rows), then columns
/// still missing are added from their definitions. Rows already in the
/// tables, upload records above all, are left as they are.
pub async fn repair(pool: &MySqlPool, t: &Tables) -> Result<Repaired, MigrateError> {
    let found = check(pool, t).await?;
    if found.is_empty() {
        // Still bring a new install or a dropped record table up to date.
        run(pool, t).await?;
        return Ok(Repaired {
            found,
            left: Vec::new(),
        });
    }
    let applied = applied_versions(pool, t).await?;
    let expected = expected_schema(pool, t).await?;
    locked(pool, t, async |conn| {
        for m in MIGRATIONS.iter().filter(|m| applied.contains(&m.version)) {
            let sql = m.sql.replace("{prefix}", &t.prefix);
            for statement in statements(&sql) {
                match conn.execute(statement).await {
                    Ok(_) => {}
                    Err(e) if db::server_error(&e).is_some_and(|n| ALREADY_DONE.contains(&n)) => {}
                    Err(e) => return Err(DbError::query("repair: re-run a migration")(e).into()),
                }
            }
            tracing::info!(migration.version = m.version, "repair: migration re-run");
        }
        apply(conn, t, MIGRATIONS).await?;
        add_missing_columns(conn, pool, t, &expected).await
    })
    .await?;
    let left = schema::damage(pool, t, &expected).await?;
    Ok(Repaired { found, left })
}

async fn apply(
    conn: &mut MySqlConnection,
    t: &Tables,
    migrations: &[Migration],
) -> Result<usize, MigrateError> {
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
    for m in migrations {
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
                // A statement that ran before a crash, met again.
                Err(e) if db::server_error(&e).is_some_and(|n| ALREADY_DONE.contains(&n)) => {}
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_migrations_define_the_daemons_tables() {
        let tables = schema::expected(MIGRATIONS.iter().map(|m| m.sql));
        let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
        for table in [
            "s3upload_queue",
            "s3upload_uploaded",
            "s3upload_state",
            "s3upload_counts",
        ] {
            assert!(names.contains(&table), "{names:?}");
        }
        let uploaded = tables
            .iter()
            .find(|t| t.name == "s3upload_uploaded")
            .unwrap();
        assert!(
            uploaded
                .columns
                .iter()
                .any(|(c, d)| c == "md5" && d.starts_with("CHAR(32)"))
        );
    }

    #[test]
    fn splits_the_shipped_migrations() {
        let n: usize = MIGRATIONS.iter().map(|m| statements(m.sql).count()).sum();
        assert_eq!(n, 45);
        for m in MIGRATIONS {
            for s in statements(m.sql) {
                // Safe to run again after a crash half-way.
                assert!(
                    s.contains("CREATE TABLE IF NOT EXISTS")
                        || s.contains("INSERT IGNORE")
                        || s.contains(" ADD ")
                        || s.contains(" MODIFY ")
                        || s.contains(" DROP INDEX ")
                        // Only rows copied into the queue by the line before.
                        || s.starts_with("DELETE f FROM") && s.contains("JOIN"),
                    "{s}"
                );
            }
        }
    }
}
