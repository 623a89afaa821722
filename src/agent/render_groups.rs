//! The server groups in the summary: each group's fate, and a warning for
//! each member that failed beside one that answered (a replica down is not
//! a partial run, but the operator must hear of it).

use super::report::{GroupPart, Report};
use serde::Serialize;

/// One server group's part of the run.
#[derive(Debug, Clone, Serialize)]
pub struct GroupSummary {
    /// Its name (`[[server]] group`, or the server's address).
    pub name: String,
    /// Its members' addresses, in configuration order.
    pub members: Vec<String>,
    /// A member answered every query whole.
    pub complete: bool,
    /// Bindings of its most complete answer (the most a whole member delivered).
    pub bindings: u64,
    /// Members that did not answer whole although the group did.
    pub degraded: Vec<String>,
}

impl GroupSummary {
    fn of(g: &GroupPart<'_>) -> Self {
        GroupSummary {
            name: g.name.to_string(),
            members: g.members.iter().map(|m| m.addr.to_string()).collect(),
            complete: g.complete(),
            bindings: g.bindings(),
            degraded: g.degraded().iter().map(|m| m.addr.to_string()).collect(),
        }
    }
}

/// The groups of `r`, in order of first appearance.
pub(super) fn group_summaries(r: &Report) -> Vec<GroupSummary> {
    r.groups().iter().map(GroupSummary::of).collect()
}

/// A warning for each member that did not answer whole in a group that
/// answered through another: which member, how it ended, which answered.
pub(super) fn group_warnings(r: &Report) -> Vec<String> {
    let mut out = Vec::new();
    for g in r.groups() {
        let whole: Vec<String> = g
            .members
            .iter()
            .filter(|m| m.complete())
            .map(|m| m.addr.to_string())
            .collect();
        for m in g.degraded() {
            let how = match &m.report {
                Some(rep) => rep
                    .queries
                    .iter()
                    .find(|q| !q.outcome.is_complete())
                    .map(|q| q.outcome.to_string())
                    .unwrap_or_else(|| "incomplete".into()),
                None if m.stopped => "stopped group_grace after its group had answered".into(),
                None => "interrupted".into(),
            };
            out.push(format!(
                "server {} of group {} did not answer whole ({how}); the group answered completely through {}",
                m.addr,
                g.name,
                whole.join(", ")
            ));
        }
    }
    if !r.listener_drops.is_empty() {
        out.push(crate::routes::listeners::advice(&r.listener_drops));
    }
    out
}
