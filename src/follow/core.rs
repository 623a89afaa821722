//! The sans-IO core of `pdrestore follow`: what the relay saw, in, route
//! changes, out.
//!
//! [`FollowCore`] is fed what the shell observes (snooped DHCPv6 messages,
//! rtnetlink link and route events, the failures of the route changes it
//! asked for, the kernel's table after a resync) together with the time, and
//! hands back, `poll`-style, the route changes to make
//! ([`FollowCore::poll_change`]), the things worth a log line
//! ([`FollowCore::poll_event`]) and when it next needs to be woken
//! ([`FollowCore::poll_timeout`]). It never reads a clock or a socket, so
//! every rule is unit-tested on made-up instants.
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
//! - **Every route** passes [`Planner::plan_on`] (the pools, the lengths,
//!   the next hop link-local or on-link, not covering a local prefix), the
//!   very rules of `recover`; a refusal is an event with its reason code.
//! - **Ownership** ([`Ownership`]): only a route the core knows to be ours
//!   (added by it, or listed as ours from the kernel) is ever replaced or
//!   removed; a new prefix is added create-exclusive, and an add that meets
//!   EEXIST, or a route of another protocol at our key, is foreign: left in
//!   place, counted, and never touched.
//! - **Links**: routes the kernel drops with an interface going down are
//!   reinstalled when it comes back up (RFC 8987 s.4, R-5: routes survive
//!   a link flap). A route of ours deleted by someone else, while its
//!   interface stayed up and before it expired, is forgotten (the operator
//!   is not fought; the next resync decides).
//! - **Resync**: a Bulk Leasequery resync is due every
//!   [`CoreSettings::resync_interval`] (with jitter), and never later than
//!   half the shortest remaining valid lifetime seen since the last one.
//!   While it runs the core keeps learning but holds its changes; after it,
//!   [`FollowCore::finish_resync`] rebuilds the state from our routes in the
//!   kernel and lays on top what snooping learned that the resync could not
//!   know (see its documentation).
//!
//! # State, and its size
//! One hash map entry per followed prefix: the key (17 octets: address and
//! length) and a value of 32 octets (next hop, interface
//! slot, absolute expiry and last client transaction in seconds of the
//! core's clock, a fingerprint of the client DUID, flags, a server slot):
//! 52 octets a bucket, under 100 octets a prefix with the map's load factor
//! and control bytes; no allocation per entry. Pending releases, deferred
//! deletes and queued changes are bounded queues.

use crate::proto::{Duid, MessageType, StatusCode};
use crate::recovery::planner::Planner;
use crate::recovery::rejection::Rejection;
use crate::recovery::settings::PlanSettings;
use crate::routes::{errno, Change, Interface, Ownership, Route, RouteError, TableRoute};
use crate::snoop::{Forged, Release, Reply};
use hashbrown::{HashMap, HashSet};
use ipnet::Ipv6Net;
use std::collections::{BTreeMap, VecDeque};
use std::net::Ipv6Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Expiry of a prefix with an infinite valid lifetime (RFC 8415 s.7.7).
const NEVER: u32 = u32::MAX;
/// The valid lifetime that means infinity (RFC 8415 s.7.7).
const INFINITY: u32 = 0xffff_ffff;
/// Expiry histogram buckets: 64 s each (see [`FollowCore::resync_deadline`]).
const BUCKET_SHIFT: u32 = 6;
/// Server slot of a prefix learned from the kernel or an unknown server.
const NO_SERVER: u8 = u8::MAX;
/// Interface slots at most (interfaces of the namespace ever seen).
const MAX_SLOTS: usize = 4096;
/// Prefixes kept from one RELEASE or DECLINE.
const MAX_RELEASE_PREFIXES: usize = 64;
/// Events queued for the log at most; more are counted as suppressed.
const MAX_EVENTS: usize = 4096;

/// Entry flag: learned or confirmed by a snooped REPLY.
const F_SNOOPED: u8 = 1;
/// Entry flag: the kernel deleted the route; what that means is decided
/// after [`CoreSettings::settle`] (link down, or an operator).
const F_GONE: u8 = 2;
/// Entry flag: dropped by the kernel with its interface; reinstalled when
/// the interface comes back up.
const F_DROPPED: u8 = 4;

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
    /// whatever the lifetimes (a hostile 2 s lease cannot make a storm).
    pub min_resync_spacing: Duration,
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
            min_resync_spacing: Duration::from_secs(10),
            resync_retry: Duration::from_secs(300),
            settle: Duration::from_millis(500),
            seed: 0x5eed,
        }
    }
}

/// Why a route change is made (logged beside it, counted by it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Why {
    /// A REPLY delegated a prefix the core did not follow.
    Reply,
    /// A REPLY renewed a followed prefix: the expiry moves.
    Renewal,
    /// A REPLY gave a followed prefix a new next hop or interface.
    Moved,
    /// A REPLY gave the prefix a valid lifetime of 0 (RFC 8415 s.18.2.10.1).
    ValidLifetimeZero,
    /// The server confirmed a RELEASE (RFC 8415 s.18.3.7).
    Release,
    /// The server confirmed a DECLINE (RFC 8415 s.18.3.8).
    Decline,
    /// Its interface came back up; the kernel had dropped the route.
    LinkUp,
    /// Snooping learned it after (or beyond) what the resync could know.
    Resync,
}

impl Why {
    /// A stable code for logs and counters.
    pub fn code(self) -> &'static str {
        match self {
            Why::Reply => "reply",
            Why::Renewal => "renewal",
            Why::Moved => "moved",
            Why::ValidLifetimeZero => "valid-lifetime-0",
            Why::Release => "release",
            Why::Decline => "decline",
            Why::LinkUp => "link-up",
            Why::Resync => "snooped-after-resync",
        }
    }
}

