//! The wire module against netlink-packet-route's serialisation and
//! decoding, annotated byte arrays, and every truncation.

use super::*;
use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload};
use netlink_packet_route::address::AddressMessage;
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteMetric, RouteProtocol,
    RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

/// The reading of a route by netlink-packet-route's decoding, as
/// [`route`] must match it.
fn npr_route(r: &RouteMessage, names: &BTreeMap<u32, Arc<str>>) -> Option<TableRoute> {
    if r.header.address_family != AddressFamily::Inet6 {
        return None;
    }
    let mut dst = Ipv6Addr::UNSPECIFIED;
    let mut gateway = None;
    let mut multipath = false;
    let mut oif = 0;
    let mut metric = 0;
    let mut table = u32::from(r.header.table);
    let mut expires = None;
    for a in &r.attributes {
        match a {
            RouteAttribute::Destination(RouteAddress::Inet6(d)) => dst = *d,
            RouteAttribute::Gateway(RouteAddress::Inet6(g)) => gateway = Some(*g),
            RouteAttribute::MultiPath(_) => multipath = true,
            RouteAttribute::Oif(i) => oif = *i,
            RouteAttribute::Priority(p) => metric = *p,
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::CacheInfo(c) if c.expires > 0 => expires = Some(c.expires / USER_HZ),
            _ => {}
        }
    }
    Some(TableRoute {
        prefix: Ipv6Net::new(dst, r.header.destination_prefix_length).ok()?,
        table,
        protocol: r.header.protocol.into(),
        metric,
        kind: u8::from(r.header.kind),
        gateway,
        multipath,
        ifindex: oif,
        interface: names.get(&oif).cloned().unwrap_or_default(),
        expires,
    })
}

fn route_message(r: &Route) -> RouteMessage {
    let mut m = RouteMessage::default();
    m.header.address_family = AddressFamily::Inet6;
    m.header.destination_prefix_length = r.prefix.prefix_len();
    m.header.table = if r.table < 256 {
        r.table as u8
    } else {
        RouteHeader::RT_TABLE_UNSPEC
    };
    m.header.protocol = RouteProtocol::from(r.protocol);
    m.header.scope = RouteScope::Universe;
    m.header.kind = RouteType::Unicast;
    m.attributes = vec![
        RouteAttribute::Table(r.table),
        RouteAttribute::Destination(RouteAddress::Inet6(r.prefix.addr())),
        RouteAttribute::Priority(r.metric),
        RouteAttribute::Gateway(RouteAddress::Inet6(r.gateway)),
        RouteAttribute::Oif(r.ifindex),
    ];
    m
}

fn new_route_message(r: &Route) -> RouteMessage {
    let mut m = route_message(r);
    if let Some(e) = r.expires {
        m.attributes.push(RouteAttribute::Expires(e));
    }
    m
}

fn serialise(payload: RouteNetlinkMessage, flags: u16, seq: u32) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = seq;
    let mut msg = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(payload));
    msg.finalize();
    let mut bytes = vec![0; msg.buffer_len()];
    msg.serialize(&mut bytes);
    bytes
}

fn only(datagram: &[u8]) -> Message<'_> {
    let mut m = Messages::new(datagram);
    let first = m.next().expect("a message").expect("a good header");
    assert_eq!(m.next(), None);
    first
}

fn base_route() -> Route {
    Route {
        prefix: "2001:db8:8000:100::/56".parse().unwrap(),
        gateway: "fe80::2".parse().unwrap(),
        interface: "veth-c1".into(),
        ifindex: 7,
        table: 254,
        protocol: 16,
        metric: 1024,
        expires: None,
    }
}

/// An RTM_NEWROUTE as netlink-packet-route writes it, with an RTA_METRICS
/// and an RTA_CACHEINFO of `ticks` appended.
fn npr_new_route(table: u32, ticks: u32, gateway: bool) -> Vec<u8> {
    let mut r = base_route();
    r.table = table;
    let mut m = new_route_message(&r);
    m.attributes
        .retain(|a| gateway || !matches!(a, RouteAttribute::Gateway(_)));
    m.attributes
        .push(RouteAttribute::Metrics(vec![RouteMetric::Mtu(1400)]));
    let mut bytes = serialise(RouteNetlinkMessage::NewRoute(m), 0, 1);
    // RTA_CACHEINFO (struct rta_cacheinfo: expires is the third word).
    let mut ci = [0u8; 32];
    ci[8..12].copy_from_slice(&ticks.to_ne_bytes());
    bytes.extend_from_slice(&36u16.to_ne_bytes());
    bytes.extend_from_slice(&libc::RTA_CACHEINFO.to_ne_bytes());
    bytes.extend_from_slice(&ci);
    let len = bytes.len() as u32;
    bytes[..4].copy_from_slice(&len.to_ne_bytes());
    bytes
}

