//! follow's live view, for `pdrestore status`: a read-only Unix socket.
//!
//! `pdrestore follow` listens on `state_directory/follow.sock` (mode
//! 0600, in the service's 0700 state directory: root only). A client
//! connects, writes one request line (JSON, [`LiveRequest`], at most
//! [`MAX_REQUEST`] octets), and reads JSON lines back: one [`LiveState`],
//! then one [`LiveRoute`] per followed prefix that matches the request,
//! then end of stream. Nothing a client sends changes the service: the
//! request only narrows what is listed. The service answers from its
//! event loop, between two batches of snooped messages; the routes are
//! copied there and written out by a task of their own, so a slow reader
//! never holds the loop.
//!
//! Why a socket and not a state file: a file kept current would be
//! rewritten on every renewal storm (1M prefixes: tens of MB a write, on
//! a router's flash); the socket costs nothing until asked.
//!
//! # The exchange
//! - The request: one line of JSON ([`LiveRequest`], every field
//!   optional: `{}` asks for everything), ended by `\n` (or by the
//!   client's end of stream), within 5 s of connecting. The `client`
//!   filter is a DUID in hex, plain or colon-separated.
//! - The answer: one line of JSON per value, each ended by `\n`: the
//!   [`LiveState`] (its `listed` says how many route lines follow), then
//!   that many [`LiveRoute`]s in prefix order (none with `no_routes`),
//!   then the end of the stream.
//! - A request that cannot be served (too long, not JSON, a bad DUID,
//!   too many clients at once, the service stopping) gets a single line
//!   `{"error": "..."}` instead, then the end of the stream.
//!
//! [`ask`] is the client's side.

use ipnet::Ipv6Net;
use serde::{Deserialize, Serialize};
use std::io;
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// The socket's file name in the state directory.
pub const SOCKET_NAME: &str = "follow.sock";

/// The longest request line accepted, in octets.
pub const MAX_REQUEST: usize = 4096;

/// The longest answer line [`ask`] reads, in octets (the state line with
/// thousands of interfaces stays far below).
pub const MAX_ANSWER_LINE: usize = 4 << 20;

/// What a client asks for: the followed prefixes that match every filter
/// given (none: all of them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveRequest {
    /// Prefixes inside this one (or equal to it).
    #[serde(default)]
    pub prefix: Option<Ipv6Net>,
    /// The client's DUID, hex (matched exactly where the service knows the
    /// DUID, else by its fingerprint).
    #[serde(default)]
    pub client: Option<String>,
    /// Routes out of this interface.
    #[serde(default)]
    pub interface: Option<String>,
    /// List no routes, only the state (`status --summary`).
    #[serde(default)]
    pub no_routes: bool,
}

/// The service as a whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveState {
    /// The service's process.
    pub pid: u32,
    /// When it started (seconds since the Unix epoch).
    pub started_at: u64,
    /// The start-up recovery has ended (systemd was told READY=1).
    pub ready: bool,
    /// A resync (or the start-up recovery) is running.
    pub resyncing: bool,
    /// Prefixes followed.
    pub followed: usize,
    /// Prefixes left to a route that is not ours.
    pub foreign: usize,
    /// RELEASE/DECLINE messages waiting for the server's REPLY.
    pub pending_releases: usize,
    /// The last resync that ended (the start-up recovery is the first).
    pub last_resync: Option<LiveResync>,
    /// When the next resync is due (seconds since the Unix epoch).
    pub next_resync_at: Option<u64>,
    /// The interfaces snooped, with their state.
    pub interfaces: Vec<LiveInterface>,
    /// DHCPv6 packets captured since start.
    pub packets: u64,
    /// Captured packets that could not be parsed.
    pub malformed: u64,
    /// The core's counters since start.
    pub counters: crate::follow::Counters,
    /// How many [`LiveRoute`] lines follow this one (0 with
    /// `no_routes`); `None` from a service that does not say, in which
    /// case a cut answer cannot be told from a whole one.
    #[serde(default)]
    pub listed: Option<usize>,
}

/// A resync's end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveResync {
    /// When it ended (seconds since the Unix epoch).
    pub at: u64,
    /// `complete`, `partial` or `failed`.
    pub outcome: String,
}

/// A client-facing interface the service knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveInterface {
    /// Its name.
    pub name: String,
    /// Its index.
    pub index: u32,
    /// Up.
    pub up: bool,
}

