//! The compact form of a binding that recovery works with, made on the
//! connection task as each binding is decoded.
//!
//! A [`Claim`] holds what reconciliation (RFC 5007 s.4.3.4) and the route
//! need, and nothing else: the lease, its lifetimes, CLT_TIME, the client's
//! DUID, and, for the common case of a delegated prefix relayed through us,
//! the route's next hop and interface already planned ([`Path::Via`]). The
//! [`Planner`] makes it straight from the zero-copy [`BindingRef`] with no
//! allocation for DUIDs of up to [`INLINE_DUID`] octets, so the installer's
//! thread only reconciles and queues. Everything else (addresses, bindings
//! without relay data, prefixes that planning refuses, long DUIDs) is kept
//! whole ([`Path::Whole`]) and decided at the end, where the reason of a
//! refusal is reported.
//!
//! The planning here gives exactly what [`PlanSettings::route_for`] gives
//! for a binding with relay data (a property test checks it).

use super::plan::{Interface, PlanSettings};
use crate::proto::binding::{BindingRef, RelayLayerRef};
use crate::proto::BindingMapper;
use crate::proto::{Binding, LeaseKind, RelayLayer};
use hashbrown::HashMap;
use ipnet::Ipv6Net;
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

/// Route planning for claims: the settings and the local interfaces, with
/// an index from interface-id to interface built once.
#[derive(Debug)]
pub struct Planner {
    settings: PlanSettings,
    interfaces: Vec<Interface>,
    /// interface-id octets to interface position (`None`: the configuration
    /// maps it to an interface that does not exist).
    by_id: HashMap<Vec<u8>, Option<u32>>,
    /// The delegation pools, as (network, length).
    pools: Vec<(u128, u8)>,
    /// Every local prefix, as (network, length, interface position), in
    /// the order of the interfaces.
    locals: Vec<(u128, u8, u32)>,
}

fn mask(len: u8) -> u128 {
    match len {
        0 => 0,
        l => !0u128 << (128 - u32::from(l.min(128))),
    }
}

/// `(net, len)` holds the prefix `addr`/`plen` (whose host bits may be set).
fn holds(net: u128, len: u8, addr: u128, plen: u8) -> bool {
    len <= plen && addr & mask(len) == net
}

impl Planner {
    /// Plan with `settings` over `interfaces`.
    pub fn new(settings: PlanSettings, interfaces: Vec<Interface>) -> Self {
        let pos = |name: &str| {
            interfaces
                .iter()
                .position(|i| &*i.name == name)
                .map(|p| p as u32)
        };
        let mut by_id: HashMap<Vec<u8>, Option<u32>> = interfaces
            .iter()
            .enumerate()
            .map(|(p, i)| (i.name.as_bytes().to_vec(), Some(p as u32)))
            .collect();
        // A mapping wins over an interface of the same name as the id.
        for (id, name) in &settings.interface_map {
            by_id.insert(id.as_bytes().to_vec(), pos(name));
        }
        let net = |n: &Ipv6Net| (u128::from(n.trunc().addr()), n.prefix_len());
        let pools = settings.allowed_prefixes.iter().map(net).collect();
        let locals = interfaces
            .iter()
            .enumerate()
            .flat_map(|(p, i)| {
                i.addresses.iter().map(move |a| {
                    let (n, l) = net(a);
                    (n, l, p as u32)
                })
            })
            .collect();
        Planner {
            settings,
            interfaces,
            by_id,
            pools,
            locals,
        }
    }

    /// The settings.
    pub fn settings(&self) -> &PlanSettings {
        &self.settings
    }

    /// The local interfaces; [`Path::Via`] points into this list.
    pub fn interfaces(&self) -> &[Interface] {
        &self.interfaces
    }

    /// The interface for a layer, as `PlanSettings::route_for` picks it.
    fn interface_for(&self, interface_id: Option<&[u8]>, link: Ipv6Addr) -> Option<u32> {
        if let Some(found) = interface_id.and_then(|id| self.by_id.get(id)) {
            // `None`: mapped to an interface that does not exist; the
            // binding is kept whole and refused for it at the end.
            return *found;
        }
        if link.is_unspecified() {
            return None;
        }
        let link = u128::from(link);
        self.locals
            .iter()
            .find(|&&(n, l, _)| holds(n, l, link, 128))
            .map(|&(_, _, p)| p)
    }

    /// [`PlanSettings::check_prefix`], yes or no, on precomputed networks.
    fn prefix_ok(&self, prefix: &Ipv6Net) -> bool {
        let (addr, len) = (u128::from(prefix.addr()), prefix.prefix_len());
        len != 0
            && len >= self.settings.min_prefix_len
            && self.pools.iter().any(|&(n, l)| holds(n, l, addr, len))
            // It must not cover (or equal) a local prefix.
            && !self
                .locals
                .iter()
                .any(|&(n, l, _)| holds(addr & mask(len), len, n, l))
    }

    /// The route of `prefix` through the layer with this interface-id,
    /// link-address and peer-address, when planning accepts it.
    fn via(
        &self,
        prefix: &Ipv6Net,
        interface_id: Option<&[u8]>,
        link: Ipv6Addr,
        peer: Ipv6Addr,
    ) -> Option<Path> {
        if !self.prefix_ok(prefix) {
            return None;
        }
        let iface = self.interface_for(interface_id, link)?;
        let out = &self.interfaces[iface as usize];
        self.settings.check_next_hop(peer, out).ok()?;
        Some(Path::Via {
            gateway: peer,
            iface,
        })
    }

