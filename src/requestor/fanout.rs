//! Every configured server at once (RFC 5460 s.6.4): one tokio task per
//! server, each with its own connection, timeouts and retries, all feeding
//! one channel of [`Update`]s.
//!
//! Bindings arrive in [`Update::Bindings`] batches as soon as they are decoded, tagged
//! with the server, the query, the try and the receive time, so later stages
//! can start before the slowest server finishes. Each server ends with one
//! [`Update::ServerDone`] carrying its [`ServerReport`]; the channel closes
//! after the last one. A failing or hostile server only costs its own task
//! its own timeouts: nothing it does reaches another server's connection.
//!
//! Retries (see [`super::retry`]) run a query again from scratch on a new
//! connection with a new transaction-id; bindings of an earlier, partial try
//! have already been delivered, so a consumer takes the union of what it
//! received and trusts a query's result only from its final outcome.
//!
//! ```no_run
//! # async fn f() {
//! use pdrestore::requestor::fanout::{Fanout, FanoutConfig, QuerySpec, ServerConfig, Update};
//! use pdrestore::proto::{OwnedBindings, Query};
//! let requestor = "000100012a2b2c2d020000009901".parse().unwrap();
//! let relay = "000200000009010203040506".parse().unwrap();
//! let mut cfg = FanoutConfig::new(requestor, vec![QuerySpec::new(Query::ByRelayId(relay))]);
//! cfg.servers.push(ServerConfig::new("[2001:db8::547]:547".parse().unwrap()));
//! let mut fanout = Fanout::start(cfg, OwnedBindings);
//! while let Some(update) = fanout.recv().await {
//!     match update {
//!         Update::Bindings(v) => for d in v { println!("{} from {}", d.binding.lease, d.server) },
//!         Update::ServerDone(r) => println!("{}: complete={}", r.server, r.is_complete()),
//!     }
//! }
//! # }
//! ```

use super::connection;
use super::core::{ConnectionConfig, Delivery};
pub use super::report::{QueryReport, ServerReport};
use super::retry::RetryPolicy;
use super::tries::{Tries, Unreachable};
use crate::proto::BindingMapper;
use crate::proto::{Duid, LeasequeryBuilder, Query, ServerIndex, Xid};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// One query to run on every server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuerySpec {
    /// What to ask.
    pub query: Query,
    /// The query's link-address: the link of QUERY_BY_LINK_ADDRESS, a link
    /// filter for QUERY_BY_RELAY_ID / QUERY_BY_REMOTE_ID (:: for none).
    pub link_address: Ipv6Addr,
    /// Ask for OPTION_LQ_RELAY_DATA with an ORO (RFC 5007 s.4.1.2.4).
    pub request_relay_data: bool,
}

impl QuerySpec {
    /// A query with link-address :: that asks for relay data.
    pub fn new(query: Query) -> Self {
        QuerySpec {
            query,
            link_address: Ipv6Addr::UNSPECIFIED,
            request_relay_data: true,
        }
    }

    /// The same query with this link-address.
    pub fn link(mut self, link: Ipv6Addr) -> Self {
        self.link_address = link;
        self
    }

    /// The LEASEQUERY for transaction-id `xid`.
    pub fn encode(&self, xid: Xid, requestor: &Duid) -> Vec<u8> {
        LeasequeryBuilder::new(xid, requestor.clone(), self.query.clone())
            .link_address(self.link_address)
            .request_relay_data(self.request_relay_data)
            .to_bytes()
    }
}

/// A server to query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Address and port.
    pub addr: SocketAddr,
    /// Local address to connect from.
    pub source: Option<IpAddr>,
}

impl ServerConfig {
    /// A server at `addr`, any source address.
    pub fn new(addr: SocketAddr) -> Self {
        ServerConfig { addr, source: None }
    }
}

/// `ADDR`, `ADDR:PORT` for IPv4, `[ADDR]:PORT` for IPv6; port 547 when none
/// is given (RFC 5460 s.5.6).
pub fn parse_server_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(sa) = SocketAddr::from_str(s) {
        return Ok(sa);
    }
    let bare = s.trim_start_matches('[').trim_end_matches(']');
    IpAddr::from_str(bare)
        .map(|ip| SocketAddr::new(ip, crate::proto::SERVER_PORT))
        .map_err(|_| format!("{s:?} is not ADDR, ADDR:PORT or [ADDR]:PORT"))
}

/// What to run, where, and how patiently.
#[derive(Debug, Clone)]
pub struct FanoutConfig {
    /// The servers, all queried at once.
    pub servers: Vec<ServerConfig>,
    /// The queries, each run on every server.
    pub queries: Vec<QuerySpec>,
    /// Connection settings (requestor DUID, data timeout, queries in flight).
    /// Its `source` is overridden by a server's own.
    pub connection: ConnectionConfig,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// Capacity of the update channel (backpressure on fast servers).
    pub channel_capacity: usize,
    /// Connections to one server at once: its queries are spread over
    /// them (see [`query_one_server`]).
    pub max_connections: usize,
}

