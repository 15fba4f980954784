//! The binary as an admin runs it: exit codes, messages and output.

mod common;

use std::process::Command;

use common::cli::*;
use common::*;

#[test]
fn broken_configs_exit_2_naming_the_key() {
    let base = "[piwigo]\ndatabase_url = \"mysql://u:p@127.0.0.1/db\"\nroot = \"/tmp\"\n[s3]\nbucket = \"b\"\n";
    let cases = [
        (format!("{base}[upload]\nworkers = 0\n"), "upload.workers"),
        (
            format!("{base}[monitor]\npoll_interval = \"often\"\n"),
            "not a duration",
        ),
        (
            format!("{base}[monitor]\nenable = true\n"),
            "unknown field `enable`",
        ),
        (
            base.replace("bucket = \"b\"\n", ""),
            "missing field `bucket`",
        ),
        (base.replace("mysql://", "http://"), "piwigo.database_url"),
        ("this is not toml".to_string(), "line 1"),
    ];
    for (text, expected) in cases {
        let (out, msg) = run_with(&text, &["status"]);
        assert_eq!(out.status.code(), Some(2), "{msg}");
        assert!(msg.contains(expected), "expected {expected:?} in {msg}");
    }
    let out = bin()
        .args(["--config", "/nonexistent/x.toml", "status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/x.toml"));
}

#[tokio::test]
async fn unreachable_database_is_a_clear_error_without_the_password() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let port = free_port();
    let text = config_text(&g, &s3, SECRET_KEY, "").replace(
        &g.url,
        &format!("mysql://someone:Pa55w0rdValue@127.0.0.1:{port}/piwigo"),
    );
    let (out, msg) = run_with(&text, &["status"]);
    assert_eq!(out.status.code(), Some(1), "{msg}");
    assert!(
        msg.contains("database: cannot connect to 127.0.0.1"),
        "{msg}"
    );
    assert!(!msg.contains("Pa55w0rdValue"), "{msg}");
    g.drop_database().await;
}

