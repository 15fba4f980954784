//! Fault injection for the integration tests: loopback TCP proxies that sit
//! between the daemon and its servers and misbehave on demand.
//!
//! [`HttpFaultProxy`] fronts the S3 server. It pins every TCP connection to
//! a single request, so that a fault hits exactly one request and its log
//! says exactly what the server did with each one, then injects resets,
//! stalls, 5xx answers, redirects or a dead server.
//!
//! [`TcpCutProxy`] fronts the database and drops every connection at once,
//! like a server restart, without touching the database server that the
//! other tests share.
//!
//! Both listen on 127.0.0.1 with a port of their own, forward to an
//! upstream on 127.0.0.1, run on the current tokio runtime and stop when
//! dropped.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long a connection may finish sending after its answer went out.
/// Closing a socket with unread bytes makes the kernel send RST, which can
/// destroy an answer the client has not read yet.
const LINGER: Duration = Duration::from_secs(1);

/// How long the server's answer is still awaited, for the log, after the
/// client went away.
const ORPHAN_WAIT: Duration = Duration::from_secs(5);

/// Larger request or response heads are treated as garbage.
const MAX_HEAD: usize = 64 * 1024;

const LOOPBACK: [u8; 4] = [127, 0, 0, 1];

// ---------------------------------------------------------------------------
// HTTP fault proxy
// ---------------------------------------------------------------------------

/// A fault the HTTP proxy can inject into one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fault {
    /// Read the request head, then reset the connection: no answer at all.
    Reset,
    /// Forward the request, then hold the answer (before its head, or in
    /// the middle of its body) for the stall duration and close.
    Stall,
    /// Answer 500 `InternalError` without asking the server.
    Error500,
    /// Answer 503 `SlowDown` without asking the server.
    Error503,
    /// Answer 301 `PermanentRedirect` (bucket in another region).
    Redirect301,
    /// Forward the request with one bit of its body's first byte flipped,
    /// as a faulty link or middlebox would.
    FlipBodyByte,
    /// Answer 404 `NoSuchUpload` without asking the server, as S3 does to
    /// a part of a multipart upload that was aborted.
    NoSuchUpload,
}

impl Fault {
    /// The name used in [`Record::fault`] and [`FaultControls::fault_counts`].
    pub fn name(self) -> &'static str {
        match self {
            Fault::Reset => "reset",
            Fault::Stall => "stall",
            Fault::Error500 => "error500",
            Fault::Error503 => "error503",
            Fault::Redirect301 => "redirect301",
            Fault::FlipBodyByte => "flip",
            Fault::NoSuchUpload => "nosuchupload",
        }
    }
}

/// Name counted by [`FaultControls::fault_counts`] for connections refused
/// while the proxy is "down".
pub const DOWN: &str = "down";

/// One request seen by the HTTP proxy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub method: String,
    /// As in the request line (still percent-encoded), without the query.
    pub path: String,
    /// The raw query string without `?`, empty if there was none.
    pub query: String,
    /// The server's final status, `None` if the server did not answer
    /// (injected reset or answer, server unreachable, client gone first).
    /// A stalled request records what the server answered even though the
    /// client never got it.
    pub status: Option<u16>,
    /// The injected fault, if any.
    pub fault: Option<&'static str>,
    /// The client was sent a whole answer (the server's, or an injected
    /// one). Settles when the connection ends.
    pub delivered: bool,
}

impl Record {
    /// True if this request made the server store an object: a plain PUT
    /// (PutObject, CopyObject) or CompleteMultipartUpload, answered 200.
    /// Part uploads and sub-resource PUTs (`?tagging`, `?acl`...) do not
    /// count.
    pub fn is_object_write(&self) -> bool {
        if self.status != Some(200) {
            return false;
        }
        let mut names = query_names(&self.query);
        match self.method.as_str() {
            // The SDK tags operations with `x-id=...`; anything else is a
            // sub-resource or a part.
            "PUT" => names.all(|n| n == "x-id"),
            "POST" => names.any(|n| n == "uploadId"),
            _ => false,
        }
    }

    /// The path with percent-encoding decoded: `/bucket/key`.
    pub fn decoded_path(&self) -> String {
        percent_decode(&self.path)
    }
}

/// The fault configuration, changed by tests while requests flow.
struct Faults {
    reset: f64,
    stall: f64,
    err500: f64,
    err503: f64,
    stall_for: Duration,
    /// Added before each request is answered or forwarded: a link's round
    /// trip.
    latency: Duration,
    down: bool,
    redirect: bool,
    /// Faults for upcoming requests, taken before the random draw: a method
    /// to match (`None` for any) and the fault.
    script: VecDeque<(Option<String>, Fault)>,
    rng: XorShift,
}

