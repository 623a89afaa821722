//! Building LEASEQUERY messages for every query type (RFC 5007 s.4.1.2.1,
//! RFC 5460 s.5.3, s.6.2).

use super::consts::{MessageType, OptionCode, QueryType};
use super::duid::Duid;
use super::ids::Xid;
use super::message::{ClientMessage, DhcpOption, IaAddr, LqQuery};
use std::net::Ipv6Addr;

/// What to ask for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Query {
    /// QUERY_BY_ADDRESS: the binding holding this address (RFC 5007 s.4.1.2.1).
    ByAddress(Ipv6Addr),
    /// QUERY_BY_CLIENTID: the bindings of this client (RFC 5007 s.4.1.2.1).
    ByClientId(Duid),
    /// QUERY_BY_RELAY_ID: the bindings recorded with this relay DUID (RFC 5460 s.5.3.1).
    ByRelayId(Duid),
    /// QUERY_BY_LINK_ADDRESS: the bindings on the link of the query's
    /// link-address (RFC 5460 s.5.3.2); the address is given with
    /// [`LeasequeryBuilder::link_address`].
    ByLinkAddress,
    /// QUERY_BY_REMOTE_ID: the bindings recorded with this Remote-ID (RFC 5460 s.5.3.3).
    ByRemoteId {
        /// Enterprise number of the Remote-ID option.
        enterprise: u32,
        /// The remote-id.
        id: Vec<u8>,
    },
}

impl Query {
    /// The query-type code.
    pub fn query_type(&self) -> QueryType {
        match self {
            Query::ByAddress(_) => QueryType::ByAddress,
            Query::ByClientId(_) => QueryType::ByClientId,
            Query::ByRelayId(_) => QueryType::ByRelayId,
            Query::ByLinkAddress => QueryType::ByLinkAddress,
            Query::ByRemoteId { .. } => QueryType::ByRemoteId,
        }
    }
}

/// Builds one LEASEQUERY.
///
/// RFC 5007 s.4.3.1: the message carries OPTION_CLIENTID (the requestor's
/// DUID) and OPTION_LQ_QUERY, whose query-options hold what the query type
/// requires; an OPTION_ORO asking for OPTION_LQ_RELAY_DATA (47) is added
/// when relay data is wanted (RFC 5007 s.4.1.2.4).
#[derive(Debug, Clone)]
pub struct LeasequeryBuilder {
    transaction_id: Xid,
    requestor: Duid,
    query: Query,
    link_address: Ipv6Addr,
    request_relay_data: bool,
}

impl LeasequeryBuilder {
    /// A query with the given transaction-id, requestor DUID and query;
    /// link-address ::, relay data requested.
    pub fn new(transaction_id: Xid, requestor: Duid, query: Query) -> Self {
        LeasequeryBuilder {
            transaction_id,
            requestor,
            query,
            link_address: Ipv6Addr::UNSPECIFIED,
            request_relay_data: true,
        }
    }

    /// Set the link-address: the link for QUERY_BY_LINK_ADDRESS, a link
    /// filter for QUERY_BY_RELAY_ID and QUERY_BY_REMOTE_ID (:: = all links).
    pub fn link_address(mut self, link: Ipv6Addr) -> Self {
        self.link_address = link;
        self
    }

    /// Whether to add OPTION_ORO asking for OPTION_LQ_RELAY_DATA (default yes).
    pub fn request_relay_data(mut self, yes: bool) -> Self {
        self.request_relay_data = yes;
        self
    }

    /// The message.
    pub fn build(&self) -> ClientMessage {
        let mut query_options = Vec::new();
        match &self.query {
            Query::ByAddress(a) => query_options.push(DhcpOption::IaAddr(IaAddr {
                address: *a,
                preferred_lifetime: 0,
                valid_lifetime: 0,
                options: Vec::new(),
            })),
            Query::ByClientId(d) => query_options.push(DhcpOption::ClientId(d.clone())),
            Query::ByRelayId(d) => query_options.push(DhcpOption::RelayId(d.clone())),
            Query::ByLinkAddress => {}
            Query::ByRemoteId { enterprise, id } => query_options.push(DhcpOption::RemoteId {
                enterprise: *enterprise,
                id: id.clone(),
            }),
        }
        if self.request_relay_data {
            query_options.push(DhcpOption::Oro(vec![OptionCode::LqRelayData.into()]));
        }
        ClientMessage {
            msg_type: MessageType::Leasequery,
            transaction_id: self.transaction_id.get(),
            options: vec![
                DhcpOption::ClientId(self.requestor.clone()),
                DhcpOption::LqQuery(LqQuery {
                    query_type: self.query.query_type(),
                    link_address: self.link_address,
                    options: query_options,
                }),
            ],
        }
    }

