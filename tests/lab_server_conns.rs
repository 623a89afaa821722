//! The lab server's connection handling on loopback: connection limit,
//! allow-list, data timeout, parallel queries, shutdown, fault injection.

mod common;

use common::*;
use pdrestore::proto::{Duid, MessageType, Query, StatusCode};
use pdrestore::server::store::unix_now;
use pdrestore::server::synth::{relay_duid, Synth, SynthConfig};
use pdrestore::server::{self, BindingStore, Fault, ServerConfig, ServerHandle, StoreBuilder};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

fn base_relay() -> Duid {
    "00020000000901020304".parse().unwrap()
}

/// `n` synthetic bindings behind `relays` relays.
fn synth_store(n: u64, relays: u32) -> BindingStore {
    let mut b = StoreBuilder::new();
    for r in Synth::new(SynthConfig {
        count: n,
        relays,
        links: relays.max(2),
        relay_id: base_relay(),
        now: unix_now(),
        ..SynthConfig::default()
    })
    .unwrap()
    {
        b.push(&r).unwrap();
    }
    b.build(&[])
}

async fn start_with(store: BindingStore, cfg: ServerConfig) -> ServerHandle {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    server::spawn(l, Arc::new(store), cfg).unwrap()
}

fn relay(r: u32) -> Query {
    Query::ByRelayId(relay_duid(&base_relay(), r))
}

