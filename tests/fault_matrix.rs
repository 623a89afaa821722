//! The fault matrix (issue 8, docs/reliability.md): one test per row.
//!
//! The protocol rows (a server that refuses, goes silent, cuts the stream,
//! ends with an error status, terminates the query, sends a bad frame, an
//! unknown xid, an empty DATA, LQ_CLIENT_LINK, duplicates, disagrees with
//! another, offers rogue prefixes, streams forever, sends an enormous relay
//! chain) run the whole recovery (`pdrestore::agent::recover`) against lab
//! servers on the host's loopback (127.0.0.1, ephemeral ports) into an
//! in-memory route table (`MemoryTable`) standing in for a router with the
//! client links cust0, cust1, ... (`route_lab::client_interfaces`): no root
//! needed, and no route of the host is touched. They check the summary and
//! the table's routes.
//!
//! The rows where the kernel or a process boundary matters (a netlink error
//! from the kernel, SIGTERM to the real binary during installation, the
//! relay DUID file) run in a private network namespace with veth client
//! links and check the kernel's table (`ip -6 route`). They need root and
//! iproute2: skipped with a `SKIPPED` line otherwise, a failure under CI
//! (tests/support). Everything stays inside the namespaces they create.
//!
//! In every row with a failing server, a healthy server runs alongside and
//! its routes must all be installed (one bad server never spoils the
//! others), and a stale `proto dhcp` route must survive (no pruning unless
//! every server answered completely).

mod route_lab;
mod support;
use pdrestore::agent::{RecoverOptions, Summary};
use pdrestore::config::Config;
use pdrestore::netns::NetNs;
use pdrestore::proto::{
    Binding, ClientMessage, DhcpOption, Duid, IaPrefix, LeaseKind, MessageType, MessageView,
    OptionView, RelayLayer, RelayMessage,
};
use pdrestore::routes::{Interface, MemoryTable, NetlinkTable, Route, RouteTable};
use pdrestore::server::{self, BindingStore, Fault, ServerConfig};
use route_lab::{layer, pd, pdrestore_in, table_lines, wait_listening, Child, RELAY};
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const POOL: &str = "2001:db8:8000::/40";
/// A route no server backs: removed when every server answered completely,
/// kept otherwise.
const STALE: &str = "2001:db8:8000:f00::/56";

fn on(link: u8, peer: &str) -> Vec<RelayLayer> {
    vec![layer(
        &format!("2001:db8:0:{}::1", link + 1),
        peer,
        &format!("ge-0/0/{link}"),
        Some(RELAY),
    )]
}

/// The healthy server's bindings: three prefixes and one address.
fn good() -> Vec<Binding> {
    let mut na = pd(
        "0003000100000000000a",
        "2001:db8:8000::/56",
        5,
        on(1, "fe80::a"),
    );
    na.lease = LeaseKind::Address("2001:db8:0:2::55".parse().unwrap());
    vec![
        pd(
            "00030001000000000001",
            "2001:db8:8000:100::/56",
            5,
            on(0, "fe80::1"),
        ),
        pd(
            "00030001000000000002",
            "2001:db8:8000:200::/56",
            9,
            on(0, "fe80::2"),
        ),
        pd(
            "00030001000000000003",
            "2001:db8:8000:300::/56",
            3,
            on(1, "fe80::3"),
        ),
        na,
    ]
}

const GOOD: [&str; 3] = [
    "2001:db8:8000:100::/56",
    "2001:db8:8000:200::/56",
    "2001:db8:8000:300::/56",
];

/// The faulty server's own bindings: three other prefixes, one per message.
fn other() -> Vec<Binding> {
    vec![
        pd(
            "000300010000000000a1",
            "2001:db8:8000:a00::/56",
            4,
            on(0, "fe80::a1"),
        ),
        pd(
            "000300010000000000a2",
            "2001:db8:8000:b00::/56",
            4,
            on(1, "fe80::a2"),
        ),
        pd(
            "000300010000000000a3",
            "2001:db8:8000:c00::/56",
            4,
            on(0, "fe80::a3"),
        ),
    ]
}

const OTHER: [&str; 3] = [
    "2001:db8:8000:a00::/56",
    "2001:db8:8000:b00::/56",
    "2001:db8:8000:c00::/56",
];

/// One server of a row.
enum Srv {
    /// A lab server with these bindings and faults.
    Lab(Vec<Binding>, &'static [&'static str]),
    /// Nothing listens on the port.
    Closed,
    /// Answers every query with a REPLY, then LEASEQUERY-DATA forever.
    Endless,
    /// Answers every query with a REPLY whose one binding has a relay chain
    /// of this many layers (more than the lab server will encode), then DONE.
    Deep(usize),
}

/// A namespace with the client links cust0, cust1 (and more when asked),
/// and the stale route.
fn lab(links: u32) -> Option<NetNs> {
    let ns = route_lab::client_links("pdr-fault", links)?;
    ns.ip([
        "-6", "route", "add", STALE, "via", "fe80::f", "dev", "cust0", "table", "100", "proto",
        "dhcp",
    ])
    .unwrap();
    Some(ns)
}

fn config_text(servers: &[SocketAddr], top: &str, pools: &[&str], tail: &str) -> String {
    let timeout = if top.contains("data_timeout") {
        ""
    } else {
        "data_timeout = \"2s\"\n"
    };
    let mut t = format!(
        "relay_duid = \"{RELAY}\"\nstate_directory = \"/nonexistent\"\n{timeout}retries = 1\nretry_initial_delay = \"50ms\"\nstartup_deadline = \"0s\"\n{top}\n"
    );
    for s in servers {
        t.push_str(&format!(
            "[[server]]\naddress = \"{}\"\nport = {}\n",
            s.ip(),
            s.port()
        ));
    }
    let pools: Vec<String> = pools.iter().map(|p| format!("{p:?}")).collect();
    t.push_str(&format!(
        "[routes]\ntable = 100\nmetric = 512\nprotocol = 16\nprune_limit = \"100%\"\nallowed_prefixes = [{}]\n[routes.interfaces]\n\"ge-0/0/0\" = \"cust0\"\n\"ge-0/0/1\" = \"cust1\"\n\"ge-0/0/2\" = \"cust2\"\n{tail}\n",
        pools.join(", ")
    ));
    t
}

