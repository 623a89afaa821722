//! Encoding replies straight from the store into a write buffer, each message
//! with its 2-octet length prefix (RFC 5460 s.5.1).
//!
//! Message shapes (RFC 5460 s.5.2, s.7.2; RFC 5007 s.4.1.2.2):
//! - LEASEQUERY-REPLY: CLIENTID (the requestor's, echoed), SERVERID,
//!   STATUS_CODE when there is one, then the first OPTION_CLIENT_DATA.
//! - LEASEQUERY-DATA: one OPTION_CLIENT_DATA and nothing else.
//! - LEASEQUERY-DONE: no option, or a STATUS_CODE when the query ended in error.
//!
//! OPTION_CLIENT_DATA holds CLIENTID, one IAADDR or IAPREFIX per binding with
//! lifetimes as of `now`, CLT_TIME, and OPTION_LQ_RELAY_DATA when relay data
//! is stored and wanted.

use super::store::{clt_time, patch_peer, remaining, BindingStore, NONE};
use crate::proto::{StatusCode, Xid};
use bytes::{BufMut, BytesMut};

/// Message types written here.
pub(crate) const REPLY: u8 = 15;
/// A plain DHCPv6 REPLY, only written by the `plain-reply` fault.
const PLAIN_REPLY: u8 = 7;
pub(crate) const DONE: u8 = 16;
pub(crate) const DATA: u8 = 17;

/// A frame would not fit the 2-octet length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooLarge;

/// Start a frame: length placeholder, msg-type, transaction-id. Returns where it starts.
fn begin(buf: &mut BytesMut, msg_type: u8, xid: Xid) -> usize {
    let start = buf.len();
    buf.put_u16(0);
    buf.put_u8(msg_type);
    buf.put_slice(&xid.octets());
    start
}

/// Patch the frame's length, or drop the frame if it is too large.
fn finish(buf: &mut BytesMut, start: usize) -> Result<(), TooLarge> {
    let len = buf.len() - start - 2;
    match u16::try_from(len) {
        Ok(l) => {
            buf[start..start + 2].copy_from_slice(&l.to_be_bytes());
            Ok(())
        }
        Err(_) => {
            buf.truncate(start);
            Err(TooLarge)
        }
    }
}

fn put_opt(buf: &mut BytesMut, code: u16, body: &[u8]) {
    buf.put_u16(code);
    buf.put_u16(body.len() as u16);
    buf.put_slice(body);
}

fn put_status(buf: &mut BytesMut, code: StatusCode, msg: &str) {
    let m = &msg.as_bytes()[..msg.len().min(1000)];
    buf.put_u16(13);
    buf.put_u16(2 + m.len() as u16);
    buf.put_u16(code.into());
    buf.put_slice(m);
}

/// What goes into one OPTION_CLIENT_DATA.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientDataSpec<'a> {
    /// Binding numbers, all of one client.
    pub bindings: &'a [u32],
    /// Whether to add OPTION_LQ_RELAY_DATA.
    pub relay_data: bool,
}

/// Append an OPTION_CLIENT_DATA (RFC 5007 s.4.1.2.2) for `spec` at time `now`.
fn put_client_data(buf: &mut BytesMut, store: &BindingStore, spec: ClientDataSpec<'_>, now: u64) {
    let first = &store.entries[spec.bindings[0] as usize];
    let duid = store.duid(first.client);
    // The most recent transaction gives CLT_TIME and the relay data.
    let newest = spec
        .bindings
        .iter()
        .map(|&i| &store.entries[i as usize])
        .max_by_key(|e| e.cltt)
        .unwrap_or(first);
    let template = if spec.relay_data && newest.relay != NONE {
        Some(&store.templates[newest.relay as usize])
    } else {
        None
    };
    let leases: usize = spec
        .bindings
        .iter()
        .map(|&i| {
            if store.entries[i as usize].is_address() {
                28
            } else {
                29
            }
        })
        .sum();
    let body = 4 + duid.len() + leases + 8 + template.map_or(0, |t| t.bytes.len());
    buf.reserve(4 + body);
    buf.put_u16(45);
    buf.put_u16(body.min(65535) as u16);
    put_opt(buf, 1, duid);
    for &i in spec.bindings {
        let e = &store.entries[i as usize];
        let pref = remaining(e.preferred_until(), now);
        let valid = remaining(e.valid_until(), now);
        if e.is_address() {
            buf.put_u16(5);
            buf.put_u16(24);
            buf.put_u128(e.addr);
            buf.put_u32(pref);
            buf.put_u32(valid);
        } else {
            buf.put_u16(26);
            buf.put_u16(25);
            buf.put_u32(pref);
            buf.put_u32(valid);
            buf.put_u8(e.plen);
            buf.put_u128(e.addr);
        }
    }
    buf.put_u16(46);
    buf.put_u16(4);
    buf.put_u32(clt_time(newest.cltt, now));
    if let Some(t) = template {
        let at = buf.len();
        buf.put_slice(&t.bytes);
        patch_peer(&mut buf[at..], t, newest.peer);
    }
}

