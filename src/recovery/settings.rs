//! What the operator configured for planning: the ownership rule (table,
//! protocol, metric, pools, shortest prefix), how our layer of a relay
//! chain is recognised, the interface-id map and the next-hop fallback.

use crate::proto::Duid;
use crate::routes::Ownership;
use std::collections::BTreeMap;
use std::net::Ipv6Addr;

/// What to do for a prefix whose binding carries no relay data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NextHopFallback {
    /// Reject the prefix.
    #[default]
    None,
    /// Use the client's most recent address (IA_NA) as the gateway, on the
    /// interface whose prefix covers it.
    ClientAddress,
}

/// How the relay layer that is ours is recognised in a binding's relay
/// chain (OPTION_LQ_RELAY_DATA, RFC 5007 s.4.1.2.4).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum OurLayer {
    /// The layer that carries our Relay-ID (RFC 5460 s.5.4.1), or the only
    /// layer when it carries none: recovery by QUERY_BY_RELAY_ID.
    #[default]
    RelayId,
    /// The layer whose link-address is one of these: recovery by
    /// QUERY_BY_LINK_ADDRESS behind relays that send no Relay-ID (ISC
    /// dhcrelay puts the router's address on the client link there).
    LinkAddress(Vec<Ipv6Addr>),
}

/// Route planning settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanSettings {
    /// Our Relay-ID.
    pub relay_id: Duid,
    /// The ownership rule: our table, protocol and metric, the delegation
    /// pools and the shortest prefix routed.
    pub owner: Ownership,
    /// interface-id octets to interface name.
    pub interface_map: BTreeMap<Vec<u8>, String>,
    /// How our layer of a relay chain is recognised.
    pub our_layer: OurLayer,
    /// What to do without relay data.
    pub fallback: NextHopFallback,
}
