//! pdrestore's netlink code against the `rtnetlink` crate, in private
//! network namespaces (run as root: `cargo bench --bench netlink -- [N ...]`,
//! default N = 100000 1000000; skipped otherwise). Every comparison is made
//! within the same run, on the same routes:
//!
//! (a) **route dump** of N routes (installed first by our batch path):
//!     `NetlinkTable::list_table` (decoded in place by `routes::netlink::wire`)
//!     against rtnetlink's `RouteHandle::get` stream (netlink-packet-route
//!     decoding, converted to the same `TableRoute`); time and the peak of
//!     the heap in use during the dump (a counting global allocator);
//! (b) **links and addresses** of L veth links with one IPv6 address each:
//!     `NetlinkTable::interfaces` against rtnetlink's link and address dumps;
//! (c) **install** of N routes: our batched encoder (`submit` + `sync`),
//!     rtnetlink (one request per route, as holo does, 1 and K in flight)
//!     and `ip -6 -batch` (the baseline of benches/routes.rs).

#[path = "support/mod.rs"]
mod support;

use futures::{StreamExt, TryStreamExt};
use ipnet::Ipv6Net;
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::link::{LinkAttribute, LinkFlags};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::AddressFamily;
use pdrestore::netns::NetNs;
use pdrestore::routes::netlink::Link;
use pdrestore::routes::{Change, Interface, NetlinkTable, Route, RouteTable, TableRoute};
use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Links of (b).
const LINKS: u32 = 300;
/// Rounds of (b) (the median is reported).
const LINK_ROUNDS: usize = 30;
/// Requests in flight for rtnetlink's concurrent install.
const IN_FLIGHT: usize = 256;

fn fresh() -> NetNs {
    let ns = NetNs::create("pdr-nlbench").expect("netns");
    let up = |a: &[&str]| ns.ip(a.iter().copied()).unwrap();
    up(&[
        "link", "add", "veth-c1", "type", "veth", "peer", "name", "veth-p1",
    ]);
    up(&["link", "set", "veth-c1", "up"]);
    up(&["link", "set", "veth-p1", "up"]);
    ns
}

/// N /56 prefixes in 2001:db8:8000::/33, each via its own link-local next hop.
fn routes(n: u32, ifindex: u32) -> Vec<Route> {
    (0..n)
        .map(|i| Route {
            prefix: Ipv6Net::new(
                Ipv6Addr::from((0x2001_0db8_8000u128 << 80) + (u128::from(i) << 72)),
                56,
            )
            .unwrap(),
            gateway: Ipv6Addr::from((0xfe80u128 << 112) + u128::from(i) + 1),
            interface: "veth-c1".into(),
            ifindex,
            table: 254,
            protocol: 16,
            metric: 1024,
            expires: Some(3600),
        })
        .collect()
}

