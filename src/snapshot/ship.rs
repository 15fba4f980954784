//! A sealed stream on its way to one object: bytes written in are
//! compressed and encrypted into a buffer, and every full part goes up
//! before more is written, so memory holds about one part.

use std::io::{self, Write};

use super::SnapshotError;
use super::seal::Sealer;
use crate::s3::stream::{MIN_PART, StreamUpload, Streamed};

pub struct Shipper {
    sealer: Sealer,
    upload: StreamUpload,
    part_size: usize,
}

impl Shipper {
    pub fn new(sealer: Sealer, upload: StreamUpload, part_size: u64) -> Self {
        Self {
            sealer,
            upload,
            part_size: usize::try_from(part_size).unwrap_or(MIN_PART).max(MIN_PART),
        }
    }

    /// Sends what has gathered once it fills a part.
    pub async fn ship_full_parts(&mut self) -> Result<(), SnapshotError> {
        if self.sealer.output().len() >= self.part_size {
            let part = self.sealer.output().take();
            self.upload.part(part).await?;
        }
        Ok(())
    }

    /// Bytes written in so far, before compression.
    pub fn written(&self) -> u64 {
        self.sealer.written
    }

    /// Seals the end and completes the object.
    pub async fn finish(self) -> Result<Streamed, SnapshotError> {
        let mut upload = self.upload;
        let rest = self.sealer.finish()?.take();
        if !rest.is_empty() {
            upload.part(rest).await?;
        }
        Ok(upload.finish().await?)
    }
}

impl Write for Shipper {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sealer.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.sealer.flush()
    }
}
