//! The requestor against scripted TCP peers on 127.0.0.1: the Kea captures
//! replayed, and every fault a server can commit.
//!
//! A scripted peer is a tokio listener on 127.0.0.1:0 whose handler gets
//! each accepted connection with its number (0 for the first), reads the
//! query frames and writes prepared bytes, possibly closing or stalling.

use pdrestore::proto::binding::Binding;
use pdrestore::proto::frame::FrameIter;
use pdrestore::proto::{
    ClientMessage, DhcpOption, Duid, Message, MessageType, OwnedBindings, Query, QueryType,
    ServerIndex, StatusCode, Xid,
};
use pdrestore::requestor::connection;
use pdrestore::requestor::fanout::{
    query_one_server, Fanout, FanoutConfig, QuerySpec, ServerConfig, ServerReport, Update,
};
use pdrestore::requestor::{Attempt, ConnectionConfig, Delivery, PlannedQuery};
use pdrestore::requestor::{
    Disposition, Outcome, PartialReason, ProtocolError, RetryPolicy, ServerStatus, TransportError,
};
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::net::{Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const REQUESTOR: &str = "000100012a2b2c2d020000009901";
const RELAY_A: &str = "000200000009010203040506";
const RELAY_B: &str = "0003000102005e000002";

fn kea(name: &str) -> Vec<u8> {
    let p = format!("{}/tests/data/kea/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn frames(buf: &[u8]) -> Vec<Vec<u8>> {
    FrameIter::new(buf)
        .map(|f| f.unwrap().message.to_vec())
        .collect()
}

fn framed(msgs: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in msgs {
        out.extend_from_slice(&(m.len() as u16).to_be_bytes());
        out.extend_from_slice(m);
    }
    out
}

fn xid_of(msg: &[u8]) -> u32 {
    u32::from_be_bytes([0, msg[1], msg[2], msg[3]])
}

fn with_xid(msg: &[u8], xid: u32) -> Vec<u8> {
    let mut m = msg.to_vec();
    m[1..4].copy_from_slice(&xid.to_be_bytes()[1..4]);
    m
}

// ---------------------------------------------------------------- the peer

/// A listener whose handler runs once per accepted connection.
async fn peer<F, Fut>(handler: F) -> (SocketAddr, Arc<AtomicUsize>)
where
    F: Fn(usize, TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let handler = Arc::new(handler);
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let n = c.fetch_add(1, Ordering::SeqCst);
            let h = handler.clone();
            tokio::spawn(async move { h(n, s).await });
        }
    });
    (addr, count)
}

async fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len).await.ok()?;
    let mut m = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut m).await.ok()?;
    Some(m)
}

/// Read `n` queries, then write `response` (a Kea stream) with Kea's xids
/// `kea_xids[i]` replaced by the xid of the i-th query read. Returns the queries.
async fn answer(s: &mut TcpStream, response: &[u8], kea_xids: &[u32]) -> Vec<Vec<u8>> {
    let mut queries = Vec::new();
    for _ in kea_xids {
        queries.push(read_frame(s).await.expect("a query"));
    }
    let map: HashMap<u32, u32> = kea_xids
        .iter()
        .zip(&queries)
        .map(|(&k, q)| (k, xid_of(q)))
        .collect();
    let out: Vec<Vec<u8>> = frames(response)
        .iter()
        .map(|m| with_xid(m, map[&xid_of(m)]))
        .collect();
    s.write_all(&framed(&out)).await.unwrap();
    queries
}

/// Keep the connection open (as Kea does) until the requestor closes it.
async fn linger(s: &mut TcpStream) {
    let mut b = [0u8; 512];
    while let Ok(n) = s.read(&mut b).await {
        if n == 0 {
            break;
        }
    }
}

// ------------------------------------------------------------- expectations

/// The comparable part of a binding: lease, client, relay chain.
type Key = (
    String,
    String,
    Vec<(String, String, String, String, String)>,
);

fn key(b: &Binding) -> Key {
    (
        b.lease.to_string(),
        b.client_duid.to_hex(),
        b.relay
            .iter()
            .map(|l| {
                (
                    l.link_address.to_string(),
                    l.peer_address.to_string(),
                    l.relay_id.as_ref().map(|d| d.to_hex()).unwrap_or_default(),
                    l.remote_id.as_ref().map(|r| hex(r)).unwrap_or_default(),
                    l.interface_id.as_ref().map(|r| hex(r)).unwrap_or_default(),
                )
            })
            .collect(),
    )
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Option 18 (interface-id) from a Kea relay-info "options" hex string.
fn interface_id(options: &str) -> String {
    let h = options.trim_start_matches("0x").to_ascii_lowercase();
    let b: Vec<u8> = (0..h.len() / 2)
        .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let mut i = 0;
    while i + 4 <= b.len() {
        let code = u16::from_be_bytes([b[i], b[i + 1]]);
        let len = u16::from_be_bytes([b[i + 2], b[i + 3]]) as usize;
        if code == 18 {
            return hex(&b[i + 4..i + 4 + len]);
        }
        i += 4 + len;
    }
    String::new()
}

struct Lease {
    key: Key,
    subnet: u64,
    state: u64,
    relay_ids: Vec<String>,
    remote_ids: Vec<String>,
    valid: u32,
}

fn leases() -> Vec<Lease> {
    let j: serde_json::Value = serde_json::from_slice(&kea("bindings.json")).unwrap();
    j["leases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let s = |k: &str| l[k].as_str().unwrap().to_string();
            let lease = if s("type") == "IA_PD" {
                format!("{}/{}", s("address"), l["prefix-len"])
            } else {
                s("address")
            };
            let relay: Vec<&serde_json::Value> = l["relay-info"]
                .as_array()
                .map(|a| a.iter().collect())
                .unwrap_or_default();
            let opt =
                |r: &serde_json::Value, k: &str| r[k].as_str().unwrap_or("").to_ascii_lowercase();
            Lease {
                key: (
                    lease,
                    s("duid").to_ascii_lowercase(),
                    relay
                        .iter()
                        .map(|r| {
                            (
                                opt(r, "link"),
                                opt(r, "peer"),
                                opt(r, "relay-id"),
                                opt(r, "remote-id"),
                                interface_id(r["options"].as_str().unwrap_or("")),
                            )
                        })
                        .collect(),
                ),
                subnet: l["subnet-id"].as_u64().unwrap(),
                state: l["state"].as_u64().unwrap(),
                relay_ids: relay.iter().map(|r| opt(r, "relay-id")).collect(),
                remote_ids: relay.iter().map(|r| opt(r, "remote-id")).collect(),
                valid: l["valid-lft"].as_u64().unwrap() as u32,
            }
        })
        .collect()
}

/// The subnet a link-address lies in (the server's configuration, see the README).
fn subnet_of(link: Ipv6Addr) -> Option<u64> {
    let s = link.segments();
    match (s[0], s[1], s[2], s[3]) {
        (0x2001, 0xdb8, 1, 0) => Some(1),
        (0x2001, 0xdb8, 2, 0) => Some(2),
        _ => None,
    }
}

/// What a query should bring back, by the query semantics (RFC 5460 s.5.3,
/// RFC 5007 s.4.1.2.1) applied to bindings.json, with Kea's documented quirk:
/// past the first page of 100, relay-id queries also return non-active leases.
enum Expect {
    Bindings(BTreeSet<Key>),
    NoBindings,
    Status(StatusCode),
}

/// When bindings that are not active (Kea `state` != 0) come back.
#[derive(Clone, Copy)]
enum Reclaimed {
    /// Kea 3.3: for relay-id and remote-id queries, past the first page of 100.
    KeaPage,
    /// The lab server in Kea mode: for relay-id and remote-id queries, always.
    Always,
}