impl Faults {
    fn new() -> Self {
        Self {
            reset: 0.0,
            stall: 0.0,
            err500: 0.0,
            err503: 0.0,
            stall_for: Duration::from_secs(2),
            latency: Duration::ZERO,
            down: false,
            redirect: false,
            script: VecDeque::new(),
            rng: XorShift::new(0),
        }
    }

    fn choose(&mut self, method: &str, path: &str) -> Option<Fault> {
        // A stalled HEAD answer has no body to stall in and tests nothing a
        // stalled PUT does not: HEADs get every fault but stalls.
        let head = method.eq_ignore_ascii_case("HEAD");
        if self.redirect {
            return Some(Fault::Redirect301);
        }
        // A scripted fault is meant for a photo: the daemon's start-up
        // probes (objects under s3upload-probe/) never take one.
        let probe = path.contains("s3upload-probe/");
        let scripted = self.script.iter().position(|(m, f)| {
            !probe
                && m.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method))
                && !(head && *f == Fault::Stall)
        });
        if let Some(i) = scripted {
            return self.script.remove(i).map(|(_, f)| f);
        }
        // Always draw, so that a seed gives the same sequence whatever the
        // methods are.
        let x = self.rng.next_f64();
        let bands = [
            (self.reset, Fault::Reset),
            (self.stall, Fault::Stall),
            (self.err500, Fault::Error500),
            (self.err503, Fault::Error503),
        ];
        let mut edge = 0.0;
        for (rate, fault) in bands {
            edge += rate.max(0.0);
            if x < edge {
                // A HEAD drawn in the stall band is forwarded, so that the
                // other rates stay what the test asked for.
                return (!(head && fault == Fault::Stall)).then_some(fault);
            }
        }
        None
    }
}

struct HttpInner {
    upstream: SocketAddr,
    faults: Mutex<Faults>,
    log: Mutex<Vec<Record>>,
    counts: Mutex<HashMap<&'static str, usize>>,
}

impl HttpInner {
    fn count(&self, kind: &'static str) {
        *lock(&self.counts).entry(kind).or_default() += 1;
    }

    /// Logs the request and returns its index, to add the status later.
    fn record(&self, head: &RequestHead, fault: Option<Fault>) -> usize {
        if let Some(f) = fault {
            self.count(f.name());
        }
        let mut log = lock(&self.log);
        log.push(Record {
            method: head.method.clone(),
            path: head.path.clone(),
            query: head.query.clone(),
            status: None,
            fault: fault.map(Fault::name),
            delivered: false,
        });
        log.len() - 1
    }

    fn set_status(&self, index: usize, status: u16) {
        if let Some(r) = lock(&self.log).get_mut(index) {
            r.status = Some(status);
        }
    }

    fn set_delivered(&self, index: usize) {
        if let Some(r) = lock(&self.log).get_mut(index) {
            r.delivered = true;
        }
    }
}

/// The controls and records of an [`HttpFaultProxy`], which derefs to
/// them; cheap to clone, to change faults from another task while the
/// daemon runs.
#[derive(Clone)]
pub struct FaultControls {
    inner: Arc<HttpInner>,
    listener: Arc<Listener>,
}

