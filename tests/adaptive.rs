//! `upload.workers = "auto"` against the real database and S3 server,
//! through a proxy that adds a round trip to every request and, on
//! demand, answers 503 SlowDown: the figure grows over the slow link,
//! drops when S3 pushes back, `status` shows it, and every photo ends up
//! uploaded with the bytes its record says.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::faults::HttpFaultProxy;
use common::*;
use std::path::PathBuf;

use piwigo_s3upload::config::{Config, Workers};
use piwigo_s3upload::daemon::{self, RunOptions};
use piwigo_s3upload::db::Tables;
use piwigo_s3upload::metrics::Summary;
use piwigo_s3upload::queue::selection::Selection;
use piwigo_s3upload::queue::{enqueue, report};
use piwigo_s3upload::shutdown::Shutdown;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

const PHOTOS: u32 = 400;
const SLOTS: &str = "piwigo_s3upload_upload_slots";

/// Starts the daemon (reloads read `path`) and waits for its listener.
async fn start(
    config: Config,
    path: Option<PathBuf>,
    port: u16,
) -> (Shutdown, JoinHandle<Summary>) {
    init_logs();
    let shutdown = Shutdown::default();
    let s = shutdown.clone();
    let opts = RunOptions {
        until_idle: false,
        config_path: path,
    };
    let run = tokio::spawn(async move { daemon::run(config, s, opts).await.expect("daemon") });
    wait_for("the listener", Duration::from_secs(30), || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
    })
    .await;
    (shutdown, run)
}

/// A gauge or counter from `/metrics`.
async fn metric(port: u16, name: &str) -> u64 {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.unwrap();
    raw.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics: {raw}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_at_once_grow_over_a_slow_link_and_halve_on_slow_down() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    drain(config(&g, &s3, "[monitor]\nenabled = false\n")).await;
    let mut photos = Vec::new();
    for n in 0..PHOTOS {
        let bytes = photo_bytes(n, 20_000 + n as usize);
        let file = format!("a{n}.jpg");
        g.add_upload(n, &file, &bytes).await;
        photos.push((upload_key(&file), md5_hex(&bytes)));
    }
    let sel = Selection {
        all: true,
        ..Default::default()
    };
    enqueue::selection(&g.pool, &Tables::new(&g.prefix), &sel, true, &mut |_, _| {})
        .await
        .unwrap();

    let proxy = HttpFaultProxy::start(s3.port()).await;
    proxy.set_latency(Duration::from_millis(150));
    let port = free_port();
    let mut c = config(
        &g,
        &s3,
        &format!("[monitor]\nenabled = false\n[http]\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    c.s3.endpoint = Some(proxy.endpoint());
    c.upload.workers = Workers::Auto;
    c.upload.min_workers = 2;
    c.upload.max_workers = 32;
    let first = c.upload.initial_workers();
    let (shutdown, run) = start(c, None, port).await;

    // Each upload waits on round trips, not on bytes: more at once pay.
    let peak = &AtomicU64::new(0);
    wait_for(
        "more uploads at once",
        Duration::from_secs(120),
        || async move {
            let now = metric(port, SLOTS).await;
            peak.fetch_max(now, Ordering::Relaxed);
            now > first as u64
        },
    )
    .await;

    // S3 says slow down to most requests: the figure falls from its peak.
    proxy.set_fault_rate(0.0, 0.0, 0.0, 0.9);
    wait_for(
        "fewer uploads at once",
        Duration::from_secs(120),
        || async move {
            let now = metric(port, SLOTS).await;
            now < peak.fetch_max(now, Ordering::Relaxed)
        },
    )
    .await;
    assert!(metric(port, "piwigo_s3upload_s3_slow_downs_total").await > 0);
    assert!(proxy.injected("error503") > 0);
    assert!(metric(port, SLOTS).await >= 2, "never below min_workers");

    // Pushed back, not lost: once S3 answers again, every photo is there.
    proxy.clear();
    wait_for("every photo uploaded", Duration::from_secs(300), || async {
        g.uploaded().await.len() == PHOTOS as usize
    })
    .await;
    // `status` shows the running daemon's figure, from its heartbeat; the
    // queue is quiet now, so the figure holds still until the next beat.
    let t = Tables::new(&g.prefix);
    wait_for("status to show the figure", Duration::from_secs(60), || {
        let (pool, t) = (&g.pool, &t);
        async move {
            let report = report::report(pool, t, 10).await.unwrap();
            let now = metric(port, SLOTS).await;
            report.daemons[0].uploads_at_once.map(u64::from) == Some(now)
                && report
                    .to_text()
                    .contains(&format!(", {now} uploads at once)"))
        }
    })
    .await;
    shutdown.graceful.cancel();
    run.await.unwrap();
    let recorded = g.uploaded().await;
    for (key, md5) in &photos {
        let row = recorded
            .iter()
            .find(|(_, _, k, _)| k == key)
            .unwrap_or_else(|| panic!("{key} not recorded"));
        assert_eq!(&row.3, md5, "{key}: recorded md5");
        let body = s3.get(key).await.unwrap_or_else(|| panic!("{key} missing"));
        assert_eq!(&md5_hex(&body), md5, "{key}: bytes in the bucket");
    }
    assert!(g.queue_statuses().await.is_empty());
    g.drop_database().await;
}

/// A reload switches between a fixed figure and "auto": "auto" goes on
/// from the figure running then, kept within its bounds; a number is set
/// as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_switches_between_a_fixed_figure_and_auto() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let port = free_port();
    let text = |upload: &str| {
        format!(
            "{}\n[http]\nlisten = \"127.0.0.1:{port}\"\n",
            config_text(&g, &s3, &s3.secret_key, "").replace("workers = 4", upload)
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text("workers = 4")).unwrap();
    let (shutdown, run) = start(Config::load(&path).unwrap(), Some(path.clone()), port).await;
    assert_eq!(metric(port, SLOTS).await, 4);

    for (upload, figure) in [
        ("workers = \"auto\"\nmin_workers = 6", 6),
        ("workers = 3", 3),
        ("workers = \"auto\"\nmax_workers = 2\nmin_workers = 1", 2),
    ] {
        std::fs::write(&path, text(upload)).unwrap();
        shutdown.reload.notify_one();
        wait_for(upload, Duration::from_secs(30), || async move {
            metric(port, SLOTS).await == figure
        })
        .await;
    }
    shutdown.graceful.cancel();
    run.await.unwrap();
    g.drop_database().await;
}
