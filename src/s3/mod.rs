//! The bucket side: one client builder, object keys, uploads and the
//! classification of S3's answers.

pub mod error;
mod file_body;
pub use file_body::Sent;
pub mod keys;
pub mod meta;
mod multipart;
pub mod outage;
pub mod probe;
pub mod pushback;
pub mod read;
pub mod stale;
mod stall;
pub mod stream;
pub mod throttle;
mod trailer;
pub mod upload;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{
    Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::types::{ObjectCannedAcl, ServerSideEncryption, StorageClass};

use crate::config::{self, S3Config, UploadConfig};
use crate::digest::PartCheck;
use crate::queue::item::Item;
pub use error::S3Error;
use keys::{KeyError, ObjectKey};

/// Characters kept as they are in links: unreserved ones and `/`.
const KEY_IN_URL: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// A configured bucket: the client and everything that decides where a
/// photo goes.
#[derive(Debug, Clone)]
pub struct Target {
    client: Client,
    pub bucket: String,
    prefix: String,
    key_format: keys::KeyFormat,
    url_base: String,
    pub multipart_threshold: u64,
    pub part_size: u64,
    /// Parts of one file in flight at once.
    part_concurrency: usize,
    /// Shared by every upload through this target.
    limiter: Option<Arc<throttle::Limiter>>,
    storage_class: Option<StorageClass>,
    encryption: Option<ServerSideEncryption>,
    kms_key_id: Option<String>,
    acl: Option<ObjectCannedAcl>,
    /// What the settings and the start-up probes decided, shared by every
    /// clone: the daemon uploads while the probes run.
    modes: Arc<Modes>,
    /// How long a look at the file after a failed send may take (a hung
    /// network mount answers no `stat()` either).
    read_stall: Duration,
    /// Counts the bytes the connections take from file bodies.
    sent: Sent,
}

/// How uploads through a target guard against overwrites and check their
/// parts. Until the probes answer, the choices every server is safe with:
/// a HEAD before each upload, Content-MD5 on each part.
#[derive(Debug)]
struct Modes {
    /// Skip the HEAD: the PUT's `If-None-Match: *` is enough.
    honours_if_none_match: AtomicBool,
    /// Parts are checked by CRC32C, not Content-MD5.
    crc32c_parts: AtomicBool,
}

impl Target {
    /// Whether the HEAD before each upload is skipped: the setting says the
    /// server honours `If-None-Match: *`, or the probe found it does
    /// ([`Target::settle_if_none_match`]).
    pub fn honours_if_none_match(&self) -> bool {
        self.modes.honours_if_none_match.load(Ordering::Relaxed)
    }

    /// What each part of a multipart upload is checked against:
    /// Content-MD5 until the setting or the probe says the server checks
    /// a CRC32C ([`Target::settle_checksum`]). A file keeps the check it
    /// was hashed for.
    pub fn part_check(&self) -> PartCheck {
        match self.modes.crc32c_parts.load(Ordering::Relaxed) {
            true => PartCheck::Crc32c,
            false => PartCheck::ContentMd5,
        }
    }

    fn set_honours_if_none_match(&self, honoured: bool) {
        self.modes
            .honours_if_none_match
            .store(honoured, Ordering::Relaxed);
    }

    fn set_part_check(&self, check: PartCheck) {
        self.modes
            .crc32c_parts
            .store(check == PartCheck::Crc32c, Ordering::Relaxed);
    }

