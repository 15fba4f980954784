//! Piwigo's side: its own tables, read only (`tables`), photo ids as
//! admins type them (`ids`), the safe resolution of `images.path` under the
//! gallery root (`root`), and a photo's file with what reading it can fail
//! with (`files`). Nothing here touches the daemon's own tables.

mod files;
mod ids;
mod root;
mod tables;

pub use files::{CHANGED_WAIT, FileError, FileStat, format_path, off_runtime};
pub use ids::{id_ranges, parse_id_list, push_id_ranges};
pub use root::GalleryRoot;
pub use tables::{
    GallerySignal, Image, REQUIRED_TABLES, SKIPPED_PATHS_SQL, album_exists, count_above,
    format_exists, gallery_signal, has_formats, html_escape, missing_tables, optional_text_column,
    push_in_album, table_exists, tag_id, tag_name, text_column,
};
