//! The installer's prefix table: reconciliation and route decisions as
//! claims stream in, sans IO.
//!
//! A [`PrefixTable`] is fed the routes of our table as listed at the start
//! ([`PrefixTable::handle_listed`]), then every claim as it arrives, from any
//! server, in any order ([`PrefixTable::handle_claim`]). It reconciles each
//! claim at once by [`Rank`] (RFC 5007 s.4.3.4: the most recent client
//! transaction wins) and, when a claim becomes the best for its prefix,
//! queues the add or replace of its route. The caller takes the queued
//! changes ([`PrefixTable::poll_changes`]), applies them to a route table,
//! and hands back what the table refused ([`PrefixTable::handle_failures`]).
//! At the end come named steps, each queueing changes in turn:
//! [`PrefixTable::settle`] (the claims kept whole, planned now that every
//! client address is known, and one more try of refused routes), then
//! [`PrefixTable::withdraw`] (this run's routes for refused prefixes come
//! out; our routes no binding backs are pruned as the rail allows, or left
//! as they were), and [`PrefixTable::report`].
//!
//! # Storage
//! Each delegated prefix gets one fixed-size slot (at most 80 octets) in a
//! vector, found through a hash index of slot numbers (hashbrown, seeded
//! foldhash); client DUIDs live in one arena. Our routes listed at the
//! start go into the same slots, so a claim finds the route it may leave
//! alone in the same lookup. No allocation per claim. Only the rare cases
//! keep more: claims kept whole (to be planned at the end), the claims on
//! prefixes that servers dispute, addresses kept for the next-hop
//! fallback, listed routes this run replaced (to report or restore), and
//! routes that are not ours at our key.
//!
//! Files: this one takes what arrives (the listing, claims, failures);
//! `slots` is the storage; `end` holds the steps of the end; `report` the
//! types of what the run decided.

use super::claim::{Claim, Path};
use super::observed::{Addresses, Observed};
use super::planner::Planner;
use super::prune::{Parts, PruneReport};
use super::rank::{self, Millis, Rank};
use super::rejection::Rejected;
use crate::proto::{Duid, LeaseKind, ServerIndex};
use crate::routes::{errno, Change, Failure, Held, Ownership, Route, RouteKey, TableRoute};
use slots::{split, Arena, Best, Kernel, SlotRoute, Slots};
use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::Ipv6Addr;
use std::sync::Arc;

mod end;
mod known;
mod rail;
mod report;
mod slots;
#[cfg(test)]
mod tests;

pub use report::{Conflict, ForeignConflict, ForeignRoute, TableReport};
pub use slots::EXPIRY_SLACK;

/// The prefix table. See the module documentation.
pub struct PrefixTable {
    planner: Arc<Planner>,
    owner: Ownership,
    slots: Slots,
    arena: Arena,
    /// The best claim of slots that are [`Best::Deferred`], whole.
    deferred: HashMap<u32, Observed>,
    /// Every (server, client) that claimed a disputed prefix.
    contested: HashMap<u32, Vec<(ServerIndex, Duid)>>,
    /// Addresses (IA_NA), most recent first, for the next-hop fallback.
    addresses: Addresses,
    /// Routes that are not ours at our key, by slot.
    foreign: HashMap<u32, ForeignRoute>,
    /// The listed route of slots whose route this run changed.
    listed_before: HashMap<u32, SlotRoute>,
    /// Routes of ours listed at the start that no slot can hold: another
    /// metric, or an interface that has gone.
    stale: Vec<Route>,
    /// Listed routes this run removed.
    removed: HashSet<RouteKey>,
    /// Slots whose add met EEXIST: a route came to the key after the
    /// listing, to be told ours or another's by listing again.
    taken: Vec<u32>,
    /// Our routes at an earlier metric moved to ours: (old, new).
    moved_metric: Vec<(Route, Route)>,
    /// The slots whose route came from another metric.
    metric_moved: HashSet<u32>,
    /// The latest refusal per route.
    failed: BTreeMap<RouteKey, Failure>,
    queued: Vec<Change>,
    /// Our routes listed at the start.
    owned: usize,
    /// Claims received (expired ones too).
    claims: u64,
    expired: usize,
    /// The end: slots still to settle, and what settling refused.
    unsettled: Vec<u32>,
    refused: HashSet<u32>,
    rejected: Vec<Rejected>,
    removals: Vec<Route>,
    prune: PruneReport,
    /// The interfaces (positions) whose routes the queries cover; `None`:
    /// every interface.
    scope: Option<Vec<u32>>,
    /// What the run knows of its links and server groups, for the rail.
    parts: Parts,
    /// Our routes listed at the start, by interface position.
    owned_on: Vec<u32>,
}

