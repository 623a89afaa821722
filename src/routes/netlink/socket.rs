//! One blocking rtnetlink socket and its buffers: the requests of a
//! [`super::NetlinkTable`]'s worker thread, written and read through
//! [`super::wire`].

use super::wire::{self, flags, Dump, Message, Messages, NLMSG_DONE, NLMSG_ERROR};
use super::{Link, BATCH_BYTES};
use crate::routes::{errno, Change, Interface, Route, RouteError, TableError, TableRoute};
use ipnet::Ipv6Net;
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use nix::sys::socket::{setsockopt, sockopt};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::os::fd::AsFd;
use std::sync::Arc;

/// Enlarge `fd`'s receive buffer to `size`: `SO_RCVBUFFORCE` (root: past
/// `net.core.rmem_max`), else `SO_RCVBUF` (capped by the sysctl). Best
/// effort: a smaller buffer still works, it overflows sooner.
pub(crate) fn grow_receive_buffer(fd: &impl AsFd, size: usize) {
    if setsockopt(fd, sockopt::RcvBufForce, &size).is_err() {
        let _ = setsockopt(fd, sockopt::RcvBuf, &size);
    }
}

/// Enlarge `fd`'s send buffer to `size` (`SO_SNDBUFFORCE`, else `SO_SNDBUF`).
pub(crate) fn grow_send_buffer(fd: &impl AsFd, size: usize) {
    if setsockopt(fd, sockopt::SndBufForce, &size).is_err() {
        let _ = setsockopt(fd, sockopt::SndBuf, &size);
    }
}

pub(super) fn io_err(what: &'static str, source: std::io::Error) -> TableError {
    TableError::Io { what, source }
}

/// One rtnetlink socket and its buffers, used from one thread with
/// blocking calls: the worker thread of a [`super::NetlinkTable`] owns one.
pub(super) struct NetlinkSocket {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
    rx: Vec<u8>,
}

impl NetlinkSocket {
    /// Open a route socket in the calling thread's network namespace.
    pub(super) fn open() -> Result<Self, TableError> {
        let s = Self::with_buffer(1 << 20)?;
        // Errors of a failing batch must fit in the receive buffer; FORCE works as root.
        grow_receive_buffer(&s.socket, 8 << 20);
        grow_send_buffer(&s.socket, 4 * BATCH_BYTES);
        let _ = s.socket.set_cap_ack(true);
        let _ = s.socket.set_ext_ack(true);
        Ok(s)
    }

