//! One module per command. `execute` loads the config (every command but
//! `init`, which writes one), hands over to the command's module and turns
//! its result into an exit code; `open_database` is the one way a command
//! reaches the database.

mod check;
mod enqueue;
mod grants;
mod health;
mod import;
mod init;
mod repair;
mod restore;
mod retention;
mod retry;
mod run;
mod snapshot;
mod status;
mod verify;

use std::path::Path;
use std::process::ExitCode;

use sqlx::MySqlPool;

use crate::cli::{Cli, Command, Configured};
use crate::config::Config;
use crate::db::Tables;
use crate::exit::{self, UsageError};

/// Runs the command the command line names.
pub async fn execute(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Init(args) => init::run(&cli.config, args).await,
        Command::Grants(args) => grants::run(&cli.config, args).await,
        Command::Configured(command) => configured(&cli.config, command).await,
    }
}

async fn configured(path: &Path, command: Configured) -> ExitCode {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(exit::CONFIG);
        }
    };
    if config.file_holds_secret && crate::config::readable_by_others(path) {
        tracing::warn!(
            config = %path.display(),
            "the config file holds a secret and is readable by every user: chmod 640 it (owner root, group of the daemon's user)"
        );
    }
    let redact = crate::redact::Redactor::new(config.secrets());
    let result = match command {
        Configured::Run { until_idle } => run::run(path, config, until_idle).await,
        Configured::Enqueue(args) => enqueue::run(&config, args).await,
        Configured::Status { json } => status::run(&config, json).await,
        Configured::Retry { ids } => retry::run(&config, ids).await,
        Configured::Check => check::run(&config).await,
        Configured::Repair => repair::run(&config).await,
        Configured::Health { ready } => health::run(&config, ready).await,
        Configured::ImportS3upload => import::run(&config).await,
        Configured::Verify(args) => verify::run(&config, args).await,
        Configured::Restore(args) => restore::run(&config, args).await,
        Configured::Snapshot { list } => snapshot::run(&config, list).await,
        Configured::Retention { release } => retention::run(&config, release).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", redact.scrub(&format!("{e:#}")));
            ExitCode::from(error_code(&e))
        }
    }
}

/// 2 for a usage mistake or what only the admin can fix (a missing
/// database privilege: systemd must not restart into it), 1 for a failure
/// at run time.
fn error_code(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<UsageError>().is_some() {
        exit::CONFIG
    } else if let Some(d) = e.downcast_ref::<crate::daemon::DaemonError>() {
        d.exit_code()
    } else if let Some(g) = e.downcast_ref::<crate::grants::GrantsError>() {
        g.exit_code()
    } else if let Some(crate::restore::gallery::GalleryError::Grants { .. }) = e.downcast_ref() {
        exit::CONFIG
    } else {
        exit::FAILURE
    }
}

/// Connects, checks Piwigo's tables and migrates ours: every command that
/// reads or writes the database goes through here (`repair` alone does
/// not: it mends what this would refuse).
async fn open_database(config: &Config) -> anyhow::Result<(MySqlPool, Tables)> {
    Ok(crate::daemon::open_database(config, 2).await?)
}

/// `enqueue` and `restore` name a missing album alike.
fn no_album(id: u32) -> anyhow::Error {
    exit::usage(format!(
        "no Piwigo album has id {id}; the id is in the album's admin page address (cat_id=...)"
    ))
}

/// `SUCCESS` when `ok`, else the run-time failure code.
fn exit_code(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::FAILURE)
    }
}
