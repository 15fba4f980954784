//! Which photos a batch command (`enqueue`, a companion request) selects:
//! Piwigo's images narrowed by ids, album, tag, caddie and date, or the
//! photos of a request filed in our own table.

use sqlx::QueryBuilder;

use crate::db::Tables;
use crate::piwigo::{SKIPPED_PATHS_SQL, push_id_ranges, push_in_album};

/// A batch selection: every part given narrows it (they are ANDed).
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub ids: Vec<(u32, u32)>,
    pub album: Option<u32>,
    pub tag: Option<u32>,
    pub caddie: bool,
    pub since: Option<chrono::NaiveDateTime>,
    pub all: bool,
    /// The photos of a request filed by the companion plugin.
    pub request: Option<u64>,
}

impl Selection {
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
            && self.album.is_none()
            && self.tag.is_none()
            && !self.caddie
            && self.since.is_none()
            && !self.all
            && self.request.is_none()
    }

    /// Appends `WHERE ...` selecting `i.id` from `<prefix>images i`.
    pub fn push_where<'a>(&'a self, qb: &mut QueryBuilder<'a, sqlx::MySql>, t: &Tables) {
        qb.push(" WHERE ");
        qb.push(SKIPPED_PATHS_SQL);
        if !self.ids.is_empty() {
            qb.push(" AND ");
            push_id_ranges(qb, "i.id", &self.ids);
        }
        if let Some(album) = self.album {
            push_in_album(qb, t, "i.id", album);
        }
        if let Some(tag) = self.tag {
            qb.push(format!(
                " AND i.id IN (SELECT it.image_id FROM {} it WHERE it.tag_id = ",
                t.image_tag
            ));
            qb.push_bind(tag);
            qb.push(")");
        }
        if self.caddie {
            qb.push(format!(
                " AND i.id IN (SELECT cd.element_id FROM {} cd)",
                t.caddie
            ));
        }
        if let Some(since) = self.since {
            qb.push(" AND i.date_available >= ");
            qb.push_bind(since);
        }
        if let Some(request) = self.request {
            qb.push(format!(
                " AND i.id IN (SELECT ri.image_id FROM {} ri WHERE ri.request_id = ",
                t.request_images
            ));
            qb.push_bind(request);
            qb.push(")");
        }
    }
}
