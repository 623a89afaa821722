//! Bindings: the unit the rest of pdrestore works with.
//!
//! One binding is one address (IAADDR) or one delegated prefix (IAPREFIX) of
//! one client, with its lifetimes, its CLT_TIME, and the relay chain the server
//! recorded for the client (OPTION_LQ_RELAY_DATA, RFC 5007 s.4.1.2.4). An
//! OPTION_CLIENT_DATA with several IAADDR/IAPREFIX options yields several
//! bindings; Kea sends one per CLIENT_DATA (see docs and tests/data/kea).
//!
//! [`ClientData`] and [`BindingRef`] are the zero-copy fast path; [`Binding`]
//! is the owned form, serialised as the JSON object `pdrestore decode --json`
//! prints and `pdrestore lab-server --bindings` reads.

use super::consts::OptionCode;
use super::duid::{check_duid_len, hex, parse_hex, Duid};
use super::error::DecodeError;
use super::view::{be32, field, ipv6, MessageView, OptionView, Options};
use ipnet::Ipv6Net;
use serde::{Deserialize, Serialize};
use std::net::Ipv6Addr;

/// What a binding leases: one address or one delegated prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LeaseKind {
    /// A delegated prefix (IA_PD, OPTION_IAPREFIX).
    #[serde(rename = "prefix")]
    Prefix(Ipv6Net),
    /// An address (IA_NA/IA_TA, OPTION_IAADDR).
    #[serde(rename = "address")]
    Address(Ipv6Addr),
}

impl std::fmt::Display for LeaseKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LeaseKind::Prefix(p) => write!(f, "{p}"),
            LeaseKind::Address(a) => write!(f, "{a}"),
        }
    }
}

/// One relay layer of a binding's relay chain, outermost first.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RelayLayer {
    /// The relay message's hop-count.
    #[serde(default)]
    pub hop_count: u8,
    /// link-address: names the link the message came in on (may be ::).
    pub link_address: Ipv6Addr,
    /// peer-address: where the relayed message came from (the client's
    /// link-local address in the layer next to the client).
    pub peer_address: Ipv6Addr,
    /// OPTION_INTERFACE_ID, as hex in JSON.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "hex_opt")]
    pub interface_id: Option<Vec<u8>>,
    /// OPTION_REMOTE_ID body (enterprise-number then remote-id), as hex in JSON.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "hex_opt")]
    pub remote_id: Option<Vec<u8>>,
    /// OPTION_RELAY_ID: the relay's DUID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_id: Option<Duid>,
}

/// An owned binding.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Binding {
    /// The client's DUID (OPTION_CLIENTID inside OPTION_CLIENT_DATA).
    pub client_duid: Duid,
    /// The address or prefix (JSON key `address` or `prefix`).
    #[serde(flatten)]
    pub lease: LeaseKind,
    /// Preferred lifetime in seconds, as of the moment the server sent it.
    pub preferred_lifetime: u32,
    /// Valid lifetime in seconds, as of the moment the server sent it.
    pub valid_lifetime: u32,
    /// Seconds since the server last heard from the client (OPTION_CLT_TIME).
    pub clt_time: u32,
    /// The relay chain, outermost layer first; empty when the server sent no relay data.
    #[serde(default)]
    pub relay: Vec<RelayLayer>,
}

mod hex_opt {
    use super::{hex, parse_hex};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_str(&hex(b)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        match s {
            None => Ok(None),
            Some(s) => parse_hex(&s).map(Some).map_err(serde::de::Error::custom),
        }
    }
}

/// Why an OPTION_CLIENT_DATA yields no bindings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientDataError {
    /// Something inside it does not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// No OPTION_CLT_TIME: RFC 5007 s.4.3.3 says to discard it.
    #[error("CLIENT_DATA at offset {0} has no CLT_TIME (discarded, RFC 5007 4.3.3)")]
    MissingCltTime(usize),
    /// No OPTION_CLIENTID: the bindings cannot be attributed to a client.
    #[error("CLIENT_DATA at offset {0} has no CLIENTID (discarded)")]
    MissingClientId(usize),
    /// An option that must appear at most once appears twice.
    #[error("CLIENT_DATA at offset {offset} has more than one {code} (discarded)")]
    Duplicate {
        /// Offset of the CLIENT_DATA body.
        offset: usize,
        /// The repeated option.
        code: OptionCode,
    },
}

