//! Hand-built wire vectors for every option and message type the codec
//! knows, the exact error for every malformed case, and binding extraction.
//!
//! Each vector is written out octet by octet with its meaning alongside.
//! [`ok`] decodes a vector both ways (owned [`Message::decode`] and the
//! zero-copy [`MessageView::parse_validated`]) and checks that re-encoding
//! gives back the same octets; [`bad`] checks that both paths fail with the
//! same error, which each test then compares in full (offset, option, kind).
//! Offsets are absolute: they count from the message's first octet.

use super::binding::client_data_options;
use super::message::{ClientMessage, DhcpOption, IaAddr, IaPrefix, LqQuery, RelayMessage};
use super::*;
use std::net::Ipv6Addr;

fn ip(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn duid(s: &str) -> Duid {
    s.parse().unwrap()
}

/// Decode both ways; both must succeed and re-encoding must be byte-exact.
fn ok(bytes: &[u8]) -> Message {
    let m = Message::decode(bytes).unwrap_or_else(|e| panic!("owned decode: {e}"));
    if let Err(e) = MessageView::parse_validated(bytes) {
        panic!("view decode: {e}");
    }
    assert_eq!(m.to_bytes(), bytes, "re-encoding differs");
    assert_eq!(m.buffer_len(), bytes.len());
    m
}

/// Decode both ways; both must fail with the same error, which is returned.
fn bad(bytes: &[u8]) -> DecodeError {
    let owned = Message::decode(bytes).expect_err("owned decode accepted it");
    let view = MessageView::parse_validated(bytes).expect_err("view decode accepted it");
    assert_eq!(owned, view, "owned and view paths disagree");
    owned
}

fn err(offset: usize, option: Option<OptionCode>, kind: ErrorKind) -> DecodeError {
    DecodeError {
        offset,
        option,
        kind,
    }
}

/// A client/server message with the given type, xid and options.
fn client(msg_type: MessageType, transaction_id: u32, options: Vec<DhcpOption>) -> Message {
    Message::Client(ClientMessage {
        msg_type,
        transaction_id,
        options,
    })
}

/// A LEASEQUERY-REPLY, xid 0x000102, holding the options.
fn reply(options: Vec<DhcpOption>) -> Message {
    client(MessageType::LeasequeryReply, 0x000102, options)
}

// ---------------------------------------------------------------------------
// Options, one by one
// ---------------------------------------------------------------------------

#[test]
fn option_clientid() {
    #[rustfmt::skip]
    let b = [
        15, 0x00, 0x01, 0x02,       // LEASEQUERY-REPLY, xid 0x000102
        0, 1, 0, 10,                // OPTION_CLIENTID, len 10
        0, 3, 0, 1,                 //   DUID-LL, hardware type 1
        0x02, 0, 0, 0, 0, 0x03,     //   link-layer address 02:00:00:00:00:03
    ];
    assert_eq!(
        ok(&b),
        reply(vec![DhcpOption::ClientId(duid("00030001020000000003"))])
    );
}

#[test]
fn option_serverid() {
    #[rustfmt::skip]
    let b = [
        15, 0x00, 0x01, 0x02,       // LEASEQUERY-REPLY, xid 0x000102
        0, 2, 0, 14,                // OPTION_SERVERID, len 14
        0, 2, 0, 0, 0x09, 0xbf,     //   DUID-EN, enterprise 2495 (ISC)
        1, 2, 3, 4, 5, 6, 7, 8,     //   identifier
    ];
    assert_eq!(
        ok(&b),
        reply(vec![DhcpOption::ServerId(duid(
            "0002000009bf0102030405060708"
        ))])
    );
}

#[test]
fn option_iaaddr_with_suboptions() {
    #[rustfmt::skip]
    let b = [
        15, 0x00, 0x01, 0x02,       // LEASEQUERY-REPLY, xid 0x000102
        0, 5, 0, 32,                // OPTION_IAADDR, len 24 + 8
        0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0,
        0, 0, 0, 0, 0, 0, 0x10, 0x03, //   address 2001:db8:1::1003
        0, 0, 0x0b, 0xb8,           //   preferred-lifetime 3000
        0, 0, 0x0f, 0xa0,           //   valid-lifetime 4000
        0, 13, 0, 4,                //   IAaddr-options: OPTION_STATUS_CODE, len 4
        0, 0, b'o', b'k',           //     Success, "ok"
    ];
    assert_eq!(
        ok(&b),
        reply(vec![DhcpOption::IaAddr(IaAddr {
            address: ip("2001:db8:1::1003"),
            preferred_lifetime: 3000,
            valid_lifetime: 4000,
            options: vec![DhcpOption::status(StatusCode::Success, "ok")],
        })])
    );
}

#[test]
fn option_iaprefix() {
    #[rustfmt::skip]
    let b = [
        15, 0x00, 0x01, 0x02,       // LEASEQUERY-REPLY, xid 0x000102
        0, 26, 0, 25,               // OPTION_IAPREFIX, len 25
        0, 0, 0x0b, 0xb8,           //   preferred-lifetime 3000
        0, 0, 0x0f, 0xa0,           //   valid-lifetime 4000
        56,                         //   prefix-length 56
        0x20, 0x01, 0x0d, 0xb8, 0x80, 0x00, 0x03, 0x00,
        0, 0, 0, 0, 0, 0, 0, 0,     //   prefix 2001:db8:8000:300::
    ];
    assert_eq!(
        ok(&b),
        reply(vec![DhcpOption::IaPrefix(IaPrefix {
            preferred_lifetime: 3000,
            valid_lifetime: 4000,
            prefix: "2001:db8:8000:300::/56".parse().unwrap(),
            options: vec![],
        })])
    );
}

#[test]
fn option_iaprefix_keeps_host_bits_and_suboptions() {
    // A prefix with bits set past its length is kept as sent, so it re-encodes.
    #[rustfmt::skip]
    let b = [
        15, 0x00, 0x01, 0x02,       // LEASEQUERY-REPLY, xid 0x000102
        0, 26, 0, 31,               // OPTION_IAPREFIX, len 25 + 6
        0, 0, 0, 0,                 //   preferred-lifetime 0
        0xff, 0xff, 0xff, 0xff,     //   valid-lifetime infinity
        48,                         //   prefix-length 48
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0x00, 0x01,
        0, 0, 0, 0, 0, 0, 0, 0,     //   2001:db8:0:1:: (bit 63 set, past /48)
        0, 13, 0, 2, 0, 6,          //   STATUS_CODE NoPrefixAvail, no text
    ];
    assert_eq!(
        ok(&b),
        reply(vec![DhcpOption::IaPrefix(IaPrefix {
            preferred_lifetime: 0,
            valid_lifetime: u32::MAX,
            prefix: "2001:db8:0:1::/48".parse().unwrap(),
            options: vec![DhcpOption::status(StatusCode::NoPrefixAvail, "")],
        })])
    );
}

#[test]
fn option_oro() {
    #[rustfmt::skip]
    let b = [
        14, 0x00, 0x00, 0x07,       // LEASEQUERY, xid 7
        0, 6, 0, 4,                 // OPTION_ORO, len 4
        0, 47,                      //   OPTION_LQ_RELAY_DATA
        0, 53,                      //   OPTION_RELAY_ID
    ];
    assert_eq!(
        ok(&b),
        client(
            MessageType::Leasequery,
            7,
            vec![DhcpOption::Oro(vec![47, 53])]
        )
    );
    // An empty ORO is valid (zero codes).
    assert_eq!(
        ok(&[14, 0, 0, 7, 0, 6, 0, 0]),
        client(MessageType::Leasequery, 7, vec![DhcpOption::Oro(vec![])])
    );
}

/// Two relay layers: RELAY-FORW(hop 1) > RELAY_MSG > RELAY-FORW(hop 0) > RELAY_MSG > SOLICIT.
#[rustfmt::skip]
fn two_hop_relay_forw() -> Vec<u8> {
    [
        &[12, 1][..],               // RELAY-FORW, hop-count 1
        &[0; 16],                   // link-address ::
        &[0x20, 0x01, 0x0d, 0xb8, 0, 2, 0, 0,
          0, 0, 0, 0, 0, 0, 0, 0x0a], // peer-address 2001:db8:2::a
        &[0, 18, 0, 8], b"uplink-1", // OPTION_INTERFACE_ID "uplink-1" (offset 34)
        &[0, 9, 0, 52],             // OPTION_RELAY_MSG, len 52 (offset 46)
        &[12, 0],                   //   RELAY-FORW, hop-count 0 (offset 50)
        &[0x20, 0x01, 0x0d, 0xb8, 0, 2, 0, 0,
          0, 0, 0, 0, 0, 0, 0, 1],  //   link-address 2001:db8:2::1
        &[0xfe, 0x80, 0, 0, 0, 0, 0, 0,
          0, 0, 0, 0, 0, 0x0c, 0, 1], //   peer-address fe80::c:1
        &[0, 18, 0, 6], b"port-0",  //   OPTION_INTERFACE_ID "port-0"
        &[0, 9, 0, 4],              //   OPTION_RELAY_MSG, len 4
        &[1, 0xab, 0xcd, 0xef],     //     SOLICIT, xid 0xabcdef, no options
    ]
    .concat()
}

#[test]
fn option_relay_msg_nested_layers() {
    let b = two_hop_relay_forw();
    let solicit = client(MessageType::Solicit, 0xabcdef, vec![]);
    let inner = Message::Relay(RelayMessage {
        msg_type: MessageType::RelayForw,
        hop_count: 0,
        link_address: ip("2001:db8:2::1"),
        peer_address: ip("fe80::c:1"),
        options: vec![
            DhcpOption::InterfaceId(b"port-0".to_vec()),
            DhcpOption::RelayMsg(Box::new(solicit)),
        ],
    });
    assert_eq!(
        ok(&b),
        Message::Relay(RelayMessage {
            msg_type: MessageType::RelayForw,
            hop_count: 1,
            link_address: Ipv6Addr::UNSPECIFIED,
            peer_address: ip("2001:db8:2::a"),
            options: vec![
                DhcpOption::InterfaceId(b"uplink-1".to_vec()),
                DhcpOption::RelayMsg(Box::new(inner)),
            ],
        })
    );
}

#[test]
fn option_status_code() {
    #[rustfmt::skip]
    let b = [
        &[15, 0x00, 0x01, 0x06][..],    // LEASEQUERY-REPLY, xid 0x000106
        &[0, 13, 0, 23],                // OPTION_STATUS_CODE, len 23
        &[0, 9],                        //   NotConfigured (9)
        b"not a configured link",       //   status-message (21 octets)
    ]
    .concat();
    let m = ok(&b);
    assert_eq!(
        m,
        client(
            MessageType::LeasequeryReply,
            0x106,
            vec![DhcpOption::status(
                StatusCode::NotConfigured,
                "not a configured link"
            )]
        )
    );
    let Message::Client(c) = m else { panic!() };
    assert_eq!(
        c.status(),
        Some((StatusCode::NotConfigured, &b"not a configured link"[..]))
    );
    assert_eq!(
        MessageView::parse_validated(&b).unwrap().status(),
        Some((StatusCode::NotConfigured, &b"not a configured link"[..]))
    );
}

#[test]
fn option_interface_id() {
    #[rustfmt::skip]
    let b = [
        &[13, 0][..],                   // RELAY-REPL, hop-count 0
        &[0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0,
          0, 0, 0, 0, 0, 0, 0, 1],      // link-address 2001:db8:1::1
        &[0xfe, 0x80, 0, 0, 0, 0, 0, 0,
          0, 0, 0, 0, 0, 0, 0, 1],      // peer-address fe80::1
        &[0, 18, 0, 8], b"ge-0/0/1",    // OPTION_INTERFACE_ID "ge-0/0/1"
        &[0, 18, 0, 0],                 // OPTION_INTERFACE_ID, empty (opaque, any length)
    ]
    .concat();
    assert_eq!(
        ok(&b),
        Message::Relay(RelayMessage {
            msg_type: MessageType::RelayRepl,
            hop_count: 0,
            link_address: ip("2001:db8:1::1"),
            peer_address: ip("fe80::1"),
            options: vec![
                DhcpOption::InterfaceId(b"ge-0/0/1".to_vec()),
                DhcpOption::InterfaceId(vec![]),
            ],
        })
    );
}

#[test]
fn option_remote_id() {
    #[rustfmt::skip]
    let b = [
        &[14, 0x00, 0x00, 0x05][..],    // LEASEQUERY, xid 5
        &[0, 37, 0, 9],                 // OPTION_REMOTE_ID, len 9
        &[0, 0, 0x11, 0x8b],            //   enterprise-number 4491
        b"CM-S2",                       //   remote-id
        &[0, 37, 0, 4],                 // OPTION_REMOTE_ID, len 4: empty remote-id
        &[0, 0, 0, 9],                  //   enterprise-number 9
    ]
    .concat();
    assert_eq!(
        ok(&b),
        client(
            MessageType::Leasequery,
            5,
            vec![
                DhcpOption::RemoteId {
                    enterprise: 4491,
                    id: b"CM-S2".to_vec()
                },
                DhcpOption::RemoteId {
                    enterprise: 9,
                    id: vec![]
                },
            ]
        )
    );
    // The view keeps the whole body too (what RelayLayer.remote_id stores).
    let v = MessageView::parse_validated(&b).unwrap();
    let first = v.options().valid().next().unwrap();
    assert_eq!(
        first,
        OptionView::RemoteId {
            body: &b[8..17],
            enterprise: 4491,
            id: b"CM-S2"
        }
    );
}

#[test]
fn option_lq_query_and_relay_id() {
    // The exact request of Kea case 03 (QUERY_BY_RELAY_ID relay B, link 2001:db8:2::1).
    #[rustfmt::skip]
    let b = [
        14, 0x00, 0x01, 0x03,       // LEASEQUERY, xid 0x000103
        0, 1, 0, 14,                // OPTION_CLIENTID, len 14
        0, 1, 0, 1,                 //   DUID-LLT, hardware type 1
        0x2a, 0x2b, 0x2c, 0x2d,     //   time
        0x02, 0, 0, 0, 0x99, 0x01,  //   link-layer address
        0, 44, 0, 31,               // OPTION_LQ_QUERY, len 17 + 14
        3,                          //   QUERY_BY_RELAY_ID
        0x20, 0x01, 0x0d, 0xb8, 0, 2, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 1,     //   link-address 2001:db8:2::1
        0, 53, 0, 10,               //   query-options: OPTION_RELAY_ID, len 10
        0, 3, 0, 1,                 //     DUID-LL, hardware type 1
        0x02, 0, 0x5e, 0, 0, 0x02,  //     02:00:5e:00:00:02
    ];
    assert_eq!(
        b[..],
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/kea/03_relayid_B_link_s2.request.bin"
        ))
        .unwrap()[2..]
    );
    assert_eq!(
        ok(&b),
        client(
            MessageType::Leasequery,
            0x103,
            vec![
                DhcpOption::ClientId(duid("000100012a2b2c2d020000009901")),
                DhcpOption::LqQuery(LqQuery {
                    query_type: QueryType::ByRelayId,
                    link_address: ip("2001:db8:2::1"),
                    options: vec![DhcpOption::RelayId(duid("0003000102005e000002"))],
                }),
            ]
        )
    );
}

