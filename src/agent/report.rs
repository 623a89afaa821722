//! What one recovery did, typed: [`Report`]. The outcome and exit-status
//! policy ([`Report::outcome`]) reads these types; the text, the JSON
//! summary ([`super::Summary`]), the metrics and follow's log lines are
//! renderings of it.

use crate::config::QueryMode;
use crate::exit;
use crate::proto::{Duid, ServerIndex};
use crate::recovery::install::InstallReport;
use crate::recovery::prune::PruneState;
use crate::requestor::ServerReport;
use std::net::{Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// How a recovery ended, from its report ([`Report::outcome`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every server answered whole, every planned route is in place, no
    /// prefix waits for an interface, the prune rail refused nothing.
    Complete,
    /// Something was restored, but not all of that.
    Partial,
    /// Nothing is in place, and a server, a route or an interface failed.
    Failed,
}

impl Outcome {
    /// `complete`, `partial` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Complete => "complete",
            Outcome::Partial => "partial",
            Outcome::Failed => "failed",
        }
    }

    /// The process exit status it stands for ([`crate::exit`]).
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Complete => exit::OK,
            Outcome::Partial => exit::PARTIAL,
            Outcome::Failed => exit::NOTHING,
        }
    }
}

/// Something the operator needs to read a report right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// QUERY_BY_RELAY_ID was answered completely, with no binding at all:
    /// the relay agent may send no Relay-ID (ISC dhcrelay never does).
    NoRelayIdBindings,
    /// Link-address mode had no link to ask about.
    NoLinks,
    /// A dry run asked with a temporary relay DUID: none is configured or
    /// stored in this directory yet.
    TemporaryRelayDuid {
        /// The state directory.
        state_directory: PathBuf,
    },
}

impl Note {
    /// The note makes the answer an empty one (not a clean success).
    pub fn is_empty_answer(&self) -> bool {
        matches!(self, Note::NoRelayIdBindings | Note::NoLinks)
    }
}

/// One configured server's part of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerPart {
    /// Its address and port, as configured.
    pub addr: SocketAddr,
    /// Its server group (`[[server]] group`, or its address).
    pub group: String,
    /// How it fared; `None` when the run was stopped before it finished,
    /// or when it was stopped because its group had answered ([`ServerPart::stopped`]).
    pub report: Option<ServerReport>,
    /// Bindings it delivered to the run.
    pub delivered: u64,
    /// Stopped `group_grace` after its group had answered completely
    /// through another member.
    pub stopped: bool,
}

impl ServerPart {
    /// Every query was answered whole.
    pub fn complete(&self) -> bool {
        self.report.as_ref().is_some_and(ServerReport::is_complete)
    }
}

/// A server group's part of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupPart<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its members, in configuration order.
    pub members: Vec<&'a ServerPart>,
}

impl<'a> GroupPart<'a> {
    /// A member answered every query whole: the group has answered (its
    /// members are replicas).
    pub fn complete(&self) -> bool {
        self.members.iter().any(|m| m.complete())
    }

    /// Members that did not answer whole although the group did: a
    /// warning, not a partial run.
    pub fn degraded(&self) -> Vec<&'a ServerPart> {
        if !self.complete() {
            return Vec::new();
        }
        self.members
            .iter()
            .filter(|m| !m.complete())
            .copied()
            .collect()
    }

    /// Bindings of its most complete answer: the most a member that
    /// answered whole delivered.
    pub fn bindings(&self) -> u64 {
        self.members
            .iter()
            .filter(|m| m.complete())
            .map(|m| m.delivered)
            .max()
            .unwrap_or(0)
    }

    /// Bindings of its most complete answer to query `index` (a link):
    /// the most a member that answered whole delivered for it.
    pub fn bindings_of(&self, index: usize) -> u64 {
        self.members
            .iter()
            .filter(|m| m.complete())
            .filter_map(|m| m.report.as_ref())
            .flat_map(|r| r.queries.iter().filter(|q| q.index == index))
            .map(|q| q.bindings)
            .max()
            .unwrap_or(0)
    }
}

/// The server groups of `servers`, in order of first appearance.
pub fn groups_of(servers: &[ServerPart]) -> Vec<GroupPart<'_>> {
    let mut out: Vec<GroupPart<'_>> = Vec::new();
    for s in servers {
        match out.iter_mut().find(|g| g.name == s.group) {
            Some(g) => g.members.push(s),
            None => out.push(GroupPart {
                name: &s.group,
                members: vec![s],
            }),
        }
    }
    out
}

