//! Installing routes while the bindings stream in.
//!
//! The [`Installer`] takes each binding as it arrives (from any server, in
//! any order), reconciles it at once (RFC 5007 s.4.3.4, as
//! [`super::reconcile`] does: the most recent client transaction wins), and
//! when it becomes the best binding for its prefix queues an add or replace
//! of its route (replace semantics make a later, better binding simply
//! overwrite the route). Queued changes go to the table in batches, so routes
//! reach the kernel while the servers are still streaming.
//! [`Installer::finish`] then settles what streaming left open: prefixes
//! whose binding carries no relay data (the client's address may serve as
//! next hop, known only at the end), refused prefixes (reported with their
//! reason, and a route this run installed for them taken out again), routes
//! the table refused (one more try), and, only when every server answered
//! completely, the removal of our routes that no binding backs any more:
//! nothing already installed is lost because a server failed.
//!
//! # Storage
//! Bindings arrive as [`Claim`]s, made on the connection tasks with the route
//! already planned in the common case. Each delegated prefix gets one fixed-size
//! slot in a vector (prefix, rank of the best claim, its server and client,
//! the route as planned and as in the table, and the servers that agree on
//! it), found through a hash index of slot numbers; client DUIDs live in one
//! arena. Our routes listed at the start go into the same slots, so a
//! binding finds the route it may leave alone in the same lookup. About 100
//! octets per prefix in all, and no allocation per binding. Only the rare
//! cases keep more: whole bindings that must be planned at the end, the
//! claims on prefixes that servers dispute, addresses kept for the next-hop
//! fallback, and listed routes this run replaced (to report, or restore).

use super::claim::{Claim, ClaimMapper, Path, Planner};
use super::plan::{Interface, PlanSettings, Rejected};
use super::reconcile::{add_address, latest_address, Conflict, Millis, Observed};
use crate::proto::{Duid, LeaseKind};
use crate::routes::{
    errno, Change, Failure, Ownership, Route, RouteError, RouteKey, RouteTable, TableError,
    TableRoute,
};
use hashbrown::{DefaultHashBuilder, HashTable};
use ipnet::Ipv6Net;
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::BuildHasher;
use std::net::Ipv6Addr;
use std::sync::Arc;

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
    /// Prefixes a binding names whose key (table, prefix, metric) holds a
    /// route that is not ours: left alone.
    pub foreign_conflicts: Vec<ForeignConflict>,
    /// Our routes removed (or, in a dry run, that would be), as they were.
    pub removals: Vec<Route>,
    /// Our routes whose next hop or interface changed: (before, after).
    /// Routes whose lifetime alone changed are counted in `replaced` only.
    pub moved: Vec<(Route, Route)>,
    /// What became of pruning.
    pub prune: PruneReport,
}

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
    pub server: u16,
    /// The route in the way.
    pub foreign: ForeignRoute,
}

/// How far pruning may go (the prune rail): a share of our routes listed
/// at the start, or a number of routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PruneLimit {
    /// At most this share of our routes, in hundredths of a percent
    /// (`"10%"` is 1000).
    Share(u32),
    /// At most this many routes.
    Count(u64),
}

impl PruneLimit {
    /// Removing `remove` of our `ours` routes stays within the limit.
    pub fn allows(&self, remove: usize, ours: usize) -> bool {
        match *self {
            PruneLimit::Share(h) => (remove as u128) * 10_000 <= (ours as u128) * u128::from(h),
            PruneLimit::Count(n) => remove as u64 <= n,
        }
    }
}

impl std::fmt::Display for PruneLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            PruneLimit::Share(h) if h % 100 == 0 => write!(f, "{}%", h / 100),
            PruneLimit::Share(h) => write!(f, "{}.{:02}%", h / 100, h % 100),
            PruneLimit::Count(n) => write!(f, "{n}"),
        }
    }
}

/// Why pruning does not run this time although it is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PruneSkip {
    /// A server's answer was not whole.
    IncompleteAnswer,
    /// The run was stopped by a signal.
    Interrupted,
}

/// What the caller allows of pruning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PruneRule {
    /// Pruning is off (`prune = false`).
    Off,
    /// Not this time.
    Skip(PruneSkip),
    /// Remove our routes no binding backs, within `limit` unless `force`.
    Allowed {
        /// The rail.
        limit: PruneLimit,
        /// Past the rail for this run (`recover --force-prune`).
        force: bool,
    },
}

/// What became of pruning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PruneState {
    /// Off in the configuration.
    #[default]
    Off,
    /// Configured, but not this time.
    Skipped(PruneSkip),
    /// Refused by the rail: nothing was removed.
    Refused(PruneRefusal),
    /// Ran (possibly removing nothing).
    Done,
}

/// Why the rail refused a prune.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PruneRefusal {
    /// Every server answered with no binding at all.
    EmptyAnswer,
    /// It would remove more of our routes than the limit allows.
    OverLimit,
}

