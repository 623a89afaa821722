//! The kernel's IPv6 routing table through a batched rtnetlink socket.
//!
//! Route changes are packed many to a datagram (up to [`BATCH_BYTES`]), and
//! only the last request of a batch asks for an acknowledgement: the kernel
//! handles the requests of a datagram in order and answers only the failed
//! ones, so a batch costs one `sendmsg` and, when all goes well, one
//! `recvmsg`. The socket's buffers are enlarged so that the error answers of
//! a whole batch always fit.
//!
//! Ownership is kept in the requests themselves, as a routing daemon must
//! (the kernel's `NLM_F_REPLACE` replaces whatever route holds the table,
//! prefix and metric, whoever put it there): an add is create-exclusive
//! (`NLM_F_CREATE | NLM_F_EXCL`), so it fails with EEXIST instead of
//! overwriting another's route; only a route known to be ours is replaced
//! (`NLM_F_CREATE | NLM_F_REPLACE`); a delete names the route's protocol,
//! next hop and interface, which the kernel matches (`ip6_route_del`), so it
//! never takes another route of the same key, and "already gone" (ESRCH)
//! counts as success.
//!
//! The socket belongs to the network namespace of the thread that opens it.
//!
//! - [`wire`]: every netlink byte read or written (strict decoders of route
//!   and link messages, the batched route encoder); the follow watcher
//!   uses it too.
//! - `socket`: the blocking socket of the worker thread (dumps, batches,
//!   the permission probe, links and addresses).

use super::{Change, Failure, Interface, RouteError, RouteTable, TableError, TableRoute};
use socket::NetlinkSocket;
use std::collections::VecDeque;
use tokio::sync::{mpsc, oneshot};

mod socket;
pub mod wire;

pub(crate) use socket::grow_receive_buffer;

/// Largest datagram of route requests sent at once.
pub const BATCH_BYTES: usize = 128 * 1024;

/// A network interface of this namespace, as the link dump gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Its name.
    pub name: std::sync::Arc<str>,
    /// Its kernel index.
    pub index: u32,
    /// Administratively up (IFF_UP): routes out of it can be installed.
    pub up: bool,
    /// For a VRF device (link kind `vrf`), the routing table it uses.
    pub vrf_table: Option<u32>,
}

/// Changes (batches) queued to the worker before `submit` waits.
const PIPELINE_DEPTH: usize = 2;

/// Routes listed per message from the worker to the caller.
const LIST_BATCH: usize = 4096;

impl std::fmt::Debug for NetlinkTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetlinkTable")
            .field("in_flight", &self.in_flight.len())
            .finish()
    }
}

/// A request to the worker thread, with where to answer.
enum Command {
    Apply(
        Vec<Change>,
        oneshot::Sender<Result<Vec<Failure>, TableError>>,
    ),
    List(u32, mpsc::Sender<Result<Vec<TableRoute>, TableError>>),
    Links(oneshot::Sender<Result<Vec<Link>, TableError>>),
    Interfaces(oneshot::Sender<Result<Vec<Interface>, TableError>>),
    CheckWrite(oneshot::Sender<Result<(), TableError>>),
    Listeners(oneshot::Sender<Option<super::listeners::Snapshot>>),
}

/// The worker thread: every netlink call of a [`NetlinkTable`] runs here,
/// one after the other, never on the async runtime's threads.
fn work(mut sock: NetlinkSocket, mut commands: mpsc::Receiver<Command>) {
    while let Some(c) = commands.blocking_recv() {
        match c {
            Command::Apply(changes, reply) => {
                let r = sock
                    .apply(&changes)
                    .map(|errors| super::pair_failures(&changes, errors));
                let _ = reply.send(r);
            }
            Command::List(table, out) => {
                let mut batch = Vec::with_capacity(LIST_BATCH);
                let r = sock.list_table(table, &mut |r| {
                    batch.push(r);
                    if batch.len() == LIST_BATCH {
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(LIST_BATCH));
                        let _ = out.blocking_send(Ok(full));
                    }
                });
                let _ = out.blocking_send(r.map(|()| batch));
            }
            Command::Links(reply) => {
                let _ = reply.send(sock.links());
            }
            Command::Interfaces(reply) => {
                let _ = reply.send(sock.interfaces());
            }
            Command::CheckWrite(reply) => {
                let _ = reply.send(sock.check_write_access());
            }
            // Read here: this thread is in the socket's namespace.
            Command::Listeners(reply) => {
                let _ = reply.send(super::listeners::Snapshot::read());
            }
        }
    }
}

