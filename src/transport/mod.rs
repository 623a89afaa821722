//! The tokio shell around the protocol core.

mod codec;

pub use codec::{FrameCodec, FrameCodecError};
