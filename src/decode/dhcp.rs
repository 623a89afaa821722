//! What `decode` shows of a DHCPv6 message that travelled over UDP: the
//! relay layers around it (RFC 8415 s.9), its client and server DUIDs
//! (s.21.2, s.21.3) and its identity associations: IA_NA with its IAADDRs
//! (s.21.4, s.21.6), IA_PD with its IAPREFIXes (s.21.21, s.21.22).
//!
//! The walking is the codec's ([`crate::proto::relay::relay_chain`],
//! [`crate::proto::ia`]); this module only gathers what it gives into the
//! owned, serialisable [`MessageDetail`] and formats it as text.

use crate::proto::binding::{display_interface_id, LeaseKind, RelayLayer};
use crate::proto::consts::{MessageType, OptionCode, StatusCode};
use crate::proto::duid::hex;
use crate::proto::error::Result;
use crate::proto::ia::{duplicate, ia_na, ia_pd, once_status};
use crate::proto::relay::relay_chain;
use crate::proto::view::{MessageView, OptionView, RawOption};
use crate::proto::Duid;
use serde::Serialize;

/// The relay layers, DUIDs and IAs of a message seen over UDP; flattened
/// into its `message` record. Each field is left out of JSON when absent.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct MessageDetail {
    /// The relay message type (RELAY-FORW or RELAY-REPL) the message
    /// travelled in, when it was relayed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay_type: Option<String>,
    /// The relay layers, outermost first (RFC 8415 s.9): hop-count,
    /// link-address, peer-address, INTERFACE_ID and REMOTE_ID (hex),
    /// RELAY_ID, as in a binding's `relay`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub relay: Vec<RelayLayer>,
    /// OPTION_CLIENTID: the client's DUID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<Duid>,
    /// OPTION_SERVERID: the server's DUID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_id: Option<Duid>,
    /// Every IA_NA, in wire order (RFC 8415 s.21.4).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ia_na: Vec<IaRecord>,
    /// Every IA_PD, in wire order (RFC 8415 s.21.21).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ia_pd: Vec<IaRecord>,
}

/// One IA_NA or IA_PD: IAID, T1, T2, its STATUS_CODE and its leases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IaRecord {
    /// The IAID.
    pub iaid: u32,
    /// T1, seconds.
    pub t1: u32,
    /// T2, seconds.
    pub t2: u32,
    /// STATUS_CODE inside the IA, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Its name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_name: Option<String>,
    /// The IAADDRs or IAPREFIXes, in wire order.
    #[serde(flatten)]
    pub leases: IaLeases,
}

/// What an IA holds: JSON `addresses` in an IA_NA, `prefixes` in an IA_PD.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum IaLeases {
    /// An IA_NA's IAADDRs (RFC 8415 s.21.6).
    #[serde(rename = "addresses")]
    Addresses(Vec<IaLease>),
    /// An IA_PD's IAPREFIXes (RFC 8415 s.21.22).
    #[serde(rename = "prefixes")]
    Prefixes(Vec<IaLease>),
}

impl IaLeases {
    /// The leases, whichever kind.
    pub fn list(&self) -> &[IaLease] {
        match self {
            IaLeases::Addresses(l) | IaLeases::Prefixes(l) => l,
        }
    }
}

/// One IAADDR or IAPREFIX.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IaLease {
    /// The address (JSON `address`) or prefix with its length (`prefix`), as sent.
    #[serde(flatten)]
    pub lease: LeaseKind,
    /// preferred-lifetime, seconds.
    pub preferred_lifetime: u32,
    /// valid-lifetime, seconds.
    pub valid_lifetime: u32,
    /// STATUS_CODE inside it, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Its name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_name: Option<String>,
}

fn status_name(s: Option<StatusCode>) -> Option<String> {
    s.map(|c| c.name().map(str::to_owned).unwrap_or(c.to_string()))
}

fn lease(lease: LeaseKind, pref: u32, valid: u32, status: Option<StatusCode>) -> IaLease {
    IaLease {
        lease,
        preferred_lifetime: pref,
        valid_lifetime: valid,
        status: status.map(u16::from),
        status_name: status_name(status),
    }
}

