//! The binding store: every binding the lab server can serve, compact and
//! indexed for the five query types (RFC 5007 s.4.1.2.1, RFC 5460 s.5.3).
//!
//! A [`LeaseRecord`] is one binding with absolute times (last transaction,
//! end of the preferred and valid lifetimes). A [`StoreBuilder`] takes records
//! one at a time and packs them: client DUIDs are interned, relay chains are
//! pre-encoded as `OPTION_LQ_RELAY_DATA` templates shared by every binding with
//! the same chain (only the innermost peer-address, the client's link-local
//! address, is kept per binding), and indexes are flat lists of binding
//! numbers. Replies are then encoded straight from the store (see
//! `server::encode`); nothing per query is materialised.
//!
//! # Links
//! RFC 5460 s.7.2 speaks of "links that could contain" an address. Here a
//! link is an IPv6 prefix. The links are the prefixes given to
//! [`StoreBuilder::build`] plus, for every relay link-address not inside one of
//! them, the /64 around it. A binding is on the link that contains the
//! innermost non-`::` link-address of its relay chain; a binding without relay
//! data is on the link that contains its own address (or prefix), if any.
//!
//! # Lease state
//! The store serves active bindings. A record may be marked `reclaimed` (Kea's
//! `state: 2`, expired-reclaimed): such a binding is never served unless
//! [`super::ServerConfig::serve_reclaimed`] is set, which mirrors Kea 3.3
//! returning them to QUERY_BY_RELAY_ID and QUERY_BY_REMOTE_ID (see
//! tests/data/kea/README.md). Bindings whose valid lifetime has run out are
//! never served, whatever their state.

use crate::proto::{Binding, Duid, LeaseKind, RelayLayer};
use ipnet::Ipv6Net;
use std::collections::HashMap;
use std::net::Ipv6Addr;

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// One binding to load into the store, with absolute times (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    /// The client's DUID.
    pub client_duid: Duid,
    /// The address or delegated prefix.
    pub lease: LeaseKind,
    /// Client last transaction time (CLT_TIME is `now - cltt` when sent).
    pub cltt: u64,
    /// When the preferred lifetime ends.
    pub preferred_until: u64,
    /// When the valid lifetime ends: the binding is not served from then on.
    pub valid_until: u64,
    /// The relay chain, outermost layer first (as in [`Binding::relay`]).
    pub relay: Vec<RelayLayer>,
    /// Held by the server as expired-reclaimed (Kea state 2): not served by default.
    pub reclaimed: bool,
}

impl LeaseRecord {
    /// A record from a binding as a server sent it at Unix time `at`: the
    /// client was last heard from `clt_time` seconds before `at`, and the
    /// lifetimes run from `at`.
    pub fn from_binding(b: &Binding, at: u64) -> Self {
        LeaseRecord {
            client_duid: b.client_duid.clone(),
            lease: b.lease,
            cltt: at.saturating_sub(u64::from(b.clt_time)),
            preferred_until: at + u64::from(b.preferred_lifetime),
            valid_until: at + u64::from(b.valid_lifetime),
            relay: b.relay.clone(),
            reclaimed: false,
        }
    }
}

/// Why a record cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The client DUID is empty or over 130 octets.
    #[error("client DUID of {0} octets (must be 1 to 130)")]
    BadDuid(usize),
    /// The relay chain does not fit a DHCPv6 option.
    #[error("relay chain encodes to {0} octets, more than an option can carry")]
    RelayTooLarge(usize),
    /// More relay layers than a relay chain may have (RFC 8415 s.7.6: 32 hops).
    #[error("relay chain of {0} layers (at most 32)")]
    TooManyLayers(usize),
    /// More bindings than the store can index.
    #[error("too many bindings")]
    TooMany,
}

/// Flags of an [`Entry`].
const F_ADDRESS: u8 = 1;
const F_RECLAIMED: u8 = 2;
/// No relay template / no link.
pub(crate) const NONE: u32 = u32::MAX;

