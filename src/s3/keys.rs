//! Object keys: the one place that decides where a photo lands in the
//! bucket and with which Content-Type. The six layouts are the S3Upload
//! plugin's, so a bucket filled by the plugin keeps growing the same way.

use crate::piwigo::decode_piwigo_html;
use crate::status::{Failure, Retry, Status};

// The layout is an option of the config file, and S3's key limit bounds
// `s3.prefix` there: both are defined with the config, below this module.
pub use crate::config::choices::{KeyFormat, MAX_KEY_BYTES};

/// The folder under the prefix that holds copies re-sent by `verify
/// --resend` in place of damaged objects.
pub const RESENT_DIR: &str = "s3upload-resent";
/// The folder under the prefix that holds database snapshots.
pub const SNAPSHOTS_DIR: &str = "s3upload-snapshots";
/// The folder under the prefix that holds the start-up probe's object.
pub const PROBE_DIR: &str = "s3upload-probe";
/// The folder under the prefix that holds every version of a photo (or
/// format) after its first: see [`ObjectKey::for_version`].
pub const VERSIONS_DIR: &str = "s3upload-versions";
/// Folders under the prefix that hold objects other than photos, with what
/// each holds. [`ObjectKey::for_image`] never makes a key inside one, so
/// nothing written there can ever take a photo's key, nor a photo theirs.
pub const RESERVED_DIRS: [(&str, &str); 4] = [
    (RESENT_DIR, "re-sent copies of damaged objects"),
    (SNAPSHOTS_DIR, "database snapshots"),
    (PROBE_DIR, "the start-up probe's throwaway object"),
    (VERSIONS_DIR, "new versions of changed photos"),
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("images.path `{0}` has no file name")]
    NoFileName(String),
    #[error(
        "images.{column} `{value}` contains a control character; rename the photo (or its file) in Piwigo without it"
    )]
    ControlCharacter { column: &'static str, value: String },
    #[error(
        "the key `{key}` would lie in the folder `{dir}/`, which holds {holds}: rename the album folder (or upload directory) `{dir}`"
    )]
    Reserved {
        key: String,
        dir: &'static str,
        holds: &'static str,
    },
    #[error(
        "the key `{key}...` would be {bytes} bytes, over S3's limit of 1024: shorten s3.prefix or the photo's name, or choose a key_format without the album path"
    )]
    TooLong { key: String, bytes: usize },
}

impl KeyError {
    /// None of these can succeed before the photo or the settings change.
    pub fn failure(&self) -> Failure {
        let status = match self {
            Self::TooLong { .. } => Status::FailedKeyTooLong,
            Self::NoFileName(_) | Self::ControlCharacter { .. } | Self::Reserved { .. } => {
                Status::FailedBadFileName
            }
        };
        Failure::new(
            status,
            format!("cannot name the object: {self}"),
            Retry::UntilChanged,
        )
    }
}

/// Where one photo goes and how it is labelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectKey {
    pub key: String,
    pub content_type: String,
    /// `x-amz-meta-*`: what the object says about itself (see `meta`), so
    /// it can be restored without the database.
    pub metadata: std::collections::HashMap<String, String>,
}

