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

use crate::config::{Config, QueryMode};
use crate::proto::ServerIndex;
use crate::proto::{Duid, Query};
use crate::recovery::claim::Claim;
use crate::recovery::install::{InstallReport, Installer};
use crate::recovery::prune::{PruneRefusal, PruneReport, PruneRule, PruneSkip, PruneState};
use crate::requestor::fanout::{Fanout, FanoutConfig, QuerySpec, ServerReport, Update};
use crate::requestor::Delivery;
use crate::routes::Interface;
use crate::routes::{NetlinkTable, Route, RouteTable, TableError};
use futures::FutureExt;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

/// Exit status: every server answered and every planned route is in place.
pub const EXIT_OK: u8 = 0;
/// Exit status: something was restored, but a server failed, a route did,
/// an interface was missing, or the prune rail refused a prune.
pub const EXIT_PARTIAL: u8 = 1;
/// Exit status: nothing was restored and something failed.
pub const EXIT_NOTHING: u8 = 2;
/// Exit status: no permission to change routes (sysexits EX_NOPERM).
pub const EXIT_NOPERM: u8 = 77;

/// How to run.
#[derive(Debug, Clone)]
pub struct RecoverOptions {
    /// Plan and diff only; touch nothing.
    pub dry_run: bool,
    /// Interval of progress lines in the log.
    pub progress_every: Duration,
    /// Prune past the rail (`recover --force-prune`): an empty answer or a
    /// removal over `prune_limit` is pruned all the same. Incomplete answers
    /// still prune nothing.
    pub force_prune: bool,
}

impl Default for RecoverOptions {
    fn default() -> Self {
        RecoverOptions {
            dry_run: false,
            progress_every: Duration::from_secs(5),
            force_prune: false,
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
    /// How it ended, as a stable code (`complete`, `connection-refused`, ...).
    pub outcome_code: String,
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
    /// The status as a stable code (see [`QuerySummary::outcome_code`]).
    pub status_code: String,
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
    /// Next hop now.
    pub via: String,
    /// Interface now.
    pub dev: String,
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

/// Why recovery could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    /// The route table failed as a whole.
    #[error(transparent)]
    Table(#[from] TableError),
    /// We may not change routes: found before any server is asked.
    #[error("changing routes needs CAP_NET_ADMIN ({0}): run as root, or through pdrestore.service, which grants it; `pdrestore recover --dry-run` needs no privilege")]
    NoPermission(TableError),
}

impl RecoverError {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            RecoverError::NoPermission(_) => EXIT_NOPERM,
            RecoverError::Table(_) => 70,
        }
    }
}

fn ms(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}

/// The fan-out settings for a configuration: on every server, for each of
/// `links`, QUERY_BY_RELAY_ID filtered to that link, or
/// QUERY_BY_LINK_ADDRESS of that link (`query = "link-address"`).
pub fn fanout_config(config: &Config, relay: &Duid, links: &[Ipv6Addr]) -> FanoutConfig {
    let requestor = config
        .requestor_duid
        .clone()
        .unwrap_or_else(|| relay.clone());
    let queries = links
        .iter()
        .map(|l| match config.query {
            QueryMode::RelayId => QuerySpec::new(Query::ByRelayId(relay.clone())).link(*l),
            QueryMode::LinkAddress => QuerySpec::new(Query::ByLinkAddress).link(*l),
        })
        .collect();
    let mut f = config.fanout_config(requestor, queries);
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
            outcome_code: q.outcome.code(),
            complete: q.outcome.is_complete(),
            attempts: q.attempts,
            bindings: q.bindings,
        })
        .collect();
    let (status, status_code) = queries
        .iter()
        .find(|q| !q.complete)
        .map(|q| (q.outcome.clone(), q.outcome_code.clone()))
        .unwrap_or_else(|| ("complete".into(), "complete".into()));
    ServerSummary {
        server: r.server.to_string(),
        server_id: r.server_id.as_ref().map(|d| d.to_hex()),
        complete: r.is_complete(),
        bindings: r.bindings(),
        status,
        status_code,
        duration_ms: ms(r.duration),
        connections: r.connections,
        queries,
    }
}

