//! DHCPv6 over UDP in captures: clients send to port 547, servers and
//! relays answer to 546 (clients) or 547 (relays), relays talk to servers
//! on 547 both ways (RFC 8415 s.7.2). Every IPv6 UDP datagram with port 546
//! or 547 (or a `--port`) at either end is one DHCPv6 message, decoded by
//! [`super::decode_message`] with its relay layers unwrapped (RFC 8415 s.9)
//! and its IAs shown ([`super::dhcp`]).
//!
//! The link, IPv6 (extension headers included) and UDP headers are taken
//! apart by `etherparse` in [`super::capture`]; here the UDP length is
//! checked against the IPv6 payload (RFC 768, RFC 8200 s.8.1), and a frame
//! the strict slicing refused is sliced again leniently to tell whether it
//! was a DHCPv6 datagram (cut short by the snapshot length, most often), so
//! that it is reported as a fault with its packet number. UDP over IPv4 is
//! not DHCPv6 and is ignored; IP fragments are not reassembled (counted).

use super::{decode_message, format_record, Record};
use crate::proto::CLIENT_PORT;
use etherparse::{LaxNetSlice, LaxSlicedPacket, NetSlice, SlicedPacket, TransportSlice};
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;

/// One DHCPv6 datagram of a capture, not yet decoded: where its message is
/// in the file (a capture holds many; their records are made one datagram
/// at a time, as they are written, by [`Datagram::decode`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// The packet's number in the capture (1 for the first).
    pub packet: usize,
    /// IPv6 source address and UDP port.
    pub source: SocketAddr,
    /// IPv6 destination address and UDP port.
    pub destination: SocketAddr,
    /// The octets of the DHCPv6 message in the file; or, when it could not
    /// be reached, the file offset of the packet's frame and why.
    pub message: Result<Range<usize>, (usize, String)>,
}

impl Datagram {
    /// The datagram of packet `packet`, its message `p.message` lying in
    /// `file` (as the frames pcap-file gives do).
    pub fn found(packet: usize, p: Payload<'_>, file: &[u8]) -> Self {
        let message = match offset_in(file, p.message) {
            Some(at) => Ok(at..at + p.message.len()),
            None => Err((0, "the message is not inside the file".to_string())),
        };
        Datagram {
            packet,
            source: p.source,
            destination: p.destination,
            message,
        }
    }

    /// A datagram of packet `packet` whose message could not be reached,
    /// the packet's frame at file offset `offset`.
    pub fn unreachable(
        packet: usize,
        (source, destination): (SocketAddr, SocketAddr),
        offset: usize,
        error: String,
    ) -> Self {
        Datagram {
            packet,
            source,
            destination,
            message: Err((offset, error)),
        }
    }

    /// Decode the message, which lies in `file`.
    pub fn decode(&self, file: &[u8]) -> DecodedDatagram {
        let ends = (self.source, self.destination);
        match &self.message {
            Ok(r) => match file.get(r.clone()) {
                Some(message) => {
                    let p = Payload {
                        source: self.source,
                        destination: self.destination,
                        message,
                    };
                    DecodedDatagram::new(self.packet, p, r.start)
                }
                None => DecodedDatagram::fault(
                    self.packet,
                    ends,
                    r.start,
                    "the message is not inside the file".to_string(),
                ),
            },
            Err((offset, e)) => DecodedDatagram::fault(self.packet, ends, *offset, e.clone()),
        }
    }
}

/// One DHCPv6 datagram of a capture and its records (a `message` record and
/// its bindings, or an `error` record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedDatagram {
    /// The packet's number in the capture (1 for the first).
    pub packet: usize,
    /// IPv6 source address and UDP port.
    pub source: SocketAddr,
    /// IPv6 destination address and UDP port.
    pub destination: SocketAddr,
    /// The records; their `offset` is the file offset of the DHCPv6 message
    /// (of the packet's frame, after its record header, when the message
    /// could not be reached).
    pub records: Vec<Record>,
}

/// The DHCPv6 message of a strictly sliced frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Payload<'a> {
    /// IPv6 source address and UDP port.
    pub source: SocketAddr,
    /// IPv6 destination address and UDP port.
    pub destination: SocketAddr,
    /// The UDP payload.
    pub message: &'a [u8],
}

/// Whether a datagram between these ports is DHCPv6: 546 (client) or one of
/// `ports` (547 and each `--port`) at either end.
pub fn is_dhcp(ports: &[u16], source: u16, destination: u16) -> bool {
    let dhcp = |p: u16| p == CLIENT_PORT || ports.contains(&p);
    dhcp(source) || dhcp(destination)
}

