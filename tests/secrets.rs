//! Keys and passwords never show: every command and failure path runs with
//! recognisable secrets, at the most verbose log level, and no output holds
//! one.

mod common;

use std::process::Command;

use common::*;

const DB_PASSWORD: &str = "Db-SECRET-Pw-7731";
const WRONG_SECRET: &str = "Wrong-SECRET-Value-4242";

#[tokio::test]
async fn no_command_or_failure_path_shows_a_secret() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    // A database user with a password of its own, for this database only.
    let user = g.create_user("u", DB_PASSWORD).await;
    let host = db_host();
    let host = host.as_str();
    let url = format!("mysql://{user}:{DB_PASSWORD}@{host}/{}", g.name);

    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    let bad_key = dir.path().join("bad-key.toml");
    let broken = dir.path().join("broken.toml");
    let no_db = dir.path().join("no-db.toml");
    let text = config_text(&g, &s3, SECRET_KEY, "").replace(&g.url, &url);
    std::fs::write(&good, &text).unwrap();
    std::fs::write(&bad_key, text.replace(SECRET_KEY, WRONG_SECRET)).unwrap();
    std::fs::write(
        &broken,
        format!("{text}\n[upload]\nworkers = \"{SECRET_KEY}\"\n"),
    )
    .unwrap();
    std::fs::write(
        &no_db,
        text.replace(host, &format!("127.0.0.1:{}", free_port())),
    )
    .unwrap();

    let mut output = String::new();
    let mut run = |config: &std::path::Path, args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_piwigo-s3upload"))
            .env("PIWIGO_S3UPLOAD_LOG", "trace")
            .arg("--config")
            .arg(config)
            .args(args)
            .output()
            .unwrap();
        output.push_str(&String::from_utf8_lossy(&out.stdout));
        output.push_str(&String::from_utf8_lossy(&out.stderr));
        out.status.code()
    };
    assert_eq!(run(&good, &["run", "--until-idle"]), Some(0));
    g.add_upload(1, "a.jpg", &photo_bytes(1, 100_000)).await;
    g.add_upload(2, "b.jpg", &photo_bytes(2, 7 * 1024 * 1024))
        .await;
    // Failure paths: 403 on HEAD, on PUT and on multipart.
    assert_eq!(run(&bad_key, &["run", "--until-idle"]), Some(0));
    assert_eq!(run(&bad_key, &["status"]), Some(0));
    assert_eq!(run(&bad_key, &["status", "--json"]), Some(0));
    assert_eq!(run(&bad_key, &["check"]), Some(1));
    assert_eq!(run(&broken, &["status"]), Some(2));
    assert_eq!(run(&no_db, &["status"]), Some(1));
    assert_eq!(run(&good, &["retry"]), Some(0));
    assert_eq!(run(&good, &["enqueue", "--all"]), Some(0));
    assert_eq!(run(&good, &["run", "--until-idle"]), Some(0));
    assert_eq!(run(&good, &["status", "--json"]), Some(0));
    assert_eq!(run(&good, &["check"]), Some(0));
    assert_eq!(run(&good, &["retention"]), Some(0));
    assert_eq!(run(&good, &["retention", "--release"]), Some(0));

    assert!(output.contains("failed_code_403"), "the failure paths ran");
    assert!(output.contains("uploaded"), "the success path ran");
    for secret in [
        DB_PASSWORD,
        SECRET_KEY,
        WRONG_SECRET,
        s3.access_key.as_str(),
    ] {
        if let Some(pos) = output.find(secret) {
            let start = pos.saturating_sub(300);
            panic!(
                "{secret} leaked: ...{}...",
                &output[start..(pos + 100).min(output.len())]
            );
        }
    }
    g.drop_user(&user).await;
    g.drop_database().await;
}
