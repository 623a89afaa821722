//! The compact form of a binding that recovery works with, made on the
//! connection task as each binding is decoded.
//!
//! A [`Claim`] holds what reconciliation (RFC 5007 s.4.3.4) and the route
//! need, and nothing else: the lease, its lifetimes, CLT_TIME, the client's
//! DUID, and, for the common case of a delegated prefix relayed through us,
//! the route's next hop and interface already planned ([`Path::Via`], by
//! [`Planner::plan`]). It is made straight from the zero-copy [`BindingRef`]
//! with no allocation for DUIDs of up to [`INLINE_DUID`] octets, so the
//! installer's thread only reconciles and queues. Everything else
//! (addresses, bindings without relay data, prefixes that planning refuses,
//! long DUIDs) is kept whole ([`Path::Whole`]) and decided at the end, by
//! the same planner, where the reason of a refusal is reported.

use super::planner::{Chain, PlanInput, Planner};
use crate::proto::binding::BindingRef;
use crate::proto::{Binding, BindingMapper, LeaseKind, RelayLayer};
use std::net::Ipv6Addr;
use std::sync::Arc;

/// DUIDs up to this many octets are kept inline in a [`ClientId`].
pub const INLINE_DUID: usize = 22;

/// A client's DUID octets, inline when short (most DUIDs: DUID-LL is 10
/// octets, DUID-LLT 14, DUID-UUID 18).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientId {
    /// Up to [`INLINE_DUID`] octets.
    Inline {
        /// Number of octets used.
        len: u8,
        /// The octets.
        bytes: [u8; INLINE_DUID],
    },
    /// Longer DUIDs.
    Heap(Box<[u8]>),
}

impl ClientId {
    /// The DUID `d`.
    pub fn new(d: &[u8]) -> Self {
        if d.len() <= INLINE_DUID {
            let mut bytes = [0; INLINE_DUID];
            bytes[..d.len()].copy_from_slice(d);
            ClientId::Inline {
                len: d.len() as u8,
                bytes,
            }
        } else {
            ClientId::Heap(d.into())
        }
    }

    /// The DUID's octets.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            ClientId::Inline { len, bytes } => &bytes[..usize::from(*len)],
            ClientId::Heap(b) => b,
        }
    }
}

/// Where a claimed prefix's route goes, as far as the connection task could tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Path {
    /// A delegated prefix whose route is planned: next hop, and the
    /// outgoing interface as its position in [`Planner::interfaces`].
    Via {
        /// The next hop (the peer-address of our relay layer).
        gateway: Ipv6Addr,
        /// Position of the outgoing interface in [`Planner::interfaces`].
        iface: u32,
    },
    /// Anything else, kept whole (our relay layer only, without its
    /// Remote-ID) to be planned at the end: an address (IA_NA), a prefix
    /// without relay data, one that planning refused, one whose route could
    /// not be planned here.
    Whole(Box<Binding>),
}

/// A binding in the compact form recovery works with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The address or prefix.
    pub lease: LeaseKind,
    /// Valid lifetime, seconds.
    pub valid_lifetime: u32,
    /// CLT_TIME, seconds since the server last heard from the client.
    pub clt_time: u32,
    /// The client's DUID.
    pub client: ClientId,
    /// The route, when already planned.
    pub path: Path,
}

/// What a [`Claim`] is made from, beyond what planning reads: the borrowed
/// binding of the connection task and the owned one both give it.
pub trait ClaimInput: PlanInput {
    /// The client's DUID octets.
    fn client(&self) -> &[u8];
    /// Valid lifetime, seconds.
    fn valid_lifetime(&self) -> u32;
    /// CLT_TIME, seconds.
    fn clt_time(&self) -> u32;
    /// The owned binding, for a claim kept whole.
    fn to_binding(&self) -> Binding;
}

impl ClaimInput for BindingRef<'_> {
    fn client(&self) -> &[u8] {
        self.client_duid
    }
    fn valid_lifetime(&self) -> u32 {
        self.valid_lifetime
    }
    fn clt_time(&self) -> u32 {
        self.clt_time
    }
    fn to_binding(&self) -> Binding {
        BindingRef::to_binding(self)
    }
}

