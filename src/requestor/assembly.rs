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
//!   and runs BULK_LQ_DATA_TIMEOUT (s.5.6, s.6.3) as a deadline given by
//!   [`ReplyDemux::poll_timeout`].
//!
//! Bindings are yielded as [`Event::Binding`] as soon as the message holding
//! them has been handled, not at the end of the query.
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

use crate::proto::binding::{BindingMapper, ClientData, OwnedBindings};
use crate::proto::{Binding, ClientDataError, DecodeError, Duid, MessageType, MessageView};
use crate::proto::{OptionView, StatusCode, Xid};
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::io;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// BULK_LQ_DATA_TIMEOUT default: 300 s (RFC 5460 s.5.6).
pub const BULK_LQ_DATA_TIMEOUT: Duration = Duration::from_secs(300);

/// A status a server sent in OPTION_STATUS_CODE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerStatus {
    /// The status code.
    pub code: StatusCode,
    /// The status message (lossy UTF-8).
    pub message: String,
}

impl ServerStatus {
    fn from_wire(code: StatusCode, message: &[u8]) -> Self {
        ServerStatus {
            code,
            message: String::from_utf8_lossy(message).into_owned(),
        }
    }
}

impl fmt::Display for ServerStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            write!(f, "{}", self.code)
        } else {
            write!(f, "{} {:?}", self.code, self.message)
        }
    }
}

/// A violation of the protocol by the server. Each one closes the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// A message that does not decode (strict codec: nothing of it is used).
    #[error("malformed message: {0}")]
    Malformed(DecodeError),
    /// A zero-length frame (RFC 5460 s.5.1).
    #[error("zero-length frame")]
    EmptyFrame,
    /// A message type a requestor never receives (a relay message, a LEASEQUERY, ...).
    #[error("unexpected message type {0}")]
    UnexpectedMessage(MessageType),
    /// OPTION_LQ_CLIENT_LINK in a bulk reply (RFC 5460 s.6.3: MUST NOT be present).
    #[error("OPTION_LQ_CLIENT_LINK in a bulk reply (RFC 5460 6.3)")]
    ClientLink,
    /// A LEASEQUERY-DATA before the LEASEQUERY-REPLY (RFC 5460 s.5.2.1).
    #[error("LEASEQUERY-DATA before LEASEQUERY-REPLY (RFC 5460 5.2.1)")]
    DataBeforeReply,
    /// A LEASEQUERY-DONE before the LEASEQUERY-REPLY.
    #[error("LEASEQUERY-DONE before LEASEQUERY-REPLY")]
    DoneBeforeReply,
    /// A second LEASEQUERY-REPLY for one query (RFC 5460 s.5.2: only one).
    #[error("second LEASEQUERY-REPLY for one query (RFC 5460 5.2)")]
    DuplicateReply,
    /// The server sent more bindings than we accept (a configured limit,
    /// against servers that stream forever); the rest is cut off.
    #[error("more than {limit} bindings (limit)")]
    TooManyBindings {
        /// The limit.
        limit: u64,
    },
    /// The server sent more octets on one connection than we accept.
    #[error("more than {limit} octets on one connection (limit)")]
    TooManyBytes {
        /// The limit.
        limit: u64,
    },
    /// A binding's relay chain is deeper than we accept: RFC 8415 s.19.1.1
    /// relays never forward past HOP_COUNT_LIMIT (32, s.7.6), so the server
    /// is broken or hostile and is cut off.
    #[error("relay chain of {depth} layers, deeper than the limit of {limit} (RFC 8415 HOP_COUNT_LIMIT)")]
    RelayChainTooDeep {
        /// Layers in the chain.
        depth: usize,
        /// The limit.
        limit: usize,
    },
    /// A DATA or DONE whose transaction-id matches no outstanding query (RFC 5460 s.6.3).
    #[error(
        "{msg_type} with transaction-id {xid} that matches no outstanding query (RFC 5460 6.3)"
    )]
    UnknownXid {
        /// The message type.
        msg_type: MessageType,
        /// Its transaction-id.
        xid: Xid,
    },
}

/// An IO error as the outcome types keep it: its kind, the OS error number
/// when there is one, and its message. (`std::io::Error` itself is neither
/// `Clone` nor `PartialEq`, which outcomes must be.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoError {
    kind: io::ErrorKind,
    raw_os_error: Option<i32>,
    message: String,
}