fn expect(query: &[u8]) -> Expect {
    expect_with(query, Reclaimed::KeaPage)
}

fn expect_with(query: &[u8], rule: Reclaimed) -> Expect {
    let Ok(Message::Client(m)) = Message::decode(query) else {
        panic!("a query")
    };
    let q = match m.option(pdrestore::proto::OptionCode::LqQuery) {
        Some(DhcpOption::LqQuery(q)) => q.clone(),
        _ => panic!("LQ_QUERY"),
    };
    let qopt = |code| q.options.iter().find(|o| o.code() == code).cloned();
    let all = leases();
    let link = q.link_address;
    let subnet = subnet_of(link);
    if !link.is_unspecified() && subnet.is_none() {
        return Expect::Status(StatusCode::NotConfigured);
    }
    let on_link = |l: &Lease| link.is_unspecified() || Some(l.subnet) == subnet;
    let selected: Vec<&Lease> = match q.query_type {
        QueryType::ByRelayId => {
            let Some(DhcpOption::RelayId(d)) = qopt(pdrestore::proto::OptionCode::RelayId) else {
                return Expect::Status(StatusCode::MalformedQuery);
            };
            let want = d.to_hex();
            let m: Vec<&Lease> = all
                .iter()
                .filter(|l| l.relay_ids.contains(&want) && on_link(l))
                .collect();
            with_reclaimed(m, rule)
        }
        QueryType::ByRemoteId => {
            let Some(DhcpOption::RemoteId { enterprise, id }) =
                qopt(pdrestore::proto::OptionCode::RemoteId)
            else {
                return Expect::Status(StatusCode::MalformedQuery);
            };
            let mut body = enterprise.to_be_bytes().to_vec();
            body.extend_from_slice(&id);
            let want = hex(&body);
            let m: Vec<&Lease> = all
                .iter()
                .filter(|l| l.remote_ids.contains(&want) && on_link(l))
                .collect();
            with_reclaimed(m, rule)
        }
        QueryType::ByAddress => {
            let Some(DhcpOption::IaAddr(a)) = qopt(pdrestore::proto::OptionCode::IaAddr) else {
                return Expect::Status(StatusCode::MalformedQuery);
            };
            all.iter()
                .filter(|l| {
                    l.state == 0
                        && match l.key.0.parse::<ipnet::Ipv6Net>() {
                            Ok(p) => p.contains(&a.address),
                            Err(_) => l.key.0 == a.address.to_string(),
                        }
                })
                .collect()
        }
        QueryType::ByLinkAddress => all
            .iter()
            .filter(|l| l.state == 0 && Some(l.subnet) == subnet)
            .collect(),
        QueryType::ByClientId => {
            let Some(DhcpOption::ClientId(d)) = qopt(pdrestore::proto::OptionCode::ClientId) else {
                return Expect::Status(StatusCode::MalformedQuery);
            };
            all.iter()
                .filter(|l| l.state == 0 && l.key.1 == d.to_hex())
                .collect()
        }
        QueryType::Unknown(_) => return Expect::Status(StatusCode::UnknownQueryType),
    };
    if selected.is_empty() {
        return Expect::NoBindings;
    }
    Expect::Bindings(selected.iter().map(|l| l.key.clone()).collect())
}

fn with_reclaimed(m: Vec<&Lease>, rule: Reclaimed) -> Vec<&Lease> {
    let active = m.iter().filter(|l| l.state == 0).count();
    let all = match rule {
        Reclaimed::KeaPage => active > 100,
        Reclaimed::Always => true,
    };
    m.into_iter().filter(|l| l.state == 0 || all).collect()
}

fn check(query: &[u8], outcome: &Outcome, got: &[&Binding], what: &str) {
    check_with(query, outcome, got, what, Reclaimed::KeaPage)
}

fn check_with(query: &[u8], outcome: &Outcome, got: &[&Binding], what: &str, rule: Reclaimed) {
    match expect_with(query, rule) {
        Expect::Bindings(want) => {
            assert_eq!(*outcome, Outcome::Complete, "{what}");
            let set: BTreeSet<Key> = got.iter().map(|b| key(b)).collect();
            assert_eq!(set.len(), got.len(), "{what}: no binding twice");
            assert_eq!(set, want, "{what}");
            let valid: HashMap<Key, u32> = leases().into_iter().map(|l| (l.key, l.valid)).collect();
            for b in got {
                assert!(b.valid_lifetime <= valid[&key(b)], "{what}: lifetime");
                assert!(b.preferred_lifetime <= b.valid_lifetime, "{what}");
                assert!(b.clt_time < 3600, "{what}: CLT_TIME plausible");
            }
        }
        Expect::NoBindings => {
            assert_eq!(*outcome, Outcome::NoBindings, "{what}");
            assert!(got.is_empty());
        }
        Expect::Status(code) => {
            assert!(
                matches!(outcome, Outcome::ServerStatus(ServerStatus { code: c, .. }) if *c == code),
                "{what}: {outcome:?}, want {code}"
            );
            assert!(got.is_empty());
        }
    }
}

fn conn_cfg() -> ConnectionConfig {
    let mut c = ConnectionConfig::new(REQUESTOR.parse().unwrap());
    c.data_timeout = Duration::from_secs(10);
    c
}

fn quick_retry(attempts: u32) -> RetryPolicy {
    RetryPolicy {
        attempts,
        initial_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
        jitter: 0.5,
        terminated_delay: Duration::from_millis(200),
        startup_patience: Duration::ZERO,
    }
}

// --------------------------------------------------------- the Kea replay

const CASES: &[&str] = &[
    "02_relayid_B",
    "03_relayid_B_link_s2",
    "05_relayid_unknown",
    "06_relayid_A_link_unconfigured",
    "07_relayid_missing_option",
    "08_link_s1",
    "16_clientid_3",
    "22_unknown_querytype",
    "23_pipelined_relayA_link_s2",
];

/// Every capture, replayed byte for byte: the requestor sends the captured
/// queries (same xids, all in flight at once), the peer checks them and
/// answers with Kea's bytes; the bindings must be exactly bindings.json's
/// for each query, and each outcome the documented one.
#[tokio::test]
async fn kea_captures_replayed() {
    for case in CASES {
        let request = kea(&format!("{case}.request.bin"));
        let response = kea(&format!("{case}.response.bin"));
        let queries = frames(&request);
        let n = queries.len();
        let want_req = request.clone();
        let (addr, _) = peer(move |_, mut s| {
            let want_req = want_req.clone();
            let response = response.clone();
            async move {
                let mut got = vec![0u8; want_req.len()];
                s.read_exact(&mut got).await.unwrap();
                assert_eq!(got, want_req, "the queries as captured");
                s.write_all(&response).await.unwrap();
                linger(&mut s).await;
            }
        })
        .await;
        let mut cfg = conn_cfg();
        cfg.max_in_flight = n;
        let planned = queries
            .iter()
            .enumerate()
            .map(|(index, m)| PlannedQuery {
                index,
                xid: Xid::new(xid_of(m)).unwrap(),
                message: m.clone(),
            })
            .collect();
        let (tx, mut rx) = mpsc::channel::<Vec<Delivery>>(100_000);
        let report = connection::connect_and_query(
            addr,
            &cfg,
            planned,
            Attempt::first(),
            &tx,
            OwnedBindings,
        )
        .await;
        drop(tx);
        let mut got = Vec::new();
        while let Some(v) = rx.recv().await {
            got.extend(v);
        }
        assert_eq!(report.results.len(), n, "{case}");
        assert_eq!(report.close, None, "{case}: the connection stayed clean");
        for r in &report.results {
            let mine: Vec<&Binding> = got
                .iter()
                .filter(|d| d.query == r.index)
                .map(|d| &d.binding)
                .collect();
            assert!(got.iter().all(|d| d.server == addr && d.attempt == 1));
            check(
                &queries[r.index],
                &r.outcome,
                &mine,
                &format!("{case} query {}", r.index),
            );
        }
        if !got.is_empty() {
            assert_eq!(
                report.server_id,
                Some("0002000009bf0102030405060708".parse().unwrap())
            );
        }
    }
}

