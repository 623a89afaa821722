//! `pdrestore decode`: walk a captured stream of framed DHCPv6 messages and
//! report every message, every binding, and every fault with its file offset.
//!
//! The input is a raw byte stream (RFC 5460 section 5.1 framing), or a pcap
//! or pcapng capture ([`capture`]) whose TCP connections on the Bulk
//! Leasequery port are reassembled ([`reassembly`]) and each direction
//! decoded by [`decode_stream`] as a raw stream is, and whose DHCPv6
//! datagrams (UDP ports 546 and 547, [`udp`]) are decoded one by one, relay
//! layers unwrapped and IAs shown ([`dhcp`]).

pub mod capture;
pub mod dhcp;
pub mod reassembly;
pub mod udp;

use crate::proto::binding::{client_data_options, ClientData};
use crate::proto::frame::FrameIter;
use crate::proto::{Binding, MessageView, OptionView};
use serde::Serialize;

/// One line of `decode` output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    /// A message that decoded.
    Message {
        /// File offset of the frame's length prefix.
        offset: usize,
        /// Message type name (or `unknown(N)`).
        #[serde(rename = "type")]
        msg_type: String,
        /// Message type code.
        msg_type_code: u8,
        /// Transaction-id (relay messages have none).
        #[serde(skip_serializing_if = "Option::is_none")]
        xid: Option<u32>,
        /// STATUS_CODE, if present.
        #[serde(skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        /// STATUS_CODE name.
        #[serde(skip_serializing_if = "Option::is_none")]
        status_name: Option<String>,
        /// STATUS_CODE message text (lossy UTF-8).
        #[serde(skip_serializing_if = "Option::is_none")]
        status_message: Option<String>,
        /// Number of OPTION_CLIENT_DATA options.
        client_data: usize,
        /// Whether OPTION_LQ_CLIENT_LINK is present (never valid in bulk replies).
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        lq_client_link: bool,
        /// For a message seen over UDP: its relay layers, DUIDs and IAs
        /// (then `type`, `xid` and `status` are the client/server message's
        /// inside the relay layers). None for Bulk Leasequery over TCP.
        #[serde(flatten)]
        detail: Option<Box<dhcp::MessageDetail>>,
    },
    /// A binding from a CLIENT_DATA.
    Binding {
        /// File offset of the frame.
        offset: usize,
        /// Transaction-id of the message.
        xid: u32,
        /// The binding.
        #[serde(flatten)]
        binding: Binding,
    },
    /// A CLIENT_DATA that yields no binding (no CLT_TIME, no CLIENTID, ...).
    Dropped {
        /// File offset of the frame.
        offset: usize,
        /// Transaction-id of the message.
        xid: u32,
        /// Why.
        reason: String,
    },
    /// A frame or message that does not decode.
    Error {
        /// File offset of the frame.
        offset: usize,
        /// What was wrong (offsets inside are relative to the message start).
        error: String,
    },
}

/// Decode a buffer of framed messages into records, in stream order.
/// Decoding goes on with the next frame after a malformed one whenever the
/// framing allows.
pub fn decode_stream(buf: &[u8]) -> Vec<Record> {
    let mut out = Vec::new();
    for frame in FrameIter::new(buf) {
        match frame {
            Ok(f) => decode_message(f.offset, f.message, f.message_offset(), false, &mut out),
            Err(e) => {
                let offset = match e {
                    crate::proto::frame::FrameError::Empty { offset }
                    | crate::proto::frame::FrameError::Truncated { offset, .. } => offset,
                };
                out.push(Record::Error {
                    offset,
                    error: e.to_string(),
                });
            }
        }
    }
    out
}

