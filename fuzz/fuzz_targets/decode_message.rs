//! Fuzz the message decoders.
//!
//! The input is taken both as one message (one TCP frame body) and as a
//! stream of length-prefixed frames. For the message:
//! - `Message::decode` (owned) and `MessageView::parse_validated` (zero-copy)
//!   must agree: both succeed, or both fail with the same `DecodeError`;
//! - when decoding succeeds, encoding gives back the input byte for byte;
//! - the CLIENT_DATA of a valid message go through `ClientData::parse`,
//!   `bindings()` and the relay-layer walk, which must not fail to decode.
//!
//! For the stream, `decode::decode_stream` must not panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pdrestore::decode::decode_stream;
use pdrestore::proto::binding::client_data_options;
use pdrestore::proto::{ClientData, ClientDataError, Message, MessageView};

fuzz_target!(|data: &[u8]| {
    let owned = Message::decode(data);
    let view = MessageView::parse_validated(data);
    match (&owned, &view) {
        (Ok(m), Ok(v)) => {
            assert_eq!(m.to_bytes(), data, "decode -> encode is not byte-exact");
            assert_eq!(m.buffer_len(), data.len());
            for cd in client_data_options(v) {
                match ClientData::parse(cd) {
                    Ok(cd) => {
                        for b in cd.bindings() {
                            let owned = b.to_binding();
                            if let Some(chain) = b.relay {
                                assert_eq!(chain.layers().count(), owned.relay.len());
                            }
                        }
                    }
                    Err(ClientDataError::Decode(e)) => {
                        panic!("CLIENT_DATA of a validated message fails to decode: {e}")
                    }
                    Err(_) => {}
                }
            }
        }
        (Err(a), Err(b)) => assert_eq!(a, b, "owned and view decoders disagree"),
        _ => panic!(
            "owned and view decoders disagree: {:?} vs {:?}",
            owned.as_ref().err(),
            view.as_ref().err()
        ),
    }
    let _ = decode_stream(data);
});
