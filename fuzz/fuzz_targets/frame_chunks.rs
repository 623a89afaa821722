//! Fuzz the TCP framing decoder (RFC 5460 s.5.1) fed arbitrary chunkings.
//!
//! The first input octet says how many of the following octets are chunk
//! sizes (0-15); the rest is the byte stream. The stream goes through the
//! live decoder (`transport::FrameCodec`, the tokio-util codec the
//! connections use) in chunks of those sizes, as TCP might deliver it, and
//! the frames and the first error must be exactly what the buffer splitter
//! (`proto::frame::FrameIter`) finds in the whole stream at once: every
//! complete frame, then a zero-length frame or a truncated tail as an error
//! (this target found that a stream cut inside a frame after its length
//! prefix looked like a clean end of stream to the live decoder).

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use pdrestore::proto::frame::{FrameError, FrameIter};
use pdrestore::transport::{FrameCodec, FrameCodecError};
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = (n as usize % 16).min(rest.len());
    let (sizes, stream) = rest.split_at(n);

    let mut expect = Vec::new();
    let mut expect_err = None;
    for f in FrameIter::new(stream) {
        match f {
            Ok(f) => expect.push(f.message.to_vec()),
            Err(e) => {
                expect_err = Some(e);
                break;
            }
        }
    }

    let mut codec = FrameCodec::new();
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    let mut err = None;
    let mut pos = 0;
    let mut i = 0;
    'feed: while pos < stream.len() {
        let size = match sizes.get(i % sizes.len().max(1)) {
            Some(&s) => 1 + s as usize,
            None => stream.len(),
        };
        i += 1;
        let end = (pos + size).min(stream.len());
        buf.extend_from_slice(&stream[pos..end]);
        pos = end;
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(f)) => got.push(f.to_vec()),
                Ok(None) => break,
                Err(e) => {
                    err = Some(e);
                    break 'feed;
                }
            }
        }
    }
    if err.is_none() {
        match codec.decode_eof(&mut buf) {
            Ok(Some(f)) => panic!("a frame at end of stream that decode missed: {f:?}"),
            Ok(None) => {}
            Err(e) => err = Some(e),
        }
    }
    assert_eq!(got, expect, "chunked and whole-buffer framing disagree");
    match (&expect_err, &err) {
        (None, None) | (Some(FrameError::Empty { .. }), Some(FrameCodecError::EmptyFrame)) => {}
        (
            Some(FrameError::Truncated {
                needed, available, ..
            }),
            Some(FrameCodecError::Truncated {
                needed: n,
                available: a,
            }),
        ) => assert_eq!((needed, available), (n, a)),
        other => panic!("errors disagree: {other:?}"),
    }
});