impl IoError {
    /// An error of `kind` with no OS error number, e.g. a write that
    /// returned 0 ([`io::ErrorKind::WriteZero`]).
    pub fn new(kind: io::ErrorKind, message: impl Into<String>) -> Self {
        IoError {
            kind,
            raw_os_error: None,
            message: message.into(),
        }
    }

    /// What kind of error it is.
    pub fn kind(&self) -> io::ErrorKind {
        self.kind
    }

    /// The OS error number (errno), when the error came from the system.
    pub fn raw_os_error(&self) -> Option<i32> {
        self.raw_os_error
    }

    /// The message, as `std::io::Error` displays it.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<&io::Error> for IoError {
    fn from(e: &io::Error) -> Self {
        IoError {
            kind: e.kind(),
            raw_os_error: e.raw_os_error(),
            message: e.to_string(),
        }
    }
}

impl From<io::Error> for IoError {
    fn from(e: io::Error) -> Self {
        IoError::from(&e)
    }
}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for IoError {}

/// A failure below the protocol: connecting, writing, reading.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The connection was refused (nothing listens there).
    #[error("connection refused")]
    Refused,
    /// The connect did not complete within the data timeout.
    #[error("connect timed out")]
    ConnectTimeout,
    /// Connecting failed otherwise.
    #[error("connect failed: {0}")]
    Connect(IoError),
    /// The source address to connect from could not be bound.
    #[error("connect failed: bind {address}: {error}")]
    Bind {
        /// The source address.
        address: IpAddr,
        /// Why.
        error: IoError,
    },
    /// A write stayed blocked for the data timeout (RFC 5460 s.6.2).
    #[error("write blocked for the data timeout (RFC 5460 6.2)")]
    WriteTimeout,
    /// Reading or writing failed.
    #[error("i/o error: {0}")]
    Io(IoError),
}

/// A query pdrestore refused to send, because of a mistake of its own: a
/// pdrestore bug, never the server's doing. That query fails; the others
/// on the connection go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OurBug {
    /// Another outstanding query on the connection has this transaction-id
    /// (RFC 5460 s.6.5: each must be unique).
    #[error("transaction-id {0} is already outstanding on the connection (RFC 5460 6.5)")]
    DuplicateXid(Xid),
    /// The encoded LEASEQUERY does not fit a frame (RFC 5460 s.5.1: 1 to
    /// 65535 octets).
    #[error("a LEASEQUERY of {0} octets does not fit a frame (RFC 5460 5.1)")]
    Unframeable(usize),
}

/// Why a query that was sent did not complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartialReason {
    /// The server closed the connection first (RFC 5460 s.6.3.1 item 3).
    Closed,
    /// Nothing arrived for BULK_LQ_DATA_TIMEOUT (RFC 5460 s.6.3).
    DataTimeout,
    /// The overall time allowed for the server ran out.
    Deadline,
    /// LEASEQUERY-DONE carried an error status after data (RFC 5460 s.5.2.2);
    /// QueryTerminated is the usual one (s.5.5).
    DoneStatus(ServerStatus),
    /// This query's reply broke the protocol.
    Protocol(ProtocolError),
    /// Another query on the same connection broke the protocol, and the
    /// connection was closed under this one.
    Aborted(ProtocolError),
}

impl fmt::Display for PartialReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PartialReason::Closed => write!(f, "connection closed by the server"),
            PartialReason::DataTimeout => write!(f, "data timeout"),
            PartialReason::Deadline => write!(f, "deadline for the server passed"),
            PartialReason::DoneStatus(s) => write!(f, "DONE with status {s}"),
            PartialReason::Protocol(e) => write!(f, "protocol error: {e}"),
            PartialReason::Aborted(e) => write!(f, "connection aborted: {e}"),
        }
    }
}

/// How one query ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// REPLY with OPTION_CLIENT_DATA, DATA*, then DONE (RFC 5460 s.6.3.1 item 2):
    /// every binding the server has for the query was delivered.
    Complete,
    /// A successful REPLY without OPTION_CLIENT_DATA (RFC 5460 s.6.3, s.6.3.1
    /// item 1): the server has no matching binding.
    NoBindings,
    /// The REPLY carried an error status (RFC 5007 s.4.3.3, RFC 5460 s.5.5).
    ServerStatus(ServerStatus),
    /// The query did not complete; the bindings delivered, if any, are a subset.
    Partial(PartialReason),
    /// The transport failed; the bindings delivered, if any, are a subset.
    TransportFailure(TransportError),
    /// pdrestore did not send the query: a bug of its own ([`OurBug`]).
    OurBug(OurBug),
}