#[test]
fn option_lq_query_unknown_query_type() {
    #[rustfmt::skip]
    let b = [
        14, 0x00, 0x01, 0x16,       // LEASEQUERY, xid 0x000116
        0, 44, 0, 17,               // OPTION_LQ_QUERY, len 17, no query-options
        99,                         //   query-type 99 (unknown)
        0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0,     //   link-address ::
    ];
    assert_eq!(
        ok(&b),
        client(
            MessageType::Leasequery,
            0x116,
            vec![DhcpOption::LqQuery(LqQuery {
                query_type: QueryType::Unknown(99),
                link_address: Ipv6Addr::UNSPECIFIED,
                options: vec![],
            })]
        )
    );
}

/// A LEASEQUERY-DATA shaped like Kea's: CLIENT_DATA with CLIENTID, IAPREFIX,
/// CLT_TIME and LQ_RELAY_DATA (one relay layer with INTERFACE_ID, REMOTE_ID, RELAY_ID).
#[rustfmt::skip]
fn kea_style_data() -> Vec<u8> {
    [
        &[17, 0x00, 0x01, 0x10][..],    // LEASEQUERY-DATA, xid 0x000110
        &[0, 45, 0, 147],               // OPTION_CLIENT_DATA, len 147 (offset 4)
        &[0, 1, 0, 10,                  //   OPTION_CLIENTID, len 10 (offset 8)
          0, 3, 0, 1, 0x02, 0, 0, 0, 0, 0x03], // DUID-LL 02:00:00:00:00:03
        &[0, 26, 0, 25,                 //   OPTION_IAPREFIX, len 25 (offset 22)
          0, 0, 0x0b, 0xad,             //     preferred-lifetime 2989
          0, 0, 0x0f, 0x95,             //     valid-lifetime 3989
          56,                           //     prefix-length 56
          0x20, 0x01, 0x0d, 0xb8, 0x80, 0x00, 0x03, 0x00,
          0, 0, 0, 0, 0, 0, 0, 0],      //     2001:db8:8000:300::
        &[0, 46, 0, 4, 0, 0, 0, 11],    //   OPTION_CLT_TIME 11 (offset 51)
        &[0, 47, 0, 92],                //   OPTION_LQ_RELAY_DATA, len 92 (offset 59)
        &[0xfe, 0x80, 0, 0, 0, 0, 0, 0,
          0, 0, 0, 0, 0, 0, 0, 0x04],   //     peer-address fe80::4
        &[12, 0],                       //     RELAY-FORW, hop-count 0 (offset 79)
        &[0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0,
          0, 0, 0, 0, 0, 0, 0, 1],      //     link-address 2001:db8:1::1
        &[0xfe, 0x80, 0, 0, 0, 0, 0, 0,
          0, 0, 0, 0, 0, 0, 0, 0x04],   //     peer-address fe80::4
        &[0, 18, 0, 8], b"ge-0/0/1",    //     OPTION_INTERFACE_ID (offset 113)
        &[0, 37, 0, 10, 0, 0, 0x11, 0x8b], b"CM-000", // OPTION_REMOTE_ID 4491 "CM-000"
        &[0, 53, 0, 12,                 //     OPTION_RELAY_ID, len 12
          0, 2, 0, 0, 0, 9, 1, 2, 3, 4, 5, 6], // DUID-EN enterprise 9
    ]
    .concat()
}

