//! Helpers shared by the end-to-end recovery tests (tests/recover.rs,
//! tests/fault_matrix.rs, ...): binding builders, a namespace with client
//! links and a reader of its kernel table, and the same router's interfaces
//! made up for an in-memory table (no root). A crate that uses it declares
//! `mod support;` too.
#![allow(dead_code)]

use ipnet::Ipv6Net;
use pdrestore::netns::NetNs;
use pdrestore::proto::{Binding, LeaseKind, RelayLayer};
use pdrestore::routes::{Interface, MemoryTable};
use pdrestore::server::synth::link_prefix;
use std::net::Ipv6Addr;

/// The Relay-ID the tests recover for.
pub const RELAY: &str = "000200000009010203040506";

/// One relay layer (hop-count 0) with an interface-id and maybe a Relay-ID.
pub fn layer(link: &str, peer: &str, ifid: &str, relay_id: Option<&str>) -> RelayLayer {
    RelayLayer {
        hop_count: 0,
        link_address: link.parse().unwrap(),
        peer_address: peer.parse().unwrap(),
        interface_id: Some(ifid.as_bytes().to_vec()),
        remote_id: None,
        relay_id: relay_id.map(|r| r.parse().unwrap()),
    }
}

/// A delegated-prefix binding (preferred 1800 s, valid 3600 s).
pub fn pd(client: &str, prefix: &str, clt: u32, relay: Vec<RelayLayer>) -> Binding {
    Binding {
        client_duid: client.parse().unwrap(),
        lease: LeaseKind::Prefix(prefix.parse().unwrap()),
        preferred_lifetime: 1800,
        valid_lifetime: 3600,
        clt_time: clt,
        relay,
    }
}

/// The lines of `ip -6 route show table TABLE` in the namespace; empty when
/// the kernel has not made the table yet (it does so with its first route).
pub fn table_lines(ns: &NetNs, table: u32) -> Vec<String> {
    match ns.ip(["-6", "route", "show", "table", &table.to_string()]) {
        Ok(t) => t.lines().map(str::to_owned).collect(),
        Err(e) if e.to_string().contains("FIB table does not exist") => Vec::new(),
        Err(e) => panic!("{e}"),
    }
}

