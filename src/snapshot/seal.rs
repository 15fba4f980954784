//! The bytes of a snapshot object on their way out: gzip (any `zcat`
//! reads it), then, with a recipient, age encryption, into a buffer the
//! uploader empties one part at a time. Writing never waits on the
//! network: the caller hands out full parts between writes.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use flate2::Compression;
use flate2::write::GzEncoder;

/// Where the sealed bytes gather until the uploader takes a part.
#[derive(Clone, Default)]
pub struct PartBuffer(Arc<Mutex<Vec<u8>>>);

impl PartBuffer {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        // A writer that panicked leaves bytes that are still bytes.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Everything gathered so far.
    pub fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.lock())
    }
}

impl Write for PartBuffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.lock().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

enum Inner {
    Plain(PartBuffer),
    Age(age::stream::StreamWriter<PartBuffer>),
}

impl Write for Inner {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(b) => b.write(buf),
            Self::Age(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(b) => b.flush(),
            Self::Age(w) => w.flush(),
        }
    }
}

/// What gzip and age leave to the caller.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("snapshot: cannot start encrypting to snapshots.recipient: {0}")]
    Encrypt(String),
    #[error("snapshot: compressing or encrypting: {0}")]
    Io(#[from] io::Error),
}

/// Compresses (when asked) and encrypts (with a recipient) into a
/// [`PartBuffer`].
pub struct Sealer {
    out: PartBuffer,
    gzip: Option<GzEncoder<Inner>>,
    raw: Option<Inner>,
    /// Bytes written in, before compression.
    pub written: u64,
}

impl Sealer {
    pub fn new(
        recipient: Option<&age::x25519::Recipient>,
        compress: bool,
    ) -> Result<Self, SealError> {
        let out = PartBuffer::default();
        let inner = match recipient {
            None => Inner::Plain(out.clone()),
            Some(r) => {
                let encryptor =
                    age::Encryptor::with_recipients(std::iter::once(r as &dyn age::Recipient))
                        .map_err(|e| SealError::Encrypt(e.to_string()))?;
                Inner::Age(encryptor.wrap_output(out.clone())?)
            }
        };
        let (gzip, raw) = if compress {
            (Some(GzEncoder::new(inner, Compression::fast())), None)
        } else {
            (None, Some(inner))
        };
        Ok(Self {
            out,
            gzip,
            raw,
            written: 0,
        })
    }

    /// The sealed bytes waiting for the uploader.
    pub fn output(&self) -> &PartBuffer {
        &self.out
    }

    /// Flushes gzip and age; the last bytes are then in [`Self::output`].
    pub fn finish(mut self) -> Result<PartBuffer, SealError> {
        let inner = match (self.gzip.take(), self.raw.take()) {
            (Some(gz), _) => gz.finish()?,
            (None, Some(raw)) => raw,
            (None, None) => return Ok(self.out),
        };
        if let Inner::Age(w) = inner {
            w.finish()?;
        }
        Ok(self.out)
    }
}

impl Write for Sealer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = match (&mut self.gzip, &mut self.raw) {
            (Some(gz), _) => gz.write(buf)?,
            (None, Some(raw)) => raw.write(buf)?,
            (None, None) => return Err(io::Error::other("written after finish")),
        };
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match (&mut self.gzip, &mut self.raw) {
            (Some(gz), _) => gz.flush(),
            (None, Some(raw)) => raw.flush(),
            (None, None) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn seal(recipient: Option<&age::x25519::Recipient>, text: &[u8]) -> Vec<u8> {
        let mut s = Sealer::new(recipient, true).unwrap();
        s.write_all(text).unwrap();
        s.finish().unwrap().take()
    }

    #[test]
    fn plain_snapshots_are_gzip_any_zcat_reads() {
        let sealed = seal(None, b"INSERT INTO t VALUES (1);\n");
        let mut out = String::new();
        flate2::read::GzDecoder::new(&sealed[..])
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "INSERT INTO t VALUES (1);\n");
    }

    #[test]
    fn encrypted_snapshots_open_with_the_key_alone() {
        let key = age::x25519::Identity::generate();
        let sealed = seal(Some(&key.to_public()), b"secret rows");
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        let decryptor = age::Decryptor::new(&sealed[..]).unwrap();
        let mut gz = Vec::new();
        decryptor
            .decrypt(std::iter::once(&key as &dyn age::Identity))
            .unwrap()
            .read_to_end(&mut gz)
            .unwrap();
        let mut out = String::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "secret rows");
        let other = age::x25519::Identity::generate();
        assert!(
            age::Decryptor::new(&sealed[..])
                .unwrap()
                .decrypt(std::iter::once(&other as &dyn age::Identity))
                .is_err()
        );
    }
}
