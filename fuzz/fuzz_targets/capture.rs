//! Fuzz `decode` of packet captures: the pcap/pcapng reader, the link/IP/TCP
//! header parsing, the TCP reassembly, and DHCPv6 over UDP (relay layers,
//! IAs).
//!
//! The first input octet picks the mode:
//! - 0..=127: the rest is a capture file (read as pcap, as pcapng, and as
//!   what its magic says), every stream and every UDP datagram decoded and
//!   rendered; nothing may panic, and each datagram's records are at file
//!   offsets inside the file.
//! - 128..=191: the next octet picks a link-layer type, the rest is one
//!   frame for `tcp_segment`; nothing may panic, and a segment's payload
//!   lies inside the frame.
//! - 192..=255: the rest is a program of TCP segments for the reassembler
//!   (4 octets each: stream offset, length, flags), from a SYN with an ISN
//!   taken from the input, carrying octets of a fixed pattern (so copies
//!   never differ). A model of what was covered checks the result: the
//!   stream is the pattern up to the first octet not covered (or the
//!   smallest FIN offset), the gap starts there and counts the covered
//!   octets after it, and segments after a RST are ignored.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pdrestore::decode::capture::{read_capture, tcp_segment, DecodedStream, Format};
use pdrestore::decode::reassembly::{Direction, Reassembler, Segment, StreamEnd};
use pdrestore::decode::Record;
use std::net::SocketAddr;

const LINKTYPES: [u32; 9] = [0, 1, 101, 108, 113, 228, 229, 276, 127];

fn pattern(offset: u64) -> u8 {
    (offset.wrapping_mul(31) ^ (offset >> 8)) as u8
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode {
        0..=127 => {
            for format in [Format::detect(rest), Format::Pcap, Format::PcapNg] {
                if format == Format::Raw {
                    continue;
                }
                if let Ok(c) = read_capture(rest, format, &[547, 5547]) {
                    let _ = pdrestore::decode::capture::notes(&c);
                    for s in c.streams {
                        let d = DecodedStream::new(s);
                        let _ = (d.text_lines(), d.json_lines());
                    }
                    for d in &c.datagrams {
                        let d = d.decode(rest);
                        let _ = (d.text_lines(), d.json_lines());
                        for r in &d.records {
                            let (Record::Message { offset, .. } | Record::Error { offset, .. }) = r
                            else {
                                continue;
                            };
                            assert!(*offset <= rest.len());
                        }
                    }
                }
            }
        }
        128..=191 => {
            let Some((&l, frame)) = rest.split_first() else {
                return;
            };
            let linktype = LINKTYPES[l as usize % LINKTYPES.len()];
            if let Ok(Some(seg)) = tcp_segment(linktype, frame) {
                let start = seg.payload.as_ptr() as usize;
                let f = frame.as_ptr() as usize;
                assert!(start >= f && start + seg.payload.len() <= f + frame.len());
            }
        }
        _ => reassembly(rest),
    }
});

fn reassembly(prog: &[u8]) {
    let Some((isn, prog)) = prog.split_first_chunk::<4>() else {
        return;
    };
    let isn = u32::from_be_bytes(*isn);
    let client: SocketAddr = "[2001:db8::1]:40000".parse().unwrap();
    let server: SocketAddr = "[2001:db8::547]:547".parse().unwrap();
    let mut r = Reassembler::new(&[547]);
    let syn = Segment {
        src: server,
        dst: client,
        seq: isn,
        syn: true,
        ack: true,
        fin: false,
        rst: false,
        payload: &[],
    };
    r.push(&syn);
    const SPAN: usize = 2048;
    let mut covered = vec![false; SPAN + 256];
    let mut fin: Option<usize> = None;
    let mut reset = false;
    for op in prog.chunks_exact(4) {
        let off = (u16::from_be_bytes([op[0], op[1]]) as usize) % SPAN;
        let len = op[2] as usize;
        let flags = op[3];
        let payload: Vec<u8> = (off..off + len).map(|o| pattern(o as u64)).collect();
        let seg = Segment {
            seq: isn.wrapping_add(1).wrapping_add(off as u32),
            syn: false,
            fin: flags & 1 != 0,
            rst: flags & 2 != 0,
            payload: &payload,
            ..syn
        };
        r.push(&seg);
        if reset {
            continue;
        }
        for c in &mut covered[off..off + len] {
            *c = true;
        }
        if seg.fin {
            fin = Some(fin.map_or(off + len, |f| f.min(off + len)));
        }
        reset |= seg.rst;
    }
    let limit = fin.unwrap_or(covered.len());
    let prefix = covered[..limit].iter().take_while(|c| **c).count();
    let after: Vec<usize> = (prefix..limit).filter(|&o| covered[o]).collect();
    let streams = r.finish();
    assert_eq!(streams.len(), 2);
    let s = &streams[1];
    assert_eq!(s.direction, Direction::FromServer);
    assert!(s.syn_seen);
    let want: Vec<u8> = (0..prefix as u64).map(pattern).collect();
    assert_eq!(s.data, want, "the stream is the covered prefix");
    assert_eq!(s.conflicting_octets, 0);
    match (s.gap, after.first()) {
        (Some(g), Some(&first)) => {
            assert_eq!(g.offset as usize, prefix);
            assert_eq!(g.missing as usize, first - prefix);
            assert_eq!(g.discarded as usize, after.len());
        }
        (Some(g), None) => {
            let f = fin.expect("a gap with nothing after it needs a FIN");
            assert_eq!(
                (g.offset as usize, g.missing as usize),
                (prefix, f - prefix)
            );
            assert_eq!(g.discarded, 0);
        }
        (None, None) => assert!(fin.is_none_or(|f| f == prefix)),
        (None, Some(_)) => panic!("covered octets after the prefix but no gap"),
    }
    let end = if fin.is_some() {
        StreamEnd::Fin
    } else if reset {
        StreamEnd::Reset
    } else {
        StreamEnd::Open
    };
    assert_eq!(s.end, end);
}
