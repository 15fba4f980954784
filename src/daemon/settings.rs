//! The running configuration and what is built from it: the workers'
//! context, the HTTP listener's feed and the monitor. One owner, so a
//! reload (SIGHUP) swaps them all together or, when the new file is
//! refused, none of them.

use std::path::PathBuf;
use std::sync::Arc;

use sqlx::MySqlPool;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use super::DaemonError;
use super::slots::Slots;
use super::task::Task;
use crate::config::{Checksum, Config, IfNoneMatch, Workers};
use crate::db::{DbError, Tables};
use crate::digest::PartCheck;
use crate::metrics::Metrics;
use crate::piwigo::GalleryRoot;
use crate::queue::Queue;
use crate::redact::Redactor;
use crate::s3::outage::Outage;
use crate::s3::{self, Target};
use crate::{http, monitor, systemd, worker};

/// Photos claimed ahead of the uploads, as a multiple of the uploads
/// allowed at once: the next photos are hashed, and their keys reserved
/// and looked at, while the current ones upload, so no upload slot waits
/// for them. Over a long link a HEAD takes about as long as a small
/// photo's upload: at twice the figure, slots went idle.
const PIPELINE_DEPTH: usize = 3;

/// What outlives a reload: the counters, the outage state and the upload
/// slots.
pub(super) struct Shared {
    pub metrics: Arc<Metrics>,
    pub outage: Arc<Outage>,
    pub slots: Arc<Slots>,
}

pub(super) struct Settings {
    path: Option<PathBuf>,
    /// The running configuration; tasks that outlive a reload (the
    /// plugin's requests, snapshots) follow it.
    config: watch::Sender<Config>,
    /// The current workers' context; tasks that outlive a reload follow it.
    contexts: watch::Sender<Arc<worker::Context>>,
    feed: watch::Sender<http::Feed>,
    monitor: Option<Task>,
    /// The start-up probes of the running target, if still under way.
    probes: Option<Task>,
    pool: MySqlPool,
    t: Tables,
    /// Tells the pipeline that photos are due (the monitor queued some, a
    /// reload made failed ones due).
    wake: Arc<Notify>,
    graceful: CancellationToken,
    slots: Arc<Slots>,
}

impl Settings {
    pub(super) async fn new(
        config: Config,
        path: Option<PathBuf>,
        (pool, t): (MySqlPool, Tables),
        queue: Queue,
        wake: Arc<Notify>,
        graceful: CancellationToken,
    ) -> Result<Self, DaemonError> {
        let metrics: Arc<Metrics> = Arc::default();
        let slots = Slots::new(config.upload.initial_workers(), metrics.clone());
        let shared = Shared {
            metrics,
            outage: Arc::default(),
            slots: slots.clone(),
        };
        let (ctx, probes) = context(&config, queue, shared, &graceful).await?;
        retry_if_changed(&ctx.queue, &config).await?;
        let (contexts, _) = watch::channel(ctx.clone());
        let (feed, _) = watch::channel(feed_of(&config, &ctx));
        let (config, _) = watch::channel(config);
        Ok(Self {
            path,
            config,
            contexts,
            feed,
            monitor: None,
            probes: Some(probes),
            pool,
            t,
            wake,
            graceful,
            slots,
        })
    }

    /// The running configuration. Not to be held across an await: a
    /// reload waits for it.
    pub(super) fn config(&self) -> watch::Ref<'_, Config> {
        self.config.borrow()
    }

    /// Follows the configuration across reloads.
    pub(super) fn configs(&self) -> watch::Receiver<Config> {
        self.config.subscribe()
    }

    /// The context new photos are started with.
    pub(super) fn ctx(&self) -> Arc<worker::Context> {
        self.contexts.borrow().clone()
    }

    /// Follows the context across reloads, for tasks that outlive one.
    pub(super) fn contexts(&self) -> watch::Receiver<Arc<worker::Context>> {
        self.contexts.subscribe()
    }

    pub(super) fn feed(&self) -> watch::Receiver<http::Feed> {
        self.feed.subscribe()
    }

    /// Photos the pipeline may hold at once: uploading, and hashed ahead.
    /// Follows the uploads allowed now, not the bounds.
    pub(super) fn capacity(&self) -> usize {
        self.uploads_at_once() * PIPELINE_DEPTH
    }

    /// Uploads allowed at once now.
    pub(super) fn uploads_at_once(&self) -> usize {
        self.slots.figure()
    }

    pub(super) fn slots(&self) -> Arc<Slots> {
        self.slots.clone()
    }

    pub(super) fn start_monitor(&mut self) {
        let stop = self.graceful.child_token();
        let cfg = self.config().monitor.clone();
        self.monitor = Some(Task::spawn(
            "monitor",
            stop.clone(),
            monitor::run(
                self.pool.clone(),
                self.t.clone(),
                cfg,
                self.wake.clone(),
                self.ctx().metrics.clone(),
                stop,
            ),
        ));
    }

    pub(super) async fn stop(&mut self) {
        if let Some(monitor) = self.monitor.take() {
            monitor.stop().await;
        }
        if let Some(probes) = self.probes.take() {
            probes.stop().await;
        }
    }

    /// Re-reads the config file: a bad file is refused and the running
    /// configuration stays.
    pub(super) async fn reload(&mut self) {
        let Some(path) = self.path.clone() else {
            tracing::warn!("reload requested, but the daemon was not started from a file");
            return;
        };
        systemd::reloading();
        let applied = match Config::load(&path) {
            Err(e) => Err(e.to_string()),
            Ok(new) => self.apply(new).await.map_err(|e| e.to_string()),
        };
        match applied {
            Ok(()) => tracing::info!(config = %path.display(), "configuration reloaded"),
            Err(e) => tracing::error!(
                error = %e,
                "configuration reload refused; the running configuration stays"
            ),
        }
        systemd::reloaded();
    }

    async fn apply(&mut self, new: Config) -> Result<(), DaemonError> {
        warn_restart_only(&self.config(), &new);
        let running = self.ctx();
        let shared = Shared {
            metrics: running.metrics.clone(),
            outage: running.outage.clone(),
            slots: self.slots.clone(),
        };
        let (ctx, probes) = context(&new, running.queue.clone(), shared, &self.graceful).await?;
        retry_if_changed(&ctx.queue, &new).await?;
        // The old target's probes, if still running, answer for a target
        // no upload uses any more.
        if let Some(old) = self.probes.replace(probes) {
            old.stop().await;
        }
        // A fixed figure is set here; "auto" is followed by the slots'
        // task, from the figure running now.
        if let Workers::Fixed(to) = new.upload.workers {
            let from = self.slots.set(to);
            if from != to {
                tracing::info!(from, to, "uploads at once changed (upload.workers)");
            }
        }
        let monitor_changed = new.monitor != self.config().monitor;
        self.feed.send_replace(feed_of(&new, &ctx));
        self.contexts.send_replace(ctx);
        self.config.send_replace(new);
        if monitor_changed && let Some(monitor) = self.monitor.take() {
            monitor.stop().await;
            self.start_monitor();
        }
        // Retried rows are due now: do not wait for the next poll.
        self.wake.notify_one();
        Ok(())
    }
}

