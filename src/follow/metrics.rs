//! `follow`'s metrics file: its last recovery (start-up or resync) in the
//! series `recover` writes, and the service's own counters
//! (`pdrestore_follow_*`), written by a thread of its own.

use super::core::FollowCore;
use crate::agent::Report;
use crate::metrics::family::{counter, gauge, label_sets, one, samples};
use crate::metrics::{self, unix_seconds, RecoverMetrics};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::{Registry, Unit};
use std::time::{Duration, Instant, SystemTime};

/// What the capture sockets delivered since the start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Packets {
    /// Packets delivered.
    pub delivered: u64,
    /// Packets the snoop parser refused.
    pub malformed: u64,
    /// Times the packet budget held a socket back.
    pub over_budget: u64,
    /// Route and link notifications of the kernel that did not decode.
    pub netlink_malformed: u64,
    /// Capture sockets opened again on a re-created interface (same name,
    /// new index).
    pub captures_reopened: u64,
}

/// The shortest interval between two writes of the metrics file in a
/// storm of changes (each write is an fsync and a rename).
pub const METRICS_EVERY: Duration = Duration::from_secs(1);

/// A snapshot of a `pdrestore follow` service, as written to the metrics
/// file: its last recovery (the start-up one or the last resync) in the
/// series `recover` writes, so the same alerts hold for both, and the
/// service's own counters since it started (`pdrestore_follow_*`).
#[derive(Debug, Clone)]
pub struct FollowMetrics {
    /// The start-up recovery or the last resync.
    pub recovery: RecoverMetrics,
    /// When the service started.
    pub started_at: SystemTime,
    /// Prefixes followed now.
    pub followed: u64,
    /// Prefixes known to hold a route that is not ours.
    pub foreign: u64,
    /// The core's counters since the start.
    pub counters: super::Counters,
    /// Packets the capture sockets delivered.
    pub packets: u64,
    /// Packets the snoop parser refused.
    pub malformed: u64,
    /// Packets dropped by the packet budget.
    pub over_budget: u64,
    /// Route and link notifications of the kernel that did not decode.
    pub netlink_malformed: u64,
    /// Capture sockets opened again on a re-created interface.
    pub captures_reopened: u64,
}

impl FollowMetrics {
    /// The registry to encode, with `last_complete` as for
    /// [`RecoverMetrics::registry`].
    pub fn registry(&self, last_complete: Option<f64>) -> Registry {
        let mut registry = self.recovery.registry(last_complete);
        registry.register_collector(Box::new(FollowCollector(self.clone())));
        registry
    }
}

/// Encodes the `pdrestore_follow_*` families.
#[derive(Debug)]
struct FollowCollector(FollowMetrics);

impl Collector for FollowCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let f = &self.0;
        let c = &f.counters;
        gauge(
            &mut e,
            "follow_start_timestamp",
            "When pdrestore follow started, seconds since the epoch",
            Some(&Unit::Seconds),
            &one(unix_seconds(f.started_at)),
        )?;
        gauge(
            &mut e,
            "follow_prefixes",
            "Delegated prefixes pdrestore follow keeps a route for now",
            None,
            &one(f.followed),
        )?;
        gauge(
            &mut e,
            "follow_foreign_prefixes",
            "Prefixes held by a route that is not pdrestore's, left alone",
            None,
            &one(f.foreign),
        )?;
        let kinds = label_sets(
            "kind",
            ["reply", "release", "release_confirmed", "forged"].into_iter(),
        );
        counter(
            &mut e,
            "follow_messages",
            "DHCPv6 messages snooped on the client links: replies sent to clients, releases and declines from them, releases the server confirmed, server messages arriving from the client side (forged)",
            &samples(&kinds, [c.replies, c.releases, c.releases_confirmed, c.forged].into_iter()),
        )?;
        route_changes(&mut e, c)?;
        let reasons = label_sets(
            "reason",
            ["refused", "foreign", "capped", "ignored"].into_iter(),
        );
        counter(
            &mut e,
            "follow_not_followed",
            "Prefixes or messages not followed: refused by the planner (pools, lengths, next hop), held by a foreign route, over max_prefixes, not used for another reason",
            &samples(&reasons, [c.refused, c.foreign, c.capped, c.ignored].into_iter()),
        )?;
        counter(
            &mut e,
            "follow_resyncs",
            "Bulk Leasequery resyncs finished since the start",
            &one(c.resyncs),
        )?;
        let outcomes = label_sets(
            "outcome",
            ["delivered", "malformed", "over_budget"].into_iter(),
        );
        counter(
            &mut e,
            "follow_packets",
            "Packets the capture sockets delivered, those the snoop parser refused, those dropped by the packet budget",
            &samples(&outcomes, [f.packets, f.malformed, f.over_budget].into_iter()),
        )?;
        counter(
            &mut e,
            "follow_netlink_malformed",
            "Route and link notifications of the kernel that did not decode (each is logged, and the kernel's table is read again)",
            &one(f.netlink_malformed),
        )?;
        counter(
            &mut e,
            "follow_captures_reopened",
            "Capture sockets opened again because their interface was re-created (same name, new index: a VLAN or bridge rebuilt)",
            &one(f.captures_reopened),
        )?;
        Ok(())
    }
}

