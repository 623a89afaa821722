//! An in-memory route table for dry runs and tests.

use super::{Change, Route, RouteError, RouteKey, RouteTable, TableError};
use std::collections::{BTreeMap, BTreeSet};

/// Routes kept in a map, with the kernel's behaviour where it matters:
/// a route out of an interface that does not exist fails ("no such device"),
/// adds replace, removing a route that is gone succeeds.
#[derive(Debug, Default, Clone)]
pub struct MemoryTable {
    routes: BTreeMap<RouteKey, Route>,
    interfaces: Option<BTreeSet<u32>>,
    /// Number of `apply` calls, for tests.
    pub applies: usize,
}

impl MemoryTable {
    /// An empty table that accepts any interface.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty table that knows only these interface indexes.
    pub fn with_interfaces(ifindexes: impl IntoIterator<Item = u32>) -> Self {
        MemoryTable {
            interfaces: Some(ifindexes.into_iter().collect()),
            ..Self::default()
        }
    }

    /// Put a route in directly (another protocol's route, say).
    pub fn insert(&mut self, r: Route) {
        self.routes.insert(r.key(), r);
    }

    /// Every route, ours or not.
    pub fn routes(&self) -> impl Iterator<Item = &Route> {
        self.routes.values()
    }
}

impl RouteTable for MemoryTable {
    async fn list_owned(&mut self, table: u32, protocol: u8) -> Result<Vec<Route>, TableError> {
        Ok(self
            .routes
            .values()
            .filter(|r| r.table == table && r.protocol == protocol)
            .cloned()
            .collect())
    }

    async fn apply(&mut self, changes: &[Change]) -> Result<Vec<RouteError>, TableError> {
        self.applies += 1;
        let mut errors = Vec::new();
        for c in changes {
            match c {
                Change::Add(r) | Change::Replace { new: r, .. } => {
                    if let Some(known) = &self.interfaces {
                        if !known.contains(&r.ifindex) {
                            errors.push(RouteError {
                                op: if matches!(c, Change::Add(_)) {
                                    "add"
                                } else {
                                    "replace"
                                },
                                prefix: r.prefix,
                                message: "No such device".into(),
                            });
                            continue;
                        }
                    }
                    self.routes.insert(r.key(), r.clone());
                }
                Change::Remove(r) => {
                    self.routes.remove(&r.key());
                }
            }
        }
        Ok(errors)
    }
}
