//! Recoveries in the shell: the start-up recovery and every resync run
//! `recover` into a route table of their own while the service goes on
//! routing what it snoops; their result is merged by the core
//! ([`crate::follow::core::FollowCore::handle_resync_finished`]).

use super::{list_all, FollowError, LastResync, ResyncFuture, Service};
use crate::agent::{self, Outcome, RecoverError, RecoverOptions, Report};
use crate::routes::NetlinkTable;
use std::future::Future;
use std::time::Instant;

impl<'a> Service<'a> {
    /// Resolves once the service is told to stop (the recovery in flight
    /// then installs what it received and prunes nothing).
    pub(super) fn stop_signal(&self) -> impl Future<Output = ()> + 'a {
        let mut stop = self.stop_tx.subscribe();
        async move {
            let _ = stop.wait_for(|s| *s).await;
        }
    }

    /// Start a resync: `recover` into a route table of its own.
    pub(super) async fn start_resync(&mut self) -> Result<ResyncFuture<'a>, FollowError> {
        self.flush().await?;
        self.sync().await?;
        let mut table = NetlinkTable::open()?;
        let interfaces = table.interfaces().await?;
        let now = Instant::now();
        self.core.handle_resync_started(now);
        self.resync_wanted = false;
        self.resync_start = Some(now);
        tracing::info!("follow: resync (Bulk Leasequery) starting");
        let stop = self.stop_signal();
        let (config, relay) = (self.config, self.relay);
        Ok(Box::pin(async move {
            let opts = RecoverOptions {
                run: crate::recovery::ledger::RunKind::Resync,
                ..RecoverOptions::default()
            };
            agent::recover(config, relay, table, interfaces, &opts, stop)
                .await
                .map(|(report, _)| report)
        }))
    }

    /// A recovery ended: rebuild the core from the kernel, lay snooping on
    /// top. The first one is the start-up recovery: the service is ready
    /// after it, and its failure (no permission, an unusable table) ends
    /// the service.
    pub(super) async fn finish_resync(
        &mut self,
        r: Result<Report, RecoverError>,
    ) -> Result<(), FollowError> {
        let first = self.startup.is_none();
        let started = self.resync_start.take().unwrap_or_else(Instant::now);
        let report = match r {
            Ok(x) => x,
            Err(e) if first => return Err(FollowError::Recover(e)),
            Err(e) => return self.resync_failed(e).await,
        };
        let what = if first { "start-up" } else { "resync" };
        for line in report.to_text().lines() {
            tracing::info!("{what}: {line}");
        }
        if let Some(m) = self.metrics.as_mut() {
            m.recovered(&report);
        }
        let interfaces = self.table.interfaces().await?;
        self.core.handle_interfaces(Instant::now(), interfaces);
        let routes = list_all(&mut self.table, self.config.routes.table).await?;
        let outcome = report.outcome();
        let now = Instant::now();
        let answered = report.answered();
        self.core
            .handle_resync_finished(now, routes, &answered, outcome != Outcome::Failed);
        self.last_resync = Some(LastResync {
            at: now,
            outcome: outcome.as_str(),
            error: None,
        });
        tracing::info!(
            outcome = outcome.as_str(),
            seconds = format!("{:.3}", started.elapsed().as_secs_f64()),
            followed = self.core.followed(),
            "follow: {what} done"
        );
        self.needs().await?;
        self.flush().await?;
        if first {
            // A stop (SIGTERM) during the start-up recovery ends it early:
            // the service stops without ever having been ready.
            let stopped = report.interrupted;
            self.startup = Some(report);
            if stopped {
                tracing::info!(
                    followed = self.core.followed(),
                    "follow: stopped during the start-up recovery, before it was ready"
                );
            } else {
                tracing::info!(followed = self.core.followed(), "follow: ready");
                self.notifier.send("READY=1".into());
            }
        }
        self.send_status();
        self.write_metrics(true);
        Ok(())
    }

    /// The resync could not run (the route table failed): the routes stay
    /// as they are, and the core is rebuilt from them.
    async fn resync_failed(&mut self, e: RecoverError) -> Result<(), FollowError> {
        tracing::warn!(error = %e, "follow: resync failed; the routes stay as they are");
        if let Some(m) = self.metrics.as_mut() {
            m.failed(e.exit_code());
        }
        let routes = list_all(&mut self.table, self.config.routes.table).await?;
        let now = Instant::now();
        self.core.handle_resync_finished(now, routes, &[], false);
        self.last_resync = Some(LastResync {
            at: now,
            outcome: Outcome::Failed.as_str(),
            error: Some(e.to_string()),
        });
        self.write_metrics(true);
        Ok(())
    }
}
