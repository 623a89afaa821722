//! The capture socket: one `AF_PACKET` socket per interface, seeing the
//! DHCPv6 traffic that interface sends and receives.
//!
//! # How it is opened
//! - `socket(AF_PACKET, SOCK_DGRAM, 0)`: `SOCK_DGRAM`, so that each packet
//!   is delivered from its network (IPv6) header, whatever the link layer;
//!   protocol 0, so that nothing is queued before the filter is attached.
//! - A classic BPF filter ([`FILTER`]) is attached (`SO_ATTACH_FILTER`).
//! - `SO_RCVBUFFORCE` (with CAP_NET_ADMIN), else `SO_RCVBUF`, enlarges the
//!   receive buffer so that a burst of replies is queued, not dropped.
//! - `bind` with a `sockaddr_ll` for `ETH_P_ALL` on the interface index.
//!   `ETH_P_ALL`, not `ETH_P_IPV6`: the kernel hands outgoing packets only
//!   to taps registered for every protocol (`dev_queue_xmit_nit` walks
//!   `ptype_all`), and the REPLYs this router sends are what matters most.
//!   The filter keeps IPv6 only (it checks the frame's protocol).
//!
//! The direction of each packet is `sll_pkttype` of the address `recvfrom`
//! fills in: `PACKET_OUTGOING` is [`Direction::Outgoing`]; `PACKET_HOST`,
//! `PACKET_BROADCAST`, `PACKET_MULTICAST` and `PACKET_OTHERHOST` are
//! [`Direction::Incoming`]; `PACKET_LOOPBACK` (this host's own multicast
//! looped back to it, a second copy of an outgoing packet) is dropped and
//! counted ([`CaptureStats::looped`]).
//!
//! Opening needs CAP_NET_RAW; without it [`CaptureSocket::open`] fails with
//! [`CaptureError::Permission`], which says so.
//!
//! # The filter
//! It accepts IPv6 packets whose Next Header field (offset 6 of the IPv6
//! header: the socket is `SOCK_DGRAM`, so offsets count from the IPv6
//! header for both directions) is UDP (17) and whose UDP source or
//! destination port (offsets 40 and 42) is 546 or 547, truncated to
//! [`SNAP_LEN`] octets; it drops everything else in the kernel.
//!
//! A packet with extension headers before its UDP header is not matched (its
//! Next Header is not 17): it is dropped unseen. That does not matter for
//! DHCPv6: clients, relays and servers send plain UDP on the link (RFC 8415
//! has no use for extension headers, and a hop-by-hop or destination option
//! on a link-local exchange would be unusual), and a fragmented DHCPv6
//! message (Fragment header) could not be used anyway, since the parser
//! does not reassemble ([`super::IgnoreReason::Fragment`]). The parser itself
//! does walk extension headers, for packets that reach it some other way.
//!
//! # Reading
//! The socket is non-blocking and registered with tokio ([`AsyncFd`]).
//! [`CaptureSocket::recv`] waits for one packet; [`CaptureSocket::recv_batch`]
//! waits for the socket to become readable and then reads until it would
//! block or a budget of packets is reached, so that a busy router handles
//! many packets per wake-up (see also [`super::PacketBudget`]).

use super::Direction;
use crate::proto::{CLIENT_PORT, SERVER_PORT};
use std::ffi::CString;
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// The longest packet the filter passes whole; longer ones are cut to this
/// (and then fail to parse, as truncated, and are counted as errors).
///
/// DHCPv6 messages are sent unfragmented up to the link MTU (RFC 8415 s.7.6
/// lets them be as large as IPv6 allows, but relays and servers on a link
/// stay within its MTU). 9216 octets holds a whole packet on a jumbo-frame
/// link (MTU 9000, and the largest MTU common switches support), so no real
/// DHCPv6 packet is cut; a 1500-octet link costs nothing more, since the
/// kernel queues each packet at its own size.
pub const SNAP_LEN: usize = 9216;

/// The receive buffer asked for by [`CaptureSocket::open`]: 4 MiB, some
/// thousands of queued DHCPv6 packets (each costs its size plus an skb of
/// overhead, under 1 KiB for a typical REPLY).
pub const DEFAULT_RCVBUF: usize = 4 << 20;

