//! What a query and a connection end with: outcomes, protocol and transport
//! errors, and why a message was discarded.

use crate::proto::{
    ClientDataError, DecodeError, Duid, MessageType, MessageView, OptionCode, StatusCode, Xid,
};
use std::fmt;
use std::io;
use std::net::IpAddr;

/// The longest status text kept, in octets. OPTION_STATUS_CODE's text
/// (RFC 8415 s.21.13) has no bound of its own but the option's length: a
/// server could send 65 000 octets of it, which no summary line, log line
/// or JSON field should carry. Past this, the text is cut (at a character
/// boundary) and [`ServerStatus::truncated_from`] says so.
pub const MAX_STATUS_TEXT: usize = 256;

/// A status a server sent in OPTION_STATUS_CODE (RFC 8415 s.21.13; the
/// Leasequery codes of RFC 5007 s.4.1.3 and RFC 5460 s.5.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerStatus {
    /// The status code.
    pub code: StatusCode,
    /// The status message (lossy UTF-8), at most [`MAX_STATUS_TEXT`]
    /// octets of it.
    pub message: String,
    /// The length of the text on the wire, in octets, when it was longer
    /// than [`MAX_STATUS_TEXT`] and cut; `None` when `message` is all of it.
    pub truncated_from: Option<usize>,
}

impl ServerStatus {
    /// A status with its whole text (cut to [`MAX_STATUS_TEXT`] octets,
    /// and marked so, when longer).
    pub fn new(code: StatusCode, text: &str) -> Self {
        Self::from_wire(code, text.as_bytes())
    }

    /// The status of an OPTION_STATUS_CODE body: its code and text, the
    /// text decoded as lossy UTF-8 and cut to [`MAX_STATUS_TEXT`] octets.
    pub fn from_wire(code: StatusCode, text: &[u8]) -> Self {
        if text.len() <= MAX_STATUS_TEXT {
            return ServerStatus {
                code,
                message: String::from_utf8_lossy(text).into_owned(),
                truncated_from: None,
            };
        }
        // Cut at a character boundary: a UTF-8 sequence split by the cut
        // would read as a replacement character the server never sent. A
        // continuation octet (0b10xxxxxx) at the cut belongs to a sequence
        // begun before it, at most 3 octets back.
        let mut end = MAX_STATUS_TEXT;
        while MAX_STATUS_TEXT - end < 3 && text[end] & 0xc0 == 0x80 {
            end -= 1;
        }
        ServerStatus {
            code,
            message: String::from_utf8_lossy(&text[..end]).into_owned(),
            truncated_from: Some(text.len()),
        }
    }

    /// The status's name (`NotAllowed`), or `unknown` for a code no RFC
    /// this implementation knows names: a bounded set, fit for a metric
    /// label.
    pub fn name(&self) -> &'static str {
        self.code.name().unwrap_or("unknown")
    }
}

impl fmt::Display for ServerStatus {
    /// `NotAllowed(10) "text"`: the text quoted with its control
    /// characters escaped, so that a server cannot forge lines of a
    /// summary or a log; a cut text says so.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            write!(f, "{}", self.code)?;
        } else {
            write!(f, "{} {:?}", self.code, self.message)?;
        }
        if let Some(n) = self.truncated_from {
            write!(f, " (text cut to {} of its {n} octets)", self.message.len())?;
        }
        Ok(())
    }
}

/// A message that RFC 5460 s.4 does not allow on a Bulk Leasequery
/// connection (only LEASEQUERY, LEASEQUERY-REPLY, LEASEQUERY-DATA and
/// LEASEQUERY-DONE travel there), decoded as far as it goes: its type, its
/// transaction-id, and the status it carries. A DHCPv6 listener that does
/// not do Bulk Leasequery answers a LEASEQUERY with a plain REPLY (7)
/// saying why, e.g. UseMulticast and a text (dhcpkit 1.0.7 without its
/// leasequery handler): that status and text are what the operator needs
/// to read. The connection is closed (RFC 5460 s.6.3: the stream can no
/// longer be trusted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnexpectedMessage {
    /// Its message type.
    pub msg_type: MessageType,
    /// Its transaction-id (a relay message has none).
    pub xid: Option<Xid>,
    /// The first OPTION_STATUS_CODE among its options, read up to the
    /// first option that does not decode.
    pub status: Option<ServerStatus>,
}

impl UnexpectedMessage {
    /// What `msg` (whose fixed header was checked, its options perhaps
    /// not) says: its type, transaction-id and first status, the options
    /// walked until one does not decode.
    pub fn of(msg: &MessageView<'_>) -> Self {
        let mut status = None;
        for raw in msg.options().iter() {
            let Ok(raw) = raw else { break };
            if raw.code == u16::from(OptionCode::StatusCode) && raw.data.len() >= 2 {
                let code = StatusCode::from(u16::from_be_bytes([raw.data[0], raw.data[1]]));
                status = Some(ServerStatus::from_wire(code, &raw.data[2..]));
                break;
            }
        }
        UnexpectedMessage {
            msg_type: msg.msg_type(),
            xid: (!msg.is_relay()).then(|| msg.xid()),
            status,
        }
    }
}

