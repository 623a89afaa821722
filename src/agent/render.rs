//! The renderings of a [`Report`] at the edge: the JSON summary
//! ([`Summary`], one object, its schema kept stable for scripts and
//! alerts) and the human-readable text ([`Summary::to_text`]).

use super::render_groups::{group_summaries, group_warnings, GroupSummary};
pub(crate) use super::render_servers::ms;
use super::render_servers::{server_summary, ServerSummary};
use super::report::{Note, Report};
use crate::config::QueryMode;
use crate::proto::ServerIndex;
use crate::recovery::install::InstallReport;
use crate::recovery::prune::{HeldBack, Part, PruneRefusal, PruneReport, PruneSkip, PruneState};
use crate::routes::Route;
use serde::Serialize;
use std::collections::BTreeMap;

/// A prefix refused.
#[derive(Debug, Clone, Serialize)]
pub struct RejectedSummary {
    /// The prefix.
    pub prefix: String,
    /// Its client.
    pub client: String,
    /// The server whose binding won.
    pub server: String,
    /// Why it got no route.
    pub reason: String,
    /// Why, as a stable code (`outside-pools`, `no-interface`, ...).
    pub reason_code: String,
}

/// A route the table refused.
#[derive(Debug, Clone, Serialize)]
pub struct FailedSummary {
    /// The prefix.
    pub prefix: String,
    /// add, replace or remove.
    pub op: String,
    /// The error.
    pub error: String,
    /// The error as a stable code: the kernel's errno name (`ENODEV`).
    pub error_code: String,
}

/// A disagreement between servers.
#[derive(Debug, Clone, Serialize)]
pub struct ConflictSummary {
    /// The prefix.
    pub prefix: String,
    /// Server whose binding won.
    pub winner_server: String,
    /// Client it names.
    pub winner_client: String,
    /// Server whose binding lost.
    pub loser_server: String,
    /// Client it names.
    pub loser_client: String,
    /// Always `servers-disagree`.
    pub code: &'static str,
}

/// A prefix whose key (table, prefix, metric) holds a route that is not
/// ours: the route is left in place and the prefix gets none of ours.
#[derive(Debug, Clone, Serialize)]
pub struct ForeignConflictSummary {
    /// The prefix.
    pub prefix: String,
    /// The client the winning binding names.
    pub client: String,
    /// The server of the winning binding.
    pub server: String,
    /// The other route's protocol tag (`null`: unknown).
    pub protocol: Option<u8>,
    /// The other route's metric (`null`: unknown).
    pub metric: Option<u32>,
    /// The other route's next hop, if any.
    pub via: Option<String>,
    /// The other route's interface, if any.
    pub dev: Option<String>,
    /// Always `foreign-route`.
    pub code: &'static str,
}

/// One of our routes whose next hop or interface changed.
#[derive(Debug, Clone, Serialize)]
pub struct MovedSummary {
    /// Destination.
    pub prefix: String,
    /// Next hop before.
    pub old_via: String,
    /// Interface before.
    pub old_dev: String,
    /// Metric before.
    pub old_metric: u32,
    /// Next hop now.
    pub via: String,
    /// Interface now.
    pub dev: String,
    /// Metric now.
    pub metric: u32,
}

/// What became of pruning.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PruneSummary {
    /// `done`, `off`, `skipped` or `refused`.
    pub state: &'static str,
    /// Why it did not run, as a stable code (`prune-off`,
    /// `incomplete-answer`, `interrupted`, `empty-answer`, `over-limit`).
    pub reason_code: Option<&'static str>,
    /// Why it did not run, in words.
    pub reason: Option<String>,
    /// Our routes listed at the start.
    pub ours: usize,
    /// Our routes no binding backs (removed, or that a prune would remove).
    pub candidates: usize,
    /// The rail (`prune_limit`).
    pub limit: Option<String>,
    /// The parts the rail held back: links whose routes were kept while
    /// the rest was pruned, server groups that stopped the prune.
    pub held_back: Vec<HeldBackSummary>,
}

