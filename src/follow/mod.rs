//! `pdrestore follow`: keep the delegated-prefix routes in step with the
//! leases after the start-up recovery, as a delegating relay must (RFC 8987
//! s.4).
//!
//! - [`core`]: the sans-IO core ([`core::FollowCore`]): snooped messages,
//!   link and route events and time in, route changes out.
//! - [`live`]: the live view `pdrestore status` reads (a read-only Unix
//!   socket).
//! - [`watch`]: the rtnetlink watcher: link and IPv6 route events, read on a
//!   thread of its own, forwarded over a tokio channel.
//! - [`shell`]: the async shell: the start-up recovery, capture sockets,
//!   the route table, resyncs, signals, systemd notification.

pub mod core;
pub mod live;
pub mod metrics;
pub mod shell;
pub mod watch;

pub use self::core::{CoreSettings, Counters, FollowCore, FollowEvent, RouteChange, Why};
pub use shell::{run, FollowError, FollowOptions};
