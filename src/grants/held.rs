//! What the connected user holds, read from information_schema (which
//! shows a user its own grants, those of its current role and PUBLIC's),
//! so a missing privilege is found before a statement fails on it.

use std::collections::{HashMap, HashSet};

use sqlx::MySqlPool;

use super::{Object, Privilege};
use crate::db::DbError;

/// The connected account and its privileges, global, on the current
/// database (grants on `db.*` and on patterns that match it) and per table.
#[derive(Debug, Default)]
pub struct Held {
    /// `'user'@'host'` as GRANT statements name it.
    pub account: String,
    /// The current database.
    pub database: String,
    global: HashSet<String>,
    database_wide: HashSet<String>,
    tables: HashMap<String, HashSet<String>>,
}

/// A user or host quoted for a GRANT statement.
pub(super) fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

impl Held {
    pub async fn read(pool: &MySqlPool) -> Result<Self, DbError> {
        let err = DbError::query;
        let (user, database): (String, Option<String>) =
            sqlx::query_as("SELECT CAST(CURRENT_USER() AS CHAR), CAST(DATABASE() AS CHAR)")
                .fetch_one(pool)
                .await
                .map_err(err("grants: who am I"))?;
        // Servers without roles (MySQL 5.7, MariaDB before 10.0.5) have no
        // CURRENT_ROLE(): no role then.
        let role: Option<String> = sqlx::query_scalar("SELECT CAST(CURRENT_ROLE() AS CHAR)")
            .fetch_one(pool)
            .await
            .unwrap_or(None);
        // CURRENT_USER() is user@host; the user part may itself hold an @.
        let (name, host) = user.rsplit_once('@').unwrap_or((&user, "%"));
        let account = format!("{}@{}", quote(name), quote(host));
        let mut grantees = vec![account.clone(), "PUBLIC".to_owned()];
        if let Some(role) = role.filter(|r| !r.is_empty()) {
            grantees.push(quote(&role));
        }
        let list = vec!["?"; grantees.len()].join(", ");

        let rows = |sql: String| {
            let grantees = grantees.clone();
            async move {
                let mut q = sqlx::query_as::<_, (String, String)>(&sql);
                for g in &grantees {
                    q = q.bind(g);
                }
                q.fetch_all(pool).await
            }
        };
        let global = rows(format!(
            "SELECT '', CAST(PRIVILEGE_TYPE AS CHAR) FROM information_schema.USER_PRIVILEGES \
             WHERE GRANTEE IN ({list})"
        ))
        .await
        .map_err(err("grants: read global privileges"))?;
        // A database grant may name a pattern (`piwigo\_%`): LIKE matches
        // it the way the server does.
        let database_wide = rows(format!(
            "SELECT '', CAST(PRIVILEGE_TYPE AS CHAR) FROM information_schema.SCHEMA_PRIVILEGES \
             WHERE GRANTEE IN ({list}) AND DATABASE() LIKE TABLE_SCHEMA"
        ))
        .await
        .map_err(err("grants: read database privileges"))?;
        let tables = rows(format!(
            "SELECT CAST(TABLE_NAME AS CHAR), CAST(PRIVILEGE_TYPE AS CHAR) \
             FROM information_schema.TABLE_PRIVILEGES \
             WHERE GRANTEE IN ({list}) AND TABLE_SCHEMA = DATABASE()"
        ))
        .await
        .map_err(err("grants: read table privileges"))?;

        let mut held = Self {
            account,
            database: database.unwrap_or_default(),
            global: global.into_iter().map(|(_, p)| p).collect(),
            database_wide: database_wide.into_iter().map(|(_, p)| p).collect(),
            tables: HashMap::new(),
        };
        for (table, privilege) in tables {
            held.tables
                .entry(table.to_ascii_lowercase())
                .or_default()
                .insert(privilege);
        }
        Ok(held)
    }

    /// Whether `privilege` on `object` (a table named without `prefix`) is
    /// held at any level.
    pub fn has(&self, prefix: &str, object: &Object, privilege: Privilege) -> bool {
        let p = privilege.sql();
        if self.global.contains(p) || self.database_wide.contains(p) {
            return true;
        }
        match object {
            Object::Database => false,
            Object::Table(name) => self
                .tables
                .get(&format!("{prefix}{name}").to_ascii_lowercase())
                .is_some_and(|set| set.contains(p)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_grant_covers_that_table_only() {
        let mut held = Held::default();
        held.tables
            .entry("pwg_s3upload_queue".into())
            .or_default()
            .insert("INSERT".into());
        let queue = Object::Table("s3upload_queue".into());
        assert!(held.has("pwg_", &queue, Privilege::Insert));
        assert!(!held.has("pwg_", &queue, Privilege::Delete));
        assert!(!held.has("pwg_", &Object::Table("images".into()), Privilege::Insert));
        assert!(!held.has("pwg_", &Object::Database, Privilege::Insert));
        held.database_wide.insert("SELECT".into());
        assert!(held.has("pwg_", &Object::Table("images".into()), Privilege::Select));
        assert!(held.has("pwg_", &Object::Database, Privilege::Select));
    }

    #[test]
    fn quotes_like_the_server() {
        assert_eq!(quote("it's"), "'it''s'");
    }
}
