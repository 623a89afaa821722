//! Unit tests of the TCP reassembly.

use super::*;

const CLIENT: &str = "[2001:db8::1]:40000";
const SERVER: &str = "[2001:db8::547]:547";

fn seg(to_server: bool, seq: u32, payload: &[u8]) -> Segment<'_> {
    let (c, s) = (CLIENT.parse().unwrap(), SERVER.parse().unwrap());
    let (src, dst) = if to_server { (c, s) } else { (s, c) };
    Segment {
        src,
        dst,
        seq,
        syn: false,
        ack: true,
        fin: false,
        rst: false,
        payload,
    }
}

fn syn(to_server: bool, isn: u32) -> Segment<'static> {
    Segment {
        syn: true,
        ack: !to_server,
        ..seg(to_server, isn, b"")
    }
}

fn fin(to_server: bool, seq: u32, payload: &[u8]) -> Segment<'_> {
    Segment {
        fin: true,
        ..seg(to_server, seq, payload)
    }
}

fn run(segs: &[Segment<'_>]) -> Vec<Stream> {
    let mut r = Reassembler::new(&[547]);
    for s in segs {
        assert!(r.push(s));
    }
    r.finish()
}

fn from_server(streams: &[Stream]) -> &Stream {
    streams
        .iter()
        .find(|s| s.direction == Direction::FromServer)
        .unwrap()
}

/// The stream `data` cut at `cuts`, as segments from ISN `isn`, in `order`.
fn segments(isn: u32, data: &[u8], cuts: &[usize], order: &[usize]) -> Vec<Segment<'static>> {
    let data: &'static [u8] = Vec::leak(data.to_vec());
    let mut bounds = vec![0];
    bounds.extend_from_slice(cuts);
    bounds.push(data.len());
    let pieces: Vec<_> = bounds
        .windows(2)
        .map(|w| {
            seg(
                false,
                isn.wrapping_add(1).wrapping_add(w[0] as u32),
                &data[w[0]..w[1]],
            )
        })
        .collect();
    let mut out = vec![syn(true, 7), syn(false, isn)];
    out.extend(order.iter().map(|&i| pieces[i]));
    out
}

#[test]
fn in_order_with_syn() {
    let streams = run(&segments(1000, b"hello world", &[3, 6], &[0, 1, 2]));
    assert_eq!(streams.len(), 2);
    let s = from_server(&streams);
    assert_eq!(s.data, b"hello world");
    assert!(s.syn_seen);
    assert_eq!(s.first_seq, Some(1001));
    assert_eq!(s.gap, None);
    assert_eq!(s.end, StreamEnd::Open);
    assert_eq!(s.duplicate_octets, 0);
    assert_eq!(s.connection.to_string(), format!("{CLIENT}-{SERVER}"));
    let to = &streams[0];
    assert_eq!(to.direction, Direction::ToServer);
    assert!(to.data.is_empty() && to.syn_seen && to.gap.is_none());
}

#[test]
fn sequence_numbers_wrap_around() {
    // The ISN is 5 octets before 2^32: the stream crosses zero.
    let data: Vec<u8> = (0..=255).collect();
    for order in [[0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2]] {
        let streams = run(&segments(u32::MAX - 5, &data, &[2, 4, 100], &order));
        let s = from_server(&streams);
        assert_eq!(s.data, data, "order {order:?}");
        assert_eq!(s.gap, None);
    }
}

#[test]
fn out_of_order_segments_wait_for_the_octets_before_them() {
    let streams = run(&segments(50, b"abcdefghij", &[2, 5, 7], &[2, 0, 3, 1]));
    let s = from_server(&streams);
    assert_eq!(s.data, b"abcdefghij");
    assert_eq!((s.gap, s.duplicate_octets), (None, 0));
}

#[test]
fn duplicates_are_kept_once() {
    let streams = run(&segments(50, b"abcdefghij", &[4], &[0, 0, 1, 0, 1]));
    let s = from_server(&streams);
    assert_eq!(s.data, b"abcdefghij");
    assert_eq!(s.duplicate_octets, 4 + 6 + 4);
    assert_eq!(s.conflicting_octets, 0);
}

