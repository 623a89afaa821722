//! `pdrestore decode` of packet captures: pcap and pcapng files (as tcpdump,
//! dumpcap, tshark and Wireshark write them), read with the `pcap-file`
//! crate; link, IP and TCP headers taken apart with `etherparse`; the TCP
//! connections on the watched ports reassembled by [`super::reassembly`];
//! each direction's byte stream decoded by [`super::decode_stream`] exactly
//! as a raw stream is (RFC 5460 section 5.1 framing).
//!
//! DHCPv6 over UDP (ports 546 and 547 at either end, IPv6 only) is decoded
//! datagram by datagram by [`super::udp`], in capture order.
//!
//! Supported link-layer header types (LINKTYPE_* numbers as in the files):
//! Ethernet (1, VLAN tags included), Linux cooked capture SLL (113) and
//! SLL2 (276), raw IP (101, 228 IPv4, 229 IPv6), BSD loopback (0 null, 108
//! loop). Any other is an error naming it.

use super::reassembly::{Direction, Reassembler, Segment, Stream, StreamEnd};
use super::udp::{self, Datagram};
use super::{decode_stream, format_record, Record};
use etherparse::{EtherType, LaxSlicedPacket, NetSlice, SlicedPacket, TransportSlice};
use pcap_file::pcap::PcapParser;
use pcap_file::pcapng::{Block, PcapNgParser};
use pcap_file::{DataLink, PcapError};
use serde::Serialize;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// What a `decode` input is, by its first octets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A byte stream of framed DHCPv6 messages (RFC 5460 section 5.1).
    Raw,
    /// A pcap file (either byte order, microsecond or nanosecond stamps).
    Pcap,
    /// A pcapng file.
    PcapNg,
}

impl Format {
    /// Tell the format by the file's magic number: the pcap magic
    /// 0xa1b2c3d4 or 0xa1b23c4d (nanoseconds) in either byte order; a
    /// pcapng Section Header Block (type 0x0a0d0d0a with its byte-order
    /// magic 0x1a2b3c4d at offset 8); anything else is a raw stream.
    pub fn detect(data: &[u8]) -> Format {
        let word = |at: usize| -> Option<[u8; 4]> { data.get(at..at + 4)?.try_into().ok() };
        match word(0) {
            Some(
                [0xa1, 0xb2, 0xc3, 0xd4]
                | [0xd4, 0xc3, 0xb2, 0xa1]
                | [0xa1, 0xb2, 0x3c, 0x4d]
                | [0x4d, 0x3c, 0xb2, 0xa1],
            ) => Format::Pcap,
            Some([0x0a, 0x0d, 0x0d, 0x0a])
                if matches!(
                    word(8),
                    Some([0x1a, 0x2b, 0x3c, 0x4d] | [0x4d, 0x3c, 0x2b, 0x1a])
                ) =>
            {
                Format::PcapNg
            }
            _ => Format::Raw,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Raw => "raw stream",
            Format::Pcap => "pcap",
            Format::PcapNg => "pcapng",
        })
    }
}

/// A capture that cannot be read (or read to its end).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaptureError {
    /// The file header (pcap global header, pcapng Section Header Block) is invalid.
    #[error("not a valid {format} file: {reason}")]
    Header {
        /// pcap or pcapng.
        format: Format,
        /// What the reader said.
        reason: String,
    },
    /// A packet record or block is invalid or cut short.
    #[error("{format} record {record} at file offset {offset}: {reason}")]
    Record {
        /// pcap or pcapng.
        format: Format,
        /// Its number (1 for the first packet record or block after the header).
        record: usize,
        /// Where it starts in the file.
        offset: usize,
        /// What was wrong.
        reason: String,
    },
    /// Packets of a link-layer type that cannot be read.
    #[error(
        "packet {packet}: link-layer type {linktype} ({name}) is not supported \
         (Ethernet, Linux cooked SLL/SLL2, raw IP and BSD loopback are)"
    )]
    LinkType {
        /// The packet's number (1 for the first).
        packet: usize,
        /// The LINKTYPE_ number.
        linktype: u32,
        /// Its name.
        name: String,
    },
}

