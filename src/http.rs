//! The optional HTTP listener: `/healthz` (liveness: the process
//! answers) and `/readyz` (readiness: database and bucket reachable) for
//! orchestrators and the `health` command, `/metrics` for Prometheus,
//! `/status` as `status --json` and `/presign/{image_id}` for the Piwigo
//! plugin (these two need the `http.token`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde_json::json;
use sqlx::MySqlPool;
use tokio::sync::{Mutex, Semaphore, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::db::Tables;
use crate::metrics::Metrics;
use crate::queue::report;
use crate::redact::Redactor;
use crate::s3::Target;
use crate::secret::Secret;

/// Connections served at once. A slot is taken before `accept`, so clients
/// beyond it wait in the kernel's backlog holding none of the daemon's
/// file descriptors: the workers keep theirs whatever clients do.
pub const MAX_CONNECTIONS: usize = 64;
/// A client must send its request headers within this long.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Every connection ends after this long, idle or trickling: answers are
/// small and quick, and the connection is closed after one.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a bucket check is reused: health probes come every few
/// seconds and must not turn into a stream of S3 requests.
const S3_CHECK_TTL: Duration = Duration::from_secs(15);

/// Every readiness probe answers within this, reachable or not.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// What the listener needs of the running configuration; the daemon
/// sends a new one on every reload.
#[derive(Clone)]
pub struct Feed {
    /// For the bucket check and presigned links.
    pub target: Target,
    pub redact: Redactor,
    pub no_progress_alarm: Duration,
    /// Poll interval when monitoring runs, for the staleness check.
    pub poll_interval: Option<Duration>,
    /// Guards `/status` and `/presign`; those are off when unset. In the
    /// feed so that a reload changes it: a token an admin replaced
    /// because it leaked must stop working at once.
    pub token: Option<Secret>,
    pub presign_expiry: Duration,
}

pub struct HttpState {
    pub pool: MySqlPool,
    pub tables: Tables,
    pub metrics: Arc<Metrics>,
    pub feed: watch::Receiver<Feed>,
    s3_check: Mutex<Option<(Instant, Result<(), String>)>>,
}

impl HttpState {
    pub fn new(
        pool: MySqlPool,
        tables: Tables,
        metrics: Arc<Metrics>,
        feed: watch::Receiver<Feed>,
    ) -> Self {
        Self {
            pool,
            tables,
            metrics,
            feed,
            s3_check: Mutex::new(None),
        }
    }
}

/// Serves until `shutdown`, with at most [`MAX_CONNECTIONS`] clients at
/// once, each closed after one request or [`CONNECTION_TIMEOUT`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<HttpState>,
    shutdown: CancellationToken,
) {
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .route("/presign/{image_id}", get(presign))
        .with_state(state);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            _ = shutdown.cancelled() => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors or memory: pause rather than spin;
                    // the slot goes back meanwhile.
                    tracing::warn!(error = %e, "http: cannot accept a connection");
                    drop(slot);
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        _ = shutdown.cancelled() => break,
                    }
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let service = TowerToHyperService::new(app.clone());
        connections.spawn(async move {
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(CONNECTION_TIMEOUT, connection).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(error = %e, "http: connection ended with an error"),
                Err(_) => tracing::debug!("http: connection closed at the time limit"),
            }
            drop(slot);
        });
    }
    connections.shutdown().await;
}

