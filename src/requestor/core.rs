//! The sans-IO core of one Bulk Leasequery connection: every rule about what
//! to send, when to give up and what to deliver, with no socket and no clock.
//!
//! [`ConnectionCore`] wraps the reply assembly ([`ReplyDemux`], which reads
//! the replies of each query, RFC 5460 s.6.3) and holds the policy of the
//! connection around it:
//!
//! - **The window.** At most [`ConnectionConfig::max_in_flight`] queries are
//!   outstanding at once (RFC 5460 s.6.5: one unless the server is known to
//!   interleave); the next is started as soon as one ends.
//! - **Results.** Each [`PlannedQuery`] keeps the caller's index across its
//!   transaction-id, and every query given gets exactly one [`QueryResult`]:
//!   sent or not, whatever becomes of the connection.
//! - **The write deadline** (RFC 5460 s.6.2). A write that makes no progress
//!   for the data timeout fails the connection. While bytes wait to be
//!   written, the read timeout does not run: a server that does not read
//!   cannot be blamed for not answering.
//! - **The first answer.** Once the queries are written, nothing at all
//!   received for [`ConnectionConfig::first_answer_timeout`] while no query
//!   in flight has received anything ends them [`Outcome::NoAnswer`] and the
//!   connection: a server that accepts a query and never answers costs
//!   that, not the data timeout.
//! - **The read timeout** (RFC 5460 s.6.3). Once a query has received
//!   something, nothing received for the data timeout ends the connection
//!   (a stalled stream; [`ReplyDemux::poll_timeout`] runs both timers).
//! - **The server deadline.** The caller's overall time for the server
//!   ([`Attempt::deadline`]) ends the connection wherever it is.
//! - **Bounds.** The octets read ([`Limits::max_bytes_per_connection`]), the
//!   bindings per query and per server ([`Attempt::budget`]) and the depth of
//!   relay chains: past any, the server is cut off.
//! - **Bursts.** Frames that are already there are handled together, up to
//!   [`MAX_FRAMES_PER_BURST`], and their bindings delivered as one batch
//!   ([`ConnectionEvent::Bindings`]), so that the consumer gets one channel
//!   message per burst and not per binding.
//! - **Steps.** Each query's steps (written, first answer, ended) are
//!   events ([`ConnectionEvent::Query`]), for the shell's debug log.
//! - **Warnings.** Discarded messages (RFC 5007 s.4.2.2, RFC 5460 s.6.3)
//!   are reported with a [`Severity`]: warnings for the first
//!   [`MAX_DROP_WARNINGS`] on the connection, debug after that (a hostile
//!   server could send millions).
//!
//! # Driving it
//! Time is an argument of every input, in the manner of quinn-proto. The
//! shell ([`super::connection::query_over`]) loops until
//! [`ConnectionCore::is_done`]:
//! 1. write what [`ConnectionCore::poll_transmit`] gives, and report how much
//!    went with [`ConnectionCore::handle_written`];
//! 2. read a frame, hand it to [`ConnectionCore::handle_frame`] (or the end
//!    of the stream to [`ConnectionCore::handle_close`], a failure to
//!    [`ConnectionCore::handle_transport_error`]), and take the frames that
//!    are already there while [`ConnectionCore::takes_more_frames`];
//! 3. sleep until [`ConnectionCore::poll_timeout`], then call
//!    [`ConnectionCore::handle_timeout`];
//! 4. after each of these, forward every [`ConnectionCore::poll_event`].
//!
//! Then [`ConnectionCore::into_report`] gives the [`ConnectionReport`].

use super::assembly::{
    CloseReason, DropReason, Event, IoError, OurBug, Outcome, PartialReason, ProtocolError,
    QueryStats, ReplyDemux, StartError, TransportError, BULK_LQ_DATA_TIMEOUT,
};
use crate::proto::frame::{put_frame, LENGTH_PREFIX};
use crate::proto::{Binding, BindingMapper, Duid, OwnedBindings, ServerIndex, Xid};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// Frames handled in one burst before the shell looks at timers and writes
/// again: about 80 kB of Kea-shaped replies, a few hundred microseconds.
pub const MAX_FRAMES_PER_BURST: usize = 512;

/// Discarded messages reported as warnings per connection; the rest are
/// reported at debug level (their count is in each query's stats).
pub const MAX_DROP_WARNINGS: u32 = 10;

