//! The prefix table's storage: one fixed-size slot per delegated prefix in
//! a vector, a hash index of slot numbers to find it, and the arena of
//! client DUIDs.

use super::super::rank::Millis;
use crate::proto::ServerIndex;
use crate::routes::same_lifetime;
use hashbrown::{DefaultHashBuilder, HashTable};
use ipnet::Ipv6Net;
use std::hash::BuildHasher;
use std::net::Ipv6Addr;

/// Lifetimes within this many seconds count as equal (they count down in step).
pub const EXPIRY_SLACK: u32 = 30;

/// Where a slot's prefix stands with the claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Best {
    /// No claim names the prefix: only a listed or a foreign route did.
    Unbound,
    /// The best claim's route was planned on arrival: it is the slot's route.
    Planned,
    /// The best claim is kept whole in the table's deferred claims, to be
    /// planned at the end.
    Deferred,
}

/// What the kernel holds at a slot's key, as far as this run knows. `listed`
/// says whether one of our routes was listed there at the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kernel {
    /// Nothing of ours, nothing of anyone's.
    Absent,
    /// Our route listed at the start, untouched: the slot's route is it.
    Listed,
    /// The route this run sent last: the slot's route is it.
    Sent {
        /// A route of ours was listed there at the start.
        listed: bool,
    },
    /// The table refused the route this run sent last (the slot's route).
    Refused {
        /// A route of ours was listed there at the start.
        listed: bool,
    },
    /// This run asked for the removal of our route listed at the start
    /// (the prune).
    Removed,
    /// Another's route holds the key (another protocol, or a shape we never
    /// install): never touched; a claim on the prefix is a foreign conflict.
    Foreign,
}

impl Kernel {
    /// One of our routes was listed at the key at the start (and is not
    /// known to be gone).
    pub(super) fn listed(self) -> bool {
        matches!(
            self,
            Kernel::Listed | Kernel::Sent { listed: true } | Kernel::Refused { listed: true }
        )
    }
}

/// A route as a slot holds it (the table, protocol and metric are the
/// settings'): next hop, interface position, lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SlotRoute {
    /// Next hop (octets: a slot stays 4-aligned and small).
    pub(super) gateway: Ipv6Addr,
    /// Position of the interface in the planner's interfaces.
    pub(super) iface: u32,
    /// Lifetime in seconds (`None`: no expiry).
    pub(super) expires: Option<u32>,
}

impl SlotRoute {
    /// Same next hop and interface, lifetimes within [`EXPIRY_SLACK`].
    pub(super) fn same(&self, o: &SlotRoute) -> bool {
        self.same_path(o) && same_lifetime(self.expires, o.expires, EXPIRY_SLACK)
    }

    pub(super) fn same_path(&self, o: &SlotRoute) -> bool {
        self.gateway == o.gateway && self.iface == o.iface
    }
}

/// One delegated prefix: a claim names it, or a route was listed for it at
/// the start, or both.
#[derive(Debug, Clone)]
pub(super) struct Slot {
    /// The prefix's address (host bits clear), high and low halves.
    pub(super) addr: [u64; 2],
    /// The best claim's last transaction and expiry ([`Rank`], ms).
    pub(super) last_tx: i64,
    pub(super) expires: Millis,
    /// While not `contested`: the servers whose claims all name the best
    /// claim's client. Once they differ, every claim is in
    /// the table's contested claims.
    pub(super) agree: u64,
    /// The route: planned for the best claim, or as in the kernel (see
    /// [`Kernel`]).
    pub(super) route: SlotRoute,
    /// Position of the best claim's client DUID in the arena.
    pub(super) client: u32,
    /// Server of the best claim.
    pub(super) server: ServerIndex,
    /// Prefix length.
    pub(super) len: u8,
    pub(super) best: Best,
    pub(super) kernel: Kernel,
    pub(super) contested: bool,
}

