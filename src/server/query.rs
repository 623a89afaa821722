//! Reading a LEASEQUERY and deciding what answers it (RFC 5007 s.4.3.2,
//! RFC 5460 s.7.2).

use super::store::BindingStore;
use super::ServerConfig;
use crate::proto::{MessageType, OptionCode, OptionView, QueryType, StatusCode, Xid};

/// A frame that is not a LEASEQUERY at all: the connection is closed
/// (RFC 5460 s.4: only Leasequery messages are allowed on the connection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Violation(pub String);

/// What a LEASEQUERY asks, once read.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    /// Transaction-id.
    pub xid: Xid,
    /// The requestor's CLIENTID, if it has one.
    pub client_id: Option<Vec<u8>>,
    /// The query-type (raw; may be unknown).
    pub query_type: QueryType,
    /// What to do: an error status, or a selection of bindings.
    pub outcome: Outcome,
    /// The ORO asked for OPTION_LQ_RELAY_DATA (RFC 5007 s.4.1.2.4).
    pub wants_relay_data: bool,
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
    /// connection can carry; everything else, malformed queries included, gets
    /// an [`Outcome`].
    pub fn parse(
        frame: &[u8],
        store: &BindingStore,
        config: &ServerConfig,
    ) -> Result<Request, Violation> {
        let msg = crate::proto::MessageView::parse(frame)
            .map_err(|e| Violation(format!("undecodable message: {e}")))?;
        if msg.msg_type() != MessageType::Leasequery {
            return Err(Violation(format!(
                "{} is not allowed on a Bulk Leasequery connection",
                msg.msg_type()
            )));
        }
        let mut req = Request {
            xid: msg.xid(),
            client_id: None,
            query_type: QueryType::Unknown(0),
            outcome: Outcome::Error(StatusCode::MalformedQuery, "malformed query"),
            wants_relay_data: false,
        };
        // Pick up CLIENTID even from a message that fails later, to echo it.
        for o in msg.options().iter() {
            let Ok(raw) = o else { break };
            if raw.option_code() == OptionCode::ClientId && req.client_id.is_none() {
                if let Ok(OptionView::ClientId(d)) = raw.parse() {
                    req.client_id = Some(d.to_vec());
                }
            }
        }
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
                OptionView::ServerId(d) => server_id = Some(d),
                _ => {}
            }
        }
        let Some(client_id) = req.client_id.as_deref() else {
            req.outcome = Outcome::Error(StatusCode::MalformedQuery, "missing CLIENTID");
            return Ok(req);
        };
        if let Some(s) = server_id {
            if s != config.server_duid.as_bytes() {
                req.outcome = Outcome::Discard("SERVERID is not ours");
                return Ok(req);
            }
        }
        let Some((query_type, link, qopts)) = query else {
            req.outcome = Outcome::Error(StatusCode::MalformedQuery, "missing LQ_QUERY");
            return Ok(req);
        };
        req.query_type = query_type;
        if !config.allowed_requestors.is_empty()
            && !config
                .allowed_requestors
                .iter()
                .any(|d| d.as_bytes() == client_id)
        {
            req.outcome = Outcome::Error(StatusCode::NotAllowed, "requestor not allowed");
            return Ok(req);
        }
        if matches!(query_type, QueryType::Unknown(_)) {
            req.outcome = Outcome::Error(StatusCode::UnknownQueryType, "unknown query-type");
            return Ok(req);
        }
        if !config.allowed_query_types.is_empty()
            && !config.allowed_query_types.contains(&query_type)
        {
            req.outcome = Outcome::Error(StatusCode::NotAllowed, "query-type not allowed");
            return Ok(req);
        }
        let mut iaaddr = None;
        let mut qclient = None;
        let mut relay_id = None;
        let mut remote_id = None;
        for o in qopts.valid() {
            match o {
                OptionView::IaAddr { address, .. } => {
                    iaaddr.get_or_insert(address);
                }
                OptionView::ClientId(d) => {
                    qclient.get_or_insert(d);
                }
                OptionView::RelayId(d) => {
                    relay_id.get_or_insert(d);
                }
                OptionView::RemoteId { body, .. } => {
                    remote_id.get_or_insert(body);
                }
                OptionView::Oro(codes) => {
                    req.wants_relay_data |= codes.chunks_exact(2).any(|c| c == [0, 47]);
                }
                _ => {}
            }
        }
        // A non-zero link-address restricts the answer to that link; when no
        // link holds it: NotConfigured (RFC 5460 s.7.2, RFC 5007 s.4.3.2).
        let link_filter = |req: &mut Request| -> Result<Option<u32>, ()> {
            if link.is_unspecified() {
                return Ok(None);
            }
            match store.link_of(link) {
                Some(l) => Ok(Some(l)),
                None => {
                    req.outcome =
                        Outcome::Error(StatusCode::NotConfigured, "not a configured link");
                    Err(())
                }
            }
        };
        let missing = |what| Outcome::Error(StatusCode::MalformedQuery, what);
        let source = match query_type {
            QueryType::ByAddress => {
                let Some(a) = iaaddr else {
                    req.outcome = missing("missing IAADDR");
                    return Ok(req);
                };
                Source::List(store.address_matches(a))
            }
            QueryType::ByClientId => {
                let Some(d) = qclient else {
                    req.outcome = missing("missing CLIENTID in query-options");
                    return Ok(req);
                };
                store.client_of(d).map_or(Source::Nothing, Source::Client)
            }
            QueryType::ByRelayId => {
                let Some(d) = relay_id else {
                    req.outcome = missing("missing RELAY_ID");
                    return Ok(req);
                };
                Source::RelayId(d.to_vec())
            }
            QueryType::ByRemoteId => {
                let Some(r) = remote_id else {
                    req.outcome = missing("missing REMOTE_ID");
                    return Ok(req);
                };
                Source::RemoteId(r.to_vec())
            }
            QueryType::ByLinkAddress => {
                if link.is_unspecified() {
                    req.outcome = missing("link-address :: in QUERY_BY_LINK_ADDRESS");
                    return Ok(req);
                }
                let Ok(Some(l)) = link_filter(&mut req) else {
                    return Ok(req);
                };
                req.outcome = Outcome::Bindings(Selection {
                    source: Source::Link(l),
                    link: None,
                    reclaimed: false,
                });
                return Ok(req);
            }
            QueryType::Unknown(_) => unreachable!("handled above"),
        };
        let Ok(link) = link_filter(&mut req) else {
            return Ok(req);
        };
        let reclaimed = config.serve_reclaimed
            && matches!(query_type, QueryType::ByRelayId | QueryType::ByRemoteId);
        req.outcome = Outcome::Bindings(Selection {
            source,
            link,
            reclaimed,
        });
        Ok(req)
    }
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
            let _ = Request::parse(&bytes, &store, &cfg);
            let mut m = valid();
            for (at, v) in flips {
                let n = m.len();
                m[at % n] = v;
            }
            m.truncate(cut % (m.len() + 1));
            let _ = Request::parse(&m, &store, &cfg);
        }
    }

    #[test]
    fn reads_a_valid_query() {
        let store = BindingStore::empty();
        let r = Request::parse(&valid(), &store, &ServerConfig::default()).unwrap();
        assert_eq!(r.xid.get(), 7);
        assert_eq!(r.query_type, QueryType::ByRemoteId);
        assert!(r.wants_relay_data);
        // Empty store: no link holds 2001:db8:1::1.
        assert!(matches!(
            r.outcome,
            Outcome::Error(StatusCode::NotConfigured, _)
        ));
        assert!(Request::parse(&[12, 0, 0], &store, &ServerConfig::default()).is_err());
        assert!(Request::parse(&[1, 0, 0, 1], &store, &ServerConfig::default()).is_err());
    }
}
