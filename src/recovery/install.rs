//! Installing routes while the bindings stream in.
//!
//! The [`Installer`] takes each binding as it arrives (from any server, in
//! any order), reconciles it at once, and when it becomes the best binding
//! for its prefix plans its route and queues an add or replace (replace
//! semantics make a later, better binding simply overwrite the route). Queued
//! changes go to the table in batches, so routes reach the kernel while the
//! servers are still streaming. [`Installer::finish`] then plans the
//! reconciled whole once more and applies what is left: prefixes that need
//! the client's address (next-hop fallback), routes whose binding lost to a
//! rejected one, and (only when every server answered completely) the
//! removal of our routes that no binding backs any more: nothing already
//! installed is lost because a server failed.

use super::plan::{Interface, PlanSettings, Rejected};
use super::reconcile::{client_address, Conflict, Millis, Observed, Offer, Reconciled, Reconciler};
use crate::proto::LeaseKind;
use crate::routes::{Change, Route, RouteError, RouteKey, RouteTable, TableError};
use ipnet::Ipv6Net;
use std::collections::{BTreeMap, HashMap};

/// Changes are sent to the table in batches of this many.
pub const DEFAULT_BATCH: usize = 2048;

/// Lifetimes within this many seconds count as equal (they count down in step).
pub const EXPIRY_SLACK: u32 = 30;

/// What the installation did, net of the whole run.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct InstallReport {
    /// Routes that were not there before.
    pub added: usize,
    /// Routes of ours whose next hop, interface or lifetime changed.
    pub replaced: usize,
    /// Routes of ours already as desired.
    pub unchanged: usize,
    /// Routes of ours removed (no binding backs them).
    pub removed: usize,
    /// Prefixes refused, with reasons.
    pub rejected: Vec<Rejected>,
    /// Changes the table refused.
    pub failed: Vec<RouteError>,
    /// Servers' disagreements.
    pub conflicts: Vec<Conflict>,
    /// Bindings dropped for an elapsed lifetime.
    pub expired: usize,
    /// Prefixes with a route in the final plan.
    pub planned: usize,
    /// When the first change reached the table (ms on the recovery clock).
    pub first_route_at: Option<Millis>,
    /// Number of table operations performed (adds+replaces+removes sent).
    pub operations: usize,
    /// Whether pruning ran.
    pub pruned: bool,
    /// In a dry run, the changes that would have been made, in order.
    pub dry_run_changes: Vec<Change>,
}

/// Streams bindings into a route table. See the module documentation.
pub struct Installer<T: RouteTable> {
    table: T,
    settings: PlanSettings,
    interfaces: Vec<Interface>,
    reconciler: Reconciler,
    /// Our routes as listed at the start.
    initial: HashMap<RouteKey, Route>,
    /// Our routes as they are now (as far as the table has told us).
    current: HashMap<RouteKey, Route>,
    /// Prefixes whose best binding has no route planned yet: no relay data
    /// (needs the client's address, known only at the end) or rejected.
    unsettled: std::collections::HashSet<Ipv6Net>,
    pending: Vec<Change>,
    batch: usize,
    failed: BTreeMap<RouteKey, crate::routes::Failure>,
    first_route_at: Option<Millis>,
    operations: usize,
    dry_run: bool,
    dry_run_changes: Vec<Change>,
}

fn same(a: &Route, b: &Route) -> bool {
    a.gateway == b.gateway
        && a.ifindex == b.ifindex
        && match (a.expires, b.expires) {
            (None, None) => true,
            (Some(x), Some(y)) => x.abs_diff(y) <= EXPIRY_SLACK,
            _ => false,
        }
}

impl<T: RouteTable> Installer<T> {
    /// Read the routes we own from `table` and get ready. With `dry_run`
    /// nothing is ever applied; the report says what would change.
    pub async fn start(
        mut table: T,
        settings: PlanSettings,
        interfaces: Vec<Interface>,
        dry_run: bool,
    ) -> Result<Self, TableError> {
        let owned = table.list_owned(settings.table, settings.protocol).await?;
        let initial: HashMap<RouteKey, Route> = owned.into_iter().map(|r| (r.key(), r)).collect();
        Ok(Installer {
            table,
            settings,
            interfaces,
            reconciler: Reconciler::new(),
            current: initial.clone(),
            initial,
            unsettled: std::collections::HashSet::new(),
            pending: Vec::new(),
            batch: DEFAULT_BATCH,
            failed: BTreeMap::new(),
            first_route_at: None,
            operations: 0,
            dry_run,
            dry_run_changes: Vec::new(),
        })
    }

