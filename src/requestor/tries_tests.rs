//! One server's tries on virtual time, with a seeded random source: no
//! sockets, no sleeps.

use super::*;
use crate::proto::StatusCode;
use crate::requestor::core::QueryResult;
use crate::requestor::{PartialReason, QueryStats, ServerStatus, TransportError};

const SERVER: &str = "[2001:db8::547]:547";

fn tries(queries: usize, t0: Instant) -> Tries {
    Tries::new((0..queries).collect(), t0, fastrand::Rng::with_seed(7))
}

fn conn() -> ConnectionConfig {
    ConnectionConfig::new("000100012a2b2c2d020000009901".parse().unwrap())
}

fn stats(t0: Instant, bindings: u64) -> Option<QueryStats> {
    Some(QueryStats {
        started: t0,
        replied: Some(t0),
        finished: Some(t0),
        messages: bindings + 2,
        bindings,
        dropped: 0,
        server_id: None,
    })
}

/// A try's report: each planned query ends with its outcome, `bindings`
/// delivered.
fn report(planned: &[PlannedQuery], outcome: &[(Outcome, u64)], t0: Instant) -> ConnectionReport {
    ConnectionReport {
        results: planned
            .iter()
            .zip(outcome)
            .map(|(p, (o, n))| QueryResult {
                index: p.index,
                xid: p.xid,
                outcome: o.clone(),
                stats: stats(t0, *n),
            })
            .collect(),
        close: None,
        server_id: Some("000200000009aa".parse().unwrap()),
    }
}

fn index() -> ServerIndex {
    ServerIndex::new(0).unwrap()
}

#[test]
fn only_what_failed_is_tried_again_with_new_transaction_ids() {
    let t0 = Instant::now();
    let retry = RetryPolicy::default();
    let mut t = tries(3, t0);
    assert_eq!(t.backoff(&retry), None, "no wait before the first try");
    let a = t.next_attempt(index(), &conn(), None);
    assert_eq!(a.number, 1);
    let first = t.plan(|i, xid| vec![i as u8, xid.octets()[2]]);
    assert_eq!(first.len(), 3);
    let closed = Outcome::Partial(PartialReason::Closed);
    t.record(
        report(
            &first,
            &[
                (Outcome::Complete, 10),
                (closed.clone(), 4),
                (Outcome::NoBindings, 0),
            ],
            t0,
        ),
        &retry,
        t0 + Duration::from_secs(1),
    );
    assert!(t.pending());
    let wait = t.backoff(&retry).unwrap();
    assert!(
        wait <= Duration::from_secs(1) && wait >= Duration::from_millis(500),
        "{wait:?}"
    );
    // The second try carries what is left of the server's binding budget.
    let mut c = conn();
    c.limits.max_bindings_per_server = 100;
    assert_eq!(t.next_attempt(index(), &c, None).budget, 86);
    let second = t.plan(|i, _| vec![i as u8]);
    assert_eq!(second.iter().map(|p| p.index).collect::<Vec<_>>(), [1]);
    assert!(
        first.iter().all(|p| p.xid != second[0].xid),
        "a new transaction-id"
    );
    t.record(
        report(&second, &[(Outcome::Complete, 6)], t0),
        &retry,
        t0 + Duration::from_secs(3),
    );
    assert!(!t.pending());
    let r = t.into_report(
        SERVER.parse().unwrap(),
        index(),
        t0 + Duration::from_secs(3),
    );
    assert!(r.is_complete());
    assert_eq!(r.bindings(), 20);
    assert_eq!(r.connections, 2);
    assert_eq!(r.duration, Duration::from_secs(3));
    assert_eq!(r.queries[1].attempts, 2);
}

