//! `status`: the most recent pending, failed and finished uploads, and
//! counts per status.

use std::process::ExitCode;

use crate::config::Config;
use crate::queue;

pub(super) async fn run(config: &Config, json: bool) -> anyhow::Result<ExitCode> {
    let (pool, t) = super::open_database(config).await?;
    let report = queue::report::report(&pool, &t, 10).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_text());
        // Overdue needs the interval, which only the config knows; a
        // failed snapshot is already a warning in the report.
        if let (Some(snap), Some(last)) = (
            config.snapshots.as_ref().filter(|s| s.enabled),
            &report.last_snapshot,
        ) && last.ok
            && let Some(w) = last.warning(snap.interval, chrono::Utc::now().timestamp())
        {
            println!("WARNING: {w}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