impl FanoutConfig {
    /// The longest one server's tries can wait with these settings (the
    /// servers, and a server's connections, run side by side): see
    /// [`super::worst`].
    pub fn worst_case(&self) -> super::worst::ServerWorstCase {
        super::worst::ServerWorstCase::of(&self.connection, &self.retry)
    }

    /// No servers yet; default connection settings and retry policy; one
    /// connection per server.
    pub fn new(requestor: Duid, queries: Vec<QuerySpec>) -> Self {
        FanoutConfig {
            servers: Vec::new(),
            queries,
            connection: ConnectionConfig::new(requestor),
            retry: RetryPolicy::default(),
            channel_capacity: 1024,
            max_connections: 1,
        }
    }
}

/// What the fan-out delivers. `T` is what bindings are made into (see
/// [`BindingMapper`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update<T = crate::proto::Binding> {
    /// Bindings, as soon as they were decoded: every binding of the
    /// messages that one read from the connection brought (one channel
    /// message per burst, not per binding).
    Bindings(Vec<Delivery<T>>),
    /// A server is finished; no binding from it follows.
    ServerDone(ServerReport),
}

impl<T> From<Vec<Delivery<T>>> for Update<T> {
    fn from(d: Vec<Delivery<T>>) -> Self {
        Update::Bindings(d)
    }
}

/// A running fan-out: receive its [`Update`]s.
#[derive(Debug)]
pub struct Fanout<T = crate::proto::Binding> {
    rx: mpsc::Receiver<Update<T>>,
    tasks: Vec<JoinHandle<()>>,
}

impl<T: Send + 'static> Fanout<T> {
    /// Start one task per server on the current tokio runtime, each
    /// connection making bindings with a clone of `mapper` (pass
    /// [`crate::proto::OwnedBindings`] for owned [`crate::proto::Binding`]s).
    ///
    /// # Panics
    /// If `cfg.servers` holds more than [`ServerIndex::LIMIT`] servers (the
    /// configuration file and `pdrestore query` refuse more).
    pub fn start<M: BindingMapper<Item = T>>(cfg: FanoutConfig, mapper: M) -> Fanout<T> {
        assert!(
            cfg.servers.len() <= ServerIndex::LIMIT,
            "at most {} servers",
            ServerIndex::LIMIT
        );
        let (tx, rx) = mpsc::channel(cfg.channel_capacity.max(1));
        let tasks = cfg
            .servers
            .iter()
            .zip((0..ServerIndex::LIMIT).filter_map(ServerIndex::new))
            .map(|(server, index)| {
                let tx = tx.clone();
                let server = server.clone();
                let mut conn = cfg.connection.clone();
                if server.source.is_some() {
                    conn.source = server.source;
                }
                let queries = cfg.queries.clone();
                let retry = cfg.retry.clone();
                let mapper = mapper.clone();
                let connections = cfg.max_connections;
                tokio::spawn(async move {
                    let report = query_one_server(
                        server.addr,
                        index,
                        &conn,
                        &queries,
                        connections,
                        &retry,
                        &tx,
                        mapper,
                    )
                    .await;
                    let _ = tx.send(Update::ServerDone(report)).await;
                })
            })
            .collect();
        Fanout { rx, tasks }
    }

    /// Stop server `index` (its position in the configuration) now: its
    /// connection is dropped, it sends nothing more, and no
    /// [`Update::ServerDone`] comes for it (what it delivered stays
    /// delivered). For a replica whose group already answered.
    pub fn abort_server(&self, index: usize) {
        if let Some(t) = self.tasks.get(index) {
            t.abort();
        }
    }

    /// The next update; `None` once every server is finished.
    pub async fn recv(&mut self) -> Option<Update<T>> {
        self.rx.recv().await
    }

    /// Wait for everything: every binding delivered, and every server's
    /// report, both in order of arrival.
    pub async fn collect(mut self) -> (Vec<Delivery<T>>, Vec<ServerReport>) {
        let mut bindings = Vec::new();
        let mut reports = Vec::new();
        while let Some(u) = self.recv().await {
            match u {
                Update::Bindings(v) => bindings.extend(v),
                Update::ServerDone(r) => reports.push(r),
            }
        }
        (bindings, reports)
    }
}

