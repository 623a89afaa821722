//! Parser tests: one hand-annotated packet, then packets built with
//! etherparse's `PacketBuilder` around messages built with the crate's owned
//! message types, for every kind of result and many malformed inputs.

use super::*;
use crate::proto::error::{DecodeError, ErrorKind};
use crate::proto::message::{ClientMessage, DhcpOption, IaPrefix as OwnedIaPrefix, Message};
use crate::proto::RelayMessage;
use etherparse::{IpFragOffset, PacketBuilder};
use etherparse::{IpHeaders, Ipv6Extensions, Ipv6FragmentHeader, Ipv6Header, Ipv6RawExtHeader};
use ipnet::Ipv6Net;

const OUT: Direction = Direction::Outgoing;
const IN: Direction = Direction::Incoming;

fn addr(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn router() -> Ipv6Addr {
    addr("fe80::1")
}

fn client() -> Ipv6Addr {
    addr("fe80::2")
}

fn ldra() -> Ipv6Addr {
    addr("fe80::3")
}

fn client_duid() -> Duid {
    Duid::new_ll(1, &[2, 0, 0, 0, 0, 2])
}

fn server_duid() -> Duid {
    Duid::new_ll(1, &[2, 0, 0, 0, 0, 1])
}

/// An IPv6/UDP packet around `payload`, as the capture socket delivers it.
fn udp(src: Ipv6Addr, dst: Ipv6Addr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ipv6(src.octets(), dst.octets(), 255).udp(sport, dport);
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload).unwrap();
    out
}

fn iaprefix(prefix: &str, preferred: u32, valid: u32, options: Vec<DhcpOption>) -> DhcpOption {
    DhcpOption::IaPrefix(OwnedIaPrefix {
        preferred_lifetime: preferred,
        valid_lifetime: valid,
        prefix: prefix.parse().unwrap(),
        options,
    })
}

/// OPTION_IA_PD (25): the owned codec keeps it raw.
fn ia_pd(iaid: u32, t1: u32, t2: u32, options: &[DhcpOption]) -> DhcpOption {
    let mut data = Vec::new();
    data.extend_from_slice(&iaid.to_be_bytes());
    data.extend_from_slice(&t1.to_be_bytes());
    data.extend_from_slice(&t2.to_be_bytes());
    for o in options {
        o.encode(&mut data);
    }
    DhcpOption::Unknown { code: 25, data }
}

fn client_msg(msg_type: MessageType, xid: u32, options: Vec<DhcpOption>) -> Message {
    Message::Client(ClientMessage {
        msg_type,
        transaction_id: xid,
        options,
    })
}

/// A typical REPLY: CLIENTID, SERVERID, one IA_PD with one IAPREFIX.
fn typical_reply() -> Message {
    client_msg(
        MessageType::Reply,
        0x123456,
        vec![
            DhcpOption::ClientId(client_duid()),
            DhcpOption::ServerId(server_duid()),
            ia_pd(
                1,
                3600,
                5400,
                &[iaprefix("2001:db8:aa::/56", 7200, 10800, vec![])],
            ),
        ],
    )
}

fn relay(
    msg_type: MessageType,
    hop: u8,
    link: &str,
    peer: Ipv6Addr,
    opts: Vec<DhcpOption>,
) -> Message {
    Message::Relay(RelayMessage {
        msg_type,
        hop_count: hop,
        link_address: addr(link),
        peer_address: peer,
        options: opts,
    })
}

fn relay_msg(inner: Message) -> DhcpOption {
    DhcpOption::RelayMsg(Box::new(inner))
}

fn expect_reply(s: Snooped) -> Reply {
    match s {
        Snooped::Reply(r) => r,
        other => panic!("expected a reply, got {other:?}"),
    }
}

fn expect_release(s: Snooped) -> Release {
    match s {
        Snooped::Release(r) => r,
        other => panic!("expected a release, got {other:?}"),
    }
}

fn expect_err(packet: &[u8], dir: Direction) -> SnoopError {
    match parse(packet, dir) {
        Err(e) => e,
        Ok(s) => panic!("expected an error, got {s:?}"),
    }
}

fn reply_packet(m: &Message) -> Vec<u8> {
    udp(router(), client(), 547, 546, &m.to_bytes())
}

