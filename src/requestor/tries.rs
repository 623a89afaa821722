//! The tries of one server's queries, sans IO: which queries are still to
//! be tried, with which transaction-ids (never one used before with the
//! server), how long to wait before the next try, and what each query came
//! to, and when a server that cannot be reached deserves a warning. The
//! policy is [`super::retry::RetryPolicy`]; time and the random source are
//! arguments, so the tests drive it on virtual time.

use super::core::{Attempt, ConnectionConfig, ConnectionReport, PlannedQuery};
use super::report::{QueryReport, ServerReport};
use super::retry::{Disposition, RetryPolicy};
use super::Outcome;
use crate::proto::{Duid, ServerIndex, Xid};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// While a server stays unreachable, a warning at most this often (the
/// first one at the first try that could not connect).
pub const UNREACHABLE_WARN_EVERY: Duration = Duration::from_secs(60);

/// A server that could not be reached on its last try: what to warn about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Unreachable {
    /// Why the last try could not connect.
    pub(super) error: Outcome,
    /// Tries in a row that could not connect.
    pub(super) tries: u32,
    /// Since the first try.
    pub(super) waited: Duration,
    /// What is left of the boot patience
    /// ([`RetryPolicy::startup_patience`]): while some is, failed connects
    /// use up no retry.
    pub(super) patience_left: Duration,
}

/// What the tries on one server have come to so far.
pub(super) struct Tries {
    started: Instant,
    /// One per query of this share, in query order.
    reports: Vec<QueryReport>,
    /// The queries for the next try, ascending.
    todo: Vec<usize>,
    /// Tries that count against the policy's attempts, per query.
    counted: Vec<u32>,
    /// Tries the server did not answer at all, per query.
    silent: Vec<u32>,
    /// Why the tries in a row that could not connect failed, and how many.
    unreachable: Option<(Outcome, u32)>,
    /// When the last warning about it was due.
    warned: Option<Instant>,
    /// Every transaction-id used with the server: a late reply to an
    /// earlier try never matches a new query.
    used_xids: HashSet<Xid>,
    server_id: Option<Duid>,
    connections: u32,
    /// Least wait before the next try, besides the backoff (QueryTerminated
    /// asks for one, RFC 5460 s.5.5).
    wait: Duration,
    /// The jitter of the backoff and the transaction-ids.
    rng: fastrand::Rng,
}

impl Tries {
    /// The tries of `queries` (indexes into the fan-out's queries), begun
    /// at `started`, drawing jitter and transaction-ids from `rng`.
    pub(super) fn new(queries: Vec<usize>, started: Instant, rng: fastrand::Rng) -> Self {
        let report = |index| QueryReport {
            index,
            outcome: Outcome::Partial(super::PartialReason::Closed),
            disposition: Disposition::Retry {
                min_delay: Duration::ZERO,
            },
            attempts: 0,
            bindings: 0,
            stats: None,
        };
        Tries {
            started,
            reports: queries.iter().copied().map(report).collect(),
            counted: vec![0; queries.len()],
            silent: vec![0; queries.len()],
            unreachable: None,
            warned: None,
            todo: queries,
            used_xids: HashSet::new(),
            server_id: None,
            connections: 0,
            wait: Duration::ZERO,
            rng,
        }
    }

    /// When the first try began.
    pub(super) fn started(&self) -> Instant {
        self.started
    }

    /// Some queries are still to be tried.
    pub(super) fn pending(&self) -> bool {
        !self.todo.is_empty()
    }

    /// The wait before the next try (`None` before the first): exponential
    /// backoff with jitter, at least what the last outcomes asked for.
    pub(super) fn backoff(&mut self, retry: &RetryPolicy) -> Option<Duration> {
        (self.connections > 0).then(|| retry.delay(self.connections, self.rng.f64()).max(self.wait))
    }

    /// The next try, with what is left of the server's binding budget
    /// ([`super::Limits::max_bindings_per_server`]).
    pub(super) fn next_attempt(
        &mut self,
        server_index: ServerIndex,
        conn: &ConnectionConfig,
        deadline: Option<Instant>,
    ) -> Attempt {
        self.connections += 1;
        let delivered: u64 = self.reports.iter().map(|q| q.bindings).sum();
        Attempt {
            server_index,
            number: self.connections,
            budget: conn
                .limits
                .max_bindings_per_server
                .saturating_sub(delivered),
            deadline,
        }
    }

