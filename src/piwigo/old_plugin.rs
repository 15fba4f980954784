//! The old S3Upload plugin's table (`<prefix>s3upload`), read only, for
//! `import-s3upload`.

use sqlx::{MySqlPool, Row};

use super::tables::{optional_text_column, table_exists};
use crate::db::{DbError, Tables};

/// One row of the old plugin's table.
#[derive(Debug, Clone)]
pub struct OldRow {
    pub img_id: u32,
    pub status: String,
    pub s3_url: String,
    pub md5: String,
    pub date: Option<chrono::NaiveDateTime>,
}

/// Every row of the old plugin's table in its order; `None` when this
/// database has no such table.
pub async fn old_rows(pool: &MySqlPool, t: &Tables) -> Result<Option<Vec<OldRow>>, DbError> {
    let err = DbError::query;
    // `t.old_plugin` is quoted for SQL; information_schema has the bare name.
    if !table_exists(pool, &format!("{}s3upload", t.prefix)).await? {
        return Ok(None);
    }
    let rows = sqlx::query(&format!(
        "SELECT o.img_id, o.status, o.s3_url, COALESCE(o.img_md5sum, '') AS md5, o.date_updated \
         FROM {} o ORDER BY o.id",
        t.old_plugin
    ))
    .fetch_all(pool)
    .await
    .map_err(err("import: read the old table"))?;
    let mut old = Vec::with_capacity(rows.len());
    for r in rows {
        let text = |name: &str| -> Result<String, DbError> {
            optional_text_column(&r, name)
                .map(Option::unwrap_or_default)
                .map_err(err("import: read the old table"))
        };
        old.push(OldRow {
            img_id: r
                .try_get::<Option<u32>, _>("img_id")
                .map_err(err("import: read the old table"))?
                .unwrap_or(0),
            status: text("status")?,
            s3_url: text("s3_url")?,
            md5: text("md5")?,
            date: r.try_get("date_updated").ok().flatten(),
        });
    }
    Ok(Some(old))
}
