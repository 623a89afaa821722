//! One Bulk Leasequery connection: read queries, answer them in parallel,
//! time out idle and blocked connections (RFC 5460 s.7.1-7.4).

use super::encode::{self, ClientDataSpec, ReplyHead};
use super::faults::QueryFaults;
use super::query::{Outcome, Request, Selection, Violation};
use super::store::{unix_now, BindingStore};
use super::ServerConfig;
use crate::proto::{StatusCode, Xid};
use crate::transport::FrameCodec;
use bytes::BytesMut;
use futures::StreamExt;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio::task::JoinSet;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

/// Longest wait, on shutdown, for queries to send their QueryTerminated
/// (a requestor that does not read cannot hold the server for the whole
/// data timeout).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// What one connection shares with its query tasks.
struct Shared {
    store: Arc<BindingStore>,
    config: Arc<ServerConfig>,
    writer: Mutex<OwnedWriteHalf>,
    /// Cancelled to close the connection at once (write error or timeout, close fault).
    close: CancellationToken,
    /// Server shutdown: queries in flight end with QueryTerminated.
    shutdown: CancellationToken,
    /// The requestor closed its end: stalled queries give up.
    peer_gone: CancellationToken,
    peer: SocketAddr,
    index: u64,
}

/// How a query task ended.
struct QueryEnd {
    xid: Xid,
    bindings: u64,
}

/// Serve one accepted connection until it closes.
pub(crate) async fn run(
    stream: TcpStream,
    peer: SocketAddr,
    index: u64,
    store: Arc<BindingStore>,
    config: Arc<ServerConfig>,
    shutdown: CancellationToken,
) {
    let started = Instant::now();
    let _ = stream.set_nodelay(true);
    let (read, write) = stream.into_split();
    let shared = Arc::new(Shared {
        store,
        config: config.clone(),
        writer: Mutex::new(write),
        close: CancellationToken::new(),
        shutdown,
        peer_gone: CancellationToken::new(),
        peer,
        index,
    });
    let mut conn = Conn {
        shared: shared.clone(),
        queries: JoinSet::new(),
        in_flight: HashSet::new(),
        eof: false,
        n_queries: 0,
        n_bindings: 0,
    };
    let reason = conn.serve(FramedRead::new(read, FrameCodec::new())).await;
    conn.wind_down().await;
    if !shared.close.is_cancelled() {
        let mut w = shared.writer.lock().await;
        let _ = tokio::time::timeout(Duration::from_secs(1), w.shutdown()).await;
    }
    tracing::info!(
        peer = %peer,
        conn = index,
        queries = conn.n_queries,
        bindings = conn.n_bindings,
        duration_ms = started.elapsed().as_millis() as u64,
        "connection closed: {reason}"
    );
}

/// One connection's queries in flight and counters.
struct Conn {
    shared: Arc<Shared>,
    queries: JoinSet<QueryEnd>,
    /// Transaction-ids of the queries in flight.
    in_flight: HashSet<Xid>,
    /// The requestor closed its end.
    eof: bool,
    n_queries: u64,
    n_bindings: u64,
}

impl Conn {
    /// Read queries and run them, at most `max_parallel_queries` at once
    /// (RFC 5460 s.7.3), until the connection must close; returns why.
    async fn serve(&mut self, mut reader: FramedRead<OwnedReadHalf, FrameCodec>) -> String {
        let shared = self.shared.clone();
        let max_parallel = shared.config.max_parallel_queries.max(1);
        let timeout = shared.config.data_timeout;
        let mut idle_deadline = tokio::time::Instant::now() + timeout;
        loop {
            tokio::select! {
                biased;
                _ = shared.close.cancelled() => return "closed by server".into(),
                _ = shared.shutdown.cancelled() => return "server shutting down".into(),
                Some(done) = self.queries.join_next(), if !self.queries.is_empty() => {
                    if let Ok(end) = done {
                        self.in_flight.remove(&end.xid);
                        self.n_bindings += end.bindings;
                    }
                    if self.queries.is_empty() {
                        if self.eof {
                            return "requestor closed".into();
                        }
                        idle_deadline = tokio::time::Instant::now() + timeout;
                    }
                }
                frame = reader.next(), if !self.eof && self.queries.len() < max_parallel => {
                    let frame = match frame {
                        None => {
                            self.eof = true;
                            shared.peer_gone.cancel();
                            if self.queries.is_empty() {
                                return "requestor closed".into();
                            }
                            continue;
                        }
                        Some(Err(e)) => return format!("framing error: {e}"),
                        Some(Ok(f)) => f,
                    };
                    // Idle (RFC 5460 s.7.1) counts from the last query read.
                    idle_deadline = tokio::time::Instant::now() + timeout;
                    if let Err(v) = self.start_query(&frame) {
                        return format!("protocol violation: {}", v.0);
                    }
                }
                _ = tokio::time::sleep_until(idle_deadline), if self.queries.is_empty() => {
                    return format!("idle for {}", humantime::format_duration(timeout));
                }
            }
        }
    }

