//! `run`: the daemon, stopped by SIGINT/SIGTERM (or, with `--until-idle`,
//! once nothing is left to do).

use std::path::Path;
use std::process::ExitCode;

use crate::config::Config;
use crate::daemon::{self, RunOptions};
use crate::shutdown::Shutdown;

pub(super) async fn run(path: &Path, config: Config, until_idle: bool) -> anyhow::Result<ExitCode> {
    let shutdown = Shutdown::from_signals()?;
    let opts = RunOptions {
        until_idle,
        config_path: Some(path.to_owned()),
    };
    daemon::run(config, shutdown, opts).await?;
    Ok(ExitCode::SUCCESS)
}
