//! Sans-IO TCP stream reassembly for `pdrestore decode` of packet captures:
//! TCP segments in (in capture order), one ordered byte stream per
//! connection and direction out, with the first gap if bytes are missing.
//!
//! A connection is identified by its 4-tuple; the side on one of the
//! watched ports (547 by default, RFC 5460 section 5.2) is the server. Each
//! direction is a sequence space of its own (RFC 9293 section 3.4): stream
//! offset 0 is the octet after the SYN's sequence number (the initial
//! sequence number, ISN) when the SYN was captured, otherwise the first
//! octet of the first segment captured in that direction (the capture began
//! mid-connection). Sequence numbers are compared modulo 2^32, relative to
//! the next octet expected, so wraparound and streams longer than 4 GiB are
//! handled as long as a segment lies within 2^31 octets of that point (the
//! same window RFC 9293 section 3.4 relies on).
//!
//! Retransmitted and overlapping octets are kept once: the first copy wins
//! (as a receiver that has already delivered them), and copies that differ
//! are counted in [`Stream::conflicting_octets`]. Out-of-order segments are
//! held until the octets before them arrive. A FIN ends its direction at its
//! sequence number (octets after it are ignored and counted); a RST ends
//! both directions in capture order (later segments are ignored).
//!
//! Bytes that never arrive leave a [`Gap`]: the stream is the contiguous
//! part before it, and nothing after the gap is decoded. The RFC 5460
//! section 5.1 framing has no marker to resynchronise on after missing
//! octets, so any guess past a gap could invent messages.

use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;

/// Which way the octets of a stream flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// From the client (the requestor) to the server.
    ToServer,
    /// From the server to the client.
    FromServer,
}

impl Direction {
    /// `to-server` or `from-server`, as in the JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::ToServer => "to-server",
            Direction::FromServer => "from-server",
        }
    }

    fn index(self) -> usize {
        match self {
            Direction::ToServer => 0,
            Direction::FromServer => 1,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A TCP connection, identified by its 4-tuple, client side first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Connection {
    /// The requestor's address and port.
    pub client: SocketAddr,
    /// The server's address and port (a watched port).
    pub server: SocketAddr,
}

impl Connection {
    /// Source and destination of the octets flowing in `direction`.
    pub fn endpoints(&self, direction: Direction) -> (SocketAddr, SocketAddr) {
        match direction {
            Direction::ToServer => (self.client, self.server),
            Direction::FromServer => (self.server, self.client),
        }
    }
}

impl fmt::Display for Connection {
    /// `client-server`, e.g. `[::1]:40000-[::1]:547`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.client, self.server)
    }
}

/// One TCP segment, as read from a captured packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment<'a> {
    /// Source address and port.
    pub src: SocketAddr,
    /// Destination address and port.
    pub dst: SocketAddr,
    /// Sequence number (of the SYN itself when `syn` is set).
    pub seq: u32,
    /// SYN flag.
    pub syn: bool,
    /// ACK flag (a SYN with ACK is the server's answer).
    pub ack: bool,
    /// FIN flag.
    pub fin: bool,
    /// RST flag.
    pub rst: bool,
    /// The segment's data.
    pub payload: &'a [u8],
}

/// Octets missing from a stream: nothing from `offset` on was decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Gap {
    /// Stream offset of the first missing octet (the decodable stream's length).
    pub offset: u64,
    /// How many octets are missing before the next captured ones (or before
    /// the FIN when nothing was captured after the gap).
    pub missing: u64,
    /// Octets captured after the gap (up to the last one seen), not decoded.
    pub discarded: u64,
}

/// How a direction ended in the capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamEnd {
    /// A FIN was captured.
    Fin,
    /// A RST was captured (from either side).
    Reset,
    /// Neither: the capture ended first.
    Open,
}

/// One direction of a connection, reassembled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stream {
    /// The connection.
    pub connection: Connection,
    /// Which way the octets flow.
    pub direction: Direction,
    /// Whether this direction's SYN was captured (stream offsets then count
    /// from the ISN + 1; otherwise from the first segment captured).
    pub syn_seen: bool,
    /// Sequence number of stream offset 0; `None` when no segment was seen.
    pub first_seq: Option<u32>,
    /// The octets from stream offset 0 up to the end or the first gap.
    pub data: Vec<u8>,
    /// The first gap, if octets are missing.
    pub gap: Option<Gap>,
    /// How the direction ended.
    pub end: StreamEnd,
    /// Segments captured in this direction.
    pub segments: usize,
    /// Octets received more than once (retransmissions, overlaps).
    pub duplicate_octets: u64,
    /// Of those, octets whose later copy differed from the first (kept).
    pub conflicting_octets: u64,
    /// Octets after the FIN, or captured after a RST, ignored.
    pub ignored_after_end: u64,
    /// Octets before stream offset 0 (possible only without a SYN), ignored.
    pub ignored_before_start: u64,
}

