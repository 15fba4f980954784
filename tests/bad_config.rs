//! Every config field wrong in turn: each is refused before anything
//! starts, with exit code 2 and a message that names the field.

use std::process::Command;

const BASE: &str = r#"
[piwigo]
database_url = "mysql://piwigo:Pw-Hidden-123@127.0.0.1:3306/piwigo"
table_prefix = "piwigo_"
root = "/var/www/html/piwigo"
[s3]
bucket = "gallery"
region = "us-east-1"
access_key_id = "AKIA-HIDDEN-KEY"
secret_access_key = "Hidden-Secret-456"
[monitor]
enabled = true
[upload]
workers = 8
[changes]
enabled = true
[http]
[retention]
"#;

/// (section, line to add or replace, what the message must name)
const CASES: &[(&str, &str, &str)] = &[
    (
        "piwigo",
        "database_url = \"postgres://u:Pw-Hidden-123@h/db\"",
        "piwigo.database_url",
    ),
    (
        "piwigo",
        "database_url = \"mysql://u:Pw-Hidden-123@h:3306\"",
        "piwigo.database_url",
    ),
    ("piwigo", "database_url = 3306", "database_url"),
    ("piwigo", "table_prefix = \"pi wi\"", "piwigo.table_prefix"),
    (
        "piwigo",
        "table_prefix = \"a_prefix_longer_than_twenty\"",
        "piwigo.table_prefix",
    ),
    ("piwigo", "root = \"relative/path\"", "piwigo.root"),
    ("piwigo", "extra_roots = [\"photos\"]", "piwigo.extra_roots"),
    ("piwigo", "extra_roots = \"/srv\"", "extra_roots"),
    ("s3", "bucket = \"\"", "s3.bucket"),
    ("s3", "bucket = \"a/b\"", "s3.bucket"),
    ("s3", "region = \"\"", "s3.region"),
    ("s3", "endpoint = \"127.0.0.1:9000\"", "s3.endpoint"),
    ("s3", "endpoint = \"ftp://host\"", "s3.endpoint"),
    ("s3", "force_path_style = \"yes\"", "force_path_style"),
    ("s3", "secret_access_key = 12345678", "secret_access_key"),
    ("s3", "prefix = 7", "prefix"),
    ("s3", "key_format = \"by_date\"", "key_format"),
    ("s3", "public_url = \"not a url\"", "s3.public_url"),
    (
        "s3",
        "storage_class = \"CHEAP\"",
        "s3.storage_class: unknown variant",
    ),
    (
        "s3",
        "server_side_encryption = \"rot13\"",
        "s3.server_side_encryption: unknown variant",
    ),
    ("s3", "sse_kms_key_id = \"k\"", "s3.sse_kms_key_id"),
    ("s3", "acl = \"everyone\"", "s3.acl: unknown variant"),
    ("s3", "colour = \"blue\"", "colour"),
    ("monitor", "enabled = \"maybe\"", "enabled"),
    (
        "monitor",
        "poll_interval = \"10ms\"",
        "monitor.poll_interval",
    ),
    ("monitor", "poll_interval = \"soon\"", "poll_interval"),
    ("monitor", "tag = \"\"", "monitor.tag"),
    ("changes", "full_pass = \"10s\"", "changes.full_pass"),
    ("changes", "full_pass = \"daily\"", "full_pass"),
    ("changes", "enabled = \"yes\"", "enabled"),
    ("upload", "workers = 0", "upload.workers"),
    ("upload", "workers = 1000", "upload.workers"),
    ("upload", "workers = -1", "workers"),
    (
        "upload",
        "prevent_duplicates_by_md5 = \"sure\"",
        "prevent_duplicates_by_md5",
    ),
    (
        "upload",
        "multipart_threshold = \"1MiB\"",
        "upload.multipart_threshold",
    ),
    ("upload", "part_size = \"6GiB\"", "upload.part_size"),
    ("upload", "part_size = \"big\"", "part_size"),
    ("upload", "part_concurrency = 0", "upload.part_concurrency"),
    ("upload", "claim_lease = \"1s\"", "upload.claim_lease"),
    (
        "upload",
        "retry_backoff_min = \"0s\"",
        "upload.retry_backoff_max",
    ),
    (
        "upload",
        "retry_backoff_max = \"1s\"",
        "upload.retry_backoff_max",
    ),
    (
        "upload",
        "shutdown_timeout = \"forever\"",
        "shutdown_timeout",
    ),
    ("upload", "max_bandwidth = \"0\"", "max_bandwidth"),
    ("upload", "max_bandwidth = \"fast\"", "max_bandwidth"),
    ("upload", "progress_interval = \"x\"", "progress_interval"),
    ("http", "listen = \"nowhere\"", "listen"),
    ("http", "port = 9187", "port"),
    ("retention", "deleted = \"forever\"", "retention.deleted"),
    ("retention", "deleted = \"0s\"", "retention.deleted"),
    ("retention", "versions = \"soon\"", "retention.versions"),
    (
        "retention",
        "guard_gallery_share = \"0.05\"",
        "retention.guard_gallery_share",
    ),
    (
        "retention",
        "guard_album_share = \"200%\"",
        "retention.guard_album_share",
    ),
    (
        "retention",
        "guard_min_photos = 0",
        "retention.guard_min_photos",
    ),
    ("retention", "keep = \"all\"", "keep"),
];

