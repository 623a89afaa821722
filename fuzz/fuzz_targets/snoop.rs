//! Fuzz the snoop parser (`pdrestore::snoop::parse`), both directions.
//!
//! The first input octet chooses how the rest is used:
//! - bit 0: the direction (0 outgoing, 1 incoming);
//! - bit 1: 0, the rest is a whole packet from its IPv6 header; 1, the rest
//!   is a DHCPv6 message, put in a well-formed IPv6/UDP packet whose ports
//!   bits 2-3 choose (547 to 546, 547 to 547, 546 to 547, 40000 to 547),
//!   so that the fuzzer spends its time in the DHCPv6 walk.
//!
//! Checked for every input:
//! - no panic, and the same answer twice;
//! - an error's offset is within the packet, and it displays;
//! - a reported datagram's message lies within the packet; a reported
//!   message has at most HOP_COUNT_LIMIT relay layers, and what it reports
//!   (DUIDs, interface-ids, IA_PDs of at least 16 octets, IAPREFIXes of at
//!   least 29) fits in the message's length;
//! - when a REPLY or RELEASE is reported, the owned decoder accepts the
//!   DHCPv6 message too and finds the same transaction-id, CLIENTID and
//!   number of IA_PD options in the innermost message.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pdrestore::proto::{DhcpOption, Message};
use pdrestore::snoop::{parse, Datagram, Direction, IaPd, RelayHop, Snooped, HOP_COUNT_LIMIT};

fn wrap(message: &[u8], ports: u8) -> Option<Vec<u8>> {
    let (sport, dport): (u16, u16) = match ports & 3 {
        0 => (547, 546),
        1 => (547, 547),
        2 => (546, 547),
        _ => (40000, 547),
    };
    let udp_len = u16::try_from(message.len() + 8).ok()?;
    let mut p = Vec::with_capacity(48 + message.len());
    p.extend_from_slice(&[0x60, 0, 0, 0]);
    p.extend_from_slice(&udp_len.to_be_bytes());
    p.extend_from_slice(&[17, 255]);
    p.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    p.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&udp_len.to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(message);
    Some(p)
}

fn check_datagram(d: &Datagram, packet: &[u8]) {
    assert!(d.message_offset >= 48);
    assert!(d.message_offset + d.message_len <= packet.len());
}

/// Octets of message the reported fields account for at least.
fn reported_len(relay: &[RelayHop], duids: usize, ia_pds: &[IaPd]) -> usize {
    assert!(relay.len() <= HOP_COUNT_LIMIT);
    let mut n = 4 + duids;
    for hop in relay {
        n += 34 + 4 + hop.interface_id.as_ref().map_or(0, |i| 4 + i.len());
    }
    for pd in ia_pds {
        n += 16 + 29 * pd.prefixes.len();
        for p in &pd.prefixes {
            assert!(p.prefix.prefix_len() <= 128);
        }
    }
    n
}

/// The innermost message of an owned decoding, through RELAY_MSG options.
fn innermost(m: &Message) -> &Message {
    let mut cur = m;
    while let Message::Relay(r) = cur {
        match r.options.iter().find_map(|o| match o {
            DhcpOption::RelayMsg(inner) => Some(inner),
            _ => None,
        }) {
            Some(inner) => cur = inner,
            None => break,
        }
    }
    cur
}

fn compare_owned(packet: &[u8], d: &Datagram, xid: u32, client_id: Option<&[u8]>, ia_pds: usize) {
    let msg = &packet[d.message_offset..d.message_offset + d.message_len];
    let owned =
        Message::decode(msg).expect("the owned decoder accepts what the snoop parser reported");
    let Message::Client(inner) = innermost(&owned) else {
        panic!("innermost message is a relay message");
    };
    assert_eq!(inner.transaction_id, xid);
    let owned_client = inner.options.iter().find_map(|o| match o {
        DhcpOption::ClientId(d) => Some(d.as_bytes()),
        _ => None,
    });
    assert_eq!(owned_client, client_id);
    let owned_pds = inner
        .options
        .iter()
        .filter(|o| matches!(o, DhcpOption::Unknown { code: 25, .. }))
        .count();
    assert_eq!(owned_pds, ia_pds);
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let dir = if flags & 1 == 0 {
        Direction::Outgoing
    } else {
        Direction::Incoming
    };
    let packet = if flags & 2 == 0 {
        rest.to_vec()
    } else {
        match wrap(rest, flags >> 2) {
            Some(p) => p,
            None => return,
        }
    };
    let result = parse(&packet, dir);
    assert_eq!(result, parse(&packet, dir), "parse is deterministic");
    match result {
        Err(e) => {
            assert!(
                e.offset <= packet.len(),
                "{e} beyond {} octets",
                packet.len()
            );
            let _ = e.to_string();
        }
        Ok(Snooped::Reply(r)) => {
            assert_eq!(dir, Direction::Outgoing);
            check_datagram(&r.datagram, &packet);
            let duids = r.server_id.len() + r.client_id.as_ref().map_or(0, |c| c.len());
            assert!(reported_len(&r.relay, duids, &r.ia_pds) <= r.datagram.message_len);
            compare_owned(
                &packet,
                &r.datagram,
                r.transaction_id,
                r.client_id.as_ref().map(|c| c.as_bytes()),
                r.ia_pds.len(),
            );
        }
        Ok(Snooped::Release(r)) => {
            assert_eq!(dir, Direction::Incoming);
            check_datagram(&r.datagram, &packet);
            let duids = r.server_id.len() + r.client_id.len();
            assert!(reported_len(&r.relay, duids, &r.ia_pds) <= r.datagram.message_len);
            compare_owned(
                &packet,
                &r.datagram,
                r.transaction_id,
                Some(r.client_id.as_bytes()),
                r.ia_pds.len(),
            );
        }
        Ok(Snooped::Forged(f)) => {
            assert_eq!(dir, Direction::Incoming);
            check_datagram(&f.datagram, &packet);
        }
        Ok(Snooped::Ignored(_)) => {}
    }
});