/// The interfaces `[routes.interfaces]` names, in order, once each.
fn mapped_interfaces(config: &Config) -> Vec<String> {
    let mut v: Vec<String> = config.routes.interfaces.values().cloned().collect();
    v.sort();
    v.dedup();
    v
}

/// Wait, at most `config.interface_wait`, until every interface that
/// `[routes.interfaces]` names exists and is up; returns those that still
/// do not (or are down). Routes out of an interface that is not there
/// cannot be installed, and a VLAN or bond often comes up a few seconds
/// after pdrestore starts at boot.
pub async fn wait_for_interfaces(
    table: &mut NetlinkTable,
    config: &Config,
    stop: impl std::future::Future<Output = ()>,
) -> Result<Vec<String>, TableError> {
    let wanted = mapped_interfaces(config);
    let until = Instant::now() + config.interface_wait;
    tokio::pin!(stop);
    let mut told = false;
    loop {
        let links = table.links().await?;
        let missing: Vec<String> = wanted
            .iter()
            .filter(|w| !links.iter().any(|l| *l.name == ***w && l.up))
            .cloned()
            .collect();
        if missing.is_empty() || Instant::now() >= until {
            return Ok(missing);
        }
        if !told {
            told = true;
            tracing::info!(
                missing = missing.join(" "),
                wait = %humantime::format_duration(config.interface_wait),
                "waiting for interfaces to exist and be up"
            );
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = &mut stop => return Ok(missing),
        }
    }
}

/// `pdrestore recover` in the calling thread's network namespace: open the
/// kernel's table, make sure we may change it (before asking any server),
/// wait for the interfaces the configuration names, then [`recover`].
pub async fn run(
    config: &Config,
    relay: &Duid,
    opts: &RecoverOptions,
    stop: impl std::future::Future<Output = ()>,
) -> Result<Summary, RecoverError> {
    let stop = stop.shared();
    let mut table = NetlinkTable::open()?;
    if !opts.dry_run {
        table.check_write_access().await.map_err(|e| {
            if e.is_permission_denied() {
                RecoverError::NoPermission(e)
            } else {
                RecoverError::Table(e)
            }
        })?;
    }
    let missing = wait_for_interfaces(&mut table, config, stop.clone()).await?;
    for m in &missing {
        tracing::warn!(interface = %m, "interface named in [routes.interfaces] is missing or down");
    }
    let interfaces = table.interfaces().await?;
    let (summary, _) = recover(config, relay, table, interfaces, opts, stop).await?;
    Ok(summary)
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
    let links = config.query_links(&interfaces);
    let settings = config.plan_settings(relay.clone(), &links);
    let missing_interfaces: Vec<String> = mapped_interfaces(config)
        .into_iter()
        .filter(|m| !interfaces.iter().any(|i| *i.name == **m))
        .collect();
    let scope = prune_scope(&links, &interfaces);
    let mut installer = Installer::start(table, settings, interfaces, opts.dry_run)
        .await?
        .with_prune_scope(scope);
    // Bindings become compact claims, their routes planned, on the connection tasks.
    let mut fan = Fanout::start(fanout_config(config, relay, &links), installer.mapper());
    let mut got = Received::new(start, config.servers.len());
    receive(&mut fan, &mut installer, &mut got, opts, stop).await?;
    let rule = prune_rule(config, opts, &got);
    let (report, table) = installer.finish(got.now_ms(Instant::now()), rule).await?;
    let end = Instant::now();
    let servers = got.server_summaries(config, &links, end);
    let mut summary = summarise(
        relay,
        opts.dry_run,
        got.interrupted,
        servers,
        got.total,
        got.first_binding,
        report,
        ms(end - start),
        config,
    );
    summary.missing_interfaces = missing_interfaces;
    summary.explain(config, &links);
    summary.settle_outcome();
    Ok((summary, table))
}

