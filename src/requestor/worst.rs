//! The longest the requestor can keep one server busy, from its settings
//! alone: written once here, from what `requestor::tries` and
//! [`super::core`] do, so that `pdrestore check-config` can print the
//! worst case of a run and a test can hold the units' `TimeoutStartSec` to
//! it.
//!
//! What the requestor does per server: its queries are shared over up to
//! `max_connections` connections that run side by side, each share with its
//! own tries, so one share's tries bound the server; the servers run side
//! by side too, with the same settings, so one server bounds them all.
//! A share's tries:
//!
//! - **The boot patience** ([`RetryPolicy::startup_patience`]): tries that
//!   cannot connect at all, until it is over, count against nothing. The
//!   last of them ends before it does.
//! - **Then the tries that count**, [`RetryPolicy::attempts`] at most, each
//!   after a backoff (at most [`RetryPolicy::max_delay`], or the
//!   QueryTerminated wait when longer; without a patience, the first try
//!   waits nothing and the others the growing backoff). A try waits at
//!   most: the connect ([`ConnectionConfig::connect_timeout`]), the first
//!   answer ([`ConnectionConfig::first_answer_timeout`], at most the data
//!   timeout), then a stream that stalls
//!   ([`ConnectionConfig::data_timeout`]), and the close
//!   ([`super::connection::CLOSE_WAIT`]). A query never answered is tried
//!   twice at most ([`super::retry::SILENT_TRIES`]); each of those tries
//!   waits less than one that stalls, so the bound holds for it too.
//! - **The server deadline** ([`ConnectionConfig::server_deadline`]), when
//!   there is one, caps it all.
//!
//! Not in it: the time the servers spend sending their answers, as long as
//! each message comes within the timeouts of the one before (a server that
//! keeps sending is answering, and is never cut off for it: its stream is
//! bounded by the `[limits]`, not by a clock).

use super::core::ConnectionConfig;
use super::retry::RetryPolicy;
use std::fmt;
use std::time::Duration;

/// The longest one server's tries wait, and what it is made of
/// ([`ServerWorstCase::total`]). See the [module](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerWorstCase {
    /// Failed connects waited for before the tries that count.
    pub patience: Duration,
    /// Tries that count.
    pub tries: u32,
    /// All the waits before those tries together.
    pub backoff: Duration,
    /// The connect of one try.
    pub connect: Duration,
    /// The wait for the first answer of one try.
    pub first_answer: Duration,
    /// The stall that ends one try.
    pub data: Duration,
    /// The close of one try.
    pub close: Duration,
    /// The server deadline, which caps it all.
    pub deadline: Option<Duration>,
}

impl ServerWorstCase {
    /// The worst case of one server with these connection settings and
    /// this retry policy.
    pub fn of(conn: &ConnectionConfig, retry: &RetryPolicy) -> Self {
        let tries = retry.attempts.max(1);
        let wait = |n: u32| retry.delay(n, 0.0).max(retry.terminated_delay);
        let backoff = if retry.startup_patience.is_zero() {
            (1..tries).map(wait).sum()
        } else {
            // After the patience, the backoff has grown to its cap, and
            // even the first try that counts may follow one.
            (0..tries).map(|_| wait(u32::MAX)).sum()
        };
        ServerWorstCase {
            patience: retry.startup_patience,
            tries,
            backoff,
            connect: conn.connect_timeout,
            first_answer: conn.first_answer_timeout.min(conn.data_timeout),
            data: conn.data_timeout,
            close: super::connection::CLOSE_WAIT,
            deadline: conn.server_deadline,
        }
    }

    /// The longest a try waits.
    pub fn per_try(&self) -> Duration {
        self.connect + self.first_answer + self.data + self.close
    }

    /// The longest the server's tries wait in all.
    pub fn total(&self) -> Duration {
        let tries = self.patience + self.backoff + self.per_try() * self.tries;
        match self.deadline {
            Some(d) => tries.min(d + self.close),
            None => tries,
        }
    }
}

/// A bound as a person reads it: to the millisecond under a minute, else
/// to the second, rounded up (a bound is never printed shorter than it is).
pub(crate) fn human(d: Duration) -> humantime::FormattedDuration {
    let ceil = |d: Duration, unit: Duration| {
        let n = d.as_nanos().div_ceil(unit.as_nanos());
        unit * u32::try_from(n).unwrap_or(u32::MAX)
    };
    let d = if d < Duration::from_secs(60) {
        ceil(d, Duration::from_millis(1))
    } else {
        ceil(d, Duration::from_secs(1))
    };
    humantime::format_duration(d)
}

impl fmt::Display for ServerWorstCase {
    /// `startup_deadline 5m + 4 tries x 5m 35s + backoff 2m`, or the
    /// server deadline when it is the shorter.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tries = self.patience + self.backoff + self.per_try() * self.tries;
        if let Some(d) = self.deadline.filter(|d| *d + self.close < tries) {
            return write!(f, "the server deadline {}", human(d));
        }
        if !self.patience.is_zero() {
            write!(f, "startup_deadline {} + ", human(self.patience))?;
        }
        write!(
            f,
            "{} tr{} x (connect {} + first answer {} + data {} + close {})",
            self.tries,
            if self.tries == 1 { "y" } else { "ies" },
            human(self.connect),
            human(self.first_answer),
            human(self.data),
            human(self.close),
        )?;
        if !self.backoff.is_zero() {
            write!(f, " + backoff {}", human(self.backoff))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> ConnectionConfig {
        ConnectionConfig::new("000100012a2b2c2d020000009901".parse().unwrap())
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn the_patience_then_every_try_stalling_after_a_late_first_answer() {
        let retry = RetryPolicy {
            attempts: 4,
            max_delay: secs(30),
            startup_patience: secs(300),
            ..RetryPolicy::default()
        };
        let w = ServerWorstCase::of(&conn(), &retry);
        assert_eq!(w.per_try(), secs(335) + Duration::from_millis(100));
        assert_eq!(w.backoff, secs(120), "4 x the 30 s cap");
        assert_eq!(
            w.total(),
            secs(300 + 120 + 4 * 335) + Duration::from_millis(400)
        );
        assert_eq!(
            w.to_string(),
            "startup_deadline 5m + 4 tries x (connect 5s + first answer 30s + data 5m + close 100ms) + backoff 2m"
        );
    }

    #[test]
    fn without_patience_the_backoff_grows_from_nothing() {
        let retry = RetryPolicy {
            attempts: 4,
            initial_delay: secs(1),
            max_delay: secs(3),
            terminated_delay: Duration::ZERO,
            startup_patience: Duration::ZERO,
            ..RetryPolicy::default()
        };
        let mut c = conn();
        c.first_answer_timeout = secs(600);
        c.data_timeout = secs(10);
        let w = ServerWorstCase::of(&c, &retry);
        assert_eq!(w.backoff, secs(1 + 2 + 3), "none before the first try");
        assert_eq!(w.first_answer, secs(10), "at most the data timeout");
        // The QueryTerminated wait is the least of each backoff.
        let terminated = RetryPolicy {
            terminated_delay: secs(5),
            ..retry
        };
        assert_eq!(ServerWorstCase::of(&c, &terminated).backoff, secs(15));
        // A server deadline caps it all.
        c.server_deadline = Some(secs(20));
        let w = ServerWorstCase::of(&c, &retry);
        assert_eq!(w.total(), secs(20) + Duration::from_millis(100));
        assert_eq!(w.to_string(), "the server deadline 20s");
    }
}