fn kea_style_relay() -> RelayMessage {
    RelayMessage {
        msg_type: MessageType::RelayForw,
        hop_count: 0,
        link_address: ip("2001:db8:1::1"),
        peer_address: ip("fe80::4"),
        options: vec![
            DhcpOption::InterfaceId(b"ge-0/0/1".to_vec()),
            DhcpOption::RemoteId {
                enterprise: 4491,
                id: b"CM-000".to_vec(),
            },
            DhcpOption::RelayId(duid("000200000009010203040506")),
        ],
    }
}

#[test]
fn option_client_data_clt_time_lq_relay_data() {
    let b = kea_style_data();
    assert_eq!(b.len(), 4 + 4 + 147);
    assert_eq!(
        ok(&b),
        client(
            MessageType::LeasequeryData,
            0x110,
            vec![DhcpOption::ClientData(vec![
                DhcpOption::ClientId(duid("00030001020000000003")),
                DhcpOption::IaPrefix(IaPrefix {
                    preferred_lifetime: 2989,
                    valid_lifetime: 3989,
                    prefix: "2001:db8:8000:300::/56".parse().unwrap(),
                    options: vec![],
                }),
                DhcpOption::CltTime(11),
                DhcpOption::LqRelayData {
                    peer_address: ip("fe80::4"),
                    message: kea_style_relay(),
                },
            ])]
        )
    );
}

#[test]
fn option_clt_time() {
    #[rustfmt::skip]
    let b = [
        15, 0x00, 0x01, 0x02,       // LEASEQUERY-REPLY, xid 0x000102
        0, 46, 0, 4,                // OPTION_CLT_TIME, len 4
        0x00, 0x01, 0x51, 0x80,     //   86400 seconds
    ];
    assert_eq!(ok(&b), reply(vec![DhcpOption::CltTime(86400)]));
}

#[test]
fn option_lq_relay_data_two_layers() {
    // LQ_RELAY_DATA around the two-layer relay chain: peer-address first.
    let relay = two_hop_relay_forw();
    #[rustfmt::skip]
    let b = [
        &[15, 0x00, 0x01, 0x02][..],    // LEASEQUERY-REPLY, xid 0x000102
        &[0, 47, 0, 16 + 102],          // OPTION_LQ_RELAY_DATA, len 16 + 102
        &[0x20, 0x01, 0x0d, 0xb8, 0, 2, 0, 0,
          0, 0, 0, 0, 0, 0, 0, 0x0a],   //   peer-address 2001:db8:2::a
        &relay,                         //   the relay message (102 octets)
    ]
    .concat();
    assert_eq!(relay.len(), 102);
    let Message::Relay(relay_msg) = Message::decode(&relay).unwrap() else {
        panic!("not a relay message")
    };
    assert_eq!(
        ok(&b),
        reply(vec![DhcpOption::LqRelayData {
            peer_address: ip("2001:db8:2::a"),
            message: relay_msg,
        }])
    );
}

