//! Issue 20, cases 6 and 7, from the operator's side: the real binary,
//! lab servers on 127.0.0.1, dry runs. No root needed.
//!
//! - Case 6, bounded boot time: a server that accepts the query and never
//!   answers costs two first-answer timeouts and is named `no-answer`; the
//!   worst case `check-config` prints bounds the run, and the shipped
//!   units' `TimeoutStartSec` covers the defaults' worst case.
//! - Case 7, logs an operator can use: a server still unreachable at boot
//!   is warned about within `connect_timeout`; under systemd
//!   (`JOURNAL_STREAM`) lines carry their syslog priority and no
//!   timestamp; `RUST_LOG=debug` tells the requestor's steps; a closed
//!   standard output ends every subcommand quietly with 74.

use pdrestore::server::synth::{Synth, SynthConfig};
use pdrestore::server::{self, store::unix_now, ServerConfig, StoreBuilder};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

const RELAY: &str = "0003000102005e000002";

fn pdrestore() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pdrestore"))
}

/// A lab server with 20 synthetic bindings of our relay, on its own runtime.
struct Lab {
    _rt: tokio::runtime::Runtime,
    addr: SocketAddr,
}

fn lab_server() -> Lab {
    let mut b = StoreBuilder::new();
    for r in Synth::new(SynthConfig {
        count: 20,
        relay_id: RELAY.parse().unwrap(),
        now: unix_now(),
        ..SynthConfig::default()
    })
    .unwrap()
    {
        b.push(&r).unwrap();
    }
    let store = Arc::new(b.build(&[]));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let addr = rt.block_on(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let h = server::spawn(l, store, ServerConfig::default()).unwrap();
        let addr = h.local_addr();
        std::mem::forget(h); // serves until the runtime is dropped
        addr
    });
    Lab { _rt: rt, addr }
}

/// A server that accepts, reads the query and never writes: its
/// connections are counted and held open.
fn silent_server() -> (SocketAddr, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let conns = Arc::new(AtomicUsize::new(0));
    let n = conns.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            n.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
            });
        }
    });
    (addr, conns)
}

/// An address whose SYNs go unanswered, as a black-holed server's: a
/// listener with a backlog of 0 whose one place is taken (Linux drops the
/// SYNs that find the accept queue full). Keep what it returns alive.
fn black_hole() -> (SocketAddr, socket2::Socket, TcpStream) {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    s.listen(0).unwrap();
    let addr = s.local_addr().unwrap().as_socket().unwrap();
    let filler = TcpStream::connect(addr).unwrap();
    (addr, s, filler)
}

/// An address where nothing listens: connects are refused at once.
fn closed_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A configuration with the defaults but for `extra` (top-level keys), our
/// relay DUID and a state directory in `dir`, asking `servers`.
fn config(dir: &Path, servers: &[SocketAddr], extra: &str) -> PathBuf {
    let mut t = format!(
        "relay_duid = \"{RELAY}\"\nstate_directory = {:?}\n{extra}\n",
        dir.join("state")
    );
    for s in servers {
        t.push_str(&format!(
            "[[server]]\naddress = \"{}\"\nport = {}\n",
            s.ip(),
            s.port()
        ));
    }
    t.push_str("[routes]\nallowed_prefixes = [\"2001:db8:8000::/33\"]\n");
    let path = dir.join("pdrestore.toml");
    std::fs::write(&path, t).unwrap();
    path
}

/// The worst case of one run as `check-config` prints it.
fn printed_worst_case(config: &Path) -> Duration {
    let out = pdrestore()
        .args(["check-config", "--config"])
        .arg(config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("# worst case of one run"))
        .unwrap_or_else(|| panic!("check-config prints no worst case:\n{text}"));
    let (_, rest) = line.split_once(": ").unwrap();
    let (figure, _) = rest.split_once(" (").unwrap();
    humantime::parse_duration(figure).unwrap_or_else(|e| panic!("{line}: {e}"))
}

/// A systemd time span as units write it (`35min`, `1h 30min`, `900`).
fn systemd_span(v: &str) -> Duration {
    let v = v.trim();
    match v.parse::<u64>() {
        Ok(s) => Duration::from_secs(s),
        Err(_) => humantime::parse_duration(v).unwrap_or_else(|e| panic!("{v:?}: {e}")),
    }
}

/// Each shipped service unit and its `TimeoutStartSec`.
fn units_timeout_start() -> Vec<(String, Duration)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd");
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_none_or(|x| x != "service") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let v = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("TimeoutStartSec="))
            .unwrap_or_else(|| panic!("{name}: no TimeoutStartSec"));
        out.push((name, systemd_span(v)));
    }
    out.sort();
    out
}

