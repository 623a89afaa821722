//! What the table knows of each route it leaves in the kernel, for the
//! ledger ([`crate::recovery::ledger`]).

use super::slots::{Best, Kernel};
use super::PrefixTable;
use crate::recovery::ledger::{Known, KnownLease};
use crate::recovery::rank::Millis;

impl PrefixTable {
    /// Every route the run leaves in the kernel at its end, with the lease
    /// behind it: a route this run sent and the kernel took, or a route of
    /// ours listed at the start and left (a listed route no claim named is
    /// one without a lease; one whose replacement the kernel refused too,
    /// since the route in place is not the claim's). Times are made
    /// absolute with `epoch_ms`, the recovery clock's start in
    /// milliseconds since the Unix epoch. Call after the last changes were
    /// applied and their failures handed back.
    pub fn known(&self, epoch_ms: u64) -> impl Iterator<Item = Known<'_>> {
        let abs = move |ms: i64| -> Option<u64> {
            let t = i128::from(epoch_ms) + i128::from(ms);
            u64::try_from(t / 1000).ok().filter(|s| *s > 0)
        };
        self.slots
            .slots
            .iter()
            .enumerate()
            .filter_map(move |(i, s)| {
                let in_kernel = matches!(
                    s.kernel,
                    Kernel::Sent { .. } | Kernel::Listed | Kernel::Refused { listed: true }
                );
                if !in_kernel {
                    return None;
                }
                let lease = s.best != Best::Unbound
                    && !self.refused.contains(&(i as u32))
                    && matches!(s.kernel, Kernel::Sent { .. } | Kernel::Listed);
                let lease = lease.then(|| KnownLease {
                    client: self.arena.get(s.client),
                    server: s.server.get() as u16,
                    last_transaction: abs(s.last_tx),
                    expires: match s.route.expires {
                        None => None,
                        Some(_) => abs(i64::try_from(s.expires as Millis).unwrap_or(i64::MAX)),
                    },
                });
                Some(Known {
                    prefix: s.prefix(),
                    lease,
                })
            })
    }
}
