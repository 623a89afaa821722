//! `pdrestore decode` of pcap and pcapng files written here with
//! pcap-file's writers and etherparse's packet builder, from Kea's captured
//! Bulk Leasequery exchange (tests/data/kea/02_relayid_B): every link type,
//! IPv4 and IPv6, pcap (both byte orders, micro- and nanoseconds) and
//! pcapng, cut into many segments, some retransmitted and reordered, must
//! decode to exactly the raw stream's records; a missing segment is a gap
//! with its connection and offset; no port-547 traffic exits 1.

use etherparse::{
    IpHeaders, IpNumber, Ipv6Extensions, Ipv6Header, Ipv6RawExtHeader, LinuxSllPacketType,
    PacketBuilder, PacketBuilderStep, VlanId,
};
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock;
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::{DataLink, Endianness, TsResolution};
use serde_json::Value;
use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn kea(name: &str) -> Vec<u8> {
    std::fs::read(kea_path(name)).unwrap()
}

fn kea_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/kea")
        .join(name)
}

/// Link-layer framings of the synthetic captures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Ethernet,
    /// Ethernet with an 802.1Q tag.
    EthernetVlan,
    Sll,
    Sll2,
    /// Raw IP (LINKTYPE_RAW, 101).
    Raw,
    /// BSD loopback (LINKTYPE_NULL, 0), as libpcap writes it on macOS.
    Null,
}

impl Link {
    const ALL: [Link; 6] = [
        Link::Ethernet,
        Link::EthernetVlan,
        Link::Sll,
        Link::Sll2,
        Link::Raw,
        Link::Null,
    ];

    fn datalink(self) -> DataLink {
        match self {
            Link::Ethernet | Link::EthernetVlan => DataLink::ETHERNET,
            Link::Sll => DataLink::LINUX_SLL,
            Link::Sll2 => DataLink::LINUX_SLL2,
            Link::Raw => DataLink::RAW,
            Link::Null => DataLink::NULL,
        }
    }
}

/// One TCP segment of a synthetic connection.
#[derive(Debug, Clone)]
struct Pkt {
    to_server: bool,
    seq: u32,
    ack: Option<u32>,
    syn: bool,
    fin: bool,
    rst: bool,
    payload: Vec<u8>,
}

/// A synthetic TCP connection: the handshake, the request and the response
/// cut into segments of the sizes `cut` gives, then both FINs.
struct Conn {
    client: SocketAddr,
    server: SocketAddr,
    client_isn: u32,
    server_isn: u32,
}

impl Conn {
    fn new(client: &str, server: &str) -> Conn {
        Conn {
            client: client.parse().unwrap(),
            server: server.parse().unwrap(),
            client_isn: 0x1000_0000,
            // Close to 2^32: the response's sequence numbers wrap around.
            server_isn: u32::MAX - 3000,
        }
    }

    fn exchange(&self, request: &[u8], response: &[u8], cut: impl Fn(usize) -> usize) -> Vec<Pkt> {
        let c0 = self.client_isn.wrapping_add(1);
        let s0 = self.server_isn.wrapping_add(1);
        let pkt = |to_server, seq, payload: &[u8]| Pkt {
            to_server,
            seq,
            ack: Some(0),
            syn: false,
            fin: false,
            rst: false,
            payload: payload.to_vec(),
        };
        let mut out = vec![
            Pkt {
                syn: true,
                ack: None,
                ..pkt(true, self.client_isn, b"")
            },
            Pkt {
                syn: true,
                ..pkt(false, self.server_isn, b"")
            },
            pkt(true, c0, b""),
        ];
        for (to_server, data, base) in [(true, request, c0), (false, response, s0)] {
            let mut off = 0;
            let mut i = 0;
            while off < data.len() {
                let n = cut(i).clamp(1, data.len() - off);
                out.push(pkt(
                    to_server,
                    base.wrapping_add(off as u32),
                    &data[off..off + n],
                ));
                off += n;
                i += 1;
            }
        }
        let c_end = c0.wrapping_add(request.len() as u32);
        let s_end = s0.wrapping_add(response.len() as u32);
        out.push(Pkt {
            fin: true,
            ..pkt(true, c_end, b"")
        });
        out.push(Pkt {
            fin: true,
            ..pkt(false, s_end, b"")
        });
        out
    }