#[test]
fn option_lq_client_link() {
    #[rustfmt::skip]
    let b = [
        15, 0x00, 0x01, 0x02,       // LEASEQUERY-REPLY, xid 0x000102
        0, 48, 0, 32,               // OPTION_LQ_CLIENT_LINK, len 32
        0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 1,     //   2001:db8:1::1
        0x20, 0x01, 0x0d, 0xb8, 0, 2, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 1,     //   2001:db8:2::1
        0, 48, 0, 0,                // OPTION_LQ_CLIENT_LINK, no links
    ];
    assert_eq!(
        ok(&b),
        reply(vec![
            DhcpOption::LqClientLink(vec![ip("2001:db8:1::1"), ip("2001:db8:2::1")]),
            DhcpOption::LqClientLink(vec![]),
        ])
    );
}

#[test]
fn option_relay_id() {
    #[rustfmt::skip]
    let b = [
        15, 0x00, 0x01, 0x02,       // LEASEQUERY-REPLY, xid 0x000102
        0, 53, 0, 12,               // OPTION_RELAY_ID, len 12
        0, 2, 0, 0, 0, 9,           //   DUID-EN, enterprise 9
        1, 2, 3, 4, 5, 6,           //   identifier
    ];
    assert_eq!(
        ok(&b),
        reply(vec![DhcpOption::RelayId(duid("000200000009010203040506"))])
    );
}

#[test]
fn unknown_options_kept_raw() {
    #[rustfmt::skip]
    let b = [
        15, 0x00, 0x01, 0x02,       // LEASEQUERY-REPLY, xid 0x000102
        0x03, 0xe7, 0, 3,           // option 999 (unassigned), len 3
        0xde, 0xad, 0x01,           //   body, kept raw
        0, 25, 0, 12,               // OPTION_IA_PD (not decoded by this codec), len 12
        0, 0, 0, 1,                 //   IAID 1
        0, 0, 0, 0, 0, 0, 0, 0,     //   T1, T2
        0xff, 0xff, 0, 0,           // option 65535, empty
    ];
    let m = ok(&b);
    assert_eq!(
        m,
        reply(vec![
            DhcpOption::Unknown {
                code: 999,
                data: vec![0xde, 0xad, 0x01]
            },
            DhcpOption::Unknown {
                code: 25,
                data: vec![0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]
            },
            DhcpOption::Unknown {
                code: 65535,
                data: vec![]
            },
        ])
    );
    assert_eq!(m.options()[0].code(), OptionCode::Unknown(999));
    assert_eq!(m.options()[1].code(), OptionCode::IaPd);
}

// ---------------------------------------------------------------------------
// Message types
// ---------------------------------------------------------------------------

#[test]
fn message_leasequery() {
    #[rustfmt::skip]
    let b = [
        14, 0x00, 0x01, 0x08,       // LEASEQUERY, xid 0x000108
        0, 1, 0, 4, 0, 3, 0, 1,     // OPTION_CLIENTID, DUID-LL with no address
        0, 44, 0, 17,               // OPTION_LQ_QUERY, len 17
        4,                          //   QUERY_BY_LINK_ADDRESS
        0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 1,     //   link-address 2001:db8:1::1
    ];
    let m = ok(&b);
    assert_eq!(m.msg_type(), MessageType::Leasequery);
    assert_eq!(
        m,
        client(
            MessageType::Leasequery,
            0x108,
            vec![
                DhcpOption::ClientId(duid("00030001")),
                DhcpOption::LqQuery(LqQuery {
                    query_type: QueryType::ByLinkAddress,
                    link_address: ip("2001:db8:1::1"),
                    options: vec![],
                }),
            ]
        )
    );
}

#[test]
fn message_leasequery_reply() {
    #[rustfmt::skip]
    let b = [
        &[15, 0x00, 0x01, 0x05][..],    // LEASEQUERY-REPLY, xid 0x000105
        &[0, 2, 0, 4, 0, 3, 0, 1],      // OPTION_SERVERID, DUID-LL, no address
        &[0, 13, 0, 18, 0, 0],          // OPTION_STATUS_CODE Success
        b"no active leases",            //   message (16 octets)
    ]
    .concat();
    assert_eq!(
        ok(&b),
        client(
            MessageType::LeasequeryReply,
            0x105,
            vec![
                DhcpOption::ServerId(duid("00030001")),
                DhcpOption::status(StatusCode::Success, "no active leases"),
            ]
        )
    );
}

#[test]
fn message_leasequery_data() {
    let m = ok(&kea_style_data());
    assert_eq!(m.msg_type(), MessageType::LeasequeryData);
    let Message::Client(c) = m else { panic!() };
    assert_eq!(c.transaction_id, 0x000110);
    assert!(matches!(
        c.option(OptionCode::ClientData),
        Some(DhcpOption::ClientData(_))
    ));
}

#[test]
fn message_leasequery_done() {
    // LEASEQUERY-DONE, xid 0xfedcba, no options (Kea's form).
    assert_eq!(
        ok(&[16, 0xfe, 0xdc, 0xba]),
        client(MessageType::LeasequeryDone, 0xfedcba, vec![])
    );
    // With a status, as RFC 5460 s.5.2.2 allows.
    #[rustfmt::skip]
    let b = [
        16, 0x00, 0x00, 0x01,       // LEASEQUERY-DONE, xid 1
        0, 13, 0, 2, 0, 11,         // OPTION_STATUS_CODE QueryTerminated, no text
    ];
    assert_eq!(
        ok(&b),
        client(
            MessageType::LeasequeryDone,
            1,
            vec![DhcpOption::status(StatusCode::QueryTerminated, "")]
        )
    );
}

#[test]
fn message_relay_forw() {
    let b = two_hop_relay_forw();
    assert_eq!(ok(&b).msg_type(), MessageType::RelayForw);
    let v = MessageView::parse_validated(&b).unwrap();
    assert!(v.is_relay());
    assert_eq!(v.hop_count(), 1);
    assert_eq!(v.transaction_id(), 0, "relay messages have no xid");
    assert_eq!(v.link_address(), Ipv6Addr::UNSPECIFIED);
    assert_eq!(v.peer_address(), ip("2001:db8:2::a"));
}

