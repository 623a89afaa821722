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
//!
//! Messages are decoded by [`crate::routes::netlink::wire`], strictly: one
//! that does not decode is logged at WARN with the decoder's error, counted
//! ([`Watcher::malformed`]) and followed by [`KernelEvent::Overflow`], since
//! it may have been a change the follower needed.

use crate::routes::netlink::wire::{self, Message, Messages, WireError};
use crate::routes::netlink::{grow_receive_buffer, Link};
use crate::routes::TableRoute;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket};
use nix::sys::socket::{setsockopt, sockopt};
use nix::sys::time::TimeVal;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// The watcher's receive buffer (SO_RCVBUFFORCE as root).
const RCVBUF: usize = 16 << 20;

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
    /// Events were lost: the kernel's state must be read again. The
    /// socket's buffer overflowed (ENOBUFS), or a message did not decode
    /// (it may have been a change; those after a bad message length are
    /// lost with it).
    Overflow,
}

/// The watcher thread and the channel it feeds. Dropping it stops the
/// thread (within its 200 ms receive timeout).
#[derive(Debug)]
pub struct Watcher {
    rx: mpsc::Receiver<Vec<KernelEvent>>,
    stop: Arc<AtomicBool>,
    malformed: Arc<AtomicU64>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Watcher {
    /// Join the groups in the calling thread's network namespace and start
    /// the thread. Route events are those of `table`; additions of routes
    /// with `protocol` are not forwarded.
    pub fn spawn(table: u32, protocol: u8) -> std::io::Result<Watcher> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.add_membership(libc::RTNLGRP_LINK)?;
        socket.add_membership(libc::RTNLGRP_IPV6_ROUTE)?;
        grow_receive_buffer(&socket, RCVBUF);
        // The thread looks at its stop flag this often.
        setsockopt(&socket, sockopt::ReceiveTimeout, &TimeVal::new(0, 200_000))?;
        let (tx, rx) = mpsc::channel(256);
        let stop = Arc::new(AtomicBool::new(false));
        let malformed = Arc::new(AtomicU64::new(0));
        let reader = Reader {
            socket,
            tx,
            stop: stop.clone(),
            malformed: malformed.clone(),
            table,
            protocol,
        };
        let handle = std::thread::Builder::new()
            .name("pdrestore-watch".into())
            .spawn(move || reader.run())?;
        Ok(Watcher {
            rx,
            stop,
            malformed,
            handle: Some(handle),
        })
    }

