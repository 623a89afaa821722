//! Route programming: the desired routes, the diff against what is installed,
//! and the tables that apply it.
//!
//! [`RouteTable`] is the small trait the recovery talks to: list the routes we
//! own (our protocol tag in our table), apply changes. [`MemoryTable`] is the
//! in-memory implementation used by dry runs and tests.

use ipnet::Ipv6Net;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::Ipv6Addr;

mod memory;
pub mod netlink;

pub use memory::MemoryTable;
pub use netlink::NetlinkTable;

/// One IPv6 route as pdrestore installs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    /// Destination (host bits clear).
    pub prefix: Ipv6Net,
    /// Next hop.
    pub gateway: Ipv6Addr,
    /// Outgoing interface name (shared: cloning a route does not copy it).
    pub interface: std::sync::Arc<str>,
    /// Outgoing interface index.
    pub ifindex: u32,
    /// Routing table.
    pub table: u32,
    /// Protocol tag (rtm_protocol).
    pub protocol: u8,
    /// Metric (priority).
    pub metric: u32,
    /// Seconds until the kernel removes it (RTA_EXPIRES), if any.
    pub expires: Option<u32>,
}

impl Route {
    /// The kernel's identity of an IPv6 route: table, destination, metric.
    pub fn key(&self) -> RouteKey {
        RouteKey {
            table: self.table,
            prefix: self.prefix,
            metric: self.metric,
        }
    }
}

/// What identifies a route in the kernel's IPv6 FIB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouteKey {
    /// Routing table.
    pub table: u32,
    /// Destination.
    pub prefix: Ipv6Net,
    /// Metric.
    pub metric: u32,
}

/// One change to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Install a route that is not there.
    Add(Route),
    /// Overwrite a route of ours whose next hop, interface or lifetime differ.
    Replace {
        /// What is installed.
        old: Route,
        /// What it becomes.
        new: Route,
    },
    /// Remove a route of ours that no binding backs any more.
    Remove(Route),
}

impl Change {
    /// The route this change installs or removes.
    pub fn route(&self) -> &Route {
        match self {
            Change::Add(r) | Change::Remove(r) | Change::Replace { new: r, .. } => r,
        }
    }
}

/// The difference between installed and desired routes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Diff {
    /// Adds, replaces and removes, in destination order.
    pub changes: Vec<Change>,
    /// Routes already as desired.
    pub unchanged: usize,
}

/// Two remaining lifetimes count as the same when both are absent, or both
/// present and at most `slack` seconds apart (they count down in step).
pub fn same_lifetime(a: Option<u32>, b: Option<u32>, slack: u32) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) => x.abs_diff(y) <= slack,
        _ => false,
    }
}

/// Compute the changes that turn `installed` (our routes only) into `desired`.
///
/// A route counts as unchanged when next hop and interface are equal and the
/// remaining lifetimes differ by at most `expiry_slack` seconds (both count
/// down in step, so a rerun with the same bindings changes nothing). Our
/// routes that are not desired are removed when `prune` is set.
pub fn diff(
    installed: &[Route],
    desired: &BTreeMap<Ipv6Net, Route>,
    prune: bool,
    expiry_slack: u32,
) -> Diff {
    let have: BTreeMap<RouteKey, &Route> = installed.iter().map(|r| (r.key(), r)).collect();
    let want: BTreeMap<RouteKey, &Route> = desired.values().map(|r| (r.key(), r)).collect();
    let mut out = Diff::default();
    for (k, w) in &want {
        match have.get(k) {
            None => out.changes.push(Change::Add((*w).clone())),
            Some(h) => {
                let same_path = h.gateway == w.gateway && h.ifindex == w.ifindex;
                let same_life = same_lifetime(h.expires, w.expires, expiry_slack);
                if same_path && same_life {
                    out.unchanged += 1;
                } else {
                    out.changes.push(Change::Replace {
                        old: (*h).clone(),
                        new: (*w).clone(),
                    });
                }
            }
        }
    }
    if prune {
        for (k, h) in &have {
            if !want.contains_key(k) {
                out.changes.push(Change::Remove((*h).clone()));
            }
        }
    }
    out
}

/// Why one route could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{op} {prefix}: {message}")]
pub struct RouteError {
    /// add, replace or remove.
    pub op: &'static str,
    /// The route's destination.
    pub prefix: Ipv6Net,
    /// What the table said (e.g. the kernel's errno text).
    pub message: String,
}

/// A failure of the table as a whole (listing, socket).
#[derive(Debug, thiserror::Error)]
#[error("route table: {0}")]
pub struct TableError(pub String);

/// Where routes go: the kernel through netlink, or memory.
#[allow(async_fn_in_trait)]
pub trait RouteTable {
    /// The routes we own: our protocol tag, in our table.
    async fn list_owned(&mut self, table: u32, protocol: u8) -> Result<Vec<Route>, TableError>;

