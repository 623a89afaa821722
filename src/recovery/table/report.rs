//! What the prefix table decided, net of a whole run: the types of its
//! report ([`TableReport`]) and of the disputes it names.

use crate::proto::{Duid, ServerIndex};
use crate::recovery::prune::PruneReport;
use crate::recovery::rejection::Rejected;
use crate::routes::{Route, RouteError, TableRoute};
use ipnet::Ipv6Net;
use std::net::Ipv6Addr;
use std::sync::Arc;

/// Two servers disagree about who holds a prefix (RFC 5007 s.4.3.4: the
/// most recent client transaction won).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The prefix.
    pub prefix: Ipv6Net,
    /// The server and client of the binding that won.
    pub winner: (ServerIndex, Duid),
    /// The server and client of the binding that lost.
    pub loser: (ServerIndex, Duid),
}

/// A route that is not pdrestore's, as listed at the start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignRoute {
    /// Its protocol tag (`None`: not known, the kernel refused our add).
    pub protocol: Option<u8>,
    /// Its next hop, if it has one.
    pub gateway: Option<Ipv6Addr>,
    /// Its interface, if it has one.
    pub interface: Option<Arc<str>>,
    /// Its route type (rtm_type), when known.
    pub kind: Option<u8>,
    /// Its metric, when known.
    pub metric: Option<u32>,
}

impl ForeignRoute {
    /// What a listing says of another's route.
    pub fn of(t: &TableRoute) -> Self {
        ForeignRoute {
            protocol: Some(t.protocol),
            gateway: t.gateway,
            interface: (!t.interface.is_empty()).then(|| t.interface.clone()),
            kind: Some(t.kind),
            metric: Some(t.metric),
        }
    }

    /// A route the kernel said holds our key (EEXIST), not listed yet.
    pub fn unknown() -> Self {
        ForeignRoute {
            protocol: None,
            gateway: None,
            interface: None,
            kind: None,
            metric: None,
        }
    }
}

/// A binding whose route would take the key of a route that is not ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignConflict {
    /// The prefix.
    pub prefix: Ipv6Net,
    /// The client the winning binding names.
    pub client: Duid,
    /// The server of the winning binding.
    pub server: ServerIndex,
    /// The route in the way.
    pub foreign: ForeignRoute,
}

/// What the table decided, net of the whole run.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TableReport {
    /// Routes that were not there before.
    pub added: usize,
    /// Routes of ours whose next hop, interface or lifetime changed.
    pub replaced: usize,
    /// Routes of ours already as desired.
    pub unchanged: usize,
    /// Routes of ours removed (no binding backs them).
    pub removed: usize,
    /// Prefixes refused, with reasons.
    pub rejected: Vec<Rejected>,
    /// Changes the table refused, whose route is still not as wanted.
    pub failed: Vec<RouteError>,
    /// Servers' disagreements.
    pub conflicts: Vec<Conflict>,
    /// Bindings dropped for an elapsed lifetime.
    pub expired: usize,
    /// Prefixes with a route in the final plan.
    pub planned: usize,
    /// Prefixes left to a route that is not ours.
    pub foreign_conflicts: Vec<ForeignConflict>,
    /// Our routes removed (or, in a dry run, that would be), as they were.
    pub removals: Vec<Route>,
    /// Our routes whose next hop, interface or metric changed: (before,
    /// after). A route of ours at an earlier metric is moved to ours
    /// make-before-break (added, then the old one removed), outside the
    /// prune rail.
    pub moved: Vec<(Route, Route)>,
    /// What became of pruning.
    pub prune: PruneReport,
}