/// The in-memory router: the interfaces of `lab(links)`, and its table
/// holding the stale route as `lab` adds it (`ip -6 route add` without a
/// metric: 1024).
fn router(links: u32) -> (MemoryTable, Vec<Interface>) {
    let ifs = route_lab::client_interfaces(links);
    let mut table = route_lab::memory_table(&ifs);
    let cust0 = ifs.iter().find(|i| &*i.name == "cust0").unwrap();
    table.insert(Route {
        prefix: STALE.parse().unwrap(),
        gateway: "fe80::f".parse().unwrap(),
        interface: cust0.name.clone(),
        ifindex: cust0.index,
        table: 100,
        protocol: 16,
        metric: 1024,
        expires: None,
    });
    (table, ifs)
}

/// Serve `servers` on 127.0.0.1 and recover into the in-memory router with
/// `links` client links; the summary and the table afterwards.
fn run(links: u32, servers: Vec<Srv>, top: &str, tail: &str) -> (Summary, MemoryTable) {
    run_pools(links, servers, top, &[POOL], tail)
}

fn run_pools(
    links: u32,
    servers: Vec<Srv>,
    top: &str,
    pools: &[&str],
    tail: &str,
) -> (Summary, MemoryTable) {
    let (table, ifs) = router(links);
    route_lab::block_on(serve_and_recover(
        Ipv4Addr::LOCALHOST.into(),
        servers,
        top,
        pools,
        tail,
        table,
        ifs,
    ))
}

/// Serve `servers` on the namespace's loopback and recover into its kernel
/// table (netlink).
fn run_kernel(ns: &NetNs, servers: Vec<Srv>) -> Summary {
    ns.run(move || async move {
        let mut table = NetlinkTable::open().unwrap();
        let ifs = table.interfaces().await.unwrap();
        let host = Ipv6Addr::LOCALHOST.into();
        serve_and_recover(host, servers, "", &[POOL], "", table, ifs)
            .await
            .0
    })
    .unwrap()
}

/// Serve `servers` on `host` (ephemeral ports) and recover into `table`,
/// a router with the interfaces `ifs`.
async fn serve_and_recover<T: RouteTable>(
    host: IpAddr,
    servers: Vec<Srv>,
    top: &str,
    pools: &[&str],
    tail: &str,
    table: T,
    ifs: Vec<Interface>,
) -> (Summary, T) {
    let mut handles = Vec::new();
    let mut addrs = Vec::new();
    for (n, srv) in servers.into_iter().enumerate() {
        let l = TcpListener::bind((host, 0)).await.unwrap();
        addrs.push(l.local_addr().unwrap());
        match srv {
            Srv::Lab(b, faults) => {
                let store =
                    BindingStore::from_bindings(&b, server::store::unix_now(), &[]).unwrap();
                let cfg = ServerConfig {
                    server_duid: Duid::new_en(32473, format!("lab-{n}").as_bytes()),
                    faults: faults.iter().map(|f| f.parse::<Fault>().unwrap()).collect(),
                    ..ServerConfig::default()
                };
                handles.push(server::spawn(l, Arc::new(store), cfg).unwrap());
            }
            Srv::Closed => drop(l),
            Srv::Endless => {
                tokio::spawn(rogue(l, None));
            }
            Srv::Deep(depth) => {
                tokio::spawn(rogue(l, Some(depth)));
            }
        }
    }
    let text = config_text(&addrs, top, pools, tail);
    let cfg = Config::parse(&text, std::path::Path::new("fault.toml")).unwrap();
    let opts = RecoverOptions::default();
    route_lab::recover_then_stop(&cfg, RELAY, table, ifs, &opts, handles).await
}

/// A relay chain of `depth` layers, outermost first, ending in our relay
/// (RELAY_ID, interface-id ge-0/0/0) next to the client fe80::d.
fn deep_chain(depth: usize) -> RelayMessage {
    let mut m = RelayMessage {
        msg_type: MessageType::RelayForw,
        hop_count: 0,
        link_address: "2001:db8:0:1::1".parse().unwrap(),
        peer_address: "fe80::d".parse().unwrap(),
        options: vec![
            DhcpOption::InterfaceId(b"ge-0/0/0".to_vec()),
            DhcpOption::RelayId(RELAY.parse().unwrap()),
        ],
    };
    for hop in 1..depth {
        m = RelayMessage {
            msg_type: MessageType::RelayForw,
            hop_count: hop as u8,
            link_address: Ipv6Addr::UNSPECIFIED,
            peer_address: format!("2001:db8:ffff::{hop:x}").parse().unwrap(),
            options: vec![
                DhcpOption::InterfaceId(b"uplink".to_vec()),
                DhcpOption::RelayMsg(Box::new(pdrestore::proto::Message::Relay(m))),
            ],
        };
    }
    m
}

