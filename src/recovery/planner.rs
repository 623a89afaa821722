//! Route planning, written once: one route per delegated prefix, toward the
//! client router, out of the client-facing interface, and nothing a rogue
//! server could abuse.
//!
//! [`Planner::plan`] reads a binding through [`PlanInput`], which both the
//! binding borrowed from a frame on the connection task
//! ([`BindingRef`]) and the owned [`Binding`] implement, so the fast path and
//! the end-of-run path apply the very same rules. A plainly written
//! reference version, on owned bindings and reconciled sets, is kept for the
//! property tests (`recovery::reference`, test builds only).
//!
//! The rules:
//! - **The prefix** (RFC 8415 s.6.3, RFC 8987 s.4): one the ownership rule
//!   covers ([`crate::routes::Ownership::check`]: not `::/0`, no shorter
//!   than `min_prefix_len`, inside one of the pools), and not covering a
//!   prefix of one of the router's own interfaces.
//! - **Our layer** of the relay chain (RFC 5007 s.4.1.2.4,
//!   OPTION_LQ_RELAY_DATA): the layer that carries our Relay-ID (RFC 5460
//!   s.5.4.1), or the only layer when it carries none. Its peer-address is
//!   the address the client sent from, normally its link-local address: the
//!   next hop. Without relay data, the client's most recent IA_NA address
//!   may serve, when configured.
//! - **The interface**: the layer's interface-id mapped through
//!   `[routes.interfaces]` (a mapped interface that does not exist refuses
//!   the prefix), else the interface of that name, else the interface whose
//!   addresses cover the layer's link-address.
//! - **The next hop** must be a unicast neighbour on that interface:
//!   link-local or on-link, and not one of the router's own addresses.

use super::rejection::Rejection;
use super::settings::{NextHopFallback, OurLayer, PlanSettings};
use crate::proto::binding::{display_interface_id, RelayLayerRef};
use crate::proto::{Binding, BindingRef, LeaseKind};
use crate::routes::{mask, Interface};
use hashbrown::HashMap;
use ipnet::Ipv6Net;
use std::net::Ipv6Addr;

/// What planning reads of a binding.
pub trait PlanInput {
    /// The address or prefix.
    fn lease(&self) -> LeaseKind;
    /// The relay layers of OPTION_LQ_RELAY_DATA, outermost first.
    fn layers(&self) -> impl Iterator<Item = RelayLayerRef<'_>>;
}

impl PlanInput for BindingRef<'_> {
    fn lease(&self) -> LeaseKind {
        self.lease
    }

    fn layers(&self) -> impl Iterator<Item = RelayLayerRef<'_>> {
        crate::proto::binding::RelayLayers::of(self.relay.as_ref())
    }
}

impl PlanInput for Binding {
    fn lease(&self) -> LeaseKind {
        self.lease
    }

    fn layers(&self) -> impl Iterator<Item = RelayLayerRef<'_>> {
        self.relay.iter().map(|l| l.as_ref())
    }
}

/// A planned route: the next hop, and the outgoing interface as its
/// position in [`Planner::interfaces`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Planned {
    /// The next hop.
    pub gateway: Ipv6Addr,
    /// Position of the outgoing interface in [`Planner::interfaces`].
    pub iface: u32,
}

/// What planning reads of a relay chain: our layer's interface-id and
/// link-address (they give the interface), and the peer-address of the
/// layer that gives the next hop (ours, or the lightweight relay's inside
/// it). Only these are kept while the chain is walked: copying whole
/// layers there was most of the planner's cost per binding.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layers<'a> {
    /// Our layer's OPTION_INTERFACE_ID.
    pub interface_id: Option<&'a [u8]>,
    /// Our layer's link-address.
    pub link_address: Ipv6Addr,
    /// The next hop: the peer-address of our layer, or of the lightweight
    /// relay's just inside it.
    pub next_hop: Ipv6Addr,
    /// Our layer's position in the chain (outermost 0).
    pub at: usize,
    /// The position of the layer whose peer-address is the next hop.
    pub hop_at: usize,
}