/// Routes in the kernel, through netlink.
///
/// The socket belongs to a worker thread started by [`NetlinkTable::open`]
/// in the caller's network namespace: every call (dumps, batches, the
/// permission check) runs there, so the async side never blocks. Batches
/// are pipelined: [`RouteTable::submit`] queues one while the kernel
/// installs the one before (up to two batches ahead), and
/// [`RouteTable::sync`] waits for all of them.
pub struct NetlinkTable {
    commands: Option<mpsc::Sender<Command>>,
    in_flight: VecDeque<oneshot::Receiver<Result<Vec<Failure>, TableError>>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl NetlinkTable {
    /// Open a route socket in the calling thread's network namespace, and
    /// the worker thread that uses it (it starts in the same namespace).
    pub fn open() -> Result<Self, TableError> {
        let sock = NetlinkSocket::open()?;
        let (tx, rx) = mpsc::channel(PIPELINE_DEPTH);
        let handle = std::thread::Builder::new()
            .name("pdrestore-netlink".into())
            .spawn(move || work(sock, rx))
            .map_err(TableError::Thread)?;
        Ok(NetlinkTable {
            commands: Some(tx),
            in_flight: VecDeque::new(),
            handle: Some(handle),
        })
    }

    async fn ask<R>(
        &mut self,
        make: impl FnOnce(oneshot::Sender<Result<R, TableError>>) -> Command,
    ) -> Result<R, TableError> {
        let (tx, rx) = oneshot::channel();
        let commands = self.commands.as_ref().ok_or(TableError::WorkerGone)?;
        commands
            .send(make(tx))
            .await
            .map_err(|_| TableError::WorkerGone)?;
        rx.await.map_err(|_| TableError::WorkerGone)?
    }

    /// The links of this namespace, with whether each is up.
    pub async fn links(&mut self) -> Result<Vec<Link>, TableError> {
        self.ask(Command::Links).await
    }

    /// The interfaces of this namespace with their IPv6 addresses.
    pub async fn interfaces(&mut self) -> Result<Vec<Interface>, TableError> {
        self.ask(Command::Interfaces).await
    }

    /// Check that we may change routes (CAP_NET_ADMIN in the namespace),
    /// without changing any (see the socket's check).
    pub async fn check_write_access(&mut self) -> Result<(), TableError> {
        self.ask(Command::CheckWrite).await
    }

    /// The failures of the batches already applied (all of them when `all`).
    async fn collect(&mut self, all: bool) -> Result<Vec<Failure>, TableError> {
        let mut out = Vec::new();
        while let Some(front) = self.in_flight.front_mut() {
            let r = if all {
                front.await.map_err(|_| TableError::WorkerGone)
            } else {
                match front.try_recv() {
                    Ok(r) => Ok(r),
                    Err(oneshot::error::TryRecvError::Empty) => break,
                    Err(oneshot::error::TryRecvError::Closed) => Err(TableError::WorkerGone),
                }
            };
            self.in_flight.pop_front();
            out.extend(r??);
        }
        Ok(out)
    }
}

/// The links of the calling thread's network namespace, now, from a
/// synchronous caller (`check-config`).
pub fn links_now() -> Result<Vec<Link>, TableError> {
    NetlinkSocket::open()?.links()
}

/// The interfaces of the calling thread's network namespace with their
/// IPv6 addresses, now, from a synchronous caller (`check-config`).
pub fn interfaces_now() -> Result<Vec<Interface>, TableError> {
    NetlinkSocket::open()?.interfaces()
}

impl Drop for NetlinkTable {
    fn drop(&mut self) {
        // Closing the channel ends the worker once it has done what it has.
        self.commands = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl RouteTable for NetlinkTable {
    async fn list_table(
        &mut self,
        table: u32,
        each: &mut (dyn FnMut(TableRoute) + Send),
    ) -> Result<(), TableError> {
        // The worker applies what is in the pipeline first: the listing is true.
        let (tx, mut rx) = mpsc::channel(4);
        let commands = self.commands.as_ref().ok_or(TableError::WorkerGone)?;
        commands
            .send(Command::List(table, tx))
            .await
            .map_err(|_| TableError::WorkerGone)?;
        while let Some(batch) = rx.recv().await {
            for r in batch? {
                each(r);
            }
        }
        Ok(())
    }

    async fn apply(&mut self, changes: &[Change]) -> Result<Vec<RouteError>, TableError> {
        let failures = self.ask(|tx| Command::Apply(changes.to_vec(), tx)).await?;
        Ok(failures.into_iter().map(|(_, e)| e).collect())
    }

    async fn submit(&mut self, changes: Vec<Change>) -> Result<Vec<Failure>, TableError> {
        let (tx, rx) = oneshot::channel();
        let commands = self.commands.as_ref().ok_or(TableError::WorkerGone)?;
        commands
            .send(Command::Apply(changes, tx))
            .await
            .map_err(|_| TableError::WorkerGone)?;
        self.in_flight.push_back(rx);
        self.collect(false).await
    }

    async fn sync(&mut self) -> Result<Vec<Failure>, TableError> {
        self.collect(true).await
    }

    async fn listeners(&mut self) -> Option<super::listeners::Snapshot> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .as_ref()?
            .send(Command::Listeners(tx))
            .await
            .ok()?;
        rx.await.ok()?
    }
}