/// A child process, killed and reaped when dropped.
pub struct Child(pub std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `pdrestore` binary with `args`, to run inside the namespace.
pub fn pdrestore_in(ns: &NetNs, args: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new("ip");
    c.args(["netns", "exec", ns.name(), env!("CARGO_BIN_EXE_pdrestore")])
        .args(args);
    c
}

pub use crate::support::wait_listening;

/// A namespace named after `prefix` with `links` veth client links
/// (`demo::link_commands`: cust0, cust1, ...), or `None` without root or
/// iproute2 (`support::need_netns`: skipped visibly, a failure under CI).
#[track_caller]
pub fn client_links(prefix: &str, links: u32) -> Option<NetNs> {
    if !crate::support::need_netns() {
        return None;
    }
    let ns = NetNs::create(prefix).unwrap();
    for c in pdrestore::demo::link_commands(links) {
        ns.ip(&c).unwrap();
    }
    Some(ns)
}

/// The interfaces `client_links(_, links)` makes, as the kernel lists them
/// in that namespace (lo 1, then cpeN 2N+2 and custN 2N+3: the peer is made
/// first), for a recovery into a `MemoryTable` without root: custN holds
/// `link_prefix(N)::1/64` and a link-local address, cpeN a link-local one.
pub fn client_interfaces(links: u32) -> Vec<Interface> {
    let mut ifs = vec![Interface {
        name: "lo".into(),
        index: 1,
        addresses: vec!["::1/128".parse().unwrap()],
    }];
    for j in 0..links {
        let global = Ipv6Addr::from(u128::from(link_prefix(j).network()) | 1);
        ifs.push(Interface {
            name: format!("cpe{j}").into(),
            index: 2 * j + 2,
            addresses: vec![format!("fe80::ff:fe00:{:x}/64", 2 * j + 2).parse().unwrap()],
        });
        ifs.push(Interface {
            name: pdrestore::demo::link_ifname(j).into(),
            index: 2 * j + 3,
            addresses: vec![
                Ipv6Net::new(global, 64).unwrap(),
                format!("fe80::ff:fe00:{:x}/64", 2 * j + 3).parse().unwrap(),
            ],
        });
    }
    ifs
}

/// A `MemoryTable` that knows exactly the interfaces `ifs`.
pub fn memory_table(ifs: &[Interface]) -> MemoryTable {
    MemoryTable::with_interfaces(ifs.iter().map(|i| i.index))
}

/// Run `f` to completion on a runtime of its own (a current-thread one, as
/// `NetNs::run` uses), for the rows that need no namespace.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// The routes of an in-memory table of a router made by
/// `client_interfaces`, as `ip -6 route show` prints them (the protocol by
/// number, `expires Nsec`, no `pref medium`), the device named after the
/// route's interface index as the kernel names it: panics when the route's
/// interface name disagrees with its index.
pub fn memory_routes(t: &MemoryTable) -> Vec<String> {
    let ifs = client_interfaces(8);
    t.routes()
        .map(|r| {
            let dev = ifs.iter().find(|i| i.index == r.ifindex);
            assert_eq!(
                dev.map(|i| &*i.name),
                Some(&*r.interface),
                "interface index {} of {r:?}",
                r.ifindex
            );
            let expires = r.expires.map(|e| format!(" expires {e}sec"));
            format!(
                "{} via {} dev {} proto {} metric {}{}",
                r.prefix,
                r.gateway,
                r.interface,
                r.protocol,
                r.metric,
                expires.unwrap_or_default()
            )
        })
        .collect()
}

/// Recover into `table` (a router with the interfaces `ifs`) with `cfg` as
/// the relay `relay`, then stop the lab servers `servers`: the summary and
/// the table afterwards.
pub async fn recover_then_stop<T: pdrestore::routes::RouteTable>(
    cfg: &pdrestore::config::Config,
    relay: &str,
    table: T,
    ifs: Vec<Interface>,
    opts: &pdrestore::agent::RecoverOptions,
    servers: Vec<pdrestore::server::ServerHandle>,
) -> (pdrestore::agent::Summary, T) {
    let relay: pdrestore::proto::Duid = relay.parse().unwrap();
    let (report, table) =
        pdrestore::agent::recover(cfg, &relay, table, ifs, opts, std::future::pending())
            .await
            .unwrap();
    for s in servers {
        s.shutdown().await.unwrap();
    }
    (report.summary(), table)
}

/// Prefix `n` of 2001:db8:8000::/40 (a /56) for client `n` on link `link`
/// (cust0, cust1: link-address `2001:db8:0:{link+1}::1`, interface-id
/// `ge-0/0/{link}`), relayed with our Relay-ID.
pub fn numbered(n: u32, link: u32) -> Binding {
    pd(
        &format!("00030001{n:012x}"),
        &format!("2001:db8:80{:02x}:{:x}00::/56", n / 256, n % 256),
        5,
        vec![layer(
            &format!("2001:db8:0:{}::1", link + 1),
            &format!("fe80::{:x}", n + 1),
            &format!("ge-0/0/{link}"),
            Some(RELAY),
        )],
    )
}

/// `numbered` bindings `range`, on cust0 and cust1 in turn.
pub fn numbered_range(range: std::ops::Range<u32>) -> Vec<Binding> {
    range.map(|n| numbered(n, n % 2)).collect()
}

/// A file `dir/name` of `bindings` as JSON Lines, for `lab-server --bindings`.
pub fn jsonl_file(dir: &std::path::Path, name: &str, bindings: &[Binding]) -> std::path::PathBuf {
    let p = dir.join(name);
    let text: String = bindings
        .iter()
        .map(|b| serde_json::to_string(b).unwrap() + "\n")
        .collect();
    std::fs::write(&p, text).unwrap();
    p
}

/// `pdrestore lab-server` (the binary) in `ns` serving `file` on
/// [::1]:`port` with `extra` arguments (`--fault SPEC`, `--link PREFIX`,
/// ...), once it listens; killed when dropped.
pub fn lab_server_in(ns: &NetNs, port: u16, file: &std::path::Path, extra: &[&str]) -> Child {
    let listen = format!("[::1]:{port}");
    let mut args = vec![
        "lab-server",
        "--listen",
        &listen,
        "--bindings",
        file.to_str().unwrap(),
    ];
    args.extend(extra);
    let mut c = pdrestore_in(ns, &args);
    c.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let child = Child(c.spawn().unwrap());
    wait_listening(ns, port);
    child
}