    /// The claim of a borrowed binding, or the number of layers of its
    /// relay chain when there are more than `max_relay_depth`.
    pub fn claim(&self, b: &BindingRef<'_>, max_relay_depth: usize) -> Result<Claim, usize> {
        let mut depth = 0usize;
        let mut ours: Option<RelayLayerRef<'_>> = None;
        let mut first: Option<RelayLayerRef<'_>> = None;
        if let Some(chain) = &b.relay {
            for l in chain.layers() {
                depth += 1;
                if first.is_none() {
                    first = Some(l);
                }
                if ours.is_none() && l.relay_id == Some(self.settings.relay_id.as_bytes()) {
                    ours = Some(l);
                }
            }
        }
        if depth > max_relay_depth {
            return Err(depth);
        }
        // Our layer, or the only layer when it carries no Relay-ID (plan::our_layer).
        let layer = ours.or(first.filter(|l| depth == 1 && l.relay_id.is_none()));
        let via = match (b.lease, layer) {
            (LeaseKind::Prefix(p), Some(l)) => {
                self.via(&p, l.interface_id, l.link_address, l.peer_address)
            }
            _ => None,
        };
        let path = match via {
            Some(v) => v,
            None => Path::Whole(Box::new(self.trimmed(b.to_binding()))),
        };
        Ok(Claim {
            lease: b.lease,
            valid_lifetime: b.valid_lifetime,
            clt_time: b.clt_time,
            client: ClientId::new(b.client_duid),
            path,
        })
    }

    /// The claim of an owned binding.
    pub fn claim_owned(&self, b: Binding) -> Claim {
        let layer = super::plan::our_layer(&b.relay, &self.settings.relay_id);
        let via = match (b.lease, layer) {
            (LeaseKind::Prefix(p), Some(l)) => self.via(
                &p,
                l.interface_id.as_deref(),
                l.link_address,
                l.peer_address,
            ),
            _ => None,
        };
        Claim {
            lease: b.lease,
            valid_lifetime: b.valid_lifetime,
            clt_time: b.clt_time,
            client: ClientId::new(b.client_duid.as_bytes()),
            path: match via {
                Some(v) => v,
                None => Path::Whole(Box::new(self.trimmed(b))),
            },
        }
    }

    /// Keep only what planning needs: the relay layer with our Relay-ID
    /// (planning takes a lone layer as ours), without its Remote-ID. A
    /// chain without our layer is kept whole, so that it is refused for the
    /// right reason.
    fn trimmed(&self, mut b: Binding) -> Binding {
        if let Some(i) = b
            .relay
            .iter()
            .position(|l| l.relay_id.as_ref() == Some(&self.settings.relay_id))
        {
            let mut ours: RelayLayer = b.relay.swap_remove(i);
            ours.relay_id = None;
            ours.remote_id = None;
            b.relay = vec![ours];
        }
        b
    }
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
    use super::super::plan::tests::OURS;
    use super::super::reconcile::Observed;
    use super::*;
    use crate::proto::Duid;
    use proptest::prelude::*;

    /// The planning tests' settings, and an id mapped to an interface that does not exist.
    fn settings() -> PlanSettings {
        let mut s = super::super::plan::tests::settings();
        s.interface_map
            .insert("ge-0/0/9".to_string(), "gone".to_string());
        s
    }

    /// The planning tests' links, and one named like that id, holding a
    /// prefix inside the pool.
    fn interfaces() -> Vec<Interface> {
        let mut i = super::super::plan::tests::interfaces();
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
        /// The planner accepts exactly what route_for accepts for a binding
        /// with relay data, with the same next hop and interface.
        #[test]
        fn planner_agrees_with_route_for(b in arb_binding()) {
            let planner = Planner::new(settings(), interfaces());
            let obs = Observed { server: 0, received: 0, binding: b.clone() };
            let want = settings().route_for(&obs, None, &interfaces(), 0).ok();
            let claim = planner.claim_owned(b.clone());
            prop_assert_eq!(&claim.client.as_bytes(), &b.client_duid.as_bytes());
            match (&claim.path, want) {
                (Path::Via { gateway, iface }, Some(r)) => {
                    prop_assert_eq!(*gateway, r.gateway);
                    prop_assert_eq!(planner.interfaces()[*iface as usize].index, r.ifindex);
                }
                (Path::Whole(w), None) => {
                    // Kept for the end, and refused there for a reason.
                    let obs = Observed { server: 0, received: 0, binding: (**w).clone() };
                    prop_assert!(settings().route_for(&obs, None, &interfaces(), 0).is_err());
                }
                (p, w) => prop_assert!(false, "planner {:?}, route_for {:?}", p, w),
            }
        }

        /// The borrowed and owned paths make the same claim.
        #[test]
        fn borrowed_and_owned_claims_agree(b in arb_binding()) {
            let planner = Planner::new(settings(), interfaces());
            let from_ref = borrowed_claim(&planner, &b, 32).unwrap();
            prop_assert_eq!(from_ref, planner.claim_owned(b));
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