/// One stored binding (64 octets).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    /// Address, or prefix (network bits as given).
    pub addr: u128,
    /// Innermost relay peer-address (patched into the relay template).
    pub peer: u128,
    /// Client last transaction time.
    pub cltt: u64,
    /// Preferred lifetime from `cltt`, seconds.
    pub preferred: u32,
    /// Valid lifetime from `cltt`, seconds.
    pub valid: u32,
    /// Client number.
    pub client: u32,
    /// Relay template number or [`NONE`].
    pub relay: u32,
    /// Link number or [`NONE`].
    pub link: u32,
    /// Prefix length (128 for an address).
    pub plen: u8,
    /// `F_*` bits.
    pub flags: u8,
}

impl Entry {
    pub fn is_address(&self) -> bool {
        self.flags & F_ADDRESS != 0
    }
    pub fn is_reclaimed(&self) -> bool {
        self.flags & F_RECLAIMED != 0
    }
    /// End of the valid lifetime.
    pub fn valid_until(&self) -> u64 {
        self.cltt + u64::from(self.valid)
    }
    /// End of the preferred lifetime.
    pub fn preferred_until(&self) -> u64 {
        self.cltt + u64::from(self.preferred)
    }
}

/// A pre-encoded OPTION_LQ_RELAY_DATA (header included) whose innermost
/// peer-address is patched per binding.
#[derive(Debug, Clone)]
pub(crate) struct RelayTemplate {
    pub bytes: Box<[u8]>,
    /// Offset of the innermost layer's peer-address field.
    pub inner_peer: usize,
    /// Whether the option's own peer-address field (offset 4) is also the
    /// innermost peer (a one-layer chain).
    pub patch_option_peer: bool,
}

/// Compressed sparse rows: list `i` is `items[starts[i]..starts[i + 1]]`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Lists {
    starts: Vec<u32>,
    items: Vec<u32>,
}

impl Lists {
    /// Two passes over `fill`, which calls `add(list, item)` for every item,
    /// in the same order each time: count, then place. Items keep their order.
    fn build(n: usize, fill: impl Fn(&mut dyn FnMut(u32, u32))) -> Self {
        let mut starts = vec![0u32; n + 1];
        fill(&mut |l, _| starts[l as usize + 1] += 1);
        for i in 0..n {
            starts[i + 1] += starts[i];
        }
        let mut items = vec![0u32; starts[n] as usize];
        let mut next: Vec<u32> = starts[..n].to_vec();
        fill(&mut |l, item| {
            let at = &mut next[l as usize];
            items[*at as usize] = item;
            *at += 1;
        });
        Lists { starts, items }
    }

    pub fn get(&self, i: u32) -> &[u32] {
        let i = i as usize;
        match (self.starts.get(i), self.starts.get(i + 1)) {
            (Some(&a), Some(&b)) => &self.items[a as usize..b as usize],
            _ => &[],
        }
    }
}

/// Accumulates records into a [`BindingStore`].
#[derive(Debug, Default)]
pub struct StoreBuilder {
    entries: Vec<Entry>,
    /// DUID octets of every record, in push order (deduplicated in `build`).
    duids: Vec<u8>,
    /// Offset and length in `duids` of each record's DUID.
    client_spans: Vec<(u32, u8)>,
    templates: Vec<RelayTemplate>,
    template_ids: HashMap<Box<[u8]>, u32>,
    /// Innermost non-:: link-address of each template.
    template_link: Vec<Option<Ipv6Addr>>,
    relay_id_keys: HashMap<Box<[u8]>, u32>,
    remote_id_keys: HashMap<Box<[u8]>, u32>,
    /// Per template: relay-id and remote-id key numbers found in its layers.
    template_relay_ids: Vec<Vec<u32>>,
    template_remote_ids: Vec<Vec<u32>>,
}

