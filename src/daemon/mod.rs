//! Wiring: connect, migrate, start the background tasks (HTTP listener,
//! monitor, plugin requests, multipart sweep, formats, changed files, deletions,
//! snapshots), run the pipeline's
//! event loop until a stop (or, with `until_idle`, until nothing is left
//! to do), then stop the tasks in reverse order.

mod concurrency;
mod formats;
mod housekeeping;
mod pipeline;
mod settings;
mod slots;
mod task;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use sqlx::MySqlPool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::db::{self, DbError, Tables};
use crate::grants::{self, GrantsError};
use crate::metrics::Summary;
use crate::piwigo;
use crate::queue::{self, Queue, migrate::MigrateError};
use crate::shutdown::Shutdown;
use crate::{changes, companion, http, monitor, sweep, systemd};
use settings::Settings;
use task::Task;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Migrate(#[from] MigrateError),
    #[error(transparent)]
    Grants(#[from] GrantsError),
    #[error(
        "piwigo: tables {} are missing in the database; check piwigo.database_url (database name) and piwigo.table_prefix",
        .0.join(", ")
    )]
    MissingTables(Vec<String>),
    #[error("database: the daemon's tables are damaged: {0}")]
    Schema(String),
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

impl DaemonError {
    /// 2 for what only the admin can fix (systemd does not restart the
    /// daemon on it), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Grants(e) => e.exit_code(),
            _ => crate::exit::FAILURE,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Poll once, upload everything due, then return.
    pub until_idle: bool,
    /// The file to re-read on reload; reloads are refused without one.
    pub config_path: Option<PathBuf>,
}

/// Database connections: workers hold one only for short queries, never
/// during an upload, and no code holding one (a transaction, the claim)
/// waits for a second, so a small pool serves 64 uploads at once. Kept
/// small because each connection prepares every statement it runs once,
/// and the pool hands out its idle connections in turn: every extra
/// connection is a round of prepares. It also stays well within the
/// `max_user_connections` of a shared database.
const POOL_SIZE: u32 = 8;

/// Connects and checks Piwigo's tables and our own (migrating them).
pub async fn open_database(
    config: &Config,
    connections: u32,
) -> Result<(MySqlPool, Tables), DaemonError> {
    let pool = db::connect(config.database_url(), connections).await?;
    let t = Tables::new(&config.piwigo.table_prefix);
    // Before anything reads or changes a table: a missing privilege is
    // named with its GRANT, not met half-way through a migration.
    grants::require(&pool, &t, grants::Uses::of(config)).await?;
    let missing = piwigo::missing_tables(&pool, &t.prefix).await?;
    if !missing.is_empty() {
        return Err(DaemonError::MissingTables(missing));
    }
    queue::migrate::run(&pool, &t).await?;
    let damage = queue::migrate::check(&pool, &t).await?;
    if !damage.is_empty() {
        return Err(DaemonError::Schema(queue::schema::describe(&damage)));
    }
    Ok((pool, t))
}

