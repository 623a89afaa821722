//! Route installation speed in a private network namespace:
//! pdrestore's batched netlink path against `ip -6 -batch` on the same routes.
//!
//! Run: `cargo bench --bench routes -- [N ...]` (default 100000 1000000). Needs root.
//! Each measurement gets a fresh namespace with one veth pair; nothing touches
//! the host's routes.

#[path = "support/mod.rs"]
mod support;

use pdrestore::netns::NetNs;
use pdrestore::routes::{Change, NetlinkTable, Route, RouteTable};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

fn fresh() -> NetNs {
    let ns = NetNs::create("pdr-bench").expect("netns");
    ns.ip([
        "link", "add", "veth-c1", "type", "veth", "peer", "name", "veth-p1",
    ])
    .unwrap();
    ns.ip(["link", "set", "veth-c1", "up"]).unwrap();
    ns.ip(["link", "set", "veth-p1", "up"]).unwrap();
    ns.ip([
        "-6",
        "addr",
        "add",
        "2001:db8:1::1/64",
        "dev",
        "veth-c1",
        "nodad",
    ])
    .unwrap();
    ns
}

/// N /56 prefixes in 2001:db8:8000::/33-ish space, each via its own link-local next hop.
fn routes(n: u32, ifindex: u32) -> Vec<Route> {
    (0..n)
        .map(|i| {
            let hi = 0x8000 + (i >> 8);
            let lo = (i & 0xff) << 8;
            Route {
                prefix: format!("2001:db8:{hi:x}:{lo:x}::/56").parse().unwrap(),
                gateway: format!("fe80::{:x}:{:x}", (i >> 16) + 1, i & 0xffff)
                    .parse()
                    .unwrap(),
                interface: "veth-c1".into(),
                ifindex,
                table: 254,
                protocol: 16,
                metric: 1024,
                expires: Some(3600),
            }
        })
        .collect()
}

fn count_ours(ns: &NetNs) -> usize {
    ns.run(|| async {
        NetlinkTable::open()
            .unwrap()
            .list_owned(&pdrestore::routes::Ownership::new(
                254,
                16,
                1024,
                &["2001:db8::/32".parse().unwrap()],
                48,
            ))
            .await
            .unwrap()
            .len()
    })
    .unwrap()
}

fn netlink(n: u32) -> Duration {
    let ns = fresh();
    let (elapsed, errors) = ns
        .run(move || async move {
            let mut t = NetlinkTable::open().unwrap();
            let idx = t
                .interfaces()
                .await
                .unwrap()
                .into_iter()
                .find(|i| &*i.name == "veth-c1")
                .unwrap()
                .index;
            let changes: Vec<Change> = routes(n, idx).into_iter().map(Change::Add).collect();
            let start = Instant::now();
            // Handed over whole (no copy), applied by the table's netlink thread.
            let mut errors = t.submit(changes).await.unwrap();
            errors.extend(t.sync().await.unwrap());
            (start.elapsed(), errors.len())
        })
        .unwrap();
    assert_eq!(errors, 0);
    assert_eq!(count_ours(&ns), n as usize);
    elapsed
}

fn ip_batch(n: u32) -> Duration {
    let ns = fresh();
    let mut cmds = String::with_capacity(n as usize * 100);
    for r in routes(n, 0) {
        writeln!(
            cmds,
            "route replace {} via {} dev veth-c1 proto 16 metric 1024 expires 3600",
            r.prefix, r.gateway
        )
        .unwrap();
    }
    let start = Instant::now();
    ns.ip_batch(&cmds).unwrap();
    let elapsed = start.elapsed();
    assert_eq!(count_ours(&ns), n as usize);
    elapsed
}

fn main() {
    let Some(sizes) = support::sizes::<u32>("routes", &[100_000, 1_000_000]) else {
        return;
    };
    println!(
        "{:>9}  {:>22}  {:>22}  {:>7}",
        "routes", "netlink batch", "ip -6 -batch", "ratio"
    );
    for n in sizes {
        let a = netlink(n);
        let b = ip_batch(n);
        let rate = |d: Duration| n as f64 / d.as_secs_f64();
        println!(
            "{n:>9}  {:>8.3}s {:>9.0}/s  {:>8.3}s {:>9.0}/s  {:>6.2}x",
            a.as_secs_f64(),
            rate(a),
            b.as_secs_f64(),
            rate(b),
            b.as_secs_f64() / a.as_secs_f64()
        );
    }
}