/// A rogue server. With `deep` None: REPLY with one CLIENT_DATA, then DATA
/// messages without end, until the requestor goes away. With `Some(depth)`:
/// REPLY with one binding whose relay chain has `depth` layers, then DONE.
async fn rogue(l: TcpListener, deep: Option<usize>) {
    while let Ok((mut s, _)) = l.accept().await {
        tokio::spawn(async move {
            let mut len = [0u8; 2];
            if s.read_exact(&mut len).await.is_err() {
                return;
            }
            let mut q = vec![0u8; u16::from_be_bytes(len) as usize];
            if s.read_exact(&mut q).await.is_err() {
                return;
            }
            let v = MessageView::parse_validated(&q).unwrap();
            let xid = v.transaction_id();
            let us = v
                .options()
                .valid()
                .find_map(|o| match o {
                    OptionView::ClientId(d) => Some(Duid::from_bytes(d)),
                    _ => None,
                })
                .unwrap();
            let cd = |n: u32| {
                let relay = deep.map(deep_chain).unwrap_or_else(|| RelayMessage {
                    msg_type: MessageType::RelayForw,
                    hop_count: 0,
                    link_address: "2001:db8:0:1::1".parse().unwrap(),
                    peer_address: "fe80::e".parse().unwrap(),
                    options: vec![
                        DhcpOption::InterfaceId(b"ge-0/0/0".to_vec()),
                        DhcpOption::RelayId(RELAY.parse().unwrap()),
                    ],
                });
                DhcpOption::ClientData(vec![
                    DhcpOption::ClientId(Duid::from_bytes(vec![0, 3, 0, 1, 0xee, n as u8])),
                    DhcpOption::IaPrefix(IaPrefix {
                        preferred_lifetime: 1800,
                        valid_lifetime: 3600,
                        prefix: format!("2001:db8:8000:e{}00::/56", n % 4).parse().unwrap(),
                        options: vec![],
                    }),
                    DhcpOption::CltTime(1),
                    DhcpOption::LqRelayData {
                        peer_address: relay.peer_address,
                        message: relay,
                    },
                ])
            };
            let frame = |t: MessageType, options: Vec<DhcpOption>, out: &mut Vec<u8>| {
                let m = ClientMessage {
                    msg_type: t,
                    transaction_id: xid,
                    options,
                }
                .to_bytes();
                out.extend_from_slice(&(m.len() as u16).to_be_bytes());
                out.extend_from_slice(&m);
            };
            let mut out = Vec::new();
            frame(
                MessageType::LeasequeryReply,
                vec![
                    DhcpOption::ClientId(us),
                    DhcpOption::ServerId(Duid::new_en(32473, b"endless")),
                    cd(0),
                ],
                &mut out,
            );
            if deep.is_some() {
                frame(MessageType::LeasequeryDone, vec![], &mut out);
                let _ = s.write_all(&out).await;
                let _ = s.read(&mut [0u8; 1]).await;
                return;
            }
            let mut n = 1;
            loop {
                for _ in 0..64 {
                    frame(MessageType::LeasequeryData, vec![cd(n)], &mut out);
                    n += 1;
                }
                if s.write_all(&out).await.is_err() {
                    return;
                }
                out.clear();
            }
        });
    }
}

/// The kernel table's routes, `expires NNNsec` normalised to `expires ~`.
fn kernel_routes(ns: &NetNs) -> Vec<String> {
    table_lines(ns, 100)
        .iter()
        .map(|l| {
            let mut w: Vec<String> = l.split_whitespace().map(str::to_owned).collect();
            if let Some(i) = w.iter().position(|x| x == "expires") {
                w[i + 1] = "~".into();
            }
            w.join(" ")
        })
        .collect()
}

/// The destinations of our (`proto dhcp`) routes in the kernel table;
/// panics on a duplicate.
fn kernel_ours(ns: &NetNs) -> BTreeSet<String> {
    let mut set = BTreeSet::new();
    for l in kernel_routes(ns) {
        if l.contains(" proto dhcp ") {
            let p = l.split_whitespace().next().unwrap().to_string();
            assert!(set.insert(p), "duplicate route: {l}");
        }
    }
    set
}

/// The in-memory table's routes as `ip -6 route` shows them
/// (`route_lab::memory_routes`), `expires ~` for a lifetime of about an
/// hour. Panics on a route outside table 100 or of another protocol.
fn routes(t: &MemoryTable) -> Vec<String> {
    for r in t.routes() {
        assert_eq!((r.table, r.protocol), (100, 16), "{r:?}");
    }
    route_lab::memory_routes(t)
        .into_iter()
        .map(|l| match l.split_once(" expires ") {
            None => l,
            Some((head, e)) => {
                let secs: u32 = e.trim_end_matches("sec").parse().unwrap();
                assert!((3590..=3600).contains(&secs), "{l}");
                format!("{head} expires ~")
            }
        })
        .collect()
}

/// The destinations of our routes (protocol 16, table 100: every route of
/// the in-memory table is); panics on a duplicate.
fn ours(t: &MemoryTable) -> BTreeSet<String> {
    let mut set = BTreeSet::new();
    for l in routes(t) {
        let p = l.split_whitespace().next().unwrap().to_string();
        assert!(set.insert(p), "duplicate route: {l}");
    }
    set
}

fn set(groups: &[&[&str]]) -> BTreeSet<String> {
    groups
        .iter()
        .flat_map(|g| g.iter().map(|s| s.to_string()))
        .collect()
}

/// A run where server 0 failed and server 1 (healthy) did not: partial,
/// exit 1, no prune, the healthy server's routes all there, the stale one kept.
fn assert_partial_others_kept(s: &Summary) {
    assert_eq!(
        (s.outcome.as_str(), s.exit_code),
        ("partial", 1),
        "{}",
        s.to_text()
    );
    assert!(!s.servers[0].complete);
    assert_eq!(s.servers[1].status, "complete", "{}", s.to_text());
    assert_eq!(s.servers[1].bindings, 4);
    assert!(!s.routes.pruned, "no prune while a server failed");
    assert_eq!(s.routes.removed, 0);
    assert!(s.routes.failed.is_empty(), "{:?}", s.routes.failed);
}

