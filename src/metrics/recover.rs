//! The metrics of one `recover` run (the last one): outcome, exit status,
//! times, per-server figures, what became of the routes and of the prune.

use super::family::{gauge, label_sets, one, samples, state_set};
use super::{count_of, unix_seconds, PREFIX};
use crate::agent::Report;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::{Registry, Unit};
use std::collections::BTreeMap;
use std::time::SystemTime;

/// The outcomes `pdrestore_recover_outcome` has a series for: those of
/// [`Outcome`](crate::agent::Outcome), and `error` for a run that ended before a report
/// (configuration error, no CAP_NET_ADMIN, unusable route table).
pub const OUTCOMES: [&str; 4] = ["complete", "partial", "failed", "error"];

/// The states `pdrestore_prune_state` has a series for (those of
/// [`PruneState::name`](crate::recovery::prune::PruneState::name)).
pub const PRUNE_STATES: [&str; 4] = ["done", "off", "skipped", "refused"];

/// One server's part of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerMetrics {
    /// Address and port, as in the summary (the `server` label).
    pub server: String,
    /// Bindings received.
    pub bindings: u64,
    /// Every query answered whole.
    pub complete: bool,
    /// Seconds from the start to its last answer.
    pub duration_seconds: f64,
}

/// Queries a server ended with an error status (or left unanswered), by
/// query type, status and the server's text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Refusal {
    /// The server (the `server` label).
    pub server: String,
    /// `relay-id` or `link-address`.
    pub query_type: String,
    /// The status's name (`NotAllowed`, `UseMulticast`, ...), or
    /// `no-answer` for a query the server never answered.
    pub status: String,
    /// The server's text (empty for no answer).
    pub text: String,
}

/// One server group's part of a run (`[[server]] group`).
#[derive(Debug, Clone, PartialEq)]
pub struct GroupMetrics {
    /// Its name (the `group` label).
    pub group: String,
    /// A member answered every query whole.
    pub complete: bool,
    /// Members that did not answer whole although the group did.
    pub degraded: u64,
}

/// The figures of a run that got as far as a summary.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunFigures {
    /// Per server, in configuration order.
    pub servers: Vec<ServerMetrics>,
    /// Per server group, in order of first appearance.
    pub groups: Vec<GroupMetrics>,
    /// Queries servers refused (an error status, or no answer), counted.
    pub refusals: BTreeMap<Refusal, u64>,
    /// Bindings received in all.
    pub bindings: u64,
    /// Prefixes with a route in the plan.
    pub planned: u64,
    /// Routes added.
    pub added: u64,
    /// Routes replaced.
    pub replaced: u64,
    /// Routes already right.
    pub unchanged: u64,
    /// Routes removed (prune).
    pub removed: u64,
    /// Prefixes left to a route that is not ours.
    pub foreign_conflicts: u64,
    /// Routes the kernel refused.
    pub failed: u64,
    /// Prefixes refused, by reason code (`outside-pools`, ...).
    pub rejected: BTreeMap<String, u64>,
    /// Prefixes two servers gave to different clients.
    pub conflicts: u64,
    /// Route notifications other rtnetlink listeners (a routing daemon)
    /// lost during the run, summed over the listeners.
    pub netlink_listener_drops: u64,
    /// `done`, `off`, `skipped` or `refused`.
    pub prune_state: String,
    /// Our routes listed at the start.
    pub prune_ours: u64,
    /// Our routes no binding backs (removed, or that a prune would remove).
    pub prune_candidates: u64,
    /// Links and groups the rail held back, by reason code
    /// (`link-empty`, `link-over-limit`, `group-empty`, `group-over-limit`).
    pub prune_held_back: BTreeMap<String, u64>,
    /// Seconds from the start to the end of the run.
    pub duration_seconds: f64,
}

