//! `restore --gallery` and `restore --database-only`: a whole gallery
//! back on a new host from a snapshot. The database is loaded into an
//! empty one, `local/` is put back, then every recorded original and
//! format comes back through the usual restore path (temporary name, md5
//! check, never over other bytes).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use sqlx::MySqlPool;

use crate::config::Config;
use crate::db::{self, DbError, Tables};
use crate::s3::Target;
use crate::snapshot::catalog::{self, Listed};
use crate::snapshot::dump::quote_ident;
use crate::snapshot::keys::{self, Part};
use crate::snapshot::local_dir::EXCLUDED;
use crate::snapshot::open::{self, Identities, OpenError};

#[derive(Debug, Clone, Default, clap::Args)]
pub struct GalleryArgs {
    /// Rebuild the whole gallery from a snapshot into the empty database
    /// and the freshly unpacked Piwigo tree the config names: database,
    /// local/ settings, then every original and format.
    #[arg(long)]
    pub gallery: bool,
    /// Load a snapshot into the database alone (files are fine).
    #[arg(long)]
    pub database_only: bool,
    /// The snapshot to load, by name (`snapshot --list`); the newest by
    /// default.
    #[arg(long, value_name = "NAME")]
    pub snapshot: Option<String>,
    /// With --gallery: the newest snapshot taken at or before this time
    /// (UTC); with --ids, --album or --all: the versions of the photos
    /// that were current then. YYYY-MM-DD or "YYYY-MM-DD HH:MM:SS".
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// The age identity file (from age-keygen) for encrypted snapshots.
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// Load even though the database holds tables with Piwigo's prefix
    /// (the snapshot's tables replace them).
    #[arg(long)]
    pub force: bool,
    /// The gallery's address, printed at the end to open it.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
}

impl GalleryArgs {
    pub fn wanted(&self) -> bool {
        self.gallery || self.database_only
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GalleryError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Snapshot(#[from] crate::snapshot::SnapshotError),
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("restore: {0}")]
    Choose(String),
    #[error(
        "restore: piwigo.root {root} holds no Piwigo tree (no include/constants.php): unpack Piwigo {wanted} or newer there first"
    )]
    NoTree { root: PathBuf, wanted: String },
    #[error(
        "restore: the snapshot is from Piwigo {snapshot}, newer than the tree at {root} ({tree}): unpack Piwigo {snapshot} or newer there, then run this again"
    )]
    TreeTooOld {
        snapshot: String,
        tree: String,
        root: PathBuf,
    },
    #[error(
        "restore: the database already holds {count} tables starting with `{prefix}` (such as {example}); name an empty database in piwigo.database_url, or pass --force to replace them with the snapshot's"
    )]
    NotEmpty {
        count: usize,
        prefix: String,
        example: String,
    },
    #[error(
        "restore: the database user lacks {lacking} on its database, which loading a snapshot needs; nothing was loaded. As a database administrator run: {statement}"
    )]
    Grants { lacking: String, statement: String },
    #[error("restore: loading the snapshot failed at statement {statement}: {reason}. {cleanup}")]
    Load {
        statement: u64,
        reason: String,
        cleanup: String,
    },
    #[error("restore: writing {path}: {source}")]
    Local {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Files(#[from] super::RestoreError),
}

pub async fn run(config: &Config, args: GalleryArgs, dry_run: bool) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let target = Target::new(&config.s3, &config.upload).await;
    let prefix = config.s3.prefix.as_str();
    let listed = catalog::list(&target, prefix).await?;
    let chosen = choose(&listed, &args)?;
    let manifest = chosen
        .manifest
        .as_ref()
        .ok_or_else(|| GalleryError::Choose("the snapshot is incomplete".into()))?;
    if args.gallery {
        check_tree(&config.piwigo.root, &manifest.piwigo_version)?;
    }
    let pool = db::connect(config.database_url(), 2).await?;
    let t = Tables::new(&config.piwigo.table_prefix);
    // Before anything is read from the bucket or written: a refusal
    // half-way would leave tables to drop.
    if let Some((lacking, statement)) = crate::grants::missing_to_load(&pool).await? {
        return Err(GalleryError::Grants { lacking, statement }.into());
    }
    let existing = prefixed_tables(&pool, &t.prefix).await?;
    if !existing.is_empty() && !args.force {
        return Err(GalleryError::NotEmpty {
            count: existing.len(),
            prefix: t.prefix.clone(),
            example: existing[0].clone(),
        }
        .into());
    }
    let ids = match (&args.identity, manifest.encrypted) {
        (Some(path), _) => Some(open::identities(path)?),
        (None, true) => {
            return Err(OpenError::NeedsIdentity {
                key: manifest.database_key.clone(),
            }
            .into());
        }
        (None, false) => None,
    };
    let local_files: Vec<(String, String, bool)> = chosen
        .keys
        .iter()
        .filter_map(|k| match keys::parse_key(prefix, k) {
            Some((_, Part::Local { rel, encrypted })) if rel != EXCLUDED => {
                Some((k.clone(), rel, encrypted))
            }
            _ => None,
        })
        .collect();
    println!(
        "snapshot {}: Piwigo {}, {} tables, {} rows{}",
        manifest.name,
        manifest.piwigo_version,
        manifest.tables.len(),
        manifest.rows,
        if manifest.encrypted {
            ", encrypted"
        } else {
            ""
        }
    );
    if dry_run {
        println!(
            "plan: load it into {} ({}){}",
            db::describe_url(config.database_url()),
            if existing.is_empty() {
                "empty".to_owned()
            } else {
                format!(
                    "{} replaced (--force)",
                    crate::words::counted(existing.len() as u64, "table")
                )
            },
            if args.gallery {
                format!(
                    ", put {} local/ files back under {}, then restore every recorded original and format there",
                    local_files.len(),
                    config.piwigo.root.display()
                )
            } else {
                String::new()
            }
        );
        println!("dry run: nothing written");
        return Ok(ExitCode::SUCCESS);
    }
    let loaded = load(
        &target,
        &pool,
        &manifest.database_key,
        manifest.encrypted,
        ids.clone(),
    )
    .await?;
    println!("database: {loaded} statements loaded");
    pool.close().await;
    if args.database_only {
        println!(
            "restore --database-only: done in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        return Ok(ExitCode::SUCCESS);
    }
    for (key, rel, encrypted) in &local_files {
        let bytes = open::read_whole(&target, key, *encrypted, ids.clone()).await?;
        write_local(&config.piwigo.root.join("local"), rel, &bytes)?;
    }
    println!(
        "local/: {} put back",
        crate::words::counted(local_files.len() as u64, "file")
    );
    let (pool, t) = crate::daemon::open_database(config, 2).await?;
    let opts = super::Options {
        jobs: config.upload.initial_workers(),
        ..super::Options::default()
    };
    let summary = super::from_records(config, &pool, &t, &opts).await?;
    print!("{}", summary.to_text());
    println!(
        "restore --gallery: done in {:.1} s; Piwigo rebuilds its thumbnails and sizes (_data/) on first view",
        started.elapsed().as_secs_f64()
    );
    match &args.url {
        Some(url) => println!("open the gallery: {url}"),
        None => println!(
            "open the gallery at its address on this host (served from {})",
            config.piwigo.root.display()
        ),
    }
    Ok(if summary.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::exit::FAILURE)
    })
}

