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

use super::{
    errno, Change, Failure, Interface, Route, RouteError, RouteTable, TableError, TableRoute,
};
use ipnet::Ipv6Net;
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REPLACE, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::route::RouteMessage;
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::collections::BTreeMap;
use std::collections::VecDeque;
use std::net::{IpAddr, Ipv6Addr};
use tokio::sync::{mpsc, oneshot};

/// Largest datagram of route requests sent at once.
pub const BATCH_BYTES: usize = 128 * 1024;

/// USER_HZ: the kernel reports route expiry (RTA_CACHEINFO) in these ticks.
const USER_HZ: u32 = 100;

/// A network interface of this namespace, as the link dump gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Its name.
    pub name: std::sync::Arc<str>,
    /// Its kernel index.
    pub index: u32,
    /// Administratively up (IFF_UP): routes out of it can be installed.
    pub up: bool,
}

/// One rtnetlink socket and its buffers, used from one thread with
/// blocking calls: the worker thread of a [`NetlinkTable`] owns one.
struct NetlinkSocket {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
    rx: Vec<u8>,
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

fn io_err(what: &'static str, source: std::io::Error) -> TableError {
    TableError::Io { what, source }
}

fn set_buf(socket: &Socket, opt: libc::c_int, force: libc::c_int, size: usize) {
    use std::os::fd::AsRawFd;
    let v = size as libc::c_int;
    for o in [force, opt] {
        // SAFETY: setsockopt with a valid fd, a pointer to a live c_int and its size.
        let r = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                o,
                &v as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r == 0 {
            return;
        }
    }
}

/// rtnetlink message types and route attributes (linux/rtnetlink.h).
const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_TABLE: u16 = 15;
const RTA_EXPIRES: u16 = 23;

fn put_attr(buf: &mut Vec<u8>, kind: u16, value: &[u8]) {
    // Values here are 4 or 16 octets: already aligned to 4.
    buf.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(value);
}

/// Append one RTM_NEWROUTE (`new`) or RTM_DELROUTE request for `r` to
/// `buf`: the bytes `route_message` / `new_route_message` serialise to,
/// written directly (a route is sent per request; this is the hot loop of
/// the installation).
fn encode_route(buf: &mut Vec<u8>, r: &Route, new: bool, flags: u16, seq: u32) {
    let start = buf.len();
    buf.extend_from_slice(&0u32.to_ne_bytes()); // length, patched below
    let kind = if new { RTM_NEWROUTE } else { RTM_DELROUTE };
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(&flags.to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes()); // port id
    let table = if r.table < 256 { r.table as u8 } else { 0 };
    buf.extend_from_slice(&[
        libc::AF_INET6 as u8,
        r.prefix.prefix_len(),
        0, // src_len
        0, // tos
        table,
        r.protocol,
        0, // RT_SCOPE_UNIVERSE
        1, // RTN_UNICAST
    ]);
    buf.extend_from_slice(&0u32.to_ne_bytes()); // rtm_flags
    put_attr(buf, RTA_TABLE, &r.table.to_ne_bytes());
    put_attr(buf, RTA_DST, &r.prefix.addr().octets());
    put_attr(buf, RTA_PRIORITY, &r.metric.to_ne_bytes());
    // A delete names the next hop and interface too (and the protocol in
    // the header): the kernel then takes only this very route.
    put_attr(buf, RTA_GATEWAY, &r.gateway.octets());
    put_attr(buf, RTA_OIF, &r.ifindex.to_ne_bytes());
    if new {
        if let Some(e) = r.expires {
            put_attr(buf, RTA_EXPIRES, &e.to_ne_bytes());
        }
    }
    let len = (buf.len() - start) as u32;
    buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
}

impl NetlinkSocket {
    /// Open a route socket in the calling thread's network namespace.
    fn open() -> Result<Self, TableError> {
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(|e| io_err("socket", e))?;
        socket.bind_auto().map_err(|e| io_err("bind", e))?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(|e| io_err("connect", e))?;
        // Errors of a failing batch must fit in the receive buffer; FORCE works as root.
        set_buf(&socket, libc::SO_RCVBUF, libc::SO_RCVBUFFORCE, 8 << 20);
        set_buf(
            &socket,
            libc::SO_SNDBUF,
            libc::SO_SNDBUFFORCE,
            4 * BATCH_BYTES,
        );
        let _ = socket.set_cap_ack(true);
        let _ = socket.set_ext_ack(true);
        Ok(NetlinkSocket {
            socket,
            seq: 0,
            buf: Vec::with_capacity(BATCH_BYTES + 4096),
            rx: vec![0; 1 << 20],
        })
    }

