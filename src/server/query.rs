//! Reading a LEASEQUERY and deciding what answers it (RFC 5007 s.4.3.2,
//! RFC 5460 s.7.2).

use super::store::BindingStore;
use super::ServerConfig;
use crate::proto::{MessageType, MessageView, OptionCode, OptionView, Options, QueryType};
use crate::proto::{StatusCode, Xid};
use std::net::Ipv6Addr;

/// A frame that is not a LEASEQUERY at all: the connection is closed
/// (RFC 5460 s.4: only Leasequery messages are allowed on the connection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Violation(pub String);

/// A LEASEQUERY as the requestor wrote it, decoded and checked for form
/// ([`Request::decode`]), before the store or the configuration is asked
/// anything ([`Request::lookup`]).
#[derive(Debug, Clone)]
pub(crate) struct Request {
    /// Transaction-id.
    pub xid: Xid,
    /// The requestor's CLIENTID, if it has one (echoed even in the answer
    /// to a malformed query).
    pub client_id: Option<Vec<u8>>,
    /// The query-type (raw; may be unknown); `Unknown(0)` until a
    /// well-formed query with a CLIENTID names one.
    pub query_type: QueryType,
    /// The ORO asked for OPTION_LQ_RELAY_DATA (RFC 5007 s.4.1.2.4).
    pub wants_relay_data: bool,
    /// The query's options, or why the message is a malformed query: its
    /// options do not decode, or it has no CLIENTID (RFC 5007 s.4.3.2).
    body: Result<Body, &'static str>,
}

/// The options of a well-formed LEASEQUERY.
#[derive(Debug, Clone)]
struct Body {
    /// OPTION_SERVERID, when the requestor names a server (the last one).
    server_id: Option<Vec<u8>>,
    /// OPTION_LQ_QUERY (the first one), or what is missing.
    query: Result<LqQuery, &'static str>,
}

/// What OPTION_LQ_QUERY asks.
#[derive(Debug, Clone)]
struct LqQuery {
    query_type: QueryType,
    /// The link-address: the link of QUERY_BY_LINK_ADDRESS, else a filter
    /// (:: for none; RFC 5460 s.7.2).
    link: Ipv6Addr,
    /// The query-option the query type needs, or what is missing.
    key: Result<Key, &'static str>,
}

/// The query-option a query type looks bindings up by (RFC 5007 s.4.1.2.1,
/// RFC 5460 s.5.3).
#[derive(Debug, Clone)]
enum Key {
    Address(Ipv6Addr),
    ClientId(Vec<u8>),
    RelayId(Vec<u8>),
    RemoteId(Vec<u8>),
    /// QUERY_BY_LINK_ADDRESS: the link-address itself.
    Link,
}

/// The answer to a query before any binding is looked at.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// Reply with this error status and no data (RFC 5460 s.7.2, first paragraph).
    Error(StatusCode, &'static str),
    /// Stream the bindings of this selection.
    Bindings(Selection),
    /// Drop the query silently (a SERVERID that is not ours, RFC 5007 s.4.3.2).
    Discard(&'static str),
}

/// Which bindings a query selects.
#[derive(Debug, Clone)]
pub(crate) struct Selection {
    /// Where the candidates come from.
    pub source: Source,
    /// Keep only bindings on this link (RFC 5460 s.7.2 link-address filter).
    pub link: Option<u32>,
    /// Also serve reclaimed bindings (Kea quirk, [`ServerConfig::serve_reclaimed`]).
    pub reclaimed: bool,
}

/// Candidate lists, all in ascending binding order.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    Link(u32),
    RelayId(Vec<u8>),
    RemoteId(Vec<u8>),
    Client(u32),
    List(Vec<u32>),
    Nothing,
}

impl Selection {
    /// The candidate binding numbers, ascending.
    pub fn list<'s>(&'s self, store: &'s BindingStore) -> &'s [u32] {
        match &self.source {
            Source::Link(l) => store.by_link.get(*l),
            Source::RelayId(r) => store.relay_id_list(r),
            Source::RemoteId(r) => store.remote_id_list(r),
            Source::Client(c) => store.by_client.get(*c),
            Source::List(v) => v,
            Source::Nothing => &[],
        }
    }

    /// Whether binding `i` (a candidate) is served at Unix time `now`.
    pub fn serves(&self, store: &BindingStore, i: u32, now: u64) -> bool {
        let e = &store.entries[i as usize];
        (self.link.is_none() || self.link == Some(e.link))
            && (self.reclaimed || !e.is_reclaimed())
            && e.valid_until() > now
    }
}

