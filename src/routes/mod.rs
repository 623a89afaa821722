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

pub mod listeners;
mod memory;
pub mod netlink;
mod ownership;

pub use memory::MemoryTable;
pub use netlink::NetlinkTable;
pub(crate) use ownership::mask;
pub use ownership::{Held, NotCovered, Ownership};

/// A local network interface, as route planning sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Interface name (shared with the routes that use it).
    pub name: std::sync::Arc<str>,
    /// Kernel interface index.
    pub index: u32,
    /// Its IPv6 addresses with their prefix lengths.
    pub addresses: Vec<Ipv6Net>,
}

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

/// A table operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteOp {
    /// Install a route that is not there (create-exclusive).
    Add,
    /// Overwrite a route of ours.
    Replace,
    /// Remove a route of ours.
    Remove,
}

impl RouteOp {
    /// `add`, `replace` or `remove`.
    pub fn as_str(self) -> &'static str {
        match self {
            RouteOp::Add => "add",
            RouteOp::Replace => "replace",
            RouteOp::Remove => "remove",
        }
    }
}

impl std::fmt::Display for RouteOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Change {
    /// The operation.
    pub fn op(&self) -> RouteOp {
        match self {
            Change::Add(_) => RouteOp::Add,
            Change::Replace { .. } => RouteOp::Replace,
            Change::Remove(_) => RouteOp::Remove,
        }
    }
}

/// `errno` values the kernel's route code answers with (`libc`'s), and
/// their names and texts.
pub mod errno {
    pub use libc::{
        EACCES, EEXIST, EHOSTUNREACH, EINVAL, ENETDOWN, ENETUNREACH, ENOBUFS, ENODEV, ENOENT,
        ENOMEM, EOPNOTSUPP, EPERM, ESRCH,
    };
    use nix::errno::Errno;

    /// The symbolic name of `code` (`EEXIST`, sign ignored), or `E<code>`
    /// for a number the system does not name: the stable machine-readable
    /// form of a route failure.
    pub fn name(code: i32) -> String {
        let code = code.saturating_abs();
        match Errno::from_raw(code) {
            Errno::UnknownErrno => format!("E{code}"),
            // The variants are named as the C constants.
            e => format!("{e:?}"),
        }
    }

    /// The system's text for `code` ("File exists").
    pub fn text(code: i32) -> String {
        let t = std::io::Error::from_raw_os_error(code.saturating_abs()).to_string();
        match t.rfind(" (os error ") {
            Some(at) => t[..at].to_string(),
            None => t,
        }
    }
}

/// Why one route could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{op} {prefix}: {message}")]
pub struct RouteError {
    /// The operation refused.
    pub op: RouteOp,
    /// The route's destination.
    pub prefix: Ipv6Net,
    /// The kernel's errno, when the kernel refused it.
    pub errno: Option<i32>,
    /// What the table said (the errno's text).
    pub message: String,
}

impl RouteError {
    /// The failure of `op` on `prefix` with the kernel's `errno`.
    pub fn from_errno(op: RouteOp, prefix: Ipv6Net, code: i32) -> Self {
        RouteError {
            op,
            prefix,
            errno: Some(code.abs()),
            message: errno::text(code),
        }
    }

    /// The stable machine-readable code: the errno's name, or `error`.
    pub fn code(&self) -> String {
        self.errno.map_or_else(|| "error".into(), errno::name)
    }
}

/// A failure of the table as a whole (listing, socket), with its cause.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// A socket call failed.
    #[error("route table: netlink {what}: {source}")]
    Io {
        /// What was attempted (`socket`, `send`, `recv`).
        what: &'static str,
        /// The error, with its errno.
        #[source]
        source: std::io::Error,
    },
    /// The kernel refused a request about the table as a whole.
    #[error("route table: {what}: {}", errno::text(*.errno))]
    Kernel {
        /// The request (`route dump`, `permission check`).
        what: &'static str,
        /// The kernel's errno.
        errno: i32,
    },
    /// The kernel's answer did not decode (see [`netlink::wire`]).
    #[error("route table: netlink: {0}")]
    Wire(#[from] netlink::wire::WireError),
    /// The kernel's answer did not decode (netlink-packet-route's word).
    #[error("route table: netlink: {0}")]
    Malformed(String),
    /// The thread that applies batches is gone.
    #[error("route table: the netlink thread died")]
    WorkerGone,
    /// The thread that applies batches could not start.
    #[error("route table: starting the netlink thread: {0}")]
    Thread(#[source] std::io::Error),
}

impl TableError {
    /// The kernel said we may not change routes (no CAP_NET_ADMIN).
    pub fn is_permission_denied(&self) -> bool {
        match self {
            TableError::Io { source, .. } => source.kind() == std::io::ErrorKind::PermissionDenied,
            TableError::Kernel { errno: e, .. } => *e == errno::EPERM || *e == errno::EACCES,
            _ => false,
        }
    }
}

/// rtm_type of a unicast route.
pub use libc::RTN_UNICAST;

/// A route as the kernel's table holds it: ours or anyone's, of any kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRoute {
    /// Destination.
    pub prefix: Ipv6Net,
    /// Routing table.
    pub table: u32,
    /// Protocol tag (rtm_protocol).
    pub protocol: u8,
    /// Metric.
    pub metric: u32,
    /// Route type (rtm_type: 1 unicast, 6 blackhole, 7 unreachable, ...).
    pub kind: u8,
    /// Next hop, if the route has a single one.
    pub gateway: Option<Ipv6Addr>,
    /// Several next hops (RTA_MULTIPATH).
    pub multipath: bool,
    /// Outgoing interface index (0: none).
    pub ifindex: u32,
    /// Outgoing interface name ("" when unknown).
    pub interface: std::sync::Arc<str>,
    /// Seconds until the kernel removes it, if it expires.
    pub expires: Option<u32>,
}

