//! The installer against the in-memory table, and held to the reference
//! reconciliation and planning by property tests.

use super::super::prune::{PruneLimit, PruneRefusal, PruneSkip, PruneState};
use super::super::reference::fixtures::{pd, sv, OURS};
use super::super::reference::{plan::plan, reconcile::reconcile};
use super::super::settings::NextHopFallback;
use super::*;
use crate::proto::{Duid, LeaseKind, RelayLayer};
use crate::routes::{MemoryTable, Route, RouteError, RouteKey, TableRoute};
use ipnet::Ipv6Net;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::net::Ipv6Addr;

fn same_route(a: &Route, b: &Route) -> bool {
    a.gateway == b.gateway
        && a.ifindex == b.ifindex
        && crate::routes::same_lifetime(a.expires, b.expires, EXPIRY_SLACK)
}

/// The planning tests' settings, without the interface-id mapping, with
/// the next-hop fallback.
fn settings() -> PlanSettings {
    let mut s = super::super::reference::fixtures::settings();
    s.interface_map.clear();
    s.fallback = NextHopFallback::ClientAddress;
    s
}

fn interfaces() -> Vec<Interface> {
    vec![
        Interface {
            name: "veth-c1".into(),
            index: 5,
            addresses: vec!["2001:db8:1::1/64".parse().unwrap()],
        },
        Interface {
            name: "veth-c2".into(),
            index: 6,
            addresses: vec!["2001:db8:2::1/64".parse().unwrap()],
        },
    ]
}

fn obs(server: u16, n: u32, peer: &str, clt: u32) -> Observed {
    let mut o = pd(
        server,
        1000,
        &format!("00{n:02x}"),
        &format!("2001:db8:80{:02x}:{:x}00::/56", n / 256, n % 256),
        clt,
        3600,
    );
    o.binding.relay = vec![RelayLayer {
        hop_count: 0,
        link_address: "2001:db8:1::1".parse().unwrap(),
        peer_address: peer.parse().unwrap(),
        interface_id: None,
        remote_id: None,
        relay_id: Some(OURS.parse().unwrap()),
    }];
    o
}

