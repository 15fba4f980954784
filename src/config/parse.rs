//! The first step of loading: the TOML text into [`Config`], as written.
//! It reads nothing else (no environment, no other file), so what it
//! returns depends on the text alone; `sources` fills in the rest.

use std::path::Path;

use super::error::ConfigError;
use super::sections::Config;

impl Config {
    /// The file as written: settings it leaves out (region, table prefix,
    /// the database URL from Piwigo's settings, keys in secret files) stay
    /// unset until [`Config::resolve`].
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| parse_error(&e, text, path))?;
        config.file_holds_secret = config.holds_secret();
        Ok(config)
    }
}

/// Keys whose values must not be echoed, even when they are malformed.
const SECRET_KEYS: &[&str] = &[
    "database_url",
    "access_key_id",
    "secret_access_key",
    "session_token",
];

/// A parse error that names the line and the key but never quotes the
/// line (it may hold a secret), nor the value of a secret key.
fn parse_error(e: &toml::de::Error, text: &str, path: &Path) -> ConfigError {
    let (line, key) = match e.span() {
        Some(span) => {
            let start = span.start.min(text.len());
            let line_no = text.as_bytes()[..start]
                .iter()
                .filter(|b| **b == b'\n')
                .count()
                + 1;
            let line_text = text.lines().nth(line_no - 1).unwrap_or_default();
            let key = line_text
                .split_once('=')
                .map(|(k, _)| k.trim().to_owned())
                .filter(|k| {
                    !k.is_empty()
                        && k.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                });
            // The section the line is in, so the key reads as it is
            // documented (`s3.acl`, not `acl`).
            let section = text
                .lines()
                .take(line_no - 1)
                .map(str::trim)
                .filter(|l| l.starts_with('[') && l.ends_with(']'))
                .last()
                .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_owned());
            let field = |k: &String| match &section {
                Some(section) => format!("{section}.{k}"),
                None => k.clone(),
            };
            (line_no, key.map(|k| (field(&k), k)))
        }
        None => (0, None),
    };
    let message = match &key {
        Some((field, k)) if SECRET_KEYS.contains(&k.as_str()) => {
            format!("{field}: not a valid value (it must be a quoted string)")
        }
        Some((field, k)) if !e.message().contains(k.as_str()) => {
            format!("{field}: {}", e.message())
        }
        _ => e.message().to_owned(),
    };
    ConfigError::Parse {
        path: path.to_owned(),
        line,
        message,
    }
}