/// The DHCPv6 message of a frame etherparse sliced: `None` when it is not
/// IPv6 UDP on a DHCPv6 port, an error text when the UDP length disagrees
/// with the IPv6 payload length.
pub fn payload<'a>(
    sliced: &SlicedPacket<'a>,
    ports: &[u16],
) -> Option<Result<Payload<'a>, (SocketAddr, SocketAddr, String)>> {
    let (Some(NetSlice::Ipv6(ip)), Some(TransportSlice::Udp(udp))) =
        (&sliced.net, &sliced.transport)
    else {
        return None;
    };
    if !is_dhcp(ports, udp.source_port(), udp.destination_port()) {
        return None;
    }
    let h = ip.header();
    let source = SocketAddr::new(IpAddr::V6(h.source_addr()), udp.source_port());
    let destination = SocketAddr::new(IpAddr::V6(h.destination_addr()), udp.destination_port());
    let ip_payload = ip.payload().payload.len();
    if usize::from(udp.length()) != ip_payload {
        return Some(Err((
            source,
            destination,
            format!(
                "UDP length {} does not match the {ip_payload} octets of IPv6 payload",
                udp.length()
            ),
        )));
    }
    Some(Ok(Payload {
        source,
        destination,
        message: udp.payload(),
    }))
}

/// A frame the strict slicing refused, sliced again leniently
/// ([`super::capture`]'s `slice_lax`): its addresses and ports when it is
/// IPv6 UDP on a DHCPv6 port (so the refusal is a fault of a DHCPv6
/// datagram), `None` otherwise.
pub fn refused(lax: &LaxSlicedPacket<'_>, ports: &[u16]) -> Option<(SocketAddr, SocketAddr)> {
    let (Some(LaxNetSlice::Ipv6(ip)), Some(TransportSlice::Udp(udp))) = (&lax.net, &lax.transport)
    else {
        return None;
    };
    if !is_dhcp(ports, udp.source_port(), udp.destination_port()) {
        return None;
    }
    let h = ip.header();
    Some((
        SocketAddr::new(IpAddr::V6(h.source_addr()), udp.source_port()),
        SocketAddr::new(IpAddr::V6(h.destination_addr()), udp.destination_port()),
    ))
}

impl DecodedDatagram {
    /// Decode the DHCPv6 message of packet `packet`, which sits at file
    /// offset `offset`.
    pub fn new(packet: usize, p: Payload<'_>, offset: usize) -> Self {
        let mut records = Vec::new();
        decode_message(offset, p.message, offset, true, &mut records);
        DecodedDatagram {
            packet,
            source: p.source,
            destination: p.destination,
            records,
        }
    }

    /// A datagram whose message could not be reached: an error record at
    /// file offset `offset` (the packet's frame).
    pub fn fault(
        packet: usize,
        (source, destination): (SocketAddr, SocketAddr),
        offset: usize,
        error: String,
    ) -> Self {
        DecodedDatagram {
            packet,
            source,
            destination,
            records: vec![Record::Error {
                offset,
                error: format!("packet {packet}: {error}"),
            }],
        }
    }

    /// Whether a record is an error.
    pub fn failed(&self) -> bool {
        self.records
            .iter()
            .any(|r| matches!(r, Record::Error { .. }))
    }

    /// The text form: each record as [`format_record`] gives it, the first
    /// line after the packet number and the addresses.
    pub fn text_lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (i, r) in self.records.iter().enumerate() {
            let text = format_record(r);
            if i == 0 {
                out.push(format!(
                    "#{} {} -> {} {text}",
                    self.packet, self.source, self.destination
                ));
            } else {
                out.push(text);
            }
        }
        out
    }

    /// The JSON form: each record with `transport` "udp", the packet number,
    /// source and destination.
    pub fn json_lines(&self) -> Vec<String> {
        let source = self.source.to_string();
        let destination = self.destination.to_string();
        self.records
            .iter()
            .map(|record| {
                serde_json::to_string(&RecordInDatagram {
                    record,
                    transport: "udp",
                    packet: self.packet,
                    source: &source,
                    destination: &destination,
                })
                .expect("records serialise")
            })
            .collect()
    }
}

/// A record of `decode --json` for a UDP datagram.
#[derive(Serialize)]
struct RecordInDatagram<'a> {
    #[serde(flatten)]
    record: &'a Record,
    transport: &'static str,
    packet: usize,
    source: &'a str,
    destination: &'a str,
}

/// The text header line before the datagrams of a capture.
pub fn header(datagrams: &[Datagram]) -> String {
    format!(
        "== DHCPv6 over UDP (ports 546/547): {} datagram(s), in capture order; #N is the packet number ==",
        datagrams.len()
    )
}

/// Octet offset of `inner` inside `outer`, when it is a part of it (the
/// frames pcap-file gives borrow from the file's buffer).
pub fn offset_in(outer: &[u8], inner: &[u8]) -> Option<usize> {
    let start = (inner.as_ptr() as usize).checked_sub(outer.as_ptr() as usize)?;
    (start + inner.len() <= outer.len()).then_some(start)
}

#[cfg(test)]
#[path = "udp_tests.rs"]
mod tests;