/// The connect timeout unless configured: a live server answers a SYN in
/// milliseconds, and a black-holed one must not hold a try for the whole
/// data timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The first-answer timeout unless configured: a live server answers a
/// LEASEQUERY (its REPLY, or the first page of it) in milliseconds to
/// seconds; one that says nothing for this long after the query was sent
/// does not answer it, and is not waited for the whole data timeout.
pub const DEFAULT_FIRST_ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// Resource bounds against servers that stream forever or send monsters:
/// past any, the server is cut off and not retried. The `[limits]` table of
/// the configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Most bindings accepted from one query.
    pub max_bindings_per_query: u64,
    /// Most bindings accepted from one server, all queries and tries together.
    pub max_bindings_per_server: u64,
    /// Most octets read from one connection, length prefixes included.
    pub max_bytes_per_connection: u64,
    /// Deepest relay chain accepted in a binding (RFC 8415 s.7.6
    /// HOP_COUNT_LIMIT is 32); a deeper one cuts the server off.
    #[serde(deserialize_with = "positive_u8")]
    pub max_relay_depth: u8,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bindings_per_query: 4_000_000,
            max_bindings_per_server: 8_000_000,
            max_bytes_per_connection: 4 << 30,
            max_relay_depth: 32,
        }
    }
}

/// A limit that must be at least 1, as the configuration file gives it.
fn positive_u8<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    let v = u8::deserialize(d)?;
    if v == 0 {
        return Err(serde::de::Error::custom("must be at least 1"));
    }
    Ok(v)
}

/// Settings of one connection.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// BULK_LQ_DATA_TIMEOUT: blocked write, silent read (RFC 5460 s.5.6).
    pub data_timeout: Duration,
    /// Longest wait for the TCP connect.
    pub connect_timeout: Duration,
    /// Longest wait, once the queries are written, for the first message
    /// while no query in flight has received anything (at most the data
    /// timeout): past it, they end [`Outcome::NoAnswer`].
    pub first_answer_timeout: Duration,
    /// Queries outstanding at once on the connection (RFC 5460 s.6.5); 0 counts as 1.
    pub max_in_flight: usize,
    /// Local address to connect from (port chosen by the system).
    pub source: Option<IpAddr>,
    /// The network device to bind the connection to (`SO_BINDTODEVICE`):
    /// a VRF device, so that the server is reached through the VRF.
    pub device: Option<String>,
    /// Our DUID, sent as OPTION_CLIENTID and checked in every REPLY (RFC 5007 s.4.2.2).
    pub requestor: Duid,
    /// Resource bounds.
    pub limits: Limits,
    /// Overall time for one server, every try and wait included; `None`
    /// for no bound beyond the data timeout of each step.
    pub server_deadline: Option<Duration>,
}

impl ConnectionConfig {
    /// Defaults: 300 s data timeout, 5 s connect timeout, 30 s first-answer
    /// timeout, one query in flight, no source address.
    pub fn new(requestor: Duid) -> Self {
        ConnectionConfig {
            data_timeout: BULK_LQ_DATA_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            first_answer_timeout: DEFAULT_FIRST_ANSWER_TIMEOUT,
            max_in_flight: 1,
            source: None,
            device: None,
            requestor,
            limits: Limits::default(),
            server_deadline: None,
        }
    }
}

/// One try on one connection: its number, what is left of the server's
/// binding budget, and the server's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// Position of the server in the configuration (tags the deliveries).
    pub server_index: ServerIndex,
    /// 1 for the first try.
    pub number: u32,
    /// Bindings still accepted from the server
    /// (what is left of [`Limits::max_bindings_per_server`]).
    pub budget: u64,
    /// When the server's time is up.
    pub deadline: Option<Instant>,
}

impl Attempt {
    /// The first try to the first server, with no budget or deadline.
    pub fn first() -> Self {
        Attempt {
            server_index: ServerIndex::default(),
            number: 1,
            budget: u64::MAX,
            deadline: None,
        }
    }

    /// How long a connect started at `now` may take: `configured`, or what
    /// is left before the deadline when that is less.
    pub fn connect_timeout(&self, configured: Duration, now: Instant) -> Duration {
        match self.deadline {
            Some(d) => configured.min(d.saturating_duration_since(now)),
            None => configured,
        }
    }
}

/// A query ready to send: its index in the caller's list, its
/// transaction-id, and the encoded LEASEQUERY (without the length prefix).
#[derive(Debug, Clone)]
pub struct PlannedQuery {
    /// The caller's index of the query.
    pub index: usize,
    /// The transaction-id in `message`.
    pub xid: Xid,
    /// The LEASEQUERY message.
    pub message: Vec<u8>,
}

