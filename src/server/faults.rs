//! Fault injection: make the lab server misbehave on purpose, for one
//! connection, one query or one query type at a time.
//!
//! A [`Fault`] is an action and a [`FaultFilter`]; it applies to every query
//! the filter matches (all filter fields that are set must match). Message
//! counts are per query: the LEASEQUERY-REPLY is message 0, the first
//! LEASEQUERY-DATA message 1, and so on; "after K" means once K messages of
//! the query have been sent.
//!
//! The text form, used by `pdrestore lab-server --fault`, is the action then
//! optional filters, comma-separated:
//! `close-after=5`, `stall-after=3,conn=0`, `done-error=2:1,xid=0x102`,
//! `delay-each=10ms,query-type=3`. Actions:
//!
//! | text | action |
//! |---|---|
//! | `delay-reply=DUR` | wait before the LEASEQUERY-REPLY |
//! | `delay-each=DUR` | wait before every message (each is flushed on its own) |
//! | `stall-after=K` | send nothing more after K messages; the connection stays open |
//! | `close-after=K` | close the connection after K messages |
//! | `done-error=K:STATUS` | after K messages, end the query with that status (REPLY if K = 0, DONE otherwise), and a text naming it |
//! | `plain-reply=STATUS` | instead of the LEASEQUERY-REPLY, a plain REPLY (7) with that status and a text, as a DHCPv6 listener without Bulk Leasequery answers (RFC 5460 s.4 allows no such message on the connection); nothing more for the query |
//! | `terminate-at=K` | same with QueryTerminated (11), RFC 5460 s.5.5 |
//! | `malformed-at=K` | before message K, send a frame that does not decode |
//! | `wrong-xid-done` | the final LEASEQUERY-DONE carries another transaction-id |
//! | `empty-data-at=K` | before message K, send a LEASEQUERY-DATA without OPTION_CLIENT_DATA |
//! | `client-link` | add OPTION_LQ_CLIENT_LINK to the REPLY (forbidden, RFC 5460 s.4) |
//! | `duplicate-bindings` | send every binding twice |
//!
//! Filters: `conn=N` (0-based index of accepted connections), `xid=N`
//! (decimal or 0x-hex), `query-type=N`.

use crate::proto::{QueryType, StatusCode, Xid};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Which queries a fault applies to; `None` fields match anything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultFilter {
    /// 0-based index of the connection among those the server accepted.
    pub connection: Option<u64>,
    /// Transaction-id of the query.
    pub xid: Option<Xid>,
    /// Query type.
    pub query_type: Option<QueryType>,
}

impl FaultFilter {
    /// Whether a query matches.
    pub fn matches(&self, connection: u64, xid: Xid, query_type: QueryType) -> bool {
        self.connection.is_none_or(|c| c == connection)
            && self.xid.is_none_or(|x| x == xid)
            && self.query_type.is_none_or(|q| q == query_type)
    }
}

/// What goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultAction {
    /// Wait before sending the LEASEQUERY-REPLY.
    DelayReply(Duration),
    /// Wait before every message, flushing each one on its own.
    DelayEach(Duration),
    /// Send nothing more after K messages; the connection stays open.
    StallAfter(u64),
    /// Close the connection after K messages.
    CloseAfter(u64),
    /// After K messages end the query with this status: a LEASEQUERY-REPLY if
    /// K is 0, else a LEASEQUERY-DONE (RFC 5460 s.5.2.2, s.7.2).
    DoneErrorAfter(u64, StatusCode),
    /// Before message K, a frame that does not decode.
    MalformedAt(u64),
    /// The final LEASEQUERY-DONE has a wrong transaction-id.
    WrongXidDone,
    /// Before message K, a LEASEQUERY-DATA without OPTION_CLIENT_DATA.
    EmptyDataAt(u64),
    /// OPTION_LQ_CLIENT_LINK in the REPLY (RFC 5460 s.4 forbids it).
    ClientLink,
    /// Every binding is sent twice.
    DuplicateBindings,
    /// Instead of the LEASEQUERY-REPLY, a plain REPLY (7) carrying this
    /// status and a text, as a DHCPv6 listener without Bulk Leasequery
    /// answers (dhcpkit 1.0.7: UseMulticast); RFC 5460 s.4 allows only
    /// LEASEQUERY, -REPLY, -DATA and -DONE on the connection.
    PlainReply(StatusCode),
}

/// A fault and the queries it applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// What goes wrong.
    pub action: FaultAction,
    /// For which queries.
    pub filter: FaultFilter,
}

impl Fault {
    /// A fault for every query.
    pub fn always(action: FaultAction) -> Self {
        Fault {
            action,
            filter: FaultFilter::default(),
        }
    }