/// Row: connection refused. Retried, then reported; the other server's
/// routes are installed and nothing is pruned.
#[test]
fn connection_refused() {
    let (s, t) = run(2, vec![Srv::Closed, Srv::Lab(good(), &[])], "", "");
    assert_partial_others_kept(&s);
    assert_eq!(s.servers[0].status, "transport failure: connection refused");
    assert_eq!(s.servers[0].connections, 2, "first try and one retry");
    assert_eq!(s.servers[0].bindings, 0);
    assert_eq!(ours(&t), set(&[&GOOD, &[STALE]]));
}

/// Row: accept then silence. The first-answer timeout ends the wait (not
/// BULK_LQ_DATA_TIMEOUT: nothing came at all); retried once; reported as
/// no answer.
#[test]
fn accept_then_silence_is_no_answer() {
    let t0 = Instant::now();
    let (s, t) = run(
        2,
        vec![Srv::Lab(other(), &["stall-after=0"]), Srv::Lab(good(), &[])],
        "first_answer_timeout = \"1s\"",
        "",
    );
    assert_partial_others_kept(&s);
    assert_eq!(s.servers[0].status, "no answer to the query");
    assert_eq!(s.servers[0].status_code, "no-answer");
    assert_eq!(s.servers[0].queries[0].attempts, 2);
    assert_eq!(s.servers[0].bindings, 0);
    assert!(
        t0.elapsed() >= Duration::from_secs(2),
        "two first-answer timeouts"
    );
    assert!(t0.elapsed() < Duration::from_secs(10), "bounded");
    assert_eq!(ours(&t), set(&[&GOOD, &[STALE]]));
}

/// Row: close mid-stream. The partial answer is retried; when the retry
/// completes, the server counts as complete (and pruning may run); when
/// every try is cut, what arrived is installed but marked partial, the
/// server is reported, and nothing is pruned.
#[test]
fn close_mid_stream_is_kept_apart_retried_and_reported() {
    // Cut once: the retry completes.
    let (s, t) = run(
        2,
        vec![
            Srv::Lab(other(), &["close-after=2,conn=0"]),
            Srv::Lab(good(), &[]),
        ],
        "",
        "",
    );
    assert_eq!(
        (s.outcome.as_str(), s.exit_code),
        ("complete", 0),
        "{}",
        s.to_text()
    );
    assert_eq!(s.servers[0].status, "complete");
    assert_eq!(s.servers[0].queries[0].attempts, 2);
    assert_eq!(s.servers[0].connections, 2);
    assert_eq!(
        s.servers[0].bindings,
        2 + 3,
        "the cut try's two, then all three"
    );
    assert!(s.routes.pruned);
    assert_eq!(s.routes.removed, 1, "the stale route");
    assert_eq!(ours(&t), set(&[&GOOD, &OTHER]));

    // Cut every time: partial, reported, used, no prune.
    let (s, t) = run(
        2,
        vec![Srv::Lab(other(), &["close-after=2"]), Srv::Lab(good(), &[])],
        "",
        "",
    );
    assert_partial_others_kept(&s);
    assert_eq!(
        s.servers[0].status,
        "partial: connection closed by the server"
    );
    assert_eq!(s.servers[0].queries[0].attempts, 2);
    assert_eq!(s.servers[0].bindings, 4, "two per try");
    let got = ours(&t);
    assert_eq!(got.len(), 3 + 2 + 1, "{got:?}");
    assert!(got.contains(STALE));
    assert_eq!(
        got.intersection(&set(&[&OTHER])).count(),
        2,
        "what the cut stream delivered is installed"
    );
}

/// Row: LEASEQUERY-DONE with an error status after data (RFC 5460 s.5.2.2):
/// partial. UnspecFail is retried; NotAllowed is final.
#[test]
fn done_with_an_error_status() {
    let (s, t) = run(
        2,
        vec![
            Srv::Lab(other(), &["done-error=2:1"]),
            Srv::Lab(good(), &[]),
        ],
        "",
        "",
    );
    assert_partial_others_kept(&s);
    assert!(
        s.servers[0]
            .status
            .starts_with("partial: DONE with status UnspecFail"),
        "{}",
        s.servers[0].status
    );
    assert_eq!(s.servers[0].queries[0].attempts, 2, "UnspecFail is retried");
    assert_eq!(ours(&t).len(), 3 + 2 + 1);

    let (s, t) = run(
        2,
        vec![
            Srv::Lab(other(), &["done-error=2:10"]),
            Srv::Lab(good(), &[]),
        ],
        "",
        "",
    );
    assert_partial_others_kept(&s);
    assert!(
        s.servers[0]
            .status
            .starts_with("partial: DONE with status NotAllowed"),
        "{}",
        s.servers[0].status
    );
    assert_eq!(s.servers[0].queries[0].attempts, 1, "NotAllowed is final");
    let got = ours(&t);
    assert_eq!(got.len(), 3 + 2 + 1, "{got:?}");
    assert_eq!(got.intersection(&set(&[&GOOD, &[STALE]])).count(), 3 + 1);
}

/// Row: QueryTerminated (RFC 5460 s.5.5), then success on the retry, which
/// waits the terminated delay first.
#[test]
fn query_terminated_then_success_on_retry() {
    let (s, t) = run(
        2,
        vec![
            Srv::Lab(other(), &["terminate-at=2,conn=0"]),
            Srv::Lab(good(), &[]),
        ],
        "",
        "",
    );
    assert_eq!(
        (s.outcome.as_str(), s.exit_code),
        ("complete", 0),
        "{}",
        s.to_text()
    );
    assert_eq!(s.servers[0].status, "complete");
    assert_eq!(s.servers[0].queries[0].attempts, 2);
    assert!(
        s.servers[0].duration_ms >= 5000,
        "waited after QueryTerminated: {} ms",
        s.servers[0].duration_ms
    );
    assert!(s.routes.pruned);
    assert_eq!(ours(&t), set(&[&GOOD, &OTHER]));
}