    fn frame(&self, link: Link, p: &Pkt) -> Vec<u8> {
        let (src, dst) = if p.to_server {
            (self.client, self.server)
        } else {
            (self.server, self.client)
        };
        let ip = ip_step(link, src.ip(), dst.ip());
        let mut tcp = ip.tcp(src.port(), dst.port(), p.seq, 65535);
        if p.syn {
            tcp = tcp.syn();
        }
        if p.fin {
            tcp = tcp.fin();
        }
        if p.rst {
            tcp = tcp.rst();
        }
        if let Some(a) = p.ack {
            tcp = tcp.ack(a);
        }
        let mut frame = Vec::new();
        match link {
            Link::Sll2 => {
                // etherparse builds no SLL2 header: protocol, reserved,
                // ifindex, ARPHRD_LOOPBACK, PACKET_HOST, 6-octet address.
                let proto: u16 = if src.is_ipv4() { 0x0800 } else { 0x86dd };
                frame.extend_from_slice(&proto.to_be_bytes());
                frame.extend_from_slice(&[0, 0, 0, 0, 0, 1, 3, 4, 0, 6]);
                frame.extend_from_slice(&[0; 8]);
            }
            Link::Null => {
                let af: u32 = if src.is_ipv4() { 2 } else { 30 };
                frame.extend_from_slice(&af.to_le_bytes());
            }
            _ => {}
        }
        tcp.write(&mut frame, &p.payload).unwrap();
        frame
    }
}

fn octets(a: IpAddr) -> Result<[u8; 4], [u8; 16]> {
    match a {
        IpAddr::V4(a) => Ok(a.octets()),
        IpAddr::V6(a) => Err(a.octets()),
    }
}

