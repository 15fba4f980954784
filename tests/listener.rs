//! The `[http]` listener as network clients can abuse it: idle and slow
//! clients, more connections than the daemon has file descriptors for,
//! and a listener added on reload.

mod common;

use std::time::{Duration, Instant};

use common::cli::*;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut out))
        .await
        .ok()?
        .ok()?;
    Some(out)
}

async fn uploaded(g: &Gallery) -> i64 {
    g.scalar_i64(&format!(
        "SELECT COUNT(*) FROM {}",
        g.table("s3upload_uploaded")
    ))
    .await
}

/// With the daemon held to 256 open files, hundreds of idle connections to
/// the listener take none of the descriptors the uploads need: new photos
/// are still uploaded, and idle clients are disconnected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_cannot_starve_the_uploads() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    let text = config_text(&g, &s3, SECRET_KEY, "").replace(
        "[upload]",
        &format!(
            "[monitor]\npoll_interval = \"200ms\"\n[http]\nlisten = \"127.0.0.1:{port}\"\n[upload]"
        ),
    );
    std::fs::write(&path, text).unwrap();
    // `ulimit -n` in sh sets the soft and the hard limit: no raising it.
    let child = Running::spawn(
        std::process::Command::new("sh")
            .env_remove("PIWIGO_S3UPLOAD_DATABASE_URL")
            .env_remove("PIWIGO_S3UPLOAD_CONFIG")
            .env("PIWIGO_S3UPLOAD_LOG", "info")
            .arg("-c")
            .arg("ulimit -n 256 && exec \"$0\" \"$@\"")
            .arg(env!("CARGO_BIN_EXE_piwigo-s3upload"))
            .arg("--config")
            .arg(&path)
            .arg("run"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(port, "/healthz").await.is_none() {
        assert!(Instant::now() < deadline, "the listener comes up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut connecting = tokio::task::JoinSet::new();
    for _ in 0..400 {
        connecting.spawn(tokio::time::timeout(
            Duration::from_secs(10),
            TcpStream::connect(("127.0.0.1", port)),
        ));
    }
    let mut idle = Vec::new();
    while let Some(done) = connecting.join_next().await {
        if let Ok(Ok(Ok(stream))) = done {
            idle.push(stream);
        }
    }
    // The listener's 64 plus the kernel's backlog (128 here); the rest
    // wait for the handshake, as they would against any busy server.
    assert!(idle.len() > 128, "only {} connections opened", idle.len());
    for n in 0..6 {
        g.add_upload(n, &format!("p{n}.jpg"), &photo_bytes(n, 200_000))
            .await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while uploaded(&g).await < 6 {
        assert!(
            Instant::now() < deadline,
            "uploads go on beside idle connections: {:?}",
            g.queue_statuses().await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The first idle client is disconnected, not kept forever.
    let mut buf = [0u8; 16];
    let closed = tokio::time::timeout(Duration::from_secs(60), idle[0].read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "an idle connection is closed: {closed:?}"
    );
    drop(idle);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(answer) = get(port, "/healthz").await
            && answer.starts_with("HTTP/1.1 200")
        {
            break;
        }
        assert!(Instant::now() < deadline, "the listener serves again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let stderr = child.stop();
    assert!(!stderr.contains("Too many open files"), "{stderr}");
    g.drop_database().await;
}

/// `[http] listen` added to the file and reloaded: the daemon says the
/// listener needs a restart instead of ignoring it silently.
#[tokio::test]
async fn a_listener_added_on_reload_is_reported() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    let text = config_text(&g, &s3, SECRET_KEY, "");
    let (out, msg) = run_with(&text, &["run", "--until-idle"]);
    assert!(out.status.success(), "{msg}");
    std::fs::write(&path, &text).unwrap();
    let child = Running::spawn(bin().arg("--config").arg(&path).arg("run"));
    let deadline = Instant::now() + Duration::from_secs(30);
    g.add_upload(1, "a.jpg", &photo_bytes(1, 2000)).await;
    while uploaded(&g).await < 1 {
        assert!(Instant::now() < deadline, "the daemon runs");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let port = free_port();
    std::fs::write(
        &path,
        format!("{text}\n[http]\nlisten = \"127.0.0.1:{port}\"\n"),
    )
    .unwrap();
    child.signal("HUP");
    // The reload is logged at once; leave room for a loaded machine.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let stderr = child.stop();
    assert!(stderr.contains("http.listen changed"), "{stderr}");
    assert!(stderr.contains("next restart"), "{stderr}");
    g.drop_database().await;
}