/// Liveness: the runtime answers and the pipeline moves. It never waits
/// on the database or S3, so an outage there does not get the process
/// restarted; a stuck pipeline does, as the systemd watchdog would.
async fn healthz(State(st): State<Arc<HttpState>>) -> Response {
    let alarm = st.feed.borrow().no_progress_alarm;
    let stalled = st.metrics.stalled(alarm).map(|d| d.as_secs());
    let body = json!({
        "status": if stalled.is_none() { "ok" } else { "fail" },
        "pipeline": {"ok": stalled.is_none(), "no_progress_seconds": stalled},
    });
    let code = match stalled {
        None => StatusCode::OK,
        Some(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    (code, Json(body)).into_response()
}

async fn readyz(State(st): State<Arc<HttpState>>) -> Response {
    let db = match tokio::time::timeout(PROBE_TIMEOUT, crate::db::ping(&st.pool)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".to_string()),
    };
    let s3 = s3_health(&st).await;
    let age = st.metrics.last_poll_age();
    let feed = st.feed.borrow().clone();
    let poll_ok = match feed.poll_interval {
        // Three missed polls, plus slack for a slow database.
        Some(interval) => age.is_some_and(|a| a < (interval * 3).as_secs_f64() + 10.0),
        None => true,
    };
    let stalled = st
        .metrics
        .stalled(feed.no_progress_alarm)
        .map(|d| d.as_secs());
    let ok = db.is_ok() && s3.is_ok() && poll_ok && stalled.is_none();
    let redact = &feed.redact;
    let part = |r: &Result<(), String>| match r {
        Ok(()) => json!({"ok": true}),
        Err(e) => json!({"ok": false, "error": redact.scrub(e)}),
    };
    let body = json!({
        "status": if ok { "ok" } else { "fail" },
        "database": part(&db),
        "s3": part(&s3),
        "monitor": {"ok": poll_ok, "last_poll_age_seconds": age},
        "pipeline": {"ok": stalled.is_none(), "no_progress_seconds": stalled},
    });
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

async fn s3_health(st: &HttpState) -> Result<(), String> {
    let mut cached = st.s3_check.lock().await;
    if let Some((at, result)) = cached.as_ref()
        && at.elapsed() < S3_CHECK_TTL
    {
        return result.clone();
    }
    let target = st.feed.borrow().target.clone();
    let result = match tokio::time::timeout(PROBE_TIMEOUT, target.check_bucket()).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no answer within {}s", PROBE_TIMEOUT.as_secs())),
    };
    *cached = Some((Instant::now(), result.clone()));
    result
}

async fn metrics(State(st): State<Arc<HttpState>>) -> Response {
    match report::counts(&st.pool, &st.tables).await {
        Ok(counts) => st.metrics.set_queue_depth(counts.iter()),
        Err(e) => tracing::warn!(error = %e, "http: could not count the queue for /metrics"),
    }
    match report::version_counts(&st.pool, &st.tables).await {
        Ok(v) => st.metrics.set_versions(v.figures()),
        Err(e) => tracing::warn!(error = %e, "http: could not count versions for /metrics"),
    }
    match crate::verify::LastRun::load(&st.pool, &st.tables).await {
        Ok(Some(last)) => st.metrics.set_verify(last.figures()),
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "http: could not read the last verify for /metrics"),
    }
    match crate::queue::last_snapshot::LastSnapshot::load(&st.pool, &st.tables).await {
        Ok(Some(last)) => st.metrics.set_snapshot(last.figures()),
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "http: could not read the last snapshot for /metrics"),
    }
    match report::Deletions::load(&st.pool, &st.tables).await {
        Ok(d) => st.metrics.set_deletions(d.figures()),
        Err(e) => tracing::warn!(error = %e, "http: could not count deleted photos for /metrics"),
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        st.metrics.encode(),
    )
        .into_response()
}

async fn presign(
    State(st): State<Arc<HttpState>>,
    headers: HeaderMap,
    Path(image_id): Path<String>,
) -> Response {
    let feed = st.feed.borrow().clone();
    if let Some(answer) = crate::token::refusal(&headers, feed.token.as_ref()) {
        return answer;
    }
    crate::companion::presign::answer(
        &st.pool,
        &st.tables,
        &feed.target,
        &feed.redact,
        feed.presign_expiry,
        &image_id,
    )
    .await
}

async fn status(State(st): State<Arc<HttpState>>, headers: HeaderMap) -> Response {
    let token = st.feed.borrow().token.clone();
    if let Some(answer) = crate::token::refusal(&headers, token.as_ref()) {
        return answer;
    }
    match report::report(&st.pool, &st.tables, 10).await {
        Ok(r) => Json(r).into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}