/// One followed prefix, as the service knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveRoute {
    /// The delegated prefix.
    pub prefix: Ipv6Net,
    /// The next hop (the client).
    pub via: Ipv6Addr,
    /// The interface.
    pub dev: String,
    /// When the lease ends (seconds since the Unix epoch; `None`: never).
    pub expires_at: Option<u64>,
    /// `installed`; `link-down` (dropped with its interface, back when it
    /// is up); `deleted` (deleted by someone else, being looked at);
    /// `inspecting` (its add met a route, whose is being read).
    pub state: String,
    /// Learned or confirmed by a snooped REPLY.
    pub snooped: bool,
    /// The last client transaction snooping saw (seconds since the Unix
    /// epoch).
    pub seen_at: Option<u64>,
    /// The client's DUID, hex, when the service knows it.
    pub client: Option<String>,
    /// The server's DUID, hex, of the REPLY snooping saw.
    pub server: Option<String>,
}

/// The answer to a request that cannot be served: `{"error": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveRefusal {
    /// Why.
    pub error: String,
}

/// Why [`ask`] got no answer.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// No `pdrestore follow` listens there: the socket file is absent, or
    /// nothing accepts on it (ECONNREFUSED: the socket of a follow that
    /// died without removing it).
    #[error("pdrestore follow is not running (nothing listens on {})", path.display())]
    NotRunning {
        /// The socket's path.
        path: PathBuf,
    },
    /// The socket could not be used (not root: permission denied; ...).
    #[error("{}: {source}", path.display())]
    Io {
        /// The socket's path.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: io::Error,
    },
    /// A step (connecting, writing the request, reading a line) waited
    /// longer than the timeout.
    #[error("{}: no answer within {}", path.display(), humantime::format_duration(*timeout))]
    Timeout {
        /// The socket's path.
        path: PathBuf,
        /// The timeout.
        timeout: Duration,
    },
    /// The service refused the request (its `{"error": ...}` answer).
    #[error("pdrestore follow refused the request: {0}")]
    Refused(String),
    /// An answer line that is not what the protocol says, or an answer
    /// cut short.
    #[error("{}: line {line} of the answer: {message}", path.display())]
    Protocol {
        /// The socket's path.
        path: PathBuf,
        /// The line (1: the state).
        line: usize,
        /// What is wrong with it.
        message: String,
    },
}

impl LiveError {
    /// The socket exists but this user may not use it (the live view is
    /// root's).
    pub fn is_permission_denied(&self) -> bool {
        matches!(self, LiveError::Io { source, .. } if source.kind() == io::ErrorKind::PermissionDenied)
    }
}

/// Read one line into `buf` (cleared first, its `\n` left out): false at
/// an end of stream with nothing before it; an `InvalidData` error past
/// `max` octets with no `\n`. A last line with no `\n` counts.
pub(crate) async fn read_line<R: AsyncBufRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<bool> {
    buf.clear();
    let n = (&mut *r)
        .take(max as u64 + 1)
        .read_until(b'\n', buf)
        .await?;
    if buf.last() == Some(&b'\n') {
        buf.pop();
    } else if buf.len() > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a line longer than {max} octets"),
        ));
    }
    Ok(n > 0)
}

/// [`read_line`] of an answer line within `timeout`: `Err(None)` when it
/// did not come in time.
async fn next_line<R: AsyncBufRead + Unpin>(
    rd: &mut R,
    buf: &mut Vec<u8>,
    timeout: Duration,
) -> Result<bool, Option<io::Error>> {
    match tokio::time::timeout(timeout, read_line(rd, buf, MAX_ANSWER_LINE)).await {
        Err(_) => Err(None),
        Ok(Ok(more)) => Ok(more),
        Ok(Err(e)) => Err(Some(e)),
    }
}

