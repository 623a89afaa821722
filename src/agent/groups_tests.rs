//! Server groups: the grace of an answered group's other members, the
//! parts the rail looks at, what the memory learns.

use super::*;
use crate::proto::ServerIndex;
use crate::recovery::prune::{PartReason, PruneLimit};
use crate::requestor::fanout::QueryReport;
use crate::requestor::{Disposition, Outcome, PartialReason};

/// Server `i` of `group`; `answers` per query: bindings, or `None` for a
/// failed query; no report at all when `answers` is empty.
fn member(i: usize, group: &str, answers: &[Option<u64>]) -> ServerPart {
    let addr: std::net::SocketAddr = format!("[2001:db8::{}]:547", i + 1).parse().unwrap();
    let queries: Vec<QueryReport> = answers
        .iter()
        .enumerate()
        .map(|(q, a)| QueryReport {
            index: q,
            outcome: match a {
                Some(_) => Outcome::Complete,
                None => Outcome::Partial(PartialReason::Closed),
            },
            disposition: if a.is_some() {
                Disposition::Done
            } else {
                Disposition::Final
            },
            attempts: 1,
            bindings: a.unwrap_or(0),
            stats: None,
        })
        .collect();
    let delivered = queries.iter().map(|q| q.bindings).sum();
    ServerPart {
        addr,
        group: group.into(),
        report: (!answers.is_empty()).then(|| ServerReport {
            server: addr,
            server_index: ServerIndex::new(i).unwrap(),
            server_id: None,
            queries,
            connections: 1,
            duration: Duration::from_millis(5),
        }),
        delivered,
        stopped: false,
    }
}

const RULE: PruneRule = PruneRule::Allowed {
    limit: PruneLimit::Share(1000),
    force: false,
};

#[test]
fn the_other_members_of_an_answered_group_get_the_grace_then_stop() {
    let t0 = Instant::now();
    let grace = Duration::from_secs(10);
    let mut g = Grace::new(grace);
    let mut servers = vec![
        member(0, "ha", &[]),
        member(1, "ha", &[]),
        member(2, "other", &[]),
    ];
    assert_eq!(g.deadline(&servers), None);
    // A failed answer does not complete the group.
    let failed = member(0, "ha", &[None]);
    g.server_done(&servers[0], failed.report.as_ref().unwrap(), t0);
    assert_eq!(g.deadline(&servers), None);
    // Member 1 answers whole: member 0 (still running here) and no other.
    let whole = member(1, "ha", &[Some(7)]);
    g.server_done(&servers[1], whole.report.as_ref().unwrap(), t0);
    servers[1] = whole;
    assert_eq!(g.deadline(&servers), Some(t0 + grace));
    assert!(g.late(&mut servers, t0 + grace / 2).is_empty());
    assert_eq!(g.late(&mut servers, t0 + grace), [0]);
    assert!(servers[0].stopped && !servers[2].stopped);
    // Nothing left to wait for in that group.
    assert_eq!(g.deadline(&servers), None);
    assert!(g.late(&mut servers, t0 + grace * 3).is_empty());
}

fn ifaces() -> Vec<Interface> {
    crate::recovery::reference::fixtures::interfaces()
}

#[test]
fn rail_parts_names_the_links_answered_empty() {
    let links: Vec<Ipv6Addr> = ["2001:db8:1::1", "2001:db8:2::1", "2001:db8:2::2"]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
    // veth-c1's link answered 5; both of veth-c2's links answered none.
    let servers = vec![member(0, "a", &[Some(5), Some(0), Some(0)])];
    let p = rail_parts(&links, &ifaces(), &servers, &Memory::default(), RULE);
    assert_eq!(
        p.links,
        [(0, links[0]), (1, links[1]), (1, links[2])],
        "links by interface position"
    );
    assert_eq!(p.empty, [1]);
    assert!(p.groups.is_empty());
    // One of veth-c2's links answered: not empty.
    let servers = vec![member(0, "a", &[Some(5), Some(0), Some(2)])];
    let p = rail_parts(&links, &ifaces(), &servers, &Memory::default(), RULE);
    assert!(p.empty.is_empty());
    // An incomplete group: no link is known empty.
    let servers = vec![member(0, "a", &[Some(5), Some(0), None])];
    let p = rail_parts(&links, &ifaces(), &servers, &Memory::default(), RULE);
    assert!(p.empty.is_empty());
    // Relay-id mode: the unspecified link is no link.
    let servers = vec![member(0, "a", &[Some(0)])];
    let p = rail_parts(
        &[Ipv6Addr::UNSPECIFIED],
        &ifaces(),
        &servers,
        &Memory::default(),
        RULE,
    );
    assert!(p.links.is_empty() && p.empty.is_empty());
}

