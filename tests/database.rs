//! The database changing or refusing under the daemon: tables dropped or
//! altered by hand, `repair`, and errors that name the real cause.

mod common;

use std::time::{Duration, Instant};

use common::cli::*;
use common::*;
use sqlx::{Executor, MySqlPool};

async fn uploaded_rows(g: &Gallery) -> Vec<(u32, String, String)> {
    sqlx::query_as(&format!(
        "SELECT image_id, s3_key, md5 FROM {} ORDER BY image_id",
        g.table("s3upload_uploaded")
    ))
    .fetch_all(&g.pool)
    .await
    .unwrap()
}

/// The queue and counts tables dropped and a column of the uploaded table
/// dropped while the migrations stay recorded: start-up, `check` and
/// `status` say exactly what is missing and how to repair; `repair` brings
/// them back with every upload record, and uploads go on.
#[tokio::test]
async fn damaged_tables_are_found_and_repaired_keeping_upload_records() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let text = config_text(&g, &s3, SECRET_KEY, "");
    let (out, msg) = run_with(&text, &["run", "--until-idle"]);
    assert!(out.status.success(), "{msg}");
    g.add_upload(1, "a.jpg", &photo_bytes(1, 2000)).await;
    g.add_upload(2, "b.jpg", &photo_bytes(2, 2000)).await;
    let (out, msg) = run_with(&text, &["run", "--until-idle"]);
    assert!(out.status.success(), "{msg}");
    let before = uploaded_rows(&g).await;
    assert_eq!(before.len(), 2);

    g.exec(&format!("DROP TABLE {}", g.table("s3upload_queue")))
        .await;
    g.exec(&format!("DROP TABLE {}", g.table("s3upload_counts")))
        .await;
    g.exec(&format!(
        "ALTER TABLE {} DROP COLUMN etag",
        g.table("s3upload_uploaded")
    ))
    .await;

    let (out, msg) = run_with(&text, &["check"]);
    assert_eq!(out.status.code(), Some(1), "{msg}");
    assert!(msg.contains("FAIL  daemon tables"), "{msg}");
    assert!(
        msg.contains("table `piwigo_s3upload_queue` is missing"),
        "{msg}"
    );
    assert!(
        msg.contains("table `piwigo_s3upload_uploaded` lacks column(s) etag"),
        "{msg}"
    );
    assert!(msg.contains("piwigo-s3upload repair"), "{msg}");
    for args in [&["status"][..], &["run", "--until-idle"]] {
        let (out, msg) = run_with(&text, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {msg}");
        assert!(msg.contains("the daemon's tables are damaged"), "{msg}");
        assert!(msg.contains("piwigo_s3upload_queue` is missing"), "{msg}");
        assert!(!msg.contains("unreachable"), "{msg}");
    }

    let (out, msg) = run_with(&text, &["repair"]);
    assert!(out.status.success(), "{msg}");
    assert!(msg.contains("queue them again with `enqueue`"), "{msg}");
    let after = uploaded_rows(&g).await;
    assert_eq!(after, before, "upload records are kept");

    let (out, msg) = run_with(&text, &["check"]);
    assert!(out.status.success(), "{msg}");
    let (out, msg) = run_with(&text, &["repair"]);
    assert!(out.status.success(), "{msg}");
    assert!(msg.contains("nothing to repair"), "{msg}");
    let (out, msg) = run_with(&text, &["status", "--json"]);
    assert!(out.status.success(), "{msg}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["counts"]["uploaded"], 2, "counts rebuilt: {json}");

    g.add_upload(3, "c.jpg", &photo_bytes(3, 2000)).await;
    let (out, msg) = run_with(&text, &["run", "--until-idle"]);
    assert!(out.status.success(), "{msg}");
    assert_eq!(uploaded_rows(&g).await.len(), 3);
    assert!(s3.get(&upload_key("c.jpg")).await.is_some());
    g.drop_database().await;
}

/// A database user of its own for one test, dropped at the end.
struct User {
    name: String,
    admin: MySqlPool,
}

impl User {
    async fn create(g: &Gallery, grants: &str, limits: &str) -> Self {
        let name = format!("s3u_u{}_{:x}", std::process::id(), rand_suffix());
        let admin = MySqlPool::connect(&server_url()).await.unwrap();
        for host in ["localhost", "127.0.0.1"] {
            admin
                .execute(
                    format!("CREATE USER '{name}'@'{host}' IDENTIFIED BY 'Pw-Limited-1' {limits}")
                        .as_str(),
                )
                .await
                .unwrap();
            admin
                .execute(format!("GRANT {grants} ON `{}`.* TO '{name}'@'{host}'", g.name).as_str())
                .await
                .unwrap();
        }
        Self { name, admin }
    }

    fn url(&self, g: &Gallery) -> String {
        format!(
            "mysql://{}:Pw-Limited-1@{}/{}",
            self.name,
            db_host(),
            g.name
        )
    }

    async fn drop(self) {
        for host in ["localhost", "127.0.0.1"] {
            let _ = self
                .admin
                .execute(format!("DROP USER IF EXISTS '{}'@'{host}'", self.name).as_str())
                .await;
        }
        self.admin.close().await;
    }
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
}

/// Each refusal is told for what it is: a refused port, an unknown
/// database, a missing privilege and a full server are not "unreachable"
/// or "timed out", and the message says what to change.
#[tokio::test]
async fn database_errors_name_the_real_cause() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let text = config_text(&g, &s3, SECRET_KEY, "");
    let (out, msg) = run_with(&text, &["run", "--until-idle"]);
    assert!(out.status.success(), "{msg}");

    let refused = format!("mysql://root@127.0.0.1:{}/piwigo", free_port());
    let unknown = format!("{}/no_such_db_{}", server_url(), std::process::id());
    let read_only = User::create(&g, "SELECT", "").await;
    let one_connection = User::create(&g, "ALL", "WITH MAX_USER_CONNECTIONS 1").await;
    let holder = MySqlPool::connect(&one_connection.url(&g)).await.unwrap();
    holder.execute("SELECT 1").await.unwrap();

    let cases = [
        (refused, "connection refused", "timed out"),
        (unknown, "no such database", "unreachable"),
        (one_connection.url(&g), "too many connections", "timed out"),
    ];
    for (url, expected, not_expected) in cases {
        let started = Instant::now();
        let (out, msg) = run_with(&text.replace(&g.url, &url), &["status"]);
        assert_eq!(out.status.code(), Some(1), "{url}: {msg}");
        assert!(
            msg.contains(expected),
            "{url}: expected {expected:?} in {msg}"
        );
        assert!(!msg.contains(not_expected), "{url}: {msg}");
        assert!(!msg.contains("Pw-Limited-1"), "{msg}");
        // Told at once, not after the pool's own retries run out.
        assert!(started.elapsed() < Duration::from_secs(9), "{url}: {msg}");
    }
    // A missing privilege is found before any statement is denied, named
    // with its GRANT; only the admin can fix it: exit 2.
    let (out, msg) = run_with(&text.replace(&g.url, &read_only.url(&g)), &["status"]);
    assert_eq!(out.status.code(), Some(2), "{msg}");
    assert!(msg.contains("privileges this version needs"), "{msg}");
    assert!(msg.contains("GRANT INSERT, CREATE ON"), "{msg}");
    assert!(!msg.contains("cannot connect"), "{msg}");
    holder.close().await;
    read_only.drop().await;
    one_connection.drop().await;
    g.drop_database().await;
}

