//! A strict, sans-IO parser of captured DHCPv6 packets.
//!
//! [`parse`] takes one packet starting at its IPv6 header (what an
//! `AF_PACKET`/`SOCK_DGRAM` socket delivers) and the [`Direction`] it went,
//! and says what a delegating relay needs to know about it:
//!
//! | direction | UDP destination | message | result |
//! | --- | --- | --- | --- |
//! | outgoing | 546 | REPLY | [`Snooped::Reply`], no relay layers |
//! | outgoing | 547 | RELAY-REPL ... REPLY (RFC 6221) | [`Snooped::Reply`] with its [`RelayHop`]s |
//! | incoming | 547 | RELEASE, DECLINE | [`Snooped::Release`], no relay layers |
//! | incoming | 547 | RELAY-FORW ... RELEASE/DECLINE (from an LDRA) | [`Snooped::Release`] with its relay layers |
//! | incoming | 546 or 547 | ADVERTISE, REPLY, RECONFIGURE, RELAY-REPL | [`Snooped::Forged`] |
//! | any | any | anything else | [`Snooped::Ignored`] with an [`IgnoreReason`] |
//!
//! Layers below DHCPv6 are taken apart by `etherparse` (IPv6 header,
//! extension headers, UDP); the DHCPv6 message by the crate's zero-copy views
//! ([`crate::proto::view`]). Every message that is reported is validated
//! whole (RFC 8415 s.16 message validation; every option's length and fixed
//! fields, recursively; s.21.21 IA_PD; s.21.22 IAPREFIX; s.9 and s.19 relay
//! messages), and any fault is an `Err(`[`SnoopError`]`)` with the byte offset
//! from the start of the IPv6 header. Messages that are ignored are not
//! validated beyond their msg-type: nothing is done with them.
//!
//! Nothing here panics, whatever the input (fuzzed: `fuzz/fuzz_targets/snoop.rs`).
//!
//! Two things are deliberately not checked:
//! - the UDP checksum: an outgoing packet captured before the NIC (or a veth
//!   peer) fills it in carries only the pseudo-header sum (checksum offload),
//!   and incoming ones from a veth peer in the same state; a checksum check
//!   would drop good packets;
//! - the transaction-id against a request: the relay does not keep requests.

use super::Direction;
use crate::proto::consts::{MessageType, OptionCode, StatusCode};
use crate::proto::duid::Duid;
use crate::proto::ia::{duplicate, ia_pd, once_status};
use crate::proto::view::{MessageView, OptionView, RawOption};
use etherparse::{err, IpNumber, Ipv6Slice, UdpSlice};
use std::net::Ipv6Addr;

mod error;
pub use error::{SnoopError, SnoopErrorKind};

pub use crate::proto::ia::{DelegatedPrefix, IaPd};
pub use crate::proto::relay::HOP_COUNT_LIMIT;
pub use crate::proto::{CLIENT_PORT, SERVER_PORT};

/// Length of the IPv6 fixed header.
const IPV6_HEADER: usize = 40;
/// Length of the UDP header.
const UDP_HEADER: usize = 8;

/// The addresses, ports and hop limit of the captured datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datagram {
    /// IPv6 source address.
    pub source: Ipv6Addr,
    /// IPv6 destination address.
    pub destination: Ipv6Addr,
    /// UDP source port.
    pub source_port: u16,
    /// UDP destination port.
    pub destination_port: u16,
    /// IPv6 hop limit as captured (255 for link-local DHCPv6 traffic sent by
    /// most implementations, but RFC 8415 does not require it).
    pub hop_limit: u8,
    /// Offset of the DHCPv6 message (the UDP payload) in the packet.
    pub message_offset: usize,
    /// Length of the DHCPv6 message (UDP length less its 8-octet header).
    pub message_len: usize,
}

/// One relay layer around a relayed message (RFC 8415 s.9), outermost first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayHop {
    /// The hop-count field.
    pub hop_count: u8,
    /// The link-address field (:: from a lightweight relay, RFC 6221 s.5.3.1).
    pub link_address: Ipv6Addr,
    /// The peer-address field: where the relay got the message from or sends
    /// it to. In the innermost layer, the client's address.
    pub peer_address: Ipv6Addr,
    /// The body of OPTION_INTERFACE_ID (18), if the layer has one (a
    /// lightweight relay's own identifier of the client port, RFC 6221 s.5.3.1).
    pub interface_id: Option<Vec<u8>>,
}

