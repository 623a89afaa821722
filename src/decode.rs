//! `pdrestore decode`: walk a captured stream of framed DHCPv6 messages and
//! report every message, every binding, and every fault with its file offset.
//!
//! The input is a raw byte stream (RFC 5460 section 5.1 framing), or a pcap
//! or pcapng capture ([`capture`]) whose TCP connections on the Bulk
//! Leasequery port are reassembled ([`reassembly`]) and each direction
//! decoded by [`decode_stream`] as a raw stream is.

pub mod capture;
pub mod reassembly;

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
        let frame = match frame {
            Ok(f) => f,
            Err(e) => {
                let offset = match e {
                    crate::proto::frame::FrameError::Empty { offset }
                    | crate::proto::frame::FrameError::Truncated { offset, .. } => offset,
                };
                out.push(Record::Error {
                    offset,
                    error: e.to_string(),
                });
                continue;
            }
        };
        let offset = frame.offset;
        let msg = match MessageView::parse_validated(frame.message) {
            Ok(m) => m,
            Err(e) => {
                out.push(Record::Error {
                    offset,
                    error: format!("message at offset {}: {e}", frame.message_offset()),
                });
                continue;
            }
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
            msg_type: msg
                .msg_type()
                .name()
                .map(str::to_owned)
                .unwrap_or_else(|| msg.msg_type().to_string()),
            msg_type_code: msg.msg_type().into(),
            xid: (!msg.is_relay()).then_some(xid),
            status: status.map(|(c, _)| c.into()),
            status_name: status.map(|(c, _)| c.name().map(str::to_owned).unwrap_or(c.to_string())),
            status_message: status.map(|(_, m)| String::from_utf8_lossy(m).into_owned()),
            client_data: cds.len(),
            lq_client_link,
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
    out
}

/// Human-readable form of one record.
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
