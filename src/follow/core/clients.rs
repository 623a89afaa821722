//! The client DUIDs snooping saw, by fingerprint: what the live view
//! reports beside a followed prefix, whose entry keeps only the 32-bit
//! fingerprint of its client's DUID ([`super::store::Entry::client`]).
//!
//! One arena of records (a length octet, then the DUID's octets) and a
//! hash table of their offsets: no allocation per DUID; 1 + its length
//! octets in the arena, about 5 in the table (4 and a control octet, over
//! the table's load factor). A record's fingerprint is not kept: it is
//! computed again from its octets (FNV-1a over a dozen octets) when the
//! table probes or grows. A fingerprint met with two different DUIDs is
//! marked ambiguous (the top bit of its offset): its DUID is unknown from
//! then on, never the wrong one. A DUID that cannot be kept whole (empty,
//! or over 255 octets: never from the wire, which stops at 130) leaves a
//! bare record of its fingerprint, ambiguous from the first.
//!
//! Records are never removed one by one: [`ClientDuids::retain`] copies
//! those still referenced into a new arena (the core does so at the end of
//! a resync, and when the records outnumber twice the followed prefixes).

use super::store::fingerprint_of;
use hashbrown::{DefaultHashBuilder, HashTable};
use std::hash::BuildHasher;

/// Offset bit: the fingerprint was met with two different DUIDs.
const AMBIGUOUS: u32 = 1 << 31;
/// Octets the arena may hold: every offset stays below [`AMBIGUOUS`].
const MAX_ARENA: usize = AMBIGUOUS as usize;
/// Length octet of a bare record: 4 octets of fingerprint (little-endian)
/// follow, no DUID.
const BARE: u8 = 0;
/// The arena grows by half its size at least, and by this at least.
const MIN_GROWTH: usize = 256;

/// What [`ClientDuids::note`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Noted {
    /// Kept (or known already, or marked ambiguous).
    Kept,
    /// The arena is full: compact, or give up ([`ClientDuids::blind`]).
    Full,
}

/// The client DUIDs, by fingerprint. See the [module documentation](self).
#[derive(Clone)]
pub(super) struct ClientDuids {
    arena: Vec<u8>,
    /// Offsets of records in `arena`, with the [`AMBIGUOUS`] bit.
    table: HashTable<u32>,
    hasher: DefaultHashBuilder,
    /// A DUID could not be kept (the arena full even after compaction):
    /// every DUID is unknown from then on, for no fingerprint can be
    /// vouched for any more.
    blind: bool,
    /// Octets the arena may hold ([`MAX_ARENA`]; tests lower it).
    limit: usize,
}

impl Default for ClientDuids {
    fn default() -> Self {
        ClientDuids {
            arena: Vec::new(),
            table: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
            blind: false,
            limit: MAX_ARENA,
        }
    }
}

impl std::fmt::Debug for ClientDuids {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientDuids")
            .field("records", &self.table.len())
            .field("octets", &self.arena.len())
            .field("blind", &self.blind)
            .finish()
    }
}

/// The record at `off` (its [`AMBIGUOUS`] bit ignored): its length octet
/// and what follows it.
fn record(arena: &[u8], off: u32) -> Option<(u8, &[u8])> {
    let at = (off & !AMBIGUOUS) as usize;
    let len = *arena.get(at)?;
    let body = if len == BARE { 4 } else { usize::from(len) };
    Some((len, arena.get(at + 1..at + 1 + body)?))
}

/// The fingerprint of the record at `off` (0: no record there).
fn record_fp(arena: &[u8], off: u32) -> u32 {
    match record(arena, off) {
        Some((BARE, b)) => <[u8; 4]>::try_from(b).map_or(0, u32::from_le_bytes),
        Some((_, duid)) => fingerprint_of(duid),
        None => 0,
    }
}

/// The octets of the record at `off`, its length octet included.
fn record_octets(arena: &[u8], off: u32) -> &[u8] {
    let at = (off & !AMBIGUOUS) as usize;
    let n = record(arena, off).map_or(0, |(_, b)| 1 + b.len());
    arena.get(at..at + n).unwrap_or_default()
}