/// Routes read in place are what netlink-packet-route's decoding of the
/// same bytes gives.
#[test]
fn route_matches_netlink_packet_route() {
    let names: BTreeMap<u32, Arc<str>> = [(7, "veth-c1".into())].into();
    for (table, ticks, gateway) in [
        (254u32, 0u32, true),
        (1000, 360_000, true),
        (254, 99, true),
        (254, 0, false),
    ] {
        let mut bytes = npr_new_route(table, ticks, gateway);
        let decoded = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&bytes).unwrap();
        let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(m)) = decoded.payload else {
            panic!("not a route")
        };
        let want = npr_route(&m, &names).unwrap();
        assert_eq!(want.gateway.is_some(), gateway);
        assert_eq!(want.as_route().is_some(), gateway);
        assert_eq!(route(&only(&bytes), &names), Ok(want), "{m:?}");
        // Another family is an error, not a route.
        bytes[16] = libc::AF_INET as u8;
        assert_eq!(
            route(&only(&bytes), &names),
            Err(WireError::Family {
                offset: 16,
                family: libc::AF_INET as u8
            })
        );
    }
}

/// An RTM_DELROUTE, byte by byte: the route it names.
#[test]
fn route_from_annotated_bytes() {
    let mut d: Vec<u8> = Vec::new();
    d.extend_from_slice(&64u32.to_ne_bytes()); // nlmsg_len
    d.extend_from_slice(&libc::RTM_DELROUTE.to_ne_bytes()); // nlmsg_type
    d.extend_from_slice(&0u16.to_ne_bytes()); // nlmsg_flags
    d.extend_from_slice(&9u32.to_ne_bytes()); // nlmsg_seq
    d.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid
    d.extend_from_slice(&[10, 48, 0, 0, 200, 57, 0, 1]); // AF_INET6 /48, table 200, proto 57, unicast
    d.extend_from_slice(&0u32.to_ne_bytes()); // rtm_flags
    d.extend_from_slice(&20u16.to_ne_bytes()); // rta_len
    d.extend_from_slice(&libc::RTA_DST.to_ne_bytes());
    d.extend_from_slice(&"2001:db8:7::".parse::<Ipv6Addr>().unwrap().octets());
    d.extend_from_slice(&8u16.to_ne_bytes());
    d.extend_from_slice(&(libc::RTA_OIF | libc::NLA_F_NESTED as u16).to_ne_bytes()); // flag bits masked
    d.extend_from_slice(&3u32.to_ne_bytes());
    d.extend_from_slice(&8u16.to_ne_bytes());
    d.extend_from_slice(&libc::RTA_PRIORITY.to_ne_bytes());
    d.extend_from_slice(&5u32.to_ne_bytes());
    assert_eq!(d.len(), 64);
    let m = only(&d);
    assert_eq!((m.kind, m.seq, m.offset), (libc::RTM_DELROUTE, 9, 0));
    let r = route(&m, &BTreeMap::new()).unwrap();
    assert_eq!(r.prefix, "2001:db8:7::/48".parse().unwrap());
    assert_eq!((r.table, r.protocol, r.kind, r.metric), (200, 57, 1, 5));
    assert_eq!((r.ifindex, &*r.interface, r.gateway), (3, "", None));
    // An RTA_DST of 4 octets: named, with its offset.
    d[28..30].copy_from_slice(&8u16.to_ne_bytes());
    assert_eq!(
        route(&only(&d), &BTreeMap::new()),
        Err(WireError::AttributeSize {
            kind: libc::RTA_DST,
            offset: 28,
            length: 4,
            expected: 16
        })
    );
    // A prefix length over 128.
    d[17] = 129;
    assert!(matches!(
        route(&only(&d), &BTreeMap::new()),
        Err(WireError::PrefixLength {
            offset: 16,
            length: 129
        })
    ));
}

