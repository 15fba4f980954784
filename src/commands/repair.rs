//! `repair`: the daemon's tables or columns dropped by hand (or lost with
//! an older dump) made again, every row already there kept. It connects
//! without the checks of `open_database`, which refuse such a database.

use std::process::ExitCode;

use crate::config::Config;
use crate::queue;

pub(super) async fn run(config: &Config) -> anyhow::Result<ExitCode> {
    let pool = crate::db::connect(config.database_url(), 2).await?;
    let t = crate::db::Tables::new(&config.piwigo.table_prefix);
    crate::grants::require(&pool, &t, crate::grants::Uses::of(config)).await?;
    let repaired = queue::migrate::repair(&pool, &t).await?;
    pool.close().await;
    if repaired.found.is_empty() {
        println!("the daemon's tables are complete; nothing to repair");
    }
    for damage in &repaired.found {
        println!("repaired: {damage}");
    }
    let lost = |name: &str| {
        repaired.found.iter().any(|d| {
            matches!(d, queue::schema::Damage::MissingTable(table)
                if *table == format!("{}{name}", t.prefix))
        })
    };
    if lost("s3upload_queue") {
        println!(
            "photos queued before the table was lost are no longer queued: queue them again with `enqueue` (photos already uploaded are skipped)"
        );
    }
    if lost("s3upload_uploaded") {
        println!(
            "upload records were lost with the table: `enqueue` queues those photos again, and each one already in the bucket is recorded as already_present without a second upload"
        );
    }
    if repaired.left.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        anyhow::bail!(
            "database: still damaged after repair: {}; compare the tables with the files in migrations/",
            repaired
                .left
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        )
    }
}
