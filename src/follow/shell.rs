//! The async shell of `pdrestore follow`: sockets, netlink, timers,
//! signals, systemd, around the sans-IO [`FollowCore`].
//!
//! 1. Capture sockets ([`CaptureSocket`]) are opened on the client-facing
//!    interfaces first, so that what the relay sends while the start-up
//!    recovery runs is queued in their buffers, not missed.
//! 2. The start-up recovery is `recover` itself ([`agent::run`]: the
//!    permission check, the wait for the interfaces, every safety rule).
//! 3. The core is loaded from our routes in the kernel; the rtnetlink
//!    watcher ([`Watcher`]) starts; systemd is told READY=1.
//! 4. The loop: snooped messages (each interface read by a task of its own
//!    under a [`PacketBudget`], through a bounded channel), kernel events,
//!    the core's timers, resyncs (on the core's deadline and on
//!    [`Control::Resync`], SIGHUP), status lines, until [`Control::Stop`]
//!    (SIGTERM), which leaves every route in place.
//!
//! Route changes are handed to the [`NetlinkTable`] in batches: everything
//! that is already queued is taken, then the batch is submitted, and the
//! table is synced (its failures fed back to the core) before the loop
//! sleeps, so a renewal storm costs one netlink datagram per batch and a
//! lone REPLY is routed within a millisecond or two.

use super::core::{CoreSettings, FollowCore, FollowEvent, RouteChange};
use super::metrics::MetricsWriter;
use super::watch::{KernelEvent, Watcher};
use crate::agent::{self, Outcome, RecoverError, RecoverOptions, Report};
use crate::config::Config;
use crate::exit;
use crate::proto::Duid;
use crate::routes::{Change, Failure, Interface, NetlinkTable, RouteTable, TableError, TableRoute};
use crate::snoop::{
    parse, CaptureError, CaptureSocket, Forged, PacketBudget, Release, Reply, Snooped, SNAP_LEN,
};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// Packets read from one capture socket per wake-up at most.
const READ_BATCH: u32 = 64;
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

/// systemd notifications, sent from a thread of their own: the notify
/// socket is a blocking datagram socket, and a manager (or a test) that
/// does not read it must not stall the service. What cannot be queued is
/// dropped (a STATUS is superseded by the next one anyway).
struct Notifier {
    tx: Option<std::sync::mpsc::SyncSender<String>>,
}

impl Notifier {
    fn new(on: bool) -> Notifier {
        if !on || std::env::var_os("NOTIFY_SOCKET").is_none() {
            return Notifier { tx: None };
        }
        let (tx, rx) = std::sync::mpsc::sync_channel::<String>(8);
        let spawned = std::thread::Builder::new()
            .name("pdrestore-notify".into())
            .spawn(move || {
                for m in rx {
                    let state = match m.as_str() {
                        "READY=1" => sd_notify::NotifyState::Ready,
                        "STOPPING=1" => sd_notify::NotifyState::Stopping,
                        s => sd_notify::NotifyState::Status(s),
                    };
                    let _ = sd_notify::notify(&[state]);
                }
            });
        Notifier {
            tx: spawned.ok().map(|_| tx),
        }
    }

