//! The one TOML file an admin edits: serde structs, each section's
//! defaults in its `Default`, and strict parsing whose errors name the key
//! and line. `choices` holds the options with a fixed set of values;
//! `validate` the checks whose errors name the field and the fix.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

pub mod choices;
mod retention;
mod snapshots;
mod validate;

pub use choices::{
    CannedAcl, Checksum, IfNoneMatch, KeyFormat, ServerSideEncryption, StorageClass,
};
pub use retention::{Retain, RetentionConfig, Share};
pub use snapshots::SnapshotsConfig;

/// The environment variable that overrides `piwigo.database_url`, so the
/// database password can live outside the file (systemd credentials,
/// docker secrets).
pub const DATABASE_URL_ENV: &str = "PIWIGO_S3UPLOAD_DATABASE_URL";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config: cannot read {path}: {source} ({fix})")]
    Read {
        path: PathBuf,
        source: std::io::Error,
        /// What to do, which depends on why it could not be read.
        fix: String,
    },
    #[error("config: {path} line {line}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("config: {field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    PiwigoSettings(#[from] crate::database_inc::SettingsError),
    #[error(transparent)]
    SecretFile(#[from] crate::secret_file::SecretFileError),
}

impl ConfigError {
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }
}

/// A string that never shows up in `Debug` or `Display` output, so a
/// secret cannot leak through a log line, an error or a panic message.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
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
    pub origins: Vec<crate::sources::Origin>,
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
    #[serde(deserialize_with = "duration")]
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
    #[serde(deserialize_with = "duration")]
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
    #[serde(deserialize_with = "duration")]
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
    #[serde(deserialize_with = "size")]
    pub multipart_threshold: u64,
    #[serde(deserialize_with = "size")]
    pub part_size: u64,
    /// Parts of one large file sent at once.
    pub part_concurrency: usize,
    /// How long a claimed photo stays with its worker without a heartbeat;
    /// after a crash, its photos come back to the queue after this long.
    #[serde(deserialize_with = "duration")]
    pub claim_lease: Duration,
    #[serde(deserialize_with = "duration")]
    pub retry_backoff_min: Duration,
    #[serde(deserialize_with = "duration")]
    pub retry_backoff_max: Duration,
    /// On SIGINT/SIGTERM, how long uploads in flight may take to finish
    /// before they are stopped and handed back to the queue.
    #[serde(deserialize_with = "duration")]
    pub shutdown_timeout: Duration,
    /// Total upload rate across all workers, in bytes per second; no cap
    /// when unset.
    #[serde(deserialize_with = "rate")]
    pub max_bandwidth: Option<u64>,
    /// How often progress is logged while a backlog drains.
    #[serde(deserialize_with = "duration")]
    pub progress_interval: Duration,
    /// A photo whose `open()` or `read()` returns nothing for this long (a
    /// hung network mount, a FIFO) fails alone as `failed_file_stalled`.
    #[serde(deserialize_with = "duration")]
    pub read_stall_timeout: Duration,
    /// When photos are in flight and none has settled (uploaded, recorded
    /// or failed) for this long, `/healthz` fails and the systemd watchdog
    /// is no longer fed. Raise it for very large files on slow uplinks.
    #[serde(deserialize_with = "duration")]
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

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text).map_err(|e| {
        serde::de::Error::custom(format!(
            "`{text}` is not a duration ({e}); write it like \"2s\", \"500ms\" or \"5m\""
        ))
    })
}

fn size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let text = String::deserialize(d)?;
    parse_size(&text).map_err(serde::de::Error::custom)
}

fn rate<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let text = String::deserialize(d)?;
    let size = text.trim().strip_suffix("/s").unwrap_or(&text);
    match parse_size(size) {
        Ok(0) => Err(serde::de::Error::custom(
            "a bandwidth of 0 would stop every upload; remove the line for no cap",
        )),
        Ok(n) => Ok(Some(n)),
        Err(_) => Err(serde::de::Error::custom(format!(
            "`{text}` is not a rate; write it like \"20MiB/s\""
        ))),
    }
}

