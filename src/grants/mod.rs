//! The database privileges the daemon needs, as data: each requirement
//! names an object (one table, or the whole database), the privileges and
//! the reason. The daemon's own tables are derived from the migrations
//! (tables a pending migration will create included); everything else a
//! feature needs is one line of [`NEEDS`]. From the requirements come the
//! `grants` command's statements, `check`'s finding and the refusal of
//! `run` (and of every command that migrates) before anything changes;
//! `missing` holds what the connected user lacks and that refusal.

pub mod apply;
pub mod command;
mod held;
mod missing;
mod render;

use std::collections::BTreeMap;
use std::fmt;

use crate::db::DbError;
use crate::queue::migrate::{MIGRATIONS, Migration};

pub use held::Held;
pub use missing::{Missing, TO_LOAD_A_SNAPSHOT, missing, missing_to_load, require};

#[derive(Debug, thiserror::Error)]
pub enum GrantsError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("{0}")]
    Missing(Missing),
    #[error("grants: {0}")]
    Usage(String),
    #[error("grants: cannot read the password file {path}: {source}")]
    PasswordFile {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("grants: {0}")]
    Config(#[from] crate::config::ConfigError),
}

impl GrantsError {
    /// Missing privileges and usage mistakes cannot be fixed by trying
    /// again: exit 2, so systemd does not restart the daemon in a loop.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Db(_) | Self::PasswordFile { .. } => crate::exit::FAILURE,
            _ => crate::exit::CONFIG,
        }
    }
}

/// A privilege as MySQL and MariaDB spell it in GRANT and in
/// information_schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Privilege {
    Select,
    Insert,
    Update,
    Delete,
    Create,
    Alter,
    Index,
    LockTables,
    ShowView,
    /// Only loading a snapshot (`restore --gallery`, `--database-only`)
    /// needs it; the daemon never does.
    Drop,
}

impl Privilege {
    pub fn sql(self) -> &'static str {
        match self {
            Self::Select => "SELECT",
            Self::Insert => "INSERT",
            Self::Update => "UPDATE",
            Self::Delete => "DELETE",
            Self::Create => "CREATE",
            Self::Alter => "ALTER",
            Self::Index => "INDEX",
            Self::LockTables => "LOCK TABLES",
            Self::ShowView => "SHOW VIEW",
            Self::Drop => "DROP",
        }
    }
}

impl fmt::Display for Privilege {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.sql())
    }
}

/// What a privilege is granted on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Object {
    /// Every table of Piwigo's database (`db.*`): only ever read-only.
    Database,
    /// One table, by its name without Piwigo's prefix.
    Table(String),
}

impl Object {
    /// One of the daemon's own tables, which the migrations create.
    fn is_own(&self) -> bool {
        matches!(self, Self::Table(name) if name.starts_with("s3upload_"))
    }
}

/// Where a feature's need applies, in [`NEEDS`].
#[derive(Debug, Clone, Copy)]
enum On {
    Database,
    Table(&'static str),
}

/// A need of a feature beyond the daemon's own tables.
#[derive(Debug)]
struct Need {
    on: On,
    privileges: &'static [Privilege],
    reason: &'static str,
    /// Needed only when database snapshots are configured.
    snapshots_only: bool,
}

/// The features a config turns on that need privileges of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uses {
    /// A `[snapshots]` section: every table is read, and locked.
    pub snapshots: bool,
}

impl Uses {
    /// Everything: what `grants` prints before there is a config (`init`
    /// turns snapshots on by default).
    pub const ALL: Self = Self { snapshots: true };

    pub fn of(config: &crate::config::Config) -> Self {
        Self {
            snapshots: config.snapshots.is_some(),
        }
    }
}

use Privilege::*;

/// What features need on Piwigo's database, besides the daemon's own
/// tables. A feature that reads something more adds its line here; write
/// access to Piwigo's tables is never one of them.
const NEEDS: &[Need] = &[
    Need {
        on: On::Table("images"),
        privileges: &[Select],
        reason: "monitoring, enqueue and verify read Piwigo's photos",
        snapshots_only: false,
    },
    Need {
        on: On::Table("categories"),
        privileges: &[Select],
        reason: "enqueue --album and verify read Piwigo's albums",
        snapshots_only: false,
    },
    Need {
        on: On::Table("image_category"),
        privileges: &[Select],
        reason: "enqueue --album and verify read Piwigo's albums",
        snapshots_only: false,
    },
    Need {
        on: On::Table("tags"),
        privileges: &[Select],
        reason: "enqueue --tag and the monitored tag read Piwigo's tags",
        snapshots_only: false,
    },
    Need {
        on: On::Table("image_tag"),
        privileges: &[Select],
        reason: "enqueue --tag and the monitored tag read Piwigo's tags",
        snapshots_only: false,
    },
    Need {
        on: On::Table("caddie"),
        privileges: &[Select],
        reason: "enqueue --caddie reads the Batch Manager selection",
        snapshots_only: false,
    },
    Need {
        on: On::Table("image_format"),
        privileges: &[Select],
        reason: "formats (RAW, TIFF) are read from Piwigo's image_format",
        snapshots_only: false,
    },
    Need {
        on: On::Database,
        privileges: &[Select, LockTables, ShowView],
        reason: "for database snapshots: every table with the prefix is read under LOCK TABLES or in one consistent snapshot (read-only)",
        snapshots_only: true,
    },
];

