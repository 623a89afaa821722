//! The one order of the bindings that name the same delegated prefix
//! (RFC 5007 s.4.3.4, which RFC 5460 s.6.4 points to for several servers):
//! "the most recent client transaction wins".
//!
//! [`Rank`] is that order as a key with `Ord`: greater wins. The streaming
//! prefix table ([`super::table`]) and the whole bindings it keeps on the
//! side ([`super::observed`]) compare claims by it; what remains after it
//! (one server naming the same client for the same prefix twice, with the
//! same times) is broken by the rest of the binding, which each side sees in
//! its own form (the whole binding, or its planned route).

use crate::proto::ServerIndex;
use std::cmp::Reverse;

/// Time on the recovery's clock: milliseconds since the run started
/// (monotonic). A claim's rank, its expiry and the lifetime its route is
/// installed with are all reckoned on it.
pub type Millis = u64;

/// How a claim on a prefix ranks: greater wins. Fields compare in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rank<'a> {
    /// When the server last heard from the client, in milliseconds on the
    /// recovery's clock (`received - CLT_TIME`): the more recent wins.
    pub last_transaction: i64,
    /// When the lease runs out on the same clock: the later wins.
    pub expires: Millis,
    /// The server: the one earlier in the configuration wins a full tie.
    pub server: Reverse<ServerIndex>,
    /// The client DUID: the smaller wins, so that the winner never depends
    /// on the order of arrival.
    pub client: Reverse<&'a [u8]>,
}

impl<'a> Rank<'a> {
    /// The rank of a claim received at `received` (ms) from `server`, with
    /// `clt_time` and `valid_lifetime` in seconds, for `client`.
    pub fn new(
        received: Millis,
        clt_time: u32,
        valid_lifetime: u32,
        server: ServerIndex,
        client: &'a [u8],
    ) -> Self {
        Rank {
            last_transaction: last_transaction(received, clt_time),
            expires: expiry(received, valid_lifetime),
            server: Reverse(server),
            client: Reverse(client),
        }
    }
}

/// When the server last heard from the client, on our clock: `received -
/// clt_time`, negative when CLT_TIME goes back past the recovery's start.
pub fn last_transaction(received: Millis, clt_time: u32) -> i64 {
    i64::try_from(received).unwrap_or(i64::MAX) - i64::from(clt_time) * 1000
}

/// When a lease of `valid_lifetime` seconds, received at `received`, runs out.
pub fn expiry(received: Millis, valid_lifetime: u32) -> Millis {
    received.saturating_add(u64::from(valid_lifetime) * 1000)
}

/// The whole seconds left at `now` of a lease that runs out at `expires`
/// (0 once it has): the lifetime a route is installed with.
pub fn remaining_secs(expires: Millis, now: Millis) -> u32 {
    (expires.saturating_sub(now) / 1000).min(u64::from(u32::MAX)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(i: usize) -> ServerIndex {
        ServerIndex::new(i).unwrap()
    }

    #[test]
    fn the_most_recent_transaction_then_expiry_then_server_then_client() {
        // Received at 10 s with CLT 30 (last heard -20 s) loses to one
        // received at 40 s with CLT 55 (-15 s).
        let a = Rank::new(10_000, 30, 3600, s(0), b"\x01");
        let b = Rank::new(40_000, 55, 3600, s(1), b"\x02");
        assert!(b > a);
        // Same transaction: the later expiry wins.
        let a = Rank::new(10_000, 10, 3600, s(0), b"\x01");
        let b = Rank::new(10_000, 10, 7200, s(1), b"\x01");
        assert!(b > a);
        // Full tie but the server: the first configured wins.
        let a = Rank::new(10_000, 10, 3600, s(0), b"\x09");
        let b = Rank::new(10_000, 10, 3600, s(1), b"\x01");
        assert!(a > b);
        // Then the smaller client DUID.
        let a = Rank::new(10_000, 10, 3600, s(0), b"\x01\x02");
        let b = Rank::new(10_000, 10, 3600, s(0), b"\x01\x03");
        assert!(a > b);
    }

    #[test]
    fn times_saturate() {
        assert_eq!(last_transaction(1000, 5), -4000);
        assert_eq!(expiry(u64::MAX, 10), u64::MAX);
        assert_eq!(remaining_secs(5_999, 1_000), 4);
        assert_eq!(remaining_secs(1_000, 5_000), 0);
        assert_eq!(remaining_secs(u64::MAX, 0), u32::MAX);
    }
}
