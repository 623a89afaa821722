//! The rtnetlink wire format: the one place where pdrestore reads and
//! writes netlink bytes (route and link messages).
//!
//! The contract is smoltcp's: every offset is a named range in [`field`];
//! every length is checked before it is used, so no accessor panics after
//! its check and no decoder panics on any input. Decoding is strict: a
//! message that does not decode is a [`WireError`] naming what was wrong
//! and at which offset of the datagram, never a silent stop that would
//! make a cut dump look like a short valid one.
//!
//! - [`Messages`]: the netlink messages of one datagram (the `nlmsghdr`
//!   walk). A bad message length ends the walk with an error: the rest of
//!   the datagram cannot be found.
//! - [`Attributes`]: the `rtattr`s of a message body.
//! - [`route`]: an IPv6 `RTM_NEWROUTE` / `RTM_DELROUTE` as a
//!   [`TableRoute`]; [`link`]: an `RTM_NEWLINK` / `RTM_DELLINK` as a
//!   [`Link`] (index, name, `IFF_UP`). Route dumps, link dumps and the
//!   follow watcher's events all go through these two.
//! - [`encode_route`]: a route request written straight into the batch
//!   buffer (the hot loop of an installation); [`encode_dump`]: a dump
//!   request.
//!
//! Constants are `libc`'s (linux/netlink.h, linux/rtnetlink.h,
//! linux/if_link.h); all fields are in the host's byte order, as the
//! kernel writes them.

use super::Link;
use crate::routes::{Route, TableRoute};
use ipnet::Ipv6Net;
use std::collections::BTreeMap;
use std::net::Ipv6Addr;
use std::sync::Arc;

/// Byte ranges of the kernel's netlink structures.
pub mod field {
    /// A range of octets in a structure.
    pub type Field = core::ops::Range<usize>;

    /// `struct nlmsghdr` (linux/netlink.h): every message starts with it.
    pub mod nlmsghdr {
        use super::Field;
        /// `nlmsg_len`: the message's length, header included.
        pub const LENGTH: Field = 0..4;
        /// `nlmsg_type`.
        pub const TYPE: Field = 4..6;
        /// `nlmsg_flags`.
        pub const FLAGS: Field = 6..8;
        /// `nlmsg_seq`.
        pub const SEQ: Field = 8..12;
        /// `nlmsg_pid`: the sender's port id.
        pub const PORT: Field = 12..16;
        /// The header's size (`NLMSG_HDRLEN`); the body follows.
        pub const SIZE: usize = 16;
    }

    /// `struct nlmsgerr`: the body of `NLMSG_ERROR` (and of an ACK).
    pub mod nlmsgerr {
        use super::Field;
        /// `error`: 0 for an ACK, else a negative errno.
        pub const ERROR: Field = 0..4;
    }

    /// `struct rtmsg` (linux/rtnetlink.h): the head of a route message.
    pub mod rtmsg {
        use super::Field;
        /// `rtm_family`.
        pub const FAMILY: usize = 0;
        /// `rtm_dst_len`: the destination's prefix length.
        pub const DST_LEN: usize = 1;
        /// `rtm_src_len`.
        pub const SRC_LEN: usize = 2;
        /// `rtm_tos`.
        pub const TOS: usize = 3;
        /// `rtm_table` (`RT_TABLE_UNSPEC` beyond 255: see `RTA_TABLE`).
        pub const TABLE: usize = 4;
        /// `rtm_protocol`.
        pub const PROTOCOL: usize = 5;
        /// `rtm_scope`.
        pub const SCOPE: usize = 6;
        /// `rtm_type`.
        pub const TYPE: usize = 7;
        /// `rtm_flags`.
        pub const FLAGS: Field = 8..12;
        /// The structure's size; the attributes follow.
        pub const SIZE: usize = 12;
    }

    /// `struct ifinfomsg` (linux/rtnetlink.h): the head of a link message.
    pub mod ifinfomsg {
        use super::Field;
        /// `ifi_family`.
        pub const FAMILY: usize = 0;
        /// `ifi_type` (ARPHRD_*), after one octet of padding.
        pub const TYPE: Field = 2..4;
        /// `ifi_index`.
        pub const INDEX: Field = 4..8;
        /// `ifi_flags` (IFF_*).
        pub const FLAGS: Field = 8..12;
        /// `ifi_change`.
        pub const CHANGE: Field = 12..16;
        /// The structure's size; the attributes follow.
        pub const SIZE: usize = 16;
    }

