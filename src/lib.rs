//! piwigo-s3upload copies every full-size photo of a Piwigo gallery to
//! Amazon S3 or an S3-compatible store, exactly once.
//!
//! How the modules fit together:
//!
//! - [`config`]: the TOML file, its defaults and `validate()`.
//! - [`sources`]: settings the file leaves out, from the environment,
//!   Piwigo's [`database_inc`] and [`secret_file`]s, with their origins.
//! - [`cli`]: the commands (`run`, `enqueue`, `status`, `retry`, `check`,
//!   `verify`, `restore`, `import-s3upload`, `init`, `health`, `repair`,
//!   `snapshot`).
//! - [`daemon`]: wiring: connect, migrate, start the background tasks and
//!   stop them; `daemon::pipeline` is the event loop (one event a turn:
//!   stop, reload, tick, a claim's answer, a photo finished, photos due);
//!   `daemon::settings` owns the running configuration and swaps it on
//!   reload; the HTTP listener gets only a small `http::Feed` of it.
//! - [`shutdown`]: signals turned into cancellation tokens.
//! - [`db`]: the connection pool and the prefixed table names.
//! - [`piwigo`]: read-only queries on Piwigo's tables; safe resolution of
//!   `images.path` under the gallery root.
//! - [`queue`]: all of our own SQL: migrations and the check and repair of
//!   our tables, claims with leases, md5 and key reservations, success and
//!   failure (backoff is computed there, once), enqueueing, the status
//!   report; `queue::status` holds the one `Status` enum and the `Failure`
//!   type every module builds.
//! - [`monitor`]: the poll loop that moves the watermark and follows the tag.
//! - [`worker`]: one photo's life: hash, de-duplicate, reserve the key,
//!   upload, record.
//! - [`sweep`]: aborting multipart uploads a killed daemon left behind.
//! - [`digest`]: the md5 of one file (and its parts) on the blocking pool,
//!   failing that file alone when a read stalls.
//! - [`formats`]: Piwigo's RAW/TIFF formats, queued once their photo is
//!   recorded and sent next to it.
//! - [`s3`]: the client, object keys, streaming uploads, error mapping.
//! - [`check`]: the `check` command's findings.
//! - [`init`]: the `init` command: a starter config, checked live.
//! - [`verify`]: coverage, bucket and disk audits; the last result for
//!   `/metrics`.
//! - [`progress`]: progress bars and lines for long commands.
//! - [`restore`]: files back from the bucket, checked, never over other
//!   bytes; from records or from object metadata alone; `restore::gallery`
//!   a whole gallery from a snapshot.
//! - [`snapshot`]: database snapshots (every table with Piwigo's prefix,
//!   consistent, plain SQL, gzip, optionally age-encrypted) and `local/`,
//!   streamed to the bucket; retention, the schedule, `snapshot --list`.
//! - [`metrics`]: counters for the summary, progress and `/metrics`.
//! - [`http`]: `/healthz`, `/readyz`, `/metrics`, `/status` and `/presign`.
//! - [`health`]: the `health` command, a client of that listener.
//! - [`token`]: the `http.token` that guards `/status` and `/presign`.
//! - [`companion`]: the daemon's side of the Piwigo plugin: heartbeat,
//!   requests from the Batch Manager and the status tab, presigned links,
//!   import from the old S3Upload plugin.
//! - [`systemd`]: readiness and watchdog notifications.
//! - [`journald`]: priority prefixes on log lines sent to the journal.
//! - [`redact`]: secret scrubbing.

pub mod check;
pub mod cli;
pub mod companion;
pub mod config;
pub mod daemon;
pub mod database_inc;
pub mod db;
pub mod digest;
pub mod formats;
pub mod health;
pub mod http;
pub mod init;
pub mod journald;
pub mod metrics;
pub mod monitor;
pub mod piwigo;
pub mod progress;
pub mod queue;
pub mod redact;
pub mod restore;
pub mod s3;
pub mod secret_file;
pub mod shutdown;
pub mod snapshot;
pub mod sources;
pub mod sweep;
pub mod systemd;
pub mod token;
pub mod verify;
pub mod worker;