impl<'a> Layers<'a> {
    fn of(l: &RelayLayerRef<'a>, at: usize) -> Layers<'a> {
        Layers {
            interface_id: l.interface_id,
            link_address: l.link_address,
            next_hop: l.peer_address,
            at,
            hop_at: at,
        }
    }
}

/// What the relay chain says about the route.
#[derive(Debug, Clone)]
pub(crate) struct Chain<'a> {
    /// Number of layers.
    pub depth: usize,
    /// Our layers; `Ok(None)`: no relay data at all.
    pub ours: Result<Option<Layers<'a>>, Rejection>,
}

/// Route planning: the settings and the local interfaces, with
/// the local prefixes and an index from interface-id to interface built once.
#[derive(Debug)]
pub struct Planner {
    settings: PlanSettings,
    interfaces: Vec<Interface>,
    /// interface-id octets to interface position (`None`: the configuration
    /// maps it to an interface that does not exist).
    by_id: HashMap<Vec<u8>, Option<u32>>,
    /// Every local prefix, as (network, length, interface position), in
    /// the order of the interfaces.
    locals: Vec<(u128, u8, u32)>,
    /// The same, with their place in `locals`, sorted by network: the local
    /// prefixes a delegated prefix covers are one range of it, found by a
    /// binary search (a router with thousands of VLANs has as many local
    /// prefixes, and every binding is checked against them).
    locals_by_net: Vec<(u128, u8, u32, u32)>,
    /// The global /64 subnets of the interfaces `[routes.interfaces]` maps
    /// to (the client links), top 64 bits to interface position: the link
    /// a relay layer's link-address says the client is on, checked for
    /// every binding whose interface comes from the map (one hash lookup).
    client_links: HashMap<u64, u32>,
    /// Their subnets of other lengths (rare).
    client_links_other: Vec<LocalNet>,
}

/// A local subnet: network, length, interface position.
type LocalNet = (u128, u8, u32);

/// `(net, len)` holds the prefix `addr`/`plen` (whose host bits may be set).
fn holds(net: u128, len: u8, addr: u128, plen: u8) -> bool {
    len <= plen && addr & mask(len) == net
}

impl Planner {
    /// Plan with `settings` over `interfaces`.
    pub fn new(settings: PlanSettings, interfaces: Vec<Interface>) -> Self {
        let pos = |name: &str| {
            interfaces
                .iter()
                .position(|i| &*i.name == name)
                .map(|p| p as u32)
        };
        let mut by_id: HashMap<Vec<u8>, Option<u32>> = interfaces
            .iter()
            .enumerate()
            .map(|(p, i)| (i.name.as_bytes().to_vec(), Some(p as u32)))
            .collect();
        // A mapping wins over an interface of the same name as the id.
        for (id, name) in &settings.interface_map {
            by_id.insert(id.clone(), pos(name));
        }
        let net = |n: &Ipv6Net| (u128::from(n.trunc().addr()), n.prefix_len());
        let locals = interfaces
            .iter()
            .enumerate()
            .flat_map(|(p, i)| {
                i.addresses.iter().map(move |a| {
                    let (n, l) = net(a);
                    (n, l, p as u32)
                })
            })
            .collect::<Vec<_>>();
        let mut locals_by_net: Vec<_> = locals
            .iter()
            .enumerate()
            .map(|(k, &(n, l, p))| (n, l, p, k as u32))
            .collect();
        locals_by_net.sort_unstable();
        let (client_links, client_links_other) = client_links(&settings, &interfaces);
        Planner {
            settings,
            interfaces,
            by_id,
            locals,
            locals_by_net,
            client_links,
            client_links_other,
        }
    }

    /// The settings.
    pub fn settings(&self) -> &PlanSettings {
        &self.settings
    }

