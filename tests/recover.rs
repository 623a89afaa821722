//! End to end: lab servers and the recovery inside a private network
//! namespace (veth client links), checked against the kernel's table with
//! `ip -6 route`. Needs root (ip netns): skipped with a `SKIPPED` line
//! otherwise, a failure under CI (tests/support); never touches the host's
//! routes. The rows about what servers say (one down, rogue offers, a
//! disagreement) run without root: lab servers on 127.0.0.1 and the
//! recovery into an in-memory table with the namespace's interfaces made up.

mod route_lab;
mod support;
use pdrestore::agent::{RecoverOptions, Summary};
use pdrestore::config::Config;
use pdrestore::netns::NetNs;
use pdrestore::proto::{Binding, LeaseKind, RelayLayer};
use pdrestore::routes::{Interface, MemoryTable, NetlinkTable, RouteTable};
use pdrestore::server::{self, BindingStore, ServerConfig};
use route_lab::{layer, pd, table_lines, RELAY};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// The bindings of the lab: two prefixes on link 0 (one hop), one behind two
/// relays whose inner layer carries our Relay-ID (link 1), one address.
fn bindings() -> Vec<Binding> {
    let mut na = pd(
        "0003000100000000000a",
        "2001:db8:8000::/56",
        5,
        vec![layer("2001:db8:0:2::1", "fe80::a", "ge-0/0/1", Some(RELAY))],
    );
    na.lease = LeaseKind::Address("2001:db8:0:2::55".parse().unwrap());
    vec![
        pd(
            "00030001000000000001",
            "2001:db8:8000:100::/56",
            5,
            vec![layer("2001:db8:0:1::1", "fe80::1", "ge-0/0/0", Some(RELAY))],
        ),
        pd(
            "00030001000000000002",
            "2001:db8:8000:200::/56",
            9,
            vec![layer("2001:db8:0:1::1", "fe80::2", "ge-0/0/0", Some(RELAY))],
        ),
        pd(
            "00030001000000000003",
            "2001:db8:8000:300::/56",
            3,
            vec![
                RelayLayer {
                    hop_count: 1,
                    ..layer("::", "2001:db8:ffff::9", "uplink-1", None)
                },
                layer("2001:db8:0:2::1", "fe80::3", "ge-0/0/1", Some(RELAY)),
            ],
        ),
        na,
    ]
}

fn config(servers: &[SocketAddr], extra: &str) -> Config {
    let mut t = format!("relay_duid = \"{RELAY}\"\nstate_directory = \"/nonexistent\"\ndata_timeout = \"5s\"\nretries = 1\nretry_initial_delay = \"50ms\"\nstartup_deadline = \"0s\"\n{extra}");
    for s in servers {
        t.push_str(&format!(
            "[[server]]\naddress = \"{}\"\nport = {}\n",
            s.ip(),
            s.port()
        ));
    }
    t.push_str(
        "[routes]\ntable = 100\nmetric = 512\nprotocol = 16\nprune_limit = \"100%\"\nallowed_prefixes = [\"2001:db8:8000::/40\"]\n[routes.interfaces]\n\"ge-0/0/0\" = \"cust0\"\n\"ge-0/0/1\" = \"cust1\"\n",
    );
    Config::parse(&t, std::path::Path::new("test.toml")).unwrap()
}

fn lab() -> Option<NetNs> {
    route_lab::client_links("pdr-recover", 2)
}

/// Serve `sets` (one server each; `None` = a closed port) and recover into the namespace.
fn run(ns: &NetNs, sets: Vec<Option<Vec<Binding>>>, extra: &'static str) -> Summary {
    run_with(ns, sets, extra, false)
}

fn run_with(
    ns: &NetNs,
    sets: Vec<Option<Vec<Binding>>>,
    extra: &'static str,
    dry_run: bool,
) -> Summary {
    ns.run(move || async move {
        let mut table = NetlinkTable::open().unwrap();
        let ifs = table.interfaces().await.unwrap();
        let host = Ipv6Addr::LOCALHOST.into();
        serve_and_recover(host, sets, extra, dry_run, table, ifs)
            .await
            .0
    })
    .unwrap()
}

/// The in-memory router: the interfaces of `lab()`, and `table` (its
/// routes so far); serve `sets` on 127.0.0.1 and recover into it.
fn run_memory(table: MemoryTable, sets: Vec<Option<Vec<Binding>>>) -> (Summary, MemoryTable) {
    let ifs = route_lab::client_interfaces(2);
    let host = Ipv4Addr::LOCALHOST.into();
    route_lab::block_on(serve_and_recover(host, sets, "", false, table, ifs))
}

/// A fresh in-memory table of the router of `lab()`.
fn memory() -> MemoryTable {
    route_lab::memory_table(&route_lab::client_interfaces(2))
}

