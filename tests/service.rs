//! Running as a service: graceful shutdown, reload, HTTP endpoints and the
//! bandwidth cap, against the real database and S3 server.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::*;
use piwigo_s3upload::config::{Config, Workers};
use piwigo_s3upload::daemon::{self, RunOptions};
use piwigo_s3upload::metrics::Summary;
use piwigo_s3upload::shutdown::Shutdown;
use piwigo_s3upload::verify;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

fn start(config: Config, path: Option<PathBuf>) -> (Shutdown, JoinHandle<Summary>) {
    init_logs();
    let shutdown = Shutdown::default();
    let opts = RunOptions {
        until_idle: false,
        config_path: path,
    };
    let s = shutdown.clone();
    let task = tokio::spawn(async move { daemon::run(config, s, opts).await.expect("daemon") });
    (shutdown, task)
}

async fn count(g: &Gallery, table: &str, filter: &str) -> i64 {
    g.scalar_i64(&format!("SELECT COUNT(*) FROM {} {filter}", g.table(table)))
        .await
}

/// A graceful stop whose limit runs out hands the photos in flight back:
/// nothing is lost, nothing stays claimed, and the next run uploads them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_uploads_in_flight_loses_nothing() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    drain(config(&g, &s3, "")).await;
    let mut files = Vec::new();
    for n in 0..4 {
        let bytes = photo_bytes(n, 3 * 1024 * 1024);
        g.add_upload(n, &format!("slow{n}.jpg"), &bytes).await;
        files.push((upload_key(&format!("slow{n}.jpg")), bytes));
    }
    // 12 MiB at 1 MiB/s: uploads are certainly in flight when we stop.
    let mut c = config(&g, &s3, "");
    c.upload.max_bandwidth = Some(1024 * 1024);
    c.upload.shutdown_timeout = Duration::from_millis(500);
    let (shutdown, task) = start(c, None);
    wait_for("uploads in flight", Duration::from_secs(20), || async {
        count(&g, "s3upload_queue", "WHERE claimed_until > NOW(3)").await > 0
    })
    .await;
    shutdown.graceful.cancel();
    let summary = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("stops within the limit")
        .unwrap();
    assert!(summary.uploaded < 4, "{summary:?}");
    let queued = count(&g, "s3upload_queue", "").await;
    let claimed = count(&g, "s3upload_queue", "WHERE claimed_by IS NOT NULL").await;
    let done = count(&g, "s3upload_uploaded", "").await;
    assert_eq!(queued + done, 4, "every photo is queued or uploaded");
    assert_eq!(claimed, 0, "stopped uploads were handed back");

    let s = drain(config(&g, &s3, "")).await;
    assert_eq!(s.uploaded as i64, queued);
    for (key, bytes) in files {
        assert_eq!(s3.get(&key).await.unwrap(), bytes, "{key}");
    }
    g.drop_database().await;
}

/// Within the limit, uploads in flight finish before the daemon exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_lets_uploads_finish() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    drain(config(&g, &s3, "")).await;
    g.add_upload(1, "one.jpg", &photo_bytes(1, 2 * 1024 * 1024))
        .await;
    let mut c = config(&g, &s3, "");
    c.upload.max_bandwidth = Some(1024 * 1024);
    c.upload.shutdown_timeout = Duration::from_secs(30);
    let (shutdown, task) = start(c, None);
    // Hashed, and its key reserved: the upload has started.
    wait_for("an upload in flight", Duration::from_secs(20), || async {
        count(&g, "s3upload_queue", "WHERE key_md5 IS NOT NULL").await > 0
    })
    .await;
    shutdown.graceful.cancel();
    let summary = task.await.unwrap();
    assert_eq!(summary.uploaded, 1);
    assert_eq!(count(&g, "s3upload_queue", "").await, 0);
    g.drop_database().await;
}

