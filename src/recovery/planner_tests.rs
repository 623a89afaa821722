//! The planner's rules, each shown on a binding: every test also holds the
//! production planner to the reference planner (`reference::plan`).

use super::*;
use crate::proto::{LeaseKind, RelayLayer};
use crate::recovery::observed::Observed;
use crate::recovery::reference::fixtures::{interfaces, layer, pd, settings, sv, with_pools, OURS};
use crate::recovery::reference::{self, reconcile::reconcile};
use crate::routes::Route;

fn obs(prefix: &str, relay: Vec<RelayLayer>) -> Observed {
    let mut o = pd(0, 1000, "01", prefix, 10, 3600);
    o.binding.relay = relay;
    o
}

/// The route the production planner gives `o` (planned at 2 s), after
/// checking that the reference planner gives the same.
fn route_with(s: &PlanSettings, o: &Observed, addr: Option<Ipv6Addr>) -> Result<Route, Rejection> {
    let reference = reference::plan::route_for(s, o, addr, &interfaces(), 2000);
    let planner = Planner::new(s.clone(), interfaces());
    let got = planner.plan(&o.binding, addr).map(|p| {
        let i = &planner.interfaces()[p.iface as usize];
        let prefix = match o.binding.lease {
            LeaseKind::Prefix(p) => p.trunc(),
            LeaseKind::Address(a) => Ipv6Net::new(a, 128).unwrap(),
        };
        let expires = Some(o.remaining_valid(2000));
        s.owner
            .route(prefix, p.gateway, i.name.clone(), i.index, expires)
    });
    assert_eq!(got, reference, "planner and reference disagree");
    got
}

fn route(o: &Observed) -> Result<Route, Rejection> {
    route_with(&settings(), o, None)
}

#[test]
fn one_hop_with_interface_id_mapping() {
    let o = obs(
        "2001:db8:8000:100::/56",
        vec![layer(
            "2001:db8:1::1",
            "fe80::2",
            Some("ge-0/0/1"),
            Some(OURS),
        )],
    );
    let r = route(&o).unwrap();
    assert_eq!(
        r.prefix,
        "2001:db8:8000:100::/56".parse::<Ipv6Net>().unwrap()
    );
    assert_eq!(r.gateway, "fe80::2".parse::<Ipv6Addr>().unwrap());
    assert_eq!((&*r.interface, r.ifindex), ("veth-c1", 5));
    assert_eq!((r.table, r.protocol, r.metric), (254, 16, 1024));
    // Received at 1s with 3600s valid, planned at 2s: 3599s remain.
    assert_eq!(r.expires, Some(3599));
}

#[test]
fn interface_id_as_interface_name_and_link_address_fallback() {
    let o = obs(
        "2001:db8:8000:100::/56",
        vec![layer("::", "fe80::2", Some("port-0"), Some(OURS))],
    );
    assert_eq!(&*route(&o).unwrap().interface, "port-0");
    let o = obs(
        "2001:db8:8000:100::/56",
        vec![layer("2001:db8:2::1", "fe80::2", Some("nope"), Some(OURS))],
    );
    assert_eq!(&*route(&o).unwrap().interface, "veth-c2");
    let o = obs(
        "2001:db8:8000:100::/56",
        vec![layer("2001:db8:2::1", "fe80::2", None, Some(OURS))],
    );
    assert_eq!(&*route(&o).unwrap().interface, "veth-c2");
    let o = obs(
        "2001:db8:8000:100::/56",
        vec![layer("2001:db8:9::1", "fe80::2", Some("nope"), Some(OURS))],
    );
    assert_eq!(
        route(&o),
        Err(Rejection::NoInterface {
            interface_id: Some("nope".into()),
            link_address: "2001:db8:9::1".parse().unwrap()
        })
    );
}

#[test]
fn a_mapped_interface_that_is_missing_is_refused_not_guessed() {
    let mut s = settings();
    s.interface_map
        .insert(b"ge-0/0/9".to_vec(), "vlan900".to_string());
    // The link-address would match veth-c2, but the map says vlan900.
    let o = obs(
        "2001:db8:8000:100::/56",
        vec![layer(
            "2001:db8:2::1",
            "fe80::2",
            Some("ge-0/0/9"),
            Some(OURS),
        )],
    );
    let r = route_with(&s, &o, None);
    assert_eq!(
        r,
        Err(Rejection::MissingInterface {
            interface_id: "ge-0/0/9".into(),
            name: "vlan900".into()
        })
    );
}

