//! `init`: writes a starter config, so it runs without one.

use std::path::Path;
use std::process::ExitCode;

use crate::init::InitArgs;

pub(super) async fn run(path: &Path, args: InitArgs) -> ExitCode {
    match crate::init::run(path, args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
