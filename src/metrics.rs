//! Metrics for node_exporter's textfile collector: `recover --metrics-file
//! PATH`, or `metrics_file` in the configuration.
//!
//! Each run rewrites one file in the Prometheus text exposition format
//! (0.0.4, encoded by the official `prometheus-client` crate) with the
//! outcome and figures of that run, all as gauges: what the *last* run
//! did, not counters that grow across runs. The file is replaced
//! atomically ([`write_atomic`]: a temporary file in the same directory,
//! fsync, rename, fsync of the directory), so node_exporter never reads a
//! half-written file, and a write that fails leaves the old file as it was.
//!
//! The writer is reusable: [`write_textfile`] takes any
//! [`Registry`] (a snapshot of counters, e.g. those of a long-running
//! command), [`write_recover`] the figures of one `recover` run
//! ([`RecoverMetrics`], built from an [`agent::Summary`](crate::agent::Summary)).
//! `pdrestore_last_complete_timestamp_seconds` survives runs that are not
//! complete: it is read back from the file being replaced
//! ([`previous_value`]).

use crate::agent::Summary;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The prefix of every metric name.
pub const PREFIX: &str = "pdrestore";

/// The gauge that keeps the end time of the last complete run.
pub const LAST_COMPLETE: &str = "pdrestore_last_complete_timestamp_seconds";

/// The outcomes `pdrestore_recover_outcome` has a series for: those of
/// [`Summary::outcome`], and `error` for a run that ended before a summary
/// (configuration error, no CAP_NET_ADMIN, unusable route table).
pub const OUTCOMES: [&str; 4] = ["complete", "partial", "failed", "error"];

/// The states `pdrestore_prune_state` has a series for (those of
/// [`PruneSummary::state`](crate::agent::PruneSummary::state)).
pub const PRUNE_STATES: [&str; 4] = ["done", "off", "skipped", "refused"];

/// One server's part of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerMetrics {
    /// Address and port, as in the summary (the `server` label).
    pub server: String,
    /// Bindings received.
    pub bindings: u64,
    /// Every query answered whole.
    pub complete: bool,
    /// Seconds from the start to its last answer.
    pub duration_seconds: f64,
}

/// The figures of a run that got as far as a summary.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunFigures {
    /// Per server, in configuration order.
    pub servers: Vec<ServerMetrics>,
    /// Bindings received in all.
    pub bindings: u64,
    /// Prefixes with a route in the plan.
    pub planned: u64,
    /// Routes added.
    pub added: u64,
    /// Routes replaced.
    pub replaced: u64,
    /// Routes already right.
    pub unchanged: u64,
    /// Routes removed (prune).
    pub removed: u64,
    /// Prefixes left to a route that is not ours.
    pub foreign_conflicts: u64,
    /// Routes the kernel refused.
    pub failed: u64,
    /// Prefixes refused, by reason code (`outside-pools`, ...).
    pub rejected: BTreeMap<String, u64>,
    /// Prefixes two servers gave to different clients.
    pub conflicts: u64,
    /// `done`, `off`, `skipped` or `refused`.
    pub prune_state: String,
    /// Our routes listed at the start.
    pub prune_ours: u64,
    /// Our routes no binding backs (removed, or that a prune would remove).
    pub prune_candidates: u64,
    /// Seconds from the start to the end of the run.
    pub duration_seconds: f64,
}

/// A snapshot of one `recover` run, as written to the metrics file.
#[derive(Debug, Clone, PartialEq)]
pub struct RecoverMetrics {
    /// One of [`OUTCOMES`].
    pub outcome: String,
    /// The process exit status.
    pub exit_code: u8,
    /// When the run ended.
    pub finished_at: SystemTime,
    /// The figures; `None` for a run that ended before a summary.
    pub figures: Option<RunFigures>,
}