/// The DUID of the record at `off`, unless it is ambiguous or bare.
fn record_duid(arena: &[u8], off: u32) -> Option<&[u8]> {
    if off & AMBIGUOUS != 0 {
        return None;
    }
    match record(arena, off)? {
        (BARE, _) => None,
        (_, duid) => Some(duid),
    }
}

impl ClientDuids {
    /// Fingerprints held (known or ambiguous).
    pub(super) fn len(&self) -> usize {
        self.table.len()
    }

    /// The DUID of fingerprint `fp`, when it is known: seen, and with no
    /// other DUID of the same fingerprint.
    pub(super) fn get(&self, fp: u32) -> Option<&[u8]> {
        if self.blind || fp == 0 {
            return None;
        }
        let arena = &self.arena;
        let off = *self
            .table
            .find(self.hasher.hash_one(fp), |&v| record_fp(arena, v) == fp)?;
        record_duid(arena, off)
    }

    /// A client DUID seen (its wire octets).
    pub(super) fn note(&mut self, duid: &[u8]) -> Noted {
        if self.blind {
            return Noted::Kept;
        }
        let fp = fingerprint_of(duid);
        let ClientDuids {
            arena,
            table,
            hasher,
            limit,
            ..
        } = self;
        let h = hasher.hash_one(fp);
        if let Some(v) = table.find_mut(h, |&v| record_fp(arena, v) == fp) {
            if *v & AMBIGUOUS == 0 && record_duid(arena, *v) != Some(duid) {
                *v |= AMBIGUOUS;
            }
            return Noted::Kept;
        }
        let whole = (1..=usize::from(u8::MAX)).contains(&duid.len());
        let need = if whole { 1 + duid.len() } else { 5 };
        if arena.len() + need > *limit {
            return Noted::Full;
        }
        if arena.capacity() - arena.len() < need {
            // By half, not double: the arena is most of this store.
            arena.reserve_exact((arena.capacity() / 2).max(need).max(MIN_GROWTH));
        }
        let off = arena.len() as u32;
        if whole {
            arena.push(duid.len() as u8);
            arena.extend_from_slice(duid);
        } else {
            arena.push(BARE);
            arena.extend_from_slice(&fp.to_le_bytes());
        }
        let flag = if whole { 0 } else { AMBIGUOUS };
        let arena = &*arena;
        table.insert_unique(h, off | flag, |&v| hasher.hash_one(record_fp(arena, v)));
        Noted::Kept
    }

    /// A copy holding only the fingerprints in `fps` (0s and repeats
    /// allowed), packed into an arena of its own, exactly sized.
    pub(super) fn retain(&self, fps: impl IntoIterator<Item = u32>) -> ClientDuids {
        let mut out = ClientDuids {
            hasher: self.hasher.clone(),
            blind: self.blind,
            limit: self.limit,
            ..ClientDuids::default()
        };
        if self.blind {
            return out;
        }
        let (old, hasher) = (&self.arena, &self.hasher);
        let mut octets = 0;
        for fp in fps {
            if fp == 0 {
                continue;
            }
            let h = hasher.hash_one(fp);
            let eq = |&v: &u32| record_fp(old, v) == fp;
            if out.table.find(h, eq).is_some() {
                continue;
            }
            if let Some(&v) = self.table.find(h, eq) {
                octets += record_octets(old, v).len();
                out.table
                    .insert_unique(h, v, |&v| hasher.hash_one(record_fp(old, v)));
            }
        }
        // The offsets move to the new arena; the octets, hence the hashes,
        // stay the same.
        out.arena = Vec::with_capacity(octets);
        for v in out.table.iter_mut() {
            let at = out.arena.len() as u32;
            out.arena.extend_from_slice(record_octets(old, *v));
            *v = at | (*v & AMBIGUOUS);
        }
        out
    }

    /// Give up: the arena cannot hold another DUID even compacted. Every
    /// DUID is unknown from then on (one that was not kept could share a
    /// fingerprint with a later one).
    pub(super) fn blind(&mut self) {
        *self = ClientDuids {
            blind: true,
            limit: self.limit,
            ..ClientDuids::default()
        };
    }

