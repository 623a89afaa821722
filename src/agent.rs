//! `pdrestore recover`: the main job.
//!
//! Query every configured server at once with QUERY_BY_RELAY_ID for each
//! configured link (RFC 5460 s.5.3.1, s.6.4), feed the bindings into the
//! [`Installer`] as they arrive (reconciliation per RFC 5007 s.4.3.4, route
//! planning, batched installation), then finish the plan and report.
//!
//! Bindings from a server whose answer stayed partial are still used (they
//! are what the server said), but pruning runs only when every server
//! answered completely, so a failing server never takes routes away.

use crate::config::Config;
use crate::proto::{Duid, Query};
use crate::recovery::install::{InstallReport, Installer};
use crate::recovery::plan::Interface;
use crate::requestor::fanout::{Fanout, FanoutConfig, QuerySpec, ServerReport, Update};
use crate::routes::{RouteTable, TableError};
use futures::FutureExt;
use serde::Serialize;
use std::time::{Duration, Instant};

/// Exit status: every server answered and every planned route is in place.
pub const EXIT_OK: u8 = 0;
/// Exit status: something was restored, but a server failed or a route did.
pub const EXIT_PARTIAL: u8 = 1;
/// Exit status: nothing was restored and something failed.
pub const EXIT_NOTHING: u8 = 2;

/// How to run.
#[derive(Debug, Clone)]
pub struct RecoverOptions {
    /// Plan and diff only; touch nothing.
    pub dry_run: bool,
    /// Interval of progress lines in the log.
    pub progress_every: Duration,
}

impl Default for RecoverOptions {
    fn default() -> Self {
        RecoverOptions {
            dry_run: false,
            progress_every: Duration::from_secs(5),
        }
    }
}

/// One query's fate on one server.
#[derive(Debug, Clone, Serialize)]
pub struct QuerySummary {
    /// The query's link-address (:: for all links).
    pub link: String,
    /// How it ended.
    pub outcome: String,
    /// Whether the answer is whole.
    pub complete: bool,
    /// Tries made.
    pub attempts: u32,
    /// Bindings delivered.
    pub bindings: u64,
}

/// One server's part.
#[derive(Debug, Clone, Serialize)]
pub struct ServerSummary {
    /// Address and port.
    pub server: String,
    /// Its DUID (OPTION_SERVERID), when it answered.
    pub server_id: Option<String>,
    /// Every query answered whole.
    pub complete: bool,
    /// Bindings received.
    pub bindings: u64,
    /// Short status: `complete`, or the first query's problem.
    pub status: String,
    /// Milliseconds from start to its last answer.
    pub duration_ms: u64,
    /// Connections made.
    pub connections: u32,
    /// Per query.
    pub queries: Vec<QuerySummary>,
}

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
}

/// What `recover` did: printed as text or as one JSON object.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The Relay-ID queried.
    pub relay_duid: String,
    /// Dry run: nothing was touched.
    pub dry_run: bool,
    /// Stopped by a signal before every server finished.
    pub interrupted: bool,
    /// Per server, in configuration order.
    pub servers: Vec<ServerSummary>,
    /// Bindings received in all.
    pub bindings: u64,
    /// Bindings dropped because their lifetime had run out.
    pub expired: usize,
    /// Routes.
    pub routes: RouteSummary,
    /// Servers' disagreements.
    pub conflicts: Vec<ConflictSummary>,
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

/// Why recovery could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    /// The route table failed as a whole.
    #[error(transparent)]
    Table(#[from] TableError),
}

fn ms(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}

/// The fan-out settings for a configuration: QUERY_BY_RELAY_ID for each
/// configured link, on every server.
pub fn fanout_config(config: &Config, relay: &Duid) -> FanoutConfig {
    let requestor = config
        .requestor_duid
        .clone()
        .unwrap_or_else(|| relay.clone());
    let queries = config
        .links
        .iter()
        .map(|l| QuerySpec::new(Query::ByRelayId(relay.clone())).link(*l))
        .collect();
    let mut f = FanoutConfig::from_config(config, requestor, queries);
    // Batches of up to 512 bindings: a few in flight keep the installer busy without buffering the stream.
    f.channel_capacity = 16;
    f
}

fn server_summary(r: &ServerReport, links: &[std::net::Ipv6Addr]) -> ServerSummary {
    let queries: Vec<QuerySummary> = r
        .queries
        .iter()
        .map(|q| QuerySummary {
            link: links
                .get(q.index)
                .map(|l| l.to_string())
                .unwrap_or_default(),
            outcome: q.outcome.to_string(),
            complete: q.outcome.is_complete(),
            attempts: q.attempts,
            bindings: q.bindings,
        })
        .collect();
    let status = queries
        .iter()
        .find(|q| !q.complete)
        .map(|q| q.outcome.clone())
        .unwrap_or_else(|| "complete".into());
    ServerSummary {
        server: r.server.to_string(),
        server_id: r.server_id.as_ref().map(|d| d.to_hex()),
        complete: r.is_complete(),
        bindings: r.bindings(),
        status,
        duration_ms: ms(r.duration),
        connections: r.connections,
        queries,
    }
}

