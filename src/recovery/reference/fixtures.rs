//! The fixtures the recovery's tests share: settings, interfaces, bindings.

use crate::proto::{Binding, LeaseKind, RelayLayer, ServerIndex};
use crate::recovery::observed::Observed;
use crate::recovery::rank::Millis;
use crate::recovery::settings::{NextHopFallback, OurLayer, PlanSettings};
use crate::routes::{Interface, Ownership};
use std::collections::BTreeMap;

/// Our Relay-ID in the test fixtures.
pub(crate) const OURS: &str = "000200000009010203040506";

/// Settings of the planning tests: table 254, protocol 16, metric 1024,
/// one pool (a /40, prefixes of /48 or longer), one interface-id mapping.
pub(crate) fn settings() -> PlanSettings {
    PlanSettings {
        relay_id: OURS.parse().unwrap(),
        owner: Ownership::new(254, 16, 1024, &["2001:db8:8000::/40".parse().unwrap()], 48),
        interface_map: BTreeMap::from([(b"ge-0/0/1".to_vec(), "veth-c1".to_string())]),
        our_layer: OurLayer::RelayId,
        fallback: NextHopFallback::None,
    }
}

/// `settings()` with other pools and shortest prefix.
pub(crate) fn with_pools(mut s: PlanSettings, pools: &[&str], min: u8) -> PlanSettings {
    let pools: Vec<ipnet::Ipv6Net> = pools.iter().map(|p| p.parse().unwrap()).collect();
    let o = &s.owner;
    s.owner = Ownership::new(o.table(), o.protocol(), o.metric(), &pools, min);
    s
}

/// Three client links; veth-c1 also has fe80::1.
pub(crate) fn interfaces() -> Vec<Interface> {
    vec![
        Interface {
            name: "veth-c1".into(),
            index: 5,
            addresses: vec![
                "2001:db8:1::1/64".parse().unwrap(),
                "fe80::1/64".parse().unwrap(),
            ],
        },
        Interface {
            name: "veth-c2".into(),
            index: 6,
            addresses: vec!["2001:db8:2::1/64".parse().unwrap()],
        },
        Interface {
            name: "port-0".into(),
            index: 7,
            addresses: vec!["2001:db8:3::1/64".parse().unwrap()],
        },
    ]
}

/// The server at position `i`.
pub(crate) fn sv(i: usize) -> ServerIndex {
    ServerIndex::new(i).unwrap()
}

/// A relay layer (text interface-id and Relay-ID, both optional).
pub(crate) fn layer(
    link: &str,
    peer: &str,
    ifid: Option<&str>,
    relay_id: Option<&str>,
) -> RelayLayer {
    RelayLayer {
        hop_count: 0,
        link_address: link.parse().unwrap(),
        peer_address: peer.parse().unwrap(),
        interface_id: ifid.map(|s| s.as_bytes().to_vec()),
        remote_id: None,
        relay_id: relay_id.map(|s| s.parse().unwrap()),
    }
}

/// A delegated prefix from `server`, received at `received`, without relay data.
pub(crate) fn pd(
    server: u16,
    received: Millis,
    client: &str,
    prefix: &str,
    clt: u32,
    valid: u32,
) -> Observed {
    Observed {
        server: ServerIndex::new(usize::from(server)).unwrap(),
        received,
        binding: Binding {
            client_duid: client.parse().unwrap(),
            lease: LeaseKind::Prefix(prefix.parse().unwrap()),
            preferred_lifetime: valid / 2,
            valid_lifetime: valid,
            clt_time: clt,
            relay: Vec::new(),
        },
    }
}
