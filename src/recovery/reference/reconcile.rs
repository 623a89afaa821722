//! Reconciling the bindings of several servers (RFC 5007 s.4.3.4, pointed to
//! by RFC 5460 s.6.4). Pure and deterministic.
//!
//! Data that does not overlap is merged. When several bindings name the same
//! delegated prefix, the one with the most recent client transaction wins:
//! the largest `received - clt_time`, i.e. the smallest CLT_TIME as of when it
//! was received. Ties are broken by the later expiry, then by the server's
//! position in the configuration, then by client DUID, so the result never
//! depends on the order in which servers or messages arrived. Every
//! disagreement between servers about who holds a prefix is reported.
//! Bindings whose valid lifetime is zero or has run out are dropped.
//!
//! **This is the reference** (test builds only), on whole bindings: the
//! streaming prefix table ([`crate::recovery::table::PrefixTable`]) applies
//! the same order ([`crate::recovery::rank::Rank`]) incrementally to
//! compact claims while they stream in, and property tests hold it to what
//! [`reconcile`] followed by [`super::plan::plan`] gives.

use crate::proto::{Duid, LeaseKind, ServerIndex};
use crate::recovery::observed::{Addresses, Observed};
use crate::recovery::rank::Millis;
use crate::recovery::table::Conflict;
use ipnet::Ipv6Net;
use std::cmp::Ordering;
use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

/// What reconciliation keeps.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reconciled {
    /// The winning binding for each delegated prefix.
    pub prefixes: BTreeMap<Ipv6Net, Observed>,
    /// Each client's addresses (IA_NA), most recent first, for next-hop fallback.
    pub addresses: Addresses,
    /// Disagreements, sorted by prefix then servers.
    pub conflicts: Vec<Conflict>,
    /// Bindings dropped because their valid lifetime was zero or had run out.
    pub expired: usize,
}

/// What an offered binding did to the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// First binding for this prefix: it is now the best one.
    New,
    /// It beat the previous best for this prefix.
    Replaced,
    /// An earlier binding stays best.
    Kept,
    /// An address: kept for next-hop fallback.
    Address,
    /// Dropped: valid lifetime zero or run out.
    Expired,
}

/// Incremental reconciliation: offer bindings as they arrive, in any order;
/// the result is the same whatever the order.
#[derive(Debug, Default)]
pub struct Reconciler {
    out: Reconciled,
    /// Who claimed a prefix, for prefixes that more than one binding named.
    claimants: BTreeMap<Ipv6Net, Claims>,
}

/// The claims on one prefix, compact while every claim names the same client
/// (the common case: several servers agree).
#[derive(Debug)]
enum Claims {
    /// Every claim named the best binding's client; bit `s` = server `s` claimed it.
    Agree(u64),
    /// Every distinct (server, client) that claimed the prefix.
    Contested(Vec<(ServerIndex, Duid)>),
}

impl Claims {
    fn add(&mut self, server: ServerIndex, client: &Duid, agreed_client: &Duid) {
        if let Claims::Agree(mask) = self {
            if client == agreed_client {
                *mask |= server.bit();
                return;
            }
            let mask = *mask;
            *self = Claims::Contested(
                ServerIndex::in_mask(mask)
                    .map(|s| (s, agreed_client.clone()))
                    .collect(),
            );
        }
        if let Claims::Contested(list) = self {
            if !list.iter().any(|(s, c)| *s == server && c == client) {
                list.push((server, client.clone()));
            }
        }
    }
}

impl Reconciler {
    /// An empty reconciler.
    pub fn new() -> Self {
        Self::default()
    }

    /// Take one binding into account. `now` is the current time on the same clock.
    pub fn offer(&mut self, obs: Observed, now: Millis) -> Offer {
        if obs.binding.valid_lifetime == 0 || obs.expires() <= now {
            self.out.expired += 1;
            return Offer::Expired;
        }
        match obs.binding.lease {
            LeaseKind::Address(_) => {
                self.out.addresses.add(obs);
                Offer::Address
            }
            LeaseKind::Prefix(prefix) => match self.out.prefixes.entry(prefix.trunc()) {
                Entry::Vacant(v) => {
                    v.insert(obs);
                    Offer::New
                }
                Entry::Occupied(mut o) => {
                    let prefix = *o.key();
                    let best = o.get();
                    // While all claims agree, best's client is the agreed one.
                    let claims = self.claimants.entry(prefix).or_insert_with(|| {
                        let mut c = Claims::Agree(0);
                        c.add(
                            best.server,
                            &best.binding.client_duid,
                            &best.binding.client_duid,
                        );
                        c
                    });
                    claims.add(
                        obs.server,
                        &obs.binding.client_duid,
                        &best.binding.client_duid,
                    );
                    if obs.rank(best) == Ordering::Greater {
                        o.insert(obs);
                        Offer::Replaced
                    } else {
                        Offer::Kept
                    }
                }
            },
        }
    }

