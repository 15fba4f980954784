//! Piwigo's own tables, read only: they are MyISAM (no transactions), and
//! they are not ours to change. Every query on them is here.

use sqlx::{MySqlPool, QueryBuilder, Row};

use crate::db::{DbError, Tables};

/// The columns of `<prefix>images` the daemon uses.
#[derive(Debug, Clone)]
pub struct Image {
    pub file: String,
    pub path: String,
}

/// The Piwigo tables `check` and the selectors rely on.
pub const REQUIRED_TABLES: [&str; 6] = [
    "images",
    "tags",
    "image_tag",
    "caddie",
    "categories",
    "image_category",
];

/// Paths that are not files of this gallery: long-removed remote photos
/// and the chunked-upload scratch directory.
pub const SKIPPED_PATHS_SQL: &str = "i.path NOT LIKE 'http://%' AND i.path NOT LIKE 'https://%' \
     AND i.path NOT LIKE './upload/buffer/%'";

/// Piwigo's columns are 3-byte utf8, some with a binary collation, and old
/// installs hold latin1 bytes: decode leniently rather than fail a photo
/// on its name.
pub fn text_column(row: &sqlx::mysql::MySqlRow, name: &str) -> Result<String, sqlx::Error> {
    Ok(optional_text_column(row, name)?.unwrap_or_default())
}

pub fn optional_text_column(
    row: &sqlx::mysql::MySqlRow,
    name: &str,
) -> Result<Option<String>, sqlx::Error> {
    match row.try_get::<Option<String>, _>(name) {
        Ok(s) => Ok(s),
        Err(_) => {
            let bytes: Option<Vec<u8>> = row.try_get(name)?;
            Ok(bytes.map(|b| String::from_utf8_lossy(&b).into_owned()))
        }
    }
}

/// Looks a tag up by name or URL name, as an admin would type it. Piwigo
/// stores names HTML-escaped (`Tom &amp; Jerry`), so both spellings match.
pub async fn tag_id(pool: &MySqlPool, t: &Tables, name: &str) -> Result<Option<u32>, DbError> {
    let sql = format!(
        "SELECT id FROM {} WHERE name = ? OR name = ? OR url_name = ? ORDER BY id LIMIT 1",
        t.tags
    );
    sqlx::query_scalar::<_, u32>(&sql)
        .bind(name)
        .bind(html_escape(name))
        .bind(name)
        .fetch_optional(pool)
        .await
        .map_err(DbError::query("look up tag"))
}

/// ` AND <column> IN (photos of the album or of any album below it)`:
/// `uppercats` lists every ancestor, so one query covers the whole tree.
pub fn push_in_album(qb: &mut QueryBuilder<'_, sqlx::MySql>, t: &Tables, column: &str, album: u32) {
    qb.push(format!(
        " AND {column} IN (SELECT ic.image_id FROM {} ic JOIN {} c ON c.id = ic.category_id \
         WHERE c.id = ",
        t.image_category, t.categories
    ));
    qb.push_bind(album);
    qb.push(" OR FIND_IN_SET(");
    qb.push_bind(album);
    qb.push(", c.uppercats))");
}

/// Text as PHP's `htmlspecialchars` stores it in Piwigo's tables.
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#039;"),
            c => out.push(c),
        }
    }
    out
}

