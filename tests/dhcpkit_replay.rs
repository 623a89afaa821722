//! Recovery against dhcpkit 1.0.7, a second Bulk Leasequery server
//! (issue 21), replayed from captures: tests/data/dhcpkit holds, per
//! `pdrestore query` made against it behind ISC dhcrelay, the pcap of the
//! TCP connection (see its README for what dhcpkit does in each).
//!
//! The server's byte stream is taken out of each pcap with the library's
//! own capture reader (`pdrestore::decode::capture`, pcap-file and
//! etherparse underneath). A scripted peer answers each LEASEQUERY with the
//! stream of the capture that asked the same thing (its transaction-id
//! rewritten; dhcpkit's silence replayed as silence) and tells the test
//! what it saw on each connection; the whole recovery
//! (`pdrestore::agent::recover`) runs into an in-memory route table.

use pdrestore::agent::{recover, RecoverOptions, Summary};
use pdrestore::config::Config;
use pdrestore::decode::capture::{read_capture, Format};
use pdrestore::decode::reassembly::Direction;
use pdrestore::proto::frame::FrameIter;
use pdrestore::proto::{
    DhcpOption, Duid, LeaseKind, LqQuery, Message, OwnedBindings, Query, QueryType, StatusCode,
};
use pdrestore::requestor::fanout::{Fanout, FanoutConfig, QuerySpec, ServerConfig, Update};
use pdrestore::routes::{Interface, MemoryTable};
use std::collections::BTreeSet;
use std::net::{Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// The text of dhcpkit's plain REPLY (q12), as captured.
const USE_MULTICAST_TEXT: &str =
    "You cannot send requests directly to this server, please use the proper multicast addresses";

fn data(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/dhcpkit")
        .join(path)
}

/// One capture: the LEASEQUERY the requestor sent, and every octet the
/// server sent back on that connection.
struct Capture {
    query: Vec<u8>,
    answer: Vec<u8>,
}

impl Capture {
    /// Read `tests/data/dhcpkit/{name}.pcap`: the one connection that
    /// carries a query (the others in the file are the ends of earlier
    /// ones), taken whole, without gaps.
    fn read(name: &str) -> Capture {
        let bytes = std::fs::read(data(&format!("{name}.pcap"))).unwrap();
        assert_eq!(Format::detect(&bytes), Format::Pcap, "{name}");
        let c = read_capture(&bytes, Format::Pcap, &[547]).unwrap();
        assert!(
            c.error.is_none() && c.unparsed == 0 && c.truncated == 0,
            "{name}: {c:?}"
        );
        let asked: Vec<_> = c
            .streams
            .iter()
            .filter(|s| s.direction == Direction::ToServer && !s.data.is_empty())
            .collect();
        assert_eq!(asked.len(), 1, "{name}: one connection with a query");
        let to = asked[0];
        let from = c
            .streams
            .iter()
            .find(|s| s.direction == Direction::FromServer && s.connection == to.connection)
            .unwrap();
        assert!(to.gap.is_none() && from.gap.is_none(), "{name}");
        let frames: Vec<_> = FrameIter::new(&to.data).map(|f| f.unwrap()).collect();
        assert_eq!(frames.len(), 1, "{name}: one LEASEQUERY");
        Capture {
            query: frames[0].message.to_vec(),
            answer: from.data.clone(),
        }
    }

    /// The server's messages, decoded.
    fn messages(&self) -> Vec<Message> {
        FrameIter::new(&self.answer)
            .map(|f| Message::decode(f.unwrap().message).unwrap())
            .collect()
    }

    /// The requestor's CLIENTID in the captured query (the server's
    /// answers name it, RFC 5007 s.4.2.2).
    fn requestor(&self) -> Duid {
        let Message::Client(q) = Message::decode(&self.query).unwrap() else {
            panic!("not a LEASEQUERY")
        };
        q.options
            .iter()
            .find_map(|o| match o {
                DhcpOption::ClientId(d) => Some(d.clone()),
                _ => None,
            })
            .unwrap()
    }
}

/// The OPTION_LQ_QUERY of a LEASEQUERY.
fn lq_query(query: &[u8]) -> LqQuery {
    let Message::Client(q) = Message::decode(query).unwrap() else {
        panic!("not a LEASEQUERY")
    };
    q.options
        .iter()
        .find_map(|o| match o {
            DhcpOption::LqQuery(lq) => Some(lq.clone()),
            _ => None,
        })
        .unwrap()
}

/// The capture that answers `query` at dhcpkit's leasequery listener: by
/// its type and link-address, as the captures asked.
fn dhcpkit_answers(query: &[u8]) -> &'static str {
    let lq = lq_query(query);
    match (lq.query_type, lq.link_address.to_string().as_str()) {
        (QueryType::ByLinkAddress, "2001:db8:1::1") => "q01_link_br1",
        (QueryType::ByLinkAddress, "2001:db8:1::5") => "q03_link_br1_other",
        (QueryType::ByClientId, _) => "q04_client_id",
        (QueryType::ByRelayId, _) => "q07_relay_id",
        other => panic!("no capture answers {other:?}"),
    }
}

