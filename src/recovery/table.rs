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
//! Each delegated prefix gets one fixed-size `Slot` (at most 80 octets) in a
//! vector, found through a hash index of slot numbers (hashbrown, seeded
//! foldhash); client DUIDs live in one arena. Our routes listed at the
//! start go into the same slots, so a claim finds the route it may leave
//! alone in the same lookup. No allocation per claim. Only the rare cases
//! keep more: claims kept whole (to be planned at the end), the claims on
//! prefixes that servers dispute, addresses kept for the next-hop
//! fallback, listed routes this run replaced (to report or restore), and
//! routes that are not ours at our key.

use super::claim::{Claim, Path};
use super::plan::Rejected;
use super::planner::Planner;
use super::prune::{self, PruneReport, PruneRule, PruneState};
use super::rank::{self, Rank};
use super::reconcile::{add_address, latest_address, Conflict, Millis, Observed};
use crate::proto::{Duid, LeaseKind, ServerIndex};
use crate::routes::{
    errno, same_lifetime, Change, Failure, Ownership, Route, RouteError, RouteKey, TableRoute,
};
use hashbrown::{DefaultHashBuilder, HashTable};
use ipnet::Ipv6Net;
use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::BuildHasher;
use std::net::Ipv6Addr;
use std::sync::Arc;

/// Lifetimes within this many seconds count as equal (they count down in step).
pub const EXPIRY_SLACK: u32 = 30;

/// A route that is not pdrestore's, as listed at the start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignRoute {
    /// Its protocol tag (`None`: not known, the kernel refused our add).
    pub protocol: Option<u8>,
    /// Its next hop, if it has one.
    pub gateway: Option<Ipv6Addr>,
    /// Its interface, if it has one.
    pub interface: Option<Arc<str>>,
    /// Its route type (rtm_type), when known.
    pub kind: Option<u8>,
}

/// A binding whose route would take the key of a route that is not ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignConflict {
    /// The prefix.
    pub prefix: Ipv6Net,
    /// The client the winning binding names.
    pub client: Duid,
    /// The server of the winning binding.
    pub server: ServerIndex,
    /// The route in the way.
    pub foreign: ForeignRoute,
}

/// What the table decided, net of the whole run.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TableReport {
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
    /// Changes the table refused, whose route is still not as wanted.
    pub failed: Vec<RouteError>,
    /// Servers' disagreements.
    pub conflicts: Vec<Conflict>,
    /// Bindings dropped for an elapsed lifetime.
    pub expired: usize,
    /// Prefixes with a route in the final plan.
    pub planned: usize,
    /// Prefixes left to a route that is not ours.
    pub foreign_conflicts: Vec<ForeignConflict>,
    /// Our routes removed (or, in a dry run, that would be), as they were.
    pub removals: Vec<Route>,
    /// Our routes whose next hop or interface changed: (before, after).
    pub moved: Vec<(Route, Route)>,
    /// What became of pruning.
    pub prune: PruneReport,
}

/// Where a slot's prefix stands with the claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Best {
    /// No claim names the prefix: only a listed or a foreign route did.
    Unbound,
    /// The best claim's route was planned on arrival: it is the slot's route.
    Planned,
    /// The best claim is kept whole in [`PrefixTable::deferred`], to be
    /// planned at the end.
    Deferred,
}

/// What the kernel holds at a slot's key, as far as this run knows. `listed`
/// says whether one of our routes was listed there at the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    /// Nothing of ours, nothing of anyone's.
    Absent,
    /// Our route listed at the start, untouched: the slot's route is it.
    Listed,
    /// The route this run sent last: the slot's route is it.
    Sent {
        /// A route of ours was listed there at the start.
        listed: bool,
    },
    /// The table refused the route this run sent last (the slot's route).
    Refused {
        /// A route of ours was listed there at the start.
        listed: bool,
    },
    /// This run asked for the removal of our route listed at the start
    /// (the prune).
    Removed,
    /// Another's route holds the key (another protocol, or a shape we never
    /// install): never touched; a claim on the prefix is a foreign conflict.
    Foreign,
}

impl Kernel {
    /// One of our routes was listed at the key at the start (and is not
    /// known to be gone).
    fn listed(self) -> bool {
        matches!(
            self,
            Kernel::Listed | Kernel::Sent { listed: true } | Kernel::Refused { listed: true }
        )
    }
}

/// A route as a slot holds it (the table, protocol and metric are the
/// settings'): next hop, interface position, lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SlotRoute {
    /// Next hop (octets: a slot stays 4-aligned and small).
    gateway: Ipv6Addr,
    /// Position of the interface in the planner's interfaces.
    iface: u32,
    /// Lifetime in seconds (`None`: no expiry).
    expires: Option<u32>,
}

impl SlotRoute {
    /// Same next hop and interface, lifetimes within [`EXPIRY_SLACK`].
    fn same(&self, o: &SlotRoute) -> bool {
        self.same_path(o) && same_lifetime(self.expires, o.expires, EXPIRY_SLACK)
    }

    fn same_path(&self, o: &SlotRoute) -> bool {
        self.gateway == o.gateway && self.iface == o.iface
    }
}

