//! The steps of the end of a run, in order: settle what streaming left
//! open, withdraw (this run's routes for refused prefixes, and the prune
//! within the rail), report.

use super::slots::{Best, Kernel};
use super::{Conflict, ForeignConflict, PrefixTable, TableReport};
use crate::proto::Duid;
use crate::recovery::prune::{self, PruneReport, PruneRule, PruneState};
use crate::recovery::rank::Millis;
use crate::recovery::rejection::Rejected;
use crate::routes::{Change, Route, RouteError};
use std::cmp::Reverse;

impl PrefixTable {
    /// The first step of the end: what streaming left open is to be
    /// settled by [`PrefixTable::settle`]: the claims kept whole, and the
    /// planned routes the table refused.
    pub fn begin_settling(&mut self) {
        let mut left: Vec<u32> = self.deferred.keys().copied().collect();
        left.extend((0..self.slots.len()).filter(|&i| {
            let s = &self.slots[i];
            s.best == Best::Planned && matches!(s.kernel, Kernel::Refused { .. })
        }));
        // In reverse prefix order, so that popping settles in prefix order.
        left.sort_unstable_by_key(|&i| Reverse(self.slots[i].prefix()));
        self.unsettled = left;
    }

    /// Settle up to `budget` slots left open, queueing their changes;
    /// true while some are left. A planned route the table refused is tried
    /// once more; a claim kept whole is planned now that every client
    /// address is known, or refused with its reason.
    pub fn settle(&mut self, now: Millis, budget: usize) -> bool {
        for _ in 0..budget {
            let Some(i) = self.unsettled.pop() else {
                return false;
            };
            let s = &self.slots[i];
            if s.best == Best::Planned {
                let (gateway, iface) = (s.route.gateway, s.route.iface);
                self.route_to(i, gateway, iface, now);
            } else if let Some(obs) = self.deferred.get(&i) {
                let addr = if obs.binding.relay.is_empty() {
                    self.addresses.latest(&obs.binding.client_duid)
                } else {
                    None
                };
                match self.planner.plan(&obs.binding, addr) {
                    Ok(p) => self.route_to(i, p.gateway, p.iface, now),
                    Err(reason) => {
                        let r = Rejected {
                            prefix: s.prefix(),
                            client: obs.binding.client_duid.clone(),
                            server: obs.server,
                            reason,
                        };
                        self.refused.insert(i);
                        self.rejected.push(r);
                    }
                }
            }
        }
        !self.unsettled.is_empty()
    }

    /// The second step of the end, after [`PrefixTable::settle`]: routes
    /// this run put in for prefixes that ended up refused come out; our
    /// routes that no claim backs (listed at the start, and the stale ones)
    /// are pruned when `rule` and the rail ([`prune::decide`]) allow it, or
    /// else left as they were listed. Every removal is logged.
    pub fn withdraw(&mut self, rule: PruneRule, dry_run: bool) -> PruneReport {
        let mut out: Vec<Route> = Vec::new();
        let mut candidates: Vec<u32> = Vec::new();
        for i in 0..self.slots.len() {
            let s = &self.slots[i];
            let unwanted = s.best == Best::Unbound || self.refused.contains(&i);
            if !unwanted || matches!(s.kernel, Kernel::Absent | Kernel::Foreign) {
                continue;
            }
            if s.kernel.listed() {
                if self.in_scope(s.route.iface) {
                    candidates.push(i);
                } else {
                    // Not asked about: as it was listed.
                    self.restore_listed(&[i]);
                }
                continue;
            }
            if let Kernel::Sent { .. } | Kernel::Refused { .. } = s.kernel {
                out.push(self.slot_route(i));
                self.slots[i].kernel = Kernel::Absent;
            }
        }
        self.move_metric(&mut out);
        let mut stale_out = self.stale_unheld();
        // Link by link first (link-address mode): a link held back keeps
        // its routes and leaves the run's rail; the rest is the run's.
        let links = self.hold_back_links(rule, &mut candidates, &mut stale_out);
        let mut report = prune::decide(
            rule,
            candidates.len() + stale_out.len(),
            self.owned,
            self.claims,
            &self.parts.groups,
        );
        report.held_back.splice(0..0, links);
        if report.state == PruneState::Done {
            self.prune_listed(&candidates, stale_out, &mut out);
        } else {
            self.restore_listed(&candidates);
            self.stale.extend(stale_out);
        }
        for r in &self.removals {
            tracing::info!(
                prefix = %r.prefix,
                via = %r.gateway,
                dev = %r.interface,
                dry_run,
                "removing our route: no binding backs it"
            );
        }
        out.sort_unstable_by_key(Route::key);
        self.queued.extend(out.into_iter().map(Change::Remove));
        self.prune = report.clone();
        report
    }