impl FaultControls {
    /// `http://127.0.0.1:PORT`, to configure the client with.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.listener.port)
    }

    pub fn port(&self) -> u16 {
        self.listener.port
    }

    /// Per-request probabilities (each 0.0..=1.0, summing to at most 1.0).
    pub fn set_fault_rate(&self, reset: f64, stall: f64, err500: f64, err503: f64) {
        let mut f = lock(&self.inner.faults);
        f.reset = reset;
        f.stall = stall;
        f.err500 = err500;
        f.err503 = err503;
    }

    /// How long a stalled answer is held before the connection is closed
    /// (2 s unless set).
    pub fn set_stall_duration(&self, d: Duration) {
        lock(&self.inner.faults).stall_for = d;
    }

    /// Every request waits this long before it is answered or forwarded,
    /// like a link with this round trip (none unless set; kept by
    /// [`clear`](Self::clear)).
    pub fn set_latency(&self, d: Duration) {
        lock(&self.inner.faults).latency = d;
    }

    /// Restarts the random sequence; the same seed and the same requests
    /// give the same faults.
    pub fn set_seed(&self, seed: u64) {
        lock(&self.inner.faults).rng = XorShift::new(seed);
    }

    /// Down: every connection is accepted and reset at once, like a server
    /// that crashed. Going down also kills the requests in flight.
    pub fn set_down(&self, down: bool) {
        let was = std::mem::replace(&mut lock(&self.inner.faults).down, down);
        if down && !was {
            self.listener.kill_all();
        }
    }

    /// Every request answered 301 PermanentRedirect while set.
    pub fn set_redirect(&self, redirect: bool) {
        lock(&self.inner.faults).redirect = redirect;
    }

    /// Injects `fault` into the next request with this method (`"*"` for
    /// any), before any random fault. Queued faults are used in order.
    pub fn fail_next(&self, method: &str, fault: Fault) {
        let m = (method != "*").then(|| method.to_ascii_uppercase());
        lock(&self.inner.faults).script.push_back((m, fault));
    }

    /// No faults any more: rates zero, not down, no redirect, nothing
    /// queued. The log, counts, seed, stall duration and latency are kept, and a
    /// stopped proxy stays stopped.
    pub fn clear(&self) {
        let mut f = lock(&self.inner.faults);
        f.reset = 0.0;
        f.stall = 0.0;
        f.err500 = 0.0;
        f.err503 = 0.0;
        f.down = false;
        f.redirect = false;
        f.script.clear();
    }

    /// Every request seen so far, in arrival order.
    pub fn log(&self) -> Vec<Record> {
        lock(&self.inner.log).clone()
    }

    /// For each object path (decoded, `/bucket/key`), how many times the
    /// server answered 200 to a request that stores it (see
    /// [`Record::is_object_write`]). More than one means the object was
    /// written twice.
    pub fn successful_writes(&self) -> HashMap<String, usize> {
        self.count_writes(|_| true)
    }

    /// Like [`successful_writes`](Self::successful_writes), counting only
    /// writes whose 200 reached the client. A stalled or killed answer
    /// leaves the client unsure whether the object was stored, and writing
    /// it again is then legitimate (the SDK's own retry does); more than
    /// one here means an object was written again although the client had
    /// been told it was stored.
    pub fn acknowledged_writes(&self) -> HashMap<String, usize> {
        self.count_writes(|r| r.delivered)
    }

    fn count_writes(&self, keep: impl Fn(&Record) -> bool) -> HashMap<String, usize> {
        let mut writes = HashMap::new();
        for r in lock(&self.inner.log).iter() {
            if r.is_object_write() && keep(r) {
                *writes.entry(r.decoded_path()).or_default() += 1;
            }
        }
        writes
    }

    /// How many faults of each kind were injected ([`Fault::name`], and
    /// [`DOWN`] for refused connections).
    pub fn fault_counts(&self) -> HashMap<&'static str, usize> {
        lock(&self.inner.counts).clone()
    }

    /// How many faults of one kind were injected.
    pub fn injected(&self, kind: &str) -> usize {
        lock(&self.inner.counts).get(kind).copied().unwrap_or(0)
    }

    /// Stops listening (connections are then refused by the kernel) and
    /// kills every live connection, like a server process that exited.
    /// Returns once the port is closed and the connections are gone.
    pub async fn stop(&self) {
        self.listener.stop().await;
    }

    /// Listens again, on the same port, after [`stop`](Self::stop).
    pub async fn start(&self) {
        self.listener.start().await;
    }

    pub fn is_listening(&self) -> bool {
        self.listener.is_listening()
    }
}

/// An HTTP/1.1 proxy in front of the S3 server that injects faults; it
/// derefs to its [`FaultControls`].
///
/// It rewrites each request to `Connection: close` (and the answer too),
/// so every TCP connection carries exactly one request: faults then hit
/// one request each, and the client opens a fresh connection per request,
/// the way it would after real network trouble.
pub struct HttpFaultProxy {
    controls: FaultControls,
}

impl HttpFaultProxy {
    /// Starts a proxy to the HTTP server on 127.0.0.1:`upstream_port`, on
    /// the current tokio runtime. (`proxy.start()`, on the controls, is
    /// the restart after `stop()`.)
    pub async fn start(upstream_port: u16) -> Self {
        let inner = Arc::new(HttpInner {
            upstream: SocketAddr::from((LOOPBACK, upstream_port)),
            faults: Mutex::new(Faults::new()),
            log: Mutex::new(Vec::new()),
            counts: Mutex::new(HashMap::new()),
        });
        let conn = inner.clone();
        let handler: Handler = Arc::new(move |stream, ticket| {
            if lock(&conn.faults).down {
                conn.count(DOWN);
                reset(stream);
                return;
            }
            tokio::spawn(serve_http(conn.clone(), stream, ticket));
        });
        let listener = Arc::new(Listener::open(handler));
        Self {
            controls: FaultControls { inner, listener },
        }
    }

    /// A proxy to an endpoint like `http://127.0.0.1:PORT` (the port is
    /// what counts: traffic stays on 127.0.0.1).
    pub async fn for_endpoint(endpoint: &str) -> Self {
        Self::start(port_of(endpoint).expect("endpoint with a port")).await
    }

    /// A handle to change faults and read the log from another task.
    pub fn controls(&self) -> FaultControls {
        self.controls.clone()
    }

    /// Stops everything and waits until the port is closed.
    pub async fn shutdown(self) {
        self.controls.listener.stop().await;
    }
}

impl Deref for HttpFaultProxy {
    type Target = FaultControls;

    fn deref(&self) -> &FaultControls {
        &self.controls
    }
}

impl Drop for HttpFaultProxy {
    fn drop(&mut self) {
        // Clones of the controls must not keep the proxy serving.
        self.controls.listener.close();
    }
}