/// A snapshot of one `recover` run, as written to the metrics file.
#[derive(Debug, Clone, PartialEq)]
pub struct RecoverMetrics {
    /// One of [`OUTCOMES`].
    pub outcome: String,
    /// The process exit status.
    pub exit_code: u8,
    /// When the run ended.
    pub finished_at: SystemTime,
    /// The figures; `None` for a run that ended before a summary.
    pub figures: Option<RunFigures>,
}

impl RecoverMetrics {
    /// The figures of a run that ended with `report`, at `finished_at`.
    pub fn from_report(report: &Report, finished_at: SystemTime) -> Self {
        let t = &report.install.table;
        let mut rejected = BTreeMap::new();
        for x in t.rejected.iter().filter(|x| !x.reason.is_other_relays()) {
            *rejected.entry(x.reason.code().to_string()).or_insert(0) += 1;
        }
        let mut prune_held_back = BTreeMap::new();
        for h in &t.prune.held_back {
            *prune_held_back.entry(h.code().to_string()).or_insert(0) += 1;
        }
        let figures = RunFigures {
            refusals: refusals(report),
            groups: report
                .groups()
                .iter()
                .map(|g| GroupMetrics {
                    group: g.name.to_string(),
                    complete: g.complete(),
                    degraded: count_of(g.degraded().len()),
                })
                .collect(),
            prune_held_back,
            servers: report
                .servers
                .iter()
                .map(|s| ServerMetrics {
                    server: s.addr.to_string(),
                    bindings: s.report.as_ref().map_or(s.delivered, |r| r.bindings()),
                    complete: s.complete(),
                    duration_seconds: s
                        .report
                        .as_ref()
                        .map_or(report.duration, |r| r.duration)
                        .as_secs_f64(),
                })
                .collect(),
            bindings: report.bindings,
            planned: count_of(t.planned),
            added: count_of(t.added),
            replaced: count_of(t.replaced),
            unchanged: count_of(t.unchanged),
            removed: count_of(t.removed),
            foreign_conflicts: count_of(t.foreign_conflicts.len()),
            failed: count_of(t.failed.len()),
            rejected,
            conflicts: count_of(t.conflicts.len()),
            netlink_listener_drops: report.listener_drops.iter().map(|d| d.drops).sum(),
            prune_state: t.prune.state.name().to_string(),
            prune_ours: count_of(t.prune.ours),
            prune_candidates: count_of(t.prune.candidates),
            duration_seconds: report.duration.as_secs_f64(),
        };
        let outcome = report.outcome();
        RecoverMetrics {
            outcome: outcome.as_str().to_string(),
            exit_code: outcome.exit_code(),
            finished_at,
            figures: Some(figures),
        }
    }

    /// A run that ended with `exit_code` before there was a summary
    /// (outcome `error`).
    pub fn failure(exit_code: u8, finished_at: SystemTime) -> Self {
        RecoverMetrics {
            outcome: "error".into(),
            exit_code,
            finished_at,
            figures: None,
        }
    }

    /// Whether this run counts as complete (sets the last complete time).
    pub fn is_complete(&self) -> bool {
        self.outcome == "complete"
    }

    /// The registry to encode: this run, and `last_complete` (seconds since
    /// the epoch; `None`: never, written as 0) unless this run is complete.
    pub fn registry(&self, last_complete: Option<f64>) -> Registry {
        let finished = unix_seconds(self.finished_at);
        let mut registry = Registry::with_prefix(PREFIX);
        registry.register_collector(Box::new(RecoverCollector {
            run: self.clone(),
            finished,
            last_complete: if self.is_complete() {
                finished
            } else {
                last_complete.unwrap_or(0.0)
            },
        }));
        registry
    }
}

/// Encodes a [`RecoverMetrics`] in a fixed order (servers in configuration
/// order, reasons sorted), so that two files differ only where the runs do.
#[derive(Debug)]
struct RecoverCollector {
    run: RecoverMetrics,
    finished: f64,
    last_complete: f64,
}

impl Collector for RecoverCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        self.encode_run(&mut e)?;
        let Some(f) = &self.run.figures else {
            return Ok(());
        };
        encode_servers(&mut e, f)?;
        encode_routes(&mut e, f)?;
        encode_prune(&mut e, f)
    }
}

