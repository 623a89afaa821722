//! Unit tests of the checked views: truncated headers, header fields, the nesting limit.

use super::*;

#[test]
fn truncated_client_header() {
    let e = MessageView::parse(&[15, 0, 1]).unwrap_err();
    assert_eq!(
        e,
        DecodeError::new(
            0,
            None,
            ErrorKind::Truncated {
                needed: 4,
                available: 3
            }
        )
    );
    assert_eq!(
        e.to_string(),
        "at offset 0: truncated: needs 4 octets, 3 left"
    );
    assert!(MessageView::parse(&[]).is_err());
}

#[test]
fn truncated_relay_header() {
    let mut m = vec![12, 0];
    m.extend_from_slice(&[0; 31]);
    let e = MessageView::parse(&m).unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::Truncated {
            needed: 34,
            available: 33
        }
    );
}

#[test]
fn truncated_option_header() {
    // REPLY xid 1, then 3 octets of an option header.
    let m = [15, 0, 0, 1, 0, 1, 0];
    let v = MessageView::parse(&m).unwrap();
    let e = v.options().validate().unwrap_err();
    assert_eq!(
        e,
        DecodeError::new(
            4,
            None,
            ErrorKind::Truncated {
                needed: 4,
                available: 3
            }
        )
    );
}

#[test]
fn transaction_id_and_relay_fields() {
    let m = [17, 0xab, 0xcd, 0xef];
    let v = MessageView::parse(&m).unwrap();
    assert_eq!(v.msg_type(), MessageType::LeasequeryData);
    assert_eq!(v.transaction_id(), 0xabcdef);
    assert_eq!(v.xid(), Xid::new(0xabcdef).unwrap());
    assert_eq!(v.hop_count(), 0);
    let mut r = vec![12, 3];
    r.extend_from_slice(&Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).octets());
    r.extend_from_slice(&Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2).octets());
    let v = MessageView::parse(&r).unwrap();
    assert!(v.is_relay());
    assert_eq!(v.hop_count(), 3);
    assert_eq!(v.transaction_id(), 0);
    assert_eq!(v.link_address(), "2001:db8::1".parse::<Ipv6Addr>().unwrap());
    assert_eq!(v.peer_address(), "fe80::2".parse::<Ipv6Addr>().unwrap());
    assert_eq!(v.options().as_bytes(), &[] as &[u8]);
}

#[test]
fn nesting_limit() {
    // CLIENT_DATA inside CLIENT_DATA ... MAX_NESTING + 1 deep.
    let mut body: Vec<u8> = Vec::new();
    for _ in 0..=MAX_NESTING {
        let mut o = vec![0, 45];
        o.extend_from_slice(&(body.len() as u16).to_be_bytes());
        o.extend_from_slice(&body);
        body = o;
    }
    let mut m = vec![17, 0, 0, 1];
    m.extend_from_slice(&body);
    let e = MessageView::parse_validated(&m).unwrap_err();
    assert_eq!(e.kind, ErrorKind::TooDeep);
    assert_eq!(e.option, Some(OptionCode::ClientData));
}