/// A REPLY (7) sent by this router toward a client: directly to UDP port
/// 546, or inside RELAY-REPL messages to a lightweight relay's port 547
/// (RFC 6221).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The captured datagram. Its destination is the client (sent directly)
    /// or the lightweight relay (relayed).
    pub datagram: Datagram,
    /// The relay layers around the REPLY, outermost first; empty when it was
    /// sent to the client directly.
    pub relay: Vec<RelayHop>,
    /// The transaction-id (24 bits).
    pub transaction_id: u32,
    /// The top-level STATUS_CODE, if any. Absent means Success (RFC 8415 s.21.13).
    pub status: Option<StatusCode>,
    /// OPTION_CLIENTID: the client's DUID. Required when the REPLY carries an
    /// IA_PD (it answers a message that had one, RFC 8415 s.16.4-16.7, and the
    /// server copies it, s.18.3); may be absent otherwise (a REPLY to an
    /// INFORMATION-REQUEST without one).
    pub client_id: Option<Duid>,
    /// OPTION_SERVERID: the server's DUID (required, RFC 8415 s.16.10).
    pub server_id: Duid,
    /// Every IA_PD, in wire order.
    pub ia_pds: Vec<IaPd>,
}

impl Reply {
    /// The client's address: the next hop of its delegated prefixes. The
    /// datagram's destination when sent directly; the innermost relay
    /// layer's peer-address when relayed.
    pub fn client_address(&self) -> Ipv6Addr {
        match self.relay.last() {
            Some(hop) => hop.peer_address,
            None => self.datagram.destination,
        }
    }
}

/// A RELEASE (8) or DECLINE (9) from a client, received on UDP port 547:
/// directly, or inside RELAY-FORW messages from a lightweight relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// The captured datagram; its source is the client (direct) or the
    /// lightweight relay (relayed).
    pub datagram: Datagram,
    /// The relay layers around the message, outermost first; empty when the
    /// client sent it directly.
    pub relay: Vec<RelayHop>,
    /// [`MessageType::Release`] or [`MessageType::Decline`].
    pub msg_type: MessageType,
    /// The transaction-id (24 bits).
    pub transaction_id: u32,
    /// OPTION_CLIENTID (required, RFC 8415 s.16.8, s.16.9).
    pub client_id: Duid,
    /// OPTION_SERVERID (required, RFC 8415 s.16.8, s.16.9).
    pub server_id: Duid,
    /// Every IA_PD the message names, in wire order.
    pub ia_pds: Vec<IaPd>,
}

impl Release {
    /// The client's address: the datagram's source when sent directly, the
    /// innermost relay layer's peer-address when relayed.
    pub fn client_address(&self) -> Ipv6Addr {
        match self.relay.last() {
            Some(hop) => hop.peer_address,
            None => self.datagram.source,
        }
    }
}

/// A message that only servers and relays send toward clients (ADVERTISE,
/// REPLY, RECONFIGURE, RELAY-REPL) arriving from the link: someone on the
/// client side is sending it. Decided on the msg-type alone; its options are
/// not validated, since nothing is done with it but counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forged {
    /// The captured datagram.
    pub datagram: Datagram,
    /// The outermost msg-type.
    pub msg_type: MessageType,
}

/// Why a well-formed packet was of no interest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IgnoreReason {
    /// The IPv6 payload (after any extension headers) is not UDP.
    NotUdp(u8),
    /// A fragment (RFC 8200 s.4.5): DHCPv6 messages are not reassembled
    /// here, so a fragmented one is missed (counted by the caller).
    Fragment,
    /// Neither UDP port is 546 or 547.
    NotDhcpPort {
        /// UDP source port.
        source: u16,
        /// UDP destination port.
        destination: u16,
    },
    /// A message of interest, but to a UDP destination port it is never
    /// sent to (a REPLY to 547, a RELEASE to 546, ...).
    WrongPort {
        /// The outermost msg-type.
        msg_type: MessageType,
        /// The UDP destination port.
        destination: u16,
    },
    /// A message type the snoop layer has no use for in this direction
    /// (SOLICIT, REQUEST, RENEW, an outgoing RELAY-FORW, ...), or a relayed
    /// message whose innermost message is not the one of interest.
    Uninteresting {
        /// The innermost msg-type.
        msg_type: MessageType,
        /// True when it was found inside relay messages.
        relayed: bool,
    },
}

impl IgnoreReason {
    /// A short fixed name, for counters and logs.
    pub fn name(&self) -> &'static str {
        match self {
            IgnoreReason::NotUdp(_) => "not-udp",
            IgnoreReason::Fragment => "fragment",
            IgnoreReason::NotDhcpPort { .. } => "not-dhcp-port",
            IgnoreReason::WrongPort { .. } => "wrong-port",
            IgnoreReason::Uninteresting { .. } => "uninteresting",
        }
    }
}

/// What one captured packet was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Snooped {
    /// A REPLY this router sent toward a client (directly or relayed).
    Reply(Reply),
    /// A RELEASE or DECLINE a client sent (directly or relayed).
    Release(Release),
    /// A server-to-client message arriving from the link: a forgery.
    Forged(Forged),
    /// Well-formed, but of no interest.
    Ignored(IgnoreReason),
}