    /// Read one query and start answering it, unless it is discarded or
    /// reuses the transaction-id of one in flight.
    fn start_query(&mut self, frame: &[u8]) -> Result<(), Violation> {
        let sh = &self.shared;
        let req = Request::decode(frame)?;
        let xid = req.xid.get();
        let outcome = req.lookup(&sh.store, &sh.config);
        if let Outcome::Discard(why) = outcome {
            tracing::warn!(peer = %sh.peer, xid = format_args!("{xid:#08x}"), "query discarded: {why}");
            return Ok(());
        }
        // A query reusing the xid of one in flight is dropped (as Kea
        // does): a reply could not be told apart from the running one's.
        if !self.in_flight.insert(req.xid) {
            tracing::warn!(peer = %sh.peer, xid = format_args!("{xid:#08x}"), "query refused: xid already in flight");
            return Ok(());
        }
        self.n_queries += 1;
        self.queries.spawn(answer(sh.clone(), req, outcome));
        Ok(())
    }

    /// End the queries in flight: on server shutdown, each may first send
    /// its QueryTerminated (RFC 5460 s.5.5, s.7.4), within a grace period.
    async fn wind_down(&mut self) {
        let sh = self.shared.clone();
        if sh.shutdown.is_cancelled() && !sh.close.is_cancelled() {
            let grace = tokio::time::sleep(sh.config.data_timeout.min(SHUTDOWN_GRACE));
            tokio::pin!(grace);
            loop {
                tokio::select! {
                    r = self.queries.join_next() => match r {
                        Some(Ok(end)) => self.n_bindings += end.bindings,
                        Some(Err(_)) => {}
                        None => break,
                    },
                    _ = &mut grace => break,
                    _ = sh.close.cancelled() => break,
                }
            }
        }
        self.queries.abort_all();
        while let Some(r) = self.queries.join_next().await {
            if let Ok(end) = r {
                self.n_bindings += end.bindings;
            }
        }
    }
}

/// Why streaming stopped early.
enum Stop {
    /// The connection is gone (write error, timeout, close fault).
    Closed,
    /// The server is shutting down.
    Shutdown,
}

/// Streams the replies of one query into the connection.
struct Stream<'a> {
    shared: &'a Shared,
    buf: BytesMut,
    batch: usize,
    xid: Xid,
    /// The requestor's CLIENTID, echoed in a REPLY.
    client_id: Option<&'a [u8]>,
    /// Messages sent (queued) so far.
    sent: u64,
    faults: QueryFaults,
    /// The Unix time CLT_TIME and lifetimes are encoded at: read when the
    /// stream starts, then at each flush and every 1024 client data.
    now: u64,
    /// Client data encoded since `now` was read.
    since_clock: u32,
}