    /// The queries still to do, each with a transaction-id never used
    /// with this server, encoded by `encode(index, xid)`.
    pub(super) fn plan(&mut self, encode: impl Fn(usize, Xid) -> Vec<u8>) -> Vec<PlannedQuery> {
        let todo = std::mem::take(&mut self.todo);
        let planned = todo
            .iter()
            .map(|&index| {
                let xid = self.fresh_xid();
                PlannedQuery {
                    index,
                    xid,
                    message: encode(index, xid),
                }
            })
            .collect();
        self.todo = todo;
        planned
    }

    fn fresh_xid(&mut self) -> Xid {
        loop {
            let x = Xid::new(self.rng.u32(1..=Xid::MAX));
            if let Some(x) = x.filter(|&x| self.used_xids.insert(x)) {
                return x;
            }
        }
    }

    /// Take a try's results, at `now`: each query's outcome and how the
    /// policy judges it; the queries to retry are the next try's.
    pub(super) fn record(&mut self, report: ConnectionReport, retry: &RetryPolicy, now: Instant) {
        let elapsed = now.saturating_duration_since(self.started);
        self.note_reachability(&report);
        if self.server_id.is_none() {
            self.server_id = report.server_id;
        }
        let mut next = Vec::new();
        self.wait = Duration::ZERO;
        for r in report.results {
            let Some(k) = self.reports.iter().position(|q| q.index == r.index) else {
                continue;
            };
            let q = &mut self.reports[k];
            q.attempts += 1;
            if !retry.within_patience(&r.outcome, elapsed) {
                self.counted[k] += 1;
            }
            if r.outcome == Outcome::NoAnswer {
                self.silent[k] += 1;
            }
            q.bindings += r.stats.as_ref().map_or(0, |s| s.bindings);
            q.disposition = retry.classify(&r.outcome);
            q.outcome = r.outcome;
            q.stats = r.stats;
            if let Disposition::Retry { min_delay } = q.disposition {
                if retry.may_retry(self.counted[k]) && retry.may_retry_silent(self.silent[k]) {
                    next.push(r.index);
                    self.wait = self.wait.max(min_delay);
                }
            }
        }
        next.sort_unstable();
        self.todo = next;
    }

    /// Whether the try of `report` reached the server at all: a try whose
    /// every query ended before a connection was made adds to the tries in
    /// a row that could not; any other ends the run of them.
    fn note_reachability(&mut self, report: &ConnectionReport) {
        let failed = report
            .results
            .iter()
            .all(|r| RetryPolicy::is_connect_failure(&r.outcome));
        match report.results.first() {
            Some(r) if failed => {
                let tries = self.unreachable.as_ref().map_or(0, |(_, n)| *n);
                self.unreachable = Some((r.outcome.clone(), tries + 1));
            }
            _ => {
                self.unreachable = None;
                self.warned = None;
            }
        }
    }

    /// At `now`, after a try was recorded: a warning is due when the server
    /// could not be reached on that try and another will be made, at the
    /// first such try and then at most every [`UNREACHABLE_WARN_EVERY`]
    /// while it stays unreachable. (A server that is done says so in its
    /// report.)
    pub(super) fn poll_unreachable(
        &mut self,
        retry: &RetryPolicy,
        now: Instant,
    ) -> Option<Unreachable> {
        let (error, tries) = self.unreachable.as_ref()?;
        if !self.pending()
            || self
                .warned
                .is_some_and(|t| now < t + UNREACHABLE_WARN_EVERY)
        {
            return None;
        }
        self.warned = Some(now);
        let waited = now.saturating_duration_since(self.started);
        Some(Unreachable {
            error: error.clone(),
            tries: *tries,
            waited,
            patience_left: retry.startup_patience.saturating_sub(waited),
        })
    }

    /// The queries of the next try and how their last try ended: why they
    /// are tried again.
    pub(super) fn retrying(&self) -> impl Iterator<Item = (usize, &Outcome)> {
        self.reports
            .iter()
            .filter(|q| self.todo.contains(&q.index))
            .map(|q| (q.index, &q.outcome))
    }

    /// The server's report, at `now`.
    pub(super) fn into_report(
        self,
        server: SocketAddr,
        server_index: ServerIndex,
        now: Instant,
    ) -> ServerReport {
        ServerReport {
            server,
            server_index,
            server_id: self.server_id,
            queries: self.reports,
            connections: self.connections,
            duration: now.saturating_duration_since(self.started),
        }
    }
}

#[cfg(test)]
#[path = "tries_tests.rs"]
mod tests;
