//! `Secret`: a string that never shows in `Debug` output. It lives apart
//! from the config so that whatever reads a secret (secret files, the HTTP
//! token, the config) shares the type without importing each other.

use std::fmt;

use serde::Deserialize;

/// A string that never shows up in `Debug` or `Display` output, so a
/// secret cannot leak through a log line, an error or a panic message.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}
