//! The grants as SQL: one GRANT per object, or per missing privilege.

use std::fmt::Write;

use super::{Grant, Object, Privilege};

/// A database name as a GRANT on `db.*` takes it: `_` and `%` are
/// wildcards there, so they are escaped to name this database alone.
fn database_pattern(database: &str) -> String {
    database
        .replace('\\', "\\\\")
        .replace('_', "\\_")
        .replace('%', "\\%")
        .replace('`', "``")
}

fn identifier(name: &str) -> String {
    name.replace('`', "``")
}

/// `GRANT p, q ON object TO account;`
pub(super) fn grant(
    database: &str,
    prefix: &str,
    object: &Object,
    privileges: &[Privilege],
    account: &str,
) -> String {
    let on = match object {
        Object::Database => format!("`{}`.*", database_pattern(database)),
        Object::Table(name) => format!(
            "`{}`.`{}`",
            identifier(database),
            identifier(&format!("{prefix}{name}"))
        ),
    };
    let list: Vec<&str> = privileges.iter().map(|p| p.sql()).collect();
    format!("GRANT {} ON {on} TO {account};", list.join(", "))
}

/// Every grant, one statement per object with the reasons above it.
pub(super) fn script(database: &str, prefix: &str, grants: &[Grant], account: &str) -> String {
    let mut out = String::new();
    let mut objects: Vec<&Object> = Vec::new();
    for g in grants {
        if !objects.contains(&&g.object) {
            objects.push(&g.object);
        }
    }
    for object in objects {
        let of: Vec<&Grant> = grants.iter().filter(|g| &g.object == object).collect();
        let mut reasons: Vec<&str> = Vec::new();
        for r in of.iter().flat_map(|g| &g.reasons) {
            if !reasons.contains(&r.as_str()) {
                reasons.push(r);
            }
        }
        for r in reasons {
            let _ = writeln!(out, "-- {r}");
        }
        let privileges: Vec<Privilege> = of.iter().map(|g| g.privilege).collect();
        let _ = writeln!(
            out,
            "{}",
            grant(database, prefix, object, &privileges, account)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_grant_names_that_database_alone() {
        let s = grant(
            "piwigo_db",
            "pwg_",
            &Object::Database,
            &[Privilege::Select, Privilege::LockTables],
            "'u'@'localhost'",
        );
        assert_eq!(
            s,
            "GRANT SELECT, LOCK TABLES ON `piwigo\\_db`.* TO 'u'@'localhost';"
        );
        let s = grant(
            "piwigo_db",
            "pwg_",
            &Object::Table("s3upload_queue".into()),
            &[Privilege::Insert],
            "'u'@'%'",
        );
        assert_eq!(
            s,
            "GRANT INSERT ON `piwigo_db`.`pwg_s3upload_queue` TO 'u'@'%';"
        );
    }
}
