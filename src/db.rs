//! The database connection and the prefixed table names.

use std::str::FromStr;
use std::time::Duration;

use sqlx::MySqlPool;
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database: cannot connect to {target}: {reason}")]
    Connect { target: String, reason: String },
    #[error("database: {verb}: {}", cause(.source))]
    Query {
        verb: &'static str,
        source: sqlx::Error,
    },
}

impl DbError {
    /// For `map_err`: names what the daemon was doing when the query failed.
    pub fn query(verb: &'static str) -> impl FnOnce(sqlx::Error) -> DbError {
        move |source| DbError::Query { verb, source }
    }

    /// A deadlock (1213) or lock wait timeout (1205): the statement lost a
    /// race for a row lock and may simply run again.
    pub fn is_lock_conflict(&self) -> bool {
        match self {
            Self::Query {
                source: sqlx::Error::Database(e),
                ..
            } => e
                .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                .is_some_and(|e| matches!(e.number(), 1205 | 1213)),
            _ => false,
        }
    }

    /// Whether the failure is the server going away rather than the SQL
    /// being wrong; callers back off and try again on these.
    pub fn is_connection(&self) -> bool {
        match self {
            Self::Connect { .. } => true,
            Self::Query { source, .. } => match source {
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_)
                | sqlx::Error::WorkerCrashed => true,
                sqlx::Error::Database(_) => matches!(
                    server_error(source),
                    Some(
                        TOO_MANY_CONNECTIONS
                            | TOO_MANY_USER_CONNECTIONS
                            | USER_LIMIT_REACHED
                            | SERVER_SHUTDOWN
                            | CONNECTION_KILLED
                    )
                ),
                _ => false,
            },
        }
    }
}

// MySQL/MariaDB server error numbers the daemon explains.
const TOO_MANY_CONNECTIONS: u16 = 1040;
const DB_ACCESS_DENIED: u16 = 1044;
const ACCESS_DENIED: u16 = 1045;
const UNKNOWN_DATABASE: u16 = 1049;
const SERVER_SHUTDOWN: u16 = 1053;
const UNKNOWN_COLUMN: u16 = 1054;
const TABLE_COMMAND_DENIED: u16 = 1142;
const COLUMN_COMMAND_DENIED: u16 = 1143;
const NO_SUCH_TABLE: u16 = 1146;
const TOO_MANY_USER_CONNECTIONS: u16 = 1203;
const USER_LIMIT_REACHED: u16 = 1226;
const CONNECTION_KILLED: u16 = 1927;

/// The MySQL/MariaDB error number of a server error.
pub fn server_error(e: &sqlx::Error) -> Option<u16> {
    match e {
        sqlx::Error::Database(db) => db
            .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
            .map(|m| m.number()),
        _ => None,
    }
}

/// Whether the server says the table does not exist (yet).
pub fn is_missing_table(e: &sqlx::Error) -> bool {
    server_error(e) == Some(NO_SUCH_TABLE)
}

/// The real cause of a database error and what to do about it: a missing
/// table, a missing privilege or a full server are not "unreachable", and a
/// refused port is not a timeout. Server messages and socket errors never
/// carry the URL's password.
pub fn cause(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => {
            let msg = db.message();
            match server_error(e) {
                Some(TOO_MANY_CONNECTIONS | TOO_MANY_USER_CONNECTIONS | USER_LIMIT_REACHED) => format!(
                    "too many connections: {msg} (raise max_connections or the user's max_user_connections on the server, or stop other clients)"
                ),
                Some(ACCESS_DENIED) => format!(
                    "access denied: {msg} (check the user and password in piwigo.database_url)"
                ),
                Some(DB_ACCESS_DENIED) => format!(
                    "access denied: {msg} (run `piwigo-s3upload check`: it names each missing privilege with the GRANT that adds it)"
                ),
                Some(UNKNOWN_DATABASE) => format!(
                    "no such database: {msg} (check the database name in piwigo.database_url; it is $conf['db_base'] in Piwigo's local/config/database.inc.php)"
                ),
                Some(TABLE_COMMAND_DENIED | COLUMN_COMMAND_DENIED) => format!(
                    "command denied: {msg} (run `piwigo-s3upload check`: it names each missing privilege with the GRANT that adds it)"
                ),
                Some(NO_SUCH_TABLE) => format!(
                    "table doesn't exist: {msg} (run `piwigo-s3upload check`: it says which table is missing and how to repair it)"
                ),
                Some(UNKNOWN_COLUMN) => format!(
                    "unknown column: {msg} (a table was altered by hand; run `piwigo-s3upload check`)"
                ),
                Some(n) => format!("server error {n}: {msg}"),
                None => msg.to_owned(),
            }
        }
        sqlx::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => {
                "connection refused: nothing listens at that host and port (start the database server, or fix the host and port in piwigo.database_url)".into()
            }
            std::io::ErrorKind::TimedOut => {
                "timed out: the host does not answer (a firewall dropping packets, or a wrong host in piwigo.database_url)".into()
            }
            _ => format!(
                "{io} (check piwigo.database_url, that the server runs and accepts TCP connections from this host)"
            ),
        },
        sqlx::Error::Tls(t) => format!("TLS: {t}"),
        sqlx::Error::PoolTimedOut => {
            "timed out waiting for a free connection: the server is slow or every connection is busy".into()
        }
        other => other.to_string(),
    }
}