/// The queue table dropped under a running daemon: the log names the
/// missing table instead of calling the database unreachable.
#[tokio::test]
async fn a_table_dropped_under_the_daemon_is_named_in_the_log() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    let (out, msg) = run_with(
        &config_text(&g, &s3, SECRET_KEY, ""),
        &["run", "--until-idle"],
    );
    assert!(out.status.success(), "{msg}");
    std::fs::write(
        &path,
        config_text(&g, &s3, SECRET_KEY, "")
            .replace("[upload]", "[monitor]\npoll_interval = \"200ms\"\n[upload]"),
    )
    .unwrap();
    let child = Running::spawn(bin().arg("--config").arg(&path).arg("run"));
    g.add_upload(1, "a.jpg", &photo_bytes(1, 2000)).await;
    let uploaded = format!("SELECT COUNT(*) FROM {}", g.table("s3upload_uploaded"));
    wait_for(
        "the daemon to upload the photo",
        Duration::from_secs(30),
        || async { g.scalar_i64(&uploaded).await >= 1 },
    )
    .await;
    g.exec(&format!("DROP TABLE {}", g.table("s3upload_queue")))
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let stderr = child.stop();
    assert!(stderr.contains("table doesn't exist"), "{stderr}");
    assert!(stderr.contains("s3upload_queue"), "{stderr}");
    assert!(!stderr.contains("unreachable"), "{stderr}");
    g.drop_database().await;
}

/// After an upgrade, before the first `run`: `check` names the migrations
/// still to apply, and `run` applies them.
#[tokio::test]
async fn check_names_pending_migrations() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let text = config_text(&g, &s3, SECRET_KEY, "");
    let (out, msg) = run_with(&text, &["run", "--until-idle"]);
    assert!(out.status.success(), "{msg}");
    let (out, msg) = run_with(&text, &["check"]);
    assert!(out.status.success(), "{msg}");
    assert!(!msg.contains("pending"), "{msg}");
    // As a database left by the release before formats were backed up
    // (and so before migration 8, which alters the formats table).
    g.exec(&format!("DROP TABLE {}", g.table("s3upload_formats")))
        .await;
    g.exec(&format!(
        "DELETE FROM {} WHERE version IN (5, 8)",
        g.table("s3upload_migrations")
    ))
    .await;
    let (out, msg) = run_with(&text, &["check"]);
    assert!(out.status.success(), "{msg}");
    assert!(
        msg.contains(
            "migrations     2 pending: 5 (queue and record Piwigo's formats), 8 (record what the change check compares; the version history); `run` applies them"
        ),
        "{msg}"
    );
    let (out, msg) = run_with(&text, &["run", "--until-idle"]);
    assert!(out.status.success(), "{msg}");
    let (_, msg) = run_with(&text, &["check"]);
    assert!(!msg.contains("pending"), "{msg}");
    g.drop_database().await;
}