    /// The encoded message (without the TCP length prefix).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.build().to_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUESTOR: &str = "000100012a2b2c2d020000009901";

    fn xid(v: u32) -> Xid {
        Xid::new(v).unwrap()
    }

    fn kea_request(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/tests/data/kea/{name}.request.bin",
            env!("CARGO_MANIFEST_DIR")
        );
        let b = std::fs::read(&path).unwrap();
        // One frame: strip the 2-octet length.
        let len = u16::from_be_bytes([b[0], b[1]]) as usize;
        b[2..2 + len].to_vec()
    }

    #[test]
    fn relay_id_query_matches_kea_capture() {
        let q = LeasequeryBuilder::new(
            xid(0x000102),
            REQUESTOR.parse().unwrap(),
            Query::ByRelayId("0003000102005e000002".parse().unwrap()),
        )
        .request_relay_data(false);
        assert_eq!(q.to_bytes(), kea_request("02_relayid_B"));
        let q = LeasequeryBuilder::new(
            xid(0x000103),
            REQUESTOR.parse().unwrap(),
            Query::ByRelayId("0003000102005e000002".parse().unwrap()),
        )
        .link_address("2001:db8:2::1".parse().unwrap())
        .request_relay_data(false);
        let want = kea_request("03_relayid_B_link_s2");
        assert_eq!(q.to_bytes()[1..], want[1..], "same but for the xid");
    }

    #[test]
    fn link_and_client_queries_match_kea_capture() {
        let want = kea_request("08_link_s1");
        let x = Xid::from_octets([want[1], want[2], want[3]]);
        let q = LeasequeryBuilder::new(x, REQUESTOR.parse().unwrap(), Query::ByLinkAddress)
            .link_address("2001:db8:1::1".parse().unwrap())
            .request_relay_data(false);
        assert_eq!(q.to_bytes(), want);
        let want = kea_request("16_clientid_3");
        let x = Xid::from_octets([want[1], want[2], want[3]]);
        let q = LeasequeryBuilder::new(
            x,
            REQUESTOR.parse().unwrap(),
            Query::ByClientId("00030001020000000003".parse().unwrap()),
        )
        .request_relay_data(false);
        assert_eq!(q.to_bytes(), want);
    }

    #[test]
    fn address_and_remote_id_queries_with_oro() {
        let d: Duid = "0003000102".parse().unwrap();
        // A transaction-id has 24 bits: a wider value is no Xid at all.
        assert_eq!(Xid::new(0x1234567), None);
        let m = LeasequeryBuilder::new(
            xid(0x234567),
            d.clone(),
            Query::ByAddress("2001:db8::1".parse().unwrap()),
        )
        .build();
        assert_eq!(m.transaction_id, 0x234567);
        let bytes = m.to_bytes();
        #[rustfmt::skip]
        let want: Vec<u8> = [
            &[14, 0x23, 0x45, 0x67][..],
            &[0, 1, 0, 5, 0, 3, 0, 1, 2],                  // CLIENTID
            &[0, 44, 0, 51, 1], &[0; 16],                   // LQ_QUERY by address, link ::
            &[0, 5, 0, 24, 0x20, 1, 0xd, 0xb8], &[0; 11], &[1], &[0; 8], // IAADDR 2001:db8::1
            &[0, 6, 0, 2, 0, 47],                           // ORO 47
        ]
        .concat();
        assert_eq!(bytes, want);
        let m = LeasequeryBuilder::new(
            xid(1),
            d,
            Query::ByRemoteId {
                enterprise: 4491,
                id: b"CM".to_vec(),
            },
        )
        .build();
        let q = match &m.options[1] {
            DhcpOption::LqQuery(q) => q,
            o => panic!("{o:?}"),
        };
        assert_eq!(q.query_type, QueryType::ByRemoteId);
        assert_eq!(
            q.options[0],
            DhcpOption::RemoteId {
                enterprise: 4491,
                id: b"CM".to_vec()
            }
        );
    }
}