/// A binding as delivered: which server, which query and try, when. `T`
/// is what the binding was made into (see [`BindingMapper`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery<T = Binding> {
    /// The server it came from.
    pub server: SocketAddr,
    /// The server's position in the configuration.
    pub server_index: ServerIndex,
    /// The caller's index of the query.
    pub query: usize,
    /// The try (1 for the first) on which it came.
    pub attempt: u32,
    /// The transaction-id of the query on that try.
    pub xid: Xid,
    /// When its message was handled.
    pub received: Instant,
    /// The binding.
    pub binding: T,
}

/// How one query fared on one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryResult {
    /// The caller's index of the query.
    pub index: usize,
    /// Its transaction-id.
    pub xid: Xid,
    /// How it ended.
    pub outcome: Outcome,
    /// Its counters; `None` when it was never sent.
    pub stats: Option<QueryStats>,
}

/// What a connection came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionReport {
    /// One result per query given, in the order they ended.
    pub results: Vec<QueryResult>,
    /// Why the connection ended early, if it did.
    pub close: Option<CloseReason>,
    /// The server's DUID from its first valid REPLY.
    pub server_id: Option<Duid>,
}

impl ConnectionReport {
    /// The report of a try whose connect failed with `error` at `now`: no
    /// query was sent, each ends with the failure. A connect that timed out
    /// because the server's deadline came is [`CloseReason::Deadline`].
    pub fn not_connected(
        queries: Vec<PlannedQuery>,
        error: TransportError,
        attempt: &Attempt,
        now: Instant,
    ) -> Self {
        let close = match (&error, attempt.deadline) {
            (TransportError::ConnectTimeout, Some(d)) if now >= d => CloseReason::Deadline,
            _ => CloseReason::Transport(error),
        };
        ConnectionReport {
            results: queries
                .into_iter()
                .map(|q| unsent(q, Some(&close)))
                .collect(),
            close: Some(close),
            server_id: None,
        }
    }
}

/// How loudly to report something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// A warning: worth an operator's look.
    Warn,
    /// Debug level: more of what was already warned about.
    Debug,
}

/// A step of one query on a connection, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryStep {
    /// The LEASEQUERY was written in full.
    Sent,
    /// The first message for it arrived.
    Answered,
    /// It ended so.
    Ended(Outcome),
}

/// What a [`ConnectionCore`] has to tell its shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionEvent<T = Binding> {
    /// A query took a step: to be logged at debug level.
    Query {
        /// The caller's index of the query.
        index: usize,
        /// Its transaction-id.
        xid: Xid,
        /// What happened.
        step: QueryStep,
    },
    /// The bindings of one burst, in the order they arrived: one channel
    /// message for the consumer.
    Bindings(Vec<Delivery<T>>),
    /// A message or option was discarded; its query goes on. To be logged
    /// at `severity`.
    Discarded {
        /// Transaction-id of the message.
        xid: Xid,
        /// What and why.
        reason: DropReason,
        /// How loudly to log it.
        severity: Severity,
    },
}

/// The outcome of a query that was never sent, after the connection ended
/// with `close` (`None`: it ended cleanly).
fn unsent_outcome(close: Option<&CloseReason>) -> Outcome {
    match close {
        None | Some(CloseReason::PeerClosed) => Outcome::Partial(PartialReason::Closed),
        Some(CloseReason::DataTimeout) => Outcome::Partial(PartialReason::DataTimeout),
        Some(CloseReason::NoAnswer) => Outcome::NoAnswer,
        Some(CloseReason::Deadline) => Outcome::Partial(PartialReason::Deadline),
        Some(CloseReason::Protocol(e)) => Outcome::Partial(PartialReason::Aborted(e.clone())),
        Some(CloseReason::Transport(e)) => Outcome::TransportFailure(e.clone()),
    }
}

fn unsent(q: PlannedQuery, close: Option<&CloseReason>) -> QueryResult {
    QueryResult {
        index: q.index,
        xid: q.xid,
        outcome: unsent_outcome(close),
        stats: None,
    }
}

/// A query in flight: the caller's index, and whether anything came for it.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    index: usize,
    answered: bool,
}

