//! The async shell of `pdrestore follow`: sockets, netlink, timers,
//! signals, systemd, around the sans-IO [`FollowCore`].
//!
//! 1. The writer lock is held (by the command, `crate::lock`); capture
//!    sockets ([`crate::snoop::CaptureSocket`]) are opened on the
//!    client-facing interfaces and the rtnetlink watcher
//!    ([`crate::follow::watch::Watcher`]) starts, before anything else.
//! 2. The start-up recovery is `recover` itself ([`crate::agent::run`]:
//!    the permission check, the wait for the interfaces, every safety
//!    rule), run as the first resync, beside the loop: snooped REPLYs are
//!    routed meanwhile, and its result is merged by transaction time when
//!    it ends; then systemd is told READY=1.
//! 3. The loop: snooped messages (each interface read by a task of its own
//!    under a [`crate::snoop::PacketBudget`], through a bounded channel), kernel events,
//!    the core's timers and needs (the table read after an add met a
//!    route, targeted queries about prefixes near expiry), resyncs (on the
//!    core's deadline and on [`Control::Resync`], SIGHUP), status lines,
//!    the live view's requests (`pdrestore status`, answered between two
//!    batches, written out by tasks of their own), until [`Control::Stop`]
//!    (SIGTERM), which leaves every route in place.
//!
//! Route changes are handed to the [`NetlinkTable`] in batches: everything
//! that is already queued is taken, then the batch is submitted, and the
//! table is synced (its failures fed back to the core) before the loop
//! sleeps, so a renewal storm costs one netlink datagram per batch and a
//! lone REPLY is routed within a millisecond or two.

use super::core::{CoreSettings, FollowCore, Need};
use super::metrics::MetricsWriter;
use super::watch::KernelEvent;
use crate::agent::{RecoverError, Report};
use crate::config::Config;
use crate::exit;
use crate::proto::Duid;
use crate::routes::{Change, Failure, NetlinkTable, RouteTable, TableError, TableRoute};
use crate::snoop::CaptureError;
use capture::{Captures, Item, SnoopBatch};
use ipnet::Ipv6Net;
use notify::Notifier;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

mod capture;
mod confirm;
mod event_loop;
mod live;
mod log;
mod notify;
mod resync;
mod run;

pub use run::run;

/// Batches of snooped messages queued from the capture tasks at most.
const SNOOP_QUEUE: usize = 16;
/// Snoop batches taken before the route changes are submitted.
const DRAIN_BATCHES: usize = 16;
/// Interval of STATUS updates.
const STATUS_EVERY: Duration = Duration::from_secs(5);

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct FollowOptions {
    /// `--once`: after the start-up recovery, handle what arrives until
    /// nothing has for this long, then return.
    pub once: Option<Duration>,
    /// Tell systemd (READY=1, STATUS=...) through `$NOTIFY_SOCKET`.
    pub notify: bool,
    /// Keep this metrics file for node_exporter's textfile collector
    /// ([`super::metrics::FollowMetrics`]): written after the start-up
    /// recovery, after each resync, after a batch of route changes (at
    /// most once per [`super::metrics::METRICS_EVERY`]) and when the service stops.
    pub metrics_file: Option<std::path::PathBuf>,
}

/// What the service is asked to do from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Stop cleanly, leaving the routes (SIGTERM, SIGINT).
    Stop,
    /// Resync now (SIGHUP).
    Resync,
}

/// Why `follow` could not run.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// The start-up recovery could not run (no CAP_NET_ADMIN, no table).
    #[error(transparent)]
    Recover(#[from] RecoverError),
    /// The route table failed as a whole.
    #[error(transparent)]
    Table(#[from] TableError),
    /// A capture socket could not be opened (no CAP_NET_RAW).
    #[error(transparent)]
    Capture(#[from] CaptureError),
    /// Nothing to snoop.
    #[error("no client-facing interface to snoop: set [follow] interfaces, map interface-ids to interfaces in [routes.interfaces], or (link-address mode) give links the machine holds")]
    NoInterfaces,
    /// The rtnetlink watcher could not start.
    #[error("watching rtnetlink link and route events: {0}")]
    Watch(std::io::Error),
}

impl FollowError {
    /// The process exit status for this error (sysexits).
    pub fn exit_code(&self) -> u8 {
        match self {
            FollowError::Recover(e) => e.exit_code(),
            FollowError::Capture(CaptureError::Permission { .. }) => exit::NOPERM,
            FollowError::NoInterfaces => exit::CONFIG,
            _ => exit::SOFTWARE,
        }
    }
}

/// What a run did, when it ended.
#[derive(Debug, Clone)]
pub struct FollowSummary {
    /// The start-up recovery's report (`None`: stopped before it ended).
    pub startup: Option<Report>,
    /// The core's counters at the end.
    pub counters: super::Counters,
    /// Prefixes followed at the end.
    pub followed: usize,
    /// The last status line.
    pub status: String,
}

/// SIGTERM and SIGINT as [`Control::Stop`], SIGHUP as [`Control::Resync`]
/// (inside a tokio runtime).
pub fn signal_control() -> std::io::Result<mpsc::UnboundedReceiver<Control>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let c = tokio::select! {
                _ = term.recv() => Control::Stop,
                _ = int.recv() => Control::Stop,
                _ = hup.recv() => Control::Resync,
            };
            if tx.send(c).is_err() {
                return;
            }
        }
    });
    Ok(rx)
}