    pub async fn new(s3: &S3Config, upload: &UploadConfig) -> Self {
        Self {
            client: build_client(s3).await,
            bucket: s3.bucket.clone(),
            prefix: s3.prefix.clone(),
            key_format: s3.key_format,
            url_base: url_base(s3),
            multipart_threshold: upload.multipart_threshold,
            part_size: upload.part_size,
            part_concurrency: upload.part_concurrency,
            limiter: upload
                .max_bandwidth
                .map(|rate| Arc::new(throttle::Limiter::new(rate))),
            storage_class: s3.storage_class.map(StorageClass::from),
            encryption: s3.server_side_encryption.map(ServerSideEncryption::from),
            kms_key_id: s3.sse_kms_key_id.clone(),
            acl: s3.acl.map(ObjectCannedAcl::from),
            modes: Arc::new(Modes {
                honours_if_none_match: AtomicBool::new(
                    s3.honours_if_none_match == config::IfNoneMatch::Honoured,
                ),
                crc32c_parts: AtomicBool::new(false),
            }),
            read_stall: upload.read_stall_timeout,
            sent: Sent::default(),
        }
    }

    /// Calls `on` for every answer, retried ones included, that asks the
    /// client to slow down.
    pub fn count_slow_downs(&mut self, on: pushback::OnSlowDown) {
        self.client = pushback::counting(&self.client, on);
    }

    /// Counts in `sent` every byte a connection takes from a file body.
    pub fn count_sent(&mut self, sent: Sent) {
        self.sent = sent;
    }

    pub fn key_for(&self, path: &str, file: &str) -> Result<ObjectKey, KeyError> {
        ObjectKey::for_image(&self.prefix, self.key_format, path, file)
    }

    /// The key of a queued item: the photo's own, or a format's next to it.
    pub fn key_for_item(
        &self,
        item: &Item,
        image: &crate::piwigo::Image,
    ) -> Result<ObjectKey, KeyError> {
        let photo = self.key_for(&image.path, &image.file)?;
        match item {
            Item::Photo => Ok(photo),
            Item::Format { ext, .. } => ObjectKey::for_format(&photo, ext),
        }
    }

    /// The folder every later version of photo `image_id` (and of its
    /// formats) lies in: see [`ObjectKey::for_version`].
    pub fn versions_of(&self, image_id: u32) -> String {
        format!("{}{}/{image_id}/", self.prefix, keys::VERSIONS_DIR)
    }

    /// The key of a new version of `item`, its bytes hashed to `md5`.
    pub fn key_for_version(
        &self,
        item: &Item,
        image_id: u32,
        image: &crate::piwigo::Image,
        version: u32,
        md5: &str,
    ) -> Result<ObjectKey, KeyError> {
        let current = self.key_for_item(item, image)?;
        ObjectKey::for_version(
            &self.prefix,
            &current,
            image_id,
            item.format_id(),
            version,
            md5,
        )
    }

    /// What the queue reserves for `key`: bucket and key in a fixed
    /// width (keys are too long for a unique index).
    pub fn reservation_for(&self, key: &str) -> String {
        crate::digest::md5_hex_of(&[&self.bucket, key])
    }

    /// The link `status` shows for an object.
    pub fn url_for(&self, key: &str) -> String {
        format!(
            "{}{}",
            self.url_base,
            percent_encoding::utf8_percent_encode(key, KEY_IN_URL)
        )
    }

    /// The key prefix and layout (`s3.prefix`, `s3.key_format`), for reports.
    pub fn layout(&self) -> (&str, &'static str) {
        (&self.prefix, self.key_format.as_str())
    }

    /// HeadBucket: are the bucket, region and keys right?
    pub async fn check_bucket(&self) -> Result<(), S3Error> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| S3Error::from_sdk("head bucket", &self.bucket, e))
    }
}