/// A checked OPTION_CLIENT_DATA, borrowed: the client, its CLT_TIME, relay
/// data, and the options holding its leases.
#[derive(Debug, Clone, Copy)]
pub struct ClientData<'a> {
    /// The client's DUID.
    pub client_duid: &'a [u8],
    /// OPTION_CLT_TIME.
    pub clt_time: u32,
    /// OPTION_LQ_RELAY_DATA, if sent.
    pub relay: Option<RelayChain<'a>>,
    /// The part of the CLIENT_DATA from its first IAADDR/IAPREFIX to the end
    /// of its last one (empty when it has none): all `bindings` walks.
    leases: Options<'a>,
}

fn set_once<T>(
    slot: &mut Option<T>,
    v: T,
    offset: usize,
    code: OptionCode,
) -> Result<(), ClientDataError> {
    if slot.is_some() {
        return Err(ClientDataError::Duplicate { offset, code });
    }
    *slot = Some(v);
    Ok(())
}

impl<'a> ClientData<'a> {
    /// Check a CLIENT_DATA body completely (every nested option) and pick out
    /// its client, CLT_TIME and relay data.
    pub fn parse(options: Options<'a>) -> Result<Self, ClientDataError> {
        let offset = options.offset();
        let mut duid = None;
        let mut clt = None;
        let mut relay = None;
        // Octets of the body from the first lease option to the end of the last.
        let mut leases: Option<(usize, usize)> = None;
        for raw in options.iter() {
            let raw = raw?;
            // The whole option, nested ones included (free on options of a
            // message that `MessageView::parse_validated` accepted).
            raw.validate()?;
            match OptionCode::from(raw.code) {
                OptionCode::ClientId => {
                    set_once(&mut duid, raw.data, offset, OptionCode::ClientId)?
                }
                OptionCode::CltTime => {
                    set_once(&mut clt, be32(raw.data), offset, OptionCode::CltTime)?
                }
                OptionCode::LqRelayData => {
                    let chain = RelayChain {
                        peer_address: ipv6(raw.data),
                        message: raw.lq_relay_message()?,
                    };
                    set_once(&mut relay, chain, offset, OptionCode::LqRelayData)?
                }
                OptionCode::IaAddr | OptionCode::IaPrefix => {
                    let start = raw.offset - offset;
                    let end = start + field::OPTION_HEADER + raw.data.len();
                    leases = Some((leases.map_or(start, |(s, _)| s), end));
                }
                _ => {}
            }
        }
        let client_duid = duid.ok_or(ClientDataError::MissingClientId(offset))?;
        let clt_time = clt.ok_or(ClientDataError::MissingCltTime(offset))?;
        Ok(ClientData {
            client_duid,
            clt_time,
            relay,
            leases: match leases {
                Some((start, end)) => options.slice(start, end),
                None => options.slice(0, 0),
            },
        })
    }

    /// The bindings: one per IAADDR and IAPREFIX, in wire order.
    pub fn bindings(&self) -> impl Iterator<Item = BindingRef<'a>> + 'a {
        let (duid, clt, relay) = (self.client_duid, self.clt_time, self.relay);
        let mut options = self.leases.iter();
        // Only IAADDR and IAPREFIX are parsed again; the rest (between them)
        // was checked by `parse` and is skipped by its code.
        std::iter::from_fn(move || {
            for raw in options.by_ref() {
                let Ok(raw) = raw else { return None };
                // The same fields RawOption::parse reads, without building a view.
                let d = raw.data;
                let (lease, preferred_lifetime, valid_lifetime) = match OptionCode::from(raw.code) {
                    OptionCode::IaAddr if d.len() >= 24 => (
                        LeaseKind::Address(ipv6(&d[0..16])),
                        be32(&d[16..20]),
                        be32(&d[20..24]),
                    ),
                    OptionCode::IaPrefix if d.len() >= 25 => {
                        match Ipv6Net::new(ipv6(&d[9..25]), d[8]) {
                            Ok(prefix) => {
                                (LeaseKind::Prefix(prefix), be32(&d[0..4]), be32(&d[4..8]))
                            }
                            Err(_) => continue,
                        }
                    }
                    _ => continue,
                };
                return Some(BindingRef {
                    client_duid: duid,
                    lease,
                    preferred_lifetime,
                    valid_lifetime,
                    clt_time: clt,
                    relay,
                });
            }
            None
        })
    }
}

