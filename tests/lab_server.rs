//! The lab server over TCP on loopback: query types, statuses, reply shapes.

mod common;

use common::*;
use pdrestore::proto::{
    ClientMessage, DhcpOption, Duid, LeaseKind, LqQuery, MessageType, Query, QueryType, RelayLayer,
    StatusCode,
};
use pdrestore::server::store::unix_now;
use pdrestore::server::{self, BindingStore, LeaseRecord, RelayData, ServerConfig, ServerHandle};
use std::collections::BTreeSet;
use std::sync::Arc;
use tokio::net::TcpListener;

const RELAY_A: &str = "000200000009010203040506";
const RELAY_B: &str = "0003000102005e000002";

fn remote(tag: &str) -> Vec<u8> {
    let mut v = 4491u32.to_be_bytes().to_vec();
    v.extend_from_slice(tag.as_bytes());
    v
}

fn layer(link: &str, peer: &str, relay: &str, tag: &str) -> RelayLayer {
    RelayLayer {
        hop_count: 0,
        link_address: addr(link),
        peer_address: addr(peer),
        interface_id: Some(format!("if-{tag}").into_bytes()),
        remote_id: Some(remote(tag)),
        relay_id: Some(relay.parse().unwrap()),
    }
}

fn rec(duid: &str, lease: &str, relay: Vec<RelayLayer>, now: u64) -> LeaseRecord {
    let lease = if lease.contains('/') {
        LeaseKind::Prefix(lease.parse().unwrap())
    } else {
        LeaseKind::Address(lease.parse().unwrap())
    };
    LeaseRecord {
        client_duid: duid.parse().unwrap(),
        lease,
        cltt: now - 10,
        preferred_until: now - 10 + 3000,
        valid_until: now - 10 + 4000,
        relay,
        reclaimed: false,
    }
}

/// Seven bindings: c1 (prefix + address) and c2 behind relay A on link
/// 2001:db8:1::/64, c3 behind relay B on 2001:db8:2::/64, c4 without relay
/// data in 2001:db8:2::/64, c5 expired and c6 reclaimed behind relay A.
fn fixture(now: u64) -> Vec<LeaseRecord> {
    let a = |peer| vec![layer("2001:db8:1::1", peer, RELAY_A, "CM-A")];
    let mut v = vec![
        rec("00030001c1", "2001:db8:8000::/56", a("fe80::1"), now),
        rec("00030001c1", "2001:db8:1::1001", a("fe80::1"), now),
        rec("00030001c2", "2001:db8:8000:100::/56", a("fe80::2"), now),
        rec(
            "00030001c3",
            "2001:db8:8000:200::/56",
            vec![layer("2001:db8:2::1", "fe80::3", RELAY_B, "CM-B")],
            now,
        ),
        rec("00030001c4", "2001:db8:2::50", vec![], now),
        rec("00030001c5", "2001:db8:8000:300::/56", a("fe80::5"), now),
        rec("00030001c6", "2001:db8:8000:400::/56", a("fe80::6"), now),
    ];
    v[5].valid_until = now - 1;
    v[5].preferred_until = now - 1;
    v[6].reclaimed = true;
    v
}

async fn start(cfg: ServerConfig) -> ServerHandle {
    let store = BindingStore::from_records(&fixture(unix_now()), &[]).unwrap();
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    server::spawn(l, Arc::new(store), cfg).unwrap()
}

/// The set of (lease, client) of a reply stream.
fn leases(msgs: &[Msg]) -> BTreeSet<(String, String)> {
    bindings(msgs)
        .iter()
        .map(|b| (b.lease.to_string(), b.client_duid.to_hex()))
        .collect()
}

fn set(items: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    items
        .iter()
        .map(|(l, d)| (l.to_string(), d.to_string()))
        .collect()
}

fn relay_id(s: &str) -> Query {
    Query::ByRelayId(s.parse().unwrap())
}

