//! What the service says: a log line per route change and per event of
//! the core, and the STATUS line. Renderings only; nothing is decided here.

use super::LastResync;
use crate::follow::core::{FollowCore, FollowEvent, RouteChange};
use std::time::Instant;

/// The log line of a route change.
pub(super) fn log_change(c: &RouteChange) {
    let r = c.change.route();
    tracing::info!(
        prefix = %r.prefix,
        via = %r.gateway,
        dev = %r.interface,
        expires = r.expires.map_or("never".to_string(), |e| format!("{e}s")),
        why = c.why.code(),
        "follow: {} route",
        c.change.op()
    );
}

/// The log line of an event.
pub(super) fn log_event(e: &FollowEvent) {
    match e {
        FollowEvent::Refused {
            prefix,
            next_hop,
            interface,
            reason,
        } => {
            tracing::warn!(%prefix, via = %next_hop, dev = %interface, reason = reason.code(), "follow: refused: {reason}")
        }
        FollowEvent::Ignored { prefix, code } => {
            let p = prefix.map(|p| p.to_string()).unwrap_or_default();
            if *code == "cap" {
                tracing::warn!(prefix = %p, reason = code, "follow: not followed: max_prefixes reached");
            } else {
                tracing::info!(prefix = %p, reason = code, "follow: not used");
            }
        }
        FollowEvent::Foreign { prefix, how } => {
            tracing::info!(%prefix, how, reason = "foreign-route", "follow: a route that is not ours holds the prefix; left in place")
        }
        FollowEvent::ManualDelete { route } => {
            tracing::info!(prefix = %route.prefix, via = %route.gateway, dev = %route.interface, reason = "manual-delete", "follow: our route was deleted by someone else; forgotten until the next resync")
        }
        FollowEvent::Forged {
            interface,
            source,
            msg_type,
        } => {
            tracing::warn!(dev = %interface, %source, msg_type = %msg_type, reason = "forged", "follow: a server message arrived from the client side; ignored")
        }
        FollowEvent::Failed { change, error } => {
            tracing::warn!(prefix = %change.route().prefix, op = %change.op(), error = %error, code = error.code(), "follow: the kernel refused a route change")
        }
    }
}

/// One line for systemd's STATUS: what the core follows and has done,
/// the last resync (when it ended, and its outcome), the capture's packets.
pub(super) fn status_line(
    core: &FollowCore,
    last_resync: Option<&LastResync>,
    now: Instant,
    packets: u64,
    malformed: u64,
) -> String {
    let c = core.counters();
    let resync = match last_resync {
        Some(l) => format!(
            "{} resyncs, the last {}s ago: {}",
            c.resyncs,
            now.saturating_duration_since(l.at).as_secs(),
            match &l.error {
                Some(e) => format!("error: {e}"),
                None => l.outcome.to_owned(),
            }
        ),
        None => "no resync yet".to_string(),
    };
    format!(
        "following {} prefixes; since start {} REPLYs, {} added, {} refreshed, {} moved, {} removed, {} relinked; {} forged, {} refused, {} foreign; {resync}; {packets} packets, {malformed} malformed",
        core.followed(),
        c.replies,
        c.added,
        c.refreshed,
        c.moved,
        c.removed,
        c.relinked,
        c.forged,
        c.refused,
        c.foreign
    )
}