/// The direct encoder writes what netlink-packet-route would.
#[test]
fn encode_route_matches_netlink_packet_route() {
    let mut r = base_route();
    for (table, expires) in [(254, Some(3600)), (1000, None), (5, Some(0))] {
        r.table = table;
        r.expires = expires;
        for (new, f) in [
            (
                true,
                flags::REQUEST | flags::CREATE | flags::REPLACE | flags::ACK,
            ),
            (true, flags::REQUEST | flags::CREATE | flags::EXCL),
            (false, flags::REQUEST | flags::ACK),
        ] {
            let payload = if new {
                RouteNetlinkMessage::NewRoute(new_route_message(&r))
            } else {
                RouteNetlinkMessage::DelRoute(route_message(&r))
            };
            let want = serialise(payload, f, 42);
            let mut got = vec![0xaa; 3];
            encode_route(&mut got, &r, new, f, 42);
            assert_eq!(&got[3..], &want[..], "table {table}, new {new}");
        }
    }
}

/// The dump requests are netlink-packet-route's.
#[test]
fn encode_dump_matches_netlink_packet_route() {
    let mut route = RouteMessage::default();
    route.header.address_family = AddressFamily::Inet6;
    let mut address = AddressMessage::default();
    address.header.family = AddressFamily::Inet6;
    for (what, payload) in [
        (Dump::Routes, RouteNetlinkMessage::GetRoute(route)),
        (
            Dump::Links,
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
        ),
        (Dump::Addresses, RouteNetlinkMessage::GetAddress(address)),
    ] {
        let want = serialise(payload, flags::REQUEST | flags::DUMP, 7);
        let mut got = Vec::new();
        encode_dump(&mut got, what, 7);
        assert_eq!(got, want, "{what:?}");
    }
}

fn npr_link(index: u32, up: bool, name: &str) -> Vec<u8> {
    let mut l = LinkMessage::default();
    l.header.index = index;
    if up {
        l.header.flags = LinkFlags::Up | LinkFlags::Running;
    }
    l.attributes = vec![LinkAttribute::Mtu(1500), LinkAttribute::IfName(name.into())];
    serialise(RouteNetlinkMessage::NewLink(l), 0, 0)
}

/// Links read in place are what netlink-packet-route wrote.
#[test]
fn link_matches_netlink_packet_route() {
    for (index, up, name) in [(7, true, "veth-c1"), (300, false, "cust.1234")] {
        let bytes = npr_link(index, up, name);
        let l = link(&only(&bytes)).unwrap();
        assert_eq!((l.index, l.up, &*l.name), (index, up, name));
    }
    // No name: an error, where the ifinfomsg starts.
    let mut l = LinkMessage::default();
    l.header.index = 3;
    let bytes = serialise(RouteNetlinkMessage::NewLink(l), 0, 0);
    assert_eq!(
        link(&only(&bytes)),
        Err(WireError::MissingName { offset: 16 })
    );
    // A route is not a link, nor a link a route.
    let r = npr_new_route(254, 0, true);
    assert!(matches!(
        link(&only(&r)),
        Err(WireError::UnexpectedType { offset: 0, .. })
    ));
    let bytes = npr_link(7, true, "x");
    assert!(matches!(
        route(&only(&bytes), &BTreeMap::new()),
        Err(WireError::UnexpectedType { .. })
    ));
}

/// A VRF device's table is read from its link info; other kinds have none.
#[test]
fn a_vrf_link_names_its_table() {
    use netlink_packet_route::link::{InfoData, InfoKind, InfoVrf, LinkInfo};
    let with_info = |info: Vec<LinkInfo>| {
        let mut l = LinkMessage::default();
        l.header.index = 9;
        l.attributes = vec![
            LinkAttribute::IfName("vrf-blue".into()),
            LinkAttribute::LinkInfo(info),
        ];
        serialise(RouteNetlinkMessage::NewLink(l), 0, 0)
    };
    let vrf = with_info(vec![
        LinkInfo::Kind(InfoKind::Vrf),
        LinkInfo::Data(InfoData::Vrf(vec![InfoVrf::TableId(1010)])),
    ]);
    let l = link(&only(&vrf)).unwrap();
    assert_eq!((&*l.name, l.vrf_table), ("vrf-blue", Some(1010)));
    let veth = with_info(vec![LinkInfo::Kind(InfoKind::Veth)]);
    assert_eq!(link(&only(&veth)).unwrap().vrf_table, None);
    assert_eq!(
        link(&only(&npr_link(7, true, "x"))).unwrap().vrf_table,
        None
    );
}