/// Row: a frame that does not decode. A protocol error closes the
/// connection (the stream can no longer be trusted); retried; reported.
#[test]
fn malformed_frame() {
    let (s, t) = run(
        2,
        vec![
            Srv::Lab(other(), &["malformed-at=2"]),
            Srv::Lab(good(), &[]),
        ],
        "",
        "",
    );
    assert_partial_others_kept(&s);
    assert!(
        s.servers[0]
            .status
            .starts_with("partial: protocol error: malformed message"),
        "{}",
        s.servers[0].status
    );
    assert_eq!(s.servers[0].queries[0].attempts, 2);
    assert_eq!(
        s.servers[0].bindings, 4,
        "the two before the bad frame, twice"
    );
    assert_eq!(ours(&t).len(), 3 + 2 + 1);
}

/// Row: LEASEQUERY-DONE with a transaction-id no query has: the connection
/// is closed, as RFC 5460 s.6.3 requires.
#[test]
fn done_with_an_unknown_xid_closes_the_connection() {
    let (s, t) = run(
        2,
        vec![
            Srv::Lab(other(), &["wrong-xid-done"]),
            Srv::Lab(good(), &[]),
        ],
        "",
        "",
    );
    assert_partial_others_kept(&s);
    let st = &s.servers[0].status;
    assert!(
        st.starts_with("partial: connection aborted: LEASEQUERY-DONE(16) with transaction-id")
            && st.ends_with("matches no outstanding query (RFC 5460 6.3)"),
        "{st}"
    );
    assert_eq!(s.servers[0].queries[0].attempts, 2);
    assert_eq!(ours(&t), set(&[&GOOD, &OTHER, &[STALE]]));
}

/// Row: LEASEQUERY-DATA without OPTION_CLIENT_DATA is discarded (RFC 5460
/// s.6.3); the rest of the stream counts and the answer is complete.
#[test]
fn data_without_client_data_is_discarded() {
    let (s, t) = run(
        2,
        vec![
            Srv::Lab(other(), &["empty-data-at=2"]),
            Srv::Lab(good(), &[]),
        ],
        "",
        "",
    );
    assert_eq!(
        (s.outcome.as_str(), s.exit_code),
        ("complete", 0),
        "{}",
        s.to_text()
    );
    assert_eq!(s.servers[0].status, "complete");
    assert_eq!(s.servers[0].bindings, 3);
    assert_eq!(s.servers[0].queries[0].attempts, 1);
    assert_eq!(ours(&t), set(&[&GOOD, &OTHER]));
}

/// Row: OPTION_LQ_CLIENT_LINK in a bulk reply (RFC 5460 s.6.3: MUST NOT):
/// a protocol error; nothing of that reply is used.
#[test]
fn lq_client_link_is_a_protocol_error() {
    let (s, t) = run(
        2,
        vec![Srv::Lab(other(), &["client-link"]), Srv::Lab(good(), &[])],
        "",
        "",
    );
    assert_partial_others_kept(&s);
    assert_eq!(
        s.servers[0].status,
        "partial: protocol error: OPTION_LQ_CLIENT_LINK in a bulk reply (RFC 5460 6.3)"
    );
    assert_eq!(s.servers[0].bindings, 0);
    assert_eq!(ours(&t), set(&[&GOOD, &[STALE]]));
}

/// Row: every binding sent twice. One route each, no conflict, no duplicate.
#[test]
fn duplicate_bindings_give_one_route_each() {
    let (s, t) = run(2, vec![Srv::Lab(good(), &["duplicate-bindings"])], "", "");
    assert_eq!(
        (s.outcome.as_str(), s.exit_code),
        ("complete", 0),
        "{}",
        s.to_text()
    );
    assert_eq!(s.bindings, 8, "4 bindings, each twice");
    assert_eq!(s.routes.planned, 3);
    assert_eq!(s.routes.added, 3);
    assert!(s.conflicts.is_empty());
    assert_eq!(
        ours(&t),
        set(&[&GOOD]),
        "the stale one pruned, no duplicate"
    );
}

/// Row: two servers disagreeing about a prefix. The most recent client
/// transaction wins (RFC 5007 s.4.3.4), whatever the server order; the
/// conflict is reported.
#[test]
fn two_servers_disagreeing() {
    let old = || {
        vec![pd(
            "000300010000000000b1",
            "2001:db8:8000:100::/56",
            500,
            on(0, "fe80::b1"),
        )]
    };
    let new = || {
        vec![pd(
            "000300010000000000b2",
            "2001:db8:8000:100::/56",
            5,
            on(1, "fe80::b2"),
        )]
    };
    for order in [0, 1] {
        let servers = if order == 0 {
            vec![Srv::Lab(old(), &[]), Srv::Lab(new(), &[])]
        } else {
            vec![Srv::Lab(new(), &[]), Srv::Lab(old(), &[])]
        };
        let (s, t) = run(2, servers, "", "");
        assert_eq!(s.exit_code, 0, "{}", s.to_text());
        assert_eq!(s.conflicts.len(), 1);
        let c = &s.conflicts[0];
        assert_eq!(c.prefix, "2001:db8:8000:100::/56");
        assert_eq!(c.winner_client, "000300010000000000b2");
        assert_eq!(c.loser_client, "000300010000000000b1");
        let r = routes(&t);
        assert_eq!(
            r,
            ["2001:db8:8000:100::/56 via fe80::b2 dev cust1 proto 16 metric 512 expires ~"],
            "order {order}"
        );
    }
}

