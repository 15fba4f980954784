//! What one queue row stands for: the photo itself, or one of its formats
//! (a RAW, TIFF or PSD file Piwigo keeps beside it). Claims, leases,
//! reservations, statuses and backoff are the same for every kind; this is
//! the one place where the kinds differ. A new version of a recorded
//! photo or format whose file changed is the same item, queued under a
//! kind of its own (`photo_version`, `format_version`), so that an older
//! daemon sharing the queue leaves it alone instead of recording it as a
//! first upload.

use std::borrow::Cow;

/// The kinds this daemon knows, as the `kind` column spells them: first
/// uploads, then new versions. Rows of other kinds (written by a newer
/// daemon sharing the queue) are left to it: they are never claimed here.
pub const KINDS: [&str; 4] = ["photo", "format", "photo_version", "format_version"];

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
    /// From the queue's `kind`, `kind_id` and `ext` columns, with whether
    /// the row is a new version; `None` for a kind this daemon does not
    /// know.
    pub(super) fn from_columns(
        kind: &str,
        kind_id: u32,
        ext: Option<String>,
    ) -> Option<(Self, bool)> {
        let new_version = kind.ends_with("_version");
        match kind.trim_end_matches("_version") {
            "photo" => Some((Self::Photo, new_version)),
            "format" => Some((
                Self::Format {
                    format_id: kind_id,
                    ext: ext.unwrap_or_default(),
                },
                new_version,
            )),
            _ => None,
        }
    }

    /// The kind of its record (`photo` or `format`), as the version
    /// history spells it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Photo => KINDS[0],
            Self::Format { .. } => KINDS[1],
        }
    }

    /// The queue's `kind` column: the record's kind, or its new version's.
    pub fn queue_kind(&self, new_version: bool) -> &'static str {
        match (self, new_version) {
            (Self::Photo, false) => KINDS[0],
            (Self::Format { .. }, false) => KINDS[1],
            (Self::Photo, true) => KINDS[2],
            (Self::Format { .. }, true) => KINDS[3],
        }
    }

    /// The `kind_id` column: 0 for the photo, the format's id.
    pub fn kind_id(&self) -> u32 {
        match self {
            Self::Photo => 0,
            Self::Format { format_id, .. } => *format_id,
        }
    }

    /// The format's id, `None` for the photo itself.
    pub fn format_id(&self) -> Option<u32> {
        match self {
            Self::Photo => None,
            Self::Format { format_id, .. } => Some(*format_id),
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
        for new_version in [false, true] {
            assert_eq!(
                Item::from_columns(raw.queue_kind(new_version), 7, Some("cr2".into())),
                Some((raw.clone(), new_version))
            );
            assert_eq!(
                Item::from_columns(Item::Photo.queue_kind(new_version), 0, None),
                Some((Item::Photo, new_version))
            );
        }
        assert_eq!(Item::from_columns("version", 2, None), None);
        assert_eq!(Item::from_columns("album_version", 2, None), None);
        assert_eq!(
            (raw.kind(), raw.kind_id(), raw.format_id()),
            ("format", 7, Some(7))
        );
        assert_eq!(Item::Photo.format_id(), None);
        assert_eq!(
            raw.source_path("./upload/2024/01/02/x.jpg"),
            "./upload/2024/01/02/pwg_format/x.cr2"
        );
        assert_eq!(Item::Photo.source_path("./a/b.jpg"), "./a/b.jpg");
        assert_eq!((Item::Photo.label(), raw.label()), ("original", "cr2"));
        assert!(Item::Photo.dedupes_by_md5() && !raw.dedupes_by_md5());
    }
}