impl Stream<'_> {
    /// Write the buffer out, waiting at most the data timeout (RFC 5460 s.7.2).
    async fn flush(&mut self) -> Result<(), Stop> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let sh = self.shared;
        let write = async {
            let mut w = sh.writer.lock().await;
            w.write_all(&self.buf).await
        };
        let result = tokio::select! {
            r = tokio::time::timeout(sh.config.data_timeout, write) => r,
            _ = sh.close.cancelled() => return Err(Stop::Closed),
        };
        self.buf.clear();
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                tracing::debug!(peer = %sh.peer, "write failed: {e}");
                sh.close.cancel();
                Err(Stop::Closed)
            }
            Err(_) => {
                tracing::warn!(peer = %sh.peer, conn = sh.index, "write blocked for the data timeout; closing");
                sh.close.cancel();
                Err(Stop::Closed)
            }
        }
    }

    async fn maybe_flush(&mut self) -> Result<(), Stop> {
        if self.buf.len() >= self.batch {
            self.flush().await?;
        }
        if self.shared.shutdown.is_cancelled() {
            return Err(Stop::Shutdown);
        }
        Ok(())
    }

    /// Sleep, unless the connection closes or the server shuts down first.
    /// `None` sleeps until then, or until the requestor closes its end.
    async fn sleep(&self, d: Option<Duration>) -> Result<(), Stop> {
        let sleep = async {
            match d {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        if d.is_none() && self.shared.peer_gone.is_cancelled() {
            return Err(Stop::Closed);
        }
        tokio::select! {
            _ = sleep => Ok(()),
            // A stall ends when nobody is listening any more.
            _ = self.shared.peer_gone.cancelled(), if d.is_none() => Err(Stop::Closed),
            _ = self.shared.close.cancelled() => Err(Stop::Closed),
            _ = self.shared.shutdown.cancelled() => Err(Stop::Shutdown),
        }
    }

    /// Fault checks before message number `self.sent`. `Ok(false)` ends the query.
    async fn before_message(&mut self) -> Result<bool, Stop> {
        let f = self.faults;
        let k = self.sent;
        if let Some(d) = f.delay_each {
            self.flush().await?;
            self.sleep(Some(d)).await?;
        }
        if f.malformed_at == Some(k) {
            encode::put_malformed(&mut self.buf, self.xid);
        }
        if f.empty_data_at == Some(k) {
            let _ = encode::put_data(&mut self.buf, self.xid, &self.shared.store, None, 0);
        }
        if f.stall_after == Some(k) {
            self.flush().await?;
            self.sleep(None).await?;
        }
        if f.close_after == Some(k) {
            self.flush().await?;
            self.shared.close.cancel();
            return Err(Stop::Closed);
        }
        if let (Some(status), 0) = (f.plain_reply, k) {
            let sh = self.shared;
            let text = format!(
                "lab server fault: a plain DHCPv6 listener, no Bulk Leasequery here ({status})"
            );
            encode::put_plain_reply(
                &mut self.buf,
                self.xid,
                self.client_id,
                sh.config.server_duid.as_bytes(),
                (status, &text),
            );
            self.sent += 1;
            return Ok(false);
        }
        if let Some((at, status)) = f.done_error_after {
            if at == k {
                self.end_with(
                    status,
                    &format!("error injected by the lab server: {status}"),
                );
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// End the query with an error status: a REPLY when nothing was sent yet,
    /// else a DONE (RFC 5460 s.5.2.2, s.7.2).
    fn end_with(&mut self, status: StatusCode, text: &str) {
        let sh = self.shared;
        if self.sent == 0 {
            let head = ReplyHead {
                xid: self.xid,
                client_id: self.client_id,
                server_id: sh.config.server_duid.as_bytes(),
                status: Some((status, text)),
                client_link: None,
            };
            let _ = encode::put_reply(&mut self.buf, &head, &sh.store, None, 0);
        } else {
            encode::put_done(&mut self.buf, self.xid, Some((status, text)));
        }
        self.sent += 1;
    }
}

/// Answer one query; returns how many bindings went out.
async fn answer(shared: Arc<Shared>, req: Request, outcome: Outcome) -> QueryEnd {
    let started = Instant::now();
    let faults =
        QueryFaults::for_query(&shared.config.faults, shared.index, req.xid, req.query_type);
    let mut s = Stream {
        shared: &shared,
        buf: BytesMut::with_capacity(shared.config.write_batch.min(1 << 20) + 4096),
        batch: if faults.delay_each.is_some() {
            1
        } else {
            shared.config.write_batch.max(1)
        },
        xid: req.xid,
        client_id: req.client_id.as_deref(),
        sent: 0,
        faults,
        now: 0,
        since_clock: 0,
    };
    let mut bindings = 0u64;
    let result = stream_reply(&mut s, &req, &outcome, &mut bindings).await;
    let status = match &result {
        Ok(st) => st.to_string(),
        Err(Stop::Shutdown) => {
            s.end_with(StatusCode::QueryTerminated, "server shutting down");
            let _ = s.flush().await;
            "QueryTerminated (shutdown)".to_string()
        }
        Err(Stop::Closed) => "connection closed".to_string(),
    };
    tracing::info!(
        peer = %shared.peer,
        conn = shared.index,
        requestor = %req.client_id.as_deref().map(crate::proto::duid::hex).unwrap_or_default(),
        xid = format_args!("{:#08x}", req.xid.get()),
        query = %req.query_type,
        status = %status,
        bindings,
        messages = s.sent,
        duration_ms = started.elapsed().as_millis() as u64,
        "query answered"
    );
    QueryEnd {
        xid: req.xid,
        bindings,
    }
}

/// The whole reply stream; returns the status it ended with: an error
/// status in the REPLY, a REPLY without bindings, or REPLY, DATA* and DONE
/// (RFC 5460 s.7.2), with the faults of the query injected.
async fn stream_reply(
    s: &mut Stream<'_>,
    req: &Request,
    outcome: &Outcome,
    bindings: &mut u64,
) -> Result<String, Stop> {
    let sh = s.shared;
    let cfg = &*sh.config;
    if let Some(d) = s.faults.delay_reply {
        s.sleep(Some(d)).await?;
    }
    if sh.shutdown.is_cancelled() {
        return Err(Stop::Shutdown);
    }
    let mut head = ReplyHead {
        xid: req.xid,
        client_id: req.client_id.as_deref(),
        server_id: cfg.server_duid.as_bytes(),
        status: None,
        client_link: s
            .faults
            .client_link
            .then_some(std::net::Ipv6Addr::UNSPECIFIED),
    };
    let sel: &Selection = match outcome {
        Outcome::Error(code, text) => {
            head.status = Some((*code, text));
            return s.reply_alone(&head, code.to_string()).await;
        }
        Outcome::Discard(_) => return Ok("discarded".into()),
        Outcome::Bindings(sel) => sel,
    };
    let relay_data = match cfg.relay_data {
        super::RelayData::Always => true,
        super::RelayData::WhenRequested => req.wants_relay_data,
    };
    s.now = unix_now();
    let mut cursor = Cursor::new(sel, &sh.store, !cfg.one_binding_per_client_data);
    if !cursor.next(s.now) {
        // Nothing found: a REPLY without CLIENT_DATA and without DONE
        // (RFC 5460 s.7.2); STATUS_CODE Success only in Kea mode.
        if cfg.status_on_success {
            head.status = Some((StatusCode::Success, "no active leases"));
        }
        return s.reply_alone(&head, "no bindings".into()).await;
    }
    if cfg.status_on_success {
        head.status = Some((StatusCode::Success, "active lease(s) found"));
    }
    loop {
        if !s
            .send_client(&head, &cursor.group, relay_data, bindings)
            .await?
        {
            s.flush().await?;
            return Ok("fault".into());
        }
        if !cursor.next(s.now) {
            break;
        }
    }
    s.finish_stream().await
}

/// The candidates of a selection, walked in order: the next client data to
/// send is the binding (or, grouped, the client's bindings) at `pos` or after.
struct Cursor<'s> {
    sel: &'s Selection,
    store: &'s BindingStore,
    list: &'s [u32],
    grouped: bool,
    pos: usize,
    /// The bindings of the client data found by [`Cursor::next`].
    group: Vec<u32>,
}

impl<'s> Cursor<'s> {
    fn new(sel: &'s Selection, store: &'s BindingStore, grouped: bool) -> Self {
        Cursor {
            sel,
            store,
            list: sel.list(store),
            grouped,
            pos: 0,
            group: Vec::new(),
        }
    }

    /// Find the next client data served at Unix time `now` into `group`;
    /// false when there is none.
    fn next(&mut self, now: u64) -> bool {
        let (sel, store, list) = (self.sel, self.store, self.list);
        while self.pos < list.len() {
            let i = list[self.pos];
            self.pos += 1;
            if !sel.serves(store, i, now) {
                continue;
            }
            self.group.clear();
            if !self.grouped {
                self.group.push(i);
                return true;
            }
            // Grouped: send the client's served bindings of this selection
            // together, when meeting the first of them.
            let c = store.entries[i as usize].client;
            let mut first = true;
            for &j in store.by_client.get(c) {
                if j != i && list.binary_search(&j).is_ok() && sel.serves(store, j, now) {
                    if j < i {
                        first = false;
                        break;
                    }
                    self.group.push(j);
                } else if j == i {
                    self.group.push(i);
                }
            }
            if first {
                return true;
            }
        }
        false
    }
}

impl Stream<'_> {
    /// A REPLY that is the whole answer (an error status, or no bindings),
    /// after the faults; `status` is what to report.
    async fn reply_alone(&mut self, head: &ReplyHead<'_>, status: String) -> Result<String, Stop> {
        if !self.before_message().await? {
            self.flush().await?;
            return Ok("fault".into());
        }
        let _ = encode::put_reply(&mut self.buf, head, &self.shared.store, None, self.now);
        self.sent += 1;
        self.flush().await?;
        Ok(status)
    }

    /// One client's bindings: in CLIENT_DATA options of at most 64
    /// bindings, or one binding each when that would not fit a message;
    /// the first goes in the REPLY, the rest in DATA. False when a fault
    /// ended the query.
    async fn send_client(
        &mut self,
        head: &ReplyHead<'_>,
        group: &[u32],
        relay_data: bool,
        bindings: &mut u64,
    ) -> Result<bool, Stop> {
        let store = &*self.shared.store;
        let per_message = self.faults.any_per_message();
        let copies = if self.faults.duplicate { 2 } else { 1 };
        for chunk in group.chunks(64) {
            // One binding always fits: relay data is capped at 60000 octets
            // when stored, DUIDs at 130.
            let whole = chunk.len() == 1 || encode::message_fits(store, head, chunk, relay_data);
            let n_parts = if whole { 1 } else { chunk.len() };
            for k in 0..n_parts {
                let part = if whole { chunk } else { &chunk[k..k + 1] };
                let cd = Some(ClientDataSpec {
                    bindings: part,
                    relay_data,
                });
                for _ in 0..copies {
                    if (self.sent == 0 || per_message) && !self.before_message().await? {
                        return Ok(false);
                    }
                    let _ = if self.sent == 0 {
                        encode::put_reply(&mut self.buf, head, store, cd, self.now)
                    } else {
                        encode::put_data(&mut self.buf, self.xid, store, cd, self.now)
                    };
                    self.sent += 1;
                }
                *bindings += part.len() as u64;
                self.since_clock += 1;
                if self.buf.len() >= self.batch || self.since_clock >= 1024 {
                    self.maybe_flush().await?;
                    self.now = unix_now();
                    self.since_clock = 0;
                }
            }
        }
        Ok(true)
    }

    /// After the last binding: the LEASEQUERY-DONE (with the wrong
    /// transaction-id when that fault is on), or QueryTerminated on shutdown.
    async fn finish_stream(&mut self) -> Result<String, Stop> {
        if self.faults.any_per_message() && !self.before_message().await? {
            self.flush().await?;
            return Ok("fault".into());
        }
        if self.shared.shutdown.is_cancelled() {
            self.flush().await?;
            return Err(Stop::Shutdown);
        }
        let done_xid = if self.faults.wrong_xid_done {
            self.xid.next()
        } else {
            self.xid
        };
        encode::put_done(&mut self.buf, done_xid, None);
        self.sent += 1;
        self.flush().await?;
        Ok("Success".into())
    }
}
