//! Wiring: connect, migrate, start the monitor and the HTTP listener, keep
//! up to `workers` uploads in flight, reload on SIGHUP, and stop
//! gracefully (or, with `until_idle`, when nothing is left to do).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::MySqlPool;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::db::{self, DbError, Tables};
use crate::metrics::{Metrics, Summary};
use crate::piwigo::{self, GalleryRoot};
use crate::queue::{self, Claimed, Queue, migrate::MigrateError};
use crate::redact::Redactor;
use crate::s3::outage::Outage;
use crate::s3::{self, Target};
use crate::shutdown::Shutdown;
use crate::{companion, formats, http, monitor, systemd, worker};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Migrate(#[from] MigrateError),
    #[error(
        "piwigo: tables {} are missing in the database; check piwigo.database_url (database name) and piwigo.table_prefix",
        .0.join(", ")
    )]
    MissingTables(Vec<String>),
    #[error(
        "piwigo: root {path} is not usable: {source} (set piwigo.root to Piwigo's install directory)"
    )]
    Root {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("http: cannot listen on {addr}: {source} (change http.listen or free the port)")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// Photos claimed and hashed ahead of the uploads, as a multiple of
/// `upload.workers`: the next photos are hashed while the current ones
/// upload, so no upload slot waits for a hash.
const PIPELINE_DEPTH: usize = 2;

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Poll once, upload everything due, then return.
    pub until_idle: bool,
    /// The file to re-read on reload; reloads are refused without one.
    pub config_path: Option<PathBuf>,
}

/// How often formats of recorded photos are looked for and sent.
const FORMATS_INTERVAL: Duration = Duration::from_secs(30);

/// Backoff cap while the database refuses claims.
const MAX_DB_BACKOFF: Duration = Duration::from_secs(30);
/// Database connections: workers hold one only for short queries, never
/// during an upload, so a small pool serves many workers.
const POOL_SIZE: u32 = 24;

/// Connects and checks Piwigo's tables and our own (migrating them).
pub async fn open_database(
    config: &Config,
    connections: u32,
) -> Result<(MySqlPool, Tables), DaemonError> {
    let pool = db::connect(config.database_url(), connections).await?;
    let t = Tables::new(&config.piwigo.table_prefix);
    let missing = piwigo::missing_tables(&pool, &t.prefix).await?;
    if !missing.is_empty() {
        return Err(DaemonError::MissingTables(missing));
    }
    queue::migrate::run(&pool, &t).await?;
    Ok((pool, t))
}

/// What outlives a reload: the outage state and the upload slots.
#[derive(Clone)]
struct Shared {
    metrics: Arc<Metrics>,
    outage: Arc<Outage>,
    uploads: Arc<Semaphore>,
}

impl Shared {
    fn of(ctx: &worker::Context) -> Shared {
        Shared {
            metrics: ctx.metrics.clone(),
            outage: ctx.outage.clone(),
            uploads: ctx.uploads.clone(),
        }
    }
}

async fn context(
    config: &Config,
    queue: Queue,
    shared: Shared,
) -> Result<Arc<worker::Context>, DaemonError> {
    let root =
        GalleryRoot::new(&config.piwigo.root, &config.piwigo.extra_roots).map_err(|source| {
            DaemonError::Root {
                path: config.piwigo.root.clone(),
                source,
            }
        })?;
    Ok(Arc::new(worker::Context {
        queue,
        target: Target::new(&config.s3, &config.upload).await,
        root,
        upload: config.upload.clone(),
        redact: Redactor::new(config.secrets()),
        metrics: shared.metrics,
        outage: shared.outage,
        uploads: shared.uploads,
    }))
}

async fn retry_if_changed(queue: &Queue, config: &Config) -> Result<(), DbError> {
    let retried = queue
        .retry_if_settings_changed(&s3::settings_fingerprint(&config.s3))
        .await?;
    if retried > 0 {
        tracing::info!(retried, "S3 settings changed: retrying failed uploads now");
    }
    Ok(())
}

