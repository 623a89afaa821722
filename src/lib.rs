//! pdrestore: restore IPv6 delegated-prefix routes on a Linux DHCPv6 relay
//! after a reboot, using DHCPv6 Bulk Leasequery (RFC 5460 over RFC 5007).
//!
//! # Layout
//! - [`proto`]: the sans-IO protocol core: wire codec, bindings, framing.
//! - [`transport`]: the tokio shell: framed TCP connections.
//! - [`decode`]: `pdrestore decode`, reading captured byte streams.
//! - [`server`]: `pdrestore lab-server`, the reference Bulk Leasequery server
//!   for labs, demos, tests and benchmarks.

#![warn(missing_docs)]

pub mod decode;
pub mod proto;
pub mod server;
pub mod transport;