impl Snooped {
    /// A short fixed name of the kind of result, for counters and logs
    /// (`reply`, `relayed-reply`, `release`, `relayed-release`, `forged`,
    /// `ignored`; [`IgnoreReason::name`] says more for the last).
    pub fn name(&self) -> &'static str {
        match self {
            Snooped::Reply(r) if r.relay.is_empty() => "reply",
            Snooped::Reply(_) => "relayed-reply",
            Snooped::Release(r) if r.relay.is_empty() => "release",
            Snooped::Release(_) => "relayed-release",
            Snooped::Forged(_) => "forged",
            Snooped::Ignored(_) => "ignored",
        }
    }
}

type Result<T> = std::result::Result<T, SnoopError>;

/// Parse one captured packet that starts at its IPv6 header, sent or received
/// as `dir` says. See the [module documentation](self) for what each kind of
/// packet gives. Never panics.
pub fn parse(packet: &[u8], dir: Direction) -> Result<Snooped> {
    let ip = Ipv6Slice::from_slice(packet).map_err(ipv6_error)?;
    let header = ip.header();
    if header.payload_length() == 0 {
        return Err(SnoopError::new(4, None, SnoopErrorKind::ZeroPayloadLength));
    }
    let payload = ip.payload();
    if payload.fragmented {
        return Ok(Snooped::Ignored(IgnoreReason::Fragment));
    }
    if payload.ip_number != IpNumber::UDP {
        return Ok(Snooped::Ignored(IgnoreReason::NotUdp(payload.ip_number.0)));
    }
    let udp_offset = IPV6_HEADER + ip.extensions().slice().len();
    let udp = UdpSlice::from_slice(payload.payload).map_err(|mut e| {
        e.layer_start_offset += udp_offset;
        SnoopError::new(udp_offset, None, SnoopErrorKind::Udp(e))
    })?;
    if usize::from(udp.length()) != payload.payload.len() {
        return Err(SnoopError::new(
            udp_offset + 4,
            None,
            SnoopErrorKind::UdpLength {
                udp_length: udp.length(),
                ip_payload: payload.payload.len(),
            },
        ));
    }
    let message = udp.payload();
    let message_offset = udp_offset + UDP_HEADER;
    let datagram = Datagram {
        source: header.source_addr(),
        destination: header.destination_addr(),
        source_port: udp.source_port(),
        destination_port: udp.destination_port(),
        hop_limit: header.hop_limit(),
        message_offset,
        message_len: message.len(),
    };
    let dhcp_port = |p| p == CLIENT_PORT || p == SERVER_PORT;
    if !dhcp_port(datagram.destination_port) {
        return Ok(Snooped::Ignored(IgnoreReason::NotDhcpPort {
            source: datagram.source_port,
            destination: datagram.destination_port,
        }));
    }
    let view = MessageView::parse_at(message, message_offset, 0)?;
    classify(view, dir, datagram)
}

fn ipv6_error(e: err::ipv6::SliceError) -> SnoopError {
    let offset = match &e {
        err::ipv6::SliceError::Len(l) => l.layer_start_offset,
        err::ipv6::SliceError::Header(_) => 0,
        err::ipv6::SliceError::Exts(_) => IPV6_HEADER,
    };
    SnoopError::new(offset, None, SnoopErrorKind::Ipv6(e))
}

fn classify(view: MessageView<'_>, dir: Direction, datagram: Datagram) -> Result<Snooped> {
    use MessageType as M;
    let msg_type = view.msg_type();
    let port = datagram.destination_port;
    match (dir, msg_type) {
        (Direction::Incoming, M::Advertise | M::Reply | M::Reconfigure | M::RelayRepl) => {
            Ok(Snooped::Forged(Forged { datagram, msg_type }))
        }
        (Direction::Outgoing, M::Reply) if port == CLIENT_PORT => {
            view.options().validate()?;
            Ok(Snooped::Reply(reply(view, Vec::new(), datagram)?))
        }
        (Direction::Outgoing, M::RelayRepl) if port == SERVER_PORT => {
            view.options().validate()?;
            let (relay, inner) = relay_chain(view)?;
            if inner.msg_type() != M::Reply {
                return Ok(Snooped::Ignored(IgnoreReason::Uninteresting {
                    msg_type: inner.msg_type(),
                    relayed: true,
                }));
            }
            Ok(Snooped::Reply(reply(inner, relay, datagram)?))
        }
        (Direction::Incoming, M::Release | M::Decline) if port == SERVER_PORT => {
            view.options().validate()?;
            Ok(Snooped::Release(release(view, Vec::new(), datagram)?))
        }
        (Direction::Incoming, M::RelayForw) if port == SERVER_PORT => {
            view.options().validate()?;
            let (relay, inner) = relay_chain(view)?;
            if !matches!(inner.msg_type(), M::Release | M::Decline) {
                return Ok(Snooped::Ignored(IgnoreReason::Uninteresting {
                    msg_type: inner.msg_type(),
                    relayed: true,
                }));
            }
            Ok(Snooped::Release(release(inner, relay, datagram)?))
        }
        (Direction::Outgoing, M::Reply | M::RelayRepl)
        | (Direction::Incoming, M::Release | M::Decline | M::RelayForw) => {
            Ok(Snooped::Ignored(IgnoreReason::WrongPort {
                msg_type,
                destination: port,
            }))
        }
        _ => Ok(Snooped::Ignored(IgnoreReason::Uninteresting {
            msg_type,
            relayed: false,
        })),
    }
}

