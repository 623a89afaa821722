//! Fuzz the relay-chain walk (OPTION_LQ_RELAY_DATA, RFC 5007 s.4.1.2.4).
//!
//! The input is the relay message of an OPTION_LQ_RELAY_DATA, placed in a
//! well-formed LEASEQUERY-REPLY with one CLIENT_DATA (CLIENTID, CLT_TIME,
//! the relay data, one IAPREFIX). When the message validates:
//! - the CLIENT_DATA parses and yields exactly one binding;
//! - the zero-copy walk (`RelayChain::layers`) gives the same layers as a
//!   walk of the owned decoding (`Message::decode`), never more than
//!   `MAX_NESTING`;
//! - the reply assembly with `max_relay_depth` 32 (RFC 8415 HOP_COUNT_LIMIT)
//!   delivers the binding when the chain has at most 32 layers, and cuts the
//!   connection off with `RelayChainTooDeep` otherwise;
//! - recovery's claim of the borrowed binding (`Planner::claim`: the route
//!   planned on the connection task) equals the claim of the owned binding,
//!   or is refused for the same depth.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pdrestore::proto::binding::client_data_options;
use pdrestore::proto::{
    ClientData, DhcpOption, Duid, Message, MessageView, RelayLayer, RelayMessage, Xid, MAX_NESTING,
};
use pdrestore::recovery::planner::Planner;
use pdrestore::recovery::settings::{NextHopFallback, PlanSettings};
use pdrestore::routes::{Interface, Ownership};
use pdrestore::requestor::{CloseReason, Event, Outcome, PartialReason, ProtocolError, ReplyDemux};
use std::time::{Duration, Instant};

const US: [u8; 14] = [0, 1, 0, 1, 0x2a, 0x2b, 0x2c, 0x2d, 2, 0, 0, 0, 0x99, 1];
const SERVER: [u8; 14] = [0, 2, 0, 0, 0x09, 0xbf, 1, 2, 3, 4, 5, 6, 7, 8];
const XID: u32 = 0x000102;

fn opt(code: u16, body: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
}

