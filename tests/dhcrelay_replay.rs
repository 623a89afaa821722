//! Recovery behind ISC dhcrelay, replayed from a real chain (issue 14):
//! tests/data/dhcrelay holds Kea 3.3's Bulk Leasequery answers for a router
//! running `dhcrelay -6 -I -l br1 -l br2` (no Relay-ID; a 4-octet binary
//! interface-id), and expected.json the route the router should hold for
//! each CPE. A scripted peer answers each LEASEQUERY with the capture for
//! what it asks (its transaction-id rewritten), and the whole recovery
//! (`pdrestore::agent::recover`) runs into an in-memory route table.

use pdrestore::agent::{recover, RecoverOptions, Summary};
use pdrestore::config::Config;
use pdrestore::proto::frame::FrameIter;
use pdrestore::proto::{DhcpOption, Duid, Message, QueryType};
use pdrestore::routes::{Interface, MemoryTable};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn data(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/dhcrelay")
        .join(path)
}

/// The five routes of expected.json, as `prefix via next-hop dev interface`.
fn expected_routes() -> BTreeSet<String> {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data("expected.json")).unwrap()).unwrap();
    v["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect()
}

async fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len).await.ok()?;
    let mut m = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut m).await.ok()?;
    Some(m)
}

/// The capture that answers `query`: by its type and link-address.
fn capture_for(query: &[u8]) -> Vec<u8> {
    let Message::Client(q) = Message::decode(query).unwrap() else {
        panic!("not a LEASEQUERY")
    };
    let lq = q
        .options
        .iter()
        .find_map(|o| match o {
            DhcpOption::LqQuery(lq) => Some(lq.clone()),
            _ => None,
        })
        .unwrap();
    let dir = match (lq.query_type, lq.link_address.to_string().as_str()) {
        (QueryType::ByLinkAddress, "2001:db8:1::1") => "q1_link_br1",
        (QueryType::ByLinkAddress, "2001:db8:2::1") => "q2_link_br2",
        (QueryType::ByLinkAddress, "2001:db8:1::5") => "q5_link_br1_other_addr",
        (QueryType::ByRelayId, _) => "q3_relay_id",
        other => panic!("no capture answers {other:?}"),
    };
    std::fs::read(data(&format!("{dir}/response.bin"))).unwrap()
}

/// A peer that answers every LEASEQUERY of every connection with the
/// capture for it, one after the other.
async fn kea_chain_peer() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                while let Some(q) = read_frame(&mut s).await {
                    let mut out = Vec::new();
                    for f in FrameIter::new(&capture_for(&q)) {
                        let mut m = f.unwrap().message.to_vec();
                        m[1..4].copy_from_slice(&q[1..4]);
                        out.extend_from_slice(&(m.len() as u16).to_be_bytes());
                        out.extend_from_slice(&m);
                    }
                    if s.write_all(&out).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// The router of the capture: br1 and br2 with their addresses (or only
/// their link-local ones), and the uplink.
fn router(global: bool) -> Vec<Interface> {
    let ifc = |name: &str, index, addrs: &[&str]| Interface {
        name: name.into(),
        index,
        addresses: addrs.iter().map(|a| a.parse().unwrap()).collect(),
    };
    if global {
        vec![
            ifc("up0", 2, &["2001:db8:ff::1/64", "fe80::ff:fe00:ff01/64"]),
            ifc("br1", 3, &["2001:db8:1::1/64", "fe80::ff:fe00:b101/64"]),
            ifc("br2", 4, &["2001:db8:2::1/64", "fe80::ff:fe00:b201/64"]),
        ]
    } else {
        vec![
            ifc("up0", 2, &["2001:db8:ff::1/64"]),
            ifc("br1", 3, &["fe80::ff:fe00:b101/64"]),
            ifc("br2", 4, &["fe80::ff:fe00:b201/64"]),
        ]
    }
}

async fn run(
    peer: SocketAddr,
    top: &str,
    map: &str,
    ifs: Vec<Interface>,
) -> (Summary, MemoryTable) {
    let text = format!(
        "relay_duid = \"0003000102000000ff01\"\nrequestor_duid = \"000100012a2b2c2d020000009901\"\nstate_directory = \"/nonexistent\"\nstartup_deadline = \"0s\"\nretries = 0\n{top}\n[[server]]\naddress = \"{}\"\nport = {}\n[routes]\nallowed_prefixes = [\"2001:db8:8000::/40\", \"2001:db8:9000::/40\"]\n{map}",
        peer.ip(),
        peer.port()
    );
    let cfg = Config::parse(&text, std::path::Path::new("dhcrelay.toml")).unwrap();
    let relay: Duid = "0003000102000000ff01".parse().unwrap();
    recover(
        &cfg,
        &relay,
        MemoryTable::with_interfaces([2, 3, 4]),
        ifs,
        &RecoverOptions::default(),
        std::future::pending(),
    )
    .await
    .map(|(report, table)| (report.summary(), table))
    .unwrap()
}

fn routes(t: &MemoryTable) -> BTreeSet<String> {
    t.routes()
        .map(|r| format!("{} via {} dev {}", r.prefix, r.gateway, r.interface))
        .collect()
}

/// The configuration the issue names: link-address mode, the two links, no
/// interface map: the routes of expected.json, interfaces by link-address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_link_address_with_the_links_given() {
    let peer = kea_chain_peer().await;
    let (s, t) = run(
        peer,
        "query = \"link-address\"\nlinks = [\"2001:db8:1::1\", \"2001:db8:2::1\"]",
        "",
        router(true),
    )
    .await;
    assert_eq!(
        (s.outcome.as_str(), s.exit_code),
        ("complete", 0),
        "{}",
        s.to_text()
    );
    assert_eq!(routes(&t), expected_routes());
    // Ten leases: five prefixes and each CPE's IA_NA address.
    assert_eq!(s.bindings, 10);
    assert_eq!(s.routes.planned, 5);
    assert!(s.routes.rejected.is_empty(), "{:?}", s.routes.rejected);
    let queries: Vec<&str> = s.servers[0]
        .queries
        .iter()
        .map(|q| q.link.as_str())
        .collect();
    assert_eq!(queries, ["2001:db8:1::1", "2001:db8:2::1"]);
}

