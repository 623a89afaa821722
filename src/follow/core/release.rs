//! RELEASE and DECLINE (RFC 8415 s.18.2.7, s.18.2.8): kept as pending,
//! bounded, until the server's REPLY with the same transaction-id and
//! client confirms them (s.18.3.7, s.18.3.8), or for the release timeout
//! (RFC 8415 s.7.6: REL_MAX_RC retransmissions).

use super::events::Why;
use super::snooped::status_ok;
use super::store::fingerprint;
use super::FollowCore;
use crate::proto::{MessageType, StatusCode};
use crate::snoop::{Release, Reply};
use ipnet::Ipv6Net;
use std::net::Ipv6Addr;
use std::time::Instant;

/// Prefixes kept from one RELEASE or DECLINE.
const MAX_RELEASE_PREFIXES: usize = 64;

/// A RELEASE or DECLINE waiting for the server's REPLY.
#[derive(Debug, Clone)]
pub(super) struct Pending {
    xid: u32,
    client: u32,
    decline: bool,
    pub(super) at_ms: u64,
    hop: Ipv6Addr,
    /// The interface slot it arrived on, if the core knows it.
    slot: Option<u16>,
    prefixes: Vec<(u32, Ipv6Net)>,
}

impl FollowCore {
    /// A RELEASE or DECLINE from a client, seen arriving on `ifindex`.
    pub fn handle_release(&mut self, now: Instant, ifindex: u32, r: &Release) {
        self.counters.releases += 1;
        let client = fingerprint(&r.client_id);
        let xid = r.transaction_id;
        let prefixes: Vec<(u32, Ipv6Net)> = r
            .ia_pds
            .iter()
            .flat_map(|ia| ia.prefixes.iter().map(move |p| (ia.iaid, p.prefix.trunc())))
            .take(MAX_RELEASE_PREFIXES)
            .collect();
        // A retransmission (same transaction-id, RFC 8415 s.15) replaces the first.
        self.pending
            .retain(|p| !(p.xid == xid && p.client == client));
        if self.pending.len() >= self.settings.max_pending_releases.max(1) {
            self.pending.pop_front();
            self.ignore(None, "release-overflow");
        }
        self.pending.push_back(Pending {
            xid,
            client,
            decline: r.msg_type == MessageType::Decline,
            at_ms: self.clock.ms(now),
            hop: r.client_address(),
            slot: self.slot_of(ifindex),
            prefixes,
        });
        self.refresh_timers();
    }

    /// The REPLY to a pending RELEASE/DECLINE: remove what it named.
    pub(super) fn match_release(&mut self, now: Instant, r: &Reply, client: u32) {
        let Some(i) = self
            .pending
            .iter()
            .position(|p| p.xid == r.transaction_id && p.client == client)
        else {
            return;
        };
        let p = self.pending.remove(i).expect("a valid position");
        if !status_ok(r.status) {
            self.ignore(None, "release-refused");
            return;
        }
        self.counters.releases_confirmed += 1;
        let why = if p.decline {
            Why::Decline
        } else {
            Why::Release
        };
        for (iaid, prefix) in p.prefixes {
            let no_binding = r
                .ia_pds
                .iter()
                .any(|ia| ia.iaid == iaid && ia.status == Some(StatusCode::NoBinding));
            if !no_binding {
                self.withdraw(now, prefix, client, p.hop, p.slot, why);
            }
        }
    }

    /// Forget the releases whose REPLY did not come within the timeout.
    pub(super) fn expire_releases(&mut self, now: Instant) {
        let now_ms = self.clock.ms(now);
        let timeout = self.settings.release_timeout.as_millis() as u64;
        while self
            .pending
            .front()
            .is_some_and(|p| p.at_ms + timeout <= now_ms)
        {
            self.pending.pop_front();
            self.ignore(None, "release-unanswered");
        }
    }
}