/// Privileges on one object and why they are needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub object: Object,
    pub privileges: Vec<Privilege>,
    pub reason: String,
}

/// Every requirement of a daemon whose migrations are `migrations`, using
/// `uses`.
pub fn requirements(migrations: &[Migration], uses: Uses) -> Vec<Requirement> {
    let mut out = own_tables(migrations);
    let needed = NEEDS.iter().filter(|n| uses.snapshots || !n.snapshots_only);
    out.extend(needed.map(|n| Requirement {
        object: match n.on {
            On::Database => Object::Database,
            On::Table(name) => Object::Table(name.to_owned()),
        },
        privileges: n.privileges.to_vec(),
        reason: n.reason.to_owned(),
    }));
    out
}

/// The daemon's own tables, read from the migrations' statements: the
/// table that records them, each table a migration creates (and then reads
/// and writes), what a migration alters, indexes or copies.
fn own_tables(migrations: &[Migration]) -> Vec<Requirement> {
    let table = |name: &str, privileges: &[Privilege], reason: String| Requirement {
        object: Object::Table(name.to_owned()),
        privileges: privileges.to_vec(),
        reason,
    };
    let mut out = vec![table(
        "s3upload_migrations",
        &[Create, Select, Insert],
        "records which migrations ran".into(),
    )];
    let mut created = Vec::new();
    for m in migrations {
        let because = |what: &str| format!("migration {} {what} ({})", m.version, m.description);
        for statement in crate::queue::schema::statements(m.sql) {
            let code = code_of(statement);
            let upper = code.to_ascii_uppercase();
            let names = table_names(&code);
            let Some(first) = names.first() else {
                continue;
            };
            if upper.starts_with("CREATE TABLE") {
                out.push(table(first, &[Create], because("creates it")));
                if !created.contains(first) {
                    created.push(first.clone());
                }
            } else if upper.starts_with("ALTER TABLE") {
                out.push(table(first, &[Alter], because("alters it")));
            } else if upper.starts_with("CREATE INDEX") || upper.starts_with("CREATE UNIQUE INDEX")
            {
                out.push(table(first, &[Index], because("indexes it")));
            } else if upper.starts_with("INSERT") {
                out.push(table(first, &[Insert], because("fills it")));
            } else if upper.starts_with("DELETE") {
                out.push(table(first, &[Select, Delete], because("empties it")));
            }
            for other in names.iter().skip(1) {
                out.push(table(other, &[Select], because("reads it")));
            }
        }
    }
    for name in &created {
        out.push(table(
            name,
            &[Select, Insert, Update, Delete],
            "the daemon's own table: it reads and writes its rows".into(),
        ));
        out.push(table(
            name,
            &[Alter],
            "`repair` adds back a column dropped by hand".into(),
        ));
    }
    out
}

/// A statement without its comment lines.
fn code_of(statement: &str) -> String {
    statement
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_owned()
}

/// The unprefixed names of every `{prefix}name` in a statement, in order.
fn table_names(code: &str) -> Vec<String> {
    code.split("{prefix}")
        .skip(1)
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .filter(|n| !n.is_empty())
        .collect()
}

/// One privilege on one object, with every reason it is needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub object: Object,
    pub privilege: Privilege,
    pub reasons: Vec<String>,
}

impl Grant {
    /// The statement that adds exactly this privilege. The server refuses a
    /// GRANT on a table that does not exist yet (one a pending migration
    /// creates) unless it includes CREATE: on the daemon's own tables,
    /// where CREATE is needed anyway, the statement names it too, which
    /// changes nothing when it is already held.
    pub fn statement(&self, database: &str, prefix: &str, account: &str) -> String {
        let mut privileges = vec![self.privilege];
        if self.object.is_own() && self.privilege != Privilege::Create {
            privileges.push(Privilege::Create);
        }
        render::grant(database, prefix, &self.object, &privileges, account)
    }
}

