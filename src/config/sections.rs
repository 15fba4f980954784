//! The file's sections as serde structs. A field left out takes its
//! value from the section's `Default`, the one place defaults are written;
//! fields marked "set while loading" are filled by [`super::sources`].

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::choices::{
    CannedAcl, Checksum, IfNoneMatch, KeyFormat, ServerSideEncryption, StorageClass,
};
use super::retention::RetentionConfig;
use super::snapshots::SnapshotsConfig;
use super::units;
use crate::secret::Secret;

/// The environment variable that overrides `piwigo.database_url`, so the
/// database password can live outside the file (systemd credentials,
/// docker secrets).
pub const DATABASE_URL_ENV: &str = "PIWIGO_S3UPLOAD_DATABASE_URL";

/// Where one setting came from, for `check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub setting: &'static str,
    pub from: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub piwigo: PiwigoConfig,
    pub s3: S3Config,
    #[serde(default)]
    pub monitor: MonitorConfig,
    #[serde(default)]
    pub upload: UploadConfig,
    #[serde(default)]
    pub changes: ChangesConfig,
    #[serde(default)]
    pub http: HttpConfig,
    /// Database snapshots; `None` when the section is left out.
    pub snapshots: Option<SnapshotsConfig>,
    /// What becomes of deleted photos' objects and superseded versions.
    #[serde(default)]
    pub retention: RetentionConfig,
    /// Whether the file itself holds a secret (decides the permission
    /// warning); set while loading.
    #[serde(skip)]
    pub file_holds_secret: bool,
    /// Where the database and credential settings came from, for `check`.
    #[serde(skip)]
    pub origins: Vec<Origin>,
}

/// Nothing here is required: a field left out of the file takes its value
/// from `Default`, the one place the defaults are written (so for
/// `monitor` and `upload`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Where `/healthz`, `/metrics` and `/status` are served; off when unset.
    pub listen: Option<std::net::SocketAddr>,
    /// Shared with the Piwigo plugin: `/status` and `/presign` answer only
    /// requests that carry it (`Authorization: Bearer ...`), because they
    /// show keys, paths and errors, and sign links to private objects.
    pub token: Option<Secret>,
    /// How long a presigned download link stays valid.
    #[serde(deserialize_with = "units::duration")]
    pub presign_expiry: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: None,
            token: None,
            presign_expiry: Duration::from_secs(300),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PiwigoConfig {
    /// `mysql://user:password@host:port/database`; read from Piwigo's
    /// `local/config/database.inc.php` when unset.
    #[serde(default)]
    pub database_url: Option<Secret>,
    /// A file holding the database password, for a `database_url` written
    /// without one (or Piwigo's settings file left unread).
    #[serde(default)]
    pub database_password_file: Option<PathBuf>,
    /// Piwigo's `database.inc.php`, when it is not under `root` (or the
    /// linuxserver path).
    #[serde(default)]
    pub database_settings: Option<PathBuf>,
    /// As written in the file; `table_prefix` holds the value in force.
    #[serde(default, rename = "table_prefix")]
    pub table_prefix_in_file: Option<String>,
    /// `$prefixeTable` from Piwigo's settings when the file sets none,
    /// else "piwigo_"; set while loading.
    #[serde(skip)]
    pub table_prefix: String,
    /// Piwigo's install directory: `images.path` is relative to it.
    pub root: PathBuf,
    /// Directories outside `root` that photos may legitimately live in
    /// (Piwigo's upload dir can be configured to `../photos`).
    #[serde(default)]
    pub extra_roots: Vec<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    pub bucket: String,
    /// As written in the file; `region` holds the value in force.
    #[serde(default, rename = "region")]
    pub region_in_file: Option<String>,
    /// `AWS_REGION` when the file sets none, else "us-east-1"; set while
    /// loading.
    #[serde(skip)]
    pub region: String,
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub force_path_style: bool,
    #[serde(default)]
    pub access_key_id: Option<Secret>,
    #[serde(default)]
    pub secret_access_key: Option<Secret>,
    /// Files holding the keys instead of the two lines above: a path, or a
    /// bare name looked up in $CREDENTIALS_DIRECTORY and /run/secrets.
    #[serde(default)]
    pub access_key_id_file: Option<PathBuf>,
    #[serde(default)]
    pub secret_access_key_file: Option<PathBuf>,
    #[serde(default)]
    pub session_token: Option<Secret>,
    /// The plugin's "bucket path"; normalised by `validate()`.
    #[serde(default)]
    pub prefix: String,
    #[serde(default)]
    pub key_format: KeyFormat,
    /// Base of the links shown by `status` (a CDN or public bucket URL);
    /// derived from endpoint, bucket and region when unset.
    #[serde(default)]
    pub public_url: Option<String>,
    /// The bucket's default when unset.
    #[serde(default)]
    pub storage_class: Option<StorageClass>,
    #[serde(default)]
    pub server_side_encryption: Option<ServerSideEncryption>,
    #[serde(default)]
    pub sse_kms_key_id: Option<String>,
    /// Off by default because new AWS buckets refuse ACLs.
    #[serde(default)]
    pub acl: Option<CannedAcl>,
    /// Whether the server refuses `If-None-Match: *` writes over an
    /// existing object (AWS S3 does; rclone and Garage do not): then the
    /// HEAD before each upload is skipped, one round trip less per photo.
    /// `auto` (the default) asks the server with a probe at start; on a
    /// server that ignores the header, skipping the HEAD would let an
    /// object already at the key be overwritten.
    #[serde(default)]
    pub honours_if_none_match: IfNoneMatch,
    /// What the server checks each part of a multipart upload against:
    /// `content-md5` (every server takes it; a second md5 of the parts'
    /// bytes), `crc32c` (a fraction of that CPU; only for servers that
    /// check it), or `auto` (the default: a probe at start decides).
    #[serde(default)]
    pub checksum: Checksum,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MonitorConfig {
    pub enabled: bool,
    #[serde(deserialize_with = "units::duration")]
    pub poll_interval: Duration,
    pub tag: Option<String>,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            poll_interval: Duration::from_secs(2),
            tag: None,
        }
    }
}