/// One REPLY with this status, no CLIENT_DATA, nothing else.
fn assert_error(msgs: &[Msg], status: StatusCode) {
    assert_eq!(shape(msgs), "R", "{msgs:?}");
    assert_eq!(msgs[0].status, Some(status));
    assert!(!msgs[0].codes.contains(&45));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_id_query_shape_times_and_link_filter() {
    let cfg = ServerConfig::default();
    let server_duid = cfg.server_duid.clone();
    let s = start(cfg).await;
    let a = s.local_addr();
    let msgs = ask(a, query(0x10, relay_id(RELAY_A))).await;
    // RFC 5460 s.5.2: REPLY (CLIENTID, SERVERID, first CLIENT_DATA), DATA, DONE.
    assert_eq!(shape(&msgs), "RDDE");
    assert_eq!(msgs[0].codes, vec![1, 2, 45], "no STATUS_CODE on success");
    assert_eq!(msgs[0].client_id.as_deref(), Some(requestor().as_bytes()));
    assert_eq!(msgs[0].server_id.as_deref(), Some(server_duid.as_bytes()));
    for m in &msgs[1..3] {
        assert_eq!(m.codes, vec![45]);
    }
    assert!(msgs[3].codes.is_empty());
    assert!(msgs.iter().all(|m| m.xid == 0x10));
    for m in &msgs[..3] {
        assert_eq!(m.client_data_codes.len(), 1);
        let c = &m.client_data_codes[0];
        assert_eq!(c[0], 1);
        assert!(c[1] == 5 || c[1] == 26);
        assert_eq!(&c[2..], &[46, 47]);
    }
    assert_eq!(
        leases(&msgs),
        set(&[
            ("2001:db8:8000::/56", "00030001c1"),
            ("2001:db8:1::1001", "00030001c1"),
            ("2001:db8:8000:100::/56", "00030001c2"),
        ]),
        "no expired (c5) nor reclaimed (c6) binding"
    );
    for b in bindings(&msgs) {
        assert!((10..=12).contains(&b.clt_time), "{b:?}");
        assert!((3988..=3990).contains(&b.valid_lifetime), "{b:?}");
        assert!((2988..=2990).contains(&b.preferred_lifetime), "{b:?}");
        assert_eq!(b.relay.len(), 1);
        assert_eq!(b.relay[0].link_address, addr("2001:db8:1::1"));
        assert_eq!(b.relay[0].remote_id.as_deref(), Some(&remote("CM-A")[..]));
        assert_eq!(b.relay[0].interface_id.as_deref(), Some(&b"if-CM-A"[..]));
        assert_eq!(b.relay[0].relay_id, Some(RELAY_A.parse().unwrap()));
    }
    // Peer-address of each binding's relay layer is the client's own.
    let c2 = bindings(&msgs)
        .into_iter()
        .find(|b| b.client_duid.to_hex() == "00030001c2")
        .unwrap();
    assert_eq!(c2.relay[0].peer_address, addr("fe80::2"));

    // Non-zero link-address: bindings on that link only (RFC 5460 s.7.2).
    let on_link = ask(
        a,
        query(0x11, relay_id(RELAY_A)).link_address(addr("2001:db8:1::77")),
    )
    .await;
    assert_eq!(leases(&on_link), leases(&msgs));
    let other_link = ask(
        a,
        query(0x12, relay_id(RELAY_A)).link_address(addr("2001:db8:2::1")),
    )
    .await;
    assert_eq!(shape(&other_link), "R");
    assert_eq!(
        other_link[0].codes,
        vec![1, 2],
        "nothing found: no STATUS_CODE"
    );
    let unconfigured = ask(
        a,
        query(0x13, relay_id(RELAY_A)).link_address(addr("2001:db8:ffff::1")),
    )
    .await;
    assert_error(&unconfigured, StatusCode::NotConfigured);
    let unknown = ask(a, query(0x14, relay_id("0003000102005e0000ff"))).await;
    assert_eq!(shape(&unknown), "R");
    assert_eq!(unknown[0].status, None);
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_remote_id_address_and_client_queries() {
    let s = start(ServerConfig::default()).await;
    let a = s.local_addr();
    // QUERY_BY_LINK_ADDRESS: any address of the link; the binding without
    // relay data is on the link holding its address.
    let msgs = ask(
        a,
        query(0x20, Query::ByLinkAddress).link_address(addr("2001:db8:2::9")),
    )
    .await;
    assert_eq!(shape(&msgs), "RDE");
    assert_eq!(
        leases(&msgs),
        set(&[
            ("2001:db8:2::50", "00030001c4"),
            ("2001:db8:8000:200::/56", "00030001c3"),
        ])
    );
    let no_relay = bindings(&msgs)
        .into_iter()
        .find(|b| b.client_duid.to_hex() == "00030001c4")
        .unwrap();
    assert!(no_relay.relay.is_empty());
    let msgs = ask(
        a,
        query(0x21, Query::ByLinkAddress).link_address(addr("2001:db8:1::1")),
    )
    .await;
    assert_eq!(leases(&msgs).len(), 3);
    assert_error(
        &ask(a, query(0x22, Query::ByLinkAddress)).await,
        StatusCode::MalformedQuery,
    );
    assert_error(
        &ask(
            a,
            query(0x23, Query::ByLinkAddress).link_address(addr("2001:db8:77::1")),
        )
        .await,
        StatusCode::NotConfigured,
    );

    // QUERY_BY_REMOTE_ID, with and without a link filter.
    let rid = |tag: &str| Query::ByRemoteId {
        enterprise: 4491,
        id: tag.as_bytes().to_vec(),
    };
    let msgs = ask(a, query(0x30, rid("CM-B"))).await;
    assert_eq!(
        leases(&msgs),
        set(&[("2001:db8:8000:200::/56", "00030001c3")])
    );
    assert_eq!(shape(&msgs), "RE");
    let msgs = ask(a, query(0x31, rid("CM-A"))).await;
    assert_eq!(leases(&msgs).len(), 3);
    let msgs = ask(
        a,
        query(0x32, rid("CM-B")).link_address(addr("2001:db8:1::1")),
    )
    .await;
    assert_eq!(shape(&msgs), "R");
    assert_error(
        &ask(
            a,
            query(0x33, rid("CM-B")).link_address(addr("2001:db8:99::1")),
        )
        .await,
        StatusCode::NotConfigured,
    );

    // QUERY_BY_ADDRESS: an address lease, or a delegated prefix holding it.
    let msgs = ask(a, query(0x40, Query::ByAddress(addr("2001:db8:1::1001")))).await;
    assert_eq!(leases(&msgs), set(&[("2001:db8:1::1001", "00030001c1")]));
    let msgs = ask(
        a,
        query(0x41, Query::ByAddress(addr("2001:db8:8000:1ab::1"))),
    )
    .await;
    assert_eq!(
        leases(&msgs),
        set(&[("2001:db8:8000:100::/56", "00030001c2")])
    );
    let msgs = ask(
        a,
        query(0x42, Query::ByAddress(addr("2001:db8:8000:300::1"))),
    )
    .await;
    assert_eq!(shape(&msgs), "R", "expired binding not sent");

    // QUERY_BY_CLIENTID: every binding of the client, one per CLIENT_DATA.
    let c1: Duid = "00030001c1".parse().unwrap();
    let msgs = ask(a, query(0x50, Query::ByClientId(c1.clone()))).await;
    assert_eq!(shape(&msgs), "RDE");
    assert_eq!(leases(&msgs).len(), 2);
    let msgs = ask(
        a,
        query(0x51, Query::ByClientId(c1)).link_address(addr("2001:db8:3::1")),
    )
    .await;
    assert_error(&msgs, StatusCode::NotConfigured);
    s.shutdown().await.unwrap();
}

fn raw_query(xid: u32, options: Vec<DhcpOption>) -> Vec<u8> {
    ClientMessage {
        msg_type: MessageType::Leasequery,
        transaction_id: xid,
        options,
    }
    .to_bytes()
}

fn lq(query_type: u8, options: Vec<DhcpOption>) -> DhcpOption {
    DhcpOption::LqQuery(LqQuery {
        query_type: QueryType::from(query_type),
        link_address: std::net::Ipv6Addr::UNSPECIFIED,
        options,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_statuses() {
    let s = start(ServerConfig::default()).await;
    let mut c = Conn::connect(s.local_addr()).await;
    let me = DhcpOption::ClientId(requestor());
    let cases: Vec<(u32, Vec<DhcpOption>, StatusCode)> = vec![
        // RFC 5007 s.4.3.2 / RFC 5460 s.7.2.
        (
            1,
            vec![me.clone(), lq(99, vec![])],
            StatusCode::UnknownQueryType,
        ),
        (
            2,
            vec![me.clone(), lq(3, vec![])],
            StatusCode::MalformedQuery,
        ),
        (
            3,
            vec![me.clone(), lq(5, vec![])],
            StatusCode::MalformedQuery,
        ),
        (
            4,
            vec![me.clone(), lq(1, vec![])],
            StatusCode::MalformedQuery,
        ),
        (
            5,
            vec![me.clone(), lq(2, vec![])],
            StatusCode::MalformedQuery,
        ),
        (6, vec![me.clone()], StatusCode::MalformedQuery),
        (7, vec![lq(3, vec![])], StatusCode::MalformedQuery),
    ];
    for (xid, opts, status) in &cases {
        c.send(&raw_query(*xid, opts.clone())).await;
        let m = c.collect(&[*xid]).await;
        assert_error(&m, *status);
        assert_eq!(m[0].xid, *xid);
        if opts.iter().any(|o| matches!(o, DhcpOption::ClientId(_))) {
            assert_eq!(m[0].client_id.as_deref(), Some(requestor().as_bytes()));
        }
    }
    // An option overrunning the message: MalformedQuery, the connection lives on.
    let mut bad = raw_query(8, vec![me.clone()]);
    bad.extend_from_slice(&[0, 44, 0, 40, 3]);
    c.send(&bad).await;
    assert_error(&c.collect(&[8]).await, StatusCode::MalformedQuery);
    c.send_query(&query(9, relay_id(RELAY_B))).await;
    assert_eq!(shape(&c.collect(&[9]).await), "RE");
    // A message that is not a LEASEQUERY closes the connection (RFC 5460 s.4).
    c.send(&[1, 0, 0, 10]).await;
    assert!(c.closed_within(std::time::Duration::from_secs(5)).await);
    s.shutdown().await.unwrap();

    // NotAllowed: requestor not in the list, or query type not permitted.
    let s = start(ServerConfig {
        allowed_requestors: vec!["0003000199".parse().unwrap()],
        ..ServerConfig::default()
    })
    .await;
    assert_error(
        &ask(s.local_addr(), query(1, relay_id(RELAY_A))).await,
        StatusCode::NotAllowed,
    );
    s.shutdown().await.unwrap();
    let s = start(ServerConfig {
        allowed_query_types: vec![QueryType::ByRelayId],
        ..ServerConfig::default()
    })
    .await;
    assert_error(
        &ask(
            s.local_addr(),
            query(1, Query::ByLinkAddress).link_address(addr("2001:db8:1::1")),
        )
        .await,
        StatusCode::NotAllowed,
    );
    assert_eq!(
        shape(&ask(s.local_addr(), query(2, relay_id(RELAY_A))).await),
        "RDDE"
    );
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kea_style_options_grouping_and_relay_data() {
    // status_on_success + serve_reclaimed (Kea mode).
    let s = start(ServerConfig::default().kea_mode()).await;
    let a = s.local_addr();
    let msgs = ask(a, query(1, relay_id(RELAY_A))).await;
    assert_eq!(msgs[0].status, Some(StatusCode::Success));
    assert_eq!(msgs[0].codes, vec![1, 2, 13, 45]);
    assert_eq!(leases(&msgs).len(), 4, "reclaimed c6 served to relay-id");
    let msgs = ask(
        a,
        query(2, Query::ByLinkAddress).link_address(addr("2001:db8:1::1")),
    )
    .await;
    assert_eq!(leases(&msgs).len(), 3, "but not to a link query");
    let msgs = ask(a, query(3, relay_id("0003000102005e0000ff"))).await;
    assert_eq!(shape(&msgs), "R");
    assert_eq!(msgs[0].status, Some(StatusCode::Success));
    s.shutdown().await.unwrap();

    // Grouped: a client's bindings share one CLIENT_DATA.
    let s = start(ServerConfig {
        one_binding_per_client_data: false,
        ..ServerConfig::default()
    })
    .await;
    let msgs = ask(s.local_addr(), query(1, relay_id(RELAY_A))).await;
    assert_eq!(shape(&msgs), "RDE");
    let per_cd: Vec<usize> = msgs
        .iter()
        .filter(|m| !m.bindings.is_empty())
        .map(|m| m.bindings.len())
        .collect();
    assert_eq!(per_cd, vec![2, 1]);
    assert_eq!(leases(&msgs).len(), 3);
    s.shutdown().await.unwrap();

    // LQ_RELAY_DATA only when the ORO asks for it.
    let s = start(ServerConfig {
        relay_data: RelayData::WhenRequested,
        ..ServerConfig::default()
    })
    .await;
    let msgs = ask(
        s.local_addr(),
        query(1, relay_id(RELAY_A)).request_relay_data(false),
    )
    .await;
    assert!(msgs[0].client_data_codes[0].iter().all(|&c| c != 47));
    let msgs = ask(s.local_addr(), query(2, relay_id(RELAY_A))).await;
    assert!(msgs[0].client_data_codes[0].contains(&47));
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grouping_splits_large_clients() {
    let now = unix_now();
    let recs: Vec<LeaseRecord> = (0..100)
        .map(|i| {
            rec(
                "00030001aa",
                &format!("2001:db8:9000:{i:x}00::/56"),
                vec![layer("2001:db8:1::1", "fe80::1", RELAY_A, "CM-A")],
                now,
            )
        })
        .collect();
    let store = BindingStore::from_records(&recs, &[]).unwrap();
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let s = server::spawn(
        l,
        Arc::new(store),
        ServerConfig {
            one_binding_per_client_data: false,
            ..ServerConfig::default()
        },
    )
    .unwrap();
    let msgs = ask(
        s.local_addr(),
        query(1, Query::ByClientId("00030001aa".parse().unwrap())),
    )
    .await;
    assert_eq!(shape(&msgs), "RDE");
    assert_eq!(msgs[0].bindings.len(), 64);
    assert_eq!(msgs[1].bindings.len(), 36);
    assert_eq!(leases(&msgs).len(), 100);
    s.shutdown().await.unwrap();
}
