//! The process's exit codes, and the error that means "usage": defined
//! once for `main`, every command and `init`.

/// The command ran and found something wrong, or failed at run time.
pub const FAILURE: u8 = 1;
/// A bad configuration or command line.
pub const CONFIG: u8 = 2;

/// A usage mistake: exits with [`CONFIG`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

pub fn usage(message: String) -> anyhow::Error {
    UsageError(message).into()
}
