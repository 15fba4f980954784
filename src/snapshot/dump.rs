//! Piwigo's tables as plain SQL, row by row from the server to the
//! sealer: nothing holds more than one INSERT statement in memory. One
//! consistent view of every table: a consistent-snapshot transaction
//! when every table is InnoDB, `LOCK TABLES ... READ` for the whole dump
//! when any is not (Piwigo creates MyISAM tables).

use std::fmt::Write as _;
use std::io::Write as _;

use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};
use sqlx::mysql::MySqlConnection;
use sqlx::{Column, Executor, Row, TypeInfo, ValueRef};

use super::SnapshotError;
use super::ship::Shipper;
use crate::db::DbError;

/// Rows of one INSERT statement stop growing past this many bytes, well
/// under the smallest `max_allowed_packet` a server ships with (1 MiB).
const STATEMENT_BYTES: usize = 256 * 1024;

/// The last line of every complete dump: a load that does not reach it
/// read a truncated object.
pub const END_MARKER: &str = "-- piwigo-s3upload: snapshot complete";

/// How the dump saw one moment of every table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Consistency {
    /// `START TRANSACTION WITH CONSISTENT SNAPSHOT`: nobody waits.
    Transaction,
    /// `LOCK TABLES ... READ`: writers wait until the dump ends.
    LockTables,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableCount {
    pub name: String,
    pub rows: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Dumped {
    pub consistency: Consistency,
    pub tables: Vec<TableCount>,
}

struct Listed {
    name: String,
    is_view: bool,
    engine: Option<String>,
}

/// Every table and view whose name starts with `prefix`.
async fn list(conn: &mut MySqlConnection, prefix: &str) -> Result<Vec<Listed>, DbError> {
    let pattern = prefix
        .replace('\\', "\\\\")
        .replace('_', "\\_")
        .replace('%', "\\%");
    let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT CAST(TABLE_NAME AS CHAR), CAST(TABLE_TYPE AS CHAR), CAST(ENGINE AS CHAR) \
         FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE ? \
         ORDER BY TABLE_NAME",
    )
    .bind(format!("{pattern}%"))
    .fetch_all(&mut *conn)
    .await
    .map_err(DbError::query("list the tables to snapshot"))?;
    Ok(rows
        .into_iter()
        .map(|(name, kind, engine)| Listed {
            is_view: kind == "VIEW",
            name,
            engine,
        })
        .collect())
}

pub fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// Writes the whole dump through `ship`, uploading parts as they fill.
/// `conn` is used alone and must be dropped (closed) afterwards: its locks
/// or transaction end with it whatever happens.
pub async fn dump(
    conn: &mut MySqlConnection,
    prefix: &str,
    header: &str,
    ship: &mut Shipper,
) -> Result<Dumped, SnapshotError> {
    let q = DbError::query;
    // Parts go up while the result is read: a slow link must not make
    // the server drop a connection it is writing to.
    conn.execute("SET SESSION net_write_timeout = 3600, time_zone = '+00:00'")
        .await
        .map_err(q("prepare the snapshot session"))?;
    let listed = list(conn, prefix).await?;
    if listed.is_empty() {
        return Err(SnapshotError::NoTables(prefix.to_owned()));
    }
    let all_innodb = listed.iter().filter(|t| !t.is_view).all(|t| {
        t.engine
            .as_deref()
            .is_some_and(|e| e.eq_ignore_ascii_case("InnoDB"))
    });
    let consistency = if all_innodb {
        for sql in [
            "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
            "START TRANSACTION WITH CONSISTENT SNAPSHOT",
        ] {
            conn.execute(sql)
                .await
                .map_err(q("start the snapshot transaction"))?;
        }
        Consistency::Transaction
    } else {
        let names: Vec<String> = listed
            .iter()
            .map(|t| format!("{} READ", quote_ident(&t.name)))
            .collect();
        conn.execute(format!("LOCK TABLES {}", names.join(", ")).as_str())
            .await
            .map_err(q("lock the tables for the snapshot (grant LOCK TABLES)"))?;
        Consistency::LockTables
    };
    ship.write_all(header.as_bytes())?;
    ship.write_all(
        b"SET NAMES utf8mb4;\nSET time_zone = '+00:00';\nSET foreign_key_checks = 0;\n\
          SET unique_checks = 0;\nSET sql_mode = 'NO_AUTO_VALUE_ON_ZERO';\n",
    )?;
    let mut tables = Vec::new();
    for t in listed.iter().filter(|t| !t.is_view) {
        let rows = table(conn, &t.name, ship).await?;
        tables.push(TableCount {
            name: t.name.clone(),
            rows,
        });
    }
    for v in listed.iter().filter(|t| t.is_view) {
        view(conn, &v.name, ship).await?;
    }
    let end = match consistency {
        Consistency::Transaction => "COMMIT",
        Consistency::LockTables => "UNLOCK TABLES",
    };
    conn.execute(end).await.map_err(q("end the snapshot"))?;
    let total: u64 = tables.iter().map(|t| t.rows).sum();
    writeln!(ship, "{END_MARKER}: {} tables, {total} rows", tables.len())?;
    ship.ship_full_parts().await?;
    Ok(Dumped {
        consistency,
        tables,
    })
}

