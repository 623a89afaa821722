//! pdrestore: restore IPv6 delegated-prefix routes on a Linux DHCPv6 relay
//! after a reboot, using DHCPv6 Bulk Leasequery (RFC 5460 over RFC 5007).
//!
//! # Layout
//! - [`proto`]: the sans-IO protocol core: wire codec, bindings, framing.
//! - [`transport`]: the tokio shell: framed TCP connections.
//! - [`decode`]: `pdrestore decode`, reading captured byte streams.
//! - [`requestor`]: Bulk Leasequery to several servers at once: reply
//!   assembly (sans IO), connections, retries, fan-out.

#![warn(missing_docs)]

pub mod decode;
pub mod proto;
pub mod requestor;
pub mod transport;
