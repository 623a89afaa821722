//! State-machine tests on injected time: no sockets, no sleeps.

use super::*;
use crate::proto::{
    ClientDataError, ClientMessage, DhcpOption, IaAddr, IaPrefix, LeaseKind, MessageType,
    MessageView, RelayMessage, StatusCode, Xid,
};
use std::net::Ipv6Addr;
use std::time::Duration;

const US: &str = "000100012a2b2c2d020000009901";
const SERVER: &str = "0002000009bf0102030405060708";
const T: Duration = crate::proto::BULK_LQ_DATA_TIMEOUT;

/// A transaction-id from a literal.
fn x(v: u32) -> Xid {
    Xid::new(v).unwrap()
}

fn us() -> Duid {
    US.parse().unwrap()
}

fn client(n: u8) -> Duid {
    Duid::from_bytes(vec![0, 3, 0, 1, 2, 0, 0, 0, 0, n])
}

fn prefix(n: u8) -> ipnet::Ipv6Net {
    format!("2001:db8:8000:{n:x}00::/56").parse().unwrap()
}

/// CLIENT_DATA with one IAPREFIX; `clt` None leaves CLT_TIME out.
fn cd(n: u8, clt: Option<u32>) -> DhcpOption {
    let mut o = vec![
        DhcpOption::ClientId(client(n)),
        DhcpOption::IaPrefix(IaPrefix {
            preferred_lifetime: 3000,
            valid_lifetime: 4000,
            prefix: prefix(n),
            options: vec![],
        }),
    ];
    if let Some(t) = clt {
        o.push(DhcpOption::CltTime(t));
    }
    DhcpOption::ClientData(o)
}

/// CLIENT_DATA with an address and a prefix: two bindings.
fn cd_two(n: u8) -> DhcpOption {
    DhcpOption::ClientData(vec![
        DhcpOption::ClientId(client(n)),
        DhcpOption::IaAddr(IaAddr {
            address: Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x1000 + n as u16),
            preferred_lifetime: 30,
            valid_lifetime: 40,
            options: vec![],
        }),
        DhcpOption::IaPrefix(IaPrefix {
            preferred_lifetime: 3000,
            valid_lifetime: 4000,
            prefix: prefix(n),
            options: vec![],
        }),
        DhcpOption::CltTime(5),
    ])
}

fn msg(t: MessageType, xid: u32, options: Vec<DhcpOption>) -> Vec<u8> {
    ClientMessage {
        msg_type: t,
        transaction_id: xid,
        options,
    }
    .to_bytes()
}

fn reply(xid: u32, extra: Vec<DhcpOption>) -> Vec<u8> {
    let mut o = vec![
        DhcpOption::ClientId(us()),
        DhcpOption::ServerId(SERVER.parse().unwrap()),
        DhcpOption::status(StatusCode::Success, "active lease(s) found"),
    ];
    o.extend(extra);
    msg(MessageType::LeasequeryReply, xid, o)
}

fn data(xid: u32, extra: Vec<DhcpOption>) -> Vec<u8> {
    msg(MessageType::LeasequeryData, xid, extra)
}

fn done(xid: u32) -> Vec<u8> {
    msg(MessageType::LeasequeryDone, xid, vec![])
}

fn demux(t0: Instant, xids: &[u32]) -> ReplyDemux {
    let mut d = ReplyDemux::new(us(), T);
    for &v in xids {
        d.start_query(x(v), t0).unwrap();
    }
    d
}

fn events(d: &mut ReplyDemux) -> Vec<Event> {
    std::iter::from_fn(|| d.poll_event()).collect()
}

fn prefixes(ev: &[Event], want_xid: u32) -> Vec<LeaseKind> {
    ev.iter()
        .filter_map(|e| match e {
            Event::Binding { xid, binding, .. } if *xid == x(want_xid) => Some(binding.lease),
            _ => None,
        })
        .collect()
}

fn outcome(ev: &[Event], want_xid: u32) -> Option<Outcome> {
    ev.iter().find_map(|e| match e {
        Event::Finished { xid, outcome, .. } if *xid == x(want_xid) => Some(outcome.clone()),
        _ => None,
    })
}

