//! Property tests for the wire codec.
//!
//! - Generated valid messages (client and relay, every typed option, nested
//!   CLIENT_DATA / LQ_RELAY_DATA / RELAY_MSG, unknown options) survive
//!   encode -> decode unchanged, and decode -> encode is byte-exact.
//! - On arbitrary bytes, and on valid encodings (generated and Kea's) with
//!   flipped octets, insertions and truncations, the owned decoder
//!   (`Message::decode`) and the zero-copy one (`MessageView::parse_validated`)
//!   never panic and agree: both succeed, or both fail with the same error.
//! - Binding extraction on the fast path agrees with the owned path.
//! - `decode::decode_stream` and `FrameIter` never panic on arbitrary bytes,
//!   and frame valid streams exactly.

use ipnet::Ipv6Net;
use pdrestore::decode::{decode_stream, Record};
use pdrestore::proto::binding::client_data_options;
use pdrestore::proto::frame::{put_frame, FrameError, FrameIter, LENGTH_PREFIX};
use pdrestore::proto::{
    ClientData, ClientDataError, ClientMessage, DhcpOption, Duid, IaAddr, IaPrefix, LqQuery,
    Message, MessageType, MessageView, OptionCode, OptionView, QueryType, RelayMessage, StatusCode,
};
use proptest::prelude::*;
use std::net::Ipv6Addr;

/// Cases per property: 512, or `PROPTEST_CASES` for a deeper run.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(512)
}

fn ipv6() -> impl Strategy<Value = Ipv6Addr> {
    prop_oneof![
        Just(Ipv6Addr::UNSPECIFIED),
        any::<u128>().prop_map(Ipv6Addr::from),
    ]
}

fn duid() -> impl Strategy<Value = Duid> {
    prop_oneof![
        3 => prop::collection::vec(any::<u8>(), 1..=20),
        1 => prop::collection::vec(any::<u8>(), 1..=130),
    ]
    .prop_map(Duid::from_bytes)
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..=max)
}

/// An option code the codec keeps raw (unassigned, or IA_NA/IA_PD which it
/// does not decode). A typed code would decode as its typed variant.
fn unknown_code() -> impl Strategy<Value = u16> {
    any::<u16>().prop_filter("typed option code", |c| {
        matches!(
            OptionCode::from(*c),
            OptionCode::Unknown(_) | OptionCode::IaNa | OptionCode::IaPd
        )
    })
}

fn leaf_option() -> impl Strategy<Value = DhcpOption> {
    prop_oneof![
        duid().prop_map(DhcpOption::ClientId),
        duid().prop_map(DhcpOption::ServerId),
        duid().prop_map(DhcpOption::RelayId),
        prop::collection::vec(any::<u16>(), 0..6).prop_map(DhcpOption::Oro),
        (any::<u16>(), bytes(24)).prop_map(|(c, m)| DhcpOption::StatusCode {
            code: StatusCode::from(c),
            message: m
        }),
        bytes(16).prop_map(DhcpOption::InterfaceId),
        (any::<u32>(), bytes(16))
            .prop_map(|(enterprise, id)| DhcpOption::RemoteId { enterprise, id }),
        any::<u32>().prop_map(DhcpOption::CltTime),
        prop::collection::vec(ipv6(), 0..3).prop_map(DhcpOption::LqClientLink),
        (unknown_code(), bytes(16)).prop_map(|(code, data)| DhcpOption::Unknown { code, data }),
    ]
}

fn client_type() -> impl Strategy<Value = MessageType> {
    prop_oneof![
        3 => (14u8..=17).prop_map(MessageType::from),
        1 => any::<u8>()
            .prop_filter("relay type", |t| !MessageType::from(*t).is_relay())
            .prop_map(MessageType::from),
    ]
}

fn relay_type() -> impl Strategy<Value = MessageType> {
    prop_oneof![Just(MessageType::RelayForw), Just(MessageType::RelayRepl)]
}

fn relay_message(
    opt: impl Strategy<Value = DhcpOption> + Clone,
) -> impl Strategy<Value = RelayMessage> {
    (
        relay_type(),
        any::<u8>(),
        ipv6(),
        ipv6(),
        prop::collection::vec(opt, 0..4),
    )
        .prop_map(
            |(msg_type, hop_count, link_address, peer_address, options)| RelayMessage {
                msg_type,
                hop_count,
                link_address,
                peer_address,
                options,
            },
        )
}