#[test]
fn message_relay_repl() {
    #[rustfmt::skip]
    let b = [
        &[13, 0][..],                   // RELAY-REPL, hop-count 0
        &[0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0,
          0, 0, 0, 0, 0, 0, 0, 1],      // link-address 2001:db8:1::1
        &[0xfe, 0x80, 0, 0, 0, 0, 0, 0,
          0, 0, 0, 0, 0, 0, 0, 7],      // peer-address fe80::7
        &[0, 9, 0, 8],                  // OPTION_RELAY_MSG, len 8
        &[7, 0, 0, 9],                  //   REPLY, xid 9
        &[0xab, 0xcd, 0, 0],            //   option 0xabcd, empty
    ]
    .concat();
    assert_eq!(
        ok(&b),
        Message::Relay(RelayMessage {
            msg_type: MessageType::RelayRepl,
            hop_count: 0,
            link_address: ip("2001:db8:1::1"),
            peer_address: ip("fe80::7"),
            options: vec![DhcpOption::RelayMsg(Box::new(client(
                MessageType::Reply,
                9,
                vec![DhcpOption::Unknown {
                    code: 0xabcd,
                    data: vec![]
                }]
            )))],
        })
    );
}

#[test]
fn message_unknown_type_99_decodes() {
    #[rustfmt::skip]
    let b = [
        99, 0x01, 0x02, 0x03,       // msg-type 99 (unassigned), xid 0x010203
        0, 46, 0, 4, 0, 0, 0, 1,    // OPTION_CLT_TIME 1
    ];
    let m = ok(&b);
    assert_eq!(
        m,
        client(
            MessageType::Unknown(99),
            0x010203,
            vec![DhcpOption::CltTime(1)]
        )
    );
    assert_eq!(u8::from(m.msg_type()), 99);
}

#[test]
fn message_unknown_status_42_decodes() {
    #[rustfmt::skip]
    let b = [
        &[15, 0x00, 0x01, 0x02][..],    // LEASEQUERY-REPLY, xid 0x000102
        &[0, 13, 0, 5, 0, 42],          // OPTION_STATUS_CODE 42 (unassigned)
        b"huh",                         //   message
    ]
    .concat();
    let m = ok(&b);
    assert_eq!(
        m,
        reply(vec![DhcpOption::StatusCode {
            code: StatusCode::Unknown(42),
            message: b"huh".to_vec()
        }])
    );
    let Message::Client(c) = m else { panic!() };
    assert_eq!(c.status(), Some((StatusCode::Unknown(42), &b"huh"[..])));
}

// ---------------------------------------------------------------------------
// Malformed input: the exact error, with absolute offsets
// ---------------------------------------------------------------------------

#[test]
fn overrun_top_level() {
    #[rustfmt::skip]
    let b = [
        15, 0x00, 0x01, 0x02,       // LEASEQUERY-REPLY
        0, 1, 0, 10,                // OPTION_CLIENTID, len 10 (offset 4)...
        0, 3, 0,                    //   ...but only 3 octets follow
    ];
    assert_eq!(
        bad(&b),
        err(
            4,
            Some(OptionCode::ClientId),
            ErrorKind::OptionOverrun {
                len: 10,
                available: 3
            }
        )
    );
}

#[test]
fn overrun_nested_in_client_data() {
    #[rustfmt::skip]
    let b = [
        17, 0x00, 0x01, 0x02,       // LEASEQUERY-DATA
        0, 45, 0, 8,                // OPTION_CLIENT_DATA, len 8 (offset 4)
        0, 1, 0, 10,                //   OPTION_CLIENTID, len 10 (offset 8)...
        0, 3, 0, 1,                 //   ...only 4 octets left in CLIENT_DATA
        0, 0, 0, 0, 0, 0,           // (octets past the CLIENT_DATA do not count)
    ];
    assert_eq!(
        bad(&b),
        err(
            8,
            Some(OptionCode::ClientId),
            ErrorKind::OptionOverrun {
                len: 10,
                available: 4
            }
        )
    );
}

#[test]
fn overrun_nested_in_relay_msg() {
    #[rustfmt::skip]
    let b = [
        &[12, 1][..], &[0; 32],     // RELAY-FORW hop 1, link ::, peer ::
        &[0, 9, 0, 46],             // OPTION_RELAY_MSG, len 46 (offset 34)
        &[12, 0], &[0; 32],         //   RELAY-FORW hop 0 (offset 38)
        &[0, 18, 0, 9],             //   OPTION_INTERFACE_ID len 9 (offset 72)...
        b"port-00",                 //   ...but 8 octets left: 7 here
        &[0],                       //   and this one
    ]
    .concat();
    assert_eq!(b.len(), 38 + 46);
    assert_eq!(
        bad(&b),
        err(
            72,
            Some(OptionCode::InterfaceId),
            ErrorKind::OptionOverrun {
                len: 9,
                available: 8
            }
        )
    );
}

#[test]
fn clt_time_wrong_length() {
    #[rustfmt::skip]
    let three = [
        17, 0x00, 0x01, 0x02,       // LEASEQUERY-DATA
        0, 46, 0, 3,                // OPTION_CLT_TIME, len 3 (offset 4)
        0, 0, 1,
    ];
    assert_eq!(
        bad(&three),
        err(
            4,
            Some(OptionCode::CltTime),
            ErrorKind::BadLength {
                len: 3,
                expected: 4
            }
        )
    );
    #[rustfmt::skip]
    let five = [
        17, 0x00, 0x01, 0x02,       // LEASEQUERY-DATA
        0, 45, 0, 15,               // OPTION_CLIENT_DATA, len 15 (offset 4)
        0, 1, 0, 2, 0, 3,           //   OPTION_CLIENTID, 2-octet DUID (offset 8)
        0, 46, 0, 5,                //   OPTION_CLT_TIME, len 5 (offset 14)
        0, 0, 0, 0, 1,
    ];
    assert_eq!(
        bad(&five),
        err(
            14,
            Some(OptionCode::CltTime),
            ErrorKind::BadLength {
                len: 5,
                expected: 4
            }
        )
    );
}

/// A LEASEQUERY-REPLY holding one option with this code and a body of `len` zero octets.
fn reply_with_zeroed(code: u16, len: usize) -> Vec<u8> {
    let mut b = vec![15, 0x00, 0x01, 0x02];
    b.extend_from_slice(&code.to_be_bytes());
    b.extend_from_slice(&(len as u16).to_be_bytes());
    b.resize(b.len() + len, 0);
    b
}

#[test]
fn too_short_fixed_parts() {
    // (option, one octet less than its fixed part)
    let cases = [
        (OptionCode::IaAddr, 24),      // address 16 + lifetimes 8
        (OptionCode::IaPrefix, 25),    // lifetimes 8 + prefix-length 1 + prefix 16
        (OptionCode::LqQuery, 17),     // query-type 1 + link-address 16
        (OptionCode::StatusCode, 2),   // status-code 2
        (OptionCode::RemoteId, 4),     // enterprise-number 4
        (OptionCode::LqRelayData, 50), // peer-address 16 + relay header 34
    ];
    for (code, min) in cases {
        let b = reply_with_zeroed(code.into(), min - 1);
        assert_eq!(
            bad(&b),
            err(4, Some(code), ErrorKind::TooShort { len: min - 1, min }),
            "{code}"
        );
    }
    // And nested: a 23-octet IAADDR inside CLIENT_DATA, after a CLIENTID.
    #[rustfmt::skip]
    let b = [
        &[17, 0x00, 0x01, 0x02][..],    // LEASEQUERY-DATA
        &[0, 45, 0, 33],                // OPTION_CLIENT_DATA, len 33 (offset 4)
        &[0, 1, 0, 2, 0, 3],            //   OPTION_CLIENTID (offset 8)
        &[0, 5, 0, 23], &[0; 23],       //   OPTION_IAADDR, len 23 (offset 14)
    ]
    .concat();
    assert_eq!(
        bad(&b),
        err(
            14,
            Some(OptionCode::IaAddr),
            ErrorKind::TooShort { len: 23, min: 24 }
        )
    );
}

