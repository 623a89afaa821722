//! The prune rail: when pdrestore may remove its own routes that no
//! binding backs any more, and how many.
//!
//! Pruning runs only after every server answered completely (a failing
//! server never takes routes away), and even then the rail refuses a prune
//! after an empty answer (every server answered with no binding at all) and
//! one that would remove more of our routes than `prune_limit`: a wrong or
//! regenerated relay DUID, a typo in a pool or a server that lost its
//! leases gives exactly such a complete but collapsed answer. `--force-prune`
//! goes past the rail for one run. [`decide`] is the one place that says so.

/// How far pruning may go (the prune rail): a share of our routes listed
/// at the start, or a number of routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PruneLimit {
    /// At most this share of our routes, in hundredths of a percent
    /// (`"10%"` is 1000).
    Share(u32),
    /// At most this many routes.
    Count(u64),
}

impl PruneLimit {
    /// Removing `remove` of our `ours` routes stays within the limit.
    pub fn allows(&self, remove: usize, ours: usize) -> bool {
        match *self {
            PruneLimit::Share(h) => (remove as u128) * 10_000 <= (ours as u128) * u128::from(h),
            PruneLimit::Count(n) => remove as u64 <= n,
        }
    }
}

impl std::fmt::Display for PruneLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            PruneLimit::Share(h) if h % 100 == 0 => write!(f, "{}%", h / 100),
            PruneLimit::Share(h) => write!(f, "{}.{:02}%", h / 100, h % 100),
            PruneLimit::Count(n) => write!(f, "{n}"),
        }
    }
}

/// Why pruning does not run this time although it is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PruneSkip {
    /// A server's answer was not whole.
    IncompleteAnswer,
    /// The run was stopped by a signal.
    Interrupted,
}

/// What the caller allows of pruning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PruneRule {
    /// Pruning is off (`prune = false`).
    Off,
    /// Not this time.
    Skip(PruneSkip),
    /// Remove our routes no binding backs, within `limit` unless `force`.
    Allowed {
        /// The rail.
        limit: PruneLimit,
        /// Past the rail for this run (`recover --force-prune`).
        force: bool,
    },
}

/// What became of pruning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PruneState {
    /// Off in the configuration.
    #[default]
    Off,
    /// Configured, but not this time.
    Skipped(PruneSkip),
    /// Refused by the rail: nothing was removed.
    Refused(PruneRefusal),
    /// Ran (possibly removing nothing).
    Done,
}

impl PruneState {
    /// `done`, `off`, `skipped` or `refused`: the state's stable name (the
    /// summary's `prune.state`, the metrics' `state` label).
    pub fn name(self) -> &'static str {
        match self {
            PruneState::Done => "done",
            PruneState::Off => "off",
            PruneState::Skipped(_) => "skipped",
            PruneState::Refused(_) => "refused",
        }
    }
}

/// Why the rail refused a prune.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PruneRefusal {
    /// Every server answered with no binding at all.
    EmptyAnswer,
    /// It would remove more of our routes than the limit allows.
    OverLimit,
}

/// Pruning, as it went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PruneReport {
    /// What happened.
    pub state: PruneState,
    /// Our routes listed at the start.
    pub ours: usize,
    /// Our routes no binding backs: what pruning removed, or would have.
    pub candidates: usize,
    /// The rail, when pruning was allowed.
    pub limit: Option<PruneLimit>,
}

/// What the rail makes of a prune that would remove `candidates` of our
/// `ours` routes (those listed at the start), after `claims` claims were
/// received in all.
pub fn decide(rule: PruneRule, candidates: usize, ours: usize, claims: u64) -> PruneReport {
    let mut r = PruneReport {
        state: PruneState::Done,
        ours,
        candidates,
        limit: None,
    };
    match rule {
        PruneRule::Off => r.state = PruneState::Off,
        PruneRule::Skip(why) => r.state = PruneState::Skipped(why),
        PruneRule::Allowed { limit, force } => {
            r.limit = Some(limit);
            if candidates > 0 && !force {
                if claims == 0 {
                    r.state = PruneState::Refused(PruneRefusal::EmptyAnswer);
                } else if !limit.allows(candidates, ours) {
                    r.state = PruneState::Refused(PruneRefusal::OverLimit);
                }
            }
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAIL: PruneRule = PruneRule::Allowed {
        limit: PruneLimit::Share(1000),
        force: false,
    };

    #[test]
    fn the_rail() {
        assert_eq!(decide(RAIL, 10, 100, 5).state, PruneState::Done);
        assert_eq!(
            decide(RAIL, 11, 100, 5).state,
            PruneState::Refused(PruneRefusal::OverLimit)
        );
        assert_eq!(
            decide(RAIL, 1, 100, 0).state,
            PruneState::Refused(PruneRefusal::EmptyAnswer)
        );
        // Nothing to remove is never refused.
        assert_eq!(decide(RAIL, 0, 100, 0).state, PruneState::Done);
        let forced = PruneRule::Allowed {
            limit: PruneLimit::Count(0),
            force: true,
        };
        assert_eq!(decide(forced, 100, 100, 0).state, PruneState::Done);
        assert_eq!(
            decide(PruneRule::Skip(PruneSkip::Interrupted), 1, 1, 1).state,
            PruneState::Skipped(PruneSkip::Interrupted)
        );
        assert_eq!(decide(PruneRule::Off, 1, 1, 1).state, PruneState::Off);
        assert!(PruneLimit::Count(3).allows(3, 1));
        assert!(!PruneLimit::Count(3).allows(4, 100));
        assert!(PruneLimit::Share(250).allows(1, 40));
        assert!(!PruneLimit::Share(250).allows(2, 40));
        assert_eq!(PruneLimit::Share(250).to_string(), "2.50%");
        assert_eq!(PruneLimit::Share(1000).to_string(), "10%");
    }
}