#[derive(Debug, Default)]
struct Half {
    /// Sequence number of stream offset 0.
    base: Option<u32>,
    syn_seen: bool,
    data: Vec<u8>,
    /// Out-of-order segments at offsets beyond `data.len()`.
    pending: BTreeMap<u64, Vec<u8>>,
    /// Stream offset of the FIN.
    fin: Option<u64>,
    segments: usize,
    duplicate: u64,
    conflicting: u64,
    after_end: u64,
    before_start: u64,
}

impl Half {
    /// Stream offset of sequence number `seq`, relative to the next octet
    /// expected (RFC 9293 section 3.4: modulo 2^32, within 2^31 of it).
    fn offset_of(&self, base: u32, seq: u32) -> i64 {
        let next = self.data.len() as u64;
        let expected = base.wrapping_add(next as u32);
        next as i64 + i64::from(seq.wrapping_sub(expected) as i32)
    }

    /// Take `payload` at stream offset `off`.
    fn insert(&mut self, mut off: i64, mut payload: &[u8]) {
        if off < 0 {
            let skip = payload.len().min(off.unsigned_abs() as usize);
            self.before_start += skip as u64;
            payload = &payload[skip..];
            off = 0;
        }
        let off = off as u64;
        if let Some(fin) = self.fin {
            let keep = fin.saturating_sub(off).min(payload.len() as u64) as usize;
            self.after_end += (payload.len() - keep) as u64;
            payload = &payload[..keep];
        }
        if payload.is_empty() {
            return;
        }
        let have = self.data.len() as u64;
        if off > have {
            // Held out of order; the longer of two copies at one offset stays.
            let held = self.pending.remove(&off).unwrap_or_default();
            let n = held.len().min(payload.len());
            self.duplicate += n as u64;
            self.conflicting += differing(&held[..n], &payload[..n]);
            let keep = if held.len() >= payload.len() {
                held
            } else {
                payload.to_vec()
            };
            self.pending.insert(off, keep);
            return;
        }
        self.append(off, payload);
        while let Some(entry) = self.pending.first_entry() {
            if *entry.key() > self.data.len() as u64 {
                break;
            }
            let off = *entry.key();
            let p = entry.remove();
            self.append(off, &p);
        }
    }

    /// Append the part of `payload` (at `off` <= `data.len()`) not yet held.
    fn append(&mut self, off: u64, payload: &[u8]) {
        let off = off as usize;
        let have = self.data.len();
        let dup = (have - off).min(payload.len());
        self.duplicate += dup as u64;
        self.conflicting += differing(&self.data[off..off + dup], &payload[..dup]);
        self.data.extend_from_slice(&payload[dup..]);
    }

    /// The FIN at stream offset `at`: octets from there on are dropped.
    fn set_fin(&mut self, at: u64) {
        if self.fin.is_some_and(|f| f <= at) {
            return;
        }
        self.fin = Some(at);
        if self.data.len() as u64 > at {
            self.after_end += self.data.len() as u64 - at;
            self.data.truncate(at as usize);
        }
        let beyond: Vec<u64> = self.pending.range(at..).map(|(k, _)| *k).collect();
        for k in beyond {
            if let Some(p) = self.pending.remove(&k) {
                self.after_end += p.len() as u64;
            }
        }
        for (&k, p) in self.pending.iter_mut() {
            let keep = (at - k) as usize;
            if p.len() > keep {
                self.after_end += (p.len() - keep) as u64;
                p.truncate(keep);
            }
        }
    }

    fn gap(&self) -> Option<Gap> {
        let have = self.data.len() as u64;
        if let Some((&first, _)) = self.pending.iter().next() {
            // Octets held after the gap (pending segments may overlap).
            let mut discarded = 0;
            let mut covered = first;
            for (&k, p) in &self.pending {
                let end = k + p.len() as u64;
                if end > covered {
                    discarded += end - k.max(covered);
                    covered = end;
                }
            }
            return Some(Gap {
                offset: have,
                missing: first - have,
                discarded,
            });
        }
        match self.fin {
            Some(fin) if fin > have => Some(Gap {
                offset: have,
                missing: fin - have,
                discarded: 0,
            }),
            _ => None,
        }
    }
}

/// Octets that differ between two copies of the same stretch.
fn differing(a: &[u8], b: &[u8]) -> u64 {
    a.iter().zip(b).filter(|(x, y)| x != y).count() as u64
}

#[derive(Debug)]
struct ConnState {
    conn: Connection,
    halves: [Half; 2],
    reset: bool,
}

