//! Object keys built from Piwigo's `images.path` and `images.file`.
//!
//! Input: UTF-8 text of up to four lines, `format`, raw `prefix`, `path`,
//! `file` (the last field may itself hold newlines). `format` is one of the
//! six `KeyFormat` names, or any other text, which picks a format from its
//! bytes.
//!
//! Invariants: no panic; on `Ok`, the key starts with the normalised prefix,
//! the part after it is not empty and has no empty, `.` or `..` segment, the
//! key has no NUL, and the Content-Type is not empty. `decode_piwigo_html`
//! never panics, never grows its input, and undoes `htmlspecialchars`.
//!
//! Raw prefixes with control characters are left out: config validation
//! refuses them (`s3.prefix`), so no key is ever built from one.

#![no_main]

use libfuzzer_sys::fuzz_target;
use piwigo_s3upload::config::normalize_prefix;
use piwigo_s3upload::piwigo::{decode_piwigo_html, html_escape};
use piwigo_s3upload::s3::keys::{KeyFormat, ObjectKey};

const FORMATS: [KeyFormat; 6] = [
    KeyFormat::None,
    KeyFormat::File,
    KeyFormat::FileUnique,
    KeyFormat::Path,
    KeyFormat::PathAndFile,
    KeyFormat::PathAndFileUnique,
];

fn pick_format(name: &str) -> KeyFormat {
    FORMATS
        .into_iter()
        .find(|f| f.as_str() == name.trim())
        .unwrap_or_else(|| {
            let sum = name.bytes().fold(0usize, |a, b| a.wrapping_add(b.into()));
            FORMATS[sum % FORMATS.len()]
        })
}

fn check_decode(text: &str) {
    let decoded = decode_piwigo_html(text);
    assert!(
        decoded.len() <= text.len(),
        "decoding grew {text:?} into {decoded:?}"
    );
    let encoded = html_escape(text);
    let back = decode_piwigo_html(&encoded);
    assert_eq!(
        back, text,
        "decode(htmlspecialchars(x)) != x via {encoded:?}"
    );
}

fn check_key(raw_prefix: &str, format: KeyFormat, path: &str, file: &str) {
    if raw_prefix.chars().any(char::is_control) {
        return;
    }
    let prefix = normalize_prefix(raw_prefix);
    assert!(
        prefix.is_empty() || (prefix.ends_with('/') && !prefix.ends_with("//")),
        "normalize_prefix({raw_prefix:?}) = {prefix:?}"
    );
    let Ok(k) = ObjectKey::for_image(&prefix, format, path, file) else {
        return;
    };
    let ctx = || {
        format!(
            "format={} prefix={prefix:?} path={path:?} file={file:?} key={:?}",
            format.as_str(),
            k.key
        )
    };
    assert!(
        k.key.starts_with(&prefix),
        "key leaves the prefix: {}",
        ctx()
    );
    assert!(!k.key.contains('\0'), "key holds a NUL: {}", ctx());
    let rest = &k.key[prefix.len()..];
    assert!(!rest.is_empty(), "nothing after the prefix: {}", ctx());
    for segment in rest.split('/') {
        assert!(!segment.is_empty(), "empty key segment: {}", ctx());
        assert!(segment != "..", "`..` key segment: {}", ctx());
        assert!(segment != ".", "`.` key segment: {}", ctx());
    }
    assert!(!k.content_type.is_empty(), "empty Content-Type: {}", ctx());
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut fields = text.splitn(4, '\n');
    let format = pick_format(fields.next().unwrap_or(""));
    let prefix = fields.next().unwrap_or("");
    let path = fields.next().unwrap_or("");
    let file = fields.next().unwrap_or("");

    check_decode(file);
    check_key(prefix, format, path, file);
});
