//! Route settings, the reasons a prefix gets no route, and **the reference
//! planner**.
//!
//! [`PlanSettings`] and [`Rejection`] are shared by everything that plans.
//! [`PlanSettings::route_for`] and [`PlanSettings::plan`] are the reference
//! versions of the planning rules, written plainly over owned bindings and a
//! reconciled set: the recovery itself plans with
//! [`super::planner::Planner`] (the same rules on precomputed networks, over
//! borrowed and owned bindings alike), and property tests hold the planner
//! and the streaming installer to these.
//!
//! Next hop: the peer-address of the relay layer that carries our own
//! Relay-ID (RFC 5460 s.5.4.1) in the binding's relay chain (RFC 5007
//! s.4.1.2.4: OPTION_LQ_RELAY_DATA); a single layer without RELAY_ID counts
//! when it is the only one. That layer's peer-address is the address the
//! client sent from, normally its link-local address. Outgoing interface:
//! the layer's interface-id mapped through the configuration, else the
//! interface of that name, else the local interface whose addresses cover the
//! layer's link-address. Without relay data, the client's address (IA_NA) can
//! serve as the gateway when configured.

use super::reconcile::{client_address, Millis, Observed, Reconciled};
use crate::proto::{Duid, LeaseKind, RelayLayer, ServerIndex};
use crate::routes::Route;
use ipnet::Ipv6Net;
use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv6Addr;

pub use crate::routes::Interface;

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

/// Route settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanSettings {
    /// Our Relay-ID.
    pub relay_id: Duid,
    /// Routing table (254 = main).
    pub table: u32,
    /// Protocol tag of our routes (16 = RTPROT_DHCP).
    pub protocol: u8,
    /// Route metric (priority).
    pub metric: u32,
    /// Delegation pools: only prefixes inside one of these are installed.
    pub allowed_prefixes: Vec<Ipv6Net>,
    /// Shortest prefix length accepted.
    pub min_prefix_len: u8,
    /// interface-id octets to interface name.
    pub interface_map: BTreeMap<Vec<u8>, String>,
    /// How our layer of a relay chain is recognised.
    pub our_layer: OurLayer,
    /// What to do without relay data.
    pub fallback: NextHopFallback,
}

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

/// The desired routes and the rejections.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    /// One route per accepted prefix.
    pub routes: BTreeMap<Ipv6Net, Route>,
    /// Every prefix that was not accepted.
    pub rejected: Vec<Rejected>,
}

fn is_link_local(a: &Ipv6Addr) -> bool {
    (a.segments()[0] & 0xffc0) == 0xfe80
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

pub use crate::proto::binding::display_interface_id;

/// Our layer of a relay chain (outermost first), and the layer whose
/// peer-address is the next hop: ours, or, when the one layer inside ours
/// is a lightweight relay's (RFC 6221 s.6.1: its link-address is `::`, and
/// its peer-address the client's), that one.
pub fn our_layer<'a>(
    relay: &'a [RelayLayer],
    settings: &PlanSettings,
) -> Result<(&'a RelayLayer, &'a RelayLayer), Rejection> {
    let i = match &settings.our_layer {
        OurLayer::RelayId => relay
            .iter()
            .position(|l| l.relay_id.as_ref() == Some(&settings.relay_id))
            .or_else(|| (relay.len() == 1 && relay[0].relay_id.is_none()).then_some(0))
            .ok_or(Rejection::NotOurRelay)?,
        OurLayer::LinkAddress(links) => relay
            .iter()
            .position(|l| links.contains(&l.link_address))
            .ok_or(Rejection::OtherRelay {
                link_address: relay
                    .first()
                    .map_or(Ipv6Addr::UNSPECIFIED, |l| l.link_address),
            })?,
    };
    let hop = match relay.get(i + 1) {
        Some(inner) if i + 2 == relay.len() && inner.link_address.is_unspecified() => inner,
        _ => &relay[i],
    };
    Ok((&relay[i], hop))
}

impl PlanSettings {
    /// The ownership rule of these settings: our table, protocol, pools
    /// and shortest prefix.
    pub fn ownership(&self) -> crate::routes::Ownership {
        crate::routes::Ownership::new(
            self.table,
            self.protocol,
            &self.allowed_prefixes,
            self.min_prefix_len,
        )
    }

