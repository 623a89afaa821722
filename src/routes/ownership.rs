//! The one ownership rule: which routes are pdrestore's, where its routes
//! go (table, protocol, metric), and which prefixes it may route at all.
//!
//! `recover`, `follow` and the dry run all ask [`Ownership`]; nothing else
//! decides whether a route may be replaced or removed.

use super::{Route, RouteKey, TableRoute, RTN_UNICAST};
use ipnet::Ipv6Net;
use std::net::Ipv6Addr;
use std::sync::Arc;

/// The one ownership rule: what counts as pdrestore's route, and the key
/// (table, metric) and protocol its routes are installed with.
///
/// A route is ours only when it is in our table, carries our protocol tag,
/// has the shape pdrestore installs (unicast, one next hop, one interface),
/// and its destination lies inside one of the delegation pools with a
/// length from `min_prefix_len` to 128. Nothing else is ever replaced or
/// removed, whatever the prune setting: not the router's own `proto dhcp`
/// default route, not a static route an operator put on a customer prefix,
/// not a route with our tag outside the pools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ownership {
    table: u32,
    protocol: u8,
    metric: u32,
    min_prefix_len: u8,
    /// The pools, as configured.
    pools: Vec<Ipv6Net>,
    /// The pools as (network, length), for the checks on the hot path.
    nets: Vec<(u128, u8)>,
}

/// Where a route stands under the rule ([`Ownership::held`]). Ownership is
/// the route's, not the process's: whatever installed it (this run, an
/// earlier one, `follow`, an older version), a route of our protocol in our
/// table inside the pools is ours, at any metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// Ours, at our metric: the route a delegated prefix's key holds.
    Ours,
    /// Ours, at another metric (an earlier configuration's): moved to our
    /// metric, make-before-break, when its prefix is routed again.
    OursElsewhere,
    /// Another's route in our table, at any metric, on a prefix we could
    /// route: never touched, and no route of ours is put beside it; a
    /// binding for the prefix is a foreign conflict.
    Foreign,
    /// None of our business: another table, or a prefix we never route.
    Unrelated,
}

/// Why a prefix can never carry one of our routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotCovered {
    /// `::/0`.
    DefaultRoute,
    /// Shorter than `min_prefix_len`.
    TooShort {
        /// Its length.
        len: u8,
        /// The minimum.
        min: u8,
    },
    /// Not inside any of the pools.
    OutsidePools,
}

/// The network mask of a prefix length.
pub(crate) fn mask(len: u8) -> u128 {
    match len {
        0 => 0,
        l => !0u128 << (128 - u32::from(l.min(128))),
    }
}

impl Ownership {
    /// Routes of `protocol` in `table` inside `pools`, `min_prefix_len` or
    /// longer; ours are installed at `metric`.
    pub fn new(
        table: u32,
        protocol: u8,
        metric: u32,
        pools: &[Ipv6Net],
        min_prefix_len: u8,
    ) -> Self {
        Ownership {
            table,
            protocol,
            metric,
            min_prefix_len,
            pools: pools.to_vec(),
            nets: pools
                .iter()
                .map(|p| (u128::from(p.trunc().addr()), p.prefix_len()))
                .collect(),
        }
    }

    /// Our table.
    pub fn table(&self) -> u32 {
        self.table
    }

    /// Our protocol tag.
    pub fn protocol(&self) -> u8 {
        self.protocol
    }

    /// The metric our routes are installed with.
    pub fn metric(&self) -> u32 {
        self.metric
    }

    /// The shortest prefix we route.
    pub fn min_prefix_len(&self) -> u8 {
        self.min_prefix_len
    }

    /// The delegation pools.
    pub fn pools(&self) -> &[Ipv6Net] {
        &self.pools
    }

    /// `prefix` (host bits ignored) lies inside a pool.
    pub fn in_pools(&self, prefix: &Ipv6Net) -> bool {
        let (addr, len) = (u128::from(prefix.addr()), prefix.prefix_len());
        self.nets
            .iter()
            .any(|&(n, l)| l <= len && addr & mask(l) == n)
    }

    /// Whether a route to `prefix` could be ours, and if not, why: not
    /// `::/0`, no shorter than `min_prefix_len`, inside a pool.
    pub fn check(&self, prefix: &Ipv6Net) -> Result<(), NotCovered> {
        let len = prefix.prefix_len();
        if len == 0 {
            Err(NotCovered::DefaultRoute)
        } else if len < self.min_prefix_len {
            Err(NotCovered::TooShort {
                len,
                min: self.min_prefix_len,
            })
        } else if !self.in_pools(prefix) {
            Err(NotCovered::OutsidePools)
        } else {
            Ok(())
        }
    }

    /// A route to `prefix` could be ours ([`Ownership::check`] passes).
    pub fn covers(&self, prefix: &Ipv6Net) -> bool {
        self.check(prefix).is_ok()
    }