    /// The local interfaces; [`Planned::iface`] points into this list.
    pub fn interfaces(&self) -> &[Interface] {
        &self.interfaces
    }

    /// The route for binding `b`, or why it gets none. `client_addr` is the
    /// client's most recent IA_NA address, for the next-hop fallback of a
    /// binding without relay data.
    pub fn plan(
        &self,
        b: &impl PlanInput,
        client_addr: Option<Ipv6Addr>,
    ) -> Result<Planned, Rejection> {
        let chain = self.chain(b);
        self.plan_with(b.lease(), &chain, client_addr)
    }

    /// The route of `prefix` through `next_hop` out of interface `iface`
    /// (its position in [`Planner::interfaces`]), when the same rules allow
    /// it: the prefix checks and the next-hop check. For a route learned
    /// from a DHCPv6 REPLY seen leaving the router on that interface (the
    /// next hop is the REPLY's destination, or the peer-address of the
    /// relay layer inside it).
    pub fn plan_on(
        &self,
        prefix: Ipv6Net,
        next_hop: Ipv6Addr,
        iface: u32,
    ) -> Result<Planned, Rejection> {
        if iface as usize >= self.interfaces.len() {
            return Err(Rejection::NoInterface {
                interface_id: None,
                link_address: next_hop,
            });
        }
        self.check_prefix(&prefix)?;
        self.check_next_hop(next_hop, iface)?;
        Ok(Planned {
            gateway: next_hop,
            iface,
        })
    }

    /// [`Planner::plan`] once the relay chain has been read.
    pub(crate) fn plan_with(
        &self,
        lease: LeaseKind,
        chain: &Chain<'_>,
        client_addr: Option<Ipv6Addr>,
    ) -> Result<Planned, Rejection> {
        let prefix = match lease {
            LeaseKind::Prefix(p) => p,
            LeaseKind::Address(a) => Ipv6Net::new(a, 128).expect("128 is a valid length"),
        };
        self.check_prefix(&prefix)?;
        let (gateway, iface) = match &chain.ours {
            Ok(Some(l)) => (
                l.next_hop,
                self.interface_for(l.interface_id, l.link_address)?,
            ),
            Ok(None) => self.fallback(client_addr)?,
            Err(e) => return Err(e.clone()),
        };
        self.check_next_hop(gateway, iface)?;
        Ok(Planned { gateway, iface })
    }

