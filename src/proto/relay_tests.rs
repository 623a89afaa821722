//! Relay chains on hand-made bytes (RFC 8415 s.9).

use super::*;
use crate::proto::consts::MessageType;
use crate::proto::view::MessageView;

fn opt(code: u16, body: &[u8]) -> Vec<u8> {
    let mut v = code.to_be_bytes().to_vec();
    v.extend_from_slice(&(body.len() as u16).to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn relay(msg_type: u8, hop: u8, link: u8, peer: u8, options: &[u8]) -> Vec<u8> {
    let mut v = vec![msg_type, hop];
    v.extend_from_slice(&[
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, link,
    ]);
    v.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, peer]);
    v.extend_from_slice(options);
    v
}

const REPLY: [u8; 4] = [7, 0x12, 0x34, 0x56];

fn chain(bytes: &[u8]) -> Result<(Vec<RelayLayerRef<'_>>, MessageView<'_>)> {
    relay_chain(MessageView::parse(bytes).unwrap())
}

#[test]
fn two_layers_with_their_options() {
    let mut inner_opts = opt(18, &[7, 0, 0, 0]);
    inner_opts.extend(opt(9, &REPLY));
    let inner = relay(13, 0, 1, 0x11, &inner_opts);
    let mut outer_opts = opt(53, &[0, 3, 0, 1, 2, 0, 0, 0, 0xff, 1]);
    outer_opts.extend(opt(37, &[0, 0, 0, 9, 0xaa]));
    outer_opts.extend(opt(9, &inner));
    let bytes = relay(13, 1, 2, 0x22, &outer_opts);
    let (layers, msg) = chain(&bytes).unwrap();
    assert_eq!(layers.len(), 2);
    assert_eq!(layers[0].hop_count, 1);
    assert_eq!(layers[0].link_address.to_string(), "2001:db8::2");
    assert_eq!(layers[0].peer_address.to_string(), "fe80::22");
    assert_eq!(layers[0].relay_id.unwrap().len(), 10);
    assert_eq!(layers[0].remote_id, Some(&[0, 0, 0, 9, 0xaa][..]));
    assert_eq!(layers[1].interface_id, Some(&[7, 0, 0, 0][..]));
    assert_eq!(layers[1].peer_address.to_string(), "fe80::11");
    assert_eq!(msg.msg_type(), MessageType::Reply);
    assert_eq!(msg.transaction_id(), 0x123456);
    assert_eq!(msg.as_bytes(), REPLY);
    // The inner message's offset counts from the outer message's start:
    // the outer header, RELAY_ID, REMOTE_ID, the RELAY_MSG header, the
    // inner header, INTERFACE_ID, the inner RELAY_MSG header.
    assert_eq!(msg.offset(), 34 + (4 + 10) + (4 + 5) + 4 + 34 + (4 + 4) + 4);
}

#[test]
fn a_client_message_has_no_layers() {
    let (layers, msg) = chain(&REPLY).unwrap();
    assert!(layers.is_empty());
    assert_eq!(msg.offset(), 0);
}

#[test]
fn a_layer_without_relay_msg() {
    let inner = relay(12, 0, 1, 1, &opt(18, &[1]));
    let bytes = relay(12, 1, 2, 2, &opt(9, &inner));
    let e = chain(&bytes).unwrap_err();
    assert_eq!(e.kind, ErrorKind::MissingOption(OptionCode::RelayMsg));
    assert_eq!(e.offset, 34 + 4, "the inner layer's start");
}

#[test]
fn two_relay_msgs_or_two_interface_ids() {
    let mut o = opt(9, &REPLY);
    o.extend(opt(9, &REPLY));
    let e = chain(&relay(12, 0, 1, 1, &o)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::DuplicateOption(OptionCode::RelayMsg));
    assert_eq!(e.offset, 34 + 8);
    let mut o = opt(18, &[1]);
    o.extend(opt(18, &[2]));
    o.extend(opt(9, &REPLY));
    let e = chain(&relay(12, 0, 1, 1, &o)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::DuplicateOption(OptionCode::InterfaceId));
}

#[test]
fn relay_forw_inside_relay_repl() {
    let inner = relay(12, 0, 1, 1, &opt(9, &REPLY));
    let bytes = relay(13, 1, 2, 2, &opt(9, &inner));
    let e = chain(&bytes).unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::RelayTypeMismatch {
            outer: MessageType::RelayRepl,
            inner: MessageType::RelayForw
        }
    );
}

#[test]
fn relay_msg_overrunning_its_message() {
    let mut bytes = relay(12, 0, 1, 1, &opt(9, &REPLY));
    bytes[34 + 3] = 40;
    let e = chain(&bytes).unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::OptionOverrun {
            len: 40,
            available: 4
        }
    );
    assert_eq!(e.offset, 34);
}

#[test]
fn a_relay_msg_too_short_for_a_relay_header() {
    // A RELAY-FORW whose RELAY_MSG holds 10 octets of a RELAY-FORW.
    let bytes = relay(12, 0, 1, 1, &opt(9, &[12; 10]));
    let e = chain(&bytes).unwrap_err();
    assert!(
        matches!(
            e.kind,
            ErrorKind::Truncated {
                needed: 34,
                available: 10
            }
        ),
        "{e}"
    );
}

#[test]
fn more_than_hop_count_limit_layers() {
    let mut m = REPLY.to_vec();
    for _ in 0..=HOP_COUNT_LIMIT {
        m = relay(12, 0, 1, 1, &opt(9, &m));
    }
    let e = chain(&m).unwrap_err();
    assert!(
        matches!(e.kind, ErrorKind::TooManyRelayLayers | ErrorKind::TooDeep),
        "{e}"
    );
    let mut m = REPLY.to_vec();
    for _ in 0..HOP_COUNT_LIMIT {
        m = relay(12, 0, 1, 1, &opt(9, &m));
    }
    assert_eq!(chain(&m).unwrap().0.len(), HOP_COUNT_LIMIT);
}