    /// `struct ifaddrmsg` (linux/if_addr.h): the head of an address message.
    pub mod ifaddrmsg {
        /// `ifa_family`.
        pub const FAMILY: usize = 0;
        /// The structure's size.
        pub const SIZE: usize = 8;
    }

    /// `struct rtattr`: an attribute's header; the value follows.
    pub mod rtattr {
        use super::Field;
        /// `rta_len`: header and value, without the padding to 4.
        pub const LENGTH: Field = 0..2;
        /// `rta_type` (its top two bits are flags: `NLA_TYPE_MASK`).
        pub const TYPE: Field = 2..4;
        /// The header's size.
        pub const SIZE: usize = 4;
    }

    /// `struct rta_cacheinfo`: the value of `RTA_CACHEINFO`.
    pub mod rta_cacheinfo {
        use super::Field;
        /// `rta_expires`: clock ticks (USER_HZ) until the route expires.
        pub const EXPIRES: Field = 8..12;
        /// The structure's size.
        pub const SIZE: usize = 32;
    }
}

use field::{ifaddrmsg, ifinfomsg, nlmsgerr, nlmsghdr, rta_cacheinfo, rtattr, rtmsg};

/// `RTA_EXPIRES` (linux/rtnetlink.h): `libc` has it for glibc targets only.
pub const RTA_EXPIRES: u16 = 23;

/// USER_HZ: the kernel reports route expiry (RTA_CACHEINFO) in these ticks.
const USER_HZ: u32 = 100;

/// `nlmsg_flags` as the header holds them (`libc` has them as `c_int`).
pub mod flags {
    /// `NLM_F_REQUEST`.
    pub const REQUEST: u16 = libc::NLM_F_REQUEST as u16;
    /// `NLM_F_ACK`.
    pub const ACK: u16 = libc::NLM_F_ACK as u16;
    /// `NLM_F_DUMP`.
    pub const DUMP: u16 = libc::NLM_F_DUMP as u16;
    /// `NLM_F_CREATE`.
    pub const CREATE: u16 = libc::NLM_F_CREATE as u16;
    /// `NLM_F_EXCL`.
    pub const EXCL: u16 = libc::NLM_F_EXCL as u16;
    /// `NLM_F_REPLACE`.
    pub const REPLACE: u16 = libc::NLM_F_REPLACE as u16;
}

/// `NLMSG_ERROR` as `nlmsg_type` holds it.
pub const NLMSG_ERROR: u16 = libc::NLMSG_ERROR as u16;
/// `NLMSG_DONE` as `nlmsg_type` holds it.
pub const NLMSG_DONE: u16 = libc::NLMSG_DONE as u16;

/// What was wrong with a message, and where (offsets count from the start
/// of the datagram).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Fewer octets than a fixed structure needs.
    #[error("{what} at offset {offset}: {available} octets, {needed} needed")]
    Truncated {
        /// The structure (`nlmsghdr`, `rtmsg`, `ifinfomsg`, `nlmsgerr`).
        what: &'static str,
        /// Where it starts.
        offset: usize,
        /// Its size.
        needed: usize,
        /// The octets there were.
        available: usize,
    },
    /// An `nlmsg_len` below a header or past the datagram: the rest of the
    /// datagram cannot be walked.
    #[error("netlink message at offset {offset}: length {length}, {available} octets left")]
    MessageLength {
        /// Where the message starts.
        offset: usize,
        /// Its `nlmsg_len`.
        length: usize,
        /// The octets left in the datagram.
        available: usize,
    },
    /// An `rta_len` below an attribute header or past its message.
    #[error("attribute {kind} at offset {offset}: length {length}, {available} octets left")]
    AttributeLength {
        /// Its type.
        kind: u16,
        /// Where it starts.
        offset: usize,
        /// Its `rta_len`.
        length: usize,
        /// The octets left in the message.
        available: usize,
    },
    /// An attribute value of the wrong size for its type.
    #[error("attribute {kind} at offset {offset}: {length} octets of value, {expected} expected")]
    AttributeSize {
        /// Its type.
        kind: u16,
        /// Where the attribute starts.
        offset: usize,
        /// Its value's size.
        length: usize,
        /// The size its type has (the least, for a structure).
        expected: usize,
    },
    /// A message of another type than the decoder reads.
    #[error("netlink message at offset {offset}: type {kind}, not {expected}")]
    UnexpectedType {
        /// Where the message starts.
        offset: usize,
        /// Its `nlmsg_type`.
        kind: u16,
        /// What the decoder reads.
        expected: &'static str,
    },
    /// A route of another family than IPv6.
    #[error("route at offset {offset}: address family {family}, not AF_INET6")]
    Family {
        /// Where the `rtmsg` starts.
        offset: usize,
        /// Its `rtm_family`.
        family: u8,
    },
    /// A prefix length over 128.
    #[error("route at offset {offset}: prefix length {length}")]
    PrefixLength {
        /// Where the `rtmsg` starts.
        offset: usize,
        /// Its `rtm_dst_len`.
        length: u8,
    },
    /// A link message without `IFLA_IFNAME`.
    #[error("link at offset {offset}: no IFLA_IFNAME")]
    MissingName {
        /// Where the `ifinfomsg` starts.
        offset: usize,
    },
    /// An `IFLA_IFNAME` that is empty or not UTF-8.
    #[error("link at offset {offset}: IFLA_IFNAME is empty or not UTF-8")]
    BadName {
        /// Where the attribute starts.
        offset: usize,
    },
}