/// The fewest grants that meet every requirement: a privilege needed on
/// the whole database makes the same privilege on its tables redundant.
pub fn plan(requirements: &[Requirement]) -> Vec<Grant> {
    let mut merged: BTreeMap<(Object, Privilege), Vec<String>> = BTreeMap::new();
    for r in requirements {
        for p in &r.privileges {
            let reasons = merged.entry((r.object.clone(), *p)).or_default();
            if !reasons.contains(&r.reason) {
                reasons.push(r.reason.clone());
            }
        }
    }
    let database_wide: Vec<Privilege> = merged
        .keys()
        .filter(|(o, _)| *o == Object::Database)
        .map(|(_, p)| *p)
        .collect();
    let mut grants: Vec<Grant> = Vec::new();
    for ((object, privilege), reasons) in merged {
        match object {
            Object::Table(name) if database_wide.contains(&privilege) => {
                // Say what the database-wide grant also serves.
                if let Some(wide) = grants
                    .iter_mut()
                    .find(|g| g.object == Object::Database && g.privilege == privilege)
                {
                    for r in reasons {
                        // One line per reason, naming every table it covers.
                        let open = format!("{r} (");
                        match wide.reasons.iter_mut().find(|w| w.starts_with(&open)) {
                            Some(w) => {
                                w.pop();
                                *w += &format!(", {name})");
                            }
                            None => wide.reasons.push(format!("{open}{name})")),
                        }
                    }
                }
            }
            object => grants.push(Grant {
                object,
                privilege,
                reasons,
            }),
        }
    }
    grants
}

/// The grants this version needs for the features in `uses`.
pub fn current(uses: Uses) -> Vec<Grant> {
    plan(&requirements(MIGRATIONS, uses))
}

/// The grants a daemon with the migrations up to `version` needed: what
/// an install of that release was given.
pub fn through(version: u32) -> Vec<Grant> {
    let n = MIGRATIONS.partition_point(|m| m.version <= version);
    plan(&requirements(&MIGRATIONS[..n], Uses::ALL))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::migrate;

    fn privileges_on(grants: &[Grant], table: &str) -> Vec<Privilege> {
        grants
            .iter()
            .filter(|g| g.object == Object::Table(table.into()))
            .map(|g| g.privilege)
            .collect()
    }

    #[test]
    fn every_table_the_migrations_create_is_granted() {
        let grants = current(Uses::ALL);
        for table in migrate::MIGRATIONS
            .iter()
            .flat_map(|m| crate::queue::schema::expected([m.sql]))
            .map(|t| t.name)
        {
            assert_eq!(
                privileges_on(&grants, &table),
                vec![Insert, Update, Delete, Create, Alter],
                "{table}"
            );
        }
        assert_eq!(
            privileges_on(&grants, "s3upload_migrations"),
            vec![Insert, Create]
        );
    }

    #[test]
    fn piwigos_tables_are_only_read() {
        for g in current(Uses::ALL) {
            match &g.object {
                Object::Database => assert!([Select, LockTables, ShowView].contains(&g.privilege)),
                Object::Table(name) => assert!(name.starts_with("s3upload_"), "{g:?}"),
            }
        }
        let without_snapshots = current(Uses { snapshots: false });
        for g in &without_snapshots {
            assert_ne!(g.object, Object::Database, "{g:?}");
            if let Object::Table(name) = &g.object
                && !name.starts_with("s3upload_")
            {
                assert_eq!(g.privilege, Select, "{g:?}");
            }
        }
        // Without the database-wide SELECT, Piwigo's tables are granted
        // one by one.
        assert!(
            without_snapshots
                .iter()
                .any(|g| g.object == Object::Table("images".into()) && g.privilege == Select)
        );
    }

    #[test]
    fn a_migration_that_adds_a_table_adds_its_grants() {
        let before = through(4);
        let after = current(Uses::ALL);
        assert!(privileges_on(&before, "s3upload_formats").is_empty());
        assert!(privileges_on(&after, "s3upload_formats").contains(&Create));
        let create = after
            .iter()
            .find(|g| g.object == Object::Table("s3upload_formats".into()) && g.privilege == Create)
            .unwrap();
        assert!(
            create.reasons[0].starts_with("migration 5 creates it"),
            "{create:?}"
        );
    }

    #[test]
    fn the_snapshot_requirement_is_named() {
        let g = current(Uses::ALL);
        let lock = g
            .iter()
            .find(|g| g.privilege == LockTables)
            .expect("LOCK TABLES");
        assert_eq!(lock.object, Object::Database);
        assert!(lock.reasons[0].starts_with("for database snapshots"));
    }

    #[test]
    fn every_shipped_statement_is_understood() {
        // A new kind of statement in a migration must teach own_tables
        // what it needs before it ships.
        for m in MIGRATIONS {
            for s in crate::queue::schema::statements(m.sql) {
                let upper = code_of(s).to_ascii_uppercase();
                assert!(
                    ["CREATE TABLE", "ALTER TABLE", "INSERT", "DELETE"]
                        .iter()
                        .any(|k| upper.starts_with(k)),
                    "{s}"
                );
            }
        }
    }
}
