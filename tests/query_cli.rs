//! `pdrestore query` end to end: the binary against scripted TCP peers on
//! 127.0.0.1 that answer with Kea's captured stream (xids rewritten to ours).

use pdrestore::proto::frame::FrameIter;
use std::net::SocketAddr;
use std::process::{Command, Output};
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

/// A peer answering every connection's query with `response`, closing
/// after `keep` messages (all when None).
async fn kea_peer(response: Vec<u8>, keep: Option<usize>) -> SocketAddr {
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
                for (i, f) in FrameIter::new(&response).enumerate() {
                    if keep.is_some_and(|k| i >= k) {
                        break;
                    }
                    let mut m = f.unwrap().message.to_vec();
                    m[1..4].copy_from_slice(&q[1..4]);
                    out.extend_from_slice(&(m.len() as u16).to_be_bytes());
                    out.extend_from_slice(&m);
                }
                s.write_all(&out).await.unwrap();
                if keep.is_none() {
                    let mut b = [0u8; 64];
                    while matches!(s.read(&mut b).await, Ok(n) if n > 0) {}
                }
            });
        }
    });
    addr
}

async fn pdrestore(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_pdrestore"))
            .args(&args)
            .env("RUST_LOG", "error")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn args(servers: &[SocketAddr], extra: &[&str]) -> Vec<String> {
    let mut a = vec!["query".to_string()];
    for s in servers {
        a.push("--server".into());
        a.push(s.to_string());
    }
    a.extend(
        [
            "--relay-id",
            "0003000102005e000002",
            "--requestor-duid",
            "000100012a2b2c2d020000009901",
            "--timeout",
            "5s",
            "--retry-delay",
            "10ms",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_and_exit_zero_when_every_server_completes() {
    let resp = kea("02_relayid_B.response.bin");
    let a = kea_peer(resp.clone(), None).await;
    let b = kea_peer(resp, None).await;
    let out = pdrestore(args(&[a, b], &["--json"])).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2 * 108);
    for s in [a, b] {
        let mine: Vec<_> = lines
            .iter()
            .filter(|l| l["server"] == s.to_string())
            .collect();
        assert_eq!(mine.len(), 108);
    }
    let l = &lines[0];
    assert_eq!(l["kind"], "binding");
    assert!(l["client_duid"].is_string());
    assert!(l["prefix"].is_string() || l["address"].is_string());
    assert!(l["xid"].is_u64() && l["valid_lifetime"].is_u64() && l["clt_time"].is_u64());
    assert!(l["relay"].is_array());
    // The summary: one line per server.
    let summary = |w: &str| stderr.lines().filter(|l| l.starts_with(w)).count();
    assert_eq!(summary("complete "), 2, "{stderr}");
    assert!(stderr.contains("108 bindings"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_and_exit_one_when_a_server_fails() {
    let good = kea_peer(kea("02_relayid_B.response.bin"), None).await;
    let cut = kea_peer(kea("02_relayid_B.response.bin"), Some(20)).await;
    let refused = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let out = pdrestore(args(&[good, cut, refused], &["--retries", "1"])).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<&str> = stdout.lines().collect();
    assert!(rows[0].starts_with("SERVER"), "a header");
    let from = |s: SocketAddr| {
        rows.iter()
            .filter(|r| r.starts_with(&s.to_string()))
            .count()
    };
    assert_eq!(from(good), 108);
    assert_eq!(from(cut), 2 * 20, "20 per try, two tries");
    assert_eq!(from(refused), 0);
    assert!(rows[1].contains("2001:db8:"), "{}", rows[1]);
    let summary = |w: &str| stderr.lines().filter(|l| l.starts_with(w)).count();
    assert_eq!(summary("INCOMPLETE "), 2, "{stderr}");
    assert_eq!(summary("complete "), 1, "{stderr}");
    assert!(stderr.contains("connection refused"), "{stderr}");
    assert!(
        stderr.contains("connection closed by the server"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_answers() {
    // NotConfigured: final and not whole: exit 1. MalformedQuery: exit 70.
    for (case, code) in [
        ("06_relayid_A_link_unconfigured", 1),
        ("07_relayid_missing_option", 70),
        ("05_relayid_unknown", 0),
    ] {
        let s = kea_peer(kea(&format!("{case}.response.bin")), None).await;
        let out = pdrestore(args(&[s], &[])).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{case}: {stderr}");
        assert!(stderr.contains("(1 try)"), "{case}: no retry: {stderr}");
    }
}

#[test]
fn bad_arguments_exit_64() {
    let out = Command::new(env!("CARGO_BIN_EXE_pdrestore"))
        .args([
            "query",
            "--server",
            "127.0.0.1",
            "--relay-id",
            "00",
            "--client-id",
            "00",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let out = Command::new(env!("CARGO_BIN_EXE_pdrestore"))
        .args([
            "query",
            "--server",
            "127.0.0.1",
            "--client-id",
            "00",
            "--link",
            "::1",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(64),
        "--link only filters relay-id and remote-id"
    );
}

/// `query --json` prints bindings exactly as `decode --json` does for the
/// same bytes, with `server` and `attempt` in place of `offset`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_has_the_shape_of_decode() {
    let path = format!(
        "{}/tests/data/kea/08_link_s1.response.bin",
        env!("CARGO_MANIFEST_DIR")
    );
    let decoded = Command::new(env!("CARGO_BIN_EXE_pdrestore"))
        .args(["decode", "--json", &path])
        .output()
        .unwrap();
    let strip = |line: &str, keys: &[&str]| {
        let mut v: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line).unwrap();
        for k in keys {
            v.remove(*k);
        }
        serde_json::Value::Object(v).to_string()
    };
    let mut want: Vec<String> = String::from_utf8(decoded.stdout)
        .unwrap()
        .lines()
        .filter(|l| l.contains(r#""kind":"binding""#))
        .map(|l| strip(l, &["offset", "xid"]))
        .collect();
    let s = kea_peer(kea("08_link_s1.response.bin"), None).await;
    let mut a = args(&[s], &["--json"]);
    // The peer answers whatever is asked: the query itself does not matter here.
    let i = a.iter().position(|x| x == "--relay-id").unwrap();
    a.splice(
        i..i + 2,
        ["--link-address".to_string(), "2001:db8:1::1".into()],
    );
    let out = pdrestore(a).await;
    assert_eq!(out.status.code(), Some(0));
    let lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    for l in &lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["server"], s.to_string());
        assert_eq!(v["attempt"], 1);
    }
    let mut got: Vec<String> = lines
        .iter()
        .map(|l| strip(l, &["server", "attempt", "xid"]))
        .collect();
    want.sort();
    got.sort();
    assert_eq!(got.len(), 208, "REPLY and 207 DATA, one binding each");
    assert_eq!(got, want);
}

#[test]
fn an_unspecified_link_address_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_pdrestore"))
        .args(["query", "--server", "127.0.0.1", "--link-address", "::"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(err.contains("--link-address :: names no link"), "{err}");
    assert!(!err.contains("bug"), "{err}");
}

/// A peer that records every query it is sent and answers it with Kea's
/// "no active leases" REPLY (xid rewritten).
async fn recording_peer() -> (SocketAddr, std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = seen.clone();
    let reply = kea("05_relayid_unknown.response.bin");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let Some(q) = read_frame(&mut s).await else {
                continue;
            };
            kept.lock().unwrap().push(q.clone());
            let mut m = reply[2..].to_vec();
            m[1..4].copy_from_slice(&q[1..4]);
            let mut out = (m.len() as u16).to_be_bytes().to_vec();
            out.extend_from_slice(&m);
            let _ = s.write_all(&out).await;
        }
    });
    (addr, seen)
}

/// `query --config FILE` takes the servers, the DUIDs and the timeouts from
/// the configuration; without a query option it asks QUERY_BY_RELAY_ID for
/// the configured relay DUID.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configuration_gives_servers_duids_and_the_default_query() {
    use pdrestore::proto::{DhcpOption, Message};
    let (addr, seen) = recording_peer().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("q.toml");
    std::fs::write(
        &cfg,
        format!(
            "relay_duid = \"0003000102005e000002\"\nrequestor_duid = \"000100012a2b2c2d020000009901\"\nstate_directory = {:?}\ndata_timeout = \"3s\"\n[[server]]\naddress = \"{}\"\nport = {}\n[routes]\nallowed_prefixes = [\"2001:db8::/32\"]\n",
            dir.path().join("state"),
            addr.ip(),
            addr.port()
        ),
    )
    .unwrap();
    let out = pdrestore(vec![
        "query".into(),
        "--config".into(),
        cfg.to_str().unwrap().into(),
        "--json".into(),
    ])
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("requestor DUID 000100012a2b2c2d020000009901"),
        "{stderr}"
    );
    let queries = seen.lock().unwrap().clone();
    assert_eq!(queries.len(), 1);
    let Message::Client(q) = Message::decode(&queries[0]).unwrap() else {
        panic!("not a LEASEQUERY")
    };
    let client = q.options.iter().find_map(|o| match o {
        DhcpOption::ClientId(d) => Some(d.to_hex()),
        _ => None,
    });
    assert_eq!(client.as_deref(), Some("000100012a2b2c2d020000009901"));
    let query = q.options.iter().find_map(|o| match o {
        DhcpOption::LqQuery(lq) => Some(lq.clone()),
        _ => None,
    });
    let query = format!("{query:?}");
    assert!(query.contains("0003000102005e000002"), "{query}");
    // No server and no configuration: a usage error.
    let out = pdrestore(vec!["query".into(), "--json".into()]).await;
    assert_eq!(out.status.code(), Some(64));
}

/// What `query --json` prints (a real server's answer: Kea's, here) is
/// served as is by `lab-server --bindings`, and asked again gives the same
/// bindings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_answer_replays_in_the_lab_server() {
    let s = kea_peer(kea("02_relayid_B.response.bin"), None).await;
    let first = pdrestore(args(&[s], &["--json"])).await;
    assert_eq!(first.status.code(), Some(0));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("answer.jsonl");
    std::fs::write(&file, &first.stdout).unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let listen = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pdrestore"))
        .args(["lab-server", "--listen", &listen, "--bindings"])
        .arg(&file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let addr: SocketAddr = listen.parse().unwrap();
    let t0 = std::time::Instant::now();
    while TcpStream::connect(addr).await.is_err() {
        if let Some(st) = child.try_wait().unwrap() {
            let mut e = String::new();
            use std::io::Read;
            child.stderr.take().unwrap().read_to_string(&mut e).unwrap();
            panic!("lab-server refused the recording ({st}): {e}");
        }
        assert!(t0.elapsed() < std::time::Duration::from_secs(20));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let second = pdrestore(args(&[addr], &["--json"])).await;
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(second.status.code(), Some(0));
    let key = |out: &Output| {
        let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                format!(
                    "{} {} {} {}",
                    v["client_duid"], v["prefix"], v["address"], v["relay"]
                )
            })
            .collect();
        v.sort();
        v
    };
    let (a, b) = (key(&first), key(&second));
    assert_eq!(a.len(), 108);
    assert_eq!(a, b);
}
