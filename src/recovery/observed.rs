//! A binding as one server reported it, and the clients' addresses kept
//! for the next-hop fallback.
//!
//! The prefix table keeps whole bindings only for the rare cases
//! (addresses, bindings without relay data, prefixes refused on the
//! connection task, long DUIDs): those are [`Observed`], ranked by the one
//! order of [`super::rank`].

use super::rank::{self, Millis, Rank};
use crate::proto::{Binding, Duid, LeaseKind, ServerIndex};
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::net::Ipv6Addr;

/// A binding as one server reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// The server, by its position in the configuration.
    pub server: ServerIndex,
    /// When the message carrying it was received.
    pub received: Millis,
    /// The binding.
    pub binding: Binding,
}

impl Observed {
    /// When the server last heard from the client, on our clock (may be
    /// negative when CLT_TIME goes back further than the recovery's start).
    pub fn last_transaction(&self) -> i64 {
        rank::last_transaction(self.received, self.binding.clt_time)
    }

    /// When the lease runs out, on our clock.
    pub fn expires(&self) -> Millis {
        rank::expiry(self.received, self.binding.valid_lifetime)
    }

    /// Remaining valid lifetime in whole seconds at `now` (0 when expired).
    pub fn remaining_valid(&self, now: Millis) -> u32 {
        rank::remaining_secs(self.expires(), now)
    }

    /// The binding's [`Rank`] among the claims on its prefix.
    pub fn rank_key(&self) -> Rank<'_> {
        Rank::new(
            self.received,
            self.binding.clt_time,
            self.binding.valid_lifetime,
            self.server,
            self.binding.client_duid.as_bytes(),
        )
    }

    /// The total order that picks the winner: greater is better. The
    /// [`Rank`], then, for a server repeating itself, the smaller binding.
    pub fn rank(&self, other: &Observed) -> Ordering {
        self.rank_key()
            .cmp(&other.rank_key())
            .then_with(|| other.binding.cmp(&self.binding))
    }
}

/// The clients' address bindings (IA_NA), each client's most recent first:
/// the gateway of a prefix without relay data when
/// `next_hop_fallback = "client-address"`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Addresses(BTreeMap<Duid, Vec<Observed>>);

impl Addresses {
    /// Keep an address binding, in its client's list by [`Observed::rank`].
    pub fn add(&mut self, obs: Observed) {
        let list = self.0.entry(obs.binding.client_duid.clone()).or_default();
        if !list.contains(&obs) {
            list.push(obs);
            list.sort_by(|a, b| b.rank(a));
        }
    }

    /// The most recent address of `client`, if any.
    pub fn latest(&self, client: &Duid) -> Option<Ipv6Addr> {
        self.0
            .get(client)?
            .iter()
            .find_map(|o| match o.binding.lease {
                LeaseKind::Address(a) => Some(a),
                LeaseKind::Prefix(_) => None,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn na(server: usize, received: Millis, addr: &str, clt: u32) -> Observed {
        Observed {
            server: ServerIndex::new(server).unwrap(),
            received,
            binding: Binding {
                client_duid: "01".parse().unwrap(),
                lease: LeaseKind::Address(addr.parse().unwrap()),
                preferred_lifetime: 1800,
                valid_lifetime: 3600,
                clt_time: clt,
                relay: Vec::new(),
            },
        }
    }

    #[test]
    fn the_most_recent_address_is_the_latest_whatever_the_order() {
        let old = na(0, 1000, "2001:db8:1::10", 50);
        let new = na(1, 1000, "2001:db8:1::11", 5);
        for order in [[&old, &new], [&new, &old]] {
            let mut a = Addresses::default();
            for o in order {
                a.add(o.clone());
                a.add(o.clone());
            }
            assert_eq!(
                a.latest(&"01".parse().unwrap()),
                Some("2001:db8:1::11".parse().unwrap())
            );
            assert_eq!(a.latest(&"02".parse().unwrap()), None);
        }
        assert_eq!(new.remaining_valid(1000), 3600);
        assert_eq!(old.last_transaction(), 1000 - 50_000);
    }
}
