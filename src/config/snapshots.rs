//! `[snapshots]`: database snapshots. The section being there turns them
//! on (`enabled = false` pauses them); the retention follows restic's
//! `forget --keep-*` model.

use std::time::Duration;

use serde::Deserialize;

use super::error::ConfigError;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SnapshotsConfig {
    /// Scheduled snapshots; `snapshot` on the command line works either way.
    pub enabled: bool,
    /// Time between two snapshots; one is taken at start when the newest
    /// in the bucket is older than this.
    #[serde(deserialize_with = "super::units::duration")]
    pub interval: Duration,
    /// The newest N are kept whatever their age.
    pub keep_last: u32,
    /// The newest snapshot of each of the last N days that have one.
    pub keep_daily: u32,
    /// ... of each of the last N ISO weeks that have one.
    pub keep_weekly: u32,
    /// ... of each of the last N months that have one.
    pub keep_monthly: u32,
    /// An age public key (`age1...`): snapshots are encrypted to it, so
    /// the host and the bucket hold nothing that reads them; only
    /// `restore` needs the private key.
    pub recipient: Option<String>,
}

impl Default for SnapshotsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval: Duration::from_secs(24 * 3600),
            keep_last: 7,
            keep_daily: 7,
            keep_weekly: 4,
            keep_monthly: 12,
            recipient: None,
        }
    }
}

impl SnapshotsConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.interval < Duration::from_secs(60) {
            return Err(ConfigError::invalid(
                "snapshots.interval",
                "below 1 minute; a snapshot reads every table: write it like \"1d\" or \"6h\"",
            ));
        }
        if self.keep_last == 0 {
            return Err(ConfigError::invalid(
                "snapshots.keep_last",
                "0 would delete the snapshot just taken; keep at least 1",
            ));
        }
        if let Some(r) = &self.recipient {
            r.trim().parse::<age::x25519::Recipient>().map_err(|e| {
                ConfigError::invalid(
                    "snapshots.recipient",
                    format!(
                        "`{r}` is not an age public key ({e}); make a key pair with `age-keygen -o key.txt` and copy its `age1...` public key here"
                    ),
                )
            })?;
        }
        Ok(())
    }
}