/// What the recovery gathered from the servers while installing.
struct Received {
    start: Instant,
    reports: Vec<Option<ServerReport>>,
    per_server: Vec<u64>,
    total: u64,
    first_binding: Option<u64>,
    last_progress: Instant,
    next_progress: u64,
    interrupted: bool,
}

/// Bindings between two looks at the progress clock.
const PROGRESS_STEP: u64 = 65536;

impl Received {
    fn new(start: Instant, servers: usize) -> Self {
        Received {
            start,
            reports: vec![None; servers],
            per_server: vec![0; servers],
            total: 0,
            first_binding: None,
            last_progress: start,
            next_progress: PROGRESS_STEP,
            interrupted: false,
        }
    }

    /// `t` in milliseconds on the recovery clock.
    fn now_ms(&self, t: Instant) -> u64 {
        ms(t.saturating_duration_since(self.start))
    }

    /// Hand a burst of claims to the installer.
    async fn bindings<T: RouteTable>(
        &mut self,
        batch: Vec<Delivery<Claim>>,
        installer: &mut Installer<T>,
    ) -> Result<(), TableError> {
        for d in batch {
            self.total += 1;
            if let Some(n) = self.per_server.get_mut(d.server_index.get()) {
                *n += 1;
            }
            let t = self.now_ms(d.received);
            self.first_binding.get_or_insert(t);
            installer
                .offer_claim(d.server_index, t, d.binding, t)
                .await?;
        }
        Ok(())
    }

    /// A line in the log every `every` on large tables.
    fn progress(&mut self, every: Duration) {
        if self.total < self.next_progress {
            return;
        }
        self.next_progress = self.total + PROGRESS_STEP;
        let now = Instant::now();
        if now.duration_since(self.last_progress) >= every {
            self.last_progress = now;
            let secs = now.duration_since(self.start).as_secs_f64();
            tracing::info!(
                bindings = self.total,
                rate = format!("{:.0}/s", self.total as f64 / secs),
                "receiving"
            );
        }
    }

    /// A server is finished: logged (a failure as a warning) and kept.
    fn server_done(&mut self, r: ServerReport) {
        if r.is_complete() {
            tracing::info!("{r}");
        } else {
            tracing::warn!("{r}");
        }
        if let Some(slot) = self.reports.get_mut(r.server_index.get()) {
            *slot = Some(r);
        }
    }

    fn all_complete(&self) -> bool {
        self.reports
            .iter()
            .all(|r| r.as_ref().is_some_and(|r| r.is_complete()))
    }

    /// One line per configured server; one the run was stopped before
    /// counts what it delivered.
    fn server_summaries(
        &self,
        config: &Config,
        links: &[Ipv6Addr],
        end: Instant,
    ) -> Vec<ServerSummary> {
        config
            .servers
            .iter()
            .zip(&self.reports)
            .zip(&self.per_server)
            .map(|((s, r), &got)| match r {
                Some(r) => server_summary(r, links),
                None => ServerSummary {
                    server: s.socket_addr().to_string(),
                    server_id: None,
                    complete: false,
                    bindings: got,
                    status: "interrupted".into(),
                    status_code: "interrupted".into(),
                    duration_ms: ms(end - self.start),
                    connections: 0,
                    queries: Vec::new(),
                },
            })
            .collect()
    }
}