impl Outcome {
    /// True when the server's answer is whole: [`Outcome::Complete`] or
    /// [`Outcome::NoBindings`].
    pub fn is_complete(&self) -> bool {
        matches!(self, Outcome::Complete | Outcome::NoBindings)
    }
}

impl Outcome {
    /// A stable machine-readable code for the outcome: `complete`,
    /// `no-bindings`, `status-<name>` (`status-not-allowed`), `closed`,
    /// `data-timeout`, `deadline`, `done-status-<name>`, `protocol-error`,
    /// `aborted`, `connection-refused`, `connect-timeout`, `connect-failed`,
    /// `write-timeout`, `io-error`, `pdrestore-bug`.
    pub fn code(&self) -> String {
        fn kebab(s: &ServerStatus) -> String {
            let name = match s.code.name() {
                Some(n) => n.to_string(),
                None => format!("code{}", u16::from(s.code)),
            };
            let mut out = String::new();
            for (i, c) in name.chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    out.push('-');
                }
                out.push(c.to_ascii_lowercase());
            }
            out
        }
        match self {
            Outcome::Complete => "complete".into(),
            Outcome::NoBindings => "no-bindings".into(),
            Outcome::ServerStatus(s) => format!("status-{}", kebab(s)),
            Outcome::Partial(PartialReason::Closed) => "closed".into(),
            Outcome::Partial(PartialReason::DataTimeout) => "data-timeout".into(),
            Outcome::Partial(PartialReason::Deadline) => "deadline".into(),
            Outcome::Partial(PartialReason::DoneStatus(s)) => format!("done-status-{}", kebab(s)),
            Outcome::Partial(PartialReason::Protocol(_)) => "protocol-error".into(),
            Outcome::Partial(PartialReason::Aborted(_)) => "aborted".into(),
            Outcome::TransportFailure(e) => match e {
                TransportError::Refused => "connection-refused",
                TransportError::ConnectTimeout => "connect-timeout",
                TransportError::Connect(_) | TransportError::Bind { .. } => "connect-failed",
                TransportError::WriteTimeout => "write-timeout",
                TransportError::Io(_) => "io-error",
            }
            .into(),
            Outcome::OurBug(_) => "pdrestore-bug".into(),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Complete => write!(f, "complete"),
            Outcome::NoBindings => write!(f, "no bindings"),
            Outcome::ServerStatus(s) => write!(f, "status {s}"),
            Outcome::Partial(r) => write!(f, "partial: {r}"),
            Outcome::TransportFailure(e) => write!(f, "transport failure: {e}"),
            Outcome::OurBug(e) => write!(f, "not sent, a pdrestore bug: {e}"),
        }
    }
}

/// Why a message or an option was discarded without ending the query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DropReason {
    /// A REPLY without OPTION_SERVERID (RFC 5007 s.4.2.2).
    ReplyWithoutServerId,
    /// A REPLY without OPTION_CLIENTID (RFC 5007 s.4.2.2).
    ReplyWithoutClientId,
    /// A REPLY whose OPTION_CLIENTID is not our DUID (RFC 5007 s.4.2.2).
    ReplyForeignClientId(Duid),
    /// A REPLY whose transaction-id matches no outstanding query.
    ReplyUnknownXid,
    /// A DATA without OPTION_CLIENT_DATA (RFC 5460 s.6.3).
    DataWithoutClientData,
    /// An OPTION_CLIENT_DATA that yields no binding (no CLT_TIME: RFC 5007
    /// s.4.3.3; no CLIENTID; a repeated option).
    ClientData(ClientDataError),
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DropReason::ReplyWithoutServerId => {
                write!(f, "REPLY without SERVERID discarded (RFC 5007 4.2.2)")
            }
            DropReason::ReplyWithoutClientId => {
                write!(f, "REPLY without CLIENTID discarded (RFC 5007 4.2.2)")
            }
            DropReason::ReplyForeignClientId(d) => {
                write!(
                    f,
                    "REPLY for CLIENTID {d}, not ours, discarded (RFC 5007 4.2.2)"
                )
            }
            DropReason::ReplyUnknownXid => {
                write!(f, "REPLY for no outstanding query discarded")
            }
            DropReason::DataWithoutClientData => {
                write!(f, "DATA without CLIENT_DATA discarded (RFC 5460 6.3)")
            }
            DropReason::ClientData(e) => write!(f, "{e}"),
        }
    }
}

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
/// as (see [`BindingMapper`]).
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

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    AwaitingReply,
    ReceivingData,
    Finished(Outcome),
}