    /// The same fault, only on connection `n` (0-based accept order).
    pub fn on_connection(mut self, n: u64) -> Self {
        self.filter.connection = Some(n);
        self
    }

    /// The same fault, only for transaction-id `xid`.
    pub fn on_xid(mut self, xid: Xid) -> Self {
        self.filter.xid = Some(xid);
        self
    }

    /// The same fault, only for one query type.
    pub fn on_query_type(mut self, q: QueryType) -> Self {
        self.filter.query_type = Some(q);
        self
    }
}

/// The faults that apply to one query, merged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct QueryFaults {
    pub delay_reply: Option<Duration>,
    pub delay_each: Option<Duration>,
    pub stall_after: Option<u64>,
    pub close_after: Option<u64>,
    pub done_error_after: Option<(u64, StatusCode)>,
    pub malformed_at: Option<u64>,
    pub wrong_xid_done: bool,
    pub empty_data_at: Option<u64>,
    pub client_link: bool,
    pub duplicate: bool,
    pub plain_reply: Option<StatusCode>,
}

impl QueryFaults {
    /// Merge the faults matching a query.
    pub fn for_query(faults: &[Fault], connection: u64, xid: Xid, q: QueryType) -> Self {
        let mut f = QueryFaults::default();
        for fault in faults
            .iter()
            .filter(|x| x.filter.matches(connection, xid, q))
        {
            match fault.action {
                FaultAction::DelayReply(d) => f.delay_reply = Some(d),
                FaultAction::DelayEach(d) => f.delay_each = Some(d),
                FaultAction::StallAfter(k) => f.stall_after = Some(k),
                FaultAction::CloseAfter(k) => f.close_after = Some(k),
                FaultAction::DoneErrorAfter(k, s) => f.done_error_after = Some((k, s)),
                FaultAction::MalformedAt(k) => f.malformed_at = Some(k),
                FaultAction::WrongXidDone => f.wrong_xid_done = true,
                FaultAction::EmptyDataAt(k) => f.empty_data_at = Some(k),
                FaultAction::ClientLink => f.client_link = true,
                FaultAction::DuplicateBindings => f.duplicate = true,
                FaultAction::PlainReply(s) => f.plain_reply = Some(s),
            }
        }
        f
    }

    /// Whether anything happens at message boundaries (the fast path skips the checks).
    pub fn any_per_message(&self) -> bool {
        self.delay_each.is_some()
            || self.stall_after.is_some()
            || self.close_after.is_some()
            || self.done_error_after.is_some()
            || self.malformed_at.is_some()
            || self.empty_data_at.is_some()
            || self.duplicate
    }
}

/// Why a fault text does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("fault {text:?}: {reason}")]
pub struct FaultParseError {
    text: String,
    reason: String,
}

fn num(s: &str) -> Result<u64, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|_| format!("{s:?} is not a number"))
}

fn status(v: u64) -> Result<StatusCode, String> {
    u16::try_from(v)
        .map(StatusCode::from)
        .map_err(|_| format!("status {v} over 65535"))
}