    /// [`RouteTable::list_owned`], one route at a time, without gathering
    /// them (a router may hold a million). The default gathers them first.
    async fn list_owned_each(
        &mut self,
        table: u32,
        protocol: u8,
        each: &mut (dyn FnMut(Route) + Send),
    ) -> Result<(), TableError> {
        for r in self.list_owned(table, protocol).await? {
            each(r);
        }
        Ok(())
    }

    /// Apply changes; one route's failure does not stop the others. Returns
    /// the errors, one per failed change.
    async fn apply(&mut self, changes: &[Change]) -> Result<Vec<RouteError>, TableError>;

    /// Hand changes over; a table may apply them in the background while the
    /// caller goes on. Returns the failures known so far, from this or
    /// earlier submissions. The default applies them at once.
    async fn submit(&mut self, changes: Vec<Change>) -> Result<Vec<Failure>, TableError> {
        let errors = self.apply(&changes).await?;
        Ok(pair_failures(&changes, errors))
    }

    /// Wait until everything submitted is applied; the failures not yet returned.
    async fn sync(&mut self) -> Result<Vec<Failure>, TableError> {
        Ok(Vec::new())
    }
}

/// A change the table refused, and why.
pub type Failure = (Change, RouteError);

/// Match errors to the changes they are about (by destination and operation).
pub fn pair_failures(changes: &[Change], errors: Vec<RouteError>) -> Vec<Failure> {
    errors
        .into_iter()
        .filter_map(|e| {
            let c = changes.iter().rev().find(|c| {
                let op = match c {
                    Change::Add(_) => "add",
                    Change::Replace { .. } => "replace",
                    Change::Remove(_) => "remove",
                };
                c.route().prefix == e.prefix && op == e.op
            })?;
            Some((c.clone(), e))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(prefix: &str, gw: &str, ifindex: u32, expires: Option<u32>) -> Route {
        Route {
            prefix: prefix.parse().unwrap(),
            gateway: gw.parse().unwrap(),
            interface: format!("if{ifindex}").into(),
            ifindex,
            table: 254,
            protocol: 16,
            metric: 1024,
            expires,
        }
    }

    fn desired(routes: &[Route]) -> BTreeMap<Ipv6Net, Route> {
        routes.iter().map(|r| (r.prefix, r.clone())).collect()
    }

    #[test]
    fn diff_classifies() {
        let installed = vec![
            r("2001:db8:1::/56", "fe80::1", 5, Some(3000)),
            r("2001:db8:2::/56", "fe80::2", 5, Some(3000)),
            r("2001:db8:3::/56", "fe80::3", 5, Some(3000)),
            r("2001:db8:4::/56", "fe80::4", 5, Some(3000)),
        ];
        let want = desired(&[
            r("2001:db8:1::/56", "fe80::1", 5, Some(2990)), // unchanged within slack
            r("2001:db8:2::/56", "fe80::22", 5, Some(3000)), // next hop moved
            r("2001:db8:3::/56", "fe80::3", 5, Some(7000)), // lease renewed
            r("2001:db8:5::/56", "fe80::5", 6, Some(3000)), // new
        ]);
        let d = diff(&installed, &want, true, 30);
        assert_eq!(d.unchanged, 1);
        let kinds: Vec<(&str, String)> = d
            .changes
            .iter()
            .map(|c| {
                let k = match c {
                    Change::Add(_) => "add",
                    Change::Replace { .. } => "replace",
                    Change::Remove(_) => "remove",
                };
                (k, c.route().prefix.to_string())
            })
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("replace", "2001:db8:2::/56".to_string()),
                ("replace", "2001:db8:3::/56".to_string()),
                ("add", "2001:db8:5::/56".to_string()),
                ("remove", "2001:db8:4::/56".to_string()),
            ]
        );
        let d = diff(&installed, &want, false, 30);
        assert!(!d.changes.iter().any(|c| matches!(c, Change::Remove(_))));
    }

    #[tokio::test]
    async fn memory_table_applies_and_reports_per_route_errors() {
        let mut t = MemoryTable::with_interfaces([5]);
        let mut foreign = r("2001:db8:9::/56", "fe80::9", 5, None);
        foreign.protocol = 4; // static: not ours
        t.insert(foreign.clone());
        let want = desired(&[
            r("2001:db8:1::/56", "fe80::1", 5, Some(100)),
            r("2001:db8:2::/56", "fe80::2", 9, Some(100)),
        ]);
        let owned = t.list_owned(254, 16).await.unwrap();
        assert!(owned.is_empty());
        let d = diff(&owned, &want, true, 30);
        let errors = t.apply(&d.changes).await.unwrap();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].to_string(), "add 2001:db8:2::/56: No such device");
        let owned = t.list_owned(254, 16).await.unwrap();
        assert_eq!(owned, vec![r("2001:db8:1::/56", "fe80::1", 5, Some(100))]);
        // Rerun: nothing to do but the failed route; the foreign route is never touched.
        let d = diff(&owned, &want, true, 30);
        assert_eq!(d.unchanged, 1);
        assert_eq!(d.changes.len(), 1);
        assert!(t.routes().any(|x| *x == foreign));
    }
}
