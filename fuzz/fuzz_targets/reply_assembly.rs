//! Fuzz the reply-assembly state machine (`requestor::ReplyDemux`, RFC 5460
//! s.6.3-6.5) with arbitrary sequences of events: queries started, messages
//! received (well-formed REPLY / DATA / DONE with arbitrary transaction-ids,
//! statuses, CLIENT_DATA, relay chains and forbidden options, and raw
//! octets), time passing, the server closing, transport errors, deadlines.
//!
//! A model follows the queries and checks, after every step:
//! - a query ends exactly once, with one `Finished`, and only a query that
//!   was started and had not ended gets a `Binding` or a `Finished`;
//! - its `Finished` counts exactly the bindings it delivered;
//! - the bindings per query, per connection, and the relay-chain depth stay
//!   within the limits set;
//! - `outstanding()` and `delivered()` agree with the model; once the
//!   connection must close, nothing is outstanding, no new query starts, and
//!   nothing more is delivered;
//! - the data timer is armed exactly when a query is outstanding on an open
//!   connection.

#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use pdrestore::proto::{
    ClientMessage, DhcpOption, Duid, IaAddr, IaPrefix, Message, MessageType, RelayMessage,
    StatusCode, Xid,
};
use pdrestore::requestor::{Event, IoError, ProtocolError, ReplyDemux, StartError, TransportError};
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

const US: [u8; 14] = [0, 1, 0, 1, 0x2a, 0x2b, 0x2c, 0x2d, 2, 0, 0, 0, 0x99, 1];
const SERVER: [u8; 14] = [0, 2, 0, 0, 0x09, 0xbf, 1, 2, 3, 4, 5, 6, 7, 8];
/// A few transaction-ids, so that messages often hit a query in flight.
const XIDS: [u32; 4] = [1, 2, 0x102, 0xff_ffff];

fn relay_chain(u: &mut Unstructured, depth: usize) -> Result<Option<RelayMessage>> {
    let mut inner: Option<RelayMessage> = None;
    for hop in 0..depth {
        let mut options = vec![DhcpOption::InterfaceId(vec![hop as u8])];
        if u.arbitrary()? {
            options.push(DhcpOption::RelayId(Duid::from_bytes(SERVER.to_vec())));
        }
        if let Some(m) = inner.take() {
            options.push(DhcpOption::RelayMsg(Box::new(Message::Relay(m))));
        }
        inner = Some(RelayMessage {
            msg_type: MessageType::RelayForw,
            hop_count: hop as u8,
            link_address: Ipv6Addr::UNSPECIFIED,
            peer_address: Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, u.arbitrary()?),
            options,
        });
    }
    Ok(inner)
}

fn client_data(u: &mut Unstructured) -> Result<DhcpOption> {
    let mut o = Vec::new();
    if u.ratio(7, 8)? {
        o.push(DhcpOption::ClientId(Duid::from_bytes(vec![
            0,
            3,
            0,
            1,
            u.arbitrary()?,
        ])));
    }
    if u.ratio(7, 8)? {
        o.push(DhcpOption::CltTime(u.arbitrary()?));
    }
    for _ in 0..u.int_in_range(0..=3)? {
        if u.arbitrary()? {
            o.push(DhcpOption::IaPrefix(IaPrefix {
                preferred_lifetime: u.arbitrary()?,
                valid_lifetime: u.arbitrary()?,
                prefix: ipnet::Ipv6Net::new(
                    Ipv6Addr::from(u.arbitrary::<u128>()?),
                    u.int_in_range(0..=128)?,
                )
                .expect("length in range")
                .trunc(),
                options: vec![],
            }));
        } else {
            o.push(DhcpOption::IaAddr(IaAddr {
                address: Ipv6Addr::from(u.arbitrary::<u128>()?),
                preferred_lifetime: u.arbitrary()?,
                valid_lifetime: u.arbitrary()?,
                options: vec![],
            }));
        }
    }
    let depth = u.int_in_range(0..=6)?;
    if let Some(message) = relay_chain(u, depth)? {
        o.push(DhcpOption::LqRelayData {
            peer_address: message.peer_address,
            message,
        });
    }
    if u.ratio(1, 16)? {
        // A repeated option: the CLIENT_DATA is discarded.
        o.push(DhcpOption::CltTime(1));
    }
    Ok(DhcpOption::ClientData(o))
}

