//! When to try a query again, and how long to wait first. Pure: no clock, no
//! randomness of its own (the jitter draw is an argument).
//!
//! Retried (RFC 5460 s.6.1, s.6.3, s.5.5): refused or failed connects,
//! timeouts, partial results, and QueryTerminated, after which the requestor
//! "should wait at least a short interval" ([`RetryPolicy::terminated_delay`]).
//! A query the server never answered ([`Outcome::NoAnswer`]) is retried
//! once at most ([`SILENT_TRIES`]), whatever `attempts` allows.
//! Final for that server (RFC 5007 s.4.3.3), in a REPLY or in a DONE after
//! data (RFC 5460 s.5.2.2): NotAllowed, NotConfigured,
//! UnknownQueryType and any other status (UnspecFail aside, which is
//! retried), and a server past our limits; MalformedQuery is final too, and
//! flagged as our own bug. A status in a message RFC 5460 s.4 does not
//! allow on the connection (a plain REPLY with UseMulticast from a listener
//! without Bulk Leasequery) is final in the same way, never our bug.

use super::assembly::Outcome;
use crate::proto::StatusCode;
use std::time::Duration;

/// Tries in all for a query the server never answered
/// ([`Outcome::NoAnswer`]): the first and one retry, on a new connection.
/// A server that said nothing twice will not speak on a third try, and
/// waiting for it `attempts` times would hold the whole run up.
pub const SILENT_TRIES: u32 = 2;

/// What to do after a query ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// The answer is whole ([`Outcome::Complete`], [`Outcome::NoBindings`]).
    Done,
    /// Try again, after at least `min_delay` (besides the backoff).
    Retry {
        /// Least wait before the next try (QueryTerminated asks for one).
        min_delay: Duration,
    },
    /// The server's answer is final for this query.
    Final,
    /// The server says our query is malformed (MalformedQuery), or
    /// pdrestore refused to send it ([`Outcome::OurBug`]): a bug in
    /// pdrestore, not in the server. Final.
    OurBug,
}

/// Exponential backoff with jitter, and how many tries.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Tries in all, the first one included (at least 1).
    pub attempts: u32,
    /// Wait before the first retry, before jitter.
    pub initial_delay: Duration,
    /// Cap on the wait, before jitter.
    pub max_delay: Duration,
    /// Fraction of the wait drawn at random, 0.0 (none) to 1.0 (all).
    pub jitter: f64,
    /// Least wait after QueryTerminated (RFC 5460 s.5.5).
    pub terminated_delay: Duration,
    /// From the server's first try: while it lasts, a try that could not
    /// connect at all does not count against `attempts` (a server that is
    /// not reachable yet while the router boots is waited for).
    pub startup_patience: Duration,
}

impl Default for RetryPolicy {
    /// 4 tries; waits of 1 s, 2 s, 4 s (each up to half less with jitter),
    /// capped at 60 s; at least 5 s after QueryTerminated.
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            jitter: 0.5,
            terminated_delay: Duration::from_secs(5),
            startup_patience: Duration::ZERO,
        }
    }
}

impl RetryPolicy {
    /// The disposition of an outcome under this policy.
    pub fn classify(&self, outcome: &Outcome) -> Disposition {
        let retry = Disposition::Retry {
            min_delay: Duration::ZERO,
        };
        let terminated = Disposition::Retry {
            min_delay: self.terminated_delay,
        };
        match outcome {
            Outcome::Complete | Outcome::NoBindings => Disposition::Done,
            // The same status means the same in a REPLY and, after data, in
            // a DONE (RFC 5460 5.2.2): only the result differs.
            Outcome::ServerStatus(s) | Outcome::Partial(super::PartialReason::DoneStatus(s)) => {
                match s.code {
                    StatusCode::QueryTerminated => terminated,
                    StatusCode::MalformedQuery => Disposition::OurBug,
                    // UnspecFail says nothing final; everything else is an answer.
                    StatusCode::UnspecFail => retry,
                    _ => Disposition::Final,
                }
            }
            // A message RFC 5460 s.4 does not allow on the connection, with
            // a status: the server's answer all the same (a listener
            // without Bulk Leasequery says it again on every try).
            Outcome::Partial(super::PartialReason::Protocol(
                super::ProtocolError::UnexpectedMessage(m),
            )) if m.status.is_some() => match m.status.as_ref().map(|s| s.code) {
                Some(StatusCode::QueryTerminated) => terminated,
                Some(StatusCode::UnspecFail) => retry,
                _ => Disposition::Final,
            },
            // No time left.
            Outcome::Partial(super::PartialReason::Deadline) => Disposition::Final,
            // A server past our limits would only do it again.
            Outcome::Partial(
                super::PartialReason::Protocol(e) | super::PartialReason::Aborted(e),
            ) if matches!(
                e,
                super::ProtocolError::TooManyBindings { .. }
                    | super::ProtocolError::TooManyBytes { .. }
                    | super::ProtocolError::RelayChainTooDeep { .. }
            ) =>
            {
                Disposition::Final
            }
            Outcome::Partial(_) | Outcome::TransportFailure(_) | Outcome::NoAnswer => retry,
            // Sending it again would make the same mistake.
            Outcome::OurBug(_) => Disposition::OurBug,
        }
    }

