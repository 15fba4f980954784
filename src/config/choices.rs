//! Options with a fixed set of values, read as enums: a wrong value is
//! refused when the file is read, with the accepted ones listed, and `s3`
//! maps each to the SDK's type without parsing text again.

use serde::Deserialize;

/// `s3.storage_class`, spelt as S3 spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StorageClass {
    Standard,
    ReducedRedundancy,
    StandardIa,
    OnezoneIa,
    IntelligentTiering,
    Glacier,
    DeepArchive,
    GlacierIr,
    ExpressOnezone,
}

impl StorageClass {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Standard => "STANDARD",
            Self::ReducedRedundancy => "REDUCED_REDUNDANCY",
            Self::StandardIa => "STANDARD_IA",
            Self::OnezoneIa => "ONEZONE_IA",
            Self::IntelligentTiering => "INTELLIGENT_TIERING",
            Self::Glacier => "GLACIER",
            Self::DeepArchive => "DEEP_ARCHIVE",
            Self::GlacierIr => "GLACIER_IR",
            Self::ExpressOnezone => "EXPRESS_ONEZONE",
        }
    }
}

/// `s3.server_side_encryption`, spelt as S3 spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ServerSideEncryption {
    /// SSE-S3
    #[serde(rename = "AES256")]
    Aes256,
    /// SSE-KMS, with `sse_kms_key_id` or the account's default key
    #[serde(rename = "aws:kms")]
    AwsKms,
    /// SSE-KMS with a second, independent layer
    #[serde(rename = "aws:kms:dsse")]
    AwsKmsDsse,
}

impl ServerSideEncryption {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Aes256 => "AES256",
            Self::AwsKms => "aws:kms",
            Self::AwsKmsDsse => "aws:kms:dsse",
        }
    }

    /// Under a KMS key, `sse_kms_key_id` applies and an object's ETag is
    /// no longer the md5 of its bytes.
    pub fn uses_kms(self) -> bool {
        matches!(self, Self::AwsKms | Self::AwsKmsDsse)
    }
}

/// `s3.acl`: a canned ACL, spelt as S3 spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CannedAcl {
    Private,
    PublicRead,
    PublicReadWrite,
    AuthenticatedRead,
    AwsExecRead,
    BucketOwnerRead,
    BucketOwnerFullControl,
}

impl CannedAcl {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Private => "private",
            Self::PublicRead => "public-read",
            Self::PublicReadWrite => "public-read-write",
            Self::AuthenticatedRead => "authenticated-read",
            Self::AwsExecRead => "aws-exec-read",
            Self::BucketOwnerRead => "bucket-owner-read",
            Self::BucketOwnerFullControl => "bucket-owner-full-control",
        }
    }
}

/// `s3.key_format`: the plugin's key layouts (see `s3::keys`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyFormat {
    /// `beach.jpg`
    None,
    /// `20130331013511-beach.jpg`
    #[default]
    File,
    /// `20130331013511-5d467604-beach.jpg`
    FileUnique,
    /// `upload/2013/03/31/beach.jpg`
    Path,
    /// `upload/2013/03/31/20130331013511-beach.jpg`
    PathAndFile,
    /// `upload/2013/03/31/20130331013511-5d467604-beach.jpg`
    PathAndFileUnique,
}

impl KeyFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::File => "file",
            Self::FileUnique => "file_unique",
            Self::Path => "path",
            Self::PathAndFile => "path_and_file",
            Self::PathAndFileUnique => "path_and_file_unique",
        }
    }
}

/// S3's limit on a key, in UTF-8 bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// `s3.checksum`: what the server checks each part of a multipart upload
/// against. Single PUTs always carry Content-MD5: the md5 is taken anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Checksum {
    /// A probe at start: CRC32C where the server refuses a part whose
    /// bytes do not match it, Content-MD5 otherwise.
    #[default]
    Auto,
    ContentMd5,
    Crc32c,
}

impl Checksum {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::ContentMd5 => "content-md5",
            Self::Crc32c => "crc32c",
        }
    }
}

/// `s3.honours_if_none_match`: `"auto"` (a probe at start decides), or
/// `true` / `false` as written by configs from before the probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IfNoneMatch {
    #[default]
    Auto,
    Honoured,
    Ignored,
}

impl<'de> Deserialize<'de> for IfNoneMatch {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Flag(bool),
            Word(String),
        }
        match Written::deserialize(d) {
            Ok(Written::Flag(true)) => Ok(Self::Honoured),
            Ok(Written::Flag(false)) => Ok(Self::Ignored),
            Ok(Written::Word(w)) if w == "auto" => Ok(Self::Auto),
            _ => Err(serde::de::Error::custom(
                "must be \"auto\" (a probe at start decides), true or false",
            )),
        }
    }
}
