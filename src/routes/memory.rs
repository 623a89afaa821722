//! An in-memory route table for dry runs and tests.

use super::{errno, Change, Route, RouteError, RouteKey, RouteTable, TableError, TableRoute};
use std::collections::{BTreeMap, BTreeSet};

/// Routes kept in a map, with the kernel's behaviour where it matters:
/// a route out of an interface that does not exist fails ("no such device"),
/// an add where any route holds the key fails ("file exists"), a replace
/// creates or overwrites, a remove takes only the very route it names and
/// succeeds when that is gone.
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
    async fn list_table(
        &mut self,
        table: u32,
        each: &mut (dyn FnMut(TableRoute) + Send),
    ) -> Result<(), TableError> {
        for r in self.routes.values().filter(|r| r.table == table) {
            each(TableRoute::from(r));
        }
        Ok(())
    }

    async fn apply(&mut self, changes: &[Change]) -> Result<Vec<RouteError>, TableError> {
        self.applies += 1;
        let mut errors = Vec::new();
        for c in changes {
            let r = c.route();
            let fail = |code| RouteError::from_errno(c.op(), r.prefix, code);
            match c {
                Change::Add(_) | Change::Replace { .. } => {
                    if let Some(known) = &self.interfaces {
                        if !known.contains(&r.ifindex) {
                            errors.push(fail(errno::ENODEV));
                            continue;
                        }
                    }
                    // Create-exclusive: any route of the same key stops an add.
                    if matches!(c, Change::Add(_)) && self.routes.contains_key(&r.key()) {
                        errors.push(fail(errno::EEXIST));
                        continue;
                    }
                    self.routes.insert(r.key(), r.clone());
                }
                Change::Remove(_) => {
                    // Only the very route named (protocol, next hop,
                    // interface); anything else is "already gone".
                    let k = r.key();
                    if self.routes.get(&k).is_some_and(|x| {
                        x.protocol == r.protocol && x.gateway == r.gateway && x.ifindex == r.ifindex
                    }) {
                        self.routes.remove(&k);
                    }
                }
            }
        }
        Ok(errors)
    }
}