/// A link or server group the prune rail held back.
#[derive(Debug, Clone, Serialize)]
pub struct HeldBackSummary {
    /// `link` or `group`.
    pub kind: &'static str,
    /// The interface (a link).
    pub interface: Option<String>,
    /// The link-addresses asked about on it (a link in link-address mode).
    pub links: Vec<String>,
    /// The group's name (a group).
    pub group: Option<String>,
    /// `link-empty`, `link-over-limit`, `group-empty`, `group-over-limit`.
    pub reason_code: &'static str,
    /// Why, in words.
    pub reason: String,
    /// Our routes on the link (a group: the bindings of its last complete answer).
    pub ours: usize,
    /// What it would have lost (a group: how many fewer bindings it has).
    pub candidates: usize,
}

impl HeldBackSummary {
    fn of(h: &HeldBack) -> Self {
        let (kind, interface, links, group) = match &h.part {
            Part::Link { interface, links } => (
                "link",
                Some(interface.to_string()),
                links.iter().map(|l| l.to_string()).collect(),
                None,
            ),
            Part::Group(g) => ("group", None, Vec::new(), Some(g.clone())),
        };
        HeldBackSummary {
            kind,
            interface,
            links,
            group,
            reason_code: h.code(),
            reason: h.to_string(),
            ours: h.ours,
            candidates: h.candidates,
        }
    }
}

/// One change a dry run would make.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeSummary {
    /// add, replace or remove.
    pub op: String,
    /// Destination.
    pub prefix: String,
    /// Next hop (the new one for a replace).
    pub via: String,
    /// Interface.
    pub dev: String,
    /// Remaining lifetime, seconds.
    pub expires: Option<u32>,
}

/// Route counts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RouteSummary {
    /// Prefixes with a route in the plan.
    pub planned: usize,
    /// Routes added.
    pub added: usize,
    /// Routes replaced.
    pub replaced: usize,
    /// Routes already right.
    pub unchanged: usize,
    /// Routes removed (prune).
    pub removed: usize,
    /// Prefixes refused.
    pub rejected: Vec<RejectedSummary>,
    /// Routes the kernel refused.
    pub failed: Vec<FailedSummary>,
    /// Whether pruning ran.
    pub pruned: bool,
    /// Table operations performed.
    pub operations: usize,
    /// Dry run only: what would change.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<ChangeSummary>,
    /// Prefixes left to a route that is not ours.
    pub foreign_conflicts: Vec<ForeignConflictSummary>,
    /// Our routes removed (dry run: that would be), as they were.
    pub removed_routes: Vec<ChangeSummary>,
    /// Our routes whose next hop or interface changed.
    pub moved_routes: Vec<MovedSummary>,
    /// Pruning.
    pub prune: PruneSummary,
    /// Bindings dropped without a route or an error, by reason code:
    /// `other-relay`, another relay's bindings that a link query also
    /// returns (the rest of the subnet).
    pub dropped: BTreeMap<String, u64>,
}

/// What `recover` did: printed as text or as one JSON object.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// How the bindings were asked for: `relay-id` or `link-address`.
    pub query: &'static str,
    /// The Relay-ID queried (relay-id mode; `null` in link-address mode,
    /// which uses no relay DUID).
    pub relay_duid: Option<String>,
    /// The DUID the queries carried as CLIENTID.
    pub requestor_duid: String,
    /// The link-addresses asked about (`::` for every link in relay-id mode).
    pub links: Vec<String>,
    /// Dry run: nothing was touched.
    pub dry_run: bool,
    /// Stopped by a signal before every server finished.
    pub interrupted: bool,
    /// Per server, in configuration order.
    pub servers: Vec<ServerSummary>,
    /// Per server group (`[[server]] group`), in order of first appearance.
    pub groups: Vec<GroupSummary>,
    /// What the operator must hear of although the run is complete: a
    /// member that failed in a group that answered through another.
    pub warnings: Vec<String>,
    /// Other rtnetlink listeners (a routing daemon) that lost route
    /// notifications during the run (each also a warning).
    pub netlink_listener_drops: Vec<crate::routes::listeners::ListenerDrops>,
    /// Bindings received in all.
    pub bindings: u64,
    /// Bindings dropped because their lifetime had run out.
    pub expired: usize,
    /// Routes.
    pub routes: RouteSummary,
    /// Servers' disagreements.
    pub conflicts: Vec<ConflictSummary>,
    /// Interfaces `[routes.interfaces]` names that did not exist.
    pub missing_interfaces: Vec<String>,
    /// Things the operator should know (e.g. the dry run's relay DUID).
    pub notes: Vec<String>,
    /// Every server answered with nothing at all for our Relay-ID (or no
    /// link could be asked about): not a clean success.
    pub empty_answer: bool,
    /// Milliseconds from start to the first binding.
    pub first_binding_ms: Option<u64>,
    /// Milliseconds from start to the first route in the table.
    pub first_route_ms: Option<u64>,
    /// Milliseconds from start to the end.
    pub duration_ms: u64,
    /// `complete`, `partial` or `failed`.
    pub outcome: String,
    /// The process exit status this summary stands for.
    pub exit_code: u8,
}

