//! `pdrestore decode` of DHCPv6 over UDP, on the dhcrelay captures
//! (tests/data/dhcrelay: ISC dhclient -> ISC dhcrelay -> Kea): every CPE's
//! delegated prefix is in the REPLY to it on its client link (br1.pcap,
//! br2.pcap) and in the REPLY inside the RELAY-REPL on the relay's upstream
//! link (relay.pcap), with its client DUID and, upstream, the relay layer's
//! link-address, peer-address and interface-id of expected.json; the same
//! records from Linux cooked captures (SLL, SLL2) in pcapng; a packet cut
//! short or an option overrunning is a fault naming its packet, and the
//! other packets decode; a capture with TCP 547 and UDP gives both, TCP
//! first; tshark finds the same prefixes in the same packets.

mod support;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter};
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock;
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::DataLink;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/dhcrelay")
        .join(name)
}

fn expected() -> Value {
    serde_json::from_slice(&std::fs::read(data("expected.json")).unwrap()).unwrap()
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn decode(file: &Path, json: bool) -> Out {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pdrestore"));
    cmd.arg("decode");
    if json {
        cmd.arg("--json");
    }
    let out = cmd.arg(file).output().unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// Every JSON line, each of which must parse.
fn json_lines(file: &Path) -> (i32, Vec<Value>, String) {
    let out = decode(file, true);
    let lines = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (out.code, lines, out.stderr)
}

fn messages(lines: &[Value]) -> Vec<&Value> {
    lines.iter().filter(|v| v["kind"] == "message").collect()
}

fn type_counts(lines: &[Value]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for v in messages(lines) {
        let key = match v["relay_type"].as_str() {
            Some(r) => format!("{r}/{}", v["type"].as_str().unwrap()),
            None => v["type"].as_str().unwrap().to_string(),
        };
        *m.entry(key).or_default() += 1;
    }
    m
}

/// The REPLY to `duid`: exactly one in these captures.
fn reply_to<'a>(lines: &'a [Value], duid: &str) -> &'a Value {
    let replies: Vec<_> = messages(lines)
        .into_iter()
        .filter(|v| v["type"] == "REPLY" && v["client_id"] == duid)
        .collect();
    assert_eq!(replies.len(), 1, "REPLYs to {duid}: {replies:?}");
    replies[0]
}

/// What a REPLY to a CPE must say of its leases.
fn check_leases(reply: &Value, cpe: &Value) {
    let name = &cpe["cpe"];
    let ia_pd = reply["ia_pd"].as_array().expect("an IA_PD");
    assert_eq!(ia_pd.len(), 1, "{name}: {reply}");
    let kea_pd = cpe["kea-lease"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["type"] == "IA_PD")
        .unwrap();
    assert_eq!(ia_pd[0]["iaid"], kea_pd["iaid"], "{name}");
    let p = &ia_pd[0]["prefixes"][0];
    assert_eq!(p["prefix"], cpe["delegated-prefix"], "{name}: {reply}");
    assert_eq!(p["valid_lifetime"], 7200, "{name}");
    assert_eq!(p["preferred_lifetime"], 3600, "{name}");
    assert!(ia_pd[0]["t1"].as_u64().unwrap() <= ia_pd[0]["t2"].as_u64().unwrap());
    let a = &reply["ia_na"][0]["addresses"][0];
    assert_eq!(a["address"], cpe["ia-na-address"], "{name}: {reply}");
    assert!(reply["server_id"].is_string(), "{name}: {reply}");
}

#[test]
fn every_reply_on_the_client_links_delegates_the_expected_prefix() {
    let exp = expected();
    for (bridge, count) in [("br1", 3), ("br2", 2)] {
        let (code, lines, stderr) = json_lines(&data(&format!("{bridge}.pcap")));
        assert_eq!(code, 0, "{stderr}");
        let want: BTreeMap<String, usize> = ["ADVERTISE", "REPLY", "REQUEST", "SOLICIT"]
            .iter()
            .map(|t| (t.to_string(), count))
            .collect();
        assert_eq!(type_counts(&lines), want, "{bridge}");
        for v in &lines {
            assert_eq!(v["transport"], "udp", "{v}");
            assert!(v["relay"].is_null(), "no relay layer on a client link: {v}");
        }
        let cpes = exp["cpes"].as_array().unwrap();
        for cpe in cpes.iter().filter(|c| c["rtr-bridge"] == bridge) {
            let reply = reply_to(&lines, cpe["client-duid"].as_str().unwrap());
            check_leases(reply, cpe);
            let ll = cpe["link-local"].as_str().unwrap();
            assert_eq!(reply["destination"], format!("[{ll}]:546"));
            let router_ll = exp["relay"][bridge]["link-local"].as_str().unwrap();
            assert_eq!(reply["source"], format!("[{router_ll}]:547"));
        }
    }
}

