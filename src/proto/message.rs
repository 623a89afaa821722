//! Owned DHCPv6 messages and options: decode from bytes, build, encode.
//!
//! `decode` checks everything ([`crate::proto::view`] does the walking), and
//! `encode` reproduces a decoded message byte for byte: options are kept in
//! order, unknown options keep their raw body, and no field is normalised.

use super::consts::{MessageType, OptionCode, QueryType, StatusCode};
use super::duid::Duid;
use super::error::Result;
use super::view::{field, MessageView, OptionView, Options};
use ipnet::Ipv6Net;
use std::net::Ipv6Addr;

/// A DHCPv6 message: client/server or relay (RFC 8415 s.8, s.9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A client/server message (LEASEQUERY and its replies among them).
    Client(ClientMessage),
    /// A RELAY-FORW or RELAY-REPL.
    Relay(RelayMessage),
}

/// A client/server message: msg-type, 24-bit transaction-id, options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMessage {
    /// The msg-type.
    pub msg_type: MessageType,
    /// The transaction-id; only the low 24 bits are sent.
    pub transaction_id: u32,
    /// Options, in wire order.
    pub options: Vec<DhcpOption>,
}

/// A relay message: msg-type, hop-count, link-address, peer-address, options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayMessage {
    /// RELAY-FORW or RELAY-REPL.
    pub msg_type: MessageType,
    /// Number of relays that have relayed this message.
    pub hop_count: u8,
    /// Address identifying the client's link (may be ::).
    pub link_address: Ipv6Addr,
    /// Address of the client or relay the message came from.
    pub peer_address: Ipv6Addr,
    /// Options, in wire order.
    pub options: Vec<DhcpOption>,
}

/// One DHCPv6 option, typed where this codec knows the code, raw otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DhcpOption {
    /// OPTION_CLIENTID (1).
    ClientId(Duid),
    /// OPTION_SERVERID (2).
    ServerId(Duid),
    /// OPTION_IAADDR (5).
    IaAddr(IaAddr),
    /// OPTION_IAPREFIX (26).
    IaPrefix(IaPrefix),
    /// OPTION_ORO (6): requested option codes.
    Oro(Vec<u16>),
    /// OPTION_RELAY_MSG (9).
    RelayMsg(Box<Message>),
    /// OPTION_STATUS_CODE (13).
    StatusCode {
        /// The status.
        code: StatusCode,
        /// The message, as sent (UTF-8 by the RFC).
        message: Vec<u8>,
    },
    /// OPTION_INTERFACE_ID (18).
    InterfaceId(Vec<u8>),
    /// OPTION_REMOTE_ID (37), RFC 4649.
    RemoteId {
        /// Enterprise number.
        enterprise: u32,
        /// The remote-id.
        id: Vec<u8>,
    },
    /// OPTION_LQ_QUERY (44).
    LqQuery(LqQuery),
    /// OPTION_CLIENT_DATA (45).
    ClientData(Vec<DhcpOption>),
    /// OPTION_CLT_TIME (46).
    CltTime(u32),
    /// OPTION_LQ_RELAY_DATA (47).
    LqRelayData {
        /// The peer-address field.
        peer_address: Ipv6Addr,
        /// The relayed message.
        message: RelayMessage,
    },
    /// OPTION_LQ_CLIENT_LINK (48).
    LqClientLink(Vec<Ipv6Addr>),
    /// OPTION_RELAY_ID (53).
    RelayId(Duid),
    /// Any other option, kept raw.
    Unknown {
        /// The option-code.
        code: u16,
        /// The body.
        data: Vec<u8>,
    },
}

/// OPTION_IAADDR body (RFC 8415 s.21.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IaAddr {
    /// The address.
    pub address: Ipv6Addr,
    /// Preferred lifetime, seconds.
    pub preferred_lifetime: u32,
    /// Valid lifetime, seconds.
    pub valid_lifetime: u32,
    /// IAaddr-options.
    pub options: Vec<DhcpOption>,
}