/// Encode a relay chain (outermost first) as an OPTION_LQ_RELAY_DATA:
/// peer-address = the outermost layer's peer (as Kea does), then a RELAY-FORW
/// per layer with INTERFACE_ID, REMOTE_ID, RELAY_ID and, except in the
/// innermost layer, RELAY_MSG holding the next layer (RFC 5007 s.4.1.2.4).
/// Returns the bytes and the offset of the innermost peer-address.
pub(crate) fn encode_relay_chain(layers: &[RelayLayer]) -> Result<(Vec<u8>, usize), StoreError> {
    fn put_opt(out: &mut Vec<u8>, code: u16, body: &[u8]) -> Result<(), StoreError> {
        let len = u16::try_from(body.len()).map_err(|_| StoreError::RelayTooLarge(body.len()))?;
        out.extend_from_slice(&code.to_be_bytes());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(body);
        Ok(())
    }
    fn layer(layers: &[RelayLayer], out: &mut Vec<u8>) -> Result<usize, StoreError> {
        let l = &layers[0];
        out.push(12); // RELAY-FORW
        out.push(l.hop_count);
        out.extend_from_slice(&l.link_address.octets());
        let peer_at = out.len();
        out.extend_from_slice(&l.peer_address.octets());
        if let Some(i) = &l.interface_id {
            put_opt(out, 18, i)?;
        }
        if let Some(r) = &l.remote_id {
            put_opt(out, 37, r)?;
        }
        if let Some(d) = &l.relay_id {
            put_opt(out, 53, d.as_bytes())?;
        }
        if layers.len() == 1 {
            return Ok(peer_at);
        }
        out.extend_from_slice(&9u16.to_be_bytes());
        let len_at = out.len();
        out.extend_from_slice(&[0, 0]);
        let inner = layer(&layers[1..], out)?;
        let len = out.len() - len_at - 2;
        let len16 = u16::try_from(len).map_err(|_| StoreError::RelayTooLarge(len))?;
        out[len_at..len_at + 2].copy_from_slice(&len16.to_be_bytes());
        Ok(inner)
    }
    if layers.len() > 32 {
        return Err(StoreError::TooManyLayers(layers.len()));
    }
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(&47u16.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&layers[0].peer_address.octets());
    let inner = layer(layers, &mut out)?;
    let len = out.len() - 4;
    // The CLIENT_DATA around it must fit as well: keep well under 65535.
    if len > 60_000 {
        return Err(StoreError::RelayTooLarge(len));
    }
    out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    Ok((out, inner))
}

