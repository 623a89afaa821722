//! Unit tests of [`FollowCore`] on injected time.

use super::store::{colliding_duids, fingerprint, Entry, PKey};
use super::*;
use crate::proto::{MessageType, StatusCode};
use crate::recovery::rejection::Rejection;
use crate::recovery::settings::{NextHopFallback, OurLayer};
use crate::routes::Ownership;
use crate::routes::TableRoute;
use crate::routes::{errno, RouteError};
use crate::snoop::{Datagram, DelegatedPrefix, IaPd, RelayHop};
use crate::snoop::{Forged, Release, Reply};

const CUST0: u32 = 7;
const CUST1: u32 = 8;

fn plan() -> PlanSettings {
    PlanSettings {
        relay_id: "000200000009010203040506".parse().unwrap(),
        owner: Ownership::new(254, 57, 1024, &["2001:db8:8000::/40".parse().unwrap()], 48),
        interface_map: Default::default(),
        our_layer: OurLayer::RelayId,
        fallback: NextHopFallback::None,
    }
}

fn interfaces() -> Vec<Interface> {
    vec![
        Interface {
            name: "cust0".into(),
            index: CUST0,
            addresses: vec!["2001:db8:0:1::1/64".parse().unwrap()],
        },
        Interface {
            name: "cust1".into(),
            index: CUST1,
            addresses: vec!["2001:db8:0:2::1/64".parse().unwrap()],
        },
    ]
}

fn settings() -> CoreSettings {
    CoreSettings {
        max_prefixes: 4,
        max_pending_releases: 2,
        release_timeout: Duration::from_secs(60),
        resync_interval: Duration::from_secs(3600),
        resync_jitter: 0.0,
        min_resync_spacing: Duration::from_secs(10),
        resync_retry: Duration::from_secs(300),
        settle: Duration::from_millis(500),
        confirm_before: Duration::from_secs(300),
        confirm_per_minute: 600,
        confirm_batch: 64,
        seed: 1,
    }
}

struct T {
    core: FollowCore,
    t0: Instant,
}

impl T {
    fn new() -> T {
        let t0 = Instant::now();
        T {
            core: FollowCore::new(settings(), plan(), interfaces(), t0),
            t0,
        }
    }

    fn at(&self, secs: f64) -> Instant {
        self.t0 + Duration::from_secs_f64(secs)
    }

    fn changes(&mut self) -> Vec<(String, &'static str)> {
        let mut v = Vec::new();
        while let Some(c) = self.core.poll_change() {
            let r = c.change.route();
            let op = c.change.op().as_str();
            v.push((
                format!(
                    "{op} {} via {} dev {} expires {:?}",
                    r.prefix, r.gateway, r.interface, r.expires
                ),
                c.why.code(),
            ));
        }
        v
    }

    fn events(&mut self) -> Vec<FollowEvent> {
        std::iter::from_fn(|| self.core.poll_event()).collect()
    }
}

fn duid(n: u8) -> Duid {
    Duid::new_ll(1, &[2, 0, 0, 0, 1, n])
}

fn server() -> Duid {
    Duid::new_ll(1, &[2, 0, 0, 0, 9, 9])
}

fn prefix(p: &str, valid: u32) -> DelegatedPrefix {
    DelegatedPrefix {
        prefix: p.parse().unwrap(),
        preferred_lifetime: valid / 2,
        valid_lifetime: valid,
        status: None,
    }
}

fn ia(iaid: u32, prefixes: Vec<DelegatedPrefix>) -> IaPd {
    IaPd {
        iaid,
        t1: 100,
        t2: 200,
        status: None,
        prefixes,
    }
}

fn datagram(src: &str, dst: &str, dport: u16) -> Datagram {
    Datagram {
        source: src.parse().unwrap(),
        destination: dst.parse().unwrap(),
        source_port: 547,
        destination_port: dport,
        hop_limit: 255,
        message_offset: 48,
        message_len: 100,
    }
}

fn reply(xid: u32, client: u8, to: &str, ia_pds: Vec<IaPd>) -> Reply {
    Reply {
        datagram: datagram("fe80::1", to, 546),
        relay: vec![],
        transaction_id: xid,
        status: None,
        client_id: Some(duid(client)),
        server_id: server(),
        ia_pds,
    }
}

fn release(xid: u32, client: u8, from: &str, ia_pds: Vec<IaPd>) -> Release {
    Release {
        datagram: datagram(from, "ff02::1:2", 547),
        relay: vec![],
        msg_type: MessageType::Release,
        transaction_id: xid,
        client_id: duid(client),
        server_id: server(),
        ia_pds,
    }
}

fn kroute(p: &str, gw: &str, ifindex: u32, protocol: u8, expires: Option<u32>) -> TableRoute {
    TableRoute {
        prefix: p.parse().unwrap(),
        table: 254,
        protocol,
        metric: 1024,
        kind: crate::routes::RTN_UNICAST,
        gateway: Some(gw.parse().unwrap()),
        multipath: false,
        ifindex,
        interface: "".into(),
        expires,
    }
}

const P1: &str = "2001:db8:8000:100::/56";
const P2: &str = "2001:db8:8000:200::/56";

#[test]
fn a_reply_installs_a_renewal_refreshes_valid_zero_removes() {
    let mut t = T::new();
    let now = t.at(1.0);
    t.core.handle_reply(
        now,
        CUST0,
        &reply(1, 2, "fe80::2", vec![ia(1, vec![prefix(P1, 3600)])]),
    );
    assert_eq!(
        t.changes(),
        vec![(
            format!("add {P1} via fe80::2 dev cust0 expires Some(3600)"),
            "reply"
        )]
    );
    // A renewal 100 s later: the kernel expiry moves (replace).
    let now = t.at(101.0);
    t.core.handle_reply(
        now,
        CUST0,
        &reply(2, 2, "fe80::2", vec![ia(1, vec![prefix(P1, 7200)])]),
    );
    assert_eq!(
        t.changes(),
        vec![(
            format!("replace {P1} via fe80::2 dev cust0 expires Some(7200)"),
            "renewal"
        )]
    );
    // The client moved to cust1.
    t.core.handle_reply(
        now,
        CUST1,
        &reply(3, 2, "fe80::9", vec![ia(1, vec![prefix(P1, 7200)])]),
    );
    assert_eq!(t.changes()[0].1, "moved");
    // Valid lifetime 0 from another client's REPLY does nothing; from its own, removes.
    t.core.handle_reply(
        now,
        CUST1,
        &reply(4, 3, "fe80::5", vec![ia(1, vec![prefix(P1, 0)])]),
    );
    assert!(t.changes().is_empty());
    t.core.handle_reply(
        now,
        CUST1,
        &reply(5, 2, "fe80::9", vec![ia(1, vec![prefix(P1, 0)])]),
    );
    assert_eq!(
        t.changes(),
        vec![(
            format!("remove {P1} via fe80::9 dev cust1 expires Some(7200)"),
            "valid-lifetime-0"
        )]
    );
    assert_eq!(t.core.followed(), 0);
    let c = t.core.counters();
    assert_eq!((c.added, c.refreshed, c.moved, c.removed), (1, 1, 1, 1));
}

