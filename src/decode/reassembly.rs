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
mod tests {
    use super::*;

    const CLIENT: &str = "[2001:db8::1]:40000";
    const SERVER: &str = "[2001:db8::547]:547";

    fn seg(to_server: bool, seq: u32, payload: &[u8]) -> Segment<'_> {
        let (c, s) = (CLIENT.parse().unwrap(), SERVER.parse().unwrap());
        let (src, dst) = if to_server { (c, s) } else { (s, c) };
        Segment {
            src,
            dst,
            seq,
            syn: false,
            ack: true,
            fin: false,
            rst: false,
            payload,
        }
    }

    fn syn(to_server: bool, isn: u32) -> Segment<'static> {
        Segment {
            syn: true,
            ack: !to_server,
            ..seg(to_server, isn, b"")
        }
    }

    fn fin(to_server: bool, seq: u32, payload: &[u8]) -> Segment<'_> {
        Segment {
            fin: true,
            ..seg(to_server, seq, payload)
        }
    }

    fn run(segs: &[Segment<'_>]) -> Vec<Stream> {
        let mut r = Reassembler::new(&[547]);
        for s in segs {
            assert!(r.push(s));
        }
        r.finish()
    }

    fn from_server(streams: &[Stream]) -> &Stream {
        streams
            .iter()
            .find(|s| s.direction == Direction::FromServer)
            .unwrap()
    }

    /// The stream `data` cut at `cuts`, as segments from ISN `isn`, in `order`.
    fn segments(isn: u32, data: &[u8], cuts: &[usize], order: &[usize]) -> Vec<Segment<'static>> {
        let data: &'static [u8] = Vec::leak(data.to_vec());
        let mut bounds = vec![0];
        bounds.extend_from_slice(cuts);
        bounds.push(data.len());
        let pieces: Vec<_> = bounds
            .windows(2)
            .map(|w| {
                seg(
                    false,
                    isn.wrapping_add(1).wrapping_add(w[0] as u32),
                    &data[w[0]..w[1]],
                )
            })
            .collect();
        let mut out = vec![syn(true, 7), syn(false, isn)];
        out.extend(order.iter().map(|&i| pieces[i]));
        out
    }

    #[test]
    fn in_order_with_syn() {
        let streams = run(&segments(1000, b"hello world", &[3, 6], &[0, 1, 2]));
        assert_eq!(streams.len(), 2);
        let s = from_server(&streams);
        assert_eq!(s.data, b"hello world");
        assert!(s.syn_seen);
        assert_eq!(s.first_seq, Some(1001));
        assert_eq!(s.gap, None);
        assert_eq!(s.end, StreamEnd::Open);
        assert_eq!(s.duplicate_octets, 0);
        assert_eq!(s.connection.to_string(), format!("{CLIENT}-{SERVER}"));
        let to = &streams[0];
        assert_eq!(to.direction, Direction::ToServer);
        assert!(to.data.is_empty() && to.syn_seen && to.gap.is_none());
    }

    #[test]
    fn sequence_numbers_wrap_around() {
        // The ISN is 5 octets before 2^32: the stream crosses zero.
        let data: Vec<u8> = (0..=255).collect();
        for order in [[0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2]] {
            let streams = run(&segments(u32::MAX - 5, &data, &[2, 4, 100], &order));
            let s = from_server(&streams);
            assert_eq!(s.data, data, "order {order:?}");
            assert_eq!(s.gap, None);
        }
    }

    #[test]
    fn out_of_order_segments_wait_for_the_octets_before_them() {
        let streams = run(&segments(50, b"abcdefghij", &[2, 5, 7], &[2, 0, 3, 1]));
        let s = from_server(&streams);
        assert_eq!(s.data, b"abcdefghij");
        assert_eq!((s.gap, s.duplicate_octets), (None, 0));
    }

    #[test]
    fn duplicates_are_kept_once() {
        let streams = run(&segments(50, b"abcdefghij", &[4], &[0, 0, 1, 0, 1]));
        let s = from_server(&streams);
        assert_eq!(s.data, b"abcdefghij");
        assert_eq!(s.duplicate_octets, 4 + 6 + 4);
        assert_eq!(s.conflicting_octets, 0);
    }

    #[test]
    fn overlapping_retransmissions_add_only_the_new_octets() {
        let mut segs = vec![syn(true, 7), syn(false, 99)];
        segs.push(seg(false, 100, b"abcd"));
        segs.push(seg(false, 102, b"cdefg")); // overlaps 2, adds 3
        segs.push(seg(false, 110, b"kl")); // out of order
        segs.push(seg(false, 109, b"jk")); // overlaps the held one
        segs.push(seg(false, 101, b"bcdefghi")); // fills up to 109, overlaps 6
        let s = from_server(&run(&segs)).clone();
        assert_eq!(s.data, b"abcdefghijkl");
        assert_eq!(s.duplicate_octets, 2 + 6 + 1);
        assert_eq!(s.conflicting_octets, 0);
        assert_eq!(s.gap, None);
    }

    #[test]
    fn a_differing_retransmission_keeps_the_first_copy_and_is_counted() {
        let segs = [
            syn(false, 0),
            seg(false, 1, b"abcd"),
            seg(false, 3, b"XYef"),
        ];
        let s = from_server(&run(&segs)).clone();
        assert_eq!(s.data, b"abcdef");
        assert_eq!((s.duplicate_octets, s.conflicting_octets), (2, 2));
    }

    #[test]
    fn a_missing_segment_is_a_gap_and_nothing_after_it_is_kept() {
        let streams = run(&segments(1000, b"abcdefghij", &[3, 6], &[0, 2]));
        let s = from_server(&streams);
        assert_eq!(s.data, b"abc");
        assert_eq!(
            s.gap,
            Some(Gap {
                offset: 3,
                missing: 3,
                discarded: 4
            })
        );
    }

    #[test]
    fn missing_octets_before_the_fin_are_a_gap() {
        let segs = [syn(false, 0), seg(false, 1, b"abc"), fin(false, 6, b"")];
        let s = from_server(&run(&segs)).clone();
        assert_eq!(s.data, b"abc");
        assert_eq!(s.end, StreamEnd::Fin);
        assert_eq!(
            s.gap,
            Some(Gap {
                offset: 3,
                missing: 2,
                discarded: 0
            })
        );
    }

    #[test]
    fn data_after_the_fin_is_ignored() {
        let segs = [
            syn(false, 0),
            seg(false, 5, b"xy"), // beyond the FIN, held out of order
            fin(false, 1, b"abc"),
            seg(false, 4, b"zz"),   // after the FIN
            seg(false, 1, b"abcd"), // retransmission running past it
        ];
        let s = from_server(&run(&segs)).clone();
        assert_eq!(s.data, b"abc");
        assert_eq!(s.end, StreamEnd::Fin);
        assert_eq!(s.gap, None);
        assert_eq!(s.ignored_after_end, 2 + 2 + 1);
    }

    #[test]
    fn a_fin_before_the_last_octets_arrive_out_of_order() {
        let segs = [syn(false, 0), fin(false, 4, b"def"), seg(false, 1, b"abc")];
        let s = from_server(&run(&segs)).clone();
        assert_eq!(s.data, b"abcdef");
        assert_eq!((s.end, s.gap), (StreamEnd::Fin, None));
    }

    #[test]
    fn a_reset_ends_both_directions() {
        let segs = [
            syn(true, 10),
            seg(true, 11, b"q"),
            Segment {
                rst: true,
                ..seg(false, 0, b"")
            },
            seg(true, 12, b"late"),
            seg(false, 1, b"late"),
        ];
        let streams = run(&segs);
        assert_eq!(streams[0].data, b"q");
        assert_eq!(streams[0].end, StreamEnd::Reset);
        assert_eq!(streams[0].ignored_after_end, 4);
        assert_eq!(streams[1].end, StreamEnd::Reset);
        assert!(streams[1].data.is_empty());
    }

    #[test]
    fn without_a_syn_the_stream_starts_at_the_first_segment() {
        let segs = [
            seg(false, 5000, b"cdef"),
            seg(false, 4998, b"abcd"), // partly before the start
            seg(false, 5004, b"gh"),
        ];
        let s = from_server(&run(&segs)).clone();
        assert!(!s.syn_seen);
        assert_eq!(s.first_seq, Some(5000));
        assert_eq!(s.data, b"cdefgh");
        assert_eq!(s.ignored_before_start, 2);
        assert_eq!(s.duplicate_octets, 2);
    }

    #[test]
    fn data_on_the_syn_counts_from_isn_plus_one() {
        let segs = [
            Segment {
                syn: true,
                ack: false,
                ..seg(true, 41, b"ab")
            },
            seg(true, 44, b"c"),
        ];
        let streams = run(&segs);
        assert_eq!(streams[0].data, b"abc");
        assert_eq!(streams[0].first_seq, Some(42));
    }

    #[test]
    fn a_new_syn_on_a_reused_4_tuple_is_a_new_connection() {
        let segs = [
            syn(true, 100),
            seg(true, 101, b"one"),
            fin(true, 104, b""),
            syn(true, 9000),
            syn(true, 9000), // retransmitted SYN: same connection
            seg(true, 9001, b"two"),
        ];
        let streams = run(&segs);
        assert_eq!(streams.len(), 4);
        assert_eq!(streams[0].data, b"one");
        assert_eq!(streams[2].data, b"two");
        assert_eq!(streams[0].connection, streams[2].connection);
    }

    #[test]
    fn roles_follow_the_watched_port() {
        let mut r = Reassembler::new(&[547, 5547]);
        let c: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let s: SocketAddr = "127.0.0.1:5547".parse().unwrap();
        let other: SocketAddr = "127.0.0.1:80".parse().unwrap();
        let mk = |src, dst, payload| Segment {
            src,
            dst,
            seq: 1,
            syn: false,
            ack: true,
            fin: false,
            rst: false,
            payload,
        };
        assert!(r.push(&mk(s, c, b"reply")));
        assert!(r.push(&mk(c, s, b"query")));
        assert!(!r.push(&mk(c, other, b"web")));
        let streams = r.finish();
        assert_eq!(streams.len(), 2);
        assert_eq!(
            streams[0].connection,
            Connection {
                client: c,
                server: s
            }
        );
        assert_eq!(streams[0].data, b"query");
        assert_eq!(streams[1].data, b"reply");
        assert!(!streams[1].syn_seen);
    }

    #[test]
    fn both_ports_watched_the_syn_decides() {
        let mut r = Reassembler::new(&[547]);
        let a: SocketAddr = "[::1]:547".parse().unwrap();
        let b: SocketAddr = "[::2]:547".parse().unwrap();
        let mut synack = syn(false, 5);
        (synack.src, synack.dst) = (a, b);
        r.push(&synack);
        let streams = r.finish();
        assert_eq!(
            streams[0].connection,
            Connection {
                client: b,
                server: a
            }
        );
        assert!(streams[1].syn_seen);
    }

    proptest::proptest! {
        /// Any segmentation, order and duplication, from any ISN, gives the
        /// stream back; dropping one segment (not the last, which carries
        /// the FIN) gives its start as the gap and exactly the octets before it.
        #[test]
        fn any_delivery_gives_the_stream_back(
            data in proptest::collection::vec(proptest::num::u8::ANY, 1..300),
            cuts in proptest::collection::btree_set(1usize..300, 0..12),
            isn in proptest::num::u32::ANY,
            keys in proptest::collection::vec(proptest::num::u32::ANY, 40),
            dups in proptest::collection::vec(0usize..40, 0..6),
            drop in proptest::option::of(0usize..40),
        ) {
            let cuts: Vec<usize> = cuts.into_iter().filter(|&c| c < data.len()).collect();
            let n = cuts.len() + 1;
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by_key(|&i| keys[i]);
            order.extend(dups.iter().map(|d| d % n));
            let dropped = drop.map(|d| d % n).filter(|&d| d + 1 < n);
            order.retain(|&i| Some(i) != dropped);
            let mut segs = segments(isn, &data, &cuts, &order);
            let last = isn.wrapping_add(1).wrapping_add(cuts.last().copied().unwrap_or(0) as u32);
            for s in segs.iter_mut().filter(|s| s.seq == last && !s.syn) {
                s.fin = true;
            }
            let streams = run(&segs);
            let s = from_server(&streams);
            match dropped {
                None => {
                    proptest::prop_assert_eq!(&s.data, &data);
                    proptest::prop_assert_eq!(s.gap, None);
                }
                Some(d) => {
                    let start = if d == 0 { 0 } else { cuts[d - 1] };
                    proptest::prop_assert_eq!(&s.data[..], &data[..start]);
                    let gap = s.gap.expect("a gap");
                    proptest::prop_assert_eq!(gap.offset, start as u64);
                    proptest::prop_assert_eq!(gap.missing, (cuts[d] - start) as u64);
                    proptest::prop_assert_eq!(gap.discarded, (data.len() - cuts[d]) as u64);
                }
            }
            proptest::prop_assert_eq!(s.end, StreamEnd::Fin);
            proptest::prop_assert_eq!(s.conflicting_octets, 0);
        }
    }
}
