//! What the connected user lacks: of this version's grants (for the
//! refusal before migrating, `check` and `grants --missing`), and of what
//! loading a snapshot needs.

use std::fmt;

use sqlx::MySqlPool;

use super::held::Held;
use super::{Grant, GrantsError, Object, Privilege, Uses, current, render};
use crate::db::{DbError, Tables};
use crate::queue::migrate;

/// The grants this version needs that the connected user lacks, and to
/// whom and where they go.
#[derive(Debug)]
pub struct Missing {
    pub account: String,
    pub database: String,
    pub prefix: String,
    pub grants: Vec<Grant>,
    /// Migrations not applied yet: an upgrade says which needs the grant.
    pub pending: Vec<u32>,
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.grants.len();
        let upgrade = if self.pending.is_empty() {
            String::new()
        } else {
            format!(
                " (migration{} {} of this version not applied yet)",
                if self.pending.len() == 1 { "" } else { "s" },
                self.pending
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        write!(
            f,
            "database: {} lacks {n} privilege{} this version needs{upgrade}; nothing was changed. As a database administrator (e.g. `sudo mysql`), run:",
            self.account,
            if n == 1 { "" } else { "s" },
        )?;
        for g in &self.grants {
            write!(
                f,
                "\n  {} -- {}",
                g.statement(&self.database, &self.prefix, &self.account),
                g.reasons.join("; ")
            )?;
        }
        write!(
            f,
            "\n`piwigo-s3upload grants` prints every statement this version needs"
        )
    }
}

/// What the connected user lacks of this version's grants for `uses`
/// (empty when it holds them all).
pub async fn missing(pool: &MySqlPool, t: &Tables, uses: Uses) -> Result<Missing, DbError> {
    let held = Held::read(pool).await?;
    let pending = migrate::pending(pool, t).await?;
    Ok(Missing {
        grants: current(uses)
            .into_iter()
            .filter(|g| !held.has(&t.prefix, &g.object, g.privilege))
            .collect(),
        account: held.account,
        database: held.database,
        prefix: t.prefix.clone(),
        pending: pending.iter().map(|m| m.version).collect(),
    })
}

/// What loading a snapshot into the connected user's database needs
/// (every table is dropped if it exists, created, filled and indexed).
pub const TO_LOAD_A_SNAPSHOT: [Privilege; 5] = [
    Privilege::Create,
    Privilege::Drop,
    Privilege::Alter,
    Privilege::Index,
    Privilege::Insert,
];

/// The privileges of [`TO_LOAD_A_SNAPSHOT`] the connected user lacks on
/// its database, with the one GRANT that adds them; `None` when it holds
/// them all.
pub async fn missing_to_load(pool: &MySqlPool) -> Result<Option<(String, String)>, DbError> {
    let held = Held::read(pool).await?;
    let lacking: Vec<Privilege> = TO_LOAD_A_SNAPSHOT
        .into_iter()
        .filter(|p| !held.has("", &Object::Database, *p))
        .collect();
    if lacking.is_empty() {
        return Ok(None);
    }
    let names: Vec<&str> = lacking.iter().map(|p| p.sql()).collect();
    Ok(Some((
        names.join(", "),
        render::grant(
            &held.database,
            "",
            &Object::Database,
            &lacking,
            &held.account,
        ),
    )))
}

/// Refuses, naming each missing privilege with its statement, when the
/// connected user lacks any: called before migrating, so nothing changes.
pub async fn require(pool: &MySqlPool, t: &Tables, uses: Uses) -> Result<usize, GrantsError> {
    let missing = missing(pool, t, uses).await?;
    if missing.grants.is_empty() {
        Ok(current(uses).len())
    } else {
        Err(GrantsError::Missing(missing))
    }
}
