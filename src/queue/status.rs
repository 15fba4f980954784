//! Every state a queued photo can be in, and the one failure type every
//! part of the pipeline builds where its error happens. The strings are
//! what the database, `status`, `/metrics` and the Piwigo plugin show:
//! they never change once released.

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
            Self::FailedCode(code) => return Cow::Owned(format!("failed_code_{code}")),
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

#[cfg(test)]
mod tests {
    use super::*;

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
