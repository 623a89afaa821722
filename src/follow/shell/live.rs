//! follow's side of the live view ([`crate::follow::live`]): the socket in
//! the state directory, the tasks that serve it, and the loop's answer.
//!
//! An accept task takes the connections; each has a task of its own that
//! reads the request line (5 s at most), checks it, hands it to the event
//! loop through a channel with a oneshot for the answer, and writes the
//! answer out. The loop only copies: the state, and the followed prefixes
//! that match ([`FollowCore::snapshot`], a compact copy); the connection's
//! task sorts them and renders them as JSON lines, so a slow reader holds
//! its own task and its copy, never the loop.

use crate::follow::core::{FollowCore, Snapshot, SnapshotFilter, SnapshotRoute};
use crate::follow::live::{
    read_line, LiveRefusal, LiveRequest, LiveRoute, LiveState, MAX_REQUEST, SOCKET_NAME,
};
use crate::proto::duid::hex;
use crate::proto::Duid;
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot, Semaphore};

/// How long a client has to send its request line.
const REQUEST_WAIT: Duration = Duration::from_secs(5);
/// How long a request waits for the loop to take it, then to answer.
const LOOP_WAIT: Duration = Duration::from_secs(10);
/// How long one chunk of the answer may wait for the client to read it.
const WRITE_WAIT: Duration = Duration::from_secs(30);
/// Answer octets gathered before a write.
const CHUNK: usize = 64 << 10;
/// Clients served at once (each may hold a copy of the routes); more are
/// refused as busy.
const MAX_CLIENTS: usize = 4;
/// Requests queued for the loop at most.
pub(super) const ASK_QUEUE: usize = MAX_CLIENTS;

/// A request on its way to the loop.
#[derive(Debug)]
pub(crate) struct LiveAsk {
    /// Which routes.
    pub(crate) filter: SnapshotFilter,
    /// List routes at all (not `no_routes`).
    pub(crate) routes: bool,
    /// Where the answer goes.
    pub(crate) reply: oneshot::Sender<LiveAnswer>,
}

/// The loop's answer, rendered by the connection's task.
#[derive(Debug)]
pub(crate) struct LiveAnswer {
    /// The state (its `listed` set from `routes`).
    pub(crate) state: LiveState,
    /// The routes, unless the request said `no_routes`.
    pub(crate) routes: Option<Snapshot>,
    /// To make the core's instants wall-clock time.
    pub(crate) wall: WallClock,
}

/// The wall-clock time of the service's instants: an instant and the
/// system time read together at start.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WallClock {
    start: Instant,
    started_at: SystemTime,
}

impl WallClock {
    /// `start` read beside `started_at`.
    pub(crate) fn new(start: Instant, started_at: SystemTime) -> Self {
        WallClock { start, started_at }
    }

    /// `at` in seconds since the Unix epoch (0 before it, saturating).
    pub(crate) fn unix(&self, at: Instant) -> u64 {
        let t = match at.checked_duration_since(self.start) {
            Some(d) => self.started_at.checked_add(d),
            None => self.started_at.checked_sub(self.start - at),
        };
        match t.map(|t| t.duration_since(UNIX_EPOCH)) {
            Some(Ok(d)) => d.as_secs(),
            Some(Err(_)) => 0,
            None => u64::MAX,
        }
    }
}

/// The socket, served until dropped; then its file is removed.
#[derive(Debug)]
pub(super) struct LiveSocket {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for LiveSocket {
    fn drop(&mut self) {
        self.task.abort();
        if let Err(e) = std::fs::remove_file(&self.path) {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!(path = %self.path.display(), error = %e, "follow: cannot remove the live view's socket");
            }
        }
    }
}

/// Listen on `state_directory/follow.sock` and serve it (inside a tokio
/// runtime): the socket and the requests for the loop. A socket that
/// cannot be made is a warning, not a failure: follow runs without it.
pub(super) fn open(state_directory: &Path) -> Option<(LiveSocket, mpsc::Receiver<LiveAsk>)> {
    let path = state_directory.join(SOCKET_NAME);
    let listener = match bind(&path) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "follow: cannot listen for `pdrestore status`; going on without the live view");
            return None;
        }
    };
    tracing::debug!(path = %path.display(), "follow: live view listening");
    let (tx, rx) = mpsc::channel(ASK_QUEUE);
    let task = tokio::spawn(serve(listener, tx));
    Some((LiveSocket { path, task }, rx))
}