impl Summary {
    /// The JSON form of `r`.
    pub fn of(r: &Report) -> Summary {
        let name = |i: ServerIndex| r.server_name(i);
        let outcome = r.outcome();
        let conflicts = r
            .install
            .table
            .conflicts
            .iter()
            .map(|c| ConflictSummary {
                prefix: c.prefix.to_string(),
                winner_server: name(c.winner.0),
                winner_client: c.winner.1.to_hex(),
                loser_server: name(c.loser.0),
                loser_client: c.loser.1.to_hex(),
                code: "servers-disagree",
            })
            .collect();
        Summary {
            query: r.query.as_str(),
            relay_duid: (r.query == QueryMode::RelayId).then(|| r.relay.to_hex()),
            requestor_duid: r.requestor.to_hex(),
            links: r.links.iter().map(|l| l.to_string()).collect(),
            dry_run: r.dry_run,
            interrupted: r.interrupted,
            servers: r
                .servers
                .iter()
                .map(|s| server_summary(s, r.query, &r.links, r.duration))
                .collect(),
            groups: group_summaries(r),
            warnings: group_warnings(r),
            netlink_listener_drops: r.listener_drops.clone(),
            bindings: r.bindings,
            expired: r.install.table.expired,
            routes: route_summary(&r.install, &name),
            conflicts,
            missing_interfaces: r.missing_interfaces.clone(),
            notes: r.notes.iter().map(|n| note_text(n, r)).collect(),
            empty_answer: r.empty_answer(),
            first_binding_ms: r.first_binding.map(ms),
            first_route_ms: r.install.first_route_at,
            duration_ms: ms(r.duration),
            outcome: outcome.as_str().into(),
            exit_code: outcome.exit_code(),
        }
    }
}

impl Report {
    /// The JSON summary of the run.
    pub fn summary(&self) -> Summary {
        Summary::of(self)
    }

    /// The human-readable summary of the run.
    pub fn to_text(&self) -> String {
        self.summary().to_text()
    }
}

/// A note in words.
fn note_text(n: &Note, r: &Report) -> String {
    match n {
        Note::NoRelayIdBindings => format!(
            "no server holds a binding for relay-id {}: if the relay agent does not put OPTION_RELAY_ID (53) in its RELAY-FORW messages (ISC dhcrelay never does), recover by link-address instead: query = \"link-address\" with links = [the router's address on each client link]",
            r.relay.to_hex()
        ),
        Note::NoLinks => "no link to query: none of the interfaces [routes.interfaces] names has a global address; set links".into(),
        Note::TemporaryRelayDuid { state_directory } => format!(
            "no relay DUID is configured or stored in {} yet: this dry run asked with a temporary one, which no server knows",
            state_directory.display()
        ),
    }
}

fn change_summary(op: &str, route: &Route) -> ChangeSummary {
    ChangeSummary {
        op: op.into(),
        prefix: route.prefix.to_string(),
        via: route.gateway.to_string(),
        dev: route.interface.to_string(),
        expires: route.expires,
    }
}

