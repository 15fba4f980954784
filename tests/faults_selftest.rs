//! The fault-injecting proxies themselves, against tiny servers written
//! here, so fault tests can trust what the proxies do and record.

#[path = "common/faults.rs"]
mod faults;

use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use faults::{Fault, HttpFaultProxy, TcpCutProxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const SLOW_DOWN: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code>\
                         <Message>Please reduce your request rate.</Message></Error>";

/// A request as the upstream HTTP server received it: head and body.
type Request = (String, Vec<u8>);

/// What the upstream HTTP server received.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Request>>>);

impl Seen {
    fn all(&self) -> Vec<Request> {
        self.0.lock().unwrap().clone()
    }
    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

/// An HTTP/1.1 server answering 200 to everything, one request per
/// connection, without a Connection header of its own: an empty body to a
/// PUT (as S3 does), "ok" otherwise.
async fn upstream_http() -> (u16, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Seen::default();
    let record = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                continue;
            };
            let record = record.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let end = loop {
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    let mut chunk = [0u8; 4096];
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        let (n, v) = l.split_once(':')?;
                        n.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                let mut body = buf[end..].to_vec();
                while body.len() < len {
                    let mut chunk = [0u8; 4096];
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => body.extend_from_slice(&chunk[..n]),
                    }
                }
                let answer = if head.starts_with("HEAD ") {
                    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"
                } else if head.starts_with("PUT ") {
                    "HTTP/1.1 200 OK\r\nETag: \"1\"\r\nContent-Length: 0\r\n\r\n"
                } else {
                    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                };
                record.0.lock().unwrap().push((head, body));
                let _ = s.write_all(answer.as_bytes()).await;
            });
        }
    });
    (port, seen)
}

/// A TCP server echoing every byte back.
async fn upstream_echo() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    port
}

/// Sends `parts` with pauses between them (so the head arrives in pieces)
/// and reads until the connection ends.
async fn exchange(port: u16, parts: &[&[u8]]) -> io::Result<Vec<u8>> {
    let work = async {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            s.write_all(part).await?;
        }
        let mut out = Vec::new();
        s.read_to_end(&mut out).await?;
        Ok(out)
    };
    tokio::time::timeout(Duration::from_secs(3), work)
        .await
        .expect("the proxy answered or closed in time")
}

