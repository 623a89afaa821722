//! The sans-IO core of `pdrestore follow`: what the relay saw, in, route
//! changes, out.
//!
//! [`FollowCore`] is shaped like quinn-proto's connection: every input is a
//! `handle_*` call with the time as an argument (a snooped REPLY, RELEASE
//! or forgery; a link or route event; the failure of a change it asked
//! for; the kernel's table after lost events; the start and end of a
//! resync; a timeout), and every output is polled: the route changes to
//! make ([`FollowCore::poll_change`]), the things worth a log line
//! ([`FollowCore::poll_event`]), what it needs the shell to do
//! ([`FollowCore::poll_need`]: the interfaces, a resync) and when it next
//! needs [`FollowCore::handle_timeout`] ([`FollowCore::poll_timeout`], the
//! earliest deadline of its one timer table). It never reads a clock or a
//! socket, so every rule is unit-tested on made-up instants.
//!
//! Files: `store` (the followed prefixes and their expiry histogram),
//! `snooped` (REPLYs and forgeries), `release` (RELEASE/DECLINE matching),
//! `kernel` (interfaces, link and route events, failures, deletes decided
//! after the settle time), `resync` (the schedule and the merge of a
//! resync with snooping), `timers` (the clock and the timer table),
//! `events` (what it hands out).
//!
//! # The rules (RFC 8987 s.4, RFC 8415 s.18)
//! - **A REPLY leaving the router** on a client-facing interface with an
//!   IA_PD (RFC 8415 s.21.21) and IAPREFIX options (s.21.22): a valid
//!   lifetime above 0 installs or refreshes `prefix via <client> dev
//!   <interface> expires <valid>` (RFC 8987 s.4, requirement R-3: the route
//!   follows the lease); a valid lifetime of 0 removes it (RFC 8415
//!   s.18.2.10.1: the prefix is no longer valid) when it is ours. The client
//!   is the REPLY's destination, or the peer-address of the innermost relay
//!   layer of a RELAY-REPL to a lightweight relay (RFC 6221 s.5.3.2).
//! - **A RELEASE or DECLINE** from a client (RFC 8415 s.18.2.7, s.18.2.8)
//!   is kept as pending, bounded and for [`CoreSettings::release_timeout`]
//!   (RFC 8415 s.7.6: REL_MAX_RC retransmissions); the server's REPLY with
//!   the same transaction-id and client DUID and status Success (s.18.3.7,
//!   s.18.3.8) removes the prefixes it named, except those of an IA_PD the
//!   REPLY answers with NoBinding.
//! - **Every route** passes [`crate::recovery::planner::Planner::plan_on`] (the pools, the lengths,
//!   the next hop link-local or on-link, not covering a local prefix), the
//!   very rules of `recover`; a refusal is an event with its reason code.
//! - **Ownership** ([`crate::routes::Ownership`]): a route of our protocol
//!   in our table inside the pools is ours, at any metric, whoever put it
//!   there. A new prefix is added create-exclusive; an add that meets
//!   EEXIST has the table read ([`Need::Inspect`]): a route of ours there
//!   is adopted (replaced with what snooping says), another's is foreign:
//!   left in place, counted, never touched. A valid lifetime of 0 removes
//!   a route of ours the core did not follow too.
//! - **Links**: routes the kernel drops with an interface going down are
//!   reinstalled when it comes back up (RFC 8987 s.4, R-5: routes survive
//!   a link flap). A route of ours deleted by someone else, while its
//!   interface stayed up and before it expired, is forgotten (the operator
//!   is not fought; the next resync decides). One whose lease ran out is
//!   removed at the end of its 8 s expiry bucket and counted as expired.
//! - **Resync**: a Bulk Leasequery resync is due every
//!   [`CoreSettings::resync_interval`] (with jitter) and on request, never
//!   sooner than [`CoreSettings::min_resync_spacing`] after the last one.
//!   It runs beside snooping, which goes on routing; at its end
//!   [`FollowCore::handle_resync_finished`] rebuilds the state from our
//!   routes in the kernel and lays on top what snooping learned that the
//!   resync could not know (see its documentation).
//! - **Near expiry** (`confirm`): a prefix entering its last
//!   [`CoreSettings::confirm_before`] with no renewal seen is asked about
//!   alone ([`Need::Confirm`]: QUERY_BY_ADDRESS, RFC 5007 s.4.1.2.1, over
//!   the bulk connection, RFC 5460 s.6), batched and rate-limited; a later
//!   expiry a server holds extends the route, else it runs out.
//!
//! # State, and its size
//! One hash map entry per followed prefix: the key (17 octets: address and
//! length) and a value of 32 octets (next hop, interface
//! slot, absolute expiry and last client transaction in seconds of the
//! core's clock, a fingerprint of the client DUID, flags, a server slot):
//! 52 octets a bucket, under 100 octets a prefix with the map's load factor
//! and control bytes; no allocation per entry. Pending releases, deferred
//! deletes and queued changes are bounded queues. The client DUIDs behind
//! the fingerprints (`clients`, for the live view) are one arena and one
//! table of offsets: 1 + its length octets a client in the arena, about 5
//! in the table; compacted to the fingerprints the entries still hold at
//! the end of each resync and when they outnumber twice the followed
//! prefixes. `snapshot` copies what the live view lists.

