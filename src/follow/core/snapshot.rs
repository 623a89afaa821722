//! What the live view lists (`pdrestore status`, [`crate::follow::live`]):
//! a copy of the followed prefixes that match a filter, taken between two
//! batches, small enough to hand to a task that writes it out (the
//! compact entries, the interface names and server DUIDs by slot, and the
//! client DUIDs they refer to), read back as [`SnapshotRoute`]s.

use super::clients::ClientDuids;
use super::store::{fingerprint, Entry, PKey, F_DROPPED, F_GONE, F_INSPECT, F_SNOOPED, NEVER};
use super::FollowCore;
use crate::proto::Duid;
use ipnet::Ipv6Net;
use std::net::Ipv6Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Which followed prefixes to list: those that match every filter given
/// (none: all of them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotFilter {
    /// Prefixes inside this one (or equal to it).
    pub prefix: Option<Ipv6Net>,
    /// Routes out of the interface of this name.
    pub interface: Option<String>,
    /// Prefixes of this client: those whose client DUID has its
    /// fingerprint, unless the DUID of that fingerprint is known and is
    /// another.
    pub client: Option<Duid>,
}

/// Where a followed prefix's route stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteState {
    /// In the kernel.
    Installed,
    /// Dropped by the kernel with its interface; back when it is up.
    LinkDown,
    /// Deleted by someone else; what that means is decided after the
    /// settle time (with its link, or by an operator).
    Deleted,
    /// Its add met a route at its key; whose it is, is being read.
    Inspecting,
}

impl RouteState {
    fn of(flags: u8) -> RouteState {
        if flags & F_INSPECT != 0 {
            RouteState::Inspecting
        } else if flags & F_GONE != 0 {
            RouteState::Deleted
        } else if flags & F_DROPPED != 0 {
            RouteState::LinkDown
        } else {
            RouteState::Installed
        }
    }

    /// Its name in the live view: `installed`, `link-down`, `deleted`,
    /// `inspecting`.
    pub fn as_str(self) -> &'static str {
        match self {
            RouteState::Installed => "installed",
            RouteState::LinkDown => "link-down",
            RouteState::Deleted => "deleted",
            RouteState::Inspecting => "inspecting",
        }
    }
}

/// One followed prefix of a [`Snapshot`]. Times are whole seconds of the
/// core's clock ([`Snapshot::instant`] makes them instants).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotRoute<'a> {
    /// The delegated prefix.
    pub prefix: Ipv6Net,
    /// The next hop.
    pub gateway: Ipv6Addr,
    /// The interface's name.
    pub interface: &'a str,
    /// When the lease ends (`None`: never).
    pub expires: Option<u32>,
    /// Where its route stands.
    pub state: RouteState,
    /// Learned or confirmed by a snooped REPLY.
    pub snooped: bool,
    /// The last client transaction snooping saw (`None`: none, as for a
    /// prefix learned from the kernel after a resync).
    pub seen: Option<u32>,
    /// The client's DUID (wire octets), when it is known.
    pub client: Option<&'a [u8]>,
    /// The DUID of the server whose REPLY snooping saw.
    pub server: Option<&'a Duid>,
}

/// The followed prefixes that matched a [`SnapshotFilter`], as they were
/// when [`FollowCore::snapshot`] was called: 52 octets a prefix, plus the
/// client DUIDs they refer to. It owns what it holds (it can be moved to
/// another task).
#[derive(Debug)]
pub struct Snapshot {
    epoch: Instant,
    items: Vec<(PKey, Entry)>,
    /// Interface names by slot.
    names: Vec<Arc<str>>,
    /// Server DUIDs by slot.
    servers: Vec<Duid>,
    clients: ClientDuids,
}

impl Snapshot {
    /// Prefixes listed.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// No prefix listed.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The instant `secs` seconds of the core's clock stand for.
    pub fn instant(&self, secs: u32) -> Instant {
        self.epoch + Duration::from_secs(u64::from(secs))
    }

    /// Put the prefixes in order (by address, then length). Not done by
    /// [`FollowCore::snapshot`], so that the writer, not the loop, pays
    /// for it.
    pub fn sort(&mut self) {
        self.items.sort_unstable_by_key(|(k, _)| *k);
    }

    /// The prefixes.
    pub fn routes(&self) -> impl ExactSizeIterator<Item = SnapshotRoute<'_>> + '_ {
        self.items.iter().map(move |(k, e)| SnapshotRoute {
            prefix: k.net(),
            gateway: Ipv6Addr::from(e.gateway),
            interface: self.names.get(usize::from(e.slot)).map_or("", |n| &**n),
            expires: (e.expires != NEVER).then_some(e.expires),
            state: RouteState::of(e.flags),
            snooped: e.flags & F_SNOOPED != 0,
            seen: e.seen.checked_sub(1),
            client: self.clients.get(e.client),
            server: self.servers.get(usize::from(e.server)),
        })
    }
}

impl FollowCore {
    /// The instant the core's clock counts from (the one given to
    /// [`FollowCore::new`]): its seconds are seconds since then.
    pub fn epoch(&self) -> Instant {
        self.clock.epoch()
    }

    /// The followed prefixes that match `filter`, in no order
    /// ([`Snapshot::sort`]).
    pub fn snapshot(&self, filter: &SnapshotFilter) -> Snapshot {
        let slot = match &filter.interface {
            Some(name) => match self.slots.iter().position(|s| *s.name == **name) {
                Some(p) => Some(p as u16),
                None => return self.snapshot_of(Vec::new()),
            },
            None => None,
        };
        let client = match &filter.client {
            Some(d) => {
                let fp = fingerprint(d);
                match self.clients.get(fp) {
                    Some(known) if known != d.as_bytes() => return self.snapshot_of(Vec::new()),
                    _ => Some(fp),
                }
            }
            None => None,
        };
        let keep = |k: &PKey, e: &Entry| {
            slot.is_none_or(|s| e.slot == s)
                && client.is_none_or(|c| e.client == c)
                && filter.prefix.is_none_or(|p| p.contains(&k.net()))
        };
        let mut items = if slot.is_none() && client.is_none() && filter.prefix.is_none() {
            Vec::with_capacity(self.store.len())
        } else {
            Vec::new()
        };
        items.extend(
            self.store
                .iter()
                .filter(|(k, e)| keep(k, e))
                .map(|(k, e)| (*k, *e)),
        );
        self.snapshot_of(items)
    }

    fn snapshot_of(&self, items: Vec<(PKey, Entry)>) -> Snapshot {
        // Most of the DUIDs are wanted: a copy of the lot (a copy of two
        // buffers, not a lookup a prefix) costs the loop less.
        let clients = if items.len() >= self.clients.len() / 2 {
            self.clients.clone()
        } else {
            self.clients.retain(items.iter().map(|(_, e)| e.client))
        };
        Snapshot {
            epoch: self.clock.epoch(),
            names: self.slots.iter().map(|s| s.name.clone()).collect(),
            servers: self.servers.clone(),
            clients,
            items,
        }
    }
}
