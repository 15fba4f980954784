//! The upload records joined with Piwigo's rows: what `verify` audits and
//! `restore` brings back.

use sqlx::{MySqlPool, QueryBuilder, Row};

use crate::db::{DbError, Tables};

/// One photo as recorded in `<prefix>s3upload_uploaded`.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub image_id: u32,
    pub outcome: String,
    pub bucket: String,
    pub key: String,
    pub size: u64,
    pub md5: String,
    pub etag: Option<String>,
    /// Piwigo's `images.path`; `None` when the photo was deleted from
    /// Piwigo since.
    pub path: Option<String>,
}

/// Which records to read.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub ids: Vec<(u32, u32)>,
    /// An album and its sub-albums.
    pub album: Option<u32>,
}

pub async fn load(pool: &MySqlPool, t: &Tables, filter: &Filter) -> Result<Vec<Recorded>, DbError> {
    let mut qb = QueryBuilder::new(format!(
        "SELECT u.image_id, u.outcome, u.bucket, u.s3_key, u.size, u.md5, u.etag, i.path \
         FROM {} u LEFT JOIN {} i ON i.id = u.image_id WHERE TRUE",
        t.uploaded, t.images
    ));
    if !filter.ids.is_empty() {
        qb.push(" AND ");
        crate::piwigo::push_id_ranges(&mut qb, "u.image_id", &filter.ids);
    }
    if let Some(album) = filter.album {
        qb.push(format!(
            " AND u.image_id IN (SELECT ic.image_id FROM {} ic JOIN {} c ON c.id = ic.category_id \
             WHERE c.id = ",
            t.image_category, t.categories
        ));
        qb.push_bind(album);
        qb.push(" OR FIND_IN_SET(");
        qb.push_bind(album);
        qb.push(", c.uppercats))");
    }
    qb.push(" ORDER BY u.image_id");
    let rows = qb
        .build()
        .fetch_all(pool)
        .await
        .map_err(DbError::query("read upload records"))?;
    rows.into_iter()
        .map(|r| -> Result<Recorded, sqlx::Error> {
            Ok(Recorded {
                image_id: r.try_get("image_id")?,
                outcome: r.try_get("outcome")?,
                bucket: r.try_get("bucket")?,
                key: r.try_get("s3_key")?,
                size: r.try_get("size")?,
                md5: r.try_get("md5")?,
                etag: r.try_get("etag")?,
                path: crate::piwigo::optional_text_column(&r, "path")?,
            })
        })
        .collect::<Result<_, _>>()
        .map_err(DbError::query("read upload records"))
}

/// An ETag without its quotes, lower case.
pub fn bare_etag(etag: &str) -> String {
    etag.trim().trim_matches('"').to_ascii_lowercase()
}
