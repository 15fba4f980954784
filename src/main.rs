use std::process::ExitCode;

use clap::Parser;
use piwigo_s3upload::cli::{self, Cli, LogFormat, UsageError};
use piwigo_s3upload::config::Config;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let config = match Config::load(&cli.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(cli::EXIT_CONFIG);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(cli::EXIT_FAILURE);
        }
    };
    if config.file_holds_secret && piwigo_s3upload::config::readable_by_others(&cli.config) {
        tracing::warn!(
            config = %cli.config.display(),
            "the config file holds a secret and is readable by every user: chmod 640 it (owner root, group of the daemon's user)"
        );
    }
    let redact = piwigo_s3upload::redact::Redactor::new(config.secrets());
    match runtime.block_on(cli::execute(cli, config)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", redact.scrub(&format!("{e:#}")));
            if e.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(cli::EXIT_CONFIG)
            } else {
                ExitCode::from(cli::EXIT_FAILURE)
            }
        }
    }
}

fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("PIWIGO_S3UPLOAD_LOG").unwrap_or_else(|_| {
        EnvFilter::new("info,aws_config=warn,aws_smithy_runtime=warn,sqlx=warn")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}