/// The reply assembly of one query (one transaction-id), RFC 5460 s.6.3.
///
/// Feed it every validated message carrying its transaction-id with
/// [`QueryAssembler::handle_message`], and tell it how the connection ended
/// with [`QueryAssembler::handle_close`] or [`QueryAssembler::fail`]; read
/// what happened with [`QueryAssembler::poll_event`]. Time is only recorded,
/// never read: the data timeout is run by the caller (see [`ReplyDemux`]).
#[derive(Debug)]
pub struct QueryAssembler<M: BindingMapper = OwnedBindings> {
    xid: Xid,
    requestor: Duid,
    state: State,
    stats: QueryStats,
    events: VecDeque<Event<M::Item>>,
    max_bindings: u64,
    max_relay_depth: usize,
    mapper: M,
}

/// What the options of one reply message hold, gathered in one walk.
#[derive(Default)]
struct Scan<'a> {
    client_id: Option<&'a [u8]>,
    server_id: Option<&'a [u8]>,
    status: Option<(StatusCode, &'a [u8])>,
    client_link: bool,
    client_data: usize,
}

fn scan<'a>(msg: &MessageView<'a>) -> Scan<'a> {
    let mut s = Scan::default();
    for o in msg.options().valid() {
        match o {
            OptionView::ClientId(d) => {
                s.client_id.get_or_insert(d);
            }
            OptionView::ServerId(d) => {
                s.server_id.get_or_insert(d);
            }
            OptionView::StatusCode { code, message } => {
                s.status.get_or_insert((code, message));
            }
            OptionView::LqClientLink(_) => s.client_link = true,
            OptionView::ClientData(_) => s.client_data += 1,
            _ => {}
        }
    }
    s
}

impl QueryAssembler {
    /// A query with transaction-id `xid`, sent at `now` with
    /// OPTION_CLIENTID `requestor`, delivering owned [`Binding`]s.
    pub fn new(xid: Xid, requestor: Duid, now: Instant) -> Self {
        Self::with_mapper(xid, requestor, now, OwnedBindings)
    }
}

impl<M: BindingMapper> QueryAssembler<M> {
    /// [`QueryAssembler::new`] delivering bindings as `mapper` makes them.
    pub fn with_mapper(xid: Xid, requestor: Duid, now: Instant, mapper: M) -> Self {
        QueryAssembler {
            xid,
            requestor,
            state: State::AwaitingReply,
            stats: QueryStats {
                started: now,
                replied: None,
                finished: None,
                messages: 0,
                bindings: 0,
                dropped: 0,
                server_id: None,
            },
            events: VecDeque::new(),
            max_bindings: u64::MAX,
            max_relay_depth: usize::MAX,
            mapper,
        }
    }

    /// Accept relay chains of at most `max` layers (no limit by default): a
    /// binding with a deeper chain ends the query with
    /// [`ProtocolError::RelayChainTooDeep`] (the bindings before it in the
    /// message are delivered, it and the rest are not).
    pub fn set_max_relay_depth(&mut self, max: usize) {
        self.max_relay_depth = max;
    }

    /// Accept at most `max` bindings for this query: a message that brings
    /// the count past it ends the query with [`ProtocolError::TooManyBindings`]
    /// after the bindings up to the limit have been delivered.
    pub fn set_max_bindings(&mut self, max: u64) {
        self.max_bindings = max;
    }

    /// The transaction-id.
    pub fn xid(&self) -> Xid {
        self.xid
    }

    /// The outcome, once the query has ended.
    pub fn outcome(&self) -> Option<&Outcome> {
        match &self.state {
            State::Finished(o) => Some(o),
            _ => None,
        }
    }

