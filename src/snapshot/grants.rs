//! What a snapshot needs from the database user, and which of it is
//! missing: `check` names each one with the statement that grants it.

use sqlx::MySqlPool;

use crate::db::DbError;

/// Read-only: rows, one consistent view of MyISAM tables, and views'
/// definitions.
pub const REQUIRED: [&str; 3] = ["SELECT", "LOCK TABLES", "SHOW VIEW"];

/// The privileges of [`REQUIRED`] the connected user lacks on the current
/// database, with the statement that adds them.
pub async fn missing(pool: &MySqlPool) -> Result<Option<(Vec<&'static str>, String)>, DbError> {
    let (database, user): (Option<String>, String) =
        sqlx::query_as("SELECT DATABASE(), CAST(CURRENT_USER() AS CHAR)")
            .fetch_one(pool)
            .await
            .map_err(DbError::query("read the current user"))?;
    let database = database.unwrap_or_default();
    let lines: Vec<(String,)> = sqlx::query_as("SHOW GRANTS FOR CURRENT_USER()")
        .fetch_all(pool)
        .await
        .map_err(DbError::query("read the user's grants"))?;
    let lacking = lacking(lines.iter().map(|l| l.0.as_str()), &database);
    if lacking.is_empty() {
        return Ok(None);
    }
    let (name, host) = user.rsplit_once('@').unwrap_or((&user, "%"));
    let statement = format!(
        "GRANT {} ON `{}`.* TO '{name}'@'{host}';",
        lacking.join(", "),
        database.replace('`', "``")
    );
    Ok(Some((lacking, statement)))
}

/// The required privileges no grant line gives on `database`.
fn lacking<'a>(lines: impl Iterator<Item = &'a str>, database: &str) -> Vec<&'static str> {
    let mut have: Vec<String> = Vec::new();
    for line in lines {
        let Some(rest) = line.strip_prefix("GRANT ") else {
            continue;
        };
        let Some((privs, rest)) = rest.split_once(" ON ") else {
            continue;
        };
        let object = rest.split(" TO ").next().unwrap_or_default().trim();
        let Some(db) = object.strip_suffix(".*") else {
            continue;
        };
        let db = db.trim_matches('`').replace("\\_", "_").replace("\\%", "%");
        if db != "*" && !like(&db, database) {
            continue;
        }
        have.extend(privs.split(',').map(|p| p.trim().to_ascii_uppercase()));
    }
    if have.iter().any(|p| p.starts_with("ALL")) {
        return Vec::new();
    }
    REQUIRED
        .into_iter()
        .filter(|r| !have.iter().any(|h| h == r))
        .collect()
}

/// A grant's database name may hold `%` and `_` wildcards.
fn like(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'%'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some(a), Some(b)) if a == b => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    pattern == name || go(pattern.as_bytes(), name.as_bytes())
}

/// What `check` says about snapshots: the grants, the encryption and the
/// last result (`ok`, text), when `[snapshots]` is configured.
pub async fn findings(
    config: &crate::config::Config,
    pool: &MySqlPool,
    t: &crate::db::Tables,
) -> Vec<(bool, String)> {
    let Some(snap) = &config.snapshots else {
        return vec![(
            true,
            "off: add a [snapshots] section to back up the database and local/ too".into(),
        )];
    };
    let mut out = Vec::new();
    match missing(pool).await {
        Ok(None) => out.push((
            true,
            format!("the database user has {}", REQUIRED.join(", ")),
        )),
        Ok(Some((lacking, statement))) => out.push((
            false,
            format!(
                "the database user lacks {} for snapshots; as the database's root run: {statement}",
                lacking.join(", ")
            ),
        )),
        Err(e) => out.push((false, e.to_string())),
    }
    if snap.recipient.is_none() {
        out.push((
            true,
            "warning: snapshots go to the bucket unencrypted, with password hashes and e-mail addresses; set snapshots.recipient to an age public key (age-keygen)".into(),
        ));
    }
    match super::LastSnapshot::load(pool, t).await {
        Ok(Some(last)) => {
            let now = chrono::Utc::now().timestamp();
            match last.warning(snap.interval, now) {
                Some(w) => out.push((false, w)),
                None => out.push((true, last.to_text())),
            }
        }
        Ok(None) => out.push((true, "none taken yet".into())),
        Err(e) => out.push((false, e.to_string())),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_are_read_as_the_server_prints_them() {
        let all = ["GRANT ALL PRIVILEGES ON `piwigo`.* TO `u`@`%`"];
        assert!(lacking(all.into_iter(), "piwigo").is_empty());
        let some = [
            "GRANT USAGE ON *.* TO `u`@`%` IDENTIFIED BY PASSWORD '*X'",
            "GRANT SELECT, INSERT, UPDATE, DELETE ON `piwigo`.* TO `u`@`%`",
            "GRANT LOCK TABLES ON `other`.* TO `u`@`%`",
        ];
        assert_eq!(
            lacking(some.into_iter(), "piwigo"),
            ["LOCK TABLES", "SHOW VIEW"]
        );
        let wildcard = ["GRANT SELECT, LOCK TABLES, SHOW VIEW ON `piwigo\\_%`.* TO `u`@`%`"];
        assert!(lacking(wildcard.into_iter(), "piwigo_test").is_empty());
        assert!(!lacking(wildcard.into_iter(), "piwigoXtest").is_empty());
    }
}
