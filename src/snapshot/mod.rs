//! Database snapshots: every table with Piwigo's prefix (Piwigo's, other
//! plugins', ours) as plain SQL, gzip-compressed, optionally encrypted
//! to an age public key, streamed to the bucket beside the photos with
//! Piwigo's `local/` settings; then the retention policy.
//!
//! - `keys`: where snapshots live (a place no photo key reaches).
//! - `dump`: tables to SQL under one consistent view.
//! - `seal` and `ship`: gzip, age, and parts on their way up.
//! - `local_dir`: Piwigo's `local/` beside the dump.
//! - `open`: the reading side: decrypt, decompress, statements.
//! - `retention`: which snapshots to keep.
//! - `catalog`: the snapshots in the bucket and their manifests (the last
//!   result is kept by `queue::last_snapshot`).
//! - `grants`: what the database user needs.
//! - `schedule`: the daemon's background task (the command is
//!   `commands::snapshot`).

pub mod catalog;
pub mod dump;
pub mod grants;
pub mod keys;
pub mod local_dir;
pub mod open;
pub mod retention;
pub mod schedule;
pub mod seal;
pub mod ship;

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use chrono::Utc;
use sqlx::MySqlPool;
use tracing::Instrument;

use crate::config::{Config, SnapshotsConfig};
use crate::db::{DbError, Tables};
pub use crate::queue::last_snapshot::LastSnapshot;
use crate::s3::{S3Error, Target};
pub use catalog::Manifest;
use keys::SnapshotName;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    S3(#[from] S3Error),
    #[error(transparent)]
    Seal(#[from] seal::SealError),
    #[error("snapshot: writing the dump: {0}")]
    Io(#[from] std::io::Error),
    #[error(
        "snapshot: no table starts with `{0}` in this database; check piwigo.database_url and piwigo.table_prefix"
    )]
    NoTables(String),
    #[error("snapshot: reading Piwigo's {path}: {source}")]
    Local {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(
        "snapshot: {key} is in the bucket with {found}, not the {expected} sent; the snapshot is left incomplete (no manifest) and older ones are kept"
    )]
    NotVerified {
        key: String,
        expected: String,
        found: String,
    },
    #[error("snapshot: the manifest of {0} cannot be read: {1}")]
    Manifest(String, String),
}

/// What `snapshot` prints and the daemon logs.
#[derive(Debug, Clone)]
pub struct Taken {
    pub manifest: Manifest,
    /// Snapshots deleted by the retention policy.
    pub deleted: Vec<String>,
}

/// Piwigo's version: the tree's `include/constants.php`, else the
/// branch the database records (`piwigo_db_version`).
pub async fn piwigo_version(root: &Path, pool: &MySqlPool, t: &Tables) -> String {
    if let Some(v) = tree_version(root) {
        return v;
    }
    crate::piwigo::db_version(pool, t)
        .await
        .unwrap_or_else(|| "unknown".into())
}

/// `define('PHPWG_VERSION', '16.4.0');` in a Piwigo tree.
pub fn tree_version(root: &Path) -> Option<String> {
    let text = std::fs::read_to_string(root.join("include/constants.php")).ok()?;
    let line = text.lines().find(|l| l.contains("'PHPWG_VERSION'"))?;
    let after = line.split("'PHPWG_VERSION'").nth(1)?;
    let version = after.split('\'').nth(1)?;
    (!version.is_empty()).then(|| version.to_owned())
}

fn recipient(snap: &SnapshotsConfig) -> Option<age::x25519::Recipient> {
    // Validated when the config was loaded.
    snap.recipient
        .as_deref()
        .and_then(|r| r.trim().parse().ok())
}

/// Takes one snapshot now, verifies it in the bucket, then applies the
/// retention policy.
pub async fn take(
    config: &Config,
    snap: &SnapshotsConfig,
    pool: &MySqlPool,
    t: &Tables,
) -> Result<Taken, SnapshotError> {
    let span = tracing::info_span!("snapshot");
    take_in(config, snap, pool, t).instrument(span).await
}