    /// True once the query has ended.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Finished(_))
    }

    /// True once a valid REPLY has been accepted.
    pub fn has_reply(&self) -> bool {
        self.stats.replied.is_some()
    }

    /// The counters so far.
    pub fn stats(&self) -> &QueryStats {
        &self.stats
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event<M::Item>> {
        self.events.pop_front()
    }

    fn finish(&mut self, outcome: Outcome, now: Instant) {
        if self.is_finished() {
            return;
        }
        self.stats.finished = Some(now);
        self.state = State::Finished(outcome.clone());
        self.events.push_back(Event::Finished {
            xid: self.xid,
            outcome,
            stats: self.stats.clone(),
        });
    }

    fn violate(&mut self, e: ProtocolError, now: Instant) -> Result<(), ProtocolError> {
        self.finish(Outcome::Partial(PartialReason::Protocol(e.clone())), now);
        Err(e)
    }

    fn drop_msg(&mut self, reason: DropReason) {
        self.stats.dropped += 1;
        self.events.push_back(Event::Dropped {
            xid: self.xid,
            reason,
        });
    }

    fn take_bindings(&mut self, msg: &MessageView<'_>, now: Instant) -> Result<(), ProtocolError> {
        for o in msg.options().valid() {
            let OptionView::ClientData(opts) = o else {
                continue;
            };
            match ClientData::parse(opts) {
                Ok(cd) => {
                    for b in cd.bindings() {
                        if self.stats.bindings >= self.max_bindings {
                            return Err(ProtocolError::TooManyBindings {
                                limit: self.max_bindings,
                            });
                        }
                        let binding =
                            self.mapper.map(&b, self.max_relay_depth).map_err(|depth| {
                                ProtocolError::RelayChainTooDeep {
                                    depth,
                                    limit: self.max_relay_depth,
                                }
                            })?;
                        self.stats.bindings += 1;
                        self.events.push_back(Event::Binding {
                            xid: self.xid,
                            at: now,
                            binding,
                        });
                    }
                }
                Err(e) => self.drop_msg(DropReason::ClientData(e)),
            }
        }
        Ok(())
    }

    /// Handle one received message with this query's transaction-id. The
    /// message must have been validated ([`MessageView::parse_validated`]).
    ///
    /// `Err` means the message broke the protocol and the connection must be
    /// closed (RFC 5460 s.6.3); the query has then ended (unless it had ended
    /// before, in which case a DATA or DONE is [`ProtocolError::UnknownXid`]:
    /// it is no longer outstanding).
    pub fn handle_message(
        &mut self,
        msg: &MessageView<'_>,
        now: Instant,
    ) -> Result<(), ProtocolError> {
        let msg_type = msg.msg_type();
        if msg.is_relay() || msg.xid() != self.xid {
            let e = if msg.is_relay() {
                ProtocolError::UnexpectedMessage(msg_type)
            } else {
                ProtocolError::UnknownXid {
                    msg_type,
                    xid: msg.xid(),
                }
            };
            return self.violate(e, now);
        }
        if self.is_finished() {
            return Err(self.after_the_end(msg_type));
        }
        self.stats.messages += 1;
        let s = scan(msg);
        let awaiting = matches!(self.state, State::AwaitingReply);
        match msg_type {
            MessageType::LeasequeryReply if awaiting => self.handle_reply(msg, &s, now),
            MessageType::LeasequeryReply => self.violate(ProtocolError::DuplicateReply, now),
            MessageType::LeasequeryData if awaiting => {
                self.violate(ProtocolError::DataBeforeReply, now)
            }
            MessageType::LeasequeryData => self.handle_data(msg, &s, now),
            MessageType::LeasequeryDone if awaiting => {
                self.violate(ProtocolError::DoneBeforeReply, now)
            }
            MessageType::LeasequeryDone => self.handle_done(&s, now),
            other => self.violate(ProtocolError::UnexpectedMessage(other), now),
        }
    }

    /// What a message of `msg_type` for this query is once it has ended: a
    /// second REPLY, or a DATA or DONE for no outstanding query (RFC 5460 s.6.3).
    fn after_the_end(&self, msg_type: MessageType) -> ProtocolError {
        match msg_type {
            MessageType::LeasequeryReply => ProtocolError::DuplicateReply,
            MessageType::LeasequeryData | MessageType::LeasequeryDone => {
                ProtocolError::UnknownXid {
                    msg_type,
                    xid: self.xid,
                }
            }
            other => ProtocolError::UnexpectedMessage(other),
        }
    }

    /// The LEASEQUERY-REPLY (RFC 5460 s.6.3): discarded without SERVERID or
    /// without our CLIENTID (RFC 5007 s.4.2.2); else an error status ends
    /// the query, no CLIENT_DATA means no bindings, and CLIENT_DATA starts
    /// the stream.
    fn handle_reply(
        &mut self,
        msg: &MessageView<'_>,
        s: &Scan<'_>,
        now: Instant,
    ) -> Result<(), ProtocolError> {
        let Some(server_id) = s.server_id else {
            self.drop_msg(DropReason::ReplyWithoutServerId);
            return Ok(());
        };
        let Some(client_id) = s.client_id else {
            self.drop_msg(DropReason::ReplyWithoutClientId);
            return Ok(());
        };
        if client_id != self.requestor.as_bytes() {
            let theirs = Duid::from_bytes(client_id);
            self.drop_msg(DropReason::ReplyForeignClientId(theirs));
            return Ok(());
        }
        self.stats.replied = Some(now);
        self.stats.server_id = Some(Duid::from_bytes(server_id));
        if s.client_link {
            return self.violate(ProtocolError::ClientLink, now);
        }
        match s.status {
            Some((code, text)) if code != StatusCode::Success => {
                let status = ServerStatus::from_wire(code, text);
                self.finish(Outcome::ServerStatus(status), now);
            }
            _ if s.client_data == 0 => self.finish(Outcome::NoBindings, now),
            _ => {
                self.state = State::ReceivingData;
                if let Err(e) = self.take_bindings(msg, now) {
                    return self.violate(e, now);
                }
            }
        }
        Ok(())
    }

    /// A LEASEQUERY-DATA after the REPLY: its bindings, or discarded without
    /// CLIENT_DATA (RFC 5460 s.6.3).
    fn handle_data(
        &mut self,
        msg: &MessageView<'_>,
        s: &Scan<'_>,
        now: Instant,
    ) -> Result<(), ProtocolError> {
        if s.client_link {
            return self.violate(ProtocolError::ClientLink, now);
        }
        if s.client_data == 0 {
            self.drop_msg(DropReason::DataWithoutClientData);
        } else if let Err(e) = self.take_bindings(msg, now) {
            return self.violate(e, now);
        }
        Ok(())
    }

    /// The LEASEQUERY-DONE: complete, or partial when it carries an error
    /// status after data (RFC 5460 s.5.2.2, s.6.3.1 item 2).
    fn handle_done(&mut self, s: &Scan<'_>, now: Instant) -> Result<(), ProtocolError> {
        if s.client_link {
            return self.violate(ProtocolError::ClientLink, now);
        }
        match s.status {
            Some((code, text)) if code != StatusCode::Success => {
                let status = ServerStatus::from_wire(code, text);
                self.finish(Outcome::Partial(PartialReason::DoneStatus(status)), now);
            }
            _ => self.finish(Outcome::Complete, now),
        }
        Ok(())
    }

    /// The connection was closed by the server before this query ended:
    /// the result is partial (RFC 5460 s.6.3.1 item 3). No effect once ended.
    pub fn handle_close(&mut self, now: Instant) {
        self.finish(Outcome::Partial(PartialReason::Closed), now);
    }

    /// End the query with `outcome` (data timeout, transport failure, abort).
    /// No effect once ended.
    pub fn fail(&mut self, outcome: Outcome, now: Instant) {
        self.finish(outcome, now);
    }
}