/// Row: a rogue server offering ::/0, a /16, a prefix outside the pools, one
/// covering the router's own link prefixes, one through a non-link-local
/// next hop. Every one is refused with
/// its reason, nothing is installed from it, and the healthy server's
/// routes are.
#[test]
fn rogue_server_offers_are_refused_with_reasons() {
    let rogue = vec![
        pd("000300010000000000c1", "::/0", 1, on(0, "fe80::c1")),
        pd("000300010000000000c2", "2001::/16", 1, on(0, "fe80::c2")),
        pd(
            "000300010000000000c3",
            "2001:db8:9000::/48",
            1,
            on(0, "fe80::c3"),
        ),
        pd(
            "000300010000000000c4",
            "2001:db8::/48",
            1,
            on(0, "fe80::c4"),
        ),
        pd(
            "000300010000000000c5",
            "2001:db8:8000:400::/56",
            1,
            on(0, "2001:db8:77::1"),
        ),
    ];
    // The second pool holds the router's own link prefixes, so that only
    // the covering check stands between them and a route.
    let (s, t) = run_pools(
        2,
        vec![Srv::Lab(rogue, &[]), Srv::Lab(good(), &[])],
        "",
        &[POOL, "2001:db8::/48"],
        "",
    );
    assert_eq!(s.exit_code, 0, "{}", s.to_text());
    let rogue_addr = s.servers[0].server.clone();
    let mut reasons: Vec<(String, String)> = s
        .routes
        .rejected
        .iter()
        .map(|r| {
            assert_eq!(r.server, rogue_addr);
            (r.prefix.clone(), r.reason.clone())
        })
        .collect();
    reasons.sort();
    let covers = &reasons
        .iter()
        .find(|(p, _)| p == "2001:db8::/48")
        .expect("the covering prefix is refused")
        .1;
    assert!(
        covers.starts_with("covers 2001:db8:0:")
            && covers.contains("a prefix of local interface cust"),
        "{covers}"
    );
    let expect: Vec<(&str, &str)> = vec![
        (
            "2001::/16",
            "prefix length 16 is shorter than the minimum 48",
        ),
        (
            "2001:db8:8000:400::/56",
            "next hop 2001:db8:77::1 is neither link-local nor on-link on cust0",
        ),
        ("2001:db8:9000::/48", "outside the allowed prefixes"),
        ("2001:db8::/48", covers),
        ("::/0", "default route"),
    ];
    let got: Vec<(&str, &str)> = reasons
        .iter()
        .map(|(p, r)| (p.as_str(), r.as_str()))
        .collect();
    assert_eq!(got, expect);
    assert_eq!(s.routes.planned, 3);
    assert_eq!(ours(&t), set(&[&GOOD]), "nothing from the rogue server");
    assert!(s
        .to_text()
        .contains("rejected ::/0 (client 000300010000000000c1"));
}

/// Row: a server that streams forever is cut off by the configured limits
/// (bindings per query, octets per connection) with a clear error and is
/// not retried; what it sent up to the limit is used, nothing is pruned,
/// and the healthy server's routes are installed.
#[test]
fn endless_stream_is_cut_off_by_the_limits() {
    let endless: [&str; 4] = [
        "2001:db8:8000:e000::/56",
        "2001:db8:8000:e100::/56",
        "2001:db8:8000:e200::/56",
        "2001:db8:8000:e300::/56",
    ];
    let t0 = Instant::now();
    let (s, t) = run(
        2,
        vec![Srv::Endless, Srv::Lab(good(), &[])],
        "",
        "[limits]\nmax_bindings_per_query = 500",
    );
    assert_partial_others_kept(&s);
    assert_eq!(
        s.servers[0].status,
        "partial: protocol error: more than 500 bindings (limit)"
    );
    assert_eq!(s.servers[0].bindings, 500, "exactly the limit");
    assert_eq!(s.servers[0].connections, 1, "not retried");
    assert_eq!(ours(&t), set(&[&GOOD, &endless, &[STALE]]));

    let (s, t) = run(
        2,
        vec![Srv::Endless, Srv::Lab(good(), &[])],
        "",
        "[limits]\nmax_bindings_per_server = 300",
    );
    assert_partial_others_kept(&s);
    assert_eq!(
        s.servers[0].status,
        "partial: protocol error: more than 300 bindings (limit)"
    );
    assert_eq!(s.servers[0].bindings, 300);
    assert_eq!(s.servers[0].connections, 1, "not retried");
    assert_eq!(ours(&t), set(&[&GOOD, &endless, &[STALE]]));

    let (s, t) = run(
        2,
        vec![Srv::Endless, Srv::Lab(good(), &[])],
        "",
        "[limits]\nmax_bytes_per_connection = 100000",
    );
    assert_partial_others_kept(&s);
    assert_eq!(
        s.servers[0].status,
        "partial: connection aborted: more than 100000 octets on one connection (limit)"
    );
    assert_eq!(s.servers[0].connections, 1, "not retried");
    assert!(s.servers[0].bindings > 0 && s.servers[0].bindings < 1000);
    // Four prefixes in turn: all four arrived before the cut.
    assert!(s.servers[0].bindings >= 4, "{}", s.servers[0].bindings);
    assert_eq!(ours(&t), set(&[&GOOD, &endless, &[STALE]]));
    assert!(t0.elapsed() < Duration::from_secs(20), "bounded");
}

/// A relay chain of `depth` layers: relays outside ours, then ours
/// (RELAY_ID, interface-id ge-0/0/0) next to the client fe80::d.
fn deep(prefix: &str, depth: usize) -> Binding {
    let mut layers: Vec<RelayLayer> = (0..depth - 1)
        .map(|i| RelayLayer {
            hop_count: (depth - 1 - i) as u8,
            ..layer("::", &format!("2001:db8:ffff::{:x}", i + 1), "uplink", None)
        })
        .collect();
    layers.push(layer("2001:db8:0:1::1", "fe80::d", "ge-0/0/0", Some(RELAY)));
    pd("000300010000000000dd", prefix, 1, layers)
}

