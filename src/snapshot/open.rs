//! The reading side of a snapshot object: the body streamed from the
//! bucket, decrypted with the admin's age identity, decompressed, and
//! cut into SQL statements, on the blocking pool, a bounded number in
//! flight. The whole object is never in memory.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::dump::END_MARKER;
use crate::s3::{S3Error, Target};

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    S3(#[from] S3Error),
    #[error(
        "snapshot: cannot read the age identity file {path}: {reason} (pass the file age-keygen wrote, with --identity FILE)"
    )]
    Identity { path: PathBuf, reason: String },
    #[error(
        "snapshot: {key} is encrypted; pass the private key matching snapshots.recipient with --identity FILE"
    )]
    NeedsIdentity { key: String },
    #[error(
        "snapshot: {key} cannot be decrypted with the identity given: {reason} (it was encrypted to another public key: pass the private key matching the snapshots.recipient in use then)"
    )]
    WrongKey { key: String, reason: String },
    #[error(
        "snapshot: {key} is damaged or truncated: {reason}; choose another snapshot (--snapshot NAME; `snapshot --list` lists them)"
    )]
    Damaged { key: String, reason: String },
}

pub type Identities = std::sync::Arc<Vec<Box<dyn age::Identity + Send + Sync>>>;

/// The identities in an `age-keygen` file.
pub fn identities(path: &Path) -> Result<Identities, OpenError> {
    let err = |reason: String| OpenError::Identity {
        path: path.to_owned(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let ids: Vec<Box<dyn age::Identity + Send + Sync>> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            l.parse::<age::x25519::Identity>()
                .map(|i| Box::new(i) as Box<dyn age::Identity + Send + Sync>)
                .map_err(|e| err(format!("a line is not an age private key: {e}")))
        })
        .collect::<Result<_, _>>()?;
    if ids.is_empty() {
        return Err(err("no AGE-SECRET-KEY line in it".into()));
    }
    Ok(std::sync::Arc::new(ids))
}

/// A sync reader over an object's body, fed by an async task through a
/// small channel.
struct BodyReader {
    rx: std::sync::mpsc::Receiver<Result<Bytes, String>>,
    current: Bytes,
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => self.current = chunk,
                Ok(Err(e)) => return Err(std::io::Error::other(e)),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

async fn body(target: &Target, key: &str) -> Result<BodyReader, OpenError> {
    let mut stream = target.get_stream(key).await?;
    let (tx, rx) = std::sync::mpsc::sync_channel(4);
    tokio::spawn(async move {
        loop {
            let next = match stream.try_next().await {
                Ok(Some(chunk)) => Ok(chunk),
                Ok(None) => return,
                Err(e) => Err(e.to_string()),
            };
            let failed = next.is_err();
            // The reader blocks on a full channel: wait off the runtime.
            let tx = tx.clone();
            let sent = tokio::task::spawn_blocking(move || tx.send(next).is_ok()).await;
            if failed || !matches!(sent, Ok(true)) {
                return;
            }
        }
    });
    Ok(BodyReader {
        rx,
        current: Bytes::new(),
    })
}

/// A plain object's bytes (a `local/` file): decrypted when encrypted.
pub async fn read_whole(
    target: &Target,
    key: &str,
    encrypted: bool,
    ids: Option<Identities>,
) -> Result<Vec<u8>, OpenError> {
    let reader = body(target, key).await?;
    let key = key.to_owned();
    let read = tokio::task::spawn_blocking(move || {
        let refs: Option<Vec<&(dyn age::Identity + Send + Sync)>> =
            ids.as_ref().map(|v| v.iter().map(AsRef::as_ref).collect());
        let mut out = Vec::new();
        let mut r = decrypting(reader, &key, encrypted, refs.as_deref())?;
        r.read_to_end(&mut out).map_err(|e| OpenError::Damaged {
            key: key.clone(),
            reason: e.to_string(),
        })?;
        Ok(out)
    });
    read.await.unwrap_or_else(|e| {
        Err(OpenError::Damaged {
            key: String::new(),
            reason: e.to_string(),
        })
    })
}

fn decrypting<'a, R: Read + Send + 'a>(
    reader: R,
    key: &str,
    encrypted: bool,
    ids: Option<&[&(dyn age::Identity + Send + Sync)]>,
) -> Result<Box<dyn Read + Send + 'a>, OpenError> {
    if !encrypted {
        return Ok(Box::new(reader));
    }
    let ids = ids.ok_or_else(|| OpenError::NeedsIdentity {
        key: key.to_owned(),
    })?;
    let decryptor = age::Decryptor::new(reader).map_err(|e| OpenError::Damaged {
        key: key.to_owned(),
        reason: format!("not an age file: {e}"),
    })?;
    let plain = decryptor
        .decrypt(ids.iter().map(|i| *i as &dyn age::Identity))
        .map_err(|e| match e {
            age::DecryptError::NoMatchingKeys => OpenError::WrongKey {
                key: key.to_owned(),
                reason: e.to_string(),
            },
            other => OpenError::Damaged {
                key: key.to_owned(),
                reason: other.to_string(),
            },
        })?;
    Ok(Box::new(plain))
}