/// Pruning, as it went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PruneReport {
    /// What happened.
    pub state: PruneState,
    /// Our routes listed at the start.
    pub ours: usize,
    /// Our routes no binding backs: what pruning removed, or would have.
    pub candidates: usize,
    /// The rail, when pruning was allowed.
    pub limit: Option<PruneLimit>,
}

/// What is in the table for a slot's prefix, as far as this run knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    /// No route of ours.
    Untouched,
    /// The route listed at the start (`gateway`, `iface`, `k_expires`), untouched.
    Listed,
    /// The route this run put in (`gateway`, `iface`, `k_expires`).
    Ours,
    /// The table refused the slot's route: unknown.
    Failed,
    /// A route that is not ours holds the prefix at our table and metric
    /// (another protocol, or a shape we never install): never touched; a
    /// binding for the prefix is reported as a conflict with it.
    Foreign,
}

/// One delegated prefix: a binding names it, or one of our routes was
/// listed for it at the start, or both.
#[derive(Debug, Clone)]
struct Slot {
    /// The prefix's address (host bits clear), high and low halves.
    addr: [u64; 2],
    /// Rank of the best claim: when the client was last heard from, and
    /// when the lease runs out (ms on the recovery clock).
    last_tx: i64,
    expires: u64,
    /// While every claim names the best claim's client: bit s = server s
    /// made one. Once they differ, the claims are in `Installer::contested`.
    agree: u64,
    /// The route: as planned for the best claim when it is `via`, as in
    /// the table when `kernel` is `Listed` or `Ours`.
    gateway: [u64; 2],
    /// Position of the best claim's client DUID in the arena.
    client: u32,
    /// The route's interface: position in the planner's interfaces.
    iface: u32,
    /// The route's lifetime in the table, seconds (`None`: no expiry).
    k_expires: Option<u32>,
    /// Server of the best claim.
    server: u16,
    /// Prefix length.
    len: u8,
    /// A binding names the prefix (the rank, client and server are set).
    bound: bool,
    /// The best claim's route was planned on arrival; otherwise the whole
    /// binding is in `Installer::whole`.
    via: bool,
    /// One of our routes was listed for the prefix at the start.
    listed: bool,
    kernel: Kernel,
    contested: bool,
}

/// A route as a slot holds it: next hop, interface position, lifetime.
type SlotRoute = ([u64; 2], u32, Option<u32>);

fn split(a: Ipv6Addr) -> [u64; 2] {
    let v = u128::from(a);
    [(v >> 64) as u64, v as u64]
}

fn join(a: [u64; 2]) -> Ipv6Addr {
    Ipv6Addr::from((u128::from(a[0]) << 64) | u128::from(a[1]))
}

impl Slot {
    fn prefix(&self) -> Ipv6Net {
        Ipv6Net::new(join(self.addr), self.len).expect("length checked on arrival")
    }

    fn route(&self) -> SlotRoute {
        (self.gateway, self.iface, self.k_expires)
    }
}

/// Lifetimes within [`EXPIRY_SLACK`] seconds count as equal.
fn same_expiry(a: Option<u32>, b: Option<u32>) -> bool {
    crate::routes::same_lifetime(a, b, EXPIRY_SLACK)
}

fn same(a: SlotRoute, b: SlotRoute) -> bool {
    a.0 == b.0 && a.1 == b.1 && same_expiry(a.2, b.2)
}

#[cfg(test)]
fn same_route(a: &Route, b: &Route) -> bool {
    a.gateway == b.gateway && a.ifindex == b.ifindex && same_expiry(a.expires, b.expires)
}

fn remaining(expires: Millis, now: Millis) -> u32 {
    (expires.saturating_sub(now) / 1000).min(u64::from(u32::MAX)) as u32
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

/// The slot of the prefix `addr`/`len`, if any, and the prefix's hash.
fn find(
    slots: &[Slot],
    index: &HashTable<u32>,
    hasher: &DefaultHashBuilder,
    addr: [u64; 2],
    len: u8,
) -> (u64, Option<u32>) {
    let hash = hasher.hash_one((addr, len));
    let found = index
        .find(hash, |&i| {
            let s = &slots[i as usize];
            s.addr == addr && s.len == len
        })
        .copied();
    (hash, found)
}

/// A new, empty slot for the prefix `addr`/`len` whose hash is `hash`.
fn new_slot(
    slots: &mut Vec<Slot>,
    index: &mut HashTable<u32>,
    hasher: &DefaultHashBuilder,
    addr: [u64; 2],
    len: u8,
    hash: u64,
) -> u32 {
    let i = u32::try_from(slots.len()).expect("fewer than 2^32 prefixes");
    slots.push(Slot {
        addr,
        last_tx: 0,
        expires: 0,
        agree: 0,
        gateway: [0; 2],
        client: 0,
        iface: 0,
        k_expires: None,
        server: 0,
        len,
        bound: false,
        via: false,
        listed: false,
        kernel: Kernel::Untouched,
        contested: false,
    });
    index.insert_unique(hash, i, |&j| {
        let s = &slots[j as usize];
        hasher.hash_one((s.addr, s.len))
    });
    i
}

/// A route found in our table at the start, as the one ownership rule
/// ([`Ownership`]) sees it: ours goes into its slot (or among the stale
/// ones when no slot can hold it: another metric, an interface that has
/// gone); another's at our metric on a prefix a binding could name makes
/// its slot [`Kernel::Foreign`]; every other route is none of our business.
struct Listing<'a> {
    slots: &'a mut Vec<Slot>,
    index: &'a mut HashTable<u32>,
    hasher: &'a DefaultHashBuilder,
    planner: &'a Planner,
    owner: &'a Ownership,
    stale: &'a mut Vec<Route>,
    foreign: &'a mut HashMap<u32, ForeignRoute>,
    owned: &'a mut usize,
}