impl PrefixTable {
    /// An empty table planning with `planner`.
    pub fn new(planner: Arc<Planner>) -> Self {
        PrefixTable {
            owner: planner.settings().owner.clone(),
            planner,
            slots: Slots::default(),
            arena: Arena::default(),
            deferred: HashMap::new(),
            contested: HashMap::new(),
            addresses: Addresses::default(),
            foreign: HashMap::new(),
            listed_before: HashMap::new(),
            stale: Vec::new(),
            removed: HashSet::new(),
            taken: Vec::new(),
            moved_metric: Vec::new(),
            metric_moved: HashSet::new(),
            failed: BTreeMap::new(),
            queued: Vec::new(),
            owned: 0,
            claims: 0,
            expired: 0,
            unsettled: Vec::new(),
            refused: HashSet::new(),
            rejected: Vec::new(),
            removals: Vec::new(),
            prune: PruneReport::default(),
            scope: None,
            parts: Parts::default(),
            owned_on: Vec::new(),
        }
    }

    /// Prune only the routes out of these interfaces (positions in the
    /// planner's interfaces): those of the links the queries covered. A
    /// route out of another interface keeps its place whatever the
    /// answers. `None` (the default): every interface.
    pub fn set_prune_scope(&mut self, scope: Option<Vec<u32>>) {
        self.scope = scope;
    }

    fn in_scope(&self, iface: u32) -> bool {
        self.scope.as_ref().is_none_or(|s| s.contains(&iface))
    }

    fn ifindex_in_scope(&self, ifindex: u32) -> bool {
        match &self.scope {
            None => true,
            Some(s) => s
                .iter()
                .any(|&p| self.planner.interfaces()[p as usize].index == ifindex),
        }
    }

    /// The planner.
    pub fn planner(&self) -> &Arc<Planner> {
        &self.planner
    }

    /// Changes queued and not yet taken.
    pub fn queued(&self) -> usize {
        self.queued.len()
    }