/// Photos are claimed, hashed and looked at ahead of the uploads (three
/// times `upload.workers` in all); on a graceful stop the ones still waiting for an
/// upload slot go back to the queue at once, while the upload in flight
/// finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_stop_hands_back_photos_hashed_ahead() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    drain(config(&g, &s3, "")).await;
    for n in 0..3 {
        g.add_upload(
            n,
            &format!("ahead{n}.jpg"),
            &photo_bytes(n, 2 * 1024 * 1024),
        )
        .await;
    }
    // The proxy says when the first photo's PUT reaches the server.
    let proxy = common::faults::HttpFaultProxy::start(s3.port()).await;
    let mut c = config(&g, &s3, "");
    c.s3.endpoint = Some(proxy.endpoint());
    c.upload.workers = Workers::Fixed(1);
    c.upload.max_bandwidth = Some(1024 * 1024);
    c.upload.shutdown_timeout = Duration::from_secs(30);
    let (shutdown, task) = start(c, None);
    wait_for(
        "three photos claimed by one worker",
        Duration::from_secs(20),
        || async { count(&g, "s3upload_queue", "WHERE claimed_by IS NOT NULL").await == 3 },
    )
    .await;
    // One photo is sending; the others are hashed, or being hashed, and
    // wait for the slot.
    wait_for("one upload in flight", Duration::from_secs(20), || async {
        let puts = proxy
            .log()
            .into_iter()
            .filter(|r| r.method == "PUT" && r.path.contains("ahead"));
        puts.count() == 1
    })
    .await;
    // Their keys were looked at while that photo held the only slot: the
    // HEAD is not part of an upload's turn.
    wait_for("the next photo's HEAD", Duration::from_secs(20), || async {
        let log = proxy.log();
        let sent = |method: &str| {
            log.iter()
                .filter(|r| r.method == method && r.path.contains("ahead") && r.status.is_some())
                .count()
        };
        sent("HEAD") == 3 && sent("PUT") == 0
    })
    .await;
    shutdown.graceful.cancel();
    let summary = task.await.unwrap();
    // What happened on the wire and in the queue, should this ever fail.
    let seen = || async {
        let wire: Vec<_> = proxy
            .log()
            .into_iter()
            .map(|r| (r.method, r.path, r.status))
            .collect();
        format!(
            "{summary:?} queue {:?} wire {wire:?}",
            g.queue_statuses().await
        )
    };
    assert_eq!(summary.uploaded, 1, "{}", seen().await);
    assert_eq!(count(&g, "s3upload_queue", "").await, 2, "{}", seen().await);
    assert_eq!(
        count(&g, "s3upload_queue", "WHERE claimed_by IS NOT NULL").await,
        0,
        "the photos hashed ahead were handed back"
    );
    let s = drain(config(&g, &s3, "")).await;
    assert_eq!(s.uploaded, 2);
    g.drop_database().await;
}