pub(super) fn split(a: Ipv6Addr) -> [u64; 2] {
    let v = u128::from(a);
    [(v >> 64) as u64, v as u64]
}

pub(super) fn join(a: [u64; 2]) -> Ipv6Addr {
    Ipv6Addr::from((u128::from(a[0]) << 64) | u128::from(a[1]))
}

impl Slot {
    pub(super) fn empty(addr: [u64; 2], len: u8) -> Self {
        Slot {
            addr,
            last_tx: 0,
            expires: 0,
            agree: 0,
            route: SlotRoute {
                gateway: Ipv6Addr::UNSPECIFIED,
                iface: 0,
                expires: None,
            },
            client: 0,
            server: ServerIndex::default(),
            len,
            best: Best::Unbound,
            kernel: Kernel::Absent,
            contested: false,
        }
    }

    pub(super) fn prefix(&self) -> Ipv6Net {
        Ipv6Net::new(join(self.addr), self.len).expect("length checked on arrival")
    }
}

/// Client DUIDs, one after the other, each preceded by its length (two
/// octets: an option body can be that long, even if a DUID should not).
#[derive(Debug, Default)]
pub(super) struct Arena(Vec<u8>);

impl Arena {
    pub(super) fn push(&mut self, d: &[u8]) -> u32 {
        let at = self.0.len();
        let d = &d[..d.len().min(usize::from(u16::MAX))];
        self.0.extend_from_slice(&(d.len() as u16).to_ne_bytes());
        self.0.extend_from_slice(d);
        u32::try_from(at).unwrap_or(u32::MAX)
    }

    pub(super) fn get(&self, at: u32) -> &[u8] {
        let at = at as usize;
        let Some(&[a, b]) = self
            .0
            .get(at..at + 2)
            .and_then(|s| <&[u8; 2]>::try_from(s).ok())
        else {
            return &[];
        };
        let len = usize::from(u16::from_ne_bytes([a, b]));
        self.0.get(at + 2..at + 2 + len).unwrap_or(&[])
    }
}

/// The slots and the hash index that finds them by prefix.
#[derive(Debug, Default)]
pub(super) struct Slots {
    pub(super) slots: Vec<Slot>,
    pub(super) index: HashTable<u32>,
    pub(super) hasher: DefaultHashBuilder,
}

impl Slots {
    /// The slot of the prefix `addr`/`len`, made empty when there is none;
    /// and whether it was just made.
    pub(super) fn get_or_insert(&mut self, addr: [u64; 2], len: u8) -> (u32, bool) {
        let hash = self.hasher.hash_one((addr, len));
        let slots = &self.slots;
        if let Some(&i) = self.index.find(hash, |&i| {
            let s = &slots[i as usize];
            s.addr == addr && s.len == len
        }) {
            return (i, false);
        }
        let i = u32::try_from(self.slots.len()).expect("fewer than 2^32 prefixes");
        self.slots.push(Slot::empty(addr, len));
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.index.insert_unique(hash, i, |&j| {
            let s = &slots[j as usize];
            hasher.hash_one((s.addr, s.len))
        });
        (i, true)
    }

    pub(super) fn find(&self, p: &Ipv6Net) -> Option<u32> {
        let (addr, len) = (split(p.addr()), p.prefix_len());
        let hash = self.hasher.hash_one((addr, len));
        self.index
            .find(hash, |&i| {
                let s = &self.slots[i as usize];
                s.addr == addr && s.len == len
            })
            .copied()
    }

    pub(super) fn len(&self) -> u32 {
        self.slots.len() as u32
    }
}

impl std::ops::Index<u32> for Slots {
    type Output = Slot;
    fn index(&self, i: u32) -> &Slot {
        &self.slots[i as usize]
    }
}

impl std::ops::IndexMut<u32> for Slots {
    fn index_mut(&mut self, i: u32) -> &mut Slot {
        &mut self.slots[i as usize]
    }
}