fn drops(ev: &[Event]) -> Vec<DropReason> {
    ev.iter()
        .filter_map(|e| match e {
            Event::Dropped { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn reply_data_done_is_complete_and_streams_bindings() {
    let t0 = Instant::now();
    let mut d = demux(t0, &[7]);
    d.handle_frame(&reply(7, vec![cd(0, Some(1))]), t0);
    // The first binding is out before the stream ends.
    let ev = events(&mut d);
    assert_eq!(prefixes(&ev, 7), vec![LeaseKind::Prefix(prefix(0))]);
    assert_eq!(outcome(&ev, 7), None);
    d.handle_frame(&data(7, vec![cd(1, Some(2))]), t0 + Duration::from_secs(1));
    d.handle_frame(&data(7, vec![cd_two(2)]), t0 + Duration::from_secs(2));
    d.handle_frame(&done(7), t0 + Duration::from_secs(3));
    let ev = events(&mut d);
    assert_eq!(prefixes(&ev, 7).len(), 3);
    match ev.last().unwrap() {
        Event::Finished {
            xid,
            outcome: Outcome::Complete,
            stats,
        } if *xid == x(7) => {
            assert_eq!(stats.bindings, 4);
            assert_eq!(stats.messages, 4);
            assert_eq!(stats.dropped, 0);
            assert_eq!(stats.replied, Some(t0));
            assert_eq!(stats.finished, Some(t0 + Duration::from_secs(3)));
            assert_eq!(stats.server_id, Some(SERVER.parse().unwrap()));
        }
        e => panic!("{e:?}"),
    }
    assert_eq!(d.outstanding(), 0);
    assert_eq!(d.close_reason(), None, "the connection stays usable");
    assert_eq!(d.poll_timeout(), None, "no timer without a query");
}

#[test]
fn reply_without_client_data_is_no_bindings() {
    let t0 = Instant::now();
    // Kea: STATUS_CODE Success "no active leases"; others: no status at all.
    let mut d = demux(t0, &[1, 2]);
    d.handle_frame(
        &msg(
            MessageType::LeasequeryReply,
            1,
            vec![
                DhcpOption::ClientId(us()),
                DhcpOption::ServerId(SERVER.parse().unwrap()),
                DhcpOption::status(StatusCode::Success, "no active leases"),
            ],
        ),
        t0,
    );
    d.handle_frame(
        &msg(
            MessageType::LeasequeryReply,
            2,
            vec![
                DhcpOption::ServerId(SERVER.parse().unwrap()),
                DhcpOption::ClientId(us()),
            ],
        ),
        t0,
    );
    let ev = events(&mut d);
    assert_eq!(outcome(&ev, 1), Some(Outcome::NoBindings));
    assert_eq!(outcome(&ev, 2), Some(Outcome::NoBindings));
    assert_eq!(d.outstanding(), 0);
}

#[test]
fn error_status_in_reply_is_server_status() {
    let t0 = Instant::now();
    for code in [
        StatusCode::NotConfigured,
        StatusCode::NotAllowed,
        StatusCode::UnknownQueryType,
        StatusCode::MalformedQuery,
        StatusCode::QueryTerminated,
    ] {
        let mut d = demux(t0, &[3]);
        d.handle_frame(
            &msg(
                MessageType::LeasequeryReply,
                3,
                vec![
                    DhcpOption::ClientId(us()),
                    DhcpOption::ServerId(SERVER.parse().unwrap()),
                    DhcpOption::status(code, "why"),
                ],
            ),
            t0,
        );
        let ev = events(&mut d);
        assert_eq!(
            outcome(&ev, 3),
            Some(Outcome::ServerStatus(ServerStatus::new(code, "why")))
        );
        assert_eq!(d.close_reason(), None);
    }
}

#[test]
fn reply_without_server_id_or_with_foreign_client_id_is_discarded() {
    let t0 = Instant::now();
    let mut d = demux(t0, &[5]);
    // No SERVERID.
    d.handle_frame(
        &msg(
            MessageType::LeasequeryReply,
            5,
            vec![DhcpOption::ClientId(us()), cd(0, Some(1))],
        ),
        t0,
    );
    // No CLIENTID.
    d.handle_frame(
        &msg(
            MessageType::LeasequeryReply,
            5,
            vec![
                DhcpOption::ServerId(SERVER.parse().unwrap()),
                cd(0, Some(1)),
            ],
        ),
        t0,
    );
    // Somebody else's CLIENTID.
    d.handle_frame(
        &msg(
            MessageType::LeasequeryReply,
            5,
            vec![
                DhcpOption::ClientId(client(9)),
                DhcpOption::ServerId(SERVER.parse().unwrap()),
                cd(0, Some(1)),
            ],
        ),
        t0,
    );
    let ev = events(&mut d);
    assert_eq!(
        drops(&ev),
        vec![
            DropReason::ReplyWithoutServerId,
            DropReason::ReplyWithoutClientId,
            DropReason::ReplyForeignClientId(client(9)),
        ]
    );
    assert!(prefixes(&ev, 5).is_empty(), "nothing of them is used");
    assert!(
        d.is_outstanding(x(5)),
        "the query still waits for its REPLY"
    );
    // The genuine REPLY is then accepted.
    d.handle_frame(&reply(5, vec![cd(1, Some(1))]), t0);
    d.handle_frame(&done(5), t0);
    let ev = events(&mut d);
    assert_eq!(prefixes(&ev, 5), vec![LeaseKind::Prefix(prefix(1))]);
    assert_eq!(outcome(&ev, 5), Some(Outcome::Complete));
}

#[test]
fn client_data_without_clt_time_is_dropped_alone() {
    let t0 = Instant::now();
    let mut d = demux(t0, &[9]);
    d.handle_frame(&reply(9, vec![cd(0, None), cd(1, Some(4))]), t0);
    d.handle_frame(&data(9, vec![cd(2, None)]), t0);
    d.handle_frame(&done(9), t0);
    let ev = events(&mut d);
    assert_eq!(prefixes(&ev, 9), vec![LeaseKind::Prefix(prefix(1))]);
    let dr = drops(&ev);
    assert_eq!(dr.len(), 2);
    assert!(dr.iter().all(|r| matches!(
        r,
        DropReason::ClientData(ClientDataError::MissingCltTime(_))
    )));
    match ev.last().unwrap() {
        Event::Finished { outcome, stats, .. } => {
            assert_eq!(*outcome, Outcome::Complete);
            assert_eq!(stats.dropped, 2);
            assert_eq!(stats.bindings, 1);
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn data_without_client_data_is_dropped() {
    let t0 = Instant::now();
    let mut d = demux(t0, &[4]);
    d.handle_frame(&reply(4, vec![cd(0, Some(1))]), t0);
    d.handle_frame(
        &data(4, vec![DhcpOption::status(StatusCode::Success, "")]),
        t0,
    );
    d.handle_frame(&data(4, vec![]), t0);
    d.handle_frame(&data(4, vec![cd(1, Some(1))]), t0);
    d.handle_frame(&done(4), t0);
    let ev = events(&mut d);
    assert_eq!(
        drops(&ev),
        vec![
            DropReason::DataWithoutClientData,
            DropReason::DataWithoutClientData
        ]
    );
    assert_eq!(prefixes(&ev, 4).len(), 2);
    assert_eq!(outcome(&ev, 4), Some(Outcome::Complete));
}

#[test]
fn client_link_is_a_protocol_error_that_closes() {
    let t0 = Instant::now();
    let link = DhcpOption::LqClientLink(vec!["2001:db8:1::1".parse().unwrap()]);
    // In the REPLY.
    let mut d = demux(t0, &[1, 2]);
    d.handle_frame(&reply(1, vec![link.clone(), cd(0, Some(1))]), t0);
    let ev = events(&mut d);
    assert_eq!(
        outcome(&ev, 1),
        Some(Outcome::Partial(PartialReason::Protocol(
            ProtocolError::ClientLink
        )))
    );
    assert_eq!(
        outcome(&ev, 2),
        Some(Outcome::Partial(PartialReason::Aborted(
            ProtocolError::ClientLink
        )))
    );
    assert!(prefixes(&ev, 1).is_empty());
    assert_eq!(
        d.close_reason(),
        Some(&CloseReason::Protocol(ProtocolError::ClientLink))
    );
    // In a DATA.
    let mut d = demux(t0, &[1]);
    d.handle_frame(&reply(1, vec![cd(0, Some(1))]), t0);
    d.handle_frame(&data(1, vec![link, cd(1, Some(1))]), t0);
    let ev = events(&mut d);
    assert_eq!(prefixes(&ev, 1).len(), 1, "bindings before the fault stand");
    assert_eq!(
        outcome(&ev, 1),
        Some(Outcome::Partial(PartialReason::Protocol(
            ProtocolError::ClientLink
        )))
    );
}

#[test]
fn data_or_done_with_unknown_xid_closes_the_connection() {
    let t0 = Instant::now();
    for stray in [data(0x99, vec![cd(0, Some(1))]), done(0x99)] {
        let mut d = demux(t0, &[1, 2]);
        d.handle_frame(&reply(1, vec![cd(0, Some(1))]), t0);
        d.handle_frame(&stray, t0);
        let ev = events(&mut d);
        let e = ProtocolError::UnknownXid {
            msg_type: MessageView::parse(&stray).unwrap().msg_type(),
            xid: x(0x99),
        };
        assert_eq!(d.close_reason(), Some(&CloseReason::Protocol(e.clone())));
        assert_eq!(
            outcome(&ev, 1),
            Some(Outcome::Partial(PartialReason::Aborted(e.clone())))
        );
        assert_eq!(
            outcome(&ev, 2),
            Some(Outcome::Partial(PartialReason::Aborted(e)))
        );
        assert_eq!(d.outstanding(), 0);
        assert_eq!(d.poll_timeout(), None);
        // Later frames are ignored.
        d.handle_frame(&done(1), t0);
        assert!(events(&mut d).is_empty());
        assert_eq!(d.start_query(x(3), t0), Err(StartError::Closed));
    }
}

#[test]
fn done_after_a_reply_without_bindings_matches_no_query() {
    // RFC 5460 6.3: a REPLY without bindings MUST NOT be followed by a DONE;
    // the query is complete, so the DONE's xid is no longer outstanding.
    let t0 = Instant::now();
    let mut d = demux(t0, &[1]);
    d.handle_frame(&reply(1, vec![]), t0);
    d.handle_frame(&done(1), t0);
    let ev = events(&mut d);
    assert_eq!(outcome(&ev, 1), Some(Outcome::NoBindings));
    assert!(matches!(
        d.close_reason(),
        Some(CloseReason::Protocol(ProtocolError::UnknownXid { xid, .. })) if *xid == x(1)
    ));
}

#[test]
fn reply_with_unknown_xid_is_discarded_without_closing() {
    let t0 = Instant::now();
    let mut d = demux(t0, &[1]);
    d.handle_frame(&reply(0x42, vec![cd(0, Some(1))]), t0);
    let ev = events(&mut d);
    assert_eq!(drops(&ev), vec![DropReason::ReplyUnknownXid]);
    assert!(prefixes(&ev, 0x42).is_empty());
    assert_eq!(d.close_reason(), None);
    assert!(d.is_outstanding(x(1)));
}

#[test]
fn done_with_status_after_data_is_partial() {
    let t0 = Instant::now();
    let mut d = demux(t0, &[1]);
    d.handle_frame(&reply(1, vec![cd(0, Some(1))]), t0);
    d.handle_frame(&data(1, vec![cd(1, Some(1))]), t0);
    d.handle_frame(
        &msg(
            MessageType::LeasequeryDone,
            1,
            vec![DhcpOption::status(
                StatusCode::QueryTerminated,
                "shutting down",
            )],
        ),
        t0,
    );
    let ev = events(&mut d);
    assert_eq!(prefixes(&ev, 1).len(), 2);
    assert_eq!(
        outcome(&ev, 1),
        Some(Outcome::Partial(PartialReason::DoneStatus(
            ServerStatus::new(StatusCode::QueryTerminated, "shutting down")
        )))
    );
    assert_eq!(d.close_reason(), None);
    // A DONE with Success status is an ordinary end.
    let mut d = demux(t0, &[1]);
    d.handle_frame(&reply(1, vec![cd(0, Some(1))]), t0);
    d.handle_frame(
        &msg(
            MessageType::LeasequeryDone,
            1,
            vec![DhcpOption::status(StatusCode::Success, "")],
        ),
        t0,
    );
    assert_eq!(outcome(&events(&mut d), 1), Some(Outcome::Complete));
}

#[test]
fn close_mid_stream_is_partial() {
    let t0 = Instant::now();
    let mut d = demux(t0, &[1, 2]);
    d.handle_frame(&reply(1, vec![cd(0, Some(1))]), t0);
    d.handle_frame(&data(1, vec![cd(1, Some(1))]), t0);
    d.handle_close(t0 + Duration::from_secs(1));
    let ev = events(&mut d);
    assert_eq!(prefixes(&ev, 1).len(), 2);
    assert_eq!(
        outcome(&ev, 1),
        Some(Outcome::Partial(PartialReason::Closed))
    );
    assert_eq!(
        outcome(&ev, 2),
        Some(Outcome::Partial(PartialReason::Closed)),
        "closed before its REPLY"
    );
    assert_eq!(d.close_reason(), Some(&CloseReason::PeerClosed));
}

#[test]
fn data_timeout_runs_on_injected_time() {
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let mut d = ReplyDemux::new(us(), s(10));
    assert_eq!(d.poll_timeout(), None);
    d.start_query(x(1), t0).unwrap();
    assert_eq!(d.poll_timeout(), Some(t0 + s(10)));
    d.handle_frame(&reply(1, vec![cd(0, Some(1))]), t0 + s(4));
    assert_eq!(d.poll_timeout(), Some(t0 + s(14)), "each message rearms it");
    d.handle_timeout(t0 + s(13));
    assert_eq!(d.close_reason(), None, "not yet");
    d.handle_frame(&data(1, vec![cd(1, Some(1))]), t0 + s(13));
    d.handle_timeout(t0 + s(22));
    assert_eq!(d.close_reason(), None);
    d.handle_timeout(t0 + s(23));
    assert_eq!(d.close_reason(), Some(&CloseReason::DataTimeout));
    let ev = events(&mut d);
    assert_eq!(prefixes(&ev, 1).len(), 2);
    match ev.last().unwrap() {
        Event::Finished { outcome, stats, .. } => {
            assert_eq!(*outcome, Outcome::Partial(PartialReason::DataTimeout));
            assert_eq!(stats.finished, Some(t0 + s(23)));
        }
        e => panic!("{e:?}"),
    }
    assert_eq!(d.poll_timeout(), None);
}

#[test]
fn a_silent_server_gives_no_answer_not_a_data_timeout() {
    let t0 = Instant::now();
    let mut d = demux(t0, &[1]);
    assert!(d.is_waiting_first_answer());
    d.handle_timeout(t0 + T);
    let ev = events(&mut d);
    assert_eq!(outcome(&ev, 1), Some(Outcome::NoAnswer));
    assert_eq!(d.close_reason(), Some(&CloseReason::NoAnswer));
    assert_eq!(Outcome::NoAnswer.code(), "no-answer");
    assert_eq!(Outcome::NoAnswer.to_string(), "no answer to the query");
}

#[test]
fn the_first_answer_timeout_runs_until_a_query_hears_something() {
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let mut d = ReplyDemux::new(us(), s(300));
    d.set_first_answer_timeout(s(30));
    d.start_query(x(1), t0).unwrap();
    d.handle_sent(t0 + s(1));
    assert_eq!(d.poll_timeout(), Some(t0 + s(31)), "30 s from the write");
    d.handle_timeout(t0 + s(30));
    assert_eq!(d.close_reason(), None, "not yet");
    // The REPLY: from now on the data timeout.
    d.handle_frame(&reply(1, vec![cd(0, Some(1))]), t0 + s(20));
    assert!(!d.is_waiting_first_answer());
    assert_eq!(d.poll_timeout(), Some(t0 + s(320)));
    d.handle_timeout(t0 + s(100));
    assert_eq!(d.close_reason(), None, "a stream may pause past 30 s");
    d.handle_timeout(t0 + s(320));
    assert_eq!(d.close_reason(), Some(&CloseReason::DataTimeout));
    let ev = events(&mut d);
    assert_eq!(
        outcome(&ev, 1),
        Some(Outcome::Partial(PartialReason::DataTimeout)),
        "a stream that stalled after data stays a data timeout"
    );
}

#[test]
fn after_a_done_the_next_query_gets_its_own_first_answer_timeout() {
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let mut d = ReplyDemux::new(us(), s(300));
    d.set_first_answer_timeout(s(30));
    d.start_query(x(1), t0).unwrap();
    d.start_query(x(2), t0).unwrap();
    // A server that answers one query after the other: the second waits
    // while the first streams, without a timeout of its own.
    d.handle_frame(&reply(1, vec![cd(0, Some(1))]), t0 + s(1));
    d.handle_frame(&data(1, vec![cd(1, Some(1))]), t0 + s(200));
    assert_eq!(d.poll_timeout(), Some(t0 + s(500)));
    d.handle_frame(&done(1), t0 + s(201));
    assert!(d.is_waiting_first_answer(), "only the second is left");
    assert_eq!(d.poll_timeout(), Some(t0 + s(231)));
    d.handle_timeout(t0 + s(231));
    let ev = events(&mut d);
    assert_eq!(outcome(&ev, 1), Some(Outcome::Complete));
    assert_eq!(outcome(&ev, 2), Some(Outcome::NoAnswer));
}

#[test]
fn a_first_answer_timeout_longer_than_the_data_timeout_is_the_data_timeout() {
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let mut d = ReplyDemux::new(us(), s(10));
    d.set_first_answer_timeout(s(30));
    d.start_query(x(1), t0).unwrap();
    assert_eq!(d.poll_timeout(), Some(t0 + s(10)));
    d.handle_timeout(t0 + s(10));
    assert_eq!(outcome(&events(&mut d), 1), Some(Outcome::NoAnswer));
}

#[test]
fn interleaved_replies_are_demultiplexed() {
    // RFC 5460 6.5.1's example: xid 4 and xid 3 interleave.
    let t0 = Instant::now();
    let mut d = demux(t0, &[3, 4]);
    let stream = [
        reply(4, vec![cd(40, Some(1))]),
        data(4, vec![cd(41, Some(1))]),
        reply(3, vec![cd(30, Some(1))]),
        data(4, vec![cd(42, Some(1))]),
        data(3, vec![cd(31, Some(1))]),
        done(3),
        data(4, vec![cd(43, Some(1))]),
        done(4),
    ];
    for f in &stream {
        d.handle_frame(f, t0);
    }
    let ev = events(&mut d);
    let p = |v: &[u8]| {
        v.iter()
            .map(|&n| LeaseKind::Prefix(prefix(n)))
            .collect::<Vec<_>>()
    };
    assert_eq!(prefixes(&ev, 3), p(&[30, 31]));
    assert_eq!(prefixes(&ev, 4), p(&[40, 41, 42, 43]));
    assert_eq!(outcome(&ev, 3), Some(Outcome::Complete));
    assert_eq!(outcome(&ev, 4), Some(Outcome::Complete));
    assert_eq!(d.close_reason(), None);
}

#[test]
fn out_of_order_and_duplicate_messages_are_protocol_errors() {
    let t0 = Instant::now();
    let cases: Vec<(Vec<Vec<u8>>, ProtocolError)> = vec![
        (
            vec![data(1, vec![cd(0, Some(1))])],
            ProtocolError::DataBeforeReply,
        ),
        (vec![done(1)], ProtocolError::DoneBeforeReply),
        (
            vec![
                reply(1, vec![cd(0, Some(1))]),
                reply(1, vec![cd(1, Some(1))]),
            ],
            ProtocolError::DuplicateReply,
        ),
        (
            vec![msg(MessageType::Leasequery, 1, vec![])],
            ProtocolError::UnexpectedMessage(UnexpectedMessage {
                msg_type: MessageType::Leasequery,
                xid: Some(x(1)),
                status: None,
            }),
        ),
        (
            vec![msg(MessageType::Reply, 1, vec![])],
            ProtocolError::UnexpectedMessage(UnexpectedMessage {
                msg_type: MessageType::Reply,
                xid: Some(x(1)),
                status: None,
            }),
        ),
    ];
    for (frames, want) in cases {
        let mut d = demux(t0, &[1, 2]);
        for f in &frames {
            d.handle_frame(f, t0);
        }
        let ev = events(&mut d);
        assert_eq!(
            outcome(&ev, 1),
            Some(Outcome::Partial(PartialReason::Protocol(want.clone()))),
            "{want}"
        );
        assert_eq!(
            outcome(&ev, 2),
            Some(Outcome::Partial(PartialReason::Aborted(want.clone())))
        );
        assert_eq!(d.close_reason(), Some(&CloseReason::Protocol(want)));
    }
}

#[test]
fn malformed_frames_close_the_connection() {
    let t0 = Instant::now();
    // An option that overruns the message, in xid 1's DATA.
    let mut bad = data(1, vec![cd(1, Some(1))]);
    bad.truncate(bad.len() - 1);
    let mut d = demux(t0, &[1, 2]);
    d.handle_frame(&reply(1, vec![cd(0, Some(1))]), t0);
    d.handle_frame(&bad, t0);
    let ev = events(&mut d);
    assert_eq!(
        prefixes(&ev, 1).len(),
        1,
        "nothing of the bad message is used"
    );
    assert!(matches!(
        outcome(&ev, 1),
        Some(Outcome::Partial(PartialReason::Protocol(
            ProtocolError::Malformed(_)
        )))
    ));
    assert!(matches!(
        outcome(&ev, 2),
        Some(Outcome::Partial(PartialReason::Aborted(
            ProtocolError::Malformed(_)
        )))
    ));
    // Too short for a header, and a relay message at top level, and an empty frame.
    for f in [vec![17u8, 0], vec![13u8; 40], vec![]] {
        let mut d = demux(t0, &[1]);
        d.handle_frame(&f, t0);
        assert!(
            matches!(d.close_reason(), Some(CloseReason::Protocol(_))),
            "{f:?}"
        );
        assert!(matches!(
            outcome(&events(&mut d), 1),
            Some(Outcome::Partial(PartialReason::Aborted(_)))
        ));
    }
}

#[test]
fn transport_error_ends_every_query() {
    let t0 = Instant::now();
    let mut d = demux(t0, &[1, 2]);
    d.handle_frame(&reply(1, vec![cd(0, Some(1))]), t0);
    d.handle_transport_error(TransportError::WriteTimeout, t0);
    let ev = events(&mut d);
    for x in [1, 2] {
        assert_eq!(
            outcome(&ev, x),
            Some(Outcome::TransportFailure(TransportError::WriteTimeout))
        );
    }
    assert_eq!(
        d.close_reason(),
        Some(&CloseReason::Transport(TransportError::WriteTimeout))
    );
}

#[test]
fn xids_are_unique_per_connection() {
    let t0 = Instant::now();
    let mut d = demux(t0, &[1]);
    assert_eq!(d.start_query(x(1), t0), Err(StartError::DuplicateXid(x(1))));
    assert_eq!(Xid::new(0x0100_0001), None, "24 bits on the wire");
    d.handle_frame(&reply(1, vec![]), t0);
    assert!(d.start_query(x(1), t0).is_ok(), "free again once ended");
}

#[test]
fn query_assembler_alone() {
    let t0 = Instant::now();
    let mut q = QueryAssembler::new(x(8), us(), t0);
    let r = reply(8, vec![cd_two(1)]);
    q.handle_message(&MessageView::parse_validated(&r).unwrap(), t0)
        .unwrap();
    assert!(q.has_reply());
    assert_eq!(q.stats().bindings, 2);
    let d = done(8);
    q.handle_message(&MessageView::parse_validated(&d).unwrap(), t0)
        .unwrap();
    assert_eq!(q.outcome(), Some(&Outcome::Complete));
    // After the end, a DATA for it matches no outstanding query.
    let late = data(8, vec![cd(2, Some(1))]);
    assert_eq!(
        q.handle_message(&MessageView::parse_validated(&late).unwrap(), t0),
        Err(ProtocolError::UnknownXid {
            msg_type: MessageType::LeasequeryData,
            xid: x(8)
        })
    );
    q.handle_close(t0);
    assert_eq!(
        q.outcome(),
        Some(&Outcome::Complete),
        "close after the end changes nothing"
    );
    let n = std::iter::from_fn(|| q.poll_event()).count();
    assert_eq!(n, 3, "two bindings and one Finished");
}

fn kea(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/data/kea/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn kea_pipelined_capture_through_the_demux() {
    use crate::proto::frame::FrameIter;
    let t0 = Instant::now();
    let req = kea("23_pipelined_relayA_link_s2.request.bin");
    let resp = kea("23_pipelined_relayA_link_s2.response.bin");
    let mut d = demux(t0, &[]);
    for f in FrameIter::new(&req) {
        let m = MessageView::parse(f.unwrap().message).unwrap();
        d.start_query(m.xid(), t0).unwrap();
    }
    assert_eq!(d.outstanding(), 2);
    for f in FrameIter::new(&resp) {
        d.handle_frame(f.unwrap().message, t0);
    }
    let ev = events(&mut d);
    assert_eq!(outcome(&ev, 0x201), Some(Outcome::Complete));
    assert_eq!(outcome(&ev, 0x202), Some(Outcome::Complete));
    assert_eq!(drops(&ev), vec![]);
    assert_eq!(prefixes(&ev, 0x201).len() + prefixes(&ev, 0x202).len(), 127);
    assert_eq!(d.close_reason(), None);
}

#[test]
fn binding_limits_cut_off_exactly() {
    let t0 = Instant::now();
    // Per query: 3 accepted, the message bringing the 4th ends the query.
    let mut d = demux(t0, &[1, 2]);
    d.set_limits(3, u64::MAX);
    d.handle_frame(&reply(1, vec![cd(0, Some(1)), cd(1, Some(1))]), t0);
    d.handle_frame(&data(1, vec![cd(2, Some(1)), cd(3, Some(1))]), t0);
    let ev = events(&mut d);
    assert_eq!(prefixes(&ev, 1).len(), 3);
    let e = ProtocolError::TooManyBindings { limit: 3 };
    assert_eq!(
        outcome(&ev, 1),
        Some(Outcome::Partial(PartialReason::Protocol(e.clone())))
    );
    assert_eq!(
        outcome(&ev, 2),
        Some(Outcome::Partial(PartialReason::Aborted(e)))
    );
    assert_eq!(d.delivered(), 3);
    // Per connection: 4 in all, over two queries.
    let mut d = demux(t0, &[1, 2]);
    d.set_limits(u64::MAX, 4);
    d.handle_frame(&reply(1, vec![cd(0, Some(1)), cd(1, Some(1))]), t0);
    d.handle_frame(&reply(2, vec![cd(2, Some(1))]), t0);
    d.handle_frame(&data(1, vec![cd(3, Some(1))]), t0);
    assert_eq!(d.close_reason(), None, "exactly at the limit is fine");
    d.handle_frame(&data(2, vec![cd(4, Some(1))]), t0);
    let ev = events(&mut d);
    assert_eq!(prefixes(&ev, 1).len() + prefixes(&ev, 2).len(), 4);
    assert!(matches!(
        outcome(&ev, 2),
        Some(Outcome::Partial(PartialReason::Protocol(
            ProtocolError::TooManyBindings { .. }
        )))
    ));
    assert!(matches!(d.close_reason(), Some(CloseReason::Protocol(_))));
}

#[test]
fn deadline_ends_every_query() {
    let t0 = Instant::now();
    let mut d = demux(t0, &[1, 2]);
    d.handle_frame(&reply(1, vec![cd(0, Some(1))]), t0);
    d.handle_deadline(t0 + Duration::from_secs(1));
    let ev = events(&mut d);
    assert_eq!(prefixes(&ev, 1).len(), 1);
    for x in [1, 2] {
        assert_eq!(
            outcome(&ev, x),
            Some(Outcome::Partial(PartialReason::Deadline))
        );
    }
    assert_eq!(d.close_reason(), Some(&CloseReason::Deadline));
}

#[test]
fn read_timer_restarts_when_the_queries_are_sent() {
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let mut d = ReplyDemux::new(us(), s(10));
    d.start_query(x(1), t0).unwrap();
    d.handle_sent(t0 + s(7));
    assert_eq!(d.poll_timeout(), Some(t0 + s(17)));
    d.handle_timeout(t0 + s(12));
    assert_eq!(d.close_reason(), None);
}

/// CLIENT_DATA for client `n` whose relay chain has `depth` layers.
fn cd_relayed(n: u8, depth: usize) -> DhcpOption {
    let mut inner: Option<crate::proto::RelayMessage> = None;
    for hop in 0..depth {
        let mut options = vec![DhcpOption::InterfaceId(vec![b'i', hop as u8])];
        if let Some(m) = inner.take() {
            options.push(DhcpOption::RelayMsg(Box::new(
                crate::proto::Message::Relay(m),
            )));
        }
        inner = Some(crate::proto::RelayMessage {
            msg_type: MessageType::RelayForw,
            hop_count: hop as u8,
            link_address: Ipv6Addr::UNSPECIFIED,
            peer_address: Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, hop as u16 + 1),
            options,
        });
    }
    let DhcpOption::ClientData(mut o) = cd(n, Some(1)) else {
        unreachable!()
    };
    if let Some(message) = inner {
        o.push(DhcpOption::LqRelayData {
            peer_address: message.peer_address,
            message,
        });
    }
    DhcpOption::ClientData(o)
}

#[test]
fn relay_chains_deeper_than_the_limit_cut_the_server_off() {
    let t0 = Instant::now();
    let mut d = demux(t0, &[7, 8]);
    d.set_max_relay_depth(32);
    // 32 layers (RFC 8415 HOP_COUNT_LIMIT) pass, with every layer kept.
    d.handle_frame(&reply(7, vec![cd_relayed(0, 32)]), t0);
    let ev = events(&mut d);
    match &ev[..] {
        [Event::Binding { binding, .. }] => assert_eq!(binding.relay.len(), 32),
        other => panic!("{other:?}"),
    }
    // 33 layers: the binding before it in the message is delivered, it is
    // not, and the connection is closed under the other query too.
    d.handle_frame(
        &data(
            7,
            vec![cd_relayed(1, 1), cd_relayed(2, 33), cd_relayed(3, 1)],
        ),
        t0,
    );
    let ev = events(&mut d);
    assert_eq!(prefixes(&ev, 7), vec![LeaseKind::Prefix(prefix(1))]);
    let e = ProtocolError::RelayChainTooDeep {
        depth: 33,
        limit: 32,
    };
    assert_eq!(
        outcome(&ev, 7),
        Some(Outcome::Partial(PartialReason::Protocol(e.clone())))
    );
    assert_eq!(
        outcome(&ev, 8),
        Some(Outcome::Partial(PartialReason::Aborted(e.clone())))
    );
    assert_eq!(d.close_reason(), Some(&CloseReason::Protocol(e.clone())));
    assert_eq!(
        e.to_string(),
        "relay chain of 33 layers, deeper than the limit of 32 (RFC 8415 HOP_COUNT_LIMIT)"
    );
    // Not retried: the server would only send it again.
    assert_eq!(
        crate::requestor::RetryPolicy::default()
            .classify(&Outcome::Partial(PartialReason::Protocol(e))),
        crate::requestor::Disposition::Final
    );
    // Without a limit (the sans-IO default) the codec's own nesting cap is
    // the only bound.
    let mut d = demux(t0, &[9]);
    d.handle_frame(&reply(9, vec![cd_relayed(0, 40)]), t0);
    assert_eq!(prefixes(&events(&mut d), 9).len(), 1);
}

/// What dhcpkit 1.0.7 sends from a listener without its leasequery
/// handler (tests/data/dhcpkit, q12): a plain REPLY (7) with our xid,
/// UseMulticast and a text, on the bulk connection.
fn plain_reply(xid: u32, code: StatusCode, text: &str) -> Vec<u8> {
    msg(
        MessageType::Reply,
        xid,
        vec![
            DhcpOption::ClientId(us()),
            DhcpOption::ServerId(SERVER.parse().unwrap()),
            DhcpOption::status(code, text),
        ],
    )
}

#[test]
fn a_plain_reply_is_reported_with_its_status_and_text() {
    let t0 = Instant::now();
    let text = "You cannot send requests directly to this server";
    let mut d = demux(t0, &[1, 2]);
    d.handle_frame(&plain_reply(1, StatusCode::UseMulticast, text), t0);
    let ev = events(&mut d);
    let want = ProtocolError::UnexpectedMessage(UnexpectedMessage {
        msg_type: MessageType::Reply,
        xid: Some(x(1)),
        status: Some(ServerStatus::new(StatusCode::UseMulticast, text)),
    });
    let mine = outcome(&ev, 1).unwrap();
    assert_eq!(
        mine,
        Outcome::Partial(PartialReason::Protocol(want.clone()))
    );
    // The connection is closed (RFC 5460 s.4, s.6.3); the other query ends
    // with it, and says why.
    assert_eq!(
        outcome(&ev, 2),
        Some(Outcome::Partial(PartialReason::Aborted(want.clone())))
    );
    assert_eq!(d.close_reason(), Some(&CloseReason::Protocol(want)));
    let s = mine.server_status().unwrap();
    assert_eq!(s.message, MessageType::Reply);
    assert_eq!(
        (s.status.code, s.status.name()),
        (StatusCode::UseMulticast, "UseMulticast")
    );
    assert_eq!(s.status.message, text);
    assert!(mine.hint().unwrap().contains("not Bulk Leasequery"));
    let words = mine.to_string();
    for w in ["REPLY(7)", "UseMulticast(5)", text, "RFC 5460 4"] {
        assert!(words.contains(w), "{w} in {words}");
    }
    assert_eq!(mine.code(), "protocol-error");
}

#[test]
fn a_message_not_allowed_is_decoded_as_far_as_it_goes() {
    let t0 = Instant::now();
    // The status first, then an option that overruns the message: the
    // message does not validate, its status is still read.
    let mut m = plain_reply(1, StatusCode::NotAllowed, "go away");
    m.extend_from_slice(&[0, 45, 0, 200, 0, 1]);
    let mut d = demux(t0, &[1]);
    d.handle_frame(&m, t0);
    let ev = events(&mut d);
    let o = outcome(&ev, 1).unwrap();
    let s = o.server_status().expect("the status before the bad option");
    assert_eq!(
        (s.message, s.status.code),
        (MessageType::Reply, StatusCode::NotAllowed)
    );
    assert_eq!(s.status.message, "go away");
    // A relay message has no transaction-id: every query is aborted by it.
    let relay = crate::proto::Message::Relay(RelayMessage {
        msg_type: MessageType::RelayRepl,
        hop_count: 0,
        link_address: Ipv6Addr::UNSPECIFIED,
        peer_address: Ipv6Addr::UNSPECIFIED,
        options: vec![DhcpOption::status(StatusCode::UnspecFail, "relayed")],
    })
    .to_bytes();
    let mut d = demux(t0, &[1]);
    d.handle_frame(&relay, t0);
    let o = outcome(&events(&mut d), 1).unwrap();
    let Outcome::Partial(PartialReason::Aborted(ProtocolError::UnexpectedMessage(u))) = &o else {
        panic!("{o:?}")
    };
    assert_eq!((u.msg_type, u.xid), (MessageType::RelayRepl, None));
    assert_eq!(u.status.as_ref().unwrap().message, "relayed");
    // A status option too short for its code: no status, no panic.
    let mut short = msg(MessageType::Reply, 1, vec![]);
    short.extend_from_slice(&[0, 13, 0, 1, 5]);
    let mut d = demux(t0, &[1]);
    d.handle_frame(&short, t0);
    let o = outcome(&events(&mut d), 1).unwrap();
    assert!(o.server_status().is_none(), "{o:?}");
    assert!(o.to_string().contains("REPLY(7) without a status"), "{o}");
}

#[test]
fn a_long_status_text_is_cut_and_says_so() {
    let t0 = Instant::now();
    // 300 octets: 'a' then two-octet characters, so the cut at 256 falls
    // inside one; and a line break a server could forge lines with.
    let text = format!("a\nb{}", "é".repeat(150));
    assert!(text.len() > MAX_STATUS_TEXT && text.as_bytes()[MAX_STATUS_TEXT] & 0xc0 == 0x80);
    for frame in [
        reply_with_status(1, StatusCode::NotAllowed, &text),
        plain_reply(1, StatusCode::UseMulticast, &text),
    ] {
        let mut d = demux(t0, &[1]);
        d.handle_frame(&frame, t0);
        let o = outcome(&events(&mut d), 1).unwrap();
        let s = o.server_status().unwrap().status;
        assert_eq!(s.truncated_from, Some(text.len()));
        assert!(s.message.len() <= MAX_STATUS_TEXT && s.message.len() >= MAX_STATUS_TEXT - 3);
        assert!(text.starts_with(&s.message), "cut at a character boundary");
        assert!(!s.message.contains('\u{fffd}'));
        let words = o.to_string();
        assert!(
            words.contains(&format!(
                "text cut to {} of its {} octets",
                s.message.len(),
                text.len()
            )),
            "{words}"
        );
        assert!(!words.contains('\n'), "control characters escaped: {words}");
    }
    // Short texts are whole.
    let s = ServerStatus::new(StatusCode::NotConfigured, "no such link");
    assert_eq!(s.truncated_from, None);
    assert_eq!(s.to_string(), "NotConfigured(9) \"no such link\"");
    assert_eq!(
        ServerStatus::new(StatusCode::from(42), "").name(),
        "unknown"
    );
}

fn reply_with_status(xid: u32, code: StatusCode, text: &str) -> Vec<u8> {
    msg(
        MessageType::LeasequeryReply,
        xid,
        vec![
            DhcpOption::ClientId(us()),
            DhcpOption::ServerId(SERVER.parse().unwrap()),
            DhcpOption::status(code, text),
        ],
    )
}

#[test]
fn error_statuses_name_what_they_say_of_the_query_type() {
    let t0 = Instant::now();
    for (code, hint) in [
        (
            StatusCode::UnknownQueryType,
            "does not support this query type",
        ),
        (StatusCode::NotAllowed, "does not allow this query"),
        (StatusCode::MalformedQuery, "calls the query malformed"),
        (StatusCode::NotConfigured, "no configuration"),
    ] {
        let mut d = demux(t0, &[1]);
        d.handle_frame(&reply_with_status(1, code, "the words"), t0);
        let o = outcome(&events(&mut d), 1).unwrap();
        let s = o.server_status().unwrap();
        assert_eq!(
            (s.message, s.status.code),
            (MessageType::LeasequeryReply, code)
        );
        assert_eq!(s.status.message, "the words");
        assert!(o.hint().unwrap().contains(hint), "{code}: {:?}", o.hint());
    }
    assert!(Outcome::NoAnswer
        .hint()
        .unwrap()
        .contains("may not support this query type"));
    assert_eq!(Outcome::Complete.hint(), None);
    let done = Outcome::Partial(PartialReason::DoneStatus(ServerStatus::new(
        StatusCode::QueryTerminated,
        "shutting down",
    )));
    assert_eq!(
        done.server_status().unwrap().message,
        MessageType::LeasequeryDone
    );
    assert!(done.hint().unwrap().contains("ended the query early"));
}
