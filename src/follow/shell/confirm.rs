//! The targeted queries of the core ([`crate::follow::core::Need::Confirm`]):
//! one QUERY_BY_ADDRESS per prefix (its first address: a server answers
//! with the binding of the delegated prefix that holds it, RFC 5007
//! s.4.1.2.1), every server at once over the bulk connection (RFC 5460
//! s.6), pipelined, one try.

use crate::config::Config;
use crate::proto::{Duid, LeaseKind, OwnedBindings, Query};
use crate::recovery::rank::{self, Millis};
use crate::requestor::fanout::{Fanout, QuerySpec};
use ipnet::Ipv6Net;
use std::time::{Duration, Instant};

/// For each of `prefixes`, the valid lifetime left (seconds, now) of the
/// binding of that very prefix with the most recent client transaction
/// among the servers' answers (RFC 5007 s.4.3.4); `None` when no server
/// holds one.
pub(super) async fn ask(
    config: &Config,
    relay: &Duid,
    prefixes: Vec<Ipv6Net>,
) -> Vec<(Ipv6Net, Option<u32>)> {
    let started = Instant::now();
    let requestor = config
        .requestor_duid
        .clone()
        .unwrap_or_else(|| relay.clone());
    let queries = prefixes
        .iter()
        .map(|p| QuerySpec::new(Query::ByAddress(p.addr())))
        .collect();
    let mut cfg = config.fanout_config(requestor, queries);
    cfg.retry.attempts = 1;
    cfg.retry.startup_patience = Duration::ZERO;
    cfg.connection.max_in_flight = cfg.connection.max_in_flight.max(8);
    let (deliveries, reports) = Fanout::start(cfg, OwnedBindings).collect().await;
    for r in reports.iter().filter(|r| !r.is_complete()) {
        tracing::debug!("follow: targeted query: {r}");
    }
    let ms = |t: Instant| {
        u64::try_from(t.saturating_duration_since(started).as_millis()).unwrap_or(u64::MAX)
    };
    let now: Millis = ms(Instant::now());
    // The best binding per prefix: (last transaction, expiry).
    let mut best: Vec<Option<(i64, Millis)>> = vec![None; prefixes.len()];
    for d in deliveries {
        let (Some(p), LeaseKind::Prefix(got)) = (prefixes.get(d.query), d.binding.lease) else {
            continue;
        };
        if got.trunc() != *p || d.binding.valid_lifetime == 0 {
            continue;
        }
        let received = ms(d.received);
        let candidate = (
            rank::last_transaction(received, d.binding.clt_time),
            rank::expiry(received, d.binding.valid_lifetime),
        );
        let slot = &mut best[d.query];
        if slot.is_none_or(|b| candidate > b) {
            *slot = Some(candidate);
        }
    }
    prefixes
        .into_iter()
        .zip(best)
        .map(|(p, b)| (p, b.map(|(_, expires)| rank::remaining_secs(expires, now))))
        .collect()
}
