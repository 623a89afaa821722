//! **The reference planner** (test builds only): the planning rules written
//! plainly over owned bindings and a reconciled set, scanning the pools and
//! every interface's addresses in order and finding our relay layer by
//! position. The production planner ([`crate::recovery::planner::Planner`])
//! applies the same rules on precomputed networks in one pass over the
//! chain; property tests hold it, the prefix table and the installer to
//! this.
//!
//! Next hop: the peer-address of the relay layer that carries our own
//! Relay-ID (RFC 5460 s.5.4.1) in the binding's relay chain (RFC 5007
//! s.4.1.2.4), or of the lightweight relay's layer just inside it (RFC 6221
//! s.6.1). Outgoing interface: the layer's interface-id mapped through the
//! configuration, else the interface of that name, else the interface whose
//! addresses cover the layer's link-address. Without relay data, the
//! client's address (IA_NA) when configured.

use super::reconcile::Reconciled;
use crate::proto::binding::display_interface_id;
use crate::proto::{LeaseKind, RelayLayer};
use crate::recovery::observed::Observed;
use crate::recovery::planner::check_next_hop;
use crate::recovery::rank::Millis;
use crate::recovery::rejection::{Rejected, Rejection};
use crate::recovery::settings::{NextHopFallback, OurLayer, PlanSettings};
use crate::routes::{Interface, Route};
use ipnet::Ipv6Net;
use std::collections::BTreeMap;
use std::net::Ipv6Addr;

/// The desired routes and the rejections.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    /// One route per accepted prefix.
    pub routes: BTreeMap<Ipv6Net, Route>,
    /// Every prefix that was not accepted.
    pub rejected: Vec<Rejected>,
}

/// Our layer of a relay chain (outermost first), and the layer whose
/// peer-address is the next hop.
pub(crate) fn our_layer<'a>(
    relay: &'a [RelayLayer],
    s: &PlanSettings,
) -> Result<(&'a RelayLayer, &'a RelayLayer), Rejection> {
    let found = match &s.our_layer {
        OurLayer::RelayId => {
            let only = relay.len() == 1 && relay[0].relay_id.is_none();
            relay
                .iter()
                .position(|l| l.relay_id.as_ref() == Some(&s.relay_id))
                .or(only.then_some(0))
                .ok_or(Rejection::NotOurRelay)
        }
        OurLayer::LinkAddress(links) => {
            let first = relay.first().map(|l| l.link_address);
            relay
                .iter()
                .position(|l| links.contains(&l.link_address))
                .ok_or(Rejection::OtherRelay {
                    link_address: first.unwrap_or(Ipv6Addr::UNSPECIFIED),
                })
        }
    };
    let i = found?;
    let lightweight = i + 2 == relay.len() && relay[i + 1].link_address.is_unspecified();
    Ok((&relay[i], &relay[if lightweight { i + 1 } else { i }]))
}

/// The prefix checks: the ownership rule's, then no local prefix covered
/// (the first one, interfaces in order, is named).
pub(crate) fn check_prefix(
    s: &PlanSettings,
    prefix: &Ipv6Net,
    interfaces: &[Interface],
) -> Result<(), Rejection> {
    let (len, min) = (prefix.prefix_len(), s.owner.min_prefix_len());
    let in_a_pool = s.owner.pools().iter().any(|p| p.contains(prefix));
    match (len, len < min, in_a_pool) {
        (0, ..) => Err(Rejection::DefaultRoute),
        (_, true, _) => Err(Rejection::TooShort { len, min }),
        (_, _, false) => Err(Rejection::OutsidePools),
        _ => interfaces
            .iter()
            .flat_map(|i| i.addresses.iter().map(move |a| (i, a.trunc())))
            .find(|(_, local)| prefix.contains(local))
            .map_or(Ok(()), |(i, local)| {
                Err(Rejection::CoversLocal {
                    interface: i.name.to_string(),
                    local,
                })
            }),
    }
}