/// A route change to make, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteChange {
    /// The change (adds are create-exclusive, see [`crate::routes::RouteTable::apply`]).
    pub change: Change,
    /// Why.
    pub why: Why,
}

/// Something worth a log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowEvent {
    /// A prefix got no route: the planner's reason (`outside-pools`, ...).
    Refused {
        /// The prefix.
        prefix: Ipv6Net,
        /// The next hop it would have had.
        next_hop: Ipv6Addr,
        /// The interface the REPLY left by.
        interface: Arc<str>,
        /// Why.
        reason: Rejection,
    },
    /// A prefix, or a whole REPLY, not used, with a stable code:
    /// `cap` (max_prefixes reached), `iaprefix-lifetimes` (preferred above
    /// valid, RFC 8415 s.21.22), `ia-pd-timers` (T1 above T2, s.21.21),
    /// `reply-status` (a top-level status other than Success),
    /// `release-unanswered` (no REPLY within the timeout),
    /// `release-overflow` (too many pending), `release-refused` (the
    /// server's REPLY to it was not Success).
    Ignored {
        /// The prefix, if one.
        prefix: Option<Ipv6Net>,
        /// The code.
        code: &'static str,
    },
    /// A route that is not ours holds the prefix's key: left in place.
    Foreign {
        /// The prefix.
        prefix: Ipv6Net,
        /// How it was found: `eexist` (our add met it), `listed`
        /// (snooped while a foreign route is known there), `replaced` (it
        /// replaced one of ours).
        how: &'static str,
    },
    /// One of our routes was deleted by someone else while its interface
    /// stayed up and before it expired: forgotten (the next resync decides).
    ManualDelete {
        /// The route as it was.
        route: Route,
    },
    /// A server-to-client message arrived from the client side.
    Forged {
        /// The interface.
        interface: Arc<str>,
        /// Its source address.
        source: Ipv6Addr,
        /// Its message type.
        msg_type: MessageType,
    },
    /// The kernel refused a change.
    Failed {
        /// The change.
        change: Change,
        /// The error.
        error: RouteError,
    },
}

/// Counts since start (for STATUS and the tests).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    /// REPLYs seen leaving the router (directly or relayed).
    pub replies: u64,
    /// RELEASE and DECLINE messages seen from clients.
    pub releases: u64,
    /// Releases the server confirmed.
    pub releases_confirmed: u64,
    /// Server-to-client messages arriving from the client side.
    pub forged: u64,
    /// Routes added (new prefixes, link-up reinstalls, resync replays).
    pub added: u64,
    /// Routes refreshed (renewals: the expiry moved).
    pub refreshed: u64,
    /// Routes moved to another next hop or interface.
    pub moved: u64,
    /// Routes removed (valid lifetime 0, release, decline).
    pub removed: u64,
    /// Routes reinstalled after their interface came back up.
    pub relinked: u64,
    /// Prefixes refused by the planner.
    pub refused: u64,
    /// Prefixes left to a foreign route.
    pub foreign: u64,
    /// Prefixes or messages not used for another reason (see [`FollowEvent::Ignored`]).
    pub ignored: u64,
    /// Prefixes refused because `max_prefixes` were followed.
    pub capped: u64,
    /// Our routes deleted by someone else, forgotten.
    pub manual_deletes: u64,
    /// Followed prefixes whose lifetime ran out.
    pub expired: u64,
    /// Route changes the kernel refused.
    pub failures: u64,
    /// Resyncs finished.
    pub resyncs: u64,
    /// Events not queued for the log (the queue was full).
    pub events_suppressed: u64,
}

/// A prefix as a compact key (host bits clear).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct PKey {
    addr: [u8; 16],
    len: u8,
}

impl PKey {
    fn of(p: &Ipv6Net) -> Self {
        PKey {
            addr: p.trunc().addr().octets(),
            len: p.prefix_len(),
        }
    }

    fn net(&self) -> Ipv6Net {
        Ipv6Net::new(Ipv6Addr::from(self.addr), self.len).expect("a valid length")
    }
}

/// One followed prefix (32 octets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    /// The next hop.
    gateway: [u8; 16],
    /// Absolute expiry, seconds of the core's clock ([`NEVER`]: none).
    expires: u32,
    /// Last client transaction seen by snooping, seconds of the core's
    /// clock plus 1 (0: none; learned from the kernel after a resync).
    seen: u32,
    /// Fingerprint of the client DUID (0: unknown).
    client: u32,
    /// The interface slot.
    slot: u16,
    /// F_* flags.
    flags: u8,
    /// The server whose REPLY it was (a slot of `servers`), or NO_SERVER.
    server: u8,
}

/// An interface the core knows.
#[derive(Debug, Clone)]
struct Slot {
    name: Arc<str>,
    index: u32,
    up: bool,
    /// Position in the planner's interfaces (None: not there now).
    pos: Option<u32>,
    /// When it last went down, ms of the core's clock.
    last_down: Option<u64>,
}

/// A RELEASE or DECLINE waiting for the server's REPLY.
#[derive(Debug, Clone)]
struct Pending {
    xid: u32,
    client: u32,
    decline: bool,
    at_ms: u64,
    hop: Ipv6Addr,
    prefixes: Vec<(u32, Ipv6Net)>,
}

/// An outcome of a resync, for STATUS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResyncOutcome {
    /// When it ended.
    pub at: Instant,
    /// `complete`, `partial`, `failed` or an error.
    pub outcome: String,
}