pub async fn run(
    config: Config,
    shutdown: Shutdown,
    opts: RunOptions,
) -> Result<Summary, DaemonError> {
    let (pool, t) = open_database(&config, POOL_SIZE).await?;
    let strategy = Queue::detect_strategy(&pool).await?;
    let queue = Queue::new(pool.clone(), t.clone(), strategy);
    let metrics = Arc::new(Metrics::default());
    let shared = Shared {
        metrics: metrics.clone(),
        outage: Arc::default(),
        uploads: Arc::new(Semaphore::new(config.upload.workers)),
    };
    let ctx = context(&config, queue.clone(), shared).await?;
    retry_if_changed(&queue, &config).await?;

    let (ctx_tx, ctx_rx) = watch::channel(ctx.clone());
    let (poll_tx, poll_rx) = watch::channel(None);
    let http_stop = CancellationToken::new();
    let http_task = match config.http.listen {
        Some(addr) if !opts.until_idle => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| DaemonError::Listen { addr, source })?;
            tracing::info!(http.listen = %addr, "serving /healthz, /metrics and /status");
            let state = Arc::new(
                http::HttpState::new(
                    pool.clone(),
                    t.clone(),
                    metrics.clone(),
                    ctx_rx.clone(),
                    poll_rx,
                )
                .with_access(&config.http),
            );
            Some(tokio::spawn(http::serve(
                listener,
                state,
                http_stop.clone(),
            )))
        }
        _ => None,
    };
    tracing::info!(
        workers = config.upload.workers,
        s3.bucket = %config.s3.bucket,
        monitor.enabled = config.monitor.enabled,
        "piwigo-s3upload started"
    );

    let wake = Arc::new(Notify::new());
    let companion_stop = CancellationToken::new();
    let companion_task = (!opts.until_idle).then(|| {
        tokio::spawn(companion::run(
            pool.clone(),
            t.clone(),
            ctx_rx.clone(),
            config.monitor.poll_interval,
            wake.clone(),
            companion_stop.clone(),
        ))
    });
    let mut d = Dispatcher {
        sem: Arc::new(Semaphore::new(config.upload.workers * PIPELINE_DEPTH)),
        workers: config.upload.workers,
        ctx,
        ctx_tx,
        poll_tx,
        pool: pool.clone(),
        t: t.clone(),
        wake,
        monitor: None,
        config,
        config_path: opts.config_path.clone(),
        shutdown: shutdown.clone(),
        stall_reported: false,
    };
    if opts.until_idle {
        let started = Instant::now();
        monitor::poll_once(&pool, &t, &d.config.monitor).await?;
        metrics.polled(started.elapsed());
        companion::once(&pool, &t, &d.ctx, true).await?;
    } else {
        d.start_monitor();
    }
    let formats_task = (!opts.until_idle).then(|| {
        let stop = shutdown.graceful.child_token();
        let task = tokio::spawn(formats::run(
            pool.clone(),
            t.clone(),
            d.ctx_tx.subscribe(),
            FORMATS_INTERVAL,
            stop.clone(),
        ));
        (task, stop)
    });
    systemd::ready();
    d.dispatch(opts.until_idle).await;
    if opts.until_idle
        && !shutdown.graceful.is_cancelled()
        && let Err(e) = formats::until_idle(&pool, &t, &d.ctx).await
    {
        tracing::warn!(error = %e, "formats: could not finish; they are sent at the next run");
    }
    if let Some((task, stop)) = formats_task {
        stop.cancel();
        if let Err(e) = task.await {
            tracing::error!(error = %e, "formats task ended abnormally");
        }
    }
    if let Some((task, stop)) = d.monitor.take() {
        stop.cancel();
        if let Err(e) = task.await {
            tracing::error!(error = %e, "monitor task ended abnormally");
        }
    }
    companion_stop.cancel();
    if let Some(task) = companion_task
        && let Err(e) = task.await
    {
        tracing::error!(error = %e, "plugin requests task ended abnormally");
    }
    http_stop.cancel();
    if let Some(task) = http_task
        && let Err(e) = task.await
    {
        tracing::error!(error = %e, "http task ended abnormally");
    }
    let summary = metrics.summary();
    tracing::info!(
        uploaded = summary.uploaded,
        already_present = summary.already_present,
        duplicates = summary.duplicates,
        failed = summary.failed,
        "stopped"
    );
    pool.close().await;
    Ok(summary)
}