fn reply_around(relay_msg: &[u8]) -> Vec<u8> {
    let mut relay = vec![0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    relay.extend_from_slice(relay_msg);
    let mut cd = Vec::new();
    opt(1, &[0, 3, 0, 1, 2, 0, 0, 0, 0, 1], &mut cd);
    opt(46, &7u32.to_be_bytes(), &mut cd);
    opt(47, &relay, &mut cd);
    let mut iap = Vec::new();
    iap.extend_from_slice(&3000u32.to_be_bytes());
    iap.extend_from_slice(&4000u32.to_be_bytes());
    iap.push(56);
    iap.extend_from_slice(&[
        0x20, 0x01, 0x0d, 0xb8, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    opt(26, &iap, &mut cd);
    let mut msg = vec![15, (XID >> 16) as u8, (XID >> 8) as u8, XID as u8];
    opt(1, &US, &mut msg);
    opt(2, &SERVER, &mut msg);
    opt(45, &cd, &mut msg);
    msg
}

/// The layers of the owned decoding, outermost first: the same rules as the
/// zero-copy walk (first INTERFACE_ID, REMOTE_ID, RELAY_ID of each layer;
/// the next layer is the first RELAY_MSG holding a relay message).
fn owned_layers(m: &Message) -> Vec<RelayLayer> {
    let Message::Client(c) = m else {
        panic!("not a client message")
    };
    let mut cur: Option<&RelayMessage> = None;
    for o in &c.options {
        if let DhcpOption::ClientData(opts) = o {
            for o in opts {
                if let DhcpOption::LqRelayData { message, .. } = o {
                    cur = Some(message);
                }
            }
        }
    }
    let mut out = Vec::new();
    while let Some(r) = cur.take() {
        let mut l = RelayLayer {
            hop_count: r.hop_count,
            link_address: r.link_address,
            peer_address: r.peer_address,
            interface_id: None,
            remote_id: None,
            relay_id: None,
        };
        for o in &r.options {
            match o {
                DhcpOption::InterfaceId(i) if l.interface_id.is_none() => {
                    l.interface_id = Some(i.clone())
                }
                DhcpOption::RemoteId { enterprise, id } if l.remote_id.is_none() => {
                    let mut b = enterprise.to_be_bytes().to_vec();
                    b.extend_from_slice(id);
                    l.remote_id = Some(b);
                }
                DhcpOption::RelayId(d) if l.relay_id.is_none() => l.relay_id = Some(d.clone()),
                DhcpOption::RelayMsg(inner) if cur.is_none() => {
                    if let Message::Relay(inner) = inner.as_ref() {
                        cur = Some(inner);
                    }
                }
                _ => {}
            }
        }
        out.push(l);
    }
    out
}

/// A relay whose Relay-ID is short enough for the fuzzer to find, with one
/// client link.
fn planner() -> Planner {
    Planner::new(
        PlanSettings {
            relay_id: Duid::from_bytes(vec![0, 3, 0, 1, 2, 0, 0, 0, 0, 9]),
            owner: Ownership::new(254, 16, 1024, &["2001:db8::/32".parse().unwrap()], 48),
            interface_map: [(b"port-1".to_vec(), "ge-0/0/1".to_string())].into(),
            our_layer: Default::default(),
            fallback: NextHopFallback::None,
        },
        vec![Interface {
            name: "ge-0/0/1".into(),
            index: 2,
            addresses: vec!["2001:db8:1::1/64".parse().unwrap()],
        }],
    )
}

fuzz_target!(|data: &[u8]| {
    if data.len() > 60_000 {
        return;
    }
    let msg = reply_around(data);
    let Ok(view) = MessageView::parse_validated(&msg) else {
        assert!(
            Message::decode(&msg).is_err(),
            "owned decoder accepts what the view refuses"
        );
        return;
    };
    let owned = Message::decode(&msg).expect("owned decoder refuses what the view accepts");
    let mut bindings = Vec::new();
    for cd in client_data_options(&view) {
        let cd = ClientData::parse(cd).expect("CLIENT_DATA of a validated message");
        bindings.extend(cd.bindings().map(|b| b.to_binding()));
    }
    assert_eq!(bindings.len(), 1);
    let layers = &bindings[0].relay;
    assert!(layers.len() <= MAX_NESTING);
    assert_eq!(
        layers,
        &owned_layers(&owned),
        "zero-copy and owned walks differ"
    );

    // Recovery's compact claim: the same from the borrowed and the owned binding.
    let planner = planner();
    for cd in client_data_options(&view) {
        for b in ClientData::parse(cd).unwrap().bindings() {
            match planner.claim(&b, 32) {
                Ok(c) => assert_eq!(c, planner.claim(&b.to_binding(), 32).unwrap()),
                Err(depth) => assert!(depth > 32 && depth == layers.len(), "{depth}"),
            }
        }
    }

    // The same message through the reply assembly, with the RFC 8415 limit.
    let t0 = Instant::now();
    let mut d = ReplyDemux::new(Duid::from_bytes(US.to_vec()), Duration::from_secs(300));
    d.set_max_relay_depth(32);
    d.start_query(Xid::new(XID).expect("24 bits"), t0).unwrap();
    d.handle_frame(&msg, t0);
    let events: Vec<Event> = std::iter::from_fn(|| d.poll_event()).collect();
    if layers.len() <= 32 {
        assert!(d.close_reason().is_none(), "{:?}", d.close_reason());
        assert!(matches!(&events[..], [Event::Binding { binding, .. }] if binding == &bindings[0]));
    } else {
        let e = ProtocolError::RelayChainTooDeep {
            depth: layers.len(),
            limit: 32,
        };
        assert_eq!(d.close_reason(), Some(&CloseReason::Protocol(e.clone())));
        assert!(matches!(
            &events[..],
            [Event::Finished { outcome: Outcome::Partial(PartialReason::Protocol(x)), .. }] if *x == e
        ));
    }
});