#[test]
fn every_relay_repl_carries_the_reply_with_the_expected_relay_layer() {
    let exp = expected();
    let (code, lines, stderr) = json_lines(&data("relay.pcap"));
    assert_eq!(code, 0, "{stderr}");
    let counts = type_counts(&lines);
    let want: BTreeMap<String, usize> = [
        ("RELAY-FORW/REQUEST", 5),
        ("RELAY-FORW/SOLICIT", 5),
        ("RELAY-REPL/ADVERTISE", 5),
        ("RELAY-REPL/REPLY", 5),
    ]
    .into_iter()
    .map(|(k, n)| (k.to_string(), n))
    .collect();
    assert_eq!(counts, want);
    // Packet numbers run 1..=20, in capture order.
    let packets: Vec<u64> = lines
        .iter()
        .map(|v| v["packet"].as_u64().unwrap())
        .collect();
    assert_eq!(packets, (1..=20).collect::<Vec<_>>());
    for cpe in exp["cpes"].as_array().unwrap() {
        let reply = reply_to(&lines, cpe["client-duid"].as_str().unwrap());
        check_leases(reply, cpe);
        assert_eq!(reply["relay_type"], "RELAY-REPL");
        let relay = reply["relay"].as_array().unwrap();
        assert_eq!(relay.len(), 1, "dhcrelay is the only relay: {reply}");
        let want = &cpe["blq-answer"]["relay-layers"][0];
        assert_eq!(relay[0]["hop_count"], want["hop-count"]);
        assert_eq!(relay[0]["link_address"], want["link-address"]);
        assert_eq!(relay[0]["peer_address"], want["peer-address"]);
        assert_eq!(relay[0]["peer_address"], cpe["link-local"]);
        assert_eq!(relay[0]["interface_id"], want["interface-id"]);
        let bridge = cpe["rtr-bridge"].as_str().unwrap();
        assert_eq!(
            relay[0]["interface_id"],
            exp["relay"][bridge]["interface-id-seen"][0]
        );
        assert!(relay[0]["relay_id"].is_null(), "dhcrelay sends no RELAY_ID");
        assert_eq!(reply["source"], "[2001:db8:ff::547]:547");
        assert_eq!(reply["destination"], "[2001:db8:ff::1]:547");
    }
}

#[test]
fn the_text_form_shows_relay_layers_and_prefixes() {
    let out = decode(&data("relay.pcap"), false);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let text = &out.stdout;
    assert!(
        text.starts_with("== DHCPv6 over UDP (ports 546/547): 20 datagram(s)"),
        "{text}"
    );
    assert!(
        text.contains("\n#12 [2001:db8:ff::547]:547 -> [2001:db8:ff::1]:547 @"),
        "{text}"
    );
    assert!(
        text.contains("    via RELAY-REPL hop=0 link=2001:db8:1::1 peer=fe80::ff:fe00:c101 interface-id=0x07000000"),
        "{text}"
    );
    for cpe in expected()["cpes"].as_array().unwrap() {
        let p = cpe["delegated-prefix"].as_str().unwrap();
        // In the ADVERTISE and the REPLY.
        let n = text
            .matches(&format!("      IAPREFIX {p} pref=3600 valid=7200\n"))
            .count();
        assert_eq!(n, 2, "{p}: {text}");
    }
}

/// The packets of a pcap file, with its header.
fn packets(file: &Path) -> (PcapHeader, Vec<(Duration, u32, Vec<u8>)>) {
    let mut r = PcapReader::new(std::fs::File::open(file).unwrap()).unwrap();
    let header = r.header();
    let mut out = Vec::new();
    while let Some(p) = r.next_packet() {
        let p = p.unwrap();
        out.push((p.timestamp, p.orig_len, p.data.into_owned()));
    }
    (header, out)
}

fn write_pcap(header: PcapHeader, pkts: &[(Duration, u32, Vec<u8>)]) -> Vec<u8> {
    let mut w = PcapWriter::with_header(Vec::new(), header).unwrap();
    for (ts, orig, d) in pkts {
        w.write_packet(&PcapPacket::new(*ts, *orig, d)).unwrap();
    }
    w.into_writer()
}

