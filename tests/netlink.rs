//! The netlink route table in a private network namespace: batched adds,
//! replace, remove, per-route errors, listing only our routes.
//! Needs root (ip netns): skipped with a `SKIPPED` line otherwise, a
//! failure under CI (tests/support). Never touches the host's routes.

mod support;
use pdrestore::netns::NetNs;
use pdrestore::routes::{diff, errno, Change, NetlinkTable, Ownership, Route, RouteOp, RouteTable};
use std::collections::BTreeMap;

#[track_caller]
fn setup() -> Option<NetNs> {
    if !support::need_netns() {
        return None;
    }
    let ns = NetNs::create("pdr-nl").expect("create netns");
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
    Some(ns)
}

/// Protocol 16 in the main table, inside 2001:db8::/32, /48 or longer.
fn owner() -> Ownership {
    Ownership::new(254, 16, 1024, &["2001:db8::/32".parse().unwrap()], 48)
}

fn route(prefix: &str, gw: &str, ifindex: u32, expires: Option<u32>) -> Route {
    Route {
        prefix: prefix.parse().unwrap(),
        gateway: gw.parse().unwrap(),
        interface: "veth-c1".into(),
        ifindex,
        table: 254,
        protocol: 16,
        metric: 1024,
        expires,
    }
}

#[test]
fn batched_install_list_replace_remove() {
    let Some(ns) = setup() else { return };
    ns.ip([
        "-6",
        "route",
        "add",
        "2001:db8:f000::/48",
        "via",
        "fe80::99",
        "dev",
        "veth-c1",
        "proto",
        "static",
    ])
    .unwrap();
    let (listed, errors, after) = ns
        .run(|| async {
            let mut t = NetlinkTable::open().unwrap();
            let ifs = t.interfaces().await.unwrap();
            let c1 = ifs
                .iter()
                .find(|i| &*i.name == "veth-c1")
                .expect("veth-c1 listed");
            assert!(c1.addresses.contains(&"2001:db8:1::1/64".parse().unwrap()));
            let idx = c1.index;
            // 3000 routes: several datagrams; one route out of a missing interface.
            let mut want: BTreeMap<_, _> = (0..3000u32)
                .map(|i| {
                    let r = route(
                        &format!("2001:db8:8{:03x}:{:x}00::/56", i / 256, i % 256),
                        &format!("fe80::{:x}", i + 2),
                        idx,
                        Some(600),
                    );
                    (r.prefix, r)
                })
                .collect();
            let bad = route("2001:db8:9000::/56", "fe80::2", 9999, Some(600));
            want.insert(bad.prefix, bad);
            let owned = t.list_owned(&owner()).await.unwrap();
            assert!(owned.is_empty(), "the static route is not ours");
            let d = diff(&owned, &want, true, 30);
            assert_eq!(d.changes.len(), 3001);
            let errors = t.apply(&d.changes).await.unwrap();
            let listed = t.list_owned(&owner()).await.unwrap();
            // Replace one (new next hop), remove one, remove one that is already gone.
            let mut moved = listed[0].clone();
            moved.gateway = "fe80::abcd".parse().unwrap();
            let gone = route("2001:db8:7777::/56", "fe80::2", idx, None);
            let more = t
                .apply(&[
                    Change::Replace {
                        old: listed[0].clone(),
                        new: moved,
                    },
                    Change::Remove(listed[1].clone()),
                    Change::Remove(gone),
                ])
                .await
                .unwrap();
            assert!(more.is_empty(), "{more:?}");
            let after = t.list_owned(&owner()).await.unwrap();
            (listed, errors, after)
        })
        .unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].prefix.to_string(), "2001:db8:9000::/56");
    assert_eq!(errors[0].op, RouteOp::Add);
    assert_eq!(errors[0].errno, Some(errno::ENODEV));
    assert!(
        errors[0].message.contains("No such device"),
        "{}",
        errors[0].message
    );
    assert_eq!(listed.len(), 3000);
    for r in &listed {
        assert_eq!(
            (r.table, r.protocol, r.metric, &*r.interface),
            (254, 16, 1024, "veth-c1")
        );
        let e = r.expires.expect("expiry set");
        assert!((590..=600).contains(&e), "expires {e}");
    }
    assert_eq!(after.len(), 2999);
    assert!(after.iter().any(|r| r.gateway.to_string() == "fe80::abcd"));
    // The kernel's own view, through iproute2.
    let shown = ns.ip(["-6", "route", "show", "proto", "16"]).unwrap();
    assert_eq!(shown.lines().count(), 2999);
    let first = shown.lines().find(|l| l.contains("fe80::abcd")).unwrap();
    assert!(
        first.contains("dev veth-c1") && first.contains("metric 1024") && first.contains("expires"),
        "{first}"
    );
    // The hand-made static route is untouched.
    let stat = ns.ip(["-6", "route", "show", "proto", "static"]).unwrap();
    assert!(
        stat.contains("2001:db8:f000::/48 via fe80::99 dev veth-c1"),
        "{stat}"
    );
}