/// The heap in use and its peak, counted by a global allocator (the RSS
/// high-water mark misses what reuses pages freed earlier).
struct Counting;

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed on to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let now = IN_USE.fetch_add(l.size(), Relaxed) + l.size();
        PEAK.fetch_max(now, Relaxed);
        // SAFETY: the caller's layout, as the trait requires.
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        let now = IN_USE.fetch_add(l.size(), Relaxed) + l.size();
        PEAK.fetch_max(now, Relaxed);
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let now = IN_USE.fetch_add(new, Relaxed) + new;
        PEAK.fetch_max(now, Relaxed);
        IN_USE.fetch_sub(l.size(), Relaxed);
        // SAFETY: `p` came from this allocator with layout `l`.
        unsafe { System.realloc(p, l, new) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        IN_USE.fetch_sub(l.size(), Relaxed);
        // SAFETY: `p` came from `alloc` with this layout.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Reset the heap's peak; what is in use now.
fn reset_peak() -> usize {
    let now = IN_USE.load(Relaxed);
    PEAK.store(now, Relaxed);
    now
}

/// The heap's peak since `base` was taken, in MiB.
fn peak_mib(base: usize) -> f64 {
    PEAK.load(Relaxed).saturating_sub(base) as f64 / (1 << 20) as f64
}

async fn ifindex(name: &str) -> u32 {
    let mut t = NetlinkTable::open().unwrap();
    let links = t.links().await.unwrap();
    links.iter().find(|l| &*l.name == name).unwrap().index
}

/// Our batched encoder: every route in one `submit`, then `sync`.
fn install_ours(ns: &NetNs, n: u32) -> Duration {
    ns.run(move || async move {
        let changes: Vec<Change> = routes(n, ifindex("veth-c1").await)
            .into_iter()
            .map(Change::Add)
            .collect();
        let mut t = NetlinkTable::open().unwrap();
        let start = Instant::now();
        let mut failures = t.submit(changes).await.unwrap();
        failures.extend(t.sync().await.unwrap());
        assert!(failures.is_empty(), "{:?}", failures.first());
        start.elapsed()
    })
    .unwrap()
}

/// The request rtnetlink sends for a route (the same attributes as ours).
fn route_message(r: &Route) -> RouteMessage {
    let mut m = RouteMessage::default();
    m.header.address_family = AddressFamily::Inet6;
    m.header.destination_prefix_length = r.prefix.prefix_len();
    m.header.table = RouteHeader::RT_TABLE_MAIN;
    m.header.protocol = RouteProtocol::from(r.protocol);
    m.header.scope = RouteScope::Universe;
    m.header.kind = RouteType::Unicast;
    m.attributes = vec![
        RouteAttribute::Table(r.table),
        RouteAttribute::Destination(RouteAddress::Inet6(r.prefix.addr())),
        RouteAttribute::Priority(r.metric),
        RouteAttribute::Gateway(RouteAddress::Inet6(r.gateway)),
        RouteAttribute::Oif(r.ifindex),
        RouteAttribute::Expires(r.expires.unwrap_or(0)),
    ];
    m
}

/// rtnetlink: one request per route, `in_flight` at a time.
fn install_rtnetlink(ns: &NetNs, n: u32, in_flight: usize) -> Duration {
    ns.run(move || async move {
        let messages: Vec<RouteMessage> = routes(n, ifindex("veth-c1").await)
            .iter()
            .map(route_message)
            .collect();
        let (conn, handle, _) = rtnetlink::new_connection().unwrap();
        tokio::spawn(conn);
        let start = Instant::now();
        futures::stream::iter(messages)
            .map(|m| handle.route().add(m).execute())
            .buffer_unordered(in_flight)
            .try_collect::<Vec<()>>()
            .await
            .unwrap();
        start.elapsed()
    })
    .unwrap()
}

fn install_ip_batch(ns: &NetNs, n: u32) -> Duration {
    let mut cmds = String::with_capacity(n as usize * 100);
    for r in routes(n, 0) {
        writeln!(
            cmds,
            "route add {} via {} dev veth-c1 proto 16 metric 1024 expires 3600",
            r.prefix, r.gateway
        )
        .unwrap();
    }
    let start = Instant::now();
    ns.ip_batch(&cmds).unwrap();
    start.elapsed()
}

/// Our dump: routes of table 254 decoded in place, counted.
fn dump_ours(ns: &NetNs) -> (usize, Duration, f64) {
    ns.run(|| async {
        let mut t = NetlinkTable::open().unwrap();
        let base = reset_peak();
        let start = Instant::now();
        let mut n = 0usize;
        t.list_table(254, &mut |r| n += usize::from(r.protocol == 16))
            .await
            .unwrap();
        let d = start.elapsed();
        (n, d, peak_mib(base))
    })
    .unwrap()
}

/// A route as netlink-packet-route decodes it, made a `TableRoute`.
fn npr_route(r: &RouteMessage, names: &BTreeMap<u32, Arc<str>>) -> Option<TableRoute> {
    let mut t = TableRoute {
        prefix: Ipv6Net::default(),
        table: u32::from(r.header.table),
        protocol: r.header.protocol.into(),
        metric: 0,
        kind: u8::from(r.header.kind),
        gateway: None,
        multipath: false,
        ifindex: 0,
        interface: Arc::from(""),
        expires: None,
    };
    let mut dst = Ipv6Addr::UNSPECIFIED;
    for a in &r.attributes {
        match a {
            RouteAttribute::Destination(RouteAddress::Inet6(d)) => dst = *d,
            RouteAttribute::Gateway(RouteAddress::Inet6(g)) => t.gateway = Some(*g),
            RouteAttribute::MultiPath(_) => t.multipath = true,
            RouteAttribute::Oif(i) => t.ifindex = *i,
            RouteAttribute::Priority(p) => t.metric = *p,
            RouteAttribute::Table(x) => t.table = *x,
            RouteAttribute::CacheInfo(c) if c.expires > 0 => t.expires = Some(c.expires / 100),
            _ => {}
        }
    }
    t.prefix = Ipv6Net::new(dst, r.header.destination_prefix_length).ok()?;
    t.interface = names.get(&t.ifindex).cloned().unwrap_or_default();
    Some(t)
}

/// rtnetlink's dump: the same routes through RouteHandle::get.
fn dump_rtnetlink(ns: &NetNs) -> (usize, Duration, f64) {
    ns.run(|| async {
        let (conn, handle, _) = rtnetlink::new_connection().unwrap();
        let conn = tokio::spawn(conn);
        let base = reset_peak();
        let start = Instant::now();
        let names: BTreeMap<u32, Arc<str>> = rt_links(&handle)
            .await
            .into_iter()
            .map(|l| (l.index, l.name))
            .collect();
        let mut n = 0usize;
        let req = rtnetlink::RouteMessageBuilder::<Ipv6Addr>::new().build();
        let mut s = handle.route().get(req).execute();
        while let Some(m) = s.try_next().await.unwrap() {
            if let Some(r) = npr_route(&m, &names) {
                n += usize::from(r.table == 254 && r.protocol == 16);
            }
        }
        let d = start.elapsed();
        let mib = peak_mib(base);
        conn.abort();
        (n, d, mib)
    })
    .unwrap()
}

async fn rt_links(handle: &rtnetlink::Handle) -> Vec<Link> {
    let mut out = Vec::new();
    let mut s = handle.link().get().execute();
    while let Some(l) = s.try_next().await.unwrap() {
        let name = l.attributes.iter().find_map(|a| match a {
            LinkAttribute::IfName(n) => Some(n.clone()),
            _ => None,
        });
        if let Some(name) = name {
            out.push(Link {
                name: name.into(),
                index: l.header.index,
                up: l.header.flags.contains(LinkFlags::Up),
                vrf_table: None,
            });
        }
    }
    out
}

async fn rt_interfaces(handle: &rtnetlink::Handle) -> Vec<Interface> {
    let mut ifs: BTreeMap<u32, Interface> = rt_links(handle)
        .await
        .into_iter()
        .map(|l| {
            let i = Interface {
                name: l.name,
                index: l.index,
                addresses: Vec::new(),
            };
            (l.index, i)
        })
        .collect();
    let mut s = handle.address().get().execute();
    while let Some(a) = s.try_next().await.unwrap() {
        let addr = a.attributes.iter().find_map(|x| match x {
            AddressAttribute::Address(IpAddr::V6(v)) => Some(*v),
            _ => None,
        });
        if let (Some(addr), Some(i)) = (addr, ifs.get_mut(&a.header.index)) {
            i.addresses
                .extend(Ipv6Net::new(addr, a.header.prefix_len).ok());
        }
    }
    ifs.into_values().collect()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// (b): L dummy links with an address each; both sides read the same.
fn links_and_addresses() {
    let ns = fresh();
    let mut cmds = String::new();
    // veth pairs (this kernel may lack the dummy driver): L links, one
    // IPv6 address on each.
    for i in 0..LINKS / 2 {
        writeln!(cmds, "link add cust{i} type veth peer name peer{i}").unwrap();
        writeln!(cmds, "link set cust{i} up").unwrap();
        for side in ["cust", "peer"] {
            let net = if side == "cust" { i } else { 0x8000 + i };
            writeln!(cmds, "addr add 2001:db8:{net:x}::1/64 dev {side}{i} nodad").unwrap();
        }
    }
    ns.ip_batch(&cmds).unwrap();
    let (ours, theirs) = ns
        .run(|| async {
            let mut t = NetlinkTable::open().unwrap();
            let (conn, handle, _) = rtnetlink::new_connection().unwrap();
            tokio::spawn(conn);
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for _ in 0..LINK_ROUNDS {
                let s = Instant::now();
                let x = t.interfaces().await.unwrap();
                a.push(s.elapsed());
                let s = Instant::now();
                let y = rt_interfaces(&handle).await;
                b.push(s.elapsed());
                assert_eq!(x, y);
            }
            (median(a), median(b))
        })
        .unwrap();
    println!(
        "(b) links+addresses, {} links: ours {:.2} ms, rtnetlink {:.2} ms (median of {LINK_ROUNDS})",
        LINKS + 3,
        ours.as_secs_f64() * 1e3,
        theirs.as_secs_f64() * 1e3
    );
}

fn row(what: &str, n: u32, d: Duration, extra: &str) {
    let rate = n as f64 / d.as_secs_f64();
    println!(
        "    {what:<34} {:>8.3} s {:>10.0}/s {extra}",
        d.as_secs_f64(),
        rate
    );
}

fn main() {
    let Some(sizes) = support::sizes::<u32>("netlink", &[100_000, 1_000_000]) else {
        return;
    };
    links_and_addresses();
    for n in sizes {
        println!("N = {n}");
        println!("  (c) install");
        let ns = fresh();
        row("ours (batched encoder)", n, install_ours(&ns, n), "");
        // (a) on the table just installed, alternating, three rounds each.
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            a.push(dump_ours(&ns));
            b.push(dump_rtnetlink(&ns));
        }
        row(
            "rtnetlink, 1 in flight",
            n,
            install_rtnetlink(&fresh(), n, 1),
            "",
        );
        let k = format!("rtnetlink, {IN_FLIGHT} in flight");
        row(&k, n, install_rtnetlink(&fresh(), n, IN_FLIGHT), "");
        row("ip -6 -batch", n, install_ip_batch(&fresh(), n), "");
        println!("  (a) dump (median of 3; peak heap growth)");
        for (what, mut v) in [("ours (wire::route in place)", a), ("rtnetlink", b)] {
            assert!(v.iter().all(|x| x.0 == n as usize), "{what}: {:?}", v[0].0);
            v.sort_by_key(|x| x.1);
            let (_, d, mib) = v[1];
            let peak = v.iter().map(|x| x.2).fold(0.0, f64::max);
            row(what, n, d, &format!("{mib:>7.1} MiB (max {peak:.1})"));
        }
    }
}
