//! The followed prefixes: one compact entry per prefix in a hash map, and
//! a histogram of their expiries in 8 s buckets (the expiry timer and the
//! targeted queries read its first bucket). Every insert and remove keeps
//! the two in step.

use crate::proto::Duid;
use hashbrown::HashMap;
use ipnet::Ipv6Net;
use std::collections::BTreeMap;
use std::net::Ipv6Addr;

/// Expiry of a prefix with an infinite valid lifetime (RFC 8415 s.7.7).
pub(super) const NEVER: u32 = u32::MAX;
/// The valid lifetime that means infinity (RFC 8415 s.7.7).
pub(super) const INFINITY: u32 = 0xffff_ffff;
/// Expiry histogram buckets: 8 s each (a route is removed at most 8 s after
/// its lease ran out).
pub(super) const BUCKET_SHIFT: u32 = 3;
/// Server slot of a prefix learned from the kernel or an unknown server.
pub(super) const NO_SERVER: u8 = u8::MAX;

/// Entry flag: learned or confirmed by a snooped REPLY.
pub(super) const F_SNOOPED: u8 = 1;
/// Entry flag: the kernel deleted the route; what that means is decided
/// after the settle time (link down, or an operator).
pub(super) const F_GONE: u8 = 2;
/// Entry flag: dropped by the kernel with its interface; reinstalled when
/// the interface comes back up.
pub(super) const F_DROPPED: u8 = 4;
/// Entry flag: its add met a route at the key (EEXIST) that the core does
/// not know; nothing is sent for it until the table says whose it is.
pub(super) const F_INSPECT: u8 = 8;
/// Entry flag: a targeted query about it was asked for (near expiry).
pub(super) const F_ASKED: u8 = 16;

/// A prefix as a compact key (host bits clear).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct PKey {
    pub(super) addr: [u8; 16],
    pub(super) len: u8,
}

impl PKey {
    pub(super) fn of(p: &Ipv6Net) -> Self {
        PKey {
            addr: p.trunc().addr().octets(),
            len: p.prefix_len(),
        }
    }

    pub(super) fn net(&self) -> Ipv6Net {
        Ipv6Net::new(Ipv6Addr::from(self.addr), self.len).expect("a valid length")
    }
}

/// One followed prefix (32 octets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Entry {
    /// The next hop.
    pub(super) gateway: [u8; 16],
    /// Absolute expiry, seconds of the core's clock ([`NEVER`]: none).
    pub(super) expires: u32,
    /// Last client transaction seen by snooping, seconds of the core's
    /// clock plus 1 (0: none; learned from the kernel after a resync).
    pub(super) seen: u32,
    /// Fingerprint of the client DUID (0: unknown).
    pub(super) client: u32,
    /// The interface slot.
    pub(super) slot: u16,
    /// F_* flags.
    pub(super) flags: u8,
    /// The server whose REPLY it was (a slot of the core's servers), or NO_SERVER.
    pub(super) server: u8,
}

impl Entry {
    /// The kernel holds the route now (not deleted, not dropped with its
    /// link, not waiting to be told whose the route at its key is).
    pub(super) fn installed(&self) -> bool {
        self.flags & (F_GONE | F_DROPPED | F_INSPECT) == 0
    }
}

/// FNV-1a of a DUID, never 0 (0 means unknown).
pub(super) fn fingerprint(d: &Duid) -> u32 {
    fingerprint_of(d.as_bytes())
}

/// [`fingerprint`] of a DUID's wire octets.
pub(super) fn fingerprint_of(octets: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in octets {
        h = (h ^ u32::from(*b)).wrapping_mul(0x0100_0193);
    }
    h.max(1)
}

/// Two DUID-LLs of the same fingerprint: two 3-octet tails whose FNV-1a
/// states agree but in their low 8 bits (found by a search), then a last
/// octet that cancels the difference.
#[cfg(test)]
pub(super) fn colliding_duids() -> (Vec<u8>, Vec<u8>) {
    let x = vec![0, 3, 0, 1, 2, 0, 1, 218, 7, 0];
    let y = vec![0, 3, 0, 1, 2, 0, 7, 112, 128, 89];
    assert_eq!(fingerprint_of(&x), fingerprint_of(&y));
    (x, y)
}

/// The followed prefixes and the histogram of their expiries.
#[derive(Debug, Default)]
pub(super) struct Store {
    entries: HashMap<PKey, Entry>,
    /// Followed prefixes by expiry bucket (expiry >> BUCKET_SHIFT): count.
    hist: BTreeMap<u32, u32>,
    /// The earliest expiry set by an insert since [`Store::take_low`]: the
    /// targeted queries look again at what may have entered their window
    /// behind them.
    low: Option<u32>,
}

impl Store {
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(super) fn get(&self, k: &PKey) -> Option<Entry> {
        self.entries.get(k).copied()
    }

    pub(super) fn contains(&self, k: &PKey) -> bool {
        self.entries.contains_key(k)
    }

    /// The entry of `k`, to change its flags or what it knows of the
    /// client (never its expiry: that goes through [`Store::insert`]).
    pub(super) fn get_mut(&mut self, k: &PKey) -> Option<&mut Entry> {
        self.entries.get_mut(k)
    }

    /// Every entry, to change flags (never the expiry).
    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = (&PKey, &mut Entry)> {
        self.entries.iter_mut()
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&PKey, &Entry)> {
        self.entries.iter()
    }

