//! Piwigo's side: its own tables, read only (`tables`), photo ids as
//! admins type them (`ids`), the safe resolution of `images.path` under the
//! gallery root (`root`), a photo's file with what reading it can fail
//! with (`files`), the old S3Upload plugin's table (`old_plugin`), and what the images
//! table adds to `restore --from-bucket` (`gallery_rows`). Nothing here touches the daemon's own tables.

mod files;
pub mod gallery_rows;
mod ids;
mod old_plugin;
mod root;
mod tables;

pub use files::{CHANGED_WAIT, FileError, FileStat, format_path, off_runtime};
pub use ids::{id_ranges, parse_id_list, push_id_ranges};
pub use old_plugin::{OldRow, old_rows};
pub use root::GalleryRoot;
pub use tables::{
    GallerySignal, Image, REQUIRED_TABLES, SKIPPED_PATHS_SQL, album_exists, count_above,
    db_version, decode_piwigo_html, format_exists, gallery_signal, has_formats, html_escape,
    missing_tables, optional_text_column, path_and_md5, push_in_album, table_exists, tag_id,
    tag_name, text_column,
};
