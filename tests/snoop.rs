//! The snoop layer on a real link: a "router" and a "client" network
//! namespace joined by a veth pair, the capture socket on the router's end.
//! Needs root (ip netns, AF_PACKET): skipped with a `SKIPPED` line
//! otherwise, a failure under CI (tests/support). Never
//! touches the host's interfaces or routes: every address is link-local on
//! the veth pair, and both ends live in namespaces made here.
//!
//! Each test makes its own pair of namespaces. Addresses are added with
//! `nodad` (no automatic link-local address: `addrgenmode none`) and the
//! neighbours are static, so nothing waits on DAD or neighbour discovery.

mod support;
use pdrestore::netns::NetNs;
use pdrestore::proto::{ClientMessage, DhcpOption, Duid, IaPrefix, Message, MessageType};
use pdrestore::proto::{RelayMessage, StatusCode};
use pdrestore::snoop::{parse, CaptureSocket, Direction, IgnoreReason, Snooped, SNAP_LEN};
use std::net::{Ipv6Addr, SocketAddrV6, TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

const ROUTER_IF: &str = "veth-r";
const CLIENT_IF: &str = "veth-c";
const ROUTER_MAC: &str = "02:00:00:00:01:01";
const CLIENT_MAC: &str = "02:00:00:00:01:02";

fn router_ll() -> Ipv6Addr {
    "fe80::1".parse().unwrap()
}
fn client_ll() -> Ipv6Addr {
    "fe80::2".parse().unwrap()
}
/// A lightweight relay (RFC 6221) on the client side of the link.
fn ldra_ll() -> Ipv6Addr {
    "fe80::3".parse().unwrap()
}

struct Lab {
    router: Arc<NetNs>,
    client: Arc<NetNs>,
}

fn ifindex(ns: &NetNs, ifname: &str) -> u32 {
    let out = ns.ip(["-o", "link", "show", "dev", ifname]).unwrap();
    out.split(':').next().unwrap().trim().parse().unwrap()
}

#[track_caller]
fn lab() -> Option<Lab> {
    if !(support::need_root("network namespaces and AF_PACKET sockets")
        && support::need_tool("ip", "iproute2"))
    {
        return None;
    }
    let router = NetNs::create("pdr-snoop-r").expect("create router netns");
    let client = NetNs::create("pdr-snoop-c").expect("create client netns");
    router
        .ip([
            "link",
            "add",
            ROUTER_IF,
            "address",
            ROUTER_MAC,
            "type",
            "veth",
            "peer",
            "name",
            CLIENT_IF,
            "address",
            CLIENT_MAC,
            "netns",
            client.name(),
        ])
        .unwrap();
    for (ns, ifname, addrs, neighbours) in [
        (
            &router,
            ROUTER_IF,
            vec!["fe80::1/64"],
            // The LDRA address lives on the client's veth too.
            vec![("fe80::2", CLIENT_MAC), ("fe80::3", CLIENT_MAC)],
        ),
        (
            &client,
            CLIENT_IF,
            vec!["fe80::2/64", "fe80::3/64"],
            vec![("fe80::1", ROUTER_MAC)],
        ),
    ] {
        ns.ip(["link", "set", "dev", ifname, "addrgenmode", "none"])
            .unwrap();
        for a in addrs {
            ns.ip(["-6", "addr", "add", a, "dev", ifname, "nodad"])
                .unwrap();
        }
        ns.ip(["link", "set", "dev", ifname, "up"]).unwrap();
        for (addr, mac) in neighbours {
            ns.ip([
                "-6",
                "neigh",
                "replace",
                addr,
                "lladdr",
                mac,
                "dev",
                ifname,
                "nud",
                "permanent",
            ])
            .unwrap();
        }
    }
    Some(Lab {
        router: Arc::new(router),
        client: Arc::new(client),
    })
}

fn client_duid() -> Duid {
    Duid::new_ll(1, &[2, 0, 0, 0, 1, 2])
}

fn server_duid() -> Duid {
    Duid::new_ll(1, &[2, 0, 0, 0, 9, 9])
}

fn ia_pd(iaid: u32, prefix: &str, preferred: u32, valid: u32) -> DhcpOption {
    let mut data = Vec::new();
    data.extend_from_slice(&iaid.to_be_bytes());
    data.extend_from_slice(&(preferred / 2).to_be_bytes());
    data.extend_from_slice(&(preferred * 4 / 5).to_be_bytes());
    DhcpOption::IaPrefix(IaPrefix {
        preferred_lifetime: preferred,
        valid_lifetime: valid,
        prefix: prefix.parse().unwrap(),
        options: vec![],
    })
    .encode(&mut data);
    DhcpOption::Unknown { code: 25, data }
}

fn message(msg_type: MessageType, xid: u32, options: Vec<DhcpOption>) -> Vec<u8> {
    Message::Client(ClientMessage {
        msg_type,
        transaction_id: xid,
        options,
    })
    .to_bytes()
}

fn reply(xid: u32) -> Vec<u8> {
    message(
        MessageType::Reply,
        xid,
        vec![
            DhcpOption::ClientId(client_duid()),
            DhcpOption::ServerId(server_duid()),
            ia_pd(7, "2001:db8:100::/56", 3600, 7200),
        ],
    )
}

/// Send one UDP datagram from `from`:`sport` to `to`:`dport` on interface `scope`.
///
/// The socket sets SO_REUSEADDR: another test thread spawning a process
/// (`ip ...`) while this socket is open gives the child a copy of it until
/// its exec, so a closed socket's port may still be bound for a moment when
/// the next datagram from the same port is sent.
fn send_udp(from: Ipv6Addr, sport: u16, to: Ipv6Addr, dport: u16, scope: u32, payload: &[u8]) {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP)).expect("UDP socket");
    s.set_reuse_address(true).expect("SO_REUSEADDR");
    s.bind(&SocketAddrV6::new(from, sport, 0, scope).into())
        .expect("bind UDP");
    let s: UdpSocket = s.into();
    s.send_to(payload, SocketAddrV6::new(to, dport, 0, scope))
        .expect("send UDP");
}