fn client_message(
    opt: impl Strategy<Value = DhcpOption> + Clone,
) -> impl Strategy<Value = ClientMessage> {
    (
        client_type(),
        0u32..=0xff_ffff,
        prop::collection::vec(opt, 0..5),
    )
        .prop_map(|(msg_type, transaction_id, options)| ClientMessage {
            msg_type,
            transaction_id,
            options,
        })
}

fn message_with(opt: impl Strategy<Value = DhcpOption> + Clone) -> impl Strategy<Value = Message> {
    prop_oneof![
        2 => client_message(opt.clone()).prop_map(Message::Client),
        1 => relay_message(opt).prop_map(Message::Relay),
    ]
}

/// Any option, containers nested a few levels deep.
fn option() -> BoxedStrategy<DhcpOption> {
    leaf_option()
        .prop_recursive(4, 48, 4, |inner| {
            let few = prop::collection::vec(inner.clone(), 0..4);
            prop_oneof![
                (ipv6(), any::<u32>(), any::<u32>(), few.clone()).prop_map(|(a, p, v, o)| {
                    DhcpOption::IaAddr(IaAddr {
                        address: a,
                        preferred_lifetime: p,
                        valid_lifetime: v,
                        options: o,
                    })
                }),
                (any::<u32>(), any::<u32>(), ipv6(), 0u8..=128, few.clone()).prop_map(
                    |(p, v, a, len, o)| DhcpOption::IaPrefix(IaPrefix {
                        preferred_lifetime: p,
                        valid_lifetime: v,
                        prefix: Ipv6Net::new(a, len).unwrap(),
                        options: o,
                    })
                ),
                (any::<u8>(), ipv6(), few.clone()).prop_map(|(t, l, o)| DhcpOption::LqQuery(
                    LqQuery {
                        query_type: QueryType::from(t),
                        link_address: l,
                        options: o,
                    }
                )),
                few.clone().prop_map(DhcpOption::ClientData),
                (ipv6(), relay_message(inner.clone())).prop_map(|(peer_address, message)| {
                    DhcpOption::LqRelayData {
                        peer_address,
                        message,
                    }
                }),
                message_with(inner).prop_map(|m| DhcpOption::RelayMsg(Box::new(m))),
            ]
        })
        .boxed()
}

/// A valid message that fits a frame (so every option length fits 16 bits).
fn message() -> impl Strategy<Value = Message> {
    message_with(option()).prop_filter("fits a frame", |m| m.buffer_len() <= u16::MAX as usize)
}

/// Every frame of every Kea capture.
fn kea_frames() -> Vec<Vec<u8>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/kea");
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "bin"))
        .collect();
    names.sort();
    let mut out = Vec::new();
    for p in names {
        let buf = std::fs::read(&p).unwrap();
        for f in FrameIter::new(&buf) {
            out.push(f.unwrap().message.to_vec());
        }
    }
    assert!(out.len() > 400, "Kea captures missing");
    out
}

/// Decode both ways; they must agree. On success, re-encoding is byte-exact
/// and binding extraction agrees between the fast and the owned path.
fn check_agreement(buf: &[u8]) -> Result<(), TestCaseError> {
    let owned = Message::decode(buf);
    let view = MessageView::parse_validated(buf);
    match (&owned, &view) {
        (Ok(m), Ok(v)) => {
            prop_assert_eq!(m.to_bytes(), buf);
            check_bindings(m, v)?;
        }
        (Err(a), Err(b)) => prop_assert_eq!(a, b),
        _ => prop_assert!(
            false,
            "owned {:?} vs view {:?}",
            owned.as_ref().err(),
            view.as_ref().err()
        ),
    }
    check_unvalidated_client_data(buf)
}

/// On a message whose options were not validated, `ClientData::parse` is as
/// strict as validation: it fails with the same decode error as
/// `Options::validate` on that CLIENT_DATA (unless it found a duplicate
/// CLIENTID, CLT_TIME or LQ_RELAY_DATA first), and never with a decode error
/// when validation passes.
fn check_unvalidated_client_data(buf: &[u8]) -> Result<(), TestCaseError> {
    let Ok(v) = MessageView::parse(buf) else {
        return Ok(());
    };
    for raw in v.options().iter() {
        let Ok(raw) = raw else { break };
        if raw.option_code() != OptionCode::ClientData {
            continue;
        }
        let Ok(OptionView::ClientData(opts)) = raw.parse() else {
            continue;
        };
        match (opts.validate(), ClientData::parse(opts)) {
            (Ok(()), Err(ClientDataError::Decode(e))) => {
                prop_assert!(false, "valid CLIENT_DATA, decode error {}", e)
            }
            (Err(want), Err(ClientDataError::Decode(got))) => prop_assert_eq!(want, got),
            (Err(_), Err(ClientDataError::Duplicate { .. })) | (Ok(()), _) => {}
            (Err(want), other) => prop_assert!(false, "{} but {:?}", want, other.err()),
        }
    }
    Ok(())
}