use crate::proto::Duid;
use crate::recovery::planner::Planner;
use crate::recovery::settings::PlanSettings;
use crate::routes::{Change, Interface, Ownership, Route};
use hashbrown::{HashMap, HashSet};
use ipnet::Ipv6Net;
use kernel::Slot;
use release::Pending;
use std::collections::VecDeque;
use std::net::Ipv6Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::{Entry, PKey, Store, NEVER};
use timers::{Clock, Timer, TimerTable};

mod clients;
mod confirm;
mod events;
mod kernel;
mod release;
mod resync;
mod snapshot;
mod snooped;
mod store;
mod timers;

pub use events::{Counters, FollowEvent, Need, RouteChange, Why};
pub use snapshot::{RouteState, Snapshot, SnapshotFilter, SnapshotRoute};

/// Events queued for the log at most; more are counted as suppressed.
const MAX_EVENTS: usize = 4096;

/// Settings of the core.
#[derive(Debug, Clone)]
pub struct CoreSettings {
    /// Most prefixes followed at once (`[follow] max_prefixes`).
    pub max_prefixes: usize,
    /// Most RELEASE/DECLINE messages waiting for the server's REPLY.
    pub max_pending_releases: usize,
    /// How long a RELEASE/DECLINE waits for its REPLY.
    pub release_timeout: Duration,
    /// Resync every this long (`[follow] resync_interval`).
    pub resync_interval: Duration,
    /// Share of the interval added or taken at random (0.1: +-10%).
    pub resync_jitter: f64,
    /// No resync starts sooner than this after the previous one ended,
    /// whatever asks for it (`[follow] min_resync_interval`).
    pub min_resync_spacing: Duration,
    /// A followed prefix whose lease runs out within this long, with no
    /// renewal seen, is asked about (`[follow] confirm_before`).
    pub confirm_before: Duration,
    /// Targeted queries per minute at most (`[follow] confirm_per_minute`).
    pub confirm_per_minute: u32,
    /// Prefixes asked about in one batch at most.
    pub confirm_batch: usize,
    /// A failed resync is tried again after this long (or the interval,
    /// if shorter).
    pub resync_retry: Duration,
    /// How long a kernel delete of one of our routes waits for the link
    /// event that explains it (the kernel may send the route deletes before
    /// the link's own notification).
    pub settle: Duration,
    /// Seed of the jitter (tests fix it).
    pub seed: u64,
}

impl Default for CoreSettings {
    fn default() -> Self {
        CoreSettings {
            max_prefixes: 1_000_000,
            max_pending_releases: 1024,
            release_timeout: Duration::from_secs(60),
            resync_interval: Duration::from_secs(3600),
            resync_jitter: 0.1,
            min_resync_spacing: Duration::from_secs(300),
            confirm_before: Duration::from_secs(300),
            confirm_per_minute: 600,
            confirm_batch: 64,
            resync_retry: Duration::from_secs(300),
            settle: Duration::from_millis(500),
            seed: 0x5eed,
        }
    }
}