    /// The relay chain of `b` (outermost layer first), walked once: its
    /// depth, our layer (RFC 5007 s.4.1.2.4: the one that carries our
    /// Relay-ID, or, by link-address, one of our links; the only layer
    /// when it carries no Relay-ID), and the layer whose peer-address is
    /// the next hop: ours, or, when the one layer inside ours is a
    /// lightweight relay's (RFC 6221 s.6.1: link-address `::`, the client's
    /// address as peer-address), that one.
    pub(crate) fn chain<'b>(&self, b: &'b impl PlanInput) -> Chain<'b> {
        let mut depth = 0usize;
        // The outermost layer: whether it carries a Relay-ID, what planning
        // reads of it.
        let mut first: Option<(bool, Layers<'b>)> = None;
        // Our layer (what planning reads of it) and its position.
        let mut ours: Option<(Layers<'b>, usize)> = None;
        // The peer-address of the layer just inside ours, if that is a
        // lightweight relay's (link-address ::).
        let mut ldra_peer: Option<Ipv6Addr> = None;
        for l in b.layers() {
            depth += 1;
            if first.is_none() {
                first = Some((l.relay_id.is_some(), Layers::of(&l, 0)));
            }
            match ours {
                None if self.is_ours(&l) => ours = Some((Layers::of(&l, depth - 1), depth)),
                Some((_, at)) if at + 1 == depth => {
                    ldra_peer = l.link_address.is_unspecified().then_some(l.peer_address);
                }
                _ => {}
            }
        }
        let ours = match (ours, first, &self.settings.our_layer) {
            (Some((mut l, at)), _, _) => {
                // A lightweight relay (RFC 6221 s.6.1: link-address ::) inside
                // ours, innermost: its peer-address is the client's.
                if let (Some(peer), true) = (ldra_peer, at + 1 == depth) {
                    l.next_hop = peer;
                    l.hop_at = at;
                }
                Ok(Some(l))
            }
            (None, None, _) => Ok(None),
            // The only layer, without a Relay-ID: taken as ours.
            (None, Some((false, l)), OurLayer::RelayId) if depth == 1 => Ok(Some(l)),
            (None, Some(_), OurLayer::RelayId) => Err(Rejection::NotOurRelay),
            (None, Some((_, l)), OurLayer::LinkAddress(_)) => Err(Rejection::OtherRelay {
                link_address: l.link_address,
            }),
        };
        Chain { depth, ours }
    }

    /// The layer is ours: it carries our Relay-ID, or one of our links.
    fn is_ours(&self, l: &RelayLayerRef<'_>) -> bool {
        match &self.settings.our_layer {
            OurLayer::RelayId => l.relay_id == Some(self.settings.relay_id.as_bytes()),
            OurLayer::LinkAddress(links) => links.contains(&l.link_address),
        }
    }

    /// Without relay data: the client's address as the gateway, when configured.
    fn fallback(&self, client_addr: Option<Ipv6Addr>) -> Result<(Ipv6Addr, u32), Rejection> {
        match (self.settings.fallback, client_addr) {
            (NextHopFallback::ClientAddress, Some(addr)) => {
                let a = u128::from(addr);
                let iface = self
                    .locals
                    .iter()
                    .find(|&&(n, l, _)| holds(n, l, a, 128))
                    .map(|&(_, _, p)| p)
                    .ok_or(Rejection::NoInterface {
                        interface_id: None,
                        link_address: addr,
                    })?;
                Ok((addr, iface))
            }
            _ => Err(Rejection::NoRelayData),
        }
    }

    /// The safety checks on the prefix itself, on precomputed networks.
    fn check_prefix(&self, prefix: &Ipv6Net) -> Result<(), Rejection> {
        self.settings.owner.check(prefix)?;
        let (addr, len) = (u128::from(prefix.addr()), prefix.prefix_len());
        // It must not cover (or equal) a local prefix.
        let net = addr & mask(len);
        if let Some((n, l, p)) = self.covered_local(net, len) {
            return Err(Rejection::CoversLocal {
                interface: self.interfaces[p as usize].name.to_string(),
                local: Ipv6Net::new(Ipv6Addr::from(n), l).expect("a local prefix length"),
            });
        }
        Ok(())
    }

    /// The first local prefix (in interface order) that `net`/`len` covers
    /// or equals: those are the local networks in `net ..= net | host bits`
    /// at least as long as `len`.
    fn covered_local(&self, net: u128, len: u8) -> Option<(u128, u8, u32)> {
        let end = net | !mask(len);
        let from = self.locals_by_net.partition_point(|&(n, ..)| n < net);
        self.locals_by_net[from..]
            .iter()
            .take_while(|&&(n, ..)| n <= end)
            .filter(|&&(_, l, ..)| l >= len)
            .min_by_key(|&&(.., k)| k)
            .map(|&(n, l, p, _)| (n, l, p))
    }

    /// The interface for a layer with this interface-id and link-address.
    fn interface_for(&self, interface_id: Option<&[u8]>, link: Ipv6Addr) -> Result<u32, Rejection> {
        if let Some(id) = interface_id {
            match self.by_id.get(id) {
                Some(Some(p)) => return self.check_link(id, *p, link),
                // The map is the operator's word: no guessing past it.
                Some(None) => {
                    return Err(Rejection::MissingInterface {
                        interface_id: display_interface_id(id),
                        name: self
                            .settings
                            .interface_map
                            .get(id)
                            .cloned()
                            .unwrap_or_default(),
                    });
                }
                None => {}
            }
        }
        let found = (!link.is_unspecified())
            .then(|| {
                let link = u128::from(link);
                self.locals
                    .iter()
                    .find(|&&(n, l, _)| holds(n, l, link, 128))
                    .map(|&(_, _, p)| p)
            })
            .flatten();
        found.ok_or_else(|| Rejection::NoInterface {
            interface_id: interface_id.map(display_interface_id),
            link_address: link,
        })
    }

    /// The interface `p` the map gives for interface-id `id`, unless the
    /// layer's link-address lies in the subnet of another client
    /// interface ([`Rejection::LinkElsewhere`]).
    fn check_link(&self, id: &[u8], p: u32, link: Ipv6Addr) -> Result<u32, Rejection> {
        let l = u128::from(link);
        if link.is_unspecified() || link.is_unicast_link_local() || self.client_links.is_empty() {
            return Ok(p);
        }
        // The first client interface (in interface order) holding it.
        let by64 = self.client_links.get(&((l >> 64) as u64)).copied();
        let other = self
            .client_links_other
            .iter()
            .find(|&&(n, len, _)| holds(n, len, l, 128))
            .map(|&(_, _, q)| q);
        let holder = by64.into_iter().chain(other).min();
        match holder {
            Some(q) if q != p => Err(Rejection::LinkElsewhere {
                interface_id: display_interface_id(id),
                interface: self.interfaces[p as usize].name.to_string(),
                link_address: link,
                holder: self.interfaces[q as usize].name.to_string(),
            }),
            _ => Ok(p),
        }
    }

    /// The next hop must be a unicast neighbour on interface `iface`
    /// ([`check_next_hop`]).
    fn check_next_hop(&self, next_hop: Ipv6Addr, iface: u32) -> Result<(), Rejection> {
        check_next_hop(next_hop, &self.interfaces[iface as usize])
    }
}

