//! Direct unit tests of the prefix table: claims, listed routes and
//! failures in, queued changes and the report out, on made-up instants.

use super::slots::Slot;
use super::*;
use crate::recovery::prune::{PruneLimit, PruneRefusal, PruneRule, PruneState};
use crate::recovery::reference::fixtures::{interfaces, layer, pd, settings, sv, OURS};
use crate::recovery::rejection::Rejection;
use crate::routes::{RouteError, RouteOp, RTN_UNICAST};

const P: &str = "2001:db8:8000:100::/56";

fn table() -> PrefixTable {
    PrefixTable::new(Arc::new(Planner::new(settings(), interfaces())))
}

/// Server `server`'s claim that `client` holds `prefix` via `peer` on
/// veth-c1 (interface-id ge-0/0/1, our Relay-ID), received at 1 s.
fn claim(t: &PrefixTable, prefix: &str, client: &str, peer: &str, clt: u32) -> Claim {
    let mut o = pd(0, 1000, client, prefix, clt, 3600);
    o.binding.relay = vec![layer("2001:db8:1::1", peer, Some("ge-0/0/1"), Some(OURS))];
    t.planner().claim(&o.binding, usize::MAX).unwrap()
}

/// A route of our table as the kernel lists it.
fn listed(prefix: &str, gw: &str, protocol: u8, metric: u32) -> TableRoute {
    TableRoute {
        prefix: prefix.parse().unwrap(),
        table: 254,
        protocol,
        metric,
        kind: RTN_UNICAST,
        gateway: Some(gw.parse().unwrap()),
        multipath: false,
        ifindex: 5,
        interface: "veth-c1".into(),
        expires: Some(3599),
    }
}

fn ops(changes: &[Change]) -> Vec<(RouteOp, String, String)> {
    changes
        .iter()
        .map(|c| {
            let r = c.route();
            (c.op(), r.prefix.to_string(), r.gateway.to_string())
        })
        .collect()
}

fn finish(mut t: PrefixTable, rule: PruneRule) -> (Vec<Change>, TableReport) {
    t.begin_settling();
    while t.settle(2000, 16) {}
    let mut changes = t.poll_changes();
    t.withdraw(rule, false);
    changes.extend(t.poll_changes());
    (changes, t.report())
}

const PRUNE: PruneRule = PruneRule::Allowed {
    limit: PruneLimit::Share(10_000),
    force: false,
};

#[test]
fn a_slot_is_at_most_80_octets() {
    assert!(
        std::mem::size_of::<Slot>() <= 80,
        "{}",
        std::mem::size_of::<Slot>()
    );
}

#[test]
fn the_best_claim_is_queued_as_it_arrives_and_a_worse_one_changes_nothing() {
    let mut t = table();
    let first = claim(&t, P, "01", "fe80::2", 30);
    t.handle_claim(sv(0), 1000, first, 1000);
    assert_eq!(
        ops(&t.poll_changes()),
        [(RouteOp::Add, P.into(), "fe80::2".into())]
    );
    // Server 1 heard from another client more recently: it wins, replacing our add.
    let newer = claim(&t, P, "02", "fe80::3", 5);
    t.handle_claim(sv(1), 1000, newer, 1000);
    assert_eq!(
        ops(&t.poll_changes()),
        [(RouteOp::Replace, P.into(), "fe80::3".into())]
    );
    // An older transaction for the first client: nothing to do.
    let older = claim(&t, P, "01", "fe80::2", 60);
    t.handle_claim(sv(0), 1000, older, 1000);
    assert!(t.poll_changes().is_empty());
    let (changes, r) = finish(t, PRUNE);
    assert!(changes.is_empty(), "{changes:?}");
    assert_eq!((r.added, r.planned, r.unchanged), (1, 1, 0));
    assert_eq!(r.conflicts.len(), 1, "{:?}", r.conflicts);
    assert_eq!(r.conflicts[0].winner.0, sv(1));
    assert_eq!(r.conflicts[0].loser.1.to_hex(), "01");
}

#[test]
fn a_listed_route_of_ours_that_matches_is_left_alone() {
    let mut t = table();
    t.handle_listed(listed(P, "fe80::2", 16, 1024));
    let c = claim(&t, P, "01", "fe80::2", 10);
    t.handle_claim(sv(0), 1000, c, 1000);
    assert!(t.poll_changes().is_empty(), "same next hop, same lifetime");
    let (changes, r) = finish(t, PRUNE);
    assert!(changes.is_empty());
    assert_eq!((r.added, r.replaced, r.unchanged, r.removed), (0, 0, 1, 0));
}

