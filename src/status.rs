//! Every state a queued item can be in, every outcome a finished one
//! records, and the one failure type every part of the pipeline builds
//! where its error happens. The strings are what the database, `status`,
//! `/metrics`, `verify` and the Piwigo plugin show (the plugin reads them
//! from `include/statuses.inc.php`, made from this file): they never
//! change once released.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

/// A queue row's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Pending,
    /// Another queued photo with the same bytes is being uploaded: this
    /// one becomes its duplicate (or uploads itself if that one cannot).
    WaitingForDuplicate,
    /// Another queued photo is being sent to the same key: this one looks
    /// at the object once that one is done.
    WaitingForKey,
    /// S3 answered this HTTP status (0: no answer came).
    FailedCode(u16),
    FailedFileMissing,
    FailedFileUnreadable,
    /// `open()` or `read()` made no progress for `upload.read_stall_timeout`.
    FailedFileStalled,
    /// The file changed between hashing and sending.
    FailedFileChanged,
    FailedPathOutsideRoot,
    /// `images.file` or `images.path` cannot name an object.
    FailedBadFileName,
    /// Prefix and name make a key over S3's 1024-byte limit.
    FailedKeyTooLong,
    /// Another object, with other bytes, is at this photo's key: it is
    /// never overwritten, so this photo is not backed up.
    FailedKeyTaken,
    /// Uploaded, but the database refused the record.
    FailedRecord,
    FailedInternalError,
}

impl Status {
    pub fn as_str(self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            Self::Pending => "pending",
            Self::WaitingForDuplicate => "waiting_for_duplicate",
            Self::WaitingForKey => "waiting_for_key",
            Self::FailedCode(code) => {
                return Cow::Owned(format!("{}{code}", Self::FAILED_CODE_PREFIX));
            }
            Self::FailedFileMissing => "failed_file_missing",
            Self::FailedFileUnreadable => "failed_file_unreadable",
            Self::FailedFileStalled => "failed_file_stalled",
            Self::FailedFileChanged => "failed_file_changed",
            Self::FailedPathOutsideRoot => "failed_path_outside_root",
            Self::FailedBadFileName => "failed_bad_file_name",
            Self::FailedKeyTooLong => "failed_key_too_long",
            Self::FailedKeyTaken => "failed_key_taken",
            Self::FailedRecord => "failed_record",
            Self::FailedInternalError => "failed_internal_error",
        })
    }

    /// The statuses a row waits in, not counted as attempts.
    pub const WAITING: [Status; 2] = [Self::WaitingForDuplicate, Self::WaitingForKey];

    /// `failed_code_N`: S3 answered HTTP status N.
    pub const FAILED_CODE_PREFIX: &str = "failed_code_";

    /// Every failure status starts so (`failed_code_403`, `failed_file_missing`).
    pub const FAILED_PREFIX: &str = "failed_";

    /// What `status` and the plugin show for a row claimed right now: not
    /// a stored status, the claim says it.
    pub const UPLOADING: &str = "uploading";

    /// SQL for the status a row shows: [`UPLOADING`](Self::UPLOADING)
    /// while claimed, its stored status otherwise. `row` is the table's
    /// alias with its dot, or empty.
    pub fn shown_sql(row: &str) -> String {
        format!(
            "IF({row}claimed_until > NOW(3), '{}', {row}status)",
            Self::UPLOADING
        )
    }

    /// SQL `LIKE` pattern of the failure statuses.
    pub fn failed_like() -> String {
        format!("{}%", Self::FAILED_PREFIX)
    }

    /// The statuses without a parameter, for the plugin's constants.
    pub const FIXED: [Status; 13] = [
        Self::Pending,
        Self::WaitingForDuplicate,
        Self::WaitingForKey,
        Self::FailedFileMissing,
        Self::FailedFileUnreadable,
        Self::FailedFileStalled,
        Self::FailedFileChanged,
        Self::FailedPathOutsideRoot,
        Self::FailedBadFileName,
        Self::FailedKeyTooLong,
        Self::FailedKeyTaken,
        Self::FailedRecord,
        Self::FailedInternalError,
    ];
}

