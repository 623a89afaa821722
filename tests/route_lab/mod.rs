//! Helpers shared by the end-to-end recovery tests (tests/recover.rs,
//! tests/fault_matrix.rs): binding builders and a reader of the kernel table.
#![allow(dead_code)]

use pdrestore::netns::NetNs;
use pdrestore::proto::{Binding, LeaseKind, RelayLayer};

/// The Relay-ID the tests recover for.
pub const RELAY: &str = "000200000009010203040506";

/// One relay layer (hop-count 0) with an interface-id and maybe a Relay-ID.
pub fn layer(link: &str, peer: &str, ifid: &str, relay_id: Option<&str>) -> RelayLayer {
    RelayLayer {
        hop_count: 0,
        link_address: link.parse().unwrap(),
        peer_address: peer.parse().unwrap(),
        interface_id: Some(ifid.as_bytes().to_vec()),
        remote_id: None,
        relay_id: relay_id.map(|r| r.parse().unwrap()),
    }
}

/// A delegated-prefix binding (preferred 1800 s, valid 3600 s).
pub fn pd(client: &str, prefix: &str, clt: u32, relay: Vec<RelayLayer>) -> Binding {
    Binding {
        client_duid: client.parse().unwrap(),
        lease: LeaseKind::Prefix(prefix.parse().unwrap()),
        preferred_lifetime: 1800,
        valid_lifetime: 3600,
        clt_time: clt,
        relay,
    }
}

/// The lines of `ip -6 route show table TABLE` in the namespace; empty when
/// the kernel has not made the table yet (it does so with its first route).
pub fn table_lines(ns: &NetNs, table: u32) -> Vec<String> {
    match ns.ip(["-6", "route", "show", "table", &table.to_string()]) {
        Ok(t) => t.lines().map(str::to_owned).collect(),
        Err(e) if e.to_string().contains("FIB table does not exist") => Vec::new(),
        Err(e) => panic!("{e}"),
    }
}