#[test]
fn a_foreign_route_at_our_key_is_never_touched_and_reported() {
    let mut t = table();
    t.handle_listed(listed(P, "fe80::9", 4, 1024));
    // Another metric or table: none of the table's business.
    t.handle_listed(listed("2001:db8:8000:200::/56", "fe80::9", 4, 512));
    let c = claim(&t, P, "01", "fe80::2", 10);
    t.handle_claim(sv(0), 1000, c, 1000);
    assert!(t.poll_changes().is_empty());
    let (changes, r) = finish(t, PRUNE);
    assert!(changes.is_empty());
    assert_eq!(r.foreign_conflicts.len(), 1);
    let f = &r.foreign_conflicts[0];
    assert_eq!(
        (f.prefix.to_string(), f.foreign.protocol),
        (P.into(), Some(4))
    );
    assert_eq!((r.planned, r.added, r.prune.ours), (0, 0, 0));
}

#[test]
fn an_add_refused_with_eexist_is_foreign_and_other_refusals_are_failures() {
    let mut t = table();
    let a = claim(&t, P, "01", "fe80::2", 10);
    let b = claim(&t, "2001:db8:8000:200::/56", "02", "fe80::3", 10);
    t.handle_claim(sv(0), 1000, a, 1000);
    t.handle_claim(sv(0), 1000, b, 1000);
    let sent = t.poll_changes();
    assert_eq!(sent.len(), 2);
    let refuse = |c: &Change, code| {
        (
            c.clone(),
            RouteError::from_errno(c.op(), c.route().prefix, code),
        )
    };
    t.handle_failures(vec![
        refuse(&sent[0], errno::EEXIST),
        refuse(&sent[1], errno::ENODEV),
    ]);
    let (changes, r) = finish(t, PRUNE);
    // The refused add is tried once more at the end; the foreign key is not.
    assert_eq!(
        ops(&changes),
        [(
            RouteOp::Add,
            "2001:db8:8000:200::/56".into(),
            "fe80::3".into()
        )]
    );
    assert_eq!(r.foreign_conflicts.len(), 1);
    assert_eq!(r.foreign_conflicts[0].foreign.protocol, None);
    // The retry was not refused: no failure survives.
    assert!(r.failed.is_empty(), "{:?}", r.failed);
    assert_eq!(r.added, 1);
}

#[test]
fn expired_claims_are_counted_and_never_routed() {
    let mut t = table();
    let mut o = pd(0, 1000, "01", P, 10, 5);
    o.binding.relay = vec![layer(
        "2001:db8:1::1",
        "fe80::2",
        Some("ge-0/0/1"),
        Some(OURS),
    )];
    let c = t.planner().claim(&o.binding, usize::MAX).unwrap();
    // Received at 1 s with 5 s valid: gone at 6 s.
    t.handle_claim(sv(0), 1000, c, 6000);
    assert!(t.poll_changes().is_empty());
    let (_, r) = finish(t, PRUNE);
    assert_eq!((r.expired, r.planned), (1, 0));
}

#[test]
fn refused_prefixes_are_reported_with_their_reason() {
    let mut t = table();
    let c = claim(&t, "2001:db9::/56", "01", "fe80::2", 10);
    t.handle_claim(sv(0), 1000, c, 1000);
    assert!(t.poll_changes().is_empty(), "kept whole for the end");
    let (changes, r) = finish(t, PRUNE);
    assert!(changes.is_empty());
    assert_eq!(r.rejected.len(), 1);
    assert_eq!(r.rejected[0].reason, Rejection::OutsidePools);
}

#[test]
fn unbacked_routes_are_pruned_within_the_rail_only() {
    let listing = |t: &mut PrefixTable| {
        for n in 1..=4 {
            t.handle_listed(listed(
                &format!("2001:db8:8000:{n}00::/56"),
                "fe80::2",
                16,
                1024,
            ));
        }
        // Ours at an earlier metric: stale, a candidate too.
        t.handle_listed(listed("2001:db8:8000:500::/56", "fe80::2", 16, 512));
    };
    let backed = |t: &mut PrefixTable| {
        let c = claim(t, "2001:db8:8000:100::/56", "01", "fe80::2", 10);
        t.handle_claim(sv(0), 1000, c, 1000);
    };
    // 4 of 5 routes unbacked: over a 50% rail.
    let mut t = table();
    listing(&mut t);
    backed(&mut t);
    let half = PruneRule::Allowed {
        limit: PruneLimit::Share(5000),
        force: false,
    };
    let (changes, r) = finish(t, half);
    assert!(changes.is_empty(), "{changes:?}");
    assert_eq!(r.prune.state, PruneState::Refused(PruneRefusal::OverLimit));
    assert_eq!((r.prune.ours, r.prune.candidates, r.removed), (5, 4, 0));
    assert_eq!(r.unchanged, 5);
    // Within the rail: all four go, the stale one by its own metric.
    let mut t = table();
    listing(&mut t);
    backed(&mut t);
    let (changes, r) = finish(t, PRUNE);
    assert_eq!(changes.len(), 4);
    assert!(changes.iter().all(|c| c.op() == RouteOp::Remove));
    assert!(changes.iter().any(|c| c.route().metric == 512));
    assert_eq!(
        (r.removed, r.unchanged, r.prune.state),
        (4, 1, PruneState::Done)
    );
    // An empty answer removes nothing.
    let mut t = table();
    listing(&mut t);
    let (changes, r) = finish(t, PRUNE);
    assert!(changes.is_empty());
    assert_eq!(
        r.prune.state,
        PruneState::Refused(PruneRefusal::EmptyAnswer)
    );
}