/// Why a [`ReplyDemux`] wants its connection closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The server closed it.
    PeerClosed,
    /// BULK_LQ_DATA_TIMEOUT passed with nothing received (RFC 5460 s.6.3).
    DataTimeout,
    /// The overall time allowed for the server ran out.
    Deadline,
    /// The server broke the protocol.
    Protocol(ProtocolError),
    /// The transport failed.
    Transport(TransportError),
}

/// Why [`ReplyDemux::start_query`] refused a query.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    /// Another outstanding query has this transaction-id (RFC 5460 s.6.5: each unique).
    #[error("transaction-id {0} is already outstanding")]
    DuplicateXid(Xid),
    /// The connection is closed.
    #[error("the connection is closed")]
    Closed,
}

/// The reply side of one Bulk Leasequery connection, sans IO.
///
/// Call [`ReplyDemux::start_query`] when a LEASEQUERY is sent,
/// [`ReplyDemux::handle_frame`] for every frame received,
/// [`ReplyDemux::handle_close`] at end of stream,
/// [`ReplyDemux::handle_transport_error`] when reading or writing fails, and
/// [`ReplyDemux::handle_timeout`] when the instant of
/// [`ReplyDemux::poll_timeout`] has come. After each, drain
/// [`ReplyDemux::poll_event`] and check [`ReplyDemux::close_reason`]: once it
/// is set, close the socket; every query has then ended.
#[derive(Debug)]
pub struct ReplyDemux<M: BindingMapper = OwnedBindings> {
    mapper: M,
    requestor: Duid,
    data_timeout: Duration,
    queries: BTreeMap<Xid, QueryAssembler<M>>,
    last_activity: Option<Instant>,
    events: VecDeque<Event<M::Item>>,
    closed: Option<CloseReason>,
    max_per_query: u64,
    max_total: u64,
    max_relay_depth: usize,
    delivered: u64,
}