// Classic BPF opcodes (linux/bpf_common.h).
const BPF_LD_B_ABS: u16 = 0x30;
const BPF_LD_H_ABS: u16 = 0x28;
const BPF_ALU_AND_K: u16 = 0x54;
const BPF_JEQ_K: u16 = 0x15;
const BPF_RET_K: u16 = 0x06;
/// SKF_AD_OFF + SKF_AD_PROTOCOL (linux/filter.h): loads skb->protocol.
const SKF_AD_PROTOCOL: u32 = (-0x1000i32) as u32;

const fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

const fn jeq(k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: BPF_JEQ_K,
        jt,
        jf,
        k,
    }
}

/// The classic BPF program attached to every capture socket. A jump's `jt`
/// and `jf` count the instructions skipped after it; `DROP` is instruction
/// 13, `ACCEPT` instruction 14.
#[rustfmt::skip]
pub const FILTER: [libc::sock_filter; 15] = [
    /*  0 */ stmt(BPF_LD_H_ABS, SKF_AD_PROTOCOL),      // A = frame protocol
    /*  1 */ jeq(libc::ETH_P_IPV6 as u32, 0, 11),       // IPv6, else DROP
    /*  2 */ stmt(BPF_LD_B_ABS, 0),                     // A = version and traffic class
    /*  3 */ stmt(BPF_ALU_AND_K, 0xf0),                 // A = version << 4
    /*  4 */ jeq(0x60, 0, 8),                           // version 6, else DROP
    /*  5 */ stmt(BPF_LD_B_ABS, 6),                     // A = Next Header
    /*  6 */ jeq(17, 0, 6),                             // UDP, else DROP
    /*  7 */ stmt(BPF_LD_H_ABS, 40),                    // A = UDP source port
    /*  8 */ jeq(CLIENT_PORT as u32, 5, 0),             // ACCEPT
    /*  9 */ jeq(SERVER_PORT as u32, 4, 0),             // ACCEPT
    /* 10 */ stmt(BPF_LD_H_ABS, 42),                    // A = UDP destination port
    /* 11 */ jeq(CLIENT_PORT as u32, 2, 0),             // ACCEPT
    /* 12 */ jeq(SERVER_PORT as u32, 1, 0),             // ACCEPT
    /* 13 */ stmt(BPF_RET_K, 0),                        // DROP
    /* 14 */ stmt(BPF_RET_K, SNAP_LEN as u32),          // ACCEPT, cut to SNAP_LEN
];

/// Errors opening a capture socket.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The process lacks CAP_NET_RAW.
    #[error(
        "opening a packet socket on {interface} (interface index {ifindex}) needs CAP_NET_RAW \
         (run as root, or grant the capability): {source}"
    )]
    Permission {
        /// The interface's name (`index N` when it has none now).
        interface: String,
        /// The interface index.
        ifindex: u32,
        /// The error (EPERM or EACCES).
        source: io::Error,
    },
    /// No interface has that name.
    #[error("no network interface named {0:?}")]
    NoSuchInterface(String),
    /// Another system call failed.
    #[error("{what} on {interface} (interface index {ifindex}): {source}")]
    Os {
        /// What was attempted.
        what: &'static str,
        /// The interface's name (`index N` when it has none now).
        interface: String,
        /// The interface index.
        ifindex: u32,
        /// The error.
        source: io::Error,
    },
}

/// The name of interface `ifindex` now (`if_indextoname`), or `index N`.
fn interface_name(ifindex: u32) -> String {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: `buf` has the IF_NAMESIZE octets the call may write; the
    // result is NULL or a pointer into `buf`, NUL-terminated.
    let p = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr()) };
    if p.is_null() {
        return format!("index {ifindex}");
    }
    // SAFETY: on success `buf` holds a NUL-terminated name.
    unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// Counters kept by a [`CaptureSocket`] (since it was opened).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaptureStats {
    /// Packets delivered to the caller.
    pub received: u64,
    /// Of those, packets longer than the caller's buffer (cut to it).
    pub truncated: u64,
    /// `PACKET_LOOPBACK` copies dropped.
    pub looped: u64,
}

/// A capture socket on one interface. See the [module documentation](self).
#[derive(Debug)]
pub struct CaptureSocket {
    fd: AsyncFd<OwnedFd>,
    ifindex: u32,
    rcvbuf: usize,
    stats: CaptureStats,
}