impl StoreBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Make room for `n` more records.
    pub fn reserve(&mut self, n: usize) {
        self.entries.reserve(n);
        self.client_spans.reserve(n);
    }

    /// Number of records pushed so far.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no record was pushed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn intern_key(map: &mut HashMap<Box<[u8]>, u32>, key: &[u8]) -> u32 {
        if let Some(&k) = map.get(key) {
            return k;
        }
        let k = map.len() as u32;
        map.insert(key.into(), k);
        k
    }

    /// Add one record.
    pub fn push(&mut self, r: &LeaseRecord) -> Result<(), StoreError> {
        if self.entries.len() >= (u32::MAX - 1) as usize {
            return Err(StoreError::TooMany);
        }
        let d = r.client_duid.as_bytes();
        if d.is_empty() || d.len() > crate::proto::duid::MAX_DUID_LEN {
            return Err(StoreError::BadDuid(d.len()));
        }
        // Provisional client number: one per record; `build` merges equal DUIDs.
        let client = self.client_spans.len() as u32;
        let off = u32::try_from(self.duids.len()).map_err(|_| StoreError::TooMany)?;
        self.client_spans.push((off, d.len() as u8));
        self.duids.extend_from_slice(d);
        let (relay, peer) = if r.relay.is_empty() {
            (NONE, 0)
        } else {
            let (mut bytes, inner_peer) = encode_relay_chain(&r.relay)?;
            let one = r.relay.len() == 1;
            let peer = u128::from_be_bytes(bytes[inner_peer..inner_peer + 16].try_into().unwrap());
            bytes[inner_peer..inner_peer + 16].fill(0);
            if one {
                bytes[4..20].fill(0);
            }
            let id = match self.template_ids.get(bytes.as_slice()) {
                Some(&t) => t,
                None => {
                    let t = self.templates.len() as u32;
                    let bytes: Box<[u8]> = bytes.into();
                    self.template_ids.insert(bytes.clone(), t);
                    self.templates.push(RelayTemplate {
                        bytes,
                        inner_peer,
                        patch_option_peer: one,
                    });
                    self.template_link.push(
                        r.relay
                            .iter()
                            .rev()
                            .map(|l| l.link_address)
                            .find(|a| !a.is_unspecified()),
                    );
                    let mut rids = Vec::new();
                    let mut remids = Vec::new();
                    for l in &r.relay {
                        if let Some(x) = &l.relay_id {
                            let k = Self::intern_key(&mut self.relay_id_keys, x.as_bytes());
                            if !rids.contains(&k) {
                                rids.push(k);
                            }
                        }
                        if let Some(x) = &l.remote_id {
                            let k = Self::intern_key(&mut self.remote_id_keys, x);
                            if !remids.contains(&k) {
                                remids.push(k);
                            }
                        }
                    }
                    self.template_relay_ids.push(rids);
                    self.template_remote_ids.push(remids);
                    t
                }
            };
            (id, peer)
        };
        let (addr, plen, flags) = match r.lease {
            LeaseKind::Address(a) => (u128::from(a), 128, F_ADDRESS),
            LeaseKind::Prefix(p) => (u128::from(p.addr()), p.prefix_len(), 0),
        };
        let flags = flags | if r.reclaimed { F_RECLAIMED } else { 0 };
        let span = |until: u64| u32::try_from(until.saturating_sub(r.cltt)).unwrap_or(u32::MAX);
        self.entries.push(Entry {
            addr,
            peer,
            cltt: r.cltt,
            preferred: span(r.preferred_until),
            valid: span(r.valid_until),
            client,
            relay,
            link: NONE,
            plen,
            flags,
        });
        Ok(())
    }

    /// Finish: sort bindings by address, place them on links (`links` plus a
    /// /64 around every relay link-address outside them), build the indexes.
    pub fn build(mut self, links: &[Ipv6Net]) -> BindingStore {
        let (duids, client_spans) = self.merge_clients();
        self.entries
            .sort_unstable_by_key(|e| (e.addr, e.plen, e.client));
        self.entries.shrink_to_fit();
        let link_table = self.place_on_links(links);
        let ix = self.indexes(link_table.prefixes.len(), client_spans.len());
        BindingStore {
            entries: self.entries,
            duids,
            client_spans,
            templates: self.templates,
            relay_id_keys: self.relay_id_keys,
            remote_id_keys: self.remote_id_keys,
            links: link_table,
            by_link: ix.by_link,
            by_client: ix.by_client,
            by_relay_id: ix.by_relay_id,
            by_remote_id: ix.by_remote_id,
            by_kind: ix.by_kind,
        }
    }

    /// Merge equal DUIDs: client numbers follow DUID order, so that a
    /// client is found by binary search and no hash map is kept. Renumbers
    /// the entries' clients; returns the merged DUID octets and spans.
    fn merge_clients(&mut self) -> (Vec<u8>, Vec<(u32, u8)>) {
        let (duids, client_spans, remap) = {
            let span =
                |&(off, len): &(u32, u8)| &self.duids[off as usize..off as usize + len as usize];
            let mut order: Vec<u32> = (0..self.client_spans.len() as u32).collect();
            order.sort_unstable_by(|&a, &b| {
                span(&self.client_spans[a as usize]).cmp(span(&self.client_spans[b as usize]))
            });
            let mut remap = vec![0u32; order.len()];
            let mut duids = Vec::new();
            let mut spans: Vec<(u32, u8)> = Vec::new();
            let mut last: Option<&[u8]> = None;
            for &p in &order {
                let d = span(&self.client_spans[p as usize]);
                if last != Some(d) {
                    spans.push((duids.len() as u32, d.len() as u8));
                    duids.extend_from_slice(d);
                    last = Some(d);
                }
                remap[p as usize] = spans.len() as u32 - 1;
            }
            duids.shrink_to_fit();
            spans.shrink_to_fit();
            (duids, spans, remap)
        };
        self.duids = Vec::new();
        self.client_spans = Vec::new();
        for e in &mut self.entries {
            e.client = remap[e.client as usize];
        }
        (duids, client_spans)
    }

    /// Put every binding on its link: the link of its relay chain's
    /// innermost link-address (a /64 around it when no configured link holds
    /// it), else the configured link holding its address.
    fn place_on_links(&mut self, links: &[Ipv6Net]) -> LinkTable {
        let mut link_table = LinkTable::new(links);
        let template_links: Vec<u32> = self
            .template_link
            .iter()
            .map(|a| match a {
                Some(a) => link_table.find_or_add_64(*a),
                None => NONE,
            })
            .collect();
        for e in &mut self.entries {
            e.link = if e.relay != NONE {
                template_links[e.relay as usize]
            } else {
                link_table.find(Ipv6Addr::from(e.addr)).unwrap_or(NONE)
            };
        }
        link_table
    }

    /// The lists of binding numbers by link, client, relay-id, remote-id and
    /// kind, each in ascending binding order.
    fn indexes(&self, n_links: usize, n_clients: usize) -> Indexes {
        let entries = &self.entries;
        let (rids, remids) = (&self.template_relay_ids, &self.template_remote_ids);
        let by_relay_keys = |keys: &[Vec<u32>], n: usize| {
            Lists::build(n, |add| {
                for (i, e) in entries.iter().enumerate() {
                    if e.relay != NONE {
                        for &k in &keys[e.relay as usize] {
                            add(k, i as u32);
                        }
                    }
                }
            })
        };
        Indexes {
            by_link: Lists::build(n_links, |add| {
                for (i, e) in entries.iter().enumerate() {
                    if e.link != NONE {
                        add(e.link, i as u32);
                    }
                }
            }),
            by_client: Lists::build(n_clients, |add| {
                for (i, e) in entries.iter().enumerate() {
                    add(e.client, i as u32);
                }
            }),
            by_relay_id: by_relay_keys(rids, self.relay_id_keys.len()),
            by_remote_id: by_relay_keys(remids, self.remote_id_keys.len()),
            by_kind: Lists::build(2, |add| {
                for (i, e) in entries.iter().enumerate() {
                    add(u32::from(e.is_address()), i as u32);
                }
            }),
        }
    }
}