    fn send(&self, m: String) {
        if let Some(tx) = &self.tx {
            let _ = tx.try_send(m);
        }
    }
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

// ----- capture -----

/// One snooped message of interest.
#[derive(Debug)]
enum Item {
    Reply(Box<Reply>),
    Release(Box<Release>),
    Forged(Forged),
}

/// What one capture task read in one wake-up.
#[derive(Debug)]
struct SnoopBatch {
    ifindex: u32,
    items: Vec<Item>,
}

/// Counters of one capture task.
#[derive(Debug, Default)]
pub(crate) struct CaptureCounters {
    pub(crate) packets: AtomicU64,
    ignored: AtomicU64,
    pub(crate) malformed: AtomicU64,
    pub(crate) throttled: AtomicU64,
}

/// The capture tasks, one per client-facing interface.
struct Captures {
    wanted: Vec<String>,
    rate: u32,
    burst: u32,
    rcvbuf: usize,
    tx: mpsc::Sender<SnoopBatch>,
    tasks: HashMap<String, (u32, tokio::task::JoinHandle<()>)>,
    counters: Arc<CaptureCounters>,
}

impl Captures {
    /// Open a socket on each wanted interface that exists and has none;
    /// a missing one is tried again when a link event names it.
    fn open_missing(&mut self) -> Result<(), CaptureError> {
        for name in self.wanted.clone() {
            if self.tasks.get(&name).is_some_and(|(_, t)| !t.is_finished()) {
                continue;
            }
            let Some(index) = if_index(&name) else {
                continue;
            };
            let sock = match CaptureSocket::open_with(index, self.rcvbuf) {
                Ok(s) => s,
                Err(CaptureError::NoSuchInterface(_)) => continue,
                Err(e) => return Err(e),
            };
            let ifindex = sock.ifindex();
            tracing::info!(interface = %name, ifindex, rcvbuf = sock.rcvbuf(), "snooping DHCPv6");
            let budget = PacketBudget::new(self.rate, self.burst, Instant::now());
            let task = tokio::spawn(capture_task(
                sock,
                budget,
                self.tx.clone(),
                self.counters.clone(),
            ));
            if let Some((_, old)) = self.tasks.insert(name, (ifindex, task)) {
                old.abort();
            }
        }
        Ok(())
    }

    fn wants(&self, name: &str) -> bool {
        self.wanted.iter().any(|w| w == name)
    }
}

impl Drop for Captures {
    fn drop(&mut self) {
        for (_, t) in self.tasks.values() {
            t.abort();
        }
    }
}

/// The index of the interface named `name`, if it exists.
fn if_index(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: `c` is a valid NUL-terminated string for the call.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}

fn classify(packet: &[u8], dir: crate::snoop::Direction, c: &CaptureCounters) -> Option<Item> {
    c.packets.fetch_add(1, Ordering::Relaxed);
    match parse(packet, dir) {
        Ok(Snooped::Reply(r)) => Some(Item::Reply(Box::new(r))),
        Ok(Snooped::Release(r)) => Some(Item::Release(Box::new(r))),
        Ok(Snooped::Forged(f)) => Some(Item::Forged(f)),
        Ok(Snooped::Ignored(_)) => {
            c.ignored.fetch_add(1, Ordering::Relaxed);
            None
        }
        Err(e) => {
            c.malformed.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(error = %e, code = e.kind.name(), "malformed DHCPv6 packet");
            None
        }
    }
}

/// Read one interface's packets under its budget and hand the messages of
/// interest to the loop. What the budget does not allow waits in the
/// socket's buffer (the kernel drops what does not fit).
async fn capture_task(
    mut sock: CaptureSocket,
    mut budget: PacketBudget,
    tx: mpsc::Sender<SnoopBatch>,
    counters: Arc<CaptureCounters>,
) {
    let mut buf = vec![0u8; SNAP_LEN];
    let ifindex = sock.ifindex();
    loop {
        let now = Instant::now();
        let n = budget.grant(READ_BATCH, now);
        if n == 0 {
            counters.throttled.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(budget.wait_time(now)).await;
            continue;
        }
        let mut items = Vec::new();
        let read = sock
            .recv_batch(&mut buf, n as usize, |p, dir| {
                items.extend(classify(p, dir, &counters));
            })
            .await;
        match read {
            Ok(_) => {}
            // The interface went down: the socket says so once; go on.
            Err(e) if e.raw_os_error() == Some(libc::ENETDOWN) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => {
                tracing::warn!(ifindex, error = %e, "capture socket failed; reopened when the interface is back");
                return;
            }
        }
        if !items.is_empty() && tx.send(SnoopBatch { ifindex, items }).await.is_err() {
            return;
        }
    }
}

// ----- the loop -----

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
    last_activity: Instant,
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

fn log_change(c: &RouteChange) {
    let r = c.change.route();
    tracing::info!(
        prefix = %r.prefix,
        via = %r.gateway,
        dev = %r.interface,
        expires = r.expires.map_or("never".to_string(), |e| format!("{e}s")),
        why = c.why.code(),
        "follow: {} route",
        c.change.op()
    );
}

fn log_event(e: &FollowEvent) {
    match e {
        FollowEvent::Refused {
            prefix,
            next_hop,
            interface,
            reason,
        } => {
            tracing::warn!(%prefix, via = %next_hop, dev = %interface, reason = reason.code(), "follow: refused: {reason}")
        }
        FollowEvent::Ignored { prefix, code } => {
            let p = prefix.map(|p| p.to_string()).unwrap_or_default();
            if *code == "cap" {
                tracing::warn!(prefix = %p, reason = code, "follow: not followed: max_prefixes reached");
            } else {
                tracing::info!(prefix = %p, reason = code, "follow: not used");
            }
        }
        FollowEvent::Foreign { prefix, how } => {
            tracing::info!(%prefix, how, reason = "foreign-route", "follow: a route that is not ours holds the prefix; left in place")
        }
        FollowEvent::ManualDelete { route } => {
            tracing::info!(prefix = %route.prefix, via = %route.gateway, dev = %route.interface, reason = "manual-delete", "follow: our route was deleted by someone else; forgotten until the next resync")
        }
        FollowEvent::Forged {
            interface,
            source,
            msg_type,
        } => {
            tracing::warn!(dev = %interface, %source, msg_type = %msg_type, reason = "forged", "follow: a server message arrived from the client side; ignored")
        }
        FollowEvent::Failed { change, error } => {
            tracing::warn!(prefix = %change.route().prefix, op = %change.op(), error = %error, code = error.code(), "follow: the kernel refused a route change")
        }
    }
}

impl<'a> Service<'a> {
    fn status(&self) -> String {
        let c = &self.captures.counters;
        format!(
            "{}; {} packets, {} malformed",
            self.core.status_line(Instant::now()),
            c.packets.load(Ordering::Relaxed),
            c.malformed.load(Ordering::Relaxed)
        )
    }