    fn push(&mut self, payload: RouteNetlinkMessage, flags: u16) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = self.seq;
        let mut msg = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(payload));
        msg.finalize();
        let start = self.buf.len();
        self.buf.resize(start + msg.buffer_len(), 0);
        msg.serialize(&mut self.buf[start..]);
        self.seq
    }

    /// Receive until the message with sequence `last` is answered (ack,
    /// error or end of dump), handing every message to `each`, decoded.
    fn receive(
        &mut self,
        last: u32,
        mut each: impl FnMut(NetlinkMessage<RouteNetlinkMessage>) -> Result<(), TableError>,
    ) -> Result<(), TableError> {
        self.receive_raw(last, |_, _, msg| {
            let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(msg)
                .map_err(|e| TableError::Malformed(format!("undecodable answer: {e}")))?;
            each(msg)
        })
    }

    /// Receive until the message with sequence `last` is answered (done or
    /// error), handing each message's type, sequence number and bytes
    /// (header included) to `each`, undecoded.
    fn receive_raw(
        &mut self,
        last: u32,
        mut each: impl FnMut(u16, u32, &[u8]) -> Result<(), TableError>,
    ) -> Result<(), TableError> {
        loop {
            let n = loop {
                match self.socket.recv(&mut &mut self.rx[..], 0) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(io_err("recv", e)),
                }
            };
            let mut off = 0;
            while off + 16 <= n {
                let b = &self.rx[off..n];
                let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
                if len < 16 || len > b.len() {
                    return Err(TableError::Malformed(format!("bad message length {len}")));
                }
                let kind = u16::from_ne_bytes([b[4], b[5]]);
                let seq = u32::from_ne_bytes([b[8], b[9], b[10], b[11]]);
                each(kind, seq, &b[..len])?;
                off += (len + 3) & !3;
                if seq == last && (kind == NLMSG_DONE || kind == NLMSG_ERROR) {
                    return Ok(());
                }
            }
        }
    }

    /// Every IPv6 route of `table`, each handed to `each` as the dump is
    /// read (parsed in place: a big table is never held twice).
    pub fn list_table_blocking(
        &mut self,
        table: u32,
        each: &mut dyn FnMut(TableRoute),
    ) -> Result<(), TableError> {
        let mut m = RouteMessage::default();
        m.header.address_family = AddressFamily::Inet6;
        self.buf.clear();
        let last = self.push(RouteNetlinkMessage::GetRoute(m), NLM_F_REQUEST | NLM_F_DUMP);
        self.send_buf()?;
        let names = self.interface_names()?;
        self.receive_raw(last, |kind, _, msg| {
            let body = &msg[16..];
            match kind {
                RTM_NEWROUTE => {
                    if let Some(route) = parse_route_bytes(body, &names) {
                        if route.table == table {
                            each(route);
                        }
                    }
                }
                NLMSG_ERROR => {
                    let code = body
                        .get(..4)
                        .map_or(0, |c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]]));
                    if code != 0 {
                        return Err(TableError::Kernel {
                            what: "route dump",
                            errno: code.abs(),
                        });
                    }
                }
                _ => {}
            }
            Ok(())
        })
    }

    /// Check that this socket may change routes (CAP_NET_ADMIN in the
    /// namespace), without changing any: a delete from a table that
    /// cannot exist (4294967294) of a route no one has (`100::/64`, the
    /// discard-only prefix of RFC 6666, at metric 2^32-1). The kernel
    /// checks the capability before anything else, so EPERM means no
    /// permission, and any other answer (ESRCH) means yes.
    fn check_write_access(&mut self) -> Result<(), TableError> {
        let probe = Route {
            prefix: "100::/64".parse().expect("a valid prefix"),
            gateway: "fe80::1".parse().expect("a valid address"),
            interface: "".into(),
            ifindex: 0,
            table: 0xffff_fffe,
            protocol: 0,
            metric: u32::MAX,
            expires: None,
        };
        self.buf.clear();
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        // Without the interface (0): RTA_OIF 0 would name no device.
        encode_route(&mut self.buf, &probe, false, NLM_F_REQUEST | NLM_F_ACK, seq);
        self.send_buf()?;
        let mut answer = 0;
        self.receive_raw(seq, |kind, _, msg| {
            if kind == NLMSG_ERROR {
                answer = msg
                    .get(16..20)
                    .map_or(0, |c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
                    .abs();
            }
            Ok(())
        })?;
        match answer {
            errno::EPERM | errno::EACCES => Err(TableError::Kernel {
                what: "changing routes",
                errno: answer,
            }),
            _ => Ok(()),
        }
    }

    fn send_buf(&mut self) -> Result<(), TableError> {
        let mut off = 0;
        while off < self.buf.len() {
            match self.socket.send(&self.buf[off..], 0) {
                Ok(n) => off += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err("send", e)),
            }
        }
        self.buf.clear();
        Ok(())
    }

    /// Apply changes in batches; returns one error per failed change.
    fn apply_blocking(&mut self, changes: &[Change]) -> Result<Vec<RouteError>, TableError> {
        let mut errors = Vec::new();
        let mut start = 0;
        while start < changes.len() {
            self.buf.clear();
            let first_seq = self.seq.wrapping_add(1);
            let mut end = start;
            while end < changes.len() && self.buf.len() < BATCH_BYTES {
                let last_of_batch = end + 1 == changes.len() || self.buf.len() + 256 >= BATCH_BYTES;
                let ack = if last_of_batch { NLM_F_ACK } else { 0 };
                self.seq = self.seq.wrapping_add(1);
                let (r, new, flags) = match &changes[end] {
                    // Create-exclusive: never over another's route.
                    Change::Add(r) => (r, true, NLM_F_CREATE | NLM_F_EXCL),
                    // Only routes known to be ours are replaced.
                    Change::Replace { new: r, .. } => (r, true, NLM_F_CREATE | NLM_F_REPLACE),
                    Change::Remove(r) => (r, false, 0),
                };
                encode_route(&mut self.buf, r, new, NLM_F_REQUEST | flags | ack, self.seq);
                end += 1;
                if last_of_batch {
                    break;
                }
            }
            let last = self.seq;
            self.send_buf()?;
            let batch = &changes[start..end];
            self.receive(last, |msg| {
                if let NetlinkPayload::Error(e) = &msg.payload {
                    if let Some(code) = e.code {
                        let idx = msg.header.sequence_number.wrapping_sub(first_seq) as usize;
                        if let Some(c) = batch.get(idx) {
                            let code = code.get().abs();
                            if matches!(c, Change::Remove(_)) && code == errno::ESRCH {
                                return Ok(());
                            }
                            errors.push(RouteError::from_errno(c.op(), c.route().prefix, code));
                        }
                    }
                }
                Ok(())
            })?;
            start = end;
        }
        Ok(errors)
    }

    fn interface_names(&mut self) -> Result<BTreeMap<u32, std::sync::Arc<str>>, TableError> {
        Ok(self
            .links()?
            .into_iter()
            .map(|l| (l.index, l.name))
            .collect())
    }

    /// A second socket, independent of a dump in progress on this one.
    fn side_socket() -> Result<NetlinkSocket, TableError> {
        let mut s = Socket::new(NETLINK_ROUTE).map_err(|e| io_err("socket", e))?;
        s.bind_auto().map_err(|e| io_err("bind", e))?;
        s.connect(&SocketAddr::new(0, 0))
            .map_err(|e| io_err("connect", e))?;
        Ok(NetlinkSocket {
            socket: s,
            seq: 0,
            buf: Vec::new(),
            rx: vec![0; 256 * 1024],
        })
    }

    /// The links of this namespace, with whether each is up (IFF_UP).
    fn links(&mut self) -> Result<Vec<Link>, TableError> {
        let mut t = Self::side_socket()?;
        let last = t.push(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_REQUEST | NLM_F_DUMP,
        );
        t.send_buf()?;
        let mut out = Vec::new();
        t.receive(last, |msg| {
            if let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l)) = msg.payload {
                let name = l.attributes.iter().find_map(|a| match a {
                    LinkAttribute::IfName(n) => Some(n.clone()),
                    _ => None,
                });
                if let Some(name) = name {
                    out.push(Link {
                        name: name.into(),
                        index: l.header.index,
                        up: l.header.flags.contains(LinkFlags::Up),
                    });
                }
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// The interfaces of this namespace with their IPv6 addresses.
    fn interfaces(&mut self) -> Result<Vec<Interface>, TableError> {
        let mut ifs: BTreeMap<u32, Interface> = self
            .links()?
            .into_iter()
            .map(|l| {
                (
                    l.index,
                    Interface {
                        name: l.name,
                        index: l.index,
                        addresses: Vec::new(),
                    },
                )
            })
            .collect();
        let mut t = Self::side_socket()?;
        let mut am = AddressMessage::default();
        am.header.family = AddressFamily::Inet6;
        let last = t.push(
            RouteNetlinkMessage::GetAddress(am),
            NLM_F_REQUEST | NLM_F_DUMP,
        );
        t.send_buf()?;
        t.receive(last, |msg| {
            if let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(a)) = msg.payload {
                let addr = a.attributes.iter().find_map(|x| match x {
                    AddressAttribute::Address(IpAddr::V6(v)) => Some(*v),
                    _ => None,
                });
                if let (Some(addr), Some(i)) = (addr, ifs.get_mut(&a.header.index)) {
                    if let Ok(net) = Ipv6Net::new(addr, a.header.prefix_len) {
                        i.addresses.push(net);
                    }
                }
            }
            Ok(())
        })?;
        Ok(ifs.into_values().collect())
    }
}

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTA_CACHEINFO: u16 = 12;
const RTA_MULTIPATH: u16 = 9;