/// A REPLY sent to a client, every octet annotated. The UDP checksum is
/// whatever was captured (not checked: see the module documentation).
#[rustfmt::skip]
const ANNOTATED_REPLY: [u8; 125] = [
    // IPv6 header (RFC 8200 s.3)
    0x60, 0x00, 0x00, 0x00,             // version 6, traffic class 0, flow label 0
    0x00, 0x55,                         // payload length 85
    0x11,                               // next header 17: UDP
    0xff,                               // hop limit 255
    0xfe, 0x80, 0, 0, 0, 0, 0, 0,       // source fe80::1 (the router)
    0, 0, 0, 0, 0, 0, 0, 0x01,
    0xfe, 0x80, 0, 0, 0, 0, 0, 0,       // destination fe80::2 (the client)
    0, 0, 0, 0, 0, 0, 0, 0x02,
    // UDP header (offset 40)
    0x02, 0x23,                         // source port 547
    0x02, 0x22,                         // destination port 546
    0x00, 0x55,                         // length 85
    0xab, 0xcd,                         // checksum (not checked)
    // DHCPv6 REPLY (offset 48, RFC 8415 s.8)
    0x07,                               // msg-type REPLY
    0x12, 0x34, 0x56,                   // transaction-id
    // OPTION_CLIENTID (offset 52): DUID-LL, Ethernet, 02:00:00:00:00:02
    0x00, 0x01, 0x00, 0x0a,
    0x00, 0x03, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02,
    // OPTION_SERVERID (offset 66): DUID-LL, Ethernet, 02:00:00:00:00:01
    0x00, 0x02, 0x00, 0x0a,
    0x00, 0x03, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
    // OPTION_IA_PD (offset 80, RFC 8415 s.21.21), length 12 + 29
    0x00, 0x19, 0x00, 0x29,
    0x00, 0x00, 0x00, 0x01,             // IAID 1
    0x00, 0x00, 0x0e, 0x10,             // T1 3600
    0x00, 0x00, 0x15, 0x18,             // T2 5400
    // OPTION_IAPREFIX (offset 96, RFC 8415 s.21.22), length 25
    0x00, 0x1a, 0x00, 0x19,
    0x00, 0x00, 0x1c, 0x20,             // preferred-lifetime 7200
    0x00, 0x00, 0x2a, 0x30,             // valid-lifetime 10800
    0x38,                               // prefix-length 56
    0x20, 0x01, 0x0d, 0xb8, 0x00, 0xaa, 0x00, 0x00, // 2001:db8:aa::
    0, 0, 0, 0, 0, 0, 0, 0,
];

#[test]
fn annotated_reply() {
    let r = expect_reply(parse(&ANNOTATED_REPLY, OUT).unwrap());
    assert_eq!(
        r.datagram,
        Datagram {
            source: router(),
            destination: client(),
            source_port: 547,
            destination_port: 546,
            hop_limit: 255,
            message_offset: 48,
            message_len: 77,
        }
    );
    assert!(r.relay.is_empty());
    assert_eq!(r.client_address(), client());
    assert_eq!(r.transaction_id, 0x123456);
    assert_eq!(r.status, None);
    assert_eq!(r.client_id, Some(client_duid()));
    assert_eq!(r.server_id, server_duid());
    assert_eq!(
        r.ia_pds,
        vec![IaPd {
            iaid: 1,
            t1: 3600,
            t2: 5400,
            status: None,
            prefixes: vec![DelegatedPrefix {
                prefix: "2001:db8:aa::/56".parse().unwrap(),
                preferred_lifetime: 7200,
                valid_lifetime: 10800,
                status: None,
            }],
        }]
    );
    // The builder gives the same octets (but for the checksum).
    let mut built = reply_packet(&typical_reply());
    built[46..48].copy_from_slice(&[0xab, 0xcd]);
    assert_eq!(built, ANNOTATED_REPLY);
}

#[test]
fn annotated_reply_faults_name_their_offset() {
    // prefix-length 129 at offset 96 + 4 + 8.
    let mut p = ANNOTATED_REPLY;
    p[108] = 129;
    let e = expect_err(&p, OUT);
    assert_eq!(e.offset, 108);
    assert_eq!(e.option, Some(OptionCode::IaPrefix));
    assert!(matches!(
        e.kind,
        SnoopErrorKind::Dhcp(DecodeError {
            kind: ErrorKind::BadPrefixLength(129),
            ..
        })
    ));
    assert_eq!(
        e.to_string(),
        "at offset 108 (option IAPREFIX(26)): DHCPv6: prefix-length 129 is over 128"
    );
    // IAPREFIX length 26: one octet past the IA_PD's end.
    let mut p = ANNOTATED_REPLY;
    p[99] = 26;
    let e = expect_err(&p, OUT);
    assert_eq!(e.offset, 96);
    assert!(matches!(
        e.kind,
        SnoopErrorKind::Dhcp(DecodeError {
            kind: ErrorKind::OptionOverrun {
                len: 26,
                available: 25
            },
            ..
        })
    ));
    // SERVERID length 0 (a DUID is 1 to 130 octets) at offset 66: the
    // SERVERID is then followed by garbage, so the walk stops there.
    let mut p = ANNOTATED_REPLY;
    p[69] = 0;
    let e = expect_err(&p, OUT);
    assert_eq!(e.offset, 66);
    assert_eq!(e.option, Some(OptionCode::ServerId));
    // UDP length one short of the IPv6 payload.
    let mut p = ANNOTATED_REPLY;
    p[45] = 0x54;
    let e = expect_err(&p, OUT);
    assert_eq!(e.offset, 44);
    assert_eq!(
        e.kind,
        SnoopErrorKind::UdpLength {
            udp_length: 84,
            ip_payload: 85
        }
    );
}