/// The sans-IO core of `pdrestore follow`. See the [module documentation](self).
#[derive(Debug)]
pub struct FollowCore {
    clock: Clock,
    settings: CoreSettings,
    planner: Planner,
    owner: Ownership,
    slots: Vec<Slot>,
    store: Store,
    foreign: HashSet<PKey>,
    /// A resync was asked for (SIGHUP): due once the floor has passed.
    resync_requested: bool,
    /// The resync deadline the interval sets, seconds of the core's clock.
    scheduled: u32,
    /// No resync before this (seconds).
    not_before: u32,
    /// Running resync: when it started (seconds + 1, as `Entry::seen`).
    resync_from: Option<u32>,
    /// Removals learned during a resync, replayed after it.
    tombstones: HashMap<PKey, Why>,
    pending: VecDeque<Pending>,
    /// Kernel deletes of our routes waiting for the settle time, with when
    /// they came (ms).
    gone: VecDeque<(PKey, u64)>,
    servers: Vec<Duid>,
    /// The client DUIDs of the entries' fingerprints, for the live view.
    clients: clients::ClientDuids,
    timers: TimerTable,
    out: VecDeque<RouteChange>,
    events: VecDeque<FollowEvent>,
    needs: VecDeque<Need>,
    /// [`Need::Interfaces`] is out and not answered yet.
    asked_interfaces: bool,
    /// [`Need::Resync`] is out and no resync has started since.
    asked_resync: bool,
    /// Link events for interfaces the core did not know, taken when the
    /// interfaces come.
    waiting_links: Vec<(u32, Arc<str>, bool)>,
    /// Prefixes whose add met a route the core does not know (EEXIST).
    inspect: HashSet<PKey>,
    /// [`Need::Inspect`] is out and not answered yet.
    asked_inspect: bool,
    /// The targeted queries (near expiry): what is to ask, the budget.
    confirm: confirm::Confirm,
    counters: Counters,
    rng: fastrand::Rng,
}

impl FollowCore {
    /// A core at `now` planning with `plan` over `interfaces` (as
    /// [`crate::routes::NetlinkTable::interfaces`] gives them), every
    /// interface taken as up until a link event says otherwise.
    pub fn new(
        settings: CoreSettings,
        plan: PlanSettings,
        interfaces: Vec<Interface>,
        now: Instant,
    ) -> Self {
        let rng = fastrand::Rng::with_seed(settings.seed);
        let mut core = FollowCore {
            clock: Clock::new(now),
            owner: plan.owner.clone(),
            planner: Planner::new(plan, Vec::new()),
            slots: Vec::new(),
            store: Store::default(),
            foreign: HashSet::new(),
            resync_requested: false,
            scheduled: 0,
            not_before: 0,
            resync_from: None,
            tombstones: HashMap::new(),
            pending: VecDeque::new(),
            gone: VecDeque::new(),
            servers: Vec::new(),
            clients: clients::ClientDuids::default(),
            timers: TimerTable::default(),
            out: VecDeque::new(),
            events: VecDeque::new(),
            needs: VecDeque::new(),
            asked_interfaces: false,
            asked_resync: false,
            waiting_links: Vec::new(),
            inspect: HashSet::new(),
            asked_inspect: false,
            confirm: confirm::Confirm::new(now),
            counters: Counters::default(),
            rng,
            settings,
        };
        core.handle_interfaces(now, interfaces);
        core.schedule(now, true);
        core.refresh_timers();
        core
    }

    // ----- time -----

