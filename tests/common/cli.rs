//! The binary as an admin runs it, with a config file of the test's own.

use std::process::{Command, Output};

/// The binary with no config or database URL from the environment.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_piwigo-s3upload"));
    c.env_remove("PIWIGO_S3UPLOAD_DATABASE_URL")
        .env_remove("PIWIGO_S3UPLOAD_CONFIG")
        .env("PIWIGO_S3UPLOAD_LOG", "info");
    c
}

/// Runs the binary with `config_text` as its config file: the output
/// and stdout and stderr together.
pub fn run_with(config_text: &str, args: &[&str]) -> (Output, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config_text).unwrap();
    let out = bin()
        .arg("--config")
        .arg(&path)
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

/// A daemon process started by a test. Killed when dropped, so a failing
/// test never leaves it running (holding the test's output open).
pub struct Running {
    child: std::process::Child,
}

impl Running {
    /// Starts `command` with stderr captured and stdout discarded.
    pub fn spawn(command: &mut Command) -> Self {
        let child = command
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        Self { child }
    }

    /// Sends a signal by name (`HUP`, `TERM`).
    pub fn signal(&self, name: &str) {
        assert!(
            Command::new("kill")
                .arg(format!("-{name}"))
                .arg(self.child.id().to_string())
                .status()
                .unwrap()
                .success()
        );
    }

    /// Stops the daemon with SIGTERM and returns what it logged.
    pub fn stop(mut self) -> String {
        use std::io::Read;
        self.signal("TERM");
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            pipe.read_to_string(&mut stderr).unwrap();
        }
        self.child.wait().unwrap();
        stderr
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