async fn table(
    conn: &mut MySqlConnection,
    name: &str,
    ship: &mut Shipper,
) -> Result<u64, SnapshotError> {
    let ident = quote_ident(name);
    let (_, create): (String, String) = sqlx::query_as(&format!("SHOW CREATE TABLE {ident}"))
        .fetch_one(&mut *conn)
        .await
        .map_err(DbError::query("read a table's definition"))?;
    write!(
        ship,
        "\n--\n-- {ident}\n--\nDROP TABLE IF EXISTS {ident};\n{create};\n\
         /*!40000 ALTER TABLE {ident} DISABLE KEYS */;\n"
    )?;
    // The text protocol (no prepared statement): every value arrives as
    // the server prints it, which is what a dump writes back.
    let select = format!("SELECT * FROM {ident}");
    let mut rows = conn.fetch(select.as_str());
    let mut count = 0u64;
    let mut statement = String::new();
    while let Some(row) = rows
        .try_next()
        .await
        .map_err(DbError::query("read rows for the snapshot"))?
    {
        if statement.is_empty() {
            let _ = write!(statement, "INSERT INTO {ident} VALUES ");
        } else {
            statement.push(',');
        }
        statement.push('(');
        for (i, column) in row.columns().iter().enumerate() {
            if i > 0 {
                statement.push(',');
            }
            let raw = row
                .try_get_raw(i)
                .map_err(DbError::query("read a value for the snapshot"))?;
            if raw.is_null() {
                statement.push_str("NULL");
                continue;
            }
            let kind = column.type_info().name().to_owned();
            let bytes: &[u8] = row
                .try_get_unchecked(i)
                .map_err(DbError::query("read a value for the snapshot"))?;
            push_value(&mut statement, &kind, bytes);
        }
        statement.push(')');
        count += 1;
        if statement.len() >= STATEMENT_BYTES {
            statement.push_str(";\n");
            ship.write_all(statement.as_bytes())?;
            statement.clear();
            ship.ship_full_parts().await?;
        }
    }
    drop(rows);
    if !statement.is_empty() {
        statement.push_str(";\n");
        ship.write_all(statement.as_bytes())?;
    }
    writeln!(ship, "/*!40000 ALTER TABLE {ident} ENABLE KEYS */;")?;
    ship.ship_full_parts().await?;
    Ok(count)
}