    /// Let time pass: the timers that are due fire (deletes decided after
    /// the settle time, unanswered releases forgotten, expired prefixes
    /// forgotten, a resync asked for). Call at [`FollowCore::poll_timeout`]
    /// (earlier is harmless).
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<Timer> = self.timers.expired(self.clock.ms(now)).collect();
        for t in due {
            match t {
                Timer::Settle => self.settle_deletes(now),
                Timer::Release => self.expire_releases(now),
                Timer::Expiry => self.sweep(now),
                Timer::Confirm => self.confirm_due(now),
                Timer::Resync => {
                    self.asked_resync = true;
                    self.needs.push_back(Need::Resync);
                }
            }
        }
        self.refresh_timers();
    }

    /// Set every timer from the state: the resync deadline (unless a
    /// resync runs or is asked for), the oldest delete waiting to settle,
    /// the oldest pending release, the end of the earliest expiry bucket.
    fn refresh_timers(&mut self) {
        let settle = self.settings.settle.as_millis() as u64;
        let release = self.settings.release_timeout.as_millis() as u64;
        let resync =
            (self.resync_from.is_none() && !self.asked_resync).then(|| self.resync_deadline_ms());
        self.timers.set(Timer::Resync, resync);
        self.timers
            .set(Timer::Settle, self.gone.front().map(|&(_, at)| at + settle));
        self.timers.set(
            Timer::Release,
            self.pending.front().map(|p| p.at_ms + release),
        );
        let expiry = self
            .store
            .first_bucket_end()
            .map(|s| s.saturating_mul(1000));
        self.timers.set(Timer::Expiry, expiry);
        let confirm = self.confirm_deadline_ms();
        self.timers.set(Timer::Confirm, confirm);
    }

    /// Forget every followed prefix whose lifetime has run out, and remove
    /// its route at once (not at the kernel's garbage collection, which
    /// keeps an expired route listed, and advertised, for up to half a
    /// minute).
    fn sweep(&mut self, now: Instant) {
        for (k, e) in self.store.sweep(self.clock.secs(now)) {
            self.counters.expired += 1;
            if e.installed() {
                let r = self.route(&k, &e, now);
                self.emit(Change::Remove(r), Why::Expired);
            }
        }
    }

    // ----- output -----

    /// The route of entry `e` at `k`, with the lifetime left at `now`.
    fn route(&self, k: &PKey, e: &Entry, now: Instant) -> Route {
        let slot = &self.slots[usize::from(e.slot)];
        let t = self.clock.secs(now);
        let expires = (e.expires != NEVER).then(|| e.expires.saturating_sub(t).max(1));
        self.owner.route(
            k.net(),
            Ipv6Addr::from(e.gateway),
            slot.name.clone(),
            slot.index,
            expires,
        )
    }

    fn forget(&mut self, k: &PKey) {
        self.store.remove(k);
    }

    /// Keep only the client DUIDs the followed prefixes refer to.
    fn compact_clients(&mut self) {
        self.clients = self
            .clients
            .retain(self.store.iter().map(|(_, e)| e.client));
    }

    fn emit(&mut self, change: Change, why: Why) {
        let c = &mut self.counters;
        match (&change, why) {
            (Change::Add(_), Why::LinkUp) => c.relinked += 1,
            (Change::Add(_), _) => c.added += 1,
            (Change::Replace { .. }, Why::Moved) => c.moved += 1,
            (Change::Replace { .. }, Why::Adopted) => c.adopted += 1,
            (Change::Replace { .. }, Why::Confirmed) => c.confirmed += 1,
            (Change::Replace { .. }, _) => c.refreshed += 1,
            // Counted where the lease is found expired.
            (Change::Remove(_), Why::Expired) => {}
            (Change::Remove(_), _) => c.removed += 1,
        }
        self.out.push_back(RouteChange { change, why });
    }

    fn event(&mut self, e: FollowEvent) {
        if self.events.len() >= MAX_EVENTS {
            self.counters.events_suppressed += 1;
        } else {
            self.events.push_back(e);
        }
    }

    fn ignore(&mut self, prefix: Option<Ipv6Net>, code: &'static str) {
        self.counters.ignored += 1;
        self.event(FollowEvent::Ignored { prefix, code });
    }

    /// The next route change to make. Call after every `handle_*`, until
    /// `None`.
    pub fn poll_change(&mut self) -> Option<RouteChange> {
        let c = self.out.pop_front();
        if c.is_none() && self.out.capacity() > 4096 {
            // A storm's queue is not kept once it is drained.
            self.out.shrink_to(256);
        }
        c
    }

    /// The next thing worth a log line. Call after every `handle_*`.
    pub fn poll_event(&mut self) -> Option<FollowEvent> {
        self.events.pop_front()
    }

    /// What the core needs the shell to do next. Call after every
    /// `handle_*`.
    pub fn poll_need(&mut self) -> Option<Need> {
        self.needs.pop_front()
    }

    /// When the core next needs [`FollowCore::handle_timeout`]: the
    /// earliest deadline of its timer table.
    pub fn poll_timeout(&self) -> Instant {
        let never = u64::from(NEVER) * 1000;
        self.clock.at_ms(self.timers.next().unwrap_or(never))
    }

    // ----- what it knows -----

    /// The counters since start.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Prefixes followed now.
    pub fn followed(&self) -> usize {
        self.store.len()
    }

    /// Prefixes known to hold a foreign route at our key.
    pub fn foreign_prefixes(&self) -> usize {
        self.foreign.len()
    }

    /// RELEASE/DECLINE messages waiting for their REPLY.
    pub fn pending_releases(&self) -> usize {
        self.pending.len()
    }

    /// The followed route of `prefix`, as it would be installed now.
    pub fn route_of(&self, prefix: &Ipv6Net, now: Instant) -> Option<Route> {
        let k = PKey::of(prefix);
        self.store.get(&k).map(|e| self.route(&k, &e, now))
    }

    /// The interface slots the core knows, as (name, index, up).
    pub fn links(&self) -> impl Iterator<Item = (&str, u32, bool)> {
        self.slots.iter().map(|s| (&*s.name, s.index, s.up))
    }

    /// Octets the core's tables hold now (capacity, not length: what the
    /// allocator gave), for the benchmark and STATUS.
    pub fn footprint(&self) -> usize {
        self.store.footprint()
            + self.foreign.capacity() * (std::mem::size_of::<PKey>() + 1)
            + self.tombstones.capacity() * (std::mem::size_of::<(PKey, Why)>() + 1)
            + self.gone.capacity() * std::mem::size_of::<(PKey, u64)>()
            + self.clients.footprint()
    }
}

#[cfg(test)]
mod tests;
