//! `Config::validate`: every check whose error names the field and the
//! fix, run after parsing and after the environment and Piwigo's own
//! settings are applied.

use std::time::Duration;

use super::choices::{MAX_KEY_BYTES, ServerSideEncryption};
use super::error::ConfigError;
use super::sections::{Config, DATABASE_URL_ENV, Workers};

/// The longest `s3.prefix`: what is left of S3's 1024-byte keys must hold
/// the longest file name a filesystem allows (255) and some album path.
const MAX_PREFIX_BYTES: usize = 768;

/// The shortest `http.token` accepted: long enough not to be guessed.
const MIN_TOKEN_LEN: usize = 16;
/// S3 refuses presigned URLs valid longer than a week.
const MAX_PRESIGN_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);

const MIN_PART: u64 = 5 * 1024 * 1024;
const MAX_PART: u64 = 5 * 1024 * 1024 * 1024;

impl Config {
    pub fn validate(&mut self) -> Result<(), ConfigError> {
        let url = self.piwigo.database_url.as_ref().ok_or_else(|| {
            ConfigError::invalid(
                "piwigo.database_url",
                format!("missing; set it in the file or in {DATABASE_URL_ENV}"),
            )
        })?;
        check_database_url(url.expose())?;

        let prefix = &self.piwigo.table_prefix;
        if prefix.len() > 20
            || !prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        {
            return Err(ConfigError::invalid(
                "piwigo.table_prefix",
                format!(
                    "`{prefix}` is not a Piwigo table prefix (up to 20 of A-Z a-z 0-9 _ $; see $prefixeTable in local/config/database.inc.php)"
                ),
            ));
        }
        if !self.piwigo.root.is_absolute() {
            return Err(ConfigError::invalid(
                "piwigo.root",
                format!(
                    "`{}` must be an absolute path to Piwigo's install directory",
                    self.piwigo.root.display()
                ),
            ));
        }
        if let Some(p) = self.piwigo.extra_roots.iter().find(|p| !p.is_absolute()) {
            return Err(ConfigError::invalid(
                "piwigo.extra_roots",
                format!("`{}` must be an absolute path", p.display()),
            ));
        }

        self.validate_s3()?;
        if let Some(snapshots) = &self.snapshots {
            snapshots.validate()?;
        }
        self.retention.validate()?;

        if self.monitor.poll_interval < Duration::from_millis(100) {
            return Err(ConfigError::invalid(
                "monitor.poll_interval",
                "must be at least 100ms",
            ));
        }
        if let Some(tag) = &self.monitor.tag
            && tag.trim().is_empty()
        {
            return Err(ConfigError::invalid(
                "monitor.tag",
                "is empty; remove the line or name a Piwigo tag",
            ));
        }
        if self.changes.full_pass < Duration::from_secs(60) {
            return Err(ConfigError::invalid(
                "changes.full_pass",
                "must be at least 1m (a day, \"1d\", is the default)",
            ));
        }
        self.validate_http()?;
        self.validate_upload()
    }