#[test]
fn iaprefix_prefix_length_129() {
    #[rustfmt::skip]
    let b = [
        15, 0x00, 0x01, 0x02,       // LEASEQUERY-REPLY
        0, 26, 0, 25,               // OPTION_IAPREFIX, len 25 (offset 4)
        0, 0, 0, 1, 0, 0, 0, 2,     //   lifetimes
        129,                        //   prefix-length 129 (offset 4 + 4 + 8 = 16)
        0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0,     //   prefix
    ];
    // The offset names the prefix-length field itself.
    assert_eq!(
        bad(&b),
        err(
            16,
            Some(OptionCode::IaPrefix),
            ErrorKind::BadPrefixLength(129)
        )
    );
    // 128 is the largest valid length.
    let mut ok128 = b;
    ok128[16] = 128;
    ok(&ok128);
}

#[test]
fn oro_odd_length() {
    #[rustfmt::skip]
    let b = [
        14, 0x00, 0x00, 0x01,       // LEASEQUERY
        0, 44, 0, 24,               // OPTION_LQ_QUERY, len 17 + 7 (offset 4)
        3, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0,     //   QUERY_BY_RELAY_ID, link ::
        0, 6, 0, 3,                 //   OPTION_ORO, len 3 (offset 25)
        0, 47, 0,
    ];
    assert_eq!(
        bad(&b),
        err(
            25,
            Some(OptionCode::Oro),
            ErrorKind::NotMultiple {
                len: 3,
                multiple: 2
            }
        )
    );
}

#[test]
fn lq_client_link_not_multiple_of_16() {
    for len in [1, 15, 17, 31] {
        let b = reply_with_zeroed(OptionCode::LqClientLink.into(), len);
        assert_eq!(
            bad(&b),
            err(
                4,
                Some(OptionCode::LqClientLink),
                ErrorKind::NotMultiple { len, multiple: 16 }
            )
        );
    }
}

#[test]
fn duid_empty_or_131() {
    for code in [
        OptionCode::ClientId,
        OptionCode::ServerId,
        OptionCode::RelayId,
    ] {
        for len in [0, 131] {
            let b = reply_with_zeroed(code.into(), len);
            assert_eq!(
                bad(&b),
                err(4, Some(code), ErrorKind::BadDuidLength(len)),
                "{code} len {len}"
            );
        }
        // 1 and 130 octets are the bounds that pass.
        ok(&reply_with_zeroed(code.into(), 1));
        ok(&reply_with_zeroed(code.into(), 130));
    }
    // An empty CLIENTID inside LQ_QUERY: offset of the inner option.
    #[rustfmt::skip]
    let b = [
        14, 0x00, 0x00, 0x01,       // LEASEQUERY
        0, 44, 0, 21,               // OPTION_LQ_QUERY, len 21 (offset 4)
        2, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0,     //   QUERY_BY_CLIENTID, link ::
        0, 1, 0, 0,                 //   OPTION_CLIENTID, empty (offset 25)
    ];
    assert_eq!(
        bad(&b),
        err(25, Some(OptionCode::ClientId), ErrorKind::BadDuidLength(0))
    );
}

#[test]
fn truncated_client_header() {
    for len in 0..4 {
        let b = &[15, 0, 1, 2][..len];
        assert_eq!(
            bad(b),
            err(
                0,
                None,
                ErrorKind::Truncated {
                    needed: 4,
                    available: len
                }
            )
        );
    }
}

#[test]
fn truncated_relay_header() {
    for msg_type in [12, 13] {
        let mut b = vec![msg_type, 0];
        b.resize(33, 0); // one octet short of 34
        assert_eq!(
            bad(&b),
            err(
                0,
                None,
                ErrorKind::Truncated {
                    needed: 34,
                    available: 33
                }
            )
        );
    }
    // Nested: a RELAY_MSG holding 10 octets of a RELAY-FORW.
    #[rustfmt::skip]
    let b = [
        &[15, 0x00, 0x01, 0x02][..],    // LEASEQUERY-REPLY
        &[0, 9, 0, 10],                 // OPTION_RELAY_MSG, len 10 (offset 4)
        &[12, 0, 0, 0, 0, 0, 0, 0, 0, 0], //   RELAY-FORW header cut at 10 (offset 8)
    ]
    .concat();
    assert_eq!(
        bad(&b),
        err(
            8,
            None,
            ErrorKind::Truncated {
                needed: 34,
                available: 10
            }
        )
    );
}

#[test]
fn truncated_option_header() {
    #[rustfmt::skip]
    let b = [
        15, 0x00, 0x01, 0x02,       // LEASEQUERY-REPLY
        0, 46, 0, 4, 0, 0, 0, 1,    // OPTION_CLT_TIME 1 (offset 4)
        0, 1, 0,                    // 3 octets of an option header (offset 12)
    ];
    assert_eq!(
        bad(&b),
        err(
            12,
            None,
            ErrorKind::Truncated {
                needed: 4,
                available: 3
            }
        )
    );
    #[rustfmt::skip]
    let nested = [
        17, 0x00, 0x01, 0x02,       // LEASEQUERY-DATA
        0, 45, 0, 1,                // OPTION_CLIENT_DATA, len 1 (offset 4)
        0,                          //   1 octet of an option header (offset 8)
    ];
    assert_eq!(
        bad(&nested),
        err(
            8,
            None,
            ErrorKind::Truncated {
                needed: 4,
                available: 1
            }
        )
    );
}

#[test]
fn lq_relay_data_holding_client_message() {
    #[rustfmt::skip]
    let b = [
        &[17, 0x00, 0x01, 0x02][..],    // LEASEQUERY-DATA
        &[0, 45, 0, 54],                // OPTION_CLIENT_DATA, len 54 (offset 4)
        &[0, 47, 0, 50],                //   OPTION_LQ_RELAY_DATA, len 50 (offset 8)
        &[0; 16],                       //     peer-address ::
        &[17, 0, 0, 1],                 //     LEASEQUERY-DATA, not a relay message (offset 28)
        &[0; 30],                       //     (30 more octets)
    ]
    .concat();
    assert_eq!(
        bad(&b),
        err(
            28,
            Some(OptionCode::LqRelayData),
            ErrorKind::NotRelayMessage(17)
        )
    );
}

/// `n` OPTION_CLIENT_DATA nested in each other, in a LEASEQUERY-DATA.
fn nested_client_data(n: usize) -> Vec<u8> {
    let mut body: Vec<u8> = Vec::new();
    for _ in 0..n {
        let mut o = vec![0, 45];
        o.extend_from_slice(&(body.len() as u16).to_be_bytes());
        o.extend_from_slice(&body);
        body = o;
    }
    [&[17, 0, 0, 1][..], &body].concat()
}