/// The core's settings from the configuration.
pub fn core_settings(config: &Config) -> CoreSettings {
    CoreSettings {
        max_prefixes: config.follow.max_prefixes,
        resync_interval: config.follow.resync_interval,
        min_resync_spacing: config.follow.min_resync_interval,
        confirm_before: config.follow.confirm_before,
        confirm_per_minute: config.follow.confirm_per_minute,
        seed: fastrand::u64(..),
        ..CoreSettings::default()
    }
}

/// A recovery in flight: the start-up one, or a resync.
type ResyncFuture<'a> = Pin<Box<dyn Future<Output = Result<Report, RecoverError>> + 'a>>;

/// A batch of targeted queries in flight.
type ConfirmFuture<'a> = Pin<Box<dyn Future<Output = Vec<(Ipv6Net, Option<u32>)>> + 'a>>;

/// The running service.
struct Service<'a> {
    config: &'a Config,
    relay: &'a Duid,
    opts: &'a FollowOptions,
    core: FollowCore,
    /// The service's own route table: snooping's changes, the core's needs.
    table: NetlinkTable,
    captures: Captures,
    unsynced: bool,
    stop_tx: watch::Sender<bool>,
    resync_start: Option<Instant>,
    /// The core asked for a resync ([`Need::Resync`]) and none has started.
    resync_wanted: bool,
    /// The prefixes the core asked about ([`Need::Confirm`]), not asked yet.
    confirm_wanted: Vec<Ipv6Net>,
    /// The start-up recovery's report, once it is over.
    startup: Option<Report>,
    /// When the last resync (or the start-up recovery) ended, and how.
    last_resync: Option<LastResync>,
    /// The service's instants in wall-clock time.
    wall: live::WallClock,
    /// The live view's socket (removed when dropped), if it could be made.
    live_socket: Option<live::LiveSocket>,
    /// The live view's requests (`None`: no socket).
    live: Option<mpsc::Receiver<live::LiveAsk>>,
    last_activity: Instant,
    /// Kernel notifications that did not decode, as the watcher counted.
    netlink_malformed: u64,
    batch: Vec<Change>,
    notifier: Notifier,
    metrics: Option<MetricsWriter>,
}

/// How the last resync (or the start-up recovery) ended.
#[derive(Debug, Clone)]
struct LastResync {
    at: Instant,
    /// `complete`, `partial` or `failed`.
    outcome: &'static str,
    /// Why it could not run, when it could not.
    error: Option<String>,
}

/// What the capture sockets and the watcher counted, for the metrics file.
fn metrics_figures(svc: &Service<'_>) -> super::metrics::Packets {
    let mut p = svc.captures.counters.figures();
    p.netlink_malformed = svc.netlink_malformed;
    p
}

/// Every route of `table` (ours and others').
async fn list_all(t: &mut NetlinkTable, table: u32) -> Result<Vec<TableRoute>, TableError> {
    let mut out = Vec::new();
    t.list_table(table, &mut |r| out.push(r)).await?;
    Ok(out)
}

impl Service<'_> {
    /// Serve what the core needs from the kernel before it goes on: the
    /// interfaces ([`Need::Interfaces`]), the table after adds met unknown
    /// routes ([`Need::Inspect`]). A resync and targeted queries it asks
    /// for are noted for the loop to start.
    async fn needs(&mut self) -> Result<(), FollowError> {
        while let Some(n) = self.core.poll_need() {
            match n {
                Need::Interfaces => {
                    let i = self.table.interfaces().await?;
                    self.core.handle_interfaces(Instant::now(), i);
                }
                Need::Inspect => {
                    let routes = list_all(&mut self.table, self.config.routes.table).await?;
                    self.core.handle_inspected(Instant::now(), routes);
                }
                Need::Resync => self.resync_wanted = true,
                Need::Confirm(prefixes) => self.confirm_wanted.extend(prefixes),
            }
        }
        Ok(())
    }
}

