//! Codec throughput on a real Bulk Leasequery answer: Kea's reply to
//! QUERY_BY_RELAY_ID relay B (tests/data/kea/02_relayid_B.response.bin:
//! REPLY + 107 LEASEQUERY-DATA + DONE, 108 bindings, one relay layer each).
//!
//! Throughput is reported in LEASEQUERY-DATA messages per second: each
//! iteration decodes the whole stream (all 109 messages) and counts as 107
//! elements.
//!
//! - `fast_path`: FrameIter + MessageView::parse_validated + ClientData::parse
//!   + bindings(), walking each binding's relay layers; no allocation.
//! - `fast_path_to_binding`: the same, plus BindingRef::to_binding (owned
//!   bindings, as `pdrestore decode` builds them).
//! - `owned_decode`: FrameIter + Message::decode (owned option trees).
//! - `fast_path_to_claim`: the fast path, plus `Planner::claim`: the compact
//!   form `pdrestore recover` works with, the route planned (98 delegated
//!   prefixes of relay B, through interface ge-0/0/3; its 10 addresses are
//!   kept whole, as recovery keeps them).
//!
//! Run: `cargo bench --bench codec` (add `-- --measurement-time 5` to shorten).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pdrestore::proto::binding::client_data_options;
use pdrestore::proto::frame::FrameIter;
use pdrestore::proto::{ClientData, LeaseKind, Message, MessageType, MessageView};
use pdrestore::recovery::claim::Path;
use pdrestore::recovery::planner::Planner;
use pdrestore::recovery::settings::{NextHopFallback, PlanSettings};
use pdrestore::routes::{Interface, Ownership};
use std::hint::black_box;

fn stream() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/kea/02_relayid_B.response.bin"
    );
    std::fs::read(path).expect("Kea capture")
}

fn data_messages(buf: &[u8]) -> u64 {
    FrameIter::new(buf)
        .filter(|f| {
            let m = MessageView::parse(f.as_ref().unwrap().message).unwrap();
            m.msg_type() == MessageType::LeasequeryData
        })
        .count() as u64
}

/// Decode the stream into bindings on the zero-copy path; returns a digest
/// so that nothing is optimised away.
fn fast_path(buf: &[u8]) -> u64 {
    let mut digest = 0u64;
    for frame in FrameIter::new(buf) {
        let Ok(frame) = frame else { return u64::MAX };
        let Ok(msg) = MessageView::parse_validated(frame.message) else {
            return u64::MAX;
        };
        for cd in client_data_options(&msg) {
            let Ok(cd) = ClientData::parse(cd) else {
                return u64::MAX;
            };
            for b in cd.bindings() {
                digest = digest.wrapping_add(u64::from(b.valid_lifetime));
                digest = digest.wrapping_add(match b.lease {
                    LeaseKind::Prefix(p) => u64::from(p.prefix_len()),
                    LeaseKind::Address(a) => u64::from(a.octets()[15]),
                });
                digest = digest.wrapping_add(b.client_duid.len() as u64);
                if let Some(chain) = b.relay {
                    for layer in chain.layers() {
                        digest = digest.wrapping_add(u64::from(layer.link_address.octets()[15]));
                        digest =
                            digest.wrapping_add(layer.interface_id.map_or(0, <[u8]>::len) as u64);
                    }
                }
            }
        }
    }
    digest
}

fn fast_path_to_binding(buf: &[u8]) -> usize {
    let mut n = 0;
    for frame in FrameIter::new(buf) {
        let msg = MessageView::parse_validated(frame.unwrap().message).unwrap();
        for cd in client_data_options(&msg) {
            let cd = ClientData::parse(cd).unwrap();
            for b in cd.bindings() {
                n += black_box(b.to_binding()).relay.len();
            }
        }
    }
    n
}

/// The planner of a relay with Kea's relay B identity and its client link.
fn planner() -> Planner {
    let settings = PlanSettings {
        relay_id: "0003000102005e000002".parse().unwrap(),
        owner: Ownership::new(254, 16, 1024, &["2001:db8::/32".parse().unwrap()], 48),
        interface_map: Default::default(),
        our_layer: Default::default(),
        fallback: NextHopFallback::None,
    };
    let interfaces = vec![
        Interface {
            name: "ge-0/0/1".into(),
            index: 2,
            addresses: vec!["2001:db8:1::1/64".parse().unwrap()],
        },
        Interface {
            name: "ge-0/0/3".into(),
            index: 3,
            addresses: vec!["2001:db8:2::1/64".parse().unwrap()],
        },
    ];
    Planner::new(settings, interfaces)
}

/// The fast path into recovery's claims; returns how many have a planned route.
fn fast_path_to_claim(buf: &[u8], planner: &Planner) -> usize {
    let mut via = 0;
    for frame in FrameIter::new(buf) {
        let msg = MessageView::parse_validated(frame.unwrap().message).unwrap();
        for cd in client_data_options(&msg) {
            let cd = ClientData::parse(cd).unwrap();
            for b in cd.bindings() {
                let claim = black_box(planner.claim(&b, 32).unwrap());
                via += usize::from(matches!(claim.path, Path::Via { .. }));
            }
        }
    }
    via
}

fn owned_decode(buf: &[u8]) -> usize {
    let mut n = 0;
    for frame in FrameIter::new(buf) {
        n += black_box(Message::decode(frame.unwrap().message).unwrap())
            .options()
            .len();
    }
    n
}

fn codec(c: &mut Criterion) {
    let buf = stream();
    let data = data_messages(&buf);
    assert_eq!(data, 107, "02_relayid_B holds 107 LEASEQUERY-DATA");
    assert_ne!(fast_path(&buf), u64::MAX, "the capture decodes");
    assert_eq!(
        fast_path_to_binding(&buf),
        108,
        "108 bindings, one layer each"
    );

    let planner = planner();
    assert_eq!(
        fast_path_to_claim(&buf, &planner),
        98,
        "every delegated prefix of relay B gets its route planned"
    );

    let mut g = c.benchmark_group("02_relayid_B");
    g.throughput(Throughput::Elements(data));
    g.bench_function("fast_path", |b| b.iter(|| fast_path(black_box(&buf))));
    g.bench_function("fast_path_to_binding", |b| {
        b.iter(|| fast_path_to_binding(black_box(&buf)))
    });
    g.bench_function("fast_path_to_claim", |b| {
        b.iter(|| fast_path_to_claim(black_box(&buf), &planner))
    });
    g.bench_function("owned_decode", |b| b.iter(|| owned_decode(black_box(&buf))));
    g.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