/// A datagram of an ACK, an error and a DONE.
#[test]
fn error_codes() {
    let mut d = Vec::new();
    for (kind, seq, code) in [
        (NLMSG_ERROR, 1u32, 0i32),
        (NLMSG_ERROR, 2, -libc::EEXIST),
        (NLMSG_DONE, 3, 0),
    ] {
        d.extend_from_slice(&20u32.to_ne_bytes());
        d.extend_from_slice(&kind.to_ne_bytes());
        d.extend_from_slice(&[0, 0]);
        d.extend_from_slice(&seq.to_ne_bytes());
        d.extend_from_slice(&[0; 4]);
        d.extend_from_slice(&code.to_ne_bytes());
    }
    let got: Vec<(u16, u32, i32)> = Messages::new(&d)
        .map(|m| {
            let m = m.unwrap();
            (m.kind, m.seq, m.error_code().unwrap())
        })
        .collect();
    assert_eq!(
        got,
        [
            (NLMSG_ERROR, 1, 0),
            (NLMSG_ERROR, 2, -libc::EEXIST),
            (NLMSG_DONE, 3, 0)
        ]
    );
    // An NLMSG_ERROR without its code.
    let mut short = d[..16].to_vec();
    short[..4].copy_from_slice(&16u32.to_ne_bytes());
    let m = only(&short).error_code();
    assert!(matches!(
        m,
        Err(WireError::Truncated {
            what: "nlmsgerr",
            ..
        })
    ));
}

/// A datagram of every kind, cut at every offset: errors, never a panic,
/// and the messages before the cut are still read.
#[test]
fn truncation_at_every_offset() {
    let names = BTreeMap::new();
    let mut d = npr_link(7, true, "cust0");
    let link_end = d.len();
    d.extend(npr_new_route(1000, 360_000, true));
    for cut in 0..d.len() {
        let part = &d[..cut];
        let items: Vec<_> = Messages::new(part).collect();
        if cut == 0 {
            assert!(items.is_empty());
            continue;
        }
        let last = items.last().unwrap();
        if cut == link_end {
            assert!(last.is_ok());
        } else {
            let e = last.as_ref().unwrap_err();
            assert!(e.is_framing(), "cut {cut}: {e}");
        }
        for m in items.iter().flatten() {
            let _ = link(m);
            let _ = route(m, &names);
            let _ = m.error_code();
        }
        // The body cut instead of the datagram: the decoders' own checks.
        let mut b = d[..link_end.max(cut)].to_vec();
        let len = cut.clamp(16, b.len()) as u32;
        b[..4].copy_from_slice(&len.to_ne_bytes());
        for m in Messages::new(&b).flatten() {
            let _ = link(&m);
            let _ = route(&m, &names);
        }
    }
}

/// Every byte of a message set to every value: no panic.
#[test]
fn no_panic_on_any_byte() {
    let names = BTreeMap::new();
    for base in [npr_link(7, true, "cust0"), npr_new_route(254, 99, true)] {
        for at in 0..base.len() {
            for v in [0u8, 1, 3, 4, 0x7f, 0x80, 0xff] {
                let mut d = base.clone();
                d[at] = v;
                for m in Messages::new(&d).flatten() {
                    let _ = link(&m);
                    let _ = route(&m, &names);
                    let _ = route_protocol(&m);
                }
                for a in Attributes::new(&d, 0) {
                    let _ = a.map(|a| (a.ipv6(), a.u32(), a.structure(32).map(|s| s.len())));
                }
            }
        }
    }
}

/// `libc`'s constants are those of the kernel's headers.
#[test]
fn constants() {
    #[cfg(target_env = "gnu")]
    assert_eq!(libc::RTA_EXPIRES, RTA_EXPIRES);
    assert_eq!((NLMSG_ERROR, NLMSG_DONE), (2, 3));
    assert_eq!((flags::REQUEST, flags::ACK, flags::DUMP), (1, 4, 0x300));
}
