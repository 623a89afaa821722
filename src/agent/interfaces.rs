//! Waiting at boot for the interfaces the configuration names: routes out
//! of an interface that is not there cannot be installed, and a VLAN or a
//! bond often comes up a few seconds after pdrestore starts.

use crate::config::Config;
use crate::routes::{NetlinkTable, TableError};
use std::time::{Duration, Instant};

/// How often the links are read again while waiting.
const POLL: Duration = Duration::from_millis(200);

/// Wait, at most `config.interface_wait`, until every interface that
/// `[routes.interfaces]` names exists and is up; returns those that still
/// do not (or are down). `stop` ends the wait early.
pub async fn wait_for_interfaces(
    table: &mut NetlinkTable,
    config: &Config,
    stop: impl std::future::Future<Output = ()>,
) -> Result<Vec<String>, TableError> {
    let wanted = config.mapped_interfaces();
    let until = Instant::now() + config.interface_wait;
    tokio::pin!(stop);
    let mut told = false;
    loop {
        let links = table.links().await?;
        let missing: Vec<String> = wanted
            .iter()
            .filter(|w| !links.iter().any(|l| *l.name == ***w && l.up))
            .cloned()
            .collect();
        if missing.is_empty() || Instant::now() >= until {
            return Ok(missing);
        }
        if !told {
            told = true;
            tracing::info!(
                missing = missing.join(" "),
                wait = %humantime::format_duration(config.interface_wait),
                "waiting for interfaces to exist and be up"
            );
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = &mut stop => return Ok(missing),
        }
    }
}