#[test]
fn overlapping_retransmissions_add_only_the_new_octets() {
    let mut segs = vec![syn(true, 7), syn(false, 99)];
    segs.push(seg(false, 100, b"abcd"));
    segs.push(seg(false, 102, b"cdefg")); // overlaps 2, adds 3
    segs.push(seg(false, 110, b"kl")); // out of order
    segs.push(seg(false, 109, b"jk")); // overlaps the held one
    segs.push(seg(false, 101, b"bcdefghi")); // fills up to 109, overlaps 6
    let s = from_server(&run(&segs)).clone();
    assert_eq!(s.data, b"abcdefghijkl");
    assert_eq!(s.duplicate_octets, 2 + 6 + 1);
    assert_eq!(s.conflicting_octets, 0);
    assert_eq!(s.gap, None);
}

#[test]
fn a_differing_retransmission_keeps_the_first_copy_and_is_counted() {
    let segs = [
        syn(false, 0),
        seg(false, 1, b"abcd"),
        seg(false, 3, b"XYef"),
    ];
    let s = from_server(&run(&segs)).clone();
    assert_eq!(s.data, b"abcdef");
    assert_eq!((s.duplicate_octets, s.conflicting_octets), (2, 2));
}

#[test]
fn a_missing_segment_is_a_gap_and_nothing_after_it_is_kept() {
    let streams = run(&segments(1000, b"abcdefghij", &[3, 6], &[0, 2]));
    let s = from_server(&streams);
    assert_eq!(s.data, b"abc");
    assert_eq!(
        s.gap,
        Some(Gap {
            offset: 3,
            missing: 3,
            discarded: 4
        })
    );
}

#[test]
fn missing_octets_before_the_fin_are_a_gap() {
    let segs = [syn(false, 0), seg(false, 1, b"abc"), fin(false, 6, b"")];
    let s = from_server(&run(&segs)).clone();
    assert_eq!(s.data, b"abc");
    assert_eq!(s.end, StreamEnd::Fin);
    assert_eq!(
        s.gap,
        Some(Gap {
            offset: 3,
            missing: 2,
            discarded: 0
        })
    );
}

#[test]
fn data_after_the_fin_is_ignored() {
    let segs = [
        syn(false, 0),
        seg(false, 5, b"xy"), // beyond the FIN, held out of order
        fin(false, 1, b"abc"),
        seg(false, 4, b"zz"),   // after the FIN
        seg(false, 1, b"abcd"), // retransmission running past it
    ];
    let s = from_server(&run(&segs)).clone();
    assert_eq!(s.data, b"abc");
    assert_eq!(s.end, StreamEnd::Fin);
    assert_eq!(s.gap, None);
    assert_eq!(s.ignored_after_end, 2 + 2 + 1);
}

#[test]
fn a_fin_before_the_last_octets_arrive_out_of_order() {
    let segs = [syn(false, 0), fin(false, 4, b"def"), seg(false, 1, b"abc")];
    let s = from_server(&run(&segs)).clone();
    assert_eq!(s.data, b"abcdef");
    assert_eq!((s.end, s.gap), (StreamEnd::Fin, None));
}

#[test]
fn a_reset_ends_both_directions() {
    let segs = [
        syn(true, 10),
        seg(true, 11, b"q"),
        Segment {
            rst: true,
            ..seg(false, 0, b"")
        },
        seg(true, 12, b"late"),
        seg(false, 1, b"late"),
    ];
    let streams = run(&segs);
    assert_eq!(streams[0].data, b"q");
    assert_eq!(streams[0].end, StreamEnd::Reset);
    assert_eq!(streams[0].ignored_after_end, 4);
    assert_eq!(streams[1].end, StreamEnd::Reset);
    assert!(streams[1].data.is_empty());
}

#[test]
fn without_a_syn_the_stream_starts_at_the_first_segment() {
    let segs = [
        seg(false, 5000, b"cdef"),
        seg(false, 4998, b"abcd"), // partly before the start
        seg(false, 5004, b"gh"),
    ];
    let s = from_server(&run(&segs)).clone();
    assert!(!s.syn_seen);
    assert_eq!(s.first_seq, Some(5000));
    assert_eq!(s.data, b"cdefgh");
    assert_eq!(s.ignored_before_start, 2);
    assert_eq!(s.duplicate_octets, 2);
}

#[test]
fn data_on_the_syn_counts_from_isn_plus_one() {
    let segs = [
        Segment {
            syn: true,
            ack: false,
            ..seg(true, 41, b"ab")
        },
        seg(true, 44, b"c"),
    ];
    let streams = run(&segs);
    assert_eq!(streams[0].data, b"abc");
    assert_eq!(streams[0].first_seq, Some(42));
}