/// Receive every server's claims into the installer until the last server
/// is done or `stop` resolves.
async fn receive<T: RouteTable>(
    fan: &mut Fanout<Claim>,
    installer: &mut Installer<T>,
    got: &mut Received,
    opts: &RecoverOptions,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), RecoverError> {
    enum Next {
        Update(Update<Claim>),
        Closed,
        Stopped,
    }
    tokio::pin!(stop);
    loop {
        // Take what is already there; when the channel runs dry, push the
        // queued routes to the kernel before waiting (low latency when the
        // servers are slow, full batches when they are fast).
        let next = match fan.recv().now_or_never() {
            Some(_) if (&mut stop).now_or_never().is_some() => Next::Stopped,
            Some(u) => u.map_or(Next::Closed, Next::Update),
            None => {
                installer.flush(got.now_ms(Instant::now())).await?;
                tokio::select! {
                    u = fan.recv() => u.map_or(Next::Closed, Next::Update),
                    _ = &mut stop => Next::Stopped,
                }
            }
        };
        match next {
            Next::Update(Update::Bindings(batch)) => {
                got.bindings(batch, installer).await?;
                got.progress(opts.progress_every);
            }
            Next::Update(Update::ServerDone(r)) => got.server_done(r),
            Next::Closed => return Ok(()),
            Next::Stopped => {
                got.interrupted = true;
                tracing::warn!("stopping: installing what was received, pruning nothing");
                return Ok(());
            }
        }
    }
}

/// The interfaces whose routes the queries cover, by their position in
/// `interfaces`: those holding a queried link's address; `None` (all) when a
/// query covers every link (QUERY_BY_RELAY_ID with `::`). A link that was
/// not asked about keeps its routes through a prune.
fn prune_scope(links: &[Ipv6Addr], interfaces: &[Interface]) -> Option<Vec<u32>> {
    if links.iter().any(|l| l.is_unspecified()) {
        return None;
    }
    Some(
        interfaces
            .iter()
            .enumerate()
            .filter(|(_, i)| {
                i.addresses
                    .iter()
                    .any(|a| links.iter().any(|l| a.contains(l)))
            })
            .map(|(p, _)| p as u32)
            .collect(),
    )
}

