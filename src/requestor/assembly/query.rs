//! [`QueryAssembler`]: the reply assembly of one query.

use super::error::{
    DropReason, Outcome, PartialReason, ProtocolError, ServerStatus, UnexpectedMessage,
};
use super::{Event, QueryStats};
use crate::proto::binding::{BindingMapper, ClientData, OwnedBindings};
use crate::proto::{Duid, MessageType, MessageView, OptionView, StatusCode, Xid};
use std::collections::VecDeque;
use std::time::Instant;

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
/// never read: the data timeout is run by the caller (see [`ReplyDemux`](super::ReplyDemux)).
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
    /// OPTION_CLIENTID `requestor`, delivering owned [`Binding`](crate::proto::Binding)s.
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
                ProtocolError::UnexpectedMessage(UnexpectedMessage::of(msg))
            } else {
                ProtocolError::UnknownXid {
                    msg_type,
                    xid: msg.xid(),
                }
            };
            return self.violate(e, now);
        }
        if self.is_finished() {
            return Err(self.after_the_end(msg));
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
            _ => self.violate(
                ProtocolError::UnexpectedMessage(UnexpectedMessage::of(msg)),
                now,
            ),
        }
    }

    /// What `msg`, for this query, is once it has ended: a second REPLY, a
    /// DATA or DONE for no outstanding query (RFC 5460 s.6.3), or a message
    /// not allowed on the connection (RFC 5460 s.4).
    fn after_the_end(&self, msg: &MessageView<'_>) -> ProtocolError {
        let msg_type = msg.msg_type();
        match msg_type {
            MessageType::LeasequeryReply => ProtocolError::DuplicateReply,
            MessageType::LeasequeryData | MessageType::LeasequeryDone => {
                ProtocolError::UnknownXid {
                    msg_type,
                    xid: self.xid,
                }
            }
            _ => ProtocolError::UnexpectedMessage(UnexpectedMessage::of(msg)),
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
