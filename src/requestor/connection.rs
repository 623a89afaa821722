//! One Bulk Leasequery TCP connection on tokio: connect, send queries, read
//! replies, all driven by the sans-IO [`ReplyDemux`].
//!
//! - Connect with a timeout, from an optional source address (RFC 5460 s.6.1).
//! - Several queries on one connection with unique transaction-ids, at most
//!   `max_in_flight` outstanding at once (default 1; more only when asked,
//!   RFC 5460 s.6.5); replies are demultiplexed by transaction-id.
//! - BULK_LQ_DATA_TIMEOUT bounds the connect, a write that makes no progress
//!   (s.6.2), and a read that delivers nothing (s.6.3).
//! - Reading and writing run concurrently in one task, so a server that
//!   streams replies while we still have queries to send cannot deadlock us.
//!
//! Bindings go to a channel as soon as each message is handled.

use super::assembly::{
    CloseReason, Event, IoError, OurBug, Outcome, PartialReason, ProtocolError, QueryStats,
    ReplyDemux, StartError, TransportError, BULK_LQ_DATA_TIMEOUT,
};
use crate::proto::{Binding, BindingMapper, Duid, OwnedBindings, ServerIndex, Xid};
use crate::transport::{FrameCodec, FrameCodecError};
use bytes::BytesMut;
use futures::FutureExt;
use futures::StreamExt;
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio_util::codec::{Encoder, FramedRead};

/// The DHCPv6 server port, where Bulk Leasequery listens by default (RFC 5460 s.5.6).
pub const DHCPV6_SERVER_PORT: u16 = 547;

/// Resource bounds against servers that stream forever or send monsters:
/// the `[limits]` of the configuration file.
pub use crate::config::Limits;

/// The connect timeout unless configured: a live server answers a SYN in
/// milliseconds, and a black-holed one must not hold a try for the whole
/// data timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Discarded messages warned about per connection; the rest go to debug.
const MAX_DROP_WARNINGS: u32 = 10;

/// Settings of one connection.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// BULK_LQ_DATA_TIMEOUT: blocked write, silent read (RFC 5460 s.5.6).
    pub data_timeout: Duration,
    /// Longest wait for the TCP connect.
    pub connect_timeout: Duration,
    /// Queries outstanding at once on the connection (RFC 5460 s.6.5); 0 counts as 1.
    pub max_in_flight: usize,
    /// Local address to connect from (port chosen by the system).
    pub source: Option<IpAddr>,
    /// Our DUID, sent as OPTION_CLIENTID and checked in every REPLY (RFC 5007 s.4.2.2).
    pub requestor: Duid,
    /// Resource bounds.
    pub limits: Limits,
    /// Overall time for one server, every try and wait included; `None`
    /// for no bound beyond the data timeout of each step.
    pub server_deadline: Option<Duration>,
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
}