#[test]
fn the_tries_stop_at_the_policy_and_a_final_answer_is_not_retried() {
    let t0 = Instant::now();
    let retry = RetryPolicy {
        attempts: 3,
        ..RetryPolicy::default()
    };
    let mut t = tries(2, t0);
    let mut now = t0;
    let mut waits = Vec::new();
    while t.pending() {
        if let Some(w) = t.backoff(&retry) {
            waits.push(w);
            now += w;
        }
        t.next_attempt(index(), &conn(), None);
        let planned = t.plan(|_, _| Vec::new());
        let not_allowed = Outcome::ServerStatus(ServerStatus::new(StatusCode::NotAllowed, "no"));
        let outcomes: Vec<(Outcome, u64)> = planned
            .iter()
            .map(|p| match p.index {
                0 => (Outcome::TransportFailure(TransportError::WriteTimeout), 0),
                _ => (not_allowed.clone(), 0),
            })
            .collect();
        t.record(report(&planned, &outcomes, now), &retry, now);
    }
    let r = t.into_report(SERVER.parse().unwrap(), index(), now);
    assert_eq!(r.queries[0].attempts, 3, "three tries in all");
    assert_eq!(r.queries[1].attempts, 1, "NotAllowed is final");
    assert_eq!(waits.len(), 2);
    assert!(waits[1] > waits[0] / 2, "the backoff grows: {waits:?}");
}

#[test]
fn a_server_not_reachable_at_boot_is_waited_for_until_the_deadline() {
    let t0 = Instant::now();
    let retry = RetryPolicy {
        attempts: 2,
        startup_patience: Duration::from_secs(60),
        ..RetryPolicy::default()
    };
    let mut t = tries(1, t0);
    let refused = [(Outcome::TransportFailure(TransportError::Refused), 0)];
    // Refused for 50 s: within the patience, no try counts.
    for s in [0, 10, 20, 30, 40, 50] {
        t.next_attempt(index(), &conn(), None);
        let p = t.plan(|_, _| Vec::new());
        let now = t0 + Duration::from_secs(s);
        t.record(report(&p, &refused, now), &retry, now);
        assert!(t.pending(), "at {s} s");
    }
    // Past it, the policy's two tries count.
    for s in [61, 62] {
        t.next_attempt(index(), &conn(), None);
        let p = t.plan(|_, _| Vec::new());
        let now = t0 + Duration::from_secs(s);
        t.record(report(&p, &refused, now), &retry, now);
    }
    assert!(!t.pending());
    let r = t.into_report(
        SERVER.parse().unwrap(),
        index(),
        t0 + Duration::from_secs(62),
    );
    assert_eq!(r.queries[0].attempts, 8);
    assert!(!r.is_complete());
}

#[test]
fn query_terminated_asks_for_a_longer_wait_and_the_seed_makes_it_repeatable() {
    let t0 = Instant::now();
    let retry = RetryPolicy::default();
    let waits = |seed| {
        let mut t = Tries::new(vec![0], t0, fastrand::Rng::with_seed(seed));
        t.next_attempt(index(), &conn(), None);
        let p = t.plan(|_, _| Vec::new());
        let terminated = Outcome::ServerStatus(ServerStatus::new(StatusCode::QueryTerminated, ""));
        t.record(report(&p, &[(terminated, 0)], t0), &retry, t0);
        let xid = t.plan(|_, _| Vec::new())[0].xid;
        (t.backoff(&retry).unwrap(), xid)
    };
    let (w, x) = waits(1);
    assert!(w >= retry.terminated_delay, "{w:?}");
    assert_eq!(waits(1), (w, x), "the same seed, the same waits and ids");
}

/// One try of every pending query, each ending with `outcome`, at `now`.
fn one_try(t: &mut Tries, retry: &RetryPolicy, outcome: &Outcome, now: Instant) {
    t.next_attempt(index(), &conn(), None);
    let p = t.plan(|_, _| Vec::new());
    let outcomes: Vec<(Outcome, u64)> = p.iter().map(|_| (outcome.clone(), 0)).collect();
    t.record(report(&p, &outcomes, now), retry, now);
}