    /// The messages that did not decode so far (each logged at WARN, and
    /// followed by [`KernelEvent::Overflow`]).
    pub fn malformed(&self) -> u64 {
        self.malformed.load(Ordering::Relaxed)
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

/// The watcher thread's side.
struct Reader {
    socket: Socket,
    tx: mpsc::Sender<Vec<KernelEvent>>,
    stop: Arc<AtomicBool>,
    malformed: Arc<AtomicU64>,
    table: u32,
    protocol: u8,
}

impl Reader {
    fn run(self) {
        let mut buf = vec![0u8; 1 << 20];
        let names = BTreeMap::new();
        while !self.stop.load(Ordering::Relaxed) {
            let n = match self.socket.recv(&mut &mut buf[..], 0) {
                Ok(n) => n.min(buf.len()),
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    if self.tx.blocking_send(vec![KernelEvent::Overflow]).is_err() {
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
            let parsed = parse_events(&buf[..n], self.table, self.protocol, &names);
            for e in &parsed.malformed {
                tracing::warn!(error = %e, "rtnetlink watcher: a message did not decode; reading the kernel's state again");
            }
            self.malformed
                .fetch_add(parsed.malformed.len() as u64, Ordering::Relaxed);
            if !parsed.events.is_empty() && self.tx.blocking_send(parsed.events).is_err() {
                return;
            }
        }
    }
}

/// What one datagram of notifications gave.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// Its events, in order; [`KernelEvent::Overflow`] last when a message
    /// did not decode.
    pub events: Vec<KernelEvent>,
    /// The messages that did not decode, each with what was wrong and where.
    pub malformed: Vec<WireError>,
}

/// The events of one datagram of notifications (several netlink messages):
/// every link event, and the route events of `table` except the additions
/// of routes with `protocol`. Strict: a message that does not decode is
/// reported in [`Parsed::malformed`] and the rest of the datagram is still
/// read (all of it after a bad message length is lost); either way
/// [`KernelEvent::Overflow`] ends the events, since the message may have
/// been a change the follower needed.
pub fn parse_events(
    datagram: &[u8],
    table: u32,
    protocol: u8,
    names: &BTreeMap<u32, Arc<str>>,
) -> Parsed {
    let mut out = Parsed::default();
    for msg in Messages::new(datagram) {
        let event = msg.and_then(|m| event(&m, table, protocol, names));
        match event {
            Ok(Some(e)) => out.events.push(e),
            Ok(None) => {}
            Err(e) => out.malformed.push(e),
        }
    }
    if !out.malformed.is_empty() {
        out.events.push(KernelEvent::Overflow);
    }
    out
}

/// The event of one message, if it is one the follower wants.
fn event(
    m: &Message<'_>,
    table: u32,
    protocol: u8,
    names: &BTreeMap<u32, Arc<str>>,
) -> Result<Option<KernelEvent>, WireError> {
    match m.kind {
        libc::RTM_NEWLINK | libc::RTM_DELLINK => {
            let Link {
                index, name, up, ..
            } = wire::link(m)?;
            // A deleted link is down, whatever its flags said last.
            let up = up && m.kind == libc::RTM_NEWLINK;
            Ok(Some(KernelEvent::Link { index, name, up }))
        }
        libc::RTM_NEWROUTE | libc::RTM_DELROUTE => {
            let new = m.kind == libc::RTM_NEWROUTE;
            if new && wire::route_protocol(m)? == protocol {
                // One of ours: the core knows it.
                return Ok(None);
            }
            let route = wire::route(m, names)?;
            Ok((route.table == table).then_some(KernelEvent::Route { new, route }))
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libc::{IFF_UP, RTM_DELLINK, RTM_DELROUTE, RTM_NEWLINK, RTM_NEWROUTE};

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

    fn link_body(index: u32, flags: i32, name: &str) -> Vec<u8> {
        let mut v = vec![0u8; 4];
        v.extend_from_slice(&index.to_ne_bytes());
        v.extend_from_slice(&(flags as u32).to_ne_bytes());
        v.extend_from_slice(&0u32.to_ne_bytes());
        let mut n = name.as_bytes().to_vec();
        n.push(0);
        v.extend_from_slice(&((4 + n.len()) as u16).to_ne_bytes());
        v.extend_from_slice(&libc::IFLA_IFNAME.to_ne_bytes());
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
        let ip = |s: &str| s.parse::<std::net::Ipv6Addr>().unwrap().octets();
        attr(libc::RTA_DST, &ip("2001:db8:8000:100::"));
        attr(libc::RTA_GATEWAY, &ip("fe80::2"));
        attr(libc::RTA_OIF, &7u32.to_ne_bytes());
        attr(libc::RTA_PRIORITY, &1024u32.to_ne_bytes());
        v
    }

    /// One message of every kind the watcher reads, and one it does not.
    fn every_kind() -> Vec<u8> {
        let mut d = nlmsg(RTM_NEWLINK, &link_body(7, IFF_UP | 0x40, "cust0"));
        d.extend(nlmsg(RTM_DELLINK, &link_body(8, IFF_UP, "cust1")));
        d.extend(nlmsg(RTM_NEWROUTE, &route_body(57, 254)));
        d.extend(nlmsg(RTM_DELROUTE, &route_body(57, 254)));
        d.extend(nlmsg(RTM_NEWROUTE, &route_body(4, 254)));
        d.extend(nlmsg(RTM_DELROUTE, &route_body(57, 100)));
        d.extend(nlmsg(libc::NLMSG_DONE as u16, &[0; 4]));
        d
    }

    #[test]
    fn links_and_routes_are_read_ours_added_are_skipped() {
        let p = parse_events(&every_kind(), 254, 57, &BTreeMap::new());
        assert!(p.malformed.is_empty(), "{:?}", p.malformed);
        let ev = p.events;
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
    }

    /// Cut anywhere: no panic, what came before the cut is kept, and a cut
    /// message is counted and followed by Overflow.
    #[test]
    fn truncation_at_every_offset() {
        let d = every_kind();
        let whole = parse_events(&d, 254, 57, &BTreeMap::new()).events;
        let ends: Vec<usize> = Messages::new(&d)
            .map(|m| {
                let m = m.unwrap();
                m.offset + 16 + m.body.len()
            })
            .collect();
        for cut in 0..d.len() {
            let p = parse_events(&d[..cut], 254, 57, &BTreeMap::new());
            if cut == 0 || ends.contains(&cut) {
                assert!(p.malformed.is_empty(), "cut {cut}");
                assert!(whole.starts_with(&p.events), "cut {cut}");
            } else {
                assert_eq!(p.malformed.len(), 1, "cut {cut}");
                assert_eq!(p.events.last(), Some(&KernelEvent::Overflow), "cut {cut}");
                assert!(whole.starts_with(&p.events[..p.events.len() - 1]));
            }
        }
    }

    /// A bad message in the middle: counted, the messages after it still
    /// read (its length is right), Overflow at the end.
    #[test]
    fn a_bad_message_in_the_middle_is_counted_and_the_rest_read() {
        let mut bad_route = route_body(4, 254);
        bad_route[12..14].copy_from_slice(&8u16.to_ne_bytes()); // RTA_DST of 4 octets
        let mut d = nlmsg(RTM_NEWLINK, &link_body(7, IFF_UP, "cust0"));
        let at = d.len();
        d.extend(nlmsg(RTM_NEWROUTE, &bad_route));
        d.extend(nlmsg(RTM_DELLINK, &link_body(8, IFF_UP, "cust1")));
        let p = parse_events(&d, 254, 57, &BTreeMap::new());
        assert_eq!(
            p.malformed,
            [WireError::AttributeSize {
                kind: libc::RTA_DST,
                offset: at + 16 + 12,
                length: 4,
                expected: 16
            }]
        );
        assert_eq!(p.events.len(), 3, "{:?}", p.events);
        assert!(matches!(p.events[1], KernelEvent::Link { index: 8, .. }));
        assert_eq!(p.events[2], KernelEvent::Overflow);
        // A bad message length: the rest cannot be walked.
        d[at..at + 4].copy_from_slice(&9u32.to_ne_bytes());
        let p = parse_events(&d, 254, 57, &BTreeMap::new());
        assert!(matches!(
            p.malformed[..],
            [WireError::MessageLength { length: 9, .. }]
        ));
        assert_eq!(
            p.malformed[0],
            WireError::MessageLength {
                offset: at,
                length: 9,
                available: d.len() - at
            }
        );
        assert_eq!(p.events.len(), 2);
        assert_eq!(p.events[1], KernelEvent::Overflow);
    }

    /// A route of ours with a bad body is still a bad message, not skipped
    /// on its protocol alone (the protocol octet must be there).
    #[test]
    fn a_short_route_message_is_malformed() {
        let d = nlmsg(RTM_NEWROUTE, &[libc::AF_INET6 as u8, 56, 0, 0]);
        let p = parse_events(&d, 254, 57, &BTreeMap::new());
        assert!(matches!(
            p.malformed[..],
            [WireError::Truncated { what: "rtmsg", .. }]
        ));
        assert_eq!(p.events, [KernelEvent::Overflow]);
    }
}