/// SIGHUP's path: a corrected key in the file is picked up without a
/// restart and the failed photos succeed at once; a broken file, or one that
/// cannot be applied, is refused whole and the running configuration keeps
/// working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_switches_to_a_corrected_key() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    drain(config(&g, &s3, "")).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    let slow_retries = "retry_backoff_min = \"1h\"\nretry_backoff_max = \"1h\"\n";
    let bad_text = config_text(&g, &s3, "NotTheSecret", "")
        .replace("[upload]\n", &format!("[upload]\n{slow_retries}"));
    let bad_text = bad_text
        .replace("retry_backoff_min = \"1s\"\n", "")
        .replace("retry_backoff_max = \"5s\"\n", "");
    std::fs::write(&path, &bad_text).unwrap();
    let config = Config::load(&path).unwrap();
    let (shutdown, task) = start(config, Some(path.clone()));

    let bytes = photo_bytes(3, 5000);
    g.add_upload(1, "fixme.jpg", &bytes).await;
    wait_for("failed_code_403", Duration::from_secs(20), || async {
        count(&g, "s3upload_queue", "WHERE status = 'failed_code_403'").await == 1
    })
    .await;

    // A file that does not parse: refused, and the running configuration
    // goes on: a photo added after it is still monitored, queued and tried
    // with the old (wrong) key.
    std::fs::write(&path, "[s3\nbroken").unwrap();
    shutdown.reload.notify_one();
    g.add_upload(3, "during.jpg", &photo_bytes(5, 5000)).await;
    wait_for(
        "a photo tried with the running configuration",
        Duration::from_secs(20),
        || async { count(&g, "s3upload_queue", "WHERE status = 'failed_code_403'").await == 2 },
    )
    .await;

    // A file that parses but cannot be applied (the gallery root is gone):
    // refused as a whole, so the corrected key in it is not taken either.
    let root = g.root().display().to_string();
    let unusable = bad_text.replace("NotTheSecret", SECRET_KEY).replace(
        &format!("root = \"{root}\""),
        "root = \"/nonexistent/piwigo\"",
    );
    assert_ne!(unusable, bad_text.replace("NotTheSecret", SECRET_KEY));
    std::fs::write(&path, unusable).unwrap();
    shutdown.reload.notify_one();
    g.add_upload(4, "refused.jpg", &photo_bytes(6, 5000)).await;
    wait_for(
        "a photo tried with the running configuration after a refused reload",
        Duration::from_secs(20),
        || async { count(&g, "s3upload_queue", "WHERE status = 'failed_code_403'").await == 3 },
    )
    .await;
    assert_eq!(count(&g, "s3upload_uploaded", "").await, 0);

    std::fs::write(&path, bad_text.replace("NotTheSecret", SECRET_KEY)).unwrap();
    shutdown.reload.notify_one();
    wait_for(
        "the uploads after reload",
        Duration::from_secs(20),
        || async { count(&g, "s3upload_uploaded", "").await == 3 },
    )
    .await;
    assert_eq!(s3.get(&upload_key("fixme.jpg")).await.unwrap(), bytes);

    // Still monitoring with the new settings.
    g.add_upload(2, "after.jpg", &photo_bytes(4, 100)).await;
    wait_for(
        "monitoring after reload",
        Duration::from_secs(20),
        || async { count(&g, "s3upload_uploaded", "").await == 4 },
    )
    .await;
    shutdown.graceful.cancel();
    task.await.unwrap();
    g.drop_database().await;
}

/// Tasks that outlive a reload follow it: a `[snapshots]` section added
/// on SIGHUP takes a snapshot without a restart, and the heartbeat reports
/// monitoring turned off by the reload (the plugin's tab shows it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_turns_snapshots_on_and_reports_monitoring() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    let text = config_text(&g, &s3, SECRET_KEY, "");
    std::fs::write(&path, &text).unwrap();
    let (shutdown, task) = start(Config::load(&path).unwrap(), Some(path.clone()));
    // -1 until the daemon has made its tables and beaten once.
    let monitoring = || async {
        sqlx::query_scalar::<_, i64>(&format!(
            "SELECT COALESCE(MAX(CAST(monitoring AS SIGNED)), -1) FROM {} WHERE stopped_at IS NULL",
            g.table("s3upload_heartbeat")
        ))
        .fetch_one(&g.pool)
        .await
        .unwrap_or(-1)
    };
    wait_for("the heartbeat", Duration::from_secs(30), || async {
        monitoring().await == 1
    })
    .await;
    let snapshots = || async {
        s3.keys()
            .await
            .into_iter()
            .filter(|k| {
                k.starts_with("photos/s3upload-snapshots/") && k.ends_with("/manifest.json")
            })
            .count()
    };
    assert_eq!(snapshots().await, 0, "no [snapshots] section yet");

    std::fs::write(
        &path,
        format!("{text}\n[monitor]\nenabled = false\n\n[snapshots]\ninterval = \"1h\"\n"),
    )
    .unwrap();
    shutdown.reload.notify_one();
    wait_for(
        "a snapshot after the reload",
        Duration::from_secs(60),
        || async { snapshots().await == 1 },
    )
    .await;
    wait_for(
        "monitoring reported off",
        Duration::from_secs(30),
        || async { monitoring().await == 0 },
    )
    .await;
    // The interval counts from the snapshot just taken: another reload
    // does not take a second one.
    shutdown.reload.notify_one();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(snapshots().await, 1);
    shutdown.graceful.cancel();
    task.await.unwrap();
    g.drop_database().await;
}

