//! S3 failures, classified once where they happen: the HTTP status that
//! becomes `failed_code_N`, the S3 error code, and a hint naming the fix.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::status::{Failure, Retry, Status};

/// S3's 400 codes that no retry can fix: the key, the object or an upload
/// option is refused as such. They wait until the photo or the S3 settings
/// change (or `retry`). Other 400s, such as `RequestTimeout`,
/// `IncompleteBody` or `ExpiredToken`, pass and are retried.
pub const PERMANENT_400: [&str; 9] = [
    "KeyTooLongError",
    "InvalidArgument",
    "InvalidStorageClass",
    "InvalidEncryptionAlgorithmError",
    "InvalidBucketName",
    "EntityTooLarge",
    "MetadataTooLarge",
    "InvalidObjectName",
    "AccessControlListNotSupported",
];

#[derive(Debug, Clone, thiserror::Error)]
#[error("s3: {op} {target}: {}{}: {message} ({})", status_text(*.http_status), code.as_deref().map(|c| format!(" {c}")).unwrap_or_default(), self.hint())]
pub struct S3Error {
    pub op: &'static str,
    pub target: String,
    /// The HTTP status S3 answered, 0 when no answer came.
    pub http_status: u16,
    pub code: Option<String>,
    pub message: String,
}

fn status_text(status: u16) -> String {
    if status == 0 {
        "no HTTP answer".into()
    } else {
        format!("HTTP {status}")
    }
}

impl S3Error {
    /// A 404 for the object itself: the key is free. A missing bucket is a
    /// 404 too, but a configuration error, never "no object".
    pub fn is_missing_object(&self) -> bool {
        self.http_status == 404 && self.code.as_deref() != Some("NoSuchBucket")
    }