impl TableRoute {
    /// The kernel's identity of the route.
    pub fn key(&self) -> RouteKey {
        RouteKey {
            table: self.table,
            prefix: self.prefix,
            metric: self.metric,
        }
    }

    /// As a [`Route`] of the shape pdrestore installs: unicast through one
    /// next hop out of one interface. `None` for any other shape.
    pub fn as_route(&self) -> Option<Route> {
        if self.kind != RTN_UNICAST || self.multipath || self.ifindex == 0 {
            return None;
        }
        Some(Route {
            prefix: self.prefix,
            gateway: self.gateway?,
            interface: self.interface.clone(),
            ifindex: self.ifindex,
            table: self.table,
            protocol: self.protocol,
            metric: self.metric,
            expires: self.expires,
        })
    }
}

impl From<&Route> for TableRoute {
    fn from(r: &Route) -> Self {
        TableRoute {
            prefix: r.prefix,
            table: r.table,
            protocol: r.protocol,
            metric: r.metric,
            kind: RTN_UNICAST,
            gateway: Some(r.gateway),
            multipath: false,
            ifindex: r.ifindex,
            interface: r.interface.clone(),
            expires: r.expires,
        }
    }
}

/// Where routes go: the kernel through netlink, or memory.
#[allow(async_fn_in_trait)]
pub trait RouteTable {
    /// Every IPv6 route of `table`, ours or not, handed to `each` one at a
    /// time as it is read (a router may hold a million).
    async fn list_table(
        &mut self,
        table: u32,
        each: &mut (dyn FnMut(TableRoute) + Send),
    ) -> Result<(), TableError>;

    /// The routes `owner` owns (see [`Ownership`]), gathered.
    async fn list_owned(&mut self, owner: &Ownership) -> Result<Vec<Route>, TableError> {
        let mut out = Vec::new();
        self.list_table(owner.table(), &mut |r| {
            if owner.owns(&r) {
                out.extend(r.as_route());
            }
        })
        .await?;
        Ok(out)
    }

    /// Apply changes; one route's failure does not stop the others. Returns
    /// the errors, one per failed change. An add is create-exclusive: it
    /// fails with EEXIST where any route holds the table, prefix and metric.
    /// A remove names the route's protocol, next hop and interface, so it
    /// never takes another route of the same key.
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

    /// The rtnetlink sockets of the table's network namespace now, to tell
    /// whether another listener (a routing daemon) lost route notifications
    /// while we wrote; `None` for a table that is not the kernel's.
    async fn listeners(&mut self) -> Option<listeners::Snapshot> {
        None
    }
}

/// A change the table refused, and why.
pub type Failure = (Change, RouteError);

/// Match errors to the changes they are about (by destination and operation).
pub fn pair_failures(changes: &[Change], errors: Vec<RouteError>) -> Vec<Failure> {
    errors
        .into_iter()
        .filter_map(|e| {
            let c = changes
                .iter()
                .rev()
                .find(|c| c.route().prefix == e.prefix && c.op() == e.op)?;
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

    /// The names are the stable codes of route failures (JSON, metrics).
    #[test]
    fn errno_names_and_texts() {
        let named = [
            (errno::EPERM, "EPERM"),
            (errno::ENOENT, "ENOENT"),
            (errno::ESRCH, "ESRCH"),
            (errno::ENOMEM, "ENOMEM"),
            (errno::EACCES, "EACCES"),
            (errno::EEXIST, "EEXIST"),
            (errno::ENODEV, "ENODEV"),
            (errno::EINVAL, "EINVAL"),
            (errno::ENOBUFS, "ENOBUFS"),
            (errno::EOPNOTSUPP, "EOPNOTSUPP"),
            (errno::ENETDOWN, "ENETDOWN"),
            (errno::ENETUNREACH, "ENETUNREACH"),
            (errno::EHOSTUNREACH, "EHOSTUNREACH"),
        ];
        for (code, name) in named {
            assert_eq!(errno::name(code), name);
            assert_eq!(errno::name(-code), name);
        }
        assert_eq!((errno::EEXIST, errno::ENOBUFS), (17, 105));
        assert_eq!(errno::name(0), "E0");
        assert_eq!(errno::name(4000), "E4000");
        assert_eq!(errno::text(-17), "File exists");
        let e = RouteError::from_errno(RouteOp::Add, "2001:db8::/56".parse().unwrap(), -17);
        assert_eq!((e.code(), e.errno), ("EEXIST".to_string(), Some(17)));
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
        let owner = Ownership::new(254, 16, 1024, &["2001:db8::/32".parse().unwrap()], 48);
        let owned = t.list_owned(&owner).await.unwrap();
        assert!(owned.is_empty());
        let d = diff(&owned, &want, true, 30);
        let errors = t.apply(&d.changes).await.unwrap();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].to_string(), "add 2001:db8:2::/56: No such device");
        let owned = t.list_owned(&owner).await.unwrap();
        assert_eq!(owned, vec![r("2001:db8:1::/56", "fe80::1", 5, Some(100))]);
        // Rerun: nothing to do but the failed route; the foreign route is never touched.
        let d = diff(&owned, &want, true, 30);
        assert_eq!(d.unchanged, 1);
        assert_eq!(d.changes.len(), 1);
        assert!(t.routes().any(|x| *x == foreign));
    }
}