/// The sans-IO core of `pdrestore follow`. See the [module documentation](self).
#[derive(Debug)]
pub struct FollowCore {
    epoch: Instant,
    settings: CoreSettings,
    planner: Planner,
    owner: Ownership,
    metric: u32,
    slots: Vec<Slot>,
    entries: HashMap<PKey, Entry>,
    foreign: HashSet<PKey>,
    /// Followed prefixes by expiry bucket (expiry >> BUCKET_SHIFT): count.
    hist: BTreeMap<u32, u32>,
    /// The earliest resync deadline that half a remaining lifetime asks for.
    halflife: Option<u32>,
    /// The resync deadline the interval sets, seconds of the core's clock.
    scheduled: u32,
    /// No resync before this (seconds).
    not_before: u32,
    /// Running resync: when it started (seconds + 1, as `Entry::seen`).
    resync_from: Option<u32>,
    /// Removals learned during a resync, replayed after it.
    tombstones: HashMap<PKey, Why>,
    pending: VecDeque<Pending>,
    gone: VecDeque<(PKey, u64)>,
    servers: Vec<Duid>,
    out: VecDeque<RouteChange>,
    events: VecDeque<FollowEvent>,
    counters: Counters,
    last_resync: Option<ResyncOutcome>,
    rng: fastrand::Rng,
}

fn status_ok(s: Option<StatusCode>) -> bool {
    matches!(s, None | Some(StatusCode::Success))
}

/// FNV-1a of a DUID, never 0 (0 means unknown).
fn fingerprint(d: &Duid) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in d.as_bytes() {
        h = (h ^ u32::from(*b)).wrapping_mul(0x0100_0193);
    }
    h.max(1)
}

impl FollowCore {
    /// A core at `now` planning with `settings` over `interfaces` (as
    /// [`crate::routes::NetlinkTable::interfaces`] gives them), every
    /// interface taken as up until a link event says otherwise.
    pub fn new(
        settings: CoreSettings,
        plan: PlanSettings,
        interfaces: Vec<Interface>,
        now: Instant,
    ) -> Self {
        let owner = plan.owner.clone();
        let metric = owner.metric();
        let rng = fastrand::Rng::with_seed(settings.seed);
        let mut core = FollowCore {
            epoch: now,
            planner: Planner::new(plan, Vec::new()),
            owner,
            metric,
            slots: Vec::new(),
            entries: HashMap::new(),
            foreign: HashSet::new(),
            hist: BTreeMap::new(),
            halflife: None,
            scheduled: 0,
            not_before: 0,
            resync_from: None,
            tombstones: HashMap::new(),
            pending: VecDeque::new(),
            gone: VecDeque::new(),
            servers: Vec::new(),
            out: VecDeque::new(),
            events: VecDeque::new(),
            counters: Counters::default(),
            last_resync: None,
            rng,
            settings,
        };
        core.set_interfaces(interfaces);
        core.schedule(now, true);
        core
    }

    // ----- clock -----

