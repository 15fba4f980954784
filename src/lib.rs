//! piwigo-s3upload copies every full-size photo of a Piwigo gallery to
//! Amazon S3 or an S3-compatible store, exactly once.
//!
//! How the modules fit together:
//!
//! - [`config`]: the config in two steps: the TOML file parsed with its
//!   defaults, with no side effects (`Config::parse`); then
//!   `config::sources` resolves what the file leaves out, from the
//!   environment, Piwigo's [`database_inc`] and [`secret_file`]s, keeps
//!   each value's origin and validates (`Config::resolve`).
//! - [`secret`]: the `Secret` string that never shows in `Debug`.
//! - [`cli`]: the command line's arguments, and nothing else.
//! - [`commands`]: one module per command (`run`, `enqueue`, `status`,
//!   `retry`, `check`, `verify`, `restore`, `import-s3upload`, `init`,
//!   `grants`, `health`, `repair`, `snapshot`, `retention`);
//!   `commands::execute` loads the config and opens the database for them.
//! - [`exit`]: the exit codes and the usage error, defined once.
//! - [`daemon`]: wiring: connect, migrate, start the background tasks and
//!   stop them; `daemon::pipeline` is the event loop (one event a turn:
//!   stop, reload, tick, a claim's answer, a photo finished, photos due);
//!   `daemon::settings` owns the running configuration and swaps it on
//!   reload; the HTTP listener gets only a small `http::Feed` of it.
//! - [`shutdown`]: signals turned into cancellation tokens.
//! - [`db`]: the connection pool and the prefixed table names.
//! - [`piwigo`]: Piwigo's side: read-only queries on its tables
//!   (`piwigo::tables`), photo ids as admins type them (`piwigo::ids`), safe
//!   resolution of `images.path` under the gallery root (`piwigo::root`),
//!   and a photo's file with what reading it can fail with
//!   (`piwigo::files`).
//! - [`queue`]: all of our own SQL: migrations and the check and repair of
//!   our tables, claims with leases, md5 and key reservations, success and
//!   failure (backoff is computed there, once), enqueueing, the status
//!   report; `queue::item` says what a row stands for (a
//!   photo or one of its formats, first upload or new version) and is
//!   the one place the kinds differ;
//!   `queue::formats` queues formats and records them;
//!   `queue::selection` is the photos a batch command picks,
//!   `queue::records` the records `verify` audits and `restore` reads,
//!   `queue::coverage` what `verify` finds neither recorded nor queued.
//! - [`status`]: the one `Status` and `Outcome` enums (the strings the
//!   database, `status`, `/metrics`, `verify` and the plugin show) and the
//!   `Failure` type every module builds.
//! - [`monitor`]: the poll loop that moves the watermark and follows the tag.
//! - [`changes`]: recorded files that changed (rows Piwigo touched, and a
//!   slow `stat()` pass over every record) queued as new versions;
//!   `queue::changes` reads the candidates, `queue::versions` records a
//!   new version and keeps the version history.
//! - [`periodic`]: how periodic tasks log failures (once) and recoveries;
//!   each task runs in a span named for it (`daemon::task`).
//! - [`retention`]: photos deleted in Piwigo: marks, the guard that holds
//!   every deletion when much disappears at once, and the removal of their
//!   objects under `[retention] deleted`.
//! - [`worker`]: one item's life (a photo or a format): hash,
//!   de-duplicate, reserve the key, upload (`worker::send`), record
//!   (`worker::record`).
//! - [`sweep`]: aborting multipart uploads a killed daemon left behind.
//! - [`digest`]: the md5 of one file (and its parts) on the blocking pool,
//!   failing that file alone when a read stalls; [`md5`] is the hash
//!   itself (AWS-LC's assembly, the daemon's only `unsafe`).
//! - [`s3`]: the client, object keys, streaming uploads, listing and
//!   reading back, error mapping.
//! - [`check`]: the `check` command's findings.
//! - [`grants`]: the database privileges the daemon needs, derived from
//!   the migrations plus one list of what features read; the `grants`
//!   command, and the refusal to migrate without them.
//! - [`init`]: the `init` command: a starter config, checked live.
//! - [`verify`]: coverage, bucket and disk audits (objects proven by S3's
//!   checksum or by their downloaded bytes, never by size), `--resend` of
//!   damaged objects; the last result for `/metrics`.
//! - [`progress`]: progress bars and lines for long commands.
//! - [`restore`]: files back from the bucket, checked, never over other
//!   bytes, owned like their directory; from records or from object
//!   metadata alone (with Piwigo's rows, where left, for duplicates);
//!   `restore::gallery` a whole gallery from a snapshot.
//! - [`snapshot`]: database snapshots (every table with Piwigo's prefix,
//!   consistent, plain SQL, gzip, optionally age-encrypted) and `local/`,
//!   streamed to the bucket; retention, the schedule, the listing.
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
//! - [`accounts`]: system users and groups, for the config's owner and
//!   the permission errors that name them.

pub mod accounts;
pub mod changes;
pub mod check;
pub mod cli;
pub mod commands;
pub mod companion;
pub mod config;
pub mod daemon;
pub mod database_inc;
pub mod db;
pub mod digest;
pub mod exit;
pub mod grants;
pub mod health;
pub mod http;
pub mod init;
pub mod journald;
pub mod md5;
pub mod metrics;
pub mod monitor;
pub mod periodic;
pub mod piwigo;
pub mod progress;
pub mod queue;
pub mod redact;
pub mod restore;
pub mod retention;
pub mod s3;
pub mod secret;
pub mod secret_file;
pub mod shutdown;
pub mod snapshot;
pub mod status;
pub mod sweep;
pub mod systemd;
pub mod token;
pub mod verify;
pub mod words;
pub mod worker;
