//! The rail link by link (link-address mode): a link that answered empty,
//! or would lose more than the limit of its own routes, keeps its routes
//! while the other links are pruned.

use super::*;
use crate::recovery::prune::{HeldBack, Part, PartReason, Parts};

/// `n` of our routes on `dev` (`ifindex`), prefixes `2001:db8:8000:{base+k}00::/56`.
fn list_on(t: &mut PrefixTable, dev: &str, ifindex: u32, base: u32, n: u32) {
    for k in 0..n {
        let mut r = listed(
            &format!("2001:db8:8000:{}00::/56", base + k),
            "fe80::2",
            16,
            1024,
        );
        r.ifindex = ifindex;
        r.interface = dev.into();
        t.handle_listed(r);
    }
}

/// Links asked about: 2001:db8:1::1 on veth-c1, 2001:db8:2::1 on veth-c2;
/// `empty` the positions answered empty.
fn parts(empty: Vec<u32>) -> Parts {
    Parts {
        links: vec![
            (0, "2001:db8:1::1".parse().unwrap()),
            (1, "2001:db8:2::1".parse().unwrap()),
        ],
        empty,
        groups: Vec::new(),
    }
}

/// veth-c1 holds 4 routes, 3 backed (1..3); veth-c2 holds 2, none backed.
fn two_links(empty: Vec<u32>) -> PrefixTable {
    let mut t = table();
    t.set_parts(parts(empty));
    list_on(&mut t, "veth-c1", 5, 1, 4);
    list_on(&mut t, "veth-c2", 6, 0x11, 2);
    for n in 1..=3 {
        let c = claim(
            &t,
            &format!("2001:db8:8000:{n}00::/56"),
            "01",
            "fe80::2",
            10,
        );
        t.handle_claim(sv(0), 1000, c, 1000);
    }
    t
}

fn removed(changes: &[Change]) -> Vec<String> {
    ops(changes)
        .into_iter()
        .filter(|(op, _, _)| *op == RouteOp::Remove)
        .map(|(_, p, _)| p)
        .collect()
}

#[test]
fn a_link_answered_empty_keeps_its_routes_while_the_others_are_pruned() {
    let (changes, r) = finish(two_links(vec![1]), PRUNE);
    assert_eq!(removed(&changes), ["2001:db8:8000:400::/56"]);
    assert_eq!(r.prune.state, PruneState::Done);
    assert_eq!(
        r.prune.held_back,
        [HeldBack {
            part: Part::Link {
                interface: "veth-c2".into(),
                links: vec!["2001:db8:2::1".parse().unwrap()],
            },
            reason: PartReason::EmptyAnswer,
            ours: 2,
            candidates: 2,
        }]
    );
    assert_eq!(r.prune.held_back[0].code(), "link-empty");
    assert_eq!((r.removed, r.unchanged), (1, 5));
}

#[test]
fn a_link_that_would_lose_over_the_limit_of_its_own_routes_is_held_back() {
    // 3 of 6 over the run: within 50%; veth-c2 would lose 2 of 2.
    let half = PruneRule::Allowed {
        limit: PruneLimit::Share(5000),
        force: false,
    };
    let (changes, r) = finish(two_links(Vec::new()), half);
    assert_eq!(removed(&changes), ["2001:db8:8000:400::/56"]);
    assert_eq!(r.prune.held_back.len(), 1);
    assert_eq!(r.prune.held_back[0].reason, PartReason::OverLimit);
    assert_eq!(r.prune.held_back[0].code(), "link-over-limit");
    // Forced: both links pruned, nothing held back.
    let forced = PruneRule::Allowed {
        limit: PruneLimit::Share(5000),
        force: true,
    };
    let (changes, r) = finish(two_links(vec![1]), forced);
    assert_eq!(removed(&changes).len(), 3);
    assert!(r.prune.held_back.is_empty());
}

#[test]
fn without_links_relay_id_mode_only_the_run_counts() {
    let mut t = two_links(Vec::new());
    t.set_parts(Parts::default());
    let (changes, r) = finish(t, PRUNE);
    assert_eq!(removed(&changes).len(), 3);
    assert!(r.prune.held_back.is_empty());
}

#[test]
fn a_group_held_back_stops_the_whole_prune() {
    let mut t = two_links(Vec::new());
    let group = HeldBack {
        part: Part::Group("kea-ha".into()),
        reason: PartReason::EmptyAnswer,
        ours: 10,
        candidates: 10,
    };
    let mut p = parts(Vec::new());
    p.groups.push(group.clone());
    t.set_parts(p);
    let (changes, r) = finish(t, PRUNE);
    assert!(removed(&changes).is_empty());
    assert_eq!(
        r.prune.state,
        PruneState::Refused(PruneRefusal::GroupAnswer)
    );
    assert_eq!(r.prune.held_back, [group]);
    assert_eq!(r.unchanged, 6);
}