impl ObjectKey {
    /// Builds the key from Piwigo's `images.path` and `images.file`.
    /// `prefix` is already normalised (empty or ending in one slash).
    pub fn for_image(
        prefix: &str,
        format: KeyFormat,
        path: &str,
        file: &str,
    ) -> Result<Self, KeyError> {
        for (column, value) in [("path", path), ("file", file)] {
            if value.chars().any(char::is_control) {
                return Err(KeyError::ControlCharacter {
                    column,
                    value: value.escape_debug().to_string(),
                });
            }
        }
        // `.` and `..` segments are dropped so that no key can climb out of
        // the prefix when a server or proxy normalises the URL path.
        let segments: Vec<&str> = path
            .split(['/', '\\'])
            .filter(|s| !s.is_empty() && *s != "." && *s != "..")
            .collect();
        let (disk_name, dirs) = segments
            .split_last()
            .ok_or_else(|| KeyError::NoFileName(path.to_owned()))?;

        let rest = if dirs.first() == Some(&"galleries") {
            // Synchronised photos keep their album folders whatever the
            // format: their names are only unique within the folder.
            let mut parts: Vec<&str> = dirs[1..].to_vec();
            parts.push(disk_name);
            parts.join("/")
        } else {
            let decoded = decode_piwigo_html(file.trim());
            // A name that is a dot segment or holds a separator could climb
            // out of the prefix: fall back to the name on disk.
            let known = !decoded.is_empty()
                && decoded != "."
                && decoded != ".."
                && !decoded.contains(['/', '\\']);
            let original = if known {
                decoded
            } else {
                (*disk_name).to_owned()
            };
            let dir = if dirs.is_empty() {
                String::new()
            } else {
                format!("{}/", dirs.join("/"))
            };
            let (stamp, unique) = if known {
                split_upload_name(disk_name)
            } else {
                (None, None)
            };
            let stamped = |with_unique: bool| match (stamp, unique) {
                (Some(s), Some(u)) if with_unique => format!("{s}-{u}-{original}"),
                (Some(s), _) => format!("{s}-{original}"),
                // Not a name Piwigo's uploader made: keep the name on disk
                // so that distinct photos cannot collapse onto one key.
                (None, _) => (*disk_name).to_owned(),
            };
            match format {
                KeyFormat::None => original,
                KeyFormat::File => stamped(false),
                KeyFormat::FileUnique => stamped(true),
                KeyFormat::Path => format!("{dir}{original}"),
                KeyFormat::PathAndFile => format!("{dir}{}", stamped(false)),
                KeyFormat::PathAndFileUnique => format!("{dir}{}", stamped(true)),
            }
        };
        if let Some((first, _)) = rest.split_once('/')
            && let Some(&(dir, holds)) = RESERVED_DIRS.iter().find(|(dir, _)| *dir == first)
        {
            return Err(KeyError::Reserved {
                key: rest,
                dir,
                holds,
            });
        }
        Self::within_limit(format!("{prefix}{rest}"), mime_guess::from_path(disk_name))
    }

    /// `key` with the content type `guess` names, unless the key is over
    /// S3's limit.
    fn within_limit(key: String, guess: mime_guess::MimeGuess) -> Result<Self, KeyError> {
        let content_type = guess.first_raw().unwrap_or("application/octet-stream");
        Self::typed_within_limit(key, content_type.to_owned())
    }

    /// `key` with `content_type`, unless the key is over S3's limit: the
    /// one place every key is measured.
    fn typed_within_limit(key: String, content_type: String) -> Result<Self, KeyError> {
        if key.len() > MAX_KEY_BYTES {
            return Err(KeyError::TooLong {
                key: key.chars().take(60).collect(),
                bytes: key.len(),
            });
        }
        Ok(Self {
            key,
            content_type,
            metadata: Default::default(),
        })
    }

    /// A format of the photo at `photo`: the photo's key with the format's
    /// extension, so it lies next to the photo whatever the layout.
    pub fn for_format(photo: &ObjectKey, ext: &str) -> Result<Self, KeyError> {
        let (dir, name) = match photo.key.rsplit_once('/') {
            Some((dir, name)) => (format!("{dir}/"), name),
            None => (String::new(), photo.key.as_str()),
        };
        let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
        Self::within_limit(format!("{dir}{stem}.{ext}"), mime_guess::from_ext(ext))
    }

    /// Labels the object with the photo it holds: its id, `images.path`,
    /// md5 and format (`original` for the photo itself).
    pub fn describing(mut self, image_id: u32, path: &str, md5: &str, format: &str) -> Self {
        self.metadata = super::meta::for_upload(image_id, path, md5, format);
        self
    }
}