#[test]
fn pipelined_submit_reports_failures_by_sync() {
    let Some(ns) = setup() else { return };
    let (failures, listed) = ns
        .run(|| async {
            let mut t = NetlinkTable::open().unwrap();
            let idx = t
                .interfaces()
                .await
                .unwrap()
                .into_iter()
                .find(|i| &*i.name == "veth-c1")
                .unwrap()
                .index;
            let mut failures = Vec::new();
            for b in 0..5u32 {
                let mut batch: Vec<Change> = (0..256u32)
                    .map(|i| {
                        Change::Add(route(
                            &format!("2001:db8:8{b:03x}:{i:x}00::/56"),
                            "fe80::2",
                            idx,
                            Some(600),
                        ))
                    })
                    .collect();
                if b == 2 {
                    batch.push(Change::Add(route(
                        "2001:db8:9000::/56",
                        "fe80::2",
                        9999,
                        None,
                    )));
                }
                failures.extend(t.submit(batch).await.unwrap());
            }
            failures.extend(t.sync().await.unwrap());
            let listed = t.list_owned(&owner()).await.unwrap();
            (failures, listed)
        })
        .unwrap();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(
        failures[0].0.route().prefix.to_string(),
        "2001:db8:9000::/56"
    );
    assert!(failures[0].1.message.contains("No such device"));
    assert_eq!(listed.len(), 5 * 256);
}

/// The kernel keeps ownership for us: an add over another's route fails
/// with EEXIST and leaves it, a remove of ours at the same key takes
/// nothing of another's; the listing shows every route of the table.
#[test]
fn adds_are_exclusive_and_removes_take_only_our_route() {
    let Some(ns) = setup() else { return };
    for args in [
        &[
            "-6",
            "route",
            "add",
            "2001:db8:8000:100::/56",
            "via",
            "fe80::99",
            "dev",
            "veth-c1",
            "proto",
            "static",
        ][..],
        &[
            "-6",
            "route",
            "add",
            "blackhole",
            "2001:db8:8000:200::/56",
            "proto",
            "static",
        ][..],
    ] {
        ns.ip(args).unwrap();
    }
    let (errors, removed, listed, access) = ns
        .run(|| async {
            let mut t = NetlinkTable::open().unwrap();
            let access = t.check_write_access().await;
            let idx = t
                .interfaces()
                .await
                .unwrap()
                .into_iter()
                .find(|i| &*i.name == "veth-c1")
                .unwrap()
                .index;
            let ours = route("2001:db8:8000:100::/56", "fe80::2", idx, Some(600));
            let errors = t.apply(&[Change::Add(ours.clone())]).await.unwrap();
            // As if it were ours: the kernel matches protocol and next hop.
            let mut theirs = ours.clone();
            theirs.gateway = "fe80::99".parse().unwrap();
            let removed = t
                .apply(&[Change::Remove(ours), Change::Remove(theirs)])
                .await
                .unwrap();
            let mut listed = Vec::new();
            t.list_table(254, &mut |r| listed.push(r)).await.unwrap();
            (errors, removed, listed, access)
        })
        .unwrap();
    assert!(access.is_ok(), "{access:?}");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].errno, Some(errno::EEXIST));
    assert_eq!(errors[0].code(), "EEXIST");
    assert!(removed.is_empty(), "{removed:?}");
    let shown = ns.ip(["-6", "route", "show", "proto", "static"]).unwrap();
    assert!(
        shown.contains("2001:db8:8000:100::/56 via fe80::99 dev veth-c1"),
        "{shown}"
    );
    assert!(
        shown.contains("blackhole 2001:db8:8000:200::/56"),
        "{shown}"
    );
    let stat = listed
        .iter()
        .find(|r| r.prefix.to_string() == "2001:db8:8000:100::/56")
        .unwrap();
    assert_eq!((stat.protocol, stat.kind), (4, 1));
    assert!(!owner().owns(stat), "another protocol");
    let hole = listed
        .iter()
        .find(|r| r.prefix.to_string() == "2001:db8:8000:200::/56")
        .unwrap();
    assert_eq!((hole.kind, hole.gateway), (6, None));
    assert!(hole.as_route().is_none());
}