/// Recorded photos whose file changes get a new version: rows Piwigo
/// touched are checked at each poll, and a slow pass `stat()`s every
/// recorded file in turn.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChangesConfig {
    /// Off: nothing recorded is ever looked at again (uploads are
    /// one-time, as with the old plugin).
    pub enabled: bool,
    /// The slow pass covers every recorded file once in this period,
    /// spreading its `stat()`s evenly over it.
    #[serde(deserialize_with = "units::duration")]
    pub full_pass: Duration,
}

impl Default for ChangesConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            full_pass: Duration::from_secs(24 * 3600),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UploadConfig {
    /// Uploads at once: found by the daemon between `min_workers` and
    /// `max_workers`, or a fixed number.
    pub workers: Workers,
    /// The bounds of `workers = "auto"`.
    pub min_workers: usize,
    pub max_workers: usize,
    pub prevent_duplicates_by_md5: bool,
    /// Files larger than this go up in parts.
    #[serde(deserialize_with = "units::size")]
    pub multipart_threshold: u64,
    #[serde(deserialize_with = "units::size")]
    pub part_size: u64,
    /// Parts of one large file sent at once.
    pub part_concurrency: usize,
    /// How long a claimed photo stays with its worker without a heartbeat;
    /// after a crash, its photos come back to the queue after this long.
    #[serde(deserialize_with = "units::duration")]
    pub claim_lease: Duration,
    #[serde(deserialize_with = "units::duration")]
    pub retry_backoff_min: Duration,
    #[serde(deserialize_with = "units::duration")]
    pub retry_backoff_max: Duration,
    /// On SIGINT/SIGTERM, how long uploads in flight may take to finish
    /// before they are stopped and handed back to the queue.
    #[serde(deserialize_with = "units::duration")]
    pub shutdown_timeout: Duration,
    /// Total upload rate across all workers, in bytes per second; no cap
    /// when unset.
    #[serde(deserialize_with = "units::rate")]
    pub max_bandwidth: Option<u64>,
    /// How often progress is logged while a backlog drains.
    #[serde(deserialize_with = "units::duration")]
    pub progress_interval: Duration,
    /// A photo whose `open()` or `read()` returns nothing for this long (a
    /// hung network mount, a FIFO) fails alone as `failed_file_stalled`.
    #[serde(deserialize_with = "units::duration")]
    pub read_stall_timeout: Duration,
    /// When photos are in flight and none has settled (uploaded, recorded
    /// or failed) for this long, `/healthz` fails and the systemd watchdog
    /// is no longer fed. Raise it for very large files on slow uplinks.
    #[serde(deserialize_with = "units::duration")]
    pub no_progress_alarm: Duration,
}