async fn view(
    conn: &mut MySqlConnection,
    name: &str,
    ship: &mut Shipper,
) -> Result<(), SnapshotError> {
    let ident = quote_ident(name);
    let row = sqlx::query(&format!("SHOW CREATE VIEW {ident}"))
        .fetch_one(&mut *conn)
        .await
        .map_err(DbError::query("read a view's definition (grant SHOW VIEW)"))?;
    let create: String = row
        .try_get(1)
        .map_err(DbError::query("read a view's definition"))?;
    write!(
        ship,
        "\nDROP VIEW IF EXISTS {ident};\n{};\n",
        without_definer(&create)
    )?;
    Ok(())
}

/// `CREATE ALGORITHM=... DEFINER=`u`@`h` SQL SECURITY ... VIEW`: the
/// definer names a user of this server, who may not exist where the
/// snapshot is loaded; without it the view belongs to whoever loads it.
fn without_definer(create: &str) -> String {
    match (create.find(" DEFINER="), create.find(" SQL SECURITY")) {
        (Some(start), Some(end)) if start < end => {
            format!("{}{}", &create[..start], &create[end..])
        }
        _ => create.to_owned(),
    }
}

/// One value as SQL: numbers as the server printed them, binary data in
/// hex, everything else quoted with MySQL's escapes.
fn push_value(out: &mut String, kind: &str, bytes: &[u8]) {
    let numeric = ["INT", "DECIMAL", "FLOAT", "DOUBLE", "BOOLEAN"]
        .iter()
        .any(|k| kind.contains(k));
    let binary = ["BLOB", "BINARY", "BIT", "GEOMETRY"]
        .iter()
        .any(|k| kind.contains(k));
    if numeric
        && !bytes.is_empty()
        && bytes
            .iter()
            .all(|b| b.is_ascii_digit() || b"+-.eE".contains(b))
    {
        // Checked: these bytes are digits, never SQL.
        out.push_str(std::str::from_utf8(bytes).unwrap_or("0"));
        return;
    }
    match std::str::from_utf8(bytes) {
        Ok(text) if !binary => push_quoted(out, text),
        _ if bytes.is_empty() => out.push_str("''"),
        _ => {
            out.push_str("0x");
            for b in bytes {
                let _ = write!(out, "{b:02x}");
            }
        }
    }
}

fn push_quoted(out: &mut String, text: &str) {
    out.push('\'');
    for c in text.chars() {
        match c {
            '\0' => out.push_str("\\0"),
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\x1a' => out.push_str("\\Z"),
            c => out.push(c),
        }
    }
    out.push('\'');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(kind: &str, bytes: &[u8]) -> String {
        let mut s = String::new();
        push_value(&mut s, kind, bytes);
        s
    }

    #[test]
    fn values_are_written_as_sql() {
        assert_eq!(value("INT UNSIGNED", b"42"), "42");
        assert_eq!(value("DOUBLE", b"-1.5e-7"), "-1.5e-7");
        // A "number" that is not one is quoted, never pasted.
        assert_eq!(value("INT", b"1); DROP"), "'1); DROP'");
        assert_eq!(
            value("VARCHAR", "l'été\\\n\r\0\x1a;".as_bytes()),
            "'l\\'été\\\\\\n\\r\\0\\Z;'"
        );
        assert_eq!(value("BLOB", b"\x00\xff"), "0x00ff");
        assert_eq!(value("BLOB", b""), "''");
        assert_eq!(value("TEXT", b"\xff"), "0xff");
        assert_eq!(
            value("DATETIME", b"2024-01-02 03:04:05"),
            "'2024-01-02 03:04:05'"
        );
    }

    #[test]
    fn view_definers_are_left_out() {
        assert_eq!(
            without_definer(
                "CREATE ALGORITHM=UNDEFINED DEFINER=`root`@`localhost` SQL SECURITY DEFINER VIEW `v` AS select 1"
            ),
            "CREATE ALGORITHM=UNDEFINED SQL SECURITY DEFINER VIEW `v` AS select 1"
        );
    }
}