/// One Bulk Leasequery connection, sans IO: see the [module](self) for its
/// rules and how to drive it. `M` makes the bindings (see [`BindingMapper`]).
#[derive(Debug)]
pub struct ConnectionCore<M: BindingMapper = OwnedBindings> {
    demux: ReplyDemux<M>,
    server: SocketAddr,
    attempt: Attempt,
    data_timeout: Duration,
    max_in_flight: usize,
    max_bytes: u64,
    /// Queries not started yet, in the caller's order.
    pending: VecDeque<PlannedQuery>,
    /// Every query in flight.
    in_flight: HashMap<Xid, InFlight>,
    /// Queries started and not yet written in full: (index, xid).
    unwritten: Vec<(usize, Xid)>,
    /// Steps not yet polled.
    steps: VecDeque<(usize, Xid, QueryStep)>,
    /// The last lookup in `in_flight`: the bindings of a message share it.
    last_query: Option<(Xid, usize)>,
    results: Vec<QueryResult>,
    server_id: Option<Duid>,
    /// Framed queries; `out[written..]` waits to be written.
    out: Vec<u8>,
    written: usize,
    /// While bytes wait to be written: when the write last made progress.
    write_progress: Option<Instant>,
    bytes_read: u64,
    /// Frames handled since the events were last drained.
    burst: usize,
    batch: Vec<Delivery<M::Item>>,
    discarded: VecDeque<(Xid, DropReason, Severity)>,
    drops: u32,
}

impl<M: BindingMapper> ConnectionCore<M> {
    /// A connection to `server`, just established at `now`, that will run
    /// `queries` for `attempt` under `cfg`, making bindings with `mapper`.
    /// The first queries the window allows are started (and framed for
    /// [`ConnectionCore::poll_transmit`]) at once.
    pub fn new(
        server: SocketAddr,
        cfg: &ConnectionConfig,
        queries: Vec<PlannedQuery>,
        attempt: Attempt,
        mapper: M,
        now: Instant,
    ) -> Self {
        let mut demux = ReplyDemux::with_mapper(cfg.requestor.clone(), cfg.data_timeout, mapper);
        demux.set_limits(cfg.limits.max_bindings_per_query, attempt.budget);
        demux.set_max_relay_depth(cfg.limits.max_relay_depth.into());
        demux.set_first_answer_timeout(cfg.first_answer_timeout);
        let mut core = ConnectionCore {
            demux,
            server,
            attempt,
            data_timeout: cfg.data_timeout,
            max_in_flight: cfg.max_in_flight.max(1),
            max_bytes: cfg.limits.max_bytes_per_connection,
            pending: queries.into(),
            in_flight: HashMap::new(),
            unwritten: Vec::new(),
            steps: VecDeque::new(),
            last_query: None,
            results: Vec::new(),
            server_id: None,
            out: Vec::new(),
            written: 0,
            write_progress: None,
            bytes_read: 0,
            burst: 0,
            batch: Vec::new(),
            discarded: VecDeque::new(),
            drops: 0,
        };
        core.fill_window(now);
        core
    }

    /// The octets to write now (framed LEASEQUERYs); empty when there is
    /// nothing to write. Call before each write, and report what the socket
    /// took with [`ConnectionCore::handle_written`].
    pub fn poll_transmit(&self) -> &[u8] {
        if self.is_closed() {
            return &[];
        }
        &self.out[self.written..]
    }

    /// `n` octets of [`ConnectionCore::poll_transmit`] were written at
    /// `now`. Progress restarts the write deadline (RFC 5460 s.6.2); once
    /// everything is written, the read timeout starts (s.6.3). A write of 0
    /// octets is a failed connection.
    pub fn handle_written(&mut self, n: usize, now: Instant) {
        if n == 0 {
            let e = IoError::new(std::io::ErrorKind::WriteZero, "write returned 0");
            return self.handle_transport_error(TransportError::Io(e), now);
        }
        self.written = (self.written + n).min(self.out.len());
        if self.written == self.out.len() {
            self.out.clear();
            self.written = 0;
            self.write_progress = None;
            self.demux.handle_sent(now);
            for (index, xid) in self.unwritten.drain(..) {
                self.steps.push_back((index, xid, QueryStep::Sent));
            }
        } else {
            self.write_progress = Some(now);
        }
        self.absorb(now);
    }

    /// A frame body (one DHCPv6 message, without the length prefix) was
    /// received at `now`; an empty one stands for a zero-length frame (a
    /// protocol error, RFC 5460 s.5.1). Past
    /// [`Limits::max_bytes_per_connection`], every query on the connection
    /// is aborted.
    pub fn handle_frame(&mut self, frame: &[u8], now: Instant) {
        self.burst += 1;
        if frame.is_empty() {
            self.demux.handle_frame(frame, now);
        } else {
            self.bytes_read += (LENGTH_PREFIX + frame.len()) as u64;
            if self.bytes_read > self.max_bytes {
                let limit = self.max_bytes;
                self.demux.abort(ProtocolError::TooManyBytes { limit }, now);
            } else {
                self.demux.handle_frame(frame, now);
            }
        }
        self.absorb(now);
    }