fn last_error() -> io::Error {
    io::Error::last_os_error()
}

fn setsockopt<T>(fd: RawFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` points to a live, initialised T of the size passed;
    // the kernel only reads it during the call.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (value as *const T).cast(),
            mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(last_error())
    }
}

fn getsockopt<T: Copy>(fd: RawFd, level: libc::c_int, name: libc::c_int, init: T) -> io::Result<T> {
    let mut value = init;
    let mut len = mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: `value` is a live T and `len` its size; the kernel writes at
    // most `len` octets into it and updates `len`.
    let r = unsafe { libc::getsockopt(fd, level, name, (&mut value as *mut T).cast(), &mut len) };
    if r == 0 {
        Ok(value)
    } else {
        Err(last_error())
    }
}

impl CaptureSocket {
    /// Open a capture socket on the interface with index `ifindex`, with a
    /// receive buffer of [`DEFAULT_RCVBUF`]. Must be called inside a tokio
    /// runtime (the socket is registered with its reactor), and in the
    /// network namespace of the interface.
    pub fn open(ifindex: u32) -> Result<Self, CaptureError> {
        Self::open_with(ifindex, DEFAULT_RCVBUF)
    }

    /// Open a capture socket on the interface named `name`.
    pub fn open_by_name(name: &str) -> Result<Self, CaptureError> {
        let cname =
            CString::new(name).map_err(|_| CaptureError::NoSuchInterface(name.to_string()))?;
        // SAFETY: `cname` is a valid NUL-terminated string for the call.
        let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
        if ifindex == 0 {
            return Err(CaptureError::NoSuchInterface(name.to_string()));
        }
        Self::open(ifindex)
    }

    /// Open a capture socket on `ifindex` asking for a receive buffer of
    /// `rcvbuf` octets (`SO_RCVBUFFORCE`, else `SO_RCVBUF`, which the kernel
    /// caps at `net.core.rmem_max`; see [`CaptureSocket::rcvbuf`]).
    pub fn open_with(ifindex: u32, rcvbuf: usize) -> Result<Self, CaptureError> {
        let os = |what| {
            move |source| CaptureError::Os {
                what,
                interface: interface_name(ifindex),
                ifindex,
                source,
            }
        };
        // SAFETY: plain system call; the result is checked.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        };
        if raw < 0 {
            let e = last_error();
            return Err(match e.raw_os_error() {
                Some(libc::EPERM) | Some(libc::EACCES) => CaptureError::Permission {
                    interface: interface_name(ifindex),
                    ifindex,
                    source: e,
                },
                _ => os("opening an AF_PACKET socket")(e),
            });
        }
        // SAFETY: `raw` is a socket just opened here and owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };

        // A local copy: the kernel copies the program in during the call.
        let mut filter = FILTER;
        let prog = libc::sock_fprog {
            len: filter.len() as libc::c_ushort,
            filter: filter.as_mut_ptr(),
        };
        setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            &prog,
        )
        .map_err(os("attaching the BPF filter"))?;

        let want = libc::c_int::try_from(rcvbuf).unwrap_or(libc::c_int::MAX);
        if setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            &want,
        )
        .is_err()
        {
            setsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, &want)
                .map_err(os("setting SO_RCVBUF"))?;
        }
        let got: libc::c_int = getsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, 0)
            .map_err(os("reading SO_RCVBUF"))?;

        // SAFETY: sockaddr_ll is plain old data; all zeroes is a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as libc::c_ushort;
        sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        sll.sll_ifindex = libc::c_int::try_from(ifindex).map_err(|_| {
            os("binding to the interface")(io::Error::from_raw_os_error(libc::ENODEV))
        })?;
        // SAFETY: `sll` is a valid sockaddr_ll and the length passed is its size.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(os("binding to the interface")(last_error()));
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(os("registering with the tokio reactor (no runtime)")(
                io::Error::other("CaptureSocket::open called outside a tokio runtime"),
            ));
        }
        // SAFETY: the OwnedFd is moved into the AsyncFd, which owns it until
        // it is dropped; an OwnedFd's as_raw_fd is always the same open
        // descriptor.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
            .map_err(|e| os("registering with the tokio reactor")(e.into_parts().1))?;
        Ok(CaptureSocket {
            fd,
            ifindex,
            rcvbuf: usize::try_from(got).unwrap_or(0),
            stats: CaptureStats::default(),
        })
    }

    /// The interface index the socket is bound to.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The receive buffer the kernel granted (SO_RCVBUF as read back: the
    /// kernel doubles the value asked for, to allow for its overhead).
    pub fn rcvbuf(&self) -> usize {
        self.rcvbuf
    }

    /// The counters kept by this socket.
    pub fn stats(&self) -> CaptureStats {
        self.stats
    }

    /// The kernel's counters since the last call (`PACKET_STATISTICS`, which
    /// resets them): packets that passed the filter, and of those, packets
    /// dropped because the receive buffer was full.
    pub fn kernel_stats(&self) -> io::Result<(u32, u32)> {
        let init = libc::tpacket_stats {
            tp_packets: 0,
            tp_drops: 0,
        };
        let s = getsockopt(
            self.fd.get_ref().as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            init,
        )?;
        Ok((s.tp_packets, s.tp_drops))
    }

    /// Read one packet now, if one is queued: `Ok(None)` when none is.
    pub fn try_recv(&mut self, buf: &mut [u8]) -> io::Result<Option<(usize, Direction)>> {
        match recv_one(self.fd.get_ref().as_raw_fd(), buf, &mut self.stats) {
            Ok(r) => Ok(Some(r)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Wait for one packet and copy it into `buf` (from its IPv6 header;
    /// cut to `buf.len()` if longer: give a buffer of [`SNAP_LEN`]). Returns
    /// the length copied and the direction.
    pub async fn recv(&mut self, buf: &mut [u8]) -> io::Result<(usize, Direction)> {
        loop {
            let mut guard = self.fd.readable().await?;
            let raw = guard.get_inner().as_raw_fd();
            match recv_one(raw, buf, &mut self.stats) {
                Ok(r) => return Ok(r),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => guard.clear_ready(),
                Err(e) => return Err(e),
            }
        }
    }

    /// Wait until at least one packet is queued, then read packets into
    /// `buf` until none is left or `max` (at least 1) have been read,
    /// calling `each(packet, direction)` for every one. Returns how many were
    /// read. When `max` is reached first the socket stays readable, so the
    /// next call returns at once.
    pub async fn recv_batch<F>(
        &mut self,
        buf: &mut [u8],
        max: usize,
        mut each: F,
    ) -> io::Result<usize>
    where
        F: FnMut(&[u8], Direction),
    {
        let max = max.max(1);
        loop {
            let mut guard = self.fd.readable().await?;
            let raw = guard.get_inner().as_raw_fd();
            let mut n = 0;
            while n < max {
                match recv_one(raw, buf, &mut self.stats) {
                    Ok((len, dir)) => {
                        each(&buf[..len], dir);
                        n += 1;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        guard.clear_ready();
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
            if n > 0 {
                return Ok(n);
            }
        }
    }
}

/// Read one packet that is not a `PACKET_LOOPBACK` copy; `WouldBlock` when
/// none is queued.
fn recv_one(fd: RawFd, buf: &mut [u8], stats: &mut CaptureStats) -> io::Result<(usize, Direction)> {
    loop {
        // SAFETY: sockaddr_ll is plain old data; all zeroes is a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { mem::zeroed() };
        let mut sll_len = mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: `buf` is valid for writes of `buf.len()` octets and `sll`
        // for `sll_len`; the kernel writes no more than that. MSG_TRUNC makes
        // it return the packet's whole length even when `buf` is shorter.
        let n = unsafe {
            libc::recvfrom(
                fd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_TRUNC | libc::MSG_DONTWAIT,
                (&mut sll as *mut libc::sockaddr_ll).cast(),
                &mut sll_len,
            )
        };
        if n < 0 {
            let e = last_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        let whole = n as usize;
        let dir = match sll.sll_pkttype {
            libc::PACKET_OUTGOING => Direction::Outgoing,
            libc::PACKET_LOOPBACK => {
                stats.looped += 1;
                continue;
            }
            _ => Direction::Incoming,
        };
        stats.received += 1;
        if whole > buf.len() {
            stats.truncated += 1;
        }
        return Ok((whole.min(buf.len()), dir));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run the classic BPF program over `packet` (as the kernel would, with
    /// `protocol` as skb->protocol): the number of octets kept.
    fn run(packet: &[u8], protocol: u16) -> u32 {
        let mut a: u32 = 0;
        let mut pc = 0;
        loop {
            let ins = FILTER[pc];
            pc += 1;
            match ins.code {
                BPF_LD_H_ABS if ins.k == SKF_AD_PROTOCOL => a = u32::from(protocol),
                BPF_LD_H_ABS => {
                    let k = ins.k as usize;
                    match packet.get(k..k + 2) {
                        Some(b) => a = u32::from(u16::from_be_bytes([b[0], b[1]])),
                        None => return 0,
                    }
                }
                BPF_LD_B_ABS => match packet.get(ins.k as usize) {
                    Some(&b) => a = u32::from(b),
                    None => return 0,
                },
                BPF_ALU_AND_K => a &= ins.k,
                BPF_JEQ_K => {
                    pc += usize::from(if a == ins.k { ins.jt } else { ins.jf });
                }
                BPF_RET_K => return ins.k,
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    fn packet(next_header: u8, sport: u16, dport: u16) -> Vec<u8> {
        let mut p = vec![0u8; 48];
        p[0] = 0x60;
        p[6] = next_header;
        p[40..42].copy_from_slice(&sport.to_be_bytes());
        p[42..44].copy_from_slice(&dport.to_be_bytes());
        p
    }

    #[test]
    fn filter_accepts_dhcpv6_ports_only() {
        let ipv6 = libc::ETH_P_IPV6 as u16;
        let snap = SNAP_LEN as u32;
        assert_eq!(run(&packet(17, 547, 546), ipv6), snap);
        assert_eq!(run(&packet(17, 546, 547), ipv6), snap);
        assert_eq!(run(&packet(17, 547, 547), ipv6), snap);
        assert_eq!(run(&packet(17, 40000, 547), ipv6), snap);
        assert_eq!(run(&packet(17, 546, 40000), ipv6), snap);
        assert_eq!(run(&packet(17, 40000, 40001), ipv6), 0);
        assert_eq!(run(&packet(6, 546, 547), ipv6), 0);
        // A hop-by-hop header (0) before UDP: not matched (see the module docs).
        assert_eq!(run(&packet(0, 546, 547), ipv6), 0);
        // Not IPv6 by protocol, or by version.
        assert_eq!(run(&packet(17, 546, 547), 0x0800), 0);
        let mut v4 = packet(17, 546, 547);
        v4[0] = 0x45;
        assert_eq!(run(&v4, ipv6), 0);
        // Too short to hold the ports.
        assert_eq!(run(&packet(17, 546, 547)[..41], ipv6), 0);
        assert_eq!(run(&[], ipv6), 0);
    }

    #[test]
    fn filter_jumps_stay_inside_the_program() {
        for (i, ins) in FILTER.iter().enumerate() {
            if ins.code == BPF_JEQ_K {
                assert!(i + 1 + usize::from(ins.jt) < FILTER.len());
                assert!(i + 1 + usize::from(ins.jf) < FILTER.len());
            }
        }
        assert_eq!(FILTER[13].code, BPF_RET_K);
        assert_eq!(FILTER[13].k, 0);
        assert_eq!(FILTER[14].k, SNAP_LEN as u32);
    }

    #[test]
    fn permission_errors_name_the_capability() {
        let e = CaptureError::Permission {
            interface: interface_name(1),
            ifindex: 1,
            source: io::Error::from_raw_os_error(libc::EPERM),
        };
        let text = e.to_string();
        assert!(text.contains("CAP_NET_RAW"), "{text}");
        // Index 1 is the loopback interface of every namespace.
        assert!(text.contains("on lo (interface index 1)"), "{text}");
        assert_eq!(interface_name(u32::MAX), format!("index {}", u32::MAX));
    }

    #[test]
    fn unknown_interface_names_are_reported() {
        match CaptureSocket::open_by_name("pdr-no-such-if0") {
            Err(CaptureError::NoSuchInterface(n)) => assert_eq!(n, "pdr-no-such-if0"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            CaptureSocket::open_by_name("bad\0name"),
            Err(CaptureError::NoSuchInterface(_))
        ));
    }
}
