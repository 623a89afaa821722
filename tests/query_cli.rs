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
