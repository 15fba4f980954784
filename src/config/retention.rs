//! `[retention]`: what becomes of the objects of a photo deleted in Piwigo
//! and of superseded versions, and the guard that holds every deletion
//! when much of the gallery disappears at once. Keeping is the default:
//! nothing leaves the bucket unless a duration is written here.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::error::ConfigError;

/// How long objects no longer in use stay in the bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Retain {
    /// Never removed (the old plugin's promise).
    #[default]
    Keep,
    /// Removed this long after the photo was deleted (or the version
    /// superseded).
    For(Duration),
}

impl fmt::Display for Retain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Keep => f.write_str("keep"),
            Self::For(d) => write!(f, "{}", humantime::format_duration(*d)),
        }
    }
}

impl<'de> Deserialize<'de> for Retain {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_retain(&text).map_err(serde::de::Error::custom)
    }
}

fn parse_retain(text: &str) -> Result<Retain, String> {
    let trimmed = text.trim();
    if trimmed.eq_ignore_ascii_case("keep") {
        return Ok(Retain::Keep);
    }
    humantime::parse_duration(trimmed)
        .map(Retain::For)
        .map_err(|e| {
            format!(
                "`{text}` is neither \"keep\" nor a duration ({e}); write \"keep\" or a duration like \"90d\""
            )
        })
}

/// A share of photos, written "5%".
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Share(f64);

impl Share {
    pub fn percent(self) -> f64 {
        self.0
    }

    /// Whether `part` of `whole` is more than this share.
    pub fn exceeded_by(self, part: u64, whole: u64) -> bool {
        whole > 0 && (part as f64) * 100.0 > self.0 * whole as f64
    }
}

impl fmt::Display for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0)
    }
}

impl<'de> Deserialize<'de> for Share {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_share(&text).map_err(serde::de::Error::custom)
    }
}

fn parse_share(text: &str) -> Result<Share, String> {
    text.trim()
        .strip_suffix('%')
        .and_then(|n| n.trim().parse::<f64>().ok())
        .filter(|n| n.is_finite())
        .map(Share)
        .ok_or_else(|| format!("`{text}` is not a share; write it like \"5%\""))
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Objects (the photo and its formats) of a photo deleted in Piwigo.
    pub deleted: Retain,
    /// Objects of earlier versions of a changed photo.
    pub versions: Retain,
    /// More than this share of the gallery disappearing between two looks
    /// holds every deletion until `retention --release`.
    pub guard_gallery_share: Share,
    /// The same for any one album (by the albums last seen for each photo).
    pub guard_album_share: Share,
    /// The shares apply from this many photos disappearing together: one
    /// photo deleted from a small gallery is not a disaster. An emptied or
    /// replaced images table holds deletions whatever the count.
    pub guard_min_photos: u32,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            deleted: Retain::Keep,
            versions: Retain::Keep,
            guard_gallery_share: Share(5.0),
            guard_album_share: Share(50.0),
            guard_min_photos: 2,
        }
    }
}

/// Below this a deletion could follow the photo's removal before an admin
/// can see it in `status`; tests use seconds, so the floor is low.
const MIN_RETAIN: Duration = Duration::from_secs(1);

impl RetentionConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for (field, retain) in [
            ("retention.deleted", self.deleted),
            ("retention.versions", self.versions),
        ] {
            if let Retain::For(d) = retain
                && d < MIN_RETAIN
            {
                return Err(ConfigError::invalid(
                    field,
                    "below 1 second; write \"keep\" to keep objects, or a duration like \"90d\"",
                ));
            }
        }
        for (field, share) in [
            ("retention.guard_gallery_share", self.guard_gallery_share),
            ("retention.guard_album_share", self.guard_album_share),
        ] {
            if !(share.0 > 0.0 && share.0 <= 100.0) {
                return Err(ConfigError::invalid(
                    field,
                    format!(
                        "`{share}` is outside 0% to 100%; write it like \"5%\" (100% turns this rule off)"
                    ),
                ));
            }
        }
        if self.guard_min_photos == 0 {
            return Err(ConfigError::invalid(
                "retention.guard_min_photos",
                "0 would count no photo; write 1 for the shares to apply from the first photo",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retain_reads_keep_and_durations() {
        assert_eq!(parse_retain("keep"), Ok(Retain::Keep));
        assert_eq!(parse_retain(" Keep "), Ok(Retain::Keep));
        assert_eq!(
            parse_retain("90d"),
            Ok(Retain::For(Duration::from_secs(90 * 86400)))
        );
        let err = parse_retain("forever").unwrap_err();
        assert!(
            err.contains("`forever`") && err.contains("\"keep\""),
            "{err}"
        );
    }

    #[test]
    fn share_reads_percentages_only() {
        assert_eq!(parse_share("5%"), Ok(Share(5.0)));
        assert_eq!(parse_share("0.5 %"), Ok(Share(0.5)));
        assert!(parse_share("0.05").is_err());
        assert!(parse_share("NaN%").is_err());
    }

    #[test]
    fn share_is_exceeded_only_above_it() {
        let five = Share(5.0);
        assert!(!five.exceeded_by(5, 100));
        assert!(five.exceeded_by(6, 100));
        assert!(!five.exceeded_by(1, 0));
    }

    #[test]
    fn validate_names_the_field() {
        let short = RetentionConfig {
            versions: Retain::For(Duration::from_millis(10)),
            ..RetentionConfig::default()
        };
        let e = short.validate().unwrap_err().to_string();
        assert!(e.contains("retention.versions"), "{e}");
        let share = RetentionConfig {
            guard_album_share: Share(150.0),
            ..RetentionConfig::default()
        };
        let e = share.validate().unwrap_err().to_string();
        assert!(
            e.contains("retention.guard_album_share") && e.contains("150%"),
            "{e}"
        );
        let zero = RetentionConfig {
            guard_min_photos: 0,
            ..RetentionConfig::default()
        };
        assert!(zero.validate().is_err());
        assert!(RetentionConfig::default().validate().is_ok());
    }
}