/// Row: enormous relay chains. A binding whose chain is deeper than
/// `max_relay_depth` (default 32, RFC 8415 HOP_COUNT_LIMIT) cuts its server
/// off with a clear error, not retried; 32 layers are fine.
#[test]
fn relay_chain_deeper_than_the_hop_limit_cuts_the_server_off() {
    let (s, t) = run(2, vec![Srv::Deep(40), Srv::Lab(good(), &[])], "", "");
    assert_partial_others_kept(&s);
    assert_eq!(
        s.servers[0].status,
        "partial: protocol error: relay chain of 40 layers, deeper than the limit of 32 (RFC 8415 HOP_COUNT_LIMIT)"
    );
    assert_eq!(s.servers[0].connections, 1, "not retried");
    assert_eq!(s.servers[0].bindings, 0);
    assert_eq!(ours(&t), set(&[&GOOD, &[STALE]]));

    // 32 layers (as many as the lab server encodes): accepted, routed
    // through our (innermost) layer.
    let (s, t) = run(
        2,
        vec![
            Srv::Lab(vec![deep("2001:db8:8000:d00::/56", 32)], &[]),
            Srv::Lab(good(), &[]),
        ],
        "",
        "",
    );
    assert_eq!(s.exit_code, 0, "{}", s.to_text());
    assert!(routes(&t).contains(
        &"2001:db8:8000:d00::/56 via fe80::d dev cust0 proto 16 metric 512 expires ~".to_string()
    ));

    // A lower configured limit is enforced too.
    let (s, t) = run(
        2,
        vec![
            Srv::Lab(vec![deep("2001:db8:8000:d00::/56", 3)], &[]),
            Srv::Lab(good(), &[]),
        ],
        "",
        "[limits]\nmax_relay_depth = 2",
    );
    assert_partial_others_kept(&s);
    assert!(s.servers[0]
        .status
        .contains("relay chain of 3 layers, deeper than the limit of 2"));
    assert_eq!(ours(&t), set(&[&GOOD, &[STALE]]));
}

/// Row: the kernel refuses one route (its next hop is on a link that is
/// down: "Nexthop device is not up", a real netlink error from the kernel,
/// not a simulated one). That route is reported as failed, every other
/// route is installed, the outcome is partial (exit 1).
#[test]
fn netlink_error_on_one_route() {
    let Some(ns) = lab(3) else { return };
    ns.ip(["link", "set", "cust2", "down"]).unwrap();
    let mut b = good();
    b.push(pd(
        "000300010000000000f2",
        "2001:db8:8000:700::/56",
        1,
        on(2, "fe80::f2"),
    ));
    let s = run_kernel(&ns, vec![Srv::Lab(b, &[])]);
    assert_eq!(
        (s.outcome.as_str(), s.exit_code),
        ("partial", 1),
        "{}",
        s.to_text()
    );
    assert_eq!(s.routes.planned, 4);
    assert_eq!(s.routes.failed.len(), 1, "{:?}", s.routes.failed);
    let f = &s.routes.failed[0];
    assert_eq!(
        (f.prefix.as_str(), f.op.as_str()),
        ("2001:db8:8000:700::/56", "add")
    );
    assert!(f.error.contains("Network is down"), "{}", f.error);
    assert_eq!(f.error_code, "ENETDOWN");
    assert_eq!(
        kernel_ours(&ns),
        set(&[&GOOD]),
        "every other route is in place"
    );
}

/// The configuration the binary rows use: one server on [::1]:`port`, the
/// synthetic layout's four links.
fn binary_config(
    dir: &std::path::Path,
    state: &std::path::Path,
    port: u16,
    relay: bool,
) -> std::path::PathBuf {
    let mut t = String::new();
    if relay {
        t.push_str(&format!("relay_duid = \"{RELAY}\"\n"));
    }
    t.push_str(&format!(
        "state_directory = {:?}\ndata_timeout = \"30s\"\nretries = 0\nstartup_deadline = \"0s\"\n[[server]]\naddress = \"::1\"\nport = {port}\n[routes]\ntable = 100\nprotocol = 16\nprune_limit = \"100%\"\nallowed_prefixes = [\"2001:db8:8000::/33\"]\n[routes.interfaces]\n",
        state
    ));
    for j in 0..4 {
        t.push_str(&format!("\"ge-0/0/{j}\" = \"cust{j}\"\n"));
    }
    let path = dir.join("pdrestore.toml");
    std::fs::write(&path, t).unwrap();
    path
}