#[test]
fn reply_with_statuses_host_bits_and_several_ia_pds() {
    let m = client_msg(
        MessageType::Reply,
        7,
        vec![
            DhcpOption::ServerId(server_duid()),
            DhcpOption::status(StatusCode::Success, "ok"),
            DhcpOption::ClientId(client_duid()),
            ia_pd(
                10,
                0,
                0,
                &[
                    iaprefix("2001:db8:1::/48", 100, 200, vec![]),
                    // host bits as sent; lifetimes inconsistent (discarded by the client)
                    iaprefix(
                        "2001:db8:2::1/64",
                        300,
                        200,
                        vec![DhcpOption::status(StatusCode::Success, "")],
                    ),
                    DhcpOption::Unknown {
                        code: 999,
                        data: vec![1, 2, 3],
                    },
                ],
            ),
            ia_pd(
                11,
                900,
                800,
                &[DhcpOption::status(StatusCode::NoPrefixAvail, "none left")],
            ),
            DhcpOption::Unknown {
                code: 23,
                data: vec![0; 16],
            },
        ],
    );
    let r = expect_reply(parse(&reply_packet(&m), OUT).unwrap());
    assert_eq!(r.transaction_id, 7);
    assert_eq!(r.status, Some(StatusCode::Success));
    assert_eq!(r.ia_pds.len(), 2);
    let a = &r.ia_pds[0];
    assert_eq!((a.iaid, a.t1, a.t2, a.status), (10, 0, 0, None));
    assert!(a.timers_consistent());
    assert_eq!(a.prefixes.len(), 2);
    assert!(!a.prefixes[0].has_host_bits());
    assert!(a.prefixes[0].lifetimes_consistent());
    let p = &a.prefixes[1];
    assert_eq!(p.prefix.to_string(), "2001:db8:2::1/64");
    assert!(p.has_host_bits());
    assert!(!p.lifetimes_consistent());
    assert_eq!(p.status, Some(StatusCode::Success));
    let b = &r.ia_pds[1];
    assert_eq!(b.status, Some(StatusCode::NoPrefixAvail));
    assert!(b.prefixes.is_empty());
    assert!(!b.timers_consistent());
}

#[test]
fn reply_with_top_level_failure_and_no_ia_pd() {
    // A REPLY to an INFORMATION-REQUEST need not carry a CLIENTID.
    let m = client_msg(
        MessageType::Reply,
        1,
        vec![
            DhcpOption::ServerId(server_duid()),
            DhcpOption::status(StatusCode::UnspecFail, "busy"),
        ],
    );
    let r = expect_reply(parse(&reply_packet(&m), OUT).unwrap());
    assert_eq!(r.status, Some(StatusCode::UnspecFail));
    assert_eq!(r.client_id, None);
    assert!(r.ia_pds.is_empty());
}

/// What a relay sends to a lightweight relay (RFC 6221): its own layer
/// stripped, the LDRA's layer (link-address ::, interface-id) around the REPLY.
fn ldra_reply(inner: Message) -> Message {
    relay(
        MessageType::RelayRepl,
        0,
        "::",
        client(),
        vec![DhcpOption::InterfaceId(b"port7".to_vec()), relay_msg(inner)],
    )
}

#[test]
fn relay_reply_to_a_lightweight_relay() {
    let m = ldra_reply(typical_reply());
    let p = udp(router(), ldra(), 547, 547, &m.to_bytes());
    let r = expect_reply(parse(&p, OUT).unwrap());
    assert_eq!(r.datagram.destination, ldra());
    assert_eq!(
        r.relay,
        vec![RelayHop {
            hop_count: 0,
            link_address: Ipv6Addr::UNSPECIFIED,
            peer_address: client(),
            interface_id: Some(b"port7".to_vec()),
        }]
    );
    assert_eq!(r.client_address(), client());
    assert_eq!(r.transaction_id, 0x123456);
    assert_eq!(r.ia_pds[0].prefixes[0].valid_lifetime, 10800);
}

#[test]
fn relay_reply_through_two_lightweight_relays() {
    let inner = ldra_reply(typical_reply());
    let m = relay(
        MessageType::RelayRepl,
        1,
        "::",
        addr("fe80::9"),
        vec![relay_msg(inner)],
    );
    let p = udp(router(), ldra(), 547, 547, &m.to_bytes());
    let r = expect_reply(parse(&p, OUT).unwrap());
    assert_eq!(r.relay.len(), 2);
    assert_eq!(r.relay[0].peer_address, addr("fe80::9"));
    assert_eq!(r.relay[0].hop_count, 1);
    assert_eq!(r.relay[0].interface_id, None);
    assert_eq!(r.client_address(), client());
}