#[tokio::test]
async fn enqueue_status_retry_and_check_from_the_command_line() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let text = config_text(&g, &s3, SECRET_KEY, "");
    let (out, msg) = run_with(&text, &["run", "--until-idle"]);
    assert!(out.status.success(), "{msg}");
    let a = g.add_upload(1, "a.jpg", &photo_bytes(1, 2000)).await;
    g.add_upload(2, "b.jpg", &photo_bytes(2, 2000)).await;
    g.add_upload(3, "a-again.jpg", &photo_bytes(1, 2000)).await;

    let (out, msg) = run_with(&text, &["enqueue", "--ids", &format!("{a}")]);
    assert!(out.status.success(), "{msg}");
    assert!(msg.contains("queued 1 of 1 selected photos"), "{msg}");
    let (out, msg) = run_with(&text, &["enqueue", "--all"]);
    assert!(out.status.success(), "{msg}");
    assert!(
        msg.contains("queued 1 of 3 selected photos; skipped 0 already uploaded, 1 already queued, 1 md5 duplicates"),
        "{msg}"
    );
    let (out, msg) = run_with(&text, &["enqueue"]);
    assert_eq!(out.status.code(), Some(2), "{msg}");
    let (out, msg) = run_with(&text, &["enqueue", "--tag", "nope"]);
    assert_eq!(out.status.code(), Some(2), "{msg}");
    assert!(msg.contains("no Piwigo tag is named `nope`"), "{msg}");

    // A wrong secret: the upload fails 403 and `status` shows it.
    let bad = config_text(&g, &s3, "WrongSecretValue123", "");
    let (out, _) = run_with(&bad, &["run", "--until-idle"]);
    assert!(out.status.success());
    let (out, msg) = run_with(&bad, &["status", "--json"]);
    assert!(out.status.success(), "{msg}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["counts"]["failed_code_403"], 2, "{json}");
    // The third photo has the same bytes as a failed one: it waits for it.
    assert_eq!(json["counts"]["waiting_for_duplicate"], 1, "{json}");
    let pending = json["pending"].as_array().unwrap();
    assert_eq!(pending.len(), 3);
    let failed = pending
        .iter()
        .find(|p| p["status"] == "failed_code_403")
        .unwrap();
    assert!(
        failed["last_error"].as_str().unwrap().contains("HTTP 403"),
        "{failed}"
    );
    assert!(failed["path"].as_str().unwrap().starts_with("./upload/"));
    assert!(failed["updated_at"].is_string());
    assert!(!msg.contains("WrongSecretValue123"));

    let (out, msg) = run_with(&bad, &["check"]);
    assert_eq!(out.status.code(), Some(1), "{msg}");
    assert!(msg.contains("ok    database"), "{msg}");
    assert!(msg.contains("FAIL  s3 bucket"), "{msg}");
    assert!(msg.contains("403"), "{msg}");
    assert!(!msg.contains("WrongSecretValue123"), "{msg}");

    let (out, msg) = run_with(&text, &["retry"]);
    assert!(out.status.success(), "{msg}");
    assert!(msg.contains("3 photos put back to pending"), "{msg}");
    let (out, msg) = run_with(&text, &["--log-format", "json", "run", "--until-idle"]);
    assert!(out.status.success(), "{msg}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "uploaded" && l["s3.key"].is_string()),
        "{stderr}"
    );

    let (out, msg) = run_with(&text, &["status", "--json"]);
    assert!(out.status.success(), "{msg}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["counts"]["uploaded"], 2, "{json}");
    assert_eq!(json["counts"]["duplicate"], 1, "{json}");
    assert_eq!(json["pending"].as_array().unwrap().len(), 0);
    let first = &json["uploaded"][0];
    assert!(
        first["url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/{BUCKET}/photos/", s3.endpoint))
    );
    assert!(first["key"].as_str().unwrap().starts_with("photos/"));
    assert!(first["uploaded_at"].is_string());
    assert!(first["image_id"].is_u64());

    let (out, msg) = run_with(&text, &["status"]);
    assert!(out.status.success());
    assert!(
        msg.contains("10 most recent pending uploads to S3"),
        "{msg}"
    );
    assert!(
        msg.contains("10 most recent successful uploads to S3"),
        "{msg}"
    );

    let (out, msg) = run_with(&text, &["check"]);
    assert!(out.status.success(), "{msg}");
    assert!(msg.contains("all checks passed"), "{msg}");
    g.drop_database().await;
}

/// Under systemd: READY=1 after start-up, watchdog pings, RELOADING=1 and
/// READY=1 around a SIGHUP, STOPPING=1 on SIGTERM, and exit code 0.
#[tokio::test]
async fn systemd_notifications_and_signals() {
    use std::os::unix::net::UnixDatagram;
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config_text(&g, &s3, SECRET_KEY, "")).unwrap();
    let mut child = bin()
        .arg("--config")
        .arg(&path)
        .arg("run")
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "1000000")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut seen = Vec::new();
    let mut next = |want: &str| {
        let mut buf = [0u8; 512];
        loop {
            let n = sock.recv(&mut buf).expect("a notification");
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            seen.push(msg.clone());
            if msg.lines().any(|l| l == want) {
                return;
            }
        }
    };
    next("READY=1");
    next("WATCHDOG=1");
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    next("RELOADING=1");
    next("READY=1");
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    next("STOPPING=1");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    g.drop_database().await;
}

#[tokio::test]
async fn a_secret_in_a_world_readable_file_is_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, config_text(&g, &s3, SECRET_KEY, "")).unwrap();
    for (mode, warned) in [(0o644, true), (0o640, false)] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let out = bin()
            .arg("--config")
            .arg(&path)
            .arg("status")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert_eq!(
            err.contains("readable by every user"),
            warned,
            "{mode:o}: {err}"
        );
        assert!(!err.contains(SECRET_KEY));
    }
    // The secret key in a file of its own: the access key id left in the
    // config is no secret, and a world-readable config is fine.
    let secret = dir.path().join("secret");
    std::fs::write(&secret, SECRET_KEY).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut url = url::Url::parse(&g.url).unwrap();
    let db_password = dir.path().join("db_password");
    std::fs::write(&db_password, url.password().unwrap_or_default()).unwrap();
    url.set_password(None).unwrap();
    let text = config_text(&g, &s3, SECRET_KEY, "")
        .replace(
            &format!("secret_access_key = \"{SECRET_KEY}\""),
            &format!("secret_access_key_file = \"{}\"", secret.display()),
        )
        .replace(
            &format!("database_url = \"{}\"", g.url),
            &format!(
                "database_url = \"{url}\"\ndatabase_password_file = \"{}\"",
                db_password.display()
            ),
        );
    assert!(!text.contains(SECRET_KEY) && text.contains("access_key_id ="));
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = bin()
        .arg("--config")
        .arg(&path)
        .arg("status")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("readable by every user"), "{err}");
    g.drop_database().await;
}