pub async fn run(
    config: Config,
    shutdown: Shutdown,
    opts: RunOptions,
) -> Result<Summary, DaemonError> {
    let (pool, t) = open_database(&config, POOL_SIZE).await?;
    let strategy = Queue::detect_strategy(&pool).await?;
    let queue = Queue::new(pool.clone(), t.clone(), strategy)
        .with_formats(piwigo::has_formats(&pool, &t).await?);
    let wake = Arc::new(Notify::new());
    let listen = config.http.listen.filter(|_| !opts.until_idle);
    let mut settings = Settings::new(
        config,
        opts.config_path.clone(),
        (pool.clone(), t.clone()),
        queue,
        wake.clone(),
        shutdown.graceful.clone(),
    )
    .await?;
    let metrics = settings.ctx().metrics.clone();
    // Started first and stopped last: the listener answers while the
    // rest starts and stops.
    let mut tasks = Vec::new();
    if let Some(addr) = listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| DaemonError::Listen { addr, source })?;
        tracing::info!(http.listen = %addr, "serving /healthz, /metrics and /status");
        let state = http::HttpState::new(pool.clone(), t.clone(), metrics.clone(), settings.feed());
        let stop = CancellationToken::new();
        tasks.push(Task::spawn(
            "http",
            stop.clone(),
            http::serve(listener, Arc::new(state), stop),
        ));
    }
    let stop = CancellationToken::new();
    tasks.push(Task::spawn(
        "upload slots",
        stop.clone(),
        slots::run(settings.slots(), settings.configs(), stop),
    ));
    tracing::info!(
        workers = %settings.config().upload.workers,
        uploads_at_once = settings.uploads_at_once(),
        s3.bucket = %settings.config().s3.bucket,
        monitor.enabled = settings.config().monitor.enabled,
        "piwigo-s3upload started"
    );
    // A run until idle sweeps once, beside its uploads rather than before
    // them: the listing is a new connection and a request, two round trips
    // the first photos would otherwise wait for on a long link. It spares
    // what this run starts (younger than the lease, or claimed), and the
    // run waits for it before it ends, even with nothing to upload.
    let mut first_sweep = None;
    if opts.until_idle {
        let ctx = settings.ctx();
        let stop = shutdown.graceful.child_token();
        first_sweep = Some(Task::spawn("multipart sweep", stop.clone(), async move {
            sweep::once_unless_stopped(&ctx, &stop).await;
        }));
        let started = Instant::now();
        let monitor = settings.config().monitor.clone();
        monitor::poll_once(&pool, &t, &monitor).await?;
        metrics.polled(started.elapsed());
        companion::once(&pool, &t, &settings.ctx(), true).await?;
        queue::formats::discover(&pool, &t).await?;
        if settings.config().changes.enabled {
            let ctx = settings.ctx();
            let full_pass = settings.config().changes.full_pass;
            let root = (&ctx.root, ctx.upload.read_stall_timeout);
            changes::once(&pool, &t, root, full_pass, &metrics).await?;
        }
        let retention = settings.config().retention.clone();
        let removed = crate::retention::once(
            &pool,
            &t,
            &retention,
            &mut crate::retention::Sweep::due_now(),
            &settings.ctx(),
        )
        .await?;
        if removed.failed > 0 {
            tracing::warn!(
                failed = removed.failed,
                "some deleted photos' objects were not removed; the next run tries again"
            );
        }
    } else {
        let stop = CancellationToken::new();
        tasks.push(Task::spawn(
            "plugin requests",
            stop.clone(),
            companion::run(
                pool.clone(),
                t.clone(),
                settings.contexts(),
                settings.configs(),
                wake.clone(),
                stop,
            ),
        ));
        let stop = shutdown.graceful.child_token();
        tasks.push(Task::spawn(
            "multipart sweep",
            stop.clone(),
            sweep::run(settings.contexts(), stop),
        ));
        let stop = shutdown.graceful.child_token();
        tasks.push(Task::spawn(
            "formats",
            stop.clone(),
            formats::run(pool.clone(), t.clone(), wake.clone(), stop),
        ));
        let stop = shutdown.graceful.child_token();
        tasks.push(Task::spawn(
            "changes",
            stop.clone(),
            changes::run(
                (pool.clone(), t.clone()),
                settings.configs(),
                settings.contexts(),
                metrics.clone(),
                wake.clone(),
                stop,
            ),
        ));
        let stop = shutdown.graceful.child_token();
        tasks.push(Task::spawn(
            "deletions",
            stop.clone(),
            crate::retention::run(
                pool.clone(),
                t.clone(),
                settings.configs(),
                settings.contexts(),
                stop,
            ),
        ));
        let stop = shutdown.graceful.child_token();
        tasks.push(Task::spawn(
            "snapshots",
            stop.clone(),
            crate::snapshot::schedule::run(settings.configs(), pool.clone(), t.clone(), stop),
        ));
        settings.start_monitor();
    }
    systemd::ready();
    pipeline::run(&mut settings, &wake, shutdown.clone(), opts.until_idle).await;
    if let Some(sweep) = first_sweep {
        sweep.finish().await;
    }
    // A run until idle beat once and has no companion task to record its
    // stop: `status` and the plugin would say "running" for a minute.
    if opts.until_idle
        && let Err(e) = queue::heartbeat::stopped(&pool, &t, settings.ctx().queue.owner()).await
    {
        tracing::debug!(error = %e, "could not record the stop in the heartbeat");
    }
    settings.stop().await;
    while let Some(task) = tasks.pop() {
        task.stop().await;
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