/// Bind the socket at `path`: its directory made if missing (0700), a
/// stale socket left by a follow that died removed first (the writer lock
/// says no other follow runs), mode 0600.
pub(crate) fn bind(path: &Path) -> io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => std::fs::remove_file(path)?,
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "something that is not a socket is there; left alone",
            ))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Accept connections on `listener` and serve each in a task of its own,
/// handing the requests to the loop through `asks`, until the loop drops
/// its end.
pub(crate) async fn serve(listener: UnixListener, asks: mpsc::Sender<LiveAsk>) {
    let clients = Arc::new(Semaphore::new(MAX_CLIENTS));
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = asks.closed() => return,
        };
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                // Out of descriptors, most likely: breathe, go on.
                tracing::warn!(error = %e, "follow: live view: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let permit = clients.clone().try_acquire_owned();
        let asks = asks.clone();
        tokio::spawn(async move {
            match permit {
                Ok(_held) => connection(stream, asks).await,
                Err(_) => refuse(stream, "busy: too many clients at once".into()).await,
            }
        });
    }
}

/// Serve one client.
async fn connection(stream: UnixStream, asks: mpsc::Sender<LiveAsk>) {
    let (rd, wr) = stream.into_split();
    let (filter, routes) = match request(BufReader::new(rd)).await {
        Ok(r) => r,
        Err(why) => return refuse(wr, why).await,
    };
    let (reply, answer) = oneshot::channel();
    let ask = LiveAsk {
        filter,
        routes,
        reply,
    };
    match tokio::time::timeout(LOOP_WAIT, asks.send(ask)).await {
        Ok(Ok(())) => {}
        Ok(Err(_)) => return refuse(wr, "the service is stopping".into()).await,
        Err(_) => return refuse(wr, "busy: the service did not take the request".into()).await,
    }
    match tokio::time::timeout(LOOP_WAIT, answer).await {
        Ok(Ok(a)) => write_answer(wr, a).await,
        Ok(Err(_)) => refuse(wr, "the service is stopping".into()).await,
        Err(_) => refuse(wr, "busy: the service did not answer in time".into()).await,
    }
}

/// Read and check the request line: the filter, and whether routes are
/// wanted; or why not.
async fn request<R: tokio::io::AsyncBufRead + Unpin>(
    mut rd: R,
) -> Result<(SnapshotFilter, bool), String> {
    let mut buf = Vec::new();
    match tokio::time::timeout(REQUEST_WAIT, read_line(&mut rd, &mut buf, MAX_REQUEST)).await {
        Err(_) => {
            return Err(format!(
                "no request line within {}s",
                REQUEST_WAIT.as_secs()
            ))
        }
        Ok(Err(e)) if e.kind() == io::ErrorKind::InvalidData => {
            return Err(format!("request longer than {MAX_REQUEST} octets"))
        }
        Ok(Err(e)) => return Err(format!("reading the request: {e}")),
        Ok(Ok(false)) => return Err("empty request".into()),
        Ok(Ok(true)) => {}
    }
    let req: LiveRequest = serde_json::from_slice(&buf).map_err(|e| format!("bad request: {e}"))?;
    let client = match req.client.as_deref() {
        Some(c) => Some(
            c.parse::<Duid>()
                .map_err(|e| format!("bad client DUID {c:?}: {e}"))?,
        ),
        None => None,
    };
    let filter = SnapshotFilter {
        prefix: req.prefix.map(|p| p.trunc()),
        interface: req.interface,
        client,
    };
    Ok((filter, !req.no_routes))
}

/// Write `{"error": why}` and close.
async fn refuse<W: AsyncWrite + Unpin>(mut wr: W, why: String) {
    tracing::debug!(error = %why, "follow: live view: request refused");
    let mut line = serde_json::to_vec(&LiveRefusal { error: why }).unwrap_or_default();
    line.push(b'\n');
    let _ = tokio::time::timeout(WRITE_WAIT, async {
        wr.write_all(&line).await?;
        wr.shutdown().await
    })
    .await;
}