    /// Octets held (capacity, not length).
    pub(super) fn footprint(&self) -> usize {
        self.arena.capacity() + self.table.capacity() * (std::mem::size_of::<u32>() + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &[u8] = &[0, 3, 0, 1, 2, 0, 0, 0, 1, 1];
    const B: &[u8] = &[0, 3, 0, 1, 2, 0, 0, 0, 1, 2];

    use crate::follow::core::store::colliding_duids as collision;

    #[test]
    fn known_ambiguous_and_bare() {
        let mut c = ClientDuids::default();
        assert_eq!(c.note(A), Noted::Kept);
        assert_eq!(c.note(B), Noted::Kept);
        assert_eq!(c.note(A), Noted::Kept);
        assert_eq!(c.len(), 2);
        assert_eq!(c.get(fingerprint_of(A)), Some(A));
        assert_eq!(c.get(fingerprint_of(B)), Some(B));
        assert_eq!(c.get(fingerprint_of(&[9])), None);
        assert_eq!(c.get(0), None);
        let (x, y) = collision();
        assert_eq!(fingerprint_of(&x), fingerprint_of(&y));
        c.note(&x);
        assert_eq!(c.get(fingerprint_of(&x)), Some(&x[..]));
        c.note(&y);
        assert_eq!(c.get(fingerprint_of(&x)), None, "ambiguous: unknown");
        c.note(&x);
        assert_eq!(c.get(fingerprint_of(&x)), None, "ambiguous for good");
        assert_eq!(c.len(), 3);
        // Too long to keep whole: a bare record, unknown.
        let long = vec![7u8; 300];
        c.note(&long);
        assert_eq!(c.get(fingerprint_of(&long)), None);
        assert_eq!(c.len(), 4);
        // Kept only what is referenced, ambiguity and bare records too.
        let r = c.retain([
            0,
            fingerprint_of(B),
            fingerprint_of(&x),
            fingerprint_of(&long),
            5,
        ]);
        assert_eq!(r.len(), 3);
        assert_eq!(r.get(fingerprint_of(A)), None);
        assert_eq!(r.get(fingerprint_of(B)), Some(B));
        assert_eq!(r.get(fingerprint_of(&x)), None);
        assert_eq!(r.arena.len(), 1 + B.len() + 1 + x.len() + 5);
        assert_eq!(r.arena.capacity(), r.arena.len());
        let mut r = r;
        // Still ambiguous after the copy; a new DUID goes on as before.
        r.note(&y);
        assert_eq!(r.get(fingerprint_of(&y)), None);
        r.note(A);
        assert_eq!(r.get(fingerprint_of(A)), Some(A));
    }

    #[test]
    fn many_survive_growth_and_compaction() {
        let mut c = ClientDuids::default();
        let duid = |n: u32| {
            let mut d = vec![0, 3, 0, 1];
            d.extend_from_slice(&n.to_be_bytes());
            d
        };
        for n in 0..10_000 {
            c.note(&duid(n));
        }
        assert_eq!(c.len(), 10_000);
        for n in (0..10_000).step_by(97) {
            assert_eq!(c.get(fingerprint_of(&duid(n))), Some(&duid(n)[..]));
        }
        let r = c.retain(
            (0..10_000)
                .filter(|n| n % 2 == 0)
                .map(|n| fingerprint_of(&duid(n))),
        );
        assert_eq!(r.len(), 5_000);
        assert_eq!(r.get(fingerprint_of(&duid(2))), Some(&duid(2)[..]));
        assert_eq!(r.get(fingerprint_of(&duid(3))), None);
        assert!(r.footprint() < c.footprint());
    }

    #[test]
    fn a_full_arena_says_so_and_blind_knows_nothing() {
        let mut c = ClientDuids {
            limit: 2 * (1 + A.len()),
            ..ClientDuids::default()
        };
        assert_eq!(c.note(A), Noted::Kept);
        assert_eq!(c.note(B), Noted::Kept);
        assert_eq!(c.note(&[1, 2, 3]), Noted::Full);
        // Known ones cost nothing.
        assert_eq!(c.note(A), Noted::Kept);
        c.blind();
        assert_eq!(c.note(&[1, 2, 3]), Noted::Kept);
        assert_eq!((c.get(fingerprint_of(A)), c.len()), (None, 0));
        let r = c.retain([fingerprint_of(A)]);
        assert_eq!(r.get(fingerprint_of(A)), None);
    }
}
