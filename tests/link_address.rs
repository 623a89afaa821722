//! Recovery by link-address (issue 14): lab servers with Kea's subnet
//! semantics (a link query returns every binding of the subnet that holds
//! the address, whichever relay relayed it) on 127.0.0.1, and the whole
//! `recover` into an in-memory table of a router with the client links
//! cust0 (2001:db8:0:1::1/64) and cust1 (2001:db8:0:2::1/64), as
//! `route_lab::client_links` makes them in a namespace. Needs no root; no
//! route of the host is touched. (The netlink side of a recovery is tested
//! in namespaces by tests/recover.rs, tests/safety.rs and tests/netlink.rs.)

mod route_lab;
mod support;
use pdrestore::agent::{RecoverOptions, Summary};
use pdrestore::config::Config;
use pdrestore::proto::{Binding, LeaseKind, RelayLayer};
use pdrestore::routes::MemoryTable;
use pdrestore::server::{self, BindingStore, ServerConfig};
use route_lab::pd;
use std::path::Path;
use std::sync::Arc;

/// A fresh in-memory table of the router (cust0, cust1).
fn lab() -> MemoryTable {
    route_lab::memory_table(&route_lab::client_interfaces(2))
}

/// A binding relayed by ISC dhcrelay-style relay `relay` (its address on
/// the client link is the link-address; no Relay-ID, a binary interface-id).
fn relayed(n: u32, relay: &str) -> Binding {
    pd(
        &format!("00030001{n:012x}"),
        &format!("2001:db8:80{:02x}:{:x}00::/56", n / 256, n % 256),
        5,
        vec![RelayLayer {
            hop_count: 0,
            link_address: relay.parse().unwrap(),
            peer_address: format!("fe80::{:x}", n + 1).parse().unwrap(),
            interface_id: Some(vec![7, 0, 0, 0]),
            remote_id: None,
            relay_id: None,
        }],
    )
}

/// Recover into `table` with `links` from lab servers serving `sets` (one
/// server each) on 127.0.0.1; the summary and the table afterwards.
fn recover(
    table: MemoryTable,
    sets: Vec<Vec<Binding>>,
    links: &str,
    extra: &str,
) -> (Summary, MemoryTable) {
    route_lab::block_on(async move {
        let mut handles = Vec::new();
        let mut text = format!(
            "relay_duid = \"0003000102000000ff01\"\nstate_directory = \"/nonexistent\"\nquery = \"link-address\"\nlinks = [{links}]\nstartup_deadline = \"0s\"\nretries = 0\n{extra}\n"
        );
        for b in sets {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let store = BindingStore::from_bindings(&b, server::store::unix_now(), &[]).unwrap();
            let h = server::spawn(l, Arc::new(store), ServerConfig::default()).unwrap();
            let a = h.local_addr();
            text.push_str(&format!(
                "[[server]]\naddress = \"{}\"\nport = {}\n",
                a.ip(),
                a.port()
            ));
            handles.push(h);
        }
        text.push_str(
            "[routes]\nallowed_prefixes = [\"2001:db8:8000::/40\"]\nprune_limit = \"100%\"\n",
        );
        let cfg = Config::parse(&text, Path::new("link.toml")).unwrap();
        let ifs = route_lab::client_interfaces(2);
        let opts = RecoverOptions::default();
        route_lab::recover_then_stop(&cfg, "0003000102000000ff01", table, ifs, &opts, handles).await
    })
}

/// Our routes (protocol 57, in the main table: every route of the table
/// is), as `prefix via next-hop dev interface`, sorted.
fn ours(t: &MemoryTable) -> Vec<String> {
    for r in t.routes() {
        assert_eq!((r.table, r.protocol), (254, 57), "{r:?}");
    }
    let mut v: Vec<String> = route_lab::memory_routes(t)
        .iter()
        .map(|l| l.split_whitespace().take(5).collect::<Vec<_>>().join(" "))
        .collect();
    v.sort();
    v
}