    fn send_status(&self) {
        self.notifier.send(self.status());
    }

    /// Rewrite the metrics file if the figures moved (see [`MetricsWriter`]).
    fn write_metrics(&mut self, now_anyway: bool) {
        if let Some(m) = self.metrics.as_mut() {
            m.maybe_write(&self.core, &self.captures.counters, now_anyway);
        }
    }

    fn handle_snoop(&mut self, b: SnoopBatch) {
        let now = Instant::now();
        for item in b.items {
            match item {
                Item::Reply(r) => self.core.reply(now, b.ifindex, &r),
                Item::Release(r) => self.core.release(now, b.ifindex, &r),
                Item::Forged(f) => self.core.forged(now, b.ifindex, &f),
            }
        }
    }

    async fn handle_kernel(&mut self, events: Vec<KernelEvent>) -> Result<(), FollowError> {
        let now = Instant::now();
        for e in events {
            match e {
                KernelEvent::Route { new, route } => self.core.route_event(now, new, &route),
                KernelEvent::Link { index, name, up } => {
                    if self.core.link(now, index, &name, up) {
                        self.refresh_interfaces().await?;
                        self.core.link(now, index, &name, up);
                    }
                    if up && self.captures.wants(&name) {
                        self.captures.open_missing()?;
                    }
                }
                KernelEvent::Overflow => {
                    tracing::warn!("follow: rtnetlink events were lost; reading the table again");
                    if let Some(t) = self.table.as_mut() {
                        let links = t.links().await?;
                        for l in links {
                            self.core.link(now, l.index, &l.name, l.up);
                        }
                        let routes = list_all(t, self.config.routes.table).await?;
                        self.core.reconcile_kernel(now, routes);
                    }
                }
            }
        }
        Ok(())
    }