/// Decode one message (`bytes`, at `message_offset` in the input; its
/// records carry `offset`) into a `message` record and its bindings, or an
/// error record. With `unwrap` (DHCPv6 over UDP), relay layers are
/// unwrapped and the detail of the message inside is gathered ([`dhcp`]).
pub fn decode_message(
    offset: usize,
    bytes: &[u8],
    message_offset: usize,
    unwrap: bool,
    out: &mut Vec<Record>,
) {
    let error = |e: crate::proto::DecodeError| Record::Error {
        offset,
        error: format!("message at offset {message_offset}: {e}"),
    };
    let outer = match MessageView::parse_validated(bytes) {
        Ok(m) => m,
        Err(e) => return out.push(error(e)),
    };
    let (msg, detail) = if unwrap {
        match dhcp::unwrap(outer) {
            Ok((inner, d)) => (inner, Some(Box::new(d))),
            Err(e) => return out.push(error(e)),
        }
    } else {
        (outer, None)
    };
    let status = msg.status();
    let xid = msg.transaction_id();
    let lq_client_link = msg
        .options()
        .valid()
        .any(|o| matches!(o, OptionView::LqClientLink(_)));
    let cds: Vec<_> = client_data_options(&msg).collect();
    out.push(Record::Message {
        offset,
        msg_type: dhcp::type_name(msg.msg_type()),
        msg_type_code: msg.msg_type().into(),
        xid: (!msg.is_relay()).then_some(xid),
        status: status.map(|(c, _)| c.into()),
        status_name: status.map(|(c, _)| c.name().map(str::to_owned).unwrap_or(c.to_string())),
        status_message: status.map(|(_, m)| String::from_utf8_lossy(m).into_owned()),
        client_data: cds.len(),
        lq_client_link,
        detail,
    });
    for cd in cds {
        match ClientData::parse(cd) {
            Ok(cd) => out.extend(cd.bindings().map(|b| Record::Binding {
                offset,
                xid,
                binding: b.to_binding(),
            })),
            Err(e) => out.push(Record::Dropped {
                offset,
                xid,
                reason: e.to_string(),
            }),
        }
    }
}

/// Human-readable form of one record: one line, or for a message seen
/// over UDP, its line and then its relay layers and IAs, indented.
pub fn format_record(r: &Record) -> String {
    match r {
        Record::Message {
            offset,
            msg_type,
            msg_type_code,
            xid,
            status,
            status_name,
            status_message,
            client_data,
            lq_client_link,
            detail,
        } => {
            let mut s = format!("@{offset} {msg_type}({msg_type_code})");
            if let Some(x) = xid {
                s.push_str(&format!(" xid=0x{x:06x}"));
            }
            if let (Some(c), Some(n)) = (status, status_name) {
                s.push_str(&format!(" status={n}({c})"));
                if let Some(m) = status_message {
                    s.push_str(&format!(" {m:?}"));
                }
            }
            if *client_data > 0 {
                s.push_str(&format!(" client-data={client_data}"));
            }
            if *lq_client_link {
                s.push_str(" LQ_CLIENT_LINK");
            }
            if let Some(d) = detail {
                if let Some(c) = &d.client_id {
                    s.push_str(&format!(" client={c}"));
                }
                if let Some(c) = &d.server_id {
                    s.push_str(&format!(" server={c}"));
                }
                for line in dhcp::text_lines(d) {
                    s.push('\n');
                    s.push_str(&line);
                }
            }
            s
        }
        Record::Binding { binding: b, .. } => {
            let mut s = format!(
                "    {} client={} pref={} valid={} clt={}",
                b.lease, b.client_duid, b.preferred_lifetime, b.valid_lifetime, b.clt_time
            );
            for l in &b.relay {
                s.push_str(&format!(
                    " | link={} peer={}",
                    l.link_address, l.peer_address
                ));
                if let Some(i) = &l.interface_id {
                    let id = crate::proto::binding::display_interface_id(i);
                    s.push_str(&format!(" if={id:?}"));
                }
                if let Some(r) = &l.relay_id {
                    s.push_str(&format!(" relay-id={r}"));
                }
            }
            s
        }
        Record::Dropped { offset, reason, .. } => format!("    @{offset} dropped: {reason}"),
        Record::Error { offset, error } => format!("@{offset} ERROR: {error}"),
    }
}