#[test]
fn relay_chain_depth_limit() {
    let mut m = typical_reply();
    for i in 0..HOP_COUNT_LIMIT {
        m = relay(
            MessageType::RelayRepl,
            i as u8,
            "::",
            client(),
            vec![relay_msg(m)],
        );
    }
    let p = udp(router(), ldra(), 547, 547, &m.to_bytes());
    let r = expect_reply(parse(&p, OUT).unwrap());
    assert_eq!(r.relay.len(), HOP_COUNT_LIMIT);
    let m = relay(
        MessageType::RelayRepl,
        99,
        "::",
        client(),
        vec![relay_msg(m)],
    );
    let p = udp(router(), ldra(), 547, 547, &m.to_bytes());
    let e = expect_err(&p, OUT);
    assert_eq!(e.kind, SnoopErrorKind::TooManyRelayLayers);
    // The 33rd layer from the outside starts 32 relay headers and RELAY_MSG
    // option headers into the message.
    assert_eq!(e.offset, 48 + HOP_COUNT_LIMIT * (34 + 4));
}

#[test]
fn relay_reply_around_another_message_is_ignored() {
    let adv = client_msg(
        MessageType::Advertise,
        1,
        vec![DhcpOption::ServerId(server_duid())],
    );
    let p = udp(router(), ldra(), 547, 547, &ldra_reply(adv).to_bytes());
    assert_eq!(
        parse(&p, OUT).unwrap(),
        Snooped::Ignored(IgnoreReason::Uninteresting {
            msg_type: MessageType::Advertise,
            relayed: true
        })
    );
}

fn release_msg(msg_type: MessageType) -> Message {
    client_msg(
        msg_type,
        0xabcdef,
        vec![
            DhcpOption::ClientId(client_duid()),
            DhcpOption::ServerId(server_duid()),
            ia_pd(1, 0, 0, &[iaprefix("2001:db8:aa::/56", 0, 0, vec![])]),
        ],
    )
}

#[test]
fn release_and_decline_from_a_client() {
    for t in [MessageType::Release, MessageType::Decline] {
        let p = udp(
            client(),
            addr("ff02::1:2"),
            546,
            547,
            &release_msg(t).to_bytes(),
        );
        let r = expect_release(parse(&p, IN).unwrap());
        assert_eq!(r.msg_type, t);
        assert_eq!(r.transaction_id, 0xabcdef);
        assert_eq!(r.client_id, client_duid());
        assert_eq!(r.server_id, server_duid());
        assert_eq!(r.client_address(), client());
        assert!(r.relay.is_empty());
        assert_eq!(r.ia_pds[0].iaid, 1);
        assert_eq!(
            r.ia_pds[0].prefixes[0].prefix,
            "2001:db8:aa::/56".parse::<Ipv6Net>().unwrap()
        );
    }
}

#[test]
fn release_relayed_by_a_lightweight_relay() {
    let m = relay(
        MessageType::RelayForw,
        0,
        "::",
        client(),
        vec![
            DhcpOption::InterfaceId(b"port7".to_vec()),
            relay_msg(release_msg(MessageType::Release)),
        ],
    );
    let p = udp(ldra(), router(), 547, 547, &m.to_bytes());
    let r = expect_release(parse(&p, IN).unwrap());
    assert_eq!(r.datagram.source, ldra());
    assert_eq!(r.relay.len(), 1);
    assert_eq!(r.relay[0].interface_id.as_deref(), Some(&b"port7"[..]));
    assert_eq!(r.client_address(), client());
    // A relayed SOLICIT is of no interest.
    let solicit = client_msg(MessageType::Solicit, 1, vec![]);
    let m = relay(
        MessageType::RelayForw,
        0,
        "::",
        client(),
        vec![relay_msg(solicit)],
    );
    let p = udp(ldra(), router(), 547, 547, &m.to_bytes());
    assert_eq!(
        parse(&p, IN).unwrap(),
        Snooped::Ignored(IgnoreReason::Uninteresting {
            msg_type: MessageType::Solicit,
            relayed: true
        })
    );
}

#[test]
fn release_needs_both_duids() {
    let m = client_msg(
        MessageType::Release,
        1,
        vec![DhcpOption::ServerId(server_duid())],
    );
    let p = udp(client(), router(), 546, 547, &m.to_bytes());
    let e = expect_err(&p, IN);
    assert_eq!(e.kind, SnoopErrorKind::MissingOption(OptionCode::ClientId));
    assert_eq!(e.offset, 48);
    let m = client_msg(
        MessageType::Decline,
        1,
        vec![DhcpOption::ClientId(client_duid())],
    );
    let p = udp(client(), router(), 546, 547, &m.to_bytes());
    let e = expect_err(&p, IN);
    assert_eq!(e.kind, SnoopErrorKind::MissingOption(OptionCode::ServerId));
}