/// The CLIENT_DATA options at the top level of a message, unchecked.
pub fn client_data_options<'a>(msg: &MessageView<'a>) -> impl Iterator<Item = Options<'a>> + 'a {
    let mut options = msg.options().iter();
    std::iter::from_fn(move || {
        for raw in options.by_ref() {
            let Ok(raw) = raw else { return None };
            if OptionCode::from(raw.code) == OptionCode::ClientData {
                // What RawOption::parse gives for CLIENT_DATA, without the view.
                if let Ok(opts) = raw.nested(0) {
                    return Some(opts);
                }
            }
        }
        None
    })
}

/// A binding, borrowed from the message it arrived in.
#[derive(Debug, Clone, Copy)]
pub struct BindingRef<'a> {
    /// The client's DUID octets.
    pub client_duid: &'a [u8],
    /// Address or prefix.
    pub lease: LeaseKind,
    /// Preferred lifetime, seconds.
    pub preferred_lifetime: u32,
    /// Valid lifetime, seconds.
    pub valid_lifetime: u32,
    /// CLT_TIME of the CLIENT_DATA.
    pub clt_time: u32,
    /// Relay data of the CLIENT_DATA.
    pub relay: Option<RelayChain<'a>>,
}

impl BindingRef<'_> {
    /// The owned form.
    pub fn to_binding(&self) -> Binding {
        Binding {
            client_duid: Duid::from_bytes(self.client_duid),
            lease: self.lease,
            preferred_lifetime: self.preferred_lifetime,
            valid_lifetime: self.valid_lifetime,
            clt_time: self.clt_time,
            relay: self
                .relay
                .map(|r| r.layers().map(|l| l.to_layer()).collect())
                .unwrap_or_default(),
        }
    }
}

/// OPTION_LQ_RELAY_DATA: the relay chain the server last saw for a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayChain<'a> {
    /// The option's peer-address field (Kea: the outermost layer's peer).
    pub peer_address: Ipv6Addr,
    /// The outermost relay message.
    pub message: MessageView<'a>,
}

impl<'a> RelayChain<'a> {
    /// The layers, outermost first, following OPTION_RELAY_MSG while it holds
    /// a relay message. The chain must have been validated.
    pub fn layers(&self) -> RelayLayers<'a> {
        RelayLayers {
            next: Some(self.message),
        }
    }
}

/// Iterator over the layers of a [`RelayChain`].
#[derive(Debug, Clone)]
pub struct RelayLayers<'a> {
    next: Option<MessageView<'a>>,
}

impl<'a> RelayLayers<'a> {
    /// The layers of `chain`, outermost first, or none without a chain: one
    /// iterator either way, without an adapter around it on the hot path.
    pub fn of(chain: Option<&RelayChain<'a>>) -> RelayLayers<'a> {
        RelayLayers {
            next: chain.map(|c| c.message),
        }
    }
}

/// One relay layer, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayLayerRef<'a> {
    /// hop-count.
    pub hop_count: u8,
    /// link-address.
    pub link_address: Ipv6Addr,
    /// peer-address.
    pub peer_address: Ipv6Addr,
    /// OPTION_INTERFACE_ID.
    pub interface_id: Option<&'a [u8]>,
    /// OPTION_REMOTE_ID body.
    pub remote_id: Option<&'a [u8]>,
    /// OPTION_RELAY_ID.
    pub relay_id: Option<&'a [u8]>,
}

impl RelayLayer {
    /// The borrowed form, as the zero-copy walk of a relay chain gives it.
    pub fn as_ref(&self) -> RelayLayerRef<'_> {
        RelayLayerRef {
            hop_count: self.hop_count,
            link_address: self.link_address,
            peer_address: self.peer_address,
            interface_id: self.interface_id.as_deref(),
            remote_id: self.remote_id.as_deref(),
            relay_id: self.relay_id.as_ref().map(Duid::as_bytes),
        }
    }
}

impl<'a> RelayLayerRef<'a> {
    /// The fixed fields of the relay message `m` (RFC 8415 s.9), its
    /// options not read yet.
    #[inline]
    pub(crate) fn header(m: &MessageView<'a>) -> Self {
        RelayLayerRef {
            hop_count: m.hop_count(),
            link_address: m.link_address(),
            peer_address: m.peer_address(),
            interface_id: None,
            remote_id: None,
            relay_id: None,
        }
    }
}

impl RelayLayerRef<'_> {
    /// The owned form.
    pub fn to_layer(&self) -> RelayLayer {
        RelayLayer {
            hop_count: self.hop_count,
            link_address: self.link_address,
            peer_address: self.peer_address,
            interface_id: self.interface_id.map(<[u8]>::to_vec),
            remote_id: self.remote_id.map(<[u8]>::to_vec),
            relay_id: self.relay_id.map(Duid::from_bytes),
        }
    }
}

