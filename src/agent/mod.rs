//! `pdrestore recover`: the main job.
//!
//! Query every configured server at once (QUERY_BY_RELAY_ID for each
//! configured link, RFC 5460 s.5.3.1, s.6.4; or QUERY_BY_LINK_ADDRESS per
//! link), feed the bindings into the installer as they arrive
//! (reconciliation per RFC 5007 s.4.3.4, route planning, batched
//! installation), then finish the plan and report.
//!
//! Bindings from a server whose answer stayed partial are still used (they
//! are what the server said), but pruning runs only when every server
//! group answered completely (servers of one group are replicas: one
//! member's whole answer is the group's, `groups.rs`), so a failing server
//! never takes routes away; the rail looks at each link and group too.
//!
//! - [`run`](fn@run): the command in this namespace: the permission check,
//!   the wait for the interfaces ([`interfaces`]), then [`recover`].
//! - [`recover`]: the recovery into any route table (`run.rs`).
//! - [`Report`] (`report.rs`): what it did, typed, with the outcome policy.
//! - [`Summary`] (`render.rs`, the servers in `render_servers.rs`, the groups in
//!   `render_groups.rs`): its JSON form and text.

use crate::config::Config;
use crate::exit;
use crate::proto::Duid;
use crate::routes::{NetlinkTable, TableError};
use futures::FutureExt;
use std::time::Duration;

mod groups;
pub mod interfaces;
pub mod last_run;
pub mod memory;
mod render;
mod render_groups;
mod render_servers;
mod report;
mod run;

pub use interfaces::wait_for_interfaces;
pub use render::{
    ChangeSummary, ConflictSummary, FailedSummary, ForeignConflictSummary, MovedSummary,
    PruneSummary, RejectedSummary, RouteSummary, Summary,
};
pub use render_groups::GroupSummary;
pub use render_servers::{QuerySummary, ServerSummary, StatusSummary};
pub use report::{groups_of, GroupPart, Note, Outcome, Report, ServerPart};
pub use run::recover;

/// How to run.
#[derive(Debug, Clone)]
pub struct RecoverOptions {
    /// Plan and diff only; touch nothing.
    pub dry_run: bool,
    /// Interval of progress lines in the log.
    pub progress_every: Duration,
    /// Prune past the rail (`recover --force-prune`): an empty answer or a
    /// removal over `prune_limit` is pruned all the same. Incomplete answers
    /// still prune nothing.
    pub force_prune: bool,
    /// Which recovery this is (named in the ledger and the last run's file).
    pub run: crate::recovery::ledger::RunKind,
}

impl Default for RecoverOptions {
    fn default() -> Self {
        RecoverOptions {
            dry_run: false,
            progress_every: Duration::from_secs(5),
            force_prune: false,
            run: crate::recovery::ledger::RunKind::Recover,
        }
    }
}

/// Why recovery could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    /// The route table failed as a whole.
    #[error(transparent)]
    Table(#[from] TableError),
    /// We may not change routes: found before any server is asked.
    #[error("changing routes needs CAP_NET_ADMIN ({0}): run as root, or through pdrestore.service, which grants it; `pdrestore recover --dry-run` needs no privilege")]
    NoPermission(TableError),
}

impl RecoverError {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            RecoverError::NoPermission(_) => exit::NOPERM,
            RecoverError::Table(_) => exit::SOFTWARE,
        }
    }
}

/// `pdrestore recover` in the calling thread's network namespace: open the
/// kernel's table, make sure we may change it (before asking any server),
/// wait for the interfaces the configuration names, then [`recover`].
pub async fn run(
    config: &Config,
    relay: &Duid,
    opts: &RecoverOptions,
    stop: impl std::future::Future<Output = ()>,
) -> Result<Report, RecoverError> {
    let stop = stop.shared();
    tracing::debug!(
        dry_run = opts.dry_run,
        servers = config.servers.len(),
        worst_case = %config.worst_case(),
        "recover: starting"
    );
    let mut table = NetlinkTable::open()?;
    if !opts.dry_run {
        table.check_write_access().await.map_err(|e| {
            if e.is_permission_denied() {
                RecoverError::NoPermission(e)
            } else {
                RecoverError::Table(e)
            }
        })?;
    }
    tracing::debug!(
        dry_run = opts.dry_run,
        "recover: the route table is writable"
    );
    let missing = wait_for_interfaces(&mut table, config, stop.clone()).await?;
    tracing::debug!(
        missing = missing.len(),
        "recover: done waiting for interfaces"
    );
    for m in &missing {
        tracing::warn!(interface = %m, "interface named in [routes.interfaces] is missing or down");
    }
    let interfaces = table.interfaces().await?;
    let (report, _) = recover(config, relay, table, interfaces, opts, stop).await?;
    Ok(report)
}