/// Case 23 through the whole server path: our own random xids, two queries
/// in flight, the peer rewriting Kea's xids to ours; Kea's replies interleave.
#[tokio::test]
async fn kea_pipelined_with_our_xids() {
    let request = frames(&kea("23_pipelined_relayA_link_s2.request.bin"));
    let response = kea("23_pipelined_relayA_link_s2.response.bin");
    let kea_xids: Vec<u32> = request.iter().map(|m| xid_of(m)).collect();
    let req2 = request.clone();
    let (addr, conns) = peer(move |_, mut s| {
        let response = response.clone();
        let kea_xids = kea_xids.clone();
        let req2 = req2.clone();
        async move {
            // Both queries arrive before any answer: two in flight.
            let got = answer(&mut s, &response, &kea_xids).await;
            for (g, w) in got.iter().zip(&req2) {
                assert_eq!(g[4..], w[4..], "same query, our xid");
            }
            assert_ne!(xid_of(&got[0]), xid_of(&got[1]));
            linger(&mut s).await;
        }
    })
    .await;
    let queries = vec![
        QuerySpec {
            request_relay_data: false,
            ..QuerySpec::new(Query::ByRelayId(RELAY_A.parse().unwrap()))
        },
        QuerySpec {
            request_relay_data: false,
            ..QuerySpec::new(Query::ByLinkAddress).link("2001:db8:2::1".parse().unwrap())
        },
    ];
    let mut cfg = conn_cfg();
    cfg.max_in_flight = 2;
    let (tx, mut rx) = mpsc::channel::<Vec<Delivery>>(100_000);
    let report = query_one_server(
        addr,
        ServerIndex::default(),
        &cfg,
        &queries,
        1,
        &quick_retry(1),
        &tx,
        OwnedBindings,
    )
    .await;
    drop(tx);
    let mut got = Vec::new();
    while let Some(v) = rx.recv().await {
        got.extend(v);
    }
    assert!(report.is_complete(), "{report}");
    assert_eq!(conns.load(Ordering::SeqCst), 1);
    for (i, q) in request.iter().enumerate() {
        let mine: Vec<&Binding> = got
            .iter()
            .filter(|d| d.query == i)
            .map(|d| &d.binding)
            .collect();
        check(q, &report.queries[i].outcome, &mine, &format!("query {i}"));
        assert_eq!(report.queries[i].bindings, mine.len() as u64);
    }
}

// ------------------------------------------------------------------ faults

fn relay_b() -> Vec<QuerySpec> {
    vec![QuerySpec {
        request_relay_data: false,
        ..QuerySpec::new(Query::ByRelayId(RELAY_B.parse().unwrap()))
    }]
}

fn relay_b_stream() -> (Vec<u8>, Vec<Vec<u8>>) {
    let req = frames(&kea("02_relayid_B.request.bin"));
    (kea("02_relayid_B.response.bin"), req)
}

async fn run_server(
    addr: SocketAddr,
    cfg: &ConnectionConfig,
    queries: &[QuerySpec],
    retry: &RetryPolicy,
) -> (ServerReport, Vec<Delivery>) {
    let (tx, mut rx) = mpsc::channel::<Vec<Delivery>>(100_000);
    let h = {
        let (cfg, queries, retry) = (cfg.clone(), queries.to_vec(), retry.clone());
        tokio::spawn(async move {
            let first = ServerIndex::default();
            query_one_server(addr, first, &cfg, &queries, 1, &retry, &tx, OwnedBindings).await
        })
    };
    let mut got = Vec::new();
    while let Some(v) = rx.recv().await {
        got.extend(v);
    }
    (h.await.unwrap(), got)
}

fn union(got: &[Delivery]) -> BTreeSet<Key> {
    got.iter().map(|d| key(&d.binding)).collect()
}

/// Connection closed mid-stream: partial, retried on a new connection,
/// then complete; the union of what arrived is the whole set.
#[tokio::test]
async fn close_mid_stream_is_partial_and_retried() {
    let (response, req) = relay_b_stream();
    let (addr, conns) = peer(move |n, mut s| {
        let response = response.clone();
        async move {
            let q = read_frame(&mut s).await.unwrap();
            let msgs = frames(&response);
            let upto = if n == 0 { 30 } else { msgs.len() };
            let out: Vec<Vec<u8>> = msgs[..upto]
                .iter()
                .map(|m| with_xid(m, xid_of(&q)))
                .collect();
            s.write_all(&framed(&out)).await.unwrap();
            if n > 0 {
                linger(&mut s).await;
            }
        }
    })
    .await;
    let (report, got) = run_server(addr, &conn_cfg(), &relay_b(), &quick_retry(3)).await;
    assert_eq!(conns.load(Ordering::SeqCst), 2);
    let q = &report.queries[0];
    assert_eq!(q.outcome, Outcome::Complete);
    assert_eq!(q.attempts, 2);
    assert_eq!(
        q.bindings,
        30 + 108,
        "30 from the first try, 108 from the second"
    );
    assert!(got.iter().filter(|d| d.attempt == 1).count() == 30);
    let Expect::Bindings(want) = expect(&req[0]) else {
        panic!()
    };
    assert_eq!(union(&got), want);

    // With one try only, the outcome stays partial.
    let (response, _) = relay_b_stream();
    let (addr, _) = peer(move |_, mut s| {
        let response = response.clone();
        async move {
            let q = read_frame(&mut s).await.unwrap();
            let out: Vec<Vec<u8>> = frames(&response)[..5]
                .iter()
                .map(|m| with_xid(m, xid_of(&q)))
                .collect();
            s.write_all(&framed(&out)).await.unwrap();
        }
    })
    .await;
    let (report, got) = run_server(addr, &conn_cfg(), &relay_b(), &quick_retry(1)).await;
    assert_eq!(
        report.queries[0].outcome,
        Outcome::Partial(PartialReason::Closed)
    );
    assert!(!report.is_complete());
    assert_eq!(got.len(), 5);
}