#[test]
fn a_query_the_server_never_answers_is_tried_twice_not_the_full_retries() {
    let t0 = Instant::now();
    let retry = RetryPolicy {
        attempts: 4,
        ..RetryPolicy::default()
    };
    // On virtual time: every try waits its backoff, connects at once and
    // hears nothing for the 30 s first-answer timeout.
    let mut t = tries(2, t0);
    let mut now = t0;
    let mut tries_made = 0;
    while t.pending() {
        now += t.backoff(&retry).unwrap_or_default() + Duration::from_secs(30);
        one_try(&mut t, &retry, &Outcome::NoAnswer, now);
        tries_made += 1;
    }
    assert_eq!(tries_made, 2, "the first try and one retry");
    assert!(now - t0 < Duration::from_secs(62), "{:?}", now - t0);
    let r = t.into_report(SERVER.parse().unwrap(), index(), now);
    for q in &r.queries {
        assert_eq!(q.outcome, Outcome::NoAnswer);
        assert_eq!(q.outcome.code(), "no-answer");
        assert_eq!(q.attempts, 2);
    }
    // A stalled stream keeps every retry the policy allows.
    let mut t = tries(1, t0);
    let stall = Outcome::Partial(PartialReason::DataTimeout);
    let mut n = 0;
    while t.pending() {
        one_try(&mut t, &retry, &stall, t0);
        n += 1;
    }
    assert_eq!(n, 4);
    // Silence after a stall: still two silent tries at most, within attempts.
    let mut t = tries(1, t0);
    let mut seq = vec![];
    for o in [stall.clone(), Outcome::NoAnswer, stall, Outcome::NoAnswer] {
        if !t.pending() {
            break;
        }
        one_try(&mut t, &retry, &o, t0);
        seq.push(o);
    }
    assert_eq!(seq.len(), 4);
    assert!(!t.pending());
}

#[test]
fn an_unreachable_server_is_warned_about_at_once_then_once_a_minute() {
    let t0 = Instant::now();
    let retry = RetryPolicy {
        attempts: 2,
        startup_patience: Duration::from_secs(300),
        ..RetryPolicy::default()
    };
    let mut t = tries(1, t0);
    let timeout = Outcome::TransportFailure(TransportError::ConnectTimeout);
    // A black-holed server: 5 s per connect, then the backoff.
    let mut now = t0;
    let mut warnings = Vec::new();
    while t.pending() {
        now += t.backoff(&retry).unwrap_or_default() + Duration::from_secs(5);
        one_try(&mut t, &retry, &timeout, now);
        if let Some(w) = t.poll_unreachable(&retry, now) {
            warnings.push((now - t0, w));
        }
    }
    let (first_at, first) = &warnings[0];
    assert_eq!(
        *first_at,
        Duration::from_secs(5),
        "at the first connect timeout"
    );
    assert_eq!(first.error, timeout);
    assert_eq!(first.tries, 1);
    assert_eq!(first.patience_left, Duration::from_secs(295));
    for w in warnings.windows(2) {
        assert!(w[1].0 - w[0].0 >= UNREACHABLE_WARN_EVERY, "{:?}", w[1].0);
    }
    let spent = now - t0;
    assert!(
        warnings.len() as u64 <= spent.as_secs() / 60 + 1,
        "{} warnings in {spent:?}",
        warnings.len()
    );
    assert!(
        warnings.len() >= 3,
        "still warned about: {} in {spent:?}",
        warnings.len()
    );
    // The last try ends the tries: its failure is in the report, no warning.
    assert!(t
        .poll_unreachable(&retry, now + Duration::from_secs(600))
        .is_none());
}

#[test]
fn a_server_that_answers_is_no_longer_warned_about() {
    let t0 = Instant::now();
    let retry = RetryPolicy {
        attempts: 3,
        startup_patience: Duration::from_secs(300),
        ..RetryPolicy::default()
    };
    let mut t = tries(2, t0);
    let refused = Outcome::TransportFailure(TransportError::Refused);
    one_try(&mut t, &retry, &refused, t0);
    assert!(t.poll_unreachable(&retry, t0).is_some());
    assert!(t.poll_unreachable(&retry, t0).is_none(), "once");
    // It answers, partially: no warning about reachability.
    one_try(&mut t, &retry, &Outcome::Partial(PartialReason::Closed), t0);
    assert!(t.poll_unreachable(&retry, t0).is_none());
    // Unreachable again: warned at once.
    one_try(&mut t, &retry, &refused, t0);
    let w = t.poll_unreachable(&retry, t0).unwrap();
    assert_eq!(w.tries, 1, "a new run of failed connects");
    let why: Vec<usize> = t.retrying().map(|(i, _)| i).collect();
    assert_eq!(why, [0, 1]);
}
