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
//! ([`RecoverMetrics`], built from an [`agent::Report`](crate::agent::Report)).
//! [`family`] has the encoding helpers that this module and `follow`'s
//! metrics share.
//! `pdrestore_last_complete_timestamp_seconds` survives runs that are not
//! complete: it is read back from the file being replaced
//! ([`previous_value`]).

use prometheus_client::registry::Registry;
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// The prefix of every metric name.
pub const PREFIX: &str = "pdrestore";

/// The gauge that keeps the end time of the last complete run.
pub const LAST_COMPLETE: &str = "pdrestore_last_complete_timestamp_seconds";

pub mod family;
mod recover;

pub use recover::{
    GroupMetrics, RecoverMetrics, Refusal, RunFigures, ServerMetrics, OUTCOMES, PRUNE_STATES,
};

/// A count as a sample value (saturating).
pub fn count_of(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Seconds since the epoch (0 before it).
pub fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
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

/// [`write_atomic`], with what `fill` writes ([`crate::files::replace`]:
/// mode 0644, synced).
fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    crate::files::replace(path, 0o644, crate::files::Durability::Synced, fill)
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

#[cfg(test)]
mod tests;