fn with(section: &str, line: &str) -> String {
    let key = line.split('=').next().unwrap().trim();
    let mut out = String::new();
    let mut current = "";
    for l in BASE.lines() {
        if let Some(name) = l.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = if name == section { section } else { "" };
            out.push_str(l);
            out.push('\n');
            if current == section {
                out.push_str(line);
                out.push('\n');
            }
            continue;
        }
        if current == section && l.split('=').next().map(str::trim) == Some(key) {
            continue;
        }
        out.push_str(l);
        out.push('\n');
    }
    out
}

#[test]
fn every_field_wrong_in_turn() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    for (section, line, field) in CASES {
        let text = with(section, line);
        std::fs::write(&path, &text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_piwigo-s3upload"))
            .arg("--config")
            .arg(&path)
            .arg("check")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "[{section}] {line}: {err}");
        assert!(
            err.contains(field),
            "[{section}] {line}: expected `{field}` in {err}"
        );
        for secret in [
            "Pw-Hidden-123",
            "Hidden-Secret-456",
            "AKIA-HIDDEN-KEY",
            "12345678",
        ] {
            assert!(
                !err.contains(secret),
                "[{section}] {line}: {secret} leaked in {err}"
            );
        }
    }
    assert!(CASES.len() >= 40);
}

/// A config path that is not a small regular file is refused at once: a
/// device would be read forever, a FIFO would block, a huge file would be
/// read into memory.
#[test]
fn config_path_must_be_a_small_regular_file() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.toml");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let huge = dir.path().join("huge.toml");
    let mut text = BASE.to_string();
    while text.len() <= 1024 * 1024 {
        text.push_str("# padding padding padding padding padding padding padding\n");
    }
    std::fs::write(&huge, text).unwrap();
    let cases = [
        (std::path::PathBuf::from("/dev/zero"), "not a regular file"),
        (fifo, "not a regular file"),
        (dir.path().to_path_buf(), "not a regular file"),
        (huge, "larger than"),
    ];
    for (path, expected) in cases {
        let mut child = Command::new(env!("CARGO_BIN_EXE_piwigo-s3upload"))
            .arg("--config")
            .arg(&path)
            .arg("check")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // A blocked or endless read shows up as a process still running.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("{}: still reading the config", path.display());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {err}", path.display());
        assert!(err.contains(expected), "{}: {err}", path.display());
        assert!(err.contains("--config"), "{}: {err}", path.display());
    }
}