/// How a connection ends: with a normal close, or with a reset because the
/// exchange broke off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    Close,
    Reset,
}

async fn serve_http(inner: Arc<HttpInner>, mut client: TcpStream, mut ticket: Ticket) {
    let _ = client.set_nodelay(true);
    let ending = tokio::select! {
        ending = handle_http(&inner, &mut client) => ending,
        _ = ticket.killed() => Ending::Reset,
    };
    if ending == Ending::Reset {
        reset(client);
    }
}

async fn handle_http(inner: &HttpInner, client: &mut TcpStream) -> Ending {
    let mut buf = Vec::new();
    let end = match read_head(client, &mut buf).await {
        Ok(Some(end)) => end,
        // Hung up before a whole request: there is nothing to answer.
        Ok(None) => return Ending::Close,
        Err(e) => {
            note("reading a request head", &e);
            return Ending::Reset;
        }
    };
    let Some(head) = RequestHead::parse(&buf[..end]) else {
        eprintln!("fault proxy: malformed request head, resetting");
        return Ending::Reset;
    };
    let (fault, stall_for, latency) = {
        let mut f = lock(&inner.faults);
        (f.choose(&head.method, &head.path), f.stall_for, f.latency)
    };
    let index = inner.record(&head, fault);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let is_head = head.method.eq_ignore_ascii_case("HEAD");
    match fault {
        Some(Fault::Reset) => Ending::Reset,
        Some(
            f @ (Fault::Error500 | Fault::Error503 | Fault::Redirect301 | Fault::NoSuchUpload),
        ) => answer(inner, index, client, canned_response(f, is_head)).await,
        Some(Fault::Stall | Fault::FlipBodyByte) | None => {
            let stall = (fault == Some(Fault::Stall)).then_some(stall_for);
            let request = Exchange {
                inner,
                index,
                head: with_connection_close(&buf[..end]),
                early_body: &buf[end..],
                is_head,
                stall,
                flip: fault == Some(Fault::FlipBodyByte),
            };
            request.forward(client).await
        }
    }
}

/// Sends an injected answer. It goes out right after the head, without
/// waiting for a request body, like a server rejecting a request early.
async fn answer(
    inner: &HttpInner,
    index: usize,
    client: &mut TcpStream,
    response: Vec<u8>,
) -> Ending {
    if let Err(e) = client.write_all(&response).await {
        note("writing an injected answer", &e);
        return Ending::Reset;
    }
    inner.set_delivered(index);
    let _ = client.shutdown().await;
    let _ = tokio::time::timeout(LINGER, drain(client)).await;
    Ending::Close
}

/// One request being forwarded to the server.
struct Exchange<'a> {
    inner: &'a HttpInner,
    index: usize,
    /// The request head, rewritten to `Connection: close`.
    head: Vec<u8>,
    /// Body bytes that arrived with the head.
    early_body: &'a [u8],
    is_head: bool,
    stall: Option<Duration>,
    /// Flip one bit of the body's first byte on its way to the server.
    flip: bool,
}

/// Why the client-to-server copy ended.
enum Upload {
    /// The client hung up or broke the connection (clients never
    /// half-close): nobody is left to answer.
    ClientGone,
    /// The server stopped reading; it may still be answering (servers
    /// answer early to reject a body they will not read).
    ServerGone,
}