/// Pruning as the reference `routes::diff` does it: all or nothing.
fn rule(prune: bool) -> PruneRule {
    if prune {
        PruneRule::Allowed {
            limit: PruneLimit::Share(10_000),
            force: true,
        }
    } else {
        PruneRule::Off
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

async fn run(
    table: MemoryTable,
    all: Vec<Observed>,
    prune: bool,
    batch: usize,
) -> (InstallReport, MemoryTable) {
    run_at(table, all, prune, batch, 1000).await
}

#[test]
fn routes_go_out_while_streaming() {
    block_on(async {
        let mut i = Installer::start(MemoryTable::new(), settings(), interfaces(), false)
            .await
            .unwrap()
            .with_batch(10);
        for n in 0..25 {
            i.offer(obs(0, n, "fe80::1", 5), 1000 + u64::from(n))
                .await
                .unwrap();
        }
        // Two batches of 10 are in before the stream ends.
        assert_eq!(i.table().routes().count(), 20);
        assert_eq!(i.table().applies, 2);
        let (report, table) = i.finish(2000, rule(true)).await.unwrap();
        assert_eq!(table.routes().count(), 25);
        assert_eq!(report.table.added, 25);
        assert_eq!(report.first_route_at, Some(1009));
        assert_eq!(report.operations, 25);
    });
}

#[test]
fn better_binding_later_replaces_and_rerun_changes_nothing() {
    block_on(async {
        let first = obs(0, 1, "fe80::1", 50);
        let newer = obs(1, 1, "fe80::2", 5);
        let (report, table) = run(
            MemoryTable::new(),
            vec![first.clone(), newer.clone()],
            true,
            1,
        )
        .await;
        assert_eq!(report.table.added, 1);
        let r: Vec<_> = table.routes().collect();
        assert_eq!(r[0].gateway.to_string(), "fe80::2");
        // Same bindings again, in the other order: nothing to do.
        let (report, table2) = run(table.clone(), vec![newer, first], true, 1).await;
        assert_eq!(
            (
                report.table.added,
                report.table.replaced,
                report.table.removed,
                report.table.unchanged
            ),
            (0, 0, 0, 1)
        );
        assert_eq!(report.operations, 0);
        assert_eq!(table2.routes().count(), 1);
    });
}

#[test]
fn rejected_winner_takes_out_the_route_this_run_installed() {
    block_on(async {
        let good = obs(0, 1, "fe80::1", 50);
        let mut rogue = obs(1, 1, "2001:db8:99::1", 5); // newer, off-link next hop
        rogue.binding.client_duid = "ff".parse().unwrap();
        let (report, table) = run(MemoryTable::new(), vec![good, rogue], true, 1).await;
        assert_eq!(table.routes().count(), 0);
        assert_eq!(report.table.rejected.len(), 1);
        assert_eq!(report.table.conflicts.len(), 1);
        assert_eq!(report.table.added, 0);
    });
}

/// A route for prefix number `n` of `obs`, out of veth-c1.
fn kroute(n: u32, gw: &str, protocol: u8) -> Route {
    Route {
        prefix: format!("2001:db8:80{:02x}:{:x}00::/56", n / 256, n % 256)
            .parse()
            .unwrap(),
        gateway: gw.parse().unwrap(),
        interface: "veth-c1".into(),
        ifindex: 5,
        table: 254,
        protocol,
        metric: 1024,
        expires: Some(3000),
    }
}

async fn run_rule(
    table: MemoryTable,
    all: Vec<Observed>,
    rule: PruneRule,
) -> (InstallReport, MemoryTable) {
    let mut i = Installer::start(table, settings(), interfaces(), false)
        .await
        .unwrap();
    for o in all {
        i.offer(o, 1000).await.unwrap();
    }
    i.finish(1000, rule).await.unwrap()
}

const RAIL: PruneRule = PruneRule::Allowed {
    limit: PruneLimit::Share(1000),
    force: false,
};

#[test]
fn a_route_that_is_not_ours_is_never_replaced_nor_removed() {
    block_on(async {
        let mut t = MemoryTable::new();
        // An operator's static route on a delegated prefix, at our metric.
        let stat = kroute(1, "fe80::99", 4);
        t.insert(stat.clone());
        // Our protocol, but outside the pools: not ours either.
        let mut outside = kroute(2, "fe80::98", 16);
        outside.prefix = "2001:db8:ffff::/48".parse().unwrap();
        t.insert(outside.clone());
        // Our protocol and pool, but shorter than min_prefix_len.
        let mut short = kroute(3, "fe80::97", 16);
        short.prefix = "2001:db8:8000::/44".parse().unwrap();
        t.insert(short.clone());
        let (report, table) = run_rule(
            t,
            vec![obs(0, 1, "fe80::1", 5), obs(0, 4, "fe80::4", 5)],
            PruneRule::Allowed {
                limit: PruneLimit::Share(10_000),
                force: true,
            },
        )
        .await;
        let all: Vec<&Route> = table.routes().collect();
        assert!(all.contains(&&stat), "{all:?}");
        assert!(all.contains(&&outside));
        assert!(all.contains(&&short));
        assert_eq!(report.table.added, 1, "only the free prefix");
        assert_eq!(report.table.removed, 0);
        assert_eq!(report.table.planned, 1);
        assert_eq!(report.table.foreign_conflicts.len(), 1);
        let c = &report.table.foreign_conflicts[0];
        assert_eq!(c.prefix, stat.prefix);
        assert_eq!(c.foreign.protocol, Some(4));
        assert_eq!(c.foreign.gateway, Some(stat.gateway));
        assert_eq!(c.foreign.interface.as_deref(), Some("veth-c1"));
        assert_eq!(report.table.prune.ours, 0);
    });
}

/// A table that hides routes of protocol 99 from the listing: someone
/// else's route that appears after pdrestore listed the table.
struct Racing(MemoryTable);

impl RouteTable for Racing {
    async fn list_table(
        &mut self,
        table: u32,
        each: &mut (dyn FnMut(TableRoute) + Send),
    ) -> Result<(), TableError> {
        self.0
            .list_table(table, &mut |r| {
                if r.protocol != 99 {
                    each(r)
                }
            })
            .await
    }

    async fn apply(&mut self, changes: &[Change]) -> Result<Vec<RouteError>, TableError> {
        self.0.apply(changes).await
    }
}

#[test]
fn an_add_refused_with_eexist_is_a_foreign_conflict_not_a_failure() {
    block_on(async {
        let mut t = MemoryTable::new();
        let late = kroute(1, "fe80::99", 99);
        t.insert(late.clone());
        let mut i = Installer::start(Racing(t), settings(), interfaces(), false)
            .await
            .unwrap();
        i.offer(obs(0, 1, "fe80::1", 5), 1000).await.unwrap();
        let (report, table) = i.finish(1000, RAIL).await.unwrap();
        assert!(report.table.failed.is_empty(), "{:?}", report.table.failed);
        assert_eq!(report.table.added, 0);
        assert_eq!(report.table.foreign_conflicts.len(), 1);
        assert_eq!(report.table.foreign_conflicts[0].foreign.protocol, None);
        assert_eq!(table.0.routes().collect::<Vec<_>>(), vec![&late]);
    });
}

#[test]
fn the_prune_rail_refuses_an_empty_or_collapsed_answer() {
    block_on(async {
        let mut t = MemoryTable::new();
        for n in 0..100 {
            t.insert(kroute(n, "fe80::1", 16));
        }
        // Every server answered, with nothing at all.
        let (report, kept) = run_rule(t.clone(), vec![], RAIL).await;
        assert_eq!(
            report.table.prune.state,
            PruneState::Refused(PruneRefusal::EmptyAnswer)
        );
        assert_eq!(
            (report.table.prune.ours, report.table.prune.candidates),
            (100, 100)
        );
        assert_eq!((report.table.removed, kept.routes().count()), (0, 100));
        assert!(!report.pruned());
        assert!(report.table.removals.is_empty());
        // 5 of 100: a removal of 95% is over the 10% rail.
        let five: Vec<Observed> = (0..5).map(|n| obs(0, n, "fe80::1", 5)).collect();
        let (report, kept) = run_rule(t.clone(), five.clone(), RAIL).await;
        assert_eq!(
            report.table.prune.state,
            PruneState::Refused(PruneRefusal::OverLimit)
        );
        assert_eq!(report.table.prune.candidates, 95);
        assert_eq!((report.table.removed, kept.routes().count()), (0, 100));
        // A count limit, or force: pruned, and every removal listed.
        let (report, pruned) = run_rule(
            t.clone(),
            five.clone(),
            PruneRule::Allowed {
                limit: PruneLimit::Count(95),
                force: false,
            },
        )
        .await;
        assert_eq!(report.table.prune.state, PruneState::Done);
        assert_eq!((report.table.removed, pruned.routes().count()), (95, 5));
        assert_eq!(report.table.removals.len(), 95);
        assert_eq!(report.table.removals[0], kroute(5, "fe80::1", 16));
        let (report, pruned) = run_rule(
            t.clone(),
            vec![],
            PruneRule::Allowed {
                limit: PruneLimit::Share(1000),
                force: true,
            },
        )
        .await;
        assert_eq!(report.table.prune.state, PruneState::Done);
        assert_eq!((report.table.removed, pruned.routes().count()), (100, 0));
        // 95 of 100 answered: 5% is within the rail.
        let most: Vec<Observed> = (0..95).map(|n| obs(0, n, "fe80::1", 5)).collect();
        let (report, pruned) = run_rule(t.clone(), most, RAIL).await;
        assert_eq!(report.table.prune.state, PruneState::Done);
        assert_eq!((report.table.removed, pruned.routes().count()), (5, 95));
        // Skipped and off: the same as before, nothing removed.
        let (report, kept) = run_rule(
            t.clone(),
            five.clone(),
            PruneRule::Skip(PruneSkip::IncompleteAnswer),
        )
        .await;
        assert_eq!(
            report.table.prune.state,
            PruneState::Skipped(PruneSkip::IncompleteAnswer)
        );
        assert_eq!(kept.routes().count(), 100);
        let (report, kept) = run_rule(t, five, PruneRule::Off).await;
        assert_eq!(report.table.prune.state, PruneState::Off);
        assert_eq!(kept.routes().count(), 100);
    });
}

#[test]
fn a_client_that_moved_is_listed_with_its_old_and_new_next_hop() {
    block_on(async {
        let mut t = MemoryTable::new();
        t.insert(kroute(1, "fe80::1", 16));
        t.insert(kroute(2, "fe80::2", 16));
        let (report, _) = run_rule(
            t,
            vec![obs(0, 1, "fe80::11", 5), obs(0, 2, "fe80::2", 5)],
            RAIL,
        )
        .await;
        // Both replaced (the lifetimes changed too); one moved.
        assert_eq!(report.table.replaced, 2);
        assert_eq!(report.table.moved.len(), 1);
        let (old, new) = &report.table.moved[0];
        assert_eq!(old.gateway.to_string(), "fe80::1");
        assert_eq!(new.gateway.to_string(), "fe80::11");
    });
}

#[test]
fn prune_only_when_asked() {
    block_on(async {
        let (_, table) = run(
            MemoryTable::new(),
            vec![obs(0, 1, "fe80::1", 5), obs(0, 2, "fe80::2", 5)],
            true,
            100,
        )
        .await;
        let (report, kept) = run(table.clone(), vec![obs(0, 1, "fe80::1", 5)], false, 100).await;
        assert_eq!((report.table.removed, kept.routes().count()), (0, 2));
        let (report, pruned) = run(table, vec![obs(0, 1, "fe80::1", 5)], true, 100).await;
        assert_eq!((report.table.removed, pruned.routes().count()), (1, 1));
    });
}

#[test]
fn one_failing_route_does_not_stop_the_rest() {
    block_on(async {
        // veth-c2 (6) has gone from the kernel since the interfaces were read.
        let table = MemoryTable::with_interfaces([5]);
        let mut on_c2 = obs(0, 2, "fe80::2", 5);
        on_c2.binding.relay[0].link_address = "2001:db8:2::1".parse().unwrap();
        let (report, table) = run(
            table,
            vec![obs(0, 1, "fe80::1", 5), on_c2, obs(0, 3, "fe80::3", 5)],
            true,
            1,
        )
        .await;
        assert_eq!(report.table.failed.len(), 1, "{:?}", report.table.failed);
        assert_eq!(
            report.table.failed[0].prefix.to_string(),
            "2001:db8:8000:200::/56"
        );
        assert_eq!(report.table.failed[0].message, "No such device");
        assert_eq!(report.table.added, 2);
        assert_eq!(table.routes().count(), 2);
    });
}

#[test]
fn long_client_duids_are_kept_whole() {
    block_on(async {
        // Longer than the inline form, and than one length octet.
        let mut a = obs(0, 1, "fe80::1", 5);
        a.binding.client_duid = Duid::from_bytes(vec![7; 300]);
        let mut b = obs(1, 1, "fe80::2", 50);
        b.binding.client_duid = Duid::from_bytes(vec![8; 200]);
        let (report, table) = run(MemoryTable::new(), vec![a, b], true, 1).await;
        assert_eq!(table.routes().count(), 1);
        assert_eq!(report.table.conflicts.len(), 1);
        let c = &report.table.conflicts[0];
        assert_eq!(c.winner, (sv(0), Duid::from_bytes(vec![7; 300])));
        assert_eq!(c.loser, (sv(1), Duid::from_bytes(vec![8; 200])));
    });
}

#[test]
fn dry_run_touches_nothing() {
    block_on(async {
        let mut i = Installer::start(MemoryTable::new(), settings(), interfaces(), true)
            .await
            .unwrap()
            .with_batch(1);
        for n in 0..5 {
            i.offer(obs(0, n, "fe80::1", 5), 1000).await.unwrap();
        }
        let (report, table) = i.finish(1000, rule(true)).await.unwrap();
        assert_eq!(report.table.added, 5);
        assert_eq!(report.dry_run_changes.len(), 5);
        assert!(report
            .dry_run_changes
            .iter()
            .all(|c| matches!(c, Change::Add(_))));
        assert_eq!(table.routes().count(), 0);
        assert_eq!(table.applies, 0);
    });
}

#[test]
fn fallback_prefixes_are_installed_at_the_end() {
    block_on(async {
        let mut p = obs(0, 1, "fe80::1", 5);
        p.binding.relay.clear();
        let mut na = pd(
            0,
            1000,
            &p.binding.client_duid.to_hex(),
            "2001:db8::/64",
            5,
            3600,
        );
        na.binding.lease = LeaseKind::Address("2001:db8:1::77".parse().unwrap());
        let (report, table) = run(MemoryTable::new(), vec![p, na], true, 1).await;
        assert_eq!(report.table.added, 1);
        assert_eq!(
            table.routes().next().unwrap().gateway.to_string(),
            "2001:db8:1::77"
        );
    });
}

/// Bindings from several servers in a given order, as the reference
/// reconciliation and planning see them, and as the installer does.
fn arb_observed() -> impl Strategy<Value = Vec<Observed>> {
    // (server, prefix number) pairs are unique: one server names a prefix once.
    let one = (
        0u16..3,
        0u32..12,
        0u32..3,                                      // client
        0u32..4,                                      // clt_time
        prop_oneof![Just(0u32), Just(5), Just(3600)], // valid lifetime
        0u32..4,                                      // relay shape
        0u64..3,                                      // received (s)
    );
    prop::collection::vec(one, 0..40).prop_map(|v| {
        let mut seen = std::collections::HashSet::new();
        v.into_iter()
            .filter(|(s, n, ..)| seen.insert((*s, *n)))
            .map(|(server, n, client, clt, valid, shape, recv)| {
                let mut o = obs(server, n, "fe80::1", clt * 10);
                o.received = 1000 + recv * 1000;
                o.binding.valid_lifetime = valid;
                o.binding.client_duid = Duid::from_bytes(vec![0, 3, client as u8]);
                match shape {
                    0 => {}
                    1 => o.binding.relay[0].peer_address = "fe80::2".parse().unwrap(),
                    2 => o.binding.relay[0].peer_address = "2001:db8:99::1".parse().unwrap(),
                    _ => o.binding.relay.clear(),
                }
                if n == 11 {
                    o.binding.lease = LeaseKind::Prefix("2001:db8:9000::/56".parse().unwrap());
                }
                o
            })
            .collect()
    })
}

async fn run_at(
    table: MemoryTable,
    all: Vec<Observed>,
    prune: bool,
    batch: usize,
    now: Millis,
) -> (InstallReport, MemoryTable) {
    let mut i = Installer::start(table, settings(), interfaces(), false)
        .await
        .unwrap()
        .with_batch(batch);
    for o in all {
        i.offer(o, now).await.unwrap();
    }
    i.finish(now, rule(prune)).await.unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    /// A second run over the routes of a first one ends with the
    /// table and the counts that `routes::diff` gives for the
    /// reference plan of the second run's bindings.
    #[test]
    fn second_run_matches_the_diff(
        first in arb_observed(),
        second in arb_observed(),
        prune: bool,
        batch in 1usize..8,
    ) {
        let now = 2500;
        let (_, t1) = block_on(run_at(MemoryTable::new(), first, true, batch, now));
        let installed: Vec<Route> = t1.routes().cloned().collect();
        let reference = reconcile(second.clone(), now);
        let plan = plan(&settings(), &reference, &interfaces(), now);
        let d = crate::routes::diff(&installed, &plan.routes, prune, EXPIRY_SLACK);
        let (report, t2) = block_on(run_at(t1, second, prune, batch, now));
        let mut want: BTreeMap<RouteKey, Route> =
            installed.iter().map(|r| (r.key(), r.clone())).collect();
        let mut counts = (0, 0, 0);
        for c in &d.changes {
            match c {
                Change::Add(r) => {
                    counts.0 += 1;
                    want.insert(r.key(), r.clone());
                }
                Change::Replace { new, .. } => {
                    counts.1 += 1;
                    want.insert(new.key(), new.clone());
                }
                Change::Remove(r) => {
                    counts.2 += 1;
                    want.remove(&r.key());
                }
            }
        }
        // Lifetimes within EXPIRY_SLACK count as the same (both sides use that rule).
        let got: BTreeMap<RouteKey, Route> = t2.routes().map(|r| (r.key(), r.clone())).collect();
        prop_assert_eq!(got.len(), want.len());
        for (k, w) in &want {
            let g = got.get(k);
            prop_assert!(g.is_some_and(|g| same_route(g, w)), "{:?}: got {:?}, want {:?}", k, g, w);
        }
        let left_alone = if prune {
            0
        } else {
            installed.iter().filter(|r| !plan.routes.contains_key(&r.prefix)).count()
        };
        prop_assert_eq!(
            (report.table.added, report.table.replaced, report.table.removed, report.table.unchanged),
            (counts.0, counts.1, counts.2, d.unchanged + left_alone)
        );
    }


    /// The installer's routes, refusals, conflicts and expiries are
    /// those of the reference: reconcile everything, then plan.
    #[test]
    fn installer_matches_reconcile_then_plan(all in arb_observed(), batch in 1usize..8) {
        let now = 2500;
        let reference = reconcile(all.clone(), now);
        let plan = plan(&settings(), &reference, &interfaces(), now);
        let (report, table) = block_on(async {
            let mut i = Installer::start(MemoryTable::new(), settings(), interfaces(), false)
                .await
                .unwrap()
                .with_batch(batch);
            for o in all {
                i.offer(o, now).await.unwrap();
            }
            i.finish(now, rule(true)).await.unwrap()
        });
        let got: BTreeMap<Ipv6Net, (Ipv6Addr, u32)> = table
            .routes()
            .map(|r| (r.prefix, (r.gateway, r.ifindex)))
            .collect();
        let want: BTreeMap<Ipv6Net, (Ipv6Addr, u32)> = plan
            .routes
            .values()
            .map(|r| (r.prefix, (r.gateway, r.ifindex)))
            .collect();
        prop_assert_eq!(got, want);
        let mut rejected = report.table.rejected.clone();
        rejected.sort_by_key(|r| r.prefix);
        prop_assert_eq!(rejected, plan.rejected);
        prop_assert_eq!(report.table.conflicts, reference.conflicts);
        prop_assert_eq!(report.table.expired, reference.expired);
        prop_assert_eq!(report.table.planned, plan.routes.len());
        prop_assert_eq!(report.table.added, plan.routes.len());
    }
}

/// A table that notes when (on the tokio clock) each submission came, and
/// how many changes it held.
struct Clocked(MemoryTable, Vec<(tokio::time::Instant, usize)>);

impl RouteTable for Clocked {
    async fn list_table(
        &mut self,
        table: u32,
        each: &mut (dyn FnMut(TableRoute) + Send),
    ) -> Result<(), TableError> {
        self.0.list_table(table, each).await
    }

    async fn apply(&mut self, changes: &[Change]) -> Result<Vec<RouteError>, TableError> {
        self.1.push((tokio::time::Instant::now(), changes.len()));
        self.0.apply(changes).await
    }
}

/// `max_routes_per_second`: 200 routes at 100 a second go out in slices
/// of 5, the last one 1.95 s after the first; without a pace, at once.
#[test]
fn the_install_pace_holds_on_virtual_time() {
    let run = |pace: Option<u32>| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap()
            .block_on(async move {
                let t = Clocked(MemoryTable::new(), Vec::new());
                let mut i = Installer::start(t, settings(), interfaces(), false)
                    .await
                    .unwrap()
                    .with_pace(pace);
                let t0 = tokio::time::Instant::now();
                for n in 0..200 {
                    i.offer(obs(0, n, "fe80::1", 5), 1000).await.unwrap();
                }
                let (report, table) = i.finish(1000, RAIL).await.unwrap();
                assert_eq!(report.table.added, 200);
                assert_eq!(table.0.routes().count(), 200);
                let sent: Vec<(std::time::Duration, usize)> =
                    table.1.iter().map(|(t, n)| (*t - t0, *n)).collect();
                sent
            })
    };
    let paced = run(Some(100));
    assert_eq!(paced.iter().map(|s| s.1).sum::<usize>(), 200);
    assert!(paced.iter().all(|s| s.1 <= 5), "{paced:?}");
    assert_eq!(
        paced.last().unwrap().0,
        std::time::Duration::from_millis(1950)
    );
    let fast = run(None);
    assert_eq!(fast.iter().map(|s| s.1).sum::<usize>(), 200);
    assert!(fast.iter().all(|s| s.0.is_zero()), "{fast:?}");
}

/// What the table knows at the end, as the ledger gets it: (prefix, the
/// lease's client, server, last transaction, end) per route left in place.
type KnownRow = (String, Option<(String, u16, Option<u64>, Option<u64>)>);

async fn run_known(table: MemoryTable, all: Vec<Observed>, prune: bool) -> Vec<KnownRow> {
    let mut i = Installer::start(table, settings(), interfaces(), false)
        .await
        .unwrap();
    for o in all {
        i.offer(o, 1000).await.unwrap();
    }
    let (_, _, t) = i.finish_keeping(2000, rule(prune)).await.unwrap();
    // The recovery clock started at Unix time 1,800,000,000 s.
    let mut v: Vec<KnownRow> = t
        .known(1_800_000_000_000)
        .map(|k| {
            let lease = k.lease.map(|l| {
                let client = Duid::from_bytes(l.client).to_hex();
                (client, l.server, l.last_transaction, l.expires)
            });
            (k.prefix.to_string(), lease)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn the_ledger_gets_every_route_left_in_place_with_its_lease() {
    block_on(async {
        let (_, table) = run(
            MemoryTable::new(),
            vec![obs(0, 1, "fe80::1", 5), obs(0, 2, "fe80::2", 5)],
            true,
            100,
        )
        .await;
        // Server 1 names prefix 1 (heard from the client 5 s before 1000 ms,
        // 3600 s lease); prefix 2 is named by no one.
        let one = (
            "2001:db8:8000:100::/56".to_string(),
            Some((
                "0001".to_string(),
                1,
                Some(1_799_999_996),
                Some(1_800_003_601),
            )),
        );
        // Prune off: prefix 2 stays, without a lease.
        let kept = run_known(table.clone(), vec![obs(1, 1, "fe80::1", 5)], false).await;
        assert_eq!(
            kept,
            vec![one.clone(), ("2001:db8:8000:200::/56".to_string(), None)]
        );
        // Prune on: prefix 2 is gone, so not in the ledger.
        let pruned = run_known(table, vec![obs(1, 1, "fe80::1", 5)], true).await;
        assert_eq!(pruned, vec![one]);
        // A route the kernel refused is not in it either.
        let mut on_c2 = obs(0, 3, "fe80::3", 5);
        on_c2.binding.relay[0].link_address = "2001:db8:2::1".parse().unwrap();
        let refused = run_known(MemoryTable::with_interfaces([5]), vec![on_c2], true).await;
        assert_eq!(refused, vec![]);
    });
}