/// Identifies the S3 settings that decide success or failure; when it
/// changes, earlier failures are retried at once. A digest, so the secret
/// itself is never stored.
pub fn settings_fingerprint(s3: &S3Config) -> String {
    crate::digest::md5_hex_of(&[
        s3.bucket.as_str(),
        s3.region.as_str(),
        s3.endpoint.as_deref().unwrap_or(""),
        if s3.force_path_style { "path" } else { "vhost" },
        s3.access_key_id.as_ref().map(|s| s.expose()).unwrap_or(""),
        s3.secret_access_key
            .as_ref()
            .map(|s| s.expose())
            .unwrap_or(""),
        s3.session_token.as_ref().map(|s| s.expose()).unwrap_or(""),
        s3.prefix.as_str(),
        s3.key_format.as_str(),
        // Upload options: S3 may refuse one for good (a 400 that waits
        // for a change), and correcting it must retry those photos.
        s3.storage_class.map_or("", config::StorageClass::as_str),
        s3.server_side_encryption
            .map_or("", config::ServerSideEncryption::as_str),
        s3.sse_kms_key_id.as_deref().unwrap_or(""),
        s3.acl.map_or("", config::CannedAcl::as_str),
    ])
}

impl From<config::StorageClass> for StorageClass {
    fn from(class: config::StorageClass) -> Self {
        use config::StorageClass as C;
        match class {
            C::Standard => Self::Standard,
            C::ReducedRedundancy => Self::ReducedRedundancy,
            C::StandardIa => Self::StandardIa,
            C::OnezoneIa => Self::OnezoneIa,
            C::IntelligentTiering => Self::IntelligentTiering,
            C::Glacier => Self::Glacier,
            C::DeepArchive => Self::DeepArchive,
            C::GlacierIr => Self::GlacierIr,
            C::ExpressOnezone => Self::ExpressOnezone,
        }
    }
}

impl From<config::ServerSideEncryption> for ServerSideEncryption {
    fn from(encryption: config::ServerSideEncryption) -> Self {
        use config::ServerSideEncryption as E;
        match encryption {
            E::Aes256 => Self::Aes256,
            E::AwsKms => Self::AwsKms,
            E::AwsKmsDsse => Self::AwsKmsDsse,
        }
    }
}

impl From<config::CannedAcl> for ObjectCannedAcl {
    fn from(acl: config::CannedAcl) -> Self {
        use config::CannedAcl as A;
        match acl {
            A::Private => Self::Private,
            A::PublicRead => Self::PublicRead,
            A::PublicReadWrite => Self::PublicReadWrite,
            A::AuthenticatedRead => Self::AuthenticatedRead,
            A::AwsExecRead => Self::AwsExecRead,
            A::BucketOwnerRead => Self::BucketOwnerRead,
            A::BucketOwnerFullControl => Self::BucketOwnerFullControl,
        }
    }
}

/// The one HTTPS client: rustls on ring, the TLS stack the database
/// connection uses too. The SDK is built without a default client, so
/// every S3 client must be given this one.
pub fn https_client() -> aws_sdk_s3::config::SharedHttpClient {
    client_trusting(aws_smithy_http_client::tls::TrustStore::default())
}

/// The client for an `http://` endpoint with configured keys: it never
/// speaks TLS (every request goes to the endpoint, and no credential
/// service is asked), so it trusts no certificate, and the system's root
/// certificates are not read and parsed at each start, a few ms of a
/// short cron run.
fn plain_http_client() -> aws_sdk_s3::config::SharedHttpClient {
    client_trusting(aws_smithy_http_client::tls::TrustStore::empty())
}

fn client_trusting(
    roots: aws_smithy_http_client::tls::TrustStore,
) -> aws_sdk_s3::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{Provider, TlsContext, rustls_provider::CryptoMode};
    let builder =
        aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring));
    match TlsContext::builder().with_trust_store(roots).build() {
        Ok(context) => builder.tls_context(context).build_https(),
        // It only stores the trust store and never fails; should it ever,
        // the default context trusts the system's roots, which works.
        Err(_) => builder.build_https(),
    }
}

/// Whether `endpoint` is plain HTTP.
fn is_plain_http(endpoint: Option<&str>) -> bool {
    endpoint
        .and_then(|e| e.get(..7))
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("http://"))
}