/// For a message that decoded: every top-level CLIENT_DATA parses on the fast
/// path exactly when the owned form has one CLIENTID and one CLT_TIME, and
/// yields one binding per IAADDR/IAPREFIX, in order, with the same lease and
/// lifetimes.
fn check_bindings(m: &Message, v: &MessageView<'_>) -> Result<(), TestCaseError> {
    let owned_cds: Vec<&Vec<DhcpOption>> = m
        .options()
        .iter()
        .filter_map(|o| match o {
            DhcpOption::ClientData(c) => Some(c),
            _ => None,
        })
        .collect();
    let view_cds: Vec<_> = client_data_options(v).collect();
    prop_assert_eq!(owned_cds.len(), view_cds.len());
    for (owned, opts) in owned_cds.into_iter().zip(view_cds) {
        let count = |code| owned.iter().filter(|o| o.code() == code).count();
        match ClientData::parse(opts) {
            Ok(cd) => {
                prop_assert_eq!(count(OptionCode::ClientId), 1);
                prop_assert_eq!(count(OptionCode::CltTime), 1);
                prop_assert!(count(OptionCode::LqRelayData) <= 1);
                let want: Vec<(String, u32, u32)> = owned
                    .iter()
                    .filter_map(|o| match o {
                        DhcpOption::IaAddr(a) => Some((
                            a.address.to_string(),
                            a.preferred_lifetime,
                            a.valid_lifetime,
                        )),
                        DhcpOption::IaPrefix(p) => {
                            Some((p.prefix.to_string(), p.preferred_lifetime, p.valid_lifetime))
                        }
                        _ => None,
                    })
                    .collect();
                let got: Vec<(String, u32, u32)> = cd
                    .bindings()
                    .map(|b| {
                        let o = b.to_binding();
                        (o.lease.to_string(), o.preferred_lifetime, o.valid_lifetime)
                    })
                    .collect();
                prop_assert_eq!(got, want);
            }
            Err(ClientDataError::Decode(e)) => {
                prop_assert!(false, "validated CLIENT_DATA failed to decode: {}", e)
            }
            Err(ClientDataError::MissingClientId(_)) => {
                prop_assert_eq!(count(OptionCode::ClientId), 0)
            }
            Err(ClientDataError::MissingCltTime(_)) => {
                prop_assert_eq!(count(OptionCode::CltTime), 0)
            }
            Err(ClientDataError::Duplicate { code, .. }) => prop_assert!(count(code) > 1),
        }
    }
    Ok(())
}

