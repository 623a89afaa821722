//! [`ReplyDemux`]: the reply side of one connection, every query in flight.

use super::error::{
    DropReason, Outcome, PartialReason, ProtocolError, TransportError, UnexpectedMessage,
};
use super::query::QueryAssembler;
use super::Event;
use crate::proto::binding::{BindingMapper, OwnedBindings};
use crate::proto::{Duid, MessageType, MessageView, Xid};
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// The message types a requestor receives on a Bulk Leasequery connection:
/// LEASEQUERY-REPLY, LEASEQUERY-DATA and LEASEQUERY-DONE (RFC 5460 s.4;
/// LEASEQUERY goes the other way).
fn is_bulk_reply(t: MessageType) -> bool {
    matches!(
        t,
        MessageType::LeasequeryReply | MessageType::LeasequeryData | MessageType::LeasequeryDone
    )
}

/// Why a [`ReplyDemux`] wants its connection closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The server closed it.
    PeerClosed,
    /// BULK_LQ_DATA_TIMEOUT passed with nothing received (RFC 5460 s.6.3),
    /// while some query was being answered.
    DataTimeout,
    /// The first-answer timeout passed while no query in flight had
    /// received anything: the server does not answer.
    NoAnswer,
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
    first_answer_timeout: Duration,
    queries: BTreeMap<Xid, QueryAssembler<M>>,
    /// Outstanding queries that have received a message.
    answered: usize,
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
    /// BULK_LQ_DATA_TIMEOUT `data_timeout`, delivering owned [`Binding`](crate::proto::Binding)s.
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
            first_answer_timeout: data_timeout,
            queries: BTreeMap::new(),
            answered: 0,
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

    /// Wait at most `timeout` for the first message while no outstanding
    /// query has received any (the data timeout by default; a longer one
    /// counts as the data timeout): past it, every outstanding query ends
    /// [`Outcome::NoAnswer`] and the connection is to be closed.
    pub fn set_first_answer_timeout(&mut self, timeout: Duration) {
        self.first_answer_timeout = timeout;
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

    /// When [`ReplyDemux::handle_timeout`] must be called, while a query is
    /// outstanding, counted from the last message received or query
    /// started or sent: the first-answer timeout while no outstanding query
    /// has received anything ([`ReplyDemux::is_waiting_first_answer`]),
    /// BULK_LQ_DATA_TIMEOUT once one has (RFC 5460 s.6.3).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed.is_some() || self.queries.is_empty() {
            return None;
        }
        let wait = if self.is_waiting_first_answer() {
            self.first_answer_timeout.min(self.data_timeout)
        } else {
            self.data_timeout
        };
        self.last_activity.map(|t| t + wait)
    }

    /// True while queries are outstanding and none of them has received a
    /// message: the server owes a first answer and is not sending anything
    /// of ours (after a query's DONE, the next one's REPLY is awaited).
    pub fn is_waiting_first_answer(&self) -> bool {
        self.answered == 0 && !self.queries.is_empty()
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
                if q.stats().messages > 0 {
                    self.answered -= 1;
                }
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
                // A message not allowed on the connection is reported for
                // what it is, decoded as far as it goes (RFC 5460 s.4).
                if let Ok(msg) = MessageView::parse(frame) {
                    if !is_bulk_reply(msg.msg_type()) {
                        return self.unexpected(&msg, now);
                    }
                }
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

    /// A message RFC 5460 s.4 does not allow on the connection: the query
    /// its transaction-id names ends with it, its type, status and text
    /// ([`UnexpectedMessage`]), and the connection is to be closed; the
    /// other queries end [`PartialReason::Aborted`].
    fn unexpected(&mut self, msg: &MessageView<'_>, now: Instant) {
        let m = UnexpectedMessage::of(msg);
        let xid = m.xid;
        self.protocol_violation(xid, ProtocolError::UnexpectedMessage(m), now)
    }

    /// Handle one received message, validated ([`MessageView::parse_validated`]).
    pub fn handle_message(&mut self, msg: &MessageView<'_>, now: Instant) {
        if self.closed.is_some() {
            return;
        }
        self.touch(now);
        let msg_type = msg.msg_type();
        if !is_bulk_reply(msg_type) {
            return self.unexpected(msg, now);
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
        let fresh = q.stats().messages == 0;
        let left = self.max_total.saturating_sub(self.delivered);
        q.set_max_bindings(self.max_per_query.min(before.saturating_add(left)));
        q.set_max_relay_depth(self.max_relay_depth);
        let res = q.handle_message(msg, now);
        if fresh && q.stats().messages > 0 {
            self.answered += 1;
        }
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

    /// Check the timeouts at `now`; once the one of
    /// [`ReplyDemux::poll_timeout`] has passed, every outstanding query ends
    /// [`Outcome::NoAnswer`] (nothing came for any of them) or
    /// [`PartialReason::DataTimeout`] (a stream stalled), and the
    /// connection is to be closed.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(deadline) = self.poll_timeout() else {
            return;
        };
        if now < deadline {
            return;
        }
        if self.is_waiting_first_answer() {
            self.close(CloseReason::NoAnswer, Outcome::NoAnswer, now);
        } else {
            self.close(
                CloseReason::DataTimeout,
                Outcome::Partial(PartialReason::DataTimeout),
                now,
            );
        }
    }
}
