//! What one queue row stands for: the photo itself, or one of its formats
//! (a RAW, TIFF or PSD file Piwigo keeps beside it). Claims, leases,
//! reservations, statuses and backoff are the same for every kind; this is
//! the one place where the kinds differ. A new kind (a new version of a
//! changed photo) is a new variant here, not a new pipeline.

use std::borrow::Cow;

/// The kinds this daemon knows, as the `kind` column spells them. Rows of
/// other kinds (written by a newer daemon sharing the queue) are left to
/// it: they are never claimed here.
pub const KINDS: [&str; 2] = ["photo", "format"];

/// `kind IN (...)` of the kinds this daemon knows.
pub(super) fn known_kinds_sql() -> String {
    format!("kind IN ('{}')", KINDS.join("', '"))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// The full-size photo (`images.path`).
    Photo,
    /// A format of the photo (`<prefix>image_format`).
    Format { format_id: u32, ext: String },
}

impl Item {
    /// From the queue's `kind`, `kind_id` and `ext` columns; `None` for a
    /// kind this daemon does not know.
    pub(super) fn from_columns(kind: &str, kind_id: u32, ext: Option<String>) -> Option<Self> {
        match kind {
            "photo" => Some(Self::Photo),
            "format" => Some(Self::Format {
                format_id: kind_id,
                ext: ext.unwrap_or_default(),
            }),
            _ => None,
        }
    }

    /// The `kind` column's value.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Photo => KINDS[0],
            Self::Format { .. } => KINDS[1],
        }
    }

    /// The file under the gallery root, from the photo's `images.path`.
    pub fn source_path<'a>(&self, photo_path: &'a str) -> Cow<'a, str> {
        match self {
            Self::Photo => Cow::Borrowed(photo_path),
            Self::Format { ext, .. } => Cow::Owned(crate::piwigo::format_path(photo_path, ext)),
        }
    }

    /// What the object's metadata calls it (`x-amz-meta-format`):
    /// `original`, or the format's extension. Restore reads it back.
    pub fn label(&self) -> &str {
        match self {
            Self::Photo => "original",
            Self::Format { ext, .. } => ext,
        }
    }

    /// Whether md5 de-duplication applies. A photo with the bytes of one
    /// already uploaded is recorded as its duplicate; a format is always an
    /// object of its own next to its photo, where restore looks for it.
    pub fn dedupes_by_md5(&self) -> bool {
        matches!(self, Self::Photo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_round_trip_and_unknown_kinds_are_left_alone() {
        let raw = Item::Format {
            format_id: 7,
            ext: "cr2".into(),
        };
        assert_eq!(
            Item::from_columns(raw.kind(), 7, Some("cr2".into())),
            Some(raw.clone())
        );
        assert_eq!(Item::from_columns("photo", 0, None), Some(Item::Photo));
        assert_eq!(Item::from_columns("version", 2, None), None);
        assert_eq!(
            raw.source_path("./upload/2024/01/02/x.jpg"),
            "./upload/2024/01/02/pwg_format/x.cr2"
        );
        assert_eq!(Item::Photo.source_path("./a/b.jpg"), "./a/b.jpg");
        assert_eq!((Item::Photo.label(), raw.label()), ("original", "cr2"));
        assert!(Item::Photo.dedupes_by_md5() && !raw.dedupes_by_md5());
    }
}
