use std::process::ExitCode;

use clap::Parser;
use piwigo_s3upload::cli::{Cli, Command, Configured, LogFormat};
use piwigo_s3upload::{commands, exit};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    raise_open_files_limit();
    match runtime(&cli.command) {
        Ok(runtime) => runtime.block_on(commands::execute(cli)),
        Err(code) => code,
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

fn runtime(command: &Command) -> Result<tokio::runtime::Runtime, ExitCode> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    // The daemon's tasks mostly wait: md5 and every file access run on
    // the blocking pool, so what runs here is sockets, timers and the
    // queue's statements. One worker thread beside the main one carries
    // them with fewer hand-overs between threads than one per core: on
    // 2 cores, 23-32% fewer context switches per GB, 3-7% less CPU where
    // the link does not cap the rate (level at 50 Mbit/s), at the same or
    // a shorter wall time (bench/results/one-runtime-worker.md). The
    // other commands keep one worker per core: restore and verify hash
    // what they download as it comes.
    if matches!(command, Command::Configured(Configured::Run { .. })) {
        builder.worker_threads(1);
    }
    builder.enable_all().build().map_err(|e| {
        eprintln!("error: cannot start the async runtime: {e}");
        ExitCode::from(exit::FAILURE)
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