/// Walk the RELAY_MSG options of a validated relay message down to the first
/// client/server message ([`crate::proto::relay::relay_chain`]: RFC 8415 s.9,
/// s.19; RFC 6221 s.5), recording each layer.
fn relay_chain(outer: MessageView<'_>) -> Result<(Vec<RelayHop>, MessageView<'_>)> {
    let (layers, inner) = crate::proto::relay::relay_chain(outer)?;
    let hops = layers
        .into_iter()
        .map(|l| RelayHop {
            hop_count: l.hop_count,
            link_address: l.link_address,
            peer_address: l.peer_address,
            interface_id: l.interface_id.map(<[u8]>::to_vec),
        })
        .collect();
    Ok((hops, inner))
}

/// The options of a client/server message the snoop layer reports.
struct Fields {
    status: Option<StatusCode>,
    client_id: Option<Duid>,
    server_id: Option<Duid>,
    ia_pds: Vec<IaPd>,
}

fn once_duid(slot: &mut Option<Duid>, raw: &RawOption<'_>) -> Result<()> {
    if slot.is_some() {
        return Err(duplicate(raw).into());
    }
    match raw.parse()? {
        OptionView::ClientId(d) | OptionView::ServerId(d) => *slot = Some(Duid::from_bytes(d)),
        _ => return Err(duplicate(raw).into()),
    }
    Ok(())
}

/// The reported options of a validated client/server message.
fn fields(m: &MessageView<'_>) -> Result<Fields> {
    let mut f = Fields {
        status: None,
        client_id: None,
        server_id: None,
        ia_pds: Vec::new(),
    };
    for raw in m.options().iter() {
        let raw = raw?;
        match raw.option_code() {
            OptionCode::StatusCode => once_status(&mut f.status, &raw)?,
            OptionCode::ClientId => once_duid(&mut f.client_id, &raw)?,
            OptionCode::ServerId => once_duid(&mut f.server_id, &raw)?,
            OptionCode::IaPd => f.ia_pds.push(ia_pd(&raw)?),
            _ => {}
        }
    }
    Ok(f)
}

fn missing(m: &MessageView<'_>, code: OptionCode) -> SnoopError {
    SnoopError::new(m.offset(), None, SnoopErrorKind::MissingOption(code))
}

/// A validated REPLY (RFC 8415 s.16.10: it must have a SERVERID; with an
/// IA_PD, it answers a message that had a CLIENTID and must carry it back).
fn reply(m: MessageView<'_>, relay: Vec<RelayHop>, datagram: Datagram) -> Result<Reply> {
    let f = fields(&m)?;
    let server_id = f
        .server_id
        .ok_or_else(|| missing(&m, OptionCode::ServerId))?;
    if !f.ia_pds.is_empty() && f.client_id.is_none() {
        return Err(missing(&m, OptionCode::ClientId));
    }
    Ok(Reply {
        datagram,
        relay,
        transaction_id: m.transaction_id(),
        status: f.status,
        client_id: f.client_id,
        server_id,
        ia_pds: f.ia_pds,
    })
}

/// A validated RELEASE or DECLINE (RFC 8415 s.16.8, s.16.9: CLIENTID and
/// SERVERID required).
fn release(m: MessageView<'_>, relay: Vec<RelayHop>, datagram: Datagram) -> Result<Release> {
    let f = fields(&m)?;
    let client_id = f
        .client_id
        .ok_or_else(|| missing(&m, OptionCode::ClientId))?;
    let server_id = f
        .server_id
        .ok_or_else(|| missing(&m, OptionCode::ServerId))?;
    Ok(Release {
        datagram,
        relay,
        msg_type: m.msg_type(),
        transaction_id: m.transaction_id(),
        client_id,
        server_id,
        ia_pds: f.ia_pds,
    })
}

#[cfg(test)]
mod tests;
