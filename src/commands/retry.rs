//! `retry`: failed and waiting photos due again now.

use std::process::ExitCode;

use crate::config::Config;
use crate::exit::usage;
use crate::piwigo;
use crate::queue::Queue;

pub(super) async fn run(config: &Config, ids: Option<String>) -> anyhow::Result<ExitCode> {
    let (pool, t) = super::open_database(config).await?;
    let ranges = ids
        .map(|s| piwigo::parse_id_list(&s).map_err(usage))
        .transpose()?;
    let strategy = Queue::detect_strategy(&pool).await?;
    let n = Queue::new(pool, t, strategy)
        .retry_now(ranges.as_deref())
        .await?;
    println!(
        "{} put back to pending; a running daemon picks them up at its next claim",
        crate::words::counted(n, "photo")
    );
    Ok(ExitCode::SUCCESS)
}