struct Dispatcher {
    sem: Arc<Semaphore>,
    workers: usize,
    ctx: Arc<worker::Context>,
    ctx_tx: watch::Sender<Arc<worker::Context>>,
    poll_tx: watch::Sender<Option<Duration>>,
    pool: MySqlPool,
    t: Tables,
    wake: Arc<Notify>,
    monitor: Option<(JoinHandle<()>, CancellationToken)>,
    config: Config,
    config_path: Option<PathBuf>,
    shutdown: Shutdown,
    /// The stuck pipeline was logged; cleared once it moves again.
    stall_reported: bool,
}

/// Something other than a free worker that wakes the main loop.
enum Event {
    Permit(tokio::sync::OwnedSemaphorePermit),
    Stop,
    Reload,
    Tick,
}

impl Dispatcher {
    fn start_monitor(&mut self) {
        let stop = self.shutdown.graceful.child_token();
        let cfg = self.config.monitor.clone();
        let polling = cfg.enabled || cfg.tag.is_some();
        self.poll_tx
            .send_replace(polling.then_some(cfg.poll_interval));
        let task = tokio::spawn(monitor::run(
            self.pool.clone(),
            self.t.clone(),
            cfg,
            self.wake.clone(),
            self.ctx.metrics.clone(),
            stop.clone(),
        ));
        self.monitor = Some((task, stop));
    }