/// A server that accepts, reads, and says nothing: the first-answer
/// timeout (short here, under the data timeout) ends each try with "no
/// answer to the query", and the query is tried twice, not the four times
/// the policy allows a stalled stream.
#[tokio::test]
async fn silent_server_gets_no_answer_and_two_tries() {
    let (addr, conns) = peer(|_, mut s| async move {
        let _ = read_frame(&mut s).await;
        tokio::time::sleep(Duration::from_secs(30)).await;
    })
    .await;
    let mut cfg = conn_cfg();
    cfg.first_answer_timeout = Duration::from_millis(300);
    let t0 = Instant::now();
    let (report, got) = run_server(addr, &cfg, &relay_b(), &quick_retry(4)).await;
    let took = t0.elapsed();
    assert_eq!(report.queries[0].outcome, Outcome::NoAnswer);
    assert_eq!(report.queries[0].outcome.code(), "no-answer");
    assert_eq!(report.queries[0].attempts, 2);
    assert_eq!(conns.load(Ordering::SeqCst), 2);
    assert!(got.is_empty());
    assert!(took >= Duration::from_millis(600), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

/// A REPLY, then a trickle that stops: the timer counts from the last message.
#[tokio::test]
async fn stall_after_some_data_is_partial_with_what_came() {
    let (response, _) = relay_b_stream();
    let (addr, _) = peer(move |_, mut s| {
        let response = response.clone();
        async move {
            let q = read_frame(&mut s).await.unwrap();
            for m in frames(&response).iter().take(4) {
                s.write_all(&framed(&[with_xid(m, xid_of(&q))]))
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
    })
    .await;
    let mut cfg = conn_cfg();
    cfg.data_timeout = Duration::from_millis(1000);
    let (report, got) = run_server(addr, &cfg, &relay_b(), &quick_retry(1)).await;
    assert_eq!(
        report.queries[0].outcome,
        Outcome::Partial(PartialReason::DataTimeout)
    );
    assert_eq!(
        got.len(),
        4,
        "each message arrived 150 ms after the last: no timeout"
    );
}

/// A DONE with an xid we never used closes the connection.
#[tokio::test]
async fn done_with_unknown_xid_closes_the_connection() {
    let (response, _) = relay_b_stream();
    let (addr, _) = peer(move |_, mut s| {
        let response = response.clone();
        async move {
            let q = read_frame(&mut s).await.unwrap();
            let xid = xid_of(&q);
            let msgs = frames(&response);
            let out = vec![
                with_xid(&msgs[0], xid),
                with_xid(&msgs[1], xid),
                with_xid(msgs.last().unwrap(), xid ^ 0x5a5a5a),
            ];
            s.write_all(&framed(&out)).await.unwrap();
            linger(&mut s).await;
        }
    })
    .await;
    let (report, got) = run_server(addr, &conn_cfg(), &relay_b(), &quick_retry(1)).await;
    match &report.queries[0].outcome {
        Outcome::Partial(PartialReason::Aborted(ProtocolError::UnknownXid {
            msg_type, ..
        })) => {
            assert_eq!(*msg_type, MessageType::LeasequeryDone)
        }
        o => panic!("{o:?}"),
    }
    assert_eq!(got.len(), 2);
}

fn requestor() -> Duid {
    REQUESTOR.parse().unwrap()
}

fn reply_msg(xid: u32, opts: Vec<DhcpOption>) -> Vec<u8> {
    let mut o = vec![
        DhcpOption::ClientId(requestor()),
        DhcpOption::ServerId("0002000009bf0102030405060708".parse().unwrap()),
    ];
    o.extend(opts);
    ClientMessage {
        msg_type: MessageType::LeasequeryReply,
        transaction_id: xid,
        options: o,
    }
    .to_bytes()
}

/// DATA without CLIENT_DATA is dropped, the rest of the stream is used.
#[tokio::test]
async fn data_without_client_data_is_dropped() {
    let (response, req) = relay_b_stream();
    let (addr, _) = peer(move |_, mut s| {
        let response = response.clone();
        async move {
            let q = read_frame(&mut s).await.unwrap();
            let xid = xid_of(&q);
            let mut out: Vec<Vec<u8>> =
                frames(&response).iter().map(|m| with_xid(m, xid)).collect();
            let empty = ClientMessage {
                msg_type: MessageType::LeasequeryData,
                transaction_id: xid,
                options: vec![DhcpOption::status(StatusCode::Success, "nothing")],
            }
            .to_bytes();
            out.insert(3, empty.clone());
            out.insert(50, empty);
            s.write_all(&framed(&out)).await.unwrap();
            linger(&mut s).await;
        }
    })
    .await;
    let (report, got) = run_server(addr, &conn_cfg(), &relay_b(), &quick_retry(1)).await;
    let q = &report.queries[0];
    assert_eq!(q.outcome, Outcome::Complete);
    assert_eq!(q.stats.as_ref().unwrap().dropped, 2);
    let Expect::Bindings(want) = expect(&req[0]) else {
        panic!()
    };
    assert_eq!(union(&got), want);
}

/// LQ_CLIENT_LINK in a bulk reply: protocol error, retried, still an error.
#[tokio::test]
async fn client_link_is_a_protocol_error() {
    let (addr, conns) = peer(|_, mut s| async move {
        let q = read_frame(&mut s).await.unwrap();
        let m = reply_msg(
            xid_of(&q),
            vec![DhcpOption::LqClientLink(vec!["2001:db8:1::1"
                .parse()
                .unwrap()])],
        );
        s.write_all(&framed(&[m])).await.unwrap();
        linger(&mut s).await;
    })
    .await;
    let (report, _) = run_server(addr, &conn_cfg(), &relay_b(), &quick_retry(2)).await;
    assert_eq!(
        report.queries[0].outcome,
        Outcome::Partial(PartialReason::Protocol(ProtocolError::ClientLink))
    );
    assert_eq!(report.queries[0].attempts, 2);
    assert_eq!(conns.load(Ordering::SeqCst), 2);
}

/// QueryTerminated, then the whole answer on the next try, after at least
/// the QueryTerminated wait (RFC 5460 5.5); both in the REPLY and in a DONE.
#[tokio::test]
async fn query_terminated_then_success_on_retry() {
    for in_done in [false, true] {
        let (response, req) = relay_b_stream();
        let (addr, conns) = peer(move |n, mut s| {
            let response = response.clone();
            async move {
                let q = read_frame(&mut s).await.unwrap();
                let xid = xid_of(&q);
                let msgs = frames(&response);
                let out = if n > 0 {
                    msgs.iter().map(|m| with_xid(m, xid)).collect()
                } else if in_done {
                    let done = ClientMessage {
                        msg_type: MessageType::LeasequeryDone,
                        transaction_id: xid,
                        options: vec![DhcpOption::status(StatusCode::QueryTerminated, "bye")],
                    }
                    .to_bytes();
                    vec![with_xid(&msgs[0], xid), with_xid(&msgs[1], xid), done]
                } else {
                    vec![reply_msg(
                        xid,
                        vec![DhcpOption::status(StatusCode::QueryTerminated, "busy")],
                    )]
                };
                s.write_all(&framed(&out)).await.unwrap();
                linger(&mut s).await;
            }
        })
        .await;
        let t0 = Instant::now();
        let (report, got) = run_server(addr, &conn_cfg(), &relay_b(), &quick_retry(3)).await;
        assert!(
            t0.elapsed() >= Duration::from_millis(200),
            "waited before retrying"
        );
        assert_eq!(conns.load(Ordering::SeqCst), 2);
        assert_eq!(report.queries[0].outcome, Outcome::Complete);
        assert_eq!(report.queries[0].attempts, 2);
        let Expect::Bindings(want) = expect(&req[0]) else {
            panic!()
        };
        assert_eq!(union(&got), want);
    }
}

/// NotConfigured, NotAllowed, UnknownQueryType: final, no retry;
/// MalformedQuery: final and flagged as our bug.
#[tokio::test]
async fn final_statuses_are_not_retried() {
    for code in [
        StatusCode::NotConfigured,
        StatusCode::NotAllowed,
        StatusCode::UnknownQueryType,
        StatusCode::MalformedQuery,
    ] {
        let (addr, conns) = peer(move |_, mut s| async move {
            let q = read_frame(&mut s).await.unwrap();
            let m = reply_msg(xid_of(&q), vec![DhcpOption::status(code, "no")]);
            s.write_all(&framed(&[m])).await.unwrap();
            linger(&mut s).await;
        })
        .await;
        let (report, _) = run_server(addr, &conn_cfg(), &relay_b(), &quick_retry(3)).await;
        let q = &report.queries[0];
        assert_eq!(
            q.outcome,
            Outcome::ServerStatus(ServerStatus::new(code, "no"))
        );
        assert_eq!(q.attempts, 1, "{code}");
        assert_eq!(conns.load(Ordering::SeqCst), 1);
        assert_eq!(report.our_bug(), code == StatusCode::MalformedQuery);
        let want = if code == StatusCode::MalformedQuery {
            Disposition::OurBug
        } else {
            Disposition::Final
        };
        assert_eq!(q.disposition, want);
    }
}

/// Nothing listens: refused, retried with backoff, then a transport failure.
#[tokio::test]
async fn refused_connect_is_retried_then_fails() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let t0 = Instant::now();
    let (report, _) = run_server(addr, &conn_cfg(), &relay_b(), &quick_retry(3)).await;
    assert_eq!(
        report.queries[0].outcome,
        Outcome::TransportFailure(TransportError::Refused)
    );
    assert_eq!(report.connections, 3);
    assert_eq!(report.queries[0].attempts, 3);
    // Waits of 20 ms then 40 ms, each at most half less with jitter.
    assert!(
        t0.elapsed() >= Duration::from_millis(30),
        "{:?}",
        t0.elapsed()
    );
}

/// The default of one query in flight: the second query is not sent before
/// the first is complete.
#[tokio::test]
async fn one_query_in_flight_by_default() {
    let (response, _) = relay_b_stream();
    let (addr, _) = peer(move |_, mut s| {
        let response = response.clone();
        async move {
            for _ in 0..2 {
                let q = read_frame(&mut s).await.unwrap();
                // Nothing else may arrive while this one is unanswered.
                let mut b = [0u8; 1];
                let more = tokio::time::timeout(Duration::from_millis(150), s.peek(&mut b)).await;
                assert!(
                    more.is_err(),
                    "a second query while the first is outstanding"
                );
                let out: Vec<Vec<u8>> = frames(&response)
                    .iter()
                    .map(|m| with_xid(m, xid_of(&q)))
                    .collect();
                s.write_all(&framed(&out)).await.unwrap();
            }
            linger(&mut s).await;
        }
    })
    .await;
    let queries = vec![relay_b()[0].clone(), relay_b()[0].clone()];
    let (report, got) = run_server(addr, &conn_cfg(), &queries, &quick_retry(1)).await;
    assert!(report.is_complete(), "{report}");
    assert_eq!(report.connections, 1);
    assert_eq!(got.len(), 2 * 108);
}

// ----------------------------------------------------------------- fan-out

/// A well-behaved server answering relay B's query from the Kea capture.
async fn good_server() -> SocketAddr {
    let (response, _) = relay_b_stream();
    peer(move |_, mut s| {
        let response = response.clone();
        async move {
            let q = read_frame(&mut s).await.unwrap();
            let out: Vec<Vec<u8>> = frames(&response)
                .iter()
                .map(|m| with_xid(m, xid_of(&q)))
                .collect();
            s.write_all(&framed(&out)).await.unwrap();
            linger(&mut s).await;
        }
    })
    .await
    .0
}

fn fanout_cfg(servers: &[SocketAddr]) -> FanoutConfig {
    let mut cfg = FanoutConfig::new(requestor(), relay_b());
    cfg.servers = servers.iter().map(|&a| ServerConfig::new(a)).collect();
    cfg.connection.data_timeout = Duration::from_secs(2);
    cfg.retry = quick_retry(2);
    cfg
}

#[tokio::test]
async fn two_servers_in_parallel() {
    let a = good_server().await;
    let b = good_server().await;
    let (got, reports) = Fanout::start(fanout_cfg(&[a, b]), OwnedBindings)
        .collect()
        .await;
    assert_eq!(reports.len(), 2);
    let (_, req) = relay_b_stream();
    let Expect::Bindings(want) = expect(&req[0]) else {
        panic!()
    };
    for s in [a, b] {
        let r = reports.iter().find(|r| r.server == s).unwrap();
        assert!(r.is_complete(), "{r}");
        assert_eq!(
            r.server_index.get(),
            usize::from(s == b),
            "configuration order"
        );
        assert!(got
            .iter()
            .all(|d| (d.server == a) == (d.server_index.get() == 0)));
        let mine: Vec<Delivery> = got.iter().filter(|d| d.server == s).cloned().collect();
        assert_eq!(mine.len(), 108);
        assert_eq!(union(&mine), want);
    }
}

/// Four servers: two good, one silent, one hostile (a malformed DATA after
/// ten good messages, every time). The good ones finish complete and
/// unaffected, long before the silent one's timeout has run out; bindings
/// stream before the end.
#[tokio::test]
async fn three_servers_with_bad_ones_do_not_spoil_the_good() {
    let good1 = good_server().await;
    let good2 = good_server().await;
    let (silent, _) = peer(|_, mut s| async move {
        let _ = read_frame(&mut s).await;
        tokio::time::sleep(Duration::from_secs(30)).await;
    })
    .await;
    let (response, _) = relay_b_stream();
    let (hostile, _) = peer(move |_, mut s| {
        let response = response.clone();
        async move {
            let q = read_frame(&mut s).await.unwrap();
            let msgs = frames(&response);
            let mut out: Vec<Vec<u8>> =
                msgs[..10].iter().map(|m| with_xid(m, xid_of(&q))).collect();
            // A DATA whose last option overruns the message.
            let mut bad = with_xid(&msgs[10], xid_of(&q));
            bad.truncate(bad.len() - 1);
            out.push(bad);
            s.write_all(&framed(&out)).await.unwrap();
            linger(&mut s).await;
        }
    })
    .await;
    let t0 = Instant::now();
    let mut fanout = Fanout::start(fanout_cfg(&[silent, good1, hostile, good2]), OwnedBindings);
    let mut got: Vec<Delivery> = Vec::new();
    let mut done: Vec<(ServerReport, Duration)> = Vec::new();
    let mut first_binding = None;
    while let Some(u) = fanout.recv().await {
        match u {
            Update::Bindings(v) => {
                first_binding.get_or_insert(t0.elapsed());
                got.extend(v)
            }
            Update::ServerDone(r) => done.push((r, t0.elapsed())),
        }
    }
    assert_eq!(done.len(), 4);
    let (_, req) = relay_b_stream();
    let Expect::Bindings(want) = expect(&req[0]) else {
        panic!()
    };
    let find = |a: SocketAddr| done.iter().find(|(r, _)| r.server == a).unwrap();
    for g in [good1, good2] {
        let (r, at) = find(g);
        assert!(r.is_complete(), "{r}");
        assert!(
            *at < Duration::from_millis(1500),
            "not held up by the silent one: {at:?}"
        );
        let mine: Vec<Delivery> = got.iter().filter(|d| d.server == g).cloned().collect();
        assert_eq!(union(&mine), want);
        assert_eq!(mine.len(), 108);
    }
    let (r, at) = find(silent);
    assert_eq!(r.queries[0].outcome, Outcome::NoAnswer);
    assert!(*at >= Duration::from_secs(4), "two tries of 2 s: {at:?}");
    let (r, _) = find(hostile);
    assert!(matches!(
        r.queries[0].outcome,
        Outcome::Partial(PartialReason::Protocol(ProtocolError::Malformed(_)))
    ));
    assert_eq!(r.queries[0].attempts, 2);
    assert!(
        first_binding.unwrap() < Duration::from_millis(1500),
        "streamed, not held back until the end"
    );
}

/// Limits: a server past the bindings or octets we accept is cut off, with
/// no retry (it would only do it again); the per-server budget spans queries.
#[tokio::test]
async fn limits_cut_off_monsters_without_retry() {
    let (response, _) = relay_b_stream();
    let serve = move |_, mut s: TcpStream| {
        let response = response.clone();
        async move {
            while let Some(q) = read_frame(&mut s).await {
                let out: Vec<Vec<u8>> = frames(&response)
                    .iter()
                    .map(|m| with_xid(m, xid_of(&q)))
                    .collect();
                if s.write_all(&framed(&out)).await.is_err() {
                    return;
                }
            }
        }
    };
    // Per query.
    let (addr, conns) = peer(serve.clone()).await;
    let mut cfg = conn_cfg();
    cfg.limits.max_bindings_per_query = 50;
    let (report, got) = run_server(addr, &cfg, &relay_b(), &quick_retry(3)).await;
    assert_eq!(
        report.queries[0].outcome,
        Outcome::Partial(PartialReason::Protocol(ProtocolError::TooManyBindings {
            limit: 50
        }))
    );
    assert_eq!(report.queries[0].disposition, Disposition::Final);
    assert_eq!(got.len(), 50, "exactly the limit");
    assert_eq!(conns.load(Ordering::SeqCst), 1, "no retry");
    // Per server, across two queries run one after the other.
    let (addr, _) = peer(serve.clone()).await;
    let mut cfg = conn_cfg();
    cfg.limits.max_bindings_per_server = 150;
    let queries = vec![relay_b()[0].clone(), relay_b()[0].clone()];
    let (report, got) = run_server(addr, &cfg, &queries, &quick_retry(3)).await;
    assert_eq!(report.queries[0].outcome, Outcome::Complete);
    assert!(matches!(
        report.queries[1].outcome,
        Outcome::Partial(PartialReason::Protocol(
            ProtocolError::TooManyBindings { .. }
        ))
    ));
    assert_eq!(got.len(), 150);
    // Octets per connection.
    let (addr, _) = peer(serve).await;
    let mut cfg = conn_cfg();
    cfg.limits.max_bytes_per_connection = 4000;
    let (report, got) = run_server(addr, &cfg, &relay_b(), &quick_retry(3)).await;
    assert_eq!(
        report.queries[0].outcome,
        Outcome::Partial(PartialReason::Aborted(ProtocolError::TooManyBytes {
            limit: 4000
        }))
    );
    assert_eq!(report.queries[0].attempts, 1);
    assert!(!got.is_empty() && got.len() < 40, "{}", got.len());
}

/// A server that never reads: our writes block, and the data timeout ends
/// them (RFC 5460 6.2) rather than waiting forever.
#[tokio::test]
async fn blocked_write_times_out() {
    let (addr, _) = peer(|_, s| async move {
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(s);
    })
    .await;
    // 300 queries of 60 kB each, all in flight: far more than the socket
    // buffers of both ends hold.
    let big = QuerySpec::new(Query::ByRemoteId {
        enterprise: 4491,
        id: vec![0x5a; 60_000],
    });
    let queries = vec![big; 300];
    let mut cfg = conn_cfg();
    cfg.data_timeout = Duration::from_millis(500);
    cfg.max_in_flight = 300;
    let t0 = Instant::now();
    let (report, _) = run_server(addr, &cfg, &queries, &quick_retry(1)).await;
    assert!(t0.elapsed() < Duration::from_secs(10));
    assert_eq!(report.queries.len(), 300);
    for q in &report.queries {
        assert_eq!(
            q.outcome,
            Outcome::TransportFailure(TransportError::WriteTimeout)
        );
    }
}

/// A server that trickles a binding every 100 ms, forever, never trips the
/// data timeout: the server deadline ends it, and no retry follows.
#[tokio::test]
async fn server_deadline_ends_a_trickle() {
    let (response, _) = relay_b_stream();
    let (addr, conns) = peer(move |_, mut s| {
        let response = response.clone();
        async move {
            let q = read_frame(&mut s).await.unwrap();
            let msgs = frames(&response);
            let data = &msgs[1..msgs.len() - 1];
            for m in std::iter::once(&msgs[0])
                .chain(data.iter().cycle())
                .take(1000)
            {
                if s.write_all(&framed(&[with_xid(m, xid_of(&q))]))
                    .await
                    .is_err()
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    })
    .await;
    let mut cfg = conn_cfg();
    cfg.data_timeout = Duration::from_secs(1);
    cfg.server_deadline = Some(Duration::from_millis(700));
    let t0 = Instant::now();
    let (report, got) = run_server(addr, &cfg, &relay_b(), &quick_retry(3)).await;
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(
        report.queries[0].outcome,
        Outcome::Partial(PartialReason::Deadline)
    );
    assert_eq!(report.queries[0].disposition, Disposition::Final);
    assert_eq!(conns.load(Ordering::SeqCst), 1);
    assert!(got.len() >= 4, "{}", got.len());
}

/// All five query types on one connection, five in flight: the peer checks
/// each LEASEQUERY (RFC 5007 4.1.2.1, RFC 5460 5.3) and answers all of them
/// interleaved, message by message; each query gets exactly its own bindings.
#[tokio::test]
async fn five_query_types_in_flight_with_interleaved_replies() {
    let specs = vec![
        QuerySpec::new(Query::ByAddress("2001:db8:1::1003".parse().unwrap())),
        QuerySpec::new(Query::ByClientId("00030001020000000003".parse().unwrap())),
        QuerySpec::new(Query::ByRelayId(RELAY_B.parse().unwrap()))
            .link("2001:db8:2::1".parse().unwrap()),
        QuerySpec::new(Query::ByLinkAddress).link("2001:db8:1::1".parse().unwrap()),
        QuerySpec::new(Query::ByRemoteId {
            enterprise: 4491,
            id: b"CM-000".to_vec(),
        }),
    ];
    // Per query type, the bindings the peer returns: 1 + 2 + ... + 5 messages,
    // taken from Kea's relay-B stream, each with its own prefix.
    let (response, _) = relay_b_stream();
    let kea_data: Vec<Vec<u8>> = frames(&response)[1..16].to_vec();
    let (addr, _) = peer(move |_, mut s| {
        let kea_data = kea_data.clone();
        async move {
            let mut queries = Vec::new();
            for _ in 0..5 {
                queries.push(read_frame(&mut s).await.unwrap());
            }
            let mut streams: Vec<Vec<Vec<u8>>> = Vec::new();
            let mut next = 0;
            for (i, q) in queries.iter().enumerate() {
                let Ok(Message::Client(m)) = Message::decode(q) else {
                    panic!("a LEASEQUERY")
                };
                assert_eq!(m.msg_type, MessageType::Leasequery);
                assert!(m.options.contains(&DhcpOption::ClientId(requestor())));
                let Some(DhcpOption::LqQuery(lq)) =
                    m.option(pdrestore::proto::OptionCode::LqQuery).cloned()
                else {
                    panic!("LQ_QUERY")
                };
                let want = [
                    QueryType::ByAddress,
                    QueryType::ByClientId,
                    QueryType::ByRelayId,
                    QueryType::ByLinkAddress,
                    QueryType::ByRemoteId,
                ][i];
                assert_eq!(lq.query_type, want, "sent in order");
                let first = &lq.options[0];
                match want {
                    QueryType::ByAddress => assert!(matches!(first, DhcpOption::IaAddr(a)
                        if a.address == "2001:db8:1::1003".parse::<Ipv6Addr>().unwrap())),
                    QueryType::ByClientId => assert!(matches!(first, DhcpOption::ClientId(_))),
                    QueryType::ByRelayId => {
                        assert!(matches!(first, DhcpOption::RelayId(_)));
                        assert_eq!(
                            lq.link_address,
                            "2001:db8:2::1".parse::<Ipv6Addr>().unwrap()
                        );
                    }
                    QueryType::ByLinkAddress => {
                        assert_eq!(
                            lq.link_address,
                            "2001:db8:1::1".parse::<Ipv6Addr>().unwrap()
                        )
                    }
                    _ => assert_eq!(
                        *first,
                        DhcpOption::RemoteId {
                            enterprise: 4491,
                            id: b"CM-000".to_vec()
                        }
                    ),
                }
                // REPLY carrying the first binding, DATA for the rest, DONE.
                let xid = xid_of(q);
                let n = i + 1;
                let own = &kea_data[next..next + n];
                next += n;
                let first_cd = Message::decode(&own[0]).unwrap().options()[0].clone();
                let mut msgs = vec![reply_msg(xid, vec![first_cd])];
                msgs.extend(own[1..].iter().map(|m| with_xid(m, xid)));
                msgs.push(
                    ClientMessage {
                        msg_type: MessageType::LeasequeryDone,
                        transaction_id: xid,
                        options: vec![],
                    }
                    .to_bytes(),
                );
                streams.push(msgs);
            }
            // Interleave: one message of each stream in turn, last query first.
            let mut out = Vec::new();
            for k in 0.. {
                let mut any = false;
                for st in streams.iter().rev() {
                    if let Some(m) = st.get(k) {
                        out.push(m.clone());
                        any = true;
                    }
                }
                if !any {
                    break;
                }
            }
            s.write_all(&framed(&out)).await.unwrap();
            linger(&mut s).await;
        }
    })
    .await;
    let mut cfg = conn_cfg();
    cfg.max_in_flight = 5;
    let (report, got) = run_server(addr, &cfg, &specs, &quick_retry(1)).await;
    assert!(report.is_complete(), "{report}");
    assert_eq!(report.connections, 1);
    let mut seen = BTreeSet::new();
    for (i, q) in report.queries.iter().enumerate() {
        assert_eq!(q.outcome, Outcome::Complete);
        let mine: Vec<&Delivery> = got.iter().filter(|d| d.query == i).collect();
        assert_eq!(mine.len(), i + 1, "query {i}");
        for d in mine {
            assert!(
                seen.insert(key(&d.binding)),
                "each binding to one query only"
            );
        }
    }
    assert_eq!(seen.len(), 15);
}

/// The connection comes from the configured source address.
#[tokio::test]
async fn connects_from_the_source_address() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (response, _) = relay_b_stream();
    let seen = tokio::spawn(async move {
        let (mut s, from) = l.accept().await.unwrap();
        let q = read_frame(&mut s).await.unwrap();
        let out: Vec<Vec<u8>> = frames(&response)
            .iter()
            .map(|m| with_xid(m, xid_of(&q)))
            .collect();
        s.write_all(&framed(&out)).await.unwrap();
        linger(&mut s).await;
        from
    });
    let mut cfg = conn_cfg();
    cfg.source = Some("127.0.0.2".parse().unwrap());
    let (report, got) = run_server(addr, &cfg, &relay_b(), &quick_retry(1)).await;
    assert!(report.is_complete(), "{report}");
    assert_eq!(got.len(), 108);
    let from = seen.await.unwrap();
    assert_eq!(from.ip(), "127.0.0.2".parse::<std::net::IpAddr>().unwrap());
}

// ------------------------------------------------------ the lab server

use pdrestore::server::{self as lab, BindingStore, Fault, FaultAction, ServerConfig as LabConfig};

/// The lab server, in process on 127.0.0.1, serving Kea's bindings.json
/// (times moved to now) on Kea's two subnets, in Kea mode (STATUS_CODE
/// Success in every REPLY, reclaimed leases served to relay-id and
/// remote-id queries).
async fn lab_server(faults: Vec<Fault>) -> lab::ServerHandle {
    let path = format!(
        "{}/tests/data/kea/bindings.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let now = lab::store::unix_now();
    let records = lab::load::read_kea(std::path::Path::new(&path), now).unwrap();
    let links = [
        "2001:db8:1::/64".parse().unwrap(),
        "2001:db8:2::/64".parse().unwrap(),
    ];
    let store = Arc::new(BindingStore::from_records(&records, &links).unwrap());
    let mut cfg = LabConfig::default().kea_mode();
    cfg.faults = faults;
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    lab::spawn(l, store, cfg).unwrap()
}

fn lab_specs() -> Vec<QuerySpec> {
    vec![
        QuerySpec::new(Query::ByAddress("2001:db8:1::1003".parse().unwrap())),
        QuerySpec::new(Query::ByAddress("2001:db8:8000:300::1".parse().unwrap())),
        QuerySpec::new(Query::ByClientId("00030001020000000003".parse().unwrap())),
        QuerySpec::new(Query::ByRelayId(RELAY_A.parse().unwrap())),
        QuerySpec::new(Query::ByRelayId(RELAY_B.parse().unwrap()))
            .link("2001:db8:2::1".parse().unwrap()),
        QuerySpec::new(Query::ByLinkAddress).link("2001:db8:1::1".parse().unwrap()),
        QuerySpec::new(Query::ByLinkAddress).link("2001:db8:2::1".parse().unwrap()),
        QuerySpec::new(Query::ByRemoteId {
            enterprise: 4491,
            id: b"CM-000".to_vec(),
        }),
        QuerySpec::new(Query::ByRelayId("00030001020000000099".parse().unwrap())),
    ]
}

fn check_lab(specs: &[QuerySpec], report: &ServerReport, got: &[Delivery]) {
    for (i, spec) in specs.iter().enumerate() {
        let mine: Vec<&Binding> = got
            .iter()
            .filter(|d| d.query == i && d.server == report.server)
            .map(|d| &d.binding)
            .collect();
        let q = spec.encode(Xid::new(1).unwrap(), &requestor());
        check_with(
            &q,
            &report.queries[i].outcome,
            &mine,
            &format!("{} query {i} {:?}", report.server, spec.query),
            Reclaimed::Always,
        );
    }
}

/// All five query types (nine queries), four in flight on one connection,
/// replies interleaved by the lab server: each query gets exactly the
/// bindings its semantics select from bindings.json.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lab_all_query_types_in_flight() {
    let server = lab_server(vec![]).await;
    let specs = lab_specs();
    let mut cfg = conn_cfg();
    cfg.max_in_flight = 4;
    let (report, got) = run_server(server.local_addr(), &cfg, &specs, &quick_retry(1)).await;
    assert!(report.is_complete(), "{report}");
    assert_eq!(report.connections, 1);
    check_lab(&specs, &report, &got);
    assert_eq!(report.server_id, Some(lab::default_server_duid()));
    server.shutdown().await.unwrap();
}

/// Two and three lab servers at once: each complete, each with the whole set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lab_two_and_three_servers_in_parallel() {
    for n in [2, 3] {
        let mut servers = Vec::new();
        for _ in 0..n {
            servers.push(lab_server(vec![]).await);
        }
        let addrs: Vec<SocketAddr> = servers.iter().map(|s| s.local_addr()).collect();
        let mut cfg = fanout_cfg(&addrs);
        cfg.queries = lab_specs();
        cfg.connection.max_in_flight = 2;
        let (got, reports) = Fanout::start(cfg.clone(), OwnedBindings).collect().await;
        assert_eq!(reports.len(), n);
        for r in &reports {
            assert!(r.is_complete(), "{r}");
            assert_eq!(
                r.server_index.get(),
                addrs.iter().position(|a| *a == r.server).unwrap()
            );
            check_lab(&cfg.queries, r, &got);
        }
        for s in servers {
            s.shutdown().await.unwrap();
        }
    }
}

/// What a fault on the first connection does, and what the retry makes of it.
struct FaultCase {
    action: FaultAction,
    only_first_connection: bool,
    outcome: fn(&Outcome) -> bool,
    connections: u32,
}

/// Every fault the lab server can inject, each on a lab server queried
/// together with a healthy one: the documented outcome, retries where they
/// belong, and the healthy server's answer complete and exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lab_faults_with_a_healthy_neighbour() {
    use std::time::Duration as D;
    let complete: fn(&Outcome) -> bool = |o| *o == Outcome::Complete;
    let cases = vec![
        (
            "close-after",
            FaultCase {
                action: FaultAction::CloseAfter(5),
                only_first_connection: true,
                outcome: complete,
                connections: 2,
            },
        ),
        (
            "stall-after",
            FaultCase {
                action: FaultAction::StallAfter(3),
                only_first_connection: true,
                outcome: complete,
                connections: 2,
            },
        ),
        (
            "terminate in REPLY",
            FaultCase {
                action: FaultAction::DoneErrorAfter(0, StatusCode::QueryTerminated),
                only_first_connection: true,
                outcome: complete,
                connections: 2,
            },
        ),
        (
            "terminate in DONE",
            FaultCase {
                action: FaultAction::DoneErrorAfter(7, StatusCode::QueryTerminated),
                only_first_connection: true,
                outcome: complete,
                connections: 2,
            },
        ),
        (
            "malformed-at",
            FaultCase {
                action: FaultAction::MalformedAt(4),
                only_first_connection: true,
                outcome: complete,
                connections: 2,
            },
        ),
        (
            "wrong-xid-done",
            FaultCase {
                action: FaultAction::WrongXidDone,
                only_first_connection: true,
                outcome: complete,
                connections: 2,
            },
        ),
        (
            "client-link",
            FaultCase {
                action: FaultAction::ClientLink,
                only_first_connection: true,
                outcome: complete,
                connections: 2,
            },
        ),
        (
            "empty-data-at",
            FaultCase {
                action: FaultAction::EmptyDataAt(2),
                only_first_connection: false,
                outcome: complete,
                connections: 1,
            },
        ),
        (
            "delay-reply",
            FaultCase {
                action: FaultAction::DelayReply(D::from_millis(300)),
                only_first_connection: false,
                outcome: complete,
                connections: 1,
            },
        ),
        (
            "delay-each",
            FaultCase {
                action: FaultAction::DelayEach(D::from_millis(2)),
                only_first_connection: false,
                outcome: complete,
                connections: 1,
            },
        ),
        (
            "not-configured",
            FaultCase {
                action: FaultAction::DoneErrorAfter(0, StatusCode::NotConfigured),
                only_first_connection: false,
                outcome: |o| {
                    matches!(
                        o,
                        Outcome::ServerStatus(ServerStatus {
                            code: StatusCode::NotConfigured,
                            ..
                        })
                    )
                },
                connections: 1,
            },
        ),
        (
            "error in DONE",
            FaultCase {
                action: FaultAction::DoneErrorAfter(7, StatusCode::NotAllowed),
                only_first_connection: false,
                outcome: |o| {
                    matches!(
                        o,
                        Outcome::Partial(PartialReason::DoneStatus(ServerStatus {
                            code: StatusCode::NotAllowed,
                            ..
                        }))
                    )
                },
                connections: 1,
            },
        ),
        (
            "malformed every time",
            FaultCase {
                action: FaultAction::MalformedAt(4),
                only_first_connection: false,
                outcome: |o| {
                    matches!(
                        o,
                        Outcome::Partial(PartialReason::Protocol(ProtocolError::Malformed(_)))
                    )
                },
                connections: 2,
            },
        ),
    ];
    let spec = QuerySpec::new(Query::ByRelayId(RELAY_B.parse().unwrap()));
    let q = spec.encode(Xid::new(1).unwrap(), &requestor());
    let Expect::Bindings(want) = expect_with(&q, Reclaimed::Always) else {
        panic!()
    };
    for (name, case) in cases {
        let mut fault = Fault::always(case.action);
        if case.only_first_connection {
            fault = fault.on_connection(0);
        }
        let faulty = lab_server(vec![fault]).await;
        let healthy = lab_server(vec![]).await;
        let mut cfg = fanout_cfg(&[faulty.local_addr(), healthy.local_addr()]);
        cfg.queries = vec![spec.clone()];
        cfg.connection.data_timeout = Duration::from_millis(1000);
        cfg.retry = quick_retry(2);
        let (got, reports) = Fanout::start(cfg, OwnedBindings).collect().await;
        let find = |a: SocketAddr| reports.iter().find(|r| r.server == a).unwrap();
        let h = find(healthy.local_addr());
        assert!(h.is_complete(), "{name}: healthy {h}");
        assert_eq!(h.connections, 1, "{name}");
        let hb: Vec<Delivery> = got
            .iter()
            .filter(|d| d.server == h.server)
            .cloned()
            .collect();
        assert_eq!(union(&hb), want, "{name}: healthy set");
        assert_eq!(hb.len(), want.len(), "{name}");
        let f = find(faulty.local_addr());
        assert!((case.outcome)(&f.queries[0].outcome), "{name}: {f}");
        assert_eq!(f.connections, case.connections, "{name}: {f}");
        if f.queries[0].outcome == Outcome::Complete {
            let fb: Vec<Delivery> = got
                .iter()
                .filter(|d| d.server == f.server)
                .cloned()
                .collect();
            assert_eq!(union(&fb), want, "{name}: union over tries");
        }
        if name == "empty-data-at" {
            assert_eq!(f.queries[0].stats.as_ref().unwrap().dropped, 1);
        }
        faulty.shutdown().await.unwrap();
        healthy.shutdown().await.unwrap();
    }
}

/// Every binding twice: delivered twice (reconciliation merges them), complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lab_duplicate_bindings_are_delivered_as_sent() {
    let server = lab_server(vec![Fault::always(FaultAction::DuplicateBindings)]).await;
    let spec = QuerySpec::new(Query::ByRelayId(RELAY_B.parse().unwrap()));
    let (report, got) = run_server(
        server.local_addr(),
        &conn_cfg(),
        std::slice::from_ref(&spec),
        &quick_retry(1),
    )
    .await;
    assert!(report.is_complete(), "{report}");
    let Expect::Bindings(want) = expect_with(
        &spec.encode(Xid::new(1).unwrap(), &requestor()),
        Reclaimed::Always,
    ) else {
        panic!()
    };
    assert_eq!(union(&got), want);
    assert_eq!(got.len(), 2 * want.len());
    server.shutdown().await.unwrap();
}

/// The lab server shuts down mid-stream: the query in flight ends with
/// QueryTerminated (RFC 5460 5.5); the retry finds nobody listening.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lab_shutdown_mid_stream() {
    let server = lab_server(vec![Fault::always(FaultAction::DelayEach(
        Duration::from_millis(5),
    ))])
    .await;
    let addr = server.local_addr();
    let spec = QuerySpec::new(Query::ByRelayId(RELAY_B.parse().unwrap()));
    let h =
        tokio::spawn(async move { run_server(addr, &conn_cfg(), &[spec], &quick_retry(2)).await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    server.shutdown().await.unwrap();
    let (report, got) = h.await.unwrap();
    assert!(!got.is_empty() && got.len() < 108, "{}", got.len());
    assert_eq!(report.connections, 2);
    assert_eq!(
        report.queries[0].outcome,
        Outcome::TransportFailure(TransportError::Refused)
    );
}