#[test]
fn a_relay_reply_to_an_ldra_routes_via_the_inner_peer_address() {
    let mut t = T::new();
    let mut r = reply(1, 2, "fe80::3", vec![ia(1, vec![prefix(P1, 3600)])]);
    r.datagram.destination_port = 547;
    r.relay = vec![RelayHop {
        hop_count: 0,
        link_address: Ipv6Addr::UNSPECIFIED,
        peer_address: "fe80::2".parse().unwrap(),
        interface_id: Some(b"port1".to_vec()),
    }];
    t.core.handle_reply(t.at(0.0), CUST0, &r);
    assert_eq!(
        t.changes()[0].0,
        format!("add {P1} via fe80::2 dev cust0 expires Some(3600)")
    );
}

#[test]
fn refusals_carry_the_planners_reason() {
    let mut t = T::new();
    let now = t.at(0.0);
    let bad = [
        ("2001:db9::/56", "fe80::2", "outside-pools"),
        ("2001:db8:8000::/44", "fe80::2", "too-short"),
        (P1, "2001:db8:99::2", "bad-next-hop"),
        (P1, "ff02::1", "bad-next-hop"),
        (P1, "2001:db8:0:1::1", "bad-next-hop"),
    ];
    for (p, hop, _) in bad {
        t.core.handle_reply(
            now,
            CUST0,
            &reply(1, 2, hop, vec![ia(1, vec![prefix(p, 3600)])]),
        );
    }
    assert!(t.changes().is_empty());
    let codes: Vec<&str> = t
        .events()
        .iter()
        .map(|e| match e {
            FollowEvent::Refused { reason, .. } => reason.code(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(codes, bad.iter().map(|b| b.2).collect::<Vec<_>>());
    assert_eq!(t.core.counters().refused, 5);
    // An on-link global next hop is fine; an unknown interface is refused.
    t.core.handle_reply(
        now,
        CUST0,
        &reply(1, 2, "2001:db8:0:1::9", vec![ia(1, vec![prefix(P1, 60)])]),
    );
    assert_eq!(t.changes().len(), 1);
    t.core.handle_reply(
        now,
        99,
        &reply(1, 2, "fe80::2", vec![ia(1, vec![prefix(P2, 60)])]),
    );
    assert!(t.changes().is_empty());
    assert!(matches!(
        t.events()[..],
        [FollowEvent::Refused {
            reason: Rejection::NoInterface { .. },
            ..
        }]
    ));
}

#[test]
fn inconsistent_lifetimes_and_statuses_are_not_used() {
    let mut t = T::new();
    let now = t.at(0.0);
    let mut p = prefix(P1, 100);
    p.preferred_lifetime = 200;
    t.core
        .handle_reply(now, CUST0, &reply(1, 2, "fe80::2", vec![ia(1, vec![p])]));
    let mut i = ia(1, vec![prefix(P1, 100)]);
    i.t1 = 300;
    t.core
        .handle_reply(now, CUST0, &reply(1, 2, "fe80::2", vec![i]));
    let mut i = ia(1, vec![]);
    i.status = Some(StatusCode::NoPrefixAvail);
    t.core
        .handle_reply(now, CUST0, &reply(1, 2, "fe80::2", vec![i]));
    let mut r = reply(1, 2, "fe80::2", vec![ia(1, vec![prefix(P1, 100)])]);
    r.status = Some(StatusCode::UnspecFail);
    t.core.handle_reply(now, CUST0, &r);
    assert!(t.changes().is_empty());
    assert_eq!(t.core.counters().ignored, 3);
}

#[test]
fn release_then_success_reply_removes_what_it_named() {
    let mut t = T::new();
    let now = t.at(0.0);
    t.core.handle_reply(
        now,
        CUST0,
        &reply(
            1,
            2,
            "fe80::2",
            vec![ia(1, vec![prefix(P1, 3600)]), ia(2, vec![prefix(P2, 3600)])],
        ),
    );
    assert_eq!(t.changes().len(), 2);
    let rel = release(
        0x42,
        2,
        "fe80::2",
        vec![ia(1, vec![prefix(P1, 0)]), ia(2, vec![prefix(P2, 0)])],
    );
    t.core.handle_release(t.at(1.0), CUST0, &rel);
    assert_eq!(t.core.pending_releases(), 1);
    // A REPLY with another transaction-id, or for another client, matches nothing.
    t.core
        .handle_reply(t.at(1.5), CUST0, &reply(0x43, 2, "fe80::2", vec![]));
    t.core
        .handle_reply(t.at(1.5), CUST0, &reply(0x42, 3, "fe80::2", vec![]));
    assert!(t.changes().is_empty());
    // The server has no binding for IA 2: only P1 goes.
    let mut nb = ia(2, vec![]);
    nb.status = Some(StatusCode::NoBinding);
    t.core
        .handle_reply(t.at(2.0), CUST0, &reply(0x42, 2, "fe80::2", vec![nb]));
    assert_eq!(
        t.changes(),
        vec![(
            format!("remove {P1} via fe80::2 dev cust0 expires Some(3598)"),
            "release"
        )]
    );
    assert_eq!(t.core.pending_releases(), 0);
    assert_eq!(t.core.followed(), 1);
}

#[test]
fn pending_releases_are_bounded_and_expire() {
    let mut t = T::new();
    t.core.handle_reply(
        t.at(0.0),
        CUST0,
        &reply(1, 2, "fe80::2", vec![ia(1, vec![prefix(P1, 3600)])]),
    );
    t.changes();
    for xid in 10..14 {
        t.core.handle_release(
            t.at(1.0),
            CUST0,
            &release(xid, 2, "fe80::2", vec![ia(1, vec![prefix(P1, 0)])]),
        );
    }
    // A retransmission replaces its first copy.
    t.core.handle_release(
        t.at(1.0),
        CUST0,
        &release(13, 2, "fe80::2", vec![ia(1, vec![prefix(P1, 0)])]),
    );
    assert_eq!(t.core.pending_releases(), 2);
    // The oldest ones were dropped: their REPLY matches nothing.
    t.core
        .handle_reply(t.at(2.0), CUST0, &reply(10, 2, "fe80::2", vec![]));
    assert!(t.changes().is_empty());
    // Unanswered: forgotten after the timeout (poll_timeout says when).
    assert!(t.core.poll_timeout() <= t.at(61.0));
    t.core.handle_timeout(t.at(61.0));
    assert_eq!(t.core.pending_releases(), 0);
    t.core
        .handle_reply(t.at(62.0), CUST0, &reply(13, 2, "fe80::2", vec![]));
    assert!(t.changes().is_empty());
    assert_eq!(t.core.followed(), 1);
}

#[test]
fn the_cap_refuses_more_prefixes() {
    let mut t = T::new();
    let now = t.at(0.0);
    for n in 0..6u32 {
        let p = format!("2001:db8:80{:02x}::/56", n);
        t.core.handle_reply(
            now,
            CUST0,
            &reply(n, 2, "fe80::2", vec![ia(1, vec![prefix(&p, 600)])]),
        );
    }
    assert_eq!(t.core.followed(), 4);
    assert_eq!(t.changes().len(), 4);
    assert_eq!(t.core.counters().capped, 2);
    // A renewal of a followed prefix still works at the cap.
    t.core.handle_reply(
        now,
        CUST0,
        &reply(
            9,
            2,
            "fe80::2",
            vec![ia(1, vec![prefix("2001:db8:8000::/56", 900)])],
        ),
    );
    assert_eq!(t.changes()[0].1, "renewal");
}

#[test]
fn expired_prefixes_are_removed_and_counted_as_expired() {
    let mut t = T::new();
    t.core.handle_reply(
        t.at(0.0),
        CUST0,
        &reply(1, 2, "fe80::2", vec![ia(1, vec![prefix(P1, 100)])]),
    );
    t.core.handle_reply(
        t.at(0.0),
        CUST0,
        &reply(1, 2, "fe80::2", vec![ia(1, vec![prefix(P2, 0xffff_ffff)])]),
    );
    let c = t.changes();
    assert!(c[1].0.ends_with("expires None"), "{c:?}");
    t.core.handle_timeout(t.at(99.0));
    assert_eq!(t.core.followed(), 2);
    // The lease ran out at 100 s: its route is removed within 8 s (the
    // expiry bucket), not left to the kernel's garbage collection.
    assert!(t.core.poll_timeout() <= t.at(104.0));
    t.core.handle_timeout(t.at(104.0));
    assert_eq!(t.core.followed(), 1);
    assert_eq!(
        t.changes(),
        vec![(
            format!("remove {P1} via fe80::2 dev cust0 expires Some(1)"),
            "expired"
        )]
    );
    let c = t.core.counters();
    assert_eq!((c.expired, c.removed, c.manual_deletes), (1, 0, 0));
    // The kernel's delete of it, when it comes, is nothing new.
    t.core
        .handle_route_event(t.at(130.0), false, &kroute(P1, "fe80::2", CUST0, 57, None));
    t.core.handle_timeout(t.at(131.0));
    let c = t.core.counters();
    assert_eq!((c.expired, c.manual_deletes), (1, 0));
}

#[test]
fn resyncs_come_on_the_interval_and_on_request_never_under_the_floor() {
    let mut t = T::new();
    assert_eq!(t.core.resync_deadline(), t.at(3600.0));
    // A lease near its end does not bring the resync forward (it is asked
    // about alone, see the targeted queries).
    t.core.handle_reply(
        t.at(100.0),
        CUST0,
        &reply(1, 2, "fe80::2", vec![ia(1, vec![prefix(P1, 1000)])]),
    );
    assert_eq!(t.core.resync_deadline(), t.at(3600.0));
    // A request (SIGHUP) is due at once...
    t.core.handle_resync_requested(t.at(150.0));
    assert!(t.core.resync_due(t.at(150.0)));
    t.core.handle_timeout(t.at(150.0));
    assert_eq!(t.core.poll_need(), Some(Need::Resync));
    t.core.handle_timeout(t.at(150.5));
    assert_eq!(t.core.poll_need(), None, "asked once");
    assert!(
        t.core.poll_timeout() > t.at(150.5),
        "no timer left in the past"
    );
    t.core.handle_resync_started(t.at(150.0));
    assert!(!t.core.resync_due(t.at(151.0)));
    t.core
        .handle_resync_finished(t.at(160.0), vec![], &[server()], true);
    assert_eq!(t.core.resync_deadline(), t.at(3760.0));
    // ...but never sooner than the floor (10 s here) after the last one.
    t.core.handle_resync_requested(t.at(161.0));
    assert_eq!(t.core.resync_deadline(), t.at(170.0));
    t.core.handle_timeout(t.at(165.0));
    assert_eq!(t.core.poll_need(), None);
    t.core.handle_timeout(t.at(170.0));
    assert_eq!(t.core.poll_need(), Some(Need::Resync));
    t.core.handle_resync_started(t.at(170.0));
    t.core.handle_resync_finished(
        t.at(171.0),
        vec![kroute(P1, "fe80::2", CUST0, 57, Some(929))],
        &[server()],
        true,
    );
    // P1 (expiring at 1100 s) enters the 300 s window at 800 s: a targeted
    // query by the end of its 8 s expiry bucket, no resync.
    t.core.handle_timeout(t.at(799.0));
    assert_eq!(t.core.poll_need(), None);
    assert!(t.core.poll_timeout() <= t.at(804.0));
    t.core.handle_timeout(t.at(804.0));
    assert_eq!(
        t.core.poll_need(),
        Some(Need::Confirm(vec![P1.parse().unwrap()]))
    );
}

#[test]
fn a_failed_resync_is_retried_sooner() {
    let mut t = T::new();
    t.core.handle_resync_started(t.at(0.0));
    t.core.handle_resync_finished(t.at(5.0), vec![], &[], false);
    assert_eq!(t.core.resync_deadline(), t.at(305.0));
}

#[test]
fn foreign_routes_are_left_alone() {
    let mut t = T::new();
    let now = t.at(0.0);
    // Listed at start: a static route on P1, one of ours on P2.
    t.core.handle_resync_started(now);
    t.core.handle_resync_finished(
        now,
        vec![
            kroute(P1, "fe80::77", CUST0, 4, None),
            kroute(P2, "fe80::2", CUST0, 57, Some(500)),
        ],
        &[],
        true,
    );
    assert_eq!((t.core.followed(), t.core.foreign_prefixes()), (1, 1));
    t.core.handle_reply(
        now,
        CUST0,
        &reply(1, 2, "fe80::2", vec![ia(1, vec![prefix(P1, 3600)])]),
    );
    assert!(t.changes().is_empty());
    assert!(matches!(
        t.events()[..],
        [FollowEvent::Foreign { how: "listed", .. }]
    ));
    // A valid lifetime of 0 for it removes nothing either.
    t.core.handle_reply(
        now,
        CUST0,
        &reply(1, 2, "fe80::2", vec![ia(1, vec![prefix(P1, 0)])]),
    );
    assert!(t.changes().is_empty());
    // An add that meets EEXIST: the table is read; another's route there
    // makes the prefix foreign from then on, never replaced.
    let p3 = "2001:db8:8000:300::/56";
    t.core.handle_reply(
        now,
        CUST0,
        &reply(1, 2, "fe80::2", vec![ia(1, vec![prefix(p3, 3600)])]),
    );
    let add = t.core.poll_change().unwrap().change;
    let err = RouteError::from_errno(
        crate::routes::RouteOp::Add,
        p3.parse().unwrap(),
        errno::EEXIST,
    );
    t.core.handle_failure(now, &add, &err);
    assert_eq!(t.core.poll_need(), Some(Need::Inspect));
    t.core.handle_reply(
        t.at(1.0),
        CUST0,
        &reply(2, 2, "fe80::2", vec![ia(1, vec![prefix(p3, 3600)])]),
    );
    assert!(t.changes().is_empty(), "nothing sent until the table says");
    let mut static3 = kroute(p3, "fe80::77", CUST0, 4, None);
    static3.metric = 2048;
    t.core.handle_inspected(t.at(2.0), vec![static3]);
    assert_eq!(t.core.foreign_prefixes(), 2);
    t.core.handle_reply(
        t.at(5.0),
        CUST0,
        &reply(1, 2, "fe80::2", vec![ia(1, vec![prefix(p3, 3600)])]),
    );
    assert!(t.changes().is_empty());
    // Someone replaces our P2 with a static route: we forget ours.
    t.core
        .handle_route_event(now, true, &kroute(P2, "fe80::2", CUST0, 4, None));
    assert_eq!(t.core.followed(), 0);
    t.core.handle_reply(
        t.at(6.0),
        CUST0,
        &reply(1, 2, "fe80::2", vec![ia(1, vec![prefix(P2, 0)])]),
    );
    assert!(t.changes().is_empty());
    assert_eq!(t.core.counters().foreign, 4);
    // The foreign route goes: the prefix is ours to install again.
    t.core
        .handle_route_event(now, false, &kroute(P2, "fe80::2", CUST0, 4, None));
    t.core.handle_reply(
        t.at(7.0),
        CUST0,
        &reply(1, 2, "fe80::2", vec![ia(1, vec![prefix(P2, 60)])]),
    );
    assert_eq!(t.changes()[0].1, "reply");
}

#[test]
fn link_down_then_up_reinstalls_what_the_kernel_dropped() {
    let mut t = T::new();
    t.core.handle_reply(
        t.at(0.0),
        CUST0,
        &reply(1, 2, "fe80::2", vec![ia(1, vec![prefix(P1, 3600)])]),
    );
    t.core.handle_reply(
        t.at(0.0),
        CUST1,
        &reply(1, 3, "fe80::3", vec![ia(1, vec![prefix(P2, 3600)])]),
    );
    t.changes();
    // The kernel's deletes may come before the link's own notification.
    t.core
        .handle_route_event(t.at(10.0), false, &kroute(P1, "fe80::2", CUST0, 57, None));
    t.core.handle_link(t.at(10.1), CUST0, "cust0", false);
    assert_eq!(t.core.poll_need(), None, "a known interface");
    t.core.handle_timeout(t.at(11.0));
    assert_eq!(t.core.followed(), 2, "kept for the link's return");
    assert_eq!(t.core.counters().manual_deletes, 0);
    // Up again: the route is back with what is left of its lifetime.
    t.core.handle_link(t.at(20.0), CUST0, "cust0", true);
    assert_eq!(
        t.changes(),
        vec![(
            format!("add {P1} via fe80::2 dev cust0 expires Some(3580)"),
            "link-up"
        )]
    );
    assert_eq!(t.core.counters().relinked, 1);
    // A link event of an unknown interface asks for the interfaces, once,
    // and is taken when they come: a REPLY out of it is then routed.
    t.core.handle_link(t.at(21.0), 42, "cust9", false);
    t.core.handle_link(t.at(21.0), 42, "cust9", true);
    assert_eq!(t.core.poll_need(), Some(Need::Interfaces));
    assert_eq!(t.core.poll_need(), None);
    let mut ifs = interfaces();
    ifs.push(Interface {
        name: "cust9".into(),
        index: 42,
        addresses: vec!["2001:db8:0:9::1/64".parse().unwrap()],
    });
    t.core.handle_interfaces(t.at(21.5), ifs);
    assert!(t.core.links().any(|l| l == ("cust9", 42, true)));
    t.core.handle_reply(
        t.at(22.0),
        42,
        &reply(9, 9, "fe80::9", vec![ia(1, vec![prefix(P2, 3600)])]),
    );
    assert_eq!(t.changes().len(), 1);
}

#[test]
fn a_manual_delete_is_forgotten_not_fought() {
    let mut t = T::new();
    t.core.handle_reply(
        t.at(0.0),
        CUST0,
        &reply(1, 2, "fe80::2", vec![ia(1, vec![prefix(P1, 3600)])]),
    );
    t.core.handle_reply(
        t.at(0.0),
        CUST0,
        &reply(1, 2, "fe80::2", vec![ia(1, vec![prefix(P2, 30)])]),
    );
    t.changes();
    // A delete of another route at the key (another next hop) is not ours.
    t.core
        .handle_route_event(t.at(5.0), false, &kroute(P1, "fe80::9", CUST0, 57, None));
    t.core
        .handle_route_event(t.at(5.0), false, &kroute(P1, "fe80::2", CUST0, 57, None));
    assert!(t.core.poll_timeout() <= t.at(5.5));
    t.core.handle_timeout(t.at(5.4));
    assert_eq!(t.core.followed(), 2, "not decided before the settle time");
    t.core.handle_timeout(t.at(5.5));
    assert_eq!(t.core.followed(), 1);
    assert_eq!(t.core.counters().manual_deletes, 1);
    assert!(matches!(t.events()[..], [FollowEvent::ManualDelete { .. }]));
    assert!(t.changes().is_empty(), "not put back");
    // The kernel's delete of an expired route is no manual delete.
    t.core
        .handle_route_event(t.at(30.0), false, &kroute(P2, "fe80::2", CUST0, 57, None));
    assert_eq!(t.core.followed(), 0);
    assert_eq!(t.core.counters().manual_deletes, 1);
    assert_eq!(t.core.counters().expired, 1);
    // A renewal later installs it again (the client's word is new).
    t.core.handle_reply(
        t.at(40.0),
        CUST0,
        &reply(2, 2, "fe80::2", vec![ia(1, vec![prefix(P1, 3600)])]),
    );
    assert_eq!(t.changes()[0].1, "reply");
}

#[test]
fn the_resync_reconciles_with_snooping_by_time() {
    let mut t = T::new();
    let other = Duid::new_ll(1, &[2, 0, 0, 0, 9, 8]);
    // Before the resync: P1 snooped from `server` (it answers the resync).
    t.core.handle_reply(
        t.at(0.0),
        CUST0,
        &reply(1, 2, "fe80::2", vec![ia(1, vec![prefix(P1, 3600)])]),
    );
    // P2 snooped from a server that will not answer.
    let mut r = reply(1, 3, "fe80::3", vec![ia(1, vec![prefix(P2, 3600)])]);
    r.server_id = other;
    t.core.handle_reply(t.at(0.0), CUST0, &r);
    t.changes();
    t.core.handle_resync_started(t.at(10.0));
    // During it: a new prefix, and a release of P1 confirmed: held.
    let p3 = "2001:db8:8000:300::/56";
    t.core.handle_reply(
        t.at(11.0),
        CUST1,
        &reply(2, 4, "fe80::4", vec![ia(1, vec![prefix(p3, 600)])]),
    );
    t.core.handle_release(
        t.at(11.0),
        CUST0,
        &release(9, 2, "fe80::2", vec![ia(1, vec![prefix(P1, 0)])]),
    );
    t.core
        .handle_reply(t.at(11.5), CUST0, &reply(9, 2, "fe80::2", vec![]));
    // Snooping never waits for a recovery: both go to the kernel at once.
    assert_eq!(
        t.changes(),
        vec![
            (
                format!("add {p3} via fe80::4 dev cust1 expires Some(600)"),
                "reply"
            ),
            (
                format!("remove {P1} via fe80::2 dev cust0 expires Some(3589)"),
                "release"
            ),
        ]
    );
    // The resync put P1 (the server's view as of its start) back and moved
    // P2 to another client (an answering server's older claim).
    let kernel = vec![
        kroute(P1, "fe80::2", CUST0, 57, Some(3590)),
        kroute(P2, "fe80::66", CUST0, 57, Some(1000)),
    ];
    t.core
        .handle_resync_finished(t.at(12.0), kernel, &[server()], true);
    assert_eq!(
        t.changes(),
        vec![
            (
                format!("replace {P2} via fe80::3 dev cust0 expires Some(3588)"),
                "snooped-after-resync"
            ),
            (
                format!("add {p3} via fe80::4 dev cust1 expires Some(599)"),
                "snooped-after-resync"
            ),
            (
                format!("remove {P1} via fe80::2 dev cust0 expires Some(3590)"),
                "release"
            ),
        ]
    );
    assert_eq!(t.core.followed(), 2);
    // A prefix snooped before from a server that answered: as the resync left it.
    t.core.handle_resync_started(t.at(100.0));
    let kernel = vec![
        kroute(P2, "fe80::3", CUST0, 57, Some(3000)),
        kroute(p3, "fe80::44", CUST1, 57, Some(500)),
    ];
    let s2 = Duid::new_ll(1, &[2, 0, 0, 0, 9, 8]);
    t.core
        .handle_resync_finished(t.at(101.0), kernel, &[server(), s2], true);
    assert!(t.changes().is_empty());
    assert_eq!(
        t.core
            .route_of(&p3.parse().unwrap(), t.at(101.0))
            .unwrap()
            .gateway,
        "fe80::44".parse::<Ipv6Addr>().unwrap()
    );
}

#[test]
fn kernel_routes_of_ours_are_followed_after_a_resync() {
    let mut t = T::new();
    t.core.handle_resync_started(t.at(0.0));
    let mut multi = kroute("2001:db8:8000:500::/56", "fe80::2", CUST0, 57, None);
    multi.multipath = true;
    let mut other_metric = kroute("2001:db8:8000:600::/56", "fe80::2", CUST0, 57, None);
    other_metric.metric = 5;
    t.core.handle_resync_finished(
        t.at(0.0),
        vec![
            kroute(P1, "fe80::2", CUST0, 57, Some(100)),
            kroute("2001:db9::/56", "fe80::2", CUST0, 57, None),
            multi,
            other_metric,
        ],
        &[],
        true,
    );
    assert_eq!(t.core.followed(), 1);
    assert_eq!(
        t.core.foreign_prefixes(),
        1,
        "the multipath route at our key"
    );
    // Ours now: a valid lifetime of 0 removes it.
    t.core.handle_reply(
        t.at(1.0),
        CUST0,
        &reply(1, 2, "fe80::2", vec![ia(1, vec![prefix(P1, 0)])]),
    );
    assert_eq!(t.changes()[0].1, "valid-lifetime-0");
}

#[test]
fn forgeries_are_counted_and_change_nothing() {
    let mut t = T::new();
    let f = Forged {
        datagram: datagram("fe80::2", "fe80::1", 546),
        msg_type: MessageType::Reply,
    };
    t.core.handle_forged(t.at(0.0), CUST0, &f);
    assert_eq!(t.core.counters().forged, 1);
    assert!(t.changes().is_empty());
    assert!(
        matches!(&t.events()[..], [FollowEvent::Forged { interface, .. }] if &**interface == "cust0")
    );
}

#[test]
fn an_entry_is_small() {
    assert_eq!(std::mem::size_of::<Entry>(), 32);
    assert!(std::mem::size_of::<(PKey, Entry)>() <= 52);
}

#[test]
fn lost_events_are_made_up_by_reading_the_kernel_again() {
    let mut t = T::new();
    t.core.handle_reply(
        t.at(0.0),
        CUST0,
        &reply(1, 2, "fe80::2", vec![ia(1, vec![prefix(P1, 3600)])]),
    );
    t.core.handle_reply(
        t.at(0.0),
        CUST1,
        &reply(1, 3, "fe80::3", vec![ia(1, vec![prefix(P2, 3600)])]),
    );
    t.changes();
    // Events were lost: P2 is gone from the kernel (cust1 went down and up
    // meanwhile), and a static route now holds a third prefix.
    let p3 = "2001:db8:8000:300::/56";
    t.core.handle_link(t.at(9.0), CUST1, "cust1", false);
    let kernel = vec![
        kroute(P1, "fe80::2", CUST0, 57, Some(3590)),
        kroute(p3, "fe80::9", CUST0, 4, None),
    ];
    t.core.handle_kernel_table(t.at(10.0), kernel);
    assert_eq!(t.core.foreign_prefixes(), 1);
    t.core.handle_timeout(t.at(11.0));
    assert_eq!(t.core.followed(), 2, "dropped with its link, kept");
    t.core.handle_link(t.at(12.0), CUST1, "cust1", true);
    assert_eq!(t.changes()[0].1, "link-up");
    t.core.handle_reply(
        t.at(13.0),
        CUST0,
        &reply(1, 2, "fe80::2", vec![ia(1, vec![prefix(p3, 60)])]),
    );
    assert!(t.changes().is_empty(), "foreign");
}

#[test]
fn a_route_of_ours_the_core_did_not_follow_is_adopted_not_foreign() {
    let mut t = T::new();
    // `recover` (or an earlier follow) put P1 in; the core never saw it.
    t.core.handle_reply(
        t.at(0.0),
        CUST0,
        &reply(1, 2, "fe80::2", vec![ia(1, vec![prefix(P1, 7200)])]),
    );
    let add = t.core.poll_change().unwrap().change;
    let err = RouteError::from_errno(
        crate::routes::RouteOp::Add,
        P1.parse().unwrap(),
        errno::EEXIST,
    );
    t.core.handle_failure(t.at(0.1), &add, &err);
    assert_eq!(t.core.poll_need(), Some(Need::Inspect));
    // Ours in the table (the old expiry): adopted, made what the REPLY says.
    t.core
        .handle_inspected(t.at(0.2), vec![kroute(P1, "fe80::2", CUST0, 57, Some(300))]);
    assert_eq!(
        t.changes(),
        vec![(
            format!("replace {P1} via fe80::2 dev cust0 expires Some(7200)"),
            "adopted"
        )]
    );
    assert!(t
        .events()
        .iter()
        .all(|e| !matches!(e, FollowEvent::Foreign { .. })));
    let c = t.core.counters();
    assert_eq!((c.adopted, c.foreign, c.added), (1, 0, 0));
    // A renewal is a plain replace now.
    t.core.handle_reply(
        t.at(10.0),
        CUST0,
        &reply(2, 2, "fe80::2", vec![ia(1, vec![prefix(P1, 7200)])]),
    );
    assert_eq!(t.changes()[0].1, "renewal");
    // An add whose key is free again by the time the table is read: added.
    t.core.handle_reply(
        t.at(11.0),
        CUST0,
        &reply(3, 3, "fe80::3", vec![ia(1, vec![prefix(P2, 7200)])]),
    );
    let add = t.core.poll_change().unwrap().change;
    let err = RouteError::from_errno(
        crate::routes::RouteOp::Add,
        P2.parse().unwrap(),
        errno::EEXIST,
    );
    t.core.handle_failure(t.at(11.1), &add, &err);
    assert_eq!(t.core.poll_need(), Some(Need::Inspect));
    t.core.handle_inspected(t.at(11.2), vec![]);
    assert_eq!(
        t.changes()[0].0,
        format!("add {P2} via fe80::3 dev cust0 expires Some(7200)")
    );
}

#[test]
fn a_valid_lifetime_of_0_removes_a_route_of_ours_the_core_did_not_follow() {
    let mut t = T::new();
    t.core.handle_reply(
        t.at(0.0),
        CUST0,
        &reply(1, 2, "fe80::2", vec![ia(1, vec![prefix(P1, 0)])]),
    );
    // The delete names our protocol, the client and the interface: the
    // kernel takes only that route of ours ("already gone" is no failure).
    assert_eq!(
        t.changes(),
        vec![(
            format!("remove {P1} via fe80::2 dev cust0 expires None"),
            "valid-lifetime-0"
        )]
    );
    // Outside the pools: nothing.
    t.core.handle_reply(
        t.at(1.0),
        CUST0,
        &reply(
            2,
            2,
            "fe80::2",
            vec![ia(1, vec![prefix("2001:db9::/56", 0)])],
        ),
    );
    assert!(t.changes().is_empty());
}

/// 100k followed prefixes over an hour, 1% of them (1000) near expiry with
/// no renewal seen: full resyncs stay on the interval (and the floor),
/// targeted queries within their rate, and each near-expiry prefix is
/// asked about once.
#[test]
fn near_expiry_leases_cost_targeted_queries_not_resyncs() {
    let mut s = settings();
    s.max_prefixes = 200_000;
    s.min_resync_spacing = Duration::from_secs(300);
    s.confirm_per_minute = 600;
    let t0 = Instant::now();
    let at = |secs: f64| t0 + Duration::from_secs_f64(secs);
    let mut core = FollowCore::new(s, plan(), interfaces(), t0);
    let base = u128::from("2001:db8:8000::".parse::<Ipv6Addr>().unwrap());
    let mut kernel = Vec::new();
    for n in 0..100_000u128 {
        let p = Ipv6Net::new(Ipv6Addr::from(base + (n << 64)), 64).unwrap();
        // 1% expire within the first half hour; the rest in a day.
        let left = if n % 100 == 0 {
            600 + (n / 100) as u32
        } else {
            86_400
        };
        let mut r = kroute(&p.to_string(), "fe80::2", CUST0, 57, Some(left));
        r.prefix = p;
        kernel.push(r);
    }
    core.handle_resync_started(at(0.0));
    core.handle_resync_finished(at(0.0), kernel, &[server()], true);
    assert_eq!(core.followed(), 100_000);
    let (mut resyncs, mut asked, mut per_minute) = (0, 0usize, vec![0usize; 61]);
    let mut now = 0.0;
    while now < 3600.0 {
        let next = core
            .poll_timeout()
            .saturating_duration_since(t0)
            .as_secs_f64();
        now = next.clamp(now + 0.001, 3600.0);
        core.handle_timeout(at(now));
        while let Some(n) = core.poll_need() {
            match n {
                Need::Resync => {
                    resyncs += 1;
                    core.handle_resync_started(at(now));
                    core.handle_resync_finished(at(now + 1.0), vec![], &[], true);
                }
                Need::Confirm(batch) => {
                    asked += batch.len();
                    per_minute[(now / 60.0) as usize] += batch.len();
                    // No server holds a later expiry: they run out.
                    let answers = batch.into_iter().map(|p| (p, None)).collect();
                    core.handle_confirmed(at(now), answers);
                }
                _ => {}
            }
        }
        while core.poll_change().is_some() {}
    }
    assert!(resyncs <= 2, "{resyncs} full resyncs in an hour");
    assert_eq!(asked, 1000, "each near-expiry prefix asked about once");
    let busiest = per_minute.iter().max().unwrap();
    assert!(
        *busiest <= 600 + 64,
        "{busiest} targeted queries in a minute"
    );
    assert_eq!(core.counters().expired, 1000);
}

/// Run the core's timers from `from` to `to` seconds; the targeted
/// queries it asked for, answered with `answer(prefix)`.
fn run_confirms(
    t: &mut T,
    from: f64,
    to: f64,
    answer: impl Fn(&Ipv6Net) -> Option<u32>,
) -> Vec<(f64, Vec<Ipv6Net>)> {
    let mut asked = Vec::new();
    let mut now = from;
    while now < to {
        let next = t.core.poll_timeout().saturating_duration_since(t.t0);
        now = next.as_secs_f64().clamp(now + 0.001, to);
        t.core.handle_timeout(t.at(now));
        while let Some(n) = t.core.poll_need() {
            if let Need::Confirm(batch) = n {
                let answers = batch.iter().map(|p| (*p, answer(p))).collect();
                asked.push((now, batch));
                t.core.handle_confirmed(t.at(now), answers);
            }
        }
        t.changes();
    }
    asked
}

#[test]
fn a_short_lease_snooped_inside_the_window_and_a_renewed_one_are_asked_about() {
    let mut t = T::new();
    t.core.handle_resync_started(t.at(0.0));
    t.core
        .handle_resync_finished(t.at(0.0), vec![], &[server()], true);
    let (p1, p2): (Ipv6Net, Ipv6Net) = (P1.parse().unwrap(), P2.parse().unwrap());
    // P2 (200 s left) has the window (300 s) looked at up to 300 s.
    t.core.handle_reply(
        t.at(0.0),
        CUST0,
        &reply(1, 3, "fe80::3", vec![ia(1, vec![prefix(P2, 200)])]),
    );
    // The server holds the same lease (a second later by its rounding of
    // the client's transaction time): not an extension.
    let asked = run_confirms(&mut t, 0.0, 10.0, |_| Some(201));
    assert_eq!(asked.iter().map(|a| &a.1).collect::<Vec<_>>(), [&vec![p2]]);
    assert_eq!(t.core.counters().confirmed, 0);
    // P1 comes with 60 s, inside what was looked at: asked about within a
    // bucket (8 s).
    t.core.handle_reply(
        t.at(10.0),
        CUST0,
        &reply(2, 2, "fe80::2", vec![ia(1, vec![prefix(P1, 60)])]),
    );
    t.changes();
    let asked = run_confirms(&mut t, 10.0, 30.0, |p| (*p == p1).then_some(3600));
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0].1, vec![p1]);
    assert!(asked[0].0 <= 18.1, "asked at {} s", asked[0].0);
    // The server had a later expiry: extended (3600 s from then).
    assert_eq!(t.core.counters().confirmed, 1);
    // Nearing that new end (no renewal seen), it is asked about again.
    let asked = run_confirms(&mut t, 30.0, 3700.0, |_| None);
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(
        (3300.0..3400.0).contains(&asked[0].0),
        "asked at {} s",
        asked[0].0
    );
    let c = t.core.counters();
    assert_eq!((c.expired, c.confirm_queries, c.confirmed), (2, 3, 1));
}

// ----- the live view: client DUIDs and snapshots -----

/// The snapshot of `filter`, sorted, as (prefix, interface, state, client).
fn listed(t: &T, filter: &SnapshotFilter) -> Vec<(String, String, &'static str, Option<Vec<u8>>)> {
    let mut s = t.core.snapshot(filter);
    s.sort();
    s.routes()
        .map(|r| {
            (
                r.prefix.to_string(),
                r.interface.to_string(),
                r.state.as_str(),
                r.client.map(<[u8]>::to_vec),
            )
        })
        .collect()
}

fn reply_from(xid: u32, client: &Duid, to: &str, ia_pds: Vec<IaPd>) -> Reply {
    Reply {
        client_id: Some(client.clone()),
        ..reply(xid, 0, to, ia_pds)
    }
}

#[test]
fn a_snooped_replys_client_and_server_are_listed() {
    let mut t = T::new();
    t.core.handle_reply(
        t.at(10.0),
        CUST0,
        &reply(1, 2, "fe80::2", vec![ia(1, vec![prefix(P1, 3600)])]),
    );
    let s = t.core.snapshot(&SnapshotFilter::default());
    assert_eq!(s.len(), 1);
    let r = s.routes().next().unwrap();
    assert_eq!(r.prefix, P1.parse::<Ipv6Net>().unwrap());
    assert_eq!(r.gateway, "fe80::2".parse::<Ipv6Addr>().unwrap());
    assert_eq!(r.interface, "cust0");
    assert_eq!(r.expires, Some(3610));
    assert_eq!(r.state, RouteState::Installed);
    assert!(r.snooped);
    assert_eq!(r.seen, Some(10));
    assert_eq!(r.client, Some(duid(2).as_bytes()));
    assert_eq!(r.server, Some(&server()));
    // The core's seconds are seconds since its epoch.
    assert_eq!(t.core.epoch(), t.t0);
    assert_eq!(s.instant(3610), t.at(3610.0));
    // A REPLY that follows nothing keeps no DUID.
    t.core.handle_reply(
        t.at(11.0),
        CUST0,
        &reply(
            2,
            3,
            "fe80::3",
            vec![ia(1, vec![prefix("2001:db9::/56", 3600)])],
        ),
    );
    assert_eq!(t.core.clients.len(), 1);
}

#[test]
fn a_resync_drops_the_duids_no_prefix_refers_to() {
    let mut t = T::new();
    t.core.handle_reply(
        t.at(0.0),
        CUST0,
        &reply(1, 2, "fe80::2", vec![ia(1, vec![prefix(P1, 3600)])]),
    );
    t.core.handle_reply(
        t.at(0.0),
        CUST1,
        &reply(2, 3, "fe80::3", vec![ia(1, vec![prefix(P2, 3600)])]),
    );
    assert_eq!(t.core.clients.len(), 2);
    t.changes();
    // The resync's server answered; the kernel now holds P1 (as snooping
    // knew it) and a route of ours snooping never saw; P2 is gone.
    t.core.handle_resync_started(t.at(20.0));
    let kernel = vec![
        kroute(P1, "fe80::2", CUST0, 57, Some(3500)),
        kroute("2001:db8:8000:300::/56", "fe80::4", CUST1, 57, Some(3500)),
    ];
    t.core
        .handle_resync_finished(t.at(30.0), kernel, &[server()], true);
    assert_eq!(
        listed(&t, &SnapshotFilter::default()),
        vec![
            (
                P1.into(),
                "cust0".into(),
                "installed",
                Some(duid(2).as_bytes().to_vec())
            ),
            (
                "2001:db8:8000:300::/56".into(),
                "cust1".into(),
                "installed",
                None
            ),
        ]
    );
    assert_eq!(t.core.clients.len(), 1, "the DUID of P2's client went");
    assert_eq!(t.core.clients.get(fingerprint(&duid(3))), None);
    let s = t.core.snapshot(&SnapshotFilter {
        prefix: Some("2001:db8:8000:300::/56".parse().unwrap()),
        ..SnapshotFilter::default()
    });
    let r = s.routes().next().unwrap();
    assert_eq!((r.snooped, r.seen, r.server), (false, None, None));
}

#[test]
fn an_ambiguous_fingerprint_reports_no_duid() {
    let mut t = T::new();
    let (x, y) = colliding_duids();
    let (x, y) = (Duid::from_bytes(x), Duid::from_bytes(y));
    assert_eq!(fingerprint(&x), fingerprint(&y));
    t.core.handle_reply(
        t.at(0.0),
        CUST0,
        &reply_from(1, &x, "fe80::2", vec![ia(1, vec![prefix(P1, 3600)])]),
    );
    assert_eq!(
        listed(&t, &SnapshotFilter::default())[0].3.as_deref(),
        Some(x.as_bytes())
    );
    t.core.handle_reply(
        t.at(1.0),
        CUST0,
        &reply_from(2, &y, "fe80::3", vec![ia(1, vec![prefix(P2, 3600)])]),
    );
    let all = listed(&t, &SnapshotFilter::default());
    assert_eq!(all.len(), 2);
    assert!(all.iter().all(|r| r.3.is_none()), "{all:?}");
    // Asked for by either DUID: both, by the fingerprint.
    for d in [&x, &y] {
        let f = SnapshotFilter {
            client: Some(d.clone()),
            ..SnapshotFilter::default()
        };
        assert_eq!(listed(&t, &f).len(), 2);
    }
}

#[test]
fn the_snapshot_filters_by_prefix_interface_and_client() {
    let mut t = T::new();
    t.core.handle_reply(
        t.at(0.0),
        CUST0,
        &reply(1, 2, "fe80::2", vec![ia(1, vec![prefix(P1, 3600)])]),
    );
    t.core.handle_reply(
        t.at(0.0),
        CUST1,
        &reply(2, 3, "fe80::3", vec![ia(1, vec![prefix(P2, 3600)])]),
    );
    let names = |t: &T, f: SnapshotFilter| -> Vec<String> {
        listed(t, &f).into_iter().map(|r| r.0).collect()
    };
    let by_prefix = |p: &str| SnapshotFilter {
        prefix: Some(p.parse().unwrap()),
        ..SnapshotFilter::default()
    };
    assert_eq!(names(&t, SnapshotFilter::default()), [P1, P2]);
    assert_eq!(names(&t, by_prefix("2001:db8:8000::/40")), [P1, P2]);
    assert_eq!(names(&t, by_prefix(P2)), [P2]);
    assert!(names(&t, by_prefix("2001:db8:8000:100::/64")).is_empty());
    let by_if = |i: &str| SnapshotFilter {
        interface: Some(i.into()),
        ..SnapshotFilter::default()
    };
    assert_eq!(names(&t, by_if("cust1")), [P2]);
    assert!(names(&t, by_if("cust7")).is_empty());
    let by_client = |d: Duid| SnapshotFilter {
        client: Some(d),
        ..SnapshotFilter::default()
    };
    assert_eq!(names(&t, by_client(duid(2))), [P1]);
    assert!(names(&t, by_client(duid(4))).is_empty());
    // A DUID of a known one's fingerprint, but not it: nothing.
    let (x, y) = colliding_duids();
    t.core.handle_reply(
        t.at(1.0),
        CUST0,
        &reply_from(
            3,
            &Duid::from_bytes(x),
            "fe80::4",
            vec![ia(1, vec![prefix("2001:db8:8000:300::/56", 3600)])],
        ),
    );
    assert_eq!(
        names(&t, by_client(Duid::from_bytes(y))),
        Vec::<String>::new()
    );
    // Every filter at once.
    let f = SnapshotFilter {
        prefix: Some("2001:db8:8000::/48".parse().unwrap()),
        interface: Some("cust0".into()),
        client: Some(duid(2)),
    };
    assert_eq!(names(&t, f), [P1]);
    // The states: P1 dropped with its link, P2's add met a route.
    t.core
        .handle_route_event(t.at(10.0), false, &kroute(P1, "fe80::2", CUST0, 57, None));
    t.core.handle_link(t.at(10.1), CUST0, "cust0", false);
    t.core.handle_timeout(t.at(11.0));
    let add = t
        .core
        .route_of(&P2.parse().unwrap(), t.at(11.0))
        .map(Change::Add)
        .unwrap();
    t.core.handle_failure(
        t.at(11.0),
        &add,
        &RouteError::from_errno(
            crate::routes::RouteOp::Add,
            P2.parse().unwrap(),
            errno::EEXIST,
        ),
    );
    let states: Vec<&str> = listed(&t, &SnapshotFilter::default())
        .into_iter()
        .map(|r| r.2)
        .collect();
    assert_eq!(states, ["link-down", "inspecting", "installed"]);
    // Deleted by someone else, not decided yet.
    t.core.handle_route_event(
        t.at(12.0),
        false,
        &kroute("2001:db8:8000:300::/56", "fe80::4", CUST0, 57, None),
    );
    assert_eq!(
        listed(&t, &by_prefix("2001:db8:8000:300::/56"))[0].2,
        "deleted"
    );
}

#[test]
fn the_client_duids_stay_bounded_by_the_followed_prefixes() {
    let mut t = T::new();
    // One prefix, renewed by ever new clients (a DUID per REPLY).
    for n in 0..3000u32 {
        let d = Duid::from_bytes([&[0u8, 2, 0, 0][..], &n.to_be_bytes()].concat());
        t.core.handle_reply(
            t.at(f64::from(n)),
            CUST0,
            &reply_from(n, &d, "fe80::2", vec![ia(1, vec![prefix(P1, 36000)])]),
        );
    }
    assert_eq!(t.core.followed(), 1);
    assert!(
        t.core.clients.len() <= 2 * 1024 + 1,
        "{}",
        t.core.clients.len()
    );
    let last = Duid::from_bytes([&[0u8, 2, 0, 0][..], &2999u32.to_be_bytes()].concat());
    assert_eq!(
        listed(&t, &SnapshotFilter::default())[0].3.as_deref(),
        Some(last.as_bytes())
    );
}