async fn build_client(s3: &S3Config) -> Client {
    let region = Region::new(s3.region.clone());
    let builder = match (&s3.access_key_id, &s3.secret_access_key) {
        // Configured keys need nothing from the AWS default chain: skipping
        // it keeps `~/.aws` (often unreadable for a service user) unread.
        (Some(id), Some(secret)) => aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .http_client(match is_plain_http(s3.endpoint.as_deref()) {
                true => plain_http_client(),
                false => https_client(),
            })
            .region(region)
            .credentials_provider(Credentials::new(
                id.expose(),
                secret.expose(),
                s3.session_token.as_ref().map(|t| t.expose().to_owned()),
                None,
                "piwigo-s3upload-config",
            )),
        _ => {
            // The chain may ask STS or SSO over HTTPS whatever the
            // endpoint: the client that trusts the system's roots.
            let shared = aws_config::defaults(BehaviorVersion::latest())
                .http_client(https_client())
                .region(region)
                .load()
                .await;
            aws_sdk_s3::config::Builder::from(&shared)
        }
    };
    let mut builder = builder
        .force_path_style(s3.force_path_style)
        // S3-compatible servers reject the SDK's default checksum trailers;
        // integrity comes from Content-MD5, which every server checks.
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(10))
                .build(),
        );
    if let Some(endpoint) = &s3.endpoint {
        builder = builder.endpoint_url(endpoint);
    }
    Client::from_conf(builder.build())
}