/// A change to a valid encoding.
#[derive(Debug, Clone)]
enum Mutation {
    /// XOR the octet at (index mod len) with a non-zero value.
    Flip(usize, u8),
    /// Set the octet at (index mod len).
    Set(usize, u8),
    /// Insert an octet at (index mod (len+1)).
    Insert(usize, u8),
    /// Remove the octet at (index mod len).
    Remove(usize),
    /// Keep (index mod (len+1)) octets.
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), 1u8..=255).prop_map(|(i, x)| Mutation::Flip(i, x)),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(i, x)| Mutation::Set(i, x)),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(i, x)| Mutation::Insert(i, x)),
        1 => any::<usize>().prop_map(Mutation::Remove),
        2 => any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(buf: &mut Vec<u8>, muts: &[Mutation]) {
    for m in muts {
        let n = buf.len();
        match *m {
            Mutation::Flip(i, x) if n > 0 => buf[i % n] ^= x,
            Mutation::Set(i, x) if n > 0 => buf[i % n] = x,
            Mutation::Insert(i, x) => buf.insert(i % (n + 1), x),
            Mutation::Remove(i) if n > 0 => {
                buf.remove(i % n);
            }
            Mutation::Truncate(i) => buf.truncate(i % (n + 1)),
            _ => {}
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn valid_messages_round_trip(m in message()) {
        let bytes = m.to_bytes();
        prop_assert_eq!(bytes.len(), m.buffer_len());
        let decoded = Message::decode(&bytes);
        prop_assert_eq!(decoded.as_ref(), Ok(&m));
        prop_assert_eq!(decoded.unwrap().to_bytes(), bytes.clone());
        let v = MessageView::parse_validated(&bytes);
        prop_assert!(v.is_ok(), "view rejected a valid message: {:?}", v.err());
        check_bindings(&m, &v.unwrap())?;
    }

    #[test]
    fn arbitrary_bytes_agree(buf in prop::collection::vec(any::<u8>(), 0..300)) {
        check_agreement(&buf)?;
    }

    #[test]
    fn arbitrary_options_after_valid_header_agree(
        header in prop_oneof![Just(vec![17u8, 0, 0, 1]), Just([&[12u8, 0][..], &[0; 32]].concat())],
        body in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        // Most random buffers fail at the first option header; this one
        // starts from a valid header so option walking gets exercised.
        check_agreement(&[header, body].concat())?;
    }

    #[test]
    fn mutated_valid_messages_agree(
        m in message(),
        muts in prop::collection::vec(mutation(), 1..4),
    ) {
        let mut bytes = m.to_bytes();
        apply(&mut bytes, &muts);
        check_agreement(&bytes)?;
    }

    #[test]
    fn truncated_valid_messages_fail_or_agree(m in message(), cut in any::<usize>()) {
        let bytes = m.to_bytes();
        let cut = cut % (bytes.len() + 1);
        check_agreement(&bytes[..cut])?;
        // A strict prefix of a message whose options were all present is
        // never silently accepted as the same message.
        if cut < bytes.len() {
            prop_assert_ne!(Message::decode(&bytes[..cut]).ok(), Some(m));
        }
    }

    #[test]
    fn mutated_kea_frames_agree(
        pick in any::<prop::sample::Index>(),
        muts in prop::collection::vec(mutation(), 1..4),
    ) {
        let mut bytes = KEA.with(|k| pick.get(k).clone());
        apply(&mut bytes, &muts);
        check_agreement(&bytes)?;
    }

    #[test]
    fn decode_stream_never_panics(buf in prop::collection::vec(any::<u8>(), 0..600)) {
        let records = decode_stream(&buf);
        // Every frame is accounted for: a message or an error.
        let frames = FrameIter::new(&buf).count();
        let tops = records
            .iter()
            .filter(|r| matches!(r, Record::Message { .. } | Record::Error { .. }))
            .count();
        prop_assert_eq!(frames, tops);
    }

    #[test]
    fn decode_stream_of_valid_messages(ms in prop::collection::vec(message(), 1..6)) {
        let mut stream = Vec::new();
        for m in &ms {
            put_frame(&m.to_bytes(), &mut stream).unwrap();
        }
        let records = decode_stream(&stream);
        let mut offset = 0;
        let mut seen = 0;
        for r in &records {
            match r {
                Record::Message { offset: o, msg_type_code, .. } => {
                    prop_assert_eq!(*o, offset);
                    prop_assert_eq!(*msg_type_code, u8::from(ms[seen].msg_type()));
                    offset += LENGTH_PREFIX + ms[seen].buffer_len();
                    seen += 1;
                }
                Record::Error { .. } => prop_assert!(false, "error on a valid stream: {:?}", r),
                _ => {}
            }
        }
        prop_assert_eq!(seen, ms.len());
    }

    #[test]
    fn frame_iter_never_panics(buf in prop::collection::vec(any::<u8>(), 0..400)) {
        // Frames tile the buffer: each starts where the last ended, holds
        // exactly the announced octets, and the walk ends at the first
        // truncated frame.
        let mut pos = 0;
        let mut ended = false;
        for f in FrameIter::new(&buf) {
            prop_assert!(!ended, "frame after a truncated one");
            match f {
                Ok(f) => {
                    prop_assert_eq!(f.offset, pos);
                    let len = u16::from_be_bytes([buf[pos], buf[pos + 1]]) as usize;
                    prop_assert!(len > 0);
                    prop_assert_eq!(f.message, &buf[pos + 2..pos + 2 + len]);
                    pos += 2 + len;
                }
                Err(FrameError::Empty { offset }) => {
                    prop_assert_eq!(offset, pos);
                    pos += 2;
                }
                Err(FrameError::Truncated { offset, available, .. }) => {
                    prop_assert_eq!(offset, pos);
                    prop_assert_eq!(available, buf.len() - pos);
                    ended = true;
                }
            }
        }
        prop_assert!(ended || pos == buf.len());
    }
}

thread_local! {
    static KEA: Vec<Vec<u8>> = kea_frames();
}
