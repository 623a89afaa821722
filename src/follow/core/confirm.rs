//! Targeted queries: a followed prefix whose lease runs out within
//! `confirm_before` with no renewal seen (the client may be gone, or may
//! have renewed by a path the relay does not see) is asked about alone,
//! by QUERY_BY_ADDRESS of the prefix over the bulk connection (RFC 5007
//! s.4.1.2.1, RFC 5460 s.6), in batches, within a rate: its route is
//! extended when a server holds a later expiry, else left to expire. N
//! leases near expiry cost N small queries spread over time, never N full
//! resyncs.

use super::events::{Need, Why};
use super::store::{PKey, BUCKET_SHIFT, F_ASKED, NEVER};
use super::FollowCore;
use crate::routes::Change;
use ipnet::Ipv6Net;
use std::collections::VecDeque;
use std::time::Instant;

/// How much later than the route's a server's expiry must be to extend
/// it (one expiry bucket, seconds): less is the same lease read twice.
const SLACK: u32 = 1 << BUCKET_SHIFT;

/// What is to ask, and the budget.
#[derive(Debug)]
pub(super) struct Confirm {
    /// Entries expiring up to this (seconds of the clock) were looked at.
    scanned_until: u32,
    /// Prefixes to ask about, the soonest to expire first.
    queue: VecDeque<PKey>,
    /// A batch is out, not answered yet.
    in_flight: bool,
    /// Queries the rate allows now (a token bucket of `confirm_batch`).
    tokens: f64,
    /// When `tokens` was counted (ms of the clock).
    at_ms: u64,
    /// When the store was last scanned (ms of the clock).
    scanned_at_ms: u64,
}

impl Confirm {
    pub(super) fn new(_now: Instant) -> Self {
        Confirm {
            scanned_until: 0,
            queue: VecDeque::new(),
            in_flight: false,
            tokens: 0.0,
            at_ms: 0,
            scanned_at_ms: 0,
        }
    }
}

impl FollowCore {
    /// Queries per millisecond the rate allows.
    fn confirm_rate(&self) -> f64 {
        f64::from(self.settings.confirm_per_minute.max(1)) / 60_000.0
    }

    /// When the confirm timer is due: when the budget allows the next
    /// query of a waiting queue, when the next expiry bucket enters the
    /// window, or (one bucket after the last scan at the soonest) when an
    /// expiry was set inside the part of the window already looked at (a
    /// short lease snooped or learned since); none while a batch is out.
    pub(super) fn confirm_deadline_ms(&self) -> Option<u64> {
        let c = &self.confirm;
        let off = self.settings.confirm_per_minute == 0 || self.settings.confirm_before.is_zero();
        if c.in_flight || off {
            return None;
        }
        let behind = self
            .store
            .low()
            .filter(|&l| l <= c.scanned_until)
            .map(|_| c.scanned_at_ms + (1000 << BUCKET_SHIFT));
        let next = if c.queue.is_empty() {
            let window = self.settings.confirm_before.as_secs();
            self.store
                .next_bucket_end_after(c.scanned_until)
                .map(|end| end.saturating_sub(window).saturating_mul(1000))
        } else {
            let missing = (1.0 - c.tokens).max(0.0);
            Some(c.at_ms + (missing / self.confirm_rate()).ceil() as u64)
        };
        match (behind, next) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The confirm timer fired: look for prefixes that entered the window,
    /// and ask about as many as the budget allows.
    pub(super) fn confirm_due(&mut self, now: Instant) {
        let now_ms = self.clock.ms(now);
        let cap = self.settings.confirm_batch.max(1) as f64;
        let earned = now_ms.saturating_sub(self.confirm.at_ms) as f64 * self.confirm_rate();
        self.confirm.tokens = (self.confirm.tokens + earned).min(cap);
        self.confirm.at_ms = now_ms;
        if self.confirm.in_flight {
            return;
        }
        let until = self
            .clock
            .secs(now)
            .saturating_add(self.settings.confirm_before.as_secs() as u32);
        // An expiry set since the last scan at or before what was scanned
        // is behind the window's front: looked at again, one bucket after
        // the last scan at the soonest (a whole-store walk).
        let low = self.store.low();
        let behind = low.filter(|&l| l <= self.confirm.scanned_until);
        let rescan =
            behind.is_some() && now_ms >= self.confirm.scanned_at_ms + (1000 << BUCKET_SHIFT);
        if until > self.confirm.scanned_until || rescan {
            let from = match behind {
                Some(l) if rescan => l.saturating_sub(1),
                _ => self.confirm.scanned_until,
            };
            if low.is_some_and(|l| l > from) {
                // In this scan, or ahead of the window (the front reaches it).
                self.store.take_low();
            }
            let to = until.max(self.confirm.scanned_until);
            self.confirm_scan(from, to);
            self.confirm.scanned_until = to;
            self.confirm.scanned_at_ms = now_ms;
        }
        let n = (self.confirm.tokens as usize).min(self.confirm.queue.len());
        if n == 0 {
            return;
        }
        self.confirm.tokens -= n as f64;
        let batch: Vec<Ipv6Net> = self.confirm.queue.drain(..n).map(|k| k.net()).collect();
        self.counters.confirm_queries += batch.len() as u64;
        self.confirm.in_flight = true;
        self.needs.push_back(Need::Confirm(batch));
    }

    /// Queue the installed prefixes expiring in (`from`, `until`] not asked
    /// about yet, the soonest first.
    fn confirm_scan(&mut self, from: u32, until: u32) {
        let mut found: Vec<(u32, PKey)> = Vec::new();
        for (k, e) in self.store.iter_mut() {
            let near = e.expires > from && e.expires <= until && e.expires != NEVER;
            if near && e.installed() && e.flags & F_ASKED == 0 {
                e.flags |= F_ASKED;
                found.push((e.expires, *k));
            }
        }
        found.sort_unstable();
        self.confirm.queue.extend(found.into_iter().map(|(_, k)| k));
    }

    /// The servers' answers to a batch of [`Need::Confirm`]: for each
    /// prefix, the valid lifetime the most recent binding a server holds
    /// for it has left, or `None` (no server holds one, or none answered).
    /// A later expiry than the route's extends it; else it expires. Later
    /// means by more than one expiry bucket (8 s): the server counts its client
    /// transaction times in whole seconds (OPTION_CLT_TIME, RFC 5007 s.4.1.2.3),
    /// so the same lease read twice may end a second or two apart.
    pub fn handle_confirmed(&mut self, now: Instant, answers: Vec<(Ipv6Net, Option<u32>)>) {
        self.confirm.in_flight = false;
        for (prefix, valid) in answers {
            let k = PKey::of(&prefix);
            let (Some(e), Some(valid)) = (self.store.get(&k), valid) else {
                continue;
            };
            let expires = self.clock.expiry(now, valid);
            if !e.installed() || expires <= e.expires.saturating_add(SLACK) {
                continue;
            }
            let mut n = e;
            n.expires = expires;
            n.flags &= !F_ASKED;
            let old = self.route(&k, &e, now);
            self.store.insert(k, n);
            let new = self.route(&k, &n, now);
            self.emit(Change::Replace { old, new }, Why::Confirmed);
        }
        self.refresh_timers();
    }
}
