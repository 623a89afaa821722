//! DHCPv6 code points used by Leasequery, as enums that keep unknown values.
//!
//! Every enum here converts from its wire integer without failing: a value the
//! enum does not name is kept as `Unknown(n)` and converts back to `n`, so a
//! message type 99 or a status 42 decodes and re-encodes unchanged.

use std::fmt;
use std::time::Duration;

/// The port DHCPv6 servers and relay agents listen on (RFC 8415 s.7.2),
/// over UDP, and Bulk Leasequery servers over TCP (RFC 5460 s.5.2).
pub const SERVER_PORT: u16 = 547;
/// The UDP port DHCPv6 clients listen on (RFC 8415 s.7.2).
pub const CLIENT_PORT: u16 = 546;
/// BULK_LQ_DATA_TIMEOUT (RFC 5460 s.5.6): how long a blocked write or a
/// silent read may last before the connection is abandoned.
pub const BULK_LQ_DATA_TIMEOUT: Duration = Duration::from_secs(300);
/// BULK_LQ_MAX_CONNS (RFC 5460 s.5.6): the connections a server accepts
/// from one requestor at most, by default.
pub const BULK_LQ_MAX_CONNS: usize = 10;

macro_rules! code_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident : $repr:ty {
            $( $(#[$vmeta:meta])* $variant:ident = $value:expr => $label:expr, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this implementation does not name, kept as is.
            Unknown($repr),
        }

        impl From<$repr> for $name {
            #[inline]
            fn from(value: $repr) -> Self {
                match value {
                    $( $value => $name::$variant, )+
                    other => $name::Unknown(other),
                }
            }
        }

        impl From<$name> for $repr {
            #[inline]
            fn from(value: $name) -> Self {
                match value {
                    $( $name::$variant => $value, )+
                    $name::Unknown(other) => other,
                }
            }
        }

        impl $name {
            /// The registry name of this value, or `None` for an unknown one.
            pub fn name(self) -> Option<&'static str> {
                match self {
                    $( $name::$variant => Some($label), )+
                    $name::Unknown(_) => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let value: $repr = (*self).into();
                match self.name() {
                    Some(name) => write!(f, "{name}({value})"),
                    None => write!(f, "unknown({value})"),
                }
            }
        }
    };
}

/// Most relay layers walked around a message: HOP_COUNT_LIMIT (RFC 8415 s.7.6).
pub const HOP_COUNT_LIMIT: usize = 32;

code_enum! {
    /// DHCPv6 message types (RFC 8415 s.7.3, RFC 5007 s.4.1, RFC 5460 s.5.2).
    pub enum MessageType: u8 {
        /// SOLICIT (1).
        Solicit = 1 => "SOLICIT",
        /// ADVERTISE (2).
        Advertise = 2 => "ADVERTISE",
        /// REQUEST (3).
        Request = 3 => "REQUEST",
        /// CONFIRM (4).
        Confirm = 4 => "CONFIRM",
        /// RENEW (5).
        Renew = 5 => "RENEW",
        /// REBIND (6).
        Rebind = 6 => "REBIND",
        /// REPLY (7).
        Reply = 7 => "REPLY",
        /// RELEASE (8).
        Release = 8 => "RELEASE",
        /// DECLINE (9).
        Decline = 9 => "DECLINE",
        /// RECONFIGURE (10).
        Reconfigure = 10 => "RECONFIGURE",
        /// INFORMATION-REQUEST (11).
        InformationRequest = 11 => "INFORMATION-REQUEST",
        /// RELAY-FORW (12): relay message toward the server.
        RelayForw = 12 => "RELAY-FORW",
        /// RELAY-REPL (13): relay message toward the client.
        RelayRepl = 13 => "RELAY-REPL",
        /// LEASEQUERY (14), RFC 5007 s.4.1.
        Leasequery = 14 => "LEASEQUERY",
        /// LEASEQUERY-REPLY (15), RFC 5007 s.4.1.
        LeasequeryReply = 15 => "LEASEQUERY-REPLY",
        /// LEASEQUERY-DONE (16), RFC 5460 s.5.2.2.
        LeasequeryDone = 16 => "LEASEQUERY-DONE",
        /// LEASEQUERY-DATA (17), RFC 5460 s.5.2.1.
        LeasequeryData = 17 => "LEASEQUERY-DATA",
    }
}

impl MessageType {
    /// True for the two relay message types, whose header is hop-count,
    /// link-address and peer-address instead of a transaction-id (RFC 8415 s.9).
    #[inline]
    pub fn is_relay(self) -> bool {
        matches!(self, MessageType::RelayForw | MessageType::RelayRepl)
    }
}

