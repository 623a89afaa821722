//! A per-interface packet budget: a token bucket, sans IO.
//!
//! A flood of DHCPv6 traffic on one client link (a misbehaving or hostile
//! client) must not starve the other interfaces, the route installer or the
//! resynchronisation. The caller keeps one [`PacketBudget`] per capture
//! socket and asks it, at each wake-up, how many packets it may handle now
//! ([`PacketBudget::grant`]); what it may not handle it leaves in the socket
//! buffer (where the kernel drops the excess and counts it, see
//! [`super::CaptureSocket::kernel_stats`]) or reads and discards, counting it.
//!
//! Time is an argument (`now`), so the bucket is tested on made-up instants.
//! Tokens are kept in nanotoken units (one packet is 10^9), so that a rate
//! that does not divide a second refills exactly, with no drift.

use std::time::{Duration, Instant};

const NANO: u64 = 1_000_000_000;

/// A token bucket of packets: `rate` packets a second on average, at most
/// `burst` at once.
#[derive(Debug, Clone)]
pub struct PacketBudget {
    /// Refill rate, packets per second.
    rate: u64,
    /// Capacity, in nanotokens.
    capacity: u64,
    /// Tokens now, in nanotokens (never above `capacity`).
    tokens: u64,
    /// When `tokens` was last brought up to date.
    last: Instant,
    /// Packets refused since creation.
    refused: u64,
}

impl PacketBudget {
    /// A full bucket at `now`: `rate` packets a second (at least 1), bursts
    /// of up to `burst` packets (at least 1).
    pub fn new(rate: u32, burst: u32, now: Instant) -> Self {
        let capacity = u64::from(burst.max(1)) * NANO;
        PacketBudget {
            rate: u64::from(rate.max(1)),
            capacity,
            tokens: capacity,
            last: now,
            refused: 0,
        }
    }

    /// Packets per second.
    pub fn rate(&self) -> u32 {
        self.rate as u32
    }

    /// Largest burst, in packets.
    pub fn burst(&self) -> u32 {
        (self.capacity / NANO) as u32
    }

    fn refill(&mut self, now: Instant) {
        // A `now` before `last` (callers mixing clocks) refills nothing.
        let elapsed = now.saturating_duration_since(self.last);
        self.last = self.last.max(now);
        let missing = self.capacity - self.tokens;
        if missing == 0 {
            return;
        }
        // Time to fill the bucket from empty, to bound the multiplication.
        let full_after = Duration::from_nanos(self.capacity / self.rate + 1);
        if elapsed >= full_after {
            self.tokens = self.capacity;
            return;
        }
        // elapsed < capacity / rate + 1 ns, so elapsed_ns * rate < capacity + rate: no overflow.
        let add = (elapsed.as_nanos() as u64).saturating_mul(self.rate);
        self.tokens = self.tokens.saturating_add(add).min(self.capacity);
    }

    /// Whole packets available at `now`.
    pub fn available(&mut self, now: Instant) -> u32 {
        self.refill(now);
        (self.tokens / NANO).min(u64::from(u32::MAX)) as u32
    }