impl WireError {
    /// The datagram cannot be walked past this error (a bad `nlmsghdr`):
    /// the messages after it are lost.
    pub fn is_framing(&self) -> bool {
        matches!(
            self,
            WireError::MessageLength { .. }
                | WireError::Truncated {
                    what: "nlmsghdr",
                    ..
                }
        )
    }
}

/// The field at `at`, which the caller has checked lies inside `b`.
fn u16_at(b: &[u8], at: field::Field) -> u16 {
    let mut w = [0; 2];
    w.copy_from_slice(&b[at]);
    u16::from_ne_bytes(w)
}

/// The field at `at`, which the caller has checked lies inside `b`.
fn u32_at(b: &[u8], at: field::Field) -> u32 {
    let mut w = [0; 4];
    w.copy_from_slice(&b[at]);
    u32::from_ne_bytes(w)
}

/// `len` rounded up to the netlink alignment (4: `NLMSG_ALIGN`, `RTA_ALIGN`).
fn align(len: usize) -> usize {
    len.saturating_add(3) & !3
}

fn need(what: &'static str, b: &[u8], offset: usize, needed: usize) -> Result<(), WireError> {
    if b.len() < needed {
        return Err(WireError::Truncated {
            what,
            offset,
            needed,
            available: b.len(),
        });
    }
    Ok(())
}

/// One netlink message of a datagram, its header read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    /// Where its header starts in the datagram.
    pub offset: usize,
    /// `nlmsg_type`.
    pub kind: u16,
    /// `nlmsg_flags`.
    pub flags: u16,
    /// `nlmsg_seq`.
    pub seq: u32,
    /// The body: the octets after the header, up to `nlmsg_len`.
    pub body: &'a [u8],
}

impl Message<'_> {
    /// Where the body starts in the datagram.
    pub fn body_offset(&self) -> usize {
        self.offset + nlmsghdr::SIZE
    }

    /// The `error` of an `NLMSG_ERROR` (0 for an ACK, else a negative
    /// errno), or of an `NLMSG_DONE` (a dump that failed part way).
    pub fn error_code(&self) -> Result<i32, WireError> {
        need(
            "nlmsgerr",
            self.body,
            self.body_offset(),
            nlmsgerr::ERROR.end,
        )?;
        Ok(u32_at(self.body, nlmsgerr::ERROR) as i32)
    }
}

/// The messages of a datagram, in order. A message whose length is wrong
/// is an error and the last item: what follows it cannot be found.
#[derive(Debug, Clone)]
pub struct Messages<'a> {
    datagram: &'a [u8],
    offset: usize,
}

impl<'a> Messages<'a> {
    /// Walk `datagram`.
    pub fn new(datagram: &'a [u8]) -> Self {
        Messages {
            datagram,
            offset: 0,
        }
    }
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<Message<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        let at = self.offset;
        let rest = self.datagram.get(at..).filter(|r| !r.is_empty())?;
        // Whatever happens next, this message is the last one on error.
        self.offset = self.datagram.len();
        if let Err(e) = need("nlmsghdr", rest, at, nlmsghdr::SIZE) {
            return Some(Err(e));
        }
        let length = u32_at(rest, nlmsghdr::LENGTH) as usize;
        if length < nlmsghdr::SIZE || length > rest.len() {
            return Some(Err(WireError::MessageLength {
                offset: at,
                length,
                available: rest.len(),
            }));
        }
        self.offset = at + align(length).min(rest.len());
        Some(Ok(Message {
            offset: at,
            kind: u16_at(rest, nlmsghdr::TYPE),
            flags: u16_at(rest, nlmsghdr::FLAGS),
            seq: u32_at(rest, nlmsghdr::SEQ),
            body: &rest[nlmsghdr::SIZE..length],
        }))
    }
}