/// What one recovery did: what each server answered, what the prefix table
/// decided and what reached the route table, and when.
#[derive(Debug, Clone)]
pub struct Report {
    /// How the bindings were asked for.
    pub query: QueryMode,
    /// The relay DUID (the Relay-ID queried, in relay-id mode).
    pub relay: Duid,
    /// The DUID the queries carried as CLIENTID (RFC 5007 s.4.2.1):
    /// `requestor_duid`, or the relay DUID. In link-address mode it is
    /// the only DUID the run uses.
    pub requestor: Duid,
    /// The links asked about.
    pub links: Vec<Ipv6Addr>,
    /// Nothing was touched.
    pub dry_run: bool,
    /// Stopped by a signal before every server finished.
    pub interrupted: bool,
    /// Per configured server, in configuration order.
    pub servers: Vec<ServerPart>,
    /// Bindings received in all.
    pub bindings: u64,
    /// What the installation decided and did.
    pub install: InstallReport,
    /// Interfaces `[routes.interfaces]` names that do not exist.
    pub missing_interfaces: Vec<String>,
    /// What the operator should know.
    pub notes: Vec<Note>,
    /// From the start to the first binding.
    pub first_binding: Option<Duration>,
    /// From the start to the end.
    pub duration: Duration,
    /// Other rtnetlink listeners (a routing daemon) that lost route
    /// notifications during the run: they may miss some of our routes.
    pub listener_drops: Vec<crate::routes::listeners::ListenerDrops>,
}

impl Report {
    /// The server groups, in order of first appearance in the configuration.
    pub fn groups(&self) -> Vec<GroupPart<'_>> {
        groups_of(&self.servers)
    }

    /// Members that did not answer whole in groups that did (warnings).
    pub fn degraded(&self) -> Vec<&ServerPart> {
        self.groups().iter().flat_map(|g| g.degraded()).collect()
    }

    /// The notes a run's answers call for: no binding at all for our
    /// Relay-ID, no link to ask about.
    pub fn explain(&mut self) {
        let complete = self.groups().iter().all(GroupPart::complete);
        if self.query == QueryMode::RelayId && complete && self.bindings == 0 {
            self.notes.push(Note::NoRelayIdBindings);
        }
        if self.query == QueryMode::LinkAddress && self.links.is_empty() {
            self.notes.push(Note::NoLinks);
        }
    }

    /// Every server answered with nothing at all for our Relay-ID, or no
    /// link could be asked about: not a clean success.
    pub fn empty_answer(&self) -> bool {
        self.notes.iter().any(Note::is_empty_answer)
    }

    /// Every server group answered whole (through one member at least),
    /// and the run was not stopped.
    pub fn servers_complete(&self) -> bool {
        !self.interrupted && self.groups().iter().all(GroupPart::complete)
    }

    /// How the run ended: complete when every server group answered whole
    /// (a member that failed beside one that answered is a warning), every
    /// planned route is in place, no prefix was refused for a missing
    /// interface, the prune rail refused nothing and held nothing back and
    /// the answer was not empty; failed when nothing is in place and a
    /// server, a route or an interface failed; partial otherwise.
    pub fn outcome(&self) -> Outcome {
        let t = &self.install.table;
        let servers_ok = self.servers_complete();
        // Prefixes refused for want of an interface may be routed once it
        // is up: not complete. A missing interface nothing needed is only
        // reported.
        let no_interface = t.rejected.iter().any(|x| x.reason.is_missing_interface());
        let refused = matches!(t.prune.state, PruneState::Refused(_))
            || !t.prune.held_back.is_empty()
            || self.empty_answer();
        let in_place = t.planned.saturating_sub(t.failed.len());
        if servers_ok && t.failed.is_empty() && !no_interface && !refused {
            Outcome::Complete
        } else if in_place == 0 && (!servers_ok || !t.failed.is_empty() || no_interface) {
            Outcome::Failed
        } else {
            Outcome::Partial
        }
    }

    /// The process exit status of the run.
    pub fn exit_code(&self) -> u8 {
        self.outcome().exit_code()
    }

    /// The DUIDs of the servers whose bindings the run's answer holds:
    /// those that answered completely, and the other members of their
    /// groups (replicas) whose DUID the run learned.
    pub fn answered(&self) -> Vec<Duid> {
        self.groups()
            .iter()
            .filter(|g| g.complete())
            .flat_map(|g| g.members.iter())
            .filter_map(|s| s.report.as_ref()?.server_id.clone())
            .collect()
    }

    /// A server's name: its configured address and port.
    pub fn server_name(&self, i: ServerIndex) -> String {
        self.servers
            .get(i.get())
            .map(|s| s.addr.to_string())
            .unwrap_or_else(|| i.to_string())
    }
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