impl ObjectKey {
    /// Where a new version of a recorded photo or format goes:
    /// `<prefix>s3upload-versions/<image id>/<which>/<key under the prefix>`,
    /// `<which>` being `v<n>-<md5>` for the photo and
    /// `f<format id>-v<n>-<md5>` for a format, `n` the version's number
    /// (2 and up) and `md5` its bytes'. No photo's key lies in that folder,
    /// and the first two segments name one item's version with one content:
    /// two versions (of any photo, in any layout) share a key only when they
    /// are the same version of the same item with the same bytes, which is
    /// the same object. `current` is the item's key in the layout (its
    /// first version's place), so a version is found beside its name.
    pub fn for_version(
        prefix: &str,
        current: &ObjectKey,
        image_id: u32,
        format_id: Option<u32>,
        version: u32,
        md5: &str,
    ) -> Result<Self, KeyError> {
        let rest = current.key.strip_prefix(prefix).unwrap_or(&current.key);
        let which = match format_id {
            None => format!("v{version}-{md5}"),
            Some(f) => format!("f{f}-v{version}-{md5}"),
        };
        let key = format!("{prefix}{VERSIONS_DIR}/{image_id}/{which}/{rest}");
        Self::typed_within_limit(key, current.content_type.clone())
    }

    /// The version number a key names: `n` for a key
    /// [`for_version`](Self::for_version) made, 1 for any other (a first
    /// upload, or an object not made by a version).
    pub fn version_of(prefix: &str, key: &str) -> u32 {
        let Some(rest) = key
            .strip_prefix(prefix)
            .and_then(|r| r.strip_prefix(VERSIONS_DIR))
            .and_then(|r| r.strip_prefix('/'))
        else {
            return 1;
        };
        let mut segments = rest.split('/');
        let (Some(id), Some(which)) = (segments.next(), segments.next()) else {
            return 1;
        };
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return 1;
        }
        // `v<n>-<md5>` or `f<format id>-v<n>-<md5>`.
        let which = match which.split_once("-v") {
            Some((f, v)) if f.starts_with('f') => v,
            _ => which.strip_prefix('v').unwrap_or(""),
        };
        which
            .split_once('-')
            .and_then(|(n, _)| n.parse().ok())
            .unwrap_or(1)
    }

    /// Where a good copy of the damaged object at `old_key` goes:
    /// `<prefix>s3upload-resent/<stamp>/<the old key under the prefix>`.
    /// No photo's key lies in that folder, and `stamp` (the repair's time)
    /// keeps a later repair of the same object off this one's key.
    pub fn resent(prefix: &str, old_key: &str, stamp: &str) -> Result<Self, KeyError> {
        let rest = old_key
            .strip_prefix(prefix)
            .unwrap_or_else(|| old_key.rsplit('/').next().unwrap_or(old_key));
        let key = format!("{prefix}{RESENT_DIR}/{stamp}/{rest}");
        Self::within_limit(key, mime_guess::from_path(rest))
    }
}