/// Run the recovery into `table`, whose interfaces are `interfaces`.
/// `stop` ends the run early (a signal): what was received is installed, nothing is pruned.
pub async fn recover<T: RouteTable>(
    config: &Config,
    relay: &Duid,
    table: T,
    interfaces: Vec<Interface>,
    opts: &RecoverOptions,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(Summary, T), RecoverError> {
    let start = Instant::now();
    let settings = config.plan_settings(relay.clone());
    let mut installer = Installer::start(table, settings, interfaces.clone(), opts.dry_run).await?;
    // Bindings become compact claims, their routes planned, on the connection tasks.
    let mut fan = Fanout::spawn_with(fanout_config(config, relay), installer.mapper());
    let mut reports: Vec<Option<ServerReport>> = vec![None; config.servers.len()];
    let mut received: u64 = 0;
    let mut first_binding = None;
    let mut last_progress = start;
    let mut next_progress: u64 = 65536;
    let mut interrupted = false;
    let now_ms = |t: Instant| ms(t.saturating_duration_since(start));
    tokio::pin!(stop);
    loop {
        // Take what is already there; when the channel runs dry, push the
        // queued routes to the kernel before waiting (low latency when the
        // servers are slow, full batches when they are fast).
        let update = match fan.recv().now_or_never() {
            Some(u) if (&mut stop).now_or_never().is_none() => u,
            Some(_) => {
                interrupted = true;
                None
            }
            None => {
                installer.flush(now_ms(Instant::now())).await?;
                tokio::select! {
                    u = fan.recv() => u,
                    _ = &mut stop => {
                        interrupted = true;
                        None
                    }
                }
            }
        };
        if interrupted {
            tracing::warn!("stopping: installing what was received, pruning nothing");
        }
        let Some(update) = update else { break };
        match update {
            Update::Bindings(batch) => {
                for d in batch {
                    received += 1;
                    let t = now_ms(d.received);
                    first_binding.get_or_insert(t);
                    let server = u16::try_from(d.server_index).unwrap_or(u16::MAX);
                    installer.offer_claim(server, t, d.binding, t).await?;
                }
                if received >= next_progress {
                    next_progress = received + 65536;
                    let now = Instant::now();
                    if now.duration_since(last_progress) >= opts.progress_every {
                        last_progress = now;
                        let secs = now.duration_since(start).as_secs_f64();
                        tracing::info!(
                            bindings = received,
                            rate = format!("{:.0}/s", received as f64 / secs),
                            "receiving"
                        );
                    }
                }
            }
            Update::ServerDone(r) => {
                tracing::info!("{r}");
                if let Some(slot) = reports.get_mut(r.server_index) {
                    *slot = Some(r);
                }
            }
        }
    }
    let all_complete = !interrupted
        && reports
            .iter()
            .all(|r| r.as_ref().is_some_and(|r| r.is_complete()));
    let prune = config.routes.prune && all_complete;
    let end_ms = now_ms(Instant::now());
    let (report, table) = installer.finish(end_ms, prune).await?;
    let end = Instant::now();
    let servers: Vec<ServerSummary> = config
        .servers
        .iter()
        .zip(&reports)
        .map(|(s, r)| match r {
            Some(r) => server_summary(r, &config.links),
            None => ServerSummary {
                server: s.socket_addr().to_string(),
                server_id: None,
                complete: false,
                bindings: 0,
                status: "interrupted".into(),
                duration_ms: ms(end - start),
                connections: 0,
                queries: Vec::new(),
            },
        })
        .collect();
    let summary = summarise(
        relay,
        opts.dry_run,
        interrupted,
        servers,
        received,
        first_binding,
        report,
        ms(end - start),
        config,
    );
    Ok((summary, table))
}

#[allow(clippy::too_many_arguments)]
fn summarise(
    relay: &Duid,
    dry_run: bool,
    interrupted: bool,
    servers: Vec<ServerSummary>,
    bindings: u64,
    first_binding_ms: Option<u64>,
    r: InstallReport,
    duration_ms: u64,
    config: &Config,
) -> Summary {
    let name = |i: u16| {
        config
            .servers
            .get(i as usize)
            .map(|s| s.socket_addr().to_string())
            .unwrap_or_else(|| format!("#{i}"))
    };
    let routes = RouteSummary {
        planned: r.planned,
        added: r.added,
        replaced: r.replaced,
        unchanged: r.unchanged,
        removed: r.removed,
        rejected: r
            .rejected
            .iter()
            .map(|x| RejectedSummary {
                prefix: x.prefix.to_string(),
                client: x.client.to_hex(),
                server: name(x.server),
                reason: x.reason.to_string(),
            })
            .collect(),
        failed: r
            .failed
            .iter()
            .map(|f| FailedSummary {
                prefix: f.prefix.to_string(),
                op: f.op.to_string(),
                error: f.message.clone(),
            })
            .collect(),
        pruned: r.pruned,
        operations: r.operations,
        changes: r
            .dry_run_changes
            .iter()
            .map(|c| {
                let (op, route) = match c {
                    crate::routes::Change::Add(x) => ("add", x),
                    crate::routes::Change::Replace { new, .. } => ("replace", new),
                    crate::routes::Change::Remove(x) => ("remove", x),
                };
                ChangeSummary {
                    op: op.into(),
                    prefix: route.prefix.to_string(),
                    via: route.gateway.to_string(),
                    dev: route.interface.to_string(),
                    expires: route.expires,
                }
            })
            .collect(),
    };
    let conflicts = r
        .conflicts
        .iter()
        .map(|c| ConflictSummary {
            prefix: c.prefix.to_string(),
            winner_server: name(c.winner.0),
            winner_client: c.winner.1.to_hex(),
            loser_server: name(c.loser.0),
            loser_client: c.loser.1.to_hex(),
        })
        .collect();
    let servers_ok = !interrupted && servers.iter().all(|s| s.complete);
    let in_place = r.planned.saturating_sub(r.failed.len());
    let (outcome, exit_code) = if servers_ok && r.failed.is_empty() {
        ("complete", EXIT_OK)
    } else if in_place == 0 {
        ("failed", EXIT_NOTHING)
    } else {
        ("partial", EXIT_PARTIAL)
    };
    Summary {
        relay_duid: relay.to_hex(),
        dry_run,
        interrupted,
        servers,
        bindings,
        expired: r.expired,
        routes,
        conflicts,
        first_binding_ms,
        first_route_ms: r.first_route_at,
        duration_ms,
        outcome: outcome.into(),
        exit_code,
    }
}

impl Summary {
    /// The human-readable summary.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "pdrestore recover{}: relay-id {}, {} in {:.3}s",
            if self.dry_run { " (dry run)" } else { "" },
            self.relay_duid,
            self.outcome,
            self.duration_ms as f64 / 1000.0
        );
        for v in &self.servers {
            let _ = writeln!(
                s,
                "  server {:<28} {:>8} bindings  {:>8.3}s  {}",
                v.server,
                v.bindings,
                v.duration_ms as f64 / 1000.0,
                v.status
            );
        }
        let r = &self.routes;
        let _ = writeln!(
            s,
            "  routes: {} planned, {} added, {} replaced, {} unchanged, {} removed{}, {} rejected, {} failed",
            r.planned,
            r.added,
            r.replaced,
            r.unchanged,
            r.removed,
            if r.pruned { "" } else { " (prune off)" },
            r.rejected.len(),
            r.failed.len()
        );
        for c in r.changes.iter().take(50) {
            let _ = writeln!(
                s,
                "    would {} {} via {} dev {}",
                c.op, c.prefix, c.via, c.dev
            );
        }
        if r.changes.len() > 50 {
            let _ = writeln!(
                s,
                "    ... {} more changes (see --json)",
                r.changes.len() - 50
            );
        }
        for x in r.rejected.iter().take(20) {
            let _ = writeln!(
                s,
                "    rejected {} (client {}, from {}): {}",
                x.prefix, x.client, x.server, x.reason
            );
        }
        if r.rejected.len() > 20 {
            let _ = writeln!(
                s,
                "    ... {} more rejected (see --json)",
                r.rejected.len() - 20
            );
        }
        for f in r.failed.iter().take(20) {
            let _ = writeln!(s, "    failed {} {}: {}", f.op, f.prefix, f.error);
        }
        if r.failed.len() > 20 {
            let _ = writeln!(
                s,
                "    ... {} more failed (see --json)",
                r.failed.len() - 20
            );
        }
        let _ = writeln!(s, "  conflicts: {}", self.conflicts.len());
        for c in self.conflicts.iter().take(10) {
            let _ = writeln!(
                s,
                "    {}: {} (client {}) wins over {} (client {})",
                c.prefix, c.winner_server, c.winner_client, c.loser_server, c.loser_client
            );
        }
        if self.conflicts.len() > 10 {
            let _ = writeln!(
                s,
                "    ... {} more conflicts (see --json)",
                self.conflicts.len() - 10
            );
        }
        if self.expired > 0 {
            let _ = writeln!(s, "  expired bindings dropped: {}", self.expired);
        }
        if let (Some(b), Some(r)) = (self.first_binding_ms, self.first_route_ms) {
            let _ = writeln!(s, "  first binding after {b} ms, first route after {r} ms");
        }
        s
    }
}