impl RecoverCollector {
    /// The run itself: outcome, exit status, when it ended, how long it took.
    fn encode_run(&self, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let run = &self.run;
        let seconds = Unit::Seconds;
        let outcomes = label_sets("outcome", OUTCOMES.into_iter());
        gauge(
            e,
            "recover_outcome",
            "Outcome of the last recover run: 1 for the outcome it had (complete, partial, failed; error when it ended before a summary)",
            None,
            &state_set(&outcomes, &run.outcome),
        )?;
        gauge(
            e,
            "recover_exit_code",
            "Exit status of the last recover run (0 complete, 1 partial, 2 nothing restored, 64 usage, 70 internal, 77 no CAP_NET_ADMIN, 78 configuration)",
            None,
            &one(i64::from(run.exit_code)),
        )?;
        gauge(
            e,
            "last_run_timestamp",
            "When the last recover run ended, seconds since the epoch",
            Some(&seconds),
            &one(self.finished),
        )?;
        gauge(
            e,
            "last_complete_timestamp",
            "When the last complete recover run ended, seconds since the epoch (0: none yet); kept across runs that are not complete",
            Some(&seconds),
            &one(self.last_complete),
        )?;
        if let Some(f) = &run.figures {
            gauge(
                e,
                "recover_duration",
                "Duration of the last recover run",
                Some(&seconds),
                &one(f.duration_seconds),
            )?;
        }
        Ok(())
    }
}

/// The refusals of a run: per server and query, the error status it
/// ended the query with ([`Outcome::server_status`]), or its silence.
///
/// [`Outcome::server_status`]: crate::requestor::Outcome::server_status
fn refusals(report: &Report) -> BTreeMap<Refusal, u64> {
    let mut out = BTreeMap::new();
    let reports = report.servers.iter().filter_map(|s| s.report.as_ref());
    for r in reports {
        for q in &r.queries {
            let (status, text) = match q.outcome.server_status() {
                Some(s) => (
                    s.status.code.name().unwrap_or("unknown").to_string(),
                    s.status.message.clone(),
                ),
                None if q.outcome == crate::requestor::Outcome::NoAnswer => {
                    ("no-answer".to_string(), String::new())
                }
                None => continue,
            };
            let key = Refusal {
                server: r.server.to_string(),
                query_type: report.query.as_str().to_string(),
                status,
                text,
            };
            *out.entry(key).or_insert(0) += 1;
        }
    }
    out
}

/// Per server: bindings, whole or not, duration.
fn encode_servers(e: &mut DescriptorEncoder, f: &RunFigures) -> Result<(), std::fmt::Error> {
    let seconds = Unit::Seconds;
    let servers = label_sets("server", f.servers.iter().map(|s| &*s.server));
    gauge(
        e,
        "server_bindings",
        "Bindings received from the server in the last recover run",
        None,
        &samples(&servers, f.servers.iter().map(|s| s.bindings)),
    )?;
    gauge(
        e,
        "server_complete",
        "1 when every query to the server was answered whole in the last recover run, 0 otherwise",
        None,
        &samples(&servers, f.servers.iter().map(|s| i64::from(s.complete))),
    )?;
    gauge(
        e,
        "server_duration",
        "Time from the start of the last recover run to the server's last answer",
        Some(&seconds),
        &samples(&servers, f.servers.iter().map(|s| s.duration_seconds)),
    )?;
    let refusal_labels: Vec<[(&str, &str); 4]> = f
        .refusals
        .keys()
        .map(|r| {
            [
                ("server", &*r.server),
                ("query_type", &*r.query_type),
                ("status", &*r.status),
                ("text", &*r.text),
            ]
        })
        .collect();
    let refused: Vec<(&[(&str, &str)], u64)> = refusal_labels
        .iter()
        .map(|l| &l[..])
        .zip(f.refusals.values().copied())
        .collect();
    gauge(
        e,
        "server_queries_refused",
        "Queries the server ended with an error status (NotAllowed, UnknownQueryType, MalformedQuery, NotConfigured, QueryTerminated, a status in a message not allowed on the connection), or never answered (status=\"no-answer\"), in the last recover run, with the server's text",
        None,
        &refused,
    )?;
    let groups = label_sets("group", f.groups.iter().map(|g| &*g.group));
    gauge(
        e,
        "server_group_complete",
        "1 when a member of the server group answered every query whole in the last recover run, 0 otherwise",
        None,
        &samples(&groups, f.groups.iter().map(|g| i64::from(g.complete))),
    )?;
    gauge(
        e,
        "server_group_degraded",
        "Members of the server group that did not answer whole although the group did (a replica down: a warning, not a partial run)",
        None,
        &samples(&groups, f.groups.iter().map(|g| g.degraded)),
    )?;
    Ok(())
}