fn url_base(s3: &S3Config) -> String {
    if let Some(base) = &s3.public_url {
        return format!("{}/", base.trim_end_matches('/'));
    }
    match s3.endpoint.as_deref().and_then(|e| url::Url::parse(e).ok()) {
        Some(ep) if s3.force_path_style => {
            format!("{}/{}/", ep.as_str().trim_end_matches('/'), s3.bucket)
        }
        Some(ep) => {
            let host = ep.host_str().unwrap_or_default();
            let port = ep.port().map(|p| format!(":{p}")).unwrap_or_default();
            format!("{}://{}.{host}{port}/", ep.scheme(), s3.bucket)
        }
        None => format!("https://{}.s3.{}.amazonaws.com/", s3.bucket, s3.region),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_http_endpoint_gets_the_client_without_roots() {
        assert!(is_plain_http(Some("http://127.0.0.1:9000")));
        assert!(is_plain_http(Some("HTTP://garage:3900")));
        assert!(!is_plain_http(Some("https://s3.example.com")));
        assert!(!is_plain_http(Some("http")));
        assert!(!is_plain_http(None));
    }

    fn s3(endpoint: Option<&str>, path_style: bool) -> S3Config {
        S3Config {
            bucket: "pics".into(),
            region_in_file: None,
            region: "eu-west-3".into(),
            endpoint: endpoint.map(str::to_owned),
            force_path_style: path_style,
            access_key_id: None,
            secret_access_key: None,
            access_key_id_file: None,
            secret_access_key_file: None,
            session_token: None,
            prefix: "photos/".into(),
            key_format: keys::KeyFormat::File,
            public_url: None,
            storage_class: None,
            server_side_encryption: None,
            sse_kms_key_id: None,
            acl: None,
            honours_if_none_match: config::IfNoneMatch::Auto,
            checksum: config::Checksum::Auto,
        }
    }

    #[test]
    fn urls_for_aws_and_compatible_servers() {
        assert_eq!(
            url_base(&s3(None, false)),
            "https://pics.s3.eu-west-3.amazonaws.com/"
        );
        assert_eq!(
            url_base(&s3(Some("http://127.0.0.1:9000"), true)),
            "http://127.0.0.1:9000/pics/"
        );
        assert_eq!(
            url_base(&s3(Some("https://s3.example.net"), false)),
            "https://pics.s3.example.net/"
        );
        let mut c = s3(None, false);
        c.public_url = Some("https://cdn.example.net/".into());
        assert_eq!(url_base(&c), "https://cdn.example.net/");
    }

    #[test]
    fn keys_are_percent_encoded_in_urls() {
        let encoded =
            percent_encoding::utf8_percent_encode("photos/a b+c#d%é.jpg", KEY_IN_URL).to_string();
        assert_eq!(encoded, "photos/a%20b%2Bc%23d%25%C3%A9.jpg");
    }

    #[test]
    fn fingerprint_changes_with_keys_and_hides_them() {
        let mut a = s3(None, false);
        let before = settings_fingerprint(&a);
        a.secret_access_key = Some(crate::config::Secret::new("topsecretvalue"));
        let after = settings_fingerprint(&a);
        assert_ne!(before, after);
        assert!(!after.contains("topsecret"));
        assert_eq!(after.len(), 32);
    }

    /// Every value serde accepts for `T`, read from the list its error
    /// for a wrong value gives.
    fn every<T: serde::de::DeserializeOwned>() -> Vec<(String, T)> {
        use serde::de::{IntoDeserializer, value::Error};
        let read = |text: &str| T::deserialize(IntoDeserializer::<Error>::into_deserializer(text));
        let err = read("?").err().map(|e| e.to_string()).unwrap_or_default();
        let (_, list) = err.split_once("expected one of ").unwrap_or_default();
        list.split(", ")
            .map(|v| v.trim_matches('`').to_owned())
            .map(|v| {
                let value = read(&v).unwrap();
                (v, value)
            })
            .collect()
    }

    #[test]
    fn upload_options_reach_s3_as_written() {
        let classes = every::<config::StorageClass>();
        assert_eq!(classes.len(), 9);
        for (text, class) in classes {
            assert_eq!(
                (class.as_str(), StorageClass::from(class).as_str()),
                (&*text, &*text)
            );
        }
        let encryptions = every::<config::ServerSideEncryption>();
        assert_eq!(encryptions.len(), 3);
        for (text, sse) in encryptions {
            assert_eq!(
                (sse.as_str(), ServerSideEncryption::from(sse).as_str()),
                (&*text, &*text)
            );
        }
        let acls = every::<config::CannedAcl>();
        assert_eq!(acls.len(), 7);
        for (text, acl) in acls {
            assert_eq!(
                (acl.as_str(), ObjectCannedAcl::from(acl).as_str()),
                (&*text, &*text)
            );
        }
    }

    /// The fingerprint is stored with every failure: a change in how it is
    /// computed would retry every failed photo on upgrade.
    #[test]
    fn fingerprint_is_stable_across_releases() {
        let parse = |extra: &str| {
            let text = format!(
                "[piwigo]\ndatabase_url = \"mysql://u:p@db:3306/piwigo\"\nroot = \"/srv/piwigo\"\n\
                 [s3]\nbucket = \"pics\"\nregion = \"eu-west-3\"\nendpoint = \"http://127.0.0.1:9000\"\n\
                 force_path_style = true\naccess_key_id = \"AKIAEXAMPLE\"\n\
                 secret_access_key = \"example-secret\"\nprefix = \"photos\"\n\
                 key_format = \"path_and_file\"\n{extra}"
            );
            // Resolved against an empty environment: the fingerprint must
            // not depend on the machine the test runs on.
            crate::config::Config::parse(&text, std::path::Path::new("t.toml"))
                .and_then(|c| c.resolve(&crate::config::Environment::default()))
                .unwrap()
                .s3
        };
        assert_eq!(
            settings_fingerprint(&parse("")),
            "d45369becc4655fd272c0658a053b1db"
        );
        let all = parse(
            "storage_class = \"STANDARD_IA\"\nserver_side_encryption = \"aws:kms\"\n\
             sse_kms_key_id = \"key-1\"\nacl = \"bucket-owner-full-control\"\n",
        );
        assert_eq!(
            settings_fingerprint(&all),
            "3bb89d92fd7d56fb2e016c4d14773eb1"
        );
    }
}