/// OPTION_IAPREFIX body (RFC 8415 s.21.22).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IaPrefix {
    /// Preferred lifetime, seconds.
    pub preferred_lifetime: u32,
    /// Valid lifetime, seconds.
    pub valid_lifetime: u32,
    /// The prefix, as sent.
    pub prefix: Ipv6Net,
    /// IAprefix-options.
    pub options: Vec<DhcpOption>,
}

/// OPTION_LQ_QUERY body (RFC 5007 s.4.1.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LqQuery {
    /// The query type.
    pub query_type: QueryType,
    /// The link-address (:: when none).
    pub link_address: Ipv6Addr,
    /// Query-options.
    pub options: Vec<DhcpOption>,
}

fn options_from_view(opts: Options<'_>) -> Result<Vec<DhcpOption>> {
    let mut out = Vec::new();
    for raw in opts.iter() {
        out.push(DhcpOption::from_view(raw?.parse()?)?);
    }
    Ok(out)
}

fn put_options(options: &[DhcpOption], out: &mut Vec<u8>) {
    for o in options {
        o.encode(out);
    }
}

fn options_len(options: &[DhcpOption]) -> usize {
    options.iter().map(DhcpOption::buffer_len).sum()
}

impl Message {
    /// Decode one whole message (one TCP frame body), checking every option.
    pub fn decode(buf: &[u8]) -> Result<Self> {
        Self::from_view(MessageView::parse(buf)?)
    }

    /// Build an owned message from a view, checking every option.
    pub fn from_view(v: MessageView<'_>) -> Result<Self> {
        let options = options_from_view(v.options())?;
        Ok(if v.is_relay() {
            Message::Relay(RelayMessage {
                msg_type: v.msg_type(),
                hop_count: v.hop_count(),
                link_address: v.link_address(),
                peer_address: v.peer_address(),
                options,
            })
        } else {
            Message::Client(ClientMessage {
                msg_type: v.msg_type(),
                transaction_id: v.transaction_id(),
                options,
            })
        })
    }

    /// The msg-type.
    pub fn msg_type(&self) -> MessageType {
        match self {
            Message::Client(m) => m.msg_type,
            Message::Relay(m) => m.msg_type,
        }
    }

    /// The options.
    pub fn options(&self) -> &[DhcpOption] {
        match self {
            Message::Client(m) => &m.options,
            Message::Relay(m) => &m.options,
        }
    }

    /// Encoded length in octets.
    pub fn buffer_len(&self) -> usize {
        match self {
            Message::Client(m) => m.buffer_len(),
            Message::Relay(m) => m.buffer_len(),
        }
    }

    /// Append the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Message::Client(m) => m.encode(out),
            Message::Relay(m) => m.encode(out),
        }
    }

    /// The wire form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.buffer_len());
        self.encode(&mut v);
        v
    }
}

impl ClientMessage {
    /// Encoded length in octets.
    pub fn buffer_len(&self) -> usize {
        field::CLIENT_OPTIONS + options_len(&self.options)
    }

    /// Append the wire form to `out`. Only the low 24 bits of the transaction-id are written.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.msg_type.into());
        out.extend_from_slice(&self.transaction_id.to_be_bytes()[1..4]);
        put_options(&self.options, out);
    }

    /// The wire form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.buffer_len());
        self.encode(&mut v);
        v
    }

    /// The first option with this code.
    pub fn option(&self, code: OptionCode) -> Option<&DhcpOption> {
        self.options.iter().find(|o| o.code() == code)
    }

    /// The first STATUS_CODE option's status and message.
    pub fn status(&self) -> Option<(StatusCode, &[u8])> {
        self.options.iter().find_map(|o| match o {
            DhcpOption::StatusCode { code, message } => Some((*code, message.as_slice())),
            _ => None,
        })
    }
}

impl RelayMessage {
    /// Encoded length in octets.
    pub fn buffer_len(&self) -> usize {
        field::RELAY_OPTIONS + options_len(&self.options)
    }

    /// Append the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.msg_type.into());
        out.push(self.hop_count);
        out.extend_from_slice(&self.link_address.octets());
        out.extend_from_slice(&self.peer_address.octets());
        put_options(&self.options, out);
    }
}