/// Run `f` in the client namespace, on the client's veth index, to completion.
fn in_client<F>(lab: &Lab, f: F)
where
    F: FnOnce(u32) + Send + 'static,
{
    let idx = ifindex(&lab.client, CLIENT_IF);
    lab.client.run(move || async move { f(idx) }).unwrap();
}

/// The next packet the capture socket delivers, within 3 s.
async fn next(sock: &mut CaptureSocket) -> (Vec<u8>, Direction) {
    let mut buf = vec![0u8; SNAP_LEN];
    let (n, dir) = tokio::time::timeout(Duration::from_secs(3), sock.recv(&mut buf))
        .await
        .expect("a packet within 3 s")
        .expect("recv");
    buf.truncate(n);
    (buf, dir)
}

/// Run `f` in the router namespace with a capture socket on the router's
/// veth (and its index).
fn with_capture<F, Fut>(lab: &Lab, f: F)
where
    F: FnOnce(CaptureSocket, u32, Arc<Lab>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let shared = Arc::new(Lab {
        router: lab.router.clone(),
        client: lab.client.clone(),
    });
    lab.router
        .run(move || async move {
            let sock = CaptureSocket::open_by_name(ROUTER_IF).expect("open capture socket");
            let idx = sock.ifindex();
            assert!(sock.rcvbuf() > 0);
            f(sock, idx, shared).await
        })
        .unwrap();
}

#[test]
fn outgoing_reply_to_a_client() {
    let Some(lab) = lab() else { return };
    with_capture(&lab, |mut sock, idx, _| async move {
        send_udp(router_ll(), 547, client_ll(), 546, idx, &reply(0x010203));
        let (p, dir) = next(&mut sock).await;
        assert_eq!(dir, Direction::Outgoing);
        let Snooped::Reply(r) = parse(&p, dir).unwrap() else {
            panic!("not a reply: {:?}", parse(&p, dir));
        };
        assert_eq!(r.datagram.source, router_ll());
        assert_eq!(r.datagram.destination, client_ll());
        assert_eq!(r.client_address(), client_ll());
        assert!(r.relay.is_empty());
        assert_eq!(r.transaction_id, 0x010203);
        assert_eq!(r.client_id, Some(client_duid()));
        assert_eq!(r.status, None);
        let pd = &r.ia_pds[0];
        assert_eq!(pd.iaid, 7);
        assert_eq!(pd.prefixes[0].prefix.to_string(), "2001:db8:100::/56");
        assert_eq!(pd.prefixes[0].preferred_lifetime, 3600);
        assert_eq!(pd.prefixes[0].valid_lifetime, 7200);
        assert_eq!(sock.stats().received, 1);
    });
}