fn secs(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

fn count(n: usize) -> u64 {
    count_of(n)
}

/// A count as a sample value (saturating).
pub fn count_of(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

impl RecoverMetrics {
    /// The figures of a run that ended with `summary`, at `finished_at`.
    pub fn from_summary(summary: &Summary, finished_at: SystemTime) -> Self {
        let r = &summary.routes;
        let mut rejected = BTreeMap::new();
        for x in &r.rejected {
            *rejected.entry(x.reason_code.clone()).or_insert(0) += 1;
        }
        let figures = RunFigures {
            servers: summary
                .servers
                .iter()
                .map(|s| ServerMetrics {
                    server: s.server.clone(),
                    bindings: s.bindings,
                    complete: s.complete,
                    duration_seconds: secs(s.duration_ms),
                })
                .collect(),
            bindings: summary.bindings,
            planned: count(r.planned),
            added: count(r.added),
            replaced: count(r.replaced),
            unchanged: count(r.unchanged),
            removed: count(r.removed),
            foreign_conflicts: count(r.foreign_conflicts.len()),
            failed: count(r.failed.len()),
            rejected,
            conflicts: count(summary.conflicts.len()),
            prune_state: r.prune.state.to_string(),
            prune_ours: count(r.prune.ours),
            prune_candidates: count(r.prune.candidates),
            duration_seconds: secs(summary.duration_ms),
        };
        RecoverMetrics {
            outcome: summary.outcome.clone(),
            exit_code: summary.exit_code,
            finished_at,
            figures: Some(figures),
        }
    }

    /// A run that ended with `exit_code` before there was a summary
    /// (outcome `error`).
    pub fn failure(exit_code: u8, finished_at: SystemTime) -> Self {
        RecoverMetrics {
            outcome: "error".into(),
            exit_code,
            finished_at,
            figures: None,
        }
    }

    /// Whether this run counts as complete (sets the last complete time).
    pub fn is_complete(&self) -> bool {
        self.outcome == "complete"
    }

    /// The registry to encode: this run, and `last_complete` (seconds since
    /// the epoch; `None`: never, written as 0) unless this run is complete.
    pub fn registry(&self, last_complete: Option<f64>) -> Registry {
        let finished = unix_seconds(self.finished_at);
        let mut registry = Registry::with_prefix(PREFIX);
        registry.register_collector(Box::new(RecoverCollector {
            run: self.clone(),
            finished,
            last_complete: if self.is_complete() {
                finished
            } else {
                last_complete.unwrap_or(0.0)
            },
        }));
        registry
    }
}

/// Seconds since the epoch (0 before it).
pub fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Encodes a [`RecoverMetrics`] in a fixed order (servers in configuration
/// order, reasons sorted), so that two files differ only where the runs do.
#[derive(Debug)]
struct RecoverCollector {
    run: RecoverMetrics,
    finished: f64,
    last_complete: f64,
}

/// The samples of a gauge: a label set and a value each.
type Samples<'a, V> = Vec<(&'a [(&'a str, &'a str)], V)>;

/// One family of `metric_type`: name (without the prefix and the unit),
/// help, unit, and its samples, each made a metric by `make`. Nothing is
/// written for a family without samples.
fn family<V: Copy, M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    (name, help, unit): (&str, &str, Option<&Unit>),
    metric_type: MetricType,
    samples: &[(&[(&str, &str)], V)],
    make: impl Fn(V) -> M,
) -> Result<(), std::fmt::Error> {
    if samples.is_empty() {
        return Ok(());
    }
    let mut m = encoder.encode_descriptor(name, help, unit, metric_type)?;
    match samples {
        [([], v)] => make(*v).encode(m),
        _ => {
            for (labels, v) in samples {
                make(*v).encode(m.encode_family(labels)?)?;
            }
            Ok(())
        }
    }
}

/// One gauge family (see [`family`]).
fn gauge<V: prometheus_client::encoding::EncodeGaugeValue + Copy>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    samples: &[(&[(&str, &str)], V)],
) -> Result<(), std::fmt::Error> {
    family(
        encoder,
        (name, help, unit),
        MetricType::Gauge,
        samples,
        ConstGauge::new,
    )
}

/// One unlabelled sample.
fn one<V>(v: V) -> Samples<'static, V> {
    vec![(&[], v)]
}

/// Label sets of one label each, `key` = each of `values`.
fn label_sets<'a>(
    key: &'a str,
    values: impl Iterator<Item = &'a str>,
) -> Vec<[(&'a str, &'a str); 1]> {
    values.map(|v| [(key, v)]).collect()
}

