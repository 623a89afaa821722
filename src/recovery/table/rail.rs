//! The rail per part ([`crate::recovery::prune::decide_part`]): the
//! candidates of a link (the interface it is on) that answered completely
//! but empty, or would lose more than the limit of its own routes, are
//! kept as listed while the rest is pruned.

use super::PrefixTable;
use crate::recovery::prune::{self, HeldBack, Part, Parts, PruneRule};
use crate::routes::Route;

impl PrefixTable {
    /// What the run knows of its links and server groups (see [`Parts`]),
    /// for the rail at the end.
    pub fn set_parts(&mut self, parts: Parts) {
        self.parts = parts;
    }

    /// Count one of our listed routes on interface position `iface` in or out.
    pub(super) fn count_owned(&mut self, iface: u32, add: bool) {
        let i = iface as usize;
        if self.owned_on.len() <= i {
            self.owned_on.resize(i + 1, 0);
        }
        let n = &mut self.owned_on[i];
        *n = if add { *n + 1 } else { n.saturating_sub(1) };
    }

    /// The interface position of `ifindex`, if it is one of the planner's.
    fn position(&self, ifindex: u32) -> Option<u32> {
        self.planner
            .interfaces()
            .iter()
            .position(|i| i.index == ifindex)
            .map(|p| p as u32)
    }

    /// Hold back the links the rail refuses: of `candidates` (slots) and
    /// `stale` (routes at another metric or of a gone interface), those on
    /// such a link are kept as listed and taken out of both. The links held
    /// back, in interface order.
    pub(super) fn hold_back_links(
        &mut self,
        rule: PruneRule,
        candidates: &mut Vec<u32>,
        stale: &mut Vec<Route>,
    ) -> Vec<HeldBack> {
        let PruneRule::Allowed { limit, force } = rule else {
            return Vec::new();
        };
        let mut lose = vec![0usize; self.owned_on.len()];
        for &i in candidates.iter() {
            if let Some(n) = lose.get_mut(self.slots[i].route.iface as usize) {
                *n += 1;
            }
        }
        for r in stale.iter() {
            if let Some(n) = self
                .position(r.ifindex)
                .and_then(|p| lose.get_mut(p as usize))
            {
                *n += 1;
            }
        }
        let mut held: Vec<HeldBack> = Vec::new();
        let mut kept: Vec<u32> = Vec::new();
        for (p, &n) in lose.iter().enumerate() {
            let p32 = p as u32;
            if !self.parts.links.iter().any(|(q, _)| *q == p32) {
                // No link asked about on it (relay-id mode): the run's rail.
                continue;
            }
            let ours = self.owned_on[p] as usize;
            let empty = self.parts.empty.contains(&p32);
            let Some(reason) = prune::decide_part(limit, force, ours, n, empty) else {
                continue;
            };
            let links = self
                .parts
                .links
                .iter()
                .filter(|(q, l)| *q == p32 && !l.is_unspecified())
                .map(|(_, l)| *l)
                .collect();
            kept.push(p32);
            held.push(HeldBack {
                part: Part::Link {
                    interface: self.planner.interfaces()[p].name.clone(),
                    links,
                },
                reason,
                ours,
                candidates: n,
            });
        }
        if held.is_empty() {
            return held;
        }
        let (keep, go): (Vec<u32>, Vec<u32>) = candidates
            .iter()
            .partition(|&&i| kept.contains(&self.slots[i].route.iface));
        self.restore_listed(&keep);
        *candidates = go;
        let (keep, go): (Vec<Route>, Vec<Route>) = std::mem::take(stale)
            .into_iter()
            .partition(|r| self.position(r.ifindex).is_some_and(|p| kept.contains(&p)));
        self.stale.extend(keep);
        *stale = go;
        held
    }
}
