//! `pdrestore lab-server` as a process: loading files, SIGTERM, errors.

mod common;

use common::*;
use pdrestore::proto::{MessageType, Query, StatusCode};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn exe() -> &'static str {
    env!("CARGO_BIN_EXE_pdrestore")
}

fn kea(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/kea")
        .join(name)
}

fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// Start the server and wait until it accepts connections.
async fn spawn(args: &[&str]) -> (Child, SocketAddr) {
    let addr = free_port();
    let child = Command::new(exe())
        .arg("lab-server")
        .arg("--listen")
        .arg(addr.to_string())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (child, addr)
}

/// SIGTERM by kill(2), not kill(1) (procps, missing from a minimal Debian).
fn sigterm(child: &Child) {
    // SAFETY: kill with the pid of our own child and a valid signal.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
}

fn wait_exit(mut child: Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("server did not exit");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synthetic_server_terminates_queries_on_sigterm() {
    let (child, addr) = spawn(&[
        "--synthetic",
        "500",
        "--relay-id",
        "00020000000901020304",
        "--fault",
        "delay-each=20ms,xid=2",
    ])
    .await;
    let msgs = ask(
        addr,
        query(1, Query::ByRelayId("00020000000901020304".parse().unwrap())),
    )
    .await;
    assert_eq!(bindings(&msgs).len(), 500);
    let mut c = Conn::connect(addr).await;
    c.send_query(&query(
        2,
        Query::ByRelayId("00020000000901020304".parse().unwrap()),
    ))
    .await;
    assert_eq!(
        c.recv().await.unwrap().msg_type,
        MessageType::LeasequeryReply
    );
    sigterm(&child);
    let msgs = c.collect(&[2]).await;
    let last = msgs.last().unwrap();
    assert_eq!(last.msg_type, MessageType::LeasequeryDone);
    assert_eq!(last.status, Some(StatusCode::QueryTerminated));
    assert!(c.closed_within(Duration::from_secs(5)).await);
    assert!(wait_exit(child).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_what_decode_json_printed() {
    // Record with `pdrestore decode --json`, serve the recording.
    let out = Command::new(exe())
        .args(["decode", "--json"])
        .arg(kea("23_pipelined_relayA_link_s2.response.bin"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let dir = std::env::temp_dir().join(format!("pdrestore-lab-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("recorded.jsonl");
    std::fs::write(&file, &out.stdout).unwrap();
    let recorded: Vec<pdrestore::proto::Binding> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| l.contains("\"kind\":\"binding\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(recorded.len(), 127);

    let (child, addr) = spawn(&["--bindings", file.to_str().unwrap()]).await;
    // Link 2001:db8:2::1 held 15 bindings in the recording (xid 0x202).
    let msgs = ask(
        addr,
        query(9, Query::ByLinkAddress).link_address(addr_of("2001:db8:2::1")),
    )
    .await;
    let got = bindings(&msgs);
    assert_eq!(got.len(), 15);
    for b in &got {
        let r = recorded
            .iter()
            .find(|r| r.lease == b.lease && r.client_duid == b.client_duid)
            .expect("served binding was recorded");
        assert_eq!(r.relay, b.relay);
        // Replayed as recorded: same CLT_TIME and lifetimes, give or take the
        // seconds since the server started.
        assert!(b.clt_time >= r.clt_time && b.clt_time <= r.clt_time + 20);
        assert!(b.valid_lifetime <= r.valid_lifetime && b.valid_lifetime + 20 >= r.valid_lifetime);
    }
    sigterm(&child);
    assert!(wait_exit(child).success());
    let _ = std::fs::remove_dir_all(&dir);
}

fn addr_of(s: &str) -> std::net::Ipv6Addr {
    s.parse().unwrap()
}

#[test]
fn bad_input_is_named() {
    let dir = std::env::temp_dir().join(format!("pdrestore-lab-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.jsonl");
    std::fs::write(
        &file,
        "{\"client_duid\":\"0003\",\"address\":\"2001:db8::1\",\"preferred_lifetime\":1,\"valid_lifetime\":2}\n{\"client_duid\":\"0003\",\"address\":\"nope\",\"preferred_lifetime\":1,\"valid_lifetime\":2}\n",
    )
    .unwrap();
    let out = Command::new(exe())
        .args(["lab-server", "--listen", "127.0.0.1:0", "--bindings"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(65));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:2:", file.display())),
        "stderr: {err}"
    );
    let out = Command::new(exe())
        .args(["lab-server", "--listen", "127.0.0.1:0", "--synthetic", "5"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--relay-id"));
    let faults = dir.join("faults.txt");
    std::fs::write(&faults, "# faults\nclose-after=3\n\nstall-after=x\n").unwrap();
    let out = Command::new(exe())
        .args(["lab-server", "--listen", "127.0.0.1:0", "--fault-file"])
        .arg(&faults)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(65));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:4:", faults.display())),
        "stderr: {err}"
    );
    let out = Command::new(exe())
        .args(["lab-server", "--fault", "explode=1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64), "usage error (EX_USAGE)");
    let _ = std::fs::remove_dir_all(&dir);
}