    /// Our routes at another metric (an earlier configuration's) whose
    /// prefix now has its route of ours at our metric in place: moved,
    /// make-before-break (the new route is in, the old one goes), outside
    /// the prune rail. Call once every change before is applied and its
    /// failures handed back.
    fn move_metric(&mut self, out: &mut Vec<Route>) {
        let stale = std::mem::take(&mut self.stale);
        for r in stale {
            let now_ours = (r.metric != self.owner.metric())
                .then(|| self.slots.find(&r.prefix))
                .flatten()
                .filter(|&i| {
                    let s = &self.slots[i];
                    s.best != Best::Unbound
                        && !self.refused.contains(&i)
                        && matches!(s.kernel, Kernel::Sent { .. } | Kernel::Listed)
                });
            match now_ours {
                Some(i) => {
                    self.moved_metric.push((r.clone(), self.slot_route(i)));
                    self.metric_moved.insert(i);
                    out.push(r);
                }
                None => self.stale.push(r),
            }
        }
    }

    /// The stale routes whose key does not hold a route of ours now (they
    /// are taken out of `stale`; the others stay).
    fn stale_unheld(&mut self) -> Vec<Route> {
        let stale = std::mem::take(&mut self.stale);
        let (held, out): (Vec<Route>, Vec<Route>) = stale.into_iter().partition(|r| {
            let k = r.key();
            let held = k == self.owner.key(k.prefix)
                && self
                    .slots
                    .find(&k.prefix)
                    .is_some_and(|i| self.slots[i].kernel != Kernel::Absent);
            held || !self.ifindex_in_scope(r.ifindex)
        });
        self.stale = held;
        out
    }

    fn prune_listed(&mut self, candidates: &[u32], stale: Vec<Route>, out: &mut Vec<Route>) {
        for &i in candidates {
            let r = self.slot_route(i);
            self.removed.insert(r.key());
            self.removals.push(r.clone());
            out.push(r);
            self.slots[i].kernel = Kernel::Removed;
        }
        for r in stale {
            self.removed.insert(r.key());
            self.removals.push(r.clone());
            out.push(r);
        }
    }

    /// Put back, as listed, the routes of ours this run changed for
    /// prefixes that ended up unwanted.
    pub(super) fn restore_listed(&mut self, candidates: &[u32]) {
        for &i in candidates {
            let s = &self.slots[i];
            let changed = matches!(s.kernel, Kernel::Sent { .. } | Kernel::Refused { .. });
            if let (true, Some(&before)) = (changed, self.listed_before.get(&i)) {
                let change = Change::Replace {
                    old: self.slot_route(i),
                    new: self.route_of(s.prefix(), before),
                };
                self.queued.push(change);
                let s = &mut self.slots[i];
                s.route = before;
                s.kernel = Kernel::Listed;
            }
        }
    }

    /// The last step: what the run did, net, against the routes listed at
    /// the start. Call after the changes of [`PrefixTable::withdraw`] were
    /// applied and their failures handed back.
    pub fn report(&mut self) -> TableReport {
        let failed = self.surviving_failures();
        let foreign_conflicts = self.foreign_conflicts();
        let bound = self
            .slots
            .slots
            .iter()
            .filter(|s| s.best != Best::Unbound)
            .count();
        let mut rejected = std::mem::take(&mut self.rejected);
        rejected.sort_by_key(|r| r.prefix);
        let mut r = TableReport {
            conflicts: self.conflicts(),
            expired: self.expired,
            planned: bound - rejected.len() - foreign_conflicts.len(),
            rejected,
            failed,
            foreign_conflicts,
            removals: std::mem::take(&mut self.removals),
            prune: std::mem::take(&mut self.prune),
            ..Default::default()
        };
        self.count(&mut r);
        r
    }