/// One attribute: its type (flags masked off), where it starts, its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribute<'a> {
    /// `rta_type & NLA_TYPE_MASK`.
    pub kind: u16,
    /// Where its header starts in the datagram.
    pub offset: usize,
    /// Its value (without the padding).
    pub value: &'a [u8],
}

impl Attribute<'_> {
    fn sized<const N: usize>(&self) -> Result<[u8; N], WireError> {
        <[u8; N]>::try_from(self.value).map_err(|_| WireError::AttributeSize {
            kind: self.kind,
            offset: self.offset,
            length: self.value.len(),
            expected: N,
        })
    }

    /// The value as an IPv6 address (exactly 16 octets).
    pub fn ipv6(&self) -> Result<Ipv6Addr, WireError> {
        self.sized::<16>().map(Ipv6Addr::from)
    }

    /// The value as a `u32` (exactly 4 octets).
    pub fn u32(&self) -> Result<u32, WireError> {
        self.sized::<4>().map(u32::from_ne_bytes)
    }

    /// The value as a structure of at least `size` octets (the kernel
    /// may append fields to a structure, never take them away).
    pub fn structure(&self, size: usize) -> Result<&[u8], WireError> {
        if self.value.len() < size {
            return Err(WireError::AttributeSize {
                kind: self.kind,
                offset: self.offset,
                length: self.value.len(),
                expected: size,
            });
        }
        Ok(self.value)
    }
}

/// The attributes of a message body, after its fixed structure. An
/// attribute whose length is wrong is an error and the last item.
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    rest: &'a [u8],
    offset: usize,
}

impl<'a> Attributes<'a> {
    /// The attributes in `b`, which starts at `offset` in the datagram.
    pub fn new(b: &'a [u8], offset: usize) -> Self {
        Attributes { rest: b, offset }
    }
}

impl<'a> Iterator for Attributes<'a> {
    type Item = Result<Attribute<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let (b, at) = (std::mem::take(&mut self.rest), self.offset);
        if let Err(e) = need("rtattr", b, at, rtattr::SIZE) {
            return Some(Err(e));
        }
        let length = usize::from(u16_at(b, rtattr::LENGTH));
        let kind = u16_at(b, rtattr::TYPE) & libc::NLA_TYPE_MASK as u16;
        if length < rtattr::SIZE || length > b.len() {
            return Some(Err(WireError::AttributeLength {
                kind,
                offset: at,
                length,
                available: b.len(),
            }));
        }
        let next = align(length).min(b.len());
        self.rest = &b[next..];
        self.offset = at + next;
        Some(Ok(Attribute {
            kind,
            offset: at,
            value: &b[rtattr::SIZE..length],
        }))
    }
}

/// The `rtm_protocol` of a route message (the watcher skips the additions
/// of its own protocol before decoding the rest).
pub fn route_protocol(msg: &Message<'_>) -> Result<u8, WireError> {
    need("rtmsg", msg.body, msg.body_offset(), rtmsg::SIZE)?;
    Ok(msg.body[rtmsg::PROTOCOL])
}