impl ConnectionConfig {
    /// Defaults: 300 s data timeout, 5 s connect timeout, one query in
    /// flight, no source address.
    pub fn new(requestor: Duid) -> Self {
        ConnectionConfig {
            data_timeout: BULK_LQ_DATA_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            max_in_flight: 1,
            source: None,
            requestor,
            limits: Limits::default(),
            server_deadline: None,
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

/// Connect to `server` within `timeout`, from `source` if given.
pub async fn connect(
    server: SocketAddr,
    source: Option<IpAddr>,
    timeout: Duration,
) -> Result<TcpStream, TransportError> {
    let sock = if server.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| TransportError::Connect(e.into()))?;
    if let Some(address) = source {
        sock.bind(SocketAddr::new(address, 0))
            .map_err(|e| TransportError::Bind {
                address,
                error: e.into(),
            })?;
    }
    let stream = match tokio::time::timeout(timeout, sock.connect(server)).await {
        Err(_) => return Err(TransportError::ConnectTimeout),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            return Err(TransportError::Refused)
        }
        Ok(Err(e)) => return Err(TransportError::Connect(e.into())),
        Ok(Ok(s)) => s,
    };
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

fn unsent_outcome(close: Option<&CloseReason>) -> Outcome {
    match close {
        None | Some(CloseReason::PeerClosed) => Outcome::Partial(PartialReason::Closed),
        Some(CloseReason::DataTimeout) => Outcome::Partial(PartialReason::DataTimeout),
        Some(CloseReason::Deadline) => Outcome::Partial(PartialReason::Deadline),
        Some(CloseReason::Protocol(e)) => Outcome::Partial(PartialReason::Aborted(e.clone())),
        Some(CloseReason::Transport(e)) => Outcome::TransportFailure(e.clone()),
    }
}

/// Connect to `server` and run `queries` on one connection; bindings go to
/// `tx` (as `T::from(Vec<Delivery>)`, one batch per read burst) as they arrive, tagged with the attempt
/// number. At most `attempt.budget` bindings are accepted on the connection,
/// and it is closed at `attempt.deadline`.
/// Returns when every query has ended or the connection has failed; every
/// query given gets exactly one result. Never panics on network input.
pub async fn run<T: From<Vec<Delivery>>>(
    server: SocketAddr,
    cfg: &ConnectionConfig,
    queries: Vec<PlannedQuery>,
    attempt: Attempt,
    tx: &mpsc::Sender<T>,
) -> ConnectionReport {
    run_with(server, cfg, queries, attempt, tx, OwnedBindings).await
}

/// [`run`], delivering bindings as `mapper` makes them.
pub async fn run_with<M: BindingMapper, T: From<Vec<Delivery<M::Item>>>>(
    server: SocketAddr,
    cfg: &ConnectionConfig,
    queries: Vec<PlannedQuery>,
    attempt: Attempt,
    tx: &mpsc::Sender<T>,
    mapper: M,
) -> ConnectionReport {
    let mut timeout = cfg.connect_timeout;
    if let Some(d) = attempt.deadline {
        timeout = timeout.min(d.saturating_duration_since(Instant::now()));
    }
    match connect(server, cfg.source, timeout).await {
        Ok(stream) => run_on_with(stream, server, cfg, queries, attempt, tx, mapper).await,
        Err(e) => {
            let close = match (&e, attempt.deadline) {
                (TransportError::ConnectTimeout, Some(d)) if Instant::now() >= d => {
                    CloseReason::Deadline
                }
                _ => CloseReason::Transport(e),
            };
            ConnectionReport {
                results: queries
                    .into_iter()
                    .map(|q| QueryResult {
                        index: q.index,
                        xid: q.xid,
                        outcome: unsent_outcome(Some(&close)),
                        stats: None,
                    })
                    .collect(),
                close: Some(close),
                server_id: None,
            }
        }
    }
}

/// [`run`] on a connected stream (`server` only tags the deliveries).
pub async fn run_on<T: From<Vec<Delivery>>>(
    stream: TcpStream,
    server: SocketAddr,
    cfg: &ConnectionConfig,
    queries: Vec<PlannedQuery>,
    attempt: Attempt,
    tx: &mpsc::Sender<T>,
) -> ConnectionReport {
    run_on_with(stream, server, cfg, queries, attempt, tx, OwnedBindings).await
}

/// [`run_on`], delivering bindings as `mapper` makes them.
pub async fn run_on_with<M: BindingMapper, T: From<Vec<Delivery<M::Item>>>>(
    stream: TcpStream,
    server: SocketAddr,
    cfg: &ConnectionConfig,
    queries: Vec<PlannedQuery>,
    attempt: Attempt,
    tx: &mpsc::Sender<T>,
    mapper: M,
) -> ConnectionReport {
    let (rd, mut wr) = stream.into_split();
    let mut reader = FramedRead::new(rd, FrameCodec::new());
    let mut codec = FrameCodec::new();
    let mut out = BytesMut::new();
    let mut demux = ReplyDemux::with_mapper(cfg.requestor.clone(), cfg.data_timeout, mapper);
    demux.set_limits(cfg.limits.max_bindings_per_query, attempt.budget);
    demux.set_max_relay_depth(cfg.limits.max_relay_depth.into());
    let mut bytes_read: u64 = 0;
    let mut pending: VecDeque<PlannedQuery> = queries.into();
    let mut index_of: HashMap<Xid, usize> = HashMap::new();
    let mut results = Vec::new();
    let mut server_id: Option<Duid> = None;
    // While bytes wait to be written: when the write last made progress.
    let mut write_progress: Option<Instant> = None;
    let max_in_flight = cfg.max_in_flight.max(1);
    let mut drops_logged = 0u32;

    loop {
        // Send what the in-flight limit allows.
        while demux.close_reason().is_none() && demux.outstanding() < max_in_flight {
            let Some(q) = pending.pop_front() else { break };
            let now = Instant::now();
            let xid = q.xid;
            let mut frame = BytesMut::new();
            let queued = codec
                .encode(&q.message[..], &mut frame)
                .map_err(|_: FrameCodecError| OurBug::Unframeable(q.message.len()))
                .and_then(|()| {
                    demux.start_query(xid, now).map_err(|e| match e {
                        StartError::DuplicateXid(x) => OurBug::DuplicateXid(x),
                        StartError::Closed => unreachable!("the connection is open"),
                    })
                });
            match queued {
                Ok(()) => {
                    out.extend_from_slice(&frame);
                    index_of.insert(xid, q.index);
                    write_progress.get_or_insert(now);
                }
                Err(e) => {
                    // Our own fault (duplicate xid, oversized query): this
                    // query fails, the others go on.
                    results.push(QueryResult {
                        index: q.index,
                        xid,
                        outcome: Outcome::OurBug(e),
                        stats: None,
                    });
                }
            }
        }
        if demux.close_reason().is_some() || (demux.outstanding() == 0 && pending.is_empty()) {
            break;
        }

        let read_deadline = demux.poll_timeout();
        let write_deadline = write_progress.map(|t| t + cfg.data_timeout);
        tokio::select! {
            // Writing first: it is cheap and must not starve behind a
            // stream of replies; reading before the timers, so a deadline
            // only fires when nothing is there to read.
            biased;
            w = wr.write_buf(&mut out), if !out.is_empty() => {
                let now = Instant::now();
                match w {
                    Ok(0) => demux.handle_transport_error(
                        TransportError::Io(IoError::new(std::io::ErrorKind::WriteZero, "write returned 0")),
                        now,
                    ),
                    Ok(_) if out.is_empty() => {
                        write_progress = None;
                        demux.handle_sent(now);
                    }
                    Ok(_) => write_progress = Some(now),
                    Err(e) => demux.handle_transport_error(TransportError::Io(e.into()), now),
                }
            }
            frame = reader.next() => {
                let now = Instant::now();
                let mut frame = Some(frame);
                // Take every frame this read brought (up to a bound), so that
                // their bindings travel as one batch.
                let mut taken = 0;
                while let Some(f) = frame.take() {
                    taken += 1;
                    let go_on = match f {
                        Some(Ok(f)) => {
                            bytes_read += 2 + f.len() as u64;
                            if bytes_read > cfg.limits.max_bytes_per_connection {
                                demux.abort(
                                    ProtocolError::TooManyBytes {
                                        limit: cfg.limits.max_bytes_per_connection,
                                    },
                                    now,
                                );
                                false
                            } else {
                                demux.handle_frame(&f, now);
                                true
                            }
                        }
                        Some(Err(FrameCodecError::EmptyFrame)) => {
                            demux.handle_frame(&[], now);
                            true
                        }
                        Some(Err(e)) => {
                            demux.handle_transport_error(read_error(e), now);
                            false
                        }
                        None => {
                            demux.handle_close(now);
                            false
                        }
                    };
                    if go_on && taken < MAX_FRAMES_PER_BURST && demux.close_reason().is_none() {
                        frame = reader.next().now_or_never();
                    }
                }
            }
            // While a write is pending, its own deadline governs (RFC 5460 6.2);
            // the read timeout counts from when the queries were sent (6.3).
            _ = sleep_until(write_deadline), if write_deadline.is_some() => {
                demux.handle_transport_error(TransportError::WriteTimeout, Instant::now());
            }
            _ = sleep_until(read_deadline), if read_deadline.is_some() && out.is_empty() => {
                demux.handle_timeout(Instant::now());
            }
            _ = sleep_until(attempt.deadline), if attempt.deadline.is_some() => {
                demux.handle_deadline(Instant::now());
            }
        }

        let mut batch = Vec::new();
        while let Some(ev) = demux.poll_event() {
            match ev {
                Event::Binding { xid, at, binding } => {
                    batch.push(Delivery {
                        server,
                        server_index: attempt.server_index,
                        query: index_of.get(&xid).copied().unwrap_or(usize::MAX),
                        attempt: attempt.number,
                        xid,
                        received: at,
                        binding,
                    });
                }
                Event::Dropped { xid, reason } => {
                    // A hostile server could send millions: warn about the
                    // first few only; the count is in each query's stats.
                    drops_logged += 1;
                    if drops_logged <= MAX_DROP_WARNINGS {
                        tracing::warn!(%server, %xid, "{reason}");
                    } else {
                        tracing::debug!(%server, %xid, "{reason}");
                    }
                }
                Event::Finished {
                    xid,
                    outcome,
                    stats,
                } => {
                    if server_id.is_none() {
                        server_id = stats.server_id.clone();
                    }
                    results.push(QueryResult {
                        index: index_of.remove(&xid).unwrap_or(usize::MAX),
                        xid,
                        outcome,
                        stats: Some(stats),
                    });
                }
            }
        }
        if !batch.is_empty() {
            // A receiver that went away stops nothing here.
            let _ = tx.send(T::from(batch)).await;
        }
    }

    let close = demux.close_reason().cloned();
    for q in pending {
        results.push(QueryResult {
            index: q.index,
            xid: q.xid,
            outcome: unsent_outcome(close.as_ref()),
            stats: None,
        });
    }
    // Best effort: tell the server we are done (RFC 5460 s.6.6).
    let _ = tokio::time::timeout(Duration::from_millis(100), wr.shutdown()).await;
    ConnectionReport {
        results,
        close,
        server_id,
    }
}

/// A failed read as a transport error: the codec's IO error with its kind
/// and errno, or a stream cut inside a frame as an unexpected end of file.
fn read_error(e: FrameCodecError) -> TransportError {
    TransportError::Io(match e {
        FrameCodecError::Io(e) => e.into(),
        e @ FrameCodecError::Truncated { .. } => {
            IoError::new(std::io::ErrorKind::UnexpectedEof, e.to_string())
        }
        e => IoError::new(std::io::ErrorKind::InvalidData, e.to_string()),
    })
}

/// Frames handled in one go before the loop looks at timers and writes again.
const MAX_FRAMES_PER_BURST: usize = 512;

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}
