//! One Bulk Leasequery TCP connection on tokio: the shell around the
//! sans-IO [`ConnectionCore`], which holds every rule (window, timeouts,
//! bounds, bursts; see [`super::core`]).
//!
//! The shell only connects (with a timeout, from an optional source
//! address, RFC 5460 s.6.1), reads frames (tokio-util [`FramedRead`] with
//! the crate's [`FrameCodec`]), writes what the core gives, sleeps until the
//! core's next deadline, and forwards the core's events: bindings to a
//! channel, one message per read burst, and warnings to the log. Reading
//! and writing run concurrently in one task, so a server that streams
//! replies while we still have queries to send cannot deadlock us.

use super::assembly::{IoError, TransportError};
use super::core::{
    Attempt, ConnectionConfig, ConnectionCore, ConnectionEvent, ConnectionReport, Delivery,
    PlannedQuery, QueryStep, Severity,
};
use crate::proto::BindingMapper;
use crate::transport::{FrameCodec, FrameCodecError};
use bytes::BytesMut;
use futures::FutureExt;
use futures::StreamExt;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;

/// The read buffer of a connection: tokio-util's default size, on purpose.
/// A read returns what has arrived, up to this much, and never waits for
/// more; 64 KiB cut the reads of a fast 100k-binding stream from about
/// 2,100 to 240, but saved no measurable CPU (about 2 % at most), and let
/// the connection task run far ahead of a slow consumer on a current-thread
/// runtime (tokio's cooperative budget is spent per read, not per octet):
/// `pdrestore query`'s peak RSS went from 11 to 28 MiB for 1M bindings.
const READ_BUFFER: usize = 8 * 1024;

/// The longest wait, at the end of a connection, for the close to go out
/// (best effort: RFC 5460 s.6.6).
pub const CLOSE_WAIT: Duration = Duration::from_millis(100);

/// Connect to `server` within `timeout`, from `source` if given, bound to
/// network device `device` if given (`SO_BINDTODEVICE`: a VRF device).
pub async fn connect(
    server: SocketAddr,
    source: Option<IpAddr>,
    device: Option<&str>,
    timeout: Duration,
) -> Result<TcpStream, TransportError> {
    let sock = if server.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| TransportError::Connect(e.into()))?;
    if let Some(d) = device {
        sock.bind_device(Some(d.as_bytes()))
            .map_err(|e| TransportError::Connect(e.into()))?;
    }
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

/// Connect to `server` (within the connect timeout, cut short by
/// `attempt.deadline`) and run `queries` over the connection: see
/// [`query_over`]. A failed connect gives every query its failure.
pub async fn connect_and_query<M: BindingMapper, T: From<Vec<Delivery<M::Item>>>>(
    server: SocketAddr,
    cfg: &ConnectionConfig,
    queries: Vec<PlannedQuery>,
    attempt: Attempt,
    tx: &mpsc::Sender<T>,
    mapper: M,
) -> ConnectionReport {
    let timeout = attempt.connect_timeout(cfg.connect_timeout, Instant::now());
    tracing::debug!(%server, attempt = attempt.number, timeout = ?timeout, "connecting");
    match connect(server, cfg.source, cfg.device.as_deref(), timeout).await {
        Ok(stream) => {
            tracing::debug!(%server, attempt = attempt.number, "connected");
            query_over(stream, server, cfg, queries, attempt, tx, mapper).await
        }
        Err(e) => {
            tracing::debug!(%server, attempt = attempt.number, error = %e, "connect failed");
            ConnectionReport::not_connected(queries, e, &attempt, Instant::now())
        }
    }
}