impl<T> Drop for Fanout<T> {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Run `queries` on one server (at `server_index` in the configuration)
/// with retries; bindings, made by `mapper`, go to `tx` as they arrive.
/// This is the body of each fan-out task.
///
/// The queries are spread over up to `connections` connections at once
/// (one per query at most), each running its share pipelined up to
/// `max_in_flight` (RFC 5460 s.6.5): a multi-threaded server answers the
/// link queries of one recovery in parallel, each walking only its subnet.
/// Each share has its own tries, and an even share of the server's binding
/// budget.
#[allow(clippy::too_many_arguments)]
pub async fn query_one_server<M: BindingMapper, T: From<Vec<Delivery<M::Item>>>>(
    server: SocketAddr,
    server_index: ServerIndex,
    conn: &ConnectionConfig,
    queries: &[QuerySpec],
    connections: usize,
    retry: &RetryPolicy,
    tx: &mpsc::Sender<T>,
    mapper: M,
) -> ServerReport {
    let k = connections.clamp(1, queries.len().max(1));
    if k == 1 {
        let all: Vec<usize> = (0..queries.len()).collect();
        return query_share(server, server_index, conn, queries, all, retry, tx, mapper).await;
    }
    let mut share_conn = conn.clone();
    share_conn.limits.max_bindings_per_server = conn.limits.max_bindings_per_server / k as u64;
    let shares = (0..k).map(|g| {
        let mine: Vec<usize> = (g..queries.len()).step_by(k).collect();
        let (share_conn, mapper) = (&share_conn, mapper.clone());
        query_share(
            server,
            server_index,
            share_conn,
            queries,
            mine,
            retry,
            tx,
            mapper,
        )
    });
    let reports = futures::future::join_all(shares).await;
    merge_reports(server, server_index, reports)
}

/// One server's report out of the reports of its shares.
fn merge_reports(
    server: SocketAddr,
    server_index: ServerIndex,
    reports: Vec<ServerReport>,
) -> ServerReport {
    let mut queries: Vec<QueryReport> = reports.iter().flat_map(|r| r.queries.clone()).collect();
    queries.sort_by_key(|q| q.index);
    ServerReport {
        server,
        server_index,
        server_id: reports.iter().find_map(|r| r.server_id.clone()),
        queries,
        connections: reports.iter().map(|r| r.connections).sum(),
        duration: reports.iter().map(|r| r.duration).max().unwrap_or_default(),
    }
}

/// Run the queries `mine` (indexes into `queries`) on one server, each try
/// on a new connection with new transaction-ids.
#[allow(clippy::too_many_arguments)]
async fn query_share<M: BindingMapper, T: From<Vec<Delivery<M::Item>>>>(
    server: SocketAddr,
    server_index: ServerIndex,
    conn: &ConnectionConfig,
    queries: &[QuerySpec],
    mine: Vec<usize>,
    retry: &RetryPolicy,
    tx: &mpsc::Sender<T>,
    mapper: M,
) -> ServerReport {
    let mut tries = Tries::new(mine, Instant::now(), fastrand::Rng::new());
    let deadline = conn.server_deadline.map(|d| tries.started() + d);
    while tries.pending() {
        if let Some(backoff) = tries.backoff(retry) {
            if deadline.is_some_and(|d| Instant::now() + backoff >= d) {
                tracing::debug!(%server, "no time left for another try");
                break; // No time for another try: the last outcomes stand.
            }
            tracing::debug!(%server, backoff = ?backoff, "waiting before the next try");
            tokio::time::sleep(backoff).await;
        }
        let attempt = tries.next_attempt(server_index, conn, deadline);
        let planned = tries.plan(|i, xid| queries[i].encode(xid, &conn.requestor));
        let report =
            connection::connect_and_query(server, conn, planned, attempt, tx, mapper.clone()).await;
        let now = Instant::now();
        tries.record(report, retry, now);
        if let Some(u) = tries.poll_unreachable(retry, now) {
            warn_unreachable(server, &u);
        }
        for (index, outcome) in tries.retrying() {
            tracing::debug!(%server, query = index + 1, %outcome, "trying the query again");
        }
    }
    tries.into_report(server, server_index, Instant::now())
}

/// The warning for a server that could not be reached, and what happens next.
fn warn_unreachable(server: SocketAddr, u: &Unreachable) {
    let secs = |d: Duration| humantime::format_duration(Duration::from_secs(d.as_secs()));
    let tries = u.tries;
    let waited = secs(u.waited);
    if u.patience_left.is_zero() {
        tracing::warn!(%server, tries, %waited, "server unreachable ({}); trying again", u.error);
    } else {
        let left = secs(u.patience_left);
        tracing::warn!(
            %server,
            tries,
            %waited,
            "server unreachable ({}); still trying for up to {left} (startup_deadline) without using up retries",
            u.error
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_addresses() {
        let p = |s| parse_server_addr(s).unwrap();
        assert_eq!(p("127.0.0.1"), "127.0.0.1:547".parse().unwrap());
        assert_eq!(p("127.0.0.1:5547"), "127.0.0.1:5547".parse().unwrap());
        assert_eq!(p("::1"), "[::1]:547".parse().unwrap());
        assert_eq!(p("[::1]"), "[::1]:547".parse().unwrap());
        assert_eq!(
            p("[2001:db8::1]:5547"),
            "[2001:db8::1]:5547".parse().unwrap()
        );
        assert!(parse_server_addr("server.example").is_err());
        assert!(parse_server_addr("127.0.0.1:99999").is_err());
    }
}
