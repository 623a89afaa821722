//! The core's clock and its one timer table (as quinn-proto keeps one):
//! every deadline the core has is a named [`Timer`] here, and
//! [`super::FollowCore::poll_timeout`] is the earliest of them.

use super::store::NEVER;
use std::time::{Duration, Instant};

/// The core's clock: instants as milliseconds (queues) or seconds (the
/// compact entries) since the core was made.
#[derive(Debug, Clone, Copy)]
pub(super) struct Clock {
    epoch: Instant,
}

impl Clock {
    pub(super) fn new(epoch: Instant) -> Self {
        Clock { epoch }
    }

    /// The instant the clock counts from.
    pub(super) fn epoch(&self) -> Instant {
        self.epoch
    }

    /// `t` in milliseconds of the clock.
    pub(super) fn ms(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    /// `t` in whole seconds of the clock (below [`NEVER`]).
    pub(super) fn secs(&self, t: Instant) -> u32 {
        t.saturating_duration_since(self.epoch)
            .as_secs()
            .min(u64::from(NEVER - 1)) as u32
    }

    /// The instant `ms` milliseconds after the epoch.
    pub(super) fn at_ms(&self, ms: u64) -> Instant {
        self.epoch + Duration::from_millis(ms)
    }

    /// The expiry, in seconds, of a lifetime of `valid` seconds from `now`
    /// (RFC 8415 s.7.7: 0xffffffff is infinity, [`NEVER`]).
    pub(super) fn expiry(&self, now: Instant, valid: u32) -> u32 {
        if valid == super::store::INFINITY {
            NEVER
        } else {
            self.secs(now).saturating_add(valid).min(NEVER - 1)
        }
    }
}

/// The core's deadlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Timer {
    /// A resync is due (the interval with jitter, or a request, not sooner
    /// than the floor after the last one).
    Resync,
    /// The oldest kernel delete of one of our routes is to be decided
    /// (the settle time after it).
    Settle,
    /// The oldest pending RELEASE/DECLINE waited long enough for its REPLY.
    Release,
    /// Every prefix of the earliest expiry bucket has run out.
    Expiry,
    /// Prefixes near expiry are to be asked about (a new bucket entered the
    /// window, or the rate limit allows the next batch).
    Confirm,
}

const TIMERS: [Timer; 5] = [
    Timer::Resync,
    Timer::Settle,
    Timer::Release,
    Timer::Expiry,
    Timer::Confirm,
];

/// One deadline (milliseconds of the clock) per [`Timer`], or none.
#[derive(Debug, Clone, Default)]
pub(super) struct TimerTable {
    at: [Option<u64>; 5],
}

impl TimerTable {
    /// Set `t` to fire at `ms`, or stop it (`None`).
    pub(super) fn set(&mut self, t: Timer, ms: Option<u64>) {
        self.at[t as usize] = ms;
    }

    /// When `t` fires, if it is set.
    pub(super) fn get(&self, t: Timer) -> Option<u64> {
        self.at[t as usize]
    }

    /// The earliest deadline.
    pub(super) fn next(&self) -> Option<u64> {
        self.at.iter().flatten().copied().min()
    }

    /// The timers due at `now_ms`, in table order.
    pub(super) fn expired(&self, now_ms: u64) -> impl Iterator<Item = Timer> + '_ {
        TIMERS
            .into_iter()
            .filter(move |t| self.get(*t).is_some_and(|at| at <= now_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_earliest_and_the_expired() {
        let mut t = TimerTable::default();
        assert_eq!(t.next(), None);
        t.set(Timer::Expiry, Some(5000));
        t.set(Timer::Settle, Some(700));
        t.set(Timer::Resync, Some(900));
        assert_eq!(t.next(), Some(700));
        let due: Vec<Timer> = t.expired(900).collect();
        assert_eq!(due, [Timer::Resync, Timer::Settle]);
        t.set(Timer::Settle, None);
        assert_eq!(t.next(), Some(900));
        let c = Clock::new(Instant::now());
        assert_eq!(c.expiry(c.at_ms(2500), 10), 12);
        assert_eq!(c.expiry(c.at_ms(0), u32::MAX), NEVER);
        assert_eq!(c.expiry(c.at_ms(1000), u32::MAX - 1), NEVER - 1);
    }
}