impl Listing<'_> {
    fn slot(&mut self, prefix: Ipv6Net) -> (u32, bool) {
        let (addr, len) = (split(prefix.addr()), prefix.prefix_len());
        match find(self.slots, self.index, self.hasher, addr, len) {
            (_, Some(i)) => (i, false),
            (hash, None) => (
                new_slot(self.slots, self.index, self.hasher, addr, len, hash),
                true,
            ),
        }
    }

    fn add(&mut self, t: TableRoute) {
        let metric = self.planner.settings().metric;
        if self.owner.owns(&t) {
            let Some(r) = t.as_route() else { return };
            *self.owned += 1;
            let iface = self
                .planner
                .interfaces()
                .iter()
                .position(|i| i.index == r.ifindex);
            match iface {
                Some(iface) if r.metric == metric => {
                    let (i, new) = self.slot(r.prefix);
                    let s = &mut self.slots[i as usize];
                    if !new {
                        // Another route already holds the key (an ECMP
                        // sibling of someone else's): leave both alone.
                        *self.owned -= 1;
                        return;
                    }
                    s.listed = true;
                    s.kernel = Kernel::Listed;
                    s.gateway = split(r.gateway);
                    s.iface = iface as u32;
                    s.k_expires = r.expires;
                }
                _ => self.stale.push(r),
            }
        } else if t.metric == metric && self.owner.covers(&t.prefix) {
            let (i, _) = self.slot(t.prefix.trunc());
            let s = &mut self.slots[i as usize];
            if s.listed {
                // Our route shares the key with another's: touch neither.
                s.listed = false;
                *self.owned -= 1;
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
    }
}

/// Streams bindings into a route table. See the module documentation.
pub struct Installer<T: RouteTable> {
    table: T,
    planner: Arc<Planner>,
    slots: Vec<Slot>,
    index: HashTable<u32>,
    hasher: DefaultHashBuilder,
    arena: Arena,
    /// The best claim of bound slots that are not `via`, whole.
    whole: HashMap<u32, Observed>,
    /// Every (server, client) that claimed a disputed prefix.
    contested: HashMap<u32, Vec<(u16, Duid)>>,
    /// Addresses (IA_NA), most recent first, for the next-hop fallback.
    addresses: BTreeMap<Duid, Vec<Observed>>,
    expired: usize,
    /// The listed route of slots whose route this run changed.
    listed_before: HashMap<u32, SlotRoute>,
    /// Routes of ours listed at the start that no slot can hold: another
    /// metric, or an interface that has gone.
    stale: Vec<Route>,
    /// Routes that are not ours at our key, by slot.
    foreign: HashMap<u32, ForeignRoute>,
    /// The ownership rule.
    owner: Ownership,
    /// Our routes listed at the start.
    owned: usize,
    /// Claims offered (expired ones too).
    claims: u64,
    /// Listed routes this run removed.
    removed: HashSet<RouteKey>,
    pending: Vec<Change>,
    batch: usize,
    failed: BTreeMap<RouteKey, Failure>,
    first_route_at: Option<Millis>,
    operations: usize,
    dry_run: bool,
    dry_run_changes: Vec<Change>,
}

impl<T: RouteTable> Installer<T> {
    /// Read the routes we own from `table` and get ready. With `dry_run`
    /// nothing is ever applied; the report says what would change.
    pub async fn start(
        table: T,
        settings: PlanSettings,
        interfaces: Vec<Interface>,
        dry_run: bool,
    ) -> Result<Self, TableError> {
        let table_id = settings.table;
        let owner = settings.ownership();
        let mut me = Installer {
            table,
            planner: Arc::new(Planner::new(settings, interfaces)),
            slots: Vec::new(),
            index: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
            arena: Arena::default(),
            whole: HashMap::new(),
            contested: HashMap::new(),
            addresses: BTreeMap::new(),
            expired: 0,
            listed_before: HashMap::new(),
            stale: Vec::new(),
            foreign: HashMap::new(),
            owner,
            owned: 0,
            claims: 0,
            removed: HashSet::new(),
            pending: Vec::new(),
            batch: DEFAULT_BATCH,
            failed: BTreeMap::new(),
            first_route_at: None,
            operations: 0,
            dry_run,
            dry_run_changes: Vec::new(),
        };
        // Each route goes into its slot as the dump is read.
        let mut listing = Listing {
            slots: &mut me.slots,
            index: &mut me.index,
            hasher: &me.hasher,
            planner: &me.planner,
            owner: &me.owner,
            stale: &mut me.stale,
            foreign: &mut me.foreign,
            owned: &mut me.owned,
        };
        me.table
            .list_table(table_id, &mut |r| listing.add(r))
            .await?;
        Ok(me)
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

    /// The mapper that makes [`Claim`]s for this installer on the
    /// connection tasks (see [`crate::requestor::Fanout::start`]).
    pub fn mapper(&self) -> ClaimMapper {
        ClaimMapper(self.planner.clone())
    }

    fn settings(&self) -> &PlanSettings {
        self.planner.settings()
    }

    fn key_of(&self, prefix: Ipv6Net) -> RouteKey {
        RouteKey {
            table: self.settings().table,
            prefix,
            metric: self.settings().metric,
        }
    }

    fn route(&self, prefix: Ipv6Net, r: SlotRoute) -> Route {
        let s = self.planner.settings();
        let i = &self.planner.interfaces()[r.1 as usize];
        Route {
            prefix,
            gateway: join(r.0),
            interface: i.name.clone(),
            ifindex: i.index,
            table: s.table,
            protocol: s.protocol,
            metric: s.metric,
            expires: r.2,
        }
    }

    /// The route in the table for slot `i` (when `Listed` or `Ours`).
    fn slot_route(&self, i: u32) -> Route {
        let s = &self.slots[i as usize];
        self.route(s.prefix(), s.route())
    }

    fn find(&self, addr: [u64; 2], len: u8) -> (u64, Option<u32>) {
        find(&self.slots, &self.index, &self.hasher, addr, len)
    }

    fn find_prefix(&self, p: &Ipv6Net) -> Option<u32> {
        self.find(split(p.addr()), p.prefix_len()).1
    }

    fn new_slot(&mut self, addr: [u64; 2], len: u8, hash: u64) -> u32 {
        new_slot(
            &mut self.slots,
            &mut self.index,
            &self.hasher,
            addr,
            len,
            hash,
        )
    }

    /// Slot `i`'s route becomes `gateway` out of `iface`, with the lifetime
    /// of its best claim: queue the change unless the table has it already.
    fn route_to(&mut self, i: u32, gateway: Ipv6Addr, iface: u32, now: Millis) {
        let s = &self.slots[i as usize];
        if s.kernel == Kernel::Foreign {
            // Never over a route that is not ours (reported at the end).
            return;
        }
        let new: SlotRoute = (split(gateway), iface, Some(remaining(s.expires, now)));
        let change = match s.kernel {
            Kernel::Listed | Kernel::Ours if same(s.route(), new) => return,
            Kernel::Listed | Kernel::Ours | Kernel::Failed
                if s.listed || s.kernel == Kernel::Ours =>
            {
                let old = self.slot_route(i);
                if s.kernel == Kernel::Listed {
                    self.listed_before.insert(i, s.route());
                }
                Change::Replace {
                    old,
                    new: self.route(s.prefix(), new),
                }
            }
            _ => Change::Add(self.route(s.prefix(), new)),
        };
        let s = &mut self.slots[i as usize];
        s.kernel = Kernel::Ours;
        (s.gateway, s.iface, s.k_expires) = new;
        self.pending.push(change);
    }

    /// Take one binding as reported by server `obs.server`; routes go out
    /// when a batch is full.
    pub async fn offer(&mut self, obs: Observed, now: Millis) -> Result<(), TableError> {
        let claim = self.planner.claim_owned(obs.binding);
        self.offer_claim(obs.server, obs.received, claim, now).await
    }

    /// Take one claim from `server` (its position in the configuration),
    /// received at `received`; routes go out when a batch is full.
    pub async fn offer_claim(
        &mut self,
        server: u16,
        received: Millis,
        claim: Claim,
        now: Millis,
    ) -> Result<(), TableError> {
        self.take(server, received, claim, now);
        if self.pending.len() >= self.batch {
            self.flush(now).await?;
        }
        Ok(())
    }

    fn take(&mut self, server: u16, received: Millis, claim: Claim, now: Millis) {
        self.claims += 1;
        let expires = received.saturating_add(u64::from(claim.valid_lifetime) * 1000);
        if claim.valid_lifetime == 0 || expires <= now {
            self.expired += 1;
            return;
        }
        let last_tx = received as i64 - i64::from(claim.clt_time) * 1000;
        let prefix = match claim.lease {
            LeaseKind::Prefix(p) => p.trunc(),
            LeaseKind::Address(_) => {
                if let Path::Whole(b) = claim.path {
                    add_address(
                        &mut self.addresses,
                        Observed {
                            server,
                            received,
                            binding: *b,
                        },
                    );
                }
                return;
            }
        };
        let (addr, len) = (split(prefix.addr()), prefix.prefix_len());
        let client = claim.client.as_bytes();
        let i = match self.find(addr, len) {
            (_, Some(i)) => i,
            (hash, None) => self.new_slot(addr, len, hash),
        };
        let s = &mut self.slots[i as usize];
        if !s.bound {
            // The first claim on the prefix.
            s.bound = true;
            if server < 64 {
                s.agree = 1 << server;
            } else {
                s.contested = true;
                self.contested
                    .insert(i, vec![(server, Duid::from_bytes(client))]);
            }
            let at = self.arena.push(client);
            self.set_best(i, server, received, last_tx, expires, at, claim, now);
            return;
        }
        // Who claims it (for the conflicts report).
        let best_client = self.arena.get(s.client);
        let same_client = best_client == client;
        if !s.contested && same_client && server < 64 {
            s.agree |= 1 << server;
        } else {
            let list = self.contested.entry(i).or_default();
            if !s.contested {
                s.contested = true;
                let agreed = Duid::from_bytes(best_client);
                list.extend(
                    (0..64u16)
                        .filter(|b| s.agree & (1 << b) != 0)
                        .map(|b| (b, agreed.clone())),
                );
            }
            if !list
                .iter()
                .any(|(sv, c)| *sv == server && c.as_bytes() == client)
            {
                list.push((server, Duid::from_bytes(client)));
            }
        }
        if self.better(i, server, last_tx, expires, &claim) != Ordering::Greater {
            return;
        }
        let at = if same_client {
            self.slots[i as usize].client
        } else {
            self.arena.push(client)
        };
        self.set_best(i, server, received, last_tx, expires, at, claim, now);
    }

    /// The claim becomes slot `i`'s best: its route is queued now, or,
    /// when it was kept whole, decided at the end (a route already in the
    /// table stays until then).
    #[allow(clippy::too_many_arguments)]
    fn set_best(
        &mut self,
        i: u32,
        server: u16,
        received: Millis,
        last_tx: i64,
        expires: u64,
        client_at: u32,
        claim: Claim,
        now: Millis,
    ) {
        let s = &mut self.slots[i as usize];
        s.last_tx = last_tx;
        s.expires = expires;
        s.server = server;
        s.client = client_at;
        match claim.path {
            Path::Via { gateway, iface } => {
                s.via = true;
                self.whole.remove(&i);
                self.route_to(i, gateway, iface, now);
            }
            Path::Whole(b) => {
                s.via = false;
                self.whole.insert(
                    i,
                    Observed {
                        server,
                        received,
                        binding: *b,
                    },
                );
            }
        }
    }

    /// How a new claim ranks against slot `i`'s best: greater is better.
    /// The same order as [`super::reconcile`]: the more recent client
    /// transaction, then the later expiry, then the server earlier in the
    /// configuration, then the smaller client DUID; past that (one server
    /// naming the same client twice, with the same times), the route's next
    /// hop and interface, then the whole binding, so that the winner never
    /// depends on the order of arrival.
    fn better(&self, i: u32, server: u16, last_tx: i64, expires: u64, c: &Claim) -> Ordering {
        let s = &self.slots[i as usize];
        last_tx
            .cmp(&s.last_tx)
            .then(expires.cmp(&s.expires))
            .then(s.server.cmp(&server))
            .then_with(|| self.arena.get(s.client).cmp(c.client.as_bytes()))
            .then_with(|| match (&c.path, s.via) {
                (Path::Via { gateway, iface }, true) => {
                    (join(s.gateway), s.iface).cmp(&(*gateway, *iface))
                }
                (Path::Via { .. }, false) => Ordering::Greater,
                (Path::Whole(_), true) => Ordering::Less,
                (Path::Whole(b), false) => match self.whole.get(&i) {
                    Some(o) => o.binding.cmp(b),
                    None => Ordering::Less,
                },
            })
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

    /// The table refused these: keep the books true (what is in the table)
    /// and remember the latest error per route.
    fn note_failures(&mut self, failures: Vec<Failure>) {
        for (c, e) in failures {
            let key = c.route().key();
            let slot = self.find_prefix(&key.prefix);
            match &c {
                Change::Add(r) | Change::Replace { new: r, .. } => {
                    // Only when it is still the latest route sent for the prefix.
                    if let Some(i) = slot {
                        if self.slots[i as usize].kernel == Kernel::Ours && self.slot_route(i) == *r
                        {
                            if matches!(c, Change::Add(_)) && e.errno == Some(errno::EEXIST) {
                                // Someone else's route took the key after the
                                // listing: it stays, as one listed would.
                                self.slots[i as usize].kernel = Kernel::Foreign;
                                self.foreign.entry(i).or_insert(ForeignRoute {
                                    protocol: None,
                                    gateway: None,
                                    interface: None,
                                    kind: None,
                                });
                                continue;
                            }
                            self.slots[i as usize].kernel = Kernel::Failed;
                        }
                    }
                }
                Change::Remove(_) => {
                    // Still there.
                    if self.removed.remove(&key) {
                        if let Some(i) = slot {
                            if self.slots[i as usize].listed {
                                self.slots[i as usize].kernel = Kernel::Listed;
                            }
                        }
                    }
                }
            }
            self.failed.insert(key, (c, e));
        }
    }

    /// Settle what streaming left open, apply it, and report. `prune`
    /// says whether our routes that no binding backs may be removed, and
    /// within which rail: the caller allows it only when every server
    /// answered completely, and the rail refuses an empty answer and a
    /// removal past its limit (unless forced).
    pub async fn finish(
        mut self,
        now: Millis,
        prune: PruneRule,
    ) -> Result<(InstallReport, T), TableError> {
        self.flush(now).await?;
        if !self.dry_run {
            let late = self.table.sync().await?;
            self.note_failures(late);
        }
        // Routes planned while streaming stand. Settle the rest: prefixes
        // kept whole (now that every client address is known), and the
        // ones whose route the table refused (one more try).
        let mut left: Vec<u32> = self.whole.keys().copied().collect();
        left.extend(
            self.slots
                .iter()
                .enumerate()
                .filter(|(_, s)| s.via && s.kernel == Kernel::Failed)
                .map(|(i, _)| i as u32),
        );
        left.sort_unstable_by_key(|&i| self.slots[i as usize].prefix());
        let mut rejected = Vec::new();
        let mut refused: HashSet<u32> = HashSet::new();
        for i in left {
            let s = &self.slots[i as usize];
            if s.via {
                let (gateway, iface) = (join(s.gateway), s.iface);
                self.route_to(i, gateway, iface, now);
            } else if let Some(obs) = self.whole.get(&i) {
                let addr = if obs.binding.relay.is_empty() {
                    latest_address(&self.addresses, &obs.binding.client_duid)
                } else {
                    None
                };
                let interfaces = self.planner.interfaces();
                match self.settings().route_for(obs, addr, interfaces, now) {
                    Ok(route) => {
                        let iface = interfaces
                            .iter()
                            .position(|x| x.index == route.ifindex)
                            .unwrap_or(0) as u32;
                        self.route_to(i, route.gateway, iface, now);
                    }
                    Err(reason) => {
                        refused.insert(i);
                        rejected.push(Rejected {
                            prefix: s.prefix(),
                            client: obs.binding.client_duid.clone(),
                            server: obs.server,
                            reason,
                        });
                    }
                }
            }
            if self.pending.len() >= self.batch {
                self.flush(now).await?;
            }
        }
        // Routes this run put in for prefixes that ended up refused come
        // out again. Listed routes no binding backs, and stale ones, are
        // the prune's candidates.
        let mut stray: Vec<Route> = Vec::new();
        let mut candidates: Vec<u32> = Vec::new();
        for i in 0..self.slots.len() as u32 {
            let s = &self.slots[i as usize];
            let unwanted = !s.bound || refused.contains(&i);
            if !unwanted || matches!(s.kernel, Kernel::Untouched | Kernel::Foreign) {
                continue;
            }
            if s.listed {
                candidates.push(i);
                continue;
            }
            stray.push(self.slot_route(i));
            self.slots[i as usize].kernel = Kernel::Untouched;
        }
        // Stale routes of ours, unless their key now holds a route of ours.
        let stale: Vec<Route> = std::mem::take(&mut self.stale);
        let (held, stale_out): (Vec<Route>, Vec<Route>) = stale.into_iter().partition(|r| {
            let k = r.key();
            k == self.key_of(k.prefix)
                && self
                    .find_prefix(&k.prefix)
                    .is_some_and(|i| self.slots[i as usize].kernel != Kernel::Untouched)
        });
        self.stale = held;
        let prune_report = self.prune_decision(prune, candidates.len() + stale_out.len());
        let mut removals = Vec::new();
        if prune_report.state == PruneState::Done {
            for &i in &candidates {
                let r = self.slot_route(i);
                self.removed.insert(r.key());
                removals.push(r.clone());
                stray.push(r);
                self.slots[i as usize].kernel = Kernel::Untouched;
            }
            for r in stale_out {
                self.removed.insert(r.key());
                removals.push(r.clone());
                stray.push(r);
            }
        } else {
            for &i in &candidates {
                // Left in place: as it was listed, if this run changed it.
                let s = &self.slots[i as usize];
                if let (Kernel::Ours | Kernel::Failed, Some(&before)) =
                    (s.kernel, self.listed_before.get(&i))
                {
                    let (old, new) = (self.slot_route(i), self.route(s.prefix(), before));
                    self.pending.push(Change::Replace { old, new });
                    let s = &mut self.slots[i as usize];
                    (s.gateway, s.iface, s.k_expires) = before;
                    s.kernel = Kernel::Listed;
                }
            }
            self.stale.extend(stale_out);
        }
        for r in &removals {
            tracing::info!(
                prefix = %r.prefix,
                via = %r.gateway,
                dev = %r.interface,
                dry_run = self.dry_run,
                "removing our route: no binding backs it"
            );
        }
        stray.sort_unstable_by_key(Route::key);
        self.pending.extend(stray.into_iter().map(Change::Remove));
        self.flush(now).await?;
        if !self.dry_run {
            let late = self.table.sync().await?;
            self.note_failures(late);
        }
        // A failure counts when its route is still not as wanted: a later
        // try that went through clears it.
        let failed_map = std::mem::take(&mut self.failed);
        let failed: Vec<RouteError> = failed_map
            .into_iter()
            .filter(|(_, (c, _))| match c {
                Change::Remove(_) => true,
                Change::Add(r) | Change::Replace { new: r, .. } => {
                    match self.find_prefix(&r.prefix) {
                        Some(i) => {
                            self.slots[i as usize].kernel != Kernel::Ours
                                || refused.contains(&i)
                                || self.slot_route(i) != *r
                        }
                        None => true,
                    }
                }
            })
            .map(|(_, (_, e))| e)
            .collect();
        let foreign_conflicts = self.foreign_conflicts(&refused);
        let bound = self.slots.iter().filter(|s| s.bound).count();
        let mut report = InstallReport {
            conflicts: self.conflicts(),
            expired: self.expired,
            planned: bound - rejected.len() - foreign_conflicts.len(),
            rejected,
            failed,
            first_route_at: self.first_route_at,
            operations: self.operations,
            pruned: prune_report.state == PruneState::Done,
            dry_run_changes: std::mem::take(&mut self.dry_run_changes),
            foreign_conflicts,
            removals,
            prune: prune_report,
            ..Default::default()
        };
        // Net effect against the routes listed at the start.
        for (i, s) in self.slots.iter().enumerate() {
            match (s.kernel, s.listed) {
                (Kernel::Ours, false) => report.added += 1,
                (Kernel::Ours, true) => match self.listed_before.get(&(i as u32)) {
                    Some(&before) if !same(before, s.route()) => {
                        report.replaced += 1;
                        if (before.0, before.1) != (s.gateway, s.iface) {
                            let old = self.route(s.prefix(), before);
                            report.moved.push((old, self.route(s.prefix(), s.route())));
                        }
                    }
                    _ => report.unchanged += 1,
                },
                // A listed route left as it was (or whose replacement failed).
                (Kernel::Listed | Kernel::Failed, true) => report.unchanged += 1,
                _ => {}
            }
        }
        report.moved.sort_by_key(|(old, _)| old.prefix);
        for (old, new) in &report.moved {
            tracing::info!(
                prefix = %new.prefix,
                old_via = %old.gateway,
                old_dev = %old.interface,
                via = %new.gateway,
                dev = %new.interface,
                dry_run = self.dry_run,
                "replacing our route: the client moved"
            );
        }
        for c in &report.foreign_conflicts {
            tracing::warn!(
                prefix = %c.prefix,
                protocol = ?c.foreign.protocol,
                via = ?c.foreign.gateway,
                "leaving a route that is not ours in place of a delegated prefix's"
            );
        }
        report.unchanged += self.stale.len();
        report.removed = self.removed.len();
        Ok((report, self.table))
    }

    /// Apply the rail to a prune that would remove `candidates` routes.
    fn prune_decision(&self, rule: PruneRule, candidates: usize) -> PruneReport {
        let mut r = PruneReport {
            state: PruneState::Done,
            ours: self.owned,
            candidates,
            limit: None,
        };
        match rule {
            PruneRule::Off => r.state = PruneState::Off,
            PruneRule::Skip(why) => r.state = PruneState::Skipped(why),
            PruneRule::Allowed { limit, force } => {
                r.limit = Some(limit);
                if candidates > 0 && !force {
                    if self.claims == 0 {
                        r.state = PruneState::Refused(PruneRefusal::EmptyAnswer);
                    } else if !limit.allows(candidates, self.owned) {
                        r.state = PruneState::Refused(PruneRefusal::OverLimit);
                    }
                }
            }
        }
        r
    }

    /// Bound prefixes whose route would take a foreign route's key, with the
    /// winning claim's client and server, sorted by prefix. Refused
    /// prefixes are reported as refused instead.
    fn foreign_conflicts(&self, refused: &HashSet<u32>) -> Vec<ForeignConflict> {
        let mut out: Vec<ForeignConflict> = self
            .foreign
            .iter()
            .filter(|(i, _)| {
                let s = &self.slots[**i as usize];
                s.bound && s.kernel == Kernel::Foreign && !refused.contains(i)
            })
            .map(|(&i, f)| {
                let s = &self.slots[i as usize];
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
            let s = &self.slots[i as usize];
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
    use super::super::plan::NextHopFallback;
    use super::super::reconcile::tests::pd;
    use super::*;
    use crate::proto::RelayLayer;
    use crate::routes::MemoryTable;
    use proptest::prelude::*;
    use std::net::Ipv6Addr;

    use super::super::plan::tests::OURS;

    /// The planning tests' settings, without the interface-id mapping, with
    /// the next-hop fallback.
    fn settings() -> PlanSettings {
        let mut s = super::super::plan::tests::settings();
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
            assert_eq!(report.added, 1, "only the free prefix");
            assert_eq!(report.removed, 0);
            assert_eq!(report.planned, 1);
            assert_eq!(report.foreign_conflicts.len(), 1);
            let c = &report.foreign_conflicts[0];
            assert_eq!(c.prefix, stat.prefix);
            assert_eq!(c.foreign.protocol, Some(4));
            assert_eq!(c.foreign.gateway, Some(stat.gateway));
            assert_eq!(c.foreign.interface.as_deref(), Some("veth-c1"));
            assert_eq!(report.prune.ours, 0);
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
            assert!(report.failed.is_empty(), "{:?}", report.failed);
            assert_eq!(report.added, 0);
            assert_eq!(report.foreign_conflicts.len(), 1);
            assert_eq!(report.foreign_conflicts[0].foreign.protocol, None);
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
                report.prune.state,
                PruneState::Refused(PruneRefusal::EmptyAnswer)
            );
            assert_eq!((report.prune.ours, report.prune.candidates), (100, 100));
            assert_eq!((report.removed, kept.routes().count()), (0, 100));
            assert!(!report.pruned);
            assert!(report.removals.is_empty());
            // 5 of 100: a removal of 95% is over the 10% rail.
            let five: Vec<Observed> = (0..5).map(|n| obs(0, n, "fe80::1", 5)).collect();
            let (report, kept) = run_rule(t.clone(), five.clone(), RAIL).await;
            assert_eq!(
                report.prune.state,
                PruneState::Refused(PruneRefusal::OverLimit)
            );
            assert_eq!(report.prune.candidates, 95);
            assert_eq!((report.removed, kept.routes().count()), (0, 100));
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
            assert_eq!(report.prune.state, PruneState::Done);
            assert_eq!((report.removed, pruned.routes().count()), (95, 5));
            assert_eq!(report.removals.len(), 95);
            assert_eq!(report.removals[0], kroute(5, "fe80::1", 16));
            let (report, pruned) = run_rule(
                t.clone(),
                vec![],
                PruneRule::Allowed {
                    limit: PruneLimit::Share(1000),
                    force: true,
                },
            )
            .await;
            assert_eq!(report.prune.state, PruneState::Done);
            assert_eq!((report.removed, pruned.routes().count()), (100, 0));
            // 95 of 100 answered: 5% is within the rail.
            let most: Vec<Observed> = (0..95).map(|n| obs(0, n, "fe80::1", 5)).collect();
            let (report, pruned) = run_rule(t.clone(), most, RAIL).await;
            assert_eq!(report.prune.state, PruneState::Done);
            assert_eq!((report.removed, pruned.routes().count()), (5, 95));
            // Skipped and off: the same as before, nothing removed.
            let (report, kept) = run_rule(
                t.clone(),
                five.clone(),
                PruneRule::Skip(PruneSkip::IncompleteAnswer),
            )
            .await;
            assert_eq!(
                report.prune.state,
                PruneState::Skipped(PruneSkip::IncompleteAnswer)
            );
            assert_eq!(kept.routes().count(), 100);
            let (report, kept) = run_rule(t, five, PruneRule::Off).await;
            assert_eq!(report.prune.state, PruneState::Off);
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
            assert_eq!(report.replaced, 2);
            assert_eq!(report.moved.len(), 1);
            let (old, new) = &report.moved[0];
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
    fn long_client_duids_are_kept_whole() {
        block_on(async {
            // Longer than the inline form, and than one length octet.
            let mut a = obs(0, 1, "fe80::1", 5);
            a.binding.client_duid = Duid::from_bytes(vec![7; 300]);
            let mut b = obs(1, 1, "fe80::2", 50);
            b.binding.client_duid = Duid::from_bytes(vec![8; 200]);
            let (report, table) = run(MemoryTable::new(), vec![a, b], true, 1).await;
            assert_eq!(table.routes().count(), 1);
            assert_eq!(report.conflicts.len(), 1);
            let c = &report.conflicts[0];
            assert_eq!(c.winner, (0, Duid::from_bytes(vec![7; 300])));
            assert_eq!(c.loser, (1, Duid::from_bytes(vec![8; 200])));
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
            let reference = super::super::reconcile::reconcile(second.clone(), now);
            let plan = settings().plan(&reference, &interfaces(), now);
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
                (report.added, report.replaced, report.removed, report.unchanged),
                (counts.0, counts.1, counts.2, d.unchanged + left_alone)
            );
        }


        /// The installer's routes, refusals, conflicts and expiries are
        /// those of the reference: reconcile everything, then plan.
        #[test]
        fn installer_matches_reconcile_then_plan(all in arb_observed(), batch in 1usize..8) {
            let now = 2500;
            let reference = super::super::reconcile::reconcile(all.clone(), now);
            let plan = settings().plan(&reference, &interfaces(), now);
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
            let mut rejected = report.rejected.clone();
            rejected.sort_by_key(|r| r.prefix);
            prop_assert_eq!(rejected, plan.rejected);
            prop_assert_eq!(report.conflicts, reference.conflicts);
            prop_assert_eq!(report.expired, reference.expired);
            prop_assert_eq!(report.planned, plan.routes.len());
            prop_assert_eq!(report.added, plan.routes.len());
        }
    }
}