/// Ask the `pdrestore follow` listening at `path` (`state_directory/`
/// [`SOCKET_NAME`]): its state, and the routes that match `req` (none
/// with `no_routes`), in prefix order. `timeout` bounds each step:
/// connecting, writing the request, and each line read (a long listing
/// takes as long as it takes while lines come).
pub async fn ask(
    path: &Path,
    req: &LiveRequest,
    timeout: Duration,
) -> Result<(LiveState, Vec<LiveRoute>), LiveError> {
    let io_err = |source: io::Error| LiveError::Io {
        path: path.to_owned(),
        source,
    };
    let protocol = |line: usize, message: String| LiveError::Protocol {
        path: path.to_owned(),
        line,
        message,
    };
    let late = || LiveError::Timeout {
        path: path.to_owned(),
        timeout,
    };
    let stream = match tokio::time::timeout(timeout, UnixStream::connect(path)).await {
        Err(_) => return Err(late()),
        Ok(Ok(s)) => s,
        Ok(Err(e))
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Err(LiveError::NotRunning {
                path: path.to_owned(),
            })
        }
        Ok(Err(e)) => return Err(io_err(e)),
    };
    let (rd, mut wr) = stream.into_split();
    let mut line = serde_json::to_vec(req).map_err(|e| io_err(io::Error::other(e)))?;
    line.push(b'\n');
    if line.len() > MAX_REQUEST {
        return Err(io_err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("a request longer than {MAX_REQUEST} octets"),
        )));
    }
    match tokio::time::timeout(timeout, wr.write_all(&line)).await {
        Err(_) => return Err(late()),
        Ok(r) => r.map_err(io_err)?,
    }
    let mut rd = BufReader::new(rd);
    let mut buf = Vec::new();
    let fail = |line: usize, e: Option<io::Error>| match e {
        None => late(),
        Some(e) if e.kind() == io::ErrorKind::InvalidData => protocol(line, e.to_string()),
        Some(e) => io_err(e),
    };
    if !next_line(&mut rd, &mut buf, timeout)
        .await
        .map_err(|e| fail(1, e))?
    {
        return Err(protocol(
            1,
            "no answer: the service closed the connection".into(),
        ));
    }
    if let Ok(r) = serde_json::from_slice::<LiveRefusal>(&buf) {
        return Err(LiveError::Refused(r.error));
    }
    let state: LiveState =
        serde_json::from_slice(&buf).map_err(|e| protocol(1, format!("not a state: {e}")))?;
    let mut routes = Vec::with_capacity(state.listed.unwrap_or(0).min(1 << 20));
    loop {
        let n = routes.len() + 2;
        if !next_line(&mut rd, &mut buf, timeout)
            .await
            .map_err(|e| fail(n, e))?
        {
            break;
        }
        match serde_json::from_slice::<LiveRoute>(&buf) {
            Ok(r) => routes.push(r),
            Err(e) => {
                if let Ok(r) = serde_json::from_slice::<LiveRefusal>(&buf) {
                    return Err(LiveError::Refused(r.error));
                }
                return Err(protocol(n, format!("not a route: {e}")));
            }
        }
    }
    match state.listed {
        Some(n) if n != routes.len() => Err(protocol(
            routes.len() + 2,
            format!("the answer ended after {} of {n} routes", routes.len()),
        )),
        _ => Ok((state, routes)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::UnixListener;

    const WAIT: Duration = Duration::from_secs(5);

    fn state_line(listed: Option<usize>) -> String {
        let s = LiveState {
            pid: 1,
            started_at: 2,
            ready: false,
            resyncing: true,
            followed: 1,
            foreign: 0,
            pending_releases: 0,
            last_resync: None,
            next_resync_at: None,
            interfaces: vec![],
            packets: 0,
            malformed: 0,
            counters: Default::default(),
            listed,
        };
        serde_json::to_string(&s).unwrap() + "\n"
    }

    fn route_line() -> String {
        let r = LiveRoute {
            prefix: "2001:db8:8000:100::/56".parse().unwrap(),
            via: "fe80::2".parse().unwrap(),
            dev: "cust0".into(),
            expires_at: None,
            state: "installed".into(),
            snooped: false,
            seen_at: None,
            client: None,
            server: None,
        };
        serde_json::to_string(&r).unwrap() + "\n"
    }

    /// A server at `path` that reads the request line, checks it is the
    /// JSON of a request, and answers `answer` (`None`: never).
    fn fake(path: &Path, answer: Option<String>) {
        let l = UnixListener::bind(path).unwrap();
        tokio::spawn(async move {
            loop {
                let (s, _) = l.accept().await.unwrap();
                let answer = answer.clone();
                tokio::spawn(async move {
                    let (rd, mut wr) = s.into_split();
                    let mut rd = BufReader::new(rd);
                    let mut buf = Vec::new();
                    assert!(read_line(&mut rd, &mut buf, MAX_REQUEST).await.unwrap());
                    serde_json::from_slice::<LiveRequest>(&buf).unwrap();
                    match answer {
                        Some(a) => {
                            let _ = wr.write_all(a.as_bytes()).await;
                        }
                        None => std::future::pending().await,
                    }
                });
            }
        });
    }

    async fn ask_fake(answer: Option<String>) -> Result<(LiveState, Vec<LiveRoute>), LiveError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SOCKET_NAME);
        fake(&path, answer);
        ask(&path, &LiveRequest::default(), Duration::from_millis(300)).await
    }

    #[tokio::test]
    async fn the_client_reads_the_state_and_the_routes() {
        let (s, r) = ask_fake(Some(state_line(Some(2)) + &route_line() + &route_line()))
            .await
            .unwrap();
        assert_eq!((s.pid, s.listed, r.len()), (1, Some(2), 2));
        assert_eq!(r[0].dev, "cust0");
        // A service that does not say how many: what came.
        let old = state_line(None).replace(",\"listed\":null", "");
        assert!(!old.contains("listed"));
        let (s, r) = ask_fake(Some(old + &route_line())).await.unwrap();
        assert_eq!((s.listed, r.len()), (None, 1));
        // The last line may lack its newline.
        let (_, r) = ask_fake(Some(state_line(Some(1)) + route_line().trim_end()))
            .await
            .unwrap();
        assert_eq!(r.len(), 1);
    }

    #[tokio::test]
    async fn the_clients_errors() {
        let e = ask_fake(Some("{\"error\":\"busy\"}\n".into()))
            .await
            .unwrap_err();
        assert!(matches!(&e, LiveError::Refused(m) if m == "busy"), "{e}");
        let e = ask_fake(Some(state_line(Some(2)) + "garbage\n"))
            .await
            .unwrap_err();
        assert!(matches!(e, LiveError::Protocol { line: 2, .. }), "{e}");
        let e = ask_fake(Some("{\"pid\": 1}\n".into())).await.unwrap_err();
        assert!(matches!(e, LiveError::Protocol { line: 1, .. }), "{e}");
        let e = ask_fake(Some(String::new())).await.unwrap_err();
        assert!(matches!(e, LiveError::Protocol { line: 1, .. }), "{e}");
        // Cut short: 1 route of 2.
        let e = ask_fake(Some(state_line(Some(2)) + &route_line()))
            .await
            .unwrap_err();
        assert!(
            matches!(&e, LiveError::Protocol { line: 3, message, .. } if message.contains("1 of 2")),
            "{e}"
        );
        // An error after the state (not sent by follow, but understood).
        let e = ask_fake(Some(state_line(Some(2)) + "{\"error\":\"x\"}\n"))
            .await
            .unwrap_err();
        assert!(matches!(&e, LiveError::Refused(m) if m == "x"), "{e}");
        let e = ask_fake(None).await.unwrap_err();
        assert!(matches!(e, LiveError::Timeout { .. }), "{e}");
        // A line past the limit.
        let long = "x".repeat(MAX_ANSWER_LINE + 1);
        let e = ask_fake(Some(long)).await.unwrap_err();
        assert!(matches!(e, LiveError::Protocol { line: 1, .. }), "{e}");
    }

    #[tokio::test]
    async fn no_follow_is_not_running() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SOCKET_NAME);
        let e = ask(&path, &LiveRequest::default(), WAIT).await.unwrap_err();
        assert!(matches!(e, LiveError::NotRunning { .. }), "{e}");
        // The socket of a follow that died: refused, not running.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let e = ask(&path, &LiveRequest::default(), WAIT).await.unwrap_err();
        assert!(matches!(e, LiveError::NotRunning { .. }), "{e}");
        // Something that is no socket: another error.
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        let e = ask(&file, &LiveRequest::default(), WAIT).await.unwrap_err();
        assert!(
            matches!(e, LiveError::NotRunning { .. } | LiveError::Io { .. }),
            "{e}"
        );
        // A request too long to send.
        let req = LiveRequest {
            interface: Some("x".repeat(MAX_REQUEST)),
            ..LiveRequest::default()
        };
        fake(&dir.path().join("f.sock"), Some(state_line(Some(0))));
        let e = ask(&dir.path().join("f.sock"), &req, WAIT)
            .await
            .unwrap_err();
        assert!(
            matches!(&e, LiveError::Io { source, .. } if source.kind() == io::ErrorKind::InvalidInput),
            "{e}"
        );
    }
}