/// Write the state line, then the routes in prefix order, and close. A
/// client that stops reading for [`WRITE_WAIT`] is dropped.
async fn write_answer<W: AsyncWrite + Unpin>(mut wr: W, a: LiveAnswer) {
    let mut out = Vec::with_capacity(CHUNK + 1024);
    if serde_json::to_writer(&mut out, &a.state).is_err() {
        return;
    }
    out.push(b'\n');
    if let Some(snap) = a.routes {
        // A million prefixes take a tenth of a second to sort: not on the
        // runtime's workers, which read the capture sockets.
        let snap = match tokio::task::spawn_blocking(move || {
            let mut snap = snap;
            snap.sort();
            snap
        })
        .await
        {
            Ok(s) => s,
            Err(_) => return,
        };
        for r in snap.routes() {
            if serde_json::to_writer(&mut out, &live_route(&r, &snap, &a.wall)).is_err() {
                return;
            }
            out.push(b'\n');
            if out.len() >= CHUNK && !write_chunk(&mut wr, &mut out).await {
                return;
            }
        }
    }
    if write_chunk(&mut wr, &mut out).await {
        let _ = tokio::time::timeout(WRITE_WAIT, wr.shutdown()).await;
    }
}

/// Write `out` out and clear it; false when the client is gone or slow.
async fn write_chunk<W: AsyncWrite + Unpin>(wr: &mut W, out: &mut Vec<u8>) -> bool {
    let ok = matches!(
        tokio::time::timeout(WRITE_WAIT, wr.write_all(out)).await,
        Ok(Ok(()))
    );
    out.clear();
    ok
}

/// A route of a snapshot as the live view says it.
fn live_route(r: &SnapshotRoute<'_>, snap: &Snapshot, wall: &WallClock) -> LiveRoute {
    let at = |secs: u32| wall.unix(snap.instant(secs));
    LiveRoute {
        prefix: r.prefix,
        via: r.gateway,
        dev: r.interface.to_owned(),
        expires_at: r.expires.map(at),
        state: r.state.as_str().to_owned(),
        snooped: r.snooped,
        seen_at: r.seen.map(at),
        client: r.client.map(hex),
        server: r.server.map(Duid::to_hex),
    }
}