    /// Claims and runs jobs. A slot is taken before claiming, so no row is
    /// claimed beyond what the pipeline holds: `upload.workers` uploading
    /// and as many again hashed and waiting.
    async fn dispatch(&mut self, until_idle: bool) {
        let mut tasks: JoinSet<()> = JoinSet::new();
        let mut running: HashMap<tokio::task::Id, Claimed> = HashMap::new();
        let mut db_down_since: Option<Instant> = None;
        let mut db_delay = Duration::from_millis(500);
        let tick_every = systemd::watchdog_interval()
            .unwrap_or(Duration::from_secs(5))
            .min(Duration::from_secs(5));
        let mut tick = tokio::time::interval(tick_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut progress = Progress::new(&self.ctx.metrics);

        loop {
            while let Some(done) = tasks.try_join_next_with_id() {
                reap(&self.ctx, &mut running, done).await;
            }
            let event = tokio::select! {
                p = self.sem.clone().acquire_owned() => match p {
                    Ok(p) => Event::Permit(p),
                    Err(_) => Event::Stop,
                },
                _ = self.shutdown.graceful.cancelled() => Event::Stop,
                _ = self.shutdown.reload.notified() => Event::Reload,
                _ = tick.tick() => Event::Tick,
            };
            let first = match event {
                Event::Permit(p) => p,
                Event::Stop => break,
                Event::Reload => {
                    self.reload().await;
                    continue;
                }
                Event::Tick => {
                    self.housekeeping(&mut progress).await;
                    continue;
                }
            };
            let mut permits = Vec::with_capacity(self.workers * PIPELINE_DEPTH);
            permits.push(first);
            while let Ok(p) = self.sem.clone().try_acquire_owned() {
                permits.push(p);
            }
            let lease = self.ctx.upload.claim_lease;
            match self.ctx.queue.claim(permits.len(), lease).await {
                Ok(rows) => {
                    if let Some(since) = db_down_since.take() {
                        tracing::info!(down_for = ?since.elapsed(), "database reachable again");
                    }
                    db_delay = Duration::from_millis(500);
                    let idle = rows.is_empty();
                    for (row, permit) in rows.into_iter().zip(permits) {
                        let job_ctx = self.ctx.clone();
                        let stop = self.shutdown.graceful.clone();
                        let cancel = self.shutdown.now.clone();
                        let claim = row.clone();
                        let handle = tasks.spawn(async move {
                            worker::run(job_ctx, claim, stop, cancel).await;
                            drop(permit);
                        });
                        running.insert(handle.id(), row);
                        self.ctx.metrics.set_in_flight(running.len());
                    }
                    if !idle {
                        continue;
                    }
                    if until_idle && tasks.is_empty() {
                        match self.ctx.queue.has_work_left().await {
                            Ok(false) => break,
                            Ok(true) => {}
                            Err(e) => {
                                tracing::warn!(error = %e, "could not look for work left")
                            }
                        }
                    }
                    let wait = if until_idle {
                        Duration::from_millis(250)
                    } else {
                        self.config.monitor.poll_interval
                    };
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(wait) => {}
                        Some(done) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                            reap(&self.ctx, &mut running, done).await;
                        }
                        _ = self.shutdown.reload.notified() => self.reload().await,
                        _ = self.shutdown.graceful.cancelled() => break,
                    }
                }
                Err(e) => {
                    drop(permits);
                    if db_down_since.is_none() {
                        tracing::error!(
                            error = %e,
                            "cannot claim photos: database unreachable; retrying with backoff"
                        );
                        db_down_since = Some(Instant::now());
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(db_delay) => {}
                        _ = self.shutdown.graceful.cancelled() => break,
                    }
                    db_delay = (db_delay * 2).min(MAX_DB_BACKOFF);
                }
            }
        }
        self.drain(tasks, running).await;
    }

    /// Lets uploads in flight finish within the limit, then stops the rest
    /// (they hand their photos back to the queue).
    async fn drain(&self, mut tasks: JoinSet<()>, mut running: HashMap<tokio::task::Id, Claimed>) {
        systemd::stopping();
        if tasks.is_empty() {
            return;
        }
        let limit = self.ctx.upload.shutdown_timeout;
        tracing::info!(in_flight = tasks.len(), limit = ?limit, "waiting for uploads in flight");
        let deadline = tokio::time::sleep(limit);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                done = tasks.join_next_with_id() => match done {
                    Some(done) => reap(&self.ctx, &mut running, done).await,
                    None => return,
                },
                _ = &mut deadline => break,
                _ = self.shutdown.now.cancelled() => break,
            }
        }
        tracing::warn!(
            in_flight = tasks.len(),
            "stopping uploads in flight; their photos go back to the queue"
        );
        self.shutdown.now.cancel();
        while let Some(done) = tasks.join_next_with_id().await {
            reap(&self.ctx, &mut running, done).await;
        }
    }

    async fn housekeeping(&mut self, progress: &mut Progress) {
        // A pipeline that holds photos and settles none is stuck: starve
        // the watchdog so systemd restarts the daemon (photos come back
        // after the claim lease), and say why once.
        match self.ctx.metrics.stalled(self.ctx.upload.no_progress_alarm) {
            None => {
                systemd::watchdog();
                self.stall_reported = false;
            }
            Some(stuck_for) if !self.stall_reported => {
                self.stall_reported = true;
                tracing::error!(
                    stuck_for = ?stuck_for,
                    "no photo has settled for upload.no_progress_alarm while photos are in flight; /healthz fails and the watchdog is no longer fed"
                );
            }
            Some(_) => {}
        }
        if progress.due(self.ctx.upload.progress_interval) {
            match self.ctx.queue.backlog().await {
                Ok(left) => progress.log(&self.ctx.metrics, left),
                Err(e) => tracing::debug!(error = %e, "could not count the backlog"),
            }
        }
    }

    /// Re-reads the config file: a bad file is refused and the running
    /// configuration stays.
    async fn reload(&mut self) {
        let Some(path) = self.config_path.clone() else {
            tracing::warn!("reload requested, but the daemon was not started from a file");
            return;
        };
        systemd::reloading();
        match Config::load(&path) {
            Err(e) => tracing::error!(
                error = %e,
                "configuration reload refused; the running configuration stays"
            ),
            Ok(new) => match self.apply(new).await {
                Ok(()) => tracing::info!(config = %path.display(), "configuration reloaded"),
                Err(e) => tracing::error!(
                    error = %e,
                    "configuration reload refused; the running configuration stays"
                ),
            },
        }
        systemd::reloaded();
    }

    async fn apply(&mut self, new: Config) -> Result<(), DaemonError> {
        if new.database_url() != self.config.database_url()
            || new.piwigo.table_prefix != self.config.piwigo.table_prefix
        {
            tracing::warn!(
                "piwigo.database_url and piwigo.table_prefix take effect at the next restart"
            );
        }
        let ctx = context(&new, self.ctx.queue.clone(), Shared::of(&self.ctx)).await?;
        retry_if_changed(&ctx.queue, &new).await?;
        self.resize(new.upload.workers);
        let monitor_changed = new.monitor != self.config.monitor;
        self.ctx = ctx.clone();
        self.ctx_tx.send_replace(ctx);
        self.config = new;
        if monitor_changed {
            if let Some((task, stop)) = self.monitor.take() {
                stop.cancel();
                if let Err(e) = task.await {
                    tracing::error!(error = %e, "monitor task ended abnormally");
                }
            }
            self.start_monitor();
        }
        // Retried rows are due now: do not wait for the next poll.
        self.wake.notify_one();
        Ok(())
    }

    fn resize(&mut self, workers: usize) {
        resize(
            &self.sem,
            self.workers * PIPELINE_DEPTH,
            workers * PIPELINE_DEPTH,
        );
        resize(&self.ctx.uploads, self.workers, workers);
        if workers != self.workers {
            tracing::info!(from = self.workers, to = workers, "worker count changed");
        }
        self.workers = workers;
    }
}