    /// A refusal counts when its prefix's route is still not as wanted: a
    /// later try that went through clears it, whatever lifetime it carried.
    fn surviving_failures(&mut self) -> Vec<RouteError> {
        let failed = std::mem::take(&mut self.failed);
        failed
            .into_iter()
            .filter(|(_, (c, _))| match c {
                Change::Remove(_) => true,
                Change::Add(r) | Change::Replace { new: r, .. } => {
                    match self.slots.find(&r.prefix) {
                        Some(i) => {
                            // The latest change for the prefix went
                            // through (a retry at the end, with the
                            // lifetime left then): the refusal is moot.
                            !matches!(self.slots[i].kernel, Kernel::Sent { .. })
                                || self.refused.contains(&i)
                        }
                        None => true,
                    }
                }
            })
            .map(|(_, (_, e))| e)
            .collect()
    }

    /// Added, replaced (and moved), unchanged and removed, net.
    fn count(&self, r: &mut TableReport) {
        for i in 0..self.slots.len() {
            let s = &self.slots[i];
            if self.metric_moved.contains(&i) {
                // Moved from another metric: a replacement, not a new route.
                r.replaced += 1;
                continue;
            }
            match s.kernel {
                Kernel::Sent { listed: false } => r.added += 1,
                Kernel::Sent { listed: true } => match self.listed_before.get(&i) {
                    Some(before) if !before.same(&s.route) => {
                        r.replaced += 1;
                        if !before.same_path(&s.route) {
                            let old = self.route_of(s.prefix(), *before);
                            r.moved.push((old, self.slot_route(i)));
                        }
                    }
                    _ => r.unchanged += 1,
                },
                // A listed route left as it was (or whose replacement failed).
                Kernel::Listed | Kernel::Refused { listed: true } => r.unchanged += 1,
                _ => {}
            }
        }
        r.moved.extend(self.moved_metric.iter().cloned());
        r.moved.sort_by_key(|(old, _)| (old.prefix, old.metric));
        r.unchanged += self.stale.len();
        r.removed = self.removed.len();
    }

    /// Bound prefixes whose route would take a foreign route's key, with the
    /// winning claim's client and server, sorted by prefix. Refused
    /// prefixes are reported as refused instead.
    fn foreign_conflicts(&self) -> Vec<ForeignConflict> {
        let mut out: Vec<ForeignConflict> = self
            .foreign
            .iter()
            .filter(|(i, _)| {
                let s = &self.slots[**i];
                s.best != Best::Unbound && s.kernel == Kernel::Foreign && !self.refused.contains(i)
            })
            .map(|(&i, f)| {
                let s = &self.slots[i];
                ForeignConflict {
                    prefix: s.prefix(),
                    client: Duid::from_bytes(self.arena.get(s.client)),
                    server: s.server,
                    foreign: f.clone(),
                }
            })
            .collect();
        out.sort_by_key(|c| c.prefix);
        out
    }

    /// Every (server, client) that claimed a prefix for another client
    /// than the winner's, sorted by prefix then loser.
    fn conflicts(&self) -> Vec<Conflict> {
        let mut out = Vec::new();
        for (&i, list) in &self.contested {
            let s = &self.slots[i];
            let winner = self.arena.get(s.client);
            for (server, client) in list {
                if client.as_bytes() != winner {
                    out.push(Conflict {
                        prefix: s.prefix(),
                        winner: (s.server, Duid::from_bytes(winner)),
                        loser: (*server, client.clone()),
                    });
                }
            }
        }
        out.sort_by(|a, b| (a.prefix, &a.loser).cmp(&(b.prefix, &b.loser)));
        out
    }
}