/// Pairs each label set with its value.
fn samples<'a, V>(
    sets: &'a [[(&'a str, &'a str); 1]],
    values: impl Iterator<Item = V>,
) -> Samples<'a, V> {
    sets.iter().map(|l| &l[..]).zip(values).collect()
}

/// A state set: 1 for the label value that is `current`, 0 for the others.
fn state_set<'a>(sets: &'a [[(&'a str, &'a str); 1]], current: &str) -> Samples<'a, i64> {
    samples(sets, sets.iter().map(|l| i64::from(l[0].1 == current)))
}

impl Collector for RecoverCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        self.encode_run(&mut e)?;
        let Some(f) = &self.run.figures else {
            return Ok(());
        };
        encode_servers(&mut e, f)?;
        encode_routes(&mut e, f)?;
        encode_prune(&mut e, f)
    }
}

impl RecoverCollector {
    /// The run itself: outcome, exit status, when it ended, how long it took.
    fn encode_run(&self, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let run = &self.run;
        let seconds = Unit::Seconds;
        let outcomes = label_sets("outcome", OUTCOMES.into_iter());
        gauge(
            e,
            "recover_outcome",
            "Outcome of the last recover run: 1 for the outcome it had (complete, partial, failed; error when it ended before a summary)",
            None,
            &state_set(&outcomes, &run.outcome),
        )?;
        gauge(
            e,
            "recover_exit_code",
            "Exit status of the last recover run (0 complete, 1 partial, 2 nothing restored, 64 usage, 70 internal, 77 no CAP_NET_ADMIN, 78 configuration)",
            None,
            &one(i64::from(run.exit_code)),
        )?;
        gauge(
            e,
            "last_run_timestamp",
            "When the last recover run ended, seconds since the epoch",
            Some(&seconds),
            &one(self.finished),
        )?;
        gauge(
            e,
            "last_complete_timestamp",
            "When the last complete recover run ended, seconds since the epoch (0: none yet); kept across runs that are not complete",
            Some(&seconds),
            &one(self.last_complete),
        )?;
        if let Some(f) = &run.figures {
            gauge(
                e,
                "recover_duration",
                "Duration of the last recover run",
                Some(&seconds),
                &one(f.duration_seconds),
            )?;
        }
        Ok(())
    }
}

/// Per server: bindings, whole or not, duration.
fn encode_servers(e: &mut DescriptorEncoder, f: &RunFigures) -> Result<(), std::fmt::Error> {
    let seconds = Unit::Seconds;
    let servers = label_sets("server", f.servers.iter().map(|s| &*s.server));
    gauge(
        e,
        "server_bindings",
        "Bindings received from the server in the last recover run",
        None,
        &samples(&servers, f.servers.iter().map(|s| s.bindings)),
    )?;
    gauge(
        e,
        "server_complete",
        "1 when every query to the server was answered whole in the last recover run, 0 otherwise",
        None,
        &samples(&servers, f.servers.iter().map(|s| i64::from(s.complete))),
    )?;
    gauge(
        e,
        "server_duration",
        "Time from the start of the last recover run to the server's last answer",
        Some(&seconds),
        &samples(&servers, f.servers.iter().map(|s| s.duration_seconds)),
    )?;
    Ok(())
}