    /// Put `e` at `k`; the entry it replaces, if any. A new expiry clears
    /// [`F_ASKED`] (a lease that changed is worth asking about again when
    /// it nears its new end) and is noted for [`Store::take_low`].
    pub(super) fn insert(&mut self, k: PKey, mut e: Entry) -> Option<Entry> {
        let moved = self.entries.get(&k).is_none_or(|o| o.expires != e.expires);
        if moved {
            e.flags &= !F_ASKED;
            if e.expires != NEVER {
                self.low = Some(self.low.map_or(e.expires, |l| l.min(e.expires)));
            }
        }
        let old = self.entries.insert(k, e);
        if let Some(o) = old {
            self.hist_remove(o.expires);
        }
        self.hist_add(e.expires);
        old
    }

    /// The earliest expiry an insert set since the last call, if any.
    pub(super) fn low(&self) -> Option<u32> {
        self.low
    }

    /// [`Store::low`], reset.
    pub(super) fn take_low(&mut self) -> Option<u32> {
        self.low.take()
    }

    /// Forget `k`; its entry, if it had one.
    pub(super) fn remove(&mut self, k: &PKey) -> Option<Entry> {
        let old = self.entries.remove(k);
        if let Some(o) = old {
            self.hist_remove(o.expires);
        }
        old
    }

    /// Every entry, taken out (the store is left empty).
    pub(super) fn take(&mut self) -> HashMap<PKey, Entry> {
        self.hist.clear();
        self.low = None;
        std::mem::take(&mut self.entries)
    }

    /// The end of the first expiry bucket that ends after `t` (seconds):
    /// once that much is looked at, every entry of the bucket is.
    pub(super) fn next_bucket_end_after(&self, t: u32) -> Option<u64> {
        let from = t >> BUCKET_SHIFT;
        self.hist
            .range(from..)
            .map(|(&b, _)| (u64::from(b) + 1) << BUCKET_SHIFT)
            .find(|&end| end > u64::from(t))
    }

    /// When every entry of the earliest bucket has expired, in seconds
    /// (past `u32::MAX` for the last bucket).
    pub(super) fn first_bucket_end(&self) -> Option<u64> {
        self.hist
            .first_key_value()
            .map(|(&b, _)| (u64::from(b) + 1) << BUCKET_SHIFT)
    }

    /// Forget every entry expired at `t` (seconds), and hand them back.
    /// Walks the map only once the first bucket is over.
    pub(super) fn sweep(&mut self, t: u32) -> Vec<(PKey, Entry)> {
        let mut gone = Vec::new();
        let Some(end) = self.first_bucket_end() else {
            return gone;
        };
        if end > u64::from(t) {
            return gone;
        }
        let hist = &mut self.hist;
        self.entries.retain(|k, e| {
            if e.expires <= t {
                gone.push((*k, *e));
                if let Some(c) = hist.get_mut(&(e.expires >> BUCKET_SHIFT)) {
                    *c -= 1;
                }
                false
            } else {
                true
            }
        });
        self.hist.retain(|_, c| *c > 0);
        gone.sort_unstable_by_key(|(k, _)| *k);
        gone
    }

    /// Octets the map holds (capacity, not length).
    pub(super) fn footprint(&self) -> usize {
        self.entries.capacity() * (std::mem::size_of::<(PKey, Entry)>() + 1)
    }

    fn hist_add(&mut self, expires: u32) {
        if expires != NEVER {
            *self.hist.entry(expires >> BUCKET_SHIFT).or_insert(0) += 1;
        }
    }

    fn hist_remove(&mut self, expires: u32) {
        if expires == NEVER {
            return;
        }
        let b = expires >> BUCKET_SHIFT;
        if let Some(c) = self.hist.get_mut(&b) {
            *c -= 1;
            if *c == 0 {
                self.hist.remove(&b);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(expires: u32) -> Entry {
        Entry {
            gateway: [0; 16],
            expires,
            seen: 0,
            client: 0,
            slot: 0,
            flags: 0,
            server: NO_SERVER,
        }
    }

    fn key(n: u8) -> PKey {
        PKey::of(&format!("2001:db8:8000:{n:x}00::/56").parse().unwrap())
    }

    #[test]
    fn the_histogram_follows_every_insert_and_remove() {
        let mut s = Store::default();
        s.insert(key(1), entry(100));
        s.insert(key(2), entry(200));
        s.insert(key(3), entry(NEVER));
        assert_eq!(s.next_bucket_end_after(0), Some(104));
        // Renewed: the old bucket is empty now.
        s.insert(key(1), entry(1000));
        assert_eq!(s.next_bucket_end_after(0), Some(208));
        assert_eq!(s.remove(&key(2)).map(|e| e.expires), Some(200));
        assert_eq!(s.next_bucket_end_after(0), Some(1008));
        assert_eq!(s.next_bucket_end_after(1007), Some(1008));
        assert_eq!(s.next_bucket_end_after(1008), None);
        assert!(s.sweep(1006).is_empty(), "the bucket of 1000 runs to 1008");
        assert_eq!(s.sweep(1008), vec![(key(1), entry(1000))]);
        assert_eq!((s.len(), s.next_bucket_end_after(0)), (1, None));
        let all = s.take();
        assert_eq!((all.len(), s.len()), (1, 0));
        // The last bucket ends past u32::MAX, not at 0.
        s.insert(key(4), entry(NEVER - 1));
        assert_eq!(s.first_bucket_end(), Some(1 << 32));
        assert!(s.sweep(NEVER - 1).is_empty());
    }
}