/// Why one packet yields no TCP segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PacketError {
    /// The link-layer type is not one this module reads.
    UnsupportedLinkType(u32),
    /// The headers do not parse (often: cut short by the snapshot length).
    Malformed(String),
}

impl fmt::Display for PacketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PacketError::UnsupportedLinkType(l) => {
                write!(
                    f,
                    "link-layer type {l} ({}) is not supported",
                    link_name(*l)
                )
            }
            PacketError::Malformed(e) => f.write_str(e),
        }
    }
}

/// Name of a LINKTYPE_ number, as pcap-file spells it.
pub fn link_name(linktype: u32) -> String {
    match DataLink::from(linktype) {
        DataLink::Unknown(_) => "unknown".to_string(),
        d => format!("{d:?}"),
    }
}

const LINKTYPE_NULL: u32 = 0;
const LINKTYPE_ETHERNET: u32 = 1;
const LINKTYPE_RAW: u32 = 101;
const LINKTYPE_LOOP: u32 = 108;
const LINKTYPE_LINUX_SLL: u32 = 113;
const LINKTYPE_IPV4: u32 = 228;
const LINKTYPE_IPV6: u32 = 229;
const LINKTYPE_LINUX_SLL2: u32 = 276;

/// Take a frame of link-layer type `linktype` apart down to its transport header.
fn slice(linktype: u32, frame: &[u8]) -> Result<SlicedPacket<'_>, PacketError> {
    let short = |what: &str| {
        PacketError::Malformed(format!(
            "{} octets, shorter than a {what} header",
            frame.len()
        ))
    };
    match linktype {
        LINKTYPE_ETHERNET => SlicedPacket::from_ethernet(frame),
        LINKTYPE_LINUX_SLL => SlicedPacket::from_linux_sll(frame),
        LINKTYPE_LINUX_SLL2 => {
            // SLL2 (etherparse has no slicer for it): the protocol type
            // (an EtherType) in the first two octets of a 20-octet header.
            let (Some(proto), Some(rest)) = (frame.get(..2), frame.get(20..)) else {
                return Err(short("Linux cooked (SLL2)"));
            };
            SlicedPacket::from_ether_type(EtherType(u16::from_be_bytes([proto[0], proto[1]])), rest)
        }
        // BSD loopback: a 4-octet address family (host byte order for null,
        // network byte order for loop); the IP version nibble says the same.
        LINKTYPE_NULL | LINKTYPE_LOOP => match frame.get(4..) {
            Some(rest) => SlicedPacket::from_ip(rest),
            None => return Err(short("loopback")),
        },
        LINKTYPE_RAW | LINKTYPE_IPV4 | LINKTYPE_IPV6 => SlicedPacket::from_ip(frame),
        other => return Err(PacketError::UnsupportedLinkType(other)),
    }
    .map_err(|e| PacketError::Malformed(e.to_string()))
}

/// [`slice`], lenient: for a frame the strict slicing refused (cut short,
/// most often), as much as can be read of it.
fn slice_lax(linktype: u32, frame: &[u8]) -> Option<LaxSlicedPacket<'_>> {
    let ether = |at: usize| {
        let b = frame.get(at..at + 2)?;
        Some(EtherType(u16::from_be_bytes([b[0], b[1]])))
    };
    match linktype {
        LINKTYPE_ETHERNET => LaxSlicedPacket::from_ethernet(frame).ok(),
        // SLL: the protocol type at octet 14 of a 16-octet header.
        LINKTYPE_LINUX_SLL => Some(LaxSlicedPacket::from_ether_type(
            ether(14)?,
            frame.get(16..)?,
        )),
        LINKTYPE_LINUX_SLL2 => Some(LaxSlicedPacket::from_ether_type(
            ether(0)?,
            frame.get(20..)?,
        )),
        LINKTYPE_NULL | LINKTYPE_LOOP => LaxSlicedPacket::from_ip(frame.get(4..)?).ok(),
        LINKTYPE_RAW | LINKTYPE_IPV4 | LINKTYPE_IPV6 => LaxSlicedPacket::from_ip(frame).ok(),
        _ => None,
    }
}