    /// True while another frame that has already arrived may be handled in
    /// this burst: the connection is open and fewer than
    /// [`MAX_FRAMES_PER_BURST`] frames were handled since
    /// [`ConnectionCore::poll_event`] last returned `None`. Ask after each
    /// frame; when false, drain the events and go back to writing and timers.
    pub fn takes_more_frames(&self) -> bool {
        !self.is_closed() && self.burst < MAX_FRAMES_PER_BURST
    }

    /// The server closed the connection (end of stream) at `now`: every
    /// outstanding query is partial (RFC 5460 s.6.3.1 item 3).
    pub fn handle_close(&mut self, now: Instant) {
        self.demux.handle_close(now);
        self.absorb(now);
    }

    /// Reading or writing failed at `now`: every outstanding query ends with
    /// the failure.
    pub fn handle_transport_error(&mut self, e: TransportError, now: Instant) {
        self.demux.handle_transport_error(e, now);
        self.absorb(now);
    }

    /// The instant of [`ConnectionCore::poll_timeout`] has come (it may be
    /// called early: nothing happens before a deadline). In order, the first
    /// that has passed ends the connection: the write deadline (RFC 5460
    /// s.6.2), the read timeout (s.6.3, only once everything is written),
    /// the server deadline.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.write_deadline().is_some_and(|t| now >= t) {
            self.demux
                .handle_transport_error(TransportError::WriteTimeout, now);
        }
        if self.write_progress.is_none() {
            self.demux.handle_timeout(now);
        }
        if self.attempt.deadline.is_some_and(|d| now >= d) {
            self.demux.handle_deadline(now);
        }
        self.absorb(now);
    }

    /// When to call [`ConnectionCore::handle_timeout`]: the earliest of the
    /// write deadline (while bytes wait to be written), the read timeout
    /// (once they are written) and the server deadline; `None` once done.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_done() {
            return None;
        }
        let io = match self.write_deadline() {
            Some(t) => Some(t),
            None => self.demux.poll_timeout(),
        };
        match (io, self.attempt.deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next event: discarded messages first, then the queries' steps,
    /// then the bindings of the burst as one batch. Drain after every
    /// input; `None` ends the burst.
    pub fn poll_event(&mut self) -> Option<ConnectionEvent<M::Item>> {
        if let Some((xid, reason, severity)) = self.discarded.pop_front() {
            return Some(ConnectionEvent::Discarded {
                xid,
                reason,
                severity,
            });
        }
        if let Some((index, xid, step)) = self.steps.pop_front() {
            return Some(ConnectionEvent::Query { index, xid, step });
        }
        if !self.batch.is_empty() {
            // The next burst is likely as large: one allocation for it.
            let next = Vec::with_capacity(self.batch.len());
            return Some(ConnectionEvent::Bindings(std::mem::replace(
                &mut self.batch,
                next,
            )));
        }
        self.burst = 0;
        None
    }

    /// True once nothing is left to do: every query has ended, or the
    /// connection must be closed. Then close the socket (RFC 5460 s.6.6)
    /// and take the [`ConnectionCore::into_report`].
    pub fn is_done(&self) -> bool {
        self.is_closed() || (self.demux.outstanding() == 0 && self.pending.is_empty())
    }

    /// Why the connection ended early, once it has.
    pub fn close_reason(&self) -> Option<&CloseReason> {
        self.demux.close_reason()
    }

    /// What the connection came to: one result per query given, the
    /// queries never sent included. Call once [`ConnectionCore::is_done`]
    /// and the events are drained (a query still in flight is reported
    /// closed, without counters).
    pub fn into_report(self) -> ConnectionReport {
        let close = self.demux.close_reason().cloned();
        let mut results = self.results;
        let mut left: Vec<(Xid, usize)> = self
            .in_flight
            .into_iter()
            .map(|(xid, q)| (xid, q.index))
            .collect();
        left.sort_unstable_by_key(|&(_, index)| index);
        results.extend(left.into_iter().map(|(xid, index)| QueryResult {
            index,
            xid,
            outcome: Outcome::Partial(PartialReason::Closed),
            stats: None,
        }));
        results.extend(self.pending.into_iter().map(|q| unsent(q, close.as_ref())));
        ConnectionReport {
            results,
            close,
            server_id: self.server_id,
        }
    }

    fn is_closed(&self) -> bool {
        self.demux.close_reason().is_some()
    }

    fn write_deadline(&self) -> Option<Instant> {
        self.write_progress.map(|t| t + self.data_timeout)
    }

    /// Start what the window allows (RFC 5460 s.6.5).
    fn fill_window(&mut self, now: Instant) {
        while !self.is_closed() && self.demux.outstanding() < self.max_in_flight {
            let Some(q) = self.pending.pop_front() else {
                break;
            };
            match self.start(&q, now) {
                Ok(()) => {}
                Err(None) => {
                    self.pending.push_front(q);
                    break;
                }
                // Our own mistake: this query fails, the others go on.
                Err(Some(bug)) => self.results.push(QueryResult {
                    index: q.index,
                    xid: q.xid,
                    outcome: Outcome::OurBug(bug),
                    stats: None,
                }),
            }
        }
    }

    /// Frame `q` for writing and register it with the reply assembly.
    /// `Err(None)`: the connection is closed.
    fn start(&mut self, q: &PlannedQuery, now: Instant) -> Result<(), Option<OurBug>> {
        let mark = self.out.len();
        put_frame(&q.message, &mut self.out).map_err(|n| Some(OurBug::Unframeable(n)))?;
        if let Err(e) = self.demux.start_query(q.xid, now) {
            self.out.truncate(mark);
            return Err(match e {
                StartError::DuplicateXid(x) => Some(OurBug::DuplicateXid(x)),
                StartError::Closed => None,
            });
        }
        self.in_flight.insert(
            q.xid,
            InFlight {
                index: q.index,
                answered: false,
            },
        );
        self.unwritten.push((q.index, q.xid));
        self.write_progress.get_or_insert(now);
        Ok(())
    }

    /// The caller's index of the query in flight with `xid`, which has
    /// received a message.
    fn query_of(&mut self, xid: Xid) -> Option<usize> {
        match self.last_query {
            Some((x, index)) if x == xid => Some(index),
            _ => {
                let index = self.answered_by(xid)?;
                self.last_query = Some((xid, index));
                Some(index)
            }
        }
    }

    /// The caller's index of the query in flight with `xid`, which has
    /// received a message: the first one is a step.
    fn answered_by(&mut self, xid: Xid) -> Option<usize> {
        let q = self.in_flight.get_mut(&xid)?;
        if !q.answered {
            q.answered = true;
            self.steps.push_back((q.index, xid, QueryStep::Answered));
        }
        Some(q.index)
    }

    /// Sort what the reply assembly reported into deliveries, warnings and
    /// results, then refill the window.
    fn absorb(&mut self, now: Instant) {
        while let Some(ev) = self.demux.poll_event() {
            match ev {
                Event::Binding { xid, at, binding } => {
                    // The assembly only reports queries it was given.
                    let Some(query) = self.query_of(xid) else {
                        debug_assert!(false, "binding for {xid}, not in flight");
                        continue;
                    };
                    self.batch.push(Delivery {
                        server: self.server,
                        server_index: self.attempt.server_index,
                        query,
                        attempt: self.attempt.number,
                        xid,
                        received: at,
                        binding,
                    });
                }
                Event::Dropped { xid, reason } => {
                    self.answered_by(xid);
                    self.drops = self.drops.saturating_add(1);
                    let severity = if self.drops <= MAX_DROP_WARNINGS {
                        Severity::Warn
                    } else {
                        Severity::Debug
                    };
                    self.discarded.push_back((xid, reason, severity));
                }
                Event::Finished {
                    xid,
                    outcome,
                    stats,
                } => {
                    if self.server_id.is_none() {
                        self.server_id = stats.server_id.clone();
                    }
                    self.last_query = None;
                    if stats.messages > 0 {
                        self.answered_by(xid);
                    }
                    let Some(InFlight { index, .. }) = self.in_flight.remove(&xid) else {
                        debug_assert!(false, "{xid} finished, not in flight");
                        continue;
                    };
                    let step = QueryStep::Ended(outcome.clone());
                    self.steps.push_back((index, xid, step));
                    self.results.push(QueryResult {
                        index,
                        xid,
                        outcome,
                        stats: Some(stats),
                    });
                }
            }
        }
        self.fill_window(now);
    }
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
