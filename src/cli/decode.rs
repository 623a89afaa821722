//! `pdrestore decode`: Bulk Leasequery messages from a raw stream or a
//! capture, and DHCPv6 over UDP from a capture (relay layers unwrapped,
//! IA_NA and IA_PD shown), as text or JSON lines.

use crate::exit;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

/// `pdrestore decode FILE`: a raw stream, or a pcap or pcapng capture
/// (TCP port 547 streams first, then UDP 546/547 datagrams).
pub fn run(file: &Path, json: bool, ports: &[u16]) -> ExitCode {
    let data = if file.as_os_str() == "-" {
        let mut v = Vec::new();
        if let Err(e) = std::io::Read::read_to_end(&mut std::io::stdin(), &mut v) {
            eprintln!("pdrestore: reading standard input: {e}");
            return ExitCode::from(exit::NOINPUT);
        }
        v
    } else {
        match std::fs::read(file) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("pdrestore: {}: {e}", file.display());
                return ExitCode::from(exit::NOINPUT);
            }
        }
    };
    use crate::decode::capture::Format;
    let format = Format::detect(&data);
    if format != Format::Raw {
        return decode_capture(file, &data, format, json, ports);
    }
    let records = crate::decode::decode_stream(&data);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut failed = false;
    for r in &records {
        failed |= matches!(r, crate::decode::Record::Error { .. });
        let line = if json {
            serde_json::to_string(r).expect("records serialise")
        } else {
            crate::decode::format_record(r)
        };
        if writeln!(out, "{line}").is_err() {
            return ExitCode::from(exit::IOERR);
        }
    }
    if out.flush().is_err() {
        return ExitCode::from(exit::IOERR);
    }
    if failed {
        ExitCode::from(exit::PARTIAL)
    } else {
        ExitCode::SUCCESS
    }
}

/// `decode` of a pcap or pcapng file: every direction of every connection
/// on the ports, decoded as a raw stream, then every DHCPv6 datagram (UDP
/// 546/547 and the ports) in capture order.
fn decode_capture(
    file: &Path,
    data: &[u8],
    format: crate::decode::capture::Format,
    json: bool,
    extra_ports: &[u16],
) -> ExitCode {
    use crate::decode::capture::{self, DecodedStream};
    let mut ports = vec![crate::proto::SERVER_PORT];
    for p in extra_ports {
        if !ports.contains(p) {
            ports.push(*p);
        }
    }
    let port_list = ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let name = file.display();
    let cap = match capture::read_capture(data, format, &ports) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("pdrestore: {name}: {e}");
            return ExitCode::from(exit::PARTIAL);
        }
    };
    for note in capture::notes(&cap) {
        eprintln!("pdrestore: {name}: {note}");
    }
    let mut failed = false;
    if let Some(e) = &cap.error {
        eprintln!("pdrestore: {name}: {e}; the packets before it are decoded");
        failed = true;
    }
    if cap.streams.is_empty() && cap.datagrams.is_empty() {
        eprintln!(
            "pdrestore: {name}: no DHCPv6 traffic (TCP port{} {port_list} or UDP ports 546/{}) \
             in {} packet(s) ({format})",
            if ports.len() > 1 { "s" } else { "" },
            port_list.replace(", ", "/"),
            cap.packets
        );
        return ExitCode::from(exit::PARTIAL);
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    // Bulk Leasequery over TCP first, stream by stream; then DHCPv6 over
    // UDP, datagram by datagram in capture order.
    let mut write = |lines: Vec<String>| lines.iter().try_for_each(|l| writeln!(out, "{l}"));
    for stream in cap.streams {
        let d = DecodedStream::new(stream);
        failed |= d.failed();
        if write(if json { d.json_lines() } else { d.text_lines() }).is_err() {
            return ExitCode::from(exit::IOERR);
        }
    }
    let header =
        (!cap.datagrams.is_empty() && !json).then(|| crate::decode::udp::header(&cap.datagrams));
    if write(header.into_iter().collect()).is_err() {
        return ExitCode::from(exit::IOERR);
    }
    for d in &cap.datagrams {
        let d = d.decode(data);
        failed |= d.failed();
        if write(if json { d.json_lines() } else { d.text_lines() }).is_err() {
            return ExitCode::from(exit::IOERR);
        }
    }
    if out.flush().is_err() {
        return ExitCode::from(exit::IOERR);
    }
    if failed {
        ExitCode::from(exit::PARTIAL)
    } else {
        ExitCode::SUCCESS
    }
}
