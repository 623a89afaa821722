//! Snoop parser throughput: `pdrestore::snoop::parse` on captured packets as
//! the capture socket delivers them (from the IPv6 header), one packet per
//! element.
//!
//! - `reply`: a typical outgoing REPLY (125 octets): CLIENTID and SERVERID
//!   (DUID-LL), one IA_PD with one IAPREFIX;
//! - `relay_reply`: the same REPLY inside an LDRA's RELAY-REPL (RFC 6221)
//!   with an INTERFACE_ID;
//! - `release`: an incoming RELEASE naming one IA_PD/IAPREFIX;
//! - `ignored_solicit`: an incoming SOLICIT (classified, not validated).
//!
//! Run: `cargo bench --bench snoop` (add `-- --measurement-time 5` to shorten).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use etherparse::PacketBuilder;
use pdrestore::proto::RelayMessage;
use pdrestore::proto::{ClientMessage, DhcpOption, Duid, IaPrefix, Message, MessageType};
use pdrestore::snoop::{parse, Direction, Snooped};
use std::hint::black_box;
use std::net::Ipv6Addr;

fn udp(src: &str, dst: &str, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let src: Ipv6Addr = src.parse().unwrap();
    let dst: Ipv6Addr = dst.parse().unwrap();
    let b = PacketBuilder::ipv6(src.octets(), dst.octets(), 255).udp(sport, dport);
    let mut out = Vec::new();
    b.write(&mut out, payload).unwrap();
    out
}

fn ia_pd() -> DhcpOption {
    let mut data = vec![0, 0, 0, 1, 0, 0, 0x0e, 0x10, 0, 0, 0x15, 0x18];
    DhcpOption::IaPrefix(IaPrefix {
        preferred_lifetime: 7200,
        valid_lifetime: 10800,
        prefix: "2001:db8:aa::/56".parse().unwrap(),
        options: vec![],
    })
    .encode(&mut data);
    DhcpOption::Unknown { code: 25, data }
}

fn client_msg(msg_type: MessageType) -> Message {
    Message::Client(ClientMessage {
        msg_type,
        transaction_id: 0x123456,
        options: vec![
            DhcpOption::ClientId(Duid::new_ll(1, &[2, 0, 0, 0, 0, 2])),
            DhcpOption::ServerId(Duid::new_ll(1, &[2, 0, 0, 0, 0, 1])),
            ia_pd(),
        ],
    })
}

fn digest(s: &Snooped) -> u64 {
    match s {
        Snooped::Reply(r) => r
            .ia_pds
            .iter()
            .flat_map(|p| &p.prefixes)
            .map(|p| u64::from(p.valid_lifetime))
            .sum(),
        Snooped::Release(r) => r.ia_pds.len() as u64,
        _ => 1,
    }
}

fn snoop(c: &mut Criterion) {
    let reply = udp(
        "fe80::1",
        "fe80::2",
        547,
        546,
        &client_msg(MessageType::Reply).to_bytes(),
    );
    let relayed = Message::Relay(RelayMessage {
        msg_type: MessageType::RelayRepl,
        hop_count: 0,
        link_address: Ipv6Addr::UNSPECIFIED,
        peer_address: "fe80::2".parse().unwrap(),
        options: vec![
            DhcpOption::InterfaceId(b"port7".to_vec()),
            DhcpOption::RelayMsg(Box::new(client_msg(MessageType::Reply))),
        ],
    });
    let relay_reply = udp("fe80::1", "fe80::3", 547, 547, &relayed.to_bytes());
    let release = udp(
        "fe80::2",
        "fe80::1",
        546,
        547,
        &client_msg(MessageType::Release).to_bytes(),
    );
    let solicit = udp(
        "fe80::2",
        "ff02::1:2",
        546,
        547,
        &client_msg(MessageType::Solicit).to_bytes(),
    );
    assert!(matches!(
        parse(&reply, Direction::Outgoing),
        Ok(Snooped::Reply(_))
    ));
    assert!(matches!(
        parse(&relay_reply, Direction::Outgoing),
        Ok(Snooped::Reply(_))
    ));
    assert!(matches!(
        parse(&release, Direction::Incoming),
        Ok(Snooped::Release(_))
    ));
    assert!(matches!(
        parse(&solicit, Direction::Incoming),
        Ok(Snooped::Ignored(_))
    ));

    let mut g = c.benchmark_group("snoop_parse");
    g.throughput(Throughput::Elements(1));
    for (name, packet, dir) in [
        ("reply", &reply, Direction::Outgoing),
        ("relay_reply", &relay_reply, Direction::Outgoing),
        ("release", &release, Direction::Incoming),
        ("ignored_solicit", &solicit, Direction::Incoming),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| match parse(black_box(packet), dir) {
                Ok(s) => digest(&s),
                Err(_) => u64::MAX,
            })
        });
    }
    g.finish();
}

criterion_group!(benches, snoop);
criterion_main!(benches);