    /// Take one packet's token at `now`; false (and counted as refused) when
    /// the bucket is empty.
    pub fn take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= NANO {
            self.tokens -= NANO;
            true
        } else {
            self.refused += 1;
            false
        }
    }

    /// Take up to `want` tokens at `now` and say how many were granted (the
    /// batch the caller may read in this wake-up). Nothing is counted as
    /// refused here: the caller reports what it then drops with
    /// [`PacketBudget::refuse`].
    pub fn grant(&mut self, want: u32, now: Instant) -> u32 {
        let n = self.available(now).min(want);
        self.tokens -= u64::from(n) * NANO;
        n
    }

    /// Count `n` packets dropped for want of budget.
    pub fn refuse(&mut self, n: u64) {
        self.refused = self.refused.saturating_add(n);
    }

    /// Packets refused so far ([`PacketBudget::take`] failures and
    /// [`PacketBudget::refuse`] counts).
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// How long after `now` until at least one packet is available (zero if
    /// one is available now): how long a caller that has run out may sleep.
    pub fn wait_time(&mut self, now: Instant) -> Duration {
        self.refill(now);
        if self.tokens >= NANO {
            return Duration::ZERO;
        }
        let missing = NANO - self.tokens;
        // ceil(missing / rate) nanoseconds.
        Duration::from_nanos(missing.div_ceil(self.rate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn starts_full_and_drains() {
        let t0 = Instant::now();
        let mut b = PacketBudget::new(10, 5, t0);
        assert_eq!((b.rate(), b.burst()), (10, 5));
        assert_eq!(b.available(t0), 5);
        for _ in 0..5 {
            assert!(b.take(t0));
        }
        assert!(!b.take(t0));
        assert!(!b.take(t0));
        assert_eq!(b.refused(), 2);
    }

    #[test]
    fn refills_at_the_rate_and_caps_at_the_burst() {
        let t0 = Instant::now();
        let mut b = PacketBudget::new(10, 5, t0);
        assert_eq!(b.grant(100, t0), 5);
        assert_eq!(b.available(t0 + ms(99)), 0);
        assert_eq!(b.available(t0 + ms(100)), 1);
        assert_eq!(b.available(t0 + ms(350)), 3);
        assert_eq!(b.grant(2, t0 + ms(350)), 2);
        assert_eq!(b.available(t0 + ms(350)), 1);
        // Long idle: never more than the burst.
        assert_eq!(b.available(t0 + Duration::from_secs(3600)), 5);
        assert_eq!(b.grant(u32::MAX, t0 + Duration::from_secs(3600)), 5);
    }

    #[test]
    fn an_uneven_rate_does_not_drift() {
        // 3 packets a second, taken as soon as there is one, over 100 s:
        // exactly 300, plus the initial burst of 2. (The burst is 2 so that
        // the bucket is never full while refilling: a full bucket rightly
        // loses what would overflow it.)
        let t0 = Instant::now();
        let mut b = PacketBudget::new(3, 2, t0);
        let mut got = 0;
        for step in 0..=100_000u64 {
            if b.take(t0 + ms(step)) {
                got += 1;
            }
        }
        assert_eq!(got, 302);
    }

    #[test]
    fn time_going_backwards_grants_nothing_extra() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut b = PacketBudget::new(1000, 10, t0);
        assert_eq!(b.grant(10, t0), 10);
        assert_eq!(b.available(t0 - Duration::from_secs(5)), 0);
        assert_eq!(b.available(t0 + ms(1)), 1);
    }

    #[test]
    fn wait_time_says_when_the_next_token_comes() {
        let t0 = Instant::now();
        let mut b = PacketBudget::new(4, 1, t0);
        assert_eq!(b.wait_time(t0), Duration::ZERO);
        assert!(b.take(t0));
        assert_eq!(b.wait_time(t0), ms(250));
        assert_eq!(b.wait_time(t0 + ms(100)), ms(150));
        assert!(!b.take(t0 + ms(249)));
        assert!(b.take(t0 + ms(250)));
    }

    #[test]
    fn extreme_settings_do_not_overflow() {
        let t0 = Instant::now();
        let mut b = PacketBudget::new(u32::MAX, u32::MAX, t0);
        assert_eq!(b.available(t0), u32::MAX);
        assert_eq!(b.grant(u32::MAX, t0), u32::MAX);
        assert!(b.available(t0 + ms(1)) > 4_000_000);
        assert_eq!(b.available(t0 + Duration::from_secs(100_000)), u32::MAX);
        let mut z = PacketBudget::new(0, 0, t0);
        assert_eq!((z.rate(), z.burst()), (1, 1));
        assert!(z.take(t0));
        assert!(!z.take(t0));
        b.refuse(u64::MAX);
        b.refuse(1);
        assert_eq!(b.refused(), u64::MAX);
    }
}