/// A photo's `path` and `md5sum`, `None` when Piwigo has no such photo.
pub async fn path_and_md5(
    pool: &MySqlPool,
    t: &Tables,
    id: u32,
) -> Result<Option<(String, Option<String>)>, DbError> {
    sqlx::query_as(&format!(
        "SELECT path, md5sum FROM {} WHERE id = ?",
        t.images
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
    .map_err(DbError::query("import: read the photo"))
}

/// The branch Piwigo's database records (`piwigo_db_version` in its
/// config table); `None` when it cannot be read.
pub async fn db_version(pool: &MySqlPool, t: &Tables) -> Option<String> {
    let branch: Option<(String,)> = sqlx::query_as(&format!(
        "SELECT CAST(value AS CHAR) FROM {}config WHERE param = 'piwigo_db_version'",
        t.prefix
    ))
    .fetch_optional(pool)
    .await
    .ok()
    .flatten();
    branch.map(|(b,)| b)
}

/// Piwigo stores names (`images.file`, album names) through
/// `htmlspecialchars`: undo exactly that, in one pass, so `&amp;lt;` becomes `&lt;` and not `<`.
pub fn decode_piwigo_html(text: &str) -> String {
    const ENTITIES: [(&str, char); 6] = [
        ("&amp;", '&'),
        ("&lt;", '<'),
        ("&gt;", '>'),
        ("&quot;", '"'),
        ("&#039;", '\''),
        ("&#39;", '\''),
    ];
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        rest = &rest[pos..];
        match ENTITIES.iter().find(|(e, _)| rest.starts_with(e)) {
            Some((entity, ch)) => {
                out.push(*ch);
                rest = &rest[entity.len()..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether an album with this id exists, so a mistyped `--album` is an
/// error rather than an empty selection.
pub async fn album_exists(pool: &MySqlPool, t: &Tables, id: u32) -> Result<bool, DbError> {
    let sql = format!("SELECT COUNT(*) FROM {} WHERE id = ?", t.categories);
    sqlx::query_scalar::<_, i64>(&sql)
        .bind(id)
        .fetch_one(pool)
        .await
        .map(|n| n > 0)
        .map_err(DbError::query("look up album"))
}

pub async fn tag_name(pool: &MySqlPool, t: &Tables, id: u32) -> Result<Option<String>, DbError> {
    let sql = format!("SELECT name FROM {} WHERE id = ?", t.tags);
    sqlx::query_scalar::<_, String>(&sql)
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(DbError::query("look up tag"))
}

/// Which Piwigo tables are missing, for `check` and start-up.
pub async fn missing_tables(pool: &MySqlPool, prefix: &str) -> Result<Vec<String>, DbError> {
    let mut missing = Vec::new();
    for name in REQUIRED_TABLES {
        let full = format!("{prefix}{name}");
        if !table_exists(pool, &full).await? {
            missing.push(full);
        }
    }
    Ok(missing)
}

/// Whether the current database has a table of this (full) name.
pub async fn table_exists(pool: &MySqlPool, name: &str) -> Result<bool, DbError> {
    let found: Option<String> = sqlx::query_scalar(
        "SELECT table_name FROM information_schema.tables \
         WHERE table_schema = DATABASE() AND table_name = ?",
    )
    .bind(name)
    .fetch_optional(pool)
    .await
    .map_err(DbError::query("list tables"))?;
    Ok(found.is_some())
}

/// What the deletion guard remembers of Piwigo's images table between
/// two looks: cheap to read (the count is stored by MyISAM, the maximum
/// is the primary key's end), and enough to tell a table that shrank,
/// was emptied, or was dropped and made again (a restore, a dump loaded
/// into another database) from one that only grew.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GallerySignal {
    /// The database's name (`DATABASE()`).
    pub database: String,
    /// When the table was created, as the server reports it; a new value
    /// means the table was made again.
    pub created: Option<String>,
    /// The id the next photo gets (`AUTO_INCREMENT`): deleting photos
    /// never lowers it, making the table again does.
    #[serde(default)]
    pub next_id: Option<u64>,
    pub count: u64,
    pub max_id: u32,
}

/// The images table's signal, `None` when the table is missing.
pub async fn gallery_signal(
    pool: &MySqlPool,
    t: &Tables,
) -> Result<Option<GallerySignal>, DbError> {
    let err = DbError::query;
    let row: Option<(String, Option<String>, Option<u64>)> = sqlx::query_as(
        "SELECT CAST(DATABASE() AS CHAR), CAST(create_time AS CHAR), auto_increment \
         FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?",
    )
    .bind(format!("{}images", t.prefix))
    .fetch_optional(pool)
    .await
    .map_err(err("deletions: look at the images table"))?;
    let Some((database, created, next_id)) = row else {
        return Ok(None);
    };
    let (count, max_id): (i64, Option<u32>) =
        sqlx::query_as(&format!("SELECT COUNT(*), MAX(id) FROM {}", t.images))
            .fetch_one(pool)
            .await
            .map_err(err("deletions: count photos"))?;
    Ok(Some(GallerySignal {
        database,
        created,
        next_id,
        count: count.max(0) as u64,
        max_id: max_id.unwrap_or(0),
    }))
}

/// How many photos have an id above `id`: the rows added since a look
/// whose highest id was `id`.
pub async fn count_above(pool: &MySqlPool, t: &Tables, id: u32) -> Result<u64, DbError> {
    let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {} WHERE id > ?", t.images))
        .bind(id)
        .fetch_one(pool)
        .await
        .map_err(DbError::query("deletions: count new photos"))?;
    Ok(n.max(0) as u64)
}

/// Whether this Piwigo has formats (`<prefix>image_format`, Piwigo 13+).
pub async fn has_formats(pool: &MySqlPool, t: &Tables) -> Result<bool, DbError> {
    table_exists(pool, &format!("{}image_format", t.prefix)).await
}

/// Whether a format is still attached to its photo: a format deleted in
/// Piwigo loses its file first, then its row.
pub async fn format_exists(pool: &MySqlPool, t: &Tables, format_id: u32) -> Result<bool, DbError> {
    let found: Option<u32> = sqlx::query_scalar(&format!(
        "SELECT format_id FROM {} WHERE format_id = ?",
        t.image_format
    ))
    .bind(format_id)
    .fetch_optional(pool)
    .await
    .map_err(DbError::query("look up format"))?;
    Ok(found.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_as_piwigo_stores_them() {
        assert_eq!(html_escape("Tom & Jerry"), "Tom &amp; Jerry");
        assert_eq!(
            html_escape("<a href=\"x\">'"),
            "&lt;a href=&quot;x&quot;&gt;&#039;"
        );
        assert_eq!(html_escape("été"), "été");
    }
}
