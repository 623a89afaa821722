//! The kernel's side: interfaces (slots kept by name), link events, route
//! events, the table read again after lost events, the failures of the
//! changes the core asked for, and the deletes decided after the settle
//! time (with their link, or by an operator).

use super::events::{FollowEvent, Need, Why};
use super::store::{Entry, PKey, F_DROPPED, F_GONE, F_INSPECT, NEVER, NO_SERVER};
use super::FollowCore;
use crate::recovery::planner::Planner;
use crate::routes::{errno, Change, Held, Interface, RouteError, TableRoute};
use hashbrown::HashSet;
use std::net::Ipv6Addr;
use std::sync::Arc;
use std::time::Instant;

/// Interface slots at most (interfaces of the namespace ever seen).
const MAX_SLOTS: usize = 4096;
/// Link events kept while the core waits for the interfaces.
const MAX_PENDING_LINKS: usize = 256;

/// An interface the core knows.
#[derive(Debug, Clone)]
pub(super) struct Slot {
    pub(super) name: Arc<str>,
    pub(super) index: u32,
    pub(super) up: bool,
    /// Position in the planner's interfaces (None: not there now).
    pub(super) pos: Option<u32>,
    /// When it last went down, ms of the core's clock.
    pub(super) last_down: Option<u64>,
}

impl FollowCore {
    /// The interfaces of the namespace with their addresses, as
    /// [`crate::routes::NetlinkTable::interfaces`] gives them: at start,
    /// after a resync, and when the core asked for them
    /// ([`Need::Interfaces`]). Slots are kept by name, so followed prefixes
    /// keep their interface across a change of index. Link events that
    /// waited for the interfaces are taken now.
    pub fn handle_interfaces(&mut self, now: Instant, interfaces: Vec<Interface>) {
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
        self.asked_interfaces = false;
        for (index, name, up) in std::mem::take(&mut self.waiting_links) {
            self.link(now, index, &name, up);
        }
        self.refresh_timers();
    }

    /// The slot of the interface with index `ifindex`, if it is there now.
    pub(super) fn slot_of(&self, ifindex: u32) -> Option<u16> {
        self.slots
            .iter()
            .position(|s| s.index == ifindex && s.pos.is_some())
            .map(|p| p as u16)
    }

    /// The interface with this index is up or down (RTM_NEWLINK), or gone
    /// (RTM_DELLINK: down). An interface coming up gets back the routes the
    /// kernel dropped with it. An interface the core does not know makes
    /// it ask for the interfaces ([`Need::Interfaces`]); the event is taken
    /// when they come.
    pub fn handle_link(&mut self, now: Instant, index: u32, name: &str, up: bool) {
        if !self.link(now, index, name, up) {
            if self.waiting_links.len() < MAX_PENDING_LINKS {
                self.waiting_links.push((index, name.into(), up));
            }
            if !self.asked_interfaces {
                self.asked_interfaces = true;
                self.needs.push_back(Need::Interfaces);
            }
        }
        self.refresh_timers();
    }

