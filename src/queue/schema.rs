//! What the daemon's tables must hold, read from the migrations that are
//! recorded as applied, and the comparison with the live database. A table
//! dropped by hand, or restored from an older dump, is found here instead
//! of surfacing later as failing queries.

use std::fmt;

use sqlx::MySqlPool;

use crate::db::{DbError, Tables};

/// A table as the migrations define it: its name without Piwigo's prefix
/// and its columns with their definitions (for `repair`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDef {
    pub name: String,
    pub columns: Vec<(String, String)>,
}

/// One thing missing from the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Damage {
    MissingTable(String),
    MissingColumns { table: String, columns: Vec<String> },
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingTable(t) => write!(f, "table `{t}` is missing"),
            Self::MissingColumns { table, columns } => {
                write!(f, "table `{table}` lacks column(s) {}", columns.join(", "))
            }
        }
    }
}

/// The findings as one message with the way out.
pub fn describe(damage: &[Damage]) -> String {
    let list: Vec<String> = damage.iter().map(Damage::to_string).collect();
    format!(
        "{}, although the migrations that create them are recorded as applied (dropped or altered by hand, or an older dump restored?); run `piwigo-s3upload repair`: it re-creates what is missing and keeps every upload record",
        list.join("; ")
    )
}

/// The tables and columns the given migrations create, in order.
pub fn expected<'a>(migrations: impl IntoIterator<Item = &'a str>) -> Vec<TableDef> {
    let mut tables: Vec<TableDef> = Vec::new();
    for sql in migrations {
        for statement in statements(sql) {
            apply_statement(&mut tables, statement);
        }
    }
    tables
}

fn apply_statement(tables: &mut Vec<TableDef>, statement: &str) {
    let code: String = statement
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    let code = code.trim();
    let upper = code.to_ascii_uppercase();
    if upper.starts_with("CREATE TABLE") {
        let (Some(open), Some(close)) = (code.find('('), code.rfind(')')) else {
            return;
        };
        let Some(name) = table_name(&code[..open]) else {
            return;
        };
        let columns = split_top_level(&code[open + 1..close])
            .into_iter()
            .filter_map(column_def)
            .collect();
        tables.retain(|t| t.name != name);
        tables.push(TableDef { name, columns });
    } else if upper.starts_with("ALTER TABLE") {
        let rest = &code["ALTER TABLE".len()..];
        let Some(name) = table_name(rest) else {
            return;
        };
        let Some(table) = tables.iter_mut().find(|t| t.name == name) else {
            return;
        };
        let after_name = rest.trim_start();
        let after_name = after_name
            .find(char::is_whitespace)
            .map_or("", |i| &after_name[i..]);
        for clause in split_top_level(after_name) {
            alter(table, &clause);
        }
    } else if upper.starts_with("DROP TABLE")
        && let Some(name) = table_name(&code["DROP TABLE".len()..])
    {
        tables.retain(|t| t.name != name);
    }
}

/// The unprefixed name of the first `{prefix}name` in `text`.
fn table_name(text: &str) -> Option<String> {
    let start = text.find("{prefix}")? + "{prefix}".len();
    let name: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

/// Splits on commas outside parentheses and quotes.
fn split_top_level(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut current = String::new();
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"' | '`') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => depth -= 1,
            (None, ',') if depth == 0 => {
                out.push(std::mem::take(&mut current).trim().to_owned());
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_owned());
    }
    out
}

/// A column line of a CREATE TABLE; keys and constraints are not columns.
fn column_def(line: String) -> Option<(String, String)> {
    let upper = line.to_ascii_uppercase();
    const NOT_COLUMNS: [&str; 8] = [
        "PRIMARY ",
        "UNIQUE ",
        "KEY ",
        "INDEX ",
        "CONSTRAINT ",
        "FOREIGN ",
        "FULLTEXT ",
        "CHECK ",
    ];
    if NOT_COLUMNS.iter().any(|k| upper.starts_with(k)) {
        return None;
    }
    let (name, definition) = line.split_once(char::is_whitespace)?;
    Some((
        name.trim_matches('`').to_owned(),
        normalise(definition.trim()),
    ))
}

