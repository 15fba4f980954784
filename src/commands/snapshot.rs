//! `snapshot` (one now) and `snapshot --list`.

use std::process::ExitCode;

use chrono::Utc;

use crate::config::Config;
use crate::queue::last_snapshot::LastSnapshot;
use crate::redact::Redactor;
use crate::s3::Target;
use crate::snapshot::{self, catalog};

pub async fn run(config: &Config, list: bool) -> anyhow::Result<ExitCode> {
    let target = Target::new(&config.s3, &config.upload).await;
    if list {
        let listed = catalog::list(&target, &config.s3.prefix).await?;
        print!("{}", catalog::to_text(&listed));
        return Ok(ExitCode::SUCCESS);
    }
    // Without a [snapshots] section: its defaults, unencrypted.
    let snap = config.snapshots.clone().unwrap_or_default();
    let (pool, t) = crate::daemon::open_database(config, 2).await?;
    let result = snapshot::take(config, &snap, &pool, &t).await;
    let now = Utc::now().timestamp();
    let previous = LastSnapshot::load(&pool, &t).await?;
    let last = match &result {
        Ok(taken) => LastSnapshot::succeeded(
            now,
            taken.manifest.name.clone(),
            taken.manifest.database_bytes,
        ),
        Err(e) => LastSnapshot::failed(
            now,
            Redactor::new(config.secrets()).scrub(&e.to_string()),
            previous.as_ref(),
        ),
    };
    last.store(&pool, &t).await?;
    let taken = result?;
    let m = &taken.manifest;
    println!(
        "snapshot {}: {} tables, {} rows, {} ({} of SQL), local/: {} files; {:.1} s{}",
        m.name,
        m.tables.len(),
        m.rows,
        bytesize::ByteSize::b(m.database_bytes),
        bytesize::ByteSize::b(m.sql_bytes),
        m.local_files,
        m.seconds,
        if m.encrypted {
            ", encrypted to snapshots.recipient"
        } else {
            ""
        }
    );
    println!("  {}", m.database_key);
    for name in &taken.deleted {
        println!("  deleted by the retention policy: {name}");
    }
    if !m.encrypted {
        println!(
            "  not encrypted: it holds password hashes and e-mail addresses; set snapshots.recipient to an age public key"
        );
    }
    Ok(ExitCode::SUCCESS)
}