/// What became of the routes.
fn encode_routes(e: &mut DescriptorEncoder, f: &RunFigures) -> Result<(), std::fmt::Error> {
    for (name, help, v) in [
        (
            "bindings_received",
            "Bindings received from all servers in the last recover run",
            f.bindings,
        ),
        (
            "routes_planned",
            "Prefixes with a route in the plan of the last recover run",
            f.planned,
        ),
        (
            "routes_added",
            "Routes added by the last recover run",
            f.added,
        ),
        (
            "routes_replaced",
            "Routes replaced by the last recover run",
            f.replaced,
        ),
        (
            "routes_unchanged",
            "Routes already right in the last recover run",
            f.unchanged,
        ),
        (
            "routes_removed",
            "Routes removed (pruned) by the last recover run",
            f.removed,
        ),
        (
            "routes_foreign_conflicts",
            "Prefixes left to a route that is not pdrestore's in the last recover run",
            f.foreign_conflicts,
        ),
        (
            "routes_failed",
            "Route changes the kernel refused in the last recover run",
            f.failed,
        ),
        (
            "binding_conflicts",
            "Prefixes two servers gave to different clients in the last recover run",
            f.conflicts,
        ),
    ] {
        gauge(e, name, help, None, &one(v))?;
    }
    let reasons = label_sets("reason", f.rejected.keys().map(|k| &**k));
    gauge(
        e,
        "routes_rejected",
        "Prefixes refused in the last recover run, by reason code (no series: none refused)",
        None,
        &samples(&reasons, f.rejected.values().copied()),
    )?;
    Ok(())
}

/// The prune rail.
fn encode_prune(e: &mut DescriptorEncoder, f: &RunFigures) -> Result<(), std::fmt::Error> {
    let states = label_sets("state", PRUNE_STATES.into_iter());
    gauge(
            e,
            "prune_state",
            "What became of pruning in the last recover run: 1 for its state (done, off, skipped, refused by the prune rail)",
            None,
            &state_set(&states, &f.prune_state),
        )?;
    gauge(
            e,
            "prune_candidates",
            "pdrestore's routes no binding backed in the last recover run (removed, or that a refused prune would have removed)",
            None,
            &one(f.prune_candidates),
        )?;
    gauge(
        e,
        "prune_routes_owned",
        "pdrestore's routes in the table at the start of the last recover run",
        None,
        &one(f.prune_ours),
    )?;
    Ok(())
}

/// `registry` in the Prometheus text exposition format (0.0.4), the format
/// node_exporter's textfile collector reads.
pub fn encode(registry: &Registry) -> String {
    let mut s = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut s, registry)
        .expect("writing to a String cannot fail");
    s
}

/// The value of the unlabelled sample `name` in a text-format file, if it
/// has one (a finite, non-negative number).
pub fn previous_value(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.trim_start().strip_prefix(name)?;
        let mut parts = rest.split_whitespace();
        // The name must end there: `name 12` (not `name_other 12`, not labels).
        if !rest.starts_with([' ', '\t']) {
            return None;
        }
        let v: f64 = parts.next()?.parse().ok()?;
        (v.is_finite() && v >= 0.0).then_some(v)
    })
}

/// Replace the file at `path` with `bytes`, atomically: written to a new
/// temporary file in the same directory (mode 0644, whatever the umask,
/// so that node_exporter, another user, can read it; its name starts with
/// `.` and ends with `.tmp`, which the textfile collector ignores), synced,
/// renamed over `path`, and the directory synced. On any error the
/// temporary file is removed and the old file is left as it was.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(path, |f| f.write_all(bytes))
}

/// Removes the temporary file unless it was renamed (also when a panic
/// unwinds through the write).
struct TempFile {
    path: PathBuf,
    keep: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} names no file", path.display()),
        )
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{:016x}.tmp", fastrand::u64(..)));
    let tmp = TempFile {
        path: dir.join(tmp_name),
        keep: false,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_CLOEXEC)
        .open(&tmp.path)?;
    let mut tmp = tmp;
    // The umask (the service's is 0077) does not apply to an explicit chmod.
    file.set_permissions(std::fs::Permissions::from_mode(0o644))?;
    fill(&mut file)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp.path, path)?;
    tmp.keep = true;
    File::open(dir)?.sync_all()?;
    Ok(())
}

/// Encode `registry` and replace the file at `path` with it
/// ([`write_atomic`]). For any command's snapshot of counters.
pub fn write_textfile(path: &Path, registry: &Registry) -> io::Result<()> {
    write_atomic(path, encode(registry).as_bytes())
}