/// What became of the routes.
fn encode_routes(e: &mut DescriptorEncoder, f: &RunFigures) -> Result<(), std::fmt::Error> {
    for (name, help, v) in [
        (
            "bindings_received",
            "Bindings received from all servers in the last recover run",
            f.bindings,
        ),
        (
            "routes_planned",
            "Prefixes with a route in the plan of the last recover run",
            f.planned,
        ),
        (
            "routes_added",
            "Routes added by the last recover run",
            f.added,
        ),
        (
            "routes_replaced",
            "Routes replaced by the last recover run",
            f.replaced,
        ),
        (
            "routes_unchanged",
            "Routes already right in the last recover run",
            f.unchanged,
        ),
        (
            "routes_removed",
            "Routes removed (pruned) by the last recover run",
            f.removed,
        ),
        (
            "routes_foreign_conflicts",
            "Prefixes left to a route that is not pdrestore's in the last recover run",
            f.foreign_conflicts,
        ),
        (
            "routes_failed",
            "Route changes the kernel refused in the last recover run",
            f.failed,
        ),
        (
            "binding_conflicts",
            "Prefixes two servers gave to different clients in the last recover run",
            f.conflicts,
        ),
        (
            "netlink_listener_drops",
            "Route notifications other rtnetlink listeners (a routing daemon such as zebra) lost during the last recover run: they may not know some of its routes",
            f.netlink_listener_drops,
        ),
    ] {
        gauge(e, name, help, None, &one(v))?;
    }
    let reasons = label_sets("reason", f.rejected.keys().map(|k| &**k));
    gauge(
        e,
        "routes_rejected",
        "Prefixes refused in the last recover run, by reason code (no series: none refused)",
        None,
        &samples(&reasons, f.rejected.values().copied()),
    )?;
    Ok(())
}

/// The prune rail.
fn encode_prune(e: &mut DescriptorEncoder, f: &RunFigures) -> Result<(), std::fmt::Error> {
    let states = label_sets("state", PRUNE_STATES.into_iter());
    gauge(
            e,
            "prune_state",
            "What became of pruning in the last recover run: 1 for its state (done, off, skipped, refused by the prune rail)",
            None,
            &state_set(&states, &f.prune_state),
        )?;
    gauge(
            e,
            "prune_candidates",
            "pdrestore's routes no binding backed in the last recover run (removed, or that a refused prune would have removed)",
            None,
            &one(f.prune_candidates),
        )?;
    gauge(
        e,
        "prune_routes_owned",
        "pdrestore's routes in the table at the start of the last recover run",
        None,
        &one(f.prune_ours),
    )?;
    let reasons = label_sets("reason", f.prune_held_back.keys().map(|k| &**k));
    gauge(
        e,
        "prune_held_back",
        "Links and server groups the prune rail held back in the last recover run, by reason (link-empty, link-over-limit, group-empty, group-over-limit; no series: none)",
        None,
        &samples(&reasons, f.prune_held_back.values().copied()),
    )?;
    Ok(())
}
