//! The reference Bulk Leasequery server (`pdrestore lab-server`): serves a
//! [`BindingStore`] over TCP as RFC 5460 s.7 and RFC 5007 describe, fast, and
//! able to misbehave on purpose ([`faults`]).
//!
//! # Use in tests
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use pdrestore::server::{self, BindingStore, ServerConfig};
//! use std::sync::Arc;
//! let store = Arc::new(BindingStore::empty());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let server = server::spawn(listener, store, ServerConfig::default())?;
//! let addr = server.local_addr(); // connect here
//! // ... run the requestor against `addr` ...
//! server.shutdown().await?; // queries in flight end with QueryTerminated
//! # Ok(()) }
//! ```
//! [`serve`] is the same without the handle: it takes the listener and a
//! shutdown future (mini-redis style) and returns when every connection is closed.
//!
//! # Behaviour
//! - Replies (RFC 5460 s.5.2, s.7.2): one LEASEQUERY-REPLY (CLIENTID echoed,
//!   SERVERID, first OPTION_CLIENT_DATA), one LEASEQUERY-DATA per further
//!   client data, then LEASEQUERY-DONE. A REPLY without CLIENT_DATA and without
//!   DONE when nothing matches; a REPLY with the error status when the query
//!   fails (UnknownQueryType, MalformedQuery, NotConfigured, NotAllowed).
//!   OPTION_LQ_CLIENT_LINK is never sent (s.4) except by fault injection.
//! - By default a REPLY carries no STATUS_CODE on success, as s.7.2 says;
//!   [`ServerConfig::status_on_success`] adds STATUS_CODE Success as Kea does.
//! - CLT_TIME and lifetimes are computed when the message is encoded; a
//!   binding whose valid lifetime has run out is not sent (RFC 5007 s.4.1.2.2).
//! - Connections: at most [`ServerConfig::max_conns`] (BULK_LQ_MAX_CONNS, s.5.6),
//!   others are closed at once; sources outside [`ServerConfig::allow`] are
//!   closed at once (s.7.1); idle connections and writes blocked for
//!   [`ServerConfig::data_timeout`] (BULK_LQ_DATA_TIMEOUT) are closed (s.7.1, s.7.2).
//! - Queries on one connection run in parallel, at most
//!   [`ServerConfig::max_parallel_queries`]; no more queries are read while
//!   that many run (s.7.3). Their messages interleave (whole messages, in
//!   batches of [`ServerConfig::write_batch`] octets). A query reusing the
//!   transaction-id of one in flight is dropped and logged.
//! - A frame that is not a LEASEQUERY (another message type, a zero-length or
//!   undecodable frame) closes the connection (s.4). A LEASEQUERY whose
//!   options do not decode, or that lacks CLIENTID or LQ_QUERY, gets MalformedQuery.
//! - On shutdown every query in flight ends with QueryTerminated (status 11),
//!   in a DONE, or in the REPLY if nothing was sent yet, then the connection
//!   closes (s.5.5, s.7.4).
//! - Writes: each query encodes its messages straight from the store into a
//!   buffer and writes it when it holds `write_batch` octets (64 KiB by
//!   default), waiting for the socket: memory per query is bounded by the batch.

mod conn;
mod encode;
pub mod faults;
pub mod load;
mod query;
pub mod store;
pub mod synth;

pub use faults::{Fault, FaultAction, FaultFilter};
pub use store::{BindingStore, LeaseRecord, StoreBuilder, StoreError};

use crate::proto::{Duid, QueryType};
use ipnet::IpNet;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use crate::proto::{BULK_LQ_DATA_TIMEOUT, BULK_LQ_MAX_CONNS};

/// When OPTION_LQ_RELAY_DATA goes into OPTION_CLIENT_DATA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum RelayData {
    /// Whenever relay data is stored (what Kea does).
    #[default]
    Always,
    /// Only when the query's ORO asks for option 47 (RFC 5007 s.4.1.2.4).
    WhenRequested,
}

/// How the server behaves. `Default` gives the RFC 5460 defaults.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The server's DUID (OPTION_SERVERID).
    pub server_duid: Duid,
    /// Most connections open at once (BULK_LQ_MAX_CONNS, RFC 5460 s.7.1).
    pub max_conns: usize,
    /// Source prefixes allowed to connect; empty allows everyone (RFC 5460 s.7.1).
    pub allow: Vec<IpNet>,
    /// Requestor DUIDs (CLIENTID) allowed to query; empty allows all. Others
    /// get NotAllowed (RFC 5460 s.7.1, RFC 5007 s.4.3.2).
    pub allowed_requestors: Vec<Duid>,
    /// Query types allowed; empty allows all five. Others get NotAllowed.
    pub allowed_query_types: Vec<QueryType>,
    /// BULK_LQ_DATA_TIMEOUT: idle connections and writes blocked this long are closed.
    pub data_timeout: Duration,
    /// Queries processed at once per connection (RFC 5460 s.7.3).
    pub max_parallel_queries: usize,
    /// One binding per OPTION_CLIENT_DATA (Kea's shape, default); `false`
    /// groups a client's bindings in one OPTION_CLIENT_DATA.
    pub one_binding_per_client_data: bool,
    /// Add STATUS_CODE Success to a successful REPLY (Kea does; RFC 5460 s.7.2
    /// says a REPLY without bindings has no STATUS_CODE). Default off.
    pub status_on_success: bool,
    /// When to send OPTION_LQ_RELAY_DATA.
    pub relay_data: RelayData,
    /// Serve bindings marked reclaimed to QUERY_BY_RELAY_ID and
    /// QUERY_BY_REMOTE_ID, as Kea 3.3 does (see [`store`]). Default off.
    pub serve_reclaimed: bool,
    /// Octets buffered per query before a write (64 KiB by default).
    pub write_batch: usize,
    /// Faults to inject.
    pub faults: Vec<Fault>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            server_duid: default_server_duid(),
            max_conns: BULK_LQ_MAX_CONNS,
            allow: Vec::new(),
            allowed_requestors: Vec::new(),
            allowed_query_types: Vec::new(),
            data_timeout: BULK_LQ_DATA_TIMEOUT,
            max_parallel_queries: 4,
            one_binding_per_client_data: true,
            status_on_success: false,
            relay_data: RelayData::Always,
            serve_reclaimed: false,
            write_batch: 64 * 1024,
            faults: Vec::new(),
        }
    }
}