/// Write the metrics of a `recover` run to `path`, keeping
/// `pdrestore_last_complete_timestamp_seconds` from the file being
/// replaced when this run is not complete.
pub fn write_recover(path: &Path, run: &RecoverMetrics) -> io::Result<()> {
    let previous = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| previous_value(&t, LAST_COMPLETE));
    write_textfile(path, &run.registry(previous))
}

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
    pub counters: crate::follow::Counters,
    /// Packets the capture sockets delivered.
    pub packets: u64,
    /// Packets the snoop parser refused.
    pub malformed: u64,
    /// Packets dropped by the packet budget.
    pub over_budget: u64,
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

/// One counter family (the encoder adds `_total`; see [`family`]).
fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: &[(&[(&str, &str)], u64)],
) -> Result<(), std::fmt::Error> {
    use prometheus_client::metrics::counter::ConstCounter;
    family(
        encoder,
        (name, help, None),
        MetricType::Counter,
        samples,
        ConstCounter::new,
    )
}

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
        let changes = label_sets(
            "change",
            [
                "added",
                "refreshed",
                "moved",
                "removed",
                "relinked",
                "expired",
                "manual_delete",
                "failed",
            ]
            .into_iter(),
        );
        counter(
            &mut e,
            "follow_route_changes",
            "Route changes since the start: added, refreshed (renewals), moved, removed (valid lifetime 0, release), re-added after a link came up, expired, deleted by someone else, refused by the kernel",
            &samples(
                &changes,
                [c.added, c.refreshed, c.moved, c.removed, c.relinked, c.expired, c.manual_deletes, c.failures].into_iter(),
            ),
        )?;
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
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(secs * 1000 + 250)
    }

    fn partial_run() -> RecoverMetrics {
        RecoverMetrics {
            outcome: "partial".into(),
            exit_code: 1,
            finished_at: at(1_764_633_600),
            figures: Some(RunFigures {
                servers: vec![
                    ServerMetrics {
                        server: "[2001:db8::547]:547".into(),
                        bindings: 100,
                        complete: true,
                        duration_seconds: 1.5,
                    },
                    ServerMetrics {
                        server: "192.0.2.7:547".into(),
                        bindings: 0,
                        complete: false,
                        duration_seconds: 5.0,
                    },
                ],
                bindings: 100,
                planned: 97,
                added: 90,
                replaced: 2,
                unchanged: 5,
                removed: 0,
                foreign_conflicts: 1,
                failed: 0,
                rejected: [
                    ("outside-pools".to_string(), 2),
                    ("bad-next-hop".to_string(), 1),
                ]
                .into_iter()
                .collect(),
                conflicts: 3,
                prune_state: "skipped".into(),
                prune_ours: 7,
                prune_candidates: 0,
                duration_seconds: 5.125,
            }),
        }
    }

    #[test]
    fn the_encoding_is_prometheus_text_in_a_fixed_order() {
        let text = encode(&partial_run().registry(Some(1_764_000_000.5)));
        let expected = "\
# HELP pdrestore_recover_outcome Outcome of the last recover run: 1 for the outcome it had (complete, partial, failed; error when it ended before a summary)
# TYPE pdrestore_recover_outcome gauge
pdrestore_recover_outcome{outcome=\"complete\"} 0
pdrestore_recover_outcome{outcome=\"partial\"} 1
pdrestore_recover_outcome{outcome=\"failed\"} 0
pdrestore_recover_outcome{outcome=\"error\"} 0
";
        assert!(text.starts_with(expected), "{text}");
        for line in [
            "pdrestore_recover_exit_code 1\n",
            "# TYPE pdrestore_last_run_timestamp_seconds gauge\npdrestore_last_run_timestamp_seconds 1764633600.25\n",
            "pdrestore_last_complete_timestamp_seconds 1764000000.5\n",
            "pdrestore_recover_duration_seconds 5.125\n",
            "pdrestore_server_bindings{server=\"[2001:db8::547]:547\"} 100\npdrestore_server_bindings{server=\"192.0.2.7:547\"} 0\n",
            "pdrestore_server_complete{server=\"[2001:db8::547]:547\"} 1\npdrestore_server_complete{server=\"192.0.2.7:547\"} 0\n",
            "pdrestore_server_duration_seconds{server=\"192.0.2.7:547\"} 5.0\n",
            "pdrestore_bindings_received 100\n",
            "pdrestore_routes_planned 97\n",
            "pdrestore_routes_added 90\n",
            "pdrestore_routes_replaced 2\n",
            "pdrestore_routes_unchanged 5\n",
            "pdrestore_routes_removed 0\n",
            "pdrestore_routes_foreign_conflicts 1\n",
            "pdrestore_routes_failed 0\n",
            "pdrestore_binding_conflicts 3\n",
            "pdrestore_routes_rejected{reason=\"bad-next-hop\"} 1\npdrestore_routes_rejected{reason=\"outside-pools\"} 2\n",
            "pdrestore_prune_state{state=\"done\"} 0\npdrestore_prune_state{state=\"off\"} 0\npdrestore_prune_state{state=\"skipped\"} 1\npdrestore_prune_state{state=\"refused\"} 0\n",
            "pdrestore_prune_candidates 0\n",
            "pdrestore_prune_routes_owned 7\n",
        ] {
            assert!(text.contains(line), "{line:?} not in:\n{text}");
        }
        assert!(!text.contains("# EOF"), "0.0.4 text, not OpenMetrics");
    }

    #[test]
    fn a_parser_reads_back_what_was_encoded() {
        let text = encode(&partial_run().registry(None));
        let lines = text.lines().map(|l| Ok(l.to_string()));
        let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
        let value = |name: &str, label: Option<(&str, &str)>| -> f64 {
            let s = scrape
                .samples
                .iter()
                .find(|s| s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
                .unwrap_or_else(|| panic!("no {name} {label:?} in\n{text}"));
            match s.value {
                prometheus_parse::Value::Gauge(v) => v,
                ref other => panic!("{name} is not a gauge: {other:?}"),
            }
        };
        assert_eq!(
            value("pdrestore_recover_outcome", Some(("outcome", "partial"))),
            1.0
        );
        assert_eq!(
            value("pdrestore_recover_outcome", Some(("outcome", "complete"))),
            0.0
        );
        assert_eq!(
            value(
                "pdrestore_server_complete",
                Some(("server", "192.0.2.7:547"))
            ),
            0.0
        );
        assert_eq!(
            value(
                "pdrestore_routes_rejected",
                Some(("reason", "outside-pools"))
            ),
            2.0
        );
        // Never complete: 0, so that "too old" alerts fire.
        assert_eq!(value(LAST_COMPLETE, None), 0.0);
        assert_eq!(previous_value(&text, LAST_COMPLETE), Some(0.0));
    }

    #[test]
    fn a_complete_run_sets_the_last_complete_time_and_others_keep_it() {
        let mut run = partial_run();
        run.outcome = "complete".into();
        run.exit_code = 0;
        let text = encode(&run.registry(Some(5.0)));
        assert_eq!(previous_value(&text, LAST_COMPLETE), Some(1_764_633_600.25));
        let text = encode(&partial_run().registry(Some(5.0)));
        assert_eq!(previous_value(&text, LAST_COMPLETE), Some(5.0));
        assert_eq!(
            previous_value(&text, "pdrestore_last_run_timestamp_seconds"),
            Some(1_764_633_600.25)
        );
    }

    #[test]
    fn a_run_without_a_summary_has_only_its_outcome_and_times() {
        let text = encode(&RecoverMetrics::failure(77, at(10)).registry(Some(3.0)));
        assert!(
            text.contains("pdrestore_recover_outcome{outcome=\"error\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("pdrestore_recover_exit_code 77\n"), "{text}");
        assert!(
            text.contains("pdrestore_last_complete_timestamp_seconds 3.0\n"),
            "{text}"
        );
        assert!(!text.contains("pdrestore_routes"), "{text}");
        assert!(!text.contains("pdrestore_server"), "{text}");
    }

    #[test]
    fn previous_value_reads_only_that_sample() {
        let text = "# HELP pdrestore_last_complete_timestamp_seconds x\n\
            pdrestore_last_complete_timestamp_seconds_other 9\n\
            pdrestore_last_complete_timestamp_seconds{a=\"b\"} 8\n\
            pdrestore_last_complete_timestamp_seconds 1.5e9\n";
        assert_eq!(previous_value(text, LAST_COMPLETE), Some(1.5e9));
        assert_eq!(previous_value("garbage\n", LAST_COMPLETE), None);
        assert_eq!(
            previous_value(&format!("{LAST_COMPLETE} NaN\n"), LAST_COMPLETE),
            None
        );
        assert_eq!(
            previous_value(&format!("{LAST_COMPLETE} -1\n"), LAST_COMPLETE),
            None
        );
    }

    /// Files in `dir`, sorted.
    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn the_write_replaces_the_file_readable_by_others() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pdrestore.prom");
        write_atomic(&p, b"a 1\n").unwrap();
        write_atomic(&p, b"a 2\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "a 2\n");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        assert_eq!(names(dir.path()), ["pdrestore.prom"]);
    }

    #[test]
    fn a_write_that_fails_midway_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pdrestore.prom");
        write_atomic(&p, b"old 1\n").unwrap();
        let err = write_atomic_with(&p, |f| {
            f.write_all(b"new 1\nhalf")?;
            Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"))
        })
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::StorageFull);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "old 1\n");
        assert_eq!(names(dir.path()), ["pdrestore.prom"]);
    }

    #[test]
    fn a_panic_between_the_temporary_write_and_the_rename_leaves_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pdrestore.prom");
        write_atomic(&p, b"old 1\n").unwrap();
        let seen = std::sync::Mutex::new(Vec::new());
        let r = std::panic::catch_unwind(|| {
            let _ = write_atomic_with(&p, |f| {
                f.write_all(b"new 1\n")?;
                f.sync_all()?;
                // The temporary is complete and synced; the process dies
                // before the rename.
                *seen.lock().unwrap() = names(dir.path());
                panic!("killed before the rename");
            });
        });
        assert!(r.is_err());
        let seen = seen.into_inner().unwrap();
        assert_eq!(seen.len(), 2, "{seen:?}");
        let tmp = seen.iter().find(|n| *n != "pdrestore.prom").unwrap();
        // A temporary left by a real kill is not read by the collector (*.prom).
        assert!(
            tmp.starts_with(".pdrestore.prom.") && tmp.ends_with(".tmp"),
            "{tmp}"
        );
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "old 1\n");
        assert_eq!(names(dir.path()), ["pdrestore.prom"]);
    }

    #[test]
    fn a_directory_that_cannot_be_written_fails_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-dir").join("pdrestore.prom");
        assert_eq!(
            write_atomic(&missing, b"a 1\n").unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        // A file where the directory should be.
        let file = dir.path().join("file");
        std::fs::write(&file, "x").unwrap();
        assert!(write_atomic(&file.join("pdrestore.prom"), b"a 1\n").is_err());
        assert_eq!(names(dir.path()), ["file"]);
        assert!(write_atomic(Path::new("/"), b"a 1\n").is_err());
    }

    #[test]
    fn write_recover_keeps_the_last_complete_time_of_the_file_it_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pdrestore.prom");
        let mut complete = partial_run();
        complete.outcome = "complete".into();
        complete.exit_code = 0;
        complete.finished_at = at(100);
        write_recover(&p, &complete).unwrap();
        let mut later = partial_run();
        later.finished_at = at(200);
        write_recover(&p, &later).unwrap();
        write_recover(&p, &RecoverMetrics::failure(78, at(300))).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(previous_value(&text, LAST_COMPLETE), Some(100.25));
        assert_eq!(
            previous_value(&text, "pdrestore_last_run_timestamp_seconds"),
            Some(300.25)
        );
    }

    #[test]
    fn follow_metrics_add_counters_to_the_recovery_series() {
        let counters = crate::follow::Counters {
            replies: 7,
            added: 3,
            refreshed: 2,
            forged: 1,
            resyncs: 4,
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
            "pdrestore_follow_packets_total{outcome=\"malformed\"} 1\n",
            // The recovery's series, as recover writes them.
            "pdrestore_recover_outcome{outcome=\"partial\"} 1\n",
            "pdrestore_last_complete_timestamp_seconds 42.0\n",
        ] {
            assert!(text.contains(line), "{line:?} not in\n{text}");
        }
    }
}