    /// A link event for a known interface; false when it is not known.
    fn link(&mut self, now: Instant, index: u32, name: &str, up: bool) -> bool {
        let now_ms = self.clock.ms(now);
        let at = match self.slots.iter().position(|s| s.index == index) {
            Some(p) => p,
            None => match self.slots.iter().position(|s| *s.name == *name) {
                Some(p) => {
                    self.slots[p].index = index;
                    p
                }
                None => return false,
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
        true
    }

    /// Reinstall the followed prefixes of slot `s` that the kernel dropped.
    fn relink(&mut self, now: Instant, s: u16) {
        let t = self.clock.secs(now);
        let mut back = Vec::new();
        for (k, e) in self.store.iter_mut() {
            if e.slot == s && !e.installed() && e.expires > t {
                e.flags &= !(F_GONE | F_DROPPED);
                back.push(*k);
            }
        }
        back.sort_unstable();
        for k in back {
            if let Some(e) = self.store.get(&k) {
                let r = self.route(&k, &e, now);
                self.emit(Change::Add(r), Why::LinkUp);
            }
        }
    }

    /// A route event from rtnetlink: `new` for RTM_NEWROUTE, else
    /// RTM_DELROUTE. Only routes at our key (table and metric) to a
    /// prefix that could be ours matter.
    pub fn handle_route_event(&mut self, now: Instant, new: bool, r: &TableRoute) {
        let held = self.owner.held(r);
        if !matches!(held, Held::Ours | Held::Foreign) || self.resync_from.is_some() {
            return;
        }
        let key = PKey::of(&r.prefix);
        match (new, held) {
            (true, Held::Ours) => {}
            (true, _) => self.foreign_appeared(key, r),
            (false, Held::Foreign) => {
                self.foreign.remove(&key);
            }
            (false, _) => self.ours_deleted(now, key, r),
        }
        self.refresh_timers();
    }

    /// A route that is not ours appeared at our key.
    fn foreign_appeared(&mut self, key: PKey, r: &TableRoute) {
        let known = self.foreign.contains(&key);
        if !known && self.foreign.len() < self.settings.max_prefixes {
            self.foreign.insert(key);
        }
        if self.store.contains(&key) && !known {
            self.forget(&key);
            self.counters.foreign += 1;
            self.event(FollowEvent::Foreign {
                prefix: r.prefix,
                how: "replaced",
            });
        }
    }

    /// One of our routes was deleted: expired, or to be decided after the
    /// settle time.
    fn ours_deleted(&mut self, now: Instant, key: PKey, r: &TableRoute) {
        let t = self.clock.secs(now);
        let now_ms = self.clock.ms(now);
        let Some(e) = self.store.get(&key) else {
            return;
        };
        let slot_index = self.slots[usize::from(e.slot)].index;
        let same = r.gateway.map(|g| g.octets()) == Some(e.gateway) && slot_index == r.ifindex;
        if !same || !e.installed() {
            return;
        }
        if e.expires <= t.saturating_add(1) {
            self.forget(&key);
            self.counters.expired += 1;
            return;
        }
        let room = self.gone.len() < self.settings.max_prefixes;
        if room {
            self.gone.push_back((key, now_ms));
        }
        if let Some(e) = self.store.get_mut(&key) {
            // No room to decide later: keep it for the link's return.
            e.flags |= if room { F_GONE } else { F_DROPPED };
        }
    }

    /// After lost events (the watcher's buffer overflowed): the kernel's
    /// table now. A followed route that is not there is taken as deleted,
    /// and decided as a delete event is (after the settle time: with its
    /// link, or by an operator); foreign routes are noted again.
    pub fn handle_kernel_table(
        &mut self,
        now: Instant,
        kernel: impl IntoIterator<Item = TableRoute>,
    ) {
        let mut present: HashSet<PKey> = HashSet::new();
        self.foreign.clear();
        for r in kernel {
            let key = PKey::of(&r.prefix);
            match self.owner.held(&r) {
                Held::Ours => {
                    present.insert(key);
                }
                Held::Foreign if self.foreign.len() < self.settings.max_prefixes => {
                    self.foreign.insert(key);
                }
                _ => {}
            }
        }
        let t = self.clock.secs(now);
        let now_ms = self.clock.ms(now);
        let mut missing: Vec<PKey> = self
            .store
            .iter()
            .filter(|(k, e)| e.installed() && !present.contains(*k))
            .map(|(k, _)| *k)
            .collect();
        missing.sort_unstable();
        for k in missing {
            let expired = self
                .store
                .get(&k)
                .is_some_and(|e| e.expires <= t.saturating_add(1));
            if expired {
                self.forget(&k);
                self.counters.expired += 1;
            } else if let Some(e) = self.store.get_mut(&k) {
                e.flags |= F_GONE;
                self.gone.push_back((k, now_ms));
            }
        }
        self.refresh_timers();
    }

    /// The kernel refused `change` (from [`crate::routes::RouteTable::submit`]
    /// or `sync`).
    pub fn handle_failure(&mut self, _now: Instant, change: &Change, error: &RouteError) {
        self.counters.failures += 1;
        let key = PKey::of(&change.route().prefix);
        let code = error.errno.unwrap_or(0);
        let ours_now = self
            .store
            .get(&key)
            .is_some_and(|e| e.gateway == change.route().gateway.octets());
        match change {
            Change::Add(_) if code == errno::EEXIST => {
                self.add_met_a_route(key);
                return self.refresh_timers();
            }
            Change::Add(_) | Change::Replace { .. } if ours_now => {
                if matches!(
                    code,
                    errno::ENODEV | errno::ENETDOWN | errno::ENETUNREACH | errno::EHOSTUNREACH
                ) {
                    // The interface is going or gone: back when it is up.
                    if let Some(e) = self.store.get_mut(&key) {
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
        self.refresh_timers();
    }

    /// Our create-exclusive add met EEXIST: a route holds the key. During a
    /// resync it is the resync's own (the merge at its end lays snooping
    /// over it); otherwise the table is read ([`Need::Inspect`]) to tell a
    /// route of ours from another writer (adopted) from another's (left,
    /// foreign). Nothing is sent for the prefix until then.
    fn add_met_a_route(&mut self, key: PKey) {
        // It was counted as added when it was asked for.
        self.counters.added = self.counters.added.saturating_sub(1);
        if self.resync_from.is_some() {
            return;
        }
        let Some(e) = self.store.get_mut(&key) else {
            return;
        };
        e.flags |= F_INSPECT;
        if self.inspect.len() < self.settings.max_prefixes {
            self.inspect.insert(key);
        }
        if !self.asked_inspect {
            self.asked_inspect = true;
            self.needs.push_back(Need::Inspect);
        }
    }

    /// Our table, read after adds met routes the core did not know
    /// ([`Need::Inspect`]): at each such key, a route of ours is adopted
    /// and made what snooping says (replaced); another's is left in place
    /// and the prefix is foreign; a key that is free now gets its add again.
    pub fn handle_inspected(&mut self, now: Instant, kernel: impl IntoIterator<Item = TableRoute>) {
        self.asked_inspect = false;
        let mut waiting = std::mem::take(&mut self.inspect);
        let mut found: Vec<(PKey, TableRoute)> = Vec::new();
        for r in kernel {
            let key = PKey::of(&r.prefix);
            if waiting.contains(&key) && self.owner.held(&r) != Held::Unrelated {
                found.push((key, r));
            }
        }
        found.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.metric.cmp(&b.1.metric)));
        for (key, r) in found {
            if !waiting.remove(&key) {
                continue;
            }
            self.inspected(now, key, &r);
        }
        // Gone meanwhile: the add again.
        let mut free: Vec<PKey> = waiting.into_iter().collect();
        free.sort_unstable();
        for key in free {
            if let Some(e) = self.clear_inspect(&key) {
                let r = self.route(&key, &e, now);
                self.emit(Change::Add(r), Why::Reply);
            }
        }
        self.refresh_timers();
    }

    /// What holds `key`, as the table says.
    fn inspected(&mut self, now: Instant, key: PKey, r: &TableRoute) {
        match self.owner.held(r) {
            Held::Ours => {
                if let (Some(e), Some(old)) = (self.clear_inspect(&key), r.as_route()) {
                    let new = self.route(&key, &e, now);
                    self.emit(Change::Replace { old, new }, Why::Adopted);
                }
            }
            _ => {
                self.forget(&key);
                if self.foreign.len() < self.settings.max_prefixes {
                    self.foreign.insert(key);
                }
                self.counters.foreign += 1;
                self.event(FollowEvent::Foreign {
                    prefix: r.prefix,
                    how: "eexist",
                });
            }
        }
    }

    /// The entry of `key`, no longer waiting for the table.
    fn clear_inspect(&mut self, key: &PKey) -> Option<Entry> {
        let e = self.store.get_mut(key)?;
        e.flags &= !F_INSPECT;
        Some(*e)
    }

    /// The kernel deletes of our routes whose settle time is over: dropped
    /// with their link (kept, reinstalled when the link is back), or an
    /// operator's (forgotten, logged).
    pub(super) fn settle_deletes(&mut self, now: Instant) {
        let now_ms = self.clock.ms(now);
        let settle = self.settings.settle.as_millis() as u64;
        while let Some(&(key, at)) = self.gone.front() {
            if at + settle > now_ms {
                break;
            }
            self.gone.pop_front();
            self.decide_gone(now, key, at);
        }
    }

    fn decide_gone(&mut self, now: Instant, key: PKey, at: u64) {
        let settle = self.settings.settle.as_millis() as u64;
        let Some(e) = self.store.get(&key) else {
            return;
        };
        if e.flags & F_GONE == 0 {
            return;
        }
        let slot = &self.slots[usize::from(e.slot)];
        let with_link = !slot.up || slot.last_down.is_some_and(|d| d + settle >= at);
        if with_link {
            if let Some(e) = self.store.get_mut(&key) {
                e.flags = (e.flags & !F_GONE) | F_DROPPED;
            }
            return;
        }
        let route = self.route(&key, &e, now);
        self.forget(&key);
        self.counters.manual_deletes += 1;
        self.event(FollowEvent::ManualDelete { route });
    }

    /// Follow our routes of the kernel's table (at start, and after a
    /// resync): what is ours at our key is followed, what is another's is
    /// foreign. Routes out of interfaces the core does not know, and those
    /// past `max_prefixes`, are not followed (they expire in the kernel).
    pub(super) fn load_kernel(
        &mut self,
        now: Instant,
        kernel: impl IntoIterator<Item = TableRoute>,
    ) {
        let t = self.clock.secs(now);
        for r in kernel {
            let key = PKey::of(&r.prefix);
            match self.owner.held(&r) {
                Held::Ours => {}
                Held::Foreign => {
                    if self.foreign.len() < self.settings.max_prefixes {
                        self.foreign.insert(key);
                    }
                    continue;
                }
                Held::OursElsewhere | Held::Unrelated => continue,
            }
            let Some(slot) = self.slots.iter().position(|s| s.index == r.ifindex) else {
                continue;
            };
            if self.store.len() >= self.settings.max_prefixes {
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
            self.store.insert(key, e);
        }
    }
}
