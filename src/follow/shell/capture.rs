//! The capture tasks: one AF_PACKET socket per client-facing interface,
//! read under its packet budget, its DHCPv6 messages parsed
//! ([`crate::snoop::parse`]) and handed to the loop in batches.

use crate::follow::metrics::Packets;
use crate::snoop::{
    parse, CaptureError, CaptureSocket, Direction, Forged, PacketBudget, Release, Reply, Snooped,
    SNAP_LEN,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Packets read from one capture socket per wake-up at most.
const READ_BATCH: u32 = 64;

/// One snooped message of interest.
#[derive(Debug)]
pub(super) enum Item {
    Reply(Box<Reply>),
    Release(Box<Release>),
    Forged(Forged),
}

/// What one capture task read in one wake-up.
#[derive(Debug)]
pub(super) struct SnoopBatch {
    pub(super) ifindex: u32,
    pub(super) items: Vec<Item>,
}

/// Counters of one capture task.
#[derive(Debug, Default)]
pub(super) struct CaptureCounters {
    pub(super) packets: AtomicU64,
    ignored: AtomicU64,
    pub(super) malformed: AtomicU64,
    pub(super) throttled: AtomicU64,
    /// Sockets opened again on a re-created interface.
    reopened: AtomicU64,
}

impl CaptureCounters {
    /// The counts now, for the metrics file.
    pub(super) fn figures(&self) -> Packets {
        Packets {
            delivered: self.packets.load(Ordering::Relaxed),
            malformed: self.malformed.load(Ordering::Relaxed),
            over_budget: self.throttled.load(Ordering::Relaxed),
            netlink_malformed: 0,
            captures_reopened: self.reopened.load(Ordering::Relaxed),
        }
    }
}

/// The capture tasks, one per client-facing interface.
pub(super) struct Captures {
    pub(super) wanted: Vec<String>,
    pub(super) rate: u32,
    pub(super) burst: u32,
    pub(super) rcvbuf: usize,
    pub(super) tx: mpsc::Sender<SnoopBatch>,
    pub(super) tasks: HashMap<String, (u32, tokio::task::JoinHandle<()>)>,
    pub(super) counters: Arc<CaptureCounters>,
}

impl Captures {
    /// Open a socket on each wanted interface that exists and has none, or
    /// whose socket points at an index it no longer has ([`Self::open`]);
    /// how many were re-opened.
    pub(super) fn open_missing(&mut self) -> Result<u64, CaptureError> {
        let mut reopened = 0;
        for name in self.wanted.clone() {
            reopened += u64::from(self.open(&name)?);
        }
        Ok(reopened)
    }

    /// Open a socket on the wanted interface `name` if it exists and has
    /// none. A capture follows its interface by name: one re-created under
    /// the same name (a new index: a VLAN or bridge rebuilt) gets a new
    /// socket, and the old task, whose socket points at the gone index, is
    /// stopped (logged with both indexes, counted): true then. A missing
    /// interface is tried again when a link event names it.
    pub(super) fn open(&mut self, name: &str) -> Result<bool, CaptureError> {
        let Some(index) = if_index(name) else {
            return Ok(false);
        };
        let old = match self.tasks.get(name) {
            Some((i, t)) if !t.is_finished() && *i == index => return Ok(false),
            Some((i, t)) if !t.is_finished() => Some(*i),
            _ => None,
        };
        let sock = match CaptureSocket::open_with(index, self.rcvbuf) {
            Ok(s) => s,
            // Gone again meanwhile (ENODEV at bind): its next link event says.
            Err(CaptureError::NoSuchInterface(_)) => return Ok(false),
            Err(CaptureError::Os { source, .. }) if source.raw_os_error() == Some(libc::ENODEV) => {
                return Ok(false)
            }
            Err(e) => return Err(e),
        };
        let ifindex = sock.ifindex();
        let rcvbuf = sock.rcvbuf();
        match old {
            Some(old_ifindex) => {
                self.counters.reopened.fetch_add(1, Ordering::Relaxed);
                tracing::info!(interface = %name, old_ifindex, ifindex, rcvbuf, "interface re-created: snooping DHCPv6 on its new index");
            }
            None => tracing::info!(interface = %name, ifindex, rcvbuf, "snooping DHCPv6"),
        }
        let budget = PacketBudget::new(self.rate, self.burst, Instant::now());
        let task = tokio::spawn(capture_task(
            sock,
            budget,
            self.tx.clone(),
            self.counters.clone(),
        ));
        if let Some((_, old)) = self.tasks.insert(name.to_owned(), (ifindex, task)) {
            old.abort();
        }
        Ok(old.is_some())
    }

    pub(super) fn wants(&self, name: &str) -> bool {
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

fn classify(packet: &[u8], dir: Direction, c: &CaptureCounters) -> Option<Item> {
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
