//! Server groups in a run (`[[server]] group`): replicas that each hold
//! every binding of their group (a Kea HA pair). A group has answered when
//! one member answered every query whole; its other members are waited for
//! `group_grace` more, then stopped ([`Grace`]). And what the prune rail
//! looks at part by part ([`rail_parts`]): the links that answered
//! completely but empty, and the groups whose answer collapsed against the
//! last complete one ([`super::memory::Memory`]).

use super::memory::Memory;
use super::report::ServerPart;
use crate::recovery::prune::{self, HeldBack, Part, Parts, PruneRule};
use crate::requestor::ServerReport;
use crate::routes::Interface;
use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

/// When each group answered, and how long its other members may take.
#[derive(Debug)]
pub(super) struct Grace {
    grace: Duration,
    /// Group name and when it answered completely (a member did).
    answered: Vec<(String, Instant)>,
}

impl Grace {
    pub(super) fn new(grace: Duration) -> Self {
        Grace {
            grace,
            answered: Vec::new(),
        }
    }

    /// Server `r` is done: a complete answer completes its group now.
    pub(super) fn server_done(&mut self, part: &ServerPart, r: &ServerReport, now: Instant) {
        if r.is_complete() && !self.answered.iter().any(|(g, _)| *g == part.group) {
            self.answered.push((part.group.clone(), now));
        }
    }

    /// When the next member still running in an answered group is to be
    /// stopped.
    pub(super) fn deadline(&self, servers: &[ServerPart]) -> Option<Instant> {
        self.answered
            .iter()
            .filter(|(g, _)| servers.iter().any(|s| s.group == *g && running(s)))
            .map(|(_, at)| *at + self.grace)
            .min()
    }

    /// The members still running, at `now`, in groups that answered
    /// `group_grace` ago or more: to stop (marked stopped).
    pub(super) fn late(&self, servers: &mut [ServerPart], now: Instant) -> Vec<usize> {
        let mut out = Vec::new();
        for (i, s) in servers.iter_mut().enumerate() {
            let due = self
                .answered
                .iter()
                .any(|(g, at)| *g == s.group && *at + self.grace <= now);
            if due && running(s) {
                s.stopped = true;
                out.push(i);
            }
        }
        out
    }
}

/// Still asking: no report yet, not stopped.
fn running(s: &ServerPart) -> bool {
    s.report.is_none() && !s.stopped
}

/// What the prune rail looks at part by part, after the servers answered:
/// each queried link by the interface it is on (`interfaces`, positions as
/// the installer's), the interfaces every link of which answered
/// completely with no binding (link-address mode; every group complete),
/// and, under `rule`, the groups whose answer collapsed against `memory`.
pub(super) fn rail_parts(
    links: &[Ipv6Addr],
    interfaces: &[Interface],
    servers: &[ServerPart],
    memory: &Memory,
    rule: PruneRule,
) -> Parts {
    let mut parts = Parts::default();
    for (p, i) in interfaces.iter().enumerate() {
        for l in links.iter().filter(|l| !l.is_unspecified()) {
            if i.addresses.iter().any(|a| a.contains(l)) {
                parts.links.push((p as u32, *l));
            }
        }
    }
    let groups = super::report::groups_of(servers);
    if groups.iter().all(|g| g.complete()) {
        let answered = |q: usize| -> u64 {
            servers
                .iter()
                .filter_map(|s| s.report.as_ref())
                .flat_map(|r| r.queries.iter())
                .filter(|x| x.index == q)
                .map(|x| x.bindings)
                .sum()
        };
        for p in 0..interfaces.len() as u32 {
            let on: Vec<usize> = links
                .iter()
                .enumerate()
                .filter(|(_, l)| parts.links.contains(&(p, **l)))
                .map(|(q, _)| q)
                .collect();
            if !on.is_empty() && on.iter().all(|&q| answered(q) == 0) {
                parts.empty.push(p);
            }
        }
    }
    if let PruneRule::Allowed { limit, force } = rule {
        // A link held back on its own (answered empty) is the link rail's:
        // left out of its group's counts before and now.
        let counted: Vec<(usize, &Ipv6Addr)> = links
            .iter()
            .enumerate()
            .filter(|(_, l)| {
                !parts
                    .links
                    .iter()
                    .any(|(p, x)| x == *l && parts.empty.contains(p))
            })
            .collect();
        for g in groups.iter().filter(|g| g.complete()) {
            let known = memory.groups.get(g.name);
            let before: u64 = counted
                .iter()
                .filter_map(|(_, l)| known?.get(&l.to_string()))
                .sum();
            let now: u64 = counted.iter().map(|(q, _)| g.bindings_of(*q)).sum();
            let lost = before.saturating_sub(now) as usize;
            let reason = prune::decide_part(limit, force, before as usize, lost, now == 0);
            if let Some(reason) = reason {
                parts.groups.push(HeldBack {
                    part: Part::Group(g.name.to_string()),
                    reason,
                    ours: before as usize,
                    candidates: lost,
                });
            }
        }
    }
    parts
}

/// The memory after a run that wrote routes: each complete group's
/// bindings per link (`links`, in query order), but for a group the rail
/// held back (its collapsed answer is not learned as normal) unless
/// `force`d.
pub(super) fn remember(
    memory: &mut Memory,
    links: &[Ipv6Addr],
    servers: &[ServerPart],
    held_back: &[HeldBack],
    force: bool,
) {
    for g in super::report::groups_of(servers)
        .iter()
        .filter(|g| g.complete())
    {
        let held = held_back
            .iter()
            .any(|h| matches!(&h.part, Part::Group(n) if n == g.name));
        if force || !held {
            let counts = links
                .iter()
                .enumerate()
                .map(|(q, l)| (l.to_string(), g.bindings_of(q)))
                .collect();
            memory.groups.insert(g.name.to_string(), counts);
        }
    }
}

#[cfg(test)]
#[path = "groups_tests.rs"]
mod tests;