impl Exchange<'_> {
    async fn forward(&self, client: &mut TcpStream) -> Ending {
        let mut server = match TcpStream::connect(self.inner.upstream).await {
            Ok(s) => s,
            Err(e) => {
                // Reset, the nearest a proxy gets to "connection refused".
                note("connecting to the server", &e);
                return Ending::Reset;
            }
        };
        let _ = server.set_nodelay(true);
        let (mut from_client, mut to_client) = client.split();
        let (mut from_server, mut to_server) = server.split();

        // The server's write half is never shut down: a Go server takes a
        // half-closed connection for a client that went away and cancels
        // the request.
        let upload = async {
            let mut flip = self.flip;
            let mut early = self.early_body.to_vec();
            if flip && let Some(first) = early.first_mut() {
                *first ^= 1;
                flip = false;
            }
            if to_server.write_all(&self.head).await.is_err()
                || to_server.write_all(&early).await.is_err()
            {
                return Upload::ServerGone;
            }
            let mut chunk = vec![0u8; 64 * 1024];
            loop {
                match from_client.read(&mut chunk).await {
                    Ok(0) | Err(_) => return Upload::ClientGone,
                    Ok(n) => {
                        if flip {
                            chunk[0] ^= 1;
                            flip = false;
                        }
                        if to_server.write_all(&chunk[..n]).await.is_err() {
                            return Upload::ServerGone;
                        }
                    }
                }
            }
        };
        let download = self.relay_answer(&mut from_server, &mut to_client);
        tokio::pin!(upload, download);

        let mut uploading = true;
        loop {
            tokio::select! {
                gone = &mut upload, if uploading => match gone {
                    Upload::ClientGone => {
                        // The server may still carry out a request the
                        // client sent in full: wait for its answer, so the
                        // log tells whether the object was written.
                        let _ = tokio::time::timeout(ORPHAN_WAIT, &mut download).await;
                        return Ending::Reset;
                    }
                    Upload::ServerGone => uploading = false,
                },
                ending = &mut download => {
                    if ending == Ending::Close && uploading {
                        // Let the client read the answer and hang up first.
                        let _ = tokio::time::timeout(LINGER, &mut upload).await;
                    }
                    return ending;
                }
            }
        }
    }

    /// Relays the server's answer, recording its status before the client
    /// can see it, so a test that got an answer finds it in the log.
    async fn relay_answer<R, W>(&self, from_server: &mut R, to_client: &mut W) -> Ending
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let mut buf = Vec::new();
        loop {
            let end = match read_head(from_server, &mut buf).await {
                Ok(Some(end)) => end,
                Ok(None) => {
                    eprintln!("fault proxy: the server closed without answering");
                    return Ending::Reset;
                }
                Err(e) => {
                    note("reading the server's answer", &e);
                    return Ending::Reset;
                }
            };
            let Some(status) = parse_status(&buf[..end]) else {
                eprintln!("fault proxy: malformed answer from the server");
                return Ending::Reset;
            };
            if (100..200).contains(&status) && status != 101 {
                // Interim answers (100 Continue) pass untouched; the final
                // one follows on the same connection.
                if to_client.write_all(&buf[..end]).await.is_err() {
                    return Ending::Reset;
                }
                buf.drain(..end);
                continue;
            }
            self.inner.set_status(self.index, status);
            let head = with_connection_close(&buf[..end]);
            let body = buf.split_off(end);
            return match self.stall {
                None => {
                    if let Err(e) = relay_rest(head, body, from_server, to_client).await {
                        note("relaying an answer", &e);
                        return Ending::Reset;
                    }
                    // Before the close, so a client that read to the end
                    // finds the record settled.
                    self.inner.set_delivered(self.index);
                    let _ = to_client.shutdown().await;
                    Ending::Close
                }
                Some(d) => {
                    let has_body = !self.is_head
                        && !matches!(status, 204 | 304)
                        && header_value(&head, "content-length").map(str::trim) != Some("0");
                    stall(head, body, has_body, d, from_server, to_client).await
                }
            };
        }
    }
}

/// Relays the (rewritten) head, the body read with it, and the rest until
/// the server closes.
async fn relay_rest<R, W>(
    head: Vec<u8>,
    body: Vec<u8>,
    from_server: &mut R,
    to_client: &mut W,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    write_parts(to_client, &[&head, &body]).await?;
    tokio::io::copy(from_server, to_client).await?;
    to_client.flush().await
}

/// Holds an answer: in the middle of its body if it has one (the client
/// has seen a status and is reading), else before its head (the client
/// waits for any answer). Then closes, leaving the answer incomplete.
async fn stall<R, W>(
    head: Vec<u8>,
    mut body: Vec<u8>,
    has_body: bool,
    hold: Duration,
    from_server: &mut R,
    to_client: &mut W,
) -> Ending
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    if has_body {
        if body.is_empty() {
            // Nothing of the body yet: wait for its first bytes so the
            // stall falls inside it.
            body.reserve(8192);
            let _ = from_server.read_buf(&mut body).await;
        }
        let half = body.len() / 2;
        if let Err(e) = write_parts(to_client, &[&head, &body[..half]]).await {
            note("relaying a stalled answer", &e);
            return Ending::Reset;
        }
    }
    tokio::time::sleep(hold).await;
    let _ = to_client.shutdown().await;
    Ending::Close
}

/// The injected answers: what S3 sends, with an XML error body (none for a
/// HEAD, as S3 does).
fn canned_response(fault: Fault, is_head: bool) -> Vec<u8> {
    let (status, reason, code, message, extra_xml, extra_headers) = match fault {
        Fault::Error503 => (
            503,
            "Slow Down",
            "SlowDown",
            "Please reduce your request rate.",
            "",
            "",
        ),
        Fault::Redirect301 => (
            301,
            "Moved Permanently",
            "PermanentRedirect",
            "The bucket you are attempting to access must be addressed using the specified endpoint.",
            "<Endpoint>s3.eu-west-3.amazonaws.com</Endpoint>",
            "x-amz-bucket-region: eu-west-3\r\n",
        ),
        Fault::NoSuchUpload => (
            404,
            "Not Found",
            "NoSuchUpload",
            "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
            "",
            "",
        ),
        // Error500, and anything else that ends up answered here.
        _ => (
            500,
            "Internal Server Error",
            "InternalError",
            "We encountered an internal error. Please try again.",
            "",
            "",
        ),
    };
    let body = if is_head {
        String::new()
    } else {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
             <Error><Code>{code}</Code><Message>{message}</Message>{extra_xml}</Error>"
        )
    };
    format!(
        "HTTP/1.1 {status} {reason}\r\n\
         Content-Type: application/xml\r\n\
         Content-Length: {}\r\n\
         {extra_headers}\
         x-amz-request-id: {:016X}\r\n\
         Connection: close\r\n\
         \r\n\
         {body}",
        body.len(),
        next_request_id(),
    )
    .into_bytes()
}