impl ClaimInput for Binding {
    fn client(&self) -> &[u8] {
        self.client_duid.as_bytes()
    }
    fn valid_lifetime(&self) -> u32 {
        self.valid_lifetime
    }
    fn clt_time(&self) -> u32 {
        self.clt_time
    }
    fn to_binding(&self) -> Binding {
        self.clone()
    }
}

impl Planner {
    /// The claim of binding `b` (borrowed or owned), its route planned when
    /// it is a delegated prefix that planning accepts; or the number of
    /// layers of its relay chain when there are more than `max_relay_depth`.
    pub fn claim(&self, b: &impl ClaimInput, max_relay_depth: usize) -> Result<Claim, usize> {
        let chain = self.chain(b);
        if chain.depth > max_relay_depth {
            return Err(chain.depth);
        }
        let lease = b.lease();
        let planned = match lease {
            LeaseKind::Prefix(_) => self.plan_with(lease, &chain, None).ok(),
            LeaseKind::Address(_) => None,
        };
        let path = match planned {
            Some(p) => Path::Via {
                gateway: p.gateway,
                iface: p.iface,
            },
            None => Path::Whole(Box::new(trimmed(b.to_binding(), &chain))),
        };
        Ok(Claim {
            lease,
            valid_lifetime: b.valid_lifetime(),
            clt_time: b.clt_time(),
            client: ClientId::new(b.client()),
            path,
        })
    }
}

/// Keep only what planning needs: our relay layer (and the lightweight
/// relay's inside it, whose peer-address is the next hop), as the planner's
/// walk of the chain found them, without their Remote-IDs. A chain without
/// our layer is kept whole, so that it is refused for the right reason.
fn trimmed(mut b: Binding, chain: &Chain<'_>) -> Binding {
    if let Ok(Some(l)) = &chain.ours {
        if l.hop_at < b.relay.len() {
            let mut kept: Vec<RelayLayer> = b.relay.drain(l.at..=l.hop_at).collect();
            for l in &mut kept {
                l.remote_id = None;
            }
            b.relay = kept;
        }
    }
    b
}

/// The [`BindingMapper`] of recovery: bindings become [`Claim`]s on the
/// connection task.
#[derive(Debug, Clone)]
pub struct ClaimMapper(pub Arc<Planner>);

impl BindingMapper for ClaimMapper {
    type Item = Claim;

    fn map(&mut self, b: &BindingRef<'_>, max_relay_depth: usize) -> Result<Claim, usize> {
        self.0.claim(b, max_relay_depth)
    }
}

#[cfg(test)]
mod tests {
    use super::super::observed::Observed;
    use super::super::reference::fixtures::OURS;
    use super::super::reference::plan::route_for;
    use super::super::settings::{OurLayer, PlanSettings};
    use super::*;
    use crate::proto::{Duid, ServerIndex};
    use crate::routes::Interface;
    use proptest::prelude::*;

    /// The planning tests' settings, and an id mapped to an interface that does not exist.
    fn settings() -> PlanSettings {
        let mut s = super::super::reference::fixtures::settings();
        s.interface_map
            .insert(b"ge-0/0/9".to_vec(), "gone".to_string());
        s
    }

    /// The planning tests' links, and one named like that id, holding a
    /// prefix inside the pool.
    fn interfaces() -> Vec<Interface> {
        let mut i = super::super::reference::fixtures::interfaces();
        i.push(Interface {
            name: "ge-0/0/9".into(),
            index: 8,
            addresses: vec!["2001:db8:8000:ff00::1/64".parse().unwrap()],
        });
        i
    }