    async fn refresh_interfaces(&mut self) -> Result<(), FollowError> {
        if let Some(t) = self.table.as_mut() {
            let i = t.interfaces().await?;
            self.core.set_interfaces(i);
        }
        Ok(())
    }

    /// Log the core's events and hand its changes to the table.
    async fn flush(&mut self) -> Result<(), FollowError> {
        while let Some(e) = self.core.poll_event() {
            log_event(&e);
        }
        let Some(table) = self.table.as_mut() else {
            return Ok(());
        };
        while let Some(c) = self.core.poll_change() {
            log_change(&c);
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
            self.core.failed(now, &c, &e);
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

    /// Start a resync: the table goes to the recovery until it is done.
    async fn start_resync(&mut self) -> Result<Option<ResyncFuture<'a>>, FollowError> {
        self.flush().await?;
        self.sync().await?;
        let Some(mut table) = self.table.take() else {
            return Ok(None);
        };
        let interfaces: Vec<Interface> = table.interfaces().await?;
        let now = Instant::now();
        self.core.begin_resync(now);
        self.resync_start = Some(now);
        tracing::info!("follow: resync (Bulk Leasequery) starting");
        let mut stop = self.stop_tx.subscribe();
        let stop = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        let (config, relay) = (self.config, self.relay);
        Ok(Some(Box::pin(async move {
            let opts = RecoverOptions::default();
            agent::recover(config, relay, table, interfaces, &opts, stop).await
        })))
    }

    /// The resync ended: rebuild from the kernel, lay snooping on top.
    async fn finish_resync(
        &mut self,
        r: Result<(Report, NetlinkTable), RecoverError>,
    ) -> Result<(), FollowError> {
        let started = self.resync_start.take().unwrap_or_else(Instant::now);
        let (report, mut table) = match r {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "follow: resync failed; the routes stay as they are");
                if let Some(m) = self.metrics.as_mut() {
                    m.failed(e.exit_code());
                }
                let mut t = NetlinkTable::open()?;
                let routes = list_all(&mut t, self.config.routes.table).await?;
                self.core
                    .finish_resync(Instant::now(), routes, &[], &format!("error: {e}"), false);
                self.table = Some(t);
                self.write_metrics(true);
                return Ok(());
            }
        };
        for line in report.to_text().lines() {
            tracing::info!("resync: {line}");
        }
        if let Some(m) = self.metrics.as_mut() {
            m.recovered(&report);
        }
        let interfaces = table.interfaces().await?;
        self.core.set_interfaces(interfaces);
        let routes = list_all(&mut table, self.config.routes.table).await?;
        let outcome = report.outcome();
        self.core.finish_resync(
            Instant::now(),
            routes,
            &report.answered(),
            outcome.as_str(),
            outcome != Outcome::Failed,
        );
        self.table = Some(table);
        tracing::info!(
            outcome = outcome.as_str(),
            seconds = format!("{:.3}", started.elapsed().as_secs_f64()),
            followed = self.core.followed(),
            "follow: resync done"
        );
        self.flush().await?;
        self.send_status();
        self.write_metrics(true);
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
    core.begin_resync(start);
    let routes = list_all(&mut table, config.routes.table).await?;
    let outcome = startup.outcome();
    core.finish_resync(
        Instant::now(),
        routes,
        &startup.answered(),
        outcome.as_str(),
        outcome != Outcome::Failed,
    );
    let now = Instant::now();
    for l in table.links().await? {
        core.link(now, l.index, &l.name, l.up);
    }
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
        last_activity: Instant::now(),
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
        m.finish(&svc.core, &svc.captures.counters);
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
        if took > 0 {
            svc.last_activity = Instant::now();
        }
        svc.core.tick(Instant::now());
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
        if resync.is_none() && !stopping && svc.core.resync_due(Instant::now()) {
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
