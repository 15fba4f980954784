//! `verify`: is every photo backed up and intact?

use std::process::ExitCode;

use crate::cli::VerifyArgs;
use crate::config::Config;
use crate::exit::usage;
use crate::verify;

pub(super) async fn run(config: &Config, args: VerifyArgs) -> anyhow::Result<ExitCode> {
    if let Some(p) = args.sample
        && !(0.0..=100.0).contains(&p)
    {
        return Err(usage(format!(
            "--sample {p} is not a percentage: give a number from 0 to 100"
        )));
    }
    let (pool, t) = super::open_database(config).await?;
    let opts = verify::Options {
        disk: args.disk,
        orphans: args.orphans,
        enqueue: args.enqueue,
        resend: args.resend,
        read_data: args.read_data.then_some(args.sample.unwrap_or(100.0)),
    };
    let report = verify::run(config, &pool, &t, opts).await?;
    verify::LastRun::of(&report).store(&pool, &t).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", verify::to_text(&report));
    }
    Ok(super::exit_code(report.ok))
}