fn choose<'a>(listed: &'a [Listed], args: &GalleryArgs) -> Result<&'a Listed, GalleryError> {
    let complete = || listed.iter().filter(|s| s.complete());
    if let Some(name) = &args.snapshot {
        return listed
            .iter()
            .find(|s| &s.name.as_string() == name)
            .filter(|s| s.complete())
            .ok_or_else(|| {
                GalleryError::Choose(format!(
                    "no complete snapshot is named `{name}`; `snapshot --list` lists them"
                ))
            });
    }
    if let Some(at) = &args.at {
        let limit = parse_time(at).ok_or_else(|| {
            GalleryError::Choose(format!(
                "--at `{at}` is not a time; write YYYY-MM-DD or \"YYYY-MM-DD HH:MM:SS\" (UTC)"
            ))
        })?;
        return complete()
            .rfind(|s| s.name.taken_at <= limit)
            .ok_or_else(|| {
                GalleryError::Choose(format!(
                    "no complete snapshot was taken at or before {at}; `snapshot --list` lists them"
                ))
            });
    }
    complete().next_back().ok_or_else(|| {
        GalleryError::Choose(
            "no complete snapshot in the bucket under s3.prefix; check s3.bucket and s3.prefix (`snapshot --list`)".into(),
        )
    })
}

/// A time on the command line (UTC): YYYY-MM-DD (its end),
/// "YYYY-MM-DD HH:MM:SS" or RFC 3339.
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(23, 59, 59))
        })
        .map(|t| t.and_utc())
        .or_else(|| DateTime::parse_from_rfc3339(text).ok().map(|t| t.to_utc()))
}

/// `16.4.0` as numbers, to compare versions.
fn version_numbers(v: &str) -> Vec<u32> {
    v.split('.').map_while(|p| p.parse().ok()).collect()
}

fn check_tree(root: &Path, snapshot_version: &str) -> Result<(), GalleryError> {
    let Some(tree) = crate::snapshot::tree_version(root) else {
        return Err(GalleryError::NoTree {
            root: root.to_owned(),
            wanted: snapshot_version.to_owned(),
        });
    };
    let (snap, have) = (version_numbers(snapshot_version), version_numbers(&tree));
    // Only as many parts as the snapshot knows (a branch like `16`).
    if !snap.is_empty() && have[..have.len().min(snap.len())] < snap[..] {
        return Err(GalleryError::TreeTooOld {
            snapshot: snapshot_version.to_owned(),
            tree,
            root: root.to_owned(),
        });
    }
    Ok(())
}