    fn arb_layer() -> impl Strategy<Value = RelayLayer> {
        let ids = prop_oneof![
            Just(None),
            Just(Some(b"ge-0/0/1".to_vec())),
            Just(Some(b"ge-0/0/9".to_vec())),
            Just(Some(b"veth-c2".to_vec())),
            Just(Some(b"other".to_vec())),
            Just(Some(vec![0xff, 0xfe])),
        ];
        let links = prop_oneof![
            Just("::"),
            Just("2001:db8:1::1"),
            Just("2001:db8:2::1"),
            Just("2001:db8:7::1")
        ];
        let peers = prop_oneof![
            Just("fe80::2"),
            Just("fe80::1"),
            Just("2001:db8:1::9"),
            Just("2001:db8:2::9"),
            Just("2001:db8:99::1"),
            Just("::1"),
            Just("ff02::1"),
            Just("::"),
        ];
        let relay_ids = prop_oneof![Just(None), Just(Some(OURS)), Just(Some("000300010a"))];
        (ids, links, peers, relay_ids).prop_map(|(id, link, peer, rid)| RelayLayer {
            hop_count: 0,
            link_address: link.parse().unwrap(),
            peer_address: peer.parse().unwrap(),
            interface_id: id,
            remote_id: None,
            relay_id: rid.map(|r| r.parse().unwrap()),
        })
    }

    fn arb_binding() -> impl Strategy<Value = Binding> {
        let leases = prop_oneof![
            Just("2001:db8:8000:100::/56"),
            Just("2001:db8:8000:ff00::/56"),
            Just("2001:db8:8000:ff00::/64"),
            Just("2001:db8:8000::/40"),
            Just("2001:db8:9000::/56"),
            Just("2001:db8:8000:100::/60"),
        ];
        (
            leases,
            prop::collection::vec(arb_layer(), 0..3),
            prop::collection::vec(any::<u8>(), 1..40),
        )
            .prop_map(|(p, relay, duid)| Binding {
                client_duid: Duid::from_bytes(duid),
                lease: LeaseKind::Prefix(p.parse().unwrap()),
                preferred_lifetime: 100,
                valid_lifetime: 200,
                clt_time: 5,
                relay,
            })
    }

    /// `b` sent as one LEASEQUERY-DATA, decoded on the borrowed path.
    fn borrowed_claim(planner: &Planner, b: &Binding, max: usize) -> Result<Claim, usize> {
        use crate::proto::{
            ClientMessage, DhcpOption, IaPrefix, Message, MessageType, RelayMessage,
        };
        let LeaseKind::Prefix(prefix) = b.lease else {
            panic!("prefixes only")
        };
        let mut inner = Message::Client(ClientMessage {
            msg_type: MessageType::Solicit,
            transaction_id: 1,
            options: vec![],
        });
        for l in b.relay.iter().rev() {
            let mut options = Vec::new();
            if let Some(id) = &l.interface_id {
                options.push(DhcpOption::InterfaceId(id.clone()));
            }
            if let Some(r) = &l.relay_id {
                options.push(DhcpOption::RelayId(r.clone()));
            }
            options.push(DhcpOption::RelayMsg(Box::new(inner)));
            inner = Message::Relay(RelayMessage {
                msg_type: MessageType::RelayForw,
                hop_count: l.hop_count,
                link_address: l.link_address,
                peer_address: l.peer_address,
                options,
            });
        }
        let mut cd = vec![
            DhcpOption::ClientId(b.client_duid.clone()),
            DhcpOption::IaPrefix(IaPrefix {
                preferred_lifetime: b.preferred_lifetime,
                valid_lifetime: b.valid_lifetime,
                prefix,
                options: vec![],
            }),
            DhcpOption::CltTime(b.clt_time),
        ];
        if let Message::Relay(message) = inner {
            cd.push(DhcpOption::LqRelayData {
                peer_address: message.peer_address,
                message,
            });
        }
        let bytes = Message::Client(ClientMessage {
            msg_type: MessageType::LeasequeryData,
            transaction_id: 7,
            options: vec![DhcpOption::ClientData(cd)],
        })
        .to_bytes();
        let msg = crate::proto::MessageView::parse_validated(&bytes).unwrap();
        let opts = crate::proto::binding::client_data_options(&msg)
            .next()
            .unwrap();
        let data = crate::proto::ClientData::parse(opts).unwrap();
        let borrowed = data.bindings().next().unwrap();
        planner.claim(&borrowed, max)
    }