async fn take_in(
    config: &Config,
    snap: &SnapshotsConfig,
    pool: &MySqlPool,
    t: &Tables,
) -> Result<Taken, SnapshotError> {
    let started = Instant::now();
    let taken_at = Utc::now();
    let target = Target::new(&config.s3, &config.upload).await;
    let prefix = config.s3.prefix.as_str();
    let version = piwigo_version(&config.piwigo.root, pool, t).await;
    let name = SnapshotName::new(taken_at, &version);
    let recipient = recipient(snap);
    let encrypted = recipient.is_some();

    let db_key = name.database_key(prefix, encrypted);
    let meta = HashMap::from([
        ("piwigo-version".to_owned(), name.piwigo_version.clone()),
        (
            "snapshot-encryption".to_owned(),
            if encrypted { "age" } else { "none" }.to_owned(),
        ),
    ]);
    let content_type = if encrypted {
        "application/octet-stream"
    } else {
        "application/gzip"
    };
    let upload = target.start_stream(&db_key, content_type, meta).await?;
    let sealer = seal::Sealer::new(recipient.as_ref(), true)?;
    let mut shipper = ship::Shipper::new(sealer, upload, config.upload.part_size);
    let header = format!(
        "-- piwigo-s3upload snapshot {} of the tables `{}*`, Piwigo {}\n\
         -- Load it into an empty database with: zcat database.sql.gz | mariadb DATABASE\n\
         -- (encrypted: age -d -i key.txt database.sql.gz.age | zcat | mariadb DATABASE)\n",
        name.as_string(),
        t.prefix,
        name.piwigo_version
    );
    // A connection of its own, closed at the end whatever happens: its
    // locks or transaction never go back to the pool.
    let mut conn = pool
        .acquire()
        .await
        .map_err(DbError::query("connect for the snapshot"))?
        .detach();
    // Boxed as `dyn Send`: the compiler cannot prove the row stream's
    // borrowing future `Send` for every lifetime on its own.
    let dumping: std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<dump::Dumped, SnapshotError>> + Send + '_>,
    > = Box::pin(dump::dump(&mut conn, &t.prefix, &header, &mut shipper));
    let dumped = dumping.await;
    drop(conn);
    let dumped = dumped?;
    let uncompressed = shipper.written();
    let streamed = shipper.finish().await?;
    verify_in_bucket(&target, config, &streamed).await?;
    let local = local_dir::copy(
        &target,
        &config.piwigo.root,
        &name,
        prefix,
        recipient.as_ref(),
        config.upload.part_size,
    )
    .await?;
    let manifest = Manifest {
        name: name.as_string(),
        taken_at: taken_at.timestamp(),
        piwigo_version: name.piwigo_version.clone(),
        encrypted,
        consistency: dumped.consistency,
        rows: dumped.tables.iter().map(|t| t.rows).sum(),
        tables: dumped.tables,
        database_key: streamed.key.clone(),
        database_bytes: streamed.size,
        sql_bytes: uncompressed,
        local_files: local.files,
        local_bytes: local.bytes,
        seconds: started.elapsed().as_secs_f64(),
    };
    manifest.store(&target, prefix).await?;
    tracing::info!(
        snapshot.bytes = manifest.database_bytes,
        snapshot.tables = manifest.tables.len(),
        snapshot.rows = manifest.rows,
        snapshot.local_files = manifest.local_files,
        snapshot.seconds = manifest.seconds,
        "snapshot taken and verified in the bucket"
    );
    let deleted = retention::apply(&target, prefix, snap, &name).await?;
    Ok(Taken { manifest, deleted })
}

/// The object must be there with the size and ETag sent before anything
/// older may be deleted.
async fn verify_in_bucket(
    target: &Target,
    config: &Config,
    streamed: &crate::s3::stream::Streamed,
) -> Result<(), SnapshotError> {
    let present = target.head(&streamed.key).await?;
    let etag_is_md5 = !config
        .s3
        .server_side_encryption
        .is_some_and(crate::config::ServerSideEncryption::uses_kms);
    let found = match &present {
        None => "no object".to_owned(),
        Some(p) if p.size != streamed.size => format!("{} bytes", p.size),
        Some(p) => {
            let etag = p.etag.as_deref().unwrap_or_default().trim_matches('"');
            if !etag_is_md5 || streamed.matches_etag(etag) {
                return Ok(());
            }
            format!("ETag {etag}")
        }
    };
    Err(SnapshotError::NotVerified {
        key: streamed.key.clone(),
        expected: format!("{} bytes, ETag {}", streamed.size, streamed.etag),
        found,
    })
}