#[test]
fn by_link_address_our_layer_is_the_one_on_our_link() {
    let mut s = settings();
    s.our_layer = OurLayer::LinkAddress(vec!["2001:db8:2::1".parse().unwrap()]);
    // ISC dhcrelay: one layer, no Relay-ID, our address as link-address.
    let o = obs(
        "2001:db8:8000:100::/56",
        vec![layer("2001:db8:2::1", "fe80::ff:fe00:c104", None, None)],
    );
    let r = route_with(&s, &o, None).unwrap();
    assert_eq!(r.gateway, "fe80::ff:fe00:c104".parse::<Ipv6Addr>().unwrap());
    assert_eq!(&*r.interface, "veth-c2");
    // Another relay on the same subnet: dropped, named.
    let o = obs(
        "2001:db8:8000:100::/56",
        vec![layer("2001:db8:2::7", "fe80::9", None, None)],
    );
    let e = route_with(&s, &o, None).unwrap_err();
    assert_eq!(
        e,
        Rejection::OtherRelay {
            link_address: "2001:db8:2::7".parse().unwrap()
        }
    );
    assert!(e.is_other_relays());
    assert_eq!(e.code(), "other-relay");
    // A Relay-ID does not make a layer ours in this mode.
    let o = obs(
        "2001:db8:8000:100::/56",
        vec![layer("2001:db8:9::1", "fe80::9", None, Some(OURS))],
    );
    assert!(matches!(
        route_with(&s, &o, None),
        Err(Rejection::OtherRelay { .. })
    ));
}

#[test]
fn behind_a_lightweight_relay_the_next_hop_is_the_client() {
    // Our layer, then an LDRA's (RFC 6221: link-address ::, the
    // client's address as peer-address, its port as interface-id).
    let o = obs(
        "2001:db8:8000:100::/56",
        vec![
            layer("2001:db8:1::1", "fe80::1d:1", Some("ge-0/0/1"), Some(OURS)),
            layer("::", "fe80::c:1", Some("port-7"), None),
        ],
    );
    let r = route(&o).unwrap();
    assert_eq!(r.gateway, "fe80::c:1".parse::<Ipv6Addr>().unwrap());
    assert_eq!(&*r.interface, "veth-c1", "the interface is our layer's");
    // A full relay inside ours (a link-address of its own): its address.
    let o = obs(
        "2001:db8:8000:100::/56",
        vec![
            layer("2001:db8:1::1", "fe80::1d:1", Some("ge-0/0/1"), Some(OURS)),
            layer("2001:db8:77::1", "fe80::c:1", None, None),
        ],
    );
    assert_eq!(
        route(&o).unwrap().gateway,
        "fe80::1d:1".parse::<Ipv6Addr>().unwrap()
    );
}

#[test]
fn binary_interface_ids_map_and_display_in_hex() {
    let mut s = settings();
    s.interface_map
        .insert(vec![7, 0, 0, 0], "veth-c2".to_string());
    let mut l = layer("::", "fe80::2", None, Some(OURS));
    l.interface_id = Some(vec![7, 0, 0, 0]);
    let r = route_with(&s, &obs("2001:db8:8000:100::/56", vec![l.clone()]), None).unwrap();
    assert_eq!(&*r.interface, "veth-c2");
    l.interface_id = Some(vec![6, 0, 0, 0]);
    assert_eq!(
        route_with(&s, &obs("2001:db8:8000:100::/56", vec![l]), None),
        Err(Rejection::NoInterface {
            interface_id: Some("0x06000000".into()),
            link_address: Ipv6Addr::UNSPECIFIED
        })
    );
    assert_eq!(display_interface_id(b"ge-0/0/1"), "ge-0/0/1");
    assert_eq!(display_interface_id(&[0xff, 0xfe]), "0xfffe");
}

#[test]
fn two_hops_relay_id_in_inner_layer() {
    let o = obs(
        "2001:db8:8000:100::/56",
        vec![
            layer("::", "2001:db8:2::a", Some("uplink-1"), None),
            layer("2001:db8:2::1", "fe80::c:1", Some("port-0"), Some(OURS)),
        ],
    );
    let r = route(&o).unwrap();
    assert_eq!(r.gateway, "fe80::c:1".parse::<Ipv6Addr>().unwrap());
    assert_eq!(&*r.interface, "port-0");
}

#[test]
fn relay_id_in_outer_layer_of_two() {
    let o = obs(
        "2001:db8:8000:100::/56",
        vec![
            layer("2001:db8:2::1", "fe80::9", None, Some(OURS)),
            layer(
                "2001:db8:77::1",
                "fe80::c:1",
                None,
                Some("0003000102005e000003"),
            ),
        ],
    );
    let r = route(&o).unwrap();
    assert_eq!(r.gateway, "fe80::9".parse::<Ipv6Addr>().unwrap());
    assert_eq!(&*r.interface, "veth-c2");
}