/// Parses "64MiB", "5 MB", "1048576": sizes as admins write them.
pub fn parse_size(text: &str) -> Result<u64, String> {
    bytesize::ByteSize::from_str(text.trim())
        .map(|b| b.as_u64())
        .map_err(|_| format!("`{text}` is not a size; write it like \"16MiB\" or \"64MB\""))
}

/// Far above any real config file; a path to `/dev/zero` or a huge file by
/// mistake is refused instead of read into memory.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Reads a regular file of at most [`MAX_CONFIG_BYTES`]. Devices and FIFOs
/// are refused before they are opened: reading them never ends or blocks.
fn read_capped(path: &Path) -> std::io::Result<String> {
    use std::io::{Error, ErrorKind, Read};
    if !std::fs::metadata(path)?.is_file() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "not a regular file (a device, FIFO or directory)",
        ));
    }
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_CONFIG_BYTES + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(Error::new(
            ErrorKind::InvalidData,
            format!("larger than {MAX_CONFIG_BYTES} bytes; a config file is a few KiB"),
        ));
    }
    Ok(text)
}

impl Config {
    /// Reads, parses and validates the file, then applies the environment
    /// override. Nothing here touches the network or the database.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = read_capped(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            fix: read_fix(path, &source),
            source,
        })?;
        let env_url = std::env::var(DATABASE_URL_ENV).ok();
        Self::from_toml(&text, path, env_url)
    }

    pub fn from_toml(
        text: &str,
        path: &Path,
        env_database_url: Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| parse_error(&e, text, path))?;
        config.file_holds_secret = config.holds_secret();
        crate::sources::apply(
            &mut config,
            crate::sources::Environment::current(env_database_url),
        )?;
        config.validate()?;
        Ok(config)
    }

    pub fn database_url(&self) -> &str {
        self.piwigo
            .database_url
            .as_ref()
            .map(Secret::expose)
            .unwrap_or_default()
    }

    /// Every secret value in the config, for scrubbing text that came from
    /// outside (server error messages) before it is logged or stored.
    /// Whether a secret is written in the config itself. An access key id
    /// is redacted from logs like a secret but grants nothing without its
    /// secret key: alone it does not make a world-readable file a leak.
    fn holds_secret(&self) -> bool {
        let id = self.s3.access_key_id.as_ref().map(|s| s.expose());
        self.secrets().iter().any(|s| Some(s.as_str()) != id)
    }

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

/// Keys whose values must not be echoed, even when they are malformed.
const SECRET_KEYS: &[&str] = &[
    "database_url",
    "access_key_id",
    "secret_access_key",
    "session_token",
];

/// A parse error that names the line and the key but never quotes the
/// line (it may hold a secret), nor the value of a secret key.
fn parse_error(e: &toml::de::Error, text: &str, path: &Path) -> ConfigError {
    let (line, key) = match e.span() {
        Some(span) => {
            let start = span.start.min(text.len());
            let line_no = text.as_bytes()[..start]
                .iter()
                .filter(|b| **b == b'\n')
                .count()
                + 1;
            let line_text = text.lines().nth(line_no - 1).unwrap_or_default();
            let key = line_text
                .split_once('=')
                .map(|(k, _)| k.trim().to_owned())
                .filter(|k| {
                    !k.is_empty()
                        && k.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                });
            // The section the line is in, so the key reads as it is
            // documented (`s3.acl`, not `acl`).
            let section = text
                .lines()
                .take(line_no - 1)
                .map(str::trim)
                .filter(|l| l.starts_with('[') && l.ends_with(']'))
                .last()
                .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_owned());
            let field = |k: &String| match &section {
                Some(section) => format!("{section}.{k}"),
                None => k.clone(),
            };
            (line_no, key.map(|k| (field(&k), k)))
        }
        None => (0, None),
    };
    let message = match &key {
        Some((field, k)) if SECRET_KEYS.contains(&k.as_str()) => {
            format!("{field}: not a valid value (it must be a quoted string)")
        }
        Some((field, k)) if !e.message().contains(k.as_str()) => {
            format!("{field}: {}", e.message())
        }
        _ => e.message().to_owned(),
    };
    ConfigError::Parse {
        path: path.to_owned(),
        line,
        message,
    }
}