/// The route changes and the targeted queries of follow's counters.
fn route_changes(
    e: &mut DescriptorEncoder,
    c: &crate::follow::Counters,
) -> Result<(), std::fmt::Error> {
    let changes = label_sets(
        "change",
        [
            "added",
            "refreshed",
            "moved",
            "removed",
            "relinked",
            "adopted",
            "expired",
            "manual_delete",
            "failed",
        ]
        .into_iter(),
    );
    counter(
            e,
            "follow_route_changes",
            "Route changes since the start: added, refreshed (renewals), moved, removed (valid lifetime 0, release), re-added after a link came up, routes of ours installed by another run taken over, expired, deleted by someone else, refused by the kernel",
            &samples(
                &changes,
                [c.added, c.refreshed, c.moved, c.removed, c.relinked, c.adopted, c.expired, c.manual_deletes, c.failures].into_iter(),
            ),
        )?;
    counter(
            e,
            "follow_targeted_queries",
            "Leasequeries about one prefix nearing expiry with no renewal seen (instead of a full resync)",
            &one(c.confirm_queries),
        )?;
    counter(
        e,
        "follow_targeted_extended",
        "Prefixes whose route a targeted query extended (the server had a later expiry)",
        &one(c.confirmed),
    )?;
    Ok(())
}

/// The metrics file, written from a thread of its own (an fsync must not
/// hold up the loop): the loop encodes a snapshot, the thread replaces the
/// file with it ([`metrics::write_atomic`]). Snapshots queue (one a second
/// at most, see [`METRICS_EVERY`]); the last one is written before the
/// service ends.
pub(crate) struct MetricsWriter {
    path: std::path::PathBuf,
    tx: Option<std::sync::mpsc::Sender<String>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The last recovery (start-up or resync), as `recover` would write it.
    recovery: metrics::RecoverMetrics,
    /// When the last complete recovery ended (from the old file at first).
    last_complete: Option<f64>,
    started_at: std::time::SystemTime,
    /// The core's counters and the followed count when last written.
    written: Option<(super::Counters, usize)>,
    written_at: Option<Instant>,
}

