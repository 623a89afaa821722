//! The rtnetlink watcher: link and IPv6 route events of the namespace.
//!
//! One `NETLINK_ROUTE` socket joined to the multicast groups RTNLGRP_LINK
//! (interfaces appearing, going up or down, RFC 3549 s.2.3.2.1) and
//! RTNLGRP_IPV6_ROUTE (routes added and deleted, s.2.3.2.3), read with
//! blocking calls on a thread of its own, created in the caller's network
//! namespace, and forwarded in batches over a tokio channel. Only what
//! `follow` uses is forwarded: every link event, and the route events of
//! one table, except the additions of routes with our own protocol (ours:
//! the core already knows them, and a renewal storm would otherwise double
//! the traffic). When the kernel could not queue every event (ENOBUFS:
//! the socket's buffer overflowed), [`KernelEvent::Overflow`] says so, and
//! the shell lists the table again.

use crate::routes::netlink::parse_route_bytes;
use crate::routes::TableRoute;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// RTNLGRP_LINK (linux/rtnetlink.h).
const RTNLGRP_LINK: u32 = 1;
/// RTNLGRP_IPV6_ROUTE (linux/rtnetlink.h).
const RTNLGRP_IPV6_ROUTE: u32 = 11;
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const IFLA_IFNAME: u16 = 3;
const IFF_UP: u32 = 1;
/// The watcher's receive buffer (SO_RCVBUFFORCE as root).
const RCVBUF: libc::c_int = 16 << 20;

/// One event of the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelEvent {
    /// An interface was added or changed (RTM_NEWLINK), or removed
    /// (RTM_DELLINK: `up` false).
    Link {
        /// Its index.
        index: u32,
        /// Its name.
        name: Arc<str>,
        /// Administratively up (IFF_UP).
        up: bool,
    },
    /// An IPv6 route of the watched table was added (RTM_NEWROUTE) or
    /// deleted (RTM_DELROUTE).
    Route {
        /// Added, else deleted.
        new: bool,
        /// The route.
        route: TableRoute,
    },
    /// Events were lost (ENOBUFS): the kernel's state must be read again.
    Overflow,
}

/// The watcher thread and the channel it feeds. Dropping it stops the
/// thread (within its 200 ms receive timeout).
#[derive(Debug)]
pub struct Watcher {
    rx: mpsc::Receiver<Vec<KernelEvent>>,
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

fn setsockopt_int(fd: i32, name: libc::c_int, v: libc::c_int) -> bool {
    // SAFETY: setsockopt with a live c_int and its size.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            name,
            &v as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        ) == 0
    }
}

