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
//!
//! The rail also looks at the parts of the answer on their own
//! ([`decide_part`]): a link (the interface it is on) whose routes would go
//! because its answer came back complete but empty (a server that matches
//! the link-address exactly, asked with another address of the link), or
//! more than the limit of its own routes; and a server group whose answer
//! collapsed against its last complete one. A link held back keeps its
//! routes while the others are pruned; a group held back stops the prune
//! (which routes were its own, the kernel does not say).

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

impl PruneLimit {
    /// Removing `remove` of a part's `ours` routes stays within the limit,
    /// a share rounded up: a part may always lose one route (a link of
    /// three customers, one of whom left).
    pub fn allows_part(&self, remove: usize, ours: usize) -> bool {
        match *self {
            PruneLimit::Share(h) => {
                let allowed = ((ours as u128) * u128::from(h)).div_ceil(10_000).max(1);
                (remove as u128) <= allowed
            }
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
    /// A server group's answer collapsed against its last complete one
    /// (see [`PruneReport::held_back`]).
    GroupAnswer,
}

/// A part of the answer the rail looks at on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// A client link: the interface it is on, and the addresses it was
    /// asked about by (none: every link, QUERY_BY_RELAY_ID).
    Link {
        /// The interface.
        interface: std::sync::Arc<str>,
        /// The link-addresses asked about on it.
        links: Vec<std::net::Ipv6Addr>,
    },
    /// A server group (`[[server]] group`).
    Group(String),
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Part::Link { interface, links } if links.is_empty() => {
                write!(f, "interface {interface}")
            }
            Part::Link { interface, links } => {
                write!(f, "link ")?;
                for (i, l) in links.iter().enumerate() {
                    write!(f, "{}{l}", if i > 0 { ", " } else { "" })?;
                }
                write!(f, " ({interface})")
            }
            Part::Group(g) => write!(f, "server group {g}"),
        }
    }
}

/// Why the rail held a part back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartReason {
    /// It held routes (a group: bindings) and answered completely with none.
    EmptyAnswer,
    /// It would lose more than the limit of its own routes (a group: of
    /// the bindings of its last complete answer).
    OverLimit,
}

/// A part the rail held back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldBack {
    /// Which.
    pub part: Part,
    /// Why.
    pub reason: PartReason,
    /// Our routes in it (a group: the bindings of its last complete answer).
    pub ours: usize,
    /// What it would lose (a group: how many fewer bindings it has now).
    pub candidates: usize,
}

impl HeldBack {
    /// A stable code: `link-empty`, `link-over-limit`, `group-empty`,
    /// `group-over-limit`.
    pub fn code(&self) -> &'static str {
        match (&self.part, self.reason) {
            (Part::Link { .. }, PartReason::EmptyAnswer) => "link-empty",
            (Part::Link { .. }, PartReason::OverLimit) => "link-over-limit",
            (Part::Group(_), PartReason::EmptyAnswer) => "group-empty",
            (Part::Group(_), PartReason::OverLimit) => "group-over-limit",
        }
    }
}

impl std::fmt::Display for HeldBack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.part, self.reason) {
            (Part::Link { .. }, PartReason::EmptyAnswer) => write!(
                f,
                "{} answered completely with no binding while it holds {} of our routes: its routes are kept (a server that matches the link-address exactly may have been asked with another address of the link: check links)",
                self.part, self.ours
            ),
            (Part::Link { .. }, PartReason::OverLimit) => write!(
                f,
                "{} would lose {} of its {} routes, more than prune_limit allows for one link: its routes are kept",
                self.part, self.candidates, self.ours
            ),
            (Part::Group(_), PartReason::EmptyAnswer) => write!(
                f,
                "{} answered completely with no binding, {} at its last complete answer: nothing is pruned",
                self.part, self.ours
            ),
            (Part::Group(_), PartReason::OverLimit) => write!(
                f,
                "{} answered with {} fewer bindings than the {} of its last complete answer, more than prune_limit allows: nothing is pruned",
                self.part, self.candidates, self.ours
            ),
        }
    }
}

/// What a run knows of its parts, for the rail ([`decide_part`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parts {
    /// The link-addresses asked about, by the interface (its position)
    /// they are on.
    pub links: Vec<(u32, std::net::Ipv6Addr)>,
    /// The interfaces (positions) every link of which was answered
    /// completely with no binding.
    pub empty: Vec<u32>,
    /// The server groups held back (they stop the prune).
    pub groups: Vec<HeldBack>,
}

/// The rail for one part: `ours` of our routes in it (a group: the
/// bindings of its last complete answer), `candidates` of them would go
/// (a group: how many fewer it has), `empty` when it answered completely
/// with nothing. `None`: it may be pruned.
pub fn decide_part(
    limit: PruneLimit,
    force: bool,
    ours: usize,
    candidates: usize,
    empty: bool,
) -> Option<PartReason> {
    if force || candidates == 0 || ours == 0 {
        None
    } else if empty {
        Some(PartReason::EmptyAnswer)
    } else if !limit.allows_part(candidates, ours) {
        Some(PartReason::OverLimit)
    } else {
        None
    }
}

