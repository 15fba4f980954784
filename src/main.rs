use std::process::ExitCode;

use clap::Parser;
use piwigo_s3upload::cli::{self, Cli, LogFormat, UsageError};
use piwigo_s3upload::config::Config;
use piwigo_s3upload::daemon::DaemonError;
use piwigo_s3upload::grants::GrantsError;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    raise_open_files_limit();
    if let cli::Command::Init(args) = &cli.command {
        return init(&cli.config, args.clone());
    }
    if let cli::Command::Grants(args) = &cli.command {
        return grants(&cli.config, args.clone());
    }
    let config = match Config::load(&cli.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(cli::EXIT_CONFIG);
        }
    };
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
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
            ExitCode::from(exit_code(&e))
        }
    }
}

/// Raises the soft limit on open files to the hard one, as Go programs do:
/// the usual soft limit of 1024 exists for select(), which nothing here
/// uses, and uploads, database connections and the listener share it.
fn raise_open_files_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current.is_some() && limit.current != limit.maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::debug!(error = %e, "cannot raise the open files limit");
        }
    }
}

/// 2 for a usage mistake or what only the admin can fix (a missing
/// database privilege), 1 for a failure at run time.
fn exit_code(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<UsageError>().is_some() {
        cli::EXIT_CONFIG
    } else if let Some(d) = e.downcast_ref::<DaemonError>() {
        d.exit_code()
    } else if let Some(g) = e.downcast_ref::<GrantsError>() {
        g.exit_code()
    } else {
        cli::EXIT_FAILURE
    }
}

/// `grants` runs before there is a config (it prints what to run before
/// `init`), and reads one when it is there.
fn grants(path: &std::path::Path, args: piwigo_s3upload::grants::command::GrantsArgs) -> ExitCode {
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match runtime.block_on(piwigo_s3upload::grants::command::run(path, args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// `init` runs without a config: it writes one.
fn init(path: &std::path::Path, args: piwigo_s3upload::init::InitArgs) -> ExitCode {
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match runtime.block_on(piwigo_s3upload::init::run(path, args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::from(cli::EXIT_FAILURE)
        })
}

/// Crates below us whose debug and trace output can show credentials
/// (request signing, credential providers, raw HTTP): capped at info
/// whatever the filter asks for, so keys never reach a log.
const CAPPED: &[&str] = &[
    "aws_config",
    "aws_credential_types",
    "aws_runtime",
    "aws_sdk_s3",
    "aws_sigv4",
    "aws_smithy_http_client",
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "h2",
    "hyper",
    "hyper_util",
    "rustls",
    "sqlx",
];

fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let requested = std::env::var("PIWIGO_S3UPLOAD_LOG").unwrap_or_else(|_| "info".into());
    let mut filter = EnvFilter::try_new(&requested).unwrap_or_else(|_| EnvFilter::new("info"));
    for target in CAPPED {
        let level = if *target == "aws_config" || *target == "sqlx" {
            "warn"
        } else {
            "info"
        };
        if let Ok(d) = format!("{target}={level}").parse() {
            filter = filter.add_directive(d);
        }
    }
    use piwigo_s3upload::journald::{PriorityPrefix, stderr_is_journal};
    use std::io::IsTerminal;
    let journal = stderr_is_journal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal() && !journal)
        .with_writer(std::io::stderr);
    let human = tracing_subscriber::fmt::format();
    let json = tracing_subscriber::fmt::format().json().flatten_event(true);
    match (format, journal) {
        (LogFormat::Human, false) => builder.event_format(human).init(),
        (LogFormat::Human, true) => builder.event_format(PriorityPrefix(human)).init(),
        (LogFormat::Json, false) => builder.json().event_format(json).init(),
        (LogFormat::Json, true) => builder.json().event_format(PriorityPrefix(json)).init(),
    }
}
