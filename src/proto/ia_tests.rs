//! IA_NA / IA_PD parsing on hand-made bytes (RFC 8415 s.21.4, s.21.6,
//! s.21.21, s.21.22).

use super::*;
use crate::proto::view::Options;

fn opt(code: u16, body: &[u8]) -> Vec<u8> {
    let mut v = code.to_be_bytes().to_vec();
    v.extend_from_slice(&(body.len() as u16).to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn iaprefix(pref: u32, valid: u32, plen: u8, prefix: [u8; 16], inner: &[u8]) -> Vec<u8> {
    let mut b = pref.to_be_bytes().to_vec();
    b.extend_from_slice(&valid.to_be_bytes());
    b.push(plen);
    b.extend_from_slice(&prefix);
    b.extend_from_slice(inner);
    opt(26, &b)
}

fn ia_opt(code: u16, iaid: u32, t1: u32, t2: u32, inner: &[u8]) -> Vec<u8> {
    let mut b = iaid.to_be_bytes().to_vec();
    b.extend_from_slice(&t1.to_be_bytes());
    b.extend_from_slice(&t2.to_be_bytes());
    b.extend_from_slice(inner);
    opt(code, &b)
}

const P: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0x80, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

/// The first option of `bytes`, as the walk of a message gives it.
fn first(bytes: &[u8]) -> RawOption<'_> {
    Options::new(bytes, 100, 0).iter().next().unwrap().unwrap()
}

#[test]
fn ia_pd_with_two_prefixes_and_a_status() {
    let mut inner = iaprefix(3600, 7200, 56, P, &[]);
    inner.extend(opt(13, &[0, 0, b'o', b'k']));
    let mut p2 = P;
    p2[6] = 3;
    inner.extend(iaprefix(0, 0, 56, p2, &opt(13, &[0, 3])));
    let bytes = ia_opt(25, 49409, 1800, 2880, &inner);
    let ia = ia_pd(&first(&bytes)).unwrap();
    assert_eq!((ia.iaid, ia.t1, ia.t2), (49409, 1800, 2880));
    assert_eq!(ia.status, Some(StatusCode::Success));
    assert_eq!(ia.prefixes.len(), 2);
    assert_eq!(ia.prefixes[0].prefix.to_string(), "2001:db8:8000:200::/56");
    assert_eq!(ia.prefixes[0].preferred_lifetime, 3600);
    assert_eq!(ia.prefixes[0].valid_lifetime, 7200);
    assert_eq!(ia.prefixes[1].status, Some(StatusCode::from(3)));
    assert!(ia.timers_consistent());
}

#[test]
fn ia_pd_shorter_than_its_fixed_part() {
    let bytes = opt(25, &[0; 11]);
    let e = ia_pd(&first(&bytes)).unwrap_err();
    assert_eq!(e.offset, 100);
    assert_eq!(e.kind, ErrorKind::TooShort { len: 11, min: 12 });
}

#[test]
fn iaprefix_overrunning_its_ia_pd() {
    let mut bytes = ia_opt(25, 1, 0, 0, &iaprefix(1, 2, 56, P, &[]));
    // The IAPREFIX claims 30 octets where 25 remain.
    bytes[4 + 12 + 3] = 30;
    let e = ia_pd(&first(&bytes)).unwrap_err();
    assert_eq!(e.offset, 100 + 4 + 12, "{e}");
    assert_eq!(
        e.kind,
        ErrorKind::OptionOverrun {
            len: 30,
            available: 25
        }
    );
}

#[test]
fn iaprefix_length_over_128_and_short_body() {
    let bytes = ia_opt(25, 1, 0, 0, &iaprefix(1, 2, 129, P, &[]));
    let e = ia_pd(&first(&bytes)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadPrefixLength(129));
    let bytes = ia_opt(25, 1, 0, 0, &opt(26, &[0; 24]));
    let e = ia_pd(&first(&bytes)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::TooShort { len: 24, min: 25 });
}

#[test]
fn a_second_status_code_is_a_duplicate() {
    let mut inner = opt(13, &[0, 0]);
    inner.extend(opt(13, &[0, 6]));
    let bytes = ia_opt(25, 1, 0, 0, &inner);
    let e = ia_pd(&first(&bytes)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::DuplicateOption(OptionCode::StatusCode));
    assert_eq!(e.offset, 100 + 4 + 12 + 6);
    let bytes = ia_opt(3, 1, 0, 0, &inner);
    let e = ia_na(&first(&bytes)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::DuplicateOption(OptionCode::StatusCode));
}

#[test]
fn ia_na_with_an_address() {
    let mut a = [
        0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0x02,
    ]
    .to_vec();
    a.extend_from_slice(&3600u32.to_be_bytes());
    a.extend_from_slice(&7200u32.to_be_bytes());
    let bytes = ia_opt(3, 7, 100, 200, &opt(5, &a));
    let ia = ia_na(&first(&bytes)).unwrap();
    assert_eq!((ia.iaid, ia.t1, ia.t2, ia.status), (7, 100, 200, None));
    assert_eq!(ia.addresses[0].address.to_string(), "2001:db8:1::1002");
    assert_eq!(ia.addresses[0].valid_lifetime, 7200);
    // An IAADDR cut short.
    let bytes = ia_opt(3, 7, 100, 200, &opt(5, &a[..20]));
    let e = ia_na(&first(&bytes)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::TooShort { len: 20, min: 24 });
}

#[test]
fn other_options_inside_are_validated() {
    // A CLIENTID with an empty DUID inside an IA_PD.
    let bytes = ia_opt(25, 1, 0, 0, &opt(1, &[]));
    let e = ia_pd(&first(&bytes)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadDuidLength(0));
}

#[test]
fn the_wrong_option_is_an_error_not_a_panic() {
    let bytes = opt(13, &[0, 0]);
    let e = ia_prefix(&first(&bytes)).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::WrongOption { .. }), "{e}");
    let e = ia_addr(&first(&bytes)).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::WrongOption { .. }), "{e}");
}
