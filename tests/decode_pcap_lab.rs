//! `pdrestore decode` of real captures: the lab server on loopback in a
//! private network namespace, dumpcap capturing there (pcapng and pcap at
//! once), a Bulk Leasequery by a raw client (whose received octets are kept
//! as a raw stream) and by `pdrestore query --json` over IPv6 and IPv4. Both
//! captures must decode to exactly the raw stream's records and to the
//! bindings the query printed.
//!
//! Needs root (ip netns, capturing), iproute2 and dumpcap (the tshark
//! package): skipped with a `SKIPPED` line without them, a failure under CI
//! or with PDRESTORE_REQUIRE_TSHARK set (tests/support).

mod common;
mod support;

use pdrestore::decode::capture::{read_capture, Format};
use pdrestore::netns::NetNs;
use pdrestore::proto::{MessageType, Query};
use pdrestore::server::{self as lab, BindingStore, ServerConfig};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const RELAY_B: &str = "0003000102005e000002";

/// dumpcap on the namespace's loopback, writing to standard output (so
/// that it flushes every packet) redirected to `file`.
fn dumpcap(ns: &str, file: &Path, pcap: bool) -> Child {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns, "dumpcap", "-q", "-i", "lo"]);
    if pcap {
        c.arg("-P");
    }
    c.args(["-w", "-"])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(file).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("dumpcap starts")
}

fn packets_in(file: &Path) -> usize {
    let data = std::fs::read(file).unwrap_or_default();
    match Format::detect(&data) {
        Format::Raw => 0,
        f => read_capture(&data, f, &[]).map_or(0, |c| c.packets),
    }
}