/// The loop's answer to `ask` (`state` made by the caller, its `listed`
/// set here).
pub(crate) fn answer(core: &FollowCore, mut state: LiveState, wall: WallClock, ask: LiveAsk) {
    let routes = ask.routes.then(|| core.snapshot(&ask.filter));
    state.listed = Some(routes.as_ref().map_or(0, Snapshot::len));
    // The client may be gone already: nothing to do then.
    let _ = ask.reply.send(LiveAnswer {
        state,
        routes,
        wall,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::follow::core::{CoreSettings, RouteState};
    use crate::follow::live::{ask, LiveError, LiveInterface, LiveResync};
    use crate::recovery::settings::{NextHopFallback, OurLayer, PlanSettings};
    use crate::routes::{Interface, Ownership};
    use crate::snoop::{Datagram, DelegatedPrefix, IaPd, Reply};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const WAIT: Duration = Duration::from_secs(5);

    fn core(start: Instant) -> FollowCore {
        let plan = PlanSettings {
            relay_id: "000200000009010203040506".parse().unwrap(),
            owner: Ownership::new(254, 57, 1024, &["2001:db8:8000::/40".parse().unwrap()], 48),
            interface_map: Default::default(),
            our_layer: OurLayer::RelayId,
            fallback: NextHopFallback::None,
        };
        let interfaces = vec![
            Interface {
                name: "cust0".into(),
                index: 7,
                addresses: vec!["2001:db8:0:1::1/64".parse().unwrap()],
            },
            Interface {
                name: "cust1".into(),
                index: 8,
                addresses: vec!["2001:db8:0:2::1/64".parse().unwrap()],
            },
        ];
        let mut core = FollowCore::new(CoreSettings::default(), plan, interfaces, start);
        let reply = |client: u8, to: &str, p: &str| Reply {
            datagram: Datagram {
                source: "fe80::1".parse().unwrap(),
                destination: to.parse().unwrap(),
                source_port: 547,
                destination_port: 546,
                hop_limit: 255,
                message_offset: 48,
                message_len: 100,
            },
            relay: vec![],
            transaction_id: u32::from(client),
            status: None,
            client_id: Some(Duid::new_ll(1, &[2, 0, 0, 0, 1, client])),
            server_id: Duid::new_ll(1, &[2, 0, 0, 0, 9, 9]),
            ia_pds: vec![IaPd {
                iaid: 1,
                t1: 100,
                t2: 200,
                status: None,
                prefixes: vec![DelegatedPrefix {
                    prefix: p.parse().unwrap(),
                    preferred_lifetime: 1800,
                    valid_lifetime: 3600,
                    status: None,
                }],
            }],
        };
        core.handle_reply(
            start + Duration::from_secs(20),
            8,
            &reply(3, "fe80::3", "2001:db8:8000:200::/56"),
        );
        core.handle_reply(
            start + Duration::from_secs(10),
            7,
            &reply(2, "fe80::2", "2001:db8:8000:100::/56"),
        );
        core
    }

    fn state() -> LiveState {
        LiveState {
            pid: 4242,
            started_at: 1_700_000_000,
            ready: true,
            resyncing: false,
            followed: 2,
            foreign: 0,
            pending_releases: 0,
            last_resync: Some(LiveResync {
                at: 1_700_000_005,
                outcome: "complete".into(),
            }),
            next_resync_at: Some(1_700_003_600),
            interfaces: vec![LiveInterface {
                name: "cust0".into(),
                index: 7,
                up: true,
            }],
            packets: 9,
            malformed: 1,
            counters: Default::default(),
            listed: None,
        }
    }

    /// The listener at `dir/state/follow.sock`, and a stand-in for the
    /// loop answering from `core` and [`state`].
    fn serve_core(dir: &Path) -> PathBuf {
        let path = dir.join("state").join(SOCKET_NAME);
        let listener = bind(&path).unwrap();
        let (tx, mut rx) = mpsc::channel(ASK_QUEUE);
        tokio::spawn(serve(listener, tx));
        let start = Instant::now();
        let core = core(start);
        let wall = WallClock::new(start, UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        tokio::spawn(async move {
            while let Some(a) = rx.recv().await {
                answer(&core, state(), wall, a);
            }
        });
        path
    }

    /// Send `request` as is; the answer's text.
    async fn raw(path: &Path, request: &[u8]) -> String {
        let mut s = UnixStream::connect(path).await.unwrap();
        s.write_all(request).await.unwrap();
        let mut out = String::new();
        tokio::time::timeout(WAIT, s.read_to_string(&mut out))
            .await
            .unwrap()
            .unwrap();
        out
    }

    #[tokio::test]
    async fn the_listener_answers_from_the_loop() {
        let dir = tempfile::tempdir().unwrap();
        let path = serve_core(dir.path());
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);

        let (st, routes) = ask(&path, &LiveRequest::default(), WAIT).await.unwrap();
        assert_eq!(
            st,
            LiveState {
                listed: Some(2),
                ..state()
            }
        );
        assert_eq!(
            routes,
            vec![
                LiveRoute {
                    prefix: "2001:db8:8000:100::/56".parse().unwrap(),
                    via: "fe80::2".parse().unwrap(),
                    dev: "cust0".into(),
                    expires_at: Some(1_700_000_000 + 3610),
                    state: RouteState::Installed.as_str().into(),
                    snooped: true,
                    seen_at: Some(1_700_000_010),
                    client: Some("00030001020000000102".into()),
                    server: Some("00030001020000000909".into()),
                },
                LiveRoute {
                    prefix: "2001:db8:8000:200::/56".parse().unwrap(),
                    via: "fe80::3".parse().unwrap(),
                    dev: "cust1".into(),
                    expires_at: Some(1_700_000_000 + 3620),
                    state: "installed".into(),
                    snooped: true,
                    seen_at: Some(1_700_000_020),
                    client: Some("00030001020000000103".into()),
                    server: Some("00030001020000000909".into()),
                },
            ]
        );

        // The filters, and no routes.
        let only = |req: LiveRequest| {
            let path = path.clone();
            async move {
                let (_, r) = ask(&path, &req, WAIT).await.unwrap();
                r.into_iter()
                    .map(|r| r.prefix.to_string())
                    .collect::<Vec<_>>()
            }
        };
        let req = LiveRequest {
            client: Some("00:03:00:01:02:00:00:00:01:03".into()),
            ..LiveRequest::default()
        };
        assert_eq!(only(req).await, ["2001:db8:8000:200::/56"]);
        let req = LiveRequest {
            interface: Some("cust0".into()),
            prefix: Some("2001:db8:8000::/40".parse().unwrap()),
            ..LiveRequest::default()
        };
        assert_eq!(only(req).await, ["2001:db8:8000:100::/56"]);
        let req = LiveRequest {
            no_routes: true,
            ..LiveRequest::default()
        };
        let (st, r) = ask(&path, &req, WAIT).await.unwrap();
        assert_eq!((st.listed, r.len()), (Some(0), 0));

        // Refusals: one line, then the end.
        let req = LiveRequest {
            client: Some("0x1g".into()),
            ..LiveRequest::default()
        };
        let e = ask(&path, &req, WAIT).await.unwrap_err();
        assert!(
            matches!(&e, LiveError::Refused(m) if m.starts_with("bad client DUID")),
            "{e}"
        );
        let out = raw(&path, b"not json\n").await;
        assert!(out.starts_with("{\"error\":\"bad request: "), "{out}");
        assert_eq!(out.lines().count(), 1);
        let out = raw(&path, &[b' '; MAX_REQUEST + 10]).await;
        assert_eq!(out, "{\"error\":\"request longer than 4096 octets\"}\n");
        // A request ended by the end of stream, not a newline, is served.
        let mut s = UnixStream::connect(&path).await.unwrap();
        s.write_all(b"{\"no_routes\": true}").await.unwrap();
        s.shutdown().await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        assert!(out.contains("\"listed\":0"), "{out}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_client_is_refused_after_5_s() {
        let dir = tempfile::tempdir().unwrap();
        let path = serve_core(dir.path());
        let mut s = UnixStream::connect(&path).await.unwrap();
        let mut out = String::new();
        tokio::time::timeout(Duration::from_secs(6), s.read_to_string(&mut out))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(out, "{\"error\":\"no request line within 5s\"}\n");
    }

    #[tokio::test]
    async fn the_socket_goes_with_the_service() {
        let dir = tempfile::tempdir().unwrap();
        // A stale socket (its follow died) is replaced.
        let path = dir.path().join(SOCKET_NAME);
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let (socket, rx) = open(dir.path()).unwrap();
        assert!(path.exists());
        drop(rx);
        drop(socket);
        assert!(!path.exists());
        // Something else at the name is left alone: no live view.
        std::fs::write(&path, "not a socket").unwrap();
        assert!(open(dir.path()).is_none());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "not a socket");
    }

    #[tokio::test]
    async fn a_gone_loop_answers_stopping() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SOCKET_NAME);
        let listener = bind(&path).unwrap();
        let (tx, mut rx) = mpsc::channel(ASK_QUEUE);
        tokio::spawn(serve(listener, tx));
        // The loop takes the request and drops it unanswered.
        tokio::spawn(async move { while rx.recv().await.is_some() {} });
        let e = ask(&path, &LiveRequest::default(), WAIT).await.unwrap_err();
        assert!(
            matches!(&e, LiveError::Refused(m) if m.contains("stopping")),
            "{e}"
        );
    }

    #[test]
    fn wall_clock_seconds() {
        let start = Instant::now();
        let w = WallClock::new(start, UNIX_EPOCH + Duration::from_secs(1000));
        assert_eq!(w.unix(start), 1000);
        assert_eq!(w.unix(start + Duration::from_millis(2500)), 1002);
        assert_eq!(
            w.unix(start + Duration::from_secs(u64::from(u32::MAX))),
            1000 + u64::from(u32::MAX)
        );
        if let Some(before) = start.checked_sub(Duration::from_secs(2000)) {
            assert_eq!(w.unix(before), 0);
        }
    }
}