/// Reassembles the TCP connections on the watched ports.
///
/// Feed it every TCP segment of a capture in capture order with
/// [`Reassembler::push`], then take the streams with
/// [`Reassembler::finish`].
#[derive(Debug)]
pub struct Reassembler {
    ports: Vec<u16>,
    conns: Vec<ConnState>,
    /// (client, server) to the latest connection with that 4-tuple.
    index: HashMap<(SocketAddr, SocketAddr), usize>,
}

impl Reassembler {
    /// A reassembler for connections to or from any of `ports`.
    pub fn new(ports: &[u16]) -> Self {
        Reassembler {
            ports: ports.to_vec(),
            conns: Vec::new(),
            index: HashMap::new(),
        }
    }

    /// Which side of the segment is the client, when it belongs to a
    /// connection on a watched port.
    fn roles(&self, seg: &Segment<'_>) -> Option<(SocketAddr, SocketAddr, Direction)> {
        let src_watched = self.ports.contains(&seg.src.port());
        let dst_watched = self.ports.contains(&seg.dst.port());
        let to_server = (seg.src, seg.dst, Direction::ToServer);
        let from_server = (seg.dst, seg.src, Direction::FromServer);
        match (src_watched, dst_watched) {
            (false, false) => None,
            (false, true) => Some(to_server),
            (true, false) => Some(from_server),
            // Both ports are watched: a connection already seen decides,
            // then the SYN, else the first segment goes to the server.
            (true, true) => Some(if self.index.contains_key(&(seg.src, seg.dst)) {
                to_server
            } else if self.index.contains_key(&(seg.dst, seg.src)) || (seg.syn && seg.ack) {
                from_server
            } else {
                to_server
            }),
        }
    }

    /// Take one segment. Returns false (and ignores it) when neither port
    /// is watched.
    pub fn push(&mut self, seg: &Segment<'_>) -> bool {
        let Some((client, server, direction)) = self.roles(seg) else {
            return false;
        };
        let key = (client, server);
        let d = direction.index();
        let new_syn = seg.syn && !seg.ack && direction == Direction::ToServer;
        let idx = match self.index.get(&key) {
            // A SYN with another ISN on a 4-tuple seen before: the port was
            // reused for a new connection.
            Some(&i)
                if new_syn
                    && self.conns[i].halves[d]
                        .base
                        .is_some_and(|b| b != seg.seq.wrapping_add(1)) =>
            {
                self.new_conn(client, server)
            }
            Some(&i) => i,
            None => self.new_conn(client, server),
        };
        let conn = &mut self.conns[idx];
        let half = &mut conn.halves[d];
        half.segments += 1;
        if conn.reset {
            half.after_end += seg.payload.len() as u64;
            return true;
        }
        let mut seq = seg.seq;
        if seg.syn {
            seq = seq.wrapping_add(1);
            let fresh = half.data.is_empty() && half.pending.is_empty();
            if !half.syn_seen && fresh {
                half.base = Some(seq);
                half.syn_seen = true;
            }
        }
        let base = *half.base.get_or_insert(seq);
        let off = half.offset_of(base, seq);
        half.insert(off, seg.payload);
        if seg.fin {
            let at = off + seg.payload.len() as i64;
            half.set_fin(at.max(0) as u64);
        }
        if seg.rst {
            conn.reset = true;
        }
        true
    }

    /// The streams, two per connection (to the server, then from it), in
    /// the order the connections were first seen.
    pub fn finish(self) -> Vec<Stream> {
        let mut out = Vec::with_capacity(self.conns.len() * 2);
        for c in self.conns {
            let [to, from] = c.halves;
            for (direction, h) in [(Direction::ToServer, to), (Direction::FromServer, from)] {
                let end = if h.fin.is_some() {
                    StreamEnd::Fin
                } else if c.reset {
                    StreamEnd::Reset
                } else {
                    StreamEnd::Open
                };
                out.push(Stream {
                    connection: c.conn,
                    direction,
                    syn_seen: h.syn_seen,
                    first_seq: h.base,
                    gap: h.gap(),
                    end,
                    segments: h.segments,
                    duplicate_octets: h.duplicate,
                    conflicting_octets: h.conflicting,
                    ignored_after_end: h.after_end,
                    ignored_before_start: h.before_start,
                    data: h.data,
                });
            }
        }
        out
    }

    fn new_conn(&mut self, client: SocketAddr, server: SocketAddr) -> usize {
        self.conns.push(ConnState {
            conn: Connection { client, server },
            halves: [Half::default(), Half::default()],
            reset: false,
        });
        let i = self.conns.len() - 1;
        self.index.insert((client, server), i);
        i
    }
}

#[cfg(test)]
#[path = "reassembly_tests.rs"]
mod tests;