async fn get(port: u16, path: &str) -> io::Result<Vec<u8>> {
    let req = format!("GET {path} HTTP/1.1\r\nHost: s3\r\n\r\n");
    exchange(port, &[req.as_bytes()]).await
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn status(answer: &[u8]) -> u16 {
    text(answer)[9..12].parse().unwrap()
}

fn body(answer: &[u8]) -> String {
    let t = text(answer);
    t.split_once("\r\n\r\n").unwrap().1.to_string()
}

/// A reset or a bare close: either way, no HTTP answer.
fn no_answer(result: &io::Result<Vec<u8>>) -> bool {
    match result {
        Ok(bytes) => bytes.is_empty(),
        Err(_) => true,
    }
}

#[tokio::test]
async fn forwards_one_request_per_connection_and_records_writes() {
    let (up, seen) = upstream_http().await;
    let proxy = HttpFaultProxy::start(up).await;
    assert_eq!(
        proxy.endpoint(),
        format!("http://127.0.0.1:{}", proxy.port())
    );

    // A head split mid-line and mid-terminator, asking for keep-alive, and
    // a body sent separately.
    let answer = exchange(
        proxy.port(),
        &[
            b"PUT /gallery/photos/a%20b.jpg?x-id=PutObject HTT",
            b"P/1.1\r\nHost: s3\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n",
            b"Content-Length: 5\r\n\r",
            b"\n",
            b"hello",
        ],
    )
    .await
    .unwrap();
    assert_eq!(status(&answer), 200);
    assert_eq!(body(&answer), "");
    assert!(
        text(&answer).contains("\r\nConnection: close\r\n"),
        "{}",
        text(&answer)
    );

    let (head, got) = seen.all().pop().unwrap();
    let lower = head.to_ascii_lowercase();
    assert_eq!(lower.matches("connection:").count(), 1, "{head}");
    assert!(lower.contains("\r\nconnection: close\r\n"), "{head}");
    assert!(!lower.contains("keep-alive"), "{head}");
    assert!(head.starts_with("PUT /gallery/photos/a%20b.jpg?x-id=PutObject HTTP/1.1\r\n"));
    assert_eq!(got, b"hello");

    let log = proxy.log();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].method, "PUT");
    assert_eq!(log[0].path, "/gallery/photos/a%20b.jpg");
    assert_eq!(log[0].query, "x-id=PutObject");
    assert_eq!(log[0].status, Some(200));
    assert_eq!(log[0].fault, None);
    assert!(log[0].delivered);

    // A part upload and a read are not object writes; a completion is, and
    // so is a second PUT of the same key.
    let put = |target: &str, body: &str| {
        format!(
            "PUT {target} HTTP/1.1\r\nHost: s3\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let part = put(
        "/gallery/big.bin?partNumber=1&uploadId=u1&x-id=UploadPart",
        "part",
    );
    assert_eq!(
        status(&exchange(proxy.port(), &[part.as_bytes()]).await.unwrap()),
        200
    );
    let complete =
        "POST /gallery/big.bin?uploadId=u1 HTTP/1.1\r\nHost: s3\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(
        status(
            &exchange(proxy.port(), &[complete.as_bytes()])
                .await
                .unwrap()
        ),
        200
    );
    assert_eq!(
        status(&get(proxy.port(), "/gallery/big.bin").await.unwrap()),
        200
    );
    let again = put("/gallery/photos/a%20b.jpg?x-id=PutObject", "hello");
    assert_eq!(
        status(&exchange(proxy.port(), &[again.as_bytes()]).await.unwrap()),
        200
    );

    let writes = proxy.successful_writes();
    assert_eq!(writes.len(), 2, "{writes:?}");
    assert_eq!(writes["/gallery/photos/a b.jpg"], 2);
    assert_eq!(writes["/gallery/big.bin"], 1);
    assert_eq!(proxy.acknowledged_writes(), writes);
    assert_eq!(seen.count(), 5);
    assert!(proxy.fault_counts().is_empty());
}

#[tokio::test]
async fn injected_errors_answer_at_once_without_the_server() {
    let (up, seen) = upstream_http().await;
    let proxy = HttpFaultProxy::start(up).await;
    proxy.set_fault_rate(0.0, 0.0, 0.0, 1.0);

    // A large upload of which only the head is sent: the answer must not
    // wait for the body.
    let head =
        b"PUT /gallery/k?x-id=PutObject HTTP/1.1\r\nHost: s3\r\nContent-Length: 10000000\r\n\r\n";
    let answer = exchange(proxy.port(), &[head]).await.unwrap();
    assert_eq!(status(&answer), 503);
    assert_eq!(body(&answer), SLOW_DOWN);
    let t = text(&answer);
    assert!(t.contains("\r\nContent-Type: application/xml\r\n"), "{t}");
    assert!(
        t.contains(&format!("\r\nContent-Length: {}\r\n", SLOW_DOWN.len())),
        "{t}"
    );
    assert!(t.contains("\r\nConnection: close\r\n"), "{t}");

    // A HEAD gets the status without a body.
    let answer = exchange(
        proxy.port(),
        &[b"HEAD /gallery/k HTTP/1.1\r\nHost: s3\r\n\r\n"],
    )
    .await
    .unwrap();
    assert_eq!(status(&answer), 503);
    assert_eq!(body(&answer), "");

    proxy.clear();
    proxy.fail_next("PUT", Fault::Error500);
    assert_eq!(status(&get(proxy.port(), "/gallery/k").await.unwrap()), 200);
    let answer = exchange(proxy.port(), &[head]).await.unwrap();
    assert_eq!(status(&answer), 500);
    assert!(body(&answer).contains("<Code>InternalError</Code>"));

    proxy.set_redirect(true);
    let answer = get(proxy.port(), "/gallery/k").await.unwrap();
    assert_eq!(status(&answer), 301);
    assert!(body(&answer).contains("<Code>PermanentRedirect</Code>"));
    assert!(body(&answer).contains("<Endpoint>s3.eu-west-3.amazonaws.com</Endpoint>"));

    assert_eq!(seen.count(), 1, "only the GET reached the server");
    let log = proxy.log();
    let faults: Vec<_> = log.iter().map(|r| r.fault).collect();
    assert_eq!(
        faults,
        [
            Some("error503"),
            Some("error503"),
            None,
            Some("error500"),
            Some("redirect301")
        ]
    );
    assert_eq!(log[0].status, None);
    assert!(log.iter().all(|r| r.delivered));
    assert_eq!(proxy.injected("error503"), 2);
    assert_eq!(proxy.injected("error500"), 1);
    assert_eq!(proxy.injected("redirect301"), 1);
    assert!(proxy.successful_writes().is_empty());
}

