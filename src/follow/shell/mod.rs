//! The async shell of `pdrestore follow`: sockets, netlink, timers,
//! signals, systemd, around the sans-IO [`FollowCore`].
//!
//! 1. Capture sockets ([`crate::snoop::CaptureSocket`]) are opened on the client-facing
//!    interfaces first, so that what the relay sends while the start-up
//!    recovery runs is queued in their buffers, not missed.
//! 2. The start-up recovery is `recover` itself ([`agent::run`]: the
//!    permission check, the wait for the interfaces, every safety rule).
//! 3. The core is loaded from our routes in the kernel; the rtnetlink
//!    watcher ([`Watcher`]) starts; systemd is told READY=1.
//! 4. The loop: snooped messages (each interface read by a task of its own
//!    under a [`crate::snoop::PacketBudget`], through a bounded channel), kernel events,
//!    the core's timers, resyncs (on the core's deadline and on
//!    [`Control::Resync`], SIGHUP), status lines, until [`Control::Stop`]
//!    (SIGTERM), which leaves every route in place.
//!
//! Route changes are handed to the [`NetlinkTable`] in batches: everything
//! that is already queued is taken, then the batch is submitted, and the
//! table is synced (its failures fed back to the core) before the loop
//! sleeps, so a renewal storm costs one netlink datagram per batch and a
//! lone REPLY is routed within a millisecond or two.

use super::core::{CoreSettings, FollowCore, Need};
use super::metrics::MetricsWriter;
use super::watch::{KernelEvent, Watcher};
use crate::agent::{self, Outcome, RecoverError, RecoverOptions, Report};
use crate::config::Config;
use crate::exit;
use crate::proto::Duid;
use crate::routes::{Change, Failure, NetlinkTable, RouteTable, TableError, TableRoute};
use crate::snoop::CaptureError;
use capture::{Captures, Item, SnoopBatch};
use notify::Notifier;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

mod capture;
mod log;
mod notify;
mod resync;

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
    #[error("no client-facing interface to snoop: set [follow] interfaces, or map interface-ids to interfaces in [routes.interfaces]")]
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
    /// The start-up recovery's report.
    pub startup: Report,
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
        seed: fastrand::u64(..),
        ..CoreSettings::default()
    }
}

type ResyncFuture<'a> =
    Pin<Box<dyn Future<Output = Result<(Report, NetlinkTable), RecoverError>> + 'a>>;

/// The running service.
struct Service<'a> {
    config: &'a Config,
    relay: &'a Duid,
    opts: &'a FollowOptions,
    core: FollowCore,
    table: Option<NetlinkTable>,
    captures: Captures,
    unsynced: bool,
    stop_tx: watch::Sender<bool>,
    resync_start: Option<Instant>,
    /// The core asked for a resync ([`Need::Resync`]) and none has started.
    resync_wanted: bool,
    /// When the last resync (or the start-up recovery) ended, and how.
    last_resync: Option<(Instant, String)>,
    last_activity: Instant,
    /// Kernel notifications that did not decode, as the watcher counted.
    netlink_malformed: u64,
    batch: Vec<Change>,
    notifier: Notifier,
    metrics: Option<MetricsWriter>,
}

/// Every route of `table` (ours and others').
async fn list_all(t: &mut NetlinkTable, table: u32) -> Result<Vec<TableRoute>, TableError> {
    let mut out = Vec::new();
    t.list_table(table, &mut |r| out.push(r)).await?;
    Ok(out)
}

