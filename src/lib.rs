//! pdrestore: restore IPv6 delegated-prefix routes on a Linux DHCPv6 relay
//! after a reboot, using DHCPv6 Bulk Leasequery (RFC 5460 over RFC 5007).
//!
//! # Layout
//! - [`proto`]: the sans-IO protocol core: wire codec, bindings, framing.
//! - [`transport`]: the tokio shell: framed TCP connections.
//! - [`agent`]: the recovery, end to end (`recover`, and `follow`'s start-up
//!   and resyncs): the run, its typed report, the report's renderings.
//! - [`cli`]: the command line: every subcommand's clap definition and
//!   runner (the binary's `main`), shared with [`docs`].
//! - [`docs`]: the generated man pages, completions and configuration reference.
//! - [`config`]: the TOML configuration file.
//! - [`demo`]: `pdrestore demo`, the embedded default in a private namespace.
//! - [`files`]: files replaced atomically (every file pdrestore keeps).
//! - [`exit`]: the exit statuses of the command (sysexits names).
//! - [`decode`]: `pdrestore decode`, reading captured byte streams.
//! - [`identity`]: the relay DUID: configured, or generated once and kept.
//! - [`lock`]: one writer of the routes at a time (the writer lock in the
//!   state directory).
//! - [`metrics`]: the metrics file for node_exporter's textfile collector.
//! - [`netns`]: private network namespaces for the demo, tests and benchmarks.
//! - [`recovery`]: reconciliation of servers' bindings, route planning and
//!   installation (sans IO but for the installer).
//! - [`routes`]: route tables (in-memory; netlink), the ownership rule, the
//!   diff between tables.
//! - [`requestor`]: Bulk Leasequery to several servers at once: reply
//!   assembly (sans IO), connections, retries, fan-out.
//! - [`server`]: `pdrestore lab-server`, the reference Bulk Leasequery server
//!   for labs, demos, tests and benchmarks.
//! - [`follow`]: `pdrestore follow`, the service that keeps the routes in
//!   step with the leases after the start-up recovery (RFC 8987).
//! - [`status`]: `pdrestore status`: our routes joined with what pdrestore
//!   knows of each (the ledger, follow's live view).
//! - [`snoop`]: the snoop layer of `pdrestore follow`: capturing and parsing
//!   the DHCPv6 replies a delegating relay sends its clients (RFC 8987).

#![warn(missing_docs)]

pub mod agent;
pub mod cli;
pub mod config;
pub mod decode;
pub mod demo;
pub mod docs;
pub mod exit;
pub mod files;
pub mod follow;
pub mod identity;
pub mod lock;
pub mod metrics;
pub mod netns;
pub mod proto;
pub mod recovery;
pub mod requestor;
pub mod routes;
pub mod server;
pub mod snoop;
pub mod status;
pub mod transport;
