//! Relay messages unwrapped strictly (RFC 8415 s.9, s.19; RFC 6221 s.5):
//! from a RELAY-FORW or RELAY-REPL down through its OPTION_RELAY_MSGs to the
//! client/server message inside, with every layer's hop-count,
//! link-address, peer-address, INTERFACE_ID, REMOTE_ID and RELAY_ID.
//!
//! [`super::binding::RelayLayers`] walks the chain of an OPTION_LQ_RELAY_DATA
//! leniently (it was validated with its CLIENT_DATA and ends at the last
//! relay message); [`relay_chain`] is for relay messages as they travel, and
//! refuses what a relay or server would: a layer without exactly one
//! RELAY_MSG, a second INTERFACE_ID, a RELAY-FORW inside a RELAY-REPL (or the
//! other way round), more than [`HOP_COUNT_LIMIT`] layers.

use super::binding::RelayLayerRef;
use super::consts::OptionCode;
use super::error::{DecodeError, ErrorKind, Result};
use super::ia::duplicate;
use super::view::{MessageView, OptionView};

pub use super::consts::HOP_COUNT_LIMIT;

/// Walk the RELAY_MSG options of a relay message down to the first
/// client/server message, recording each layer, outermost first. A
/// client/server message gives no layers and itself.
///
/// Each layer must have exactly one RELAY_MSG and at most one INTERFACE_ID
/// (RFC 8415 s.21.10, s.21.18), and be of the outer layer's type (RFC 8415
/// s.9: a RELAY-REPL holds a RELAY-REPL or the server's message); at most
/// [`HOP_COUNT_LIMIT`] layers. REMOTE_ID and RELAY_ID: the first of each is
/// kept. The message need not have been validated: each option used is
/// parsed (and checked) here; other options are not.
pub fn relay_chain(outer: MessageView<'_>) -> Result<(Vec<RelayLayerRef<'_>>, MessageView<'_>)> {
    let relay_type = outer.msg_type();
    let mut layers = Vec::new();
    let mut cur = outer;
    while cur.is_relay() {
        if cur.msg_type() != relay_type {
            return Err(DecodeError::new(
                cur.offset(),
                Some(OptionCode::RelayMsg),
                ErrorKind::RelayTypeMismatch {
                    outer: relay_type,
                    inner: cur.msg_type(),
                },
            ));
        }
        if layers.len() == HOP_COUNT_LIMIT {
            return Err(DecodeError::new(
                cur.offset(),
                None,
                ErrorKind::TooManyRelayLayers,
            ));
        }
        let (layer, inner) = one_layer(cur)?;
        layers.push(layer);
        cur = inner;
    }
    Ok((layers, cur))
}

/// One relay layer: its fields and the message in its RELAY_MSG.
fn one_layer(m: MessageView<'_>) -> Result<(RelayLayerRef<'_>, MessageView<'_>)> {
    let mut layer = RelayLayerRef::header(&m);
    let mut inner = None;
    for raw in m.options().iter() {
        let raw = raw?;
        match raw.option_code() {
            OptionCode::RelayMsg => {
                if inner.is_some() {
                    return Err(duplicate(&raw));
                }
                if let OptionView::RelayMsg(msg) = raw.parse()? {
                    inner = Some(msg);
                }
            }
            OptionCode::InterfaceId => {
                if layer.interface_id.is_some() {
                    return Err(duplicate(&raw));
                }
                layer.interface_id = Some(raw.data);
            }
            OptionCode::RemoteId => {
                if let OptionView::RemoteId { body, .. } = raw.parse()? {
                    layer.remote_id.get_or_insert(body);
                }
            }
            OptionCode::RelayId => {
                if let OptionView::RelayId(duid) = raw.parse()? {
                    layer.relay_id.get_or_insert(duid);
                }
            }
            _ => {}
        }
    }
    match inner {
        Some(inner) => Ok((layer, inner)),
        None => Err(DecodeError::new(
            m.offset(),
            None,
            ErrorKind::MissingOption(OptionCode::RelayMsg),
        )),
    }
}

#[cfg(test)]
#[path = "relay_tests.rs"]
mod tests;