fn next_request_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0x5EED_0000);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

// ---------------------------------------------------------------------------
// TCP cut proxy
// ---------------------------------------------------------------------------

struct CutInner {
    upstream: SocketAddr,
    /// Until when new connections are refused.
    cut_until: Mutex<Option<Instant>>,
    forwarded: AtomicUsize,
    refused: AtomicUsize,
}

impl CutInner {
    fn is_cut(&self) -> bool {
        lock(&self.cut_until).is_some_and(|until| Instant::now() < until)
    }
}

/// The controls of a [`TcpCutProxy`], which derefs to them; cheap to clone.
#[derive(Clone)]
pub struct CutControls {
    inner: Arc<CutInner>,
    listener: Arc<Listener>,
}

impl CutControls {
    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.listener.port)
    }

    pub fn port(&self) -> u16 {
        self.listener.port
    }

    /// `url` with its host and port replaced by the proxy's, keeping the
    /// scheme, credentials, database and options.
    pub fn url_for(&self, url: &str) -> String {
        let span = authority_span(url);
        let authority = &url[span.clone()];
        let userinfo = authority.rfind('@').map_or("", |i| &authority[..=i]);
        format!(
            "{}{userinfo}{}{}",
            &url[..span.start],
            self.addr(),
            &url[span.end..]
        )
    }

    /// Closes every live connection and refuses new ones for `d`, then
    /// forwards again; returns once the live connections are closed, not
    /// at the end of the cut. `cut_for(Duration::ZERO)` only drops the
    /// connections.
    pub async fn cut_for(&self, d: Duration) {
        // Set before killing, so a connection accepted meanwhile either sees
        // the cut or gets killed.
        *lock(&self.inner.cut_until) = Some(Instant::now() + d);
        self.listener.kill_all();
        self.listener.wait_closed().await;
    }

    /// Ends a cut early.
    pub fn restore(&self) {
        *lock(&self.inner.cut_until) = None;
    }

    pub fn is_cut(&self) -> bool {
        self.inner.is_cut()
    }

    /// Connections forwarded so far.
    pub fn forwarded(&self) -> usize {
        self.inner.forwarded.load(Ordering::Relaxed)
    }

    /// Connections refused during cuts so far.
    pub fn refused(&self) -> usize {
        self.inner.refused.load(Ordering::Relaxed)
    }

    /// Stops listening and kills every live connection; returns once they
    /// are closed.
    pub async fn stop(&self) {
        self.listener.stop().await;
    }

    /// Listens again, on the same port, after [`stop`](Self::stop).
    pub async fn start(&self) {
        self.listener.start().await;
    }

    pub fn is_listening(&self) -> bool {
        self.listener.is_listening()
    }
}

/// A byte-for-byte TCP proxy (for the database) that can cut every
/// connection at once and refuse new ones for a while, like a server
/// restart; it derefs to its [`CutControls`].
pub struct TcpCutProxy {
    controls: CutControls,
}

impl TcpCutProxy {
    /// Starts a proxy to 127.0.0.1:`upstream_port` on the current tokio
    /// runtime. (`proxy.start()`, on the controls, is the restart after
    /// `stop()`.)
    pub async fn start(upstream_port: u16) -> Self {
        let inner = Arc::new(CutInner {
            upstream: SocketAddr::from((LOOPBACK, upstream_port)),
            cut_until: Mutex::new(None),
            forwarded: AtomicUsize::new(0),
            refused: AtomicUsize::new(0),
        });
        let conn = inner.clone();
        let handler: Handler = Arc::new(move |stream, ticket| {
            if conn.is_cut() {
                conn.refused.fetch_add(1, Ordering::Relaxed);
                reset(stream);
                return;
            }
            conn.forwarded.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(pipe(conn.upstream, stream, ticket));
        });
        let listener = Arc::new(Listener::open(handler));
        Self {
            controls: CutControls { inner, listener },
        }
    }

    /// A proxy to the server of a URL like `mysql://user@host:3306/db`
    /// (port 3306 if none; the host is taken to be 127.0.0.1).
    pub async fn for_url(url: &str) -> Self {
        let authority = url_authority(url);
        let host_port = authority.rsplit('@').next().unwrap_or(authority);
        let port = match host_port.rsplit_once(':') {
            Some((_, p)) if !p.ends_with(']') => p.parse().expect("port in database URL"),
            _ => 3306,
        };
        Self::start(port).await
    }