const HTTP_TOKEN: &str = "service-test-token-0123456789";

async fn http_get(port: u16, path: &str) -> (u16, String) {
    http_get_with(port, path, None).await
}

async fn http_get_with(port: u16, path: &str, token: Option<&str>) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_health_readiness_and_status_answer_correct_values() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    drain(config(&g, &s3, "")).await;
    let port = free_port();
    let http = format!("[http]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"{HTTP_TOKEN}\"\n");
    let (shutdown, task) = start(config(&g, &s3, &http), None);
    for n in 0..3 {
        g.add_upload(n, &format!("m{n}.jpg"), &photo_bytes(n, 1000 + n as usize))
            .await;
    }
    g.add_row("./upload/missing.jpg", "missing.jpg", None, 1)
        .await;
    wait_for("three uploads", Duration::from_secs(20), || async {
        count(&g, "s3upload_uploaded", "").await == 3
            && count(&g, "s3upload_queue", "WHERE status = 'failed_file_missing'").await == 1
    })
    .await;
    // The last verify, as the command stores it (a photo fails: not ok).
    let t = piwigo_s3upload::db::Tables::new(&g.prefix);
    let report = verify::run(&config(&g, &s3, ""), &g.pool, &t, Default::default())
        .await
        .unwrap();
    verify::LastRun::of(&report)
        .store(&g.pool, &t)
        .await
        .unwrap();

    let (code, body) = http_get(port, "/metrics").await;
    assert_eq!(code, 200);
    assert!(
        body.contains("piwigo_s3upload_verify{what=\"ok\"} 0"),
        "{body}"
    );
    assert!(
        body.contains("piwigo_s3upload_verify{what=\"objects_missing\"} 0"),
        "{body}"
    );
    assert!(
        body.contains("piwigo_s3upload_uploads_total{outcome=\"uploaded\"} 3"),
        "{body}"
    );
    assert!(
        body.contains("piwigo_s3upload_uploaded_bytes_total 3003"),
        "{body}"
    );
    assert!(
        body.contains("piwigo_s3upload_failures_total{status=\"failed_file_missing\"} 1"),
        "{body}"
    );
    assert!(
        body.contains("piwigo_s3upload_queue_depth{status=\"failed_file_missing\"} 1"),
        "{body}"
    );
    assert!(
        body.contains("piwigo_s3upload_queue_depth{status=\"uploaded\"} 3"),
        "{body}"
    );
    assert!(
        body.contains("piwigo_s3upload_upload_duration_seconds_count 4"),
        "{body}"
    );
    assert!(
        body.contains("piwigo_s3upload_poll_duration_seconds_count"),
        "{body}"
    );
    assert!(!body.contains(SECRET_KEY));

    let (code, body) = http_get(port, "/readyz").await;
    assert_eq!(code, 200, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["database"]["ok"], true);
    assert_eq!(health["s3"]["ok"], true);
    assert!(health["monitor"]["last_poll_age_seconds"].as_f64().unwrap() < 10.0);

    let (code, _) = http_get(port, "/status").await;
    assert_eq!(code, 401, "/status needs the token");
    let (code, body) = http_get_with(port, "/status", Some(HTTP_TOKEN)).await;
    assert_eq!(code, 200);
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status["counts"]["uploaded"], 3);
    assert_eq!(status["uploaded"].as_array().unwrap().len(), 3);
    assert_eq!(status["pending"][0]["status"], "failed_file_missing");

    shutdown.graceful.cancel();
    task.await.unwrap();

    // With a bucket that does not exist, health says so.
    let port = free_port();
    let http = format!("[http]\nlisten = \"127.0.0.1:{port}\"\n");
    let mut c = config(&g, &s3, &http);
    c.s3.bucket = "absent-bucket".into();
    let (shutdown, task) = start(c, None);
    wait_for("the listener", Duration::from_secs(10), || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
    })
    .await;
    let (code, body) = http_get(port, "/readyz").await;
    assert_eq!(code, 503, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["s3"]["ok"], false);
    assert!(
        health["s3"]["error"].as_str().unwrap().contains("404"),
        "{body}"
    );
    // Liveness does not depend on the bucket: the process works.
    let (code, body) = http_get(port, "/healthz").await;
    assert_eq!(code, 200, "{body}");
    shutdown.graceful.cancel();
    task.await.unwrap();
    g.drop_database().await;
}