impl MetricsWriter {
    /// The writer of the file at `path` for a service started at
    /// `started_at`, and its thread.
    pub(crate) fn new(path: std::path::PathBuf, started_at: SystemTime) -> MetricsWriter {
        let last_complete = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| metrics::previous_value(&t, metrics::LAST_COMPLETE));
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let file = path.clone();
        let thread = std::thread::Builder::new()
            .name("pdrestore-metrics".into())
            .spawn(move || {
                for text in rx {
                    if let Err(e) = metrics::write_atomic(&file, text.as_bytes()) {
                        tracing::warn!(file = %file.display(), error = %e, "cannot write the metrics file; the old one, if any, is left as it was");
                    }
                }
            });
        let (tx, thread) = match thread {
            Ok(t) => (Some(tx), Some(t)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the metrics writer; no metrics file");
                (None, None)
            }
        };
        MetricsWriter {
            path,
            tx,
            thread,
            recovery: RecoverMetrics::failure(70, std::time::SystemTime::now()),
            last_complete,
            started_at,
            written: None,
            written_at: None,
        }
    }

    /// A recovery (start-up or resync) ended with `report`.
    pub(crate) fn recovered(&mut self, report: &Report) {
        let now = std::time::SystemTime::now();
        let previous = self.recovery.clone();
        self.recovery = RecoverMetrics::from_report(report, now);
        if previous.is_complete() {
            self.last_complete = Some(metrics::unix_seconds(previous.finished_at));
        }
    }

    /// A resync that ended before a report, with `exit_code`.
    pub(crate) fn failed(&mut self, exit_code: u8) {
        let previous = std::mem::replace(
            &mut self.recovery,
            RecoverMetrics::failure(exit_code, std::time::SystemTime::now()),
        );
        if previous.is_complete() {
            self.last_complete = Some(metrics::unix_seconds(previous.finished_at));
        }
    }

    /// Write a snapshot if something changed since the last one and
    /// (unless `now_anyway`) [`METRICS_EVERY`] has passed.
    pub(crate) fn maybe_write(&mut self, core: &FollowCore, p: Packets, now_anyway: bool) {
        let state = (core.counters().clone(), core.followed());
        if !now_anyway
            && (self.written.as_ref() == Some(&state)
                || self.written_at.is_some_and(|t| t.elapsed() < METRICS_EVERY))
        {
            return;
        }
        let snapshot = FollowMetrics {
            recovery: self.recovery.clone(),
            started_at: self.started_at,
            followed: metrics::count_of(state.1),
            foreign: metrics::count_of(core.foreign_prefixes()),
            counters: state.0.clone(),
            packets: p.delivered,
            malformed: p.malformed,
            over_budget: p.over_budget,
            netlink_malformed: p.netlink_malformed,
            captures_reopened: p.captures_reopened,
        };
        let text = metrics::encode(&snapshot.registry(self.last_complete));
        if let Some(tx) = &self.tx {
            if tx.send(text).is_err() {
                tracing::warn!(file = %self.path.display(), "the metrics writer stopped; no more metrics");
                self.tx = None;
            }
        }
        self.written = Some(state);
        self.written_at = Some(Instant::now());
    }

    /// Write the last snapshot and wait for the writer.
    pub(crate) fn finish(&mut self, core: &FollowCore, p: Packets) {
        self.maybe_write(core, p, true);
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::encode;

    fn at(secs: u64) -> SystemTime {
        std::time::UNIX_EPOCH + Duration::from_millis(secs * 1000 + 250)
    }

    fn partial_run() -> RecoverMetrics {
        RecoverMetrics {
            outcome: "partial".into(),
            exit_code: 1,
            finished_at: at(1_764_633_600),
            figures: None,
        }
    }

    #[test]
    fn follow_metrics_add_counters_to_the_recovery_series() {
        let counters = crate::follow::Counters {
            replies: 7,
            added: 3,
            refreshed: 2,
            forged: 1,
            resyncs: 4,
            adopted: 6,
            confirm_queries: 8,
            confirmed: 5,
            expired: 2,
            ..Default::default()
        };
        let f = FollowMetrics {
            recovery: partial_run(),
            started_at: at(50),
            followed: 5,
            foreign: 1,
            counters,
            packets: 9,
            malformed: 1,
            over_budget: 0,
            netlink_malformed: 2,
            captures_reopened: 1,
        };
        let text = encode(&f.registry(Some(42.0)));
        for line in [
            "pdrestore_follow_prefixes 5\n",
            "pdrestore_follow_foreign_prefixes 1\n",
            "pdrestore_follow_start_timestamp_seconds 50.25\n",
            "# TYPE pdrestore_follow_messages_total counter\n",
            "pdrestore_follow_messages_total{kind=\"reply\"} 7\n",
            "pdrestore_follow_messages_total{kind=\"forged\"} 1\n",
            "pdrestore_follow_route_changes_total{change=\"added\"} 3\n",
            "pdrestore_follow_route_changes_total{change=\"refreshed\"} 2\n",
            "pdrestore_follow_resyncs_total 4\n",
            "pdrestore_follow_route_changes_total{change=\"adopted\"} 6\n",
            "pdrestore_follow_route_changes_total{change=\"expired\"} 2\n",
            "pdrestore_follow_targeted_queries_total 8\n",
            "pdrestore_follow_targeted_extended_total 5\n",
            "pdrestore_follow_packets_total{outcome=\"malformed\"} 1\n",
            "pdrestore_follow_netlink_malformed_total 2\n",
            "pdrestore_follow_captures_reopened_total 1\n",
            // The recovery's series, as recover writes them.
            "pdrestore_recover_outcome{outcome=\"partial\"} 1\n",
            "pdrestore_last_complete_timestamp_seconds 42.0\n",
        ] {
            assert!(text.contains(line), "{line:?} not in\n{text}");
        }
    }
}