/// One IPv6 route of an RTM_NEWROUTE body (rtmsg and attributes), read in
/// place (a test checks it against netlink-packet-route's decoding): type,
/// protocol, destination, gateway, several next hops or one, output
/// interface, metric, table, and the expiry of RTA_CACHEINFO.
pub(crate) fn parse_route_bytes(
    body: &[u8],
    names: &BTreeMap<u32, std::sync::Arc<str>>,
) -> Option<TableRoute> {
    let hdr = body.get(..12)?;
    if u16::from(hdr[0]) != libc::AF_INET6 as u16 {
        return None;
    }
    let (dst_len, mut table, protocol, kind) = (hdr[1], u32::from(hdr[4]), hdr[5], hdr[7]);
    let mut dst = Ipv6Addr::UNSPECIFIED;
    let mut gateway = None;
    let mut multipath = false;
    let (mut oif, mut metric, mut expires) = (0, 0, None);
    let addr = |v: &[u8]| <[u8; 16]>::try_from(v).ok().map(Ipv6Addr::from);
    let word = |v: &[u8]| <[u8; 4]>::try_from(v).ok().map(u32::from_ne_bytes);
    let mut rest = &body[12..];
    while rest.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([rest[0], rest[1]]));
        let attr = u16::from_ne_bytes([rest[2], rest[3]]) & 0x3fff;
        if len < 4 || len > rest.len() {
            return None;
        }
        let v = &rest[4..len];
        match attr {
            RTA_DST => dst = addr(v)?,
            RTA_GATEWAY => gateway = Some(addr(v)?),
            RTA_OIF => oif = word(v)?,
            RTA_PRIORITY => metric = word(v)?,
            RTA_TABLE => table = word(v)?,
            RTA_MULTIPATH => multipath = true,
            RTA_CACHEINFO => {
                let e = word(v.get(8..12)?)?;
                if e > 0 {
                    expires = Some(e / USER_HZ);
                }
            }
            _ => {}
        }
        rest = &rest[((len + 3) & !3).min(rest.len())..];
    }
    Some(TableRoute {
        prefix: Ipv6Net::new(dst, dst_len).ok()?,
        table,
        protocol,
        metric,
        kind,
        gateway,
        multipath,
        ifindex: oif,
        interface: names.get(&oif).cloned().unwrap_or_default(),
        expires,
    })
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
}

