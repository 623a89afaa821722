//! Small identifiers that cross module boundaries, each checked once where
//! it is made: the DHCPv6 transaction-id and a server's position in the
//! requestor's configuration.

use std::fmt;

/// A DHCPv6 transaction-id: 24 bits (RFC 8415 s.8, s.9; RFC 5007 s.4.1.1
/// for LEASEQUERY). Made only from values that fit, so no site masks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Xid(u32);

impl Xid {
    /// The largest transaction-id, 2^24 - 1.
    pub const MAX: u32 = 0x00ff_ffff;

    /// `v` as a transaction-id, when it fits in 24 bits.
    pub const fn new(v: u32) -> Option<Xid> {
        if v <= Self::MAX {
            Some(Xid(v))
        } else {
            None
        }
    }

    /// The transaction-id of the three octets on the wire.
    pub const fn from_octets(b: [u8; 3]) -> Xid {
        Xid(((b[0] as u32) << 16) | ((b[1] as u32) << 8) | b[2] as u32)
    }

    /// The value, below 2^24.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The three octets on the wire, most significant first.
    pub const fn octets(self) -> [u8; 3] {
        [(self.0 >> 16) as u8, (self.0 >> 8) as u8, self.0 as u8]
    }

    /// The next transaction-id, wrapping from 2^24 - 1 to 0.
    pub const fn next(self) -> Xid {
        Xid((self.0 + 1) & Self::MAX)
    }
}

impl fmt::Display for Xid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:06x}", self.0)
    }
}

/// The position of a DHCPv6 server in the configuration: how bindings and
/// reports say which server they came from. At most [`ServerIndex::LIMIT`]
/// servers, so that the recovery can record which servers agree on a
/// prefix in one 64-bit mask; the configuration refuses more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ServerIndex(u8);

impl ServerIndex {
    /// How many servers there may be.
    pub const LIMIT: usize = 64;

    /// The server at position `i`, when `i` is below [`ServerIndex::LIMIT`].
    pub const fn new(i: usize) -> Option<ServerIndex> {
        if i < Self::LIMIT {
            Some(ServerIndex(i as u8))
        } else {
            None
        }
    }

    /// The position, below [`ServerIndex::LIMIT`].
    pub const fn get(self) -> usize {
        self.0 as usize
    }

    /// This server's bit in a 64-bit set of servers.
    pub const fn bit(self) -> u64 {
        1 << self.0
    }

    /// Every server whose bit is set in `mask`, in order.
    pub fn in_mask(mask: u64) -> impl Iterator<Item = ServerIndex> {
        (0..Self::LIMIT as u8)
            .filter(move |b| mask & (1 << b) != 0)
            .map(ServerIndex)
    }
}

impl fmt::Display for ServerIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xid_is_24_bits() {
        assert_eq!(Xid::new(0x00ff_ffff).map(Xid::get), Some(0x00ff_ffff));
        assert_eq!(Xid::new(0x0100_0000), None);
        let x = Xid::from_octets([0x12, 0x34, 0x56]);
        assert_eq!(x.get(), 0x123456);
        assert_eq!(x.octets(), [0x12, 0x34, 0x56]);
        assert_eq!(x.to_string(), "0x123456");
        assert_eq!(Xid::new(Xid::MAX).unwrap().next(), Xid::new(0).unwrap());
    }

    #[test]
    fn server_index_fits_the_mask() {
        assert_eq!(ServerIndex::new(63).map(ServerIndex::bit), Some(1 << 63));
        assert_eq!(ServerIndex::new(64), None);
        let m = ServerIndex::new(3).unwrap().bit() | ServerIndex::new(0).unwrap().bit();
        let v: Vec<usize> = ServerIndex::in_mask(m).map(ServerIndex::get).collect();
        assert_eq!(v, vec![0, 3]);
    }
}
