//! `grants`: prints the database user's statements; it runs before there
//! is a config (it prints what to run before `init`) and reads one when it
//! is there.

use std::path::Path;
use std::process::ExitCode;

use crate::grants::command::GrantsArgs;

pub(super) async fn run(path: &Path, args: GrantsArgs) -> ExitCode {
    match crate::grants::command::run(path, args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