/// The interface of our layer: mapped, named, or holding its link-address.
fn interface_of<'a>(
    s: &PlanSettings,
    layer: &RelayLayer,
    interfaces: &'a [Interface],
) -> Result<&'a Interface, Rejection> {
    let id = layer.interface_id.as_deref();
    let by_name = |name: &[u8]| interfaces.iter().find(|i| i.name.as_bytes() == name);
    let link = layer.link_address;
    if let Some(mapped) = id.and_then(|id| s.interface_map.get(id)) {
        let out = by_name(mapped.as_bytes()).ok_or_else(|| Rejection::MissingInterface {
            interface_id: display_interface_id(id.unwrap_or_default()),
            name: mapped.clone(),
        })?;
        return link_on(s, id.unwrap_or_default(), out, link, interfaces);
    }
    if let Some(out) = id.and_then(by_name) {
        return link_on(s, id.unwrap_or_default(), out, link, interfaces);
    }
    None.or_else(|| {
        let on_link = |i: &&Interface| i.addresses.iter().any(|a| a.contains(&link));
        (!link.is_unspecified())
            .then(|| interfaces.iter().find(on_link))
            .flatten()
    })
    .ok_or(Rejection::NoInterface {
        interface_id: id.map(display_interface_id),
        link_address: link,
    })
}

/// `out`, the interface interface-id `id` gives, unless the first client
/// interface (a target of the map, in interface order) with a global
/// subnet holding the layer's link-address is another one.
fn link_on<'a>(
    s: &PlanSettings,
    id: &[u8],
    out: &'a Interface,
    link: Ipv6Addr,
    interfaces: &'a [Interface],
) -> Result<&'a Interface, Rejection> {
    if link.is_unspecified() || link.is_unicast_link_local() {
        return Ok(out);
    }
    let client = |i: &&Interface| s.interface_map.values().any(|n| *n == *i.name);
    let global = |a: &ipnet::Ipv6Net| {
        let x = a.addr();
        !x.is_loopback() && !x.is_unicast_link_local() && !x.is_multicast() && a.contains(&link)
    };
    match interfaces
        .iter()
        .filter(client)
        .find(|i| i.addresses.iter().any(global))
    {
        Some(h) if h.index != out.index => Err(Rejection::LinkElsewhere {
            interface_id: display_interface_id(id),
            interface: out.name.to_string(),
            link_address: link,
            holder: h.name.to_string(),
        }),
        _ => Ok(out),
    }
}

/// The route for one winning prefix binding.
pub(crate) fn route_for(
    s: &PlanSettings,
    obs: &Observed,
    client_addr: Option<Ipv6Addr>,
    interfaces: &[Interface],
    now: Millis,
) -> Result<Route, Rejection> {
    let prefix = match obs.binding.lease {
        LeaseKind::Prefix(p) => p,
        LeaseKind::Address(a) => Ipv6Net::new(a, 128).expect("128 is a valid length"),
    };
    check_prefix(s, &prefix, interfaces)?;
    let (gateway, out) = match (&obs.binding.relay[..], s.fallback, client_addr) {
        ([], NextHopFallback::ClientAddress, Some(addr)) => {
            let out = interfaces
                .iter()
                .find(|i| i.addresses.iter().any(|a| a.contains(&addr)));
            let none = Rejection::NoInterface {
                interface_id: None,
                link_address: addr,
            };
            (addr, out.ok_or(none)?)
        }
        ([], ..) => return Err(Rejection::NoRelayData),
        (relay, ..) => {
            let (ours, hop) = our_layer(relay, s)?;
            (hop.peer_address, interface_of(s, ours, interfaces)?)
        }
    };
    check_next_hop(gateway, out)?;
    let expires = Some(obs.remaining_valid(now));
    Ok(s.owner.route(
        prefix.trunc(),
        gateway,
        out.name.clone(),
        out.index,
        expires,
    ))
}

/// Plan every prefix of a reconciliation.
pub(crate) fn plan(
    s: &PlanSettings,
    r: &Reconciled,
    interfaces: &[Interface],
    now: Millis,
) -> Plan {
    let mut plan = Plan::default();
    for (prefix, obs) in &r.prefixes {
        let addr = r.addresses.latest(&obs.binding.client_duid);
        match route_for(s, obs, addr, interfaces, now) {
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
