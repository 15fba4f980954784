//! `check`: every part of the setup, and what to fix.

use std::process::ExitCode;

use crate::config::Config;

pub(super) async fn run(config: &Config) -> anyhow::Result<ExitCode> {
    let findings = crate::check::run(config).await;
    print!("{}", crate::check::render(&findings));
    let ok = findings.iter().all(|f| f.ok);
    if ok {
        println!("all checks passed");
    }
    Ok(super::exit_code(ok))
}