/// Table names with Piwigo's prefix applied, quoted for SQL.
#[derive(Debug, Clone)]
pub struct Tables {
    pub prefix: String,
    pub images: String,
    pub tags: String,
    pub image_tag: String,
    pub caddie: String,
    pub categories: String,
    pub image_category: String,
    pub queue: String,
    pub uploaded: String,
    pub state: String,
    pub counts: String,
    pub formats: String,
    /// Superseded objects: the version history.
    pub versions: String,
    pub image_format: String,
    pub migrations: String,
    pub heartbeat: String,
    pub requests: String,
    pub request_images: String,
    /// Where each recorded photo was last seen (path, albums).
    pub places: String,
    /// Recorded photos deleted in Piwigo, and their removals.
    pub deleted: String,
    /// Objects taken out of the records by a removal.
    pub removed: String,
    /// The old S3Upload plugin's table, read by `import-s3upload`.
    pub old_plugin: String,
}

impl Tables {
    /// `prefix` was validated to `[A-Za-z0-9_$]{0,20}`, so quoting with
    /// backticks is enough to make the names safe in SQL text.
    pub fn new(prefix: &str) -> Self {
        let t = |name: &str| format!("`{prefix}{name}`");
        Self {
            prefix: prefix.to_owned(),
            images: t("images"),
            tags: t("tags"),
            image_tag: t("image_tag"),
            caddie: t("caddie"),
            categories: t("categories"),
            image_category: t("image_category"),
            queue: t("s3upload_queue"),
            uploaded: t("s3upload_uploaded"),
            state: t("s3upload_state"),
            counts: t("s3upload_counts"),
            formats: t("s3upload_formats"),
            versions: t("s3upload_versions"),
            image_format: t("image_format"),
            migrations: t("s3upload_migrations"),
            heartbeat: t("s3upload_heartbeat"),
            requests: t("s3upload_requests"),
            request_images: t("s3upload_request_images"),
            places: t("s3upload_places"),
            deleted: t("s3upload_deleted"),
            removed: t("s3upload_removed"),
            old_plugin: t("s3upload"),
        }
    }
}

/// Host, port and database of a URL, without user or password: what error
/// messages may show.
pub fn describe_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!(
            "{}:{}{}",
            u.host_str().unwrap_or("?"),
            u.port().unwrap_or(3306),
            u.path()
        ),
        Err(_) => "the configured database".into(),
    }
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn connect(url: &str, max_connections: u32) -> Result<MySqlPool, DbError> {
    let target = describe_url(url);
    let options = MySqlConnectOptions::from_str(url).map_err(|_| DbError::Connect {
        target: target.clone(),
        reason: "the URL is not a valid mysql:// URL".into(),
    })?;
    // Piwigo's tables are 3-byte utf8; utf8mb4 on our side of the wire
    // reads them fine and lets our own tables hold any file name.
    let options = options.charset("utf8mb4");
    // One connection first: its error is the real cause. The pool retries
    // every failure until its own timeout and then says only "timed out".
    use sqlx::ConnectOptions;
    match tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await {
        Err(_) => {
            return Err(DbError::Connect {
                target,
                reason: format!(
                    "no answer within {}s (a firewall dropping packets, or a wrong host in piwigo.database_url)",
                    CONNECT_TIMEOUT.as_secs()
                ),
            });
        }
        Ok(Err(e)) => {
            return Err(DbError::Connect {
                target,
                reason: cause(&e),
            });
        }
        Ok(Ok(conn)) => {
            use sqlx::Connection;
            // Only the probe goes; a failed goodbye changes nothing.
            if let Err(e) = conn.close().await {
                tracing::debug!(error = %e, "database: closing the first connection");
            }
        }
    }
    MySqlPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(0)
        .acquire_timeout(CONNECT_TIMEOUT)
        .idle_timeout(Duration::from_secs(300))
        .connect_with(options)
        .await
        .map_err(|e| DbError::Connect {
            target,
            reason: cause(&e),
        })
}

/// A round trip to the server, for `/readyz`.
pub async fn ping(pool: &MySqlPool) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar::<_, i32>("SELECT 1")
        .fetch_one(pool)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_prefixed_and_quoted() {
        let t = Tables::new("pwg_");
        assert_eq!(t.images, "`pwg_images`");
        assert_eq!(t.queue, "`pwg_s3upload_queue`");
    }

    #[test]
    fn described_url_hides_credentials() {
        let d = describe_url("mysql://user:pa55word@db.example:3307/gallery");
        assert_eq!(d, "db.example:3307/gallery");
        assert_eq!(describe_url("nonsense"), "the configured database");
    }
}
