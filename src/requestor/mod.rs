//! The requestor: Bulk Leasequery to several servers at once (RFC 5460 s.6,
//! RFC 5007 s.4.2-4.3).
//!
//! - [`assembly`]: the sans-IO reply assembly, per query and per connection.
//! - [`core`]: the sans-IO core of one connection: window, timeouts, bounds,
//!   bursts, results.
//! - [`retry`]: the retry policy (exponential backoff with jitter), pure.
//! - `tries`: one server's tries on virtual time (which queries, which
//!   transaction-ids, how long to wait), sans IO.
//! - [`connection`]: the tokio shell of one TCP connection around [`core`].
//! - [`fanout`]: every server at once, bindings streamed as they arrive.
//! - [`worst`]: the longest one server's tries can take, from the settings.
//!
//! `pdrestore query` (in [`crate::cli::query`]) and `pdrestore recover`
//! (in [`crate::agent`]) run it; the requestor itself knows nothing of the
//! configuration file.

pub mod assembly;
pub mod connection;
pub mod core;
pub mod fanout;
mod report;
pub mod retry;
mod tries;
pub mod worst;

pub use assembly::{
    CloseReason, DropReason, Event, IoError, OurBug, Outcome, PartialReason, ProtocolError,
    QueryAssembler, QueryStats, ReplyDemux, ServerStatus, StartError, StatusFrom, TransportError,
    UnexpectedMessage, BULK_LQ_DATA_TIMEOUT, MAX_STATUS_TEXT,
};
pub use core::{
    Attempt, ConnectionConfig, ConnectionCore, ConnectionEvent, ConnectionReport, Delivery, Limits,
    PlannedQuery, QueryResult, QueryStep, Severity,
};
pub use fanout::{Fanout, FanoutConfig, QuerySpec, ServerConfig, ServerReport, Update};
pub use retry::{Disposition, RetryPolicy};
pub use worst::ServerWorstCase;