#[test]
fn server_messages_from_the_link_are_forgeries() {
    let reply = reply_packet(&typical_reply());
    assert_eq!(
        parse(&reply, IN).unwrap(),
        Snooped::Forged(Forged {
            datagram: parse_datagram(&reply),
            msg_type: MessageType::Reply
        })
    );
    let rr = udp(
        client(),
        router(),
        547,
        547,
        &ldra_reply(typical_reply()).to_bytes(),
    );
    assert!(matches!(
        parse(&rr, IN).unwrap(),
        Snooped::Forged(Forged {
            msg_type: MessageType::RelayRepl,
            ..
        })
    ));
    for t in [MessageType::Advertise, MessageType::Reconfigure] {
        let p = udp(
            client(),
            router(),
            547,
            546,
            &client_msg(t, 1, vec![]).to_bytes(),
        );
        assert!(matches!(parse(&p, IN).unwrap(), Snooped::Forged(f) if f.msg_type == t));
    }
    // Decided on the msg-type alone: malformed options do not hide one.
    let p = udp(
        client(),
        router(),
        547,
        546,
        &[7, 0, 0, 1, 0, 1, 0xff, 0xff],
    );
    assert!(matches!(parse(&p, IN).unwrap(), Snooped::Forged(_)));
}

/// The datagram of a packet that parses as anything but an error.
fn parse_datagram(p: &[u8]) -> Datagram {
    match parse(p, OUT).unwrap() {
        Snooped::Reply(r) => r.datagram,
        other => panic!("{other:?}"),
    }
}

#[test]
fn ignored_packets() {
    use IgnoreReason as I;
    let ignored = |p: &[u8], d| match parse(p, d) {
        Ok(Snooped::Ignored(r)) => r,
        other => panic!("expected Ignored, got {other:?}"),
    };
    let reply = typical_reply().to_bytes();
    // A REPLY sent to port 547, a RELAY-REPL to 546.
    let p = udp(router(), client(), 547, 547, &reply);
    assert_eq!(
        ignored(&p, OUT),
        I::WrongPort {
            msg_type: MessageType::Reply,
            destination: 547
        }
    );
    let p = udp(
        router(),
        client(),
        547,
        546,
        &ldra_reply(typical_reply()).to_bytes(),
    );
    assert!(matches!(ignored(&p, OUT), I::WrongPort { .. }));
    // A RELEASE to the client port.
    let p = udp(
        client(),
        router(),
        547,
        546,
        &release_msg(MessageType::Release).to_bytes(),
    );
    assert_eq!(
        ignored(&p, IN),
        I::WrongPort {
            msg_type: MessageType::Release,
            destination: 546
        }
    );
    // A RELEASE this router sends (it is a client on that link?) is not a client's.
    let p = udp(
        router(),
        client(),
        546,
        547,
        &release_msg(MessageType::Release).to_bytes(),
    );
    assert_eq!(
        ignored(&p, OUT),
        I::Uninteresting {
            msg_type: MessageType::Release,
            relayed: false
        }
    );
    // Client messages of no interest, and an outgoing RELAY-FORW.
    for t in [
        MessageType::Solicit,
        MessageType::Request,
        MessageType::Renew,
        MessageType::Rebind,
        MessageType::Confirm,
        MessageType::InformationRequest,
        MessageType::Unknown(200),
    ] {
        let p = udp(
            client(),
            addr("ff02::1:2"),
            546,
            547,
            &client_msg(t, 1, vec![]).to_bytes(),
        );
        assert_eq!(
            ignored(&p, IN),
            I::Uninteresting {
                msg_type: t,
                relayed: false
            }
        );
    }
    let fw = relay(MessageType::RelayForw, 0, "2001:db8::1", client(), vec![]);
    let p = udp(router(), addr("2001:db8::547"), 547, 547, &fw.to_bytes());
    assert!(matches!(ignored(&p, OUT), I::Uninteresting { .. }));
    // Other ports (even from 547), and not UDP at all.
    let p = udp(router(), client(), 547, 5547, &reply);
    assert_eq!(
        ignored(&p, OUT),
        I::NotDhcpPort {
            source: 547,
            destination: 5547
        }
    );
    let b = PacketBuilder::ipv6(router().octets(), client().octets(), 64).tcp(547, 546, 1, 1000);
    let mut tcp = Vec::new();
    b.write(&mut tcp, &reply).unwrap();
    assert_eq!(ignored(&tcp, OUT), I::NotUdp(6));
}

/// An IPv6 packet with extension headers before the UDP datagram.
fn with_extensions(exts: Ipv6Extensions, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let header = Ipv6Header {
        hop_limit: 255,
        source: router().octets(),
        destination: client().octets(),
        ..Default::default()
    };
    let b = PacketBuilder::ip(IpHeaders::Ipv6(header, exts)).udp(sport, dport);
    let mut out = Vec::new();
    b.write(&mut out, payload).unwrap();
    out
}

