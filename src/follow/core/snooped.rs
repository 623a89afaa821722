//! What snooping saw on the client links: REPLYs that delegate, renew or
//! withdraw prefixes (RFC 8415 s.18.2.10.1, RFC 8987 s.4), and server
//! messages arriving from the client side.

use super::clients::Noted;
use super::events::{FollowEvent, Why};
use super::store::{fingerprint, Entry, PKey, F_INSPECT, F_SNOOPED, NO_SERVER};
use super::FollowCore;
use crate::proto::{Duid, StatusCode};
use crate::recovery::rejection::Rejection;
use crate::routes::Change;
use crate::snoop::{Forged, Reply};
use ipnet::Ipv6Net;
use std::net::Ipv6Addr;
use std::sync::Arc;
use std::time::Instant;

/// The client DUIDs kept are compacted once they outnumber twice the
/// followed prefixes, or this many.
const MIN_CLIENTS: usize = 1024;

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

/// No status, or Success (RFC 8415 s.21.13).
pub(super) fn status_ok(s: Option<StatusCode>) -> bool {
    matches!(s, None | Some(StatusCode::Success))
}

impl FollowCore {
    /// A REPLY seen leaving the router on the interface with index
    /// `ifindex` (directly, or in RELAY-REPL to a lightweight relay).
    pub fn handle_reply(&mut self, now: Instant, ifindex: u32, r: &Reply) {
        self.reply(now, ifindex, r);
        self.refresh_timers();
    }

    fn reply(&mut self, now: Instant, ifindex: u32, r: &Reply) {
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
        let mut followed = false;
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
                    self.withdraw(now, prefix, client, hop, slot, Why::ValidLifetimeZero);
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
                followed |= self.learn(now, learned);
            }
        }
        if let (true, Some(d)) = (followed, &r.client_id) {
            self.note_client(d);
        }
    }

    /// Keep the DUID of a client whose prefix is followed (the live view
    /// lists it); the DUIDs kept are compacted when they fill their arena
    /// or outnumber twice the followed prefixes.
    fn note_client(&mut self, duid: &Duid) {
        if self.clients.note(duid.as_bytes()) == Noted::Full {
            self.compact_clients();
            if self.clients.note(duid.as_bytes()) == Noted::Full {
                self.clients.blind();
            }
        }
        if self.clients.len() > 2 * self.store.len().max(MIN_CLIENTS) {
            self.compact_clients();
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

    /// Install or refresh one prefix a REPLY delegated; whether it is
    /// followed.
    fn learn(&mut self, now: Instant, l: Learned) -> bool {
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
            return false;
        }
        let key = PKey::of(&l.prefix);
        if self.foreign.contains(&key) {
            self.counters.foreign += 1;
            self.event(FollowEvent::Foreign {
                prefix: l.prefix,
                how: "listed",
            });
            return false;
        }
        self.tombstones.remove(&key);
        let expires = self.clock.expiry(now, l.valid);
        let fresh = Entry {
            gateway: l.hop.octets(),
            expires,
            seen: self.clock.secs(now) + 1,
            client: l.client,
            slot: l.slot,
            flags: F_SNOOPED,
            server: l.server,
        };
        let old = self.store.get(&key);
        match old {
            None if self.store.len() >= self.settings.max_prefixes => {
                self.counters.capped += 1;
                self.ignore(Some(l.prefix), "cap");
                return false;
            }
            None => {
                self.store.insert(key, fresh);
                let r = self.route(&key, &fresh, now);
                self.emit(Change::Add(r), Why::Reply);
            }
            Some(o) if o.flags & F_INSPECT != 0 => {
                // Whose route holds the key is being asked: nothing is sent
                // until the table says.
                self.store.insert(
                    key,
                    Entry {
                        flags: fresh.flags | F_INSPECT,
                        ..fresh
                    },
                );
            }
            Some(o) => {
                self.store.insert(key, fresh);
                let new = self.route(&key, &fresh, now);
                if !o.installed() {
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
        true
    }

    /// Remove a followed prefix (valid lifetime 0, a confirmed release),
    /// when it is ours and belongs to this client. A prefix the core does
    /// not follow (its route another writer's) is removed all the same
    /// when the message came through `slot`: the delete names our
    /// protocol, the client as next hop and the interface, so the kernel
    /// takes only that route of ours, and "already gone" is no failure.
    pub(super) fn withdraw(
        &mut self,
        now: Instant,
        prefix: Ipv6Net,
        client: u32,
        hop: Ipv6Addr,
        slot: Option<u16>,
        why: Why,
    ) {
        let key = PKey::of(&prefix);
        let Some(e) = self.store.get(&key) else {
            if self.foreign.contains(&key) {
                return;
            }
            if self.resync_from.is_some() {
                self.remember_tombstone(key, why);
            }
            self.withdraw_unfollowed(now, prefix, hop, slot, why);
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
        if e.installed() {
            let r = self.route(&key, &e, now);
            self.emit(Change::Remove(r), why);
        }
    }

    /// The removal of a route of ours for `prefix` through `hop` out of
    /// `slot`, which the core does not follow, when planning accepts it.
    fn withdraw_unfollowed(
        &mut self,
        now: Instant,
        prefix: Ipv6Net,
        hop: Ipv6Addr,
        slot: Option<u16>,
        why: Why,
    ) {
        let Some(s) = slot.and_then(|s| self.slots.get(usize::from(s))) else {
            return;
        };
        let Some(pos) = s.pos else {
            return;
        };
        if self.planner.plan_on(prefix, hop, pos).is_err() {
            return;
        }
        let _ = now;
        let r = self.owner.route(prefix, hop, s.name.clone(), s.index, None);
        self.emit(Change::Remove(r), why);
    }

    fn remember_tombstone(&mut self, key: PKey, why: Why) {
        if self.tombstones.len() < self.settings.max_prefixes {
            self.tombstones.insert(key, why);
        }
    }

    /// A server-to-client message arrived from the client side of `ifindex`:
    /// counted, and nothing else.
    pub fn handle_forged(&mut self, _now: Instant, ifindex: u32, f: &Forged) {
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
}