#[test]
fn single_layer_without_relay_id_counts_but_foreign_relay_does_not() {
    let o = obs(
        "2001:db8:8000:100::/56",
        vec![layer("2001:db8:1::1", "fe80::2", None, None)],
    );
    assert_eq!(&*route(&o).unwrap().interface, "veth-c1");
    let o = obs(
        "2001:db8:8000:100::/56",
        vec![layer(
            "2001:db8:1::1",
            "fe80::2",
            None,
            Some("0003000102005e000003"),
        )],
    );
    assert_eq!(route(&o), Err(Rejection::NotOurRelay));
    let o = obs(
        "2001:db8:8000:100::/56",
        vec![
            layer("::", "2001:db8:2::a", None, None),
            layer("2001:db8:2::1", "fe80::2", None, None),
        ],
    );
    assert_eq!(route(&o), Err(Rejection::NotOurRelay));
}

#[test]
fn ia_na_fallback() {
    let mut s = settings();
    let o = obs("2001:db8:8000:100::/56", vec![]);
    let addr = Some("2001:db8:2::55".parse().unwrap());
    assert_eq!(route_with(&s, &o, addr), Err(Rejection::NoRelayData));
    s.fallback = NextHopFallback::ClientAddress;
    let r = route_with(&s, &o, addr).unwrap();
    assert_eq!(r.gateway, "2001:db8:2::55".parse::<Ipv6Addr>().unwrap());
    assert_eq!(&*r.interface, "veth-c2");
    assert_eq!(route_with(&s, &o, None), Err(Rejection::NoRelayData));
    // Through the whole plan: the client's IA_NA is found by reconciliation.
    let mut na = pd(0, 1000, "01", "2001:db8::/64", 10, 3600);
    na.binding.lease = LeaseKind::Address("2001:db8:2::55".parse().unwrap());
    let rec = reconcile([o, na], 1000);
    let plan = reference::plan::plan(&s, &rec, &interfaces(), 1000);
    assert_eq!(plan.routes.len(), 1);
    assert!(plan.rejected.is_empty());
}

#[test]
fn safety_rejections() {
    let l = || {
        vec![layer(
            "2001:db8:1::1",
            "fe80::2",
            Some("ge-0/0/1"),
            Some(OURS),
        )]
    };
    let mut s = settings();
    assert_eq!(route(&obs("::/0", l())), Err(Rejection::DefaultRoute));
    assert_eq!(
        route(&obs("2001::/16", l())),
        Err(Rejection::TooShort { len: 16, min: 48 })
    );
    assert_eq!(
        route(&obs("2001:db9::/56", l())),
        Err(Rejection::OutsidePools)
    );
    // A pool that contains a local prefix: a delegated prefix covering it is refused.
    s = with_pools(s, &["2001:db8:8000::/40", "2001:db8::/32"], 32);
    assert_eq!(
        route_with(&s, &obs("2001:db8::/40", l()), None),
        Err(Rejection::CoversLocal {
            interface: "veth-c1".into(),
            local: "2001:db8:1::/64".parse().unwrap()
        })
    );
    assert!(matches!(
        route_with(&s, &obs("2001:db8:1::/64", l()), None),
        Err(Rejection::CoversLocal { .. })
    ));
    // Next hops: off-link global, multicast, loopback, our own address.
    for bad in ["2001:db8:99::1", "ff02::1", "::1", "2001:db8:1::1", "::"] {
        let o = obs(
            "2001:db8:8000:100::/56",
            vec![layer("2001:db8:1::1", bad, Some("ge-0/0/1"), Some(OURS))],
        );
        assert!(
            matches!(route(&o), Err(Rejection::BadNextHop { .. })),
            "{bad}"
        );
    }
    // An on-link global next hop is fine.
    let o = obs(
        "2001:db8:8000:100::/56",
        vec![layer(
            "2001:db8:1::1",
            "2001:db8:1::99",
            Some("ge-0/0/1"),
            Some(OURS),
        )],
    );
    assert_eq!(
        route(&o).unwrap().gateway,
        "2001:db8:1::99".parse::<Ipv6Addr>().unwrap()
    );
}

