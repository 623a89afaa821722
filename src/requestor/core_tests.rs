//! The connection core on injected time: no sockets, no sleeps. Time is
//! `t0` plus whatever a test says; the written octets are read back with
//! the capture framing.

use super::*;
use crate::proto::frame::FrameIter;
use crate::proto::{ClientMessage, DhcpOption, IaPrefix, LeasequeryBuilder, MessageView, Query};
use crate::proto::{MessageType, OwnedBindings};

const US: &str = "000100012a2b2c2d020000009901";
const SERVER_ID: &str = "0002000009bf0102030405060708";
const RELAY: &str = "0003000102005e000002";
const T: Duration = Duration::from_secs(10);

fn x(v: u32) -> Xid {
    Xid::new(v).unwrap()
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn server() -> SocketAddr {
    "[2001:db8::547]:547".parse().unwrap()
}

fn cfg(max_in_flight: usize) -> ConnectionConfig {
    let mut c = ConnectionConfig::new(US.parse().unwrap());
    c.data_timeout = T;
    c.max_in_flight = max_in_flight;
    c
}

/// Query `i` of `n`, with transaction-id 0x100 + i.
fn planned(n: usize) -> Vec<PlannedQuery> {
    (0..n)
        .map(|index| planned_with(index, x(0x100 + index as u32)))
        .collect()
}

fn planned_with(index: usize, xid: Xid) -> PlannedQuery {
    let q = Query::ByRelayId(RELAY.parse().unwrap());
    PlannedQuery {
        index,
        xid,
        message: LeasequeryBuilder::new(xid, US.parse().unwrap(), q).to_bytes(),
    }
}

fn core(cfg: &ConnectionConfig, queries: Vec<PlannedQuery>, t0: Instant) -> ConnectionCore {
    ConnectionCore::new(server(), cfg, queries, Attempt::first(), OwnedBindings, t0)
}

fn msg(t: MessageType, xid: Xid, options: Vec<DhcpOption>) -> Vec<u8> {
    ClientMessage {
        msg_type: t,
        transaction_id: xid.get(),
        options,
    }
    .to_bytes()
}

/// CLIENT_DATA with the delegated prefix number `n`.
fn cd(n: u16) -> DhcpOption {
    DhcpOption::ClientData(vec![
        DhcpOption::ClientId(Duid::from_bytes(vec![
            0,
            3,
            0,
            1,
            2,
            0,
            (n >> 8) as u8,
            n as u8,
        ])),
        DhcpOption::IaPrefix(IaPrefix {
            preferred_lifetime: 3000,
            valid_lifetime: 4000,
            prefix: format!("2001:db8:{n:x}::/56").parse().unwrap(),
            options: vec![],
        }),
        DhcpOption::CltTime(5),
    ])
}

/// A REPLY from the server to us, with `data` (none: no bindings).
fn reply_for(xid: Xid, client: &str, data: Vec<DhcpOption>) -> Vec<u8> {
    let mut o = vec![
        DhcpOption::ClientId(client.parse().unwrap()),
        DhcpOption::ServerId(SERVER_ID.parse().unwrap()),
    ];
    o.extend(data);
    msg(MessageType::LeasequeryReply, xid, o)
}

fn reply(xid: Xid, data: Vec<DhcpOption>) -> Vec<u8> {
    reply_for(xid, US, data)
}

fn data(xid: Xid, n: u16) -> Vec<u8> {
    msg(MessageType::LeasequeryData, xid, vec![cd(n)])
}

fn done(xid: Xid) -> Vec<u8> {
    msg(MessageType::LeasequeryDone, xid, vec![])
}

/// The transaction-ids of the queries the core wants written now.
fn to_write(c: &ConnectionCore) -> Vec<Xid> {
    FrameIter::new(c.poll_transmit())
        .map(|f| MessageView::parse(f.unwrap().message).unwrap().xid())
        .collect()
}

/// Write everything the core has, at `now`.
fn write_all(c: &mut ConnectionCore, now: Instant) {
    let n = c.poll_transmit().len();
    c.handle_written(n, now);
}

/// The events but the queries' steps (see [`steps`]).
fn events(c: &mut ConnectionCore) -> Vec<ConnectionEvent> {
    all_events(c)
        .into_iter()
        .filter(|e| !matches!(e, ConnectionEvent::Query { .. }))
        .collect()
}

fn all_events(c: &mut ConnectionCore) -> Vec<ConnectionEvent> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

/// The queries' steps among `ev`: (index, step).
fn steps(ev: &[ConnectionEvent]) -> Vec<(usize, QueryStep)> {
    ev.iter()
        .filter_map(|e| match e {
            ConnectionEvent::Query { index, step, .. } => Some((*index, step.clone())),
            _ => None,
        })
        .collect()
}

fn bindings(ev: &[ConnectionEvent]) -> Vec<&Delivery> {
    ev.iter()
        .flat_map(|e| match e {
            ConnectionEvent::Bindings(v) => v.iter().collect(),
            _ => Vec::new(),
        })
        .collect()
}

/// The result of each query by index, checking that each has exactly one.
fn by_index(r: &ConnectionReport, n: usize) -> Vec<&QueryResult> {
    let mut v: Vec<&QueryResult> = r.results.iter().collect();
    v.sort_by_key(|q| q.index);
    let indices: Vec<usize> = v.iter().map(|q| q.index).collect();
    assert_eq!(indices, (0..n).collect::<Vec<_>>(), "one result per query");
    v
}

#[test]
fn the_window_refills_as_queries_finish() {
    let t0 = Instant::now();
    let q = planned(4);
    let (a, b, c2, d) = (q[0].xid, q[1].xid, q[2].xid, q[3].xid);
    let mut c = core(&cfg(2), q, t0);
    assert_eq!(to_write(&c), vec![a, b], "two in flight (RFC 5460 6.5)");
    write_all(&mut c, t0);
    assert!(c.poll_transmit().is_empty());

    // The first ends (no bindings): the third starts at once.
    c.handle_frame(&reply(a, vec![]), t0 + secs(1));
    assert_eq!(to_write(&c), vec![c2]);
    write_all(&mut c, t0 + secs(1));
    // The second streams, then ends: the fourth starts.
    c.handle_frame(&reply(b, vec![cd(1)]), t0 + secs(2));
    assert!(to_write(&c).is_empty(), "still two in flight");
    c.handle_frame(&done(b), t0 + secs(2));
    assert_eq!(to_write(&c), vec![d]);
    write_all(&mut c, t0 + secs(2));
    for xid in [c2, d] {
        assert!(!c.is_done());
        c.handle_frame(&reply(xid, vec![]), t0 + secs(3));
    }
    assert!(c.is_done());
    assert_eq!(c.poll_timeout(), None);
    assert_eq!(bindings(&events(&mut c)).len(), 1);

    let r = c.into_report();
    assert_eq!(r.close, None);
    assert_eq!(r.server_id, Some(SERVER_ID.parse().unwrap()));
    let order: Vec<usize> = r.results.iter().map(|q| q.index).collect();
    assert_eq!(order, vec![0, 1, 2, 3], "in the order they ended");
    let v = by_index(&r, 4);
    assert_eq!(v[1].outcome, Outcome::Complete);
    for i in [0, 2, 3] {
        assert_eq!(v[i].outcome, Outcome::NoBindings);
    }
    // Each was started when the window had room for it.
    let started: Vec<Instant> = v
        .iter()
        .map(|q| q.stats.as_ref().unwrap().started)
        .collect();
    assert_eq!(started, vec![t0, t0, t0 + secs(1), t0 + secs(2)]);
}

/// How a connection may end, at a given time.
type Ending = Box<dyn Fn(&mut ConnectionCore, Instant)>;

#[test]
fn every_query_gets_one_result_when_the_connection_dies() {
    let t0 = Instant::now();
    let endings: Vec<(Ending, CloseReason, Outcome)> = vec![
        (
            Box::new(|c, now| c.handle_close(now)),
            CloseReason::PeerClosed,
            Outcome::Partial(PartialReason::Closed),
        ),
        (
            Box::new(|c, now| {
                let e = IoError::new(std::io::ErrorKind::ConnectionReset, "reset");
                c.handle_transport_error(TransportError::Io(e), now)
            }),
            CloseReason::Transport(TransportError::Io(IoError::new(
                std::io::ErrorKind::ConnectionReset,
                "reset",
            ))),
            Outcome::TransportFailure(TransportError::Io(IoError::new(
                std::io::ErrorKind::ConnectionReset,
                "reset",
            ))),
        ),
        (
            Box::new(|c, now| c.handle_timeout(now + T)),
            CloseReason::DataTimeout,
            Outcome::Partial(PartialReason::DataTimeout),
        ),
    ];
    for (end, close, outcome) in endings {
        let q = planned(5);
        let first = q[0].xid;
        let mut c = core(&cfg(2), q, t0);
        write_all(&mut c, t0);
        c.handle_frame(&reply(first, vec![cd(1), cd(2)]), t0 + secs(1));
        assert_eq!(bindings(&events(&mut c)).len(), 2);
        end(&mut c, t0 + secs(1));
        assert!(c.is_done());
        assert!(c.poll_transmit().is_empty(), "nothing more is written");
        assert!(events(&mut c).is_empty());
        let r = c.into_report();
        assert_eq!(r.close.as_ref(), Some(&close));
        let v = by_index(&r, 5);
        for q in &v {
            assert_eq!(q.outcome, outcome, "query {}", q.index);
        }
        // The two in flight were sent and have counters; three never were.
        let sent: Vec<bool> = v.iter().map(|q| q.stats.is_some()).collect();
        assert_eq!(sent, vec![true, true, false, false, false]);
        assert_eq!(v[0].stats.as_ref().unwrap().bindings, 2);
    }
}

#[test]
fn the_byte_cap_aborts_every_query_on_the_connection() {
    let t0 = Instant::now();
    let q = planned(3);
    let (a, b) = (q[0].xid, q[1].xid);
    let first = reply(a, vec![cd(1)]);
    let mut cfg = cfg(2);
    // The first frame fits, with its length prefix; one more octet does not.
    cfg.limits.max_bytes_per_connection = (2 + first.len()) as u64;
    let mut c = core(&cfg, q, t0);
    write_all(&mut c, t0);
    c.handle_frame(&first, t0);
    assert!(!c.is_done());
    c.handle_frame(&reply(b, vec![cd(2)]), t0);
    assert!(c.is_done());
    assert!(!c.takes_more_frames());
    let ev = events(&mut c);
    let got = bindings(&ev);
    assert_eq!(got.len(), 1, "nothing of the frame past the cap");
    assert_eq!(got[0].query, 0);
    let e = ProtocolError::TooManyBytes {
        limit: cfg.limits.max_bytes_per_connection,
    };
    let r = c.into_report();
    assert_eq!(r.close, Some(CloseReason::Protocol(e.clone())));
    for q in by_index(&r, 3) {
        assert_eq!(
            q.outcome,
            Outcome::Partial(PartialReason::Aborted(e.clone()))
        );
    }
}

#[test]
fn a_blocked_write_has_its_own_deadline_and_holds_the_read_timeout() {
    let t0 = Instant::now();
    let mut c = core(&cfg(1), planned(1), t0);
    // Nothing written yet: the write deadline runs from the start (RFC 5460 6.2).
    assert_eq!(c.poll_timeout(), Some(t0 + T));
    // Some progress at 8 s: the deadline moves.
    c.handle_written(3, t0 + secs(8));
    assert_eq!(c.poll_timeout(), Some(t0 + secs(18)));
    // The read timeout, counted from the start, would have passed: it does
    // not run while the write is blocked.
    c.handle_timeout(t0 + secs(12));
    assert!(!c.is_done(), "no read timeout during a blocked write");
    assert_eq!(c.poll_transmit().len() + 3, planned(1)[0].message.len() + 2);
    c.handle_timeout(t0 + secs(18));
    assert!(c.is_done());
    let r = c.into_report();
    let wt = TransportError::WriteTimeout;
    assert_eq!(r.close, Some(CloseReason::Transport(wt.clone())));
    assert_eq!(r.results[0].outcome, Outcome::TransportFailure(wt));
}

#[test]
fn the_read_timeout_counts_from_the_last_write_and_the_last_frame() {
    let t0 = Instant::now();
    let q = planned(1);
    let a = q[0].xid;
    let mut c = core(&cfg(1), q, t0);
    write_all(&mut c, t0 + secs(4));
    assert_eq!(c.poll_timeout(), Some(t0 + secs(14)), "RFC 5460 6.3");
    c.handle_timeout(t0 + secs(13));
    assert!(!c.is_done());
    c.handle_frame(&reply(a, vec![cd(1)]), t0 + secs(13));
    assert_eq!(c.poll_timeout(), Some(t0 + secs(23)));
    c.handle_timeout(t0 + secs(23));
    assert!(c.is_done());
    let r = c.into_report();
    assert_eq!(r.close, Some(CloseReason::DataTimeout));
    assert_eq!(
        r.results[0].outcome,
        Outcome::Partial(PartialReason::DataTimeout)
    );
    assert_eq!(r.results[0].stats.as_ref().unwrap().bindings, 1);
}

#[test]
fn a_write_of_nothing_is_a_failed_connection() {
    let t0 = Instant::now();
    let mut c = core(&cfg(1), planned(1), t0);
    c.handle_written(0, t0);
    assert!(c.is_done());
    let r = c.into_report();
    match &r.results[0].outcome {
        Outcome::TransportFailure(TransportError::Io(e)) => {
            assert_eq!(e.kind(), std::io::ErrorKind::WriteZero);
            assert_eq!(e.raw_os_error(), None);
        }
        o => panic!("{o:?}"),
    }
}

#[test]
fn the_server_deadline_ends_everything() {
    let t0 = Instant::now();
    let q = planned(3);
    let a = q[0].xid;
    let mut cfg = cfg(1);
    cfg.data_timeout = secs(300);
    let attempt = Attempt {
        deadline: Some(t0 + secs(5)),
        ..Attempt::first()
    };
    let mut c = ConnectionCore::new(server(), &cfg, q, attempt, OwnedBindings, t0);
    // While writing: the earlier of the write deadline and the server's.
    assert_eq!(c.poll_timeout(), Some(t0 + secs(5)));
    write_all(&mut c, t0);
    // A trickle keeps the read timeout away, not the deadline.
    c.handle_frame(&reply(a, vec![cd(0)]), t0 + secs(1));
    for s in 2..5 {
        c.handle_frame(&data(a, s as u16), t0 + secs(s));
    }
    assert_eq!(bindings(&events(&mut c)).len(), 4);
    c.handle_timeout(t0 + secs(4));
    assert!(!c.is_done());
    assert_eq!(c.poll_timeout(), Some(t0 + secs(5)));
    c.handle_timeout(t0 + secs(5));
    assert!(c.is_done());
    let r = c.into_report();
    assert_eq!(r.close, Some(CloseReason::Deadline));
    let v = by_index(&r, 3);
    for q in &v {
        assert_eq!(q.outcome, Outcome::Partial(PartialReason::Deadline));
    }
    assert_eq!(v[0].stats.as_ref().unwrap().bindings, 4, "sent");
    assert!(v[1].stats.is_none() && v[2].stats.is_none(), "never sent");
}

#[test]
fn discarded_messages_are_warned_about_ten_times_then_debugged() {
    let t0 = Instant::now();
    let q = planned(1);
    let a = q[0].xid;
    let mut c = core(&cfg(1), q, t0);
    write_all(&mut c, t0);
    let foreign = "0003000199";
    let mut severities = Vec::new();
    // Over two bursts: the count is per connection.
    for burst in [6, 9] {
        for _ in 0..burst {
            c.handle_frame(&reply_for(a, foreign, vec![]), t0);
        }
        for e in events(&mut c) {
            match e {
                ConnectionEvent::Discarded {
                    xid,
                    reason,
                    severity,
                } => {
                    assert_eq!(xid, a);
                    assert_eq!(
                        reason,
                        DropReason::ReplyForeignClientId(foreign.parse().unwrap()),
                        "RFC 5007 4.2.2"
                    );
                    severities.push(severity);
                }
                e => panic!("{e:?}"),
            }
        }
    }
    assert_eq!(severities.len(), 15);
    assert!(severities[..10].iter().all(|s| *s == Severity::Warn));
    assert!(severities[10..].iter().all(|s| *s == Severity::Debug));
    assert!(!c.is_done(), "the query still waits for its REPLY");
}

#[test]
fn a_duplicate_xid_is_our_bug_and_the_others_go_on() {
    let t0 = Instant::now();
    let q = vec![
        planned_with(0, x(5)),
        planned_with(1, x(5)),
        planned_with(2, x(6)),
    ];
    let mut c = core(&cfg(3), q, t0);
    assert_eq!(to_write(&c), vec![x(5), x(6)], "the duplicate is not sent");
    write_all(&mut c, t0);
    c.handle_frame(&reply(x(5), vec![]), t0);
    c.handle_frame(&reply(x(6), vec![]), t0);
    assert!(c.is_done());
    let r = c.into_report();
    assert_eq!(r.close, None);
    let v = by_index(&r, 3);
    assert_eq!(v[1].outcome, Outcome::OurBug(OurBug::DuplicateXid(x(5))));
    assert_eq!(v[1].outcome.code(), "pdrestore-bug");
    assert!(v[1].stats.is_none());
    assert_eq!(v[0].outcome, Outcome::NoBindings);
    assert_eq!(v[2].outcome, Outcome::NoBindings);
    // Retrying would make the same mistake.
    assert_eq!(
        super::super::RetryPolicy::default().classify(&v[1].outcome),
        super::super::Disposition::OurBug
    );
}

#[test]
fn a_query_that_fits_no_frame_is_our_bug() {
    let t0 = Instant::now();
    let mut q = planned(3);
    q[0].message = Vec::new();
    q[1].message = vec![14; 70_000];
    let c = core(&cfg(3), q, t0);
    assert_eq!(to_write(&c), vec![x(0x102)]);
    let r = c.into_report();
    assert_eq!(
        r.results[0].outcome,
        Outcome::OurBug(OurBug::Unframeable(0))
    );
    assert_eq!(
        r.results[1].outcome,
        Outcome::OurBug(OurBug::Unframeable(70_000))
    );
}

#[test]
fn one_batch_per_burst_tagged_with_query_try_and_server() {
    let t0 = Instant::now();
    let q = planned(2);
    let (a, b) = (q[0].xid, q[1].xid);
    let attempt = Attempt {
        server_index: ServerIndex::new(3).unwrap(),
        number: 2,
        ..Attempt::first()
    };
    let mut c = ConnectionCore::new(server(), &cfg(2), q, attempt, OwnedBindings, t0);
    write_all(&mut c, t0);
    // Frames waiting to be read: two REPLYs, then DATA for both, interleaved.
    let mut waiting: VecDeque<Vec<u8>> = VecDeque::new();
    waiting.push_back(reply(a, vec![cd(0)]));
    waiting.push_back(reply(b, vec![cd(1)]));
    for n in 2..700u16 {
        waiting.push_back(data(if n % 2 == 0 { a } else { b }, n));
    }
    let now = t0 + secs(1);
    let mut taken = 0;
    while let Some(f) = waiting.pop_front() {
        c.handle_frame(&f, now);
        taken += 1;
        if !c.takes_more_frames() {
            break;
        }
    }
    assert_eq!(taken, MAX_FRAMES_PER_BURST);
    let ev = events(&mut c);
    assert_eq!(ev.len(), 1, "one batch for the burst");
    let got = bindings(&ev);
    assert_eq!(got.len(), MAX_FRAMES_PER_BURST);
    for (n, d) in got.iter().enumerate() {
        assert_eq!((d.query, d.xid), if n % 2 == 0 { (0, a) } else { (1, b) });
        assert_eq!(d.server, server());
        assert_eq!(d.server_index.get(), 3);
        assert_eq!(d.attempt, 2);
        assert_eq!(d.received, now);
        let want: ipnet::Ipv6Net = format!("2001:db8:{n:x}::/56").parse().unwrap();
        assert_eq!(d.binding.lease, crate::proto::LeaseKind::Prefix(want));
    }
    // Drained: the next burst may begin.
    assert!(c.takes_more_frames());
    while let Some(f) = waiting.pop_front() {
        c.handle_frame(&f, now);
    }
    assert_eq!(bindings(&events(&mut c)).len(), 700 - MAX_FRAMES_PER_BURST);
}

#[test]
fn a_failed_connect_reports_every_query_unsent() {
    let t0 = Instant::now();
    let none = Attempt::first();
    let r = ConnectionReport::not_connected(planned(3), TransportError::Refused, &none, t0);
    assert_eq!(
        r.close,
        Some(CloseReason::Transport(TransportError::Refused))
    );
    for q in by_index(&r, 3) {
        assert_eq!(
            q.outcome,
            Outcome::TransportFailure(TransportError::Refused)
        );
        assert!(q.stats.is_none());
    }
    // A connect cut short by the server's deadline is the deadline.
    let late = Attempt {
        deadline: Some(t0 + secs(2)),
        ..Attempt::first()
    };
    let timeout = TransportError::ConnectTimeout;
    let r = ConnectionReport::not_connected(planned(2), timeout.clone(), &late, t0 + secs(2));
    assert_eq!(r.close, Some(CloseReason::Deadline));
    assert!(r
        .results
        .iter()
        .all(|q| q.outcome == Outcome::Partial(PartialReason::Deadline)));
    let r = ConnectionReport::not_connected(planned(1), timeout.clone(), &late, t0);
    assert_eq!(r.results[0].outcome, Outcome::TransportFailure(timeout));
    // The connect timeout never runs past the deadline.
    assert_eq!(late.connect_timeout(secs(5), t0), secs(2));
    assert_eq!(late.connect_timeout(secs(1), t0), secs(1));
    assert_eq!(late.connect_timeout(secs(5), t0 + secs(3)), Duration::ZERO);
    assert_eq!(none.connect_timeout(secs(5), t0), secs(5));
}

#[test]
fn the_binding_budget_cuts_the_server_off() {
    let t0 = Instant::now();
    let q = planned(1);
    let a = q[0].xid;
    let attempt = Attempt {
        budget: 2,
        ..Attempt::first()
    };
    let mut c = ConnectionCore::new(server(), &cfg(1), q, attempt, OwnedBindings, t0);
    write_all(&mut c, t0);
    c.handle_frame(&reply(a, vec![cd(0), cd(1), cd(2)]), t0);
    assert_eq!(bindings(&events(&mut c)).len(), 2);
    let e = ProtocolError::TooManyBindings { limit: 2 };
    let r = c.into_report();
    assert_eq!(r.close, Some(CloseReason::Protocol(e.clone())));
    assert_eq!(
        r.results[0].outcome,
        Outcome::Partial(PartialReason::Protocol(e))
    );
}

#[test]
fn a_silent_server_ends_every_query_with_no_answer_after_the_first_answer_timeout() {
    let t0 = Instant::now();
    let mut cfg = cfg(1);
    cfg.data_timeout = secs(300);
    cfg.first_answer_timeout = secs(30);
    let mut c = core(&cfg, planned(3), t0);
    write_all(&mut c, t0 + secs(2));
    assert_eq!(c.poll_timeout(), Some(t0 + secs(32)), "30 s from the write");
    c.handle_timeout(t0 + secs(31));
    assert!(!c.is_done());
    c.handle_timeout(t0 + secs(32));
    assert!(c.is_done(), "not the 300 s data timeout");
    let r = c.into_report();
    assert_eq!(r.close, Some(CloseReason::NoAnswer));
    // The one asked and the two never sent on the silent connection alike.
    for q in by_index(&r, 3) {
        assert_eq!(q.outcome, Outcome::NoAnswer, "query {}", q.index);
    }
}

#[test]
fn each_query_step_is_an_event_for_the_log() {
    let t0 = Instant::now();
    let q = planned(2);
    let (a, b) = (q[0].xid, q[1].xid);
    let mut c = core(&cfg(1), q, t0);
    assert!(steps(&all_events(&mut c)).is_empty(), "nothing written yet");
    write_all(&mut c, t0);
    assert_eq!(steps(&all_events(&mut c)), [(0, QueryStep::Sent)]);
    c.handle_frame(&reply(a, vec![cd(1)]), t0 + secs(1));
    c.handle_frame(&data(a, 2), t0 + secs(1));
    assert_eq!(steps(&all_events(&mut c)), [(0, QueryStep::Answered)]);
    c.handle_frame(&done(a), t0 + secs(2));
    assert_eq!(
        steps(&all_events(&mut c)),
        [(0, QueryStep::Ended(Outcome::Complete))],
        "the next query is started, not written yet"
    );
    write_all(&mut c, t0 + secs(2));
    c.handle_frame(&reply(b, vec![]), t0 + secs(3));
    assert_eq!(
        steps(&all_events(&mut c)),
        [
            (1, QueryStep::Sent),
            (1, QueryStep::Answered),
            (1, QueryStep::Ended(Outcome::NoBindings))
        ]
    );
    // A query that times out was never answered.
    let mut c = core(&cfg(1), planned(1), t0);
    write_all(&mut c, t0);
    c.handle_timeout(t0 + T);
    let ev = steps(&all_events(&mut c));
    assert_eq!(
        ev,
        [
            (0, QueryStep::Sent),
            (0, QueryStep::Ended(Outcome::NoAnswer))
        ]
    );
}
