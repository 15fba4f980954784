//! Piwigo's own tables, read only (they are MyISAM: no transactions, and
//! they are not ours to change), and the safe resolution of `images.path`
//! to a file under the gallery root.

use std::path::{Component, Path, PathBuf};

use std::time::Duration;

use sqlx::{MySqlPool, QueryBuilder, Row};

use crate::db::{DbError, Tables};
use crate::digest::HashError;
use crate::status::{Failure, Retry, Status};

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

/// Where Piwigo keeps the format `ext` of the photo at `photo_path`:
/// `<dir>/pwg_format/<basename>.<ext>`.
pub fn format_path(photo_path: &str, ext: &str) -> String {
    let (dir, name) = photo_path.rsplit_once('/').unwrap_or((".", photo_path));
    let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
    format!("{dir}/pwg_format/{stem}.{ext}")
}

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

/// Appends `(column BETWEEN lo AND hi OR ...)` for `ranges`.
pub fn push_id_ranges(qb: &mut QueryBuilder<'_, sqlx::MySql>, column: &str, ranges: &[(u32, u32)]) {
    qb.push("(");
    for (n, (lo, hi)) in ranges.iter().enumerate() {
        if n > 0 {
            qb.push(" OR ");
        }
        qb.push(format!("{column} BETWEEN "));
        qb.push_bind(*lo);
        qb.push(" AND ");
        qb.push_bind(*hi);
    }
    qb.push(")");
}

/// Parses `1,2,5-9` into inclusive ranges.
pub fn parse_id_list(text: &str) -> Result<Vec<(u32, u32)>, String> {
    let mut out = Vec::new();
    if text.trim().is_empty() {
        return Err("no photo ids given; write them like 1,2,5-9".into());
    }
    for part in text.split(',').map(str::trim) {
        if part.is_empty() {
            return Err(format!(
                "`{text}` has an empty item between commas; write ids like 1,2,5-9"
            ));
        }
        let bad = || format!("`{part}` is not a photo id or a range like 5-9");
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (
                a.trim().parse::<u32>().map_err(|_| bad())?,
                b.trim().parse::<u32>().map_err(|_| bad())?,
            ),
            None => {
                let id = part.parse::<u32>().map_err(|_| bad())?;
                (id, id)
            }
        };
        if lo > hi {
            return Err(format!(
                "range `{part}` runs backwards; write it as {hi}-{lo}"
            ));
        }
        out.push((lo, hi));
    }
    Ok(out)
}

/// Why a photo's file cannot be read. Each maps to its own queue status.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error(
        "path `{path}` resolves outside the gallery root {root} (add its directory to piwigo.extra_roots if it is legitimate)"
    )]
    OutsideRoot { path: String, root: PathBuf },
    #[error("file {0} is missing")]
    Missing(PathBuf),
    #[error("file {path} is unreadable: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error(
        "file {path}: {reason} (a hung network mount or a FIFO in place of the photo; other photos go on); it is retried with backoff"
    )]
    Stalled { path: PathBuf, reason: String },
    #[error(
        "file {path} changed while it was sent ({reason}); it is retried once the writer is done"
    )]
    Changed { path: PathBuf, reason: String },
}

/// Runs a filesystem call about `path` on the blocking pool: on a hung
/// network mount `stat()` hangs as `open()` does, and must hold up one
/// photo alone. No answer within `limit` is [`FileError::Stalled`]; the
/// thread is left to the kernel.
pub async fn off_runtime<T: Send + 'static>(
    path: &Path,
    limit: Duration,
    call: impl FnOnce() -> T + Send + 'static,
) -> Result<T, FileError> {
    match tokio::time::timeout(limit, tokio::task::spawn_blocking(call)).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(e)) => Err(FileError::Unreadable {
            path: path.to_owned(),
            reason: format!("the filesystem call failed unexpectedly: {e}"),
        }),
        Err(_) => Err(FileError::Stalled {
            path: path.to_owned(),
            reason: format!("the filesystem did not answer within {}s", limit.as_secs()),
        }),
    }
}

/// A file that changed under us is retried after this pause: the writer
/// (a replace in Piwigo, a copy still running) is usually done by then.
pub const CHANGED_WAIT: Duration = Duration::from_secs(5);

impl FileError {
    /// Classifies a failed read of the photo at `path`.
    pub fn from_hash(path: &Path, e: HashError) -> Self {
        match e {
            HashError::Stalled(_) => Self::Stalled {
                path: path.to_owned(),
                reason: e.to_string(),
            },
            HashError::Io(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Self::Missing(path.to_owned())
            }
            HashError::Io(e) => Self::Unreadable {
                path: path.to_owned(),
                reason: e.to_string(),
            },
        }
    }