/// Serve `sets` on `host` (ephemeral ports) and recover into `table`, a
/// router with the interfaces `ifs`.
async fn serve_and_recover<T: RouteTable>(
    host: IpAddr,
    sets: Vec<Option<Vec<Binding>>>,
    extra: &str,
    dry_run: bool,
    table: T,
    ifs: Vec<Interface>,
) -> (Summary, T) {
    let mut handles = Vec::new();
    let mut addrs = Vec::new();
    for set in sets {
        let l = tokio::net::TcpListener::bind((host, 0)).await.unwrap();
        match set {
            Some(b) => {
                let store =
                    BindingStore::from_bindings(&b, server::store::unix_now(), &[]).unwrap();
                let h = server::spawn(l, Arc::new(store), ServerConfig::default()).unwrap();
                addrs.push(h.local_addr());
                handles.push(h);
            }
            None => {
                addrs.push(l.local_addr().unwrap());
                drop(l); // nothing listens there
            }
        }
    }
    let cfg = config(&addrs, extra);
    let opts = RecoverOptions {
        dry_run,
        ..RecoverOptions::default()
    };
    route_lab::recover_then_stop(&cfg, RELAY, table, ifs, &opts, handles).await
}

fn routes(ns: &NetNs) -> Vec<String> {
    table_lines(ns, 100).iter().map(|l| normalised(l)).collect()
}

/// An in-memory table's routes, as `routes` gives the kernel's (the
/// protocol by number, without `pref medium`). Panics on a route outside
/// table 100.
fn memory_routes(t: &MemoryTable) -> Vec<String> {
    for r in t.routes() {
        assert_eq!(r.table, 100, "{r:?}");
    }
    route_lab::memory_routes(t)
        .iter()
        .map(|l| normalised(l))
        .collect()
}

/// A route line with its lifetime checked (about an hour) and rounded.
fn normalised(l: &str) -> String {
    // "expires 3599sec": keep the field, round the value for comparison.
    let mut w: Vec<String> = l.split_whitespace().map(str::to_owned).collect();
    if let Some(i) = w.iter().position(|x| x == "expires") {
        let secs: u32 = w[i + 1].trim_end_matches("sec").parse().unwrap();
        assert!((3590..=3600).contains(&secs), "{l}");
        w[i + 1] = "~3600sec".into();
    }
    w.join(" ")
}

#[test]
fn recovery_installs_exact_routes_reruns_clean_and_prunes() {
    let Some(ns) = lab() else { return };
    ns.ip([
        "-6",
        "route",
        "add",
        "2001:db8:8000:9900::/56",
        "via",
        "fe80::99",
        "dev",
        "cust0",
        "table",
        "100",
        "proto",
        "static",
    ])
    .unwrap();
    let s = run(&ns, vec![Some(bindings())], "");
    assert_eq!(s.exit_code, 0, "{}", s.to_text());
    assert_eq!(
        (
            s.routes.planned,
            s.routes.added,
            s.routes.replaced,
            s.routes.removed
        ),
        (3, 3, 0, 0)
    );
    assert!(s.routes.rejected.is_empty() && s.routes.failed.is_empty());
    assert_eq!(s.bindings, 4);
    assert_eq!(
        routes(&ns),
        [
            "2001:db8:8000:100::/56 via fe80::1 dev cust0 proto dhcp metric 512 expires ~3600sec pref medium",
            "2001:db8:8000:200::/56 via fe80::2 dev cust0 proto dhcp metric 512 expires ~3600sec pref medium",
            "2001:db8:8000:300::/56 via fe80::3 dev cust1 proto dhcp metric 512 expires ~3600sec pref medium",
            "2001:db8:8000:9900::/56 via fe80::99 dev cust0 proto static metric 1024 pref medium",
        ]
    );
    // The same bindings again: nothing changes.
    let s = run(&ns, vec![Some(bindings())], "");
    assert_eq!(
        (
            s.routes.added,
            s.routes.replaced,
            s.routes.removed,
            s.routes.unchanged
        ),
        (0, 0, 0, 3),
        "{}",
        s.to_text()
    );
    assert_eq!(s.routes.operations, 0);
    // One binding withdrawn: its route is pruned; the static route stays.
    let mut fewer = bindings();
    fewer.remove(1);
    let s = run(&ns, vec![Some(fewer)], "");
    assert_eq!(
        (s.routes.removed, s.routes.unchanged),
        (1, 2),
        "{}",
        s.to_text()
    );
    let r = routes(&ns);
    assert_eq!(r.len(), 3);
    assert!(!r.iter().any(|l| l.starts_with("2001:db8:8000:200::/56")));
    assert!(r.iter().any(|l| l.contains("proto static")));
}