/// What [`StoreBuilder::build`] indexes.
struct Indexes {
    by_link: Lists,
    by_client: Lists,
    by_relay_id: Lists,
    by_remote_id: Lists,
    by_kind: Lists,
}

/// The links: prefixes, looked up longest match first.
#[derive(Debug, Clone, Default)]
pub(crate) struct LinkTable {
    prefixes: Vec<Ipv6Net>,
    /// (prefix length, network bits) -> link number.
    map: HashMap<(u8, u128), u32>,
    /// Prefix lengths present, longest first.
    lens: Vec<u8>,
}

fn mask(a: u128, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        a & (u128::MAX << (128 - u32::from(len)))
    }
}

impl LinkTable {
    fn new(links: &[Ipv6Net]) -> Self {
        let mut t = LinkTable::default();
        for l in links {
            t.add(l.trunc());
        }
        t
    }

    fn add(&mut self, p: Ipv6Net) -> u32 {
        let key = (p.prefix_len(), u128::from(p.network()));
        if let Some(&i) = self.map.get(&key) {
            return i;
        }
        let i = self.prefixes.len() as u32;
        self.prefixes.push(p);
        self.map.insert(key, i);
        if !self.lens.contains(&key.0) {
            self.lens.push(key.0);
            self.lens.sort_unstable_by(|a, b| b.cmp(a));
        }
        i
    }

