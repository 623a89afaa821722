//! An independent decoder's word on our wire format: `pdrestore query` runs
//! against scripted peers on 127.0.0.1 (replaying Kea's captured replies
//! with our xids) and against the lab server (all five query types), tshark
//! captures the exchanges on loopback, and no frame may be malformed or carry
//! an expert error.
//!
//! Needs tshark and the right to capture on `lo` (root, or the wireshark
//! group): skipped with a `SKIPPED` line without them, a failure under CI
//! or with PDRESTORE_REQUIRE_TSHARK set (tests/support).

mod support;

use pdrestore::proto::frame::FrameIter;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn kea(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/data/kea/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

async fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len).await.ok()?;
    let mut m = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut m).await.ok()?;
    Some(m)
}

/// Answers each connection's query with `response`, xids rewritten to the query's.
async fn kea_peer(response: Vec<u8>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let response = response.clone();
            tokio::spawn(async move {
                let Some(q) = read_frame(&mut s).await else {
                    return;
                };
                let mut out = Vec::new();
                let mut done = Vec::new();
                for f in FrameIter::new(&response) {
                    let mut m = f.unwrap().message.to_vec();
                    m[1..4].copy_from_slice(&q[1..4]);
                    // A DONE goes in a segment of its own (see BARE_DONE).
                    let to = if m[0] == 16 { &mut done } else { &mut out };
                    to.extend_from_slice(&(m.len() as u16).to_be_bytes());
                    to.extend_from_slice(&m);
                }
                s.write_all(&out).await.unwrap();
                if !done.is_empty() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    s.write_all(&done).await.unwrap();
                }
                let mut b = [0u8; 64];
                while matches!(s.read(&mut b).await, Ok(n) if n > 0) {}
            });
        }
    });
    addr
}

/// tshark 4.0 (Debian 12) throws "Malformed Packet (Exception occurred)" on
/// a LEASEQUERY-DONE without options, a valid 4-octet message (RFC 5460
/// 5.2.2; Kea sends exactly that). The peer sends each DONE in a TCP segment
/// of its own, and frames holding nothing but such a DONE are excused.
const BARE_DONE: &str = "count(dhcpv6.bulk_leasequery.msgtype) == 1 && \
    dhcpv6.bulk_leasequery.msgtype == 16 && dhcpv6.bulk_leasequery.size == 4";

