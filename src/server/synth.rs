//! Synthetic bindings: N clients behind a few relays, deterministic for a seed.
//!
//! Layout: `links` client links numbered from 0: link j (j = 0..links) is
//! `2001:db8:0:(j+1)::/64` ([`link_prefix`]), with the relay link-address
//! `2001:db8:0:(j+1)::1` and the interface-id `ge-0/0/j`; relay R
//! (R = 0..relays) serves the links with `j = R (mod relays)`; relay R's RELAY_ID is the given DUID
//! with R added to its last two octets. Client K has DUID-LL
//! `00030001 02 00 KKKKKKKK`, a link-local peer-address, is on a link chosen by
//! the generator and holds either an IA_NA address in its link's /64 or the
//! K-th delegated prefix of the pool. Each relay layer carries INTERFACE_ID
//! (`ge-0/0/j`), REMOTE_ID (enterprise 4491, `CM-<relay>-<n>` with n below
//! `remote_ids`) and RELAY_ID; a share of clients sits behind a second,
//! outer relay (hop-count 1, link-address ::, no RELAY_ID).

use super::store::LeaseRecord;
use crate::proto::{Duid, LeaseKind, RelayLayer};
use ipnet::Ipv6Net;
use std::net::Ipv6Addr;

/// Parameters of a synthetic binding set.
#[derive(Debug, Clone)]
pub struct SynthConfig {
    /// Number of bindings (one per client).
    pub count: u64,
    /// Generator seed.
    pub seed: u64,
    /// RELAY_ID of relay 0.
    pub relay_id: Duid,
    /// Number of relays (at least 1).
    pub relays: u32,
    /// Number of client links (at least 1).
    pub links: u32,
    /// Delegated-prefix pool.
    pub pool: Ipv6Net,
    /// Length of the delegated prefixes.
    pub delegated_len: u8,
    /// Share of clients with an IA_NA address instead of a prefix (0 to 1).
    pub ia_na_share: f64,
    /// Distinct remote-ids per relay (0: no REMOTE_ID).
    pub remote_ids: u32,
    /// Share of clients behind two relays (0 to 1).
    pub two_hop_share: f64,
    /// Preferred lifetime, seconds.
    pub preferred_lifetime: u32,
    /// Valid lifetime, seconds.
    pub valid_lifetime: u32,
    /// Unix time the bindings are made at; last transactions are up to an hour before.
    pub now: u64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            count: 1000,
            seed: 1,
            relay_id: Duid::new_en(32473, &[1, 0, 0, 0]),
            relays: 1,
            links: 4,
            pool: "2001:db8:8000::/33".parse().expect("valid"),
            delegated_len: 56,
            ia_na_share: 0.1,
            remote_ids: 16,
            two_hop_share: 0.0,
            preferred_lifetime: 43200,
            valid_lifetime: 86400,
            now: 0,
        }
    }
}

/// Why a synthetic set cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SynthError {
    /// The pool has fewer delegated prefixes than bindings asked for.
    #[error("pool {pool} holds {capacity} prefixes of length /{len}, fewer than the {count} bindings asked")]
    PoolTooSmall {
        /// The pool.
        pool: Ipv6Net,
        /// Delegated length.
        len: u8,
        /// Prefixes in the pool.
        capacity: u128,
        /// Bindings asked for.
        count: u64,
    },
    /// A parameter out of range.
    #[error("{0}")]
    Bad(String),
}

/// SplitMix64: small, fast, deterministic.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

/// The relay DUID of relay `r`: `base` with `r` added to its last two octets.
pub fn relay_duid(base: &Duid, r: u32) -> Duid {
    let mut b = base.as_bytes().to_vec();
    let n = b.len();
    if n >= 2 {
        let v = u16::from_be_bytes([b[n - 2], b[n - 1]]).wrapping_add(r as u16);
        b[n - 2..].copy_from_slice(&v.to_be_bytes());
    }
    Duid::from_bytes(b)
}

/// The link prefix of link `j` (0-based): `2001:db8:0:(j+1)::/64`.
pub fn link_prefix(j: u32) -> Ipv6Net {
    let a = (0x2001_0db8u128 << 96) | (u128::from(j) + 1) << 64;
    Ipv6Net::new(Ipv6Addr::from(a), 64).expect("valid")
}

/// Generates the bindings one at a time.
#[derive(Debug, Clone)]
pub struct Synth {
    cfg: SynthConfig,
    rng: Rng,
    k: u64,
    relay_ids: Vec<Duid>,
}

impl Synth {
    /// A generator; checks the parameters.
    pub fn new(cfg: SynthConfig) -> Result<Self, SynthError> {
        if cfg.relays == 0 || cfg.links == 0 {
            return Err(SynthError::Bad(
                "relays and links must be at least 1".into(),
            ));
        }
        if cfg.delegated_len < cfg.pool.prefix_len() || cfg.delegated_len > 128 {
            return Err(SynthError::Bad(format!(
                "delegated length /{} does not fit pool {}",
                cfg.delegated_len, cfg.pool
            )));
        }
        if !(0.0..=1.0).contains(&cfg.ia_na_share) || !(0.0..=1.0).contains(&cfg.two_hop_share) {
            return Err(SynthError::Bad("shares must be between 0 and 1".into()));
        }
        let bits = u32::from(cfg.delegated_len - cfg.pool.prefix_len());
        let capacity = if bits >= 127 {
            u128::MAX
        } else {
            1u128 << bits
        };
        if u128::from(cfg.count) > capacity {
            return Err(SynthError::PoolTooSmall {
                pool: cfg.pool,
                len: cfg.delegated_len,
                capacity,
                count: cfg.count,
            });
        }
        if cfg.preferred_lifetime > cfg.valid_lifetime {
            return Err(SynthError::Bad(
                "preferred lifetime over valid lifetime".into(),
            ));
        }
        let relay_ids = (0..cfg.relays)
            .map(|r| relay_duid(&cfg.relay_id, r))
            .collect();
        Ok(Synth {
            rng: Rng(cfg.seed),
            cfg,
            k: 0,
            relay_ids,
        })
    }