#[test]
fn a_new_syn_on_a_reused_4_tuple_is_a_new_connection() {
    let segs = [
        syn(true, 100),
        seg(true, 101, b"one"),
        fin(true, 104, b""),
        syn(true, 9000),
        syn(true, 9000), // retransmitted SYN: same connection
        seg(true, 9001, b"two"),
    ];
    let streams = run(&segs);
    assert_eq!(streams.len(), 4);
    assert_eq!(streams[0].data, b"one");
    assert_eq!(streams[2].data, b"two");
    assert_eq!(streams[0].connection, streams[2].connection);
}

#[test]
fn roles_follow_the_watched_port() {
    let mut r = Reassembler::new(&[547, 5547]);
    let c: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let s: SocketAddr = "127.0.0.1:5547".parse().unwrap();
    let other: SocketAddr = "127.0.0.1:80".parse().unwrap();
    let mk = |src, dst, payload| Segment {
        src,
        dst,
        seq: 1,
        syn: false,
        ack: true,
        fin: false,
        rst: false,
        payload,
    };
    assert!(r.push(&mk(s, c, b"reply")));
    assert!(r.push(&mk(c, s, b"query")));
    assert!(!r.push(&mk(c, other, b"web")));
    let streams = r.finish();
    assert_eq!(streams.len(), 2);
    assert_eq!(
        streams[0].connection,
        Connection {
            client: c,
            server: s
        }
    );
    assert_eq!(streams[0].data, b"query");
    assert_eq!(streams[1].data, b"reply");
    assert!(!streams[1].syn_seen);
}

#[test]
fn both_ports_watched_the_syn_decides() {
    let mut r = Reassembler::new(&[547]);
    let a: SocketAddr = "[::1]:547".parse().unwrap();
    let b: SocketAddr = "[::2]:547".parse().unwrap();
    let mut synack = syn(false, 5);
    (synack.src, synack.dst) = (a, b);
    r.push(&synack);
    let streams = r.finish();
    assert_eq!(
        streams[0].connection,
        Connection {
            client: b,
            server: a
        }
    );
    assert!(streams[1].syn_seen);
}

proptest::proptest! {
    /// Any segmentation, order and duplication, from any ISN, gives the
    /// stream back; dropping one segment (not the last, which carries
    /// the FIN) gives its start as the gap and exactly the octets before it.
    #[test]
    fn any_delivery_gives_the_stream_back(
        data in proptest::collection::vec(proptest::num::u8::ANY, 1..300),
        cuts in proptest::collection::btree_set(1usize..300, 0..12),
        isn in proptest::num::u32::ANY,
        keys in proptest::collection::vec(proptest::num::u32::ANY, 40),
        dups in proptest::collection::vec(0usize..40, 0..6),
        drop in proptest::option::of(0usize..40),
    ) {
        let cuts: Vec<usize> = cuts.into_iter().filter(|&c| c < data.len()).collect();
        let n = cuts.len() + 1;
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| keys[i]);
        order.extend(dups.iter().map(|d| d % n));
        let dropped = drop.map(|d| d % n).filter(|&d| d + 1 < n);
        order.retain(|&i| Some(i) != dropped);
        let mut segs = segments(isn, &data, &cuts, &order);
        let last = isn.wrapping_add(1).wrapping_add(cuts.last().copied().unwrap_or(0) as u32);
        for s in segs.iter_mut().filter(|s| s.seq == last && !s.syn) {
            s.fin = true;
        }
        let streams = run(&segs);
        let s = from_server(&streams);
        match dropped {
            None => {
                proptest::prop_assert_eq!(&s.data, &data);
                proptest::prop_assert_eq!(s.gap, None);
            }
            Some(d) => {
                let start = if d == 0 { 0 } else { cuts[d - 1] };
                proptest::prop_assert_eq!(&s.data[..], &data[..start]);
                let gap = s.gap.expect("a gap");
                proptest::prop_assert_eq!(gap.offset, start as u64);
                proptest::prop_assert_eq!(gap.missing, (cuts[d] - start) as u64);
                proptest::prop_assert_eq!(gap.discarded, (data.len() - cuts[d]) as u64);
            }
        }
        proptest::prop_assert_eq!(s.end, StreamEnd::Fin);
        proptest::prop_assert_eq!(s.conflicting_octets, 0);
    }
}
