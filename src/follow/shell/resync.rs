//! A resync in the shell: the route table goes to `recover` until it is
//! done, the core holds its changes meanwhile, and the result is merged
//! by the core ([`crate::follow::core::FollowCore::handle_resync_finished`]).

use super::{list_all, FollowError, ResyncFuture, Service};
use crate::agent::{self, Outcome, RecoverError, RecoverOptions, Report};
use crate::routes::{Interface, NetlinkTable};
use std::time::Instant;

impl<'a> Service<'a> {
    /// Start a resync: the table goes to the recovery until it is done.
    pub(super) async fn start_resync(&mut self) -> Result<Option<ResyncFuture<'a>>, FollowError> {
        self.flush().await?;
        self.sync().await?;
        let Some(mut table) = self.table.take() else {
            return Ok(None);
        };
        let interfaces: Vec<Interface> = table.interfaces().await?;
        let now = Instant::now();
        self.core.handle_resync_started(now);
        self.resync_wanted = false;
        self.resync_start = Some(now);
        tracing::info!("follow: resync (Bulk Leasequery) starting");
        let mut stop = self.stop_tx.subscribe();
        let stop = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        let (config, relay) = (self.config, self.relay);
        Ok(Some(Box::pin(async move {
            let opts = RecoverOptions::default();
            agent::recover(config, relay, table, interfaces, &opts, stop).await
        })))
    }

    /// The resync ended: rebuild from the kernel, lay snooping on top.
    pub(super) async fn finish_resync(
        &mut self,
        r: Result<(Report, NetlinkTable), RecoverError>,
    ) -> Result<(), FollowError> {
        let started = self.resync_start.take().unwrap_or_else(Instant::now);
        let (report, mut table) = match r {
            Ok(x) => x,
            Err(e) => return self.resync_failed(e).await,
        };
        for line in report.to_text().lines() {
            tracing::info!("resync: {line}");
        }
        if let Some(m) = self.metrics.as_mut() {
            m.recovered(&report);
        }
        let interfaces = table.interfaces().await?;
        self.core.handle_interfaces(Instant::now(), interfaces);
        let routes = list_all(&mut table, self.config.routes.table).await?;
        let outcome = report.outcome();
        let now = Instant::now();
        self.core.handle_resync_finished(
            now,
            routes,
            &report.answered(),
            outcome != Outcome::Failed,
        );
        self.last_resync = Some((now, outcome.as_str().to_string()));
        self.table = Some(table);
        tracing::info!(
            outcome = outcome.as_str(),
            seconds = format!("{:.3}", started.elapsed().as_secs_f64()),
            followed = self.core.followed(),
            "follow: resync done"
        );
        self.needs().await?;
        self.flush().await?;
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
        let mut t = NetlinkTable::open()?;
        let routes = list_all(&mut t, self.config.routes.table).await?;
        let now = Instant::now();
        self.core.handle_resync_finished(now, routes, &[], false);
        self.last_resync = Some((now, format!("error: {e}")));
        self.table = Some(t);
        self.write_metrics(true);
        Ok(())
    }
}