/// Serve what the core needs from the kernel before it goes on: the
/// interfaces ([`Need::Interfaces`]). A resync it asks for is noted in
/// `resync_wanted` for the loop to start.
async fn serve_needs(
    core: &mut FollowCore,
    table: Option<&mut NetlinkTable>,
    resync_wanted: &mut bool,
) -> Result<(), FollowError> {
    let mut table = table;
    while let Some(n) = core.poll_need() {
        match n {
            Need::Interfaces => {
                if let Some(t) = table.as_deref_mut() {
                    let i = t.interfaces().await?;
                    core.handle_interfaces(Instant::now(), i);
                }
            }
            Need::Resync => *resync_wanted = true,
        }
    }
    Ok(())
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

    /// Rewrite the metrics file if the figures moved (see [`MetricsWriter`]).
    fn write_metrics(&mut self, now_anyway: bool) {
        if let Some(m) = self.metrics.as_mut() {
            let mut p = self.captures.counters.figures();
            p.netlink_malformed = self.netlink_malformed;
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

    async fn needs(&mut self) -> Result<(), FollowError> {
        serve_needs(&mut self.core, self.table.as_mut(), &mut self.resync_wanted).await
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
                    if let Some(t) = self.table.as_mut() {
                        for l in t.links().await? {
                            self.core.handle_link(now, l.index, &l.name, l.up);
                        }
                        let routes = list_all(t, self.config.routes.table).await?;
                        self.core.handle_kernel_table(now, routes);
                    }
                    // An interface re-created while the events were lost.
                    if self.captures.open_missing()? > 0 {
                        self.write_metrics(true);
                    }
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
        let Some(table) = self.table.as_mut() else {
            return Ok(());
        };
        while let Some(c) = self.core.poll_change() {
            log::log_change(&c);
            self.batch.push(c.change);
        }
        if self.batch.is_empty() {
            return Ok(());
        }
        let changes = std::mem::take(&mut self.batch);
        tracing::debug!(changes = changes.len(), "follow: submitting");
        let failures = table.submit(changes).await?;
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
        if let (true, Some(t)) = (self.unsynced, self.table.as_mut()) {
            tracing::debug!("follow: syncing");
            let f = t.sync().await?;
            tracing::debug!(failures = f.len(), "follow: synced");
            self.unsynced = false;
            self.failures(f);
        }
        Ok(())
    }
}

/// The core after the start-up recovery (begun at `start`), loaded from
/// our routes and the links in the kernel, and the route table it drives.
async fn load_core(
    config: &Config,
    relay: &Duid,
    startup: &Report,
    start: Instant,
) -> Result<(FollowCore, NetlinkTable), FollowError> {
    let mut table = NetlinkTable::open()?;
    let interfaces = table.interfaces().await?;
    let links = config.query_links(&interfaces);
    let plan = config.plan_settings(relay.clone(), &links);
    let mut core = FollowCore::new(core_settings(config), plan, interfaces, start);
    core.handle_resync_started(start);
    let routes = list_all(&mut table, config.routes.table).await?;
    let outcome = startup.outcome();
    core.handle_resync_finished(
        Instant::now(),
        routes,
        &startup.answered(),
        outcome != Outcome::Failed,
    );
    let now = Instant::now();
    for l in table.links().await? {
        core.handle_link(now, l.index, &l.name, l.up);
    }
    // A resync the core would ask for now is the loop's to start.
    let mut resync = false;
    serve_needs(&mut core, Some(&mut table), &mut resync).await?;
    Ok((core, table))
}

/// `pdrestore follow` in the calling thread's network namespace: the
/// start-up recovery, then the routes kept in step (see the [module
/// documentation](self)) until [`Control::Stop`] (or, with `--once`, until
/// nothing happens for a while).
pub async fn run(
    config: &Config,
    relay: &Duid,
    opts: &FollowOptions,
    mut control: mpsc::UnboundedReceiver<Control>,
) -> Result<FollowSummary, FollowError> {
    let start = Instant::now();
    let started_at = std::time::SystemTime::now();
    let wanted = config.follow_interfaces();
    if wanted.is_empty() {
        return Err(FollowError::NoInterfaces);
    }
    let (snoop_tx, mut snoop_rx) = mpsc::channel(SNOOP_QUEUE);
    let mut captures = Captures {
        wanted,
        rate: config.follow.packets_per_second,
        burst: config.follow.packet_burst,
        rcvbuf: config.follow.capture_buffer,
        tx: snoop_tx,
        tasks: HashMap::new(),
        counters: Arc::default(),
    };
    captures.open_missing()?;
    // The start-up recovery: `recover`, every rule included.
    let mut stopped = false;
    let startup = {
        let stop = async {
            loop {
                match control.recv().await {
                    Some(Control::Stop) => break,
                    Some(Control::Resync) => continue,
                    None => std::future::pending::<()>().await,
                }
            }
            stopped = true;
        };
        agent::run(config, relay, &RecoverOptions::default(), stop).await?
    };
    for line in startup.to_text().lines() {
        tracing::info!("start-up: {line}");
    }
    let (core, table) = load_core(config, relay, &startup, start).await?;
    let watcher =
        Watcher::spawn(config.routes.table, config.routes.protocol).map_err(FollowError::Watch)?;
    captures.open_missing()?;
    let (stop_tx, _) = watch::channel(false);
    let mut svc = Service {
        config,
        relay,
        opts,
        core,
        table: Some(table),
        captures,
        unsynced: false,
        stop_tx,
        resync_start: None,
        resync_wanted: false,
        last_resync: Some((Instant::now(), startup.outcome().as_str().to_string())),
        last_activity: Instant::now(),
        netlink_malformed: 0,
        batch: Vec::new(),
        notifier: Notifier::new(opts.notify),
        metrics: opts.metrics_file.clone().map(|p| {
            let mut m = MetricsWriter::new(p, started_at);
            m.recovered(&startup);
            m
        }),
    };
    svc.write_metrics(true);
    tracing::info!(followed = svc.core.followed(), "follow: ready");
    svc.notifier.send("READY=1".into());
    svc.send_status();
    if !stopped {
        event_loop(&mut svc, &mut snoop_rx, watcher, &mut control).await?;
    }
    svc.notifier.send("STOPPING=1".into());
    if let Some(mut m) = svc.metrics.take() {
        let mut p = svc.captures.counters.figures();
        p.netlink_malformed = svc.netlink_malformed;
        m.finish(&svc.core, p);
    }
    let status = svc.status();
    tracing::info!("follow: stopping, routes left in place: {status}");
    Ok(FollowSummary {
        startup,
        counters: svc.core.counters().clone(),
        followed: svc.core.followed(),
        status,
    })
}

/// What woke the loop.
enum Wake {
    Snoop(SnoopBatch),
    Kernel(Vec<KernelEvent>),
    Control(Control),
    Resynced(Box<Result<(Report, NetlinkTable), RecoverError>>),
    Timer,
    Status,
    Idle,
}

async fn event_loop<'a>(
    svc: &mut Service<'a>,
    snoop_rx: &mut mpsc::Receiver<SnoopBatch>,
    mut watcher: Watcher,
    control: &mut mpsc::UnboundedReceiver<Control>,
) -> Result<(), FollowError> {
    let mut resync: Option<ResyncFuture<'a>> = None;
    let mut stopping = false;
    let mut status_at = tokio::time::Instant::now() + STATUS_EVERY;
    loop {
        // Take what is already there, then push the changes to the kernel.
        let mut took = 0;
        while took < DRAIN_BATCHES {
            match snoop_rx.try_recv() {
                Ok(b) => {
                    svc.handle_snoop(b);
                    took += 1;
                }
                Err(_) => break,
            }
        }
        while let Some(ev) = watcher.try_recv() {
            svc.handle_kernel(ev).await?;
            took += 1;
        }
        svc.netlink_malformed = watcher.malformed();
        if took > 0 {
            svc.last_activity = Instant::now();
        }
        svc.core.handle_timeout(Instant::now());
        svc.needs().await?;
        svc.flush().await?;
        if took > 0 {
            tokio::task::yield_now().await;
            continue;
        }
        svc.sync().await?;
        svc.flush().await?;
        svc.write_metrics(false);
        if stopping && resync.is_none() {
            return Ok(());
        }
        if resync.is_none() && !stopping && svc.resync_wanted {
            resync = svc.start_resync().await?;
        }
        let wake_core = tokio::time::Instant::from_std(svc.core.poll_timeout());
        let idle_at = svc.opts.once.map(|d| svc.last_activity + d);
        tracing::debug!("follow: waiting");
        let wake = tokio::select! {
            b = snoop_rx.recv() => b.map_or(Wake::Timer, Wake::Snoop),
            e = watcher.recv() => match e {
                Some(e) => Wake::Kernel(e),
                None => return Err(FollowError::Watch(std::io::Error::other("the rtnetlink watcher stopped"))),
            },
            c = control.recv(), if !stopping => match c {
                Some(c) => Wake::Control(c),
                None => { std::future::pending::<()>().await; Wake::Timer }
            },
            r = async { resync.as_mut().expect("guarded").await }, if resync.is_some() => Wake::Resynced(Box::new(r)),
            _ = tokio::time::sleep_until(wake_core) => Wake::Timer,
            _ = tokio::time::sleep_until(status_at) => Wake::Status,
            _ = async { tokio::time::sleep_until(tokio::time::Instant::from_std(idle_at.expect("guarded"))).await }, if idle_at.is_some() && resync.is_none() => Wake::Idle,
        };
        match wake {
            Wake::Snoop(b) => {
                svc.last_activity = Instant::now();
                svc.handle_snoop(b);
            }
            Wake::Kernel(e) => {
                svc.last_activity = Instant::now();
                svc.handle_kernel(e).await?;
            }
            Wake::Control(Control::Stop) => {
                stopping = true;
                let _ = svc.stop_tx.send(true);
            }
            Wake::Control(Control::Resync) => {
                if resync.is_none() {
                    resync = svc.start_resync().await?;
                }
            }
            Wake::Resynced(r) => {
                resync = None;
                svc.finish_resync(*r).await?;
                svc.last_activity = Instant::now();
            }
            Wake::Timer => {}
            Wake::Status => {
                status_at = tokio::time::Instant::now() + STATUS_EVERY;
                svc.send_status();
                svc.write_metrics(false);
            }
            Wake::Idle => {
                if Instant::now() >= svc.last_activity + svc.opts.once.unwrap_or_default() {
                    return Ok(());
                }
            }
        }
    }
}
