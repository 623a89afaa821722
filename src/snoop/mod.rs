//! The snoop layer of `pdrestore follow`: watching the DHCPv6 traffic a
//! delegating relay exchanges with its clients, so that delegated-prefix
//! routes can be kept in step with the leases (RFC 8987 s.4, the routing
//! requirements of a prefix delegating relay).
//!
//! - [`parse`](mod@parse): a strict, sans-IO parser from one captured IPv6
//!   packet (what an `AF_PACKET`/`SOCK_DGRAM` socket delivers) to a
//!   [`Snooped`] value: a REPLY sent to a client (directly or through
//!   lightweight relays, RFC 6221), a RELEASE or DECLINE from a client, a
//!   forgery (a server's message arriving from the client side), or a reason
//!   to ignore the packet. Malformed input is an error naming what and where,
//!   never a panic.
//! - [`socket`]: the capture socket, one per interface, with a classic BPF
//!   filter for DHCPv6 ports, registered with tokio and read in batches.
//! - [`budget`]: a sans-IO token bucket so that a flood on one interface
//!   cannot starve other work.
//!
//! Route decisions, netlink and resynchronisation are not here: this layer
//! only says what was seen.

pub mod budget;
pub mod parse;
pub mod socket;

pub use budget::PacketBudget;
pub use parse::{
    parse, Datagram, DelegatedPrefix, Forged, IaPd, IgnoreReason, RelayHop, Release, Reply,
    SnoopError, SnoopErrorKind, Snooped, CLIENT_PORT, HOP_COUNT_LIMIT, SERVER_PORT,
};
pub use socket::{CaptureError, CaptureSocket, CaptureStats, SNAP_LEN};

/// Which way a captured packet went through the interface, from
/// `sll_pkttype` of the capture socket (see [`socket`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Sent by this router (`PACKET_OUTGOING`).
    Outgoing,
    /// Received from the link (`PACKET_HOST`, `PACKET_BROADCAST`,
    /// `PACKET_MULTICAST`, `PACKET_OTHERHOST`).
    Incoming,
}
