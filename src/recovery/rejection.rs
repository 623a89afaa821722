//! Why a delegated prefix gets no route: one typed reason per rule of the
//! planner, with a stable code for logs, JSON and metrics.

use crate::proto::{Duid, ServerIndex};
use crate::routes::NotCovered;
use ipnet::Ipv6Net;
use std::fmt;
use std::net::Ipv6Addr;

/// Why a prefix gets no route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// ::/0.
    DefaultRoute,
    /// Shorter than `min_prefix_len`.
    TooShort {
        /// Its length.
        len: u8,
        /// The minimum.
        min: u8,
    },
    /// Not inside any of `allowed_prefixes`.
    OutsidePools,
    /// Covers or equals a prefix of one of the router's own interfaces.
    CoversLocal {
        /// The interface.
        interface: String,
        /// Its prefix.
        local: Ipv6Net,
    },
    /// The relay chain has no layer with our Relay-ID (and is not a single layer).
    NotOurRelay,
    /// No layer of the relay chain carries one of our links
    /// (QUERY_BY_LINK_ADDRESS): another relay on the subnet relayed it.
    /// Dropped and counted, not an error.
    OtherRelay {
        /// The outermost layer's link-address.
        link_address: Ipv6Addr,
    },
    /// No relay data, and no usable fallback.
    NoRelayData,
    /// The interface-id maps (`[routes.interfaces]`) to an interface that
    /// does not exist on this machine.
    MissingInterface {
        /// The layer's interface-id, as the configuration writes it.
        interface_id: String,
        /// The interface it maps to.
        name: String,
    },
    /// The interface-id maps to one client interface while the layer's
    /// link-address (RFC 8415 s.9.1: the link the client is on) lies in a
    /// subnet of another: the map sends that link's clients out of the
    /// wrong interface.
    LinkElsewhere {
        /// The layer's interface-id, as text where it is text.
        interface_id: String,
        /// The interface it maps to.
        interface: String,
        /// The layer's link-address.
        link_address: Ipv6Addr,
        /// The client interface whose subnet holds it.
        holder: String,
    },
    /// No local interface for the client.
    NoInterface {
        /// The layer's interface-id, as text where it is text.
        interface_id: Option<String>,
        /// The layer's link-address.
        link_address: Ipv6Addr,
    },
    /// The next hop is neither link-local nor on-link, or is not a unicast peer.
    BadNextHop {
        /// The next hop.
        next_hop: Ipv6Addr,
        /// The interface it would go out of.
        interface: String,
    },
}

impl From<NotCovered> for Rejection {
    fn from(n: NotCovered) -> Self {
        match n {
            NotCovered::DefaultRoute => Rejection::DefaultRoute,
            NotCovered::TooShort { len, min } => Rejection::TooShort { len, min },
            NotCovered::OutsidePools => Rejection::OutsidePools,
        }
    }
}

impl Rejection {
    /// The stable machine-readable code of the reason (`outside-pools`).
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::DefaultRoute => "default-route",
            Rejection::TooShort { .. } => "too-short",
            Rejection::OutsidePools => "outside-pools",
            Rejection::CoversLocal { .. } => "covers-local",
            Rejection::NotOurRelay => "not-our-relay",
            Rejection::OtherRelay { .. } => "other-relay",
            Rejection::NoRelayData => "no-relay-data",
            Rejection::MissingInterface { .. } => "missing-interface",
            Rejection::LinkElsewhere { .. } => "link-on-other-interface",
            Rejection::NoInterface { .. } => "no-interface",
            Rejection::BadNextHop { .. } => "bad-next-hop",
        }
    }

    /// The binding is another relay's (a link query also returns the other
    /// relays' bindings of the subnet): dropped and counted, never listed
    /// as an error.
    pub fn is_other_relays(&self) -> bool {
        matches!(self, Rejection::OtherRelay { .. })
    }

    /// The prefix could not be routed for want of a local interface: the
    /// run is not complete (an interface may come up later).
    pub fn is_missing_interface(&self) -> bool {
        matches!(
            self,
            Rejection::MissingInterface { .. } | Rejection::NoInterface { .. }
        )
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::DefaultRoute => write!(f, "default route"),
            Rejection::TooShort { len, min } => {
                write!(f, "prefix length {len} is shorter than the minimum {min}")
            }
            Rejection::OutsidePools => write!(f, "outside the allowed prefixes"),
            Rejection::CoversLocal { interface, local } => {
                write!(f, "covers {local}, a prefix of local interface {interface}")
            }
            Rejection::NotOurRelay => write!(f, "relay chain does not carry our Relay-ID"),
            Rejection::OtherRelay { link_address } => write!(
                f,
                "relayed by another relay (link-address {link_address}), not through one of our links"
            ),
            Rejection::NoRelayData => write!(f, "no relay data and no next-hop fallback"),
            Rejection::MissingInterface { interface_id, name } => write!(
                f,
                "interface-id {interface_id} maps to interface {name}, which does not exist"
            ),
            Rejection::LinkElsewhere {
                interface_id,
                interface,
                link_address,
                holder,
            } => write!(
                f,
                "interface-id {interface_id} maps to {interface}, but the relay's link-address {link_address} is on {holder}'s subnet: the client is on {holder}'s link (check [routes.interfaces])"
            ),
            Rejection::NoInterface {
                interface_id,
                link_address,
            } => write!(
                f,
                "no local interface for interface-id {} / link-address {link_address}",
                interface_id.as_deref().unwrap_or("(none)")
            ),
            Rejection::BadNextHop {
                next_hop,
                interface,
            } => write!(
                f,
                "next hop {next_hop} is neither link-local nor on-link on {interface}"
            ),
        }
    }
}

/// A prefix that gets no route, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// The prefix.
    pub prefix: Ipv6Net,
    /// The client that holds it.
    pub client: Duid,
    /// The server that reported it.
    pub server: ServerIndex,
    /// Why.
    pub reason: Rejection,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_kinds() {
        let m = Rejection::MissingInterface {
            interface_id: "ge-0/0/9".into(),
            name: "vlan900".into(),
        };
        assert_eq!(m.code(), "missing-interface");
        assert!(m.is_missing_interface());
        assert_eq!(
            m.to_string(),
            "interface-id ge-0/0/9 maps to interface vlan900, which does not exist"
        );
        assert_eq!(Rejection::OutsidePools.code(), "outside-pools");
        assert!(!Rejection::OutsidePools.is_missing_interface());
        let o = Rejection::OtherRelay {
            link_address: "2001:db8:2::7".parse().unwrap(),
        };
        assert!(o.is_other_relays() && !o.is_missing_interface());
        assert_eq!(
            Rejection::from(NotCovered::TooShort { len: 16, min: 48 }),
            Rejection::TooShort { len: 16, min: 48 }
        );
        assert_eq!(Rejection::DefaultRoute.to_string(), "default route");
    }
}