    /// A handle to cut connections from another task.
    pub fn controls(&self) -> CutControls {
        self.controls.clone()
    }

    /// Stops everything and waits until the port is closed.
    pub async fn shutdown(self) {
        self.controls.listener.stop().await;
    }
}

impl Deref for TcpCutProxy {
    type Target = CutControls;

    fn deref(&self) -> &CutControls {
        &self.controls
    }
}

impl Drop for TcpCutProxy {
    fn drop(&mut self) {
        self.controls.listener.close();
    }
}

async fn pipe(upstream: SocketAddr, mut client: TcpStream, mut ticket: Ticket) {
    let _ = client.set_nodelay(true);
    let work = async {
        let mut server = match TcpStream::connect(upstream).await {
            Ok(s) => s,
            Err(e) => {
                note("connecting to the server", &e);
                return Ending::Reset;
            }
        };
        let _ = server.set_nodelay(true);
        match tokio::io::copy_bidirectional(&mut client, &mut server).await {
            Ok(_) => Ending::Close,
            Err(e) => {
                note("forwarding", &e);
                Ending::Reset
            }
        }
    };
    let ending = tokio::select! {
        ending = work => ending,
        _ = ticket.killed() => Ending::Reset,
    };
    if ending == Ending::Reset {
        reset(client);
    }
}

// ---------------------------------------------------------------------------
// Listening, shared by both proxies
// ---------------------------------------------------------------------------

/// Takes each accepted connection. Runs in the accept loop, so it must not
/// block: it refuses the connection or spawns a task that keeps the ticket.
type Handler = Arc<dyn Fn(TcpStream, Ticket) + Send + Sync>;

/// Held by each live connection's task: tells it when to die, and counts it
/// as live until dropped.
struct Ticket {
    kill: watch::Receiver<u64>,
    _live: LiveGuard,
}

impl Ticket {
    /// Resolves when every live connection must be killed.
    async fn killed(&mut self) {
        // An error means the listener is gone, which is a kill too.
        let _ = self.kill.changed().await;
    }
}

struct LiveGuard(Arc<AtomicUsize>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A loopback listener that can be closed and reopened on the same port,
/// and kill its live connections.
struct Listener {
    port: u16,
    handler: Handler,
    task: Mutex<Option<JoinHandle<()>>>,
    /// Bumped to kill every live connection.
    kill: watch::Sender<u64>,
    live: Arc<AtomicUsize>,
}

impl Listener {
    fn open(handler: Handler) -> Self {
        let listener = bind(0).expect("bind a loopback port for a test proxy");
        let port = listener.local_addr().expect("local address").port();
        let this = Self {
            port,
            handler,
            task: Mutex::new(None),
            kill: watch::Sender::new(0),
            live: Arc::new(AtomicUsize::new(0)),
        };
        this.serve(listener);
        this
    }

    fn serve(&self, listener: TcpListener) {
        let (handler, kill, live) = (self.handler.clone(), self.kill.clone(), self.live.clone());
        let task = tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        // Subscribed before the handler runs, so a kill
                        // right after accepting is not missed.
                        live.fetch_add(1, Ordering::Relaxed);
                        let ticket = Ticket {
                            kill: kill.subscribe(),
                            _live: LiveGuard(live.clone()),
                        };
                        handler(stream, ticket);
                    }
                    Err(e) => {
                        // Out of descriptors and the like: back off and
                        // keep serving.
                        eprintln!("fault proxy: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
        });
        *lock(&self.task) = Some(task);
    }

    fn is_listening(&self) -> bool {
        lock(&self.task).is_some()
    }

    fn kill_all(&self) {
        self.kill.send_modify(|epoch| *epoch += 1);
    }

    /// Waits (a little) for killed connections to be closed.
    async fn wait_closed(&self) {
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.live.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Closes the port and kills every connection, without waiting.
    fn close(&self) {
        if let Some(task) = lock(&self.task).take() {
            task.abort();
        }
        self.kill_all();
    }

    async fn stop(&self) {
        let task = lock(&self.task).take();
        if let Some(task) = task {
            task.abort();
            // The listening socket closes when the aborted task is dropped;
            // waiting makes the port refuse connections once this returns.
            let _ = task.await;
        }
        self.kill_all();
        self.wait_closed().await;
    }

    async fn start(&self) {
        if self.is_listening() {
            return;
        }
        // Killed connections linger in TIME_WAIT on this port; SO_REUSEADDR
        // gets past those, the retries past a slow close.
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match bind(self.port) {
                Ok(l) => break l,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("cannot listen on 127.0.0.1:{} again: {e}", self.port),
            }
        };
        self.serve(listener);
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.close();
    }
}

fn bind(port: u16) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::from((LOOPBACK, port)))?;
    socket.listen(1024)
}