/// What one frame carries.
enum Carried<'a> {
    Tcp(Segment<'a>),
    /// A DHCPv6 datagram.
    Udp(udp::Payload<'a>),
    /// A DHCPv6 datagram whose UDP header does not fit its IPv6 payload.
    UdpFault((SocketAddr, SocketAddr), String),
    /// An IP fragment (its TCP header, if any, is not read).
    Fragment,
    /// Anything else (ARP, UDP, ICMP, ...).
    Other,
}

fn carried<'a>(
    linktype: u32,
    frame: &'a [u8],
    udp_ports: &[u16],
) -> Result<Carried<'a>, PacketError> {
    let sliced = slice(linktype, frame)?;
    match udp::payload(&sliced, udp_ports) {
        Some(Ok(p)) => return Ok(Carried::Udp(p)),
        Some(Err((src, dst, e))) => return Ok(Carried::UdpFault((src, dst), e)),
        None => {}
    }
    let (src, dst, fragmented) = match &sliced.net {
        Some(NetSlice::Ipv4(ip)) => (
            IpAddr::V4(ip.header().source_addr()),
            IpAddr::V4(ip.header().destination_addr()),
            ip.payload().fragmented,
        ),
        Some(NetSlice::Ipv6(ip)) => (
            IpAddr::V6(ip.header().source_addr()),
            IpAddr::V6(ip.header().destination_addr()),
            ip.payload().fragmented,
        ),
        _ => return Ok(Carried::Other),
    };
    let Some(TransportSlice::Tcp(tcp)) = &sliced.transport else {
        return Ok(if fragmented {
            Carried::Fragment
        } else {
            Carried::Other
        });
    };
    Ok(Carried::Tcp(Segment {
        src: SocketAddr::new(src, tcp.source_port()),
        dst: SocketAddr::new(dst, tcp.destination_port()),
        seq: tcp.sequence_number(),
        syn: tcp.syn(),
        ack: tcp.ack(),
        fin: tcp.fin(),
        rst: tcp.rst(),
        payload: tcp.payload(),
    }))
}

/// The TCP segment in one captured frame of link-layer type `linktype`, or
/// `None` when it carries something else (ARP, UDP, ICMP, an IP fragment).
pub fn tcp_segment(linktype: u32, frame: &[u8]) -> Result<Option<Segment<'_>>, PacketError> {
    Ok(match carried(linktype, frame, &[])? {
        Carried::Tcp(s) => Some(s),
        _ => None,
    })
}

/// A capture read and its TCP connections reassembled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    /// pcap or pcapng.
    pub format: Format,
    /// Packets read.
    pub packets: usize,
    /// TCP segments on the watched ports.
    pub segments: usize,
    /// Two streams per connection (to the server, then from it), in the
    /// order the connections were first seen.
    pub streams: Vec<Stream>,
    /// DHCPv6 datagrams (UDP, IPv6, port 546 or a watched port at either
    /// end), in capture order, each decoded when asked ([`Datagram::decode`]).
    pub datagrams: Vec<Datagram>,
    /// Packets whose headers did not parse.
    pub unparsed: usize,
    /// The first of those: its number and why.
    pub first_unparsed: Option<(usize, String)>,
    /// Packets cut short by the capture's snapshot length.
    pub truncated: usize,
    /// IP fragments (not reassembled; their TCP data counts as missing, a
    /// DHCPv6 datagram in them is not decoded).
    pub fragments: usize,
    /// A record that ended the reading before the end of the file: the
    /// packets before it are in the streams.
    pub error: Option<CaptureError>,
}

struct Collector<'p> {
    reassembler: Reassembler,
    capture: Capture,
    /// The watched ports (547 and each `--port`).
    ports: &'p [u16],
    /// The whole file, for the offsets of the frames in it.
    file: &'p [u8],
}