    fn find(&self, a: Ipv6Addr) -> Option<u32> {
        let a = u128::from(a);
        self.lens
            .iter()
            .find_map(|&len| self.map.get(&(len, mask(a, len))).copied())
    }

    fn find_or_add_64(&mut self, a: Ipv6Addr) -> u32 {
        match self.find(a) {
            Some(i) => i,
            None => self.add(Ipv6Net::new(a, 64).expect("64 <= 128").trunc()),
        }
    }
}

/// Every binding the server can serve, packed and indexed. Immutable once
/// built; share it with `Arc`.
#[derive(Debug)]
pub struct BindingStore {
    pub(crate) entries: Vec<Entry>,
    /// Client DUIDs, deduplicated, in DUID order.
    duids: Vec<u8>,
    /// Offset and length in `duids` of client number `c`.
    client_spans: Vec<(u32, u8)>,
    pub(crate) templates: Vec<RelayTemplate>,
    relay_id_keys: HashMap<Box<[u8]>, u32>,
    remote_id_keys: HashMap<Box<[u8]>, u32>,
    links: LinkTable,
    pub(crate) by_link: Lists,
    pub(crate) by_client: Lists,
    pub(crate) by_relay_id: Lists,
    pub(crate) by_remote_id: Lists,
    /// List 0: prefix bindings, list 1: address bindings, in address order.
    by_kind: Lists,
}

impl BindingStore {
    /// A store of these records, on the links `links` (and derived /64s; see
    /// the module documentation).
    pub fn from_records(records: &[LeaseRecord], links: &[Ipv6Net]) -> Result<Self, StoreError> {
        let mut b = StoreBuilder::new();
        for r in records {
            b.push(r)?;
        }
        Ok(b.build(links))
    }

    /// A store of bindings as a server sent them at Unix time `at` (see
    /// [`LeaseRecord::from_binding`]): what a requestor decoded can be served
    /// again with the same CLT_TIME and lifetimes as of `at`.
    pub fn from_bindings(
        bindings: &[Binding],
        at: u64,
        links: &[Ipv6Net],
    ) -> Result<Self, StoreError> {
        let mut b = StoreBuilder::new();
        for x in bindings {
            b.push(&LeaseRecord::from_binding(x, at))?;
        }
        Ok(b.build(links))
    }

    /// An empty store.
    pub fn empty() -> Self {
        StoreBuilder::new().build(&[])
    }

    /// Number of bindings held (reclaimed and expired ones included).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the store holds no binding.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The links, as prefixes.
    pub fn links(&self) -> &[Ipv6Net] {
        &self.links.prefixes
    }

    /// Approximate heap size of the store in octets.
    pub fn heap_size(&self) -> usize {
        use std::mem::size_of;
        self.entries.capacity() * size_of::<Entry>()
            + self.duids.capacity()
            + self.client_spans.capacity() * 8
            + self
                .templates
                .iter()
                .map(|t| t.bytes.len() + 32)
                .sum::<usize>()
            + 4 * (self.by_link.items.capacity()
                + self.by_client.items.capacity()
                + self.by_client.starts.capacity()
                + self.by_relay_id.items.capacity()
                + self.by_remote_id.items.capacity()
                + self.by_kind.items.capacity())
    }

    /// The link (number) that contains `a`.
    pub(crate) fn link_of(&self, a: Ipv6Addr) -> Option<u32> {
        self.links.find(a)
    }

    /// Client DUID octets of client number `c`.
    pub(crate) fn duid(&self, c: u32) -> &[u8] {
        let (off, len) = self.client_spans[c as usize];
        &self.duids[off as usize..off as usize + len as usize]
    }