impl Request {
    /// Read one frame body. `Err` means the frame is not a LEASEQUERY the
    /// connection can carry (RFC 5460 s.4); everything else, malformed
    /// queries included, is a [`Request`] whose [`Request::lookup`] gives
    /// the answer.
    pub fn decode(frame: &[u8]) -> Result<Request, Violation> {
        let msg = MessageView::parse(frame)
            .map_err(|e| Violation(format!("undecodable message: {e}")))?;
        if msg.msg_type() != MessageType::Leasequery {
            return Err(Violation(format!(
                "{} is not allowed on a Bulk Leasequery connection",
                msg.msg_type()
            )));
        }
        let mut req = Request {
            xid: msg.xid(),
            client_id: first_client_id(&msg),
            query_type: QueryType::Unknown(0),
            wants_relay_data: false,
            body: Err("malformed query"),
        };
        if msg.options().validate().is_err() {
            return Ok(req);
        }
        let mut query = None;
        let mut server_id = None;
        for o in msg.options().valid() {
            match o {
                OptionView::LqQuery {
                    query_type,
                    link_address,
                    options,
                } if query.is_none() => query = Some((query_type, link_address, options)),
                OptionView::ServerId(d) => server_id = Some(d.to_vec()),
                _ => {}
            }
        }
        if req.client_id.is_none() {
            req.body = Err("missing CLIENTID");
            return Ok(req);
        }
        let query = query.map(|(query_type, link, options)| {
            req.query_type = query_type;
            let (key, wants_relay_data) = query_key(query_type, link, options);
            req.wants_relay_data = wants_relay_data;
            LqQuery {
                query_type,
                link,
                key,
            }
        });
        req.body = Ok(Body {
            server_id,
            query: query.ok_or("missing LQ_QUERY"),
        });
        Ok(req)
    }

    /// The answer to the query from this server's `store` under `config`,
    /// before any binding is looked at (RFC 5007 s.4.3.2, RFC 5460 s.7.2).
    /// The first rule that applies wins: a malformed message, a SERVERID
    /// that is not ours (discarded), no LQ_QUERY, a requestor not allowed,
    /// an unknown or a forbidden query type, a missing query-option, a
    /// link-address on no configured link (NotConfigured); else the
    /// selection of bindings.
    pub fn lookup(&self, store: &BindingStore, config: &ServerConfig) -> Outcome {
        let malformed = |why| Outcome::Error(StatusCode::MalformedQuery, why);
        let body = match &self.body {
            Ok(b) => b,
            Err(why) => return malformed(why),
        };
        if body
            .server_id
            .as_ref()
            .is_some_and(|s| s.as_slice() != config.server_duid.as_bytes())
        {
            return Outcome::Discard("SERVERID is not ours");
        }
        let q = match &body.query {
            Ok(q) => q,
            Err(why) => return malformed(why),
        };
        let client_id = self.client_id.as_deref().unwrap_or_default();
        if !config.allowed_requestors.is_empty()
            && !config
                .allowed_requestors
                .iter()
                .any(|d| d.as_bytes() == client_id)
        {
            return Outcome::Error(StatusCode::NotAllowed, "requestor not allowed");
        }
        if matches!(q.query_type, QueryType::Unknown(_)) {
            return Outcome::Error(StatusCode::UnknownQueryType, "unknown query-type");
        }
        if !config.allowed_query_types.is_empty()
            && !config.allowed_query_types.contains(&q.query_type)
        {
            return Outcome::Error(StatusCode::NotAllowed, "query-type not allowed");
        }
        match &q.key {
            Ok(key) => select(key, q, store, config),
            Err(why) => malformed(why),
        }
    }
}

/// The first CLIENTID that parses, even in a message that fails later, to
/// echo it.
fn first_client_id(msg: &MessageView<'_>) -> Option<Vec<u8>> {
    for o in msg.options().iter() {
        let Ok(raw) = o else { break };
        if raw.option_code() == OptionCode::ClientId {
            if let Ok(OptionView::ClientId(d)) = raw.parse() {
                return Some(d.to_vec());
            }
        }
    }
    None
}

/// The query-option `query_type` needs, from the query's `options` (the
/// first of each kind), and whether their ORO asks for relay data.
fn query_key(
    query_type: QueryType,
    link: Ipv6Addr,
    options: Options<'_>,
) -> (Result<Key, &'static str>, bool) {
    let mut iaaddr = None;
    let mut client = None;
    let mut relay_id = None;
    let mut remote_id = None;
    let mut wants_relay_data = false;
    for o in options.valid() {
        match o {
            OptionView::IaAddr { address, .. } => {
                iaaddr.get_or_insert(address);
            }
            OptionView::ClientId(d) => {
                client.get_or_insert(d);
            }
            OptionView::RelayId(d) => {
                relay_id.get_or_insert(d);
            }
            OptionView::RemoteId { body, .. } => {
                remote_id.get_or_insert(body);
            }
            OptionView::Oro(codes) => {
                wants_relay_data |= codes.chunks_exact(2).any(|c| c == [0, 47]);
            }
            _ => {}
        }
    }
    let key = match query_type {
        QueryType::ByAddress => iaaddr.map(Key::Address).ok_or("missing IAADDR"),
        QueryType::ByClientId => client
            .map(|d| Key::ClientId(d.to_vec()))
            .ok_or("missing CLIENTID in query-options"),
        QueryType::ByRelayId => relay_id
            .map(|d| Key::RelayId(d.to_vec()))
            .ok_or("missing RELAY_ID"),
        QueryType::ByRemoteId => remote_id
            .map(|r| Key::RemoteId(r.to_vec()))
            .ok_or("missing REMOTE_ID"),
        QueryType::ByLinkAddress if link.is_unspecified() => {
            Err("link-address :: in QUERY_BY_LINK_ADDRESS")
        }
        QueryType::ByLinkAddress => Ok(Key::Link),
        // Answered UnknownQueryType before the key is looked at.
        QueryType::Unknown(_) => Err("unknown query-type"),
    };
    (key, wants_relay_data)
}