async fn prefixed_tables(pool: &MySqlPool, prefix: &str) -> Result<Vec<String>, DbError> {
    let pattern = prefix
        .replace('\\', "\\\\")
        .replace('_', "\\_")
        .replace('%', "\\%");
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE ? ORDER BY TABLE_NAME",
    )
    .bind(format!("{pattern}%"))
    .fetch_all(pool)
    .await
    .map_err(DbError::query("list the tables in the target database"))?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// Runs the dump's statements on one connection (its `SET`s hold for the
/// rest). On failure, the tables it created are dropped again, and the
/// error says so.
async fn load(
    target: &Target,
    pool: &MySqlPool,
    key: &str,
    encrypted: bool,
    ids: Option<Identities>,
) -> Result<u64, GalleryError> {
    let mut rx = open::statements(target, key, encrypted, ids).await?;
    let mut conn = pool
        .acquire()
        .await
        .map_err(DbError::query("connect to load the snapshot"))?
        .detach();
    let mut created: Vec<String> = Vec::new();
    let mut n = 0u64;
    let mut progress = crate::progress::Progress::new(
        "load {bar:40} {pos}/{len} tables",
        "restore: tables loaded",
        1,
    );
    let failure = loop {
        let Some(item) = rx.recv().await else {
            break None;
        };
        let statement = match item {
            Ok(s) => s,
            Err(e) if n == 0 => return Err(e.into()),
            Err(e) => break Some(e.to_string()),
        };
        n += 1;
        if let Some(name) = created_table(&statement) {
            created.push(name);
            progress.update(created.len() as u64, created.len() as u64);
        }
        if let Err(e) = sqlx::raw_sql(&statement).execute(&mut conn).await {
            let hint = match db::server_error(&e) {
                Some(1044 | 1142 | 1227) => {
                    " (the database user needs CREATE, DROP, ALTER, INDEX and INSERT on this database: GRANT ALL ON `DB`.* TO the user)"
                }
                _ => "",
            };
            break Some(format!("{}{hint}", db::cause(&e)));
        }
    };
    progress.finish();
    let Some(reason) = failure else {
        return Ok(n);
    };
    let mut dropped = 0;
    for name in &created {
        let drop = format!("DROP TABLE IF EXISTS {}", quote_ident(name));
        if sqlx::raw_sql(&drop).execute(&mut conn).await.is_ok() {
            dropped += 1;
        }
    }
    let cleanup = if dropped == created.len() {
        format!(
            "The {dropped} tables it had created were dropped again: the database is as before, without the tables it replaced"
        )
    } else {
        format!(
            "{} of the {} tables it created could not be dropped: the database holds a partial load; drop the tables starting with the prefix before trying again",
            created.len() - dropped,
            created.len()
        )
    };
    Err(GalleryError::Load {
        statement: n,
        reason,
        cleanup,
    })
}

/// `CREATE TABLE `name` (` -> name.
fn created_table(statement: &str) -> Option<String> {
    let rest = statement.strip_prefix("CREATE TABLE `")?;
    let mut name = String::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '`' {
            if chars.peek() == Some(&'`') {
                chars.next();
                name.push('`');
            } else {
                return Some(name);
            }
        } else {
            name.push(c);
        }
    }
    None
}

/// A `local/` file back under a temporary name, then renamed over.
fn write_local(local: &Path, rel: &str, bytes: &[u8]) -> Result<(), GalleryError> {
    let safe = rel
        .split('/')
        .all(|s| !s.is_empty() && s != "." && s != "..");
    let path = local.join(rel);
    let err = |source| GalleryError::Local {
        path: path.clone(),
        source,
    };
    if !safe {
        return Err(err(std::io::Error::other("not a path inside local/")));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let tmp = path.with_extension("s3upload-restore.tmp");
    std::fs::write(&tmp, bytes).map_err(err)?;
    std::fs::rename(&tmp, &path).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_number() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("include")).unwrap();
        std::fs::write(
            dir.path().join("include/constants.php"),
            "<?php\ndefine('PHPWG_VERSION', '14.5.0');\n",
        )
        .unwrap();
        assert!(check_tree(dir.path(), "14.5.0").is_ok());
        assert!(check_tree(dir.path(), "14.4.9").is_ok());
        assert!(check_tree(dir.path(), "14").is_ok());
        assert!(matches!(
            check_tree(dir.path(), "16.4.0"),
            Err(GalleryError::TreeTooOld { .. })
        ));
        assert!(matches!(
            check_tree(&dir.path().join("nothing"), "16.4.0"),
            Err(GalleryError::NoTree { .. })
        ));
    }

    #[test]
    fn created_tables_are_named() {
        assert_eq!(
            created_table("CREATE TABLE `piwigo_a``b` (\n x int);").as_deref(),
            Some("piwigo_a`b")
        );
        assert_eq!(created_table("INSERT INTO `x` VALUES (1);"), None);
    }
}