impl Collector<'_> {
    /// One frame of the file.
    fn packet(&mut self, linktype: u32, frame: &[u8], orig_len: u32) -> Result<(), CaptureError> {
        let offset = udp::offset_in(self.file, frame).unwrap_or(0);
        let c = &mut self.capture;
        c.packets += 1;
        let cut = (frame.len() as u64) < u64::from(orig_len);
        if cut {
            c.truncated += 1;
        }
        match carried(linktype, frame, self.ports) {
            Ok(Carried::Tcp(seg)) => {
                if self.reassembler.push(&seg) {
                    c.segments += 1;
                }
            }
            Ok(Carried::Udp(p)) => c.datagrams.push(Datagram::found(c.packets, p, self.file)),
            Ok(Carried::UdpFault(ends, e)) => {
                c.datagrams
                    .push(Datagram::unreachable(c.packets, ends, offset, e));
            }
            Err(PacketError::Malformed(e)) => {
                let lax = slice_lax(linktype, frame);
                match lax.as_ref().and_then(|l| udp::refused(l, self.ports)) {
                    Some(ends) => {
                        let e = if cut {
                            format!(
                                "cut short by the snapshot length ({} of {orig_len} octets \
                                 captured): {e}",
                                frame.len()
                            )
                        } else {
                            e
                        };
                        c.datagrams
                            .push(Datagram::unreachable(c.packets, ends, offset, e));
                    }
                    None => {
                        c.unparsed += 1;
                        c.first_unparsed.get_or_insert((c.packets, e));
                    }
                }
            }
            Ok(Carried::Fragment) => c.fragments += 1,
            Ok(Carried::Other) => {}
            Err(PacketError::UnsupportedLinkType(l)) => {
                return Err(CaptureError::LinkType {
                    packet: c.packets,
                    linktype: l,
                    name: link_name(l),
                })
            }
        }
        Ok(())
    }
}

fn reason(e: &PcapError) -> String {
    match e {
        PcapError::IncompleteBuffer => "the file ends inside it".to_string(),
        e => e.to_string(),
    }
}

/// Read a pcap or pcapng capture (`format` as [`Format::detect`] found),
/// reassemble the TCP connections to or from `ports` and decode the UDP
/// datagrams to or from port 546 or `ports`.
///
/// A header that does not parse, or packets of an unsupported link-layer
/// type, are errors; a record that does not parse ends the reading, and the
/// packets before it are kept (see [`Capture::error`]).
pub fn read_capture(data: &[u8], format: Format, ports: &[u16]) -> Result<Capture, CaptureError> {
    let mut col = Collector {
        reassembler: Reassembler::new(ports),
        ports,
        file: data,
        capture: Capture {
            format,
            packets: 0,
            segments: 0,
            streams: Vec::new(),
            datagrams: Vec::new(),
            unparsed: 0,
            first_unparsed: None,
            truncated: 0,
            fragments: 0,
            error: None,
        },
    };
    let header = |e: PcapError| CaptureError::Header {
        format,
        reason: match e {
            PcapError::IncompleteBuffer => "the file ends inside its header".to_string(),
            e => e.to_string(),
        },
    };
    let record_error = |record, rest: &[u8], e: &PcapError| CaptureError::Record {
        format,
        record,
        offset: data.len() - rest.len(),
        reason: reason(e),
    };
    match format {
        Format::Raw => {
            return Err(CaptureError::Header {
                format,
                reason: "not a capture".to_string(),
            })
        }
        Format::Pcap => {
            let (mut rest, parser) = PcapParser::new(data).map_err(header)?;
            let linktype = u32::from(parser.header().datalink);
            let mut record = 0;
            while !rest.is_empty() {
                record += 1;
                // Raw records: pcap-file's checked ones refuse an original
                // length above the snapshot length, which is how a packet
                // cut short by the snapshot length is recorded.
                match parser.next_raw_packet(rest) {
                    Ok((rem, pkt)) => {
                        rest = rem;
                        col.packet(linktype, &pkt.data, pkt.orig_len)?;
                    }
                    Err(e) => {
                        col.capture.error = Some(record_error(record, rest, &e));
                        break;
                    }
                }
            }
        }
        Format::PcapNg => {
            let (mut rest, mut parser) = PcapNgParser::new(data).map_err(header)?;
            let mut record = 0;
            while !rest.is_empty() {
                record += 1;
                let (rem, block) = match parser.next_block(rest) {
                    Ok(b) => b,
                    Err(e) => {
                        col.capture.error = Some(record_error(record, rest, &e));
                        break;
                    }
                };
                let (interface, frame, orig_len) = match &block {
                    Block::EnhancedPacket(p) => (p.interface_id, &p.data, p.original_len),
                    Block::SimplePacket(p) => (0, &p.data, p.original_len),
                    Block::Packet(p) => (u32::from(p.interface_id), &p.data, p.original_len),
                    _ => {
                        rest = rem;
                        continue;
                    }
                };
                let Some(idb) = parser.interfaces().get(interface as usize) else {
                    col.capture.error = Some(CaptureError::Record {
                        format,
                        record,
                        offset: data.len() - rest.len(),
                        reason: format!(
                            "a packet on interface {interface}, which has no Interface Description Block"
                        ),
                    });
                    break;
                };
                let linktype = u32::from(idb.linktype);
                col.packet(linktype, frame, orig_len)?;
                rest = rem;
            }
        }
    }
    col.capture.streams = col.reassembler.finish();
    Ok(col.capture)
}

