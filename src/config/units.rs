//! How durations, sizes and rates are written in the file: the serde
//! helpers every section uses, with errors that show the expected form.

use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

pub(super) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text).map_err(|e| {
        serde::de::Error::custom(format!(
            "`{text}` is not a duration ({e}); write it like \"2s\", \"500ms\" or \"5m\""
        ))
    })
}

pub(super) fn size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let text = String::deserialize(d)?;
    parse_size(&text).map_err(serde::de::Error::custom)
}

pub(super) fn rate<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let text = String::deserialize(d)?;
    let size = text.trim().strip_suffix("/s").unwrap_or(&text);
    match parse_size(size) {
        Ok(0) => Err(serde::de::Error::custom(
            "a bandwidth of 0 would stop every upload; remove the line for no cap",
        )),
        Ok(n) => Ok(Some(n)),
        Err(_) => Err(serde::de::Error::custom(format!(
            "`{text}` is not a rate; write it like \"20MiB/s\""
        ))),
    }
}

/// Parses "64MiB", "5 MB", "1048576": sizes as admins write them.
pub fn parse_size(text: &str) -> Result<u64, String> {
    bytesize::ByteSize::from_str(text.trim())
        .map(|b| b.as_u64())
        .map_err(|_| format!("`{text}` is not a size; write it like \"16MiB\" or \"64MB\""))
}