    fn ms(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.epoch).as_millis() as u64
    }

    fn secs(&self, t: Instant) -> u32 {
        t.saturating_duration_since(self.epoch)
            .as_secs()
            .min(u64::from(NEVER - 1)) as u32
    }

    fn at_secs(&self, s: u32) -> Instant {
        self.epoch + Duration::from_secs(u64::from(s))
    }

    fn expiry(&self, now: Instant, valid: u32) -> u32 {
        if valid == INFINITY {
            NEVER
        } else {
            self.secs(now).saturating_add(valid).min(NEVER - 1)
        }
    }

    // ----- interfaces -----

    /// Replace the planner's view of the interfaces (after a link appeared,
    /// or a resync). Slots are kept by name, so followed prefixes keep
    /// their interface across a change of index.
    pub fn set_interfaces(&mut self, interfaces: Vec<Interface>) {
        for s in &mut self.slots {
            s.pos = None;
        }
        for (p, i) in interfaces.iter().enumerate() {
            match self.slots.iter().position(|s| *s.name == *i.name) {
                Some(at) => {
                    let s = &mut self.slots[at];
                    s.index = i.index;
                    s.pos = Some(p as u32);
                }
                None if self.slots.len() < MAX_SLOTS => self.slots.push(Slot {
                    name: i.name.clone(),
                    index: i.index,
                    up: true,
                    pos: Some(p as u32),
                    last_down: None,
                }),
                None => {}
            }
        }
        self.planner = Planner::new(self.planner.settings().clone(), interfaces);
    }

    fn slot_of(&self, ifindex: u32) -> Option<u16> {
        self.slots
            .iter()
            .position(|s| s.index == ifindex && s.pos.is_some())
            .map(|p| p as u16)
    }

    /// The interface with this index is up or down (an RTM_NEWLINK). An
    /// interface coming up gets back the routes the kernel dropped with it.
    /// Returns true when the interface is new to the core (the shell should
    /// then hand it the interfaces again, [`FollowCore::set_interfaces`]).
    pub fn link(&mut self, now: Instant, index: u32, name: &str, up: bool) -> bool {
        let now_ms = self.ms(now);
        let at = match self.slots.iter().position(|s| s.index == index) {
            Some(p) => p,
            None => match self.slots.iter().position(|s| *s.name == *name) {
                Some(p) => {
                    self.slots[p].index = index;
                    p
                }
                None => return true,
            },
        };
        let slot = &mut self.slots[at];
        let was_up = slot.up;
        slot.up = up;
        if was_up && !up {
            slot.last_down = Some(now_ms);
        }
        if !was_up && up {
            self.relink(now, at as u16);
        }
        false
    }

    /// Reinstall the followed prefixes of slot `s` that the kernel dropped.
    fn relink(&mut self, now: Instant, s: u16) {
        let t = self.secs(now);
        let mut back = Vec::new();
        for (k, e) in self.entries.iter_mut() {
            if e.slot == s && e.flags & (F_GONE | F_DROPPED) != 0 && e.expires > t {
                e.flags &= !(F_GONE | F_DROPPED);
                back.push(*k);
            }
        }
        back.sort_by_key(|k| (k.addr, k.len));
        for k in back {
            let e = self.entries[&k];
            let r = self.route(&k, &e, now);
            self.emit(Change::Add(r), Why::LinkUp);
        }
    }

    // ----- snooped messages -----

    /// A REPLY seen leaving the router on the interface with index
    /// `ifindex` (directly, or in RELAY-REPL to a lightweight relay).
    pub fn reply(&mut self, now: Instant, ifindex: u32, r: &Reply) {
        self.counters.replies += 1;
        let client = r.client_id.as_ref().map_or(0, fingerprint);
        if client != 0 {
            self.match_release(now, r, client);
        }
        if r.ia_pds.is_empty() {
            return;
        }
        if !status_ok(r.status) {
            self.ignore(None, "reply-status");
            return;
        }
        let hop = r.client_address();
        let server = self.server_slot(&r.server_id);
        let slot = self.slot_of(ifindex);
        for ia in &r.ia_pds {
            // NoPrefixAvail, NoBinding: nothing delegated in this IA_PD.
            if !status_ok(ia.status) {
                continue;
            }
            if !ia.timers_consistent() {
                self.ignore(None, "ia-pd-timers");
                continue;
            }
            for p in &ia.prefixes {
                let prefix = p.prefix.trunc();
                if !status_ok(p.status) {
                    continue;
                }
                if !p.lifetimes_consistent() {
                    self.ignore(Some(prefix), "iaprefix-lifetimes");
                    continue;
                }
                if p.valid_lifetime == 0 {
                    self.withdraw(now, prefix, client, hop, Why::ValidLifetimeZero);
                    continue;
                }
                let Some(slot) = slot else {
                    self.refuse_no_interface(prefix, hop, ifindex);
                    continue;
                };
                let learned = Learned {
                    prefix,
                    hop,
                    slot,
                    valid: p.valid_lifetime,
                    client,
                    server,
                };
                self.learn(now, learned);
            }
        }
    }

    fn refuse_no_interface(&mut self, prefix: Ipv6Net, hop: Ipv6Addr, ifindex: u32) {
        self.counters.refused += 1;
        let interface: Arc<str> = format!("ifindex {ifindex}").into();
        self.event(FollowEvent::Refused {
            prefix,
            next_hop: hop,
            interface,
            reason: Rejection::NoInterface {
                interface_id: None,
                link_address: hop,
            },
        });
    }

    /// Install or refresh one prefix a REPLY delegated.
    fn learn(&mut self, now: Instant, l: Learned) {
        let slot = &self.slots[usize::from(l.slot)];
        let name = slot.name.clone();
        let pos = slot.pos.expect("slot_of gives planned slots");
        if let Err(reason) = self.planner.plan_on(l.prefix, l.hop, pos) {
            self.counters.refused += 1;
            self.event(FollowEvent::Refused {
                prefix: l.prefix,
                next_hop: l.hop,
                interface: name,
                reason,
            });
            return;
        }
        let key = PKey::of(&l.prefix);
        if self.foreign.contains(&key) {
            self.counters.foreign += 1;
            self.event(FollowEvent::Foreign {
                prefix: l.prefix,
                how: "listed",
            });
            return;
        }
        self.tombstones.remove(&key);
        let expires = self.expiry(now, l.valid);
        let fresh = Entry {
            gateway: l.hop.octets(),
            expires,
            seen: self.secs(now) + 1,
            client: l.client,
            slot: l.slot,
            flags: F_SNOOPED,
            server: l.server,
        };
        let old = self.entries.get(&key).copied();
        match old {
            None if self.entries.len() >= self.settings.max_prefixes => {
                self.counters.capped += 1;
                self.ignore(Some(l.prefix), "cap");
                return;
            }
            None => {
                self.entries.insert(key, fresh);
                let r = self.route(&key, &fresh, now);
                self.emit(Change::Add(r), Why::Reply);
            }
            Some(o) => {
                self.hist_remove(o.expires);
                self.entries.insert(key, fresh);
                let new = self.route(&key, &fresh, now);
                if o.flags & (F_GONE | F_DROPPED) != 0 {
                    // Not in the kernel now: create-exclusive, as any add.
                    self.emit(Change::Add(new), Why::Reply);
                } else {
                    let moved = o.gateway != fresh.gateway || o.slot != fresh.slot;
                    let old = self.route(&key, &o, now);
                    let why = if moved { Why::Moved } else { Why::Renewal };
                    self.emit(Change::Replace { old, new }, why);
                }
            }
        }
        self.hist_add(expires);
        self.note_lifetime(now, expires);
    }

    /// Remove a followed prefix (valid lifetime 0, a confirmed release),
    /// when it is ours and belongs to this client.
    fn withdraw(&mut self, now: Instant, prefix: Ipv6Net, client: u32, hop: Ipv6Addr, why: Why) {
        let key = PKey::of(&prefix);
        let Some(e) = self.entries.get(&key).copied() else {
            if self.resync_from.is_some() && !self.foreign.contains(&key) {
                self.remember_tombstone(key, why);
            }
            return;
        };
        let belongs = if e.client != 0 && client != 0 {
            e.client == client
        } else {
            e.gateway == hop.octets()
        };
        if !belongs {
            return;
        }
        self.forget(&key);
        if self.resync_from.is_some() {
            self.remember_tombstone(key, why);
        }
        if e.flags & (F_GONE | F_DROPPED) == 0 {
            let r = self.route(&key, &e, now);
            self.emit(Change::Remove(r), why);
        }
    }

    fn remember_tombstone(&mut self, key: PKey, why: Why) {
        if self.tombstones.len() < self.settings.max_prefixes {
            self.tombstones.insert(key, why);
        }
    }

    /// A RELEASE or DECLINE from a client, seen arriving on `ifindex`.
    pub fn release(&mut self, now: Instant, _ifindex: u32, r: &Release) {
        self.counters.releases += 1;
        let client = fingerprint(&r.client_id);
        let xid = r.transaction_id;
        let prefixes: Vec<(u32, Ipv6Net)> = r
            .ia_pds
            .iter()
            .flat_map(|ia| ia.prefixes.iter().map(move |p| (ia.iaid, p.prefix.trunc())))
            .take(MAX_RELEASE_PREFIXES)
            .collect();
        // A retransmission (same transaction-id, RFC 8415 s.15) replaces the first.
        self.pending
            .retain(|p| !(p.xid == xid && p.client == client));
        if self.pending.len() >= self.settings.max_pending_releases.max(1) {
            self.pending.pop_front();
            self.ignore(None, "release-overflow");
        }
        self.pending.push_back(Pending {
            xid,
            client,
            decline: r.msg_type == MessageType::Decline,
            at_ms: self.ms(now),
            hop: r.client_address(),
            prefixes,
        });
    }

    /// The REPLY to a pending RELEASE/DECLINE: remove what it named.
    fn match_release(&mut self, now: Instant, r: &Reply, client: u32) {
        let Some(i) = self
            .pending
            .iter()
            .position(|p| p.xid == r.transaction_id && p.client == client)
        else {
            return;
        };
        let p = self.pending.remove(i).expect("a valid position");
        if !status_ok(r.status) {
            self.ignore(None, "release-refused");
            return;
        }
        self.counters.releases_confirmed += 1;
        let why = if p.decline {
            Why::Decline
        } else {
            Why::Release
        };
        for (iaid, prefix) in p.prefixes {
            let no_binding = r
                .ia_pds
                .iter()
                .any(|ia| ia.iaid == iaid && ia.status == Some(StatusCode::NoBinding));
            if !no_binding {
                self.withdraw(now, prefix, client, p.hop, why);
            }
        }
    }

    /// A server-to-client message arrived from the client side of `ifindex`:
    /// counted, and nothing else.
    pub fn forged(&mut self, _now: Instant, ifindex: u32, f: &Forged) {
        self.counters.forged += 1;
        let interface = self
            .slots
            .iter()
            .find(|s| s.index == ifindex)
            .map(|s| s.name.clone())
            .unwrap_or_else(|| format!("ifindex {ifindex}").into());
        self.event(FollowEvent::Forged {
            interface,
            source: f.datagram.source,
            msg_type: f.msg_type,
        });
    }

    fn server_slot(&mut self, id: &Duid) -> u8 {
        if let Some(p) = self.servers.iter().position(|s| s == id) {
            return p as u8;
        }
        if self.servers.len() < usize::from(NO_SERVER) {
            self.servers.push(id.clone());
            return (self.servers.len() - 1) as u8;
        }
        NO_SERVER
    }

    // ----- the kernel -----

    /// A route event from rtnetlink: `new` for RTM_NEWROUTE, else
    /// RTM_DELROUTE. Only routes at our key (table and metric) to a
    /// prefix that could be ours matter.
    pub fn route_event(&mut self, now: Instant, new: bool, r: &TableRoute) {
        if r.table != self.owner.table()
            || r.metric != self.metric
            || !self.owner.covers(&r.prefix)
            || self.resync_from.is_some()
        {
            return;
        }
        let key = PKey::of(&r.prefix);
        let ours = self.owner.owns(r);
        if new {
            if ours {
                return;
            }
            let known = self.foreign.contains(&key);
            if !known && self.foreign.len() < self.settings.max_prefixes {
                self.foreign.insert(key);
            }
            if self.entries.contains_key(&key) && !known {
                self.forget(&key);
                self.counters.foreign += 1;
                self.event(FollowEvent::Foreign {
                    prefix: r.prefix,
                    how: "replaced",
                });
            }
            return;
        }
        if !ours {
            self.foreign.remove(&key);
            return;
        }
        let t = self.secs(now);
        let now_ms = self.ms(now);
        let Some(e) = self.entries.get_mut(&key) else {
            return;
        };
        let same = r.gateway.map(|g| g.octets()) == Some(e.gateway)
            && self.slots[usize::from(e.slot)].index == r.ifindex;
        if !same || e.flags & (F_GONE | F_DROPPED) != 0 {
            return;
        }
        if e.expires <= t.saturating_add(1) {
            self.forget(&key);
            self.counters.expired += 1;
            return;
        }
        e.flags |= F_GONE;
        if self.gone.len() < self.settings.max_prefixes {
            self.gone.push_back((key, now_ms));
        } else {
            // No room to decide later: keep it for the link's return.
            e.flags = (e.flags & !F_GONE) | F_DROPPED;
        }
    }

    /// After lost events (the watcher's buffer overflowed): compare with
    /// the kernel's table now. A followed route that is not there is taken
    /// as deleted, and decided as a delete event is (after `settle`: with
    /// its link, or by an operator); foreign routes are noted again.
    pub fn reconcile_kernel(&mut self, now: Instant, kernel: impl IntoIterator<Item = TableRoute>) {
        let mut present: HashSet<PKey> = HashSet::new();
        self.foreign.clear();
        for r in kernel {
            if !self.at_our_keys(&r) {
                continue;
            }
            let key = PKey::of(&r.prefix);
            if self.owner.owns(&r) {
                present.insert(key);
            } else if self.foreign.len() < self.settings.max_prefixes {
                self.foreign.insert(key);
            }
        }
        let t = self.secs(now);
        let now_ms = self.ms(now);
        let mut missing: Vec<PKey> = self
            .entries
            .iter()
            .filter(|(k, e)| e.flags & (F_GONE | F_DROPPED) == 0 && !present.contains(*k))
            .map(|(k, _)| *k)
            .collect();
        missing.sort_by_key(|k| (k.addr, k.len));
        for k in missing {
            let expired = self
                .entries
                .get(&k)
                .is_some_and(|e| e.expires <= t.saturating_add(1));
            if expired {
                self.forget(&k);
                self.counters.expired += 1;
            } else if let Some(e) = self.entries.get_mut(&k) {
                e.flags |= F_GONE;
                self.gone.push_back((k, now_ms));
            }
        }
    }

    /// The kernel refused `change` (from [`crate::routes::RouteTable::submit`]
    /// or `sync`).
    pub fn failed(&mut self, _now: Instant, change: &Change, error: &RouteError) {
        self.counters.failures += 1;
        let key = PKey::of(&change.route().prefix);
        let code = error.errno.unwrap_or(0);
        let ours_now = self
            .entries
            .get(&key)
            .is_some_and(|e| e.gateway == change.route().gateway.octets());
        match change {
            Change::Add(_) if code == errno::EEXIST => {
                // It was counted as added when it was asked for.
                self.counters.added = self.counters.added.saturating_sub(1);
                if ours_now {
                    self.forget(&key);
                }
                // The route event of the foreign route may have told already.
                let known = self.foreign.contains(&key);
                if !known && self.foreign.len() < self.settings.max_prefixes {
                    self.foreign.insert(key);
                }
                if !known {
                    self.counters.foreign += 1;
                    self.event(FollowEvent::Foreign {
                        prefix: change.route().prefix,
                        how: "eexist",
                    });
                }
                return;
            }
            Change::Add(_) | Change::Replace { .. } if ours_now => {
                if matches!(
                    code,
                    errno::ENODEV | errno::ENETDOWN | errno::ENETUNREACH | errno::EHOSTUNREACH
                ) {
                    // The interface is going or gone: back when it is up.
                    if let Some(e) = self.entries.get_mut(&key) {
                        e.flags = (e.flags & !F_GONE) | F_DROPPED;
                    }
                } else {
                    self.forget(&key);
                }
            }
            _ => {}
        }
        self.event(FollowEvent::Failed {
            change: change.clone(),
            error: error.clone(),
        });
    }

    // ----- time -----

    /// Let time pass: deferred deletes are decided, unanswered releases
    /// and expired prefixes are forgotten.
    pub fn tick(&mut self, now: Instant) {
        let now_ms = self.ms(now);
        let settle = self.settings.settle.as_millis() as u64;
        while let Some(&(key, at)) = self.gone.front() {
            if at + settle > now_ms {
                break;
            }
            self.gone.pop_front();
            self.decide_gone(now, key, at);
        }
        let timeout = self.settings.release_timeout.as_millis() as u64;
        while self
            .pending
            .front()
            .is_some_and(|p| p.at_ms + timeout <= now_ms)
        {
            self.pending.pop_front();
            self.ignore(None, "release-unanswered");
        }
        self.sweep(now);
    }

    /// A kernel delete of one of our routes, `settle` later: dropped with
    /// its link (kept, reinstalled when the link is back), or an operator's
    /// (forgotten, logged).
    fn decide_gone(&mut self, now: Instant, key: PKey, at: u64) {
        let settle = self.settings.settle.as_millis() as u64;
        let Some(e) = self.entries.get(&key).copied() else {
            return;
        };
        if e.flags & F_GONE == 0 {
            return;
        }
        let slot = &self.slots[usize::from(e.slot)];
        let with_link = !slot.up || slot.last_down.is_some_and(|d| d + settle >= at);
        if with_link {
            if let Some(e) = self.entries.get_mut(&key) {
                e.flags = (e.flags & !F_GONE) | F_DROPPED;
            }
            return;
        }
        let route = self.route(&key, &e, now);
        self.forget(&key);
        self.counters.manual_deletes += 1;
        self.event(FollowEvent::ManualDelete { route });
    }

    /// Forget every followed prefix whose lifetime has run out (the kernel
    /// removes its route by itself).
    fn sweep(&mut self, now: Instant) {
        let t = self.secs(now);
        let Some((&first, _)) = self.hist.first_key_value() else {
            return;
        };
        // Every entry of the first bucket has expired only once it is over.
        if (u64::from(first) + 1) << BUCKET_SHIFT > u64::from(t) {
            return;
        }
        let mut gone = 0u64;
        let hist = &mut self.hist;
        self.entries.retain(|_, e| {
            if e.expires <= t {
                gone += 1;
                if let Some(c) = hist.get_mut(&(e.expires >> BUCKET_SHIFT)) {
                    *c -= 1;
                }
                false
            } else {
                true
            }
        });
        self.hist.retain(|_, c| *c > 0);
        self.counters.expired += gone;
    }

    // ----- resync -----

    fn schedule(&mut self, now: Instant, ok: bool) {
        let t = self.secs(now);
        let interval = self.settings.resync_interval.as_secs_f64();
        let after = if ok {
            let j = self.settings.resync_jitter.clamp(0.0, 0.5);
            interval * (1.0 + j * (2.0 * self.rng.f64() - 1.0))
        } else {
            interval.min(self.settings.resync_retry.as_secs_f64())
        };
        self.scheduled = t.saturating_add(after.max(1.0) as u32);
        self.not_before = t.saturating_add(self.settings.min_resync_spacing.as_secs() as u32);
        // Half of the shortest lifetime now followed.
        self.halflife = None;
        if let Some((&b, _)) = self.hist.first_key_value() {
            let first = b << BUCKET_SHIFT;
            self.note_lifetime(now, first.max(t));
        }
    }

    /// A prefix now expires at `expires`: the resync must come no later
    /// than half its remaining lifetime from now.
    fn note_lifetime(&mut self, now: Instant, expires: u32) {
        if expires == NEVER {
            return;
        }
        let t = self.secs(now);
        let half = t + expires.saturating_sub(t) / 2;
        self.halflife = Some(self.halflife.map_or(half, |h| h.min(half)));
    }

    /// When the next resync is due: the interval's deadline (with jitter),
    /// or half the shortest remaining valid lifetime of the prefixes learned
    /// since the last resync (or followed after it), whichever is earlier;
    /// never sooner than `min_resync_spacing` after the last one.
    pub fn resync_deadline(&self) -> Instant {
        let due = self
            .halflife
            .map_or(self.scheduled, |h| h.min(self.scheduled));
        self.at_secs(due.max(self.not_before))
    }

    /// A resync is due and none is running.
    pub fn resync_due(&self, now: Instant) -> bool {
        self.resync_from.is_none() && now >= self.resync_deadline()
    }

    /// A resync is running.
    pub fn resyncing(&self) -> bool {
        self.resync_from.is_some()
    }

    /// A resync starts now: the core goes on learning, but holds its
    /// changes (the resync's own installation would race them); removals
    /// learned meanwhile are kept for [`FollowCore::finish_resync`].
    pub fn begin_resync(&mut self, now: Instant) {
        self.resync_from = Some(self.secs(now) + 1);
        self.tombstones.clear();
        self.out.clear();
    }

    /// The resync is over: `kernel` is every route of our table now (ours
    /// and others'), `answered` the DUIDs of the servers that answered it
    /// completely, `outcome` its outcome for STATUS (`ok`: complete or
    /// partial, so the next one is due after the interval).
    ///
    /// The state is rebuilt from our routes in the kernel (what the
    /// resync installed, and what it left), and what is foreign at our key
    /// is noted. Then snooping's word is laid over it where it is the more
    /// recent client transaction, as the resync itself would weigh two
    /// servers (RFC 5007 s.4.3.4): a prefix snooped since the resync began
    /// (its servers' answers could not know it), or snooped from a server
    /// that did not answer the resync completely, keeps its snooped next
    /// hop and lifetime (the route is added, replaced or, for a release or
    /// a valid lifetime of 0 seen during the resync, removed); a prefix
    /// snooped earlier from a server that answered is as the resync left
    /// it (that server's answer includes the transaction, or a later one).
    pub fn finish_resync(
        &mut self,
        now: Instant,
        kernel: impl IntoIterator<Item = TableRoute>,
        answered: &[Duid],
        outcome: &str,
        ok: bool,
    ) {
        let from = self.resync_from.take().unwrap_or(self.secs(now) + 1);
        let old = std::mem::take(&mut self.entries);
        let tombstones = std::mem::take(&mut self.tombstones);
        self.hist.clear();
        self.foreign.clear();
        self.gone.clear();
        self.load_kernel(now, kernel);
        let complete: Vec<bool> = self.servers.iter().map(|s| answered.contains(s)).collect();
        let mut replay: Vec<(PKey, Entry)> = Vec::new();
        for (k, o) in old {
            let wins = o.seen != 0
                && (o.seen >= from
                    || !complete
                        .get(usize::from(o.server))
                        .copied()
                        .unwrap_or(false));
            match self.entries.get_mut(&k) {
                Some(n) if n.gateway == o.gateway && n.slot == o.slot => {
                    n.client = o.client;
                    n.seen = o.seen;
                    n.server = o.server;
                    n.flags |= o.flags & F_SNOOPED;
                    if wins && n.expires != o.expires {
                        replay.push((k, o));
                    }
                }
                _ if wins && o.flags & (F_GONE | F_DROPPED) == 0 => replay.push((k, o)),
                _ => {}
            }
        }
        replay.sort_by_key(|(k, _)| (k.addr, k.len));
        let t = self.secs(now);
        for (k, o) in replay {
            if o.expires <= t || self.foreign.contains(&k) {
                continue;
            }
            self.overlay(now, k, o);
        }
        let mut tomb: Vec<(PKey, Why)> = tombstones.into_iter().collect();
        tomb.sort_by_key(|(k, _)| (k.addr, k.len));
        for (k, why) in tomb {
            if let Some(e) = self.entries.get(&k).copied() {
                let r = self.route(&k, &e, now);
                self.forget(&k);
                self.emit(Change::Remove(r), why);
            }
        }
        self.counters.resyncs += 1;
        self.last_resync = Some(ResyncOutcome {
            at: now,
            outcome: outcome.to_string(),
        });
        self.schedule(now, ok);
    }

    /// Lay the snooped entry `o` over what the resync left at `k`.
    fn overlay(&mut self, now: Instant, k: PKey, o: Entry) {
        let new = self.route(&k, &o, now);
        match self.entries.get(&k).copied() {
            Some(n) => {
                self.hist_remove(n.expires);
                let old = self.route(&k, &n, now);
                self.entries.insert(k, o);
                self.hist_add(o.expires);
                self.emit(Change::Replace { old, new }, Why::Resync);
            }
            None if self.entries.len() < self.settings.max_prefixes => {
                self.entries.insert(k, o);
                self.hist_add(o.expires);
                self.emit(Change::Add(new), Why::Resync);
            }
            None => self.counters.capped += 1,
        }
    }

    /// Follow our routes of the kernel's table (at start, and after a
    /// resync): what is ours at our key is followed, what is another's is
    /// foreign. Routes out of interfaces the core does not know, and those
    /// past `max_prefixes`, are not followed (they expire in the kernel).
    /// The route is in our table at our metric, on a prefix we could own:
    /// ours or foreign, it is of the core's business; any other is not.
    fn at_our_keys(&self, r: &TableRoute) -> bool {
        r.table == self.owner.table() && r.metric == self.metric && self.owner.covers(&r.prefix)
    }

    fn load_kernel(&mut self, now: Instant, kernel: impl IntoIterator<Item = TableRoute>) {
        let t = self.secs(now);
        for r in kernel {
            if !self.at_our_keys(&r) {
                continue;
            }
            let key = PKey::of(&r.prefix);
            if !self.owner.owns(&r) {
                if self.foreign.len() < self.settings.max_prefixes {
                    self.foreign.insert(key);
                }
                continue;
            }
            let Some(slot) = self.slots.iter().position(|s| s.index == r.ifindex) else {
                continue;
            };
            if self.entries.len() >= self.settings.max_prefixes {
                self.counters.capped += 1;
                continue;
            }
            let expires = r
                .expires
                .map_or(NEVER, |e| t.saturating_add(e).min(NEVER - 1));
            let e = Entry {
                gateway: r.gateway.unwrap_or(Ipv6Addr::UNSPECIFIED).octets(),
                expires,
                seen: 0,
                client: 0,
                slot: slot as u16,
                flags: 0,
                server: NO_SERVER,
            };
            if self.entries.insert(key, e).is_none() {
                self.hist_add(expires);
            }
        }
    }

    // ----- output -----

    fn route(&self, k: &PKey, e: &Entry, now: Instant) -> Route {
        let slot = &self.slots[usize::from(e.slot)];
        let t = self.secs(now);
        Route {
            prefix: k.net(),
            gateway: Ipv6Addr::from(e.gateway),
            interface: slot.name.clone(),
            ifindex: slot.index,
            table: self.owner.table(),
            protocol: self.owner.protocol(),
            metric: self.metric,
            expires: (e.expires != NEVER).then(|| e.expires.saturating_sub(t).max(1)),
        }
    }

    fn forget(&mut self, k: &PKey) {
        if let Some(e) = self.entries.remove(k) {
            self.hist_remove(e.expires);
        }
    }

    fn hist_add(&mut self, expires: u32) {
        if expires != NEVER {
            *self.hist.entry(expires >> BUCKET_SHIFT).or_insert(0) += 1;
        }
    }

    fn hist_remove(&mut self, expires: u32) {
        if expires == NEVER {
            return;
        }
        let b = expires >> BUCKET_SHIFT;
        if let Some(c) = self.hist.get_mut(&b) {
            *c -= 1;
            if *c == 0 {
                self.hist.remove(&b);
            }
        }
    }

    fn emit(&mut self, change: Change, why: Why) {
        if self.resync_from.is_some() {
            return;
        }
        let c = &mut self.counters;
        match (&change, why) {
            (Change::Add(_), Why::LinkUp) => c.relinked += 1,
            (Change::Add(_), _) => c.added += 1,
            (Change::Replace { .. }, Why::Moved) => c.moved += 1,
            (Change::Replace { .. }, _) => c.refreshed += 1,
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

    /// The next route change to make.
    pub fn poll_change(&mut self) -> Option<RouteChange> {
        let c = self.out.pop_front();
        if c.is_none() && self.out.capacity() > 4096 {
            // A storm's queue is not kept once it is drained.
            self.out.shrink_to(256);
        }
        c
    }

    /// The next thing worth a log line.
    pub fn poll_event(&mut self) -> Option<FollowEvent> {
        self.events.pop_front()
    }

    /// When the core next needs [`FollowCore::tick`] (or a resync is due):
    /// the earliest deferred delete, pending release, expiry and resync.
    pub fn poll_timeout(&self) -> Instant {
        let mut t = if self.resync_from.is_some() {
            self.epoch + Duration::from_secs(u64::from(NEVER))
        } else {
            self.resync_deadline()
        };
        if let Some(&(_, at)) = self.gone.front() {
            t = t.min(self.epoch + Duration::from_millis(at) + self.settings.settle);
        }
        if let Some(p) = self.pending.front() {
            t = t.min(self.epoch + Duration::from_millis(p.at_ms) + self.settings.release_timeout);
        }
        if let Some((&b, _)) = self.hist.first_key_value() {
            t = t.min(self.at_secs((b + 1) << BUCKET_SHIFT));
        }
        t
    }

    // ----- what it knows -----

    /// The counters since start.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Prefixes followed now.
    pub fn followed(&self) -> usize {
        self.entries.len()
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
        self.entries.get(&k).map(|e| self.route(&k, e, now))
    }

    /// The last resync's outcome.
    pub fn last_resync(&self) -> Option<&ResyncOutcome> {
        self.last_resync.as_ref()
    }

    /// The interface slots the core knows, as (name, index, up).
    pub fn links(&self) -> impl Iterator<Item = (&str, u32, bool)> {
        self.slots.iter().map(|s| (&*s.name, s.index, s.up))
    }

    /// Octets the core's tables hold now (capacity, not length: what the
    /// allocator gave), for the benchmark and STATUS.
    pub fn footprint(&self) -> usize {
        let per = std::mem::size_of::<(PKey, Entry)>() + 1;
        self.entries.capacity() * per
            + self.foreign.capacity() * (std::mem::size_of::<PKey>() + 1)
            + self.tombstones.capacity() * (std::mem::size_of::<(PKey, Why)>() + 1)
            + self.gone.capacity() * std::mem::size_of::<(PKey, u64)>()
    }

    /// One line for systemd's STATUS.
    pub fn status_line(&self, now: Instant) -> String {
        let c = &self.counters;
        let resync = match &self.last_resync {
            Some(r) => format!(
                "{} resyncs, the last {}s ago: {}",
                self.counters.resyncs,
                now.saturating_duration_since(r.at).as_secs(),
                r.outcome
            ),
            None => "no resync yet".to_string(),
        };
        format!(
            "following {} prefixes; since start {} REPLYs, {} added, {} refreshed, {} moved, {} removed, {} relinked; {} forged, {} refused, {} foreign; {resync}",
            self.entries.len(),
            c.replies,
            c.added,
            c.refreshed,
            c.moved,
            c.removed,
            c.relinked,
            c.forged,
            c.refused,
            c.foreign
        )
    }
}

/// One prefix of a REPLY, on its way to [`FollowCore::learn`].
#[derive(Debug, Clone, Copy)]
struct Learned {
    prefix: Ipv6Net,
    hop: Ipv6Addr,
    slot: u16,
    valid: u32,
    client: u32,
    server: u8,
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