/// One delegated prefix: a claim names it, or a route was listed for it at
/// the start, or both.
#[derive(Debug, Clone)]
struct Slot {
    /// The prefix's address (host bits clear), high and low halves.
    addr: [u64; 2],
    /// The best claim's last transaction and expiry ([`Rank`], ms).
    last_tx: i64,
    expires: Millis,
    /// While not `contested`: the servers whose claims all name the best
    /// claim's client. Once they differ, every claim is in
    /// [`PrefixTable::contested`].
    agree: u64,
    /// The route: planned for the best claim, or as in the kernel (see
    /// [`Kernel`]).
    route: SlotRoute,
    /// Position of the best claim's client DUID in the arena.
    client: u32,
    /// Server of the best claim.
    server: ServerIndex,
    /// Prefix length.
    len: u8,
    best: Best,
    kernel: Kernel,
    contested: bool,
}

fn split(a: Ipv6Addr) -> [u64; 2] {
    let v = u128::from(a);
    [(v >> 64) as u64, v as u64]
}

fn join(a: [u64; 2]) -> Ipv6Addr {
    Ipv6Addr::from((u128::from(a[0]) << 64) | u128::from(a[1]))
}

impl Slot {
    fn empty(addr: [u64; 2], len: u8) -> Self {
        Slot {
            addr,
            last_tx: 0,
            expires: 0,
            agree: 0,
            route: SlotRoute {
                gateway: Ipv6Addr::UNSPECIFIED,
                iface: 0,
                expires: None,
            },
            client: 0,
            server: ServerIndex::default(),
            len,
            best: Best::Unbound,
            kernel: Kernel::Absent,
            contested: false,
        }
    }

    fn prefix(&self) -> Ipv6Net {
        Ipv6Net::new(join(self.addr), self.len).expect("length checked on arrival")
    }
}

/// Client DUIDs, one after the other, each preceded by its length (two
/// octets: an option body can be that long, even if a DUID should not).
#[derive(Debug, Default)]
struct Arena(Vec<u8>);

impl Arena {
    fn push(&mut self, d: &[u8]) -> u32 {
        let at = self.0.len();
        let d = &d[..d.len().min(usize::from(u16::MAX))];
        self.0.extend_from_slice(&(d.len() as u16).to_ne_bytes());
        self.0.extend_from_slice(d);
        u32::try_from(at).unwrap_or(u32::MAX)
    }

    fn get(&self, at: u32) -> &[u8] {
        let at = at as usize;
        let Some(&[a, b]) = self
            .0
            .get(at..at + 2)
            .and_then(|s| <&[u8; 2]>::try_from(s).ok())
        else {
            return &[];
        };
        let len = usize::from(u16::from_ne_bytes([a, b]));
        self.0.get(at + 2..at + 2 + len).unwrap_or(&[])
    }
}

/// The slots and the hash index that finds them by prefix.
#[derive(Debug, Default)]
struct Slots {
    slots: Vec<Slot>,
    index: HashTable<u32>,
    hasher: DefaultHashBuilder,
}

impl Slots {
    /// The slot of the prefix `addr`/`len`, made empty when there is none;
    /// and whether it was just made.
    fn get_or_insert(&mut self, addr: [u64; 2], len: u8) -> (u32, bool) {
        let hash = self.hasher.hash_one((addr, len));
        let slots = &self.slots;
        if let Some(&i) = self.index.find(hash, |&i| {
            let s = &slots[i as usize];
            s.addr == addr && s.len == len
        }) {
            return (i, false);
        }
        let i = u32::try_from(self.slots.len()).expect("fewer than 2^32 prefixes");
        self.slots.push(Slot::empty(addr, len));
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.index.insert_unique(hash, i, |&j| {
            let s = &slots[j as usize];
            hasher.hash_one((s.addr, s.len))
        });
        (i, true)
    }

    fn find(&self, p: &Ipv6Net) -> Option<u32> {
        let (addr, len) = (split(p.addr()), p.prefix_len());
        let hash = self.hasher.hash_one((addr, len));
        self.index
            .find(hash, |&i| {
                let s = &self.slots[i as usize];
                s.addr == addr && s.len == len
            })
            .copied()
    }

    fn len(&self) -> u32 {
        self.slots.len() as u32
    }
}

impl std::ops::Index<u32> for Slots {
    type Output = Slot;
    fn index(&self, i: u32) -> &Slot {
        &self.slots[i as usize]
    }
}

impl std::ops::IndexMut<u32> for Slots {
    fn index_mut(&mut self, i: u32) -> &mut Slot {
        &mut self.slots[i as usize]
    }
}

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
    addresses: BTreeMap<Duid, Vec<Observed>>,
    /// Routes that are not ours at our key, by slot.
    foreign: HashMap<u32, ForeignRoute>,
    /// The listed route of slots whose route this run changed.
    listed_before: HashMap<u32, SlotRoute>,
    /// Routes of ours listed at the start that no slot can hold: another
    /// metric, or an interface that has gone.
    stale: Vec<Route>,
    /// Listed routes this run removed.
    removed: HashSet<RouteKey>,
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
}