/// Settings a running daemon cannot take over: say so rather than
/// pretend.
fn warn_restart_only(running: &Config, new: &Config) {
    if new.database_url() != running.database_url()
        || new.piwigo.table_prefix != running.piwigo.table_prefix
    {
        tracing::warn!(
            "piwigo.database_url and piwigo.table_prefix take effect at the next restart"
        );
    }
    if new.http.listen != running.http.listen {
        let listening = running
            .http
            .listen
            .map_or_else(|| "off".to_owned(), |a| a.to_string());
        tracing::warn!(
            http.listen.running = %listening,
            "http.listen changed: the listener stays as it is until the next restart (systemctl restart piwigo-s3upload)"
        );
    }
}

fn feed_of(config: &Config, ctx: &worker::Context) -> http::Feed {
    let monitor = &config.monitor;
    let polling = monitor.enabled || monitor.tag.is_some();
    http::Feed {
        target: ctx.target.clone(),
        redact: ctx.redact.clone(),
        no_progress_alarm: config.upload.no_progress_alarm,
        poll_interval: polling.then_some(monitor.poll_interval),
        token: config.http.token.clone(),
        presign_expiry: config.http.presign_expiry,
    }
}

/// The workers' context for `config`, and the task probing its server.
/// Uploads start at once with the safe answers, a HEAD before each upload
/// and Content-MD5 on each part, and take the probed ones when they come:
/// on a long link the probes are several round trips, half a second at
/// 100 ms, which a run of a few hundred photos would otherwise wait.
async fn context(
    config: &Config,
    queue: Queue,
    shared: Shared,
    graceful: &CancellationToken,
) -> Result<(Arc<worker::Context>, Task), DaemonError> {
    let root =
        GalleryRoot::new(&config.piwigo.root, &config.piwigo.extra_roots).map_err(|source| {
            DaemonError::Root {
                path: config.piwigo.root.clone(),
                source,
            }
        })?;
    let mut target = Target::new(&config.s3, &config.upload).await;
    let metrics = shared.metrics.clone();
    target.count_slow_downs(Arc::new(move || metrics.slowed_down()));
    target.count_sent(shared.slots.sent());
    let redact = Redactor::new(config.secrets());
    // Not stopped early: a probe cut short would leave its object behind,
    // and each ends by itself within its time limit.
    let probes = Task::spawn(
        "s3 probes",
        graceful.child_token(),
        settle(
            target.clone(),
            config.s3.honours_if_none_match,
            config.s3.checksum,
            redact.clone(),
        ),
    );
    let ctx = Arc::new(worker::Context {
        queue,
        target,
        root,
        upload: config.upload.clone(),
        redact,
        metrics: shared.metrics,
        outage: shared.outage,
        uploads: shared.slots.semaphore(),
    });
    Ok((ctx, probes))
}

/// Probes the server and says what was decided and why.
async fn settle(target: Target, if_none_match: IfNoneMatch, checksum: Checksum, redact: Redactor) {
    let (settled, checked) = target.settle(if_none_match, checksum).await;
    tracing::info!(
        part_check = ?checked.check,
        why = %redact.scrub(&checked.why),
        "each part of a multipart upload is checked by the server against its {}",
        match checked.check {
            PartCheck::Crc32c => "CRC32C",
            PartCheck::ContentMd5 => "Content-MD5",
        }
    );
    tracing::info!(
        head_before_put = !settled.honoured,
        why = %redact.scrub(&settled.why),
        "existing objects are detected by {}",
        if settled.honoured {
            "the server's 412 to If-None-Match: * (no HEAD)"
        } else {
            "a HEAD before each upload"
        }
    );
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