    /// Safety checks on the prefix itself.
    pub fn check_prefix(
        &self,
        prefix: &Ipv6Net,
        interfaces: &[Interface],
    ) -> Result<(), Rejection> {
        if prefix.prefix_len() == 0 {
            return Err(Rejection::DefaultRoute);
        }
        if prefix.prefix_len() < self.min_prefix_len {
            return Err(Rejection::TooShort {
                len: prefix.prefix_len(),
                min: self.min_prefix_len,
            });
        }
        if !self.allowed_prefixes.iter().any(|p| p.contains(prefix)) {
            return Err(Rejection::OutsidePools);
        }
        for i in interfaces {
            for a in &i.addresses {
                if prefix.contains(&a.trunc()) {
                    return Err(Rejection::CoversLocal {
                        interface: i.name.to_string(),
                        local: a.trunc(),
                    });
                }
            }
        }
        Ok(())
    }

    fn interface_for_layer<'a>(
        &self,
        layer: &RelayLayer,
        interfaces: &'a [Interface],
    ) -> Result<&'a Interface, Rejection> {
        if let Some(id) = &layer.interface_id {
            if let Some(name) = self.interface_map.get(id) {
                // The map is the operator's word: no guessing past it.
                return interfaces
                    .iter()
                    .find(|i| *i.name == **name)
                    .ok_or_else(|| Rejection::MissingInterface {
                        interface_id: display_interface_id(id),
                        name: name.clone(),
                    });
            }
            if let Some(i) = interfaces.iter().find(|i| i.name.as_bytes() == &id[..]) {
                return Ok(i);
            }
        }
        if !layer.link_address.is_unspecified() {
            if let Some(i) = interfaces
                .iter()
                .find(|i| i.addresses.iter().any(|a| a.contains(&layer.link_address)))
            {
                return Ok(i);
            }
        }
        Err(Rejection::NoInterface {
            interface_id: layer.interface_id.as_deref().map(display_interface_id),
            link_address: layer.link_address,
        })
    }

    /// The next hop must be a unicast neighbour on `out`: link-local, or inside one
    /// of its prefixes, and not one of its own addresses.
    pub fn check_next_hop(&self, next_hop: Ipv6Addr, out: &Interface) -> Result<(), Rejection> {
        let bad = || Rejection::BadNextHop {
            next_hop,
            interface: out.name.to_string(),
        };
        if next_hop.is_unspecified() || next_hop.is_loopback() || next_hop.is_multicast() {
            return Err(bad());
        }
        if out.addresses.iter().any(|a| a.addr() == next_hop) {
            return Err(bad());
        }
        if is_link_local(&next_hop) || out.addresses.iter().any(|a| a.contains(&next_hop)) {
            Ok(())
        } else {
            Err(bad())
        }
    }

    /// The route for one winning prefix binding (the reference planner).
    pub fn route_for(
        &self,
        obs: &Observed,
        client_addr: Option<Ipv6Addr>,
        interfaces: &[Interface],
        now: Millis,
    ) -> Result<Route, Rejection> {
        let prefix = match obs.binding.lease {
            LeaseKind::Prefix(p) => p,
            LeaseKind::Address(a) => Ipv6Net::new(a, 128).expect("128 is a valid length"),
        };
        self.check_prefix(&prefix, interfaces)?;
        let (gateway, out) = if obs.binding.relay.is_empty() {
            match (self.fallback, client_addr) {
                (NextHopFallback::ClientAddress, Some(addr)) => {
                    let out = interfaces
                        .iter()
                        .find(|i| i.addresses.iter().any(|a| a.contains(&addr)))
                        .ok_or(Rejection::NoInterface {
                            interface_id: None,
                            link_address: addr,
                        })?;
                    (addr, out)
                }
                _ => return Err(Rejection::NoRelayData),
            }
        } else {
            let (layer, hop) = our_layer(&obs.binding.relay, self)?;
            (
                hop.peer_address,
                self.interface_for_layer(layer, interfaces)?,
            )
        };
        self.check_next_hop(gateway, out)?;
        Ok(Route {
            prefix: prefix.trunc(),
            gateway,
            interface: out.name.clone(),
            ifindex: out.index,
            table: self.table,
            protocol: self.protocol,
            metric: self.metric,
            expires: Some(obs.remaining_valid(now)),
        })
    }

    /// Plan every prefix of a reconciliation (the reference planning).
    pub fn plan(&self, r: &Reconciled, interfaces: &[Interface], now: Millis) -> Plan {
        let mut plan = Plan::default();
        for (prefix, obs) in &r.prefixes {
            let addr = client_address(r, &obs.binding.client_duid);
            match self.route_for(obs, addr, interfaces, now) {
                Ok(route) => {
                    plan.routes.insert(route.prefix, route);
                }
                Err(reason) => plan.rejected.push(Rejected {
                    prefix: *prefix,
                    client: obs.binding.client_duid.clone(),
                    server: obs.server,
                    reason,
                }),
            }
        }
        plan
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::reconcile::{reconcile, tests::pd};
    use super::*;

    /// Our Relay-ID in the test fixtures.
    pub(crate) const OURS: &str = "000200000009010203040506";

    /// Settings of the planning tests: one pool, one interface-id mapping.
    pub(crate) fn settings() -> PlanSettings {
        PlanSettings {
            relay_id: OURS.parse().unwrap(),
            table: 254,
            protocol: 16,
            metric: 1024,
            allowed_prefixes: vec!["2001:db8:8000::/40".parse().unwrap()],
            min_prefix_len: 48,
            interface_map: BTreeMap::from([(b"ge-0/0/1".to_vec(), "veth-c1".to_string())]),
            our_layer: OurLayer::RelayId,
            fallback: NextHopFallback::None,
        }
    }

    /// Three client links; veth-c1 also has fe80::1.
    pub(crate) fn interfaces() -> Vec<Interface> {
        vec![
            Interface {
                name: "veth-c1".into(),
                index: 5,
                addresses: vec![
                    "2001:db8:1::1/64".parse().unwrap(),
                    "fe80::1/64".parse().unwrap(),
                ],
            },
            Interface {
                name: "veth-c2".into(),
                index: 6,
                addresses: vec!["2001:db8:2::1/64".parse().unwrap()],
            },
            Interface {
                name: "port-0".into(),
                index: 7,
                addresses: vec!["2001:db8:3::1/64".parse().unwrap()],
            },
        ]
    }

    fn layer(link: &str, peer: &str, ifid: Option<&str>, relay_id: Option<&str>) -> RelayLayer {
        RelayLayer {
            hop_count: 0,
            link_address: link.parse().unwrap(),
            peer_address: peer.parse().unwrap(),
            interface_id: ifid.map(|s| s.as_bytes().to_vec()),
            remote_id: None,
            relay_id: relay_id.map(|s| s.parse().unwrap()),
        }
    }

    fn obs(prefix: &str, relay: Vec<RelayLayer>) -> Observed {
        let mut o = pd(0, 1000, "01", prefix, 10, 3600);
        o.binding.relay = relay;
        o
    }

    fn route(o: &Observed) -> Result<Route, Rejection> {
        settings().route_for(o, None, &interfaces(), 2000)
    }

    #[test]
    fn one_hop_with_interface_id_mapping() {
        let o = obs(
            "2001:db8:8000:100::/56",
            vec![layer(
                "2001:db8:1::1",
                "fe80::2",
                Some("ge-0/0/1"),
                Some(OURS),
            )],
        );
        let r = route(&o).unwrap();
        assert_eq!(
            r.prefix,
            "2001:db8:8000:100::/56".parse::<Ipv6Net>().unwrap()
        );
        assert_eq!(r.gateway, "fe80::2".parse::<Ipv6Addr>().unwrap());
        assert_eq!((&*r.interface, r.ifindex), ("veth-c1", 5));
        assert_eq!((r.table, r.protocol, r.metric), (254, 16, 1024));
        // Received at 1s with 3600s valid, planned at 2s: 3599s remain.
        assert_eq!(r.expires, Some(3599));
    }

    #[test]
    fn interface_id_as_interface_name_and_link_address_fallback() {
        let o = obs(
            "2001:db8:8000:100::/56",
            vec![layer("::", "fe80::2", Some("port-0"), Some(OURS))],
        );
        assert_eq!(&*route(&o).unwrap().interface, "port-0");
        let o = obs(
            "2001:db8:8000:100::/56",
            vec![layer("2001:db8:2::1", "fe80::2", Some("nope"), Some(OURS))],
        );
        assert_eq!(&*route(&o).unwrap().interface, "veth-c2");
        let o = obs(
            "2001:db8:8000:100::/56",
            vec![layer("2001:db8:2::1", "fe80::2", None, Some(OURS))],
        );
        assert_eq!(&*route(&o).unwrap().interface, "veth-c2");
        let o = obs(
            "2001:db8:8000:100::/56",
            vec![layer("2001:db8:9::1", "fe80::2", Some("nope"), Some(OURS))],
        );
        assert_eq!(
            route(&o),
            Err(Rejection::NoInterface {
                interface_id: Some("nope".into()),
                link_address: "2001:db8:9::1".parse().unwrap()
            })
        );
    }

    #[test]
    fn a_mapped_interface_that_is_missing_is_refused_not_guessed() {
        let mut s = settings();
        s.interface_map
            .insert(b"ge-0/0/9".to_vec(), "vlan900".to_string());
        // The link-address would match veth-c2, but the map says vlan900.
        let o = obs(
            "2001:db8:8000:100::/56",
            vec![layer(
                "2001:db8:2::1",
                "fe80::2",
                Some("ge-0/0/9"),
                Some(OURS),
            )],
        );
        let r = s.route_for(&o, None, &interfaces(), 2000);
        assert_eq!(
            r,
            Err(Rejection::MissingInterface {
                interface_id: "ge-0/0/9".into(),
                name: "vlan900".into()
            })
        );
        let e = r.unwrap_err();
        assert_eq!(e.code(), "missing-interface");
        assert!(e.is_missing_interface());
        assert_eq!(
            e.to_string(),
            "interface-id ge-0/0/9 maps to interface vlan900, which does not exist"
        );
        assert_eq!(Rejection::OutsidePools.code(), "outside-pools");
        assert!(!Rejection::OutsidePools.is_missing_interface());
    }

    #[test]
    fn by_link_address_our_layer_is_the_one_on_our_link() {
        let mut s = settings();
        s.our_layer = OurLayer::LinkAddress(vec!["2001:db8:2::1".parse().unwrap()]);
        // ISC dhcrelay: one layer, no Relay-ID, our address as link-address.
        let o = obs(
            "2001:db8:8000:100::/56",
            vec![layer("2001:db8:2::1", "fe80::ff:fe00:c104", None, None)],
        );
        let r = s.route_for(&o, None, &interfaces(), 2000).unwrap();
        assert_eq!(r.gateway, "fe80::ff:fe00:c104".parse::<Ipv6Addr>().unwrap());
        assert_eq!(&*r.interface, "veth-c2");
        // Another relay on the same subnet: dropped, named.
        let o = obs(
            "2001:db8:8000:100::/56",
            vec![layer("2001:db8:2::7", "fe80::9", None, None)],
        );
        let e = s.route_for(&o, None, &interfaces(), 2000).unwrap_err();
        assert_eq!(
            e,
            Rejection::OtherRelay {
                link_address: "2001:db8:2::7".parse().unwrap()
            }
        );
        assert!(e.is_other_relays());
        assert_eq!(e.code(), "other-relay");
        // A Relay-ID does not make a layer ours in this mode.
        let o = obs(
            "2001:db8:8000:100::/56",
            vec![layer("2001:db8:9::1", "fe80::9", None, Some(OURS))],
        );
        assert!(matches!(
            s.route_for(&o, None, &interfaces(), 2000),
            Err(Rejection::OtherRelay { .. })
        ));
    }

    #[test]
    fn behind_a_lightweight_relay_the_next_hop_is_the_client() {
        // Our layer, then an LDRA's (RFC 6221: link-address ::, the
        // client's address as peer-address, its port as interface-id).
        let o = obs(
            "2001:db8:8000:100::/56",
            vec![
                layer("2001:db8:1::1", "fe80::1d:1", Some("ge-0/0/1"), Some(OURS)),
                layer("::", "fe80::c:1", Some("port-7"), None),
            ],
        );
        let r = route(&o).unwrap();
        assert_eq!(r.gateway, "fe80::c:1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(&*r.interface, "veth-c1", "the interface is our layer's");
        // A full relay inside ours (a link-address of its own): its address.
        let o = obs(
            "2001:db8:8000:100::/56",
            vec![
                layer("2001:db8:1::1", "fe80::1d:1", Some("ge-0/0/1"), Some(OURS)),
                layer("2001:db8:77::1", "fe80::c:1", None, None),
            ],
        );
        assert_eq!(
            route(&o).unwrap().gateway,
            "fe80::1d:1".parse::<Ipv6Addr>().unwrap()
        );
    }

    #[test]
    fn binary_interface_ids_map_and_display_in_hex() {
        let mut s = settings();
        s.interface_map
            .insert(vec![7, 0, 0, 0], "veth-c2".to_string());
        let mut l = layer("::", "fe80::2", None, Some(OURS));
        l.interface_id = Some(vec![7, 0, 0, 0]);
        let r = s
            .route_for(
                &obs("2001:db8:8000:100::/56", vec![l.clone()]),
                None,
                &interfaces(),
                2000,
            )
            .unwrap();
        assert_eq!(&*r.interface, "veth-c2");
        l.interface_id = Some(vec![6, 0, 0, 0]);
        assert_eq!(
            s.route_for(
                &obs("2001:db8:8000:100::/56", vec![l]),
                None,
                &interfaces(),
                2000
            ),
            Err(Rejection::NoInterface {
                interface_id: Some("0x06000000".into()),
                link_address: Ipv6Addr::UNSPECIFIED
            })
        );
        assert_eq!(display_interface_id(b"ge-0/0/1"), "ge-0/0/1");
        assert_eq!(display_interface_id(&[0xff, 0xfe]), "0xfffe");
    }

    #[test]
    fn two_hops_relay_id_in_inner_layer() {
        let o = obs(
            "2001:db8:8000:100::/56",
            vec![
                layer("::", "2001:db8:2::a", Some("uplink-1"), None),
                layer("2001:db8:2::1", "fe80::c:1", Some("port-0"), Some(OURS)),
            ],
        );
        let r = route(&o).unwrap();
        assert_eq!(r.gateway, "fe80::c:1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(&*r.interface, "port-0");
    }

    #[test]
    fn relay_id_in_outer_layer_of_two() {
        let o = obs(
            "2001:db8:8000:100::/56",
            vec![
                layer("2001:db8:2::1", "fe80::9", None, Some(OURS)),
                layer(
                    "2001:db8:77::1",
                    "fe80::c:1",
                    None,
                    Some("0003000102005e000003"),
                ),
            ],
        );
        let r = route(&o).unwrap();
        assert_eq!(r.gateway, "fe80::9".parse::<Ipv6Addr>().unwrap());
        assert_eq!(&*r.interface, "veth-c2");
    }

    #[test]
    fn single_layer_without_relay_id_counts_but_foreign_relay_does_not() {
        let o = obs(
            "2001:db8:8000:100::/56",
            vec![layer("2001:db8:1::1", "fe80::2", None, None)],
        );
        assert_eq!(&*route(&o).unwrap().interface, "veth-c1");
        let o = obs(
            "2001:db8:8000:100::/56",
            vec![layer(
                "2001:db8:1::1",
                "fe80::2",
                None,
                Some("0003000102005e000003"),
            )],
        );
        assert_eq!(route(&o), Err(Rejection::NotOurRelay));
        let o = obs(
            "2001:db8:8000:100::/56",
            vec![
                layer("::", "2001:db8:2::a", None, None),
                layer("2001:db8:2::1", "fe80::2", None, None),
            ],
        );
        assert_eq!(route(&o), Err(Rejection::NotOurRelay));
    }

    #[test]
    fn ia_na_fallback() {
        let mut s = settings();
        let o = obs("2001:db8:8000:100::/56", vec![]);
        let addr = Some("2001:db8:2::55".parse().unwrap());
        assert_eq!(
            s.route_for(&o, addr, &interfaces(), 2000),
            Err(Rejection::NoRelayData)
        );
        s.fallback = NextHopFallback::ClientAddress;
        let r = s.route_for(&o, addr, &interfaces(), 2000).unwrap();
        assert_eq!(r.gateway, "2001:db8:2::55".parse::<Ipv6Addr>().unwrap());
        assert_eq!(&*r.interface, "veth-c2");
        assert_eq!(
            s.route_for(&o, None, &interfaces(), 2000),
            Err(Rejection::NoRelayData)
        );
        // Through the whole plan: the client's IA_NA is found by reconciliation.
        let mut na = pd(0, 1000, "01", "2001:db8::/64", 10, 3600);
        na.binding.lease = LeaseKind::Address("2001:db8:2::55".parse().unwrap());
        let rec = reconcile([o, na], 1000);
        let plan = s.plan(&rec, &interfaces(), 1000);
        assert_eq!(plan.routes.len(), 1);
        assert!(plan.rejected.is_empty());
    }

    #[test]
    fn safety_rejections() {
        let l = || {
            vec![layer(
                "2001:db8:1::1",
                "fe80::2",
                Some("ge-0/0/1"),
                Some(OURS),
            )]
        };
        let mut s = settings();
        assert_eq!(route(&obs("::/0", l())), Err(Rejection::DefaultRoute));
        assert_eq!(
            route(&obs("2001::/16", l())),
            Err(Rejection::TooShort { len: 16, min: 48 })
        );
        assert_eq!(
            route(&obs("2001:db9::/56", l())),
            Err(Rejection::OutsidePools)
        );
        // A pool that contains a local prefix: a delegated prefix covering it is refused.
        s.allowed_prefixes.push("2001:db8::/32".parse().unwrap());
        s.min_prefix_len = 32;
        assert_eq!(
            s.route_for(&obs("2001:db8::/40", l()), None, &interfaces(), 2000),
            Err(Rejection::CoversLocal {
                interface: "veth-c1".into(),
                local: "2001:db8:1::/64".parse().unwrap()
            })
        );
        assert!(matches!(
            s.route_for(&obs("2001:db8:1::/64", l()), None, &interfaces(), 2000),
            Err(Rejection::CoversLocal { .. })
        ));
        // Next hops: off-link global, multicast, loopback, our own address.
        for bad in ["2001:db8:99::1", "ff02::1", "::1", "2001:db8:1::1", "::"] {
            let o = obs(
                "2001:db8:8000:100::/56",
                vec![layer("2001:db8:1::1", bad, Some("ge-0/0/1"), Some(OURS))],
            );
            assert!(
                matches!(route(&o), Err(Rejection::BadNextHop { .. })),
                "{bad}"
            );
        }
        // An on-link global next hop is fine.
        let o = obs(
            "2001:db8:8000:100::/56",
            vec![layer(
                "2001:db8:1::1",
                "2001:db8:1::99",
                Some("ge-0/0/1"),
                Some(OURS),
            )],
        );
        assert_eq!(
            route(&o).unwrap().gateway,
            "2001:db8:1::99".parse::<Ipv6Addr>().unwrap()
        );
    }

    #[test]
    fn plan_reports_every_rejection() {
        let good = obs(
            "2001:db8:8000:100::/56",
            vec![layer(
                "2001:db8:1::1",
                "fe80::2",
                Some("ge-0/0/1"),
                Some(OURS),
            )],
        );
        let mut bad = obs("::/0", vec![]);
        bad.server = crate::proto::ServerIndex::new(1).unwrap();
        let rec = reconcile([good, bad], 1000);
        let plan = settings().plan(&rec, &interfaces(), 1000);
        assert_eq!(plan.routes.len(), 1);
        assert_eq!(plan.rejected.len(), 1);
        assert_eq!(plan.rejected[0].reason, Rejection::DefaultRoute);
        assert_eq!(plan.rejected[0].server.get(), 1);
        assert_eq!(plan.rejected[0].reason.to_string(), "default route");
    }
}