/// Grows at once; shrinks as the photos holding permits finish.
fn resize(sem: &Arc<Semaphore>, from: usize, to: usize) {
    if to > from {
        sem.add_permits(to - from);
    } else if let Ok(n) = u32::try_from(from - to)
        && n > 0
    {
        let sem = sem.clone();
        tokio::spawn(async move {
            if let Ok(p) = sem.acquire_many_owned(n).await {
                p.forget();
            }
        });
    }
}

/// Progress of a draining backlog: rate and ETA, logged at intervals.
struct Progress {
    last: Instant,
    done: u64,
    bytes: u64,
}

impl Progress {
    fn new(m: &Metrics) -> Self {
        let s = m.summary();
        Self {
            last: Instant::now(),
            done: s.uploaded + s.already_present + s.duplicates,
            bytes: s.bytes,
        }
    }

    fn due(&self, every: Duration) -> bool {
        self.last.elapsed() >= every
    }

    fn log(&mut self, m: &Metrics, left: u64) {
        let s = m.summary();
        let done = s.uploaded + s.already_present + s.duplicates;
        let secs = self.last.elapsed().as_secs_f64().max(0.001);
        let files = done - self.done;
        let mb_per_s = (s.bytes - self.bytes) as f64 / secs / 1e6;
        if files > 0 {
            let rate = files as f64 / secs;
            let eta = Duration::from_secs((left as f64 / rate) as u64);
            tracing::info!(
                done = files,
                left,
                photos_per_s = format_args!("{rate:.1}"),
                mb_per_s = format_args!("{mb_per_s:.1}"),
                eta = %humantime::format_duration(eta),
                "progress"
            );
            systemd::status(&format!("{left} photos left, {mb_per_s:.1} MB/s"));
        }
        self.last = Instant::now();
        self.done = done;
        self.bytes = s.bytes;
    }
}

/// A finished job; a panicking one is a failure of that photo alone.
async fn reap(
    ctx: &worker::Context,
    running: &mut HashMap<tokio::task::Id, Claimed>,
    done: Result<(tokio::task::Id, ()), tokio::task::JoinError>,
) {
    let (id, panic) = match done {
        Ok((id, ())) => (id, None),
        Err(e) => (e.id(), Some(e)),
    };
    let claim = running.remove(&id);
    ctx.metrics.set_in_flight(running.len());
    if let (Some(e), Some(claim)) = (panic, claim) {
        worker::panicked(ctx, &claim, &e).await;
    }
}