    /// The route is ours, at whatever metric (see the type's documentation).
    pub fn owns(&self, r: &TableRoute) -> bool {
        r.table == self.table
            && r.protocol == self.protocol
            && r.kind == RTN_UNICAST
            && r.gateway.is_some()
            && !r.multipath
            && self.covers(&r.prefix)
    }

    /// The key our route to `prefix` has.
    pub fn key(&self, prefix: Ipv6Net) -> RouteKey {
        RouteKey {
            table: self.table,
            prefix,
            metric: self.metric,
        }
    }

    /// Where a route stands under the rule.
    pub fn held(&self, r: &TableRoute) -> Held {
        if self.owns(r) {
            if r.metric == self.metric {
                Held::Ours
            } else {
                Held::OursElsewhere
            }
        } else if r.table == self.table && self.covers(&r.prefix) {
            Held::Foreign
        } else {
            Held::Unrelated
        }
    }

    /// Our route to `prefix` through `gateway` out of interface `interface`
    /// (index `ifindex`), with `expires` seconds left (`None`: never).
    pub fn route(
        &self,
        prefix: Ipv6Net,
        gateway: Ipv6Addr,
        interface: Arc<str>,
        ifindex: u32,
        expires: Option<u32>,
    ) -> Route {
        Route {
            prefix,
            gateway,
            interface,
            ifindex,
            table: self.table,
            protocol: self.protocol,
            metric: self.metric,
            expires,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> Ownership {
        Ownership::new(254, 57, 1024, &["2001:db8:8000::/40".parse().unwrap()], 48)
    }

    fn route(prefix: &str, protocol: u8, metric: u32, kind: u8) -> TableRoute {
        TableRoute {
            prefix: prefix.parse().unwrap(),
            table: 254,
            protocol,
            metric,
            kind,
            gateway: Some("fe80::1".parse().unwrap()),
            multipath: false,
            ifindex: 5,
            interface: "c0".into(),
            expires: None,
        }
    }

    #[test]
    fn every_standing() {
        let o = owner();
        let p = "2001:db8:8000:100::/56";
        assert_eq!(o.held(&route(p, 57, 1024, RTN_UNICAST)), Held::Ours);
        assert_eq!(o.held(&route(p, 57, 512, RTN_UNICAST)), Held::OursElsewhere);
        assert_eq!(o.held(&route(p, 4, 1024, RTN_UNICAST)), Held::Foreign);
        // A blackhole with our tag is not a shape we install: foreign.
        assert_eq!(o.held(&route(p, 57, 1024, 6)), Held::Foreign);
        // Another's route on a delegated prefix is foreign at any metric.
        assert_eq!(o.held(&route(p, 4, 512, RTN_UNICAST)), Held::Foreign);
        assert_eq!(o.held(&route(p, 57, 2048, 6)), Held::Foreign);
        let mut other_table = route(p, 57, 1024, RTN_UNICAST);
        other_table.table = 100;
        assert_eq!(o.held(&other_table), Held::Unrelated);
        // Outside the pools, or too short: never ours, never at our key.
        assert_eq!(
            o.held(&route("2001:db8:9000::/56", 57, 1024, RTN_UNICAST)),
            Held::Unrelated
        );
        assert_eq!(
            o.held(&route("2001:db8:8000::/40", 57, 1024, RTN_UNICAST)),
            Held::Unrelated
        );
        let mut multipath = route(p, 57, 1024, RTN_UNICAST);
        multipath.multipath = true;
        assert_eq!(o.held(&multipath), Held::Foreign);
    }

    #[test]
    fn prefix_checks_name_the_reason() {
        let o = owner();
        assert_eq!(
            o.check(&"::/0".parse().unwrap()),
            Err(NotCovered::DefaultRoute)
        );
        assert_eq!(
            o.check(&"2001:db8:8000::/40".parse().unwrap()),
            Err(NotCovered::TooShort { len: 40, min: 48 })
        );
        assert_eq!(
            o.check(&"2001:db9::/56".parse().unwrap()),
            Err(NotCovered::OutsidePools)
        );
        assert_eq!(o.check(&"2001:db8:80ff:ff00::/56".parse().unwrap()), Ok(()));
        // Host bits set are ignored.
        assert!(o.covers(&"2001:db8:8000:100::1/56".parse().unwrap()));
    }

    #[test]
    fn our_routes_carry_our_key() {
        let o = owner();
        let p: Ipv6Net = "2001:db8:8000:100::/56".parse().unwrap();
        let r = o.route(p, "fe80::1".parse().unwrap(), "c0".into(), 5, Some(60));
        assert_eq!(r.key(), o.key(p));
        assert_eq!((r.table, r.protocol, r.metric), (254, 57, 1024));
        assert_eq!(o.held(&TableRoute::from(&r)), Held::Ours);
    }
}