impl PrefixTable {
    /// An empty table planning with `planner`.
    pub fn new(planner: Arc<Planner>) -> Self {
        PrefixTable {
            owner: planner.settings().ownership(),
            planner,
            slots: Slots::default(),
            arena: Arena::default(),
            deferred: HashMap::new(),
            contested: HashMap::new(),
            addresses: BTreeMap::new(),
            foreign: HashMap::new(),
            listed_before: HashMap::new(),
            stale: Vec::new(),
            removed: HashSet::new(),
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

    fn route_of(&self, prefix: Ipv6Net, r: SlotRoute) -> Route {
        let s = self.planner.settings();
        let i = &self.planner.interfaces()[r.iface as usize];
        Route {
            prefix,
            gateway: r.gateway,
            interface: i.name.clone(),
            ifindex: i.index,
            table: s.table,
            protocol: s.protocol,
            metric: s.metric,
            expires: r.expires,
        }
    }

    /// The route slot `i` holds (as in the kernel when `Listed` or `Sent`).
    fn slot_route(&self, i: u32) -> Route {
        let s = &self.slots[i];
        self.route_of(s.prefix(), s.route)
    }

    fn key_of(&self, prefix: Ipv6Net) -> RouteKey {
        let s = self.planner.settings();
        RouteKey {
            table: s.table,
            prefix,
            metric: s.metric,
        }
    }

    /// A route of our table as listed at the start, as the one ownership
    /// rule ([`Ownership`]) sees it: ours goes into its slot (or among the
    /// stale ones when no slot can hold it: another metric, an interface
    /// that has gone); another's at our metric on a prefix a claim could
    /// name makes its slot `Kernel::Foreign`; every other route is none of
    /// our business.
    pub fn handle_listed(&mut self, t: TableRoute) {
        let metric = self.planner.settings().metric;
        if self.owner.owns(&t) {
            let Some(r) = t.as_route() else { return };
            let iface = self
                .planner
                .interfaces()
                .iter()
                .position(|i| i.index == r.ifindex);
            match iface {
                Some(iface) if r.metric == metric => self.list_ours(&r, iface as u32),
                _ => {
                    self.owned += 1;
                    self.stale.push(r);
                }
            }
        } else if t.metric == metric && self.owner.covers(&t.prefix) {
            self.list_foreign(t);
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
        let s = &mut self.slots[i];
        if s.kernel == Kernel::Listed {
            // Our route shares the key with another's: touch neither.
            self.owned -= 1;
        }
        s.kernel = Kernel::Foreign;
        self.foreign.insert(
            i,
            ForeignRoute {
                protocol: Some(t.protocol),
                gateway: t.gateway,
                interface: (!t.interface.is_empty()).then_some(t.interface),
                kind: Some(t.kind),
            },
        );
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
                    let obs = Observed {
                        server,
                        received,
                        binding: *b,
                    };
                    add_address(&mut self.addresses, obs);
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
    /// met someone else's route that came after the listing: it stays, as
    /// one listed would.
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
                        self.slots[i].kernel = Kernel::Foreign;
                        self.foreign.entry(i).or_insert(ForeignRoute {
                            protocol: None,
                            gateway: None,
                            interface: None,
                            kind: None,
                        });
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
                    latest_address(&self.addresses, &obs.binding.client_duid)
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
        let stale_out = self.stale_unheld();
        let report = prune::decide(
            rule,
            candidates.len() + stale_out.len(),
            self.owned,
            self.claims,
        );
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
        self.prune = report;
        report
    }

    /// The stale routes whose key does not hold a route of ours now (they
    /// are taken out of `stale`; the others stay).
    fn stale_unheld(&mut self) -> Vec<Route> {
        let stale = std::mem::take(&mut self.stale);
        let (held, out): (Vec<Route>, Vec<Route>) = stale.into_iter().partition(|r| {
            let k = r.key();
            let held = k == self.key_of(k.prefix)
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
    fn restore_listed(&mut self, candidates: &[u32]) {
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
    pub fn report(mut self) -> TableReport {
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
            prune: self.prune,
            ..Default::default()
        };
        self.count(&mut r);
        r
    }

    /// A refusal counts when its route is still not as wanted: a later try
    /// that went through clears it.
    fn surviving_failures(&mut self) -> Vec<RouteError> {
        let failed = std::mem::take(&mut self.failed);
        failed
            .into_iter()
            .filter(|(_, (c, _))| match c {
                Change::Remove(_) => true,
                Change::Add(r) | Change::Replace { new: r, .. } => {
                    match self.slots.find(&r.prefix) {
                        Some(i) => {
                            !matches!(self.slots[i].kernel, Kernel::Sent { .. })
                                || self.refused.contains(&i)
                                || self.slot_route(i) != *r
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
        r.moved.sort_by_key(|(old, _)| old.prefix);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_is_at_most_80_octets() {
        assert!(
            std::mem::size_of::<Slot>() <= 80,
            "{}",
            std::mem::size_of::<Slot>()
        );
    }
}