/// Two relays share cust0's subnet (2001:db8:0:1::/64): ours at ::1,
/// another at ::2. Two servers both hold both relays' bindings. A link
/// query returns all of them; only ours become routes, and the other
/// relay's are dropped, counted by reason, never an error or a route.
#[test]
fn two_relays_on_one_subnet_only_ours_are_routed() {
    let mut set: Vec<Binding> = (0..4).map(|n| relayed(n, "2001:db8:0:1::1")).collect();
    set.extend((10..13).map(|n| relayed(n, "2001:db8:0:1::2")));
    // The other relay's binding whose only layer carries a foreign link-address.
    let (s, t) = recover(lab(), vec![set.clone(), set], "\"2001:db8:0:1::1\"", "");
    let text = s.to_text();
    assert_eq!((s.outcome.as_str(), s.exit_code), ("complete", 0), "{text}");
    assert_eq!(s.bindings, 14, "both servers sent the whole subnet");
    assert_eq!(s.routes.added, 4);
    assert!(s.routes.rejected.is_empty(), "{:?}", s.routes.rejected);
    assert_eq!(s.routes.dropped.get("other-relay"), Some(&3));
    let v = serde_json::to_value(&s).unwrap();
    assert_eq!(v["routes"]["dropped"]["other-relay"], 3);
    let r = ours(&t);
    assert_eq!(r.len(), 4, "{r:?}");
    assert!(r.iter().all(|l| l.contains("dev cust0")), "{r:?}");
    assert!(
        r.contains(&"2001:db8:8000::/56 via fe80::1 dev cust0".to_string()),
        "{r:?}"
    );
    assert!(!r.iter().any(|l| l.starts_with("2001:db8:8000:a00::/56")));
}

/// A link that is not asked about keeps its routes through a prune; on the
/// link that is, a prefix no longer backed is pruned.
#[test]
fn a_link_not_queried_keeps_its_routes_through_a_prune() {
    let on0: Vec<Binding> = (0..3).map(|n| relayed(n, "2001:db8:0:1::1")).collect();
    let on1: Vec<Binding> = (20..23).map(|n| relayed(n, "2001:db8:0:2::1")).collect();
    let both: Vec<Binding> = on0.iter().chain(&on1).cloned().collect();
    let (s, t) = recover(
        lab(),
        vec![both],
        "\"2001:db8:0:1::1\", \"2001:db8:0:2::1\"",
        "",
    );
    assert_eq!(s.routes.added, 6, "{}", s.to_text());
    // Now only cust0's link is asked about, and one of its prefixes is gone.
    let (s, t) = recover(t, vec![on0[..2].to_vec()], "\"2001:db8:0:1::1\"", "");
    let text = s.to_text();
    assert!(s.routes.pruned, "{text}");
    assert_eq!(s.routes.removed, 1, "{text}");
    assert_eq!(s.routes.removed_routes[0].prefix, "2001:db8:8000:200::/56");
    let r = ours(&t);
    assert_eq!(r.len(), 5, "{r:?}");
    assert_eq!(
        r.iter().filter(|l| l.contains("dev cust1")).count(),
        3,
        "{r:?}"
    );
}

/// The lab server's link query has Kea's semantics: any address of the
/// subnet selects it, and a binding without relay data sits on the link of
/// its own address.
#[test]
fn any_address_of_the_subnet_selects_it() {
    let mut set: Vec<Binding> = (0..3).map(|n| relayed(n, "2001:db8:0:1::1")).collect();
    let mut na = relayed(40, "2001:db8:0:1::1");
    na.lease = LeaseKind::Address("2001:db8:0:1::99".parse().unwrap());
    set.push(na);
    let (s, t) = recover(lab(), vec![set], "\"2001:db8:0:1::77\"", "");
    assert_eq!(s.bindings, 4, "{}", s.to_text());
    // ::77 is not the relay's link-address: every binding is another relay's.
    assert_eq!(s.routes.dropped.get("other-relay"), Some(&3));
    assert_eq!(s.routes.added, 0);
    assert!(ours(&t).is_empty());
}