/// Splits Piwigo's upload name `YYYYMMDDhhmmss-xxxxxxxx.ext` into the
/// timestamp and the random part; `None`s for any other name.
fn split_upload_name(disk_name: &str) -> (Option<&str>, Option<&str>) {
    let stem = disk_name
        .rsplit_once('.')
        .map_or(disk_name, |(stem, _)| stem);
    match stem.split_once('-') {
        Some((stamp, unique))
            if stamp.len() == 14
                && stamp.bytes().all(|b| b.is_ascii_digit())
                && !unique.is_empty()
                && unique.bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            (Some(stamp), Some(unique))
        }
        _ => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPLOAD: &str = "./upload/2013/03/31/20130331013511-5d467604.jpg";

    fn key(format: KeyFormat, path: &str, file: &str) -> String {
        ObjectKey::for_image("", format, path, file).unwrap().key
    }

    #[test]
    fn a_format_takes_the_photo_key_with_its_extension() {
        let photo = ObjectKey::for_image(
            "photos/",
            KeyFormat::File,
            "./upload/2024/01/02/20240102010203-abcd1234.jpg",
            "beach.jpg",
        )
        .unwrap();
        let raw = ObjectKey::for_format(&photo, "cr2").unwrap();
        assert_eq!(raw.key, "photos/20240102010203-beach.cr2");
        let bare = ObjectKey {
            key: "x".into(),
            ..photo.clone()
        };
        assert_eq!(ObjectKey::for_format(&bare, "tif").unwrap().key, "x.tif");
        let long = "e".repeat(MAX_KEY_BYTES);
        assert!(matches!(
            ObjectKey::for_format(&photo, &long),
            Err(KeyError::TooLong { .. })
        ));
    }

    #[test]
    fn the_six_plugin_formats() {
        let cases = [
            (KeyFormat::None, "beach.jpg"),
            (KeyFormat::File, "20130331013511-beach.jpg"),
            (KeyFormat::FileUnique, "20130331013511-5d467604-beach.jpg"),
            (KeyFormat::Path, "upload/2013/03/31/beach.jpg"),
            (
                KeyFormat::PathAndFile,
                "upload/2013/03/31/20130331013511-beach.jpg",
            ),
            (
                KeyFormat::PathAndFileUnique,
                "upload/2013/03/31/20130331013511-5d467604-beach.jpg",
            ),
        ];
        for (format, want) in cases {
            assert_eq!(
                key(format, UPLOAD, "beach.jpg"),
                want,
                "{}",
                format.as_str()
            );
        }
    }

    #[test]
    fn prefix_is_prepended() {
        let k = ObjectKey::for_image("photos/", KeyFormat::File, UPLOAD, "beach.jpg").unwrap();
        assert_eq!(k.key, "photos/20130331013511-beach.jpg");
        assert_eq!(k.content_type, "image/jpeg");
    }

    #[test]
    fn galleries_keep_their_folders_in_every_format() {
        for format in [
            KeyFormat::None,
            KeyFormat::File,
            KeyFormat::FileUnique,
            KeyFormat::Path,
            KeyFormat::PathAndFile,
            KeyFormat::PathAndFileUnique,
        ] {
            assert_eq!(
                key(format, "./galleries/album/sub/file.jpg", "file.jpg"),
                "album/sub/file.jpg"
            );
        }
    }

    #[test]
    fn awkward_names_survive() {
        let cases = [
            ("my beach.jpg", "20130331013511-my beach.jpg"),
            ("plage été ☀.jpg", "20130331013511-plage été ☀.jpg"),
            ("a+b.jpg", "20130331013511-a+b.jpg"),
            ("#1.jpg", "20130331013511-#1.jpg"),
            ("100%.jpg", "20130331013511-100%.jpg"),
            ("Tom &amp; Jerry.jpg", "20130331013511-Tom & Jerry.jpg"),
            ("a &amp;lt; b.jpg", "20130331013511-a &lt; b.jpg"),
            ("it&#039;s.jpg", "20130331013511-it's.jpg"),
            ("lone & sign.jpg", "20130331013511-lone & sign.jpg"),
        ];
        for (file, want) in cases {
            assert_eq!(key(KeyFormat::File, UPLOAD, file), want);
        }
        assert_eq!(
            key(
                KeyFormat::None,
                "./galleries/Été 2024/a&b #1.jpg",
                "a&amp;b #1.jpg"
            ),
            "Été 2024/a&b #1.jpg"
        );
    }

    #[test]
    fn dot_segments_never_leave_the_prefix() {
        let k = ObjectKey::for_image(
            "p/",
            KeyFormat::Path,
            "../photos/2013/../../x/20130331013511-5d467604.jpg",
            "x.jpg",
        )
        .unwrap();
        assert_eq!(k.key, "p/photos/2013/x/x.jpg");
        assert!(!k.key.contains(".."));
        for file in ["..", ".", "a/b.jpg", "a\\b.jpg"] {
            for format in [KeyFormat::None, KeyFormat::Path] {
                let k = ObjectKey::for_image("p/", format, UPLOAD, file).unwrap();
                let rest = k.key.strip_prefix("p/").unwrap();
                assert!(
                    rest.split('/')
                        .all(|seg| seg != "." && seg != ".." && !seg.is_empty()),
                    "{file:?} {format:?}: {}",
                    k.key
                );
            }
        }
    }

    #[test]
    fn non_piwigo_names_fall_back_to_the_name_on_disk() {
        assert_eq!(
            key(KeyFormat::File, "./upload/x/IMG_0001.JPG", "holiday.jpg"),
            "IMG_0001.JPG"
        );
        assert_eq!(
            key(
                KeyFormat::PathAndFileUnique,
                "./upload/x/IMG_0001.JPG",
                "h.jpg"
            ),
            "upload/x/IMG_0001.JPG"
        );
        assert_eq!(
            key(KeyFormat::File, UPLOAD, ""),
            "20130331013511-5d467604.jpg"
        );
    }

    #[test]
    fn broken_paths_are_errors() {
        assert!(matches!(
            ObjectKey::for_image("", KeyFormat::File, "./", "a.jpg"),
            Err(KeyError::NoFileName(_))
        ));
        assert!(matches!(
            ObjectKey::for_image("", KeyFormat::File, "./upload/a\0.jpg", "a.jpg"),
            Err(KeyError::ControlCharacter { column: "path", .. })
        ));
        // The message names the column that holds the bad character.
        let e = ObjectKey::for_image("", KeyFormat::File, UPLOAD, "a\nb.jpg").unwrap_err();
        assert!(matches!(
            e,
            KeyError::ControlCharacter { column: "file", .. }
        ));
        assert!(e.to_string().starts_with("images.file `a\\nb.jpg`"), "{e}");
    }

    #[test]
    fn keys_over_1024_bytes_are_refused_before_any_request() {
        let name = format!("{}.jpg", "é".repeat(509));
        let fits = ObjectKey::for_image("p/", KeyFormat::None, UPLOAD, &name).unwrap();
        assert_eq!(fits.key.len(), 1024);
        let long = format!("{}.jpg", "é".repeat(510));
        let e = ObjectKey::for_image("p/", KeyFormat::None, UPLOAD, &long).unwrap_err();
        assert!(matches!(e, KeyError::TooLong { bytes: 1026, .. }), "{e:?}");
        assert_eq!(e.failure().status, Status::FailedKeyTooLong);
        assert_eq!(e.failure().retry, Retry::UntilChanged);
    }

    #[test]
    fn no_photo_key_lies_in_a_reserved_folder() {
        for (dir, _) in RESERVED_DIRS {
            for format in [
                KeyFormat::None,
                KeyFormat::Path,
                KeyFormat::PathAndFileUnique,
            ] {
                let path = format!("./galleries/{dir}/x/a.jpg");
                let e = ObjectKey::for_image("p/", format, &path, "a.jpg").unwrap_err();
                assert!(matches!(e, KeyError::Reserved { .. }), "{e}");
                assert!(e.to_string().contains(&format!("`{dir}/`")), "{e}");
            }
            let path = format!("./{dir}/a.jpg");
            let e = ObjectKey::for_image("p/", KeyFormat::Path, &path, "a.jpg").unwrap_err();
            assert!(matches!(e, KeyError::Reserved { .. }), "{e}");
            // A file of that name is not the folder.
            assert!(ObjectKey::for_image("p/", KeyFormat::None, UPLOAD, dir).is_ok());
        }
        let r = ObjectKey::resent("p/", "p/upload/a b.jpg", "20240101T000000Z").unwrap();
        assert_eq!(r.key, "p/s3upload-resent/20240101T000000Z/upload/a b.jpg");
        assert_eq!(r.content_type, "image/jpeg");
        let elsewhere = ObjectKey::resent("p/", "other/x.cr2", "s").unwrap();
        assert_eq!(elsewhere.key, "p/s3upload-resent/s/x.cr2");
    }

    const LAYOUTS: [KeyFormat; 6] = [
        KeyFormat::None,
        KeyFormat::File,
        KeyFormat::FileUnique,
        KeyFormat::Path,
        KeyFormat::PathAndFile,
        KeyFormat::PathAndFileUnique,
    ];

    /// Photos chosen to collide in the layouts that drop the path or the
    /// unique part: same names in other folders, same upload second,
    /// synchronised albums, a format with the photo's own extension.
    const PHOTOS: [(&str, &str); 6] = [
        (
            "./upload/2024/01/02/20240102010203-abcd1234.jpg",
            "beach.jpg",
        ),
        (
            "./upload/2024/01/03/20240102010203-ffff0000.jpg",
            "beach.jpg",
        ),
        ("./upload/2024/01/02/20240102010203-abcd1234.jpg", "v2.jpg"),
        ("./galleries/album/beach.jpg", "beach.jpg"),
        (
            "./galleries/s3upload-versionsx/1/v2-x/beach.jpg",
            "beach.jpg",
        ),
        ("./upload/x/IMG_0001.JPG", "h.jpg"),
    ];

    #[test]
    fn version_keys_never_meet_a_photo_key_nor_each_other_in_any_layout() {
        let md5s = [
            "0cc175b9c0f1b6a831c399e269772661",
            "92eb5ffee6ae2fec3ad71c777531578f",
        ];
        for prefix in ["", "p/"] {
            for format in LAYOUTS {
                let mut photo_keys = std::collections::HashSet::new();
                let mut version_keys = std::collections::HashMap::new();
                for (id, (path, file)) in (1u32..).zip(PHOTOS) {
                    let photo = ObjectKey::for_image(prefix, format, path, file).unwrap();
                    // Formats 10·id and 10·id+1, one with the photo's extension.
                    let raw = ObjectKey::for_format(&photo, "cr2").unwrap();
                    let same = ObjectKey::for_format(&photo, "jpg").unwrap();
                    photo_keys.extend([photo.key.clone(), raw.key.clone(), same.key.clone()]);
                    let items = [
                        (None, &photo),
                        (Some(10 * id), &raw),
                        (Some(10 * id + 1), &same),
                    ];
                    for (format_id, current) in items {
                        for n in [2, 3, 12] {
                            for md5 in md5s {
                                let v =
                                    ObjectKey::for_version(prefix, current, id, format_id, n, md5)
                                        .unwrap();
                                let rest = v.key.strip_prefix(prefix).unwrap();
                                assert!(rest.starts_with("s3upload-versions/"), "{}", v.key);
                                let who = (id, format_id, n, md5);
                                if let Some(other) = version_keys.insert(v.key.clone(), who) {
                                    panic!("{format:?}: {} for {who:?} and {other:?}", v.key);
                                }
                            }
                        }
                    }
                }
                for k in version_keys.keys() {
                    assert!(!photo_keys.contains(k), "{format:?}: {k}");
                }
                // And no photo's key can be made inside the folder.
                let inside = ObjectKey::for_image(
                    prefix,
                    format,
                    "./galleries/s3upload-versions/1/v2-x/beach.jpg",
                    "beach.jpg",
                );
                assert!(
                    matches!(inside, Err(KeyError::Reserved { .. })),
                    "{inside:?}"
                );
            }
        }
        let photo = ObjectKey::for_image("p/", KeyFormat::Path, UPLOAD, "beach.jpg").unwrap();
        let v = ObjectKey::for_version("p/", &photo, 7, None, 2, md5s[0]).unwrap();
        assert_eq!(
            v.key,
            "p/s3upload-versions/7/v2-0cc175b9c0f1b6a831c399e269772661/upload/2013/03/31/beach.jpg"
        );
        assert_eq!(v.content_type, "image/jpeg");
        assert_eq!(ObjectKey::version_of("p/", &v.key), 2);
        assert_eq!(ObjectKey::version_of("p/", &photo.key), 1);
        assert_eq!(ObjectKey::version_of("", &v.key), 1, "another prefix");
        let f = ObjectKey::for_version("p/", &photo, 7, Some(3), 12, md5s[0]).unwrap();
        assert_eq!(ObjectKey::version_of("p/", &f.key), 12);
        let f = ObjectKey::for_version("p/", &photo, 7, Some(3), 2, md5s[0]).unwrap();
        assert!(
            f.key.starts_with("p/s3upload-versions/7/f3-v2-0cc1"),
            "{}",
            f.key
        );
        let long = ObjectKey {
            key: format!("p/{}", "e".repeat(990)),
            ..photo
        };
        assert!(matches!(
            ObjectKey::for_version("p/", &long, 7, None, 2, md5s[0]),
            Err(KeyError::TooLong { .. })
        ));
    }

    #[test]
    fn content_types_follow_the_extension() {
        let ct = |p: &str| {
            ObjectKey::for_image("", KeyFormat::None, p, "")
                .unwrap()
                .content_type
        };
        assert_eq!(ct("./galleries/a/b.png"), "image/png");
        assert_eq!(ct("./galleries/a/b.MP4"), "video/mp4");
        assert_eq!(ct("./galleries/a/b.unknownext"), "application/octet-stream");
    }
}
