//! The trailing-checksum probe `check` reports: a PUT streamed as
//! aws-chunked with a CRC32C or CRC64NVME trailer, as the SDK sends it,
//! then the same PUT with one byte flipped after the checksum was taken.
//! Uploads never send trailers (parts carry their CRC32C as a header, see
//! `probe`); this tells the admin what the server would do with them.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_s3::config::{ConfigBag, Intercept, RequestChecksumCalculation, RuntimeComponents};
use aws_sdk_s3::error::BoxError;
use aws_sdk_s3::primitives::{ByteStream, SdkBody};
use aws_sdk_s3::types::ChecksumAlgorithm;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use super::Target;
use super::error::S3Error;
use super::probe::{PROBE_BODY, Verdict};

impl Target {
    /// Writes the checksum probe object twice with a trailing checksum of
    /// `algorithm`, as an upload would send it: as it is, then with one
    /// byte of the body flipped after the SDK took its checksum. The
    /// second write must be refused. (Over plain HTTP the SDK also signs
    /// each chunk, so a refusal there may come from the chunk signature:
    /// either way the altered bytes are not stored.)
    pub async fn probe_trailer(&self, algorithm: ChecksumAlgorithm) -> Result<Verdict, S3Error> {
        let key = self.probe_key("checksum");
        if let Err(e) = self.put_with_trailer(&key, algorithm.clone(), None).await {
            return Verdict::refused(e);
        }
        let flipped = Arc::new(AtomicBool::new(false));
        let altered = self
            .put_with_trailer(&key, algorithm, Some(flipped.clone()))
            .await;
        self.remove_probe(&key).await;
        if !flipped.load(Ordering::Relaxed) {
            return Err(S3Error {
                op: "checksum probe",
                target: key,
                http_status: 0,
                code: None,
                message: "the probe's body was never altered, so it tells nothing".into(),
            });
        }
        match altered {
            Ok(()) => Ok(Verdict::Unchecked),
            Err(e) if (400..500).contains(&e.http_status) => Ok(Verdict::Checked),
            Err(e) => Err(e),
        }
    }

    /// One write of the probe object as a stream (so the SDK sends the
    /// checksum as a trailer), its body altered when `flip` is given.
    async fn put_with_trailer(
        &self,
        key: &str,
        algorithm: ChecksumAlgorithm,
        flip: Option<Arc<AtomicBool>>,
    ) -> Result<(), S3Error> {
        let body =
            ByteStream::from_body_1_x(http_body_util::Full::new(Bytes::from_static(PROBE_BODY)));
        // The client sends checksums only where S3 requires one; here the
        // SDK must compute it.
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("text/plain")
            .content_length(PROBE_BODY.len() as i64)
            .checksum_algorithm(algorithm)
            .set_storage_class(self.storage_class.clone())
            .set_server_side_encryption(self.encryption.clone())
            .set_ssekms_key_id(self.kms_key_id.clone())
            .body(body)
            .customize()
            .config_override(
                aws_sdk_s3::config::Builder::default()
                    .request_checksum_calculation(RequestChecksumCalculation::WhenSupported),
            );
        let sent = match flip {
            Some(flipped) => request.interceptor(FlipOneByte(flipped)).send().await,
            None => request.send().await,
        };
        sent.map(|_| ())
            .map_err(|e| S3Error::from_sdk("put object", key, e))
    }
}

/// Alters the probe's body as it leaves, after the checksum was taken.
#[derive(Debug)]
struct FlipOneByte(Arc<AtomicBool>);

impl Intercept for FlipOneByte {
    fn name(&self) -> &'static str {
        "FlipOneByte"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request_mut();
        let inner = std::mem::replace(request.body_mut(), SdkBody::taken());
        *request.body_mut() = SdkBody::from_body_1_x(Flipping {
            inner,
            flipped: self.0.clone(),
        });
        Ok(())
    }
}

/// A body that flips one bit of the probe text where it first passes,
/// only once it is aws-chunked encoded (after a chunk header's CRLF): a
/// flip before the checksum is taken would prove nothing, and is left
/// undone, which fails the probe.
struct Flipping {
    inner: SdkBody,
    flipped: Arc<AtomicBool>,
}

impl Body for Flipping {
    type Data = Bytes;
    type Error = aws_smithy_types::body::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let frame = match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            other => return other,
        };
        let frame = match frame.into_data() {
            Ok(data) => Frame::data(this.flip(data)),
            Err(frame) => frame,
        };
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        Body::size_hint(&self.inner)
    }
}

impl Flipping {
    fn flip(&self, data: Bytes) -> Bytes {
        let mut mark = b"\r\n".to_vec();
        mark.extend_from_slice(&PROBE_BODY[..24]);
        if self.flipped.load(Ordering::Relaxed) {
            return data;
        }
        match data.windows(mark.len()).position(|w| w == mark) {
            Some(at) => {
                let mut bytes = data.to_vec();
                bytes[at + 2] ^= 1;
                self.flipped.store(true, Ordering::Relaxed);
                Bytes::from(bytes)
            }
            None => data,
        }
    }
}