/// dhcpkit's listener without its leasequery handler answers anything
/// with the same plain REPLY.
fn plain_listener_answers(_: &[u8]) -> &'static str {
    "q12_plain_listener"
}

/// What the peer saw on a connection (numbered from 0 in accept order).
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    /// A query, as received.
    Query(usize, Vec<u8>),
    /// The requestor closed the connection (end of stream at a frame
    /// boundary).
    Eof(usize),
    /// The connection broke otherwise (a reset, a cut frame).
    Broken(usize, String),
}

/// Read one framed message; `Ok(None)` at a clean end of stream.
async fn read_frame(s: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 2];
    let n = s.read(&mut len[..1]).await?;
    if n == 0 {
        return Ok(None);
    }
    s.read_exact(&mut len[1..]).await?;
    let mut m = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut m).await?;
    Ok(Some(m))
}

/// A peer that answers every LEASEQUERY of every connection with the
/// server stream of the capture `answers` names, each message's
/// transaction-id rewritten to the query's; an empty stream (q07) is
/// replayed as silence, the connection held open as dhcpkit holds it.
async fn peer(answers: fn(&[u8]) -> &'static str) -> (SocketAddr, mpsc::UnboundedReceiver<Seen>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut n = 0;
        while let Ok((mut s, _)) = l.accept().await {
            let (tx, c) = (tx.clone(), n);
            n += 1;
            tokio::spawn(async move {
                loop {
                    let q = match read_frame(&mut s).await {
                        Ok(Some(q)) => q,
                        Ok(None) => {
                            let _ = tx.send(Seen::Eof(c));
                            return;
                        }
                        Err(e) => {
                            let _ = tx.send(Seen::Broken(c, e.to_string()));
                            return;
                        }
                    };
                    let mut out = Vec::new();
                    for f in FrameIter::new(&Capture::read(answers(&q)).answer) {
                        let mut m = f.unwrap().message.to_vec();
                        m[1..4].copy_from_slice(&q[1..4]);
                        out.extend_from_slice(&(m.len() as u16).to_be_bytes());
                        out.extend_from_slice(&m);
                    }
                    let _ = tx.send(Seen::Query(c, q));
                    if s.write_all(&out).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, rx)
}

/// Everything the peer sees until `connections` connections have ended
/// (or 5 s pass), by connection, each connection's in the order seen.
async fn seen_until_closed(
    rx: &mut mpsc::UnboundedReceiver<Seen>,
    connections: usize,
) -> Vec<Seen> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut ended = 0;
    while ended < connections {
        let Ok(Some(s)) = tokio::time::timeout_at(deadline, rx.recv()).await else {
            break;
        };
        ended += usize::from(!matches!(s, Seen::Query(..)));
        out.push(s);
    }
    out.sort_by_key(|e| match e {
        Seen::Query(c, _) | Seen::Eof(c) | Seen::Broken(c, _) => *c,
    });
    out
}

/// The router of the captures: the uplink towards dhcpkit, br1, the
/// client link dhcrelay relays from (link-address 2001:db8:1::1), and br2,
/// a second client link.
fn router() -> Vec<Interface> {
    let ifc = |name: &str, index, addrs: &[&str]| Interface {
        name: name.into(),
        index,
        addresses: addrs.iter().map(|a| a.parse().unwrap()).collect(),
    };
    vec![
        ifc("up0", 2, &["2001:db8:ff::1/64", "fe80::ff:fe00:ff01/64"]),
        ifc("br1", 3, &["2001:db8:1::1/64", "fe80::ff:fe00:b101/64"]),
        ifc("br2", 4, &["2001:db8:2::1/64", "fe80::ff:fe00:b201/64"]),
    ]
}

/// The configuration of a run against the peer at `peer`: `top` holds
/// the keys that differ (query, links, retries, timeouts, the DUIDs).
fn config(peer: SocketAddr, top: &str, state: &std::path::Path) -> Config {
    let text = format!(
        "state_directory = {:?}\nstartup_deadline = \"0s\"\n{top}\n[[server]]\naddress = \"{}\"\nport = {}\n[routes]\nallowed_prefixes = [\"2001:db8:8000::/40\"]\n",
        state.display().to_string(),
        peer.ip(),
        peer.port()
    );
    Config::parse(&text, std::path::Path::new("dhcpkit.toml")).unwrap()
}

/// The keys of a link-address run asking about `links`, with the
/// requestor DUID the captured answers name, and `retries`.
fn by_link(links: &[&str], capture: &str, retries: u32) -> String {
    format!(
        "relay_duid = \"0003000102000000ff01\"\nrequestor_duid = \"{}\"\nquery = \"link-address\"\nlinks = {links:?}\nretries = {retries}",
        Capture::read(capture).requestor().to_hex()
    )
}

/// The recovery with `cfg` into `table`: its summary, as the type and as
/// JSON, and the table. A run that does not end within 30 s (a connection
/// left open, a timeout not applied) fails the test instead of holding it.
async fn run(
    cfg: &Config,
    table: MemoryTable,
    opts: &RecoverOptions,
) -> (Summary, serde_json::Value, MemoryTable) {
    let relay = cfg.relay_duid.clone().unwrap();
    let recovery = recover(cfg, &relay, table, router(), opts, std::future::pending());
    let (report, table) = tokio::time::timeout(Duration::from_secs(30), recovery)
        .await
        .expect("the recovery did not end within 30 s")
        .unwrap();
    let s = report.summary();
    let v = serde_json::to_value(&s).unwrap();
    (s, v, table)
}

fn routes(t: &MemoryTable) -> BTreeSet<String> {
    t.routes()
        .map(|r| format!("{} via {} dev {}", r.prefix, r.gateway, r.interface))
        .collect()
}

/// The routes q01's three CPEs need: each delegated prefix via the
/// client's link-local address, as dhcrelay's RELAY-FORW recorded it
/// (q01_link_br1.decoded.txt: `peer=fe80::ff:fe00:c10N`), out of br1.
fn q01_routes() -> BTreeSet<String> {
    [
        "2001:db8:8000:100::/56 via fe80::ff:fe00:c101 dev br1",
        "2001:db8:8000:200::/56 via fe80::ff:fe00:c102 dev br1",
        "2001:db8:8000:300::/56 via fe80::ff:fe00:c103 dev br1",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

/// The peer-address fields of q01's OPTION_LQ_RELAY_DATA, and those of
/// the relay messages inside them.
fn q01_peer_addresses() -> (BTreeSet<Ipv6Addr>, BTreeSet<Ipv6Addr>) {
    let (mut option, mut relayed) = (BTreeSet::new(), BTreeSet::new());
    for m in Capture::read("q01_link_br1").messages() {
        let Message::Client(m) = m else { continue };
        for o in &m.options {
            let DhcpOption::ClientData(cd) = o else {
                continue;
            };
            for o in cd {
                if let DhcpOption::LqRelayData {
                    peer_address,
                    message,
                } = o
                {
                    option.insert(*peer_address);
                    relayed.insert(message.peer_address);
                }
            }
        }
    }
    (option, relayed)
}

/// q01: link-address mode asking about br1's address restores exactly the
/// three delegated prefixes, each via the client's link-local address from
/// the relay message (RFC 5007 s.4.1.2.4: OPTION_LQ_RELAY_DATA carries the
/// relayed message), not via the option's own peer-address, where dhcpkit
/// puts the relay's address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_link_address_the_next_hop_is_the_client_not_dhcpkits_peer_address() {
    // The trap in the capture: the option's peer-address is the relay's
    // own uplink address, one for every client.
    let (option, relayed) = q01_peer_addresses();
    let relay_itself: Ipv6Addr = "2001:db8:ff::1".parse().unwrap();
    assert_eq!(option, BTreeSet::from([relay_itself]));
    assert_eq!(relayed.len(), 3);

    let (peer, mut seen) = peer(dhcpkit_answers).await;
    let state = tempfile::tempdir().unwrap();
    let cfg = config(
        peer,
        &by_link(&["2001:db8:1::1"], "q01_link_br1", 0),
        state.path(),
    );
    let (s, v, t) = run(
        &cfg,
        MemoryTable::with_interfaces([2, 3, 4]),
        &RecoverOptions::default(),
    )
    .await;
    assert_eq!(
        (s.outcome.as_str(), s.exit_code),
        ("complete", 0),
        "{}",
        s.to_text()
    );
    assert_eq!(routes(&t), q01_routes());
    assert!(t.routes().all(|r| r.gateway != relay_itself));
    // Six leases: each CPE's IA_NA address and its prefix, in one
    // CLIENT_DATA each (dhcpkit, unlike Kea).
    assert_eq!(s.bindings, 6);
    assert_eq!(s.routes.planned, 3);
    assert!(s.routes.rejected.is_empty(), "{:?}", s.routes.rejected);
    let q = &v["servers"][0]["queries"][0];
    assert_eq!(q["query_type"], "link-address");
    assert_eq!(q["link"], "2001:db8:1::1");
    assert_eq!(q["outcome_code"], "complete");
    assert_eq!(q["bindings"], 6);
    // DONE's Success "That's all folks" is no status to report.
    assert!(q["server_status"].is_null() && q["hint"].is_null(), "{q}");

    // The query is the one dhcpkit answered in the capture, to the octet
    // (its transaction-id aside).
    let captured = Capture::read("q01_link_br1").query;
    let Seen::Query(0, sent) = seen.recv().await.unwrap() else {
        panic!("no query")
    };
    assert_eq!((&sent[..1], &sent[4..]), (&captured[..1], &captured[4..]));
}

/// q03 after q01: dhcpkit matches the stored link-address exactly, so
/// asking with another address of br1's /64 gets an empty LEASEQUERY-REPLY.
/// The per-link prune rail keeps br1's routes (the link is on br1 by its
/// subnet) and says so; `--force-prune` removes them, so the rail is what
/// kept them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_address_of_the_link_answered_empty_is_held_back_by_the_rail() {
    let (peer, _seen) = peer(dhcpkit_answers).await;
    let state = tempfile::tempdir().unwrap();
    let first = config(
        peer,
        &by_link(&["2001:db8:1::1"], "q01_link_br1", 0),
        state.path(),
    );
    let (s, _, t) = run(
        &first,
        MemoryTable::with_interfaces([2, 3, 4]),
        &RecoverOptions::default(),
    )
    .await;
    assert_eq!(s.exit_code, 0, "{}", s.to_text());
    assert_eq!(routes(&t), q01_routes());

    let other = config(
        peer,
        &by_link(&["2001:db8:1::5"], "q03_link_br1_other", 0),
        state.path(),
    );
    let (s, v, t) = run(&other, t, &RecoverOptions::default()).await;
    let text = s.to_text();
    // The server answered, whole and empty.
    let q = &v["servers"][0]["queries"][0];
    assert_eq!(q["link"], "2001:db8:1::5");
    assert_eq!(q["outcome_code"], "no-bindings", "{q}");
    assert_eq!(q["complete"], true);
    assert_eq!(s.bindings, 0);
    // br1 keeps its routes, held back by the link rail.
    assert_eq!(routes(&t), q01_routes(), "{text}");
    assert_eq!(s.routes.removed, 0);
    let held = &v["routes"]["prune"]["held_back"];
    assert_eq!(held.as_array().unwrap().len(), 1, "{held}");
    assert_eq!(held[0]["kind"], "link");
    assert_eq!(held[0]["interface"], "br1");
    assert_eq!(held[0]["links"], serde_json::json!(["2001:db8:1::5"]));
    assert_eq!(held[0]["reason_code"], "link-empty");
    assert_eq!(
        (held[0]["ours"].as_u64(), held[0]["candidates"].as_u64()),
        (Some(3), Some(3))
    );
    assert!(
        held[0]["reason"].as_str().unwrap().contains("check links"),
        "{held}"
    );
    // Nothing restored, nothing failed, but a link held back: partial.
    assert_eq!((s.outcome.as_str(), s.exit_code), ("partial", 1), "{text}");

    // Past the rail, the same answer takes br1's routes away.
    let forced = RecoverOptions {
        force_prune: true,
        ..RecoverOptions::default()
    };
    let (s, v, t) = run(&other, t, &forced).await;
    assert_eq!(routes(&t), BTreeSet::new(), "{}", s.to_text());
    assert_eq!(s.routes.removed, 3);
    assert_eq!(v["routes"]["prune"]["held_back"], serde_json::json!([]));
}

/// q12: a listener without dhcpkit's leasequery handler answers with a
/// plain REPLY (7), UseMulticast and a text, which RFC 5460 s.4 does not
/// allow on a Bulk Leasequery connection. The summary names the message,
/// the status and its text, with a hint; the query is not tried again (the
/// server's answer is final) and pdrestore closes the connection: asked
/// about two links over one connection at most, it sends the second query
/// on a new connection, not after the REPLY.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_reply_is_reported_with_its_status_and_the_connection_closed() {
    // The capture holds that REPLY, with this text.
    let captured = Capture::read("q12_plain_listener").messages();
    let [Message::Client(reply)] = &captured[..] else {
        panic!("{captured:?}")
    };
    assert_eq!(u8::from(reply.msg_type), 7);
    assert!(reply.options.iter().any(|o| matches!(
        o,
        DhcpOption::StatusCode { code: StatusCode::UseMulticast, message } if message == USE_MULTICAST_TEXT.as_bytes()
    )));

    let (peer, mut seen) = peer(plain_listener_answers).await;
    let state = tempfile::tempdir().unwrap();
    // Two links on one connection: the second query may not follow the
    // REPLY on it.
    let top = by_link(&["2001:db8:1::1", "2001:db8:2::1"], "q12_plain_listener", 1)
        + "\nmax_connections = 1";
    let cfg = config(peer, &top, state.path());
    assert_eq!(cfg.retries, 1);
    let (s, v, t) = run(
        &cfg,
        MemoryTable::with_interfaces([2, 3, 4]),
        &RecoverOptions::default(),
    )
    .await;
    let text = s.to_text();
    let q = &v["servers"][0]["queries"][0];
    assert_eq!(
        q["server_status"],
        serde_json::json!({
            "message": "REPLY",
            "code": 5,
            "name": "UseMulticast",
            "text": USE_MULTICAST_TEXT,
        }),
        "{q}"
    );
    assert!(
        q["hint"].as_str().unwrap().contains("not Bulk Leasequery"),
        "{q}"
    );
    assert_eq!(q["outcome_code"], "protocol-error");
    assert_eq!(q["link"], "2001:db8:1::1");
    assert_eq!(q["attempts"], 1, "a final answer is not asked again");
    let server = &s.servers[0];
    assert!(!server.complete);
    assert!(
        server.status.contains(USE_MULTICAST_TEXT),
        "{}",
        server.status
    );
    assert!(text.contains(USE_MULTICAST_TEXT), "{text}");
    // Nothing is in place and the server failed: failed, exit 2 (not
    // partial: nothing was restored).
    assert_eq!(t.routes().count(), 0);
    assert_eq!((s.outcome.as_str(), s.exit_code), ("failed", 2), "{text}");
    // Each query on a connection of its own, closed by pdrestore after
    // the REPLY: the second link's query never follows it on the first.
    let events = seen_until_closed(&mut seen, 2).await;
    let [Seen::Query(0, a), Seen::Eof(0), Seen::Query(1, b), Seen::Eof(1)] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(lq_query(a).link_address.to_string(), "2001:db8:1::1");
    assert_eq!(lq_query(b).link_address.to_string(), "2001:db8:2::1");
    assert_eq!(
        v["servers"][0]["queries"][1]["server_status"],
        q["server_status"]
    );
}

/// q07: dhcpkit 1.0.7 never answers QUERY_BY_RELAY_ID and keeps the
/// connection open. With `first_answer_timeout = "1s"` the run ends in a
/// bounded time (a silent query is tried twice, each try costing the
/// first-answer timeout, not the data timeout), and the server is named
/// with `no-answer` and the hint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_relay_id_query_costs_a_bounded_time() {
    let captured = Capture::read("q07_relay_id");
    assert!(captured.answer.is_empty(), "dhcpkit said nothing");
    // Ask what the capture asked: the relay-id of its query.
    let lq = lq_query(&captured.query);
    assert_eq!(lq.query_type, QueryType::ByRelayId);
    let relay = lq
        .options
        .iter()
        .find_map(|o| match o {
            DhcpOption::RelayId(d) => Some(d.clone()),
            _ => None,
        })
        .unwrap();

    let (peer, mut seen) = peer(dhcpkit_answers).await;
    let state = tempfile::tempdir().unwrap();
    let top = format!(
        "relay_duid = \"{}\"\nrequestor_duid = \"{}\"\nfirst_answer_timeout = \"1s\"\nretries = 1",
        relay.to_hex(),
        captured.requestor().to_hex()
    );
    let cfg = config(peer, &top, state.path());
    let started = Instant::now();
    let (s, v, t) = run(
        &cfg,
        MemoryTable::with_interfaces([2, 3, 4]),
        &RecoverOptions::default(),
    )
    .await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(took >= Duration::from_secs(2), "two silent tries: {took:?}");
    assert_eq!(v["servers"][0]["status_code"], "no-answer", "{v}");
    let q = &v["servers"][0]["queries"][0];
    assert_eq!(q["query_type"], "relay-id");
    assert_eq!(q["outcome_code"], "no-answer");
    assert_eq!(q["attempts"], 2);
    assert!(q["server_status"].is_null());
    assert!(
        q["hint"]
            .as_str()
            .unwrap()
            .contains("may not support this query type"),
        "{q}"
    );
    assert_eq!(t.routes().count(), 0);
    assert_eq!(
        (s.outcome.as_str(), s.exit_code),
        ("failed", 2),
        "{}",
        s.to_text()
    );
    // Two connections, each with the relay-id query, each closed by
    // pdrestore once the first answer was overdue.
    let events = seen_until_closed(&mut seen, 2).await;
    let [Seen::Query(0, a), Seen::Eof(0), Seen::Query(1, b), Seen::Eof(1)] = &events[..] else {
        panic!("{events:?}")
    };
    for q in [a, b] {
        let lq = lq_query(q);
        assert_eq!(lq.query_type, QueryType::ByRelayId);
        assert!(lq.options.contains(&DhcpOption::RelayId(relay.clone())));
    }
}