impl Default for UploadConfig {
    fn default() -> Self {
        Self {
            workers: Workers::Auto,
            min_workers: 4,
            max_workers: 64,
            prevent_duplicates_by_md5: true,
            multipart_threshold: 64 * 1024 * 1024,
            part_size: 16 * 1024 * 1024,
            part_concurrency: 4,
            claim_lease: Duration::from_secs(60),
            retry_backoff_min: Duration::from_secs(10),
            retry_backoff_max: Duration::from_secs(3600),
            shutdown_timeout: Duration::from_secs(30),
            max_bandwidth: None,
            progress_interval: Duration::from_secs(30),
            read_stall_timeout: Duration::from_secs(60),
            no_progress_alarm: Duration::from_secs(30 * 60),
        }
    }
}

/// `upload.workers`: `"auto"` or a fixed number of uploads at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workers {
    Auto,
    Fixed(usize),
}

/// Where `workers = "auto"` starts: the fixed default of earlier
/// versions, which every link handles.
const AUTO_START: usize = 8;

impl UploadConfig {
    /// Uploads at once when the daemon starts, and what `restore` uses for
    /// its downloads.
    pub fn initial_workers(&self) -> usize {
        match self.workers {
            Workers::Fixed(n) => n,
            Workers::Auto => {
                AUTO_START.clamp(self.min_workers, self.max_workers.max(self.min_workers))
            }
        }
    }
}

impl fmt::Display for Workers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Fixed(n) => write!(f, "{n}"),
        }
    }
}

impl<'de> Deserialize<'de> for Workers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Workers;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"auto\" or a number of uploads at once, such as 8")
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Workers, E> {
                usize::try_from(n).map(Workers::Fixed).map_err(|_| {
                    E::custom(format!(
                        "{n} is not a number of uploads; write \"auto\" or a number such as 8"
                    ))
                })
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Workers, E> {
                usize::try_from(n).map(Workers::Fixed).map_err(|_| {
                    E::custom(format!(
                        "{n} is not a number of uploads; write \"auto\" or a number such as 8"
                    ))
                })
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Workers, E> {
                // The text is not quoted back: a secret pasted on the wrong
                // line must not reach the log.
                if s.trim().eq_ignore_ascii_case("auto") {
                    Ok(Workers::Auto)
                } else {
                    Err(E::custom(
                        "this text is not a number of uploads; write \"auto\" or a number such as 8",
                    ))
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl Config {
    pub fn database_url(&self) -> &str {
        self.piwigo
            .database_url
            .as_ref()
            .map(Secret::expose)
            .unwrap_or_default()
    }

    /// Whether a secret is written in the config itself. An access key id
    /// is redacted from logs like a secret but grants nothing without its
    /// secret key: alone it does not make a world-readable file a leak.
    pub(super) fn holds_secret(&self) -> bool {
        let id = self.s3.access_key_id.as_ref().map(|s| s.expose());
        self.secrets().iter().any(|s| Some(s.as_str()) != id)
    }

    /// Every secret value in the config, for scrubbing text that came from
    /// outside (server error messages) before it is logged or stored.
    pub fn secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        let s3 = &self.s3;
        for s in [
            &s3.access_key_id,
            &s3.secret_access_key,
            &s3.session_token,
            &self.http.token,
        ]
        .into_iter()
        .flatten()
        {
            out.push(s.expose().to_owned());
        }
        if let Ok(url) = url::Url::parse(self.database_url())
            && let Some(pw) = url.password()
        {
            out.push(pw.to_owned());
            if let Ok(decoded) = percent_encoding::percent_decode_str(pw).decode_utf8() {
                out.push(decoded.into_owned());
            }
        }
        out.retain(|s| s.len() >= 4);
        out
    }
}