    pub fn from_sdk<E>(op: &'static str, target: &str, err: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let (http_status, code, message) = match &err {
            SdkError::ServiceError(se) => (
                se.raw().status().as_u16(),
                se.err().code().map(str::to_owned),
                // HEAD answers carry no body, hence no message: the status
                // and the hint say enough, a dump of the response does not.
                se.err()
                    .message()
                    .map(str::to_owned)
                    .unwrap_or_else(|| "S3 gave no error message".into()),
            ),
            SdkError::ResponseError(re) => (
                re.raw().status().as_u16(),
                None,
                "the answer could not be read".into(),
            ),
            SdkError::TimeoutError(_) => (0, None, "timed out".into()),
            _ => (0, None, DisplayErrorContext(&err).to_string()),
        };
        Self {
            op,
            target: target.to_owned(),
            http_status,
            code,
            message,
        }
    }

    /// The queue status the plugin used for this failure.
    pub fn status(&self) -> Status {
        Status::FailedCode(self.http_status)
    }

    /// Whether retrying the same request could ever succeed. A 400 with
    /// one of [`PERMANENT_400`] cannot: the request itself is wrong for
    /// this photo or these settings. Everything else (no answer, 5xx,
    /// throttling, and 403/404/301, which a corrected config or a created
    /// bucket fixes) is retried with backoff.
    pub fn is_permanent(&self) -> bool {
        self.http_status == 400
            && self
                .code
                .as_deref()
                .is_some_and(|c| PERMANENT_400.contains(&c))
    }

    /// The queue's record of this failure, with its retry policy.
    pub fn failure(&self, message: String) -> Failure {
        let retry = if self.is_permanent() {
            Retry::UntilChanged
        } else {
            Retry::Backoff
        };
        Failure::new(self.status(), message, retry)
    }

    /// Whether S3 answered and said no (keys, policy, bucket), rather than
    /// not answering or failing on its side (no answer, 5xx).
    pub fn is_refusal(&self) -> bool {
        self.http_status != 0 && self.http_status < 500
    }

    /// The status and S3's error code alone ("HTTP 403 AccessDenied"):
    /// safe to show anywhere, since neither can quote a key.
    pub fn summary(&self) -> String {
        let code = self
            .code
            .as_deref()
            .map(|c| format!(" {c}"))
            .unwrap_or_default();
        format!("{}{code}", status_text(self.http_status))
    }

    /// S3 asked us to slow down (429, or 503 SlowDown): the server is
    /// there and busy, which the adaptive figure answers by halving.
    pub fn is_slow_down(&self) -> bool {
        self.http_status == 429
            || (self.http_status == 503 && self.code.as_deref() == Some("SlowDown"))
    }

    /// The object exists already (a conditional PUT lost).
    pub fn is_precondition_failed(&self) -> bool {
        self.http_status == 412 || self.code.as_deref() == Some("PreconditionFailed")
    }

    /// S3 refused the bytes for not matching Content-MD5: the file changed
    /// after we hashed it.
    pub fn is_bad_digest(&self) -> bool {
        matches!(self.code.as_deref(), Some("BadDigest" | "InvalidDigest"))
    }

    /// What to change, by status: this is what the admin reads.
    pub fn hint(&self) -> &'static str {
        match (self.http_status, self.code.as_deref()) {
            (0, _) => {
                "no answer from S3: check s3.endpoint, DNS, the network and TLS; it is retried"
            }
            (301 | 307, _) | (_, Some("PermanentRedirect" | "AuthorizationHeaderMalformed")) => {
                "the bucket is in another region: set s3.region to the bucket's region"
            }
            (400, Some("BadDigest" | "InvalidDigest")) => {
                "the file changed while it was read; it is retried"
            }
            (403, Some("InvalidAccessKeyId")) => {
                "the access key is unknown: check s3.access_key_id"
            }
            (403, Some("SignatureDoesNotMatch")) => {
                "the secret does not match the key: check s3.secret_access_key"
            }
            (403, _) => {
                "access denied: check the keys and that their policy allows s3:PutObject, s3:GetObject and s3:ListBucket on the bucket"
            }
            // Not the bucket: the upload's parts were thrown away under us
            // (a lifecycle rule, another program); the next attempt starts
            // a new one.
            (404, Some("NoSuchUpload")) => {
                "the multipart upload is gone from the server (aborted by a bucket lifecycle rule or another program); the file is sent again, from its first part, with backoff"
            }
            (404, _) => "no such bucket: check s3.bucket (and s3.endpoint)",
            (412, _) => "an object exists at this key already",
            (400, Some("KeyTooLongError")) => {
                "the key is too long: shorten s3.prefix or the photo's name; not retried until either changes"
            }
            (400, Some(c)) if PERMANENT_400.contains(&c) => {
                "S3 refuses this request as such: check the upload options in [s3] (storage_class, acl, encryption); not retried until the settings or the photo change"
            }
            (429 | 503, _) => "S3 asks to slow down; it is retried with backoff",
            (500..=599, _) => "S3 failed on its side; it is retried with backoff",
            _ => "see the S3 error code; it is retried with backoff",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(status: u16, code: Option<&str>) -> S3Error {
        S3Error {
            op: "put object",
            target: "photos/a.jpg".into(),
            http_status: status,
            code: code.map(str::to_owned),
            message: "m".into(),
        }
    }

    #[test]
    fn statuses_follow_the_plugin() {
        assert_eq!(err(403, None).status().as_str(), "failed_code_403");
        assert_eq!(err(0, None).status().as_str(), "failed_code_0");
        assert_eq!(
            err(301, Some("PermanentRedirect")).status().as_str(),
            "failed_code_301"
        );
    }

    #[test]
    fn only_hopeless_400s_wait_for_a_change() {
        let f = |status, code| err(status, code).failure(String::new()).retry;
        assert_eq!(f(400, Some("KeyTooLongError")), Retry::UntilChanged);
        assert_eq!(f(400, Some("InvalidStorageClass")), Retry::UntilChanged);
        assert_eq!(f(400, Some("RequestTimeout")), Retry::Backoff);
        assert_eq!(f(400, None), Retry::Backoff);
        assert_eq!(f(403, Some("InvalidArgument")), Retry::Backoff);
        assert_eq!(f(0, None), Retry::Backoff);
        assert_eq!(f(503, Some("SlowDown")), Retry::Backoff);
    }

    #[test]
    fn messages_name_the_operation_object_and_fix() {
        let text = err(403, Some("SignatureDoesNotMatch")).to_string();
        assert!(
            text.starts_with("s3: put object photos/a.jpg: HTTP 403 SignatureDoesNotMatch"),
            "{text}"
        );
        assert!(text.contains("s3.secret_access_key"), "{text}");
        assert!(
            err(404, Some("NoSuchBucket"))
                .to_string()
                .contains("s3.bucket")
        );
        let gone = err(404, Some("NoSuchUpload")).to_string();
        assert!(gone.contains("multipart upload is gone"), "{gone}");
        assert!(!gone.contains("s3.bucket"), "{gone}");
        assert!(err(301, None).to_string().contains("s3.region"));
        assert!(err(0, None).to_string().contains("no HTTP answer"));
    }

    #[test]
    fn special_cases_are_recognised() {
        assert!(err(412, Some("PreconditionFailed")).is_precondition_failed());
        assert!(err(400, Some("BadDigest")).is_bad_digest());
        assert!(!err(400, Some("InvalidRequest")).is_bad_digest());
    }
}
