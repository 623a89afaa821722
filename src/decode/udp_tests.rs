//! UDP datagram parsing and the detail of DHCPv6 messages, on hand-made
//! bytes: packets built with etherparse's `PacketBuilder` around
//! hand-written DHCPv6 messages.

use super::*;
use crate::decode::dhcp::{self, IaLeases};
use crate::proto::binding::LeaseKind;
use crate::proto::error::ErrorKind;
use crate::proto::view::MessageView;
use crate::proto::{MessageType, OptionCode};
use etherparse::PacketBuilder;

fn opt(code: u16, body: &[u8]) -> Vec<u8> {
    let mut v = code.to_be_bytes().to_vec();
    v.extend_from_slice(&(body.len() as u16).to_be_bytes());
    v.extend_from_slice(body);
    v
}

const DUID: [u8; 10] = [0, 3, 0, 1, 2, 0, 0, 0, 0xc1, 0x01];

/// A REPLY with a CLIENTID and an IA_PD holding one /56.
fn reply() -> Vec<u8> {
    let mut m = vec![7, 0xab, 0xcd, 0xef];
    m.extend(opt(1, &DUID));
    let mut pfx = 3600u32.to_be_bytes().to_vec();
    pfx.extend(7200u32.to_be_bytes());
    pfx.push(56);
    pfx.extend([
        0x20, 0x01, 0x0d, 0xb8, 0x80, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    let mut ia = 49409u32.to_be_bytes().to_vec();
    ia.extend(1800u32.to_be_bytes());
    ia.extend(2880u32.to_be_bytes());
    ia.extend(opt(26, &pfx));
    m.extend(opt(25, &ia));
    m
}

fn relay_repl(inner: &[u8], extra: &[u8]) -> Vec<u8> {
    let mut m = vec![13, 0];
    m.extend([0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    m.extend([
        0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xfe, 0, 0xc1, 0x01,
    ]);
    m.extend(opt(18, &[7, 0, 0, 0]));
    m.extend_from_slice(extra);
    m.extend(opt(9, inner));
    m
}

fn packet(src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv6(
            "2001:db8:ff::547"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
            "2001:db8:ff::1"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
            64,
        )
        .udp(src_port, dst_port);
    let mut out = Vec::new();
    b.write(&mut out, payload).unwrap();
    out
}

const PORTS: &[u16] = &[547];

#[test]
fn dhcp_ports_at_either_end() {
    assert!(is_dhcp(PORTS, 546, 40000));
    assert!(is_dhcp(PORTS, 40000, 547));
    assert!(is_dhcp(PORTS, 547, 547));
    assert!(!is_dhcp(PORTS, 53, 40000));
    assert!(is_dhcp(&[547, 10547], 10547, 1));
}

#[test]
fn a_relayed_reply_in_an_ethernet_frame() {
    let msg = relay_repl(&reply(), &[]);
    let frame = packet(547, 547, &msg);
    let sliced = SlicedPacket::from_ethernet(&frame).unwrap();
    let p = payload(&sliced, PORTS).unwrap().unwrap();
    assert_eq!(p.source.to_string(), "[2001:db8:ff::547]:547");
    assert_eq!(p.destination.to_string(), "[2001:db8:ff::1]:547");
    assert_eq!(p.message, &msg[..]);
    assert_eq!(offset_in(&frame, p.message), Some(14 + 40 + 8));
    let d = DecodedDatagram::new(5, p, 1000);
    assert!(!d.failed());
    let Record::Message {
        offset,
        msg_type,
        xid,
        detail: Some(detail),
        ..
    } = &d.records[0]
    else {
        panic!("{:?}", d.records)
    };
    assert_eq!(
        (*offset, msg_type.as_str(), *xid),
        (1000, "REPLY", Some(0xabcdef))
    );
    assert_eq!(detail.relay_type.as_deref(), Some("RELAY-REPL"));
    assert_eq!(
        detail.relay[0].interface_id.as_deref(),
        Some(&[7, 0, 0, 0][..])
    );
    assert_eq!(detail.relay[0].link_address.to_string(), "2001:db8:1::1");
    assert_eq!(detail.client_id.as_ref().unwrap().as_bytes(), DUID);
    let IaLeases::Prefixes(p) = &detail.ia_pd[0].leases else {
        panic!()
    };
    assert_eq!(
        p[0].lease,
        LeaseKind::Prefix("2001:db8:8000:200::/56".parse().unwrap())
    );
    let text = d.text_lines().join("\n");
    assert!(
        text.starts_with("#5 [2001:db8:ff::547]:547 -> [2001:db8:ff::1]:547 @1000 REPLY(7)"),
        "{text}"
    );
    assert!(
        text.contains("IAPREFIX 2001:db8:8000:200::/56 pref=3600 valid=7200"),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_str(&d.json_lines()[0]).unwrap();
    assert_eq!(json["transport"], "udp");
    assert_eq!(json["packet"], 5);
    assert_eq!(
        json["ia_pd"][0]["prefixes"][0]["prefix"],
        "2001:db8:8000:200::/56"
    );
    assert_eq!(json["relay"][0]["interface_id"], "07000000");
}

#[test]
fn other_udp_and_tcp_are_not_dhcp() {
    let frame = packet(53, 40000, &[0; 12]);
    let sliced = SlicedPacket::from_ethernet(&frame).unwrap();
    assert!(payload(&sliced, PORTS).is_none());
    let b = PacketBuilder::ethernet2([0; 6], [0; 6])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(546, 547);
    let mut v4 = Vec::new();
    b.write(&mut v4, &reply()).unwrap();
    let sliced = SlicedPacket::from_ethernet(&v4).unwrap();
    assert!(payload(&sliced, PORTS).is_none(), "DHCPv6 is IPv6 only");
}

#[test]
fn a_udp_length_that_disagrees_with_ipv6() {
    let mut frame = packet(546, 547, &reply());
    // UDP length (octets 4..6 of the UDP header) one short: etherparse
    // would cut the payload silently.
    let at = 14 + 40 + 4;
    let len = u16::from_be_bytes([frame[at], frame[at + 1]]) - 1;
    frame[at..at + 2].copy_from_slice(&len.to_be_bytes());
    let sliced = SlicedPacket::from_ethernet(&frame).unwrap();
    let (_, _, e) = payload(&sliced, PORTS).unwrap().unwrap_err();
    assert!(e.contains("does not match the"), "{e}");
}

#[test]
fn a_frame_cut_short_is_still_known_as_dhcp() {
    let frame = packet(546, 547, &reply());
    let cut = &frame[..frame.len() - 10];
    assert!(SlicedPacket::from_ethernet(cut).is_err());
    let lax = LaxSlicedPacket::from_ethernet(cut).unwrap();
    let (src, dst) = refused(&lax, PORTS).unwrap();
    assert_eq!((src.port(), dst.port()), (546, 547));
    // Cut inside the UDP header: nothing says it was DHCPv6.
    let lax = LaxSlicedPacket::from_ethernet(&frame[..14 + 40 + 3]).unwrap();
    assert!(refused(&lax, PORTS).is_none());
}

#[test]
fn offsets_only_inside() {
    let outer = [0u8; 10];
    assert_eq!(offset_in(&outer, &outer[3..7]), Some(3));
    assert_eq!(offset_in(&outer[3..], &outer[..2]), None);
    let other = [0u8; 4];
    let r = offset_in(&outer, &other);
    assert!(r.is_none() || r.unwrap() + 4 <= 10);
}

fn unwrap_err(msg: &[u8]) -> crate::proto::DecodeError {
    let m = MessageView::parse_validated(msg).unwrap();
    dhcp::unwrap(m).unwrap_err()
}

#[test]
fn an_ia_pd_overrunning_inside_a_relayed_reply() {
    let mut inner = reply();
    // The IAPREFIX length (inside the IA_PD) claims more than the IA_PD holds.
    let iaprefix = 4 + 14 + 4 + 12;
    inner[iaprefix + 3] = 200;
    let msg = relay_repl(&inner, &[]);
    let e = unwrap_err(&msg);
    assert!(
        matches!(e.kind, ErrorKind::OptionOverrun { len: 200, .. }),
        "{e}"
    );
    // Offsets count from the outer message: relay header, INTERFACE_ID,
    // RELAY_MSG header, then the REPLY's own offset.
    assert_eq!(e.offset, 34 + 8 + 4 + iaprefix);
    let mut records = Vec::new();
    crate::decode::decode_message(77, &msg, 77, true, &mut records);
    let [Record::Error { offset: 77, error }] = &records[..] else {
        panic!("{records:?}")
    };
    assert!(
        error.starts_with("message at offset 77: option IAPREFIX(26) at offset"),
        "{error}"
    );
}

#[test]
fn malformed_relay_nesting() {
    // A RELAY-REPL holding a RELAY-FORW.
    let mut forw = relay_repl(&reply(), &[]);
    forw[0] = 12;
    let e = unwrap_err(&relay_repl(&forw, &[]));
    assert_eq!(
        e.kind,
        ErrorKind::RelayTypeMismatch {
            outer: MessageType::RelayRepl,
            inner: MessageType::RelayForw
        }
    );
    // A second INTERFACE_ID.
    let e = unwrap_err(&relay_repl(&reply(), &opt(18, &[1])));
    assert_eq!(e.kind, ErrorKind::DuplicateOption(OptionCode::InterfaceId));
    // A RELAY_MSG whose relay message is shorter than a relay header: the
    // codec refuses it before the detail is gathered.
    let msg = relay_repl(&[13, 0, 0], &[]);
    assert!(MessageView::parse_validated(&msg).is_err());
}

#[test]
fn a_second_client_id() {
    let mut m = reply();
    m.extend(opt(1, &DUID));
    let e = unwrap_err(&m);
    assert_eq!(e.kind, ErrorKind::DuplicateOption(OptionCode::ClientId));
}

#[test]
fn a_fault_names_its_packet() {
    let ends = ("[::1]:546".parse().unwrap(), "[::2]:547".parse().unwrap());
    let d = DecodedDatagram::fault(9, ends, 4242, "cut short".into());
    assert!(d.failed());
    assert_eq!(
        d.text_lines(),
        vec!["#9 [::1]:546 -> [::2]:547 @4242 ERROR: packet 9: cut short"]
    );
}

/// A Kea Bulk Leasequery message (tests/data/kea), without its 2-octet
/// TCP length prefix: LEASEQUERY and LEASEQUERY-REPLY travel over UDP too
/// (RFC 5007 s.4.1).
fn kea_message(bytes: &[u8]) -> &[u8] {
    let len = usize::from(u16::from_be_bytes([bytes[0], bytes[1]]));
    &bytes[2..2 + len]
}

#[test]
fn leasequery_messages_over_udp_with_their_bindings() {
    let query = kea_message(include_bytes!(
        "../../tests/data/kea/02_relayid_B.request.bin"
    ));
    let reply = kea_message(include_bytes!(
        "../../tests/data/kea/02_relayid_B.response.bin"
    ));
    let ends = (
        "[2001:db8::1]:547".parse().unwrap(),
        "[2001:db8::547]:547".parse().unwrap(),
    );
    let p = |message| Payload {
        source: ends.0,
        destination: ends.1,
        message,
    };
    let d = DecodedDatagram::new(1, p(query), 0);
    assert!(
        matches!(&d.records[..], [Record::Message { msg_type, .. }] if msg_type == "LEASEQUERY")
    );
    let d = DecodedDatagram::new(2, p(reply), 0);
    let Record::Message {
        msg_type,
        client_data,
        detail: Some(detail),
        ..
    } = &d.records[0]
    else {
        panic!("{:?}", d.records)
    };
    assert_eq!((msg_type.as_str(), *client_data), ("LEASEQUERY-REPLY", 1));
    assert!(detail.relay.is_empty() && detail.ia_pd.is_empty());
    assert!(
        matches!(d.records[1], Record::Binding { .. }),
        "{:?}",
        d.records
    );
    // A message type with no name, and a RECONFIGURE.
    for (t, name) in [(200u8, "unknown(200)"), (10, "RECONFIGURE")] {
        let msg = [t, 0, 0, 1];
        let payload = Payload {
            message: &msg,
            ..p(query)
        };
        let d = DecodedDatagram::new(3, payload, 0);
        assert!(
            matches!(&d.records[..], [Record::Message { msg_type, .. }] if msg_type == name),
            "{:?}",
            d.records
        );
    }
}

#[test]
fn a_datagram_is_found_in_its_file_and_decoded_when_asked() {
    let file = packet(546, 547, &reply());
    let sliced = SlicedPacket::from_ethernet(&file).unwrap();
    let p = payload(&sliced, PORTS).unwrap().unwrap();
    let d = Datagram::found(4, p, &file);
    assert_eq!(d.message, Ok(62..file.len()));
    let decoded = d.decode(&file);
    assert!(!decoded.failed());
    assert!(matches!(
        decoded.records[0],
        Record::Message { offset: 62, .. }
    ));
    // A message that is not in the file (never, from pcap-file's parsers)
    // is a fault, not a panic; so is a file shorter than the range.
    let elsewhere = reply();
    let q = Payload {
        message: &elsewhere,
        ..p
    };
    assert!(Datagram::found(4, q, &file).decode(&file).failed());
    assert!(d.decode(&file[..70]).failed());
}

#[test]
fn ipv6_extension_headers_before_udp() {
    use etherparse::{IpHeaders, IpNumber, Ipv6Extensions, Ipv6Header, Ipv6RawExtHeader};
    let exts = Ipv6Extensions {
        hop_by_hop_options: Some(Ipv6RawExtHeader::new_raw(IpNumber::UDP, &[0; 6]).unwrap()),
        ..Default::default()
    };
    let h = Ipv6Header {
        hop_limit: 1,
        source: [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        destination: [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2],
        ..Default::default()
    };
    let msg = reply();
    let mut frame = Vec::new();
    PacketBuilder::ip(IpHeaders::Ipv6(h, exts))
        .udp(546, 547)
        .write(&mut frame, &msg)
        .unwrap();
    let sliced = SlicedPacket::from_ip(&frame).unwrap();
    let p = payload(&sliced, PORTS).unwrap().unwrap();
    assert_eq!(p.message, &msg[..]);
    assert_eq!(offset_in(&frame, p.message), Some(40 + 8 + 8));
    assert_eq!(p.destination.to_string(), "[ff02::1:2]:547");
}