    /// The wait before retry number `retry` (1 for the first retry), given a
    /// uniform draw `unit` in [0, 1): `initial_delay * 2^(retry-1)`, capped at
    /// `max_delay`, less up to `jitter` of it.
    pub fn delay(&self, retry: u32, unit: f64) -> Duration {
        let exp = retry.saturating_sub(1).min(31);
        let base = self
            .initial_delay
            .checked_mul(1u32 << exp)
            .unwrap_or(self.max_delay)
            .min(self.max_delay);
        let jitter = self.jitter.clamp(0.0, 1.0) * unit.clamp(0.0, 1.0);
        base.mul_f64(1.0 - jitter)
    }

    /// True when the try ended before a connection was made (refused,
    /// timed out, unreachable): the server never saw the query.
    pub fn is_connect_failure(outcome: &Outcome) -> bool {
        matches!(
            outcome,
            Outcome::TransportFailure(
                super::TransportError::Refused
                    | super::TransportError::ConnectTimeout
                    | super::TransportError::Connect(_)
                    | super::TransportError::Bind { .. }
            )
        )
    }

    /// True when a try that ended with `outcome`, `elapsed` after the
    /// server's first try started, is not counted against `attempts`.
    pub fn within_patience(&self, outcome: &Outcome, elapsed: Duration) -> bool {
        elapsed < self.startup_patience && Self::is_connect_failure(outcome)
    }

    /// True when a try numbered `attempt` (1 for the first) may be followed by another.
    pub fn may_retry(&self, attempt: u32) -> bool {
        attempt < self.attempts.max(1)
    }

