//! `health`: asks the running daemon's HTTP listener.

use std::process::ExitCode;

use crate::config::Config;
use crate::exit::usage;

pub(super) async fn run(config: &Config, ready: bool) -> anyhow::Result<ExitCode> {
    let Some(listen) = config.http.listen else {
        return Err(usage(
            "health asks the daemon's HTTP listener: set [http] listen in the config, e.g. \"127.0.0.1:9187\"".into(),
        ));
    };
    let path = if ready { "/readyz" } else { "/healthz" };
    let (code, body) =
        crate::health::probe(listen, path, std::time::Duration::from_secs(5)).await?;
    println!("{body}");
    Ok(super::exit_code(code == 200))
}
