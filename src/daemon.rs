//! Wiring: connect, migrate, start the monitor, and keep up to `workers`
//! uploads in flight until shutdown (or, with `until_idle`, until nothing
//! is left to do).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sqlx::MySqlPool;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;

use crate::config::Config;
use crate::db::{self, DbError, Tables};
use crate::piwigo::{self, GalleryRoot};
use crate::queue::{self, Claimed, Queue, migrate::MigrateError};
use crate::redact::Redactor;
use crate::s3::{self, Target};
use crate::shutdown::Shutdown;
use crate::stats::{Stats, Summary};
use crate::{monitor, worker};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Migrate(#[from] MigrateError),
    #[error("piwigo: tables {} are missing in the database; check piwigo.database_url (database name) and piwigo.table_prefix", .0.join(", "))]
    MissingTables(Vec<String>),
    #[error(
        "piwigo: root {path} is not usable: {source} (set piwigo.root to Piwigo's install directory)"
    )]
    Root {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Poll once, upload everything due, then return.
    pub until_idle: bool,
}

/// Backoff cap while the database refuses claims.
const MAX_DB_BACKOFF: Duration = Duration::from_secs(30);

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

pub async fn run(
    config: Config,
    shutdown: Shutdown,
    opts: RunOptions,
) -> Result<Summary, DaemonError> {
    let workers = config.upload.workers;
    let (pool, t) = open_database(&config, workers as u32 + 4).await?;
    let strategy = Queue::detect_strategy(&pool).await?;
    let queue = Queue::new(pool.clone(), t.clone(), strategy);
    let root =
        GalleryRoot::new(&config.piwigo.root, &config.piwigo.extra_roots).map_err(|source| {
            DaemonError::Root {
                path: config.piwigo.root.clone(),
                source,
            }
        })?;
    let target = Target::new(&config.s3, &config.upload).await;
    let retried = queue
        .retry_if_settings_changed(&s3::settings_fingerprint(&config.s3))
        .await?;
    if retried > 0 {
        tracing::info!(
            retried,
            "S3 settings changed since the last run: retrying failed uploads now"
        );
    }
    let ctx = Arc::new(worker::Context {
        queue,
        target,
        root,
        upload: config.upload.clone(),
        redact: Redactor::new(config.secrets()),
        stats: Arc::new(Stats::default()),
    });
    tracing::info!(
        workers,
        s3.bucket = %config.s3.bucket,
        monitor.enabled = config.monitor.enabled,
        "piwigo-s3upload started"
    );

    let wake = Arc::new(Notify::new());
    let monitor_task = if opts.until_idle {
        monitor::poll_once(&pool, &t, &config.monitor).await?;
        None
    } else {
        Some(tokio::spawn(monitor::run(
            pool.clone(),
            t.clone(),
            config.monitor.clone(),
            wake.clone(),
            shutdown.graceful.clone(),
        )))
    };
    let idle_wait = config.monitor.poll_interval;
    dispatch(ctx.clone(), wake, &shutdown, opts.until_idle, idle_wait).await;
    if let Some(task) = monitor_task
        && let Err(e) = task.await
    {
        tracing::error!(error = %e, "monitor task ended abnormally");
    }
    let summary = ctx.stats.summary();
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

/// Claims and runs jobs; a permit is taken before claiming, so no row is
/// claimed without a worker ready for it.
async fn dispatch(
    ctx: Arc<worker::Context>,
    wake: Arc<Notify>,
    shutdown: &Shutdown,
    until_idle: bool,
    idle_wait: Duration,
) {
    let sem = Arc::new(Semaphore::new(ctx.upload.workers));
    let mut tasks: JoinSet<()> = JoinSet::new();
    let mut running: HashMap<tokio::task::Id, Claimed> = HashMap::new();
    let mut db_down_since: Option<std::time::Instant> = None;
    let mut db_delay = Duration::from_millis(500);

    loop {
        while let Some(done) = tasks.try_join_next_with_id() {
            reap(&ctx, &mut running, done).await;
        }
        let first = tokio::select! {
            p = sem.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = shutdown.graceful.cancelled() => break,
        };
        let mut permits = vec![first];
        while let Ok(p) = sem.clone().try_acquire_owned() {
            permits.push(p);
        }
        match ctx.queue.claim(permits.len(), ctx.upload.claim_lease).await {
            Ok(rows) if !rows.is_empty() => {
                if let Some(since) = db_down_since.take() {
                    tracing::info!(down_for = ?since.elapsed(), "database reachable again");
                }
                db_delay = Duration::from_millis(500);
                for (row, permit) in rows.into_iter().zip(permits) {
                    let job_ctx = ctx.clone();
                    let cancel = shutdown.now.clone();
                    let claim = row.clone();
                    let handle = tasks.spawn(async move {
                        worker::run(job_ctx, claim, cancel).await;
                        drop(permit);
                    });
                    running.insert(handle.id(), row);
                }
            }
            Ok(_) => {
                drop(permits);
                if let Some(since) = db_down_since.take() {
                    tracing::info!(down_for = ?since.elapsed(), "database reachable again");
                }
                if until_idle && tasks.is_empty() {
                    match ctx.queue.has_pending_duplicate_waits().await {
                        Ok(false) => break,
                        Ok(true) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "could not look for waiting duplicates")
                        }
                    }
                }
                let wait = if until_idle {
                    Duration::from_millis(250)
                } else {
                    idle_wait
                };
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                    Some(done) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                        reap(&ctx, &mut running, done).await;
                    }
                    _ = shutdown.graceful.cancelled() => break,
                }
            }
            Err(e) => {
                drop(permits);
                if db_down_since.is_none() {
                    tracing::error!(error = %e, "cannot claim photos: database unreachable; retrying with backoff");
                    db_down_since = Some(std::time::Instant::now());
                }
                tokio::select! {
                    _ = tokio::time::sleep(db_delay) => {}
                    _ = shutdown.graceful.cancelled() => break,
                }
                db_delay = (db_delay * 2).min(MAX_DB_BACKOFF);
            }
        }
    }

    if !tasks.is_empty() {
        tracing::info!(in_flight = tasks.len(), limit = ?ctx.upload.shutdown_timeout, "waiting for uploads in flight");
        let drain = async {
            while let Some(done) = tasks.join_next_with_id().await {
                reap(&ctx, &mut running, done).await;
            }
        };
        let stopped_early = tokio::select! {
            _ = drain => false,
            _ = tokio::time::sleep(ctx.upload.shutdown_timeout) => true,
            _ = shutdown.now.cancelled() => true,
        };
        if stopped_early {
            // Workers see the token, hand their photos back and return.
            shutdown.now.cancel();
            while let Some(done) = tasks.join_next_with_id().await {
                reap(&ctx, &mut running, done).await;
            }
        }
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
    if let (Some(e), Some(claim)) = (panic, claim) {
        tracing::error!(image.id = claim.image_id, error = %e, "worker failed unexpectedly; the photo is retried");
        let delay = queue::backoff(
            claim.attempts,
            ctx.upload.retry_backoff_min,
            ctx.upload.retry_backoff_max,
        );
        if let Err(e) = ctx
            .queue
            .fail(
                &claim,
                "failed_internal_error",
                "internal error; see the daemon's log",
                delay,
            )
            .await
        {
            tracing::warn!(error = %e, "could not record the failure; the photo returns after the claim lease");
        }
    }
}