/// The bindings `key` selects, restricted to the link of a non-zero
/// link-address; NotConfigured when no link holds it (RFC 5460 s.7.2,
/// RFC 5007 s.4.3.2).
fn select(key: &Key, q: &LqQuery, store: &BindingStore, config: &ServerConfig) -> Outcome {
    let link = if q.link.is_unspecified() {
        None
    } else {
        match store.link_of(q.link) {
            Some(l) => Some(l),
            None => return Outcome::Error(StatusCode::NotConfigured, "not a configured link"),
        }
    };
    let source = match key {
        Key::Address(a) => Source::List(store.address_matches(*a)),
        Key::ClientId(d) => store.client_of(d).map_or(Source::Nothing, Source::Client),
        Key::RelayId(d) => Source::RelayId(d.clone()),
        Key::RemoteId(r) => Source::RemoteId(r.clone()),
        Key::Link => {
            // The link is the query itself, not a filter.
            return Outcome::Bindings(Selection {
                source: link.map_or(Source::Nothing, Source::Link),
                link: None,
                reclaimed: false,
            });
        }
    };
    let reclaimed = config.serve_reclaimed
        && matches!(q.query_type, QueryType::ByRelayId | QueryType::ByRemoteId);
    Outcome::Bindings(Selection {
        source,
        link,
        reclaimed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{LeasequeryBuilder, Query};
    use proptest::prelude::*;

    fn valid() -> Vec<u8> {
        LeasequeryBuilder::new(
            Xid::new(7).unwrap(),
            "000100012a2b2c2d020000009901".parse().unwrap(),
            Query::ByRemoteId {
                enterprise: 4491,
                id: b"CM-1".to_vec(),
            },
        )
        .link_address("2001:db8:1::1".parse().unwrap())
        .to_bytes()
    }

    proptest! {
        /// Network input never panics the query reader: arbitrary bytes, and
        /// valid queries with octets changed or cut.
        #[test]
        fn parse_never_panics(
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
            cut in any::<usize>(),
        ) {
            let store = BindingStore::empty();
            let cfg = ServerConfig::default();
            if let Ok(r) = Request::decode(&bytes) {
                let _ = r.lookup(&store, &cfg);
            }
            let mut m = valid();
            for (at, v) in flips {
                let n = m.len();
                m[at % n] = v;
            }
            m.truncate(cut % (m.len() + 1));
            if let Ok(r) = Request::decode(&m) {
                let _ = r.lookup(&store, &cfg);
            }
        }
    }

    #[test]
    fn reads_a_valid_query() {
        let store = BindingStore::empty();
        let r = Request::decode(&valid()).unwrap();
        assert_eq!(r.xid.get(), 7);
        assert_eq!(r.query_type, QueryType::ByRemoteId);
        assert!(r.wants_relay_data);
        // Empty store: no link holds 2001:db8:1::1.
        assert!(matches!(
            r.lookup(&store, &ServerConfig::default()),
            Outcome::Error(StatusCode::NotConfigured, _)
        ));
        assert!(Request::decode(&[12, 0, 0]).is_err());
        assert!(Request::decode(&[1, 0, 0, 1]).is_err());
    }

    /// Decoding keeps what is wrong with a query as a value; the lookup
    /// applies the rules in order: a SERVERID that is not ours is
    /// discarded even when LQ_QUERY is missing too.
    #[test]
    fn the_first_rule_that_applies_wins() {
        use crate::proto::{ClientMessage, DhcpOption};
        let store = BindingStore::empty();
        let cfg = ServerConfig::default();
        let us: crate::proto::Duid = "000100012a2b2c2d020000009901".parse().unwrap();
        let other: crate::proto::Duid = "0003000199".parse().unwrap();
        let m = |options| {
            ClientMessage {
                msg_type: MessageType::Leasequery,
                transaction_id: 9,
                options,
            }
            .to_bytes()
        };
        let lookup = |bytes: Vec<u8>| Request::decode(&bytes).unwrap().lookup(&store, &cfg);
        let foreign = m(vec![
            DhcpOption::ClientId(us.clone()),
            DhcpOption::ServerId(other),
        ]);
        assert!(matches!(lookup(foreign), Outcome::Discard(_)));
        let no_query = m(vec![DhcpOption::ClientId(us)]);
        assert!(matches!(
            lookup(no_query),
            Outcome::Error(StatusCode::MalformedQuery, "missing LQ_QUERY")
        ));
        let no_client = Request::decode(&m(vec![])).unwrap();
        assert_eq!(no_client.client_id, None);
        assert!(matches!(
            no_client.lookup(&store, &cfg),
            Outcome::Error(StatusCode::MalformedQuery, "missing CLIENTID")
        ));
    }
}