/// The header options of a LEASEQUERY-REPLY.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReplyHead<'a> {
    /// Transaction-id of the query.
    pub xid: Xid,
    /// The requestor's CLIENTID, echoed (RFC 5007 s.4.3.2).
    pub client_id: Option<&'a [u8]>,
    /// The server's DUID.
    pub server_id: &'a [u8],
    /// STATUS_CODE to include.
    pub status: Option<(StatusCode, &'a str)>,
    /// Fault: add an OPTION_LQ_CLIENT_LINK (forbidden in bulk replies, RFC 5460 s.4).
    pub client_link: Option<std::net::Ipv6Addr>,
}

/// Whether a REPLY (with `head`) or a DATA holding these bindings in one
/// OPTION_CLIENT_DATA fits the 2-octet frame length.
pub(crate) fn message_fits(
    store: &BindingStore,
    head: &ReplyHead<'_>,
    bindings: &[u32],
    relay_data: bool,
) -> bool {
    let Some(&first) = bindings.first() else {
        return true;
    };
    let e = &store.entries[first as usize];
    let leases: usize = bindings
        .iter()
        .map(|&i| {
            if store.entries[i as usize].is_address() {
                28
            } else {
                29
            }
        })
        .sum();
    let relay = if relay_data {
        bindings
            .iter()
            .map(|&i| store.entries[i as usize].relay)
            .filter(|&t| t != NONE)
            .map(|t| store.templates[t as usize].bytes.len())
            .max()
            .unwrap_or(0)
    } else {
        0
    };
    let head_len = 4
        + head.client_id.map_or(0, |c| 4 + c.len())
        + 4
        + head.server_id.len()
        + head.status.map_or(0, |(_, m)| 6 + m.len().min(1000))
        + head.client_link.map_or(0, |_| 20);
    let total = head_len + 4 + 4 + store.duid(e.client).len() + leases + 8 + relay;
    total <= usize::from(u16::MAX)
}

/// Append a LEASEQUERY-REPLY with the first client's data, if any.
pub(crate) fn put_reply(
    buf: &mut BytesMut,
    head: &ReplyHead<'_>,
    store: &BindingStore,
    first: Option<ClientDataSpec<'_>>,
    now: u64,
) -> Result<(), TooLarge> {
    let start = begin(buf, REPLY, head.xid);
    if let Some(c) = head.client_id {
        put_opt(buf, 1, c);
    }
    put_opt(buf, 2, head.server_id);
    if let Some((code, msg)) = head.status {
        put_status(buf, code, msg);
    }
    if let Some(l) = head.client_link {
        put_opt(buf, 48, &l.octets());
    }
    if let Some(cd) = first {
        put_client_data(buf, store, cd, now);
    }
    finish(buf, start)
}

/// Append a LEASEQUERY-DATA with one client's data (RFC 5460 s.5.2.1).
pub(crate) fn put_data(
    buf: &mut BytesMut,
    xid: Xid,
    store: &BindingStore,
    cd: Option<ClientDataSpec<'_>>,
    now: u64,
) -> Result<(), TooLarge> {
    let start = begin(buf, DATA, xid);
    if let Some(cd) = cd {
        put_client_data(buf, store, cd, now);
    }
    finish(buf, start)
}

/// Append a LEASEQUERY-DONE, with a STATUS_CODE if given (RFC 5460 s.5.2.2).
pub(crate) fn put_done(buf: &mut BytesMut, xid: Xid, status: Option<(StatusCode, &str)>) {
    let start = begin(buf, DONE, xid);
    if let Some((code, msg)) = status {
        put_status(buf, code, msg);
    }
    let _ = finish(buf, start);
}

/// Append a plain REPLY (7), not a LEASEQUERY-REPLY: CLIENTID (the
/// requestor's, when it sent one), SERVERID and STATUS_CODE, as a DHCPv6
/// listener without Bulk Leasequery answers a LEASEQUERY (fault injection;
/// RFC 5460 s.4 allows no such message on the connection).
pub(crate) fn put_plain_reply(
    buf: &mut BytesMut,
    xid: Xid,
    client_id: Option<&[u8]>,
    server_id: &[u8],
    status: (StatusCode, &str),
) {
    let start = begin(buf, PLAIN_REPLY, xid);
    if let Some(c) = client_id {
        put_opt(buf, 1, c);
    }
    put_opt(buf, 2, server_id);
    put_status(buf, status.0, status.1);
    let _ = finish(buf, start);
}

/// Append a frame that does not decode: a LEASEQUERY-DATA whose only option
/// claims more octets than the message holds (fault injection).
pub(crate) fn put_malformed(buf: &mut BytesMut, xid: Xid) {
    let start = begin(buf, DATA, xid);
    buf.put_u16(45);
    buf.put_u16(200);
    buf.put_slice(&[0, 1, 0, 4]);
    let _ = finish(buf, start);
}
