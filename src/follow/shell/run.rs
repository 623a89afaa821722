//! `pdrestore follow` from the start: the capture sockets, the core and
//! the watcher come first, so that snooping routes from the first REPLY;
//! the start-up recovery runs as the first resync, beside it; READY=1
//! follows the start-up recovery.

use super::capture::Captures;
use super::event_loop::event_loop;
use super::live::{self, WallClock};
use super::metrics_figures;
use super::notify::Notifier;
use super::{
    core_settings, Control, FollowError, FollowOptions, FollowSummary, Service, SNOOP_QUEUE,
};
use crate::agent::{self, RecoverError, RecoverOptions};
use crate::config::Config;
use crate::follow::core::FollowCore;
use crate::follow::metrics::MetricsWriter;
use crate::follow::watch::Watcher;
use crate::proto::Duid;
use crate::recovery::ledger::RunKind;
use crate::routes::NetlinkTable;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, watch};

/// `pdrestore follow` in the calling thread's network namespace: the
/// routes kept in step (see the [module documentation](super)) from the
/// first snooped REPLY, the start-up recovery beside it, until
/// [`Control::Stop`] (or, with `--once`, until nothing happens for a while).
pub async fn run(
    config: &Config,
    relay: &Duid,
    opts: &FollowOptions,
    mut control: mpsc::UnboundedReceiver<Control>,
) -> Result<FollowSummary, FollowError> {
    let start = Instant::now();
    let started_at = std::time::SystemTime::now();
    let ifs = crate::routes::netlink::interfaces_now()
        .map_err(|e| FollowError::Recover(RecoverError::Table(e)))?;
    let wanted = config.follow_interfaces_on(&ifs);
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
    let mut table = NetlinkTable::open()?;
    // Before anything is routed or asked: may we change routes at all?
    table.check_write_access().await.map_err(|e| {
        FollowError::Recover(if e.is_permission_denied() {
            RecoverError::NoPermission(e)
        } else {
            RecoverError::Table(e)
        })
    })?;
    let core = start_core(config, relay, &mut table, start).await?;
    let watcher =
        Watcher::spawn(config.routes.table, config.routes.protocol).map_err(FollowError::Watch)?;
    let (stop_tx, _) = watch::channel(false);
    // `pdrestore status` reads the live view from here on.
    let (live_socket, live) = match live::open(&config.state_directory) {
        Some((s, rx)) => (Some(s), Some(rx)),
        None => (None, None),
    };
    let mut svc = Service {
        config,
        relay,
        opts,
        core,
        table,
        captures,
        unsynced: false,
        stop_tx,
        resync_start: Some(start),
        resync_wanted: false,
        confirm_wanted: Vec::new(),
        startup: None,
        last_resync: None,
        wall: WallClock::new(start, started_at),
        live_socket,
        live,
        last_activity: Instant::now(),
        netlink_malformed: 0,
        batch: Vec::new(),
        notifier: Notifier::new(opts.notify),
        metrics: opts
            .metrics_file
            .clone()
            .map(|p| MetricsWriter::new(p, started_at)),
    };
    // The start-up recovery: `recover` itself (the wait for the
    // interfaces, every safety rule), while snooping routes.
    let stop = svc.stop_signal();
    let startup = Box::pin(async move {
        let opts = RecoverOptions {
            run: RunKind::StartUp,
            ..RecoverOptions::default()
        };
        agent::run(config, relay, &opts, stop).await
    });
    event_loop(&mut svc, &mut snoop_rx, watcher, &mut control, startup).await?;
    // The socket goes first: a stopping service answers no more.
    svc.live = None;
    svc.live_socket = None;
    svc.notifier.send("STOPPING=1".into());
    if let Some(mut m) = svc.metrics.take() {
        m.finish(&svc.core, metrics_figures(&svc));
    }
    let status = svc.status();
    tracing::info!("follow: stopping, routes left in place: {status}");
    Ok(FollowSummary {
        startup: svc.startup.take(),
        counters: svc.core.counters().clone(),
        followed: svc.core.followed(),
        status,
    })
}

/// The core at `start`, over the interfaces and links of the namespace,
/// in a resync (the start-up recovery) from the first.
async fn start_core(
    config: &Config,
    relay: &Duid,
    table: &mut NetlinkTable,
    start: Instant,
) -> Result<FollowCore, FollowError> {
    let interfaces = table.interfaces().await?;
    let links = config.query_links(&interfaces);
    let plan = config.plan_settings(relay.clone(), &links);
    let mut core = FollowCore::new(core_settings(config), plan, interfaces, start);
    core.handle_resync_started(start);
    let now = Instant::now();
    for l in table.links().await? {
        core.handle_link(now, l.index, &l.name, l.up);
    }
    while let Some(n) = core.poll_need() {
        if n == crate::follow::core::Need::Interfaces {
            let i = table.interfaces().await?;
            core.handle_interfaces(Instant::now(), i);
        }
    }
    Ok(core)
}