#[test]
fn a_client_that_moved_is_replaced_and_listed_with_both_next_hops() {
    let mut t = table();
    t.handle_listed(listed(P, "fe80::2", 16, 1024));
    let c = claim(&t, P, "01", "fe80::7", 10);
    t.handle_claim(sv(0), 1000, c, 1000);
    assert_eq!(
        ops(&t.poll_changes()),
        [(RouteOp::Replace, P.into(), "fe80::7".into())]
    );
    let (_, r) = finish(t, PRUNE);
    assert_eq!((r.replaced, r.moved.len()), (1, 1));
    assert_eq!(r.moved[0].0.gateway.to_string(), "fe80::2");
    assert_eq!(r.moved[0].1.gateway.to_string(), "fe80::7");
}

#[test]
fn a_route_of_ours_at_an_earlier_metric_is_moved_make_before_break() {
    for rule in [PRUNE, PruneRule::Off] {
        let mut t = table();
        // Ours at 512 (an earlier configuration); the settings say 1024.
        t.handle_listed(listed(P, "fe80::2", 16, 512));
        let c = claim(&t, P, "01", "fe80::2", 10);
        t.handle_claim(sv(0), 1000, c, 1000);
        // The new route goes in first...
        assert_eq!(
            ops(&t.poll_changes()),
            [(RouteOp::Add, P.into(), "fe80::2".into())]
        );
        let (changes, r) = finish(t, rule);
        // ...then the old one comes out, whatever the prune setting.
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(
            (changes[0].op(), changes[0].route().metric),
            (RouteOp::Remove, 512)
        );
        assert_eq!((r.added, r.replaced, r.removed), (0, 1, 0));
        assert_eq!(r.moved.len(), 1);
        assert_eq!((r.moved[0].0.metric, r.moved[0].1.metric), (512, 1024));
        // Outside the prune rail: not a candidate.
        assert_eq!(r.prune.candidates, 0);
    }
    // Not routed this time: the old route is a prune candidate like any
    // route of ours no binding backs.
    let mut t = table();
    t.handle_listed(listed(P, "fe80::2", 16, 512));
    let (changes, r) = finish(t, PRUNE);
    assert_eq!(r.prune.candidates, 1);
    assert!(r.moved.is_empty());
    assert!(changes.is_empty(), "an empty answer prunes nothing");
}

#[test]
fn another_route_on_a_delegated_prefix_is_foreign_at_any_metric() {
    let mut t = table();
    // An operator's blackhole at 2048 on the prefix a binding names.
    let mut bh = listed(P, "fe80::9", 4, 2048);
    bh.kind = 6;
    bh.gateway = None;
    t.handle_listed(bh);
    let c = claim(&t, P, "01", "fe80::2", 10);
    t.handle_claim(sv(0), 1000, c, 1000);
    assert!(t.poll_changes().is_empty(), "no route of ours beside it");
    let (_, r) = finish(t, PRUNE);
    assert_eq!(r.foreign_conflicts.len(), 1);
    let f = &r.foreign_conflicts[0].foreign;
    assert_eq!(
        (f.protocol, f.metric, f.kind),
        (Some(4), Some(2048), Some(6))
    );
}

#[test]
fn a_route_that_came_after_the_listing_is_told_ours_or_another_s() {
    let other = "2001:db8:8000:200::/56";
    let mut t = table();
    let a = claim(&t, P, "01", "fe80::2", 10);
    let b = claim(&t, other, "02", "fe80::3", 10);
    t.handle_claim(sv(0), 1000, a, 1000);
    t.handle_claim(sv(0), 1000, b, 1000);
    let sent = t.poll_changes();
    let eexist = |c: &Change| {
        (
            c.clone(),
            RouteError::from_errno(c.op(), c.route().prefix, errno::EEXIST),
        )
    };
    t.handle_failures(sent.iter().map(eexist).collect());
    assert!(t.needs_relisting());
    // Listed again: P holds a route of ours (another writer's, another
    // next hop), the other prefix a static route.
    t.handle_relisted(listed(P, "fe80::7", 16, 1024), 1000);
    t.handle_relisted(listed(other, "fe80::9", 4, 1024), 1000);
    t.relisted();
    assert!(!t.needs_relisting());
    // Ours: the best claim's route replaces it.
    assert_eq!(
        ops(&t.poll_changes()),
        [(RouteOp::Replace, P.into(), "fe80::2".into())]
    );
    let (_, r) = finish(t, PRUNE);
    assert_eq!(r.foreign_conflicts.len(), 1);
    assert_eq!(r.foreign_conflicts[0].prefix.to_string(), other);
    assert_eq!(r.foreign_conflicts[0].foreign.protocol, Some(4));
    assert_eq!((r.replaced, r.added), (1, 0));
}

#[path = "rail_tests.rs"]
mod rail_tests;