    /// Set the batch size.
    pub fn with_batch(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// The table (for tests and the demo, to look at the result).
    pub fn table(&self) -> &T {
        &self.table
    }

    fn queue(&mut self, route: Route) {
        let key = route.key();
        match self.current.get(&key) {
            Some(old) if same(old, &route) => {}
            Some(old) => {
                self.pending.push(Change::Replace {
                    old: old.clone(),
                    new: route.clone(),
                });
                self.current.insert(key, route);
            }
            None => {
                self.pending.push(Change::Add(route.clone()));
                self.current.insert(key, route);
            }
        }
    }

    /// Keep only what planning needs: the relay layer with our Relay-ID
    /// (planning takes a lone layer as ours), without its Remote-ID. A
    /// chain without our layer is kept whole, so that it is rejected for
    /// the right reason.
    fn compact(&self, obs: &mut Observed) {
        let relay = &mut obs.binding.relay;
        if let Some(i) = relay
            .iter()
            .position(|l| l.relay_id.as_ref() == Some(&self.settings.relay_id))
        {
            let mut ours = relay.swap_remove(i);
            ours.relay_id = None;
            ours.remote_id = None;
            *relay = vec![ours];
        }
    }

    /// Take one binding; routes go out when a batch is full.
    pub async fn offer(&mut self, mut obs: Observed, now: Millis) -> Result<(), TableError> {
        self.compact(&mut obs);
        let prefix = match obs.binding.lease {
            LeaseKind::Prefix(p) => p.trunc(),
            LeaseKind::Address(_) => {
                self.reconciler.offer(obs, now);
                return Ok(());
            }
        };
        if matches!(
            self.reconciler.offer(obs, now),
            Offer::New | Offer::Replaced
        ) {
            let best = self.reconciler.best(&prefix).expect("just offered");
            // Bindings without relay data may need the client's address,
            // which can arrive later: those wait for finish(), as do
            // rejected ones (so that the reason is reported once, at the end).
            let planned = if best.binding.relay.is_empty() {
                None
            } else {
                self.settings
                    .route_for(best, None, &self.interfaces, now)
                    .ok()
            };
            match planned {
                Some(route) => {
                    self.unsettled.remove(&prefix);
                    self.queue(route);
                }
                None => {
                    self.unsettled.insert(prefix);
                }
            }
        }
        if self.pending.len() >= self.batch {
            self.flush(now).await?;
        }
        Ok(())
    }

    /// Send queued changes to the table now.
    pub async fn flush(&mut self, now: Millis) -> Result<(), TableError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let changes = std::mem::take(&mut self.pending);
        self.operations += changes.len();
        if self.dry_run {
            self.dry_run_changes.extend(changes);
            return Ok(());
        }
        self.first_route_at.get_or_insert(now);
        let failures = self.table.submit(changes).await?;
        self.note_failures(failures);
        Ok(())
    }

    /// The table refused these: keep the books true (what is in the kernel)
    /// and remember the latest error per route.
    fn note_failures(&mut self, failures: Vec<crate::routes::Failure>) {
        for (c, e) in failures {
            let key = c.route().key();
            match &c {
                Change::Add(r) => {
                    if self.current.get(&key) == Some(r) {
                        self.current.remove(&key);
                    }
                }
                Change::Replace { old, new } => {
                    if self.current.get(&key) == Some(new) {
                        self.current.insert(key, old.clone());
                    }
                }
                Change::Remove(r) => {
                    self.current.entry(key).or_insert_with(|| r.clone());
                }
            }
            self.failed.insert(key, (c, e));
        }
    }