impl DhcpOption {
    /// Build an owned option from a typed view, checking everything nested in it.
    pub fn from_view(v: OptionView<'_>) -> Result<Self> {
        Ok(match v {
            OptionView::ClientId(d) => DhcpOption::ClientId(Duid::from_bytes(d)),
            OptionView::ServerId(d) => DhcpOption::ServerId(Duid::from_bytes(d)),
            OptionView::RelayId(d) => DhcpOption::RelayId(Duid::from_bytes(d)),
            OptionView::IaAddr {
                address,
                preferred_lifetime,
                valid_lifetime,
                options,
            } => DhcpOption::IaAddr(IaAddr {
                address,
                preferred_lifetime,
                valid_lifetime,
                options: options_from_view(options)?,
            }),
            OptionView::IaPrefix {
                preferred_lifetime,
                valid_lifetime,
                prefix,
                options,
            } => DhcpOption::IaPrefix(IaPrefix {
                preferred_lifetime,
                valid_lifetime,
                prefix,
                options: options_from_view(options)?,
            }),
            OptionView::Oro(d) => DhcpOption::Oro(
                d.chunks_exact(2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]]))
                    .collect(),
            ),
            OptionView::RelayMsg(m) => DhcpOption::RelayMsg(Box::new(Message::from_view(m)?)),
            OptionView::StatusCode { code, message } => DhcpOption::StatusCode {
                code,
                message: message.to_vec(),
            },
            OptionView::InterfaceId(d) => DhcpOption::InterfaceId(d.to_vec()),
            OptionView::RemoteId { enterprise, id, .. } => DhcpOption::RemoteId {
                enterprise,
                id: id.to_vec(),
            },
            OptionView::LqQuery {
                query_type,
                link_address,
                options,
            } => DhcpOption::LqQuery(LqQuery {
                query_type,
                link_address,
                options: options_from_view(options)?,
            }),
            OptionView::ClientData(options) => DhcpOption::ClientData(options_from_view(options)?),
            OptionView::CltTime(t) => DhcpOption::CltTime(t),
            OptionView::LqRelayData {
                peer_address,
                message,
            } => {
                let message = match Message::from_view(message)? {
                    Message::Relay(r) => r,
                    // parse() only accepts relay messages inside LQ_RELAY_DATA.
                    Message::Client(_) => unreachable!("LQ_RELAY_DATA view holds a relay message"),
                };
                DhcpOption::LqRelayData {
                    peer_address,
                    message,
                }
            }
            OptionView::LqClientLink(d) => {
                DhcpOption::LqClientLink(d.chunks_exact(16).map(super::view::ipv6).collect())
            }
            OptionView::Unknown { code, data } => DhcpOption::Unknown {
                code,
                data: data.to_vec(),
            },
        })
    }

    /// The option code.
    pub fn code(&self) -> OptionCode {
        match self {
            DhcpOption::ClientId(_) => OptionCode::ClientId,
            DhcpOption::ServerId(_) => OptionCode::ServerId,
            DhcpOption::IaAddr(_) => OptionCode::IaAddr,
            DhcpOption::IaPrefix(_) => OptionCode::IaPrefix,
            DhcpOption::Oro(_) => OptionCode::Oro,
            DhcpOption::RelayMsg(_) => OptionCode::RelayMsg,
            DhcpOption::StatusCode { .. } => OptionCode::StatusCode,
            DhcpOption::InterfaceId(_) => OptionCode::InterfaceId,
            DhcpOption::RemoteId { .. } => OptionCode::RemoteId,
            DhcpOption::LqQuery(_) => OptionCode::LqQuery,
            DhcpOption::ClientData(_) => OptionCode::ClientData,
            DhcpOption::CltTime(_) => OptionCode::CltTime,
            DhcpOption::LqRelayData { .. } => OptionCode::LqRelayData,
            DhcpOption::LqClientLink(_) => OptionCode::LqClientLink,
            DhcpOption::RelayId(_) => OptionCode::RelayId,
            DhcpOption::Unknown { code, .. } => (*code).into(),
        }
    }

    /// Length of the option body (option-len).
    pub fn body_len(&self) -> usize {
        match self {
            DhcpOption::ClientId(d) | DhcpOption::ServerId(d) | DhcpOption::RelayId(d) => d.len(),
            DhcpOption::IaAddr(a) => 24 + options_len(&a.options),
            DhcpOption::IaPrefix(p) => 25 + options_len(&p.options),
            DhcpOption::Oro(codes) => 2 * codes.len(),
            DhcpOption::RelayMsg(m) => m.buffer_len(),
            DhcpOption::StatusCode { message, .. } => 2 + message.len(),
            DhcpOption::InterfaceId(d) => d.len(),
            DhcpOption::RemoteId { id, .. } => 4 + id.len(),
            DhcpOption::LqQuery(q) => 17 + options_len(&q.options),
            DhcpOption::ClientData(o) => options_len(o),
            DhcpOption::CltTime(_) => 4,
            DhcpOption::LqRelayData { message, .. } => 16 + message.buffer_len(),
            DhcpOption::LqClientLink(links) => 16 * links.len(),
            DhcpOption::Unknown { data, .. } => data.len(),
        }
    }

    /// Encoded length including the 4-octet header.
    pub fn buffer_len(&self) -> usize {
        field::OPTION_HEADER + self.body_len()
    }

    /// Append the wire form to `out`. A body longer than 65535 octets cannot
    /// be framed: its length field is written modulo 2^16, so callers that
    /// build messages must keep options within that size (decoded ones always are).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&u16::from(self.code()).to_be_bytes());
        out.extend_from_slice(&(self.body_len() as u16).to_be_bytes());
        match self {
            DhcpOption::ClientId(d) | DhcpOption::ServerId(d) | DhcpOption::RelayId(d) => {
                out.extend_from_slice(d.as_bytes())
            }
            DhcpOption::IaAddr(a) => {
                out.extend_from_slice(&a.address.octets());
                out.extend_from_slice(&a.preferred_lifetime.to_be_bytes());
                out.extend_from_slice(&a.valid_lifetime.to_be_bytes());
                put_options(&a.options, out);
            }
            DhcpOption::IaPrefix(p) => {
                out.extend_from_slice(&p.preferred_lifetime.to_be_bytes());
                out.extend_from_slice(&p.valid_lifetime.to_be_bytes());
                out.push(p.prefix.prefix_len());
                out.extend_from_slice(&p.prefix.addr().octets());
                put_options(&p.options, out);
            }
            DhcpOption::Oro(codes) => {
                for c in codes {
                    out.extend_from_slice(&c.to_be_bytes());
                }
            }
            DhcpOption::RelayMsg(m) => m.encode(out),
            DhcpOption::StatusCode { code, message } => {
                out.extend_from_slice(&u16::from(*code).to_be_bytes());
                out.extend_from_slice(message);
            }
            DhcpOption::InterfaceId(d) => out.extend_from_slice(d),
            DhcpOption::RemoteId { enterprise, id } => {
                out.extend_from_slice(&enterprise.to_be_bytes());
                out.extend_from_slice(id);
            }
            DhcpOption::LqQuery(q) => {
                out.push(q.query_type.into());
                out.extend_from_slice(&q.link_address.octets());
                put_options(&q.options, out);
            }
            DhcpOption::ClientData(o) => put_options(o, out),
            DhcpOption::CltTime(t) => out.extend_from_slice(&t.to_be_bytes()),
            DhcpOption::LqRelayData {
                peer_address,
                message,
            } => {
                out.extend_from_slice(&peer_address.octets());
                message.encode(out);
            }
            DhcpOption::LqClientLink(links) => {
                for l in links {
                    out.extend_from_slice(&l.octets());
                }
            }
            DhcpOption::Unknown { data, .. } => out.extend_from_slice(data),
        }
    }

    /// A STATUS_CODE option with a text message.
    pub fn status(code: StatusCode, message: &str) -> Self {
        DhcpOption::StatusCode {
            code,
            message: message.as_bytes().to_vec(),
        }
    }
}