/// Pruning, as it went.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PruneReport {
    /// What happened.
    pub state: PruneState,
    /// Our routes listed at the start.
    pub ours: usize,
    /// Our routes no binding backs: what pruning removed, or would have.
    pub candidates: usize,
    /// The rail, when pruning was allowed.
    pub limit: Option<PruneLimit>,
    /// The parts the rail held back: links whose routes were kept, server
    /// groups that stopped the prune.
    pub held_back: Vec<HeldBack>,
}

/// What the rail makes of a prune that would remove `candidates` of our
/// `ours` routes (those listed at the start), after `claims` claims were
/// received in all; `groups` are the server groups held back
/// ([`decide_part`]), which stop it.
pub fn decide(
    rule: PruneRule,
    candidates: usize,
    ours: usize,
    claims: u64,
    groups: &[HeldBack],
) -> PruneReport {
    let mut r = PruneReport {
        state: PruneState::Done,
        ours,
        candidates,
        limit: None,
        held_back: Vec::new(),
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
                } else if !groups.is_empty() {
                    r.state = PruneState::Refused(PruneRefusal::GroupAnswer);
                    r.held_back.extend(groups.iter().cloned());
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
        assert_eq!(decide(RAIL, 10, 100, 5, &[]).state, PruneState::Done);
        assert_eq!(
            decide(RAIL, 11, 100, 5, &[]).state,
            PruneState::Refused(PruneRefusal::OverLimit)
        );
        assert_eq!(
            decide(RAIL, 1, 100, 0, &[]).state,
            PruneState::Refused(PruneRefusal::EmptyAnswer)
        );
        // Nothing to remove is never refused.
        assert_eq!(decide(RAIL, 0, 100, 0, &[]).state, PruneState::Done);
        let forced = PruneRule::Allowed {
            limit: PruneLimit::Count(0),
            force: true,
        };
        assert_eq!(decide(forced, 100, 100, 0, &[]).state, PruneState::Done);
        assert_eq!(
            decide(PruneRule::Skip(PruneSkip::Interrupted), 1, 1, 1, &[]).state,
            PruneState::Skipped(PruneSkip::Interrupted)
        );
        assert_eq!(decide(PruneRule::Off, 1, 1, 1, &[]).state, PruneState::Off);
        assert!(PruneLimit::Count(3).allows(3, 1));
        assert!(!PruneLimit::Count(3).allows(4, 100));
        assert!(PruneLimit::Share(250).allows(1, 40));
        assert!(!PruneLimit::Share(250).allows(2, 40));
        assert_eq!(PruneLimit::Share(250).to_string(), "2.50%");
        assert_eq!(PruneLimit::Share(1000).to_string(), "10%");
    }

    #[test]
    fn the_rail_per_part() {
        let limit = PruneLimit::Share(1000);
        // A link that answered empty while it holds routes: held back.
        assert_eq!(
            decide_part(limit, false, 5, 5, true),
            Some(PartReason::EmptyAnswer)
        );
        // Forced, or nothing to lose, or nothing held: never.
        assert_eq!(decide_part(limit, true, 5, 5, true), None);
        assert_eq!(decide_part(limit, false, 5, 0, true), None);
        assert_eq!(decide_part(limit, false, 0, 0, true), None);
        // Over its own limit; a small part may always lose one route.
        assert_eq!(
            decide_part(limit, false, 100, 11, false),
            Some(PartReason::OverLimit)
        );
        assert_eq!(decide_part(limit, false, 100, 10, false), None);
        assert_eq!(decide_part(limit, false, 3, 1, false), None);
        assert_eq!(
            decide_part(limit, false, 3, 2, false),
            Some(PartReason::OverLimit)
        );
        assert!(PruneLimit::Count(2).allows_part(2, 3));
        assert!(!PruneLimit::Count(2).allows_part(3, 300));
        // A group held back stops a prune the whole-run rail allows.
        let g = HeldBack {
            part: Part::Group("kea-ha".into()),
            reason: PartReason::EmptyAnswer,
            ours: 40,
            candidates: 40,
        };
        let r = decide(RAIL, 5, 100, 60, std::slice::from_ref(&g));
        assert_eq!(r.state, PruneState::Refused(PruneRefusal::GroupAnswer));
        assert_eq!(r.held_back, vec![g.clone()]);
        assert_eq!(g.code(), "group-empty");
        assert_eq!(decide(RAIL, 0, 100, 60, &[g]).state, PruneState::Done);
        let link = Part::Link {
            interface: "cust0".into(),
            links: vec!["2001:db8:1::5".parse().unwrap()],
        };
        assert_eq!(link.to_string(), "link 2001:db8:1::5 (cust0)");
    }
}
