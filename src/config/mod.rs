//! The config in two steps. First the TOML file an admin edits is parsed
//! into serde structs ([`Config::parse`], with no side effects: the
//! result depends on the text alone). Then [`Config::resolve`] fills in
//! what the file leaves out, from the environment, secret files and
//! Piwigo's own `database.inc.php`, records where each value came from
//! (for `check`), and validates. [`Config::load`] does both for a path,
//! [`Config::from_toml`] for text already read.
//!
//! - `sections`: the structs, each section's defaults in its `Default`;
//! - `units`: durations, sizes and rates as they are written;
//! - `choices`: the options with a fixed set of values;
//! - `parse`: the first step, with errors that name the key and line;
//! - `sources`: the second step, the only one that reads the environment
//!   and other files;
//! - `validate`: the checks whose errors name the field and the fix;
//! - `retention`, `snapshots`: their sections.

use std::path::Path;

pub mod choices;
mod error;
mod parse;
mod retention;
mod sections;
mod snapshots;
mod sources;
mod units;
mod validate;

pub use crate::secret::Secret;
pub use choices::{
    CannedAcl, Checksum, IfNoneMatch, KeyFormat, ServerSideEncryption, StorageClass,
};
pub use error::ConfigError;
pub use retention::{Retain, RetentionConfig, Share};
pub use sections::{
    ChangesConfig, Config, DATABASE_URL_ENV, HttpConfig, MonitorConfig, Origin, PiwigoConfig,
    S3Config, UploadConfig, Workers,
};
pub use snapshots::SnapshotsConfig;
pub use sources::Environment;
pub use units::parse_size;
pub use validate::normalize_prefix;

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
    /// Reads the file, parses it, then resolves it against the process
    /// environment. Nothing here touches the network or the database.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = read_capped(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            fix: read_fix(path, &source),
            source,
        })?;
        Self::parse(&text, path)?.resolve(&Environment::current())
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const MINIMAL: &str = r#"
[piwigo]
database_url = "mysql://piwigo:hunter2secret@127.0.0.1:3306/piwigo"
root = "/var/www/html/piwigo"
[s3]
bucket = "photos"
"#;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        resolved(text, Environment::default())
    }

    fn resolved(text: &str, env: Environment) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("test.toml"))?.resolve(&env)
    }

    fn with_database_url(url: &str) -> Environment {
        Environment {
            database_url: Some(url.into()),
            ..Environment::default()
        }
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
        let c = resolved(text, with_database_url("mysql://u:p@h/db")).unwrap();
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
        let c = resolved(&text, with_database_url("mysql://u:p@db:3306/gallery")).unwrap();
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
