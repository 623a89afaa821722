//! Reply assembly: the sans-IO state machines of the requestor.
//!
//! No sockets, no clock, no tokio: every input carries the current time as an
//! [`Instant`], and every output is polled. Two levels:
//!
//! - [`QueryAssembler`]: one query (one transaction-id). It walks
//!   LEASEQUERY-REPLY -> LEASEQUERY-DATA* -> LEASEQUERY-DONE and ends with one
//!   typed [`Outcome`] (RFC 5460 s.6.3, s.6.3.1).
//! - [`ReplyDemux`]: one TCP connection. It owns the assemblers of every query
//!   in flight, routes each received message by transaction-id however the
//!   replies interleave (RFC 5460 s.6.5), enforces the connection-wide rules
//!   (a DATA or DONE for no outstanding query closes the connection, s.6.3)
//!   and runs two timers as one deadline, [`ReplyDemux::poll_timeout`]: the
//!   first-answer timeout while no query in flight has received anything
//!   (past it, [`Outcome::NoAnswer`]), BULK_LQ_DATA_TIMEOUT (s.5.6, s.6.3)
//!   once one has (a stalled stream, [`PartialReason::DataTimeout`]).
//!
//! Bindings are yielded as [`Event::Binding`] as soon as the message holding
//! them has been handled, not at the end of the query.
//!
//! Files: `assembly/query.rs` ([`QueryAssembler`]), `assembly/demux.rs`
//! ([`ReplyDemux`]), `assembly/error.rs` (the [`Outcome`] of a query and the
//! errors and reasons in it); [`Event`] and [`QueryStats`] are here.
//!
//! # Validation rules
//! - A REPLY without OPTION_SERVERID, or without our OPTION_CLIENTID, is
//!   discarded (RFC 5007 s.4.2.2): [`Event::Dropped`], the query keeps waiting.
//! - An OPTION_CLIENT_DATA without OPTION_CLT_TIME (RFC 5007 s.4.3.3), without
//!   OPTION_CLIENTID, or with a repeated option is discarded; the rest of the
//!   message is used.
//! - A DATA without OPTION_CLIENT_DATA is discarded (RFC 5460 s.6.3).
//! - OPTION_LQ_CLIENT_LINK in a bulk reply is a protocol error (RFC 5460 s.6.3).
//! - A binding whose relay chain (OPTION_LQ_RELAY_DATA, RFC 5007 s.4.1.2.4)
//!   has more layers than the configured limit is a protocol error: no relay
//!   that follows RFC 8415 s.19.1.1 forwards past HOP_COUNT_LIMIT (32), so
//!   such a chain only comes from a broken or hostile server.
//! - A DATA or DONE whose transaction-id matches no outstanding query closes
//!   the connection (RFC 5460 s.6.3).
//! - A DONE with an error status after a successful REPLY makes the result
//!   partial (RFC 5460 s.5.2.2).
//! - A message that does not decode, a DATA or DONE before the REPLY, a second
//!   REPLY, and a message of any other type are protocol errors. Every protocol
//!   error closes the connection: the stream can no longer be trusted, and
//!   the other queries in flight end [`PartialReason::Aborted`].
//! - A message of a type RFC 5460 s.4 does not allow on the connection
//!   (anything but LEASEQUERY-REPLY, -DATA and -DONE reaching a requestor)
//!   is decoded as far as it goes, even when its options do not all
//!   decode: [`ProtocolError::UnexpectedMessage`] keeps its type,
//!   transaction-id and status with its text ([`UnexpectedMessage`]), for
//!   the query it names.
//! - A status text is kept to [`MAX_STATUS_TEXT`] octets
//!   ([`ServerStatus::truncated_from`] says when it was cut).

use crate::proto::{Binding, Duid, Xid};
use std::time::Instant;

mod demux;
mod error;
mod query;

pub use demux::{CloseReason, ReplyDemux, StartError};
pub use error::{
    DropReason, IoError, OurBug, Outcome, PartialReason, ProtocolError, ServerStatus, StatusFrom,
    TransportError, UnexpectedMessage, MAX_STATUS_TEXT,
};
pub use query::QueryAssembler;

pub use crate::proto::BULK_LQ_DATA_TIMEOUT;

/// Counters and times of one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryStats {
    /// When the query was started (sent).
    pub started: Instant,
    /// When its REPLY arrived.
    pub replied: Option<Instant>,
    /// When it ended.
    pub finished: Option<Instant>,
    /// Messages received for it (discarded ones included).
    pub messages: u64,
    /// Bindings delivered.
    pub bindings: u64,
    /// Messages and CLIENT_DATA options discarded.
    pub dropped: u64,
    /// The server's DUID, from OPTION_SERVERID of the REPLY.
    pub server_id: Option<Duid>,
}

/// What a state machine has to tell. `T` is what bindings are delivered
/// as (see [`BindingMapper`](crate::proto::binding::BindingMapper)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<T = Binding> {
    /// A binding arrived.
    Binding {
        /// Transaction-id of the query.
        xid: Xid,
        /// When the message holding it was handled.
        at: Instant,
        /// The binding.
        binding: T,
    },
    /// Something was discarded; the query goes on.
    Dropped {
        /// Transaction-id of the message.
        xid: Xid,
        /// What and why.
        reason: DropReason,
    },
    /// A query ended. No event for its transaction-id follows.
    Finished {
        /// Transaction-id of the query.
        xid: Xid,
        /// How it ended.
        outcome: Outcome,
        /// Its counters.
        stats: QueryStats,
    },
}

#[cfg(test)]
#[path = "assembly_tests.rs"]
mod tests;