/// One Bulk Leasequery by relay-id on a raw connection: every octet the
/// server sent until the DONE (RFC 5460 section 5.1 framing), and our port.
async fn raw_query(server: SocketAddr) -> (Vec<u8>, SocketAddr) {
    let mut s = TcpStream::connect(server).await.unwrap();
    let local = s.local_addr().unwrap();
    let q = common::query(0x0a0b0c, Query::ByRelayId(RELAY_B.parse().unwrap())).to_bytes();
    let mut frame = (q.len() as u16).to_be_bytes().to_vec();
    frame.extend_from_slice(&q);
    s.write_all(&frame).await.unwrap();
    let mut got = Vec::new();
    let read = async {
        loop {
            let mut len = [0u8; 2];
            s.read_exact(&mut len).await.unwrap();
            let mut m = vec![0u8; u16::from_be_bytes(len) as usize];
            s.read_exact(&mut m).await.unwrap();
            got.extend_from_slice(&len);
            got.extend_from_slice(&m);
            if MessageType::from(m[0]) == MessageType::LeasequeryDone {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .expect("the answer within 20 s");
    s.shutdown().await.unwrap();
    (got, local)
}

/// `pdrestore query --json` in the namespace; its binding lines.
fn cli_query(ns: &str, server: &str) -> Vec<Value> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, env!("CARGO_BIN_EXE_pdrestore")])
        .args(["query", "--server", server, "--relay-id", RELAY_B, "--json"])
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn decode(file: &Path, extra: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pdrestore"))
        .arg("decode")
        .args(extra)
        .arg(file)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Records of a capture's `decode --json`, per (connection, direction).
fn by_stream(out: &str) -> Vec<((String, String), Vec<Value>)> {
    let mut v: Vec<((String, String), Vec<Value>)> = Vec::new();
    for line in out.lines() {
        let mut r: Value = serde_json::from_str(line).unwrap();
        let key = (
            r["connection"].as_str().unwrap().to_string(),
            r["direction"].as_str().unwrap().to_string(),
        );
        if r["kind"] == "stream" {
            v.push((key, Vec::new()));
            continue;
        }
        let o = r.as_object_mut().unwrap();
        o.remove("connection");
        o.remove("direction");
        let last = v.last_mut().unwrap();
        assert_eq!(last.0, key);
        last.1.push(r);
    }
    v
}

/// Binding records reduced to the binding (client DUID, lease, lifetimes,
/// CLT_TIME, relay data) and the xid: no offset, server or attempt.
fn bindings(records: &[Value]) -> Vec<Value> {
    records
        .iter()
        .filter(|r| r["kind"] == "binding")
        .map(|r| {
            let mut r = r.clone();
            let o = r.as_object_mut().unwrap();
            for k in ["kind", "offset", "server", "attempt"] {
                o.remove(k);
            }
            r
        })
        .collect()
}

/// Bindings without the times (which move between two queries).
fn timeless(b: &[Value]) -> Vec<Value> {
    let mut v: Vec<Value> = b
        .iter()
        .map(|b| {
            let mut b = b.clone();
            let o = b.as_object_mut().unwrap();
            for k in ["xid", "clt_time", "preferred_lifetime", "valid_lifetime"] {
                o.remove(k);
            }
            b
        })
        .collect();
    v.sort_by_key(|b| b.to_string());
    v
}

#[test]
fn real_captures_decode_like_the_raw_stream_and_the_query() {
    if !(support::need_netns() && support::need_tool("dumpcap", "tshark")) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pcapng: PathBuf = dir.path().join("lab.pcapng");
    let pcap: PathBuf = dir.path().join("lab.pcap");
    let ns = NetNs::create("pdr-pcap").unwrap();
    let name = ns.name().to_string();
    let (p1, p2) = (pcapng.clone(), pcap.clone());
    let (raw, raw_client, via6, via4) = ns
        .run(move || async move {
            let path = format!(
                "{}/tests/data/kea/bindings.json",
                env!("CARGO_MANIFEST_DIR")
            );
            let records = lab::load::read_kea(Path::new(&path), lab::store::unix_now()).unwrap();
            let links = [
                "2001:db8:1::/64".parse().unwrap(),
                "2001:db8:2::/64".parse().unwrap(),
            ];
            let store = Arc::new(BindingStore::from_records(&records, &links).unwrap());
            let cfg = ServerConfig::default().kea_mode();
            let l6 = TcpListener::bind("[::1]:547").await.unwrap();
            let l4 = TcpListener::bind("127.0.0.1:5547").await.unwrap();
            let s6 = lab::spawn(l6, store.clone(), cfg.clone()).unwrap();
            let s4 = lab::spawn(l4, store, cfg).unwrap();

            let mut caps = [dumpcap(&name, &p1, false), dumpcap(&name, &p2, true)];
            // Until both captures hold a packet: probes to a closed port.
            let t0 = Instant::now();
            while packets_in(&p1) == 0 || packets_in(&p2) == 0 {
                assert!(
                    t0.elapsed() < Duration::from_secs(20),
                    "dumpcap captured nothing on lo in 20 s"
                );
                let _ = TcpStream::connect("127.0.0.1:9").await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }

            let (raw, raw_client) = raw_query("[::1]:547".parse().unwrap()).await;
            let n = name.clone();
            let (via6, via4) = tokio::task::spawn_blocking(move || {
                (cli_query(&n, "[::1]"), cli_query(&n, "127.0.0.1:5547"))
            })
            .await
            .unwrap();

            // Let the last segments (FINs) reach the files, then stop.
            tokio::time::sleep(Duration::from_millis(500)).await;
            for c in &mut caps {
                // SAFETY: kill(2) on our own child (ip netns exec became dumpcap).
                unsafe {
                    libc::kill(c.id() as i32, libc::SIGINT);
                }
            }
            for c in &mut caps {
                c.wait().unwrap();
            }
            s6.shutdown().await.unwrap();
            s4.shutdown().await.unwrap();
            (raw, raw_client, via6, via4)
        })
        .unwrap();
    drop(ns);
    assert!(via6.len() > 100, "the query printed the bindings");
    assert_eq!(timeless(&bindings(&via6)), timeless(&bindings(&via4)));

    let raw_file = dir.path().join("raw.bin");
    std::fs::write(&raw_file, &raw).unwrap();
    let (code, raw_out, _) = decode(&raw_file, &["--json"]);
    assert_eq!(code, Some(0));
    let raw_records: Vec<Value> = raw_out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(bindings(&raw_records).len(), via6.len());

    let mut decoded = Vec::new();
    for file in [&pcapng, &pcap] {
        let (code, out, err) = decode(file, &["--json", "--port", "5547"]);
        assert_eq!(code, Some(0), "{}: {err}", file.display());
        let streams = by_stream(&out);
        let raw_conn = format!("{raw_client}-[::1]:547");
        let find = |pred: &dyn Fn(&str) -> bool, dir: &str| -> Vec<Value> {
            let hits: Vec<_> = streams
                .iter()
                .filter(|((c, d), _)| pred(c) && d == dir)
                .collect();
            assert_eq!(
                hits.len(),
                1,
                "{}: {:?}",
                file.display(),
                streams.iter().map(|s| &s.0).collect::<Vec<_>>()
            );
            hits[0].1.clone()
        };
        // The raw client's connection: exactly the raw stream's records.
        let from = find(&|c| c == raw_conn, "from-server");
        assert_eq!(from, raw_records, "{}", file.display());
        let to = find(&|c| c == raw_conn, "to-server");
        assert_eq!(to.len(), 1);
        assert_eq!(to[0]["type"], "LEASEQUERY");
        assert_eq!(to[0]["xid"], 0x0a0b0c);
        // The query's connections: the bindings it printed, xids included.
        let q6 = find(
            &|c| c.ends_with("-[::1]:547") && c != raw_conn,
            "from-server",
        );
        assert_eq!(bindings(&q6), bindings(&via6), "{}", file.display());
        let q4 = find(&|c| c.ends_with("-127.0.0.1:5547"), "from-server");
        assert_eq!(bindings(&q4), bindings(&via4), "{}", file.display());
        // Port 5547 is followed only when asked for.
        let (code, out, _) = decode(file, &["--json"]);
        assert_eq!(code, Some(0));
        assert!(!out.contains("5547"), "{}", file.display());
        decoded.push(out);
    }
    assert_eq!(decoded[0], decoded[1], "pcapng and pcap decode alike");
}
