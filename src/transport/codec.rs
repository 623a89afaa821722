//! The RFC 5460 s.5.1 framing as a tokio-util codec.

use crate::proto::frame::{self, Head, LENGTH_PREFIX};
use bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// Errors of [`FrameCodec`].
#[derive(Debug, thiserror::Error)]
pub enum FrameCodecError {
    /// A frame whose message-size is zero (a DHCPv6 message is never empty).
    #[error("zero-length frame")]
    EmptyFrame,
    /// The stream ended inside a frame (RFC 5460 s.5.1): a cut connection,
    /// not a short valid answer.
    #[error("stream ends inside a frame: {needed} octets announced, {available} there")]
    Truncated {
        /// Octets the frame needs, length prefix included.
        needed: usize,
        /// Octets received of it.
        available: usize,
    },
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
/// A zero-length frame is an error ([`FrameCodecError::EmptyFrame`]); so is
/// a stream that ends inside a frame ([`FrameCodecError::Truncated`]), which
/// must never look like a clean close.
#[derive(Debug, Default)]
pub struct FrameCodec {
    _private: (),
}

impl FrameCodec {
    /// A codec for Bulk Leasequery framing.
    pub fn new() -> Self {
        FrameCodec { _private: () }
    }
}

impl Decoder for FrameCodec {
    type Item = BytesMut;
    type Error = FrameCodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, FrameCodecError> {
        match frame::check(src) {
            Head::Frame { len } => {
                src.advance(LENGTH_PREFIX);
                Ok(Some(src.split_to(len)))
            }
            Head::Empty => {
                src.advance(LENGTH_PREFIX);
                Err(FrameCodecError::EmptyFrame)
            }
            Head::Incomplete { needed } => {
                src.reserve(needed.saturating_sub(src.len()));
                Ok(None)
            }
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, FrameCodecError> {
        match frame::check(src) {
            _ if src.is_empty() => Ok(None),
            Head::Incomplete { needed } => {
                let available = src.len();
                src.clear();
                Err(FrameCodecError::Truncated { needed, available })
            }
            Head::Frame { .. } | Head::Empty => self.decode(src),
        }
    }
}

impl Encoder<Bytes> for FrameCodec {
    type Error = FrameCodecError;

    fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> Result<(), FrameCodecError> {
        self.encode(&item[..], dst)
    }
}

impl Encoder<&[u8]> for FrameCodec {
    type Error = FrameCodecError;

    fn encode(&mut self, item: &[u8], dst: &mut BytesMut) -> Result<(), FrameCodecError> {
        let head = match frame::prefix(item.len()) {
            Some(h) => h,
            None if item.is_empty() => return Err(FrameCodecError::EmptyFrame),
            None => return Err(FrameCodecError::TooLarge(item.len())),
        };
        dst.reserve(LENGTH_PREFIX + item.len());
        dst.extend_from_slice(&head);
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
    fn a_stream_cut_inside_a_frame_is_an_error() {
        for cut in [&[0u8][..], &[0, 3], &[0, 3, 15, 0]] {
            let mut codec = FrameCodec::new();
            let mut buf = BytesMut::from(cut);
            assert!(codec.decode(&mut buf).unwrap().is_none());
            let e = codec.decode_eof(&mut buf).unwrap_err();
            assert!(matches!(e, FrameCodecError::Truncated { .. }), "{e}");
        }
        let mut buf = BytesMut::new();
        assert!(FrameCodec::new().decode_eof(&mut buf).unwrap().is_none());
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
