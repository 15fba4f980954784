//! The database connection and the prefixed table names.

use std::str::FromStr;
use std::time::Duration;

use sqlx::MySqlPool;
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(
        "database: cannot connect to {target}: {reason} (check piwigo.database_url, that the server runs and accepts TCP connections from this host)"
    )]
    Connect { target: String, reason: String },
    #[error("database: {verb}: {source}")]
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
            Self::Query { source, .. } => matches!(
                source,
                sqlx::Error::Io(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Tls(_)
                    | sqlx::Error::Protocol(_)
                    | sqlx::Error::WorkerCrashed
            ),
        }
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
    pub image_format: String,
    pub migrations: String,
    pub heartbeat: String,
    pub requests: String,
    pub request_images: String,
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
            image_format: t("image_format"),
            migrations: t("s3upload_migrations"),
            heartbeat: t("s3upload_heartbeat"),
            requests: t("s3upload_requests"),
            request_images: t("s3upload_request_images"),
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

pub async fn connect(url: &str, max_connections: u32) -> Result<MySqlPool, DbError> {
    let target = describe_url(url);
    let options = MySqlConnectOptions::from_str(url).map_err(|_| DbError::Connect {
        target: target.clone(),
        reason: "the URL is not a valid mysql:// URL".into(),
    })?;
    // Piwigo's tables are 3-byte utf8; utf8mb4 on our side of the wire
    // reads them fine and lets our own tables hold any file name.
    let options = options.charset("utf8mb4");
    MySqlPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(10))
        .idle_timeout(Duration::from_secs(300))
        .connect_with(options)
        .await
        .map_err(|e| DbError::Connect {
            target,
            reason: scrub_sqlx(&e),
        })
}

/// sqlx's connect errors come from the server or the socket and never carry
/// the URL, but be explicit about what is shown.
fn scrub_sqlx(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => db.message().to_owned(),
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::Tls(t) => format!("TLS: {t}"),
        sqlx::Error::PoolTimedOut => "timed out".into(),
        other => other.to_string(),
    }
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