    /// Take the queued changes, in the order they were decided. Call when
    /// [`PrefixTable::queued`] reaches a batch, and after each step of the end.
    pub fn poll_changes(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.queued)
    }

    fn route_of(&self, prefix: ipnet::Ipv6Net, r: SlotRoute) -> Route {
        let i = &self.planner.interfaces()[r.iface as usize];
        self.owner
            .route(prefix, r.gateway, i.name.clone(), i.index, r.expires)
    }

    /// The route slot `i` holds (as in the kernel when `Listed` or `Sent`).
    fn slot_route(&self, i: u32) -> Route {
        let s = &self.slots[i];
        self.route_of(s.prefix(), s.route)
    }

    /// A route of our table as listed at the start, as the one ownership
    /// rule ([`Ownership`]) sees it: ours goes into its slot (or among the
    /// stale ones when no slot can hold it: another metric, an interface
    /// that has gone); another's at our metric on a prefix a claim could
    /// name makes its slot foreign (never touched); every other route is none of
    /// our business.
    pub fn handle_listed(&mut self, t: TableRoute) {
        let held = self.owner.held(&t);
        if let Held::Foreign = held {
            return self.list_foreign(t);
        }
        let Some(r) = t.as_route().filter(|_| held != Held::Unrelated) else {
            return;
        };
        let iface = self
            .planner
            .interfaces()
            .iter()
            .position(|i| i.index == r.ifindex);
        match iface {
            Some(iface) if held == Held::Ours => self.list_ours(&r, iface as u32),
            _ => {
                self.owned += 1;
                if let Some(p) = iface {
                    self.count_owned(p as u32, true);
                }
                self.stale.push(r);
            }
        }
    }

    fn list_ours(&mut self, r: &Route, iface: u32) {
        let (i, new) = self
            .slots
            .get_or_insert(split(r.prefix.addr()), r.prefix.prefix_len());
        if !new {
            // Another route already holds the key (someone's ECMP sibling):
            // leave both alone.
            return;
        }
        self.owned += 1;
        self.count_owned(iface, true);
        let s = &mut self.slots[i];
        s.kernel = Kernel::Listed;
        s.route = SlotRoute {
            gateway: r.gateway,
            iface,
            expires: r.expires,
        };
    }

    fn list_foreign(&mut self, t: TableRoute) {
        let p = t.prefix.trunc();
        let (i, _) = self.slots.get_or_insert(split(p.addr()), p.prefix_len());
        if self.slots[i].kernel == Kernel::Listed {
            // Our route shares the key with another's: touch neither.
            self.owned -= 1;
            self.count_owned(self.slots[i].route.iface, false);
        }
        self.slots[i].kernel = Kernel::Foreign;
        self.foreign.insert(i, ForeignRoute::of(&t));
    }

    /// Take one claim from `server`, received at `received` (ms on the
    /// recovery clock); `now` is the same clock. Queues the route change
    /// when the claim becomes the best for its prefix.
    pub fn handle_claim(
        &mut self,
        server: ServerIndex,
        received: Millis,
        claim: Claim,
        now: Millis,
    ) {
        self.claims += 1;
        let expires = rank::expiry(received, claim.valid_lifetime);
        if claim.valid_lifetime == 0 || expires <= now {
            self.expired += 1;
            return;
        }
        let prefix = match claim.lease {
            LeaseKind::Prefix(p) => p.trunc(),
            LeaseKind::Address(_) => {
                if let Path::Whole(b) = claim.path {
                    self.addresses.add(Observed {
                        server,
                        received,
                        binding: *b,
                    });
                }
                return;
            }
        };
        let (i, _) = self
            .slots
            .get_or_insert(split(prefix.addr()), prefix.prefix_len());
        let rank = Rank::new(
            received,
            claim.clt_time,
            claim.valid_lifetime,
            server,
            claim.client.as_bytes(),
        );
        if self.slots[i].best == Best::Unbound {
            self.first_claim(i, server, claim.client.as_bytes());
        } else {
            self.note_claimant(i, server, claim.client.as_bytes());
            if self.compare(i, &rank, &claim) != Ordering::Greater {
                return;
            }
        }
        self.set_best(
            i,
            received,
            rank.last_transaction,
            expires,
            server,
            claim,
            now,
        );
    }

    /// The first claim on slot `i`: its client goes into the arena.
    fn first_claim(&mut self, i: u32, server: ServerIndex, client: &[u8]) {
        let at = self.arena.push(client);
        let s = &mut self.slots[i];
        s.agree = server.bit();
        s.client = at;
    }

    /// Record who claims slot `i`, for the conflicts report: one bit per
    /// server while every claim names the same client, the list of every
    /// (server, client) once they differ.
    fn note_claimant(&mut self, i: u32, server: ServerIndex, client: &[u8]) {
        let s = &mut self.slots[i];
        let best_client = self.arena.get(s.client);
        if !s.contested && best_client == client {
            s.agree |= server.bit();
            return;
        }
        let list = self.contested.entry(i).or_default();
        if !s.contested {
            s.contested = true;
            let agreed = Duid::from_bytes(best_client);
            list.extend(ServerIndex::in_mask(s.agree).map(|b| (b, agreed.clone())));
        }
        if !list
            .iter()
            .any(|(sv, c)| *sv == server && c.as_bytes() == client)
        {
            list.push((server, Duid::from_bytes(client)));
        }
    }

    /// How a new claim ranks against slot `i`'s best: greater is better.
    /// The [`Rank`]; past it (one server naming the same client twice, with
    /// the same times), the route's next hop and interface, then the whole
    /// binding, so that the winner never depends on the order of arrival.
    fn compare(&self, i: u32, rank: &Rank<'_>, c: &Claim) -> Ordering {
        let s = &self.slots[i];
        let best = Rank {
            last_transaction: s.last_tx,
            expires: s.expires,
            server: Reverse(s.server),
            client: Reverse(self.arena.get(s.client)),
        };
        rank.cmp(&best).then_with(|| match (&c.path, s.best) {
            (Path::Via { gateway, iface }, Best::Planned) => {
                (s.route.gateway, s.route.iface).cmp(&(*gateway, *iface))
            }
            (Path::Via { .. }, _) => Ordering::Greater,
            (Path::Whole(_), Best::Planned) => Ordering::Less,
            (Path::Whole(b), _) => match self.deferred.get(&i) {
                Some(o) => o.binding.cmp(b),
                None => Ordering::Less,
            },
        })
    }

    /// The claim becomes slot `i`'s best: its route is queued now, or, when
    /// it was kept whole, decided at the end (a route already in the table
    /// stays until then).
    #[allow(clippy::too_many_arguments)]
    fn set_best(
        &mut self,
        i: u32,
        received: Millis,
        last_tx: i64,
        expires: Millis,
        server: ServerIndex,
        claim: Claim,
        now: Millis,
    ) {
        let same_client = self.arena.get(self.slots[i].client) == claim.client.as_bytes();
        if !same_client {
            self.slots[i].client = self.arena.push(claim.client.as_bytes());
        }
        let s = &mut self.slots[i];
        s.last_tx = last_tx;
        s.expires = expires;
        s.server = server;
        match claim.path {
            Path::Via { gateway, iface } => {
                s.best = Best::Planned;
                self.deferred.remove(&i);
                self.route_to(i, gateway, iface, now);
            }
            Path::Whole(b) => {
                s.best = Best::Deferred;
                let obs = Observed {
                    server,
                    received,
                    binding: *b,
                };
                self.deferred.insert(i, obs);
            }
        }
    }

    /// Slot `i`'s route becomes `gateway` out of `iface`, with the lifetime
    /// of its best claim: queue the change unless the kernel has it already.
    /// Never over a route that is not ours (reported at the end).
    fn route_to(&mut self, i: u32, gateway: Ipv6Addr, iface: u32, now: Millis) {
        let s = &self.slots[i];
        let new = SlotRoute {
            gateway,
            iface,
            expires: Some(rank::remaining_secs(s.expires, now)),
        };
        let (change, listed) = match s.kernel {
            Kernel::Foreign => return,
            Kernel::Listed | Kernel::Sent { .. } if s.route.same(&new) => return,
            Kernel::Listed => {
                self.listed_before.insert(i, s.route);
                (self.replace(i, new), true)
            }
            Kernel::Sent { listed }
            | Kernel::Refused {
                listed: listed @ true,
            } => (self.replace(i, new), listed),
            Kernel::Absent | Kernel::Refused { listed: false } | Kernel::Removed => (
                Change::Add(self.route_of(self.slots[i].prefix(), new)),
                false,
            ),
        };
        let s = &mut self.slots[i];
        s.kernel = Kernel::Sent { listed };
        s.route = new;
        self.queued.push(change);
    }

    fn replace(&self, i: u32, new: SlotRoute) -> Change {
        let s = &self.slots[i];
        Change::Replace {
            old: self.slot_route(i),
            new: self.route_of(s.prefix(), new),
        }
    }

    /// The table refused these: keep the books true (what is in the table)
    /// and remember the latest error per route. An add refused with EEXIST
    /// met a route that came to the key after the listing: the table must
    /// be listed again ([`PrefixTable::needs_relisting`]) to tell whether
    /// it is ours or another's.
    pub fn handle_failures(&mut self, failures: Vec<Failure>) {
        for (c, e) in failures {
            let key = c.route().key();
            let slot = self.slots.find(&key.prefix);
            match (&c, slot) {
                (Change::Add(r) | Change::Replace { new: r, .. }, Some(i)) => {
                    // Only when it is still the latest route sent for the prefix.
                    let Kernel::Sent { listed } = self.slots[i].kernel else {
                        self.failed.insert(key, (c, e));
                        continue;
                    };
                    if self.slot_route(i) != *r {
                        self.failed.insert(key, (c, e));
                        continue;
                    }
                    if matches!(c, Change::Add(_)) && e.errno == Some(errno::EEXIST) {
                        // A route came to the key after the listing: whose
                        // it is, the table is listed again to tell.
                        self.slots[i].kernel = Kernel::Foreign;
                        self.foreign.entry(i).or_insert_with(ForeignRoute::unknown);
                        self.taken.push(i);
                        continue;
                    }
                    self.slots[i].kernel = Kernel::Refused { listed };
                }
                // Still there.
                (Change::Remove(_), slot) if self.removed.remove(&key) => {
                    if let Some(i) = slot.filter(|&i| self.slots[i].kernel == Kernel::Removed) {
                        self.slots[i].kernel = Kernel::Listed;
                    }
                }
                _ => {}
            }
            self.failed.insert(key, (c, e));
        }
    }

    /// Some add met a route that came to its key after the listing (EEXIST):
    /// list the table again into [`PrefixTable::handle_relisted`] before
    /// settling.
    pub fn needs_relisting(&self) -> bool {
        !self.taken.is_empty()
    }

    /// A route of our table listed again, after adds met EEXIST: at a key
    /// one of them met, a route of ours (another writer's: `follow` while
    /// it resyncs, an older pdrestore) is ours like any other, and the
    /// best claim's route replaces it when it differs; another's is a
    /// foreign conflict, now with what it is. Call for every route of the
    /// table, then [`PrefixTable::relisted`] and [`PrefixTable::poll_changes`].
    pub fn handle_relisted(&mut self, t: TableRoute, now: Millis) {
        let p = t.prefix.trunc();
        let Some(i) = self.slots.find(&p).filter(|i| self.taken.contains(i)) else {
            return;
        };
        match self.owner.held(&t) {
            Held::Ours => self.adopt(i, &t, now),
            Held::Foreign => {
                self.foreign.insert(i, ForeignRoute::of(&t));
            }
            Held::OursElsewhere | Held::Unrelated => {}
        }
    }

    /// The route of ours `t` holds slot `i`'s key: the slot's kernel state
    /// is it, and the best claim's planned route replaces it if it differs.
    fn adopt(&mut self, i: u32, t: &TableRoute, now: Millis) {
        let interfaces = self.planner.interfaces();
        let pos = interfaces.iter().position(|x| x.index == t.ifindex);
        let (Some(pos), Some(gateway)) = (pos, t.gateway) else {
            return;
        };
        self.foreign.remove(&i);
        self.owned += 1;
        self.count_owned(pos as u32, true);
        let planned = self.slots[i].route;
        let s = &mut self.slots[i];
        s.kernel = Kernel::Listed;
        s.route = SlotRoute {
            gateway,
            iface: pos as u32,
            expires: t.expires,
        };
        if s.best == Best::Planned {
            self.route_to(i, planned.gateway, planned.iface, now);
        }
    }

    /// The listing again is over.
    pub fn relisted(&mut self) {
        self.taken.clear();
    }
}