/// An IPv6 route message (`RTM_NEWROUTE` or `RTM_DELROUTE`: `rtmsg` and
/// attributes): type, protocol, destination, gateway, several next hops or
/// one, output interface (named from `names`), metric, table, and the
/// expiry of `RTA_CACHEINFO`. A test holds it to netlink-packet-route's
/// decoding of the same bytes.
pub fn route(msg: &Message<'_>, names: &BTreeMap<u32, Arc<str>>) -> Result<TableRoute, WireError> {
    if !matches!(msg.kind, libc::RTM_NEWROUTE | libc::RTM_DELROUTE) {
        return Err(WireError::UnexpectedType {
            offset: msg.offset,
            kind: msg.kind,
            expected: "RTM_NEWROUTE or RTM_DELROUTE",
        });
    }
    let (b, at) = (msg.body, msg.body_offset());
    need("rtmsg", b, at, rtmsg::SIZE)?;
    if b[rtmsg::FAMILY] != libc::AF_INET6 as u8 {
        return Err(WireError::Family {
            offset: at,
            family: b[rtmsg::FAMILY],
        });
    }
    let dst_len = b[rtmsg::DST_LEN];
    let mut r = TableRoute {
        prefix: Ipv6Net::new(Ipv6Addr::UNSPECIFIED, dst_len).map_err(|_| {
            WireError::PrefixLength {
                offset: at,
                length: dst_len,
            }
        })?,
        table: u32::from(b[rtmsg::TABLE]),
        protocol: b[rtmsg::PROTOCOL],
        metric: 0,
        kind: b[rtmsg::TYPE],
        gateway: None,
        multipath: false,
        ifindex: 0,
        interface: Arc::from(""),
        expires: None,
    };
    let mut dst = Ipv6Addr::UNSPECIFIED;
    for a in Attributes::new(&b[rtmsg::SIZE..], at + rtmsg::SIZE) {
        let a = a?;
        match a.kind {
            libc::RTA_DST => dst = a.ipv6()?,
            libc::RTA_GATEWAY => r.gateway = Some(a.ipv6()?),
            libc::RTA_OIF => r.ifindex = a.u32()?,
            libc::RTA_PRIORITY => r.metric = a.u32()?,
            libc::RTA_TABLE => r.table = a.u32()?,
            libc::RTA_MULTIPATH => r.multipath = true,
            libc::RTA_CACHEINFO => {
                let ticks = u32_at(a.structure(rta_cacheinfo::SIZE)?, rta_cacheinfo::EXPIRES);
                r.expires = (ticks > 0).then_some(ticks / USER_HZ);
            }
            _ => {}
        }
    }
    // The length was checked above: this cannot fail.
    r.prefix = Ipv6Net::new(dst, dst_len).unwrap_or(r.prefix);
    if let Some(name) = names.get(&r.ifindex) {
        r.interface = name.clone();
    }
    Ok(r)
}

/// A link message (`RTM_NEWLINK` or `RTM_DELLINK`: `ifinfomsg` and
/// attributes): index, name (`IFLA_IFNAME`, required) and `IFF_UP`. A
/// deletion reads as the link's last state; the caller knows it is gone.
pub fn link(msg: &Message<'_>) -> Result<Link, WireError> {
    if !matches!(msg.kind, libc::RTM_NEWLINK | libc::RTM_DELLINK) {
        return Err(WireError::UnexpectedType {
            offset: msg.offset,
            kind: msg.kind,
            expected: "RTM_NEWLINK or RTM_DELLINK",
        });
    }
    let (b, at) = (msg.body, msg.body_offset());
    need("ifinfomsg", b, at, ifinfomsg::SIZE)?;
    let mut name = None;
    let mut vrf_table = None;
    for a in Attributes::new(&b[ifinfomsg::SIZE..], at + ifinfomsg::SIZE) {
        let a = a?;
        if a.kind == libc::IFLA_LINKINFO {
            vrf_table = vrf_table_of(&a)?;
        }
        if a.kind == libc::IFLA_IFNAME {
            let v = a.value.split(|&c| c == 0).next().unwrap_or(a.value);
            let n = std::str::from_utf8(v)
                .ok()
                .filter(|n| !n.is_empty())
                .ok_or(WireError::BadName { offset: a.offset })?;
            name = Some(Arc::<str>::from(n));
        }
    }
    Ok(Link {
        name: name.ok_or(WireError::MissingName { offset: at })?,
        index: u32_at(b, ifinfomsg::INDEX),
        up: u32_at(b, ifinfomsg::FLAGS) & libc::IFF_UP as u32 != 0,
        vrf_table,
    })
}

/// `IFLA_INFO_KIND` and `IFLA_INFO_DATA` in `IFLA_LINKINFO`, and
/// `IFLA_VRF_TABLE` in the data of a `vrf` (linux/if_link.h).
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const IFLA_VRF_TABLE: u16 = 1;