/// A child whose standard error is read, line by line with the time it
/// arrived, on a thread of its own.
struct Running {
    child: Child,
    start: Instant,
    lines: mpsc::Receiver<(Duration, String)>,
}

impl Running {
    fn spawn(cmd: &mut Command) -> Running {
        let start = Instant::now();
        let mut child = cmd.stderr(Stdio::piped()).spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        Running::reading(child, start, stderr)
    }

    fn reading(child: Child, start: Instant, stderr: impl Read + Send + 'static) -> Running {
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stderr).lines() {
                let Ok(l) = l else { return };
                if tx.send((start.elapsed(), l)).is_err() {
                    return;
                }
            }
        });
        Running {
            child,
            start,
            lines,
        }
    }

    /// The first line with `what` before `limit` (since the start), and when.
    fn wait_for(&self, what: &str, limit: Duration) -> Option<(Duration, String)> {
        loop {
            let left = limit.checked_sub(self.start.elapsed())?;
            match self.lines.recv_timeout(left) {
                Ok((at, l)) if l.contains(what) => return Some((at, l)),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    /// Its exit status, if it ends within `limit` (since the start); else
    /// it is killed and `None`.
    fn end_within(&mut self, limit: Duration) -> Option<ExitStatus> {
        while self.start.elapsed() < limit {
            if let Some(s) = self.child.try_wait().unwrap() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }

    /// Every line of standard error, once it has ended.
    fn all_lines(&self) -> Vec<String> {
        let mut v = Vec::new();
        while let Ok((_, l)) = self.lines.recv_timeout(Duration::from_secs(5)) {
            v.push(l);
        }
        v
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Case 6. A server that accepts the query and never answers, with the
/// default settings: the run ends after two first-answer timeouts (not
/// four 300 s data timeouts), within the worst case `check-config`
/// prints; the summary names the outcome `no-answer`; the query was
/// tried twice. And the defaults' worst case fits every shipped unit's
/// `TimeoutStartSec`.
#[test]
fn case6_a_server_that_never_answers_is_bounded_and_named() {
    let (silent, conns) = silent_server();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &[silent], "");
    let out = dir.path().join("summary.json");
    let mut run = Running::spawn(
        pdrestore()
            .args(["recover", "--dry-run", "--json", "--config"])
            .arg(&cfg)
            .stdout(std::fs::File::create(&out).unwrap()),
    );
    // Today's main waits 4 x 300 s here; two tries of 30 s are the bound.
    let status = run.end_within(Duration::from_secs(120));
    let took = run.start.elapsed();
    let log = run.all_lines().join("\n");
    let status = status.unwrap_or_else(|| panic!("still running after {took:?}:\n{log}"));
    assert_eq!(status.code(), Some(2), "nothing restored: {log}");
    assert!(took >= Duration::from_secs(60), "two 30 s waits: {took:?}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let server = &summary["servers"][0];
    assert_eq!(server["status_code"], "no-answer", "{summary}");
    assert_eq!(server["status"], "no answer to the query");
    assert_eq!(server["queries"][0]["outcome_code"], "no-answer");
    assert!(server["queries"][0]["attempts"].as_u64().unwrap() <= 2);
    assert!(conns.load(Ordering::SeqCst) <= 2, "tried at most twice");
    // Within the worst case check-config prints for this configuration
    // (the defaults), which every unit's TimeoutStartSec covers.
    let worst = printed_worst_case(&cfg);
    assert!(took <= worst, "{took:?} > {worst:?}");
    let units = units_timeout_start();
    assert_eq!(units.len(), 3, "{units:?}");
    for (unit, start) in units {
        assert!(
            start >= worst,
            "{unit}: TimeoutStartSec {start:?} is under the defaults' worst case {worst:?}"
        );
    }
}

/// Case 7. A server that drops our SYNs, with the default settings: a
/// warning names it at the first connect timeout (5 s), not after a
/// minute or at the end of the run.
#[test]
fn case7_an_unreachable_server_is_warned_about_within_the_connect_timeout() {
    let (hole, _listener, _filler) = black_hole();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &[hole], "");
    let run = Running::spawn(
        pdrestore()
            .args(["recover", "--dry-run", "--config"])
            .arg(&cfg)
            .env("RUST_LOG", "info")
            .env_remove("JOURNAL_STREAM")
            .stdout(Stdio::null()),
    );
    let seen = run.wait_for("unreachable", Duration::from_secs(15));
    let (at, line) = seen.unwrap_or_else(|| panic!("no warning within 15 s"));
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains(&hole.to_string()), "{line}");
    assert!(line.contains("connect timed out"), "{line}");
    assert!(line.contains("startup_deadline"), "{line}");
    assert!(
        at >= Duration::from_millis(4500) && at < Duration::from_secs(8),
        "at the first connect timeout (5 s): {at:?}"
    );
}

/// Case 7. Under systemd, standard error is the journal's stream, named by
/// `JOURNAL_STREAM`: each line starts with its syslog priority and has no
/// timestamp; with `RUST_LOG=debug` the log tells every step. A server
/// that refuses connections until `startup_deadline` is over gives the
/// warnings; a lab server, the steps of a query that is answered.
#[test]
fn case7_journal_priorities_no_timestamps_and_the_debug_story() {
    let lab = lab_server();
    let refusing = closed_port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &[lab.addr, refusing],
        "startup_deadline = \"2s\"\nretries = 1\nretry_initial_delay = \"100ms\"\nretry_max_delay = \"200ms\"",
    );
    let journal_run = |journal_stream: Option<&str>| {
        let (reader, writer) = std::io::pipe().unwrap();
        let stream = {
            use std::os::fd::AsFd;
            use std::os::unix::fs::MetadataExt;
            let fd = writer.as_fd().try_clone_to_owned().unwrap();
            let m = std::fs::File::from(fd).metadata().unwrap();
            format!("{}:{}", m.dev(), m.ino())
        };
        let mut cmd = pdrestore();
        cmd.args(["recover", "--dry-run", "--config"])
            .arg(&cfg)
            .env("RUST_LOG", "debug")
            .env("JOURNAL_STREAM", journal_stream.unwrap_or(&stream))
            .stdout(Stdio::null())
            .stderr(writer);
        let start = Instant::now();
        let child = cmd.spawn().unwrap();
        drop(cmd); // our copy of the pipe's write end
        let mut run = Running::reading(child, start, reader);
        let status = run.end_within(Duration::from_secs(30));
        // One server failed; the other's bindings find no interface here.
        let code = status.and_then(|s| s.code());
        assert!(matches!(code, Some(1 | 2)), "{code:?}");
        run.all_lines()
    };
    let lines = journal_run(None);
    let text = lines.join("\n");
    for l in &lines {
        let p = &l[..3.min(l.len())];
        assert!(
            ["<3>", "<4>", "<6>", "<7>"].contains(&p),
            "no priority: {l}"
        );
        let level = match p {
            "<3>" => "ERROR",
            "<4>" => " WARN",
            "<6>" => " INFO",
            _ => "DEBUG",
        };
        assert!(l[3..].starts_with(level), "{l}");
        assert!(
            !l.contains("Z ") && !l[3..].starts_with(" 20"),
            "a timestamp: {l}"
        );
    }
    let warnings: Vec<&String> = lines.iter().filter(|l| l.starts_with("<4>")).collect();
    assert!(
        warnings.iter().any(|l| l.contains("unreachable")
            && l.contains("connection refused")
            && l.contains(&refusing.to_string())),
        "{text}"
    );
    // The steps of the run and of the requestor, at debug level.
    for step in [
        "recover: starting",
        "connecting",
        "connected",
        "connect failed",
        "query sent",
        "first answer",
        "query done",
        "waiting before the next try",
        "trying the query again",
        "handing the queued routes to the kernel",
        "every server done",
        "recover: done",
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("<7>") && l.contains(step)),
            "no debug line {step:?}:\n{text}"
        );
    }
    // A JOURNAL_STREAM that names another file (inherited by a child that
    // writes elsewhere): the usual lines, with their timestamp.
    let lines = journal_run(Some("0:0"));
    assert!(!lines.is_empty());
    for l in &lines {
        assert!(!l.starts_with('<'), "{l}");
        assert!(l.starts_with("20"), "a timestamp first: {l}");
    }
}

/// Case 7. A closed standard output (`recover --dry-run --json | head -c
/// 10` once `head` is gone) ends every subcommand that prints quietly,
/// with 74 and no panic.
#[test]
fn case7_a_closed_stdout_ends_every_subcommand_quietly_with_74() {
    let lab = lab_server();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &[lab.addr], "");
    let raw =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/kea/02_relayid_B.response.bin");
    let cfg_s = cfg.to_str().unwrap();
    let server = lab.addr.to_string();
    let runs: [&[&str]; 6] = [
        &["recover", "--dry-run", "--json", "--config", cfg_s],
        &["recover", "--dry-run", "--config", cfg_s],
        &["check-config", "--config", cfg_s],
        &["duid", "--config", cfg_s],
        &["decode", raw.to_str().unwrap()],
        &["query", "--server", &server, "--relay-id", RELAY],
    ];
    for args in runs {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader); // nobody will read: every write fails with EPIPE
        let out = pdrestore()
            .args(args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(74), "{args:?}: {err}");
    }
    let _ = std::io::stdout().flush();
}
