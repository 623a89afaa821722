//! The link queries of one recovery run at once (issue 14): against a lab
//! server that answers each link no faster than a fixed rate (one message
//! every 4 ms), four link queries over four connections overlap in time
//! and take about a quarter of what they take one after the other.

use pdrestore::proto::{Binding, LeaseKind, OwnedBindings, Query, RelayLayer};
use pdrestore::requestor::fanout::{Fanout, FanoutConfig, QuerySpec, ServerConfig, Update};
use pdrestore::requestor::RetryPolicy;
use pdrestore::server::{self, BindingStore, Fault};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

const LINKS: u32 = 4;
const PER_LINK: u32 = 40;
const GAP: Duration = Duration::from_millis(4);

/// A binding on link `j` (the relay's link-address 2001:db8:0:j::1).
fn binding(j: u32, n: u32) -> Binding {
    Binding {
        client_duid: format!("0003000100{j:02x}{n:08x}").parse().unwrap(),
        lease: LeaseKind::Prefix(format!("2001:db8:8{j:03x}:{n:x}00::/56").parse().unwrap()),
        preferred_lifetime: 1800,
        valid_lifetime: 3600,
        clt_time: 5,
        relay: vec![RelayLayer {
            hop_count: 0,
            link_address: format!("2001:db8:0:{j}::1").parse().unwrap(),
            peer_address: format!("fe80::{:x}", n + 1).parse().unwrap(),
            interface_id: None,
            remote_id: None,
            relay_id: None,
        }],
    }
}

async fn lab() -> (SocketAddr, server::ServerHandle) {
    let b: Vec<Binding> = (0..LINKS)
        .flat_map(|j| (0..PER_LINK).map(move |n| binding(j, n)))
        .collect();
    let store = BindingStore::from_bindings(&b, server::store::unix_now(), &[]).unwrap();
    let cfg = server::ServerConfig {
        faults: vec![format!("delay-each={}ms", GAP.as_millis())
            .parse::<Fault>()
            .unwrap()],
        ..server::ServerConfig::default()
    };
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let h = server::spawn(l, Arc::new(store), cfg).unwrap();
    (h.local_addr(), h)
}

/// Run the four link queries with `connections` connections; the time it
/// took, and each query's first and last binding.
async fn run(addr: SocketAddr, connections: usize) -> (Duration, Vec<(Instant, Instant)>) {
    let queries = (0..LINKS)
        .map(|j| {
            QuerySpec::new(Query::ByLinkAddress).link(format!("2001:db8:0:{j}::1").parse().unwrap())
        })
        .collect();
    let mut cfg = FanoutConfig::new("000100012a2b2c2d020000009901".parse().unwrap(), queries);
    cfg.servers.push(ServerConfig::new(addr));
    cfg.max_connections = connections;
    cfg.retry = RetryPolicy {
        attempts: 1,
        ..RetryPolicy::default()
    };
    let start = Instant::now();
    let mut fan = Fanout::start(cfg, OwnedBindings);
    let mut spans: Vec<Option<(Instant, Instant)>> = vec![None; LINKS as usize];
    let mut total = 0;
    while let Some(u) = fan.recv().await {
        match u {
            Update::Bindings(v) => {
                for d in v {
                    total += 1;
                    let s = spans[d.query].get_or_insert((d.received, d.received));
                    s.1 = d.received;
                }
            }
            Update::ServerDone(r) => assert!(r.is_complete(), "{r}"),
        }
    }
    assert_eq!(total, LINKS * PER_LINK);
    (
        start.elapsed(),
        spans.into_iter().map(Option::unwrap).collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_queries_overlap_and_take_a_quarter_of_the_time() {
    let (addr, h) = lab().await;
    let (sequential, one_by_one) = run(addr, 1).await;
    let (parallel, spans) = run(addr, 4).await;
    h.shutdown().await.unwrap();
    // Each link is held to the server's rate: at least PER_LINK gaps.
    let floor = GAP * PER_LINK;
    assert!(parallel >= floor, "{parallel:?}");
    assert!(sequential >= floor * LINKS, "{sequential:?}");
    // One connection: the queries follow each other.
    for w in one_by_one.windows(2) {
        assert!(
            w[1].0 >= w[0].1,
            "sequential queries overlapped: {one_by_one:?}"
        );
    }
    // Four connections: every query runs while every other does.
    for a in &spans {
        for b in &spans {
            assert!(a.0 < b.1 && b.0 < a.1, "queries did not overlap: {spans:?}");
        }
    }
    let share = parallel.as_secs_f64() / sequential.as_secs_f64();
    assert!(
        (0.15..0.45).contains(&share),
        "parallel {parallel:?} against sequential {sequential:?}: {share:.2}"
    );
    println!("4 links: one connection {sequential:?}, four {parallel:?} ({share:.2})");
}