/// What a finished photo left in the bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Our PUT created the object.
    Uploaded,
    /// An object was already at the key: never overwritten.
    AlreadyPresent,
    /// Same bytes as another photo already uploaded: nothing sent.
    Duplicate,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Uploaded => "uploaded",
            Self::AlreadyPresent => "already_present",
            Self::Duplicate => "duplicate",
        }
    }
}

impl Outcome {
    pub const ALL: [Outcome; 3] = [Self::Uploaded, Self::AlreadyPresent, Self::Duplicate];
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str())
    }
}

/// When a failed photo is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Exponential backoff between `upload.retry_backoff_min` and `_max`.
    Backoff,
    /// After this short pause: a passing condition (a file being written).
    Soon(Duration),
    /// Not until the photo (its Piwigo row) or the S3 settings change, or
    /// an admin runs `retry`: trying again could not succeed.
    UntilChanged,
}

/// A photo's failed attempt: what the queue records and how it retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub status: Status,
    pub message: String,
    pub retry: Retry,
}

impl Failure {
    pub fn new(status: Status, message: impl Into<String>, retry: Retry) -> Self {
        Self {
            status,
            message: message.into(),
            retry,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status, self.message)
    }
}

/// The plugin's copy of the strings, as PHP constants.
pub fn plugin_constants() -> String {
    let mut out = String::from(
        "<?php\n\
         // Made from the daemon's src/status.rs by its test `plugin_statuses_match`:\n\
         // change the strings there, never here.\n\
         defined('PHPWG_ROOT_PATH') or die('Hacking attempt!');\n\n",
    );
    let mut define = |name: &str, value: &str| {
        out.push_str(&format!(
            "define('S3C_{}', '{value}');\n",
            name.to_ascii_uppercase()
        ));
    };
    for s in Status::FIXED {
        define(&format!("status_{}", s.as_str()), &s.as_str());
    }
    define("status_failed_code_prefix", Status::FAILED_CODE_PREFIX);
    define("status_failed_prefix", Status::FAILED_PREFIX);
    define("status_uploading", Status::UPLOADING);
    for o in Outcome::ALL {
        define(&format!("outcome_{}", o.as_str()), o.as_str());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plugin reads the statuses from a file made from this one.
    /// `PIWIGO_S3UPLOAD_WRITE_STATUSES=1` writes it again.
    #[test]
    fn plugin_statuses_match() {
        const FILE: &str = "piwigo-plugin/s3upload_companion/include/statuses.inc.php";
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(FILE);
        if std::env::var_os("PIWIGO_S3UPLOAD_WRITE_STATUSES").is_some() {
            std::fs::write(&path, plugin_constants()).unwrap();
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == plugin_constants(),
            "{FILE} differs from src/status.rs; write it again with PIWIGO_S3UPLOAD_WRITE_STATUSES=1"
        );
        assert_eq!(Status::FailedCode(0).as_str(), "failed_code_0");
        assert!(
            Status::FIXED
                .iter()
                .all(|s| !s.as_str().starts_with(Status::FAILED_CODE_PREFIX))
        );
    }

    #[test]
    fn on_disk_strings_stay_as_released() {
        assert_eq!(Status::Pending.as_str(), "pending");
        assert_eq!(
            Status::WaitingForDuplicate.as_str(),
            "waiting_for_duplicate"
        );
        assert_eq!(Status::FailedCode(403).as_str(), "failed_code_403");
        assert_eq!(Status::FailedCode(0).as_str(), "failed_code_0");
        assert_eq!(Status::FailedFileMissing.as_str(), "failed_file_missing");
        assert_eq!(
            Status::FailedFileUnreadable.as_str(),
            "failed_file_unreadable"
        );
        assert_eq!(Status::FailedFileChanged.as_str(), "failed_file_changed");
        assert_eq!(
            Status::FailedPathOutsideRoot.as_str(),
            "failed_path_outside_root"
        );
        assert_eq!(Status::FailedBadFileName.as_str(), "failed_bad_file_name");
        assert_eq!(
            Status::FailedInternalError.as_str(),
            "failed_internal_error"
        );
    }
}