/// `n` relay layers around a SOLICIT, each layer a RELAY-FORW with one RELAY_MSG.
fn nested_relays(n: usize) -> Vec<u8> {
    let mut msg = vec![1, 0, 0, 1];
    for _ in 0..n {
        let mut r = vec![12, 0];
        r.extend_from_slice(&[0; 32]);
        r.extend_from_slice(&[0, 9]);
        r.extend_from_slice(&(msg.len() as u16).to_be_bytes());
        r.extend_from_slice(&msg);
        msg = r;
    }
    msg
}

#[test]
fn nesting_over_max() {
    // MAX_NESTING containers nest fine; one more is refused at the
    // header of the option that would go one level too deep.
    ok(&nested_client_data(MAX_NESTING));
    assert_eq!(
        bad(&nested_client_data(MAX_NESTING + 1)),
        err(
            4 + 4 * MAX_NESTING,
            Some(OptionCode::ClientData),
            ErrorKind::TooDeep
        )
    );
    // Relay chains: each layer is 34 octets of header and 4 of RELAY_MSG header.
    ok(&nested_relays(MAX_NESTING));
    assert_eq!(
        bad(&nested_relays(MAX_NESTING + 1)),
        err(
            38 * MAX_NESTING + 34,
            Some(OptionCode::RelayMsg),
            ErrorKind::TooDeep
        )
    );
}

#[test]
fn error_display_names_option_and_offset() {
    let e = bad(&reply_with_zeroed(OptionCode::CltTime.into(), 3));
    assert_eq!(
        e.to_string(),
        "option CLT_TIME(46) at offset 4: length 3, must be 4"
    );
    assert_eq!(
        e.clone().shifted(2),
        err(
            6,
            Some(OptionCode::CltTime),
            ErrorKind::BadLength {
                len: 3,
                expected: 4
            }
        )
    );
}

// ---------------------------------------------------------------------------
// Binding extraction (ClientData::parse, bindings(), relay chain walk)
// ---------------------------------------------------------------------------

/// An option: code, length, body.
fn opt(code: u16, body: &[u8]) -> Vec<u8> {
    let mut o = code.to_be_bytes().to_vec();
    o.extend_from_slice(&(body.len() as u16).to_be_bytes());
    o.extend_from_slice(body);
    o
}

/// A LEASEQUERY-DATA (xid 0x000042) with one CLIENT_DATA holding `inner`.
fn data_with_client_data(inner: &[&[u8]]) -> Vec<u8> {
    [&[17, 0x00, 0x00, 0x42][..], &opt(45, &inner.concat())].concat()
}

/// Parse the message's first CLIENT_DATA.
fn client_data(msg: &[u8]) -> std::result::Result<ClientData<'_>, ClientDataError> {
    let v = MessageView::parse_validated(msg).expect("valid message");
    let opts = client_data_options(&v).next().expect("a CLIENT_DATA");
    ClientData::parse(opts)
}

const CLIENTID_3: &[u8] = &[0, 1, 0, 10, 0, 3, 0, 1, 2, 0, 0, 0, 0, 3];
const CLT_TIME_11: &[u8] = &[0, 46, 0, 4, 0, 0, 0, 11];

#[rustfmt::skip]
fn iaaddr(last: u8, pref: u32, valid: u32) -> Vec<u8> {
    let mut body = vec![0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, last];
    body.extend_from_slice(&pref.to_be_bytes());
    body.extend_from_slice(&valid.to_be_bytes());
    opt(5, &body)
}

#[rustfmt::skip]
fn iaprefix(third: u8, plen: u8) -> Vec<u8> {
    let mut body = vec![0, 0, 0, 30, 0, 0, 0, 40, plen];
    body.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0x80, 0x00, third, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    opt(26, &body)
}

#[test]
fn several_leases_in_one_client_data() {
    let msg = data_with_client_data(&[
        CLIENTID_3,
        &iaaddr(0x03, 1, 2),
        &iaprefix(0x03, 56),
        CLT_TIME_11,
        &iaaddr(0x04, 3, 4),
        &iaprefix(0x05, 60),
    ]);
    let cd = client_data(&msg).unwrap();
    assert_eq!(cd.client_duid, &CLIENTID_3[4..]);
    assert_eq!(cd.clt_time, 11);
    assert!(cd.relay.is_none());
    let got: Vec<_> = cd
        .bindings()
        .map(|b| (b.lease, b.preferred_lifetime, b.valid_lifetime, b.clt_time))
        .collect();
    assert_eq!(
        got,
        vec![
            (LeaseKind::Address(ip("2001:db8:1::1003")), 1, 2, 11),
            (
                LeaseKind::Prefix("2001:db8:8000:300::/56".parse().unwrap()),
                30,
                40,
                11
            ),
            (LeaseKind::Address(ip("2001:db8:1::1004")), 3, 4, 11),
            (
                LeaseKind::Prefix("2001:db8:8000:500::/60".parse().unwrap()),
                30,
                40,
                11
            ),
        ]
    );
    for b in cd.bindings() {
        let owned = b.to_binding();
        assert_eq!(owned.client_duid, duid("00030001020000000003"));
        assert!(owned.relay.is_empty());
    }
}

#[test]
fn missing_clt_time() {
    let msg = data_with_client_data(&[CLIENTID_3, &iaaddr(3, 1, 2)]);
    // Offset of the CLIENT_DATA body: 4 (header) + 4 (option header).
    assert_eq!(
        client_data(&msg).unwrap_err(),
        ClientDataError::MissingCltTime(8)
    );
}

#[test]
fn missing_clientid() {
    let msg = data_with_client_data(&[&iaprefix(3, 56), CLT_TIME_11]);
    assert_eq!(
        client_data(&msg).unwrap_err(),
        ClientDataError::MissingClientId(8)
    );
}

#[test]
fn duplicate_clt_time_and_clientid() {
    let msg = data_with_client_data(&[CLIENTID_3, CLT_TIME_11, &iaaddr(3, 1, 2), CLT_TIME_11]);
    assert_eq!(
        client_data(&msg).unwrap_err(),
        ClientDataError::Duplicate {
            offset: 8,
            code: OptionCode::CltTime
        }
    );
    let msg = data_with_client_data(&[CLIENTID_3, CLT_TIME_11, CLIENTID_3]);
    assert_eq!(
        client_data(&msg).unwrap_err(),
        ClientDataError::Duplicate {
            offset: 8,
            code: OptionCode::ClientId
        }
    );
}