/// A message a server might send: mostly well-formed, sometimes not.
fn message(u: &mut Unstructured) -> Result<Vec<u8>> {
    let msg_type = match u.int_in_range(0..=7)? {
        0..=1 => MessageType::LeasequeryReply,
        2..=4 => MessageType::LeasequeryData,
        5..=6 => MessageType::LeasequeryDone,
        _ => MessageType::from(u.arbitrary::<u8>()?),
    };
    let xid = if u.ratio(7, 8)? {
        *u.choose(&XIDS)?
    } else {
        u.arbitrary::<u32>()? & 0xff_ffff
    };
    let mut options = Vec::new();
    if u.ratio(7, 8)? {
        options.push(DhcpOption::ClientId(Duid::from_bytes(
            if u.ratio(15, 16)? {
                US.to_vec()
            } else {
                vec![0, 3, 0, 1, 9]
            },
        )));
    }
    if u.ratio(7, 8)? {
        options.push(DhcpOption::ServerId(Duid::from_bytes(SERVER.to_vec())));
    }
    if u.ratio(1, 4)? {
        options.push(DhcpOption::status(
            StatusCode::from(u.int_in_range(0..=12u16)?),
            "fuzz",
        ));
    }
    if u.ratio(1, 32)? {
        options.push(DhcpOption::LqClientLink(vec![Ipv6Addr::LOCALHOST]));
    }
    for _ in 0..u.int_in_range(0..=3)? {
        options.push(client_data(u)?);
    }
    let mut bytes = ClientMessage {
        msg_type,
        transaction_id: xid,
        options,
    }
    .to_bytes();
    if u.ratio(1, 16)? && !bytes.is_empty() {
        // One octet changed: the strict codec must not choke on it.
        let at = u.choose_index(bytes.len())?;
        bytes[at] = u.arbitrary()?;
    }
    if u.ratio(1, 32)? {
        let cut = u.choose_index(bytes.len() + 1)?;
        bytes.truncate(cut);
    }
    Ok(bytes)
}

struct Model {
    outstanding: BTreeSet<Xid>,
    bindings: BTreeMap<Xid, u64>,
    delivered: u64,
    per_query: u64,
    total: u64,
    depth: usize,
}

fn check(d: &mut ReplyDemux, m: &mut Model) {
    while let Some(ev) = d.poll_event() {
        match ev {
            Event::Binding { xid, binding, .. } => {
                assert!(
                    m.outstanding.contains(&xid),
                    "binding for {xid}, not in flight"
                );
                let n = m.bindings.entry(xid).or_default();
                *n += 1;
                assert!(*n <= m.per_query, "past the per-query limit");
                m.delivered += 1;
                assert!(m.delivered <= m.total, "past the connection limit");
                assert!(binding.relay.len() <= m.depth, "relay chain past the limit");
            }
            Event::Finished {
                xid,
                stats,
                outcome,
            } => {
                assert!(
                    m.outstanding.remove(&xid),
                    "{xid} finished twice or never started"
                );
                assert_eq!(stats.bindings, m.bindings.remove(&xid).unwrap_or(0));
                let _ = outcome.to_string();
            }
            Event::Dropped { reason, .. } => {
                let _ = reason.to_string();
            }
        }
    }
    assert_eq!(d.outstanding(), m.outstanding.len());
    assert_eq!(d.delivered(), m.delivered);
    if d.close_reason().is_some() {
        assert!(m.outstanding.is_empty(), "closed with queries in flight");
        assert!(d.poll_timeout().is_none());
    } else {
        assert_eq!(d.poll_timeout().is_some(), !m.outstanding.is_empty());
    }
}

fn run(data: &[u8]) -> Result<()> {
    let mut u = Unstructured::new(data);
    let timeout = Duration::from_millis(u.int_in_range(1..=300_000)?);
    let mut d = ReplyDemux::new(Duid::from_bytes(US.to_vec()), timeout);
    let mut m = Model {
        outstanding: BTreeSet::new(),
        bindings: BTreeMap::new(),
        delivered: 0,
        per_query: u.int_in_range(0..=24)?,
        total: u.int_in_range(0..=48)?,
        depth: u.int_in_range(0..=5)?,
    };
    if u.ratio(1, 4)? {
        m.per_query = u64::MAX;
        m.total = u64::MAX;
        m.depth = usize::MAX;
    }
    d.set_limits(m.per_query, m.total);
    d.set_max_relay_depth(m.depth);
    let t0 = Instant::now();
    let mut now = t0;
    while !u.is_empty() {
        match u.int_in_range(0..=31)? {
            0..=5 => {
                let xid = Xid::new(*u.choose(&XIDS)?).expect("24 bits");
                let r = d.start_query(xid, now);
                if d.close_reason().is_some() {
                    assert_eq!(r, Err(StartError::Closed));
                } else if m.outstanding.contains(&xid) {
                    assert_eq!(r, Err(StartError::DuplicateXid(xid)));
                } else {
                    assert_eq!(r, Ok(()));
                    m.outstanding.insert(xid);
                }
            }
            6..=23 => {
                let closed = d.close_reason().is_some();
                let before = m.delivered;
                d.handle_frame(&message(&mut u)?, now);
                check(&mut d, &mut m);
                if closed {
                    assert_eq!(m.delivered, before, "delivered after the close");
                }
            }
            24 => {
                let n = u.int_in_range(0..=48)?;
                let raw = u.bytes(n)?.to_vec();
                d.handle_frame(&raw, now);
            }
            25..=27 => {
                now += Duration::from_millis(u.int_in_range(0..=400_000)?);
                d.handle_timeout(now);
            }
            28 => d.handle_sent(now),
            29 => d.handle_close(now),
            30 => d.handle_transport_error(
                TransportError::Io(IoError::new(std::io::ErrorKind::Other, "fuzz")),
                now,
            ),
            _ => match u.int_in_range(0..=1)? {
                0 => d.handle_deadline(now),
                _ => d.abort(ProtocolError::TooManyBytes { limit: 1 }, now),
            },
        }
        check(&mut d, &mut m);
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(data);
});