impl ReplyDemux {
    /// A connection whose queries carry OPTION_CLIENTID `requestor`, with
    /// BULK_LQ_DATA_TIMEOUT `data_timeout`, delivering owned [`Binding`]s.
    pub fn new(requestor: Duid, data_timeout: Duration) -> Self {
        Self::with_mapper(requestor, data_timeout, OwnedBindings)
    }
}

impl<M: BindingMapper> ReplyDemux<M> {
    /// [`ReplyDemux::new`] delivering bindings as `mapper` makes them (each
    /// query gets a clone of it).
    pub fn with_mapper(requestor: Duid, data_timeout: Duration, mapper: M) -> Self {
        ReplyDemux {
            mapper,
            requestor,
            data_timeout,
            queries: BTreeMap::new(),
            last_activity: None,
            events: VecDeque::new(),
            closed: None,
            max_per_query: u64::MAX,
            max_total: u64::MAX,
            max_relay_depth: usize::MAX,
            delivered: 0,
        }
    }

    /// Accept at most `per_query` bindings for one query and `total` for the
    /// whole connection; past either, the query at fault ends with
    /// [`ProtocolError::TooManyBindings`] and the connection is closed.
    pub fn set_limits(&mut self, per_query: u64, total: u64) {
        self.max_per_query = per_query;
        self.max_total = total;
    }

    /// Accept relay chains of at most `max` layers (no limit by default);
    /// a deeper one ends its query with [`ProtocolError::RelayChainTooDeep`]
    /// and closes the connection (see [`QueryAssembler::set_max_relay_depth`]).
    pub fn set_max_relay_depth(&mut self, max: usize) {
        self.max_relay_depth = max;
    }

    /// Bindings delivered on this connection so far.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Close the connection for a reason found outside the protocol engine
    /// (e.g. too many octets read): every outstanding query ends
    /// [`PartialReason::Aborted`].
    pub fn abort(&mut self, e: ProtocolError, now: Instant) {
        self.close(
            CloseReason::Protocol(e.clone()),
            Outcome::Partial(PartialReason::Aborted(e)),
            now,
        );
    }

    /// The requestor DUID.
    pub fn requestor(&self) -> &Duid {
        &self.requestor
    }

    /// Register a query about to be sent with transaction-id `xid`.
    pub fn start_query(&mut self, xid: Xid, now: Instant) -> Result<(), StartError> {
        if self.closed.is_some() {
            return Err(StartError::Closed);
        }
        if self.queries.contains_key(&xid) {
            return Err(StartError::DuplicateXid(xid));
        }
        let q = QueryAssembler::with_mapper(xid, self.requestor.clone(), now, self.mapper.clone());
        self.queries.insert(xid, q);
        self.touch(now);
        Ok(())
    }

    /// Every query started so far has been written in full at `now`: the
    /// data timeout counts from here (RFC 5460 s.6.3: the wait for replies
    /// begins once the query is sent).
    pub fn handle_sent(&mut self, now: Instant) {
        self.touch(now);
    }

    /// Number of queries that have not ended.
    pub fn outstanding(&self) -> usize {
        self.queries.len()
    }

    /// True when `xid` is outstanding.
    pub fn is_outstanding(&self, xid: Xid) -> bool {
        self.queries.contains_key(&xid)
    }

