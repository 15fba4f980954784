//! `s3.honours_if_none_match`: off, every upload asks HEAD first; on, the
//! PUT's `If-None-Match: *` is trusted and the HEAD is skipped; `auto`
//! asks the server at start (rclone ignores the header, so the HEAD
//! stays). Requests are counted by a proxy between the daemon and the S3
//! server.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Forwards to `upstream` and counts request lines starting with `HEAD `.
async fn counting_proxy(upstream: u16) -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let heads = Arc::new(AtomicUsize::new(0));
    let counter = heads.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                else {
                    return;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let up = async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    // Request lines start a read often enough; a HEAD has
                    // no body, so it cannot hide inside one.
                    while let Ok(n) = cr.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        if buf[..n].starts_with(b"HEAD ") {
                            counter.fetch_add(1, Ordering::Relaxed);
                        }
                        if sw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    let _ = sw.shutdown().await;
                };
                let down = async move {
                    let _ = tokio::io::copy(&mut sr, &mut cw).await;
                    let _ = cw.shutdown().await;
                };
                tokio::join!(up, down);
            });
        }
    });
    (port, heads)
}

async fn run(setting: &str) -> (usize, Vec<(u32, String, String, String)>) {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let (port, heads) = counting_proxy(s3.port()).await;
    let text = config_text(&g, &s3, SECRET_KEY, "")
        .replace(&s3.endpoint, &format!("http://127.0.0.1:{port}"))
        .replace(
            "key_format = \"file\"\n",
            &format!("key_format = \"file\"\n{setting}"),
        );
    let load = || {
        piwigo_s3upload::config::Config::from_toml(&text, std::path::Path::new("t"), None).unwrap()
    };
    drain(load()).await;
    for n in 0..5 {
        g.add_upload(n, &format!("c{n}.jpg"), &photo_bytes(n, 20_000))
            .await;
    }
    let before = heads.load(Ordering::Relaxed);
    let s = drain(load()).await;
    assert_eq!(s.uploaded, 5, "{s:?}");
    for n in 0..5 {
        let key = upload_key(&format!("c{n}.jpg"));
        assert_eq!(s3.get(&key).await.unwrap(), photo_bytes(n, 20_000));
    }
    let uploaded = g.uploaded().await;
    g.drop_database().await;
    (heads.load(Ordering::Relaxed) - before, uploaded)
}

#[tokio::test]
async fn when_off_every_upload_asks_head_first() {
    let (heads, uploaded) = run("honours_if_none_match = false\n").await;
    assert_eq!(heads, 5);
    assert!(uploaded.iter().all(|u| u.1 == "uploaded"));
}

/// The default: the probe finds rclone ignoring the header.
#[tokio::test]
async fn by_default_a_server_that_ignores_if_none_match_keeps_the_head() {
    let (heads, uploaded) = run("").await;
    assert_eq!(heads, 5);
    assert!(uploaded.iter().all(|u| u.1 == "uploaded"));
}

#[tokio::test]
async fn a_server_that_honours_if_none_match_is_spared_the_head() {
    let (heads, uploaded) = run("honours_if_none_match = true\n").await;
    assert_eq!(heads, 0);
    assert!(uploaded.iter().all(|u| u.1 == "uploaded"));
}

/// A probe whose writes landed but were never answered (the connection
/// dropped after the request went through, every retry alike) keeps the
/// HEAD, and still deletes the object it may have left.
#[tokio::test]
async fn a_probe_whose_writes_fail_still_removes_its_object() {
    use common::faults::HttpFaultProxy;
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let proxy = HttpFaultProxy::start(s3.port()).await;
    proxy.set_stall_duration(std::time::Duration::from_millis(50));
    // Every request goes through, and its answer never comes back (HEADs
    // are answered; the probe asks none).
    proxy.set_fault_rate(0.0, 1.0, 0.0, 0.0);
    let mut c = config(&g, &s3, "");
    c.s3.endpoint = Some(proxy.endpoint());
    let target = piwigo_s3upload::s3::Target::new(&c.s3, &c.upload).await;
    let settled = target
        .settle_if_none_match(piwigo_s3upload::config::IfNoneMatch::Auto)
        .await;
    assert!(!settled.honoured, "{}", settled.why);
    assert!(settled.why.contains("probe failed"), "{}", settled.why);
    let stored = proxy
        .log()
        .into_iter()
        .filter(|r| r.method == "PUT" && r.status == Some(200))
        .count();
    assert!(stored > 0, "the writes reached the server");
    assert_eq!(s3.get("photos/s3upload-probe/if-none-match").await, None);
    g.drop_database().await;
}