/// The builder down to the IP header for `link`. Raw IPv6 packets carry a
/// hop-by-hop extension header, which the reader must step over.
fn ip_step(link: Link, src: IpAddr, dst: IpAddr) -> PacketBuilderStep<IpHeaders> {
    let (m1, m2) = ([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
    macro_rules! ip {
        ($b:expr) => {
            match (octets(src), octets(dst)) {
                (Ok(s), Ok(d)) => $b.ipv4(s, d, 64),
                (Err(s), Err(d)) => $b.ipv6(s, d, 64),
                _ => unreachable!(),
            }
        };
    }
    match link {
        Link::Ethernet => ip!(PacketBuilder::ethernet2(m1, m2)),
        Link::EthernetVlan => {
            ip!(PacketBuilder::ethernet2(m1, m2).single_vlan(VlanId::try_new(547).unwrap()))
        }
        Link::Sll => ip!(PacketBuilder::linux_sll(
            LinuxSllPacketType::HOST,
            6,
            [2, 0, 0, 0, 0, 1, 0, 0]
        )),
        Link::Raw => match (octets(src), octets(dst)) {
            (Err(s), Err(d)) => {
                let exts = Ipv6Extensions {
                    hop_by_hop_options: Some(
                        Ipv6RawExtHeader::new_raw(IpNumber::TCP, &[0; 6]).unwrap(),
                    ),
                    ..Default::default()
                };
                let h = Ipv6Header {
                    hop_limit: 64,
                    source: s,
                    destination: d,
                    ..Default::default()
                };
                PacketBuilder::ip(IpHeaders::Ipv6(h, exts))
            }
            (Ok(s), Ok(d)) => PacketBuilder::ipv4(s, d, 64),
            _ => unreachable!(),
        },
        Link::Sll2 | Link::Null => match (octets(src), octets(dst)) {
            (Ok(s), Ok(d)) => PacketBuilder::ipv4(s, d, 64),
            (Err(s), Err(d)) => PacketBuilder::ipv6(s, d, 64),
            _ => unreachable!(),
        },
    }
}

/// How the frames are written.
#[derive(Debug, Clone, Copy)]
enum File {
    Pcap(Endianness, TsResolution),
    PcapNg,
}

fn write_capture(file: File, link: Link, frames: &[Vec<u8>]) -> Vec<u8> {
    let ts = |i: usize| Duration::from_micros(1_700_000_000_000_000 + i as u64 * 10);
    match file {
        File::Pcap(endianness, ts_resolution) => {
            let header = PcapHeader {
                datalink: link.datalink(),
                endianness,
                ts_resolution,
                snaplen: 262144,
                ..Default::default()
            };
            let mut w = PcapWriter::with_header(Vec::new(), header).unwrap();
            for (i, f) in frames.iter().enumerate() {
                w.write_packet(&PcapPacket::new(ts(i), f.len() as u32, f))
                    .unwrap();
            }
            w.into_writer()
        }
        File::PcapNg => {
            let mut w = PcapNgWriter::new(Vec::new()).unwrap();
            w.write_pcapng_block(InterfaceDescriptionBlock {
                linktype: link.datalink(),
                snaplen: 262144,
                options: vec![],
            })
            .unwrap();
            for (i, f) in frames.iter().enumerate() {
                w.write_pcapng_block(EnhancedPacketBlock {
                    interface_id: 0,
                    timestamp: ts(i),
                    original_len: f.len() as u32,
                    data: Cow::Borrowed(f),
                    options: vec![],
                })
                .unwrap();
            }
            w.into_inner()
        }
    }
}

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn decode(file: &Path, extra: &[&str]) -> Out {
    let out = Command::new(env!("CARGO_BIN_EXE_pdrestore"))
        .arg("decode")
        .args(extra)
        .arg(file)
        .output()
        .unwrap();
    Out {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn json_lines(s: &str) -> Vec<Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A capture's `--json` output: per stream, its `stream` object and its
/// records without `connection` and `direction` (checked to be the stream's).
fn streams(out: &str) -> Vec<(Value, Vec<Value>)> {
    let mut streams: Vec<(Value, Vec<Value>)> = Vec::new();
    for mut v in json_lines(out) {
        if v["kind"] == "stream" {
            streams.push((v, Vec::new()));
            continue;
        }
        let (head, records) = streams.last_mut().expect("a stream line first");
        let obj = v.as_object_mut().unwrap();
        assert_eq!(obj.remove("connection").as_ref(), Some(&head["connection"]));
        assert_eq!(obj.remove("direction").as_ref(), Some(&head["direction"]));
        records.push(v);
    }
    streams
}

fn raw_records(name: &str) -> Vec<Value> {
    let out = decode(&kea_path(name), &["--json"]);
    assert_eq!(out.code, Some(0));
    json_lines(&out.stdout)
}

fn write_tmp(dir: &tempfile::TempDir, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, data).unwrap();
    p
}

/// Segment sizes from 1 to 97 octets, so frames straddle segments every way.
fn ragged(i: usize) -> usize {
    1 + (i * 37) % 97
}

/// Retransmit every 7th segment right away, and swap every 5th segment
/// with the one after it.
fn retransmit_and_reorder(mut pkts: Vec<Pkt>) -> Vec<Pkt> {
    let mut out = Vec::new();
    for (i, p) in pkts.drain(..).enumerate() {
        let again = i % 7 == 3 && !p.payload.is_empty();
        out.push(p.clone());
        if again {
            out.push(p);
        }
    }
    let mut i = 3;
    while i + 1 < out.len() - 2 {
        out.swap(i, i + 1);
        i += 5;
    }
    out
}

#[test]
fn every_link_type_file_format_and_ip_version_decodes_to_the_raw_streams_records() {
    let request = kea("02_relayid_B.request.bin");
    let response = kea("02_relayid_B.response.bin");
    let raw_request = raw_records("02_relayid_B.request.bin");
    let raw_response = raw_records("02_relayid_B.response.bin");
    assert!(raw_response.len() > 200, "the raw stream decodes");
    let dir = tempfile::tempdir().unwrap();
    let files = [
        File::Pcap(Endianness::Little, TsResolution::MicroSecond),
        File::Pcap(Endianness::Big, TsResolution::NanoSecond),
        File::PcapNg,
    ];
    let conns = [
        Conn::new("[2001:db8::1]:40000", "[2001:db8::547]:547"),
        Conn::new("192.0.2.1:40001", "192.0.2.7:547"),
    ];
    let mut runs = 0;
    for link in Link::ALL {
        for conn in &conns {
            for (fi, file) in files.iter().enumerate() {
                let pkts = retransmit_and_reorder(conn.exchange(&request, &response, ragged));
                assert!(pkts.len() > 300);
                let frames: Vec<_> = pkts.iter().map(|p| conn.frame(link, p)).collect();
                if link == Link::Raw && conn.client.is_ipv6() {
                    assert_eq!(frames[0][6], 0, "next header: hop-by-hop options");
                }
                let path = write_tmp(
                    &dir,
                    &format!("c{runs}"),
                    &write_capture(*file, link, &frames),
                );
                let what = format!("{link:?} {} {file:?}", conn.client);
                let out = decode(&path, &["--json"]);
                assert_eq!(out.code, Some(0), "{what}: {}", out.stderr);
                let s = streams(&out.stdout);
                assert_eq!(s.len(), 2, "{what}");
                let connection = format!("{}-{}", conn.client, conn.server);
                for (head, direction, source, octets) in [
                    (&s[0].0, "to-server", conn.client, request.len()),
                    (&s[1].0, "from-server", conn.server, response.len()),
                ] {
                    assert_eq!(head["connection"], connection.as_str(), "{what}");
                    assert_eq!(head["direction"], direction, "{what}");
                    assert_eq!(head["source"], source.to_string(), "{what}");
                    assert_eq!(head["octets"], octets, "{what}");
                    assert_eq!(head["syn_seen"], true, "{what}");
                    assert_eq!(head["end"], "fin", "{what}");
                }
                assert_eq!(s[0].1, raw_request, "{what}: the request");
                assert_eq!(s[1].1, raw_response, "{what}: the response");
                assert!(
                    out.stderr
                        .contains("received more than once (retransmissions)"),
                    "{what}: {}",
                    out.stderr
                );
                // The text form: a header per stream, then the raw text lines.
                if fi == 0 {
                    let text = decode(&path, &[]);
                    assert_eq!(text.code, Some(0));
                    let raw_text = decode(&kea_path("02_relayid_B.response.bin"), &[]);
                    let header = format!(
                        "== {} -> {} (server to client), {} octets ==",
                        conn.server,
                        conn.client,
                        response.len()
                    );
                    let (_, rest) = text
                        .stdout
                        .split_once(&format!("{header}\n"))
                        .unwrap_or_else(|| panic!("{what}: no {header:?} in\n{}", text.stdout));
                    assert_eq!(rest, raw_text.stdout, "{what}");
                    assert!(text.stdout.starts_with(&format!(
                        "== {} -> {} (client to server), {} octets ==\n",
                        conn.client,
                        conn.server,
                        request.len()
                    )));
                }
                runs += 1;
            }
        }
    }
    assert_eq!(runs, 36);
}

#[test]
fn a_missing_segment_is_a_gap_with_its_connection_and_offset() {
    let request = kea("02_relayid_B.request.bin");
    let response = kea("02_relayid_B.response.bin");
    let conn = Conn::new("[2001:db8::1]:40000", "[2001:db8::547]:547");
    let mut pkts = conn.exchange(&request, &response, |_| 1000);
    // Drop the server's 6th data segment: octets 5000..6000 of the response.
    let i = pkts
        .iter()
        .position(|p| !p.to_server && p.seq == conn.server_isn.wrapping_add(1 + 5000))
        .unwrap();
    pkts.remove(i);
    let frames: Vec<_> = pkts.iter().map(|p| conn.frame(Link::Ethernet, p)).collect();
    let dir = tempfile::tempdir().unwrap();
    let path = write_tmp(
        &dir,
        "gap.pcapng",
        &write_capture(File::PcapNg, Link::Ethernet, &frames),
    );
    let out = decode(&path, &["--json"]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let s = streams(&out.stdout);
    let (head, records) = &s[1];
    assert_eq!(head["octets"], 5000);
    assert_eq!(head["gap"]["offset"], 5000);
    assert_eq!(head["gap"]["missing"], 1000);
    assert_eq!(head["gap"]["discarded"], response.len() - 6000);
    // Every frame wholly before the gap decodes as in the raw stream; the
    // one cut by it is a truncated frame, then the gap itself.
    let raw = raw_records("02_relayid_B.response.bin");
    let before = raw
        .iter()
        .take_while(|r| r["offset"].as_u64().unwrap() < 5000)
        .filter(|r| {
            let next = raw
                .iter()
                .map(|x| x["offset"].as_u64().unwrap())
                .find(|o| *o > r["offset"].as_u64().unwrap())
                .unwrap();
            next <= 5000
        })
        .count();
    assert!(before > 20);
    assert_eq!(records[..before], raw[..before]);
    let gap = records.last().unwrap();
    assert_eq!(gap["kind"], "error");
    assert_eq!(gap["offset"], 5000);
    let msg = gap["error"].as_str().unwrap();
    assert!(
        msg.contains("[2001:db8::1]:40000-[2001:db8::547]:547 from-server")
            && msg.contains("1000 octets missing")
            && msg.contains("stream offset 5000"),
        "{msg}"
    );
    assert!(
        out.stderr.contains(
            "[2001:db8::1]:40000-[2001:db8::547]:547 from-server: 1000 octets missing at stream offset 5000"
        ),
        "{}",
        out.stderr
    );
    // The request direction is whole.
    assert_eq!(s[0].1, raw_records("02_relayid_B.request.bin"));
    // The text form says it too.
    let text = decode(&path, &[]);
    assert_eq!(text.code, Some(1));
    assert!(
        text.stdout.contains(
            "== [2001:db8::547]:547 -> [2001:db8::1]:40000 (server to client), 5000 octets, \
             1000 octets missing at offset 5000 =="
        ),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("@5000 ERROR: "), "{}", text.stdout);
}

#[test]
fn no_tcp_traffic_on_port_547_exits_1_and_other_ports_are_followed_with_port() {
    let request = kea("02_relayid_B.request.bin");
    let response = kea("02_relayid_B.response.bin");
    let conn = Conn::new("127.0.0.1:40000", "127.0.0.1:5547");
    let mut frames: Vec<_> = conn
        .exchange(&request, &response, ragged)
        .iter()
        .map(|p| conn.frame(Link::Sll, p))
        .collect();
    // UDP on 546/547 over IPv4 is not DHCPv6 (nor Bulk Leasequery).
    let mut udp = Vec::new();
    PacketBuilder::linux_sll(LinuxSllPacketType::HOST, 6, [0; 8])
        .ipv4([127, 0, 0, 1], [127, 0, 0, 1], 64)
        .udp(546, 547)
        .write(&mut udp, &request)
        .unwrap();
    frames.insert(0, udp);
    let dir = tempfile::tempdir().unwrap();
    let file = File::Pcap(Endianness::Little, TsResolution::NanoSecond);
    let path = write_tmp(&dir, "5547.pcap", &write_capture(file, Link::Sll, &frames));
    let out = decode(&path, &[]);
    assert_eq!(out.code, Some(1));
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr
            .contains("no DHCPv6 traffic (TCP port 547 or UDP ports 546/547) in "),
        "{}",
        out.stderr
    );
    let out = decode(&path, &["--json", "--port", "5547"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let s = streams(&out.stdout);
    assert_eq!(s[0].0["connection"], "127.0.0.1:40000-127.0.0.1:5547");
    assert_eq!(s[1].1, raw_records("02_relayid_B.response.bin"));
    let out = decode(&path, &["--port", "80", "--port", "8080"]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr
            .contains("no DHCPv6 traffic (TCP ports 547, 80, 8080 or UDP ports 546/547/80/8080)"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_capture_started_mid_connection_decodes_from_the_first_segment_and_says_so() {
    let request = kea("02_relayid_B.request.bin");
    let response = kea("02_relayid_B.response.bin");
    let conn = Conn::new("[::1]:40000", "[::1]:547");
    let pkts = conn.exchange(&request, &response, |_| 4000);
    // From the server's first data segment on: no SYNs, no request.
    let first = pkts
        .iter()
        .position(|p| !p.to_server && !p.payload.is_empty())
        .unwrap();
    let frames: Vec<_> = pkts[first..]
        .iter()
        .map(|p| conn.frame(Link::Ethernet, p))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = write_tmp(
        &dir,
        "mid.pcapng",
        &write_capture(File::PcapNg, Link::Ethernet, &frames),
    );
    let out = decode(&path, &["--json"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let s = streams(&out.stdout);
    assert_eq!(s[1].0["syn_seen"], false);
    assert_eq!(s[1].1, raw_records("02_relayid_B.response.bin"));
    assert!(
        out.stderr
            .contains("from-server: no SYN captured (the capture began mid-connection)"),
        "{}",
        out.stderr
    );
    let text = decode(&path, &[]);
    assert!(text
        .stdout
        .contains("octets, no SYN captured: offsets count from the first captured segment =="));
}

#[test]
fn malformed_captures_and_unsupported_link_types_exit_1_with_a_clear_error() {
    let request = kea("02_relayid_B.request.bin");
    let response = kea("02_relayid_B.response.bin");
    let conn = Conn::new("[::1]:40000", "[::1]:547");
    let frames: Vec<_> = conn
        .exchange(&request, &response, ragged)
        .iter()
        .map(|p| conn.frame(Link::Raw, p))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = File::Pcap(Endianness::Little, TsResolution::MicroSecond);
    let whole = write_capture(file, Link::Raw, &frames);

    // Cut inside the last packet record: what came before is decoded.
    let cut = write_tmp(&dir, "cut.pcap", &whole[..whole.len() - 10]);
    let out = decode(&cut, &["--json"]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("pcap record ") && out.stderr.contains("the file ends inside it"),
        "{}",
        out.stderr
    );
    let s = streams(&out.stdout);
    assert_eq!(s[1].1, raw_records("02_relayid_B.response.bin"));

    // A header cut short.
    let out = decode(&write_tmp(&dir, "short.pcap", &whole[..10]), &[]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr
            .contains("not a valid pcap file: the file ends inside its header"),
        "{}",
        out.stderr
    );

    // pcapng: a block whose trailing length disagrees.
    let mut ng = write_capture(File::PcapNg, Link::Raw, &frames);
    let n = ng.len();
    ng[n - 1] ^= 0x40;
    let out = decode(&write_tmp(&dir, "bad.pcapng", &ng), &[]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("pcapng record "), "{}", out.stderr);

    // A link type no one reads here: 802.11 radiotap.
    let mut radiotap = whole.clone();
    radiotap[20..24].copy_from_slice(&127u32.to_le_bytes());
    let out = decode(&write_tmp(&dir, "radiotap.pcap", &radiotap), &[]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr
            .contains("link-layer type 127 (IEEE802_11_RADIOTAP) is not supported"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty());

    // Unreadable stays 66.
    assert_eq!(
        decode(&dir.path().join("nonexistent.pcap"), &[]).code,
        Some(66)
    );

    // Standard input works the same.
    let out = Command::new(env!("CARGO_BIN_EXE_pdrestore"))
        .args(["decode", "--json", "-"])
        .stdin(std::fs::File::open(write_tmp(&dir, "whole.pcap", &whole)).unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let s = streams(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(s[1].1, raw_records("02_relayid_B.response.bin"));
}

/// Nothing panics on a mangled capture: the library reader and decoder on
/// thousands of mutations of a valid pcap and pcapng file.
#[test]
fn mangled_captures_do_not_panic() {
    use pdrestore::decode::capture::{read_capture, DecodedStream, Format};
    let request = kea("02_relayid_B.request.bin");
    let response = kea("03_relayid_B_link_s2.response.bin");
    let conn = Conn::new("[::1]:40000", "[::1]:547");
    let pkts = retransmit_and_reorder(conn.exchange(&request, &response, ragged));
    let mut rng = fastrand::Rng::with_seed(547);
    for link in Link::ALL {
        let frames: Vec<_> = pkts.iter().map(|p| conn.frame(link, p)).collect();
        for file in [
            File::Pcap(Endianness::Big, TsResolution::MicroSecond),
            File::PcapNg,
        ] {
            let good = write_capture(file, link, &frames);
            for _ in 0..150 {
                let mut bad = good.clone();
                for _ in 0..rng.usize(1..8) {
                    let i = rng.usize(..bad.len());
                    match rng.u8(..4) {
                        0 => bad[i] = rng.u8(..),
                        1 => bad.truncate(i.max(1)),
                        2 => bad[i] ^= 1 << rng.u8(..8),
                        _ => {
                            let j = rng.usize(..bad.len());
                            bad.swap(i, j);
                        }
                    }
                }
                let format = Format::detect(&bad);
                if format == Format::Raw {
                    continue;
                }
                if let Ok(c) = read_capture(&bad, format, &[547]) {
                    for s in c.streams {
                        let _ = DecodedStream::new(s).json_lines();
                    }
                }
            }
        }
    }
}