/// One stream of a capture with its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedStream {
    /// The stream.
    pub stream: Stream,
    /// [`decode_stream`] of its octets (offsets are stream offsets), then an
    /// error record for its gap if it has one.
    pub records: Vec<Record>,
}

impl DecodedStream {
    /// Decode `stream`: its contiguous octets as a raw stream is decoded,
    /// then the gap, if any, as an error at its offset.
    pub fn new(stream: Stream) -> Self {
        let mut records = decode_stream(&stream.data);
        if let Some(gap) = stream.gap {
            records.push(Record::Error {
                offset: gap.offset as usize,
                error: format!(
                    "{} {}: {} octets missing from the capture at stream offset {}; \
                     the {} octets captured after them are not decoded",
                    stream.connection, stream.direction, gap.missing, gap.offset, gap.discarded
                ),
            });
        }
        DecodedStream { stream, records }
    }

    /// Whether any record is an error (a malformed frame or message, a gap).
    pub fn failed(&self) -> bool {
        self.records
            .iter()
            .any(|r| matches!(r, Record::Error { .. }))
    }

    /// The text form: a header line, then [`format_record`] of each record.
    pub fn text_lines(&self) -> Vec<String> {
        let mut out = vec![stream_header(&self.stream)];
        out.extend(self.records.iter().map(format_record));
        out
    }

    /// The JSON form: a `stream` object, then each record with its
    /// `connection` and `direction`.
    pub fn json_lines(&self) -> Vec<String> {
        let s = &self.stream;
        let connection = s.connection.to_string();
        let (source, destination) = s.connection.endpoints(s.direction);
        let head = StreamJson {
            kind: "stream",
            connection: &connection,
            direction: s.direction,
            source: source.to_string(),
            destination: destination.to_string(),
            octets: s.data.len(),
            syn_seen: s.syn_seen,
            first_seq: s.first_seq,
            end: s.end,
            segments: s.segments,
            gap: s.gap,
        };
        let mut out = vec![serde_json::to_string(&head).expect("stream lines serialise")];
        out.extend(self.records.iter().map(|record| {
            serde_json::to_string(&RecordInStream {
                record,
                connection: &connection,
                direction: s.direction,
            })
            .expect("records serialise")
        }));
        out
    }
}

/// The `stream` line of `decode --json` for a capture.
#[derive(Serialize)]
struct StreamJson<'a> {
    kind: &'static str,
    connection: &'a str,
    direction: Direction,
    source: String,
    destination: String,
    octets: usize,
    syn_seen: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_seq: Option<u32>,
    end: StreamEnd,
    segments: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    gap: Option<super::reassembly::Gap>,
}

/// A record of `decode --json` for a capture: the raw stream's object plus
/// the stream it came from.
#[derive(Serialize)]
struct RecordInStream<'a> {
    #[serde(flatten)]
    record: &'a Record,
    connection: &'a str,
    direction: Direction,
}

/// The text header line of a stream, e.g.
/// `== [2001:db8::1]:40000 -> [2001:db8::547]:547 (client to server), 1234 octets ==`.
pub fn stream_header(s: &Stream) -> String {
    let (src, dst) = s.connection.endpoints(s.direction);
    let way = match s.direction {
        Direction::ToServer => "client to server",
        Direction::FromServer => "server to client",
    };
    let mut h = format!("== {src} -> {dst} ({way}), {} octets", s.data.len());
    if mid_connection(s) {
        h.push_str(", no SYN captured: offsets count from the first captured segment");
    }
    if s.end == StreamEnd::Reset {
        h.push_str(", reset");
    }
    if let Some(g) = s.gap {
        h.push_str(&format!(
            ", {} octets missing at offset {}",
            g.missing, g.offset
        ));
    }
    h.push_str(" ==");
    h
}