    /// The result. A conflict is reported for every (server, client) that
    /// claimed a prefix for another client than the winner's.
    pub fn finish(mut self) -> Reconciled {
        let mut conflicts = Vec::new();
        for (prefix, claims) in self.claimants {
            let Some(win) = self.out.prefixes.get(&prefix) else {
                continue;
            };
            // A prefix still in agreement has no conflict.
            let Claims::Contested(list) = claims else {
                continue;
            };
            for (server, client) in list {
                if client != win.binding.client_duid {
                    conflicts.push(Conflict {
                        prefix,
                        winner: (win.server, win.binding.client_duid.clone()),
                        loser: (server, client),
                    });
                }
            }
        }
        conflicts.sort_by(|a, b| (a.prefix, &a.loser).cmp(&(b.prefix, &b.loser)));
        self.out.conflicts = conflicts;
        self.out
    }
}

/// Reconcile a whole set of observed bindings at once.
pub fn reconcile(all: impl IntoIterator<Item = Observed>, now: Millis) -> Reconciled {
    let mut r = Reconciler::new();
    for o in all {
        r.offer(o, now);
    }
    r.finish()
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{pd, sv};
    use super::*;
    use proptest::prelude::*;

    fn na(server: u16, received: Millis, client: &str, addr: &str, clt: u32) -> Observed {
        let mut o = pd(server, received, client, "2001:db8::/64", clt, 3600);
        o.binding.lease = LeaseKind::Address(addr.parse().unwrap());
        o
    }

    #[test]
    fn disjoint_data_is_merged() {
        let r = reconcile(
            [
                pd(0, 1000, "01", "2001:db8:100::/56", 5, 3600),
                pd(1, 1000, "02", "2001:db8:200::/56", 5, 3600),
            ],
            1000,
        );
        assert_eq!(r.prefixes.len(), 2);
        assert!(r.conflicts.is_empty());
    }

    #[test]
    fn most_recent_transaction_wins_across_receive_times() {
        // Server 0 answered at t=10s with CLT 30 (last heard at -20s);
        // server 1 answered at t=40s with CLT 55 (last heard at -15s): server 1 is newer.
        let a = pd(0, 10_000, "01", "2001:db8:100::/56", 30, 3600);
        let b = pd(1, 40_000, "02", "2001:db8:100::/56", 55, 3600);
        let r = reconcile([a.clone(), b.clone()], 40_000);
        let w = &r.prefixes[&"2001:db8:100::/56".parse().unwrap()];
        assert_eq!(w.server.get(), 1);
        assert_eq!(
            r.conflicts,
            vec![Conflict {
                prefix: "2001:db8:100::/56".parse().unwrap(),
                winner: (sv(1), "02".parse().unwrap()),
                loser: (sv(0), "01".parse().unwrap()),
            }]
        );
        // A smaller CLT_TIME alone does not win if it was received much earlier.
        let c = pd(0, 10_000, "01", "2001:db8:100::/56", 26, 3600); // last heard at -16s
        let r = reconcile([c, b], 40_000);
        assert_eq!(
            r.prefixes[&"2001:db8:100::/56".parse().unwrap()]
                .server
                .get(),
            1
        );
    }

    #[test]
    fn ties_are_deterministic() {
        let a = pd(0, 1000, "01", "2001:db8:100::/56", 5, 3600);
        let b = pd(1, 1000, "02", "2001:db8:100::/56", 5, 3600);
        // Same transaction time: the later expiry wins.
        let mut longer = b.clone();
        longer.binding.valid_lifetime = 7200;
        assert_eq!(
            reconcile([a.clone(), longer.clone()], 1000)
                .prefixes
                .values()
                .next()
                .unwrap()
                .server
                .get(),
            1
        );
        assert_eq!(
            reconcile([longer, a.clone()], 1000)
                .prefixes
                .values()
                .next()
                .unwrap()
                .server
                .get(),
            1
        );
        // Full tie: the server configured first wins, whatever the order.
        assert_eq!(
            reconcile([a.clone(), b.clone()], 1000)
                .prefixes
                .values()
                .next()
                .unwrap()
                .server
                .get(),
            0
        );
        assert_eq!(
            reconcile([b, a], 1000)
                .prefixes
                .values()
                .next()
                .unwrap()
                .server
                .get(),
            0
        );
    }

    #[test]
    fn lifetimes() {
        let zero = pd(0, 1000, "01", "2001:db8:100::/56", 5, 0);
        let gone = pd(0, 1000, "02", "2001:db8:200::/56", 5, 10); // expires at 11s
        let fine = pd(0, 1000, "03", "2001:db8:300::/56", 5, 3600);
        let r = reconcile([zero, gone.clone(), fine.clone()], 11_000);
        assert_eq!(r.expired, 2);
        assert_eq!(r.prefixes.len(), 1);
        assert_eq!(fine.remaining_valid(11_000), 3590);
        assert_eq!(gone.remaining_valid(11_000), 0);
    }

    #[test]
    fn two_agreeing_servers_against_a_third_are_both_reported() {
        let a = pd(0, 1000, "01", "2001:db8:100::/56", 9, 3600);
        let b = pd(1, 1000, "01", "2001:db8:100::/56", 8, 3600);
        let c = pd(2, 1000, "02", "2001:db8:100::/56", 1, 3600);
        let want: Vec<(usize, Duid)> = vec![(0, "01".parse().unwrap()), (1, "01".parse().unwrap())];
        for order in [[&a, &b, &c], [&c, &a, &b], [&b, &c, &a]] {
            let r = reconcile(order.iter().map(|o| (*o).clone()), 1000);
            let losers: Vec<(usize, Duid)> = r
                .conflicts
                .iter()
                .map(|x| (x.loser.0.get(), x.loser.1.clone()))
                .collect();
            assert_eq!(losers, want);
            assert!(r
                .conflicts
                .iter()
                .all(|x| x.winner == (sv(2), "02".parse().unwrap())));
        }
    }

    #[test]
    fn same_client_on_two_servers_is_no_conflict() {
        let a = pd(0, 1000, "01", "2001:db8:100::/56", 5, 3600);
        let b = pd(1, 1000, "01", "2001:db8:100::/56", 9, 3600);
        let r = reconcile([a, b], 1000);
        assert!(r.conflicts.is_empty());
        assert_eq!(r.prefixes.values().next().unwrap().server.get(), 0);
    }

    #[test]
    fn host_bits_are_cleared_in_the_key() {
        let a = pd(0, 1000, "01", "2001:db8:100::1/56", 5, 3600);
        let r = reconcile([a], 1000);
        assert!(r
            .prefixes
            .contains_key(&"2001:db8:100::/56".parse().unwrap()));
    }

    #[test]
    fn addresses_kept_most_recent_first() {
        let r = reconcile(
            [
                na(0, 1000, "01", "2001:db8:1::10", 50),
                na(1, 1000, "01", "2001:db8:1::11", 5),
                pd(0, 1000, "01", "2001:db8:100::/56", 5, 3600),
            ],
            1000,
        );
        assert_eq!(
            r.addresses.latest(&"01".parse().unwrap()),
            Some("2001:db8:1::11".parse().unwrap())
        );
        assert_eq!(r.addresses.latest(&"02".parse().unwrap()), None);
    }

    fn arb_obs() -> impl Strategy<Value = Observed> {
        (
            0u16..3,
            0u64..5000,
            0u8..4,
            0u8..6,
            0u32..100,
            prop_oneof![Just(0u32), 1u32..10, 1000u32..2000],
        )
            .prop_map(|(server, received, client, prefix, clt, valid)| {
                pd(
                    server,
                    received,
                    &format!("0{client}"),
                    &format!("2001:db8:{prefix}00::/56"),
                    clt,
                    valid,
                )
            })
    }

    proptest! {
        #[test]
        fn order_does_not_matter(obs in proptest::collection::vec(arb_obs(), 0..40), seed in any::<u64>()) {
            let forward = reconcile(obs.clone(), 5000);
            let mut shuffled = obs.clone();
            // Deterministic shuffle from the seed.
            let mut s = seed | 1;
            for i in (1..shuffled.len()).rev() {
                s ^= s << 13; s ^= s >> 7; s ^= s << 17;
                shuffled.swap(i, (s % (i as u64 + 1)) as usize);
            }
            let backward: Vec<_> = obs.into_iter().rev().collect();
            prop_assert_eq!(&forward, &reconcile(shuffled, 5000));
            prop_assert_eq!(&forward, &reconcile(backward, 5000));
        }
    }
}