async fn lab_server() -> pdrestore::server::ServerHandle {
    use pdrestore::server::{self as lab, BindingStore, Fault, FaultAction, ServerConfig};
    let path = format!(
        "{}/tests/data/kea/bindings.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let records = lab::load::read_kea(std::path::Path::new(&path), lab::store::unix_now()).unwrap();
    let links = [
        "2001:db8:1::/64".parse().unwrap(),
        "2001:db8:2::/64".parse().unwrap(),
    ];
    let store = std::sync::Arc::new(BindingStore::from_records(&records, &links).unwrap());
    let mut cfg = ServerConfig::default().kea_mode();
    cfg.faults = vec![Fault::always(FaultAction::DelayEach(
        Duration::from_millis(1),
    ))];
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    lab::spawn(l, store, cfg).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tshark_finds_nothing_malformed() {
    if !support::need_tool("tshark", "tshark") {
        return;
    }
    // One peer per query type that Kea answered with bindings.
    let cases = [
        ("02_relayid_B", vec!["--relay-id", "0003000102005e000002"]),
        ("08_link_s1", vec!["--link-address", "2001:db8:1::1"]),
        ("16_clientid_3", vec!["--client-id", "00030001020000000003"]),
        (
            "05_relayid_unknown",
            vec!["--relay-id", "00030001020000000099"],
        ),
    ];
    // (what, server, query arguments, whether a DONE ends the answer)
    let mut runs: Vec<(String, SocketAddr, Vec<&str>, bool)> = Vec::new();
    for (case, query) in cases {
        let peer = kea_peer(kea(&format!("{case}.response.bin"))).await;
        runs.push((case.to_string(), peer, query, case != "05_relayid_unknown"));
    }
    // The lab server with Kea's bindings, one query of each type. Each
    // message is flushed on its own (delay-each), so a DONE has its own
    // segment as with the Kea peers (see BARE_DONE).
    let lab = lab_server().await;
    for query in [
        vec!["--relay-id", "0003000102005e000002"],
        vec!["--link-address", "2001:db8:2::1"],
        vec!["--remote-id", "4491:434d2d303030"],
        vec!["--address", "2001:db8:1::1003"],
        vec!["--client-id", "00030001020000000003"],
    ] {
        runs.push((format!("lab {query:?}"), lab.local_addr(), query, true));
    }
    let mut peers: Vec<SocketAddr> = runs.iter().map(|r| r.1).collect();
    peers.sort();
    peers.dedup();
    let dir = std::env::temp_dir().join(format!("pdrestore-tshark-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("query.pcapng");
    // A probe port, captured too: connections to it show when tshark
    // really sees packets ("Capturing on" comes a little before).
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let probe_addr = probe.local_addr().unwrap();
    std::thread::spawn(move || for _ in probe.incoming() {});
    let filter = peers
        .iter()
        .chain([&probe_addr])
        .map(|p| format!("tcp port {}", p.port()))
        .collect::<Vec<_>>()
        .join(" or ");
    // -P -l: a summary line per packet on stdout, while writing the file.
    let mut capture = Command::new("tshark")
        .args(["-i", "lo", "-P", "-l", "-f", &filter, "-w"])
        .arg(&pcap)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tshark starts");
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = capture.stdout.take().unwrap();
    std::thread::spawn(move || {
        for _ in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(());
        }
    });
    let seen = tokio::task::spawn_blocking(move || {
        let t0 = std::time::Instant::now();
        while t0.elapsed() < Duration::from_secs(30) {
            let _ = std::net::TcpStream::connect(probe_addr);
            if rx.recv_timeout(Duration::from_millis(200)).is_ok() {
                return true;
            }
        }
        false
    })
    .await
    .unwrap();
    if !seen {
        let _ = capture.kill();
        let _ = capture.wait();
        support::unmet(
            "tshark captured nothing on lo in 30 s (capturing needs root or the wireshark group)",
            std::env::var_os("PDRESTORE_REQUIRE_TSHARK").is_some(),
        );
        return;
    }

    for (case, peer, query, _) in &runs {
        let mut args = vec![
            "query".to_string(),
            "--server".into(),
            peer.to_string(),
            "--requestor-duid".into(),
            "000100012a2b2c2d020000009901".into(),
            "--json".into(),
        ];
        args.extend(query.iter().map(|s| s.to_string()));
        let out = tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_pdrestore"))
                .args(&args)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{case}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // SIGINT so that tshark finishes the file.
    // SAFETY: kill(2) on the pid of our own child.
    unsafe {
        libc::kill(capture.id() as i32, libc::SIGINT);
    }
    let _ = tokio::task::spawn_blocking(move || capture.wait()).await;

    let decode_as: Vec<String> = peers
        .iter()
        .flat_map(|p| {
            [
                "-d".to_string(),
                format!("tcp.port=={},dhcpv6.bulk_leasequery", p.port()),
            ]
        })
        .collect();
    let read = |filter: &str, fields: &[&str]| {
        let mut c = Command::new("tshark");
        c.arg("-r").arg(&pcap).args(&decode_as).args(["-Y", filter]);
        if !fields.is_empty() {
            c.args(["-T", "fields"]);
            for f in fields {
                c.args(["-e", f]);
            }
        }
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let bad = read(
        &format!("(_ws.malformed || _ws.expert.severity >= error) && !({BARE_DONE})"),
        &[],
    );
    assert!(bad.trim().is_empty(), "tshark objects:\n{bad}");
    // The one known false alarm, and only where expected.
    let bare = read(&format!("_ws.malformed && {BARE_DONE}"), &[]);
    let dones = runs.iter().filter(|r| r.3).count();
    assert_eq!(bare.lines().count(), dones, "{bare}");
    // And it did decode the exchange: our queries and the replies.
    let types = read(
        "dhcpv6.bulk_leasequery",
        &["dhcpv6.bulk_leasequery.msgtype"],
    );
    let all: Vec<&str> = types
        .lines()
        .flat_map(|l| l.split(','))
        .filter(|t| !t.is_empty())
        .collect();
    let count = |t: &str| all.iter().filter(|x| **x == t).count();
    assert_eq!(count("14"), runs.len(), "our LEASEQUERYs: {all:?}");
    assert_eq!(count("15"), runs.len(), "the REPLYs");
    assert!(count("17") > 200, "the DATA messages");
    assert_eq!(count("16"), dones, "the DONEs");
    lab.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
