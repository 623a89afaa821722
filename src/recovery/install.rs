//! Installing routes while the bindings stream in: the async driver of the
//! sans-IO [`PrefixTable`].
//!
//! The [`Installer`] lists our table into the prefix table at the start,
//! hands it every claim as it arrives, and applies what it queues in batches
//! ([`DEFAULT_BATCH`]) to a [`RouteTable`], so routes reach the kernel while
//! the servers are still streaming; what the route table refuses goes back
//! to the prefix table. [`Installer::finish`] runs the steps of the end in
//! order (settle, withdraw and prune, report), applying the changes of each.
//! Every decision is the prefix table's; this file only moves changes and
//! failures between it and the route table.

use super::claim::{Claim, ClaimMapper};
use super::observed::Observed;
use super::planner::Planner;
use super::prune::PruneRule;
use super::rank::Millis;
use super::settings::PlanSettings;
use super::table::PrefixTable;
pub use super::table::{ForeignConflict, ForeignRoute, TableReport, EXPIRY_SLACK};
use crate::proto::ServerIndex;
use crate::routes::{Change, Interface, RouteTable, TableError};
use std::sync::Arc;

/// Changes are sent to the table in batches of this many.
pub const DEFAULT_BATCH: usize = 2048;

/// What the installation did, net of the whole run: what the prefix table
/// decided, and how it reached the route table.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct InstallReport {
    /// What the prefix table decided: routes added, replaced, unchanged and
    /// removed, refusals, failures, conflicts, foreign routes, the prune.
    pub table: TableReport,
    /// When the first change reached the table (ms on the recovery clock).
    pub first_route_at: Option<Millis>,
    /// Number of table operations performed (adds+replaces+removes sent).
    pub operations: usize,
    /// In a dry run, the changes that would have been made, in order.
    pub dry_run_changes: Vec<Change>,
}

impl InstallReport {
    /// Whether pruning ran.
    pub fn pruned(&self) -> bool {
        self.table.prune.state == super::prune::PruneState::Done
    }
}

/// Streams bindings into a route table. See the module documentation.
pub struct Installer<T: RouteTable> {
    routes: T,
    table: PrefixTable,
    batch: usize,
    first_route_at: Option<Millis>,
    operations: usize,
    dry_run: bool,
    dry_run_changes: Vec<Change>,
    /// `[routes] max_routes_per_second`: changes go out no faster.
    pace: Option<super::pace::Pace>,
}

impl<T: RouteTable> Installer<T> {
    /// List our table from `routes` into a new prefix table and get ready.
    /// With `dry_run` nothing is ever applied; the report says what would
    /// change.
    pub async fn start(
        mut routes: T,
        settings: PlanSettings,
        interfaces: Vec<Interface>,
        dry_run: bool,
    ) -> Result<Self, TableError> {
        let table_id = settings.owner.table();
        let mut table = PrefixTable::new(Arc::new(Planner::new(settings, interfaces)));
        routes
            .list_table(table_id, &mut |r| table.handle_listed(r))
            .await?;
        Ok(Installer {
            routes,
            table,
            batch: DEFAULT_BATCH,
            first_route_at: None,
            operations: 0,
            dry_run,
            dry_run_changes: Vec::new(),
            pace: None,
        })
    }

    /// Prune only the routes out of these interfaces (positions in the
    /// interfaces given to [`Installer::start`]); see
    /// [`PrefixTable::set_prune_scope`].
    pub fn with_prune_scope(mut self, scope: Option<Vec<u32>>) -> Self {
        self.table.set_prune_scope(scope);
        self
    }

    /// What the run knows of its links and server groups, for the prune
    /// rail; see [`PrefixTable::set_parts`].
    pub fn set_parts(&mut self, parts: crate::recovery::prune::Parts) {
        self.table.set_parts(parts);
    }

    /// Send at most `per_second` changes a second (`None`: as fast as the
    /// table takes them), in slices (see [`super::pace::Pace`]).
    pub fn with_pace(mut self, per_second: Option<u32>) -> Self {
        self.pace = per_second.map(super::pace::Pace::new);
        self
    }