    pub fn failure(&self) -> Failure {
        let (status, retry) = match self {
            Self::OutsideRoot { .. } => (Status::FailedPathOutsideRoot, Retry::Backoff),
            Self::Missing(_) => (Status::FailedFileMissing, Retry::Backoff),
            Self::Unreadable { .. } => (Status::FailedFileUnreadable, Retry::Backoff),
            Self::Stalled { .. } => (Status::FailedFileStalled, Retry::Backoff),
            Self::Changed { .. } => (Status::FailedFileChanged, Retry::Soon(CHANGED_WAIT)),
        };
        Failure::new(status, self.to_string(), retry)
    }
}

/// What `stat()` says of a file: what the change check compares with the
/// record of its upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStat {
    pub size: u64,
    /// Nanoseconds since 1970; 0 where the filesystem keeps no mtime.
    pub mtime_ns: i64,
}

impl FileStat {
    pub fn of(meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Self {
            size: meta.len(),
            mtime_ns: meta
                .mtime()
                .saturating_mul(1_000_000_000)
                .saturating_add(meta.mtime_nsec()),
        }
    }
}

/// The gallery root and any extra allowed directories, canonicalised once.
#[derive(Debug, Clone)]
pub struct GalleryRoot {
    root: PathBuf,
    allowed: Vec<PathBuf>,
}

impl GalleryRoot {
    pub fn new(root: &Path, extra: &[PathBuf]) -> std::io::Result<Self> {
        let root = root.canonicalize()?;
        let mut allowed = vec![root.clone()];
        for dir in extra {
            // A missing extra root is not fatal: it may be mounted later.
            allowed.push(dir.canonicalize().unwrap_or_else(|_| dir.clone()));
        }
        Ok(Self { root, allowed })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Resolves `images.path` to a regular file inside an allowed directory,
    /// following symlinks only as far as they stay inside.
    pub fn resolve(&self, rel: &str) -> Result<PathBuf, FileError> {
        self.resolve_with_size(rel).map(|(path, _)| path)
    }

    /// [`resolve`](Self::resolve) and the file's size and mtime, asked
    /// [`off_runtime`].
    pub async fn locate(
        &self,
        rel: &str,
        limit: Duration,
    ) -> Result<(PathBuf, FileStat), FileError> {
        let root = self.clone();
        let owned = rel.to_owned();
        off_runtime(&self.root.join(rel), limit, move || {
            root.resolve_with_size(&owned)
        })
        .await?
    }

    fn resolve_with_size(&self, rel: &str) -> Result<(PathBuf, FileStat), FileError> {
        let outside = || self.outside(rel);
        let lexical = self.lexical(rel)?;
        if !self.is_allowed(&lexical) {
            return Err(outside());
        }
        let real = match lexical.canonicalize() {
            Ok(p) => p,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(FileError::Missing(lexical));
            }
            Err(e) => {
                return Err(FileError::Unreadable {
                    path: lexical,
                    reason: e.to_string(),
                });
            }
        };
        // Symlinks are followed, but only to places that are allowed.
        if !self.is_allowed(&real) {
            return Err(outside());
        }
        let meta = std::fs::metadata(&real).map_err(|e| FileError::Unreadable {
            path: real.clone(),
            reason: e.to_string(),
        })?;
        if !meta.is_file() {
            return Err(FileError::Unreadable {
                path: real,
                reason: "not a regular file".into(),
            });
        }
        Ok((real, FileStat::of(&meta)))
    }

    /// Where a file for `rel` may be written: the same confinement as
    /// `resolve`, for a file that need not exist yet. The nearest existing
    /// directory must itself be inside, so a symlinked folder cannot lead
    /// a write outside.
    pub fn destination(&self, rel: &str) -> Result<PathBuf, FileError> {
        let outside = || self.outside(rel);
        let lexical = self.lexical(rel)?;
        if !self.is_allowed(&lexical) || self.allowed.contains(&lexical) {
            return Err(outside());
        }
        let mut existing = lexical.parent();
        while let Some(dir) = existing {
            if let Ok(real) = dir.canonicalize() {
                if !self.is_allowed(&real) {
                    return Err(outside());
                }
                break;
            }
            existing = dir.parent();
        }
        Ok(lexical)
    }

    /// `rel` joined to the root without touching the disk: `..` is applied
    /// as written, so the result can be checked before anything is opened
    /// (it may only lead into an extra root).
    fn lexical(&self, rel: &str) -> Result<PathBuf, FileError> {
        let rel_path = Path::new(rel);
        if rel.contains('\0') || rel.is_empty() || rel_path.has_root() {
            return Err(self.outside(rel));
        }
        let mut lexical = self.root.clone();
        for c in rel_path.components() {
            match c {
                Component::Normal(p) => lexical.push(p),
                Component::ParentDir => {
                    lexical.pop();
                }
                Component::CurDir => {}
                Component::RootDir | Component::Prefix(_) => return Err(self.outside(rel)),
            }
        }
        Ok(lexical)
    }

    fn outside(&self, rel: &str) -> FileError {
        FileError::OutsideRoot {
            path: rel.escape_debug().to_string(),
            root: self.root.clone(),
        }
    }