fn json_of(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON summary ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Row: SIGTERM during installation, then a rerun. The real binary recovers
/// 200 000 synthetic bindings; SIGTERM arrives once the first routes are in
/// the kernel. The stopped run installs what it received, prunes nothing,
/// says it was interrupted (exit 1), and every route it reports is in the
/// table. The rerun converges: exactly the planned routes, those of the
/// first run unchanged (nothing lost), the rest added, no duplicates.
#[test]
fn sigterm_during_installation_then_rerun_converges() {
    let Some(ns) = lab(4) else { return };
    let dir = tempfile::tempdir().unwrap();
    let port = 5547;
    let _server = Child(
        pdrestore_in(
            &ns,
            &[
                "lab-server",
                "--listen",
                &format!("[::1]:{port}"),
                "--synthetic",
                "200000",
                "--relay-id",
                RELAY,
                "--links",
                "4",
                "--ia-na-share",
                "0",
                "--seed",
                "7",
            ],
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap(),
    );
    wait_listening(&ns, port);
    // The lab's stale route is one of the synthetic prefixes: swap it for
    // one outside the set.
    let far = "2001:db8:ffff:ff00::/56";
    ns.ip(["-6", "route", "del", STALE, "table", "100"])
        .unwrap();
    ns.ip([
        "-6", "route", "add", far, "via", "fe80::f", "dev", "cust0", "table", "100", "proto",
        "dhcp",
    ])
    .unwrap();
    let cfg = binary_config(dir.path(), &dir.path().join("state"), port, true);
    let cfg = cfg.to_str().unwrap();
    let child = pdrestore_in(&ns, &["recover", "-c", cfg, "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The first routes (besides the stale one) are in: installation is under way.
    let t0 = Instant::now();
    loop {
        let n = ns
            .ip(["-6", "route", "show", "table", "100", "proto", "dhcp"])
            .map(|t| t.lines().count())
            .unwrap_or(0);
        if n > 1 {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(60), "no route appeared");
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: kill with a valid pid of our own child and a valid signal.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let out = child.wait_with_output().unwrap();
    let j = json_of(&out);
    assert_eq!(j["interrupted"], true, "{j}");
    // The server's line counts what it delivered before the stop, not 0.
    assert_eq!(j["servers"][0]["status"], "interrupted");
    assert_eq!(j["servers"][0]["bindings"], j["bindings"]);
    assert!(j["bindings"].as_u64().unwrap() > 0);
    assert_eq!(out.status.code(), Some(1), "partial");
    assert_eq!(j["exit_code"], 1);
    assert_eq!(j["routes"]["pruned"], false);
    assert_eq!(j["routes"]["failed"].as_array().unwrap().len(), 0);
    let first = kernel_ours(&ns);
    let added = j["routes"]["added"].as_u64().unwrap() as usize;
    assert_eq!(
        first.len(),
        added + 1,
        "what it reports is in the table (and the stale route)"
    );
    assert!(first.contains(far), "nothing pruned");

    // The rerun.
    let out = pdrestore_in(&ns, &["recover", "-c", cfg, "--json"])
        .output()
        .unwrap();
    let j = json_of(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(j["interrupted"], false);
    let planned = j["routes"]["planned"].as_u64().unwrap() as usize;
    assert!(
        added < planned,
        "SIGTERM arrived before the end ({added} of {planned})"
    );
    assert!(planned > 150_000, "{planned}");
    eprintln!("SIGTERM after {added} of {planned} routes");
    assert_eq!(
        j["routes"]["unchanged"].as_u64().unwrap() as usize,
        added,
        "nothing lost"
    );
    assert_eq!(j["routes"]["replaced"], 0);
    assert_eq!(
        j["routes"]["added"].as_u64().unwrap() as usize,
        planned - added
    );
    assert_eq!(j["routes"]["removed"], 1, "the stale route");
    let last = kernel_ours(&ns);
    assert_eq!(
        last.len(),
        planned,
        "exactly the planned routes, no duplicate"
    );
    assert!(first
        .iter()
        .filter(|p| p.as_str() != far)
        .all(|p| last.contains(p)));
}

/// Row: the relay DUID file (RFC 5460 s.5.4.1, stable storage) missing,
/// corrupt or unwritable, through the real binary. Missing: generated once,
/// kept (mode 0600) and used by `recover`. Corrupt: refused (exit 78), left
/// as it was, nothing installed. A state directory that cannot be made, or
/// a DUID file that cannot be read: refused (exit 78), nothing installed.
#[test]
fn duid_file_missing_corrupt_or_unwritable() {
    use std::os::unix::fs::PermissionsExt;
    let Some(ns) = lab(4) else { return };
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on the port: recovery runs, and fails to connect.
    let cfg = binary_config(dir.path(), &dir.path().join("state"), 9, false);
    let cfg = cfg.to_str().unwrap();
    let file = dir.path().join("state").join("relay-duid");

    // Missing: generated, stored, used.
    let out = pdrestore_in(&ns, &["recover", "-c", cfg, "--json"])
        .output()
        .unwrap();
    let j = json_of(&out);
    assert_eq!(out.status.code(), Some(2), "nothing restored");
    let stored = std::fs::read_to_string(&file).unwrap();
    let generated: Duid = stored.trim().parse().unwrap();
    assert_eq!(j["relay_duid"], generated.to_hex());
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let out = pdrestore_in(&ns, &["duid", "-c", cfg]).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with(&generated.to_hex()));
    assert!(String::from_utf8_lossy(&out.stderr).contains("stored in"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), stored, "kept");

    // Corrupt: refused, kept as it was, nothing touched.
    std::fs::write(&file, "zz:zz\n").unwrap();
    let out = pdrestore_in(&ns, &["recover", "-c", cfg]).output().unwrap();
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is corrupt") && err.contains("not replaced automatically"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "zz:zz\n");
    assert_eq!(kernel_ours(&ns), set(&[&[STALE]]));

    // Unwritable: a state directory that cannot be made (procfs refuses,
    // even to root). The writer lock, taken first, finds it.
    let dir = tempfile::tempdir().unwrap();
    let cfg = binary_config(
        dir.path(),
        std::path::Path::new("/proc/pdrestore-fault-state"),
        9,
        false,
    );
    let out = pdrestore_in(&ns, &["recover", "-c", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot take the writer lock /proc/pdrestore-fault-state"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(kernel_ours(&ns), set(&[&[STALE]]));

    // Unreadable: something that is not a file where the file should be.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("state").join("relay-duid")).unwrap();
    let cfg = binary_config(dir.path(), &dir.path().join("state"), 9, false);
    let out = pdrestore_in(&ns, &["recover", "-c", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot read relay DUID file"), "{err}");
    assert_eq!(kernel_ours(&ns), set(&[&[STALE]]));
}