    /// Set the batch size.
    pub fn with_batch(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// The route table (for tests and the demo, to look at the result).
    pub fn table(&self) -> &T {
        &self.routes
    }

    /// The mapper that makes [`Claim`]s for this installer on the
    /// connection tasks (see [`crate::requestor::Fanout::start`]).
    pub fn mapper(&self) -> ClaimMapper {
        ClaimMapper(self.table.planner().clone())
    }

    /// Take one whole binding as reported by server `obs.server` (tests and
    /// replays; the recovery takes claims made on the connection tasks).
    pub async fn offer(&mut self, obs: Observed, now: Millis) -> Result<(), TableError> {
        let claim = match self.table.planner().claim(&obs.binding, usize::MAX) {
            Ok(c) => c,
            Err(_) => unreachable!("no relay chain is deeper than usize::MAX"),
        };
        self.offer_claim(obs.server, obs.received, claim, now).await
    }

    /// Take one claim from `server`, received at `received`; routes go out
    /// when a batch is full.
    pub async fn offer_claim(
        &mut self,
        server: ServerIndex,
        received: Millis,
        claim: Claim,
        now: Millis,
    ) -> Result<(), TableError> {
        self.table.handle_claim(server, received, claim, now);
        if self.table.queued() >= self.batch {
            self.flush(now).await?;
        }
        Ok(())
    }

    /// Send the queued changes to the route table now.
    pub async fn flush(&mut self, now: Millis) -> Result<(), TableError> {
        let changes = self.table.poll_changes();
        if changes.is_empty() {
            return Ok(());
        }
        self.operations += changes.len();
        if self.dry_run {
            self.dry_run_changes.extend(changes);
            return Ok(());
        }
        self.first_route_at.get_or_insert(now);
        let Some(pace) = &mut self.pace else {
            let failures = self.routes.submit(changes).await?;
            self.table.handle_failures(failures);
            return Ok(());
        };
        for slice in changes.chunks(pace.slice()) {
            pace.admit(slice.len()).await;
            let failures = self.routes.submit(slice.to_vec()).await?;
            self.table.handle_failures(failures);
        }
        Ok(())
    }

    /// Some adds met routes that came to their keys after the listing:
    /// list the table again so the prefix table tells ours from another's.
    async fn relist(&mut self, now: Millis) -> Result<(), TableError> {
        let table_id = self.table.planner().settings().owner.table();
        let table = &mut self.table;
        self.routes
            .list_table(table_id, &mut |r| table.handle_relisted(r, now))
            .await?;
        self.table.relisted();
        self.flush(now).await?;
        self.sync().await
    }

    /// Wait until the route table has applied everything submitted.
    async fn sync(&mut self) -> Result<(), TableError> {
        if !self.dry_run {
            let late = self.routes.sync().await?;
            self.table.handle_failures(late);
        }
        Ok(())
    }

    /// Settle what streaming left open, withdraw and prune (within `prune`,
    /// which the caller allows only when every server answered completely),
    /// apply it all, and report.
    pub async fn finish(
        self,
        now: Millis,
        prune: PruneRule,
    ) -> Result<(InstallReport, T), TableError> {
        let (report, routes, _) = self.finish_keeping(now, prune).await?;
        Ok((report, routes))
    }

    /// [`Installer::finish`], and the prefix table as the run left it: what
    /// it knows of each route in place ([`PrefixTable::known`], the
    /// ledger), read after the report is made and the run's time taken.
    pub async fn finish_keeping(
        mut self,
        now: Millis,
        prune: PruneRule,
    ) -> Result<(InstallReport, T, PrefixTable), TableError> {
        self.flush(now).await?;
        self.sync().await?;
        if self.table.needs_relisting() {
            self.relist(now).await?;
        }
        self.table.begin_settling();
        while self.table.settle(now, self.batch) {
            self.flush(now).await?;
        }
        // Make-before-break: what settling added is in before anything
        // (a route moving from another metric) comes out.
        self.sync().await?;
        self.table.withdraw(prune, self.dry_run);
        self.flush(now).await?;
        self.sync().await?;
        let t = self.table.report();
        // One line per kind, with a few examples, not one per route: a run
        // may move, or meet foreign routes on, tens of thousands (the
        // summary and --json list them all).
        const EXAMPLES: usize = 5;
        let more = |n: usize| match n.checked_sub(EXAMPLES) {
            Some(rest) if rest > 0 => format!(" and {rest} more"),
            _ => String::new(),
        };
        if !t.moved.is_empty() {
            let examples: Vec<String> = t.moved[..t.moved.len().min(EXAMPLES)]
                .iter()
                .map(|(old, new)| {
                    let (was, is) = (old.gateway, new.gateway);
                    let (from, to) = (&old.interface, &new.interface);
                    format!("{} via {was} dev {from} -> via {is} dev {to}", new.prefix)
                })
                .collect();
            tracing::info!(
                count = t.moved.len(),
                dry_run = self.dry_run,
                "{} our routes whose client moved: {}{}",
                if self.dry_run {
                    "would replace"
                } else {
                    "replacing"
                },
                examples.join(", "),
                more(t.moved.len())
            );
        }
        if !t.foreign_conflicts.is_empty() {
            let examples: Vec<String> = t.foreign_conflicts
                [..t.foreign_conflicts.len().min(EXAMPLES)]
                .iter()
                .map(|c| {
                    let f = &c.foreign;
                    let mut s = format!("{} (protocol ", c.prefix);
                    match f.protocol {
                        Some(p) => s.push_str(&p.to_string()),
                        None => s.push('?'),
                    }
                    if let Some(g) = f.gateway {
                        s.push_str(&format!(" via {g}"));
                    }
                    if let Some(d) = &f.interface {
                        s.push_str(&format!(" dev {d}"));
                    }
                    if let Some(m) = f.metric {
                        s.push_str(&format!(" metric {m}"));
                    }
                    s + ")"
                })
                .collect();
            tracing::warn!(
                count = t.foreign_conflicts.len(),
                "leaving routes that are not ours in place of delegated prefixes': {}{}",
                examples.join(", "),
                more(t.foreign_conflicts.len())
            );
        }
        let report = InstallReport {
            table: t,
            first_route_at: self.first_route_at,
            operations: self.operations,
            dry_run_changes: self.dry_run_changes,
        };
        Ok((report, self.routes, self.table))
    }
}

#[cfg(test)]
#[path = "install_tests.rs"]
mod tests;
