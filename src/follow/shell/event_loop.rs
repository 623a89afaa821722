//! The loop: take what is queued (snooped messages, kernel events), let
//! the core's timers fire and serve its needs, submit its changes as one
//! batch, sync before sleeping; recoveries and targeted queries run beside
//! it as futures.

use super::live::LiveAsk;
use super::{
    ConfirmFuture, Control, FollowError, ResyncFuture, Service, SnoopBatch, DRAIN_BATCHES,
    STATUS_EVERY,
};
use crate::agent::{RecoverError, Report};
use crate::follow::watch::{KernelEvent, Watcher};
use ipnet::Ipv6Net;
use std::time::Instant;
use tokio::sync::mpsc;

/// What woke the loop.
enum Wake {
    Snoop(SnoopBatch),
    Kernel(Vec<KernelEvent>),
    Control(Control),
    Resynced(Box<Result<Report, RecoverError>>),
    Confirmed(Vec<(Ipv6Net, Option<u32>)>),
    /// A request of the live view.
    Live(LiveAsk),
    /// The live view's accept task is gone.
    LiveClosed,
    Timer,
    Status,
    Idle,
}

/// What runs beside the loop.
struct Beside<'a> {
    resync: Option<ResyncFuture<'a>>,
    confirm: Option<ConfirmFuture<'a>>,
    stopping: bool,
    status_at: tokio::time::Instant,
}

/// Run until [`Control::Stop`] (and the recovery in flight has ended), or,
/// with `--once`, until idle; `startup` is the start-up recovery.
pub(super) async fn event_loop<'a>(
    svc: &mut Service<'a>,
    snoop_rx: &mut mpsc::Receiver<SnoopBatch>,
    mut watcher: Watcher,
    control: &mut mpsc::UnboundedReceiver<Control>,
    startup: ResyncFuture<'a>,
) -> Result<(), FollowError> {
    let mut b = Beside {
        resync: Some(startup),
        confirm: None,
        stopping: false,
        status_at: tokio::time::Instant::now() + STATUS_EVERY,
    };
    loop {
        // The live view's requests first: a storm never starves them.
        svc.serve_live();
        // Take what is already there, then push the changes to the kernel.
        let took = drain(svc, snoop_rx, &mut watcher).await?;
        svc.core.handle_timeout(Instant::now());
        svc.needs().await?;
        svc.flush().await?;
        if took > 0 {
            tokio::task::yield_now().await;
            continue;
        }
        // What the kernel refused feeds back into the core, which may
        // need the table read (an add met a route: whose?) and have more
        // to send: round again until the kernel has it all.
        svc.sync().await?;
        svc.needs().await?;
        svc.flush().await?;
        if svc.unsynced {
            continue;
        }
        svc.write_metrics(false);
        if b.stopping && b.resync.is_none() {
            return Ok(());
        }
        if !b.stopping {
            start_beside(svc, &mut b).await?;
        }
        let wake = wait(svc, snoop_rx, &mut watcher, control, &mut b).await?;
        if on_wake(svc, wake, &mut b).await? {
            return Ok(());
        }
    }
}

/// Handle what is queued; how many batches.
async fn drain(
    svc: &mut Service<'_>,
    snoop_rx: &mut mpsc::Receiver<SnoopBatch>,
    watcher: &mut Watcher,
) -> Result<usize, FollowError> {
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
    Ok(took)
}

/// Start what the core asked for: a resync, targeted queries.
async fn start_beside<'a>(svc: &mut Service<'a>, b: &mut Beside<'a>) -> Result<(), FollowError> {
    if b.resync.is_none() && svc.resync_wanted {
        b.resync = Some(svc.start_resync().await?);
    }
    if b.confirm.is_none() && !svc.confirm_wanted.is_empty() {
        let prefixes = std::mem::take(&mut svc.confirm_wanted);
        tracing::debug!(
            prefixes = prefixes.len(),
            "follow: targeted queries (near expiry)"
        );
        let (config, relay) = (svc.config, svc.relay);
        b.confirm = Some(Box::pin(super::confirm::ask(config, relay, prefixes)));
    }
    Ok(())
}

/// Sleep until something happens.
async fn wait(
    svc: &mut Service<'_>,
    snoop_rx: &mut mpsc::Receiver<SnoopBatch>,
    watcher: &mut Watcher,
    control: &mut mpsc::UnboundedReceiver<Control>,
    b: &mut Beside<'_>,
) -> Result<Wake, FollowError> {
    let wake_core = tokio::time::Instant::from_std(svc.core.poll_timeout());
    let idle_at = svc.opts.once.map(|d| svc.last_activity + d);
    let idle = b.resync.is_none() && svc.startup.is_some();
    tracing::debug!("follow: waiting");
    let live = svc.live.as_mut();
    let listening = live.is_some();
    Ok(tokio::select! {
        s = snoop_rx.recv() => s.map_or(Wake::Timer, Wake::Snoop),
        e = watcher.recv() => match e {
            Some(e) => Wake::Kernel(e),
            None => return Err(FollowError::Watch(std::io::Error::other("the rtnetlink watcher stopped"))),
        },
        c = control.recv(), if !b.stopping => match c {
            Some(c) => Wake::Control(c),
            None => { std::future::pending::<()>().await; Wake::Timer }
        },
        r = async { b.resync.as_mut().expect("guarded").await }, if b.resync.is_some() => Wake::Resynced(Box::new(r)),
        a = async { b.confirm.as_mut().expect("guarded").await }, if b.confirm.is_some() => Wake::Confirmed(a),
        a = async { live.expect("guarded").recv().await }, if listening => a.map_or(Wake::LiveClosed, Wake::Live),
        _ = tokio::time::sleep_until(wake_core) => Wake::Timer,
        _ = tokio::time::sleep_until(b.status_at) => Wake::Status,
        _ = async { tokio::time::sleep_until(tokio::time::Instant::from_std(idle_at.expect("guarded"))).await }, if idle_at.is_some() && idle => Wake::Idle,
    })
}

/// Act on what woke the loop; true to end it.
async fn on_wake(
    svc: &mut Service<'_>,
    wake: Wake,
    b: &mut Beside<'_>,
) -> Result<bool, FollowError> {
    match wake {
        Wake::Snoop(s) => {
            svc.last_activity = Instant::now();
            svc.handle_snoop(s);
        }
        Wake::Kernel(e) => {
            svc.last_activity = Instant::now();
            svc.handle_kernel(e).await?;
        }
        Wake::Control(Control::Stop) => {
            b.stopping = true;
            b.confirm = None;
            let _ = svc.stop_tx.send(true);
        }
        Wake::Control(Control::Resync) => svc.core.handle_resync_requested(Instant::now()),
        Wake::Resynced(r) => {
            b.resync = None;
            svc.finish_resync(*r).await?;
            svc.last_activity = Instant::now();
        }
        Wake::Confirmed(answers) => {
            b.confirm = None;
            svc.core.handle_confirmed(Instant::now(), answers);
        }
        Wake::Live(ask) => svc.answer_live(ask),
        Wake::LiveClosed => svc.live = None,
        Wake::Timer => {}
        Wake::Status => {
            b.status_at = tokio::time::Instant::now() + STATUS_EVERY;
            svc.send_status();
            svc.write_metrics(false);
        }
        Wake::Idle => {
            return Ok(Instant::now() >= svc.last_activity + svc.opts.once.unwrap_or_default());
        }
    }
    Ok(false)
}