    proptest! {
        /// The planner gives exactly what the reference, route_for, gives:
        /// the same next hop and interface, or the same refusal; and the
        /// claim's path is planned exactly when the route is.
        #[test]
        fn planner_agrees_with_route_for(b in arb_binding(), by_link in any::<bool>()) {
            let settings = || {
                let mut s = settings();
                if by_link {
                    s.our_layer = OurLayer::LinkAddress(vec![
                        "2001:db8:1::1".parse().unwrap(),
                        "2001:db8:2::1".parse().unwrap(),
                    ]);
                }
                s
            };
            let planner = Planner::new(settings(), interfaces());
            let obs = Observed { server: ServerIndex::default(), received: 0, binding: b.clone() };
            let want = route_for(&settings(), &obs, None, &interfaces(), 0);
            let got = planner.plan(&b, None);
            match (&got, &want) {
                (Ok(p), Ok(r)) => {
                    prop_assert_eq!(p.gateway, r.gateway);
                    prop_assert_eq!(planner.interfaces()[p.iface as usize].index, r.ifindex);
                }
                (Err(g), Err(w)) => prop_assert_eq!(g, w),
                (g, w) => prop_assert!(false, "planner {:?}, route_for {:?}", g, w),
            }
            let claim = planner.claim(&b, usize::MAX).unwrap();
            prop_assert_eq!(&claim.client.as_bytes(), &b.client_duid.as_bytes());
            match (&claim.path, want) {
                (Path::Via { gateway, iface }, Ok(r)) => {
                    prop_assert_eq!(*gateway, r.gateway);
                    prop_assert_eq!(planner.interfaces()[*iface as usize].index, r.ifindex);
                }
                (Path::Whole(w), Err(reason)) => {
                    // Kept for the end, and refused there for the same reason.
                    let obs = Observed { server: ServerIndex::default(), received: 0, binding: (**w).clone() };
                    prop_assert_eq!(route_for(&settings(), &obs, None, &interfaces(), 0), Err(reason.clone()));
                    prop_assert_eq!(planner.plan(&**w, None), Err(reason));
                }
                (p, w) => prop_assert!(false, "planner {:?}, route_for {:?}", p, w),
            }
        }

        /// The borrowed and owned paths make the same claim.
        #[test]
        fn borrowed_and_owned_claims_agree(b in arb_binding(), by_link in any::<bool>()) {
            let mut s = settings();
            if by_link {
                s.our_layer =
                    OurLayer::LinkAddress(vec!["2001:db8:2::1".parse().unwrap()]);
            }
            let planner = Planner::new(s, interfaces());
            let from_ref = borrowed_claim(&planner, &b, 32).unwrap();
            prop_assert_eq!(from_ref, planner.claim(&b, 32).unwrap());
        }
    }

    #[test]
    fn relay_depth_is_counted() {
        let planner = Planner::new(settings(), interfaces());
        let layer = RelayLayer {
            hop_count: 0,
            link_address: "2001:db8:1::1".parse().unwrap(),
            peer_address: "fe80::2".parse().unwrap(),
            interface_id: None,
            remote_id: None,
            relay_id: None,
        };
        let b = Binding {
            client_duid: "0001".parse().unwrap(),
            lease: LeaseKind::Prefix("2001:db8:8000:100::/56".parse().unwrap()),
            preferred_lifetime: 1,
            valid_lifetime: 2,
            clt_time: 0,
            relay: vec![layer; 3],
        };
        assert_eq!(borrowed_claim(&planner, &b, 2), Err(3));
        assert!(borrowed_claim(&planner, &b, 3).is_ok());
    }

    #[test]
    fn long_duids_go_to_the_heap() {
        let short = ClientId::new(&[1; INLINE_DUID]);
        assert!(matches!(short, ClientId::Inline { .. }));
        assert_eq!(short.as_bytes(), &[1; INLINE_DUID]);
        let long = ClientId::new(&[2; 130]);
        assert!(matches!(long, ClientId::Heap(_)));
        assert_eq!(long.as_bytes(), &[2; 130][..]);
    }
}