fn temp(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pdr-decode-udp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// The message records without their file offsets (which differ with the
/// link-layer header).
fn without_offsets(lines: &[Value]) -> Vec<Value> {
    lines
        .iter()
        .map(|v| {
            let mut v = v.clone();
            v.as_object_mut().unwrap().remove("offset");
            v
        })
        .collect()
}

#[test]
fn linux_cooked_captures_in_pcapng_decode_the_same() {
    let (_, lines, _) = json_lines(&data("relay.pcap"));
    let (_, pkts) = packets(&data("relay.pcap"));
    for (link, name) in [(DataLink::LINUX_SLL2, "sll2"), (DataLink::LINUX_SLL, "sll")] {
        let mut w = PcapNgWriter::new(Vec::new()).unwrap();
        w.write_pcapng_block(InterfaceDescriptionBlock {
            linktype: link,
            snaplen: 0,
            options: vec![],
        })
        .unwrap();
        for (i, (ts, _, frame)) in pkts.iter().enumerate() {
            // The Ethernet header (14 octets) replaced by a cooked one,
            // protocol 0x86dd: the way `tcpdump -i any` writes them.
            let mut cooked = if link == DataLink::LINUX_SLL2 {
                let mut h = vec![0x86, 0xdd, 0, 0, 0, 0, 0, 2, 0, 1, (i % 2 * 4) as u8, 6];
                h.extend_from_slice(&frame[6..12]);
                h.extend([0, 0]);
                h
            } else {
                let mut h = vec![0, (i % 2 * 4) as u8, 0, 1, 0, 6];
                h.extend_from_slice(&frame[6..12]);
                h.extend([0, 0, 0x86, 0xdd]);
                h
            };
            cooked.extend_from_slice(&frame[14..]);
            w.write_pcapng_block(EnhancedPacketBlock {
                interface_id: 0,
                timestamp: *ts,
                original_len: cooked.len() as u32,
                data: Cow::Owned(cooked),
                options: vec![],
            })
            .unwrap();
        }
        let f = temp(&format!("relay-{name}.pcapng"), &w.into_inner());
        let (code, cooked_lines, stderr) = json_lines(&f);
        assert_eq!(code, 0, "{name}: {stderr}");
        assert_eq!(
            without_offsets(&cooked_lines),
            without_offsets(&lines),
            "{name}"
        );
    }
}

#[test]
fn a_cut_packet_and_an_overrunning_option_are_faults_with_their_packet() {
    let (header, mut pkts) = packets(&data("relay.pcap"));
    // Packet 12 (a RELAY-REPL with a REPLY) cut 30 octets short, as by a
    // snapshot length; its original length kept.
    let p12 = &mut pkts[11];
    p12.2.truncate(p12.2.len() - 30);
    // Packet 14: the IA_PD's option-len inside the REPLY inside the
    // RELAY-REPL made to overrun. Found by its code and IAID.
    let p14 = &mut pkts[13].2;
    let iaid = 49410u32.to_be_bytes();
    let at = (0..p14.len() - 8)
        .find(|&i| p14[i..i + 2] == [0, 25] && p14[i + 4..i + 8] == iaid)
        .expect("IA_PD in packet 14");
    p14[at + 2..at + 4].copy_from_slice(&[0x0f, 0xff]);
    let f = temp("relay-faults.pcap", &write_pcap(header, &pkts));
    let (code, lines, stderr) = json_lines(&f);
    assert_eq!(code, 1, "{stderr}");
    let errors: Vec<_> = lines.iter().filter(|v| v["kind"] == "error").collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[0]["packet"], 12);
    let e0 = errors[0]["error"].as_str().unwrap();
    assert!(
        e0.starts_with("packet 12: cut short by the snapshot length"),
        "{e0}"
    );
    // The file offset of the packet's frame: 24 octets of file header, 11
    // records, and its own 16-octet record header.
    let offset12: usize = 24 + pkts[..11].iter().map(|p| 16 + p.2.len()).sum::<usize>() + 16;
    assert_eq!(errors[0]["offset"], offset12);
    assert_eq!(errors[1]["packet"], 14);
    let e1 = errors[1]["error"].as_str().unwrap();
    assert!(e1.contains("option IA_PD(25)"), "{e1}");
    assert!(e1.contains("overruns its container"), "{e1}");
    // The other 18 decode, and four of the five REPLYs.
    assert_eq!(messages(&lines).len(), 18);
    assert_eq!(type_counts(&lines)["RELAY-REPL/REPLY"], 3);
    let text = decode(&f, false);
    assert_eq!(text.code, 1);
    assert!(
        text.stdout
            .contains("\n#12 [2001:db8:ff::547]:547 -> [2001:db8:ff::1]:547 @"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains(" ERROR: packet 12: cut short"),
        "{}",
        text.stdout
    );
}

/// An Ethernet frame with IPv6 and TCP between the relay and Kea.
fn tcp_frame(to_server: bool, seq: u32, syn: bool, payload: &[u8]) -> Vec<u8> {
    let (relay, kea) = (
        "2001:db8:ff::1"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
        "2001:db8:ff::547"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    let (src, dst, sp, dp) = if to_server {
        (relay, kea, 40000, 547)
    } else {
        (kea, relay, 547, 40000)
    };
    let mut b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv6(src, dst, 64)
        .tcp(sp, dp, seq, 65535);
    if syn {
        b = b.syn();
    }
    let mut out = Vec::new();
    b.write(&mut out, payload).unwrap();
    out
}

#[test]
fn tcp_and_udp_in_one_capture_decode_both_tcp_first() {
    let (header, udp) = packets(&data("relay.pcap"));
    let request = std::fs::read(data("q1_link_br1/request.bin")).unwrap();
    let response = std::fs::read(data("q1_link_br1/response.bin")).unwrap();
    let mut pkts = Vec::new();
    let t = Duration::from_secs(1);
    let frames = [
        tcp_frame(true, 999, true, &[]),
        tcp_frame(false, 4999, true, &[]),
        tcp_frame(true, 1000, false, &request),
        tcp_frame(false, 5000, false, &response),
    ];
    // The TCP packets between the UDP ones.
    for (i, u) in udp.into_iter().enumerate() {
        pkts.push(u);
        if let Some(f) = frames.get(i) {
            pkts.push((t, f.len() as u32, f.clone()));
        }
    }
    let f = temp("mixed.pcap", &write_pcap(header, &pkts));
    let (code, lines, stderr) = json_lines(&f);
    assert_eq!(code, 0, "{stderr}");
    let first_udp = lines.iter().position(|v| v["transport"] == "udp").unwrap();
    assert!(first_udp > 0);
    for v in &lines[..first_udp] {
        assert!(v["connection"].is_string(), "TCP records first: {v}");
        assert!(v["transport"].is_null());
    }
    for v in &lines[first_udp..] {
        assert_eq!(v["transport"], "udp", "then UDP: {v}");
    }
    // Kea's answer to QUERY_BY_LINK_ADDRESS 2001:db8:1::1: six bindings.
    let bindings = lines[..first_udp]
        .iter()
        .filter(|v| v["kind"] == "binding")
        .count();
    assert_eq!(bindings, 6);
    assert_eq!(messages(&lines[first_udp..]).len(), 20);
    // UDP packet numbers count the TCP packets too.
    assert_eq!(lines[first_udp]["packet"], 1);
    assert_eq!(lines[first_udp + 1]["packet"], 3);
}

#[test]
fn no_dhcpv6_traffic_names_both_transports() {
    let (header, pkts) = packets(&data("relay.pcap"));
    // Port 547 changed to 53 at both ends of packet 1 (UDP header after
    // Ethernet and IPv6).
    let mut p = pkts[0].clone();
    p.2[54..58].copy_from_slice(&[0, 53, 0, 53]);
    let f = temp("no-dhcp.pcap", &write_pcap(header, &[p]));
    let out = decode(&f, false);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains(
            "no DHCPv6 traffic (TCP port 547 or UDP ports 546/547) in 1 packet(s) (pcap)"
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn tshark_finds_the_same_prefixes_in_the_same_packets() {
    if !support::need_tool("tshark", "tshark") {
        return;
    }
    for name in ["relay.pcap", "br1.pcap", "br2.pcap"] {
        let out = Command::new("tshark")
            .args(["-r"])
            .arg(data(name))
            .args(["-T", "fields", "-E", "separator=/t"])
            .args(["-e", "frame.number", "-e", "dhcpv6.iaprefix.pref_addr"])
            .args(["-e", "dhcpv6.iaprefix.pref_len"])
            .output()
            .unwrap();
        assert!(out.status.success());
        let mut theirs = Vec::new();
        for line in String::from_utf8(out.stdout).unwrap().lines() {
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() == 3 && !f[1].is_empty() {
                theirs.push((f[0].parse::<u64>().unwrap(), format!("{}/{}", f[1], f[2])));
            }
        }
        let (_, lines, _) = json_lines(&data(name));
        let mut ours = Vec::new();
        for v in messages(&lines) {
            for ia in v["ia_pd"].as_array().into_iter().flatten() {
                for p in ia["prefixes"].as_array().unwrap() {
                    let prefix = p["prefix"].as_str().unwrap().to_string();
                    ours.push((v["packet"].as_u64().unwrap(), prefix));
                }
            }
        }
        assert!(!ours.is_empty());
        assert_eq!(ours, theirs, "{name}");
    }
}
