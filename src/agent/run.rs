//! The recovery itself: every server asked at once, their claims streamed
//! into the installer as they arrive, the end of the plan, the report.

use super::groups::{self, Grace};
use super::last_run::LastRun;
use super::memory::Memory;
use super::report::{Report, ServerPart};
use super::{RecoverError, RecoverOptions};
use crate::config::Config;
use crate::proto::Duid;
use crate::recovery::claim::Claim;
use crate::recovery::install::Installer;
use crate::recovery::ledger::{self, LedgerHeader, LedgerServer, RunKind};
use crate::recovery::prune::{PruneRule, PruneSkip};
use crate::recovery::rank::Millis;
use crate::recovery::table::PrefixTable;
use crate::requestor::{Delivery, Fanout, ServerReport, Update};
use crate::routes::{Interface, RouteTable, TableError};
use futures::FutureExt;
use std::net::Ipv6Addr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Bindings between two looks at the progress clock.
const PROGRESS_STEP: u64 = 65536;

/// Delivery batches (up to 512 bindings each) queued from the connection
/// tasks: a few in flight keep the installer busy without buffering the
/// stream.
const CHANNEL_BATCHES: usize = 16;

/// Run the recovery into `table`, whose interfaces are `interfaces`.
/// `stop` ends the run early (a signal): what was received is installed,
/// nothing is pruned.
pub async fn recover<T: RouteTable>(
    config: &Config,
    relay: &Duid,
    mut table: T,
    interfaces: Vec<Interface>,
    opts: &RecoverOptions,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(Report, T), RecoverError> {
    let start = Instant::now();
    let epoch = std::time::SystemTime::now();
    // The other route listeners' drops before we write (see `listener_drops`).
    let listeners = match opts.dry_run {
        true => None,
        false => table.listeners().await,
    };
    let links = config.query_links(&interfaces);
    let settings = config.plan_settings(relay.clone(), &links);
    let missing_interfaces: Vec<String> = config
        .mapped_interfaces()
        .into_iter()
        .filter(|m| !interfaces.iter().any(|i| *i.name == **m))
        .collect();
    let scope = prune_scope(&links, &interfaces);
    let positions = interfaces.clone();
    let mut installer = Installer::start(table, settings, interfaces, opts.dry_run)
        .await?
        .with_prune_scope(scope)
        .with_pace(config.routes.max_routes_per_second);
    let mut fanout = config.recovery_fanout(relay, &links);
    fanout.channel_capacity = CHANNEL_BATCHES;
    tracing::debug!(
        servers = config.servers.len(),
        queries = links.len(),
        dry_run = opts.dry_run,
        "recover: asking every server"
    );
    // Bindings become compact claims, their routes planned, on the connection tasks.
    let mut fan = Fanout::start(fanout, installer.mapper());
    let mut got = Received::new(start, config);
    receive(&mut fan, &mut installer, &mut got, opts, stop).await?;
    let rule = prune_rule(config, opts, &got);
    let mut memory = Memory::load(&config.state_directory);
    installer.set_parts(groups::rail_parts(
        &links,
        &positions,
        &got.servers,
        &memory,
        rule,
    ));
    tracing::debug!(
        bindings = got.total,
        prune = ?rule,
        "recover: every server done; settling the rest, withdrawing, pruning"
    );
    let (install, mut table, prefixes) = installer
        .finish_keeping(got.now_ms(Instant::now()), rule)
        .await?;
    let listener_drops = match listeners {
        Some(before) => listener_drops(&before, table.listeners().await),
        None => Vec::new(),
    };
    let mut report = Report {
        query: config.query,
        relay: relay.clone(),
        requestor: config
            .requestor_duid
            .clone()
            .unwrap_or_else(|| relay.clone()),
        links,
        dry_run: opts.dry_run,
        interrupted: got.interrupted,
        servers: got.servers,
        bindings: got.total,
        install,
        missing_interfaces,
        notes: Vec::new(),
        first_binding: got.first_binding,
        duration: start.elapsed(),
        listener_drops,
    };
    report.explain();
    if !opts.dry_run && !report.interrupted {
        keep_group_answers(config, &mut memory, &report, opts.force_prune);
    }
    // Once the routes are in place and the run's time is taken: what the
    // run knew of each route, for `pdrestore status`.
    if !opts.dry_run {
        write_ledger(config, opts.run, &report.servers, &prefixes, epoch);
        keep_last_run(config, opts.run, &report);
    }
    drop(prefixes);
    tracing::debug!(outcome = report.outcome().as_str(), "recover: done");
    Ok((report, table))
}

/// Learn the server groups' answers of this run (the group prune rail's
/// memory, `group-answers.json`); a failure to keep them is a warning.
fn keep_group_answers(config: &Config, memory: &mut Memory, report: &Report, force_prune: bool) {
    let held = &report.install.table.prune.held_back;
    groups::remember(memory, &report.links, &report.servers, held, force_prune);
    if let Err(e) = memory.save(&config.state_directory) {
        tracing::warn!(
            dir = %config.state_directory.display(),
            error = %e,
            "cannot keep the server groups' answer counts (the group prune rail needs them)"
        );
    }
}

/// Keep the run's outcome for `pdrestore status` (`last-run.json`); a
/// failure is a warning.
fn keep_last_run(config: &Config, run: RunKind, report: &Report) {
    let last = LastRun::of(&report.summary(), run, unix_secs(SystemTime::now()));
    if let Err(e) = last.save(&config.state_directory) {
        tracing::warn!(
            dir = %config.state_directory.display(),
            error = %e,
            "cannot keep the run's outcome for `pdrestore status`"
        );
    }
}

/// Seconds since the Unix epoch.
fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Write the ledger ([`crate::recovery::ledger`]) from the prefix table as
/// the run left it; a failure is a warning (the routes are what matters).
fn write_ledger(
    config: &Config,
    run: RunKind,
    servers: &[ServerPart],
    table: &PrefixTable,
    epoch: SystemTime,
) {
    let t = Instant::now();
    let dir = &config.state_directory;
    let epoch_ms = epoch
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let header = LedgerHeader {
        written_at: unix_secs(SystemTime::now()),
        run,
        table: config.routes.table,
        protocol: config.routes.protocol,
        servers: servers
            .iter()
            .map(|s| LedgerServer {
                address: s.addr.to_string(),
                group: s.group.clone(),
                duid: s
                    .report
                    .as_ref()
                    .and_then(|r| r.server_id.as_ref())
                    .map(|d| d.to_hex()),
            })
            .collect(),
    };
    match ledger::write(dir, &header, table.known(epoch_ms)) {
        Ok(n) => tracing::debug!(
            routes = n,
            ms = t.elapsed().as_millis() as u64,
            "recover: ledger written for `pdrestore status`"
        ),
        Err(e) => tracing::warn!(
            dir = %dir.display(),
            error = %e,
            "cannot write the ledger of our routes (`pdrestore status` will not know their leases)"
        ),
    }
}

/// The route listeners other than us (a routing daemon's rtnetlink socket)
/// whose dropped notifications grew between `before` and `after`, with the
/// process that holds each where it can be found; warned about once.
fn listener_drops(
    before: &crate::routes::listeners::Snapshot,
    after: Option<crate::routes::listeners::Snapshot>,
) -> Vec<crate::routes::listeners::ListenerDrops> {
    use crate::routes::listeners;
    let Some(after) = after else {
        return Vec::new();
    };
    let mut drops = after.dropped_since(before, &listeners::own_sockets());
    if !drops.is_empty() {
        listeners::find_owners(&mut drops);
        tracing::warn!("{}", listeners::advice(&drops));
    }
    drops
}

/// What the recovery gathered from the servers while installing.
struct Received {
    start: Instant,
    servers: Vec<ServerPart>,
    total: u64,
    first_binding: Option<Duration>,
    /// Bindings handed to the installer at its last flush.
    flushed: u64,
    last_progress: Instant,
    next_progress: u64,
    interrupted: bool,
    /// The server groups' answers and their members' grace.
    grace: Grace,
}

impl Received {
    fn new(start: Instant, config: &Config) -> Self {
        Received {
            start,
            servers: config
                .servers
                .iter()
                .map(|s| ServerPart {
                    addr: s.socket_addr(),
                    group: s.group_name(),
                    report: None,
                    delivered: 0,
                    stopped: false,
                })
                .collect(),
            total: 0,
            first_binding: None,
            flushed: 0,
            last_progress: start,
            next_progress: PROGRESS_STEP,
            interrupted: false,
            grace: Grace::new(config.group_grace),
        }
    }

    /// `t` on the recovery clock.
    fn now_ms(&self, t: Instant) -> Millis {
        super::render::ms(t.saturating_duration_since(self.start))
    }

    /// Hand a burst of claims to the installer.
    async fn bindings<T: RouteTable>(
        &mut self,
        batch: Vec<Delivery<Claim>>,
        installer: &mut Installer<T>,
    ) -> Result<(), TableError> {
        for d in batch {
            self.total += 1;
            if let Some(s) = self.servers.get_mut(d.server_index.get()) {
                s.delivered += 1;
            }
            self.first_binding
                .get_or_insert(d.received.saturating_duration_since(self.start));
            let t = self.now_ms(d.received);
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

    /// A server is finished: logged (a failure as a warning; a replica's
    /// as a warning too, its group may have answered) and kept.
    fn server_done(&mut self, r: ServerReport) {
        if r.is_complete() {
            tracing::info!("{r}");
        } else {
            tracing::warn!("{r}");
        }
        if let Some(s) = self.servers.get_mut(r.server_index.get()) {
            self.grace.server_done(s, &r, Instant::now());
            s.report = Some(r);
        }
    }

    /// Stop the members of answered groups whose grace is over.
    fn stop_late(&mut self, fan: &Fanout<Claim>, now: Instant) {
        for i in self.grace.late(&mut self.servers, now) {
            let s = &self.servers[i];
            tracing::info!(
                server = %s.addr,
                group = %s.group,
                "stopped: its group answered completely through another member (group_grace)"
            );
            fan.abort_server(i);
        }
    }

    /// Every server group answered whole through a member.
    fn all_complete(&self) -> bool {
        super::report::groups_of(&self.servers)
            .iter()
            .all(|g| g.complete())
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
        got.stop_late(fan, Instant::now());
        // Take what is already there; when the channel runs dry, push the
        // queued routes to the kernel before waiting (low latency when the
        // servers are slow, full batches when they are fast).
        let next = match fan.recv().now_or_never() {
            Some(_) if (&mut stop).now_or_never().is_some() => Next::Stopped,
            Some(u) => u.map_or(Next::Closed, Next::Update),
            None => {
                if got.flushed < got.total {
                    got.flushed = got.total;
                    tracing::debug!(
                        bindings = got.total,
                        "recover: handing the queued routes to the kernel"
                    );
                }
                installer.flush(got.now_ms(Instant::now())).await?;
                let grace = got.grace.deadline(&got.servers);
                tokio::select! {
                    u = fan.recv() => u.map_or(Next::Closed, Next::Update),
                    _ = &mut stop => Next::Stopped,
                    _ = async { tokio::time::sleep_until(grace.expect("guarded").into()).await }, if grace.is_some() => continue,
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
pub(crate) fn prune_scope(links: &[Ipv6Addr], interfaces: &[Interface]) -> Option<Vec<u32>> {
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