/// A memory of `(group, [(link, bindings)])`.
fn memory_of(entries: &[(&str, &[(&str, u64)])]) -> Memory {
    let mut m = Memory::default();
    for (g, links) in entries {
        let counts = links.iter().map(|(l, n)| (l.to_string(), *n)).collect();
        m.groups.insert(g.to_string(), counts);
    }
    m
}

#[test]
fn a_group_whose_answer_collapsed_is_held_back_and_not_learned() {
    let links = [Ipv6Addr::UNSPECIFIED];
    let memory = memory_of(&[("ha", &[("::", 1000)]), ("west", &[("::", 500)])]);
    // ha: one replica answered 995 (the other failed); west collapsed to 10.
    let servers = vec![
        member(0, "ha", &[Some(995)]),
        member(1, "ha", &[None]),
        member(2, "west", &[Some(10)]),
    ];
    let p = rail_parts(&links, &ifaces(), &servers, &memory, RULE);
    assert_eq!(p.groups.len(), 1);
    let h = &p.groups[0];
    assert_eq!(h.part, Part::Group("west".into()));
    assert_eq!(
        (h.reason, h.ours, h.candidates),
        (PartReason::OverLimit, 500, 490)
    );
    assert_eq!(h.code(), "group-over-limit");
    // An empty answer from a group that held bindings.
    let empty = vec![member(0, "ha", &[Some(0)]), member(2, "west", &[Some(500)])];
    let e = rail_parts(&links, &ifaces(), &empty, &memory, RULE);
    assert_eq!(e.groups[0].reason, PartReason::EmptyAnswer);
    // Not under a rule that does not prune.
    assert!(
        rail_parts(&links, &ifaces(), &servers, &memory, PruneRule::Off)
            .groups
            .is_empty()
    );
    // What is learned: ha's new count, not west's collapse.
    let mut m = memory.clone();
    remember(&mut m, &links, &servers, &p.groups, false);
    assert_eq!(m.groups["ha"]["::"], 995);
    assert_eq!(m.groups["west"]["::"], 500);
    // Forced: learned.
    remember(&mut m, &links, &servers, &p.groups, true);
    assert_eq!(m.groups["west"]["::"], 10);
    // An incomplete group is never learned.
    let mut m = Memory::default();
    remember(&mut m, &links, &[member(0, "x", &[None])], &[], true);
    assert!(m.groups.is_empty());
}

#[test]
fn a_link_answered_empty_is_the_link_rails_not_its_groups() {
    let links: Vec<Ipv6Addr> = ["2001:db8:1::1", "2001:db8:2::1"]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
    let memory = memory_of(&[("a", &[("2001:db8:1::1", 100), ("2001:db8:2::1", 100)])]);
    // veth-c2's link answered empty (held back by the link rail), veth-c1's
    // lost 2 of 100: the group is within the rail.
    let servers = vec![member(0, "a", &[Some(98), Some(0)])];
    let p = rail_parts(&links, &ifaces(), &servers, &memory, RULE);
    assert_eq!(p.empty, [1]);
    assert!(p.groups.is_empty(), "{:?}", p.groups);
    // veth-c1's answer collapsed too: the group is held back.
    let servers = vec![member(0, "a", &[Some(50), Some(0)])];
    let p = rail_parts(&links, &ifaces(), &servers, &memory, RULE);
    assert_eq!((p.groups[0].ours, p.groups[0].candidates), (100, 50));
    // Learned per link.
    let mut m = Memory::default();
    remember(&mut m, &links, &servers, &[], false);
    assert_eq!(m.groups["a"]["2001:db8:1::1"], 50);
    assert_eq!(m.groups["a"]["2001:db8:2::1"], 0);
}