/// The next hop must be a unicast neighbour on `out`: link-local, or inside
/// one of its prefixes, and not one of its own addresses (RFC 8987 s.4: the
/// route points at the requesting router on the link it asked from).
pub fn check_next_hop(next_hop: Ipv6Addr, out: &Interface) -> Result<(), Rejection> {
    let neighbour = !next_hop.is_unspecified()
        && !next_hop.is_loopback()
        && !next_hop.is_multicast()
        && !out.addresses.iter().any(|a| a.addr() == next_hop)
        && (next_hop.is_unicast_link_local()
            || out.addresses.iter().any(|a| a.contains(&next_hop)));
    if neighbour {
        Ok(())
    } else {
        Err(Rejection::BadNextHop {
            next_hop,
            interface: out.name.to_string(),
        })
    }
}

#[cfg(test)]
#[path = "planner_tests.rs"]
mod tests;

/// The global subnets of the interfaces `settings.interface_map` maps to:
/// /64s by their top 64 bits, others listed (see [`Planner`]).
fn client_links(
    settings: &PlanSettings,
    interfaces: &[Interface],
) -> (HashMap<u64, u32>, Vec<LocalNet>) {
    let mut by64 = HashMap::new();
    let mut other = Vec::new();
    let targets: std::collections::HashSet<&str> = settings
        .interface_map
        .values()
        .map(String::as_str)
        .collect();
    for (p, i) in interfaces.iter().enumerate() {
        if !targets.contains(&*i.name) {
            continue;
        }
        for a in &i.addresses {
            let addr = a.addr();
            if addr.is_loopback() || addr.is_unicast_link_local() || addr.is_multicast() {
                continue;
            }
            let net = u128::from(a.trunc().addr());
            if a.prefix_len() == 64 {
                by64.entry((net >> 64) as u64).or_insert(p as u32);
            } else {
                other.push((net, a.prefix_len(), p as u32));
            }
        }
    }
    (by64, other)
}