impl<'a> Iterator for RelayLayers<'a> {
    type Item = RelayLayerRef<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        let m = self.next.take()?;
        if !m.is_relay() {
            return None;
        }
        let mut layer = RelayLayerRef::header(&m);
        // The chain was validated with its CLIENT_DATA: only the codes are
        // needed here, and the same length checks as `RawOption::parse`.
        for raw in m.options().iter() {
            let Ok(raw) = raw else { break };
            match OptionCode::from(raw.code) {
                OptionCode::InterfaceId => {
                    layer.interface_id.get_or_insert(raw.data);
                }
                OptionCode::RemoteId if raw.data.len() >= 4 => {
                    layer.remote_id.get_or_insert(raw.data);
                }
                OptionCode::RelayId if check_duid_len(raw.data.len()).is_ok() => {
                    layer.relay_id.get_or_insert(raw.data);
                }
                OptionCode::RelayMsg if self.next.is_none() => {
                    if let Ok(OptionView::RelayMsg(inner)) = raw.parse() {
                        if inner.is_relay() {
                            self.next = Some(inner);
                        }
                    }
                }
                _ => {}
            }
        }
        Some(layer)
    }
}

/// Turns each binding, borrowed from the message it arrived in, into what
/// the consumer wants, on the task that reads the connection: the owned
/// [`Binding`] by default ([`OwnedBindings`]), or a compact form that
/// costs no allocation (the recovery's).
pub trait BindingMapper: Clone + Send + 'static {
    /// What a binding becomes.
    type Item: Send + 'static;

    /// The binding `b`, or, when its relay chain (OPTION_LQ_RELAY_DATA) has
    /// more than `max_relay_depth` layers, the number of layers.
    fn map(&mut self, b: &BindingRef<'_>, max_relay_depth: usize) -> Result<Self::Item, usize>;
}

/// The default [`BindingMapper`]: the owned [`Binding`], every field kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OwnedBindings;

impl BindingMapper for OwnedBindings {
    type Item = Binding;

    fn map(&mut self, b: &BindingRef<'_>, max_relay_depth: usize) -> Result<Binding, usize> {
        let binding = b.to_binding();
        if binding.relay.len() > max_relay_depth {
            return Err(binding.relay.len());
        }
        Ok(binding)
    }
}

/// An interface-id (OPTION_INTERFACE_ID, RFC 8415 s.21.18) as an operator
/// writes it in `[routes.interfaces]`: the text when it is printable ASCII,
/// else `0x` and its octets in hex (ISC dhcrelay's `07000000` is
/// `0x07000000`).
pub fn display_interface_id(id: &[u8]) -> String {
    if !id.is_empty() && id.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        String::from_utf8_lossy(id).into_owned()
    } else {
        format!("0x{}", hex(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape() {
        let b = Binding {
            client_duid: "00030001020000000000".parse().unwrap(),
            lease: LeaseKind::Prefix("2001:db8:8000::/56".parse().unwrap()),
            preferred_lifetime: 3000,
            valid_lifetime: 4000,
            clt_time: 7,
            relay: vec![RelayLayer {
                hop_count: 0,
                link_address: "2001:db8:1::1".parse().unwrap(),
                peer_address: "fe80::1".parse().unwrap(),
                interface_id: Some(b"ge-0/0/1".to_vec()),
                remote_id: None,
                relay_id: Some("000200000009010203040506".parse().unwrap()),
            }],
        };
        let j = serde_json::to_string(&b).unwrap();
        assert_eq!(
            j,
            r#"{"client_duid":"00030001020000000000","prefix":"2001:db8:8000::/56","preferred_lifetime":3000,"valid_lifetime":4000,"clt_time":7,"relay":[{"hop_count":0,"link_address":"2001:db8:1::1","peer_address":"fe80::1","interface_id":"67652d302f302f31","relay_id":"000200000009010203040506"}]}"#
        );
        let back: Binding = serde_json::from_str(&j).unwrap();
        assert_eq!(back, b);
        let addr: Binding = serde_json::from_str(
            r#"{"client_duid":"0003","address":"2001:db8::5","preferred_lifetime":1,"valid_lifetime":2,"clt_time":0}"#,
        )
        .unwrap();
        assert_eq!(
            addr.lease,
            LeaseKind::Address("2001:db8::5".parse().unwrap())
        );
        assert!(addr.relay.is_empty());
    }
}