#[test]
fn incoming_release_from_a_client() {
    let Some(lab) = lab() else { return };
    with_capture(&lab, |mut sock, _, lab| async move {
        in_client(&lab, |idx| {
            let m = message(
                MessageType::Release,
                0x0a0b0c,
                vec![
                    DhcpOption::ClientId(client_duid()),
                    DhcpOption::ServerId(server_duid()),
                    ia_pd(7, "2001:db8:100::/56", 0, 0),
                ],
            );
            send_udp(client_ll(), 546, router_ll(), 547, idx, &m);
        });
        let (p, dir) = next(&mut sock).await;
        assert_eq!(dir, Direction::Incoming);
        let Snooped::Release(r) = parse(&p, dir).unwrap() else {
            panic!("not a release: {:?}", parse(&p, dir));
        };
        assert_eq!(r.msg_type, MessageType::Release);
        assert_eq!(r.client_address(), client_ll());
        assert_eq!(r.transaction_id, 0x0a0b0c);
        assert_eq!(r.client_id, client_duid());
        assert_eq!(
            r.ia_pds[0].prefixes[0].prefix.to_string(),
            "2001:db8:100::/56"
        );
    });
}

#[test]
fn incoming_reply_is_a_forgery() {
    let Some(lab) = lab() else { return };
    with_capture(&lab, |mut sock, _, lab| async move {
        in_client(&lab, |idx| {
            send_udp(client_ll(), 547, router_ll(), 546, idx, &reply(0x666));
        });
        let (p, dir) = next(&mut sock).await;
        assert_eq!(dir, Direction::Incoming);
        match parse(&p, dir).unwrap() {
            Snooped::Forged(f) => {
                assert_eq!(f.msg_type, MessageType::Reply);
                assert_eq!(f.datagram.source, client_ll());
            }
            other => panic!("not recognised as forged: {other:?}"),
        }
    });
}

#[test]
fn relay_reply_to_a_lightweight_relay() {
    let Some(lab) = lab() else { return };
    with_capture(&lab, |mut sock, idx, _| async move {
        // What a relay sends to an LDRA: the LDRA's layer (link-address ::,
        // peer-address the client, its interface-id) around the REPLY.
        let inner = Message::decode(&reply(0x0c0c0c)).unwrap();
        let rr = Message::Relay(RelayMessage {
            msg_type: MessageType::RelayRepl,
            hop_count: 0,
            link_address: Ipv6Addr::UNSPECIFIED,
            peer_address: client_ll(),
            options: vec![
                DhcpOption::InterfaceId(b"ge-0/0/1.7".to_vec()),
                DhcpOption::RelayMsg(Box::new(inner)),
            ],
        });
        send_udp(router_ll(), 547, ldra_ll(), 547, idx, &rr.to_bytes());
        let (p, dir) = next(&mut sock).await;
        assert_eq!(dir, Direction::Outgoing);
        let Snooped::Reply(r) = parse(&p, dir).unwrap() else {
            panic!("not a reply: {:?}", parse(&p, dir));
        };
        assert_eq!(r.datagram.destination, ldra_ll());
        assert_eq!(r.relay.len(), 1);
        assert_eq!(r.relay[0].peer_address, client_ll());
        assert_eq!(r.relay[0].interface_id.as_deref(), Some(&b"ge-0/0/1.7"[..]));
        assert_eq!(r.client_address(), client_ll());
        assert_eq!(r.transaction_id, 0x0c0c0c);
        assert_eq!(r.ia_pds[0].prefixes[0].valid_lifetime, 7200);
    });
}