/// What the statement channel carries.
pub type Statement = Result<String, OpenError>;

/// Opens the dump and starts cutting it into statements. The first item
/// is an error when the key is wrong or the object not a snapshot, before
/// any statement: nothing is loaded then. The last statement is followed
/// by nothing; a dump that ends before its end marker yields `Damaged`.
pub async fn statements(
    target: &Target,
    key: &str,
    encrypted: bool,
    ids: Option<Identities>,
) -> Result<mpsc::Receiver<Statement>, OpenError> {
    let reader = body(target, key).await?;
    let (tx, rx) = mpsc::channel(16);
    let key = key.to_owned();
    tokio::task::spawn_blocking(move || {
        let refs: Option<Vec<&(dyn age::Identity + Send + Sync)>> =
            ids.as_ref().map(|v| v.iter().map(AsRef::as_ref).collect());
        let opened = decrypting(reader, &key, encrypted, refs.as_deref());
        let plain = match opened {
            Ok(p) => p,
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        };
        let gz = BufReader::new(flate2::read::GzDecoder::new(plain));
        if let Err(e) = split(gz, |s| tx.blocking_send(Ok(s)).is_ok()) {
            let _ = tx.blocking_send(Err(OpenError::Damaged {
                key: key.clone(),
                reason: e,
            }));
        }
    });
    Ok(rx)
}

/// Cuts SQL into statements: a statement ends with a `;` at the end of a
/// line outside quotes (the dump writes every value on the statement's
/// line, newlines escaped). `emit` returning false stops early.
pub fn split(mut input: impl BufRead, mut emit: impl FnMut(String) -> bool) -> Result<(), String> {
    let mut statement = Vec::new();
    let mut quote: Option<u8> = None;
    let mut escaped = false;
    let mut line = Vec::new();
    let mut ended = false;
    loop {
        line.clear();
        let n = input
            .read_until(b'\n', &mut line)
            .map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        if statement.is_empty() && quote.is_none() {
            if line.starts_with(END_MARKER.as_bytes()) {
                ended = true;
                continue;
            }
            if line.starts_with(b"--") || line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
        }
        for &b in &line {
            if escaped {
                escaped = false;
            } else if let Some(q) = quote {
                if b == b'\\' && q != b'`' {
                    escaped = true;
                } else if b == q {
                    quote = None;
                }
            } else if matches!(b, b'\'' | b'"' | b'`') {
                quote = Some(b);
            }
        }
        statement.extend_from_slice(&line);
        let trimmed = statement.trim_ascii_end();
        if quote.is_none() && trimmed.ends_with(b";") {
            let text = String::from_utf8(trimmed.to_vec())
                .map_err(|_| "a statement is not UTF-8".to_owned())?;
            statement.clear();
            if !emit(text) {
                return Ok(());
            }
        }
    }
    if !ended || !statement.is_empty() {
        return Err("it ends before the end of the dump".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(text: &str) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        split(text.as_bytes(), |s| {
            out.push(s);
            true
        })?;
        Ok(out)
    }

    #[test]
    fn statements_end_at_a_semicolon_outside_quotes() {
        let dump = format!(
            "-- header\nSET NAMES utf8mb4;\nCREATE TABLE `a;b` (\n  `x` int COMMENT 'c;\n'\n);\nINSERT INTO `a;b` VALUES ('it\\'s;\\n'),('\\\\');\n{END_MARKER}: 1 tables, 2 rows\n"
        );
        let s = cut(&dump).unwrap();
        assert_eq!(s.len(), 3, "{s:?}");
        assert_eq!(s[0], "SET NAMES utf8mb4;");
        assert!(s[1].starts_with("CREATE TABLE") && s[1].ends_with(");"));
        assert_eq!(s[2], "INSERT INTO `a;b` VALUES ('it\\'s;\\n'),('\\\\');");
    }

    #[test]
    fn a_dump_without_its_end_is_truncated() {
        assert!(cut("SET NAMES utf8mb4;\nINSERT INTO t VALUES (1);\n").is_err());
        assert!(cut(&format!("INSERT INTO t VALUES ('x\n{END_MARKER}\n")).is_err());
    }
}