/// The worker thread: every netlink call of a [`NetlinkTable`] runs here,
/// one after the other, never on the async runtime's threads.
fn work(mut sock: NetlinkSocket, mut commands: mpsc::Receiver<Command>) {
    while let Some(c) = commands.blocking_recv() {
        match c {
            Command::Apply(changes, reply) => {
                let r = sock
                    .apply_blocking(&changes)
                    .map(|errors| super::pair_failures(&changes, errors));
                let _ = reply.send(r);
            }
            Command::List(table, out) => {
                let mut batch = Vec::with_capacity(LIST_BATCH);
                let r = sock.list_table_blocking(table, &mut |r| {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_route::route::{
        RouteAddress, RouteAttribute, RouteHeader, RouteProtocol, RouteScope, RouteType,
    };

    /// The reading of a route by netlink-packet-route's decoding, as
    /// `parse_route_bytes` must match it.
    fn parse_route(
        r: &RouteMessage,
        names: &BTreeMap<u32, std::sync::Arc<str>>,
    ) -> Option<TableRoute> {
        if r.header.address_family != AddressFamily::Inet6 {
            return None;
        }
        let mut dst = Ipv6Addr::UNSPECIFIED;
        let mut gateway = None;
        let mut multipath = false;
        let mut oif = 0;
        let mut metric = 0;
        let mut table = u32::from(r.header.table);
        let mut expires = None;
        for a in &r.attributes {
            match a {
                RouteAttribute::Destination(RouteAddress::Inet6(d)) => dst = *d,
                RouteAttribute::Gateway(RouteAddress::Inet6(g)) => gateway = Some(*g),
                RouteAttribute::MultiPath(_) => multipath = true,
                RouteAttribute::Oif(i) => oif = *i,
                RouteAttribute::Priority(p) => metric = *p,
                RouteAttribute::Table(t) => table = *t,
                RouteAttribute::CacheInfo(c) if c.expires > 0 => {
                    expires = Some(c.expires / USER_HZ)
                }
                _ => {}
            }
        }
        Some(TableRoute {
            prefix: Ipv6Net::new(dst, r.header.destination_prefix_length).ok()?,
            table,
            protocol: r.header.protocol.into(),
            metric,
            kind: u8::from(r.header.kind),
            gateway,
            multipath,
            ifindex: oif,
            interface: names.get(&oif).cloned().unwrap_or_default(),
            expires,
        })
    }

    fn route_message(r: &Route) -> RouteMessage {
        let mut m = RouteMessage::default();
        m.header.address_family = AddressFamily::Inet6;
        m.header.destination_prefix_length = r.prefix.prefix_len();
        m.header.table = if r.table < 256 {
            r.table as u8
        } else {
            RouteHeader::RT_TABLE_UNSPEC
        };
        m.header.protocol = RouteProtocol::from(r.protocol);
        m.header.scope = RouteScope::Universe;
        m.header.kind = RouteType::Unicast;
        m.attributes = vec![
            RouteAttribute::Table(r.table),
            RouteAttribute::Destination(RouteAddress::Inet6(r.prefix.addr())),
            RouteAttribute::Priority(r.metric),
            RouteAttribute::Gateway(RouteAddress::Inet6(r.gateway)),
            RouteAttribute::Oif(r.ifindex),
        ];
        m
    }

    fn new_route_message(r: &Route) -> RouteMessage {
        let mut m = route_message(r);
        if let Some(e) = r.expires {
            m.attributes.push(RouteAttribute::Expires(e));
        }
        m
    }

    /// Routes read in place are what netlink-packet-route's decoding of the
    /// same bytes gives.
    #[test]
    fn parse_route_bytes_matches_netlink_packet_route() {
        use netlink_packet_route::route::RouteMetric;
        let names: BTreeMap<u32, std::sync::Arc<str>> = [(7, "veth-c1".into())].into();
        let base = Route {
            prefix: "2001:db8:8000:100::/56".parse().unwrap(),
            gateway: "fe80::2".parse().unwrap(),
            interface: "veth-c1".into(),
            ifindex: 7,
            table: 254,
            protocol: 16,
            metric: 1024,
            expires: None,
        };
        for (table, ticks, gateway) in [
            (254u32, 0u32, true),
            (1000, 360_000, true),
            (254, 99, true),
            (254, 0, false),
        ] {
            let mut r = base.clone();
            r.table = table;
            let mut m = new_route_message(&r);
            m.attributes.retain(|a| {
                !matches!(a, RouteAttribute::Expires(_))
                    && (gateway || !matches!(a, RouteAttribute::Gateway(_)))
            });
            m.attributes
                .push(RouteAttribute::Metrics(vec![RouteMetric::Mtu(1400)]));
            let mut header = NetlinkHeader::default();
            header.sequence_number = 1;
            let mut msg = NetlinkMessage::new(
                header,
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(m)),
            );
            msg.finalize();
            let mut bytes = vec![0; msg.buffer_len()];
            msg.serialize(&mut bytes);
            // RTA_CACHEINFO (struct rta_cacheinfo: expires is the third word).
            let mut ci = [0u8; 32];
            ci[8..12].copy_from_slice(&ticks.to_ne_bytes());
            bytes.extend_from_slice(&36u16.to_ne_bytes());
            bytes.extend_from_slice(&RTA_CACHEINFO.to_ne_bytes());
            bytes.extend_from_slice(&ci);
            let len = bytes.len() as u32;
            bytes[..4].copy_from_slice(&len.to_ne_bytes());
            let decoded = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&bytes).unwrap();
            let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(m)) = decoded.payload
            else {
                panic!("not a route")
            };
            let want = parse_route(&m, &names);
            assert_eq!(want.as_ref().unwrap().gateway.is_some(), gateway);
            assert_eq!(want.as_ref().unwrap().as_route().is_some(), gateway);
            assert_eq!(parse_route_bytes(&bytes[16..], &names), want, "{m:?}");
            // Another family is not ours.
            bytes[16] = libc::AF_INET as u8;
            assert_eq!(parse_route_bytes(&bytes[16..], &names), None);
        }
        // Truncated bodies are refused, never a panic.
        assert_eq!(parse_route_bytes(&[10, 56, 0], &names), None);
        let short_attr = [10, 56, 0, 0, 254, 16, 0, 1, 0, 0, 0, 0, 20, 0, 1, 0, 0];
        assert_eq!(parse_route_bytes(&short_attr, &names), None);
    }

    /// The direct encoder writes what netlink-packet-route would.
    #[test]
    fn encode_route_matches_netlink_packet_route() {
        let mut r = Route {
            prefix: "2001:db8:8000:100::/56".parse().unwrap(),
            gateway: "fe80::2".parse().unwrap(),
            interface: "veth-c1".into(),
            ifindex: 7,
            table: 254,
            protocol: 16,
            metric: 1024,
            expires: Some(3600),
        };
        for (table, expires) in [(254, Some(3600)), (1000, None), (5, Some(0))] {
            r.table = table;
            r.expires = expires;
            for (new, flags) in [
                (
                    true,
                    NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE | NLM_F_ACK,
                ),
                (true, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL),
                (false, NLM_F_REQUEST | NLM_F_ACK),
            ] {
                let payload = if new {
                    RouteNetlinkMessage::NewRoute(new_route_message(&r))
                } else {
                    RouteNetlinkMessage::DelRoute(route_message(&r))
                };
                let mut header = NetlinkHeader::default();
                header.flags = flags;
                header.sequence_number = 42;
                let mut msg = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(payload));
                msg.finalize();
                let mut want = vec![0; msg.buffer_len()];
                msg.serialize(&mut want);
                let mut got = vec![0xaa; 3];
                encode_route(&mut got, &r, new, flags, 42);
                assert_eq!(&got[3..], &want[..], "table {table}, new {new}");
            }
        }
    }
}