    fn validate_http(&self) -> Result<(), ConfigError> {
        if let Some(token) = &self.http.token {
            let t = token.expose();
            if t.len() < MIN_TOKEN_LEN || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(ConfigError::invalid(
                    "http.token",
                    format!(
                        "must be at least {MIN_TOKEN_LEN} characters without spaces; make one with `openssl rand -hex 24` and put the same value in the Piwigo plugin's settings"
                    ),
                ));
            }
        }
        let expiry = self.http.presign_expiry;
        if expiry < Duration::from_secs(1) || expiry > MAX_PRESIGN_EXPIRY {
            return Err(ConfigError::invalid(
                "http.presign_expiry",
                "must be between 1s and 7 days (S3's limit for presigned links)",
            ));
        }
        Ok(())
    }

    fn validate_s3(&mut self) -> Result<(), ConfigError> {
        let s3 = &mut self.s3;
        let bucket = s3.bucket.trim();
        if bucket.is_empty() || bucket.contains('/') || bucket.len() > 255 {
            return Err(ConfigError::invalid(
                "s3.bucket",
                "must be a bucket name (no slashes; put folders in s3.prefix)",
            ));
        }
        if s3.region.trim().is_empty() {
            return Err(ConfigError::invalid(
                "s3.region",
                "is empty; use the bucket's region, e.g. \"us-east-1\"",
            ));
        }
        if let Some(endpoint) = &s3.endpoint {
            let parsed = url::Url::parse(endpoint).ok();
            let ok = parsed
                .as_ref()
                .is_some_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
            if !ok {
                return Err(ConfigError::invalid(
                    "s3.endpoint",
                    format!("`{endpoint}` is not an http(s) URL, e.g. \"http://127.0.0.1:9000\""),
                ));
            }
        }
        match (&s3.access_key_id, &s3.secret_access_key) {
            (Some(_), None) => {
                return Err(ConfigError::invalid(
                    "s3.secret_access_key",
                    "missing while s3.access_key_id is set; set both, or neither to use the AWS default credential chain",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::invalid(
                    "s3.access_key_id",
                    "missing while s3.secret_access_key is set; set both, or neither to use the AWS default credential chain",
                ));
            }
            _ => {}
        }
        if let Some(base) = &s3.public_url
            && url::Url::parse(base).is_err()
        {
            return Err(ConfigError::invalid(
                "s3.public_url",
                format!("`{base}` is not a URL"),
            ));
        }
        if s3.sse_kms_key_id.is_some()
            && !s3
                .server_side_encryption
                .is_some_and(ServerSideEncryption::uses_kms)
        {
            return Err(ConfigError::invalid(
                "s3.sse_kms_key_id",
                "only applies with server_side_encryption = \"aws:kms\"",
            ));
        }
        if s3.prefix.chars().any(char::is_control) {
            return Err(ConfigError::invalid(
                "s3.prefix",
                "contains a control character",
            ));
        }
        s3.prefix = normalize_prefix(&s3.prefix);
        // Keys are at most 1024 bytes; a file name alone may take 255.
        let room = MAX_KEY_BYTES - MAX_PREFIX_BYTES;
        if s3.prefix.len() > MAX_PREFIX_BYTES {
            return Err(ConfigError::invalid(
                "s3.prefix",
                format!(
                    "is {} bytes long; S3 keys hold at most 1024, and photo names need {room}: use at most {MAX_PREFIX_BYTES}",
                    s3.prefix.len()
                ),
            ));
        }
        Ok(())
    }

    fn validate_upload(&self) -> Result<(), ConfigError> {
        let up = &self.upload;
        if let Workers::Fixed(n) = up.workers
            && !(1..=256).contains(&n)
        {
            return Err(ConfigError::invalid(
                "upload.workers",
                format!("{n} is out of range; use 1 to 256, or \"auto\""),
            ));
        }
        for (field, n) in [
            ("upload.min_workers", up.min_workers),
            ("upload.max_workers", up.max_workers),
        ] {
            if !(1..=256).contains(&n) {
                return Err(ConfigError::invalid(
                    field,
                    format!("{n} is out of range; use 1 to 256"),
                ));
            }
        }
        if up.min_workers > up.max_workers {
            return Err(ConfigError::invalid(
                "upload.min_workers",
                format!(
                    "{} is above upload.max_workers ({}); lower min_workers or raise max_workers",
                    up.min_workers, up.max_workers
                ),
            ));
        }
        if !(MIN_PART..=MAX_PART).contains(&up.part_size) {
            return Err(ConfigError::invalid(
                "upload.part_size",
                "must be between 5MiB and 5GiB (S3's limits for one part)",
            ));
        }
        if !(1..=32).contains(&up.part_concurrency) {
            return Err(ConfigError::invalid(
                "upload.part_concurrency",
                format!("{} is out of range; use 1 to 32", up.part_concurrency),
            ));
        }
        if up.multipart_threshold < MIN_PART {
            return Err(ConfigError::invalid(
                "upload.multipart_threshold",
                "must be at least 5MiB",
            ));
        }
        if up.claim_lease < Duration::from_secs(2) {
            return Err(ConfigError::invalid(
                "upload.claim_lease",
                "must be at least 2s",
            ));
        }
        if up.read_stall_timeout < Duration::from_secs(1) {
            return Err(ConfigError::invalid(
                "upload.read_stall_timeout",
                "must be at least 1s",
            ));
        }
        if up.no_progress_alarm < up.read_stall_timeout {
            return Err(ConfigError::invalid(
                "upload.no_progress_alarm",
                "must be at least upload.read_stall_timeout",
            ));
        }
        if up.retry_backoff_min.is_zero() || up.retry_backoff_max < up.retry_backoff_min {
            return Err(ConfigError::invalid(
                "upload.retry_backoff_max",
                "must be at least upload.retry_backoff_min, which must be above zero",
            ));
        }
        Ok(())
    }
}

fn check_database_url(url: &str) -> Result<(), ConfigError> {
    let parsed = url::Url::parse(url).map_err(|_| {
        ConfigError::invalid(
            "piwigo.database_url",
            "is not a URL; write it as mysql://user:password@host:3306/database (percent-encode special characters in the password)",
        )
    })?;
    if !matches!(parsed.scheme(), "mysql" | "mariadb") {
        return Err(ConfigError::invalid(
            "piwigo.database_url",
            format!(
                "scheme `{}` is not supported; use mysql://user:password@host:3306/database",
                parsed.scheme()
            ),
        ));
    }
    if parsed.path().trim_matches('/').is_empty() {
        return Err(ConfigError::invalid(
            "piwigo.database_url",
            "names no database; append Piwigo's database name ($conf['db_base']) as the path",
        ));
    }
    Ok(())
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