#[test]
fn client_data_parse_reports_decode_errors() {
    // ClientData::parse is strict on its own: given an unchecked CLIENT_DATA
    // with a bad IAPREFIX, it returns the exact decode error.
    let msg = data_with_client_data(&[CLIENTID_3, CLT_TIME_11, &iaprefix(3, 200)]);
    let v = MessageView::parse(&msg).unwrap();
    let opts = match v.options().find(OptionCode::ClientData).unwrap() {
        Some(OptionView::ClientData(o)) => o,
        o => panic!("{o:?}"),
    };
    // IAPREFIX header at 8 + 14 + 8 = 30, prefix-length at 30 + 4 + 8.
    assert_eq!(
        ClientData::parse(opts).unwrap_err(),
        ClientDataError::Decode(err(
            42,
            Some(OptionCode::IaPrefix),
            ErrorKind::BadPrefixLength(200)
        ))
    );
}

#[test]
fn relay_chain_one_layer() {
    let b = kea_style_data();
    let cd = client_data(&b).unwrap();
    let chain = cd.relay.expect("relay data");
    assert_eq!(chain.peer_address, ip("fe80::4"));
    let layers: Vec<_> = chain.layers().collect();
    assert_eq!(layers.len(), 1);
    let l = layers[0];
    assert_eq!(l.hop_count, 0);
    assert_eq!(l.link_address, ip("2001:db8:1::1"));
    assert_eq!(l.peer_address, ip("fe80::4"));
    assert_eq!(l.interface_id, Some(&b"ge-0/0/1"[..]));
    assert_eq!(
        l.remote_id,
        Some(&[0, 0, 0x11, 0x8b, b'C', b'M', b'-', b'0', b'0', b'0'][..])
    );
    assert_eq!(l.relay_id, Some(&[0, 2, 0, 0, 0, 9, 1, 2, 3, 4, 5, 6][..]));
    let bindings: Vec<_> = cd.bindings().map(|b| b.to_binding()).collect();
    assert_eq!(bindings.len(), 1);
    assert_eq!(
        bindings[0].lease,
        LeaseKind::Prefix("2001:db8:8000:300::/56".parse().unwrap())
    );
    assert_eq!(bindings[0].relay, vec![l.to_layer()]);
    assert_eq!(
        bindings[0].relay[0].relay_id,
        Some(duid("000200000009010203040506"))
    );
}

#[test]
fn relay_chain_two_layers_stops_at_client_message() {
    // Outer layer: INTERFACE_ID only; inner layer: INTERFACE_ID, REMOTE_ID,
    // RELAY_ID; the innermost RELAY_MSG holds a SOLICIT, which is not a layer.
    let inner_relay = [
        &[12, 0][..],
        &ip("2001:db8:2::1").octets(),
        &ip("fe80::c:1").octets(),
        &opt(18, b"port-0"),
        &opt(37, &[0, 0, 0x11, 0x8b, b'C', b'M', b'-', b'C', b'0']),
        &opt(53, &[0, 3, 0, 1, 2, 0, 0x5e, 0, 0, 3]),
        &opt(9, &[1, 0xab, 0xcd, 0xef]),
    ]
    .concat();
    let outer_relay = [
        &[12, 1][..],
        &[0; 16],
        &ip("2001:db8:2::a").octets(),
        &opt(18, b"uplink-1"),
        &opt(9, &inner_relay),
    ]
    .concat();
    let lq_relay_data = opt(
        47,
        &[&ip("2001:db8:2::a").octets()[..], &outer_relay].concat(),
    );
    let msg =
        data_with_client_data(&[CLIENTID_3, &iaaddr(0x81, 5, 6), CLT_TIME_11, &lq_relay_data]);
    ok(&msg);
    let cd = client_data(&msg).unwrap();
    let layers: Vec<_> = cd.relay.unwrap().layers().map(|l| l.to_layer()).collect();
    assert_eq!(
        layers,
        vec![
            RelayLayer {
                hop_count: 1,
                link_address: Ipv6Addr::UNSPECIFIED,
                peer_address: ip("2001:db8:2::a"),
                interface_id: Some(b"uplink-1".to_vec()),
                remote_id: None,
                relay_id: None,
            },
            RelayLayer {
                hop_count: 0,
                link_address: ip("2001:db8:2::1"),
                peer_address: ip("fe80::c:1"),
                interface_id: Some(b"port-0".to_vec()),
                remote_id: Some(vec![0, 0, 0x11, 0x8b, b'C', b'M', b'-', b'C', b'0']),
                relay_id: Some(duid("0003000102005e000003")),
            },
        ]
    );
    // The binding carries the same chain.
    let b: Vec<_> = cd.bindings().map(|b| b.to_binding()).collect();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].relay, layers);
}

#[test]
fn relay_chain_without_relay_msg_is_one_layer() {
    // Kea's innermost layer has no RELAY_MSG at all: the walk ends there.
    let b = kea_style_data();
    let cd = client_data(&b).unwrap();
    assert_eq!(cd.relay.unwrap().layers().count(), 1);
    // And two real relay layers, innermost without RELAY_MSG.
    let inner = [&[12, 0][..], &[0; 32], &opt(18, b"in")].concat();
    let outer = [&[12, 1][..], &[0; 32], &opt(18, b"out"), &opt(9, &inner)].concat();
    let lrd = opt(47, &[&[0; 16][..], &outer].concat());
    let msg = data_with_client_data(&[CLIENTID_3, CLT_TIME_11, &lrd]);
    let cd = client_data(&msg).unwrap();
    let ids: Vec<_> = cd
        .relay
        .unwrap()
        .layers()
        .map(|l| (l.hop_count, l.interface_id.unwrap()))
        .collect();
    assert_eq!(ids, vec![(1, &b"out"[..]), (0, &b"in"[..])]);
    assert_eq!(cd.bindings().count(), 0, "no IAADDR/IAPREFIX, no binding");
}

#[test]
fn validated_mark_is_invisible() {
    // A view from parse_validated equals the unchecked view of the same octets,
    // and so do the options and CLIENT_DATA reached from each.
    let b = kea_style_data();
    let checked = MessageView::parse_validated(&b).unwrap();
    let unchecked = MessageView::parse(&b).unwrap();
    assert_eq!(checked, unchecked);
    assert_eq!(checked.options(), unchecked.options());
    assert!(client_data_options(&checked).eq(client_data_options(&unchecked)));
    // Both give the same ClientData; the unchecked one is validated on the way.
    let a = ClientData::parse(client_data_options(&checked).next().unwrap()).unwrap();
    let u = ClientData::parse(client_data_options(&unchecked).next().unwrap()).unwrap();
    assert_eq!((a.client_duid, a.clt_time), (u.client_duid, u.clt_time));
    assert_eq!(a.relay, u.relay);
    // A bad option deep inside is found by ClientData::parse on an unchecked view.
    let mut bad_bytes = b.clone();
    assert_eq!(bad_bytes[125..129], [0, 37, 0, 10]); // REMOTE_ID in the relay message
    bad_bytes[128] = 200; // len 10 -> 200: overruns the relay message (ends at 155)
    let unchecked = MessageView::parse(&bad_bytes).unwrap();
    let cd = client_data_options(&unchecked).next().unwrap();
    assert_eq!(
        ClientData::parse(cd).unwrap_err(),
        ClientDataError::Decode(err(
            125,
            Some(OptionCode::RemoteId),
            ErrorKind::OptionOverrun {
                len: 200,
                available: 26
            }
        ))
    );
}