#[tokio::test]
async fn reset_gives_no_answer() {
    let (up, seen) = upstream_http().await;
    let proxy = HttpFaultProxy::start(up).await;
    proxy.set_fault_rate(1.0, 0.0, 0.0, 0.0);
    let put = b"PUT /gallery/k HTTP/1.1\r\nHost: s3\r\nContent-Length: 2\r\n\r\nhi";
    assert!(no_answer(&exchange(proxy.port(), &[put]).await));
    assert!(no_answer(&get(proxy.port(), "/gallery/k").await));
    assert_eq!(seen.count(), 0);
    assert_eq!(proxy.injected("reset"), 2);
    assert!(
        proxy
            .log()
            .iter()
            .all(|r| r.fault == Some("reset") && r.status.is_none() && !r.delivered)
    );
}

#[tokio::test]
async fn stall_holds_the_answer_then_closes() {
    let (up, seen) = upstream_http().await;
    let proxy = HttpFaultProxy::start(up).await;
    proxy.set_stall_duration(Duration::from_millis(300));
    proxy.set_fault_rate(0.0, 1.0, 0.0, 0.0);

    let started = Instant::now();
    let answer = get(proxy.port(), "/gallery/k").await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    // The head and half of the body, then the end: an incomplete answer.
    assert_eq!(status(&answer), 200);
    assert_eq!(body(&answer), "o");

    // HEADs are never stalled.
    let answer = exchange(
        proxy.port(),
        &[b"HEAD /gallery/k HTTP/1.1\r\nHost: s3\r\n\r\n"],
    )
    .await
    .unwrap();
    assert_eq!(status(&answer), 200);

    // A stalled PUT is stored by the server though the client never hears
    // so; storing it again then is a legitimate retry.
    let put = b"PUT /gallery/k?x-id=PutObject HTTP/1.1\r\nHost: s3\r\nContent-Length: 2\r\n\r\nhi";
    let answer = exchange(proxy.port(), &[put]).await.unwrap();
    assert!(
        answer.is_empty(),
        "a bodiless answer is held before its head"
    );
    proxy.clear();
    assert_eq!(status(&exchange(proxy.port(), &[put]).await.unwrap()), 200);

    assert_eq!(seen.count(), 4);
    let log = proxy.log();
    let summary: Vec<_> = log
        .iter()
        .map(|r| (r.status, r.fault, r.delivered))
        .collect();
    assert_eq!(
        summary,
        [
            (Some(200), Some("stall"), false),
            (Some(200), None, true),
            (Some(200), Some("stall"), false),
            (Some(200), None, true),
        ]
    );
    assert_eq!(proxy.injected("stall"), 2);
    assert_eq!(proxy.successful_writes()["/gallery/k"], 2);
    assert_eq!(proxy.acknowledged_writes()["/gallery/k"], 1);
}