/// Unwrap a validated message's relay layers and gather the detail of the
/// client/server message inside: that message and its detail. A fault
/// (a malformed relay layer or IA, a second CLIENTID, SERVERID or
/// STATUS_CODE) is the codec's error, offsets from the outer message's start.
pub fn unwrap(outer: MessageView<'_>) -> Result<(MessageView<'_>, MessageDetail)> {
    let (layers, inner) = relay_chain(outer)?;
    let mut d = MessageDetail {
        relay_type: outer
            .is_relay()
            .then(|| outer.msg_type().name().unwrap_or_default().to_owned()),
        relay: layers.iter().map(|l| l.to_layer()).collect(),
        ..MessageDetail::default()
    };
    let mut status = None;
    for raw in inner.options().iter() {
        let raw = raw?;
        match raw.option_code() {
            OptionCode::ClientId => once_duid(&mut d.client_id, &raw)?,
            OptionCode::ServerId => once_duid(&mut d.server_id, &raw)?,
            OptionCode::StatusCode => once_status(&mut status, &raw)?,
            OptionCode::IaNa => {
                let ia = ia_na(&raw)?;
                d.ia_na.push(IaRecord {
                    iaid: ia.iaid,
                    t1: ia.t1,
                    t2: ia.t2,
                    status: ia.status.map(u16::from),
                    status_name: status_name(ia.status),
                    leases: IaLeases::Addresses(
                        (ia.addresses.iter())
                            .map(|a| {
                                let addr = LeaseKind::Address(a.address);
                                lease(addr, a.preferred_lifetime, a.valid_lifetime, a.status)
                            })
                            .collect(),
                    ),
                });
            }
            OptionCode::IaPd => {
                let ia = ia_pd(&raw)?;
                d.ia_pd.push(IaRecord {
                    iaid: ia.iaid,
                    t1: ia.t1,
                    t2: ia.t2,
                    status: ia.status.map(u16::from),
                    status_name: status_name(ia.status),
                    leases: IaLeases::Prefixes(
                        (ia.prefixes.iter())
                            .map(|p| {
                                let prefix = LeaseKind::Prefix(p.prefix);
                                lease(prefix, p.preferred_lifetime, p.valid_lifetime, p.status)
                            })
                            .collect(),
                    ),
                });
            }
            _ => {}
        }
    }
    Ok((inner, d))
}

/// Set `slot` to the DUID of a CLIENTID or SERVERID, or fail on a second
/// one (RFC 8415 s.21.2, s.21.3: at most one of each in a message).
fn once_duid(slot: &mut Option<Duid>, raw: &RawOption<'_>) -> Result<()> {
    if slot.is_some() {
        return Err(duplicate(raw));
    }
    if let OptionView::ClientId(d) | OptionView::ServerId(d) = raw.parse()? {
        *slot = Some(Duid::from_bytes(d));
    }
    Ok(())
}

/// The text lines after a message's own line: the relay layers, then each
/// IA with its leases, indented.
pub fn text_lines(d: &MessageDetail) -> Vec<String> {
    let mut out = Vec::new();
    let via = d.relay_type.as_deref().unwrap_or("relay");
    for l in &d.relay {
        let mut s = format!(
            "    via {via} hop={} link={} peer={}",
            l.hop_count, l.link_address, l.peer_address
        );
        if let Some(i) = &l.interface_id {
            s.push_str(&format!(" interface-id={}", display_interface_id(i)));
        }
        if let Some(r) = &l.remote_id {
            s.push_str(&format!(" remote-id=0x{}", hex(r)));
        }
        if let Some(r) = &l.relay_id {
            s.push_str(&format!(" relay-id={r}"));
        }
        out.push(s);
    }
    for (name, list, item) in [
        ("IA_NA", &d.ia_na, "IAADDR"),
        ("IA_PD", &d.ia_pd, "IAPREFIX"),
    ] {
        for ia in list {
            let mut s = format!("    {name} iaid={} T1={} T2={}", ia.iaid, ia.t1, ia.t2);
            push_status(&mut s, ia.status, &ia.status_name);
            out.push(s);
            for l in ia.leases.list() {
                let mut s = format!(
                    "      {item} {} pref={} valid={}",
                    l.lease, l.preferred_lifetime, l.valid_lifetime
                );
                push_status(&mut s, l.status, &l.status_name);
                out.push(s);
            }
        }
    }
    out
}

fn push_status(s: &mut String, code: Option<u16>, name: &Option<String>) {
    if let (Some(c), Some(n)) = (code, name) {
        s.push_str(&format!(" status={n}({c})"));
    }
}

/// The names of the message types, for counts (RFC 8415 s.7.3, RFC 5007
/// s.4.1, RFC 5460 s.5.2): `unknown(N)` for the others.
pub fn type_name(t: MessageType) -> String {
    t.name().map(str::to_owned).unwrap_or_else(|| t.to_string())
}