/// The way out of a config that cannot be read. A file that exists but is
/// not readable is not the wrong file: say whose it is, who asks, and how
/// the daemon's user gets to read it.
fn read_fix(path: &Path, e: &std::io::Error) -> String {
    use crate::accounts::{self, DAEMON_USER};
    if e.kind() != std::io::ErrorKind::PermissionDenied {
        return "pass the right file with --config PATH".into();
    }
    let file = accounts::describe_file(path)
        .unwrap_or_else(|| "its directory cannot be looked into".into());
    let user = accounts::current_user();
    format!(
        "{file}; the daemon runs as user {user}: as root, `chgrp {DAEMON_USER} {p} && chmod 0640 {p}` (the package's group), or `chown {user} {p} && chmod 0600 {p}`",
        p = path.display()
    )
}

/// Whether users other than the owner and group can read the file: worth
/// a warning when it holds a secret.
pub fn readable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o004 != 0)
}

/// The plugin's bucket path: no leading slash, exactly one trailing slash,
/// empty for the bucket root.
pub fn normalize_prefix(prefix: &str) -> String {
    let segments: Vec<&str> = prefix
        .split('/')
        .filter(|s| !s.is_empty() && *s != "." && *s != "..")
        .collect();
    if segments.is_empty() {
        String::new()
    } else {
        format!("{}/", segments.join("/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[piwigo]
database_url = "mysql://piwigo:hunter2secret@127.0.0.1:3306/piwigo"
root = "/var/www/html/piwigo"
[s3]
bucket = "photos"
"#;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(text, Path::new("test.toml"), None)
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.piwigo.table_prefix, "piwigo_");
        assert_eq!(c.s3.region, "us-east-1");
        assert_eq!(c.s3.key_format, KeyFormat::File);
        assert!(c.monitor.enabled);
        assert_eq!(c.monitor.poll_interval, Duration::from_secs(2));
        assert_eq!(c.upload.workers, Workers::Auto);
        assert_eq!(c.upload.initial_workers(), 8);
        assert!(c.upload.prevent_duplicates_by_md5);
        assert!(c.changes.enabled);
        assert_eq!(c.changes.full_pass, Duration::from_secs(86_400));
        assert_eq!(c.http.presign_expiry, Duration::from_secs(300));
    }

    #[test]
    fn if_none_match_is_auto_by_default_and_old_flags_still_read() {
        assert_eq!(
            parse(MINIMAL).unwrap().s3.honours_if_none_match,
            IfNoneMatch::Auto
        );
        for (written, want) in [
            ("\"auto\"", IfNoneMatch::Auto),
            ("true", IfNoneMatch::Honoured),
            ("false", IfNoneMatch::Ignored),
        ] {
            let c = parse(&format!("{MINIMAL}honours_if_none_match = {written}\n")).unwrap();
            assert_eq!(c.s3.honours_if_none_match, want, "{written}");
        }
        let err = parse(&format!("{MINIMAL}honours_if_none_match = \"yes\"\n"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("honours_if_none_match") && err.contains("\"auto\""),
            "{err}"
        );
    }

    #[test]
    fn checksum_is_auto_by_default_and_names_its_choices() {
        assert_eq!(parse(MINIMAL).unwrap().s3.checksum, Checksum::Auto);
        for want in [Checksum::Auto, Checksum::ContentMd5, Checksum::Crc32c] {
            let c = parse(&format!("{MINIMAL}checksum = \"{}\"\n", want.as_str())).unwrap();
            assert_eq!(c.s3.checksum, want);
        }
        let err = parse(&format!("{MINIMAL}checksum = \"sha256\"\n"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("checksum") && err.contains("content-md5") && err.contains("crc32c"),
            "{err}"
        );
    }

    #[test]
    fn a_section_given_in_part_keeps_the_other_defaults() {
        let c = parse(&format!(
            "{MINIMAL}[monitor]\ntag = \"backup\"\n[upload]\nworkers = 2\n[http]\nlisten = \"127.0.0.1:9187\"\n"
        ))
        .unwrap();
        assert!(c.monitor.enabled);
        assert_eq!(c.monitor.poll_interval, Duration::from_secs(2));
        assert_eq!(c.upload.workers, Workers::Fixed(2));
        assert_eq!(c.upload.part_size, 16 * 1024 * 1024);
        assert_eq!(c.upload.no_progress_alarm, Duration::from_secs(30 * 60));
        assert_eq!(c.upload.max_bandwidth, None);
        assert_eq!(c.http.presign_expiry, Duration::from_secs(300));
    }

    #[test]
    fn workers_are_auto_or_a_number_within_bounds() {
        let upload = |lines: &str| parse(&format!("{MINIMAL}[upload]\n{lines}\n"));
        let c = upload("workers = \"auto\"\nmin_workers = 2\nmax_workers = 32").unwrap();
        assert_eq!(c.upload.workers, Workers::Auto);
        assert_eq!((c.upload.min_workers, c.upload.max_workers), (2, 32));
        assert_eq!(c.upload.initial_workers(), 8);
        // The start follows the bounds.
        let c = upload("min_workers = 12").unwrap();
        assert_eq!(c.upload.initial_workers(), 12);
        let c = upload("max_workers = 6").unwrap();
        assert_eq!(c.upload.initial_workers(), 6);
        // A number is a fixed figure, whatever the bounds say.
        let c = upload("workers = 24\nmax_workers = 6").unwrap();
        assert_eq!(c.upload.initial_workers(), 24);
        for (lines, named) in [
            ("workers = \"lots\"", "workers"),
            ("workers = 300", "upload.workers"),
            ("min_workers = 0", "upload.min_workers"),
            ("max_workers = 257", "upload.max_workers"),
            ("min_workers = 16\nmax_workers = 8", "upload.min_workers"),
        ] {
            let e = upload(lines).unwrap_err().to_string();
            assert!(e.contains(named), "{lines}: {e}");
            assert!(
                e.contains("auto") || e.contains("max_workers") || e.contains("1 to 256"),
                "{lines}: {e}"
            );
        }
        let e = upload("workers = \"lots\"").unwrap_err().to_string();
        assert!(!e.contains("lots"), "{e}");
    }

    #[test]
    fn example_config_parses() {
        let text = include_str!("../../config.example.toml");
        let c = Config::from_toml(text, Path::new("t"), Some("mysql://u:p@h/db".into())).unwrap();
        assert_eq!(c.s3.prefix, "photos/");
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let err = parse(&format!("{MINIMAL}colour = \"blue\"\n")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("colour"), "{text}");
        assert!(text.contains("line 7"), "{text}");
    }

    #[test]
    fn missing_required_key_is_named() {
        let err =
            parse("[piwigo]\nroot = \"/x\"\ndatabase_url = \"mysql://a@b/c\"\n[s3]\n").unwrap_err();
        assert!(err.to_string().contains("bucket"), "{err}");
    }

    #[test]
    fn bad_duration_and_size_are_explained() {
        let err = parse(&format!("{MINIMAL}[monitor]\npoll_interval = \"soon\"\n")).unwrap_err();
        assert!(err.to_string().contains("not a duration"), "{err}");
        let err = parse(&format!("{MINIMAL}[upload]\npart_size = \"big\"\n")).unwrap_err();
        assert!(err.to_string().contains("not a size"), "{err}");
        let err = parse(&format!("{MINIMAL}[upload]\npart_size = \"1MiB\"\n")).unwrap_err();
        assert!(err.to_string().contains("upload.part_size"), "{err}");
    }

    #[test]
    fn bad_database_url_never_echoes_the_password() {
        let text = MINIMAL.replace("mysql://", "postgres://");
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("piwigo.database_url"), "{err}");
        assert!(!err.contains("hunter2secret"), "{err}");
        let text = MINIMAL.replace(
            "mysql://piwigo:hunter2secret@127.0.0.1:3306/piwigo",
            "hunter2secret",
        );
        let err = parse(&text).unwrap_err().to_string();
        assert!(!err.contains("hunter2secret"), "{err}");
    }

    #[test]
    fn environment_overrides_database_url() {
        let text = MINIMAL.replace(
            "database_url = \"mysql://piwigo:hunter2secret@127.0.0.1:3306/piwigo\"\n",
            "",
        );
        assert!(parse(&text).is_err());
        let c = Config::from_toml(
            &text,
            Path::new("t"),
            Some("mysql://u:p@db:3306/gallery".into()),
        )
        .unwrap();
        assert_eq!(c.database_url(), "mysql://u:p@db:3306/gallery");
    }

    #[test]
    fn half_a_key_pair_is_refused() {
        let err = parse(&format!("{MINIMAL}access_key_id = \"AKIA1234\"\n")).unwrap_err();
        assert!(err.to_string().contains("s3.secret_access_key"), "{err}");
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let text = format!(
            "{MINIMAL}access_key_id = \"AKIAEXAMPLEKEY\"\nsecret_access_key = \"sup3rs3cr3t\"\n"
        );
        let c = parse(&text).unwrap();
        let dbg = format!("{c:?}");
        for s in ["AKIAEXAMPLEKEY", "sup3rs3cr3t", "hunter2secret"] {
            assert!(!dbg.contains(s), "{s} leaked in {dbg}");
        }
        assert!(c.secrets().contains(&"hunter2secret".to_string()));
        assert!(c.secrets().contains(&"sup3rs3cr3t".to_string()));
    }

    #[test]
    fn bad_table_prefix_and_endpoint_are_named() {
        let err = parse(&MINIMAL.replace("[s3]", "table_prefix = \"pi wi\"\n[s3]")).unwrap_err();
        assert!(err.to_string().contains("piwigo.table_prefix"), "{err}");
        let err = parse(&format!("{MINIMAL}endpoint = \"127.0.0.1:9000\"\n")).unwrap_err();
        assert!(err.to_string().contains("s3.endpoint"), "{err}");
    }

    #[test]
    fn type_errors_name_the_key_and_hide_secret_values() {
        let err = parse(&format!("{MINIMAL}force_path_style = \"yes\"\n")).unwrap_err();
        assert!(err.to_string().contains("force_path_style"), "{err}");
        let err = parse(&format!("{MINIMAL}secret_access_key = 98765432123\n")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("secret_access_key"), "{text}");
        assert!(!text.contains("98765432123"), "{text}");
    }

    #[test]
    fn a_prefix_leaving_no_room_for_names_is_refused() {
        let long = MINIMAL.replace("[s3]", &format!("[s3]\nprefix = \"{}\"", "p".repeat(1100)));
        let err = parse(&long).unwrap_err().to_string();
        assert!(err.contains("s3.prefix") && err.contains("1024"), "{err}");
        let fits = MINIMAL.replace("[s3]", &format!("[s3]\nprefix = \"{}\"", "p".repeat(700)));
        assert!(parse(&fits).is_ok());
    }

    #[test]
    fn prefix_is_normalised() {
        assert_eq!(normalize_prefix(""), "");
        assert_eq!(normalize_prefix("/"), "");
        assert_eq!(normalize_prefix("/photos"), "photos/");
        assert_eq!(normalize_prefix("photos//2024/"), "photos/2024/");
        assert_eq!(normalize_prefix("a/../b"), "a/b/");
    }

    #[test]
    fn bandwidth_storage_and_encryption_options() {
        let c = parse(&format!("{MINIMAL}storage_class = \"STANDARD_IA\"\nserver_side_encryption = \"aws:kms\"\nsse_kms_key_id = \"k1\"\n[upload]\nmax_bandwidth = \"20MiB/s\"\n[http]\nlisten = \"127.0.0.1:9187\"\n")).unwrap();
        assert_eq!(c.upload.max_bandwidth, Some(20 * 1024 * 1024));
        assert_eq!(c.http.listen.unwrap().port(), 9187);
        let err = parse(&format!("{MINIMAL}sse_kms_key_id = \"k\"\n")).unwrap_err();
        assert!(err.to_string().contains("s3.sse_kms_key_id"), "{err}");
        let err = parse(&format!(
            "{MINIMAL}server_side_encryption = \"AES256\"\nsse_kms_key_id = \"k\"\n"
        ))
        .unwrap_err();
        assert!(err.to_string().contains("s3.sse_kms_key_id"), "{err}");
        let dsse =
            format!("{MINIMAL}server_side_encryption = \"aws:kms:dsse\"\nsse_kms_key_id = \"k\"\n");
        assert!(parse(&dsse).is_ok());
        let err = parse(&format!("{MINIMAL}[upload]\nmax_bandwidth = \"fast\"\n")).unwrap_err();
        assert!(err.to_string().contains("not a rate"), "{err}");
        let err = parse(&format!("{MINIMAL}[http]\nlisten = \"nowhere\"\n")).unwrap_err();
        assert!(
            err.to_string().contains("listen") || err.to_string().contains("socket"),
            "{err}"
        );
    }

    /// A wrong value names the key and its line and lists what is
    /// accepted; each accepted value reads back as the variant whose
    /// `as_str()` is that same text, which S3 and the stored fingerprint
    /// see.
    #[test]
    fn fixed_choice_options_list_and_keep_their_values() {
        let cases: [(&str, &[&str]); 3] = [
            (
                "storage_class",
                &[
                    "STANDARD",
                    "REDUCED_REDUNDANCY",
                    "STANDARD_IA",
                    "ONEZONE_IA",
                    "INTELLIGENT_TIERING",
                    "GLACIER",
                    "DEEP_ARCHIVE",
                    "GLACIER_IR",
                    "EXPRESS_ONEZONE",
                ],
            ),
            (
                "server_side_encryption",
                &["AES256", "aws:kms", "aws:kms:dsse"],
            ),
            (
                "acl",
                &[
                    "private",
                    "public-read",
                    "public-read-write",
                    "authenticated-read",
                    "aws-exec-read",
                    "bucket-owner-read",
                    "bucket-owner-full-control",
                ],
            ),
        ];
        for (key, accepted) in cases {
            let err = parse(&format!("{MINIMAL}{key} = \"nonsense\"\n"))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(&format!("line 7: s3.{key}: unknown variant `nonsense`")),
                "{err}"
            );
            let listed: Vec<&str> = err
                .split_once("expected one of ")
                .map(|(_, list)| list.split(", ").map(|v| v.trim_matches('`')).collect())
                .unwrap_or_default();
            assert_eq!(listed, accepted, "{err}");
            for value in accepted {
                let s3 = parse(&format!("{MINIMAL}{key} = \"{value}\"\n"))
                    .unwrap()
                    .s3;
                let read = match key {
                    "storage_class" => s3.storage_class.map(StorageClass::as_str),
                    "server_side_encryption" => {
                        s3.server_side_encryption.map(ServerSideEncryption::as_str)
                    }
                    _ => s3.acl.map(CannedAcl::as_str),
                };
                assert_eq!(read, Some(*value));
            }
        }
        let err = parse(&format!("{MINIMAL}storage_class = \"standard_ia\"\n"));
        assert!(err.is_err(), "values are case-sensitive, as S3 reads them");
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("16MiB").unwrap(), 16 * 1024 * 1024);
        assert_eq!(parse_size("5 MB").unwrap(), 5_000_000);
        assert!(parse_size("lots").is_err());
    }
}