    /// A socket with a receive buffer of `rx` octets.
    fn with_buffer(rx: usize) -> Result<Self, TableError> {
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(|e| io_err("socket", e))?;
        socket.bind_auto().map_err(|e| io_err("bind", e))?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(|e| io_err("connect", e))?;
        Ok(NetlinkSocket {
            socket,
            seq: 0,
            buf: Vec::with_capacity(BATCH_BYTES + 4096),
            rx: vec![0; rx],
        })
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Send the dump request `what`; its sequence number.
    fn dump(&mut self, what: Dump) -> Result<u32, TableError> {
        self.buf.clear();
        let seq = self.next_seq();
        wire::encode_dump(&mut self.buf, what, seq);
        self.send_buf()?;
        Ok(seq)
    }

    /// Receive until the message with sequence `last` is answered (done or
    /// error), handing each message to `each`. A message that does not
    /// decode ends the call with [`TableError::Wire`].
    fn receive(
        &mut self,
        last: u32,
        mut each: impl FnMut(&Message<'_>) -> Result<(), TableError>,
    ) -> Result<(), TableError> {
        loop {
            let n = loop {
                match self.socket.recv(&mut &mut self.rx[..], 0) {
                    Ok(n) => break n.min(self.rx.len()),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(io_err("recv", e)),
                }
            };
            for msg in Messages::new(&self.rx[..n]) {
                let msg = msg?;
                each(&msg)?;
                if msg.seq == last && (msg.kind == NLMSG_DONE || msg.kind == NLMSG_ERROR) {
                    return Ok(());
                }
            }
        }
    }

    /// The end of a dump: an error answer, or a dump that failed part way.
    fn dump_failed(msg: &Message<'_>, what: &'static str) -> Result<(), TableError> {
        if msg.kind == NLMSG_ERROR || msg.kind == NLMSG_DONE {
            let code = msg.error_code()?;
            if code != 0 {
                return Err(TableError::Kernel {
                    what,
                    errno: code.abs(),
                });
            }
        }
        Ok(())
    }

    /// Every IPv6 route of `table`, each handed to `each` as the dump is
    /// read (decoded in place: a big table is never held twice).
    pub(super) fn list_table(
        &mut self,
        table: u32,
        each: &mut dyn FnMut(TableRoute),
    ) -> Result<(), TableError> {
        let names = self.interface_names()?;
        let last = self.dump(Dump::Routes)?;
        self.receive(last, |msg| {
            if msg.kind == libc::RTM_NEWROUTE {
                let route = wire::route(msg, &names)?;
                if route.table == table {
                    each(route);
                }
            }
            Self::dump_failed(msg, "route dump")
        })
    }

    /// Check that this socket may change routes (CAP_NET_ADMIN in the
    /// namespace), without changing any: a delete from a table that
    /// cannot exist (4294967294) of a route no one has (`100::/64`, the
    /// discard-only prefix of RFC 6666, at metric 2^32-1). The kernel
    /// checks the capability before anything else, so EPERM means no
    /// permission, and any other answer (ESRCH) means yes.
    pub(super) fn check_write_access(&mut self) -> Result<(), TableError> {
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
        let seq = self.next_seq();
        // Without the interface (0): RTA_OIF 0 would name no device.
        let f = flags::REQUEST | flags::ACK;
        wire::encode_route(&mut self.buf, &probe, false, f, seq);
        self.send_buf()?;
        let mut answer = 0;
        self.receive(seq, |msg| {
            if msg.kind == NLMSG_ERROR && msg.seq == seq {
                answer = msg.error_code()?.abs();
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

    /// Encode the changes from `start` into the buffer, up to a batch;
    /// where the batch ends.
    fn fill_batch(&mut self, changes: &[Change], start: usize) -> usize {
        self.buf.clear();
        let mut end = start;
        while end < changes.len() && self.buf.len() < BATCH_BYTES {
            let last_of_batch = end + 1 == changes.len() || self.buf.len() + 256 >= BATCH_BYTES;
            let ack = if last_of_batch { flags::ACK } else { 0 };
            let (r, new, how) = match &changes[end] {
                // Create-exclusive: never over another's route.
                Change::Add(r) => (r, true, flags::CREATE | flags::EXCL),
                // Only routes known to be ours are replaced.
                Change::Replace { new: r, .. } => (r, true, flags::CREATE | flags::REPLACE),
                Change::Remove(r) => (r, false, 0),
            };
            let seq = self.next_seq();
            wire::encode_route(&mut self.buf, r, new, flags::REQUEST | how | ack, seq);
            end += 1;
            if last_of_batch {
                break;
            }
        }
        end
    }

    /// Apply changes in batches; returns one error per failed change.
    pub(super) fn apply(&mut self, changes: &[Change]) -> Result<Vec<RouteError>, TableError> {
        let mut errors = Vec::new();
        let mut start = 0;
        while start < changes.len() {
            let first_seq = self.seq.wrapping_add(1);
            let end = self.fill_batch(changes, start);
            let last = self.seq;
            self.send_buf()?;
            let batch = &changes[start..end];
            self.receive(last, |msg| {
                if msg.kind != NLMSG_ERROR {
                    return Ok(());
                }
                let code = msg.error_code()?.abs();
                let idx = msg.seq.wrapping_sub(first_seq) as usize;
                match batch.get(idx) {
                    Some(_) if code == 0 => {}
                    // Already gone: what a delete wants.
                    Some(Change::Remove(_)) if code == errno::ESRCH => {}
                    Some(c) => errors.push(RouteError::from_errno(c.op(), c.route().prefix, code)),
                    None => {}
                }
                Ok(())
            })?;
            start = end;
        }
        Ok(errors)
    }

    fn interface_names(&mut self) -> Result<BTreeMap<u32, Arc<str>>, TableError> {
        Ok(self
            .links()?
            .into_iter()
            .map(|l| (l.index, l.name))
            .collect())
    }

    /// The links of this namespace, with whether each is up (IFF_UP), read
    /// on a second socket (independent of a dump in progress on this one).
    pub(super) fn links(&mut self) -> Result<Vec<Link>, TableError> {
        let mut t = Self::with_buffer(256 * 1024)?;
        let last = t.dump(Dump::Links)?;
        let mut out = Vec::new();
        t.receive(last, |msg| {
            if msg.kind == libc::RTM_NEWLINK {
                out.push(wire::link(msg)?);
            }
            Self::dump_failed(msg, "link dump")
        })?;
        Ok(out)
    }

    /// The interfaces of this namespace with their IPv6 addresses (decoded
    /// by netlink-packet-route: read once in a while, and nowhere else).
    pub(super) fn interfaces(&mut self) -> Result<Vec<Interface>, TableError> {
        let mut ifs: BTreeMap<u32, Interface> = self
            .links()?
            .into_iter()
            .map(|l| {
                let i = Interface {
                    name: l.name,
                    index: l.index,
                    addresses: Vec::new(),
                };
                (l.index, i)
            })
            .collect();
        let mut t = Self::with_buffer(256 * 1024)?;
        let last = t.dump(Dump::Addresses)?;
        t.receive(last, |msg| {
            if msg.kind != libc::RTM_NEWADDR {
                return Self::dump_failed(msg, "address dump");
            }
            let a = address(msg)?;
            let addr = a.attributes.iter().find_map(|x| match x {
                AddressAttribute::Address(IpAddr::V6(v)) => Some(*v),
                _ => None,
            });
            if let (Some(addr), Some(i)) = (addr, ifs.get_mut(&a.header.index)) {
                if let Ok(net) = Ipv6Net::new(addr, a.header.prefix_len) {
                    i.addresses.push(net);
                }
            }
            Ok(())
        })?;
        Ok(ifs.into_values().collect())
    }
}

/// An `RTM_NEWADDR`, decoded by netlink-packet-route.
fn address(msg: &Message<'_>) -> Result<netlink_packet_route::address::AddressMessage, TableError> {
    use netlink_packet_core::{NetlinkDeserializable, NetlinkHeader};
    let mut header = NetlinkHeader::default();
    header.message_type = msg.kind;
    match RouteNetlinkMessage::deserialize(&header, msg.body) {
        Ok(RouteNetlinkMessage::NewAddress(a)) => Ok(a),
        Ok(other) => Err(TableError::Malformed(format!(
            "address dump: {other:?} at offset {}",
            msg.offset
        ))),
        Err(e) => Err(TableError::Malformed(format!(
            "address at offset {}: {e}",
            msg.offset
        ))),
    }
}