/// Links taken from the mapped interfaces' global addresses, and the
/// interfaces by dhcrelay's binary interface-id (`"0x07000000" = "br1"`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_link_address_with_a_binary_interface_id_map() {
    let peer = kea_chain_peer().await;
    let map = "[routes.interfaces]\n\"0x07000000\" = \"br1\"\n\"0x06000000\" = \"br2\"\n";
    let (s, t) = run(peer, "query = \"link-address\"", map, router(true)).await;
    assert_eq!(s.exit_code, 0, "{}", s.to_text());
    assert_eq!(routes(&t), expected_routes());
    // Only the map can find the interfaces when they hold no global
    // address: the links given, link-address matching impossible.
    let (s, t) = run(
        peer,
        "query = \"link-address\"\nlinks = [\"2001:db8:1::1\", \"2001:db8:2::1\"]",
        map,
        router(false),
    )
    .await;
    assert_eq!(s.exit_code, 0, "{}", s.to_text());
    assert_eq!(routes(&t), expected_routes());
    // Swapped, the map sends each link's prefixes out of the other bridge.
    let swapped = "[routes.interfaces]\n\"0x07000000\" = \"br2\"\n\"0x06000000\" = \"br1\"\n";
    let (_, t) = run(
        peer,
        "query = \"link-address\"\nlinks = [\"2001:db8:1::1\", \"2001:db8:2::1\"]",
        swapped,
        router(false),
    )
    .await;
    let want: BTreeSet<String> = expected_routes()
        .iter()
        .map(|r| {
            if r.ends_with("br1") {
                r.replace("dev br1", "dev br2")
            } else {
                r.replace("dev br2", "dev br1")
            }
        })
        .collect();
    assert_eq!(routes(&t), want);
}

/// Any address of the subnet selects it (Kea): 2001:db8:1::5 gives br1's
/// three prefixes; the others' come from br2's link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_address_of_the_link_gives_the_same_bindings() {
    let peer = kea_chain_peer().await;
    let ifs = {
        let mut r = router(true);
        r[1].addresses.push("2001:db8:1::5/64".parse().unwrap());
        r
    };
    let (s, t) = run(
        peer,
        "query = \"link-address\"\nlinks = [\"2001:db8:1::1\", \"2001:db8:1::5\", \"2001:db8:2::1\"]",
        "",
        ifs,
    )
    .await;
    assert_eq!(s.exit_code, 0, "{}", s.to_text());
    assert_eq!(routes(&t), expected_routes());
    assert_eq!(s.bindings, 16, "br1's six bindings twice, br2's four");
    assert!(s.conflicts.is_empty());
}

/// Relay-ID mode behind dhcrelay: Kea answers "no active leases"; the run
/// says why, plainly, and is not a clean success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_relay_id_the_empty_answer_comes_with_the_hint() {
    let peer = kea_chain_peer().await;
    let (s, t) = run(peer, "", "", router(true)).await;
    let text = s.to_text();
    assert_eq!(s.servers[0].status, "complete");
    assert_eq!(s.bindings, 0);
    assert_eq!(t.routes().count(), 0);
    assert_eq!((s.outcome.as_str(), s.exit_code), ("partial", 1), "{text}");
    assert!(
        text.contains("note: no server holds a binding for relay-id 0003000102000000ff01")
            && text.contains("query = \"link-address\""),
        "{text}"
    );
    let v = serde_json::to_value(&s).unwrap();
    assert_eq!(v["empty_answer"], true);
}

/// `pdrestore query` shows dhcrelay's binary interface-id the way the
/// configuration writes it, ready to paste into `[routes.interfaces]`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_shows_interface_ids_as_the_configuration_writes_them() {
    let peer = kea_chain_peer().await;
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_pdrestore"))
            .args([
                "query",
                "--server",
                &peer.to_string(),
                "--link-address",
                "2001:db8:1::1",
                // The captured REPLYs name this CLIENTID (RFC 5007 4.2.2).
                "--requestor-duid",
                "000100012a2b2c2d020000009901",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(rows.len(), 6, "{text}");
    assert!(
        rows.iter().all(|r| r.ends_with("/ \"0x07000000\"")),
        "{text}"
    );
}