/// The table of a VRF device from its `IFLA_LINKINFO` (kind `vrf`,
/// `IFLA_VRF_TABLE` in its data); `None` for any other kind of link.
fn vrf_table_of(info: &Attribute<'_>) -> Result<Option<u32>, WireError> {
    let mut is_vrf = false;
    let mut table = None;
    for a in Attributes::new(info.value, info.offset + rtattr::SIZE) {
        let a = a?;
        match a.kind {
            IFLA_INFO_KIND => is_vrf = a.value.split(|&c| c == 0).next() == Some(b"vrf"),
            IFLA_INFO_DATA => {
                for d in Attributes::new(a.value, a.offset + rtattr::SIZE) {
                    let d = d?;
                    if d.kind == IFLA_VRF_TABLE {
                        table = Some(d.u32()?);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(table.filter(|_| is_vrf))
}

fn put_attr(buf: &mut Vec<u8>, kind: u16, value: &[u8]) {
    // Values here are 4 or 16 octets: already aligned to 4.
    buf.extend_from_slice(&((rtattr::SIZE + value.len()) as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(value);
}

/// Append an `nlmsghdr` of `kind` whose length is patched by [`finish`].
fn start(buf: &mut Vec<u8>, kind: u16, flags: u16, seq: u32) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_len, patched by finish
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(&flags.to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid: the kernel
    start
}

fn finish(buf: &mut [u8], start: usize) {
    let len = (buf.len() - start) as u32;
    buf[start + nlmsghdr::LENGTH.start..start + nlmsghdr::LENGTH.end]
        .copy_from_slice(&len.to_ne_bytes());
}

/// Append one `RTM_NEWROUTE` (`new`) or `RTM_DELROUTE` request for `r` to
/// `buf`: the bytes netlink-packet-route serialises the same request to
/// (a test holds it to them), written directly: a route is sent per
/// request, and this is the hot loop of the installation.
pub fn encode_route(buf: &mut Vec<u8>, r: &Route, new: bool, flags: u16, seq: u32) {
    let kind = if new {
        libc::RTM_NEWROUTE
    } else {
        libc::RTM_DELROUTE
    };
    let at = start(buf, kind, flags, seq);
    let table = if r.table < 256 {
        r.table as u8
    } else {
        libc::RT_TABLE_UNSPEC
    };
    buf.extend_from_slice(&[
        libc::AF_INET6 as u8,
        r.prefix.prefix_len(),
        0, // rtm_src_len
        0, // rtm_tos
        table,
        r.protocol,
        libc::RT_SCOPE_UNIVERSE,
        libc::RTN_UNICAST,
    ]);
    buf.extend_from_slice(&0u32.to_ne_bytes()); // rtm_flags
    put_attr(buf, libc::RTA_TABLE, &r.table.to_ne_bytes());
    put_attr(buf, libc::RTA_DST, &r.prefix.addr().octets());
    put_attr(buf, libc::RTA_PRIORITY, &r.metric.to_ne_bytes());
    // A delete names the next hop and interface too (and the protocol in
    // the header): the kernel then takes only this very route.
    put_attr(buf, libc::RTA_GATEWAY, &r.gateway.octets());
    put_attr(buf, libc::RTA_OIF, &r.ifindex.to_ne_bytes());
    if new {
        if let Some(e) = r.expires {
            put_attr(buf, RTA_EXPIRES, &e.to_ne_bytes());
        }
    }
    finish(buf, at);
}

/// A dump request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dump {
    /// Every IPv6 route (`RTM_GETROUTE`, an `rtmsg` of family AF_INET6).
    Routes,
    /// Every link (`RTM_GETLINK`, an `ifinfomsg` of family AF_UNSPEC).
    Links,
    /// Every IPv6 address (`RTM_GETADDR`, an `ifaddrmsg` of family AF_INET6).
    Addresses,
}

/// Append the dump request `what` to `buf`.
pub fn encode_dump(buf: &mut Vec<u8>, what: Dump, seq: u32) {
    let (kind, size, family_at, family) = match what {
        Dump::Routes => (
            libc::RTM_GETROUTE,
            rtmsg::SIZE,
            rtmsg::FAMILY,
            libc::AF_INET6,
        ),
        Dump::Links => (
            libc::RTM_GETLINK,
            ifinfomsg::SIZE,
            ifinfomsg::FAMILY,
            libc::AF_UNSPEC,
        ),
        Dump::Addresses => (
            libc::RTM_GETADDR,
            ifaddrmsg::SIZE,
            ifaddrmsg::FAMILY,
            libc::AF_INET6,
        ),
    };
    let at = start(buf, kind, flags::REQUEST | flags::DUMP, seq);
    let body = buf.len();
    buf.resize(body + size, 0);
    buf[body + family_at] = family as u8;
    finish(buf, at);
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
