//! The command line's arguments: `run`, `enqueue`, `status`, `retry`,
//! `check`, `verify`, `restore`, `import-s3upload`, `init`, `grants`,
//! `health`, `repair`, `snapshot`, `retention`. What each command does is in `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "piwigo-s3upload",
    version,
    about = "Copies every full-size photo of a Piwigo gallery to S3"
)]
pub struct Cli {
    /// The configuration file.
    #[arg(
        long,
        global = true,
        default_value = "/etc/piwigo-s3upload.toml",
        env = "PIWIGO_S3UPLOAD_CONFIG"
    )]
    pub config: PathBuf,
    /// Log format: human-readable lines or one JSON object per line.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a starter config (the file named by --config): asks for what
    /// the flags do not give, checks it live as `check` does, writes it
    /// readable by the daemon's user only (0640 with the package's group
    /// piwigo-s3upload when it exists, else 0600) and prints the next two
    /// commands. An existing file is replaced only with --force.
    Init(crate::init::InitArgs),
    /// Print the CREATE USER and GRANT statements for the daemon's own
    /// database user: least privilege for this version and table prefix.
    Grants(crate::grants::command::GrantsArgs),
    /// Every other command: they read the config first.
    #[command(flatten)]
    Configured(Configured),
}

#[derive(Debug, Subcommand)]
pub enum Configured {
    /// Run the daemon: monitor Piwigo and upload until SIGINT/SIGTERM.
    Run {
        /// Poll once, upload everything due, then exit (for cron or tests).
        #[arg(long)]
        until_idle: bool,
    },
    /// Queue photos by selection (the batch method). Selectors combine:
    /// `--album 3 --since 2024-01-01` queues that album's photos since then.
    Enqueue(EnqueueArgs),
    /// The 10 most recent pending or failed uploads, the 10 most recent
    /// successes, and counts per status.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Put failed photos back to pending now.
    Retry {
        /// Only these photo ids and ranges: 1,2,5-9.
        #[arg(long)]
        ids: Option<String>,
    },
    /// Check the config, the database, Piwigo's tables, the daemon's own
    /// tables, the gallery root and the bucket, and say what to fix.
    Check,
    /// Re-create the daemon's tables or columns that were dropped by hand
    /// (or lost with an older dump); rows already there, upload records
    /// above all, are kept.
    Repair,
    /// Ask the running daemon's HTTP listener ([http] listen) whether it
    /// is alive; exits 0 when it is (for a container HEALTHCHECK).
    Health {
        /// Ask whether it is ready instead: database and bucket reachable.
        #[arg(long)]
        ready: bool,
    },
    /// Take over from the old S3Upload plugin (table <prefix>s3upload): its
    /// uploads become upload records, its pending and failed photos are
    /// queued, and monitoring starts where it stopped. Safe to run again.
    ImportS3upload,
    /// Is every photo backed up and intact? Lists photos neither uploaded
    /// nor queued (by album) and objects missing or damaged in the bucket.
    /// Exit code 0 when all is well, 1 when something is missing or wrong.
    Verify(VerifyArgs),
    /// Bring files back from the bucket to where Piwigo expects them. Each
    /// file is downloaded under a temporary name, checked against its md5,
    /// then renamed into place; another file already there is kept.
    Restore(RestoreArgs),
    /// Take a snapshot of Piwigo's database (every table with its prefix)
    /// and local/ settings now, into the bucket; or list them.
    Snapshot {
        /// List the snapshots in the bucket: time, size, tables, rows,
        /// Piwigo version.
        #[arg(long)]
        list: bool,
    },
    /// Photos deleted in Piwigo: how many keep their objects, which are due
    /// for removal under [retention] deleted, and whether the guard holds
    /// every deletion (and why).
    Retention {
        /// Confirm that the photos gone are meant to be gone: the guard's
        /// hold goes and their removals proceed under the policy.
        #[arg(long)]
        release: bool,
    },
}

/// What `enqueue` queues; the selectors combine.
#[derive(Debug, Args)]
pub struct EnqueueArgs {
    /// Photo ids and ranges: 1,2,5-9.
    #[arg(long)]
    pub ids: Option<String>,
    /// An album id; its sub-albums are included.
    #[arg(long)]
    pub album: Option<u32>,
    /// A tag, by name or URL name.
    #[arg(long)]
    pub tag: Option<String>,
    /// Photos in the Batch Manager selection (Piwigo's caddie).
    #[arg(long)]
    pub caddie: bool,
    /// Photos added on or after this date (YYYY-MM-DD or YYYY-MM-DD HH:MM:SS).
    #[arg(long)]
    pub since: Option<String>,
    /// Every photo in the gallery.
    #[arg(long)]
    pub all: bool,
}

/// What `verify` checks beyond coverage and the bucket.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Also hash every recorded file and compare it with the upload.
    #[arg(long)]
    pub disk: bool,
    /// Also list objects under the prefix that no record explains.
    #[arg(long)]
    pub orphans: bool,
    /// Queue the photos that are neither uploaded nor queued.
    #[arg(long)]
    pub enqueue: bool,
    /// Send missing or damaged objects again from files that still hold
    /// the recorded bytes (a damaged object is never overwritten: its
    /// copy gets a key of its own); lists what cannot be sent.
    #[arg(long)]
    pub resend: bool,
    /// Download and hash objects (as `restic check --read-data`): every
    /// object S3's checksum cannot prove, and those it proves too.
    #[arg(long)]
    pub read_data: bool,
    /// With --read-data: read only this percentage (0-100) of the
    /// objects S3's checksum already proves, a different sample each run.
    #[arg(long, value_name = "PERCENT", requires = "read_data")]
    pub sample: Option<f64>,
    #[arg(long)]
    pub json: bool,
}

/// What `restore` brings back, and where.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Photo ids and ranges: 1,2,5-9.
    #[arg(long)]
    pub ids: Option<String>,
    /// An album id; its sub-albums are included.
    #[arg(long)]
    pub album: Option<u32>,
    /// Every backed-up photo.
    #[arg(long)]
    pub all: bool,
    /// Only files missing on disk (combines with the others; alone it
    /// means all of them).
    #[arg(long)]
    pub missing: bool,
    /// Restore into this directory instead of piwigo.root.
    #[arg(long, value_name = "DIR")]
    pub to: Option<PathBuf>,
    /// Replace a file that holds other bytes.
    #[arg(long)]
    pub overwrite: bool,
    /// Say what would be restored, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Without the database: every object under the prefix goes back
    /// to the path its metadata names.
    #[arg(long)]
    pub from_bucket: bool,
    /// Restore photos deleted from Piwigo too: to the path they were last
    /// seen at (with --from-bucket, the path their object carries).
    #[arg(long)]
    pub include_deleted: bool,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub gallery: crate::restore::gallery::GalleryArgs,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_parses() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
