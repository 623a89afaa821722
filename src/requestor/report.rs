//! What the tries on one server came to: per query, and for the server.

use super::retry::Disposition;
use super::{Outcome, QueryStats};
use crate::proto::{Duid, ServerIndex};
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// How one query fared on one server, after its last try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryReport {
    /// Index of the query in [`super::FanoutConfig::queries`].
    pub index: usize,
    /// The outcome of the last try.
    pub outcome: Outcome,
    /// How the policy judged it.
    pub disposition: Disposition,
    /// Tries made.
    pub attempts: u32,
    /// Bindings delivered over every try.
    pub bindings: u64,
    /// Counters of the last try, if it was sent.
    pub stats: Option<QueryStats>,
}

/// How one server fared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerReport {
    /// The server.
    pub server: SocketAddr,
    /// Its position in the configuration.
    pub server_index: ServerIndex,
    /// Its DUID, from OPTION_SERVERID.
    pub server_id: Option<Duid>,
    /// One report per query, in query order.
    pub queries: Vec<QueryReport>,
    /// Connections made (tries), all queries together.
    pub connections: u32,
    /// From the task's start to its end.
    pub duration: Duration,
}

impl ServerReport {
    /// True when every query's answer is whole (complete or no bindings).
    pub fn is_complete(&self) -> bool {
        self.queries.iter().all(|q| q.outcome.is_complete())
    }

    /// Bindings delivered, all queries and tries together.
    pub fn bindings(&self) -> u64 {
        self.queries.iter().map(|q| q.bindings).sum()
    }

    /// True when a server called one of our queries malformed.
    pub fn our_bug(&self) -> bool {
        self.queries
            .iter()
            .any(|q| q.disposition == Disposition::OurBug)
    }
}

impl fmt::Display for ServerReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} bindings in {:.3}s, {} connection(s)",
            self.server,
            self.bindings(),
            self.duration.as_secs_f64(),
            self.connections
        )?;
        if let Some(id) = &self.server_id {
            write!(f, ", server-id {id}")?;
        }
        let dropped: u64 = self
            .queries
            .iter()
            .filter_map(|q| q.stats.as_ref())
            .map(|s| s.dropped)
            .sum();
        if dropped > 0 {
            write!(f, ", {dropped} discarded")?;
        }
        for q in &self.queries {
            let tries = if q.attempts == 1 { "try" } else { "tries" };
            write!(
                f,
                "; query {}: {} ({} {tries})",
                q.index + 1,
                q.outcome,
                q.attempts
            )?;
        }
        Ok(())
    }
}