/// What pruning may do after this run (see [`crate::recovery::prune`]).
fn prune_rule(config: &Config, opts: &RecoverOptions, got: &Received) -> PruneRule {
    if !config.routes.prune {
        PruneRule::Off
    } else if got.interrupted {
        PruneRule::Skip(PruneSkip::Interrupted)
    } else if !got.all_complete() {
        PruneRule::Skip(PruneSkip::IncompleteAnswer)
    } else {
        PruneRule::Allowed {
            limit: config.routes.prune_limit,
            force: opts.force_prune,
        }
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
    let (state, code, reason) = match p.state {
        PruneState::Done => ("done", None, None),
        PruneState::Off => (
            "off",
            Some("prune-off"),
            Some("prune is off in the configuration".to_string()),
        ),
        PruneState::Skipped(PruneSkip::IncompleteAnswer) => (
            "skipped",
            Some("incomplete-answer"),
            Some("not every server answered completely".to_string()),
        ),
        PruneState::Skipped(PruneSkip::Interrupted) => (
            "skipped",
            Some("interrupted"),
            Some("the run was interrupted".to_string()),
        ),
        PruneState::Refused(PruneRefusal::EmptyAnswer) => (
            "refused",
            Some("empty-answer"),
            Some(format!(
                "every server answered with no binding at all, which would remove all {} of our routes: check relay_duid, links and the servers' leases (recover --force-prune removes them)",
                p.candidates
            )),
        ),
        PruneState::Refused(PruneRefusal::OverLimit) => (
            "refused",
            Some("over-limit"),
            Some(format!(
                "it would remove {} of our {} routes, more than prune_limit {} allows (recover --force-prune removes them)",
                p.candidates,
                p.ours,
                p.limit.map(|l| l.to_string()).unwrap_or_default()
            )),
        ),
    };
    PruneSummary {
        state,
        reason_code: code,
        reason,
        ours: p.ours,
        candidates: p.candidates,
        limit: p.limit.map(|l| l.to_string()),
    }
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
    let name = |i: ServerIndex| {
        config
            .servers
            .get(i.get())
            .map(|s| s.socket_addr().to_string())
            .unwrap_or_else(|| i.to_string())
    };
    let conflicts = r
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
        relay_duid: relay.to_hex(),
        dry_run,
        interrupted,
        servers,
        bindings,
        expired: r.table.expired,
        routes: route_summary(&r, &name),
        conflicts,
        missing_interfaces: Vec::new(),
        notes: Vec::new(),
        empty_answer: false,
        first_binding_ms,
        first_route_ms: r.first_route_at,
        duration_ms,
        outcome: String::new(),
        exit_code: EXIT_OK,
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
                via: new.gateway.to_string(),
                dev: new.interface.to_string(),
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
    /// Add the notes an operator needs to read this summary right: an
    /// empty answer to QUERY_BY_RELAY_ID (a relay agent that sends no
    /// Relay-ID, such as ISC dhcrelay, gives exactly that), no link to ask
    /// about in link-address mode.
    pub fn explain(&mut self, config: &Config, links: &[Ipv6Addr]) {
        let complete = self.servers.iter().all(|s| s.complete);
        if config.query == QueryMode::RelayId && complete && self.bindings == 0 {
            self.empty_answer = true;
            self.notes.push(format!(
                "no server holds a binding for relay-id {}: if the relay agent does not put OPTION_RELAY_ID (53) in its RELAY-FORW messages (ISC dhcrelay never does), recover by link-address instead: query = \"link-address\" with links = [the router's address on each client link]",
                self.relay_duid
            ));
        }
        if config.query == QueryMode::LinkAddress && links.is_empty() {
            self.empty_answer = true;
            self.notes.push(
                "no link to query: none of the interfaces [routes.interfaces] names has a global address; set links".into(),
            );
        }
    }

    /// Set `outcome` and `exit_code` from the rest: `complete` (0) when
    /// every server answered whole, every planned route is in place, no
    /// prefix was refused for a missing interface and the prune rail
    /// refused nothing; `failed` (2) when nothing is in place and a server, a route
    /// or an interface failed; `partial` (1) otherwise.
    pub fn settle_outcome(&mut self) {
        let r = &self.routes;
        let servers_ok = !self.interrupted && self.servers.iter().all(|s| s.complete);
        // Prefixes refused for want of an interface may be routed once it
        // is up: not complete. A missing interface nothing needed is only
        // reported.
        let no_interface = r
            .rejected
            .iter()
            .any(|x| matches!(x.reason_code.as_str(), "no-interface" | "missing-interface"));
        let refused = r.prune.state == "refused" || self.empty_answer;
        let in_place = r.planned.saturating_sub(r.failed.len());
        let (outcome, code) = if servers_ok && r.failed.is_empty() && !no_interface && !refused {
            ("complete", EXIT_OK)
        } else if in_place == 0 && (!servers_ok || !r.failed.is_empty() || no_interface) {
            ("failed", EXIT_NOTHING)
        } else {
            ("partial", EXIT_PARTIAL)
        };
        self.outcome = outcome.into();
        self.exit_code = code;
    }

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
        for n in &self.notes {
            let _ = writeln!(s, "  note: {n}");
        }
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
        list(s, &self.changes, 50, "changes", |c| {
            format!("would {} {} via {} dev {}", c.op, c.prefix, c.via, c.dev)
        });
        if !dry_run {
            list(s, &self.removed_routes, 20, "removed", |c| {
                format!("removed {} via {} dev {}", c.prefix, c.via, c.dev)
            });
        }
        list(s, &self.moved_routes, 20, "moved", |m| {
            format!(
                "moved {} from {} dev {} to {} dev {}",
                m.prefix, m.old_via, m.old_dev, m.via, m.dev
            )
        });
        list(s, &self.foreign_conflicts, 20, "foreign", |c| {
            let proto = c.protocol.map_or("?".to_string(), |p| p.to_string());
            format!(
                "foreign {}: a route of protocol {proto}{}{} holds it; left in place",
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