/// q04: QUERY_BY_CLIENTID, through the library's fan-out (what `pdrestore
/// query --client-id` runs; recovery has no client-id mode): dhcpkit's
/// REPLY and DONE give the client's address and prefix, with the relay
/// message that names its link-local address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_client_id_the_clients_address_and_prefix() {
    let captured = Capture::read("q04_client_id");
    let lq = lq_query(&captured.query);
    let client = lq
        .options
        .iter()
        .find_map(|o| match o {
            DhcpOption::ClientId(d) => Some(d.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(client.to_hex(), "0003000102000000c101");

    let (peer, _seen) = peer(dhcpkit_answers).await;
    let mut cfg = FanoutConfig::new(
        captured.requestor(),
        vec![QuerySpec::new(Query::ByClientId(client.clone()))],
    );
    cfg.servers = vec![ServerConfig::new(peer)];
    let mut fan = Fanout::start(cfg, OwnedBindings);
    let (mut got, mut reports) = (Vec::new(), Vec::new());
    while let Some(u) = fan.recv().await {
        match u {
            Update::Bindings(b) => got.extend(b.into_iter().map(|d| d.binding)),
            Update::ServerDone(r) => reports.push(r),
        }
    }
    assert!(reports[0].is_complete(), "{}", reports[0]);
    let leases: BTreeSet<(LeaseKind, String, Ipv6Addr)> = got
        .iter()
        .map(|b| {
            (
                b.lease,
                b.client_duid.to_hex(),
                b.relay.last().unwrap().peer_address,
            )
        })
        .collect();
    let c101: Ipv6Addr = "fe80::ff:fe00:c101".parse().unwrap();
    assert_eq!(
        leases,
        BTreeSet::from([
            (
                LeaseKind::Address("2001:db8:1::101".parse().unwrap()),
                client.to_hex(),
                c101
            ),
            (
                LeaseKind::Prefix("2001:db8:8000:100::/56".parse().unwrap()),
                client.to_hex(),
                c101
            ),
        ])
    );
}

/// Each `.decoded.txt` beside its pcap is what `pdrestore decode` prints
/// of it (the README's account of each capture stands on them).
#[test]
fn the_decoded_texts_are_what_decode_prints() {
    for name in [
        "q01_link_br1",
        "q03_link_br1_other",
        "q04_client_id",
        "q07_relay_id",
        "q12_plain_listener",
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_pdrestore"))
            .arg("decode")
            .arg(data(&format!("{name}.pcap")))
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {out:?}");
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            std::fs::read_to_string(data(&format!("{name}.decoded.txt"))).unwrap(),
            "{name}"
        );
    }
}