#[test]
fn filter_drops_other_traffic_in_the_kernel() {
    let Some(lab) = lab() else { return };
    with_capture(&lab, |mut sock, idx, lab| async move {
        // UDP between other ports, both ways.
        send_udp(router_ll(), 40000, client_ll(), 5547, idx, b"not dhcp");
        in_client(&lab, |cidx| {
            send_udp(
                client_ll(),
                40001,
                router_ll(),
                5546,
                cidx,
                b"not dhcp either",
            );
            // TCP to port 547 of the router: the SYN (in) and the RST (out,
            // from port 547) are TCP, not UDP.
            let to = SocketAddrV6::new(router_ll(), 547, 0, cidx);
            let r = TcpStream::connect_timeout(&to.into(), Duration::from_secs(2));
            assert_eq!(
                r.unwrap_err().kind(),
                std::io::ErrorKind::ConnectionRefused,
                "the router answers the SYN with a RST"
            );
        });
        // Then a DHCPv6 REPLY: the first packet the socket sees.
        send_udp(router_ll(), 547, client_ll(), 546, idx, &reply(0x00beef));
        let (p, dir) = next(&mut sock).await;
        match parse(&p, dir).unwrap() {
            Snooped::Reply(r) => assert_eq!(r.transaction_id, 0x00beef),
            other => panic!("the filter let something else through: {other:?}"),
        }
        let mut buf = vec![0u8; SNAP_LEN];
        assert!(sock.try_recv(&mut buf).unwrap().is_none());
        // The kernel counted only what passed the filter.
        let (passed, dropped) = sock.kernel_stats().unwrap();
        assert_eq!((passed, dropped), (1, 0));
        // UDP from port 547 to another port does pass the filter (either port
        // matches) and is ignored by the parser.
        send_udp(router_ll(), 547, client_ll(), 5547, idx, &reply(1));
        let (p, dir) = next(&mut sock).await;
        assert_eq!(
            parse(&p, dir).unwrap(),
            Snooped::Ignored(IgnoreReason::NotDhcpPort {
                source: 547,
                destination: 5547
            })
        );
    });
}

#[test]
fn batches_drain_many_packets_per_wake_up() {
    let Some(lab) = lab() else { return };
    with_capture(&lab, |mut sock, idx, _| async move {
        let s = UdpSocket::bind(SocketAddrV6::new(router_ll(), 547, 0, idx)).unwrap();
        let to = SocketAddrV6::new(client_ll(), 546, 0, idx);
        for xid in 0..50u32 {
            s.send_to(&reply(xid), to).unwrap();
        }
        // Sent synchronously through the veth (static neighbours, no queue):
        // all 50 are queued before the first read.
        let mut buf = vec![0u8; SNAP_LEN];
        let mut xids = Vec::new();
        let n = tokio::time::timeout(
            Duration::from_secs(3),
            sock.recv_batch(&mut buf, 32, |p, dir| {
                assert_eq!(dir, Direction::Outgoing);
                if let Ok(Snooped::Reply(r)) = parse(p, dir) {
                    xids.push(r.transaction_id);
                }
            }),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(n, 32, "a batch stops at its budget");
        let n = tokio::time::timeout(
            Duration::from_secs(3),
            sock.recv_batch(&mut buf, 32, |p, dir| {
                if let Ok(Snooped::Reply(r)) = parse(p, dir) {
                    xids.push(r.transaction_id);
                }
            }),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(n, 18, "the next batch takes the rest");
        assert_eq!(xids, (0..50).collect::<Vec<_>>());
        assert_eq!(sock.stats().received, 50);
        assert_eq!(sock.stats().truncated, 0);
        // A buffer shorter than the packet: cut, counted, and the parser
        // says it is truncated.
        s.send_to(&reply(99), to).unwrap();
        let mut small = [0u8; 60];
        let (n, dir) = sock.recv(&mut small).await.unwrap();
        assert_eq!(n, 60);
        assert_eq!(sock.stats().truncated, 1);
        assert!(parse(&small[..n], dir).is_err());
    });
}

#[test]
fn top_level_status_survives_the_wire() {
    let Some(lab) = lab() else { return };
    with_capture(&lab, |mut sock, idx, _| async move {
        let m = message(
            MessageType::Reply,
            5,
            vec![
                DhcpOption::ClientId(client_duid()),
                DhcpOption::ServerId(server_duid()),
                DhcpOption::status(StatusCode::NoBinding, "no such binding"),
            ],
        );
        send_udp(router_ll(), 547, client_ll(), 546, idx, &m);
        let (p, dir) = next(&mut sock).await;
        let Snooped::Reply(r) = parse(&p, dir).unwrap() else {
            panic!("not a reply");
        };
        assert_eq!(r.status, Some(StatusCode::NoBinding));
        assert!(r.ia_pds.is_empty());
    });
}