impl fmt::Display for UnexpectedMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unexpected message {}", self.msg_type)?;
        match &self.status {
            Some(s) => write!(f, " with status {s}")?,
            None => write!(f, " without a status")?,
        }
        write!(
            f,
            " (RFC 5460 4: only LEASEQUERY-REPLY, -DATA and -DONE come on a Bulk Leasequery connection)"
        )
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
    /// A message of a type RFC 5460 s.4 does not allow on the connection
    /// (a plain REPLY, a relay message, a LEASEQUERY, ...), with the status
    /// and text it carries.
    #[error("{0}")]
    UnexpectedMessage(UnexpectedMessage),
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
    /// No message at all came for the query within the first-answer
    /// timeout after it was sent (nor for any other query on the
    /// connection): the server accepted the connection and does not
    /// answer (a query type it ignores, a hung worker). Told apart from a
    /// stream that stalls after data, which is [`PartialReason::DataTimeout`].
    NoAnswer,
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
    /// `no-bindings`, `status-<name>` (`status-not-allowed`), `no-answer`,
    /// `closed`, `data-timeout`, `deadline`, `done-status-<name>`, `protocol-error`,
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
            Outcome::NoAnswer => "no-answer".into(),
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

/// A status a server sent, and the message that carried it: what
/// [`Outcome::server_status`] finds in an outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusFrom<'a> {
    /// The message that carried it: LEASEQUERY-REPLY (RFC 5007 s.4.3.3),
    /// LEASEQUERY-DONE (RFC 5460 s.5.2.2), or a message RFC 5460 s.4 does
    /// not allow on the connection (a plain REPLY).
    pub message: MessageType,
    /// The status, with its text.
    pub status: &'a ServerStatus,
}

impl Outcome {
    /// The error status the server sent that ended the query, with the
    /// message that carried it: an error status in the LEASEQUERY-REPLY
    /// ([`Outcome::ServerStatus`]: UnknownQueryType, MalformedQuery,
    /// NotConfigured, NotAllowed of RFC 5007 s.4.1.3, or any other), in
    /// the LEASEQUERY-DONE after data ([`PartialReason::DoneStatus`]:
    /// QueryTerminated, RFC 5460 s.5.5, or any other), or in a message not
    /// allowed on the connection ([`ProtocolError::UnexpectedMessage`]; for
    /// [`PartialReason::Aborted`], the message that closed the connection
    /// under this query). `None` for every other outcome.
    pub fn server_status(&self) -> Option<StatusFrom<'_>> {
        match self {
            Outcome::ServerStatus(status) => Some(StatusFrom {
                message: MessageType::LeasequeryReply,
                status,
            }),
            Outcome::Partial(PartialReason::DoneStatus(status)) => Some(StatusFrom {
                message: MessageType::LeasequeryDone,
                status,
            }),
            Outcome::Partial(
                PartialReason::Protocol(ProtocolError::UnexpectedMessage(m))
                | PartialReason::Aborted(ProtocolError::UnexpectedMessage(m)),
            ) => m.status.as_ref().map(|status| StatusFrom {
                message: m.msg_type,
                status,
            }),
            _ => None,
        }
    }

    /// What the outcome says of the server's support for the query, in
    /// words for the operator, when it says something: a server that
    /// never answers a query type (dhcpkit 1.0.7 and QUERY_BY_RELAY_ID),
    /// refuses it with a status (UnknownQueryType, NotAllowed,
    /// MalformedQuery, NotConfigured: RFC 5007 s.4.1.3), ends it early
    /// (QueryTerminated, RFC 5460 s.5.5), or answers with a message RFC
    /// 5460 s.4 does not allow (a listener without Bulk Leasequery).
    pub fn hint(&self) -> Option<&'static str> {
        if let Outcome::Partial(PartialReason::Protocol(ProtocolError::UnexpectedMessage(_))) = self
        {
            return Some(
                "the server answered with a message that is not Bulk Leasequery: Bulk Leasequery may not be enabled on this listener",
            );
        }
        if *self == Outcome::NoAnswer {
            return Some("the server may not support this query type");
        }
        let s = self.server_status()?;
        Some(match s.status.code {
            StatusCode::UnknownQueryType => "the server does not support this query type",
            StatusCode::NotAllowed => {
                "the server does not allow this query (from this requestor, or of this type)"
            }
            StatusCode::MalformedQuery => {
                "the server calls the query malformed: it may not support this query type as sent"
            }
            StatusCode::NotConfigured => {
                "the server has no configuration for the query's link or relay"
            }
            StatusCode::QueryTerminated => "the server ended the query early",
            _ => return None,
        })
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Complete => write!(f, "complete"),
            Outcome::NoBindings => write!(f, "no bindings"),
            Outcome::ServerStatus(s) => write!(f, "status {s}"),
            Outcome::NoAnswer => write!(f, "no answer to the query"),
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