/// Run `queries` over a connected `stream` to `server` (the address only
/// tags the deliveries). Bindings are made by `mapper` (pass
/// [`crate::proto::OwnedBindings`] for owned [`crate::proto::Binding`]s) and
/// go to `tx` as they arrive, as `T::from(Vec<Delivery>)`, one batch per
/// read burst, tagged with the server and the attempt. At most
/// `attempt.budget` bindings are accepted on the connection, and it is
/// closed at `attempt.deadline`. Returns when every query has ended or the
/// connection has failed; every query given gets exactly one result. Never
/// panics on network input.
pub async fn query_over<M: BindingMapper, T: From<Vec<Delivery<M::Item>>>>(
    stream: TcpStream,
    server: SocketAddr,
    cfg: &ConnectionConfig,
    queries: Vec<PlannedQuery>,
    attempt: Attempt,
    tx: &mpsc::Sender<T>,
    mapper: M,
) -> ConnectionReport {
    let (rd, mut wr) = stream.into_split();
    let mut reader = FramedRead::with_capacity(rd, FrameCodec::new(), READ_BUFFER);
    let mut core = ConnectionCore::new(server, cfg, queries, attempt, mapper, Instant::now());
    while !core.is_done() {
        let deadline = core.poll_timeout();
        let transmit = core.poll_transmit();
        tokio::select! {
            // Writing first: it is cheap and must not starve behind a
            // stream of replies; reading before the timer, so a deadline
            // only fires when nothing is there to read.
            biased;
            w = wr.write(transmit), if !transmit.is_empty() => {
                let now = Instant::now();
                match w {
                    Ok(n) => core.handle_written(n, now),
                    Err(e) => core.handle_transport_error(TransportError::Io(e.into()), now),
                }
            }
            read = reader.next() => read_burst(&mut core, &mut reader, read),
            _ = sleep_until(deadline), if deadline.is_some() => core.handle_timeout(Instant::now()),
        }
        forward(&mut core, server, attempt.number, tx).await;
    }
    // Best effort: tell the server we are done (RFC 5460 s.6.6).
    let _ = tokio::time::timeout(CLOSE_WAIT, wr.shutdown()).await;
    core.into_report()
}

type Read = Option<Result<BytesMut, FrameCodecError>>;

/// Hand `first` and every frame already read after it to the core, as far
/// as it takes them in one burst.
fn read_burst<M: BindingMapper>(
    core: &mut ConnectionCore<M>,
    reader: &mut FramedRead<OwnedReadHalf, FrameCodec>,
    first: Read,
) {
    let now = Instant::now();
    let mut read = Some(first);
    while let Some(r) = read.take() {
        match r {
            Some(Ok(frame)) => core.handle_frame(&frame, now),
            Some(Err(FrameCodecError::EmptyFrame)) => core.handle_frame(&[], now),
            Some(Err(e)) => core.handle_transport_error(read_error(e), now),
            None => core.handle_close(now),
        }
        if core.takes_more_frames() {
            read = reader.next().now_or_never();
        }
    }
}

/// Deliver the core's events: the batch of bindings to `tx`, warnings and
/// the queries' steps (of try `attempt`) to the log.
async fn forward<M: BindingMapper, T: From<Vec<Delivery<M::Item>>>>(
    core: &mut ConnectionCore<M>,
    server: SocketAddr,
    attempt: u32,
    tx: &mpsc::Sender<T>,
) {
    while let Some(ev) = core.poll_event() {
        match ev {
            ConnectionEvent::Bindings(batch) => {
                // A receiver that went away stops nothing here.
                let _ = tx.send(T::from(batch)).await;
            }
            ConnectionEvent::Discarded {
                xid,
                reason,
                severity: Severity::Warn,
            } => tracing::warn!(%server, %xid, "{reason}"),
            ConnectionEvent::Discarded { xid, reason, .. } => {
                tracing::debug!(%server, %xid, "{reason}")
            }
            ConnectionEvent::Query { index, xid, step } => {
                let query = index + 1;
                match step {
                    QueryStep::Sent => tracing::debug!(%server, attempt, query, %xid, "query sent"),
                    QueryStep::Answered => {
                        tracing::debug!(%server, attempt, query, %xid, "first answer")
                    }
                    QueryStep::Ended(outcome) => {
                        tracing::debug!(%server, attempt, query, %xid, %outcome, "query done")
                    }
                }
            }
        }
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

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}