impl Service<'_> {
    fn status(&self) -> String {
        let c = &self.captures.counters;
        log::status_line(
            &self.core,
            self.last_resync.as_ref(),
            Instant::now(),
            c.packets.load(Ordering::Relaxed),
            c.malformed.load(Ordering::Relaxed),
        )
    }

    fn send_status(&self) {
        self.notifier.send(self.status());
    }

    /// The service as the live view says it (`listed` left to the answer).
    fn live_state(&self) -> crate::follow::live::LiveState {
        use crate::follow::live::{LiveInterface, LiveResync, LiveState};
        let c = &self.captures.counters;
        LiveState {
            pid: std::process::id(),
            started_at: self.wall.unix(self.core.epoch()),
            ready: self.startup.as_ref().is_some_and(|r| !r.interrupted),
            resyncing: self.core.resyncing(),
            followed: self.core.followed(),
            foreign: self.core.foreign_prefixes(),
            pending_releases: self.core.pending_releases(),
            last_resync: self.last_resync.as_ref().map(|l| LiveResync {
                at: self.wall.unix(l.at),
                outcome: l.outcome.to_owned(),
            }),
            next_resync_at: (!self.core.resyncing())
                .then(|| self.wall.unix(self.core.resync_deadline())),
            // The interfaces snooped (not every link the core knows, `lo`
            // among them).
            interfaces: self
                .core
                .links()
                .filter(|(name, _, _)| self.captures.wanted.iter().any(|w| w == name))
                .map(|(name, index, up)| LiveInterface {
                    name: name.to_owned(),
                    index,
                    up,
                })
                .collect(),
            packets: c.packets.load(Ordering::Relaxed),
            malformed: c.malformed.load(Ordering::Relaxed),
            counters: self.core.counters().clone(),
            listed: None,
        }
    }

    /// Answer a request of the live view.
    fn answer_live(&self, ask: live::LiveAsk) {
        live::answer(&self.core, self.live_state(), self.wall, ask);
    }

    /// Answer the live view's requests already queued (between two
    /// batches of a storm, when the loop does not sleep).
    fn serve_live(&mut self) {
        let mut asks = Vec::new();
        if let Some(rx) = self.live.as_mut() {
            while let Ok(a) = rx.try_recv() {
                asks.push(a);
            }
        }
        for a in asks {
            self.answer_live(a);
        }
    }

    /// Rewrite the metrics file if the figures moved (see [`MetricsWriter`]).
    fn write_metrics(&mut self, now_anyway: bool) {
        let p = metrics_figures(self);
        if let Some(m) = self.metrics.as_mut() {
            m.maybe_write(&self.core, p, now_anyway);
        }
    }

    fn handle_snoop(&mut self, b: SnoopBatch) {
        let now = Instant::now();
        for item in b.items {
            match item {
                Item::Reply(r) => self.core.handle_reply(now, b.ifindex, &r),
                Item::Release(r) => self.core.handle_release(now, b.ifindex, &r),
                Item::Forged(f) => self.core.handle_forged(now, b.ifindex, &f),
            }
        }
    }

    async fn handle_kernel(&mut self, events: Vec<KernelEvent>) -> Result<(), FollowError> {
        for e in events {
            let now = Instant::now();
            match e {
                KernelEvent::Route { new, route } => self.core.handle_route_event(now, new, &route),
                KernelEvent::Link { index, name, up } => {
                    self.core.handle_link(now, index, &name, up);
                    // A capture follows its interface by name: opened when
                    // it appears, again when it is re-created (new index).
                    if self.captures.wants(&name) && self.captures.open(&name)? {
                        self.write_metrics(true);
                    }
                }
                KernelEvent::Overflow => {
                    tracing::warn!("follow: rtnetlink events were lost; reading the table again");
                    for l in self.table.links().await? {
                        self.core.handle_link(now, l.index, &l.name, l.up);
                    }
                    // An interface re-created while the events were lost.
                    if self.captures.open_missing()? > 0 {
                        self.write_metrics(true);
                    }
                    let routes = list_all(&mut self.table, self.config.routes.table).await?;
                    self.core.handle_kernel_table(now, routes);
                }
            }
            self.needs().await?;
        }
        Ok(())
    }

    /// Log the core's events and hand its changes to the table.
    async fn flush(&mut self) -> Result<(), FollowError> {
        while let Some(e) = self.core.poll_event() {
            log::log_event(&e);
        }
        while let Some(c) = self.core.poll_change() {
            log::log_change(&c);
            self.batch.push(c.change);
        }
        if self.batch.is_empty() {
            return Ok(());
        }
        let changes = std::mem::take(&mut self.batch);
        tracing::debug!(changes = changes.len(), "follow: submitting");
        let failures = self.table.submit(changes).await?;
        tracing::debug!(failures = failures.len(), "follow: submitted");
        self.unsynced = true;
        self.failures(failures);
        Ok(())
    }

    fn failures(&mut self, failures: Vec<Failure>) {
        let now = Instant::now();
        for (c, e) in failures {
            self.core.handle_failure(now, &c, &e);
        }
    }

    /// Wait until the table has applied everything; feed back failures.
    async fn sync(&mut self) -> Result<(), FollowError> {
        if self.unsynced {
            tracing::debug!("follow: syncing");
            let f = self.table.sync().await?;
            tracing::debug!(failures = f.len(), "follow: synced");
            self.unsynced = false;
            self.failures(f);
        }
        Ok(())
    }
}
