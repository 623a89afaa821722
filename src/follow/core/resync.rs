//! Resyncs: when the next full Bulk Leasequery is due, and how its result
//! is merged with what snooping learned meanwhile: the most recent client
//! transaction wins, by time (RFC 5007 s.4.3.4).

use super::events::Why;
use super::store::{Entry, PKey, F_SNOOPED, NEVER};
use super::FollowCore;
use crate::proto::Duid;
use crate::routes::{Change, TableRoute};
use std::time::Instant;

impl FollowCore {
    /// The next resync after one that ended at `now` (`ok`: it restored
    /// something): the interval with jitter (the retry time after a
    /// failure), never sooner than the floor.
    pub(super) fn schedule(&mut self, now: Instant, ok: bool) {
        let t = self.clock.secs(now);
        let interval = self.settings.resync_interval.as_secs_f64();
        let after = if ok {
            let j = self.settings.resync_jitter.clamp(0.0, 0.5);
            interval * (1.0 + j * (2.0 * self.rng.f64() - 1.0))
        } else {
            interval.min(self.settings.resync_retry.as_secs_f64())
        };
        self.scheduled = t.saturating_add(after.max(1.0) as u32);
        self.not_before = t.saturating_add(self.settings.min_resync_spacing.as_secs() as u32);
        self.resync_requested = false;
    }

    /// A resync is asked for now (SIGHUP, `systemctl reload`): it starts at
    /// once, or when the floor after the last one has passed
    /// ([`Need::Resync`](super::Need::Resync) says when).
    pub fn handle_resync_requested(&mut self, _now: Instant) {
        if self.resync_from.is_none() {
            self.resync_requested = true;
            self.refresh_timers();
        }
    }

    /// When the next resync is due: the interval's deadline (with jitter),
    /// or at once when one was asked for; never sooner than
    /// `min_resync_spacing` after the last one. Leases near expiry do not
    /// bring it forward: those are asked about one by one
    /// ([`Need::Confirm`](super::Need::Confirm)).
    pub fn resync_deadline(&self) -> Instant {
        self.clock.at_ms(self.resync_deadline_ms())
    }

    pub(super) fn resync_deadline_ms(&self) -> u64 {
        let due = if self.resync_requested {
            0
        } else {
            self.scheduled
        };
        u64::from(due.max(self.not_before)) * 1000
    }

    /// A resync is due and none is running.
    pub fn resync_due(&self, now: Instant) -> bool {
        self.resync_from.is_none() && now >= self.resync_deadline()
    }

    /// A resync is running.
    pub fn resyncing(&self) -> bool {
        self.resync_from.is_some()
    }

    /// A resync starts now: the core goes on learning and routing (snooping
    /// never waits for a recovery); what it learns meanwhile, removals
    /// included, is laid over the resync's result by
    /// [`FollowCore::handle_resync_finished`], as the more recent client
    /// transaction.
    pub fn handle_resync_started(&mut self, now: Instant) {
        self.resync_from = Some(self.clock.secs(now) + 1);
        self.asked_resync = false;
        self.resync_requested = false;
        self.tombstones.clear();
        self.refresh_timers();
    }

    /// The resync is over: `kernel` is every route of our table now (ours
    /// and others'), `answered` the DUIDs of the servers that answered it
    /// completely, `ok` whether it restored anything (complete or partial:
    /// the next one is due after the interval; else after the retry time).
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
    pub fn handle_resync_finished(
        &mut self,
        now: Instant,
        kernel: impl IntoIterator<Item = TableRoute>,
        answered: &[Duid],
        ok: bool,
    ) {
        let from = self.resync_from.take().unwrap_or(self.clock.secs(now) + 1);
        let old = self.store.take();
        let tombstones = std::mem::take(&mut self.tombstones);
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
            match self.store.get(&k) {
                Some(n) if n.gateway == o.gateway && n.slot == o.slot => {
                    let mut kept = Entry {
                        client: o.client,
                        seen: o.seen,
                        server: o.server,
                        flags: n.flags | (o.flags & F_SNOOPED),
                        ..n
                    };
                    if kept.expires == NEVER && o.expires != NEVER {
                        // The kernel lists a route whose expiry has passed
                        // (awaiting its garbage collection) with none: the
                        // lease's end stays the one the core knew.
                        kept.expires = o.expires;
                    } else if wins && kept.expires != o.expires {
                        replay.push((k, o));
                    }
                    self.store.insert(k, kept);
                }
                _ if wins && o.installed() => replay.push((k, o)),
                _ => {}
            }
        }
        replay.sort_unstable_by_key(|(k, _)| *k);
        let t = self.clock.secs(now);
        for (k, o) in replay {
            if o.expires <= t || self.foreign.contains(&k) {
                continue;
            }
            self.overlay(now, k, o);
        }
        let mut tomb: Vec<(PKey, Why)> = tombstones.into_iter().collect();
        tomb.sort_unstable_by_key(|(k, _)| *k);
        for (k, why) in tomb {
            if let Some(e) = self.store.get(&k) {
                let r = self.route(&k, &e, now);
                self.forget(&k);
                self.emit(Change::Remove(r), why);
            }
        }
        // The client DUIDs of prefixes no longer followed go.
        self.compact_clients();
        self.counters.resyncs += 1;
        self.schedule(now, ok);
        self.refresh_timers();
    }

    /// Lay the snooped entry `o` over what the resync left at `k`.
    fn overlay(&mut self, now: Instant, k: PKey, o: Entry) {
        let new = self.route(&k, &o, now);
        match self.store.get(&k) {
            Some(n) => {
                let old = self.route(&k, &n, now);
                self.store.insert(k, o);
                self.emit(Change::Replace { old, new }, Why::Resync);
            }
            None if self.store.len() < self.settings.max_prefixes => {
                self.store.insert(k, o);
                self.emit(Change::Add(new), Why::Resync);
            }
            None => self.counters.capped += 1,
        }
    }
}