code_enum! {
    /// DHCPv6 option codes that the Leasequery codec knows (RFC 8415 s.21, RFC 5007 s.4.1.2, RFC 5460 s.5.4).
    pub enum OptionCode: u16 {
        /// OPTION_CLIENTID (1).
        ClientId = 1 => "CLIENTID",
        /// OPTION_SERVERID (2).
        ServerId = 2 => "SERVERID",
        /// OPTION_IA_NA (3).
        IaNa = 3 => "IA_NA",
        /// OPTION_IAADDR (5).
        IaAddr = 5 => "IAADDR",
        /// OPTION_ORO (6).
        Oro = 6 => "ORO",
        /// OPTION_RELAY_MSG (9).
        RelayMsg = 9 => "RELAY_MSG",
        /// OPTION_STATUS_CODE (13).
        StatusCode = 13 => "STATUS_CODE",
        /// OPTION_INTERFACE_ID (18).
        InterfaceId = 18 => "INTERFACE_ID",
        /// OPTION_IA_PD (25).
        IaPd = 25 => "IA_PD",
        /// OPTION_IAPREFIX (26).
        IaPrefix = 26 => "IAPREFIX",
        /// OPTION_REMOTE_ID (37), RFC 4649.
        RemoteId = 37 => "REMOTE_ID",
        /// OPTION_LQ_QUERY (44), RFC 5007 s.4.1.2.1.
        LqQuery = 44 => "LQ_QUERY",
        /// OPTION_CLIENT_DATA (45), RFC 5007 s.4.1.2.2.
        ClientData = 45 => "CLIENT_DATA",
        /// OPTION_CLT_TIME (46), RFC 5007 s.4.1.2.3.
        CltTime = 46 => "CLT_TIME",
        /// OPTION_LQ_RELAY_DATA (47), RFC 5007 s.4.1.2.4.
        LqRelayData = 47 => "LQ_RELAY_DATA",
        /// OPTION_LQ_CLIENT_LINK (48), RFC 5007 s.4.1.2.5.
        LqClientLink = 48 => "LQ_CLIENT_LINK",
        /// OPTION_RELAY_ID (53), RFC 5460 s.5.4.1.
        RelayId = 53 => "RELAY_ID",
    }
}

code_enum! {
    /// DHCPv6 status codes (RFC 8415 s.21.13, RFC 5007 s.4.1.3, RFC 5460 s.5.5).
    pub enum StatusCode: u16 {
        /// Success (0).
        Success = 0 => "Success",
        /// UnspecFail (1).
        UnspecFail = 1 => "UnspecFail",
        /// NoAddrsAvail (2).
        NoAddrsAvail = 2 => "NoAddrsAvail",
        /// NoBinding (3).
        NoBinding = 3 => "NoBinding",
        /// NotOnLink (4).
        NotOnLink = 4 => "NotOnLink",
        /// UseMulticast (5).
        UseMulticast = 5 => "UseMulticast",
        /// NoPrefixAvail (6).
        NoPrefixAvail = 6 => "NoPrefixAvail",
        /// UnknownQueryType (7), RFC 5007.
        UnknownQueryType = 7 => "UnknownQueryType",
        /// MalformedQuery (8), RFC 5007.
        MalformedQuery = 8 => "MalformedQuery",
        /// NotConfigured (9), RFC 5007.
        NotConfigured = 9 => "NotConfigured",
        /// NotAllowed (10), RFC 5007.
        NotAllowed = 10 => "NotAllowed",
        /// QueryTerminated (11), RFC 5460 s.5.5.
        QueryTerminated = 11 => "QueryTerminated",
    }
}

code_enum! {
    /// Leasequery query types carried in OPTION_LQ_QUERY (RFC 5007 s.4.1.2.1, RFC 5460 s.5.3).
    pub enum QueryType: u8 {
        /// QUERY_BY_ADDRESS (1).
        ByAddress = 1 => "QUERY_BY_ADDRESS",
        /// QUERY_BY_CLIENTID (2).
        ByClientId = 2 => "QUERY_BY_CLIENTID",
        /// QUERY_BY_RELAY_ID (3), bulk only.
        ByRelayId = 3 => "QUERY_BY_RELAY_ID",
        /// QUERY_BY_LINK_ADDRESS (4), bulk only.
        ByLinkAddress = 4 => "QUERY_BY_LINK_ADDRESS",
        /// QUERY_BY_REMOTE_ID (5), bulk only.
        ByRemoteId = 5 => "QUERY_BY_REMOTE_ID",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_values_round_trip() {
        assert_eq!(MessageType::from(99), MessageType::Unknown(99));
        assert_eq!(u8::from(MessageType::Unknown(99)), 99);
        assert_eq!(StatusCode::from(42), StatusCode::Unknown(42));
        assert_eq!(u16::from(StatusCode::Unknown(42)), 42);
        assert_eq!(QueryType::from(0), QueryType::Unknown(0));
        assert_eq!(OptionCode::from(999), OptionCode::Unknown(999));
    }

    #[test]
    fn known_values_round_trip() {
        for v in 0..=255u8 {
            assert_eq!(u8::from(MessageType::from(v)), v);
            assert_eq!(u8::from(QueryType::from(v)), v);
        }
        for v in 0..=600u16 {
            assert_eq!(u16::from(StatusCode::from(v)), v);
            assert_eq!(u16::from(OptionCode::from(v)), v);
        }
        assert_eq!(MessageType::from(17), MessageType::LeasequeryData);
        assert_eq!(StatusCode::from(11), StatusCode::QueryTerminated);
        assert_eq!(OptionCode::from(53), OptionCode::RelayId);
        assert_eq!(QueryType::from(3), QueryType::ByRelayId);
    }

    #[test]
    fn display_names_code() {
        assert_eq!(
            MessageType::LeasequeryReply.to_string(),
            "LEASEQUERY-REPLY(15)"
        );
        assert_eq!(StatusCode::Unknown(42).to_string(), "unknown(42)");
        assert_eq!(OptionCode::IaPrefix.to_string(), "IAPREFIX(26)");
    }
}