impl Watcher {
    /// Join the groups in the calling thread's network namespace and start
    /// the thread. Route events are those of `table`; additions of routes
    /// with `protocol` are not forwarded.
    pub fn spawn(table: u32, protocol: u8) -> std::io::Result<Watcher> {
        use std::os::fd::AsRawFd;
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.add_membership(RTNLGRP_LINK)?;
        socket.add_membership(RTNLGRP_IPV6_ROUTE)?;
        let fd = socket.as_raw_fd();
        if !setsockopt_int(fd, libc::SO_RCVBUFFORCE, RCVBUF) {
            setsockopt_int(fd, libc::SO_RCVBUF, RCVBUF);
        }
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 200_000,
        };
        // SAFETY: setsockopt with a live timeval and its size.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &tv as *const libc::timeval as *const libc::c_void,
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            );
        }
        let (tx, rx) = mpsc::channel(256);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("pdrestore-watch".into())
            .spawn(move || read_loop(socket, tx, flag, table, protocol))?;
        Ok(Watcher {
            rx,
            stop,
            handle: Some(handle),
        })
    }

    /// The next batch of events; `None` when the thread has ended.
    pub async fn recv(&mut self) -> Option<Vec<KernelEvent>> {
        self.rx.recv().await
    }

    /// A batch of events, if one is queued.
    pub fn try_recv(&mut self) -> Option<Vec<KernelEvent>> {
        self.rx.try_recv().ok()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.rx.close();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn read_loop(
    socket: Socket,
    tx: mpsc::Sender<Vec<KernelEvent>>,
    stop: Arc<AtomicBool>,
    table: u32,
    protocol: u8,
) {
    let mut buf = vec![0u8; 1 << 20];
    let names = BTreeMap::new();
    while !stop.load(Ordering::Relaxed) {
        let n = match socket.recv(&mut &mut buf[..], 0) {
            Ok(n) => n.min(buf.len()),
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                if tx.blocking_send(vec![KernelEvent::Overflow]).is_err() {
                    return;
                }
                continue;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(e) => {
                tracing::warn!(error = %e, "rtnetlink watcher: receive failed; stopping");
                return;
            }
        };
        let events = parse_events(&buf[..n], table, protocol, &names);
        if !events.is_empty() && tx.blocking_send(events).is_err() {
            return;
        }
    }
}

/// The events of one datagram of notifications (several netlink messages).
pub fn parse_events(
    mut b: &[u8],
    table: u32,
    protocol: u8,
    names: &BTreeMap<u32, Arc<str>>,
) -> Vec<KernelEvent> {
    let mut out = Vec::new();
    while b.len() >= 16 {
        let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if len < 16 || len > b.len() {
            break;
        }
        let kind = u16::from_ne_bytes([b[4], b[5]]);
        let body = &b[16..len];
        match kind {
            RTM_NEWLINK | RTM_DELLINK => {
                if let Some(mut e) = parse_link(body) {
                    if kind == RTM_DELLINK {
                        if let KernelEvent::Link { up, .. } = &mut e {
                            *up = false;
                        }
                    }
                    out.push(e);
                }
            }
            RTM_NEWROUTE | RTM_DELROUTE => {
                let new = kind == RTM_NEWROUTE;
                // rtm_protocol is octet 5 of the rtmsg.
                if new && body.get(5) == Some(&protocol) {
                    // One of ours: the core knows it.
                } else if let Some(route) = parse_route_bytes(body, names) {
                    if route.table == table {
                        out.push(KernelEvent::Route { new, route });
                    }
                }
            }
            _ => {}
        }
        b = &b[((len + 3) & !3).min(b.len())..];
    }
    out
}

/// An ifinfomsg and its attributes: index, flags, name.
fn parse_link(body: &[u8]) -> Option<KernelEvent> {
    let hdr = body.get(..16)?;
    let index = u32::from_ne_bytes(hdr[4..8].try_into().ok()?);
    let flags = u32::from_ne_bytes(hdr[8..12].try_into().ok()?);
    let mut rest = &body[16..];
    let mut name = None;
    while rest.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([rest[0], rest[1]]));
        let attr = u16::from_ne_bytes([rest[2], rest[3]]) & 0x3fff;
        if len < 4 || len > rest.len() {
            break;
        }
        if attr == IFLA_IFNAME {
            let v = &rest[4..len];
            let v = v.split(|&c| c == 0).next().unwrap_or(v);
            name = std::str::from_utf8(v).ok().map(Arc::<str>::from);
        }
        rest = &rest[((len + 3) & !3).min(rest.len())..];
    }
    Some(KernelEvent::Link {
        index,
        name: name?,
        up: flags & IFF_UP != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nlmsg(kind: u16, body: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
        v.extend_from_slice(&kind.to_ne_bytes());
        v.extend_from_slice(&[0; 10]);
        v.extend_from_slice(body);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    fn link_body(index: u32, flags: u32, name: &str) -> Vec<u8> {
        let mut v = vec![0u8; 4];
        v.extend_from_slice(&index.to_ne_bytes());
        v.extend_from_slice(&flags.to_ne_bytes());
        v.extend_from_slice(&0u32.to_ne_bytes());
        let mut n = name.as_bytes().to_vec();
        n.push(0);
        v.extend_from_slice(&((4 + n.len()) as u16).to_ne_bytes());
        v.extend_from_slice(&IFLA_IFNAME.to_ne_bytes());
        v.extend_from_slice(&n);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    fn route_body(protocol: u8, table: u8) -> Vec<u8> {
        let mut v = vec![libc::AF_INET6 as u8, 56, 0, 0, table, protocol, 0, 1];
        v.extend_from_slice(&0u32.to_ne_bytes());
        let mut attr = |kind: u16, val: &[u8]| {
            v.extend_from_slice(&((4 + val.len()) as u16).to_ne_bytes());
            v.extend_from_slice(&kind.to_ne_bytes());
            v.extend_from_slice(val);
        };
        attr(
            1,
            &"2001:db8:8000:100::"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
        );
        attr(
            5,
            &"fe80::2".parse::<std::net::Ipv6Addr>().unwrap().octets(),
        );
        attr(4, &7u32.to_ne_bytes());
        attr(6, &1024u32.to_ne_bytes());
        v
    }

    #[test]
    fn links_and_routes_are_read_ours_added_are_skipped() {
        let mut d = nlmsg(RTM_NEWLINK, &link_body(7, IFF_UP | 0x40, "cust0"));
        d.extend(nlmsg(RTM_DELLINK, &link_body(8, IFF_UP, "cust1")));
        d.extend(nlmsg(RTM_NEWROUTE, &route_body(57, 254)));
        d.extend(nlmsg(RTM_DELROUTE, &route_body(57, 254)));
        d.extend(nlmsg(RTM_NEWROUTE, &route_body(4, 254)));
        d.extend(nlmsg(RTM_DELROUTE, &route_body(57, 100)));
        d.extend(nlmsg(3, &[]));
        let ev = parse_events(&d, 254, 57, &BTreeMap::new());
        assert_eq!(ev.len(), 4, "{ev:?}");
        assert_eq!(
            ev[0],
            KernelEvent::Link {
                index: 7,
                name: "cust0".into(),
                up: true
            }
        );
        assert!(matches!(
            &ev[1],
            KernelEvent::Link {
                index: 8,
                up: false,
                ..
            }
        ));
        assert!(
            matches!(&ev[2], KernelEvent::Route { new: false, route } if route.protocol == 57 && route.ifindex == 7)
        );
        assert!(matches!(&ev[3], KernelEvent::Route { new: true, route } if route.protocol == 4));
        // Truncated input is no panic.
        for cut in 0..d.len() {
            let _ = parse_events(&d[..cut], 254, 57, &BTreeMap::new());
        }
    }
}