    /// True when a query that met `silent` tries without an answer
    /// ([`Outcome::NoAnswer`]) may be tried again (as far as silence goes;
    /// [`RetryPolicy::may_retry`] still holds): fewer than [`SILENT_TRIES`].
    pub fn may_retry_silent(&self, silent: u32) -> bool {
        silent < SILENT_TRIES
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::requestor::{PartialReason, ServerStatus, TransportError};

    fn status(code: StatusCode) -> Outcome {
        Outcome::ServerStatus(ServerStatus::new(code, ""))
    }

    #[test]
    fn classification() {
        let p = RetryPolicy::default();
        let retry = Disposition::Retry {
            min_delay: Duration::ZERO,
        };
        let terminated = Disposition::Retry {
            min_delay: p.terminated_delay,
        };
        assert_eq!(p.classify(&Outcome::Complete), Disposition::Done);
        assert_eq!(p.classify(&Outcome::NoBindings), Disposition::Done);
        assert_eq!(p.classify(&status(StatusCode::QueryTerminated)), terminated);
        assert_eq!(
            p.classify(&Outcome::Partial(PartialReason::DoneStatus(
                ServerStatus::new(StatusCode::QueryTerminated, "")
            ))),
            terminated
        );
        for c in [
            StatusCode::NotAllowed,
            StatusCode::NotConfigured,
            StatusCode::UnknownQueryType,
        ] {
            assert_eq!(p.classify(&status(c)), Disposition::Final, "{c}");
        }
        assert_eq!(
            p.classify(&status(StatusCode::MalformedQuery)),
            Disposition::OurBug
        );
        let done = |code| Outcome::Partial(PartialReason::DoneStatus(ServerStatus::new(code, "")));
        assert_eq!(
            p.classify(&done(StatusCode::NotAllowed)),
            Disposition::Final
        );
        assert_eq!(p.classify(&done(StatusCode::UnspecFail)), retry);
        // A plain REPLY with a status: the server's answer, final (and
        // never our bug); without a status, a protocol error, retried.
        let plain = |status: Option<StatusCode>| {
            Outcome::Partial(PartialReason::Protocol(
                crate::requestor::ProtocolError::UnexpectedMessage(
                    crate::requestor::UnexpectedMessage {
                        msg_type: crate::proto::MessageType::Reply,
                        xid: None,
                        status: status.map(|c| ServerStatus::new(c, "words")),
                    },
                ),
            ))
        };
        for c in [StatusCode::UseMulticast, StatusCode::MalformedQuery] {
            assert_eq!(p.classify(&plain(Some(c))), Disposition::Final, "{c}");
        }
        assert_eq!(p.classify(&plain(Some(StatusCode::UnspecFail))), retry);
        assert_eq!(p.classify(&plain(None)), retry);
        assert_eq!(p.classify(&Outcome::Partial(PartialReason::Closed)), retry);
        assert_eq!(
            p.classify(&Outcome::Partial(PartialReason::DataTimeout)),
            retry
        );
        assert_eq!(
            p.classify(&Outcome::TransportFailure(TransportError::Refused)),
            retry
        );
        assert_eq!(p.classify(&Outcome::NoAnswer), retry);
        assert!(p.may_retry_silent(1), "one retry after silence");
        assert!(!p.may_retry_silent(SILENT_TRIES), "not a third try");
        assert_eq!(
            p.classify(&Outcome::Partial(PartialReason::Protocol(
                crate::requestor::ProtocolError::ClientLink
            ))),
            retry
        );
        let limit = crate::requestor::ProtocolError::TooManyBindings { limit: 5 };
        assert_eq!(
            p.classify(&Outcome::Partial(PartialReason::Protocol(limit.clone()))),
            Disposition::Final
        );
        assert_eq!(
            p.classify(&Outcome::Partial(PartialReason::Aborted(limit))),
            Disposition::Final
        );
    }

    #[test]
    fn exponential_capped_and_jittered() {
        let p = RetryPolicy {
            attempts: 10,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            jitter: 0.5,
            terminated_delay: Duration::ZERO,
            startup_patience: Duration::ZERO,
        };
        let ms = |n| Duration::from_millis(n);
        assert_eq!(p.delay(1, 0.0), ms(100));
        assert_eq!(p.delay(2, 0.0), ms(200));
        assert_eq!(p.delay(3, 0.0), ms(400));
        assert_eq!(p.delay(4, 0.0), ms(800));
        assert_eq!(p.delay(5, 0.0), ms(1000), "capped");
        assert_eq!(p.delay(200, 0.0), ms(1000), "no overflow");
        assert_eq!(p.delay(2, 1.0), ms(100), "at most half taken off");
        assert_eq!(p.delay(2, 0.5), ms(150));
        assert!(p.may_retry(9));
        assert!(!p.may_retry(10));
        let once = RetryPolicy { attempts: 0, ..p };
        assert!(!once.may_retry(1), "0 tries means 1");
    }

    #[test]
    fn only_connect_failures_within_the_patience_are_free() {
        let p = RetryPolicy {
            startup_patience: Duration::from_secs(300),
            ..RetryPolicy::default()
        };
        let refused = Outcome::TransportFailure(super::super::TransportError::Refused);
        let timeout = Outcome::TransportFailure(super::super::TransportError::ConnectTimeout);
        let unreachable = Outcome::TransportFailure(super::super::TransportError::Connect(
            super::super::IoError::new(std::io::ErrorKind::Other, "Network is unreachable"),
        ));
        let data = Outcome::Partial(PartialReason::DataTimeout);
        for o in [&refused, &timeout, &unreachable] {
            assert!(p.within_patience(o, Duration::from_secs(10)), "{o}");
            assert!(!p.within_patience(o, Duration::from_secs(300)), "{o}");
        }
        // Once a server answered, its failures count as always.
        assert!(!p.within_patience(&data, Duration::from_secs(10)));
        assert!(!p.within_patience(&Outcome::Complete, Duration::ZERO));
        assert!(!RetryPolicy::default().within_patience(&refused, Duration::ZERO));
    }
}
