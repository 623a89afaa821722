//! What the core hands out: route changes with their reason, events worth
//! a log line, what it needs from the shell, and its counters.

use crate::proto::MessageType;
use crate::recovery::rejection::Rejection;
use crate::routes::{Change, Route, RouteError};
use ipnet::Ipv6Net;
use std::net::Ipv6Addr;
use std::sync::Arc;

/// Why a route change is made (logged beside it, counted by it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Why {
    /// A REPLY delegated a prefix the core did not follow.
    Reply,
    /// A REPLY renewed a followed prefix: the expiry moves.
    Renewal,
    /// A REPLY gave a followed prefix a new next hop or interface.
    Moved,
    /// A REPLY gave the prefix a valid lifetime of 0 (RFC 8415 s.18.2.10.1).
    ValidLifetimeZero,
    /// The server confirmed a RELEASE (RFC 8415 s.18.3.7).
    Release,
    /// The server confirmed a DECLINE (RFC 8415 s.18.3.8).
    Decline,
    /// Its interface came back up; the kernel had dropped the route.
    LinkUp,
    /// Snooping learned it after (or beyond) what the resync could know.
    Resync,
    /// Its lease ran out: removed at once, not left to the kernel's
    /// garbage collection.
    Expired,
    /// A route of ours the core did not follow (another writer's) held the
    /// key: adopted, and made what snooping says.
    Adopted,
    /// A server confirmed the lease of a prefix nearing expiry with no
    /// renewal seen (a targeted query): the expiry moves.
    Confirmed,
}

impl Why {
    /// A stable code for logs and counters.
    pub fn code(self) -> &'static str {
        match self {
            Why::Reply => "reply",
            Why::Renewal => "renewal",
            Why::Moved => "moved",
            Why::ValidLifetimeZero => "valid-lifetime-0",
            Why::Release => "release",
            Why::Decline => "decline",
            Why::LinkUp => "link-up",
            Why::Resync => "snooped-after-resync",
            Why::Expired => "expired",
            Why::Adopted => "adopted",
            Why::Confirmed => "confirmed",
        }
    }
}

/// A route change to make, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteChange {
    /// The change (adds are create-exclusive, see [`crate::routes::RouteTable::apply`]).
    pub change: Change,
    /// Why.
    pub why: Why,
}

/// Something worth a log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowEvent {
    /// A prefix got no route: the planner's reason (`outside-pools`, ...).
    Refused {
        /// The prefix.
        prefix: Ipv6Net,
        /// The next hop it would have had.
        next_hop: Ipv6Addr,
        /// The interface the REPLY left by.
        interface: Arc<str>,
        /// Why.
        reason: Rejection,
    },
    /// A prefix, or a whole REPLY, not used, with a stable code:
    /// `cap` (max_prefixes reached), `iaprefix-lifetimes` (preferred above
    /// valid, RFC 8415 s.21.22), `ia-pd-timers` (T1 above T2, s.21.21),
    /// `reply-status` (a top-level status other than Success),
    /// `release-unanswered` (no REPLY within the timeout),
    /// `release-overflow` (too many pending), `release-refused` (the
    /// server's REPLY to it was not Success).
    Ignored {
        /// The prefix, if one.
        prefix: Option<Ipv6Net>,
        /// The code.
        code: &'static str,
    },
    /// A route that is not ours holds the prefix's key: left in place.
    Foreign {
        /// The prefix.
        prefix: Ipv6Net,
        /// How it was found: `eexist` (our add met it), `listed`
        /// (snooped while a foreign route is known there), `replaced` (it
        /// replaced one of ours).
        how: &'static str,
    },
    /// One of our routes was deleted by someone else while its interface
    /// stayed up and before it expired: forgotten (the next resync decides).
    ManualDelete {
        /// The route as it was.
        route: Route,
    },
    /// A server-to-client message arrived from the client side.
    Forged {
        /// The interface.
        interface: Arc<str>,
        /// Its source address.
        source: Ipv6Addr,
        /// Its message type.
        msg_type: MessageType,
    },
    /// The kernel refused a change.
    Failed {
        /// The change.
        change: Change,
        /// The error.
        error: RouteError,
    },
}

/// Counts since start (for STATUS and the tests).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counters {
    /// REPLYs seen leaving the router (directly or relayed).
    pub replies: u64,
    /// RELEASE and DECLINE messages seen from clients.
    pub releases: u64,
    /// Releases the server confirmed.
    pub releases_confirmed: u64,
    /// Server-to-client messages arriving from the client side.
    pub forged: u64,
    /// Routes added (new prefixes, link-up reinstalls, resync replays).
    pub added: u64,
    /// Routes refreshed (renewals: the expiry moved).
    pub refreshed: u64,
    /// Routes moved to another next hop or interface.
    pub moved: u64,
    /// Routes removed (valid lifetime 0, release, decline).
    pub removed: u64,
    /// Routes reinstalled after their interface came back up.
    pub relinked: u64,
    /// Prefixes refused by the planner.
    pub refused: u64,
    /// Prefixes left to a foreign route.
    pub foreign: u64,
    /// Prefixes or messages not used for another reason (see [`FollowEvent::Ignored`]).
    pub ignored: u64,
    /// Prefixes refused because `max_prefixes` were followed.
    pub capped: u64,
    /// Our routes deleted by someone else, forgotten.
    pub manual_deletes: u64,
    /// Followed prefixes whose lifetime ran out (their routes removed).
    pub expired: u64,
    /// Routes of ours the core did not follow, found at a key its add met
    /// (EEXIST), and adopted.
    pub adopted: u64,
    /// Targeted queries asked about prefixes nearing expiry.
    pub confirm_queries: u64,
    /// Prefixes whose lease a targeted query extended.
    pub confirmed: u64,
    /// Route changes the kernel refused.
    pub failures: u64,
    /// Resyncs finished.
    pub resyncs: u64,
    /// Events not queued for the log (the queue was full).
    pub events_suppressed: u64,
}

/// What the core needs the shell to do ([`super::FollowCore::poll_need`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// An interface the core does not know appeared or changed: read the
    /// interfaces with their addresses and hand them to
    /// [`super::FollowCore::handle_interfaces`].
    Interfaces,
    /// A resync is due: run one and report it with
    /// [`super::FollowCore::handle_resync_started`] and
    /// [`super::FollowCore::handle_resync_finished`].
    Resync,
    /// Adds met routes at their keys that the core does not know (EEXIST):
    /// list our table and hand it to [`super::FollowCore::handle_inspected`].
    Inspect,
    /// These prefixes near expiry with no renewal seen: ask the servers
    /// about each (QUERY_BY_ADDRESS of the prefix, RFC 5007 s.4.1.2.1, over
    /// the bulk connection, RFC 5460 s.6) and hand the answers to
    /// [`super::FollowCore::handle_confirmed`].
    Confirm(Vec<Ipv6Net>),
}