fn prune_summary(p: &PruneReport) -> PruneSummary {
    let (code, reason) = match p.state {
        PruneState::Done => (None, String::new()),
        PruneState::Off => (
            Some("prune-off"),
            "prune is off in the configuration".to_string(),
        ),
        PruneState::Skipped(PruneSkip::IncompleteAnswer) => (
            Some("incomplete-answer"),
            "not every server answered completely".to_string(),
        ),
        PruneState::Skipped(PruneSkip::Interrupted) => (
            Some("interrupted"),
            "the run was interrupted".to_string(),
        ),
        PruneState::Refused(PruneRefusal::EmptyAnswer) => (
            Some("empty-answer"),
            format!(
                "every server answered with no binding at all, which would remove all {} of our routes: check relay_duid, links and the servers' leases (recover --force-prune removes them)",
                p.candidates
            ),
        ),
        PruneState::Refused(PruneRefusal::GroupAnswer) => (
            Some("group-answer"),
            format!(
                "a server group's answer collapsed against its last complete one ({}): nothing is removed (recover --force-prune removes them)",
                p.held_back
                    .iter()
                    .filter(|h| matches!(h.part, Part::Group(_)))
                    .map(|h| h.part.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        PruneState::Refused(PruneRefusal::OverLimit) => (
            Some("over-limit"),
            format!(
                "it would remove {} of our {} routes, more than prune_limit {} allows (recover --force-prune removes them)",
                p.candidates,
                p.ours,
                p.limit.map(|l| l.to_string()).unwrap_or_default()
            ),
        ),
    };
    PruneSummary {
        state: p.state.name(),
        reason_code: code,
        reason: code.map(|_| reason),
        ours: p.ours,
        candidates: p.candidates,
        limit: p.limit.map(|l| l.to_string()),
        held_back: p.held_back.iter().map(HeldBackSummary::of).collect(),
    }
}

/// The routes part of the summary; `name` names a server.
fn route_summary(r: &InstallReport, name: &dyn Fn(ServerIndex) -> String) -> RouteSummary {
    RouteSummary {
        planned: r.table.planned,
        added: r.table.added,
        replaced: r.table.replaced,
        unchanged: r.table.unchanged,
        removed: r.table.removed,
        rejected: r
            .table
            .rejected
            .iter()
            .filter(|x| !x.reason.is_other_relays())
            .map(|x| RejectedSummary {
                prefix: x.prefix.to_string(),
                client: x.client.to_hex(),
                server: name(x.server),
                reason: x.reason.to_string(),
                reason_code: x.reason.code().to_string(),
            })
            .collect(),
        failed: r
            .table
            .failed
            .iter()
            .map(|f| FailedSummary {
                prefix: f.prefix.to_string(),
                op: f.op.to_string(),
                error: f.message.clone(),
                error_code: f.code(),
            })
            .collect(),
        pruned: r.pruned(),
        operations: r.operations,
        changes: r
            .dry_run_changes
            .iter()
            .map(|c| change_summary(c.op().as_str(), c.route()))
            .collect(),
        foreign_conflicts: r
            .table
            .foreign_conflicts
            .iter()
            .map(|c| ForeignConflictSummary {
                prefix: c.prefix.to_string(),
                client: c.client.to_hex(),
                server: name(c.server),
                protocol: c.foreign.protocol,
                metric: c.foreign.metric,
                via: c.foreign.gateway.map(|g| g.to_string()),
                dev: c.foreign.interface.as_ref().map(|d| d.to_string()),
                code: "foreign-route",
            })
            .collect(),
        removed_routes: r
            .table
            .removals
            .iter()
            .map(|x| change_summary("remove", x))
            .collect(),
        moved_routes: r
            .table
            .moved
            .iter()
            .map(|(old, new)| MovedSummary {
                prefix: new.prefix.to_string(),
                old_via: old.gateway.to_string(),
                old_dev: old.interface.to_string(),
                old_metric: old.metric,
                via: new.gateway.to_string(),
                dev: new.interface.to_string(),
                metric: new.metric,
            })
            .collect(),
        prune: prune_summary(&r.table.prune),
        dropped: r
            .table
            .rejected
            .iter()
            .filter(|x| x.reason.is_other_relays())
            .fold(BTreeMap::new(), |mut m, x| {
                *m.entry(x.reason.code().to_string()).or_insert(0) += 1;
                m
            }),
    }
}

impl Summary {
    /// The human-readable summary.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let asked = match &self.relay_duid {
            Some(r) => format!("relay-id {r}"),
            None => format!(
                "link-address {} (requestor {})",
                self.links.join(", "),
                self.requestor_duid
            ),
        };
        let _ = writeln!(
            s,
            "pdrestore recover{}: {asked}, {} in {:.3}s",
            if self.dry_run { " (dry run)" } else { "" },
            self.outcome,
            self.duration_ms as f64 / 1000.0
        );
        for n in &self.notes {
            let _ = writeln!(s, "  note: {n}");
        }
        for w in &self.warnings {
            let _ = writeln!(s, "  warning: {w}");
        }
        for v in &self.servers {
            let group = if v.group == v.server {
                String::new()
            } else {
                format!("  (group {})", v.group)
            };
            let _ = writeln!(
                s,
                "  server {:<28} {:>8} bindings  {:>8.3}s  {}{group}",
                v.server,
                v.bindings,
                v.duration_ms as f64 / 1000.0,
                v.status
            );
            for q in v.queries.iter().filter(|q| !q.complete) {
                if let Some(h) = q.hint {
                    let _ = writeln!(s, "    {} {}: {h}", q.query_type, q.link);
                }
            }
        }
        self.routes.write_text(&mut s, self.dry_run);
        for m in &self.missing_interfaces {
            let _ = writeln!(s, "  missing interface: {m} (named in [routes.interfaces])");
        }
        let _ = writeln!(s, "  conflicts: {}", self.conflicts.len());
        list(&mut s, &self.conflicts, 10, "conflicts", |c| {
            format!(
                "{}: {} (client {}) wins over {} (client {})",
                c.prefix, c.winner_server, c.winner_client, c.loser_server, c.loser_client
            )
        });
        if self.expired > 0 {
            let _ = writeln!(s, "  expired bindings dropped: {}", self.expired);
        }
        if let (Some(b), Some(r)) = (self.first_binding_ms, self.first_route_ms) {
            let _ = writeln!(s, "  first binding after {b} ms, first route after {r} ms");
        }
        s
    }
}

/// Up to `limit` lines of `items` (indented, one each), then
/// `... N more WHAT (see --json)`.
fn list<T>(s: &mut String, items: &[T], limit: usize, what: &str, line: impl Fn(&T) -> String) {
    use std::fmt::Write;
    for x in items.iter().take(limit) {
        let _ = writeln!(s, "    {}", line(x));
    }
    if items.len() > limit {
        let _ = writeln!(
            s,
            "    ... {} more {what} (see --json)",
            items.len() - limit
        );
    }
}

impl RouteSummary {
    /// The routes part of [`Summary::to_text`].
    fn write_text(&self, s: &mut String, dry_run: bool) {
        use std::fmt::Write;
        let _ = writeln!(
            s,
            "  routes: {} planned, {} added, {} replaced, {} unchanged, {} removed{}, {} rejected, {} failed, {} foreign",
            self.planned,
            self.added,
            self.replaced,
            self.unchanged,
            self.removed,
            if self.pruned { "" } else { " (no prune)" },
            self.rejected.len(),
            self.failed.len(),
            self.foreign_conflicts.len()
        );
        if let Some(why) = &self.prune.reason {
            let _ = writeln!(s, "  prune {}: {why}", self.prune.state);
        }
        for h in &self.prune.held_back {
            let _ = writeln!(s, "  prune held back ({}): {}", h.reason_code, h.reason);
        }
        list(s, &self.changes, 50, "changes", |c| {
            format!("would {} {} via {} dev {}", c.op, c.prefix, c.via, c.dev)
        });
        if !dry_run {
            list(s, &self.removed_routes, 20, "removed", |c| {
                format!("removed {} via {} dev {}", c.prefix, c.via, c.dev)
            });
        }
        list(s, &self.moved_routes, 20, "moved", |m| {
            let metric = |x: u32| {
                if m.old_metric == m.metric {
                    String::new()
                } else {
                    format!(" metric {x}")
                }
            };
            format!(
                "moved {} from {} dev {}{} to {} dev {}{}",
                m.prefix,
                m.old_via,
                m.old_dev,
                metric(m.old_metric),
                m.via,
                m.dev,
                metric(m.metric)
            )
        });
        list(s, &self.foreign_conflicts, 20, "foreign", |c| {
            let proto = c.protocol.map_or("?".to_string(), |p| p.to_string());
            let metric = c.metric.map(|m| format!(" metric {m}")).unwrap_or_default();
            format!(
                "foreign {}: a route of protocol {proto}{metric}{}{} holds it; left in place",
                c.prefix,
                c.via
                    .as_ref()
                    .map(|v| format!(" via {v}"))
                    .unwrap_or_default(),
                c.dev
                    .as_ref()
                    .map(|d| format!(" dev {d}"))
                    .unwrap_or_default(),
            )
        });
        list(s, &self.rejected, 20, "rejected", |x| {
            format!(
                "rejected {} (client {}, from {}): {}",
                x.prefix, x.client, x.server, x.reason
            )
        });
        list(s, &self.failed, 20, "failed", |f| {
            format!("failed {} {}: {}", f.op, f.prefix, f.error)
        });
    }
}