/// Closes with RST rather than FIN: the peer sees "connection reset", as
/// when a server dies or a network path breaks.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// Logs an I/O failure, except a peer hanging up, which clients under
/// fault tests do all the time.
fn note(context: &str, e: &io::Error) {
    use io::ErrorKind::*;
    if !matches!(
        e.kind(),
        ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof
    ) {
        eprintln!("fault proxy: {context}: {e}");
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A test that panicked holding a lock must not take the proxy down too.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---------------------------------------------------------------------------
// HTTP/1.1 heads
// ---------------------------------------------------------------------------

/// Reads into `buf` until it holds a whole head, however it is split across
/// reads; returns where the head ends (the body starts), or `None` if the
/// peer closed first.
async fn read_head<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
) -> io::Result<Option<usize>> {
    let mut searched = 0;
    loop {
        if let Some(i) = find(&buf[searched..], b"\r\n\r\n") {
            return Ok(Some(searched + i + 4));
        }
        // The terminator may straddle two reads.
        searched = buf.len().saturating_sub(3);
        if buf.len() > MAX_HEAD {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "head too large"));
        }
        buf.reserve(8192);
        if r.read_buf(buf).await? == 0 {
            return Ok(None);
        }
    }
}

struct RequestHead {
    method: String,
    path: String,
    query: String,
}

impl RequestHead {
    fn parse(head: &[u8]) -> Option<Self> {
        let line = std::str::from_utf8(&head[..find(head, b"\r\n")?]).ok()?;
        let mut parts = line.split(' ');
        let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
        if method.is_empty() || !version.starts_with("HTTP/") {
            return None;
        }
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        Some(Self {
            method: method.to_string(),
            path: path.to_string(),
            query: query.to_string(),
        })
    }
}

/// The status of a response head.
fn parse_status(head: &[u8]) -> Option<u16> {
    let line = std::str::from_utf8(&head[..find(head, b"\r\n")?]).ok()?;
    let mut parts = line.split(' ');
    parts.next().filter(|v| v.starts_with("HTTP/"))?;
    parts.next()?.parse().ok()
}

/// The head with its hop-by-hop connection headers replaced by
/// `Connection: close`. Works on bytes: header values are passed through
/// exactly, as request signatures cover them.
fn with_connection_close(head: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(head.len() + 20);
    let content = head.strip_suffix(b"\r\n\r\n").unwrap_or(head);
    for (i, line) in lines(content).enumerate() {
        if i > 0 {
            let name = line.split(|&b| b == b':').next().unwrap_or(line);
            let name = name.trim_ascii();
            if ["connection", "keep-alive", "proxy-connection"]
                .iter()
                .any(|h| name.eq_ignore_ascii_case(h.as_bytes()))
            {
                continue;
            }
        }
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out
}

/// The value of the first header `name` in a head.
fn header_value<'h>(head: &'h [u8], name: &str) -> Option<&'h str> {
    lines(head).skip(1).find_map(|line| {
        let colon = line.iter().position(|&b| b == b':')?;
        let (n, v) = (&line[..colon], &line[colon + 1..]);
        if n.trim_ascii().eq_ignore_ascii_case(name.as_bytes()) {
            std::str::from_utf8(v).ok().map(str::trim)
        } else {
            None
        }
    })
}

fn lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(bytes);
    std::iter::from_fn(move || {
        let r = rest?;
        match find(r, b"\r\n") {
            Some(i) => {
                rest = Some(&r[i + 2..]);
                Some(&r[..i])
            }
            None => {
                rest = None;
                (!r.is_empty()).then_some(r)
            }
        }
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

async fn write_parts<W: AsyncWrite + Unpin>(w: &mut W, parts: &[&[u8]]) -> io::Result<()> {
    for part in parts {
        w.write_all(part).await?;
    }
    w.flush().await
}

/// Reads and discards until the peer closes.
async fn drain<R: AsyncRead + Unpin>(r: &mut R) {
    let mut sink = vec![0u8; 64 * 1024];
    while let Ok(n) = r.read(&mut sink).await {
        if n == 0 {
            break;
        }
    }
}

fn query_names(query: &str) -> impl Iterator<Item = &str> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').map_or(p, |(n, _)| n))
}

/// Decodes `%XX` escapes; anything malformed is kept as written. `+` stays
/// `+`: in a path it is not a space.
pub fn percent_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `host:port` part of a URL (with any `user@`), between `://` and the
/// path or options.
fn url_authority(url: &str) -> &str {
    &url[authority_span(url)]
}

fn authority_span(url: &str) -> std::ops::Range<usize> {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    start..end
}

fn port_of(endpoint: &str) -> Option<u16> {
    url_authority(endpoint).rsplit_once(':')?.1.parse().ok()
}

/// A small xorshift generator: reproducible fault sequences without a
/// dependency.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        // One splitmix64 step spreads small seeds; the state must not be 0.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Self(if z == 0 { 0x2545_F491_4F6C_DD1D } else { z })
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in [0, 1).
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}