/// The cap holds across all workers: bytes over time never beat it by
/// more than 10%. (A slow machine only makes the rate lower.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bandwidth_cap_holds_across_workers() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    drain(config(&g, &s3, "")).await;
    let mut total = 0u64;
    for n in 0..6 {
        let len = 1024 * 1024 + n as usize * 100_000;
        total += len as u64;
        g.add_upload(n, &format!("cap{n}.jpg"), &photo_bytes(n, len))
            .await;
    }
    let cap = 2 * 1024 * 1024;
    let mut c = config(&g, &s3, "");
    c.upload.max_bandwidth = Some(cap);
    c.upload.workers = Workers::Fixed(4);
    let started = Instant::now();
    let s = drain(c).await;
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(s.bytes, total);
    let rate = total as f64 / secs;
    assert!(
        rate <= cap as f64 * 1.1,
        "{rate:.0} B/s over {secs:.2}s beats the cap of {cap} B/s"
    );
    g.drop_database().await;
}

/// `GET /presign/{image_id}` with a bearer token: the status code and body.
async fn presign(port: u16, image_id: u32, token: &str) -> Option<(u16, String)> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let request = format!(
        "GET /presign/{image_id} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(request.as_bytes()).await.ok()?;
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut out))
        .await
        .ok()?
        .ok()?;
    let code = out.split(' ').nth(1)?.parse().ok()?;
    let body = out.split("\r\n\r\n").nth(1)?.to_owned();
    Some((code, body))
}

/// A reload applies `http.token` and `http.presign_expiry`: the replaced
/// token (say, one that leaked) is refused at once, the new one works and
/// links last the new time, without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_the_token_and_the_presign_expiry() {
    const OLD: &str = "the-old-token-that-leaked-0001";
    const NEW: &str = "the-new-token-after-reload-0002";
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    // The first run sets the watermark; photos added after it are sent.
    drain(config(&g, &s3, "")).await;
    let image = g
        .add_upload(1, "presigned.jpg", &photo_bytes(9, 3000))
        .await;
    assert_eq!(drain(config(&g, &s3, "")).await.uploaded, 1);
    let port = free_port();
    let http = |token: &str, expiry: &str| {
        format!(
            "{}\n[http]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"{token}\"\npresign_expiry = \"{expiry}\"\n",
            config_text(&g, &s3, SECRET_KEY, "")
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, http(OLD, "5m")).unwrap();
    let (shutdown, task) = start(Config::load(&path).unwrap(), Some(path.clone()));
    wait_for("the listener", Duration::from_secs(20), || async {
        presign(port, image, OLD)
            .await
            .is_some_and(|(code, _)| code == 200)
    })
    .await;
    let (_, body) = presign(port, image, OLD).await.unwrap();
    assert!(body.contains("\"expires_in\":300"), "{body}");

    std::fs::write(&path, http(NEW, "90s")).unwrap();
    shutdown.reload.notify_one();
    wait_for("the new token", Duration::from_secs(20), || async {
        presign(port, image, NEW)
            .await
            .is_some_and(|(code, _)| code == 200)
    })
    .await;
    let (_, body) = presign(port, image, NEW).await.unwrap();
    assert!(body.contains("\"expires_in\":90"), "{body}");
    let (code, body) = presign(port, image, OLD).await.unwrap();
    assert_eq!(code, 401, "{body}");
    assert!(!body.contains(OLD) && !body.contains(NEW), "{body}");

    shutdown.graceful.cancel();
    task.await.unwrap();
    g.drop_database().await;
}
