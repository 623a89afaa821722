//! The last recovery's outcome, kept for `pdrestore status` in
//! `state_directory/last-run.json`: written (atomically) by every recovery
//! that may change routes (`recover`, `follow`'s start-up recovery and
//! resyncs), after its report; small (counts and one line per server, not
//! the lists of `--json`).

use super::render::Summary;
use crate::recovery::ledger::RunKind;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The file's name in the state directory.
pub const FILE_NAME: &str = "last-run.json";

/// The last recovery, in short.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastRun {
    /// Which recovery.
    pub run: RunKind,
    /// When it ended (seconds since the Unix epoch).
    pub finished_at: u64,
    /// `complete`, `partial` or `failed`.
    pub outcome: String,
    /// Its exit status (`recover`'s).
    pub exit_code: u8,
    /// Stopped by a signal before every server finished.
    pub interrupted: bool,
    /// Bindings received.
    pub bindings: u64,
    /// Milliseconds from start to end.
    pub duration_ms: u64,
    /// Route counts.
    pub routes: LastRoutes,
    /// `done`, `skipped`, `refused`, `off`, ... (see `recover --json`'s
    /// `routes.prune.state`), with the reason code when it did not run.
    pub prune: String,
    /// Per server, in configuration order.
    pub servers: Vec<LastServer>,
    /// The run's warnings.
    pub warnings: Vec<String>,
}

/// Route counts of the last recovery.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastRoutes {
    /// Prefixes with a route in the plan.
    pub planned: usize,
    /// Added.
    pub added: usize,
    /// Replaced.
    pub replaced: usize,
    /// Already right.
    pub unchanged: usize,
    /// Removed (prune).
    pub removed: usize,
    /// Prefixes refused by the planner.
    pub rejected: usize,
    /// Route changes the kernel refused.
    pub failed: usize,
    /// Prefixes left to another's route.
    pub foreign_conflicts: usize,
}

/// One server's part in the last recovery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastServer {
    /// Address and port.
    pub server: String,
    /// Its group.
    pub group: String,
    /// Its DUID, when it answered.
    pub server_id: Option<String>,
    /// Every query answered whole.
    pub complete: bool,
    /// Bindings received.
    pub bindings: u64,
    /// Short status (`complete`, or the first query's problem).
    pub status: String,
}

impl LastRun {
    /// The short form of `s`, a run of kind `run` that ended at `finished_at`.
    pub fn of(s: &Summary, run: RunKind, finished_at: u64) -> Self {
        let r = &s.routes;
        let prune = match r.prune.reason_code {
            Some(code) => format!("{} ({code})", r.prune.state),
            None => r.prune.state.to_string(),
        };
        LastRun {
            run,
            finished_at,
            outcome: s.outcome.clone(),
            exit_code: s.exit_code,
            interrupted: s.interrupted,
            bindings: s.bindings,
            duration_ms: s.duration_ms,
            routes: LastRoutes {
                planned: r.planned,
                added: r.added,
                replaced: r.replaced,
                unchanged: r.unchanged,
                removed: r.removed,
                rejected: r.rejected.len(),
                failed: r.failed.len(),
                foreign_conflicts: r.foreign_conflicts.len(),
            },
            prune,
            servers: s
                .servers
                .iter()
                .map(|v| LastServer {
                    server: v.server.clone(),
                    group: v.group.clone(),
                    server_id: v.server_id.clone(),
                    complete: v.complete,
                    bindings: v.bindings,
                    status: v.status.clone(),
                })
                .collect(),
            warnings: s.warnings.clone(),
        }
    }

    /// Write it to `dir` (replaced atomically and synced,
    /// [`crate::files::replace`]).
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let body = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        let path = dir.join(FILE_NAME);
        crate::files::replace(&path, 0o600, crate::files::Durability::Synced, |f| {
            std::io::Write::write_all(f, &body)
        })
    }

    /// Read it from `dir`: `Ok(None)` when there is none yet.
    pub fn load(dir: &Path) -> Result<Option<Self>, String> {
        let path = dir.join(FILE_NAME);
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }
}