/// Number of bindings of relay `r` in the store, by asking the server.
async fn count_relay(addr: std::net::SocketAddr, r: u32) -> usize {
    bindings(&ask(addr, query(0xfff0 + r, relay(r))).await).len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limit_closes_extra_connections() {
    let s = start_with(
        synth_store(10, 1),
        ServerConfig {
            max_conns: 2,
            ..ServerConfig::default()
        },
    )
    .await;
    let a = s.local_addr();
    let mut c1 = Conn::connect(a).await;
    let mut c2 = Conn::connect(a).await;
    for (i, c) in [&mut c1, &mut c2].into_iter().enumerate() {
        c.send_query(&query(i as u32 + 1, relay(0))).await;
        assert_eq!(bindings(&c.collect(&[i as u32 + 1]).await).len(), 10);
    }
    // BULK_LQ_MAX_CONNS reached: the third is closed at once (RFC 5460 s.7.1).
    let mut c3 = Conn::connect(a).await;
    assert!(c3.closed_within(Duration::from_secs(3)).await);
    // The first two are unaffected.
    c1.send_query(&query(3, relay(0))).await;
    assert_eq!(shape(&c1.collect(&[3]).await).len(), 11);
    // Closing one frees a slot.
    drop(c1);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut c4 = Conn::connect(a).await;
        c4.send_query(&query(4, relay(0))).await;
        match c4.try_recv(Duration::from_millis(500)).await {
            Ok(Some(m)) => {
                assert_eq!(m.msg_type, MessageType::LeasequeryReply);
                break;
            }
            _ => assert!(Instant::now() < deadline, "slot never freed"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(c2);
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_list_closes_other_sources() {
    let s = start_with(
        synth_store(5, 1),
        ServerConfig {
            allow: vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()],
            ..ServerConfig::default()
        },
    )
    .await;
    let mut c = Conn::connect(s.local_addr()).await;
    assert!(c.closed_within(Duration::from_secs(3)).await);
    s.shutdown().await.unwrap();

    let s = start_with(
        synth_store(5, 1),
        ServerConfig {
            allow: vec!["127.0.0.0/8".parse().unwrap()],
            ..ServerConfig::default()
        },
    )
    .await;
    assert_eq!(
        bindings(&ask(s.local_addr(), query(1, relay(0))).await).len(),
        5
    );
    s.shutdown().await.unwrap();

    // IPv6 loopback, when the machine has it.
    if let Ok(l) = TcpListener::bind("[::1]:0").await {
        let s = server::spawn(
            l,
            Arc::new(synth_store(5, 1)),
            ServerConfig {
                allow: vec!["::1/128".parse().unwrap()],
                ..ServerConfig::default()
            },
        )
        .unwrap();
        assert_eq!(
            bindings(&ask(s.local_addr(), query(1, relay(0))).await).len(),
            5
        );
        s.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_timeout_closes_idle_and_blocked_connections() {
    let timeout = Duration::from_millis(300);
    let s = start_with(
        synth_store(100_000, 1),
        ServerConfig {
            data_timeout: timeout,
            ..ServerConfig::default()
        },
    )
    .await;
    let a = s.local_addr();
    // Idle from the start.
    let mut c = Conn::connect(a).await;
    let t = Instant::now();
    assert!(c.closed_within(Duration::from_secs(5)).await);
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(250), "closed after {took:?}");
    // Idle after a completed query: the timer starts again.
    let mut c = Conn::connect(a).await;
    c.send_query(&query(
        1,
        Query::ByAddress("2001:db8:8000::".parse().unwrap()),
    ))
    .await;
    c.collect(&[1]).await;
    let t = Instant::now();
    assert!(c.closed_within(Duration::from_secs(5)).await);
    assert!(t.elapsed() >= Duration::from_millis(250));

    // Blocked: a requestor that stops reading (RFC 5460 s.7.2). 100k bindings
    // are far more than the socket buffers hold.
    let mut c = Conn::connect(a).await;
    c.send_query(&query(2, relay(0))).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut n = 0usize;
    let mut done = false;
    while let Ok(Some(m)) = c.try_recv(Duration::from_secs(5)).await {
        n += m.bindings.len();
        done |= m.msg_type == MessageType::LeasequeryDone;
    }
    assert!(!done, "the stream was cut");
    assert!(n > 0 && n < 100_000, "{n} bindings before the cut");
    s.shutdown().await.unwrap();
}

// One thread: the two query tasks take turns as tokio's cooperative budget
// makes them yield, whatever else the machine is doing (on two workers, a
// worker the OS leaves unscheduled holds its task back and the other query
// runs alone, which made this test flaky under load).
#[tokio::test(flavor = "current_thread")]
async fn parallel_queries_interleave_and_xids_are_unique() {
    let s = start_with(
        synth_store(3000, 2),
        ServerConfig {
            write_batch: 1,
            ..ServerConfig::default()
        },
    )
    .await;
    let a = s.local_addr();
    let n0 = count_relay(a, 0).await;
    let n1 = count_relay(a, 1).await;
    assert_eq!(n0 + n1, 3000);
    let mut c = Conn::connect(a).await;
    // Both queries in one write: the server reads both and runs them together.
    let mut both = Vec::new();
    for (xid, r) in [(0x101, 0), (0x102, 1)] {
        let m = query(xid, relay(r)).to_bytes();
        both.extend_from_slice(&(m.len() as u16).to_be_bytes());
        both.extend_from_slice(&m);
    }
    tokio::io::AsyncWriteExt::write_all(&mut c.stream, &both)
        .await
        .unwrap();
    let msgs = c.collect(&[0x101, 0x102]).await;
    let of = |x: u32| {
        msgs.iter()
            .filter(|m| m.xid == x)
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(bindings(&of(0x101)).len(), n0);
    assert_eq!(bindings(&of(0x102)).len(), n1);
    for x in [0x101, 0x102] {
        let sh = shape(&of(x));
        assert!(sh.starts_with('R') && sh.ends_with('E'), "{x:#x}");
        assert_eq!(sh.matches('E').count(), 1);
    }
    // Interleaved: each query's messages appear before the other's DONE.
    let first = |x| msgs.iter().position(|m| m.xid == x).unwrap();
    let done = |x| {
        msgs.iter()
            .position(|m| m.xid == x && m.msg_type == MessageType::LeasequeryDone)
            .unwrap()
    };
    assert!(first(0x102) < done(0x101) && first(0x101) < done(0x102));
    let switches = msgs.windows(2).filter(|w| w[0].xid != w[1].xid).count();
    assert!(
        switches > 10,
        "only {switches} switches between the two streams"
    );

    // A query reusing the xid of one in flight is refused; others go on.
    let stalled = "stall-after=2,xid=0x201".parse::<Fault>().unwrap();
    let s2 = start_with(
        synth_store(50, 1),
        ServerConfig {
            faults: vec![stalled],
            ..ServerConfig::default()
        },
    )
    .await;
    let mut c = Conn::connect(s2.local_addr()).await;
    c.send_query(&query(0x201, relay(0))).await;
    assert_eq!(c.recv().await.unwrap().xid, 0x201);
    assert_eq!(c.recv().await.unwrap().xid, 0x201);
    c.send_query(&query(0x201, relay(0))).await;
    c.send_query(&query(0x202, relay(0))).await;
    let msgs = c.collect(&[0x202]).await;
    assert!(
        msgs.iter().all(|m| m.xid == 0x202),
        "no second reply for 0x201"
    );
    assert_eq!(bindings(&msgs).len(), 50);
    assert!(c.try_recv(Duration::from_millis(300)).await.is_err());
    s2.shutdown().await.unwrap();
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_parallel_one_answers_in_order() {
    let s = start_with(
        synth_store(1000, 2),
        ServerConfig {
            write_batch: 1,
            max_parallel_queries: 1,
            ..ServerConfig::default()
        },
    )
    .await;
    let mut c = Conn::connect(s.local_addr()).await;
    c.send_query(&query(1, relay(0))).await;
    c.send_query(&query(2, relay(1))).await;
    let msgs = c.collect(&[1, 2]).await;
    let last1 = msgs.iter().rposition(|m| m.xid == 1).unwrap();
    let first2 = msgs.iter().position(|m| m.xid == 2).unwrap();
    assert_eq!(
        first2,
        last1 + 1,
        "the second query waits for the first (RFC 5460 s.7.3)"
    );
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_queries_with_query_terminated() {
    let s = start_with(
        synth_store(2000, 1),
        ServerConfig {
            faults: vec![
                "delay-each=20ms,xid=1".parse().unwrap(),
                "delay-reply=60s,xid=2".parse().unwrap(),
            ],
            ..ServerConfig::default()
        },
    )
    .await;
    let a = s.local_addr();
    let mut idle = Conn::connect(a).await;
    let mut c = Conn::connect(a).await;
    c.send_query(&query(1, relay(0))).await;
    c.send_query(&query(2, relay(0))).await;
    let m = c.recv().await.unwrap();
    assert_eq!((m.xid, m.msg_type), (1, MessageType::LeasequeryReply));
    let stop = tokio::spawn(s.shutdown());
    let msgs = c.collect(&[1, 2]).await;
    // Streaming query: DONE with QueryTerminated (RFC 5460 s.5.5, s.7.4).
    let last1 = msgs.iter().rfind(|m| m.xid == 1).unwrap();
    assert_eq!(last1.msg_type, MessageType::LeasequeryDone);
    assert_eq!(last1.status, Some(StatusCode::QueryTerminated));
    assert!(bindings(&msgs).len() < 1999);
    // Query with nothing sent yet: a REPLY with QueryTerminated.
    let q2: Vec<_> = msgs.iter().filter(|m| m.xid == 2).collect();
    assert_eq!(q2.len(), 1);
    assert_eq!(q2[0].msg_type, MessageType::LeasequeryReply);
    assert_eq!(q2[0].status, Some(StatusCode::QueryTerminated));
    assert_eq!(q2[0].client_id.as_deref(), Some(requestor().as_bytes()));
    // Then both connections close and the server returns.
    assert!(c.closed_within(Duration::from_secs(5)).await);
    assert!(idle.closed_within(Duration::from_secs(5)).await);
    tokio::time::timeout(Duration::from_secs(5), stop)
        .await
        .expect("shutdown finished")
        .unwrap()
        .unwrap();
}

/// One server with `faults`, 40 bindings of relay 0, one connection, one query.
async fn faulty(faults: &[&str]) -> (ServerHandle, Conn) {
    let s = start_with(
        synth_store(40, 1),
        ServerConfig {
            faults: faults.iter().map(|f| f.parse().unwrap()).collect(),
            ..ServerConfig::default()
        },
    )
    .await;
    let c = Conn::connect(s.local_addr()).await;
    (s, c)
}

/// Read `n` messages.
async fn take(c: &mut Conn, n: usize) -> Vec<Msg> {
    let mut v = Vec::new();
    for _ in 0..n {
        v.push(c.recv().await.expect("message"));
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_cut_streams() {
    // close-after: K messages, then the connection closes.
    let (s, mut c) = faulty(&["close-after=3"]).await;
    c.send_query(&query(1, relay(0))).await;
    assert_eq!(shape(&take(&mut c, 3).await), "RDD");
    assert!(c.closed_within(Duration::from_secs(3)).await);
    s.shutdown().await.unwrap();

    // stall-after: K messages, then silence on an open connection.
    let (s, mut c) = faulty(&["stall-after=3"]).await;
    c.send_query(&query(1, relay(0))).await;
    assert_eq!(shape(&take(&mut c, 3).await), "RDD");
    assert!(c.try_recv(Duration::from_millis(500)).await.is_err());
    // When the requestor closes its end, the stalled query is dropped and the
    // server closes too (RFC 5460 s.7.4).
    tokio::io::AsyncWriteExt::shutdown(&mut c.stream)
        .await
        .unwrap();
    assert!(c.closed_within(Duration::from_secs(3)).await);
    s.shutdown().await.unwrap();

    // done-error and terminate-at: DONE with the status after K messages;
    // at K = 0 the REPLY carries it.
    let (s, mut c) = faulty(&[
        "done-error=3:1,xid=1",
        "terminate-at=2,xid=2",
        "done-error=0:2,xid=3",
    ])
    .await;
    c.send_query(&query(1, relay(0))).await;
    let m = c.collect(&[1]).await;
    assert_eq!(shape(&m), "RDDE");
    assert_eq!(m[3].status, Some(StatusCode::UnspecFail));
    c.send_query(&query(2, relay(0))).await;
    let m = c.collect(&[2]).await;
    assert_eq!(shape(&m), "RDE");
    assert_eq!(m[2].status, Some(StatusCode::QueryTerminated));
    c.send_query(&query(3, relay(0))).await;
    let m = c.collect(&[3]).await;
    assert_eq!(shape(&m), "R");
    assert_eq!(m[0].status, Some(StatusCode::NoAddrsAvail));
    // Other queries on the connection are untouched.
    c.send_query(&query(4, relay(0))).await;
    assert_eq!(bindings(&c.collect(&[4]).await).len(), 40);
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_bad_messages() {
    // malformed-at: a frame that does not decode, the stream goes on.
    let (s, mut c) = faulty(&["malformed-at=2"]).await;
    c.send_query(&query(1, relay(0))).await;
    let m = c.collect(&[1]).await;
    assert!(m[2].malformed);
    assert_eq!(m.iter().filter(|m| m.malformed).count(), 1);
    assert_eq!(bindings(&m).len(), 40);
    s.shutdown().await.unwrap();

    // wrong-xid-done: the last DONE carries another xid.
    let (s, mut c) = faulty(&["wrong-xid-done"]).await;
    c.send_query(&query(7, relay(0))).await;
    let m = take(&mut c, 41).await;
    assert_eq!(m[40].msg_type, MessageType::LeasequeryDone);
    assert_ne!(m[40].xid, 7);
    assert!(m[..40].iter().all(|m| m.xid == 7));
    s.shutdown().await.unwrap();

    // empty-data-at: a DATA without CLIENT_DATA.
    let (s, mut c) = faulty(&["empty-data-at=1"]).await;
    c.send_query(&query(1, relay(0))).await;
    let m = c.collect(&[1]).await;
    assert_eq!(m[1].msg_type, MessageType::LeasequeryData);
    assert!(m[1].codes.is_empty());
    assert_eq!(bindings(&m).len(), 40);
    s.shutdown().await.unwrap();

    // client-link (only xid 5) and duplicate-bindings (only query type 3).
    let (s, mut c) = faulty(&["client-link,xid=5", "duplicate-bindings,query-type=3"]).await;
    c.send_query(&query(5, relay(0))).await;
    let m = c.collect(&[5]).await;
    assert!(m[0].codes.contains(&48));
    let b = bindings(&m);
    assert_eq!(b.len(), 80);
    let distinct: std::collections::BTreeSet<_> = b.iter().map(|b| b.lease).collect();
    assert_eq!(distinct.len(), 40);
    c.send_query(&query(
        6,
        Query::ByAddress("2001:db8:8000::".parse().unwrap()),
    ))
    .await;
    let m = c.collect(&[6]).await;
    assert!(!m[0].codes.contains(&48));
    assert_eq!(bindings(&m).len(), 1);
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_delays_and_connection_targeting() {
    let (s, mut c) = faulty(&["delay-reply=300ms", "delay-each=10ms,xid=2"]).await;
    let t = Instant::now();
    c.send_query(&query(1, relay(0))).await;
    let m = c.collect(&[1]).await;
    assert!(t.elapsed() >= Duration::from_millis(280));
    assert_eq!(bindings(&m).len(), 40);
    let t = Instant::now();
    c.send_query(&query(2, relay(0))).await;
    // The requestor closes its end at once: the query in flight still
    // completes, then the server closes (RFC 5460 s.7.4).
    tokio::io::AsyncWriteExt::shutdown(&mut c.stream)
        .await
        .unwrap();
    assert_eq!(bindings(&c.collect(&[2]).await).len(), 40);
    assert!(
        t.elapsed() >= Duration::from_millis(400),
        "{:?}",
        t.elapsed()
    );
    assert!(c.closed_within(Duration::from_secs(3)).await);
    s.shutdown().await.unwrap();

    // A fault on connection 0 leaves connection 1 alone.
    let (s, mut c0) = faulty(&["close-after=1,conn=0"]).await;
    let mut c1 = Conn::connect(s.local_addr()).await;
    c1.send_query(&query(1, relay(0))).await;
    c0.send_query(&query(1, relay(0))).await;
    assert_eq!(bindings(&c1.collect(&[1]).await).len(), 40);
    assert_eq!(shape(&take(&mut c0, 1).await), "R");
    assert!(c0.closed_within(Duration::from_secs(3)).await);
    s.shutdown().await.unwrap();
}