#[test]
fn plan_reports_every_rejection() {
    let good = obs(
        "2001:db8:8000:100::/56",
        vec![layer(
            "2001:db8:1::1",
            "fe80::2",
            Some("ge-0/0/1"),
            Some(OURS),
        )],
    );
    let mut bad = obs("::/0", vec![]);
    bad.server = sv(1);
    let rec = reconcile([good, bad], 1000);
    let plan = reference::plan::plan(&settings(), &rec, &interfaces(), 1000);
    assert_eq!(plan.routes.len(), 1);
    assert_eq!(plan.rejected.len(), 1);
    assert_eq!(plan.rejected[0].reason, Rejection::DefaultRoute);
    assert_eq!(plan.rejected[0].server.get(), 1);
    assert_eq!(plan.rejected[0].reason.to_string(), "default route");
}

/// The covered-local check through the sorted index refuses exactly
/// what the reference (`reference::plan::check_prefix`, a scan of every
/// interface's addresses in order) refuses, naming the same local
/// prefix, over a router with many VLANs whose prefixes nest and repeat.
#[test]
fn covered_locals_are_found_as_the_reference_finds_them() {
    let mut rng = fastrand::Rng::with_seed(7);
    let settings = with_pools(settings(), &["2001:db8::/32"], 32);
    let base = u128::from("2001:db8::".parse::<Ipv6Addr>().unwrap());
    let mut interfaces = Vec::new();
    for i in 0..300u32 {
        let mut addresses = vec!["fe80::1/64".parse().unwrap()];
        for _ in 0..rng.usize(0..3) {
            let len = [48u8, 56, 64, 64, 64, 128][rng.usize(0..6)];
            // A small address space, so that prefixes nest and repeat.
            let a = base | (u128::from(rng.u16(0..512)) << 72) | u128::from(rng.u8(..));
            addresses.push(Ipv6Net::new(Ipv6Addr::from(a), len).unwrap());
        }
        interfaces.push(Interface {
            name: format!("vlan{i}").into(),
            index: i + 10,
            addresses,
        });
    }
    let planner = Planner::new(settings.clone(), interfaces.clone());
    let mut refused = 0;
    for _ in 0..20_000 {
        let len = rng.u8(32..=128);
        let a = base | (u128::from(rng.u16(0..512)) << 72) | u128::from(rng.u8(..));
        let p = Ipv6Net::new(Ipv6Addr::from(a), len).unwrap().trunc();
        let want = reference::plan::check_prefix(&settings, &p, &interfaces);
        refused += usize::from(want.is_err());
        assert_eq!(planner.check_prefix(&p), want, "{p}");
    }
    assert!(refused > 1000, "the grid refuses some prefixes: {refused}");
}

#[test]
fn a_map_that_sends_a_links_clients_out_of_another_links_interface_is_refused() {
    let mut s = settings();
    s.interface_map
        .insert(b"ge-0/0/2".to_vec(), "veth-c2".to_string());
    // ge-0/0/1 maps to veth-c1, but the relay's link-address is on
    // veth-c2's subnet: the client is on veth-c2's link.
    let o = obs(
        "2001:db8:8000:100::/56",
        vec![layer(
            "2001:db8:2::1",
            "fe80::2",
            Some("ge-0/0/1"),
            Some(OURS),
        )],
    );
    let r = route_with(&s, &o, None);
    let e = r.unwrap_err();
    assert_eq!(
        e,
        Rejection::LinkElsewhere {
            interface_id: "ge-0/0/1".into(),
            interface: "veth-c1".into(),
            link_address: "2001:db8:2::1".parse().unwrap(),
            holder: "veth-c2".into(),
        }
    );
    assert_eq!(e.code(), "link-on-other-interface");
    assert!(e.to_string().contains("on veth-c2's subnet"), "{e}");
    // The link-address on the mapped interface's own subnet: routed.
    let o = obs(
        "2001:db8:8000:100::/56",
        vec![layer(
            "2001:db8:1::1",
            "fe80::2",
            Some("ge-0/0/1"),
            Some(OURS),
        )],
    );
    assert_eq!(&*route_with(&s, &o, None).unwrap().interface, "veth-c1");
    // Nothing is questioned for :: (an LDRA), a link-local link-address,
    // or one no client interface holds (port-0 is not a map target; an
    // unnumbered link whose relay uses a loopback address).
    for link in ["::", "fe80::1", "2001:db8:3::1", "2001:db8:77::1"] {
        let o = obs(
            "2001:db8:8000:100::/56",
            vec![layer(link, "fe80::2", Some("ge-0/0/1"), Some(OURS))],
        );
        assert_eq!(
            &*route_with(&s, &o, None).unwrap().interface,
            "veth-c1",
            "{link}"
        );
    }
}
