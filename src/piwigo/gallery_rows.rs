//! What Piwigo's own images table, when it is still there, adds to
//! `restore --from-bucket`: which photos were deleted from the gallery, and
//! which photos are md5 duplicates of an object's photo (they were never
//! sent; their records, lost with the daemon's tables, pointed at it).

use std::collections::{HashMap, HashSet};

use sqlx::MySqlPool;

use crate::db::{DbError, Tables};

/// Ids or md5s asked for at once.
const CHUNK: usize = 1000;

/// One Piwigo photo as its images row says.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: u32,
    pub path: String,
    pub md5sum: String,
}

/// Of `ids`, those Piwigo still has. `None` when its images table is empty
/// or missing (a fresh install, a lost database): then no photo counts as
/// deleted.
pub async fn existing(
    pool: &MySqlPool,
    t: &Tables,
    ids: &[u32],
) -> Result<Option<HashSet<u32>>, DbError> {
    let err = DbError::query("restore: read Piwigo's photo ids");
    if !super::table_exists(pool, &format!("{}images", t.prefix)).await? {
        return Ok(None);
    }
    let any: Option<u32> = sqlx::query_scalar(&format!("SELECT id FROM {} LIMIT 1", t.images))
        .fetch_optional(pool)
        .await
        .map_err(err)?;
    if any.is_none() {
        return Ok(None);
    }
    let mut found = HashSet::new();
    for chunk in ids.chunks(CHUNK) {
        let mut qb = sqlx::QueryBuilder::new(format!("SELECT id FROM {} WHERE id IN (", t.images));
        let mut list = qb.separated(", ");
        for id in chunk {
            list.push_bind(*id);
        }
        qb.push(")");
        let rows: Vec<u32> = qb
            .build_query_scalar()
            .fetch_all(pool)
            .await
            .map_err(DbError::query("restore: read Piwigo's photo ids"))?;
        found.extend(rows);
    }
    Ok(Some(found))
}

/// Piwigo's photos whose `md5sum` is one of `md5s`, by md5.
pub async fn by_md5(
    pool: &MySqlPool,
    t: &Tables,
    md5s: &[&str],
) -> Result<HashMap<String, Vec<Row>>, DbError> {
    let mut out: HashMap<String, Vec<Row>> = HashMap::new();
    for chunk in md5s.chunks(CHUNK) {
        let mut qb = sqlx::QueryBuilder::new(format!(
            "SELECT id, path, md5sum FROM {} WHERE md5sum IN (",
            t.images
        ));
        let mut list = qb.separated(", ");
        for m in chunk {
            list.push_bind(*m);
        }
        qb.push(")");
        let rows = qb
            .build()
            .fetch_all(pool)
            .await
            .map_err(DbError::query("restore: read Piwigo's md5 duplicates"))?;
        for r in rows {
            let read = || -> Result<Row, sqlx::Error> {
                use sqlx::Row as _;
                Ok(Row {
                    id: r.try_get("id")?,
                    path: super::text_column(&r, "path")?,
                    md5sum: super::text_column(&r, "md5sum")?,
                })
            };
            let row = read().map_err(DbError::query("restore: read Piwigo's md5 duplicates"))?;
            out.entry(row.md5sum.to_ascii_lowercase())
                .or_default()
                .push(row);
        }
    }
    Ok(out)
}
