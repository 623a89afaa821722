//! The protocol core: DHCPv6 Leasequery (RFC 5007) and Bulk Leasequery
//! (RFC 5460) on the wire. No sockets, no clock, no tokio.
//!
//! - [`consts`]: code points (message types, options, statuses, query types),
//!   the ports and the protocol constants of RFC 8415 and RFC 5460.
//! - [`view`]: zero-copy checked views, the fast path.
//! - [`message`]: owned messages and options; decode, build, encode.
//! - [`binding`]: bindings extracted from OPTION_CLIENT_DATA.
//! - [`query`]: the LEASEQUERY builder.
//! - [`frame`]: the 2-octet TCP framing of RFC 5460 s.5.1.
//! - [`ia`]: IA_NA and IA_PD with their addresses and prefixes (RFC 8415
//!   s.21.4, s.21.21).
//! - [`relay`]: relay messages unwrapped layer by layer (RFC 8415 s.9).
//! - [`ids`]: the transaction-id and server-index newtypes.
//!
//! Decoding is strict and never panics: every length is checked before use,
//! and an error names the option and the byte offset at fault.

pub mod binding;
pub mod consts;
pub mod duid;
pub mod error;
pub mod frame;
pub mod ia;
pub mod ids;
pub mod message;
pub mod query;
pub mod relay;
pub mod view;

#[cfg(test)]
mod tests;

pub use binding::{
    Binding, BindingMapper, BindingRef, ClientData, ClientDataError, LeaseKind, OwnedBindings,
    RelayLayer,
};
pub use consts::{
    MessageType, OptionCode, QueryType, StatusCode, BULK_LQ_DATA_TIMEOUT, BULK_LQ_MAX_CONNS,
    CLIENT_PORT, SERVER_PORT,
};
pub use duid::Duid;
pub use error::{DecodeError, ErrorKind};
pub use ids::{ServerIndex, Xid};
pub use message::{ClientMessage, DhcpOption, IaAddr, IaPrefix, LqQuery, Message, RelayMessage};
pub use query::{LeasequeryBuilder, Query};
pub use view::{MessageView, OptionView, Options, MAX_NESTING};