impl ServerConfig {
    /// Kea 3.3's shapes: STATUS_CODE Success in every REPLY and reclaimed
    /// bindings served to relay-id and remote-id queries.
    pub fn kea_mode(mut self) -> Self {
        self.status_on_success = true;
        self.serve_reclaimed = true;
        self
    }
}

/// The default server DUID: DUID-EN, enterprise 32473 (documentation, RFC
/// 5612), identifier "pdrestore-lab".
pub fn default_server_duid() -> Duid {
    Duid::new_en(32473, b"pdrestore-lab")
}

fn allowed(allow: &[IpNet], ip: IpAddr) -> bool {
    if allow.is_empty() {
        return true;
    }
    let ip = match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    allow.iter().any(|n| n.contains(&ip))
}

/// Serve on one listener until `shutdown` completes, then end every query in
/// flight with QueryTerminated and return once every connection is closed.
pub async fn serve(
    listener: TcpListener,
    store: Arc<BindingStore>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    serve_many(vec![listener], store, config, shutdown).await
}

/// [`serve`] on several listeners; the connection limit is shared.
pub async fn serve_many(
    listeners: Vec<TcpListener>,
    store: Arc<BindingStore>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let config = Arc::new(config);
    let stop = CancellationToken::new();
    let slots = Arc::new(Semaphore::new(config.max_conns));
    let mut conns = JoinSet::new();
    let mut accepts = JoinSet::new();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(tokio::net::TcpStream, SocketAddr)>(16);
    for l in listeners {
        let tx = tx.clone();
        let stop = stop.clone();
        accepts.spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return Ok(()),
                    r = l.accept() => match r {
                        Ok(c) => if tx.send(c).await.is_err() { return Ok(()) },
                        Err(e) if is_transient(&e) => {
                            tracing::warn!("accept: {e}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        });
    }
    drop(tx);
    tokio::pin!(shutdown);
    let mut index = 0u64;
    let result: io::Result<()> = loop {
        tokio::select! {
            _ = &mut shutdown => break Ok(()),
            Some(r) = accepts.join_next() => {
                if let Ok(Err(e)) = r {
                    break Err(e);
                }
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            c = rx.recv() => {
                let Some((stream, peer)) = c else { break Ok(()) };
                let n = index;
                index += 1;
                if !allowed(&config.allow, peer.ip()) {
                    tracing::warn!(peer = %peer, conn = n, "connection refused: source not allowed");
                    drop(stream);
                    continue;
                }
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    tracing::warn!(peer = %peer, conn = n, max = config.max_conns, "connection refused: BULK_LQ_MAX_CONNS reached");
                    drop(stream);
                    continue;
                };
                tracing::debug!(peer = %peer, conn = n, "connection accepted");
                let (store, config, stop) = (store.clone(), config.clone(), stop.clone());
                conns.spawn(async move {
                    conn::run(stream, peer, n, store, config, stop).await;
                    drop(permit);
                });
            }
        }
    };
    stop.cancel();
    accepts.abort_all();
    while conns.join_next().await.is_some() {}
    result
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    ) || e.raw_os_error() == Some(24) // EMFILE: wait for descriptors to free up
}

/// A server started with [`spawn`].
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<io::Result<()>>,
}

impl ServerHandle {
    /// Where the server listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Shut the server down as on SIGTERM and wait until every connection is closed.
    pub async fn shutdown(mut self) -> io::Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        (&mut self.task)
            .await
            .map_err(|e| io::Error::other(format!("server task: {e}")))?
    }
}

/// Start [`serve`] on a tokio task. Dropping the handle leaves the server running
/// until the runtime ends; call [`ServerHandle::shutdown`] to stop it.
pub fn spawn(
    listener: TcpListener,
    store: Arc<BindingStore>,
    config: ServerConfig,
) -> io::Result<ServerHandle> {
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, store, config, async move {
        // A dropped handle counts as "keep running".
        if rx.await.is_err() {
            std::future::pending::<()>().await;
        }
    }));
    Ok(ServerHandle {
        addr,
        stop: Some(tx),
        task,
    })
}
