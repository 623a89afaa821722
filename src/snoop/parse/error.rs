//! The errors of the snoop parser: what was wrong with a packet, and where.

use super::HOP_COUNT_LIMIT;
use crate::proto::consts::{MessageType, OptionCode};
use crate::proto::error::{DecodeError, ErrorKind};
use etherparse::err;
use std::fmt;

/// What was wrong with a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnoopErrorKind {
    /// The IPv6 header or an extension header is malformed or cut short
    /// (`etherparse`'s verdict).
    Ipv6(err::ipv6::SliceError),
    /// An IPv6 payload length of 0, which only a jumbogram may have (RFC 2675);
    /// DHCPv6 never uses one.
    ZeroPayloadLength,
    /// The UDP header is cut short (`etherparse`'s verdict).
    Udp(err::LenError),
    /// The UDP length field does not match the IPv6 payload it sits in
    /// (RFC 768, RFC 8200 s.8.1).
    UdpLength {
        /// The UDP length field.
        udp_length: u16,
        /// Octets of IPv6 payload after the extension headers.
        ip_payload: usize,
    },
    /// The DHCPv6 message is malformed (the codec's error: its offset is in
    /// the IPv6 packet, like [`SnoopError::offset`]).
    Dhcp(DecodeError),
    /// A required option is missing (RFC 8415 s.16: CLIENTID, SERVERID,
    /// RELAY_MSG).
    MissingOption(OptionCode),
    /// An option that may appear once appears again (RFC 8415 s.21: CLIENTID,
    /// SERVERID, STATUS_CODE, RELAY_MSG, INTERFACE_ID).
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
}

impl SnoopErrorKind {
    /// A short fixed name, for counters and logs.
    pub fn name(&self) -> &'static str {
        match self {
            SnoopErrorKind::Ipv6(_) => "ipv6",
            SnoopErrorKind::ZeroPayloadLength => "ipv6-zero-payload-length",
            SnoopErrorKind::Udp(_) => "udp",
            SnoopErrorKind::UdpLength { .. } => "udp-length",
            SnoopErrorKind::Dhcp(_) => "dhcpv6",
            SnoopErrorKind::MissingOption(_) => "missing-option",
            SnoopErrorKind::DuplicateOption(_) => "duplicate-option",
            SnoopErrorKind::TooManyRelayLayers => "too-many-relay-layers",
            SnoopErrorKind::RelayTypeMismatch { .. } => "relay-type-mismatch",
        }
    }
}

impl fmt::Display for SnoopErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnoopErrorKind::Ipv6(e) => write!(f, "IPv6: {e}"),
            SnoopErrorKind::ZeroPayloadLength => {
                write!(f, "IPv6 payload length 0 (a jumbogram, never DHCPv6)")
            }
            SnoopErrorKind::Udp(e) => write!(f, "UDP: {e}"),
            SnoopErrorKind::UdpLength {
                udp_length,
                ip_payload,
            } => write!(
                f,
                "UDP length {udp_length} does not match the {ip_payload} octets of IPv6 payload"
            ),
            SnoopErrorKind::Dhcp(e) => write!(f, "DHCPv6: {}", e.kind),
            SnoopErrorKind::MissingOption(o) => write!(f, "DHCPv6: no {o} option"),
            SnoopErrorKind::DuplicateOption(o) => write!(f, "DHCPv6: a second {o} option"),
            SnoopErrorKind::TooManyRelayLayers => write!(
                f,
                "DHCPv6: more than {HOP_COUNT_LIMIT} relay layers (HOP_COUNT_LIMIT)"
            ),
            SnoopErrorKind::RelayTypeMismatch { outer, inner } => {
                write!(f, "DHCPv6: {inner} inside {outer}")
            }
        }
    }
}

/// A malformed packet: what was wrong and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnoopError {
    /// Byte offset from the start of the IPv6 header of the faulty header,
    /// option or field.
    pub offset: usize,
    /// For DHCPv6 faults, the innermost option being decoded, if any.
    pub option: Option<OptionCode>,
    /// What was wrong.
    pub kind: SnoopErrorKind,
}

impl SnoopError {
    #[cold]
    pub(super) fn new(offset: usize, option: Option<OptionCode>, kind: SnoopErrorKind) -> Self {
        SnoopError {
            offset,
            option,
            kind,
        }
    }
}

impl From<DecodeError> for SnoopError {
    #[cold]
    fn from(e: DecodeError) -> Self {
        // The structural faults the codec reports (relay chains, IAs) keep
        // the snoop layer's own kinds, as when it found them itself.
        let kind = match e.kind {
            ErrorKind::MissingOption(o) => SnoopErrorKind::MissingOption(o),
            ErrorKind::DuplicateOption(o) => SnoopErrorKind::DuplicateOption(o),
            ErrorKind::TooManyRelayLayers => SnoopErrorKind::TooManyRelayLayers,
            ErrorKind::RelayTypeMismatch { outer, inner } => {
                SnoopErrorKind::RelayTypeMismatch { outer, inner }
            }
            _ => SnoopErrorKind::Dhcp(e.clone()),
        };
        SnoopError::new(e.offset, e.option, kind)
    }
}

impl fmt::Display for SnoopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.option {
            Some(o) => write!(f, "at offset {} (option {o}): {}", self.offset, self.kind),
            None => write!(f, "at offset {}: {}", self.offset, self.kind),
        }
    }
}

impl std::error::Error for SnoopError {}