    /// The RELAY_ID of each relay.
    pub fn relay_ids(&self) -> &[Duid] {
        &self.relay_ids
    }
}

impl Iterator for Synth {
    type Item = LeaseRecord;

    fn next(&mut self) -> Option<LeaseRecord> {
        let c = &self.cfg;
        if self.k >= c.count {
            return None;
        }
        let k = self.k;
        self.k += 1;
        let j = self.rng.below(u64::from(c.links)) as u32;
        let r = j % c.relays;
        let link = link_prefix(j);
        let link_addr = Ipv6Addr::from(u128::from(link.network()) | 1);
        let mut mac = [2u8, 0, 0, 0, 0, 0];
        mac[2..].copy_from_slice(&(k as u32).to_be_bytes());
        let client_duid = Duid::new_ll(1, &mac);
        // fe80::KKKK:KKKK style link-local, unique per client.
        let peer = Ipv6Addr::from((0xfe80u128 << 112) | (1u128 << 48) | u128::from(k));
        let lease = if self.rng.chance(c.ia_na_share) {
            LeaseKind::Address(Ipv6Addr::from(
                u128::from(link.network()) | 0x1_0000_0000 | u128::from(k),
            ))
        } else {
            let shift = 128 - u32::from(c.delegated_len);
            let p = u128::from(c.pool.network()) | (u128::from(k) << shift);
            LeaseKind::Prefix(Ipv6Net::new(Ipv6Addr::from(p), c.delegated_len).expect("valid"))
        };
        let remote_id = (c.remote_ids > 0).then(|| {
            let n = self.rng.below(u64::from(c.remote_ids));
            let mut v = 4491u32.to_be_bytes().to_vec();
            v.extend_from_slice(format!("CM-{r}-{n}").as_bytes());
            v
        });
        let mut relay = Vec::with_capacity(2);
        if self.rng.chance(c.two_hop_share) {
            relay.push(RelayLayer {
                hop_count: 1,
                link_address: Ipv6Addr::UNSPECIFIED,
                peer_address: Ipv6Addr::from((0x2001_0db8_ffffu128 << 80) | (u128::from(r) + 1)),
                interface_id: Some(b"uplink-1".to_vec()),
                remote_id: None,
                relay_id: None,
            });
        }
        relay.push(RelayLayer {
            hop_count: 0,
            link_address: link_addr,
            peer_address: peer,
            interface_id: Some(format!("ge-0/0/{j}").into_bytes()),
            remote_id,
            relay_id: Some(self.relay_ids[r as usize].clone()),
        });
        let age = self.rng.below(3600);
        let cltt = c.now.saturating_sub(age);
        Some(LeaseRecord {
            client_duid,
            lease,
            cltt,
            preferred_until: cltt + u64::from(c.preferred_lifetime),
            valid_until: cltt + u64::from(c.valid_lifetime),
            relay,
            reclaimed: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_shaped() {
        let cfg = SynthConfig {
            count: 500,
            seed: 7,
            relays: 2,
            links: 4,
            two_hop_share: 0.1,
            now: 1_000_000,
            ..Default::default()
        };
        let a: Vec<_> = Synth::new(cfg.clone()).unwrap().collect();
        let b: Vec<_> = Synth::new(cfg.clone()).unwrap().collect();
        assert_eq!(a, b);
        let c: Vec<_> = Synth::new(SynthConfig { seed: 8, ..cfg })
            .unwrap()
            .collect();
        assert_ne!(a, c);
        assert_eq!(a.len(), 500);
        let na = a
            .iter()
            .filter(|r| matches!(r.lease, LeaseKind::Address(_)))
            .count();
        assert!((20..100).contains(&na), "{na}");
        assert!(a.iter().any(|r| r.relay.len() == 2));
        for r in &a {
            let inner = r.relay.last().unwrap();
            let j = (u128::from(inner.link_address) >> 64 & 0xffff) as u32 - 1;
            assert_eq!(
                inner.relay_id.as_ref().unwrap(),
                &relay_duid(&SynthConfig::default().relay_id, j % 2)
            );
            // Link j (from 0) is 2001:db8:0:(j+1)::/64, interface-id ge-0/0/j,
            // as the module documentation and docs/lab-server.md say.
            assert_eq!(
                u128::from(link_prefix(j).network()) | 1,
                u128::from(inner.link_address)
            );
            assert_eq!(
                inner.interface_id.as_deref(),
                Some(format!("ge-0/0/{j}").as_bytes())
            );
        }
        assert_eq!(link_prefix(0).to_string(), "2001:db8:0:1::/64");
        let small = SynthConfig {
            count: 300,
            pool: "2001:db8:8000::/48".parse().unwrap(),
            ..Default::default()
        };
        assert!(matches!(
            Synth::new(small),
            Err(SynthError::PoolTooSmall { .. })
        ));
    }
}