    pub(crate) fn client_of(&self, duid: &[u8]) -> Option<u32> {
        let n = self.client_spans.len() as u32;
        let (mut lo, mut hi) = (0u32, n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.duid(mid).cmp(duid) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(mid),
            }
        }
        None
    }

    pub(crate) fn relay_id_list(&self, relay_id: &[u8]) -> &[u32] {
        match self.relay_id_keys.get(relay_id) {
            Some(&k) => self.by_relay_id.get(k),
            None => &[],
        }
    }

    pub(crate) fn remote_id_list(&self, remote_id_body: &[u8]) -> &[u32] {
        match self.remote_id_keys.get(remote_id_body) {
            Some(&k) => self.by_remote_id.get(k),
            None => &[],
        }
    }

    /// Bindings holding address `a`: the IAADDR with that address, and any
    /// delegated prefix containing it (RFC 5007 s.4.1.2.1, QUERY_BY_ADDRESS).
    pub(crate) fn address_matches(&self, a: Ipv6Addr) -> Vec<u32> {
        let a = u128::from(a);
        let mut out = Vec::new();
        let (addresses, prefixes) = (self.by_kind.get(1), self.by_kind.get(0));
        let pos = addresses.partition_point(|&i| self.entries[i as usize].addr < a);
        for &i in &addresses[pos..] {
            if self.entries[i as usize].addr != a {
                break;
            }
            out.push(i);
        }
        // Prefixes are sorted by start; one holding `a` starts at or before it.
        let end = prefixes.partition_point(|&i| self.entries[i as usize].addr <= a);
        for &i in prefixes[..end].iter().rev().take(64) {
            let e = &self.entries[i as usize];
            if mask(a, e.plen) == mask(e.addr, e.plen) {
                out.push(i);
            }
        }
        out.sort_unstable();
        out
    }

    /// The owned form of binding number `i` as it would be sent at Unix time
    /// `now` (for inspection and tests).
    pub fn binding(&self, i: usize, now: u64) -> Option<Binding> {
        let e = self.entries.get(i)?;
        let mut relay = Vec::new();
        if e.relay != NONE {
            let t = &self.templates[e.relay as usize];
            let mut bytes = t.bytes.to_vec();
            patch_peer(&mut bytes, t, e.peer);
            let view = crate::proto::view::Options::new(&bytes, 0, 0);
            let first = view.valid().next();
            if let Some(crate::proto::OptionView::LqRelayData { message, .. }) = first {
                let chain = crate::proto::binding::RelayChain {
                    peer_address: Ipv6Addr::UNSPECIFIED,
                    message,
                };
                relay = chain.layers().map(|l| l.to_layer()).collect();
            }
        }
        let lease = if e.is_address() {
            LeaseKind::Address(Ipv6Addr::from(e.addr))
        } else {
            LeaseKind::Prefix(Ipv6Net::new(Ipv6Addr::from(e.addr), e.plen).ok()?)
        };
        Some(Binding {
            client_duid: Duid::from_bytes(self.duid(e.client)),
            lease,
            preferred_lifetime: remaining(e.preferred_until(), now),
            valid_lifetime: remaining(e.valid_until(), now),
            clt_time: clt_time(e.cltt, now),
            relay,
        })
    }
}

/// Seconds left until `until`, as a u32.
pub(crate) fn remaining(until: u64, now: u64) -> u32 {
    u32::try_from(until.saturating_sub(now)).unwrap_or(u32::MAX)
}

/// CLT_TIME at `now` (RFC 5007 s.4.1.2.3).
pub(crate) fn clt_time(cltt: u64, now: u64) -> u32 {
    u32::try_from(now.saturating_sub(cltt)).unwrap_or(u32::MAX)
}

/// Write the binding's innermost peer into a copy of its template.
pub(crate) fn patch_peer(bytes: &mut [u8], t: &RelayTemplate, peer: u128) {
    let p = peer.to_be_bytes();
    bytes[t.inner_peer..t.inner_peer + 16].copy_from_slice(&p);
    if t.patch_option_peer {
        bytes[4..20].copy_from_slice(&p);
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