#[tokio::test]
async fn seeded_faults_are_random_and_reproducible() {
    let (up, _seen) = upstream_http().await;
    let proxy = HttpFaultProxy::start(up).await;
    proxy.set_fault_rate(0.0, 0.0, 0.0, 0.5);
    let mut runs = Vec::new();
    for _ in 0..2 {
        proxy.set_seed(7);
        let mut statuses = Vec::new();
        for _ in 0..16 {
            statuses.push(status(&get(proxy.port(), "/gallery/k").await.unwrap()));
        }
        runs.push(statuses);
    }
    assert_eq!(runs[0], runs[1]);
    assert!(
        runs[0].contains(&200) && runs[0].contains(&503),
        "{:?}",
        runs[0]
    );
}

#[tokio::test]
async fn down_refuses_and_stop_start_reuses_the_port() {
    let (up, _seen) = upstream_http().await;
    let proxy = HttpFaultProxy::start(up).await;
    let port = proxy.port();

    // Controls work from another task.
    let controls = proxy.controls();
    tokio::spawn(async move { controls.set_down(true) })
        .await
        .unwrap();
    assert!(no_answer(&get(port, "/gallery/k").await));
    assert!(proxy.injected("down") >= 1);
    proxy.set_down(false);
    assert_eq!(status(&get(port, "/gallery/k").await.unwrap()), 200);

    // A request held in a long stall is killed by stop().
    proxy.set_stall_duration(Duration::from_secs(30));
    proxy.fail_next("GET", Fault::Stall);
    let held = tokio::spawn(get(port, "/gallery/held"));
    while proxy.log().len() < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    proxy.stop().await;
    let held = held.await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    if let Ok(bytes) = held {
        assert!(
            !text(&bytes).ends_with("ok"),
            "the held answer never completed"
        );
    }
    assert!(!proxy.is_listening());
    assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err());

    proxy.start().await;
    assert_eq!(proxy.port(), port);
    assert_eq!(status(&get(port, "/gallery/k").await.unwrap()), 200);

    proxy.shutdown().await;
    assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err());
}

#[tokio::test]
async fn cut_proxy_forwards_cuts_and_recovers() {
    let up = upstream_echo().await;
    let proxy = TcpCutProxy::start(up).await;
    assert_eq!(proxy.addr(), format!("127.0.0.1:{}", proxy.port()));
    assert_eq!(
        proxy.url_for("mysql://root:pw@127.0.0.1:3306/db?ssl-mode=disabled"),
        format!("mysql://root:pw@{}/db?ssl-mode=disabled", proxy.addr())
    );

    let echo = |mut s: TcpStream| async move {
        s.write_all(b"hello").await?;
        let mut got = [0u8; 5];
        s.read_exact(&mut got).await?;
        io::Result::Ok((s, got))
    };

    let (mut live, got) = echo(TcpStream::connect(proxy.addr()).await.unwrap())
        .await
        .unwrap();
    assert_eq!(&got, b"hello");

    proxy.cut_for(Duration::from_millis(400)).await;
    assert!(proxy.is_cut());
    // The live connection is gone...
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(2), live.read_to_end(&mut rest))
        .await
        .expect("the cut closes live connections");
    assert!(read.is_err() || rest.is_empty());
    // ...and new ones are refused.
    let during = match TcpStream::connect(proxy.addr()).await {
        Ok(s) => echo(s).await.is_err(),
        Err(_) => true,
    };
    assert!(during, "a connection during the cut was refused");
    assert!(proxy.refused() >= 1);

    tokio::time::sleep(Duration::from_millis(450)).await;
    assert!(!proxy.is_cut());
    let (_s, got) = echo(TcpStream::connect(proxy.addr()).await.unwrap())
        .await
        .unwrap();
    assert_eq!(&got, b"hello");
    assert_eq!(proxy.forwarded(), 2);

    // Dropping the proxy stops it, even with its controls still held.
    let port = proxy.port();
    let controls = proxy.controls();
    drop(proxy);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!controls.is_listening());
    assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err());
}

#[tokio::test]
async fn cut_proxy_takes_the_port_of_a_database_url() {
    let up = upstream_echo().await;
    let proxy = TcpCutProxy::for_url(&format!("mysql://root@127.0.0.1:{up}/x")).await;
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    s.write_all(b"ping").await.unwrap();
    let mut got = [0u8; 4];
    s.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"ping");
}
