//! The servers in the summary: each one's part, each query's fate, and the
//! status a server ended a query with, in its own words.

use super::report::ServerPart;
use crate::config::QueryMode;
use serde::Serialize;
use std::net::Ipv6Addr;
use std::time::Duration;

/// Milliseconds, saturating.
pub(crate) fn ms(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}

/// A status a server sent that ended a query (RFC 5007 s.4.1.3, RFC 5460
/// s.5.5), with its text, and the message that carried it.
#[derive(Debug, Clone, Serialize)]
pub struct StatusSummary {
    /// The message: `LEASEQUERY-REPLY`, `LEASEQUERY-DONE`, or one RFC 5460
    /// s.4 does not allow on the connection (`REPLY`, ...).
    pub message: String,
    /// The status code's number.
    pub code: u16,
    /// Its name (`NotAllowed`, `UseMulticast`, ...; `unknown` for one
    /// without a name).
    pub name: String,
    /// The server's text, as sent (cut at 256 octets, and marked so).
    pub text: String,
}

/// One query's fate on one server.
#[derive(Debug, Clone, Serialize)]
pub struct QuerySummary {
    /// The query type: `relay-id` (QUERY_BY_RELAY_ID) or `link-address`
    /// (QUERY_BY_LINK_ADDRESS).
    pub query_type: &'static str,
    /// The query's link-address (:: for all links).
    pub link: String,
    /// How it ended.
    pub outcome: String,
    /// How it ended, as a stable code (`complete`, `connection-refused`, ...).
    pub outcome_code: String,
    /// Whether the answer is whole.
    pub complete: bool,
    /// Tries made.
    pub attempts: u32,
    /// Bindings delivered.
    pub bindings: u64,
    /// The status the server ended the query with, and its text, when it
    /// sent one that is not Success.
    pub server_status: Option<StatusSummary>,
    /// What the outcome says of the server's support for the query (an
    /// unsupported query type, a listener without Bulk Leasequery, ...).
    pub hint: Option<&'static str>,
}

/// One server's part.
#[derive(Debug, Clone, Serialize)]
pub struct ServerSummary {
    /// Address and port.
    pub server: String,
    /// Its server group.
    pub group: String,
    /// Its DUID (OPTION_SERVERID), when it answered.
    pub server_id: Option<String>,
    /// Every query answered whole.
    pub complete: bool,
    /// Bindings received.
    pub bindings: u64,
    /// Short status: `complete`, or the first query's problem.
    pub status: String,
    /// The status as a stable code (see [`QuerySummary::outcome_code`]).
    pub status_code: String,
    /// Milliseconds from start to its last answer.
    pub duration_ms: u64,
    /// Connections made.
    pub connections: u32,
    /// Per query.
    pub queries: Vec<QuerySummary>,
}

/// One server's line: its report, or, when the run was stopped before it
/// finished, what it delivered until then.
pub(super) fn server_summary(
    p: &ServerPart,
    query: QueryMode,
    links: &[Ipv6Addr],
    run: Duration,
) -> ServerSummary {
    let Some(r) = &p.report else {
        let (status, code) = if p.stopped {
            ("stopped: its group had answered (group_grace)", "stopped")
        } else {
            ("interrupted", "interrupted")
        };
        return ServerSummary {
            server: p.addr.to_string(),
            group: p.group.clone(),
            server_id: None,
            complete: false,
            bindings: p.delivered,
            status: status.into(),
            status_code: code.into(),
            duration_ms: ms(run),
            connections: 0,
            queries: Vec::new(),
        };
    };
    let queries: Vec<QuerySummary> = r
        .queries
        .iter()
        .map(|q| QuerySummary {
            query_type: query.as_str(),
            link: links
                .get(q.index)
                .map(|l| l.to_string())
                .unwrap_or_default(),
            outcome: q.outcome.to_string(),
            outcome_code: q.outcome.code(),
            complete: q.outcome.is_complete(),
            attempts: q.attempts,
            bindings: q.bindings,
            server_status: q.outcome.server_status().map(|s| StatusSummary {
                message: s.message.name().map_or_else(
                    || format!("message type {}", u8::from(s.message)),
                    str::to_string,
                ),
                code: u16::from(s.status.code),
                name: s.status.code.name().unwrap_or("unknown").to_string(),
                text: s.status.message.clone(),
            }),
            hint: q.outcome.hint(),
        })
        .collect();
    let (status, status_code) = queries
        .iter()
        .find(|q| !q.complete)
        .map(|q| (q.outcome.clone(), q.outcome_code.clone()))
        .unwrap_or_else(|| ("complete".into(), "complete".into()));
    ServerSummary {
        server: r.server.to_string(),
        group: p.group.clone(),
        server_id: r.server_id.as_ref().map(|d| d.to_hex()),
        complete: r.is_complete(),
        bindings: r.bindings(),
        status,
        status_code,
        duration_ms: ms(r.duration),
        connections: r.connections,
        queries,
    }
}
