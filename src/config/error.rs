//! `ConfigError`: what loading the config can fail with, from reading
//! the file to resolving the settings it leaves out.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config: cannot read {path}: {source} ({fix})")]
    Read {
        path: PathBuf,
        source: std::io::Error,
        /// What to do, which depends on why it could not be read.
        fix: String,
    },
    #[error("config: {path} line {line}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("config: {field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    PiwigoSettings(#[from] crate::database_inc::SettingsError),
    #[error(transparent)]
    SecretFile(#[from] crate::secret_file::SecretFileError),
}

impl ConfigError {
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }
}
