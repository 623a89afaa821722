//! Decoding errors: each names what was wrong and where.

use super::consts::{MessageType, OptionCode};
use std::fmt;

/// What went wrong while decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// A fixed header ended early: `needed` octets were required, `available` remained.
    Truncated {
        /// Octets the header needs.
        needed: usize,
        /// Octets that remained.
        available: usize,
    },
    /// An option's length field runs past the end of its container.
    OptionOverrun {
        /// The option-len field.
        len: usize,
        /// Octets left in the container after the option header.
        available: usize,
    },
    /// A fixed-size option has the wrong length.
    BadLength {
        /// The option-len field.
        len: usize,
        /// The only valid length.
        expected: usize,
    },
    /// An option is shorter than its fixed part.
    TooShort {
        /// The option-len field.
        len: usize,
        /// The smallest valid length.
        min: usize,
    },
    /// An option whose body must be a whole number of items is not.
    NotMultiple {
        /// The option-len field.
        len: usize,
        /// The item size.
        multiple: usize,
    },
    /// An IAPREFIX prefix-length over 128.
    BadPrefixLength(u8),
    /// A DUID that is empty or longer than 130 octets (RFC 8415 s.11.1).
    BadDuidLength(usize),
    /// Messages and options nest deeper than [`super::MAX_NESTING`].
    TooDeep,
    /// A relay message was expected (LQ_RELAY_DATA), another type was found.
    NotRelayMessage(u8),
    /// A zero-length TCP frame (RFC 5460 s.5.1 frames one DHCPv6 message, never nothing).
    EmptyFrame,
    /// A required option is missing (RFC 8415 s.9: a relay message's
    /// RELAY_MSG; s.16: CLIENTID, SERVERID).
    MissingOption(OptionCode),
    /// An option that may appear once appears again (RFC 8415 s.21:
    /// CLIENTID, SERVERID, STATUS_CODE, RELAY_MSG, INTERFACE_ID).
    DuplicateOption(OptionCode),
    /// More relay layers than HOP_COUNT_LIMIT (RFC 8415 s.7.6).
    TooManyRelayLayers,
    /// A RELAY-FORW inside a RELAY-REPL or the other way round (RFC 8415 s.9).
    RelayTypeMismatch {
        /// The outer relay message type.
        outer: MessageType,
        /// The message type found inside it.
        inner: MessageType,
    },
    /// An option handed to a parser of another option code.
    WrongOption {
        /// The code the parser reads.
        expected: OptionCode,
        /// The code it was given.
        found: OptionCode,
    },
}

/// A decoding error: what was wrong, in which option, and at which byte offset.
///
/// `offset` counts from the start of the buffer handed to the outermost decode
/// call (the message, not the TCP length prefix), and points at the option
/// header (or field) at fault. `option` is the innermost option being decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// Byte offset of the faulty option or field.
    pub offset: usize,
    /// The option being decoded, if the fault is inside an option.
    pub option: Option<OptionCode>,
    /// What was wrong.
    pub kind: ErrorKind,
}

impl DecodeError {
    #[cold]
    pub(crate) fn new(offset: usize, option: Option<OptionCode>, kind: ErrorKind) -> Self {
        DecodeError {
            offset,
            option,
            kind,
        }
    }

    /// The same error, with `base` added to its offset (used when a nested
    /// buffer was decoded on its own).
    pub fn shifted(mut self, base: usize) -> Self {
        self.offset += base;
        self
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Truncated { needed, available } => {
                write!(f, "truncated: needs {needed} octets, {available} left")
            }
            ErrorKind::OptionOverrun { len, available } => write!(
                f,
                "option length {len} overruns its container ({available} octets left)"
            ),
            ErrorKind::BadLength { len, expected } => {
                write!(f, "length {len}, must be {expected}")
            }
            ErrorKind::TooShort { len, min } => {
                write!(f, "length {len}, must be at least {min}")
            }
            ErrorKind::NotMultiple { len, multiple } => {
                write!(f, "length {len} is not a multiple of {multiple}")
            }
            ErrorKind::BadPrefixLength(l) => write!(f, "prefix-length {l} is over 128"),
            ErrorKind::BadDuidLength(l) => {
                write!(f, "DUID length {l}, must be 1 to 130 octets")
            }
            ErrorKind::TooDeep => write!(f, "options nest too deeply"),
            ErrorKind::NotRelayMessage(t) => {
                write!(f, "message type {t} where a relay message was expected")
            }
            ErrorKind::EmptyFrame => write!(f, "zero-length frame"),
            ErrorKind::MissingOption(o) => write!(f, "no {o} option"),
            ErrorKind::DuplicateOption(o) => write!(f, "a second {o} option"),
            ErrorKind::TooManyRelayLayers => write!(
                f,
                "more than {} relay layers (HOP_COUNT_LIMIT)",
                super::consts::HOP_COUNT_LIMIT
            ),
            ErrorKind::RelayTypeMismatch { outer, inner } => write!(f, "{inner} inside {outer}"),
            ErrorKind::WrongOption { expected, found } => {
                write!(f, "{found} handed to the parser of {expected}")
            }
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.option {
            Some(code) => write!(f, "option {code} at offset {}: {}", self.offset, self.kind),
            None => write!(f, "at offset {}: {}", self.offset, self.kind),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Shorthand for results of decoding.
pub type Result<T> = std::result::Result<T, DecodeError>;