/// Selectors are checked the same way: an unknown album is an error like
/// an unknown tag, an empty item in `--ids` is refused, and a tag is found
/// under the HTML-escaped name Piwigo stores.
#[tokio::test]
async fn enqueue_selectors_are_checked_alike() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let text = config_text(&g, &s3, SECRET_KEY, "");
    let (out, msg) = run_with(&text, &["run", "--until-idle"]);
    assert!(out.status.success(), "{msg}");
    let a = g.add_upload(1, "a.jpg", &photo_bytes(1, 2000)).await;
    let b = g.add_upload(2, "b.jpg", &photo_bytes(2, 2000)).await;

    let (out, msg) = run_with(&text, &["enqueue", "--album", "9999"]);
    assert_eq!(out.status.code(), Some(2), "{msg}");
    assert!(msg.contains("no Piwigo album has id 9999"), "{msg}");

    let (out, msg) = run_with(&text, &["enqueue", "--ids", &format!("{a},,{b}")]);
    assert_eq!(out.status.code(), Some(2), "{msg}");
    assert!(msg.contains("empty item"), "{msg}");
    assert!(g.queue_statuses().await.is_empty());

    g.exec(&format!(
        "INSERT INTO {} (id, name, url_name) VALUES (4, 'Tom &amp; Jerry', 'tom_jerry')",
        g.table("tags")
    ))
    .await;
    g.exec(&format!(
        "INSERT INTO {} (image_id, tag_id) VALUES ({b}, 4)",
        g.table("image_tag")
    ))
    .await;
    let (out, msg) = run_with(&text, &["enqueue", "--tag", "Tom & Jerry"]);
    assert!(out.status.success(), "{msg}");
    assert!(msg.contains("queued 1 of 1 selected photos"), "{msg}");

    g.exec(&format!(
        "INSERT INTO {} (id, name, uppercats) VALUES (3, 'Empty', '3')",
        g.table("categories")
    ))
    .await;
    let (out, msg) = run_with(&text, &["enqueue", "--album", "3"]);
    assert!(out.status.success(), "{msg}");
    assert!(msg.contains("queued 0 of 0 selected photos"), "{msg}");
    g.drop_database().await;
}

/// Control characters in `images.path` (a newline, an ESC sequence) are
/// shown escaped by `status`: the table keeps its shape and nothing
/// reaches the terminal as a command.
#[tokio::test]
async fn status_escapes_control_characters_from_piwigo() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let text = config_text(&g, &s3, SECRET_KEY, "");
    let (out, msg) = run_with(&text, &["run", "--until-idle"]);
    assert!(out.status.success(), "{msg}");
    let id = g
        .add_row(
            "./upload/x\n  999  uploaded\u{1b}[2J.jpg",
            "x\u{1b}]0;t\u{7}.jpg",
            None,
            10,
        )
        .await;
    let (out, msg) = run_with(&text, &["enqueue", "--ids", &id.to_string()]);
    assert!(out.status.success(), "{msg}");
    let (out, msg) = run_with(&text, &["run", "--until-idle"]);
    assert!(out.status.success(), "{msg}");
    let (out, _) = run_with(&text, &["status"]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains('\u{1b}'), "{stdout:?}");
    assert!(!stdout.contains('\u{7}'), "{stdout:?}");
    let row = stdout
        .lines()
        .find(|l| l.contains(&format!("  {id}  ")))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(row.contains("x\\n  999  uploaded\\u{1b}[2J.jpg"), "{row}");
    assert!(
        !stdout.lines().any(|l| l.trim_start().starts_with("999")),
        "{stdout}"
    );
    g.drop_database().await;
}
