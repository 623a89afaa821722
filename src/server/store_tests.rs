//! Unit tests of the binding store.

use super::*;

fn layer(link: &str, peer: &str, relay_id: &str) -> RelayLayer {
    RelayLayer {
        hop_count: 0,
        link_address: link.parse().unwrap(),
        peer_address: peer.parse().unwrap(),
        interface_id: Some(b"ge-0/0/1".to_vec()),
        remote_id: Some(vec![0, 0, 0x11, 0x8b, b'C', b'M']),
        relay_id: Some(relay_id.parse().unwrap()),
    }
}

fn rec(duid: &str, lease: LeaseKind, relay: Vec<RelayLayer>) -> LeaseRecord {
    LeaseRecord {
        client_duid: duid.parse().unwrap(),
        lease,
        cltt: 1000,
        preferred_until: 4000,
        valid_until: 5000,
        relay,
        reclaimed: false,
    }
}

#[test]
fn round_trip_links_and_indexes() {
    let p = |s: &str| LeaseKind::Prefix(s.parse().unwrap());
    let a = |s: &str| LeaseKind::Address(s.parse().unwrap());
    let recs = vec![
        rec(
            "000301",
            p("2001:db8:8000:100::/56"),
            vec![layer("2001:db8:1::1", "fe80::1", "0002aa")],
        ),
        rec(
            "000302",
            p("2001:db8:8000::/56"),
            vec![layer("2001:db8:1::2", "fe80::2", "0002bb")],
        ),
        rec("000303", a("2001:db8:2::5"), vec![]),
        rec(
            "000304",
            a("2001:db8:3::5"),
            vec![
                RelayLayer {
                    hop_count: 1,
                    link_address: Ipv6Addr::UNSPECIFIED,
                    peer_address: "2001:db8:9::1".parse().unwrap(),
                    interface_id: None,
                    remote_id: None,
                    relay_id: None,
                },
                layer("2001:db8:3::1", "fe80::4", "0002aa"),
            ],
        ),
    ];
    let s = BindingStore::from_records(&recs, &["2001:db8:2::/64".parse().unwrap()]).unwrap();
    assert_eq!(s.len(), 4);
    // Sorted by address: 2::5, 3::5, 8000::, 8000:100::.
    let b = s.binding(2, 1010).unwrap();
    assert_eq!(b.lease, p("2001:db8:8000::/56"));
    assert_eq!(
        (b.clt_time, b.preferred_lifetime, b.valid_lifetime),
        (10, 2990, 3990)
    );
    assert_eq!(b.relay, recs[1].relay);
    let b = s.binding(1, 1010).unwrap();
    assert_eq!(b.relay, recs[3].relay);
    assert_eq!(s.binding(3, 0).unwrap().relay, recs[0].relay);
    // Links: 2::/64 given, 1::/64 (both relays), 3::/64 derived.
    assert_eq!(s.links().len(), 3);
    let l1 = s.link_of("2001:db8:1::77".parse().unwrap()).unwrap();
    assert_eq!(s.by_link.get(l1), &[2, 3]);
    let l2 = s.link_of("2001:db8:2::1".parse().unwrap()).unwrap();
    assert_eq!(s.by_link.get(l2), &[0]);
    assert_eq!(s.link_of("2001:db8:4::1".parse().unwrap()), None);
    assert_eq!(s.relay_id_list(&[0, 2, 0xaa]), &[1, 3]);
    assert_eq!(s.remote_id_list(&[0, 0, 0x11, 0x8b, b'C', b'M']).len(), 3);
    assert_eq!(
        s.address_matches("2001:db8:8000:1ff::9".parse().unwrap()),
        vec![3]
    );
    assert_eq!(s.address_matches("2001:db8:2::5".parse().unwrap()), vec![0]);
    assert!(s
        .address_matches("2001:db8:2::6".parse().unwrap())
        .is_empty());
    // One template per distinct chain (peers excluded).
    assert_eq!(s.templates.len(), 3);
    // What is served can be served again, unchanged.
    let served: Vec<Binding> = (0..s.len()).map(|i| s.binding(i, 1010).unwrap()).collect();
    let again = BindingStore::from_bindings(&served, 1010, &[]).unwrap();
    let twice: Vec<Binding> = (0..again.len())
        .map(|i| again.binding(i, 1010).unwrap())
        .collect();
    assert_eq!(served, twice);
}