    /// Plan the reconciled whole, apply what is left, and report.
    /// `prune` removes our routes that no binding backs; pass it only when
    /// every server answered completely.
    pub async fn finish(
        mut self,
        now: Millis,
        prune: bool,
    ) -> Result<(InstallReport, Reconciled, T), TableError> {
        self.flush(now).await?;
        let reconciled = std::mem::take(&mut self.reconciler).finish();
        // Routes planned while streaming stand. Plan what is left: prefixes
        // without relay data (now that every client address is known), the
        // rejected ones (for their reason), and the ones whose route the
        // table refused (one more try).
        let mut left: Vec<Ipv6Net> = std::mem::take(&mut self.unsettled).into_iter().collect();
        left.extend(self.failed.iter().filter_map(|(k, (c, _))| match c {
            Change::Remove(_) => None,
            _ => Some(k.prefix),
        }));
        left.sort_unstable();
        left.dedup();
        let mut rejected = Vec::new();
        let mut rejected_set = std::collections::HashSet::new();
        for prefix in left {
            let Some(obs) = reconciled.prefixes.get(&prefix) else {
                continue;
            };
            let addr = if obs.binding.relay.is_empty() {
                client_address(&reconciled, &obs.binding.client_duid)
            } else {
                None
            };
            match self.settings.route_for(obs, addr, &self.interfaces, now) {
                Ok(route) => self.queue(route),
                Err(reason) => {
                    rejected_set.insert(prefix);
                    rejected.push(Rejected {
                        prefix,
                        client: obs.binding.client_duid.clone(),
                        server: obs.server,
                        reason,
                    })
                }
            }
            if self.pending.len() >= self.batch {
                self.flush(now).await?;
            }
        }
        let (table, metric) = (self.settings.table, self.settings.metric);
        let want = |k: &RouteKey| {
            k.table == table
                && k.metric == metric
                && reconciled.prefixes.contains_key(&k.prefix)
                && !rejected_set.contains(&k.prefix)
        };
        let planned = reconciled.prefixes.len() - rejected.len();
        // Routes this run put in for prefixes that ended up rejected come out
        // again; routes that were there before are left to pruning.
        let mut stray: Vec<Route> = self
            .current
            .iter()
            .filter(|(k, _)| !want(k))
            .filter(|(k, _)| prune || !self.initial.contains_key(k))
            .map(|(_, r)| r.clone())
            .collect();
        stray.sort_unstable_by_key(Route::key);
        for r in stray {
            self.current.remove(&r.key());
            self.pending.push(Change::Remove(r));
        }
        self.flush(now).await?;
        if !self.dry_run {
            let late = self.table.sync().await?;
            self.note_failures(late);
        }
        // A failure counts when its route is still not as wanted: a later
        // try that went through clears it.
        let current = &self.current;
        let failed: Vec<RouteError> = std::mem::take(&mut self.failed)
            .into_iter()
            .filter(|(k, (c, _))| match c {
                Change::Remove(_) => current.contains_key(k),
                Change::Add(r) | Change::Replace { new: r, .. } => current.get(k) != Some(r),
            })
            .map(|(_, (_, e))| e)
            .collect();

        let mut report = InstallReport {
            rejected,
            failed,
            conflicts: reconciled.conflicts.clone(),
            expired: reconciled.expired,
            planned,
            first_route_at: self.first_route_at,
            operations: self.operations,
            pruned: prune,
            dry_run_changes: std::mem::take(&mut self.dry_run_changes),
            ..Default::default()
        };
        for (k, r) in &self.current {
            match self.initial.get(k) {
                None => report.added += 1,
                Some(old) if same(old, r) => report.unchanged += 1,
                Some(_) => report.replaced += 1,
            }
        }
        report.removed = self
            .initial
            .keys()
            .filter(|k| !self.current.contains_key(k))
            .count();
        Ok((report, reconciled, self.table))
    }
}

#[cfg(test)]
mod tests {
    use super::super::plan::NextHopFallback;
    use super::super::reconcile::tests::pd;
    use super::*;
    use crate::proto::RelayLayer;
    use crate::routes::MemoryTable;

    const OURS: &str = "000200000009010203040506";

    fn settings() -> PlanSettings {
        PlanSettings {
            relay_id: OURS.parse().unwrap(),
            table: 254,
            protocol: 16,
            metric: 1024,
            allowed_prefixes: vec!["2001:db8:8000::/40".parse().unwrap()],
            min_prefix_len: 48,
            interface_map: BTreeMap::new(),
            fallback: NextHopFallback::ClientAddress,
        }
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
        let mut i = Installer::start(table, settings(), interfaces(), false)
            .await
            .unwrap()
            .with_batch(batch);
        for o in all {
            i.offer(o, 1000).await.unwrap();
        }
        let (report, _, table) = i.finish(1000, prune).await.unwrap();
        (report, table)
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
            let (report, _, table) = i.finish(2000, true).await.unwrap();
            assert_eq!(table.routes().count(), 25);
            assert_eq!(report.added, 25);
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
            assert_eq!(report.added, 1);
            let r: Vec<_> = table.routes().collect();
            assert_eq!(r[0].gateway.to_string(), "fe80::2");
            // Same bindings again, in the other order: nothing to do.
            let (report, table2) = run(table.clone(), vec![newer, first], true, 1).await;
            assert_eq!(
                (
                    report.added,
                    report.replaced,
                    report.removed,
                    report.unchanged
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
            assert_eq!(report.rejected.len(), 1);
            assert_eq!(report.conflicts.len(), 1);
            assert_eq!(report.added, 0);
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
            let (report, kept) =
                run(table.clone(), vec![obs(0, 1, "fe80::1", 5)], false, 100).await;
            assert_eq!((report.removed, kept.routes().count()), (0, 2));
            let (report, pruned) = run(table, vec![obs(0, 1, "fe80::1", 5)], true, 100).await;
            assert_eq!((report.removed, pruned.routes().count()), (1, 1));
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
            assert_eq!(report.failed.len(), 1, "{:?}", report.failed);
            assert_eq!(
                report.failed[0].prefix.to_string(),
                "2001:db8:8000:200::/56"
            );
            assert_eq!(report.failed[0].message, "No such device");
            assert_eq!(report.added, 2);
            assert_eq!(table.routes().count(), 2);
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
            let (report, _, table) = i.finish(1000, true).await.unwrap();
            assert_eq!(report.added, 5);
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
            assert_eq!(report.added, 1);
            assert_eq!(
                table.routes().next().unwrap().gateway.to_string(),
                "2001:db8:1::77"
            );
        });
    }
}