#[test]
fn extension_headers_are_walked() {
    let exts = Ipv6Extensions {
        hop_by_hop_options: Some(
            Ipv6RawExtHeader::new_raw(IpNumber::UDP, &[1, 4, 0, 0, 0, 0]).unwrap(),
        ),
        destination_options: Some(
            Ipv6RawExtHeader::new_raw(IpNumber::UDP, &[1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
                .unwrap(),
        ),
        ..Default::default()
    };
    let p = with_extensions(exts, 547, 546, &typical_reply().to_bytes());
    let r = expect_reply(parse(&p, OUT).unwrap());
    assert_eq!(r.datagram.message_offset, 40 + 8 + 16 + 8);
    assert_eq!(r.ia_pds.len(), 1);
    // Offsets of DHCPv6 faults count the extension headers.
    let mut bad = p.clone();
    let plen_at = r.datagram.message_offset + (96 - 48) + 12;
    bad[plen_at] = 200;
    assert_eq!(expect_err(&bad, OUT).offset, plen_at);
}

#[test]
fn fragments_are_ignored() {
    let reply = typical_reply().to_bytes();
    // First fragment (offset 0, more fragments) and a later one.
    for (offset, more) in [(0u16, true), (8, false)] {
        let exts = Ipv6Extensions {
            fragment: Some(Ipv6FragmentHeader::new(
                IpNumber::UDP,
                IpFragOffset::try_new(offset).unwrap(),
                more,
                0x1234,
            )),
            ..Default::default()
        };
        let p = with_extensions(exts, 547, 546, &reply);
        assert_eq!(
            parse(&p, OUT).unwrap(),
            Snooped::Ignored(IgnoreReason::Fragment)
        );
    }
    // An atomic fragment (offset 0, no more fragments) is a whole datagram.
    let exts = Ipv6Extensions {
        fragment: Some(Ipv6FragmentHeader::new(
            IpNumber::UDP,
            IpFragOffset::ZERO,
            false,
            1,
        )),
        ..Default::default()
    };
    let p = with_extensions(exts, 547, 546, &reply);
    assert!(matches!(parse(&p, OUT).unwrap(), Snooped::Reply(_)));
}

#[test]
fn malformed_ip_and_udp() {
    let good = reply_packet(&typical_reply());
    // Nothing, and a cut IPv6 header.
    for p in [&[][..], &good[..39]] {
        let e = expect_err(p, OUT);
        assert_eq!(e.offset, 0);
        assert!(matches!(
            e.kind,
            SnoopErrorKind::Ipv6(err::ipv6::SliceError::Len(_))
        ));
    }
    // IPv4 in the version field.
    let mut p = good.clone();
    p[0] = 0x45;
    let e = expect_err(&p, OUT);
    assert!(matches!(
        e.kind,
        SnoopErrorKind::Ipv6(err::ipv6::SliceError::Header(_))
    ));
    // Cut short at a snap length: the payload length overruns the capture.
    let e = expect_err(&good[..good.len() - 1], OUT);
    assert!(matches!(
        e.kind,
        SnoopErrorKind::Ipv6(err::ipv6::SliceError::Len(_))
    ));
    assert!(e.to_string().starts_with("at offset 0: IPv6: "), "{e}");
    // Payload length 0 (a jumbogram without its option).
    let mut p = good.clone();
    p[4..6].copy_from_slice(&[0, 0]);
    let e = expect_err(&p, OUT);
    assert_eq!((e.offset, e.kind), (4, SnoopErrorKind::ZeroPayloadLength));
    // Trailing octets past the payload length (link padding) are not the packet's.
    let mut p = good.clone();
    p.extend_from_slice(&[0; 6]);
    assert!(matches!(parse(&p, OUT).unwrap(), Snooped::Reply(_)));
    // A UDP header cut short by the IPv6 payload length.
    let mut p = good[..44].to_vec();
    p[4..6].copy_from_slice(&[0, 4]);
    let e = expect_err(&p, OUT);
    assert_eq!(e.offset, 40);
    assert!(matches!(e.kind, SnoopErrorKind::Udp(_)));
    // UDP length longer than the IPv6 payload, zero, or below its header.
    for len in [86u16, 0, 7] {
        let mut p = good.clone();
        p[44..46].copy_from_slice(&len.to_be_bytes());
        let e = expect_err(&p, OUT);
        assert_eq!(
            e.offset,
            if len == 86 || len == 7 { 40 } else { 44 },
            "{len}: {e}"
        );
    }
    // No DHCPv6 message at all: 8 octets of UDP.
    let p = udp(router(), client(), 547, 546, &[]);
    let e = expect_err(&p, OUT);
    assert_eq!(e.offset, 48);
    assert!(matches!(
        e.kind,
        SnoopErrorKind::Dhcp(DecodeError {
            kind: ErrorKind::Truncated {
                needed: 4,
                available: 0
            },
            ..
        })
    ));
}

fn dhcp_kind(e: &SnoopError) -> &ErrorKind {
    match &e.kind {
        SnoopErrorKind::Dhcp(d) => &d.kind,
        other => panic!("expected a DHCPv6 error, got {other:?}"),
    }
}

#[test]
fn malformed_replies() {
    let ids = || {
        vec![
            DhcpOption::ClientId(client_duid()),
            DhcpOption::ServerId(server_duid()),
        ]
    };
    let with = |extra: Vec<DhcpOption>| {
        let mut o = ids();
        o.extend(extra);
        reply_packet(&client_msg(MessageType::Reply, 1, o))
    };
    // IA_PD shorter than IAID, T1, T2; at offset 48 + 4 + 14 + 14.
    let p = with(vec![DhcpOption::Unknown {
        code: 25,
        data: vec![0; 11],
    }]);
    let e = expect_err(&p, OUT);
    assert_eq!((e.offset, e.option), (80, Some(OptionCode::IaPd)));
    assert_eq!(dhcp_kind(&e), &ErrorKind::TooShort { len: 11, min: 12 });
    // IAPREFIX shorter than its 25 octets, inside an IA_PD.
    let p = with(vec![ia_pd(
        1,
        0,
        0,
        &[DhcpOption::Unknown {
            code: 26,
            data: vec![0; 24],
        }],
    )]);
    let e = expect_err(&p, OUT);
    assert_eq!((e.offset, e.option), (96, Some(OptionCode::IaPrefix)));
    assert_eq!(dhcp_kind(&e), &ErrorKind::TooShort { len: 24, min: 25 });
    // An option inside an IAPREFIX overrunning it.
    let mut p = with(vec![ia_pd(
        1,
        0,
        0,
        &[iaprefix(
            "2001:db8::/48",
            1,
            2,
            vec![DhcpOption::status(StatusCode::Success, "x")],
        )],
    )]);
    let status_at = 96 + 4 + 25;
    p[status_at + 3] = 9;
    let e = expect_err(&p, OUT);
    assert_eq!(e.offset, status_at);
    assert!(matches!(dhcp_kind(&e), ErrorKind::OptionOverrun { .. }));
    // A malformed unknown-to-us option inside an IA_PD is still checked.
    let p = with(vec![ia_pd(
        1,
        0,
        0,
        &[DhcpOption::Unknown {
            code: 1,
            data: vec![],
        }],
    )]);
    assert_eq!(
        dhcp_kind(&expect_err(&p, OUT)),
        &ErrorKind::BadDuidLength(0)
    );
    // A STATUS_CODE one octet long, at top level and inside an IA_PD.
    let short_status = DhcpOption::Unknown {
        code: 13,
        data: vec![0],
    };
    for p in [
        with(vec![short_status.clone()]),
        with(vec![ia_pd(1, 0, 0, std::slice::from_ref(&short_status))]),
    ] {
        assert_eq!(
            dhcp_kind(&expect_err(&p, OUT)),
            &ErrorKind::TooShort { len: 1, min: 2 }
        );
    }
    // A truncated option header at the end of the message.
    let mut msg = client_msg(MessageType::Reply, 1, ids()).to_bytes();
    msg.extend_from_slice(&[0, 25, 0]);
    let e = expect_err(&udp(router(), client(), 547, 546, &msg), OUT);
    assert_eq!(e.offset, 80);
    assert!(matches!(dhcp_kind(&e), ErrorKind::Truncated { .. }));
}

#[test]
fn missing_and_duplicate_options() {
    let kind = |opts: Vec<DhcpOption>| {
        expect_err(&reply_packet(&client_msg(MessageType::Reply, 1, opts)), OUT).kind
    };
    let pd = || ia_pd(1, 0, 0, &[iaprefix("2001:db8::/48", 1, 2, vec![])]);
    assert_eq!(
        kind(vec![DhcpOption::ClientId(client_duid()), pd()]),
        SnoopErrorKind::MissingOption(OptionCode::ServerId)
    );
    assert_eq!(
        kind(vec![DhcpOption::ServerId(server_duid()), pd()]),
        SnoopErrorKind::MissingOption(OptionCode::ClientId)
    );
    let s = DhcpOption::ServerId(server_duid());
    let c = DhcpOption::ClientId(client_duid());
    let st = DhcpOption::status(StatusCode::Success, "");
    for (opts, dup) in [
        (vec![s.clone(), c.clone(), c.clone()], OptionCode::ClientId),
        (vec![s.clone(), s.clone()], OptionCode::ServerId),
        (
            vec![s.clone(), st.clone(), st.clone()],
            OptionCode::StatusCode,
        ),
        (
            vec![
                s.clone(),
                c.clone(),
                ia_pd(1, 0, 0, &[st.clone(), st.clone()]),
            ],
            OptionCode::StatusCode,
        ),
        (
            vec![
                s.clone(),
                c.clone(),
                ia_pd(
                    1,
                    0,
                    0,
                    &[iaprefix(
                        "2001:db8::/48",
                        1,
                        2,
                        vec![st.clone(), st.clone()],
                    )],
                ),
            ],
            OptionCode::StatusCode,
        ),
    ] {
        assert_eq!(kind(opts), SnoopErrorKind::DuplicateOption(dup));
    }
}

#[test]
fn malformed_relay_replies() {
    let send = |m: &Message| udp(router(), ldra(), 547, 547, &m.to_bytes());
    // No RELAY_MSG.
    let m = relay(
        MessageType::RelayRepl,
        0,
        "::",
        client(),
        vec![DhcpOption::InterfaceId(vec![1])],
    );
    let e = expect_err(&send(&m), OUT);
    assert_eq!(
        (e.offset, e.kind),
        (48, SnoopErrorKind::MissingOption(OptionCode::RelayMsg))
    );
    // Two RELAY_MSGs, two INTERFACE_IDs.
    let m = relay(
        MessageType::RelayRepl,
        0,
        "::",
        client(),
        vec![relay_msg(typical_reply()), relay_msg(typical_reply())],
    );
    assert_eq!(
        expect_err(&send(&m), OUT).kind,
        SnoopErrorKind::DuplicateOption(OptionCode::RelayMsg)
    );
    let m = relay(
        MessageType::RelayRepl,
        0,
        "::",
        client(),
        vec![
            DhcpOption::InterfaceId(vec![1]),
            DhcpOption::InterfaceId(vec![2]),
            relay_msg(typical_reply()),
        ],
    );
    assert_eq!(
        expect_err(&send(&m), OUT).kind,
        SnoopErrorKind::DuplicateOption(OptionCode::InterfaceId)
    );
    // A RELAY-FORW inside a RELAY-REPL.
    let fw = relay(
        MessageType::RelayForw,
        0,
        "::",
        client(),
        vec![relay_msg(typical_reply())],
    );
    let m = relay(
        MessageType::RelayRepl,
        0,
        "::",
        client(),
        vec![relay_msg(fw)],
    );
    let e = expect_err(&send(&m), OUT);
    assert_eq!(e.offset, 48 + 34 + 4);
    assert_eq!(
        e.kind,
        SnoopErrorKind::RelayTypeMismatch {
            outer: MessageType::RelayRepl,
            inner: MessageType::RelayForw
        }
    );
    // A relay header cut short (33 of its 34 octets).
    let mut bytes = ldra_reply(typical_reply()).to_bytes();
    bytes.truncate(33);
    let e = expect_err(&udp(router(), ldra(), 547, 547, &bytes), OUT);
    assert_eq!(e.offset, 48);
    assert_eq!(
        dhcp_kind(&e),
        &ErrorKind::Truncated {
            needed: 34,
            available: 33
        }
    );
    // The inner REPLY is checked like a direct one.
    let inner = client_msg(
        MessageType::Reply,
        1,
        vec![DhcpOption::ClientId(client_duid())],
    );
    let e = expect_err(&send(&ldra_reply(inner)), OUT);
    assert_eq!(e.kind, SnoopErrorKind::MissingOption(OptionCode::ServerId));
    // The LDRA layer's header and INTERFACE_ID, the RELAY_MSG header.
    assert_eq!(e.offset, 48 + 34 + 9 + 4);
}

/// Every prefix of a valid packet, and every one-octet change to it, gives a
/// result or an error, never a panic; errors point inside the packet.
#[test]
fn truncations_and_corruptions_never_panic() {
    let packets = [
        ANNOTATED_REPLY.to_vec(),
        udp(
            router(),
            ldra(),
            547,
            547,
            &ldra_reply(typical_reply()).to_bytes(),
        ),
        udp(
            client(),
            router(),
            546,
            547,
            &release_msg(MessageType::Release).to_bytes(),
        ),
    ];
    for good in &packets {
        for dir in [OUT, IN] {
            for n in 0..good.len() {
                if let Err(e) = parse(&good[..n], dir) {
                    assert!(e.offset <= n, "{e} for {n} octets");
                }
            }
            for i in 0..good.len() {
                for v in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                    let mut p = good.clone();
                    p[i] = v;
                    if let Err(e) = parse(&p, dir) {
                        assert!(e.offset <= p.len(), "{e}");
                        let _ = e.to_string();
                    }
                }
            }
        }
    }
}

#[test]
fn names_are_fixed() {
    let reply = parse(&ANNOTATED_REPLY, OUT).unwrap();
    assert_eq!(reply.name(), "reply");
    let p = udp(
        router(),
        ldra(),
        547,
        547,
        &ldra_reply(typical_reply()).to_bytes(),
    );
    assert_eq!(parse(&p, OUT).unwrap().name(), "relayed-reply");
    assert_eq!(parse(&ANNOTATED_REPLY, IN).unwrap().name(), "forged");
    let p = udp(
        client(),
        router(),
        546,
        547,
        &release_msg(MessageType::Release).to_bytes(),
    );
    assert_eq!(parse(&p, IN).unwrap().name(), "release");
    assert_eq!(Snooped::Ignored(IgnoreReason::Fragment).name(), "ignored");
    assert_eq!(IgnoreReason::Fragment.name(), "fragment");
    assert_eq!(
        SnoopErrorKind::TooManyRelayLayers.name(),
        "too-many-relay-layers"
    );
}