    /// Set once the connection must be closed.
    pub fn close_reason(&self) -> Option<&CloseReason> {
        self.closed.as_ref()
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event<M::Item>> {
        self.events.pop_front()
    }

    /// When [`ReplyDemux::handle_timeout`] must be called: BULK_LQ_DATA_TIMEOUT
    /// after the last message received or query started, while a query is
    /// outstanding (RFC 5460 s.6.3).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed.is_some() || self.queries.is_empty() {
            return None;
        }
        self.last_activity.map(|t| t + self.data_timeout)
    }

    fn touch(&mut self, now: Instant) {
        self.last_activity = Some(match self.last_activity {
            Some(t) if t > now => t,
            _ => now,
        });
    }

    fn drain(&mut self, xid: Xid) {
        if let Some(q) = self.queries.get_mut(&xid) {
            while let Some(e) = q.poll_event() {
                self.events.push_back(e);
            }
            if q.is_finished() {
                self.queries.remove(&xid);
            }
        }
    }

    /// Close the connection: every outstanding query ends with `outcome`.
    fn close(&mut self, reason: CloseReason, outcome: Outcome, now: Instant) {
        if self.closed.is_some() {
            return;
        }
        self.closed = Some(reason);
        let xids: Vec<Xid> = self.queries.keys().copied().collect();
        for xid in xids {
            if let Some(q) = self.queries.get_mut(&xid) {
                q.fail(outcome.clone(), now);
            }
            self.drain(xid);
        }
    }

    /// Handle one received frame body (one DHCPv6 message).
    pub fn handle_frame(&mut self, frame: &[u8], now: Instant) {
        if frame.is_empty() {
            return self.protocol_violation(None, ProtocolError::EmptyFrame, now);
        }
        match MessageView::parse_validated(frame) {
            Ok(msg) => self.handle_message(&msg, now),
            Err(e) => {
                // The xid, when the header is there, names the query at fault.
                let xid = (frame.len() >= 4 && !MessageType::from(frame[0]).is_relay())
                    .then(|| Xid::from_octets([frame[1], frame[2], frame[3]]));
                self.protocol_violation(xid, ProtocolError::Malformed(e), now)
            }
        }
    }

    fn protocol_violation(&mut self, xid: Option<Xid>, e: ProtocolError, now: Instant) {
        if let Some(q) = xid.and_then(|x| self.queries.get_mut(&x)) {
            q.fail(Outcome::Partial(PartialReason::Protocol(e.clone())), now);
            let x = q.xid();
            self.drain(x);
        }
        self.close(
            CloseReason::Protocol(e.clone()),
            Outcome::Partial(PartialReason::Aborted(e)),
            now,
        );
    }

    /// Handle one received message, validated ([`MessageView::parse_validated`]).
    pub fn handle_message(&mut self, msg: &MessageView<'_>, now: Instant) {
        if self.closed.is_some() {
            return;
        }
        self.touch(now);
        let msg_type = msg.msg_type();
        if !matches!(
            msg_type,
            MessageType::LeasequeryReply
                | MessageType::LeasequeryData
                | MessageType::LeasequeryDone
        ) {
            let xid = (!msg.is_relay()).then(|| msg.xid());
            return self.protocol_violation(xid, ProtocolError::UnexpectedMessage(msg_type), now);
        }
        let xid = msg.xid();
        let Some(q) = self.queries.get_mut(&xid) else {
            if msg_type == MessageType::LeasequeryReply {
                // RFC 5007 4.2.2 spirit: a reply to nothing we asked is discarded.
                self.events.push_back(Event::Dropped {
                    xid,
                    reason: DropReason::ReplyUnknownXid,
                });
                return;
            }
            let e = ProtocolError::UnknownXid { msg_type, xid };
            return self.close(
                CloseReason::Protocol(e.clone()),
                Outcome::Partial(PartialReason::Aborted(e)),
                now,
            );
        };
        let before = q.stats().bindings;
        let left = self.max_total.saturating_sub(self.delivered);
        q.set_max_bindings(self.max_per_query.min(before.saturating_add(left)));
        q.set_max_relay_depth(self.max_relay_depth);
        let res = q.handle_message(msg, now);
        self.delivered += q.stats().bindings - before;
        self.drain(xid);
        if let Err(e) = res {
            self.close(
                CloseReason::Protocol(e.clone()),
                Outcome::Partial(PartialReason::Aborted(e)),
                now,
            );
        }
    }

    /// The server closed the connection (end of stream): every outstanding
    /// query is partial (RFC 5460 s.6.3.1 item 3).
    pub fn handle_close(&mut self, now: Instant) {
        self.close(
            CloseReason::PeerClosed,
            Outcome::Partial(PartialReason::Closed),
            now,
        );
    }

    /// Reading or writing failed: every outstanding query ends with it.
    pub fn handle_transport_error(&mut self, err: TransportError, now: Instant) {
        self.close(
            CloseReason::Transport(err.clone()),
            Outcome::TransportFailure(err),
            now,
        );
    }

    /// The overall time allowed for this server has run out: every
    /// outstanding query ends [`PartialReason::Deadline`] and the connection
    /// is to be closed.
    pub fn handle_deadline(&mut self, now: Instant) {
        self.close(
            CloseReason::Deadline,
            Outcome::Partial(PartialReason::Deadline),
            now,
        );
    }

    /// Check the data timeout at `now`; once it has passed, every outstanding
    /// query ends [`PartialReason::DataTimeout`] and the connection is to be closed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(deadline) = self.poll_timeout() {
            if now >= deadline {
                self.close(
                    CloseReason::DataTimeout,
                    Outcome::Partial(PartialReason::DataTimeout),
                    now,
                );
            }
        }
    }
}

#[cfg(test)]
#[path = "assembly_tests.rs"]
mod tests;
