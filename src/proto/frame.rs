//! TCP framing (RFC 5460 s.5.1): each DHCPv6 message is preceded by its
//! size as a 2-octet big-endian integer.
//!
//! The framing is written once: [`check`] says what the start of a buffer
//! holds (a whole frame, not yet, a zero-length frame: the mini-redis
//! `Frame::check` split from the parse), and [`prefix`] the length prefix
//! of an outgoing message. [`FrameIter`] splits a byte buffer (a capture
//! file) into frames with them and says where each one starts; the
//! tokio-util codec for live connections,
//! [`crate::transport::FrameCodec`], uses them too.

/// The length prefix of a frame.
pub const LENGTH_PREFIX: usize = 2;

/// Largest message a frame can carry.
pub const MAX_MESSAGE: usize = u16::MAX as usize;

/// A framing error in a buffer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A frame with a message-size of zero.
    #[error("zero-length frame at offset {offset}")]
    Empty {
        /// Offset of the length prefix.
        offset: usize,
    },
    /// The buffer ends inside a frame.
    #[error("truncated frame at offset {offset}: message-size {needed}, {available} octets left")]
    Truncated {
        /// Offset of the length prefix.
        offset: usize,
        /// Octets the frame announces (prefix included).
        needed: usize,
        /// Octets left in the buffer.
        available: usize,
    },
}

/// What the start of a buffer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    /// A whole frame: a message of `len` octets after the prefix.
    Frame {
        /// The message's length (at least 1).
        len: usize,
    },
    /// A frame whose message-size is zero (a DHCPv6 message never is).
    Empty,
    /// Not a whole frame yet: it needs `needed` octets, prefix included
    /// (2 while the prefix itself is incomplete).
    Incomplete {
        /// Octets the frame needs, length prefix included.
        needed: usize,
    },
}

/// What the start of `buf` holds (RFC 5460 s.5.1).
pub fn check(buf: &[u8]) -> Head {
    let Some(&[a, b]) = buf.get(..LENGTH_PREFIX) else {
        return Head::Incomplete {
            needed: LENGTH_PREFIX,
        };
    };
    let len = usize::from(u16::from_be_bytes([a, b]));
    if len == 0 {
        Head::Empty
    } else if buf.len() < LENGTH_PREFIX + len {
        Head::Incomplete {
            needed: LENGTH_PREFIX + len,
        }
    } else {
        Head::Frame { len }
    }
}

/// The length prefix of a message of `len` octets, or `None` when it does
/// not fit a frame (empty, or over [`MAX_MESSAGE`]).
pub fn prefix(len: usize) -> Option<[u8; LENGTH_PREFIX]> {
    let n = u16::try_from(len).ok().filter(|&n| n > 0)?;
    Some(n.to_be_bytes())
}

/// One frame found in a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Offset of the frame's length prefix in the buffer.
    pub offset: usize,
    /// The message (without the prefix).
    pub message: &'a [u8],
}

impl Frame<'_> {
    /// Offset of the message's first octet in the buffer.
    pub fn message_offset(&self) -> usize {
        self.offset + LENGTH_PREFIX
    }
}

/// Splits a buffer into frames. A zero-length frame yields an error and the
/// walk goes on after it; a truncated frame yields an error and ends the walk.
#[derive(Debug, Clone)]
pub struct FrameIter<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> FrameIter<'a> {
    /// Frames of `buf`, which must start at a length prefix.
    pub fn new(buf: &'a [u8]) -> Self {
        FrameIter { buf, pos: 0 }
    }
}

impl<'a> Iterator for FrameIter<'a> {
    type Item = Result<Frame<'a>, FrameError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.buf.get(self.pos..).filter(|r| !r.is_empty())?;
        let offset = self.pos;
        match check(rest) {
            Head::Frame { len } => {
                self.pos += LENGTH_PREFIX + len;
                Some(Ok(Frame {
                    offset,
                    message: &rest[LENGTH_PREFIX..LENGTH_PREFIX + len],
                }))
            }
            Head::Empty => {
                self.pos += LENGTH_PREFIX;
                Some(Err(FrameError::Empty { offset }))
            }
            Head::Incomplete { needed } => {
                self.pos = self.buf.len();
                Some(Err(FrameError::Truncated {
                    offset,
                    needed,
                    available: rest.len(),
                }))
            }
        }
    }
}

/// Append `message` to `out` with its length prefix. Fails if the message
/// does not fit a frame (empty or over 65535 octets).
pub fn put_frame(message: &[u8], out: &mut Vec<u8>) -> Result<(), usize> {
    let head = prefix(message.len()).ok_or(message.len())?;
    out.extend_from_slice(&head);
    out.extend_from_slice(message);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_reports() {
        let buf = [0, 2, 15, 1, 0, 0, 0, 1, 16, 0, 3, 9];
        let frames: Vec<_> = FrameIter::new(&buf).collect();
        assert_eq!(
            frames,
            vec![
                Ok(Frame {
                    offset: 0,
                    message: &[15, 1]
                }),
                Err(FrameError::Empty { offset: 4 }),
                Ok(Frame {
                    offset: 6,
                    message: &[16]
                }),
                Err(FrameError::Truncated {
                    offset: 9,
                    needed: 5,
                    available: 3
                }),
            ]
        );
        assert_eq!(
            FrameIter::new(&[7]).collect::<Vec<_>>(),
            vec![Err(FrameError::Truncated {
                offset: 0,
                needed: 2,
                available: 1
            })]
        );
    }

    #[test]
    fn check_says_what_the_buffer_starts_with() {
        assert_eq!(check(&[]), Head::Incomplete { needed: 2 });
        assert_eq!(check(&[0]), Head::Incomplete { needed: 2 });
        assert_eq!(check(&[0, 3, 1]), Head::Incomplete { needed: 5 });
        assert_eq!(check(&[0, 0, 1]), Head::Empty);
        assert_eq!(check(&[0, 1, 9, 9]), Head::Frame { len: 1 });
        assert_eq!(prefix(0), None);
        assert_eq!(prefix(65535), Some([0xff, 0xff]));
        assert_eq!(prefix(65536), None);
    }

    #[test]
    fn put_frame_limits() {
        let mut v = Vec::new();
        put_frame(&[1, 2, 3], &mut v).unwrap();
        assert_eq!(v, [0, 3, 1, 2, 3]);
        assert_eq!(put_frame(&[], &mut v), Err(0));
        assert_eq!(put_frame(&vec![0; 65536], &mut v), Err(65536));
    }
}