fn normalise(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Applies one ALTER TABLE clause to the definition.
fn alter(table: &mut TableDef, clause: &str) {
    let mut words: Vec<&str> = clause.split_whitespace().collect();
    if words.is_empty() {
        return;
    }
    let verb = words.remove(0).to_ascii_uppercase();
    let skip = |words: &mut Vec<&str>, word: &str| {
        if words.first().is_some_and(|w| w.eq_ignore_ascii_case(word)) {
            words.remove(0);
        }
    };
    if !["ADD", "MODIFY", "DROP", "CHANGE"].contains(&verb.as_str()) {
        return;
    }
    // Keys, indexes and constraints are not columns.
    const NOT_COLUMNS: [&str; 10] = [
        "KEY",
        "INDEX",
        "PRIMARY",
        "UNIQUE",
        "FOREIGN",
        "CONSTRAINT",
        "FULLTEXT",
        "SPATIAL",
        "CHECK",
        "PARTITION",
    ];
    if words
        .first()
        .is_none_or(|w| NOT_COLUMNS.iter().any(|k| w.eq_ignore_ascii_case(k)))
    {
        return;
    }
    skip(&mut words, "COLUMN");
    if words.len() >= 3
        && words[0].eq_ignore_ascii_case("IF")
        && words[2].eq_ignore_ascii_case("EXISTS")
    {
        words.drain(..3);
    } else if words.len() >= 2
        && words[0].eq_ignore_ascii_case("IF")
        && words[1].eq_ignore_ascii_case("EXISTS")
    {
        words.drain(..2);
    }
    let Some(name) = words.first().map(|w| w.trim_matches('`').to_owned()) else {
        return;
    };
    let rest = || normalise(&words[1..].join(" "));
    match verb.as_str() {
        "ADD" => {
            table.columns.retain(|(c, _)| *c != name);
            table.columns.push((name, rest()));
        }
        "MODIFY" => {
            if let Some(col) = table.columns.iter_mut().find(|(c, _)| *c == name) {
                col.1 = rest();
            }
        }
        "DROP" => table.columns.retain(|(c, _)| *c != name),
        "CHANGE" if words.len() >= 2 => {
            let new_name = words[1].trim_matches('`').to_owned();
            let definition = normalise(&words[2..].join(" "));
            if let Some(col) = table.columns.iter_mut().find(|(c, _)| *c == name) {
                *col = (new_name, definition);
            }
        }
        _ => {}
    }
}

/// What is missing from the live database compared with `expected`.
pub async fn damage(
    pool: &MySqlPool,
    t: &Tables,
    expected: &[TableDef],
) -> Result<Vec<Damage>, DbError> {
    let live: Vec<(String, String)> = sqlx::query_as(
        "SELECT CAST(table_name AS CHAR) AS t, CAST(column_name AS CHAR) AS c \
         FROM information_schema.columns WHERE table_schema = DATABASE()",
    )
    .fetch_all(pool)
    .await
    .map_err(DbError::query("check the daemon's tables"))?;
    let mut found = Vec::new();
    for table in expected {
        let full = format!("{}{}", t.prefix, table.name);
        let columns: Vec<&str> = live
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case(&full))
            .map(|(_, c)| c.as_str())
            .collect();
        if columns.is_empty() {
            found.push(Damage::MissingTable(full));
            continue;
        }
        let missing: Vec<String> = table
            .columns
            .iter()
            .filter(|(c, _)| !columns.iter().any(|l| l.eq_ignore_ascii_case(c)))
            .map(|(c, _)| c.clone())
            .collect();
        if !missing.is_empty() {
            found.push(Damage::MissingColumns {
                table: full,
                columns: missing,
            });
        }
    }
    Ok(found)
}

/// Splits a migration file into statements: our files end every statement
/// with `;` at the end of a line and use no `;` elsewhere.
pub fn statements(sql: &str) -> impl Iterator<Item = &str> {
    sql.split(";\n")
        .map(|s| s.trim().trim_end_matches(';').trim())
        .filter(|s| {
            s.lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with("--"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREATE: &str = "CREATE TABLE IF NOT EXISTS `{prefix}s3upload_things` (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  kind ENUM('a','b') NOT NULL DEFAULT 'a',
  price DECIMAL(10,2) NULL,
  old_name VARCHAR(16) NULL,
  gone INT NULL,
  UNIQUE KEY uq_kind (kind, price),
  KEY idx_price (price)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
";

    #[test]
    fn reads_columns_from_create_table() {
        let tables = expected([CREATE]);
        assert_eq!(tables.len(), 1);
        assert_eq!(tables[0].name, "s3upload_things");
        let names: Vec<&str> = tables[0].columns.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(names, ["id", "kind", "price", "old_name", "gone"]);
        assert_eq!(tables[0].columns[2].1, "DECIMAL(10,2) NULL");
    }

    #[test]
    fn follows_later_alterations() {
        let alter = "-- later
ALTER TABLE `{prefix}s3upload_things`
  ADD COLUMN IF NOT EXISTS note VARCHAR(64) NULL,
  MODIFY COLUMN price DECIMAL(12,2) NOT NULL,
  CHANGE old_name new_name VARCHAR(32) NULL,
  DROP COLUMN IF EXISTS gone,
  ADD KEY idx_note (note);
";
        let tables = expected([CREATE, alter]);
        let cols = &tables[0].columns;
        let names: Vec<&str> = cols.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(names, ["id", "kind", "price", "new_name", "note"]);
        assert_eq!(cols[2].1, "DECIMAL(12,2) NOT NULL");
        assert_eq!(cols[4].1, "VARCHAR(64) NULL");
        let dropped = expected([CREATE, "DROP TABLE IF EXISTS `{prefix}s3upload_things`;\n"]);
        assert!(dropped.is_empty());
    }

    #[test]
    fn damage_reads_as_a_fix() {
        let text = describe(&[
            Damage::MissingTable("p_s3upload_queue".into()),
            Damage::MissingColumns {
                table: "p_s3upload_uploaded".into(),
                columns: vec!["md5".into(), "etag".into()],
            },
        ]);
        assert!(text.starts_with("table `p_s3upload_queue` is missing; table `p_s3upload_uploaded` lacks column(s) md5, etag"), "{text}");
        assert!(text.contains("piwigo-s3upload repair"), "{text}");
    }
}
