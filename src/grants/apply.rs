//! `init --admin-database-url`: the daemon's database user made and granted
//! once, through a database administrator's connection, with exactly the
//! statements `grants` prints for the config being written. The
//! administrator's URL is used for this alone and never written anywhere.

use percent_encoding::percent_decode_str;
use sqlx::{Executor, MySqlPool};

use super::held::quote;
use super::{GrantsError, Uses, current};
use crate::config::Config;
use crate::db::DbError;

/// What was done, for init to say.
#[derive(Debug)]
pub struct Applied {
    /// `'user'@'host'`.
    pub account: String,
    pub statements: usize,
}

fn decoded(text: &str) -> String {
    percent_decode_str(text).decode_utf8_lossy().into_owned()
}

/// Creates `piwigo.database_url`'s user when it does not exist (with the
/// URL's password) and grants it what `config` needs. `host` is the host
/// the database server sees the daemon connect from; by default the one it
/// sees this connection come from when both connect to the same server
/// address, else the daemon URL's own host.
pub async fn apply(
    admin_url: &str,
    config: &Config,
    host: Option<&str>,
) -> Result<Applied, GrantsError> {
    let daemon = url::Url::parse(config.database_url())
        .map_err(|e| GrantsError::Usage(format!("piwigo.database_url is not a URL ({e})")))?;
    let admin = url::Url::parse(admin_url).map_err(|e| {
        GrantsError::Usage(format!(
            "--admin-database-url is not a URL ({e}); write it like mysql://root@localhost/?socket=/run/mysqld/mysqld.sock"
        ))
    })?;
    let user = decoded(daemon.username());
    if user.is_empty() {
        return Err(GrantsError::Usage(
            "piwigo.database_url names no user to create; write mysql://USER@HOST:3306/DATABASE"
                .into(),
        ));
    }
    let database = decoded(daemon.path().trim_start_matches('/'));
    if database.is_empty() {
        return Err(GrantsError::Usage(
            "piwigo.database_url names no database; write mysql://USER@HOST:3306/DATABASE".into(),
        ));
    }
    let pool = crate::db::connect(admin_url, 1).await?;
    let result = run(&pool, config, (&user, &database), &daemon, &admin, host).await;
    pool.close().await;
    result
}

async fn run(
    pool: &MySqlPool,
    config: &Config,
    (user, database): (&str, &str),
    daemon: &url::Url,
    admin: &url::Url,
    host: Option<&str>,
) -> Result<Applied, GrantsError> {
    let host = match host {
        Some(h) => h.to_owned(),
        None => {
            let seen: String = sqlx::query_scalar("SELECT CAST(USER() AS CHAR)")
                .fetch_one(pool)
                .await
                .map_err(DbError::query("grants: ask how the server sees this host"))?;
            let same_server = daemon.host_str() == admin.host_str()
                && daemon.port_or_known_default() == admin.port_or_known_default()
                && admin.query_pairs().all(|(k, _)| k != "socket");
            match (same_server, seen.rsplit_once('@')) {
                (true, Some((_, h))) => h.to_owned(),
                _ => daemon.host_str().unwrap_or("localhost").to_owned(),
            }
        }
    };
    let account = format!("{}@{}", quote(user), quote(&host));
    let create = match daemon.password() {
        Some(pw) => format!(
            "CREATE USER IF NOT EXISTS {account} IDENTIFIED BY {}",
            quote(&decoded(pw))
        ),
        None => format!("CREATE USER IF NOT EXISTS {account}"),
    };
    pool.execute(create.as_str())
        .await
        .map_err(DbError::query("grants: create the daemon's user"))?;
    let grants = current(Uses::of(config));
    for g in &grants {
        let statement = g.statement(database, &config.piwigo.table_prefix, &account);
        pool.execute(statement.as_str())
            .await
            .map_err(DbError::query("grants: grant the daemon's user"))?;
    }
    Ok(Applied {
        account,
        statements: grants.len(),
    })
}