    fn is_allowed(&self, path: &Path) -> bool {
        self.allowed.iter().any(|dir| path.starts_with(dir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_live_in_pwg_format() {
        assert_eq!(
            format_path("./upload/2024/01/02/20240102-abcd1234.jpg", "cr2"),
            "./upload/2024/01/02/pwg_format/20240102-abcd1234.cr2"
        );
        assert_eq!(
            format_path("./galleries/a/b.c.jpg", "tif"),
            "./galleries/a/pwg_format/b.c.tif"
        );
    }

    fn gallery() -> (tempfile::TempDir, GalleryRoot) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("piwigo");
        std::fs::create_dir_all(root.join("upload/2024/01/02")).unwrap();
        std::fs::write(root.join("upload/2024/01/02/a.jpg"), b"jpeg").unwrap();
        std::fs::create_dir_all(dir.path().join("outside")).unwrap();
        std::fs::write(dir.path().join("outside/secret.txt"), b"x").unwrap();
        let g = GalleryRoot::new(&root, &[]).unwrap();
        (dir, g)
    }

    #[tokio::test]
    async fn locate_gives_path_size_and_mtime_off_the_runtime_with_resolves_rules() {
        let (_dir, g) = gallery();
        let limit = Duration::from_secs(10);
        let (path, stat) = g.locate("./upload/2024/01/02/a.jpg", limit).await.unwrap();
        assert_eq!(
            (path.clone(), stat.size),
            (g.root().join("upload/2024/01/02/a.jpg"), 4)
        );
        let then = std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(then)
            .unwrap();
        let (_, touched) = g.locate("./upload/2024/01/02/a.jpg", limit).await.unwrap();
        assert_eq!(touched.mtime_ns, 1_700_000_000_000_000_000);
        assert_ne!(touched, stat);
        assert!(matches!(
            g.locate("upload/gone.jpg", limit).await,
            Err(FileError::Missing(_))
        ));
        assert!(matches!(
            g.locate("../outside/secret.txt", limit).await,
            Err(FileError::OutsideRoot { .. })
        ));
        assert!(matches!(
            g.locate("upload/2024", limit).await,
            Err(FileError::Unreadable { .. })
        ));
    }

    #[test]
    fn resolves_files_inside() {
        let (_d, g) = gallery();
        let p = g.resolve("./upload/2024/01/02/a.jpg").unwrap();
        assert!(p.ends_with("upload/2024/01/02/a.jpg"));
    }

    #[test]
    fn refuses_escapes() {
        let (d, g) = gallery();
        for bad in [
            "../outside/secret.txt",
            "./upload/../../outside/secret.txt",
            "/etc/passwd",
            "./upload/a\0.jpg",
            "",
        ] {
            assert!(
                matches!(g.resolve(bad), Err(FileError::OutsideRoot { .. })),
                "{bad:?}"
            );
        }
        std::os::unix::fs::symlink(
            d.path().join("outside/secret.txt"),
            g.root().join("upload/link.jpg"),
        )
        .unwrap();
        assert!(matches!(
            g.resolve("./upload/link.jpg"),
            Err(FileError::OutsideRoot { .. })
        ));
    }

    #[test]
    fn destinations_stay_inside() {
        let (d, g) = gallery();
        let dest = g.destination("./upload/2030/01/01/new.jpg").unwrap();
        assert_eq!(dest, g.root().join("upload/2030/01/01/new.jpg"));
        for bad in ["../outside/x.jpg", "/etc/x", "./upload/..", ""] {
            assert!(g.destination(bad).is_err(), "{bad:?}");
        }
        std::os::unix::fs::symlink(d.path().join("outside"), g.root().join("upload/out")).unwrap();
        assert!(g.destination("./upload/out/sub/x.jpg").is_err());
    }

    #[test]
    fn extra_roots_allow_a_sibling_upload_dir() {
        let (d, g) = gallery();
        let g2 = GalleryRoot::new(g.root(), &[d.path().join("outside")]).unwrap();
        assert!(g2.resolve("../outside/secret.txt").is_ok());
    }

    #[test]
    fn missing_and_directories_are_told_apart() {
        let (_d, g) = gallery();
        assert!(matches!(
            g.resolve("./upload/none.jpg"),
            Err(FileError::Missing(_))
        ));
        assert!(matches!(
            g.resolve("./upload/2024"),
            Err(FileError::Unreadable { .. })
        ));
    }

    #[test]
    fn id_lists() {
        assert_eq!(
            parse_id_list("1,2,5-9").unwrap(),
            vec![(1, 1), (2, 2), (5, 9)]
        );
        assert!(parse_id_list("9-5").is_err());
        assert!(parse_id_list("a").is_err());
        assert!(parse_id_list("").is_err());
        for empty_item in ["1,,2", "1,2,", ",1", " , "] {
            let e = parse_id_list(empty_item).unwrap_err();
            assert!(
                e.contains("empty item") || e.contains("no photo ids"),
                "{e}"
            );
        }
    }

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
