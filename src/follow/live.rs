//! follow's live view, for `pdrestore status`: a read-only Unix socket.
//!
//! `pdrestore follow` listens on `state_directory/follow.sock` (mode
//! 0600, in the service's 0700 state directory: root only). A client
//! connects, writes one request line (JSON, [`LiveRequest`], at most
//! [`MAX_REQUEST`] octets), and reads JSON lines back: one [`LiveState`],
//! then one [`LiveRoute`] per followed prefix that matches the request,
//! then end of stream. Nothing a client sends changes the service: the
//! request only narrows what is listed. The service answers from its
//! event loop, between two batches of snooped messages; the routes are
//! copied there and written out by a task of their own, so a slow reader
//! never holds the loop.
//!
//! Why a socket and not a state file: a file kept current would be
//! rewritten on every renewal storm (1M prefixes: tens of MB a write, on
//! a router's flash); the socket costs nothing until asked.

use ipnet::Ipv6Net;
use serde::{Deserialize, Serialize};
use std::net::Ipv6Addr;

/// The socket's file name in the state directory.
pub const SOCKET_NAME: &str = "follow.sock";

/// The longest request line accepted, in octets.
pub const MAX_REQUEST: usize = 4096;

/// What a client asks for: the followed prefixes that match every filter
/// given (none: all of them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveRequest {
    /// Prefixes inside this one (or equal to it).
    #[serde(default)]
    pub prefix: Option<Ipv6Net>,
    /// The client's DUID, hex (matched exactly where the service knows the
    /// DUID, else by its fingerprint).
    #[serde(default)]
    pub client: Option<String>,
    /// Routes out of this interface.
    #[serde(default)]
    pub interface: Option<String>,
    /// List no routes, only the state (`status --summary`).
    #[serde(default)]
    pub no_routes: bool,
}

/// The service as a whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveState {
    /// The service's process.
    pub pid: u32,
    /// When it started (seconds since the Unix epoch).
    pub started_at: u64,
    /// The start-up recovery has ended (systemd was told READY=1).
    pub ready: bool,
    /// A resync (or the start-up recovery) is running.
    pub resyncing: bool,
    /// Prefixes followed.
    pub followed: usize,
    /// Prefixes left to a route that is not ours.
    pub foreign: usize,
    /// RELEASE/DECLINE messages waiting for the server's REPLY.
    pub pending_releases: usize,
    /// The last resync that ended (the start-up recovery is the first).
    pub last_resync: Option<LiveResync>,
    /// When the next resync is due (seconds since the Unix epoch).
    pub next_resync_at: Option<u64>,
    /// The interfaces snooped, with their state.
    pub interfaces: Vec<LiveInterface>,
    /// DHCPv6 packets captured since start.
    pub packets: u64,
    /// Captured packets that could not be parsed.
    pub malformed: u64,
    /// The core's counters since start.
    pub counters: crate::follow::Counters,
}

/// A resync's end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveResync {
    /// When it ended (seconds since the Unix epoch).
    pub at: u64,
    /// `complete`, `partial` or `failed`.
    pub outcome: String,
}

/// A client-facing interface the service knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveInterface {
    /// Its name.
    pub name: String,
    /// Its index.
    pub index: u32,
    /// Up.
    pub up: bool,
}

/// One followed prefix, as the service knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveRoute {
    /// The delegated prefix.
    pub prefix: Ipv6Net,
    /// The next hop (the client).
    pub via: Ipv6Addr,
    /// The interface.
    pub dev: String,
    /// When the lease ends (seconds since the Unix epoch; `None`: never).
    pub expires_at: Option<u64>,
    /// `installed`; `link-down` (dropped with its interface, back when it
    /// is up); `deleted` (deleted by someone else, being looked at);
    /// `inspecting` (its add met a route, whose is being read).
    pub state: String,
    /// Learned or confirmed by a snooped REPLY.
    pub snooped: bool,
    /// The last client transaction snooping saw (seconds since the Unix
    /// epoch).
    pub seen_at: Option<u64>,
    /// The client's DUID, hex, when the service knows it.
    pub client: Option<String>,
    /// The server's DUID, hex, of the REPLY snooping saw.
    pub server: Option<String>,
}