/// In memory (no root).
#[test]
fn a_failing_server_never_takes_routes_away() {
    let (s, t) = run_memory(memory(), vec![Some(bindings())]);
    assert_eq!(s.routes.added, 3);
    assert_eq!(memory_routes(&t).len(), 3);
    // Now the second server is down and the first one lost a binding: no prune.
    let mut fewer = bindings();
    fewer.remove(1);
    let (s, t) = run_memory(t, vec![Some(fewer), None]);
    assert_eq!(s.exit_code, 1, "partial: {}", s.to_text());
    assert_eq!(s.outcome, "partial");
    assert!(!s.servers[1].complete);
    assert_eq!(s.servers[0].status, "complete");
    assert!(!s.routes.pruned);
    assert_eq!(s.routes.removed, 0);
    assert_eq!(memory_routes(&t).len(), 3, "nothing lost");
    // Every server down: nothing restored, exit 2.
    let (s, fresh) = run_memory(memory(), vec![None, None]);
    assert_eq!((s.exit_code, s.outcome.as_str()), (2, "failed"));
    assert!(memory_routes(&fresh).is_empty());
}

/// In memory (no root).
#[test]
fn json_summary_names_everything() {
    let mut rogue = bindings();
    rogue.push(pd(
        "000300010000000000ff",
        "::/0",
        1,
        vec![layer(
            "2001:db8:0:1::1",
            "fe80::66",
            "ge-0/0/0",
            Some(RELAY),
        )],
    ));
    rogue.push(pd(
        "000300010000000000fe",
        "2001:db8:8000:400::/56",
        1,
        vec![layer(
            "2001:db8:0:1::1",
            "2001:db8:77::1",
            "ge-0/0/0",
            Some(RELAY),
        )],
    ));
    // Server 2 says 2001:db8:8000:100::/56 went to another client more recently.
    let other = vec![pd(
        "000300010000000000ee",
        "2001:db8:8000:100::/56",
        1,
        vec![layer(
            "2001:db8:0:1::1",
            "fe80::ee",
            "ge-0/0/0",
            Some(RELAY),
        )],
    )];
    let (s, t) = run_memory(memory(), vec![Some(rogue), Some(other)]);
    let j = serde_json::to_value(&s).unwrap();
    assert_eq!(j["outcome"], "complete");
    assert_eq!(j["exit_code"], 0);
    assert_eq!(j["relay_duid"], RELAY);
    assert_eq!(j["servers"].as_array().unwrap().len(), 2);
    assert_eq!(j["servers"][0]["bindings"], 6);
    assert_eq!(j["servers"][1]["bindings"], 1);
    assert_eq!(j["routes"]["added"], 3);
    let rejected = j["routes"]["rejected"].as_array().unwrap();
    let reasons: Vec<(&str, &str)> = rejected
        .iter()
        .map(|r| (r["prefix"].as_str().unwrap(), r["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        reasons,
        [
            ("::/0", "default route"),
            (
                "2001:db8:8000:400::/56",
                "next hop 2001:db8:77::1 is neither link-local nor on-link on cust0"
            ),
        ]
    );
    let c = &j["conflicts"][0];
    assert_eq!(c["prefix"], "2001:db8:8000:100::/56");
    assert_eq!(c["winner_client"], "000300010000000000ee");
    assert_eq!(c["loser_client"], "00030001000000000001");
    assert!(memory_routes(&t)
        .iter()
        .any(|l| l.starts_with("2001:db8:8000:100::/56 via fe80::ee")));
    for key in [
        "first_binding_ms",
        "first_route_ms",
        "duration_ms",
        "bindings",
        "expired",
        "dry_run",
    ] {
        assert!(j.get(key).is_some(), "{key}");
    }
}

#[test]
fn dry_run_prints_the_diff_and_touches_nothing() {
    let Some(ns) = lab() else { return };
    let s = run_with(&ns, vec![Some(bindings())], "", true);
    assert!(s.dry_run);
    assert_eq!(s.routes.added, 3);
    let changes: Vec<(String, String, String, String)> = s
        .routes
        .changes
        .iter()
        .map(|c| (c.op.clone(), c.prefix.clone(), c.via.clone(), c.dev.clone()))
        .collect();
    assert_eq!(
        changes,
        [
            (
                "add".into(),
                "2001:db8:8000:100::/56".into(),
                "fe80::1".into(),
                "cust0".into()
            ),
            (
                "add".into(),
                "2001:db8:8000:200::/56".into(),
                "fe80::2".into(),
                "cust0".into()
            ),
            (
                "add".into(),
                "2001:db8:8000:300::/56".into(),
                "fe80::3".into(),
                "cust1".into()
            ),
        ]
    );
    assert!(s
        .to_text()
        .contains("would add 2001:db8:8000:300::/56 via fe80::3 dev cust1"));
    assert!(routes(&ns).is_empty(), "nothing installed");
}
