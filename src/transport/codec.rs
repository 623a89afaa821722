//! The RFC 5460 s.5.1 framing as a tokio-util codec.

use bytes::{Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder, LengthDelimitedCodec};

/// Errors of [`FrameCodec`].
#[derive(Debug, thiserror::Error)]
pub enum FrameCodecError {
    /// A frame whose message-size is zero (a DHCPv6 message is never empty).
    #[error("zero-length frame")]
    EmptyFrame,
    /// A message too large for the 2-octet length.
    #[error("message of {0} octets does not fit a frame (max 65535)")]
    TooLarge(usize),
    /// The connection failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Splits a TCP byte stream into DHCPv6 messages, and frames outgoing ones:
/// a 2-octet big-endian message-size, then the message (RFC 5460 s.5.1).
///
/// Built on [`LengthDelimitedCodec`] with a u16 length field; a zero-length
/// frame is an error.
#[derive(Debug)]
pub struct FrameCodec {
    inner: LengthDelimitedCodec,
}

impl Default for FrameCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameCodec {
    /// A codec for Bulk Leasequery framing.
    pub fn new() -> Self {
        FrameCodec {
            inner: LengthDelimitedCodec::builder()
                .length_field_type::<u16>()
                .max_frame_length(u16::MAX as usize)
                .new_codec(),
        }
    }
}

impl Decoder for FrameCodec {
    type Item = BytesMut;
    type Error = FrameCodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, FrameCodecError> {
        match self.inner.decode(src)? {
            Some(f) if f.is_empty() => Err(FrameCodecError::EmptyFrame),
            other => Ok(other),
        }
    }
}

impl Encoder<Bytes> for FrameCodec {
    type Error = FrameCodecError;

    fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> Result<(), FrameCodecError> {
        if item.is_empty() {
            return Err(FrameCodecError::EmptyFrame);
        }
        if item.len() > u16::MAX as usize {
            return Err(FrameCodecError::TooLarge(item.len()));
        }
        self.inner.encode(item, dst)?;
        Ok(())
    }
}

impl Encoder<&[u8]> for FrameCodec {
    type Error = FrameCodecError;

    fn encode(&mut self, item: &[u8], dst: &mut BytesMut) -> Result<(), FrameCodecError> {
        if item.is_empty() {
            return Err(FrameCodecError::EmptyFrame);
        }
        if item.len() > u16::MAX as usize {
            return Err(FrameCodecError::TooLarge(item.len()));
        }
        dst.reserve(2 + item.len());
        dst.extend_from_slice(&(item.len() as u16).to_be_bytes());
        dst.extend_from_slice(item);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_across_chunk_boundaries() {
        let stream = [0u8, 3, 15, 0, 1, 0, 1, 16];
        for split in 0..stream.len() {
            let mut codec = FrameCodec::new();
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            for chunk in [&stream[..split], &stream[split..]] {
                buf.extend_from_slice(chunk);
                while let Some(f) = codec.decode(&mut buf).unwrap() {
                    got.push(f.to_vec());
                }
            }
            assert_eq!(got, vec![vec![15, 0, 1], vec![16]], "split at {split}");
        }
    }

    #[test]
    fn zero_length_is_an_error() {
        let mut codec = FrameCodec::new();
        let mut buf = BytesMut::from(&[0u8, 0, 1][..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(FrameCodecError::EmptyFrame)
        ));
    }

    #[test]
    fn encodes_with_prefix() {
        let mut codec = FrameCodec::new();
        let mut dst = BytesMut::new();
        codec
            .encode(Bytes::from_static(&[14, 0, 0, 1]), &mut dst)
            .unwrap();
        codec.encode(&[17u8, 0, 0, 1][..], &mut dst).unwrap();
        assert_eq!(&dst[..], &[0, 4, 14, 0, 0, 1, 0, 4, 17, 0, 0, 1]);
        assert!(codec.encode(&[][..], &mut dst).is_err());
        assert!(matches!(
            codec.encode(&vec![0u8; 70000][..], &mut dst),
            Err(FrameCodecError::TooLarge(70000))
        ));
    }
}