/// Whether a stream's octets were captured without its SYN (a direction
/// with no data, such as the RST refusing a connection, does not count).
fn mid_connection(s: &Stream) -> bool {
    !s.syn_seen && (!s.data.is_empty() || s.gap.is_some())
}

/// Lines for standard error about a capture: packets that did not parse,
/// were cut short or were fragments, and per stream a missing SYN,
/// retransmissions and ignored octets.
pub fn notes(c: &Capture) -> Vec<String> {
    let mut out = Vec::new();
    if let Some((n, e)) = &c.first_unparsed {
        out.push(format!(
            "{} packet(s) not parsed (the first, packet {n}: {e})",
            c.unparsed
        ));
    }
    if c.truncated > 0 {
        out.push(format!(
            "{} packet(s) cut short by the capture's snapshot length: their TCP data or DHCPv6 message is missing \
             (capture with a larger snapshot length, e.g. tcpdump -s 0)",
            c.truncated
        ));
    }
    if c.fragments > 0 {
        out.push(format!(
            "{} IP fragment(s) not reassembled: their TCP data counts as missing, \
             a DHCPv6 datagram in them is not decoded",
            c.fragments
        ));
    }
    for s in &c.streams {
        let name = format!("{} {}", s.connection, s.direction);
        if mid_connection(s) {
            out.push(format!(
                "{name}: no SYN captured (the capture began mid-connection): the stream starts \
                 at the first captured segment (seq {}), maybe inside a message",
                s.first_seq.unwrap_or(0)
            ));
        }
        if s.duplicate_octets > 0 {
            out.push(format!(
                "{name}: {} octet(s) received more than once (retransmissions){}",
                s.duplicate_octets,
                if s.conflicting_octets > 0 {
                    format!(
                        ", {} of them differing from the first copy (kept)",
                        s.conflicting_octets
                    )
                } else {
                    String::new()
                }
            ));
        }
        if s.ignored_after_end > 0 {
            out.push(format!(
                "{name}: {} octet(s) after the FIN or RST ignored",
                s.ignored_after_end
            ));
        }
        if s.ignored_before_start > 0 {
            out.push(format!(
                "{name}: {} octet(s) before the first captured segment ignored",
                s.ignored_before_start
            ));
        }
        if let Some(g) = s.gap {
            out.push(format!(
                "{name}: {} octets missing at stream offset {}: decoded up to there, \
                 the {} octets captured after them are not decoded",
                g.missing, g.offset, g.discarded
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_told_by_their_magic() {
        let mut ng = vec![0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a];
        assert_eq!(Format::detect(&ng), Format::PcapNg);
        ng[8] = 0;
        assert_eq!(Format::detect(&ng), Format::Raw);
        for magic in [
            [0xa1, 0xb2, 0xc3, 0xd4],
            [0xd4, 0xc3, 0xb2, 0xa1],
            [0xa1, 0xb2, 0x3c, 0x4d],
            [0x4d, 0x3c, 0xb2, 0xa1],
        ] {
            assert_eq!(Format::detect(&magic), Format::Pcap);
        }
        assert_eq!(Format::detect(&[0, 57, 14, 0, 1, 2]), Format::Raw);
        assert_eq!(Format::detect(&[]), Format::Raw);
    }

    #[test]
    fn unsupported_link_types_are_named() {
        let e = tcp_segment(127, &[0; 40]).unwrap_err();
        assert_eq!(e, PacketError::UnsupportedLinkType(127));
        assert!(e.to_string().contains("127 (IEEE802_11_RADIOTAP)"), "{e}");
    }

    #[test]
    fn short_cooked_and_loopback_headers_are_malformed_not_panics() {
        for l in [0, 1, 101, 108, 113, 228, 229, 276] {
            for n in 0..24 {
                let frame = vec![0x45; n];
                let r = tcp_segment(l, &frame);
                assert!(!matches!(r, Ok(Some(_))), "{l} {n}");
            }
        }
    }
}