impl FromStr for Fault {
    type Err = FaultParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| FaultParseError {
            text: text.to_string(),
            reason,
        };
        let mut parts = text.split(',').map(str::trim);
        let head = parts.next().unwrap_or("");
        let (name, value) = match head.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (head, None),
        };
        let need = || value.ok_or_else(|| err(format!("{name} needs a value ({name}=...)")));
        let k = || need().and_then(|v| num(v).map_err(err));
        let dur = || {
            need().and_then(|v| {
                humantime::parse_duration(v).map_err(|e| err(format!("duration {v:?}: {e}")))
            })
        };
        let action = match name {
            "delay-reply" => FaultAction::DelayReply(dur()?),
            "delay-each" => FaultAction::DelayEach(dur()?),
            "stall-after" => FaultAction::StallAfter(k()?),
            "close-after" => FaultAction::CloseAfter(k()?),
            "terminate-at" => FaultAction::DoneErrorAfter(k()?, StatusCode::QueryTerminated),
            "done-error" => {
                let v = need()?;
                let (k, s) = v
                    .split_once(':')
                    .ok_or_else(|| err("done-error=K:STATUS".into()))?;
                let k = num(k).map_err(err)?;
                let s = status(num(s).map_err(err)?).map_err(err)?;
                FaultAction::DoneErrorAfter(k, s)
            }
            "malformed-at" => FaultAction::MalformedAt(k()?),
            "wrong-xid-done" => FaultAction::WrongXidDone,
            "empty-data-at" => FaultAction::EmptyDataAt(k()?),
            "client-link" => FaultAction::ClientLink,
            "duplicate-bindings" => FaultAction::DuplicateBindings,
            "plain-reply" => FaultAction::PlainReply(status(k()?).map_err(err)?),
            other => return Err(err(format!("unknown fault {other:?}"))),
        };
        let mut filter = FaultFilter::default();
        for p in parts {
            let (n, v) = p
                .split_once('=')
                .ok_or_else(|| err(format!("filter {p:?} needs a value")))?;
            let v = num(v).map_err(err)?;
            match n {
                "conn" | "connection" => filter.connection = Some(v),
                "xid" => {
                    filter.xid = Some(
                        u32::try_from(v)
                            .ok()
                            .and_then(Xid::new)
                            .ok_or_else(|| err(format!("xid {v} too large (24 bits)")))?,
                    )
                }
                "query-type" => {
                    filter.query_type = Some(QueryType::from(
                        u8::try_from(v).map_err(|_| err(format!("query-type {v} over 255")))?,
                    ))
                }
                other => return Err(err(format!("unknown filter {other:?}"))),
            }
        }
        Ok(Fault { action, filter })
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.action {
            FaultAction::DelayReply(d) => {
                write!(f, "delay-reply={}", humantime::format_duration(d))
            }
            FaultAction::DelayEach(d) => write!(f, "delay-each={}", humantime::format_duration(d)),
            FaultAction::StallAfter(k) => write!(f, "stall-after={k}"),
            FaultAction::CloseAfter(k) => write!(f, "close-after={k}"),
            FaultAction::DoneErrorAfter(k, s) => write!(f, "done-error={k}:{}", u16::from(s)),
            FaultAction::MalformedAt(k) => write!(f, "malformed-at={k}"),
            FaultAction::WrongXidDone => write!(f, "wrong-xid-done"),
            FaultAction::EmptyDataAt(k) => write!(f, "empty-data-at={k}"),
            FaultAction::ClientLink => write!(f, "client-link"),
            FaultAction::DuplicateBindings => write!(f, "duplicate-bindings"),
            FaultAction::PlainReply(s) => write!(f, "plain-reply={}", u16::from(s)),
        }?;
        if let Some(c) = self.filter.connection {
            write!(f, ",conn={c}")?;
        }
        if let Some(x) = self.filter.xid {
            write!(f, ",xid={:#x}", x.get())?;
        }
        if let Some(q) = self.filter.query_type {
            write!(f, ",query-type={}", u8::from(q))?;
        }
        Ok(())
    }
}

/// Read a fault file: one fault per line (see [`Fault`]'s text form).
pub fn read_file(path: &std::path::Path) -> Result<Vec<Fault>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        out.push(
            t.parse::<Fault>()
                .map_err(|e| format!("{}:{}: {e}", path.display(), n + 1))?,
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display() {
        let f: Fault = "close-after=5,conn=1,xid=0x102,query-type=3"
            .parse()
            .unwrap();
        assert_eq!(f.action, FaultAction::CloseAfter(5));
        assert_eq!(
            f.filter,
            FaultFilter {
                connection: Some(1),
                xid: Xid::new(0x102),
                query_type: Some(QueryType::ByRelayId)
            }
        );
        assert_eq!(f.to_string(), "close-after=5,conn=1,xid=0x102,query-type=3");
        let f: Fault = "done-error=2:1".parse().unwrap();
        assert_eq!(
            f.action,
            FaultAction::DoneErrorAfter(2, StatusCode::UnspecFail)
        );
        let f: Fault = "delay-each=10ms".parse().unwrap();
        assert_eq!(f.action, FaultAction::DelayEach(Duration::from_millis(10)));
        assert!("close-after".parse::<Fault>().is_err());
        assert!("explode=1".parse::<Fault>().is_err());
        assert!("close-after=1,colour=3".parse::<Fault>().is_err());
        assert!(f
            .filter
            .matches(9, Xid::new(9).unwrap(), QueryType::ByAddress));
        let merged = QueryFaults::for_query(
            &[
                "stall-after=3,conn=0".parse().unwrap(),
                "client-link,xid=7".parse().unwrap(),
            ],
            1,
            Xid::new(7).unwrap(),
            QueryType::ByRelayId,
        );
        assert_eq!(merged.stall_after, None);
        assert!(merged.client_link);
        let f: Fault = "plain-reply=5,query-type=3".parse().unwrap();
        assert_eq!(f.action, FaultAction::PlainReply(StatusCode::UseMulticast));
        assert_eq!(f.to_string(), "plain-reply=5,query-type=3");
        assert!("plain-reply".parse::<Fault>().is_err());
        assert!("plain-reply=70000".parse::<Fault>().is_err());
    }
}
