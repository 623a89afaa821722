//! The configuration file (TOML), default `/etc/pdrestore/pdrestore.toml`.
//!
//! Every key is documented in `docs/configuration.md`; `pdrestore.example.toml`
//! at the top of the repository is a complete example. Unknown keys and bad
//! values are errors that name the file, line and column.

use crate::proto::{Duid, Query};
use crate::recovery::prune::PruneLimit;
use crate::recovery::settings::{NextHopFallback, OurLayer, PlanSettings};
use crate::requestor::fanout::{FanoutConfig, QuerySpec, ServerConfig as FanoutServer};
use crate::requestor::{Limits, RetryPolicy, ServerWorstCase};
use crate::routes::{Interface, Ownership};
use ipnet::Ipv6Net;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

mod check;
mod de;
pub mod rt_tables;

use check::{line_col, locate};
pub mod follow;

pub use check::ConfigError;
pub use de::{check_ifname, interface_id_octets, MAX_IFNAME, MIN_POOL_LEN};
pub use follow::FollowConfig;

/// Where the configuration is read from when `--config` is not given.
pub const DEFAULT_PATH: &str = "/etc/pdrestore/pdrestore.toml";

/// pdrestore's own route protocol number (rtm_protocol), the default of
/// `routes.protocol`: unassigned in iproute2's `rt_protos` and in the
/// kernel's `RTPROT_*` list, unlike 16 (RTPROT_DHCP), which systemd-networkd,
/// dhcpcd and NetworkManager put on the routes they learn by DHCP.
/// `/etc/iproute2/rt_protos.d/pdrestore.conf` names it `pdrestore`.
pub const DEFAULT_PROTOCOL: u8 = 57;

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Our Relay-ID (RFC 5460 s.5.4.1), hex or colon-hex. When absent, one is
    /// generated once and kept in `state_directory`.
    #[serde(default, deserialize_with = "de::config_duid")]
    pub relay_duid: Option<Duid>,
    /// Our CLIENTID in queries (RFC 5007 s.4.3.1); default: the relay DUID.
    #[serde(default, deserialize_with = "de::config_duid")]
    pub requestor_duid: Option<Duid>,
    /// Where the generated relay DUID is kept.
    #[serde(default = "de::default_state_directory")]
    pub state_directory: PathBuf,
    /// How the bindings are found: QUERY_BY_RELAY_ID (the default) or
    /// QUERY_BY_LINK_ADDRESS, for relays that send no Relay-ID.
    #[serde(default)]
    pub query: QueryMode,
    /// The links to query. With `query = "relay-id"`: the link-address
    /// filter of each QUERY_BY_RELAY_ID (`::`, the default, for every
    /// link). With `query = "link-address"`: the addresses the relay uses
    /// as link-address, one QUERY_BY_LINK_ADDRESS each; by default the
    /// global addresses of the interfaces `[routes.interfaces]` names.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::some_non_empty"
    )]
    pub links: Option<Vec<Ipv6Addr>>,
    /// BULK_LQ_DATA_TIMEOUT (RFC 5460 s.5.6): blocked write, silent read.
    #[serde(default = "de::default_data_timeout", with = "de::duration")]
    pub data_timeout: Duration,
    /// Longest wait for one TCP connect (a black-holed server costs this per try).
    #[serde(default = "de::default_connect_timeout", with = "de::duration")]
    pub connect_timeout: Duration,
    /// Longest wait, once a query is sent, for the server's first message
    /// (at most `data_timeout`): past it the query ends "no answer to the
    /// query" and is tried once more at most.
    #[serde(default = "de::default_first_answer_timeout", with = "de::duration")]
    pub first_answer_timeout: Duration,
    /// From the start of a run: while it lasts, failed connects are retried
    /// (with backoff) without counting against `retries`, so a server that
    /// is not reachable yet at boot is waited for.
    #[serde(
        default = "de::default_startup_deadline",
        with = "de::duration_or_zero"
    )]
    pub startup_deadline: Duration,
    /// Longest wait, before installing, for the interfaces that
    /// `[routes.interfaces]` names to exist and be up (0: no wait).
    #[serde(default = "de::default_interface_wait", with = "de::duration_or_zero")]
    pub interface_wait: Duration,
    /// Attempts per server after the first one.
    #[serde(default = "de::default_retries")]
    pub retries: u32,
    /// First delay between attempts (doubles each time, with jitter).
    #[serde(default = "de::default_retry_initial", with = "de::duration")]
    pub retry_initial_delay: Duration,
    /// Longest delay between attempts.
    #[serde(default = "de::default_retry_max", with = "de::duration")]
    pub retry_max_delay: Duration,
    /// Connections to one server at once, each carrying its share of the
    /// queries (the link queries of `query = "link-address"` run in
    /// parallel); at most the server's own limit (Kea's
    /// max-requester-connections, 10 by default).
    #[serde(default = "de::default_connections", deserialize_with = "de::positive")]
    pub max_connections: u32,
    /// After a server group answered completely through one member, how
    /// long its other members (replicas) are still waited for.
    #[serde(default = "de::default_group_grace", with = "de::duration_or_zero")]
    pub group_grace: Duration,
    /// Queries in flight on one connection (RFC 5460 s.6.5); 1 unless the servers are known to interleave.
    #[serde(default = "de::default_in_flight", deserialize_with = "de::positive")]
    pub max_in_flight: u32,
    /// Where `recover` writes the metrics of each run (and `follow` those of
    /// its last recovery and its counters) for node_exporter's textfile
    /// collector (see [`crate::metrics`]); `--metrics-file` wins.
    /// None by default: no metrics file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_file: Option<PathBuf>,
    /// The DHCPv6 servers.
    #[serde(rename = "server", deserialize_with = "de::non_empty")]
    pub servers: Vec<ServerConfig>,
    /// Route settings.
    pub routes: RoutesConfig,
    /// Resource bounds against broken or hostile servers.
    #[serde(default)]
    pub limits: Limits,
    /// `pdrestore follow`: snooping and resynchronisation.
    #[serde(default)]
    pub follow: FollowConfig,
}

/// The longest a `recover` run can wait with a configuration
/// ([`Config::worst_case`]): the interfaces, then the servers, side by side.
/// The time the servers spend sending their answers and the installation
/// of the routes (seconds, about 4 s per million routes) come on top.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorstCase {
    /// The wait for the interfaces ([`Config::interface_wait`]).
    pub interface_wait: Duration,
    /// The longest server (see [`crate::requestor::worst`]).
    pub server: ServerWorstCase,
}

impl WorstCase {
    /// The whole of it.
    pub fn total(&self) -> Duration {
        self.interface_wait + self.server.total()
    }
}

impl fmt::Display for WorstCase {
    /// `29m 50s (interface_wait 30s + startup_deadline 5m + 4 tries x (...) + backoff 2m)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let human = crate::requestor::worst::human;
        write!(f, "{} (", human(self.total()))?;
        if !self.interface_wait.is_zero() {
            write!(f, "interface_wait {} + ", human(self.interface_wait))?;
        }
        write!(f, "{})", self.server)
    }
}

/// How recovery finds our bindings (RFC 5460 s.5.3, s.6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum QueryMode {
    /// QUERY_BY_RELAY_ID with our relay DUID: the relay agent puts
    /// OPTION_RELAY_ID in every RELAY-FORW.
    #[default]
    RelayId,
    /// QUERY_BY_LINK_ADDRESS for each of our links: for relay agents that
    /// send no Relay-ID (ISC dhcrelay).
    LinkAddress,
}

impl QueryMode {
    /// Its name as the configuration writes it: `relay-id` or
    /// `link-address` (also the summary's and the metrics' query type).
    pub fn as_str(self) -> &'static str {
        match self {
            QueryMode::RelayId => "relay-id",
            QueryMode::LinkAddress => "link-address",
        }
    }
}

/// One DHCPv6 server.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Its address (a DNS name in the file is resolved when the file is
    /// read: see `de::address`).
    #[serde(deserialize_with = "de::address")]
    pub address: IpAddr,
    /// TCP port (RFC 5460 s.5.6: 547).
    #[serde(default = "de::default_port")]
    pub port: u16,
    /// Source address to connect from.
    #[serde(default)]
    pub source: Option<IpAddr>,
    /// The server group: servers of one group are replicas (a Kea HA pair),
    /// each holding every binding of the group; by default each server is
    /// a group of its own (servers that hold different bindings).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::group"
    )]
    pub group: Option<String>,
}

impl ServerConfig {
    /// The server's socket address.
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.address, self.port)
    }

    /// The name of its group: `group`, or its address and port.
    pub fn group_name(&self) -> String {
        self.group
            .clone()
            .unwrap_or_else(|| self.socket_addr().to_string())
    }
}

/// Route settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RoutesConfig {
    /// Routing table: a number or `main` (254).
    #[serde(default = "de::default_table", deserialize_with = "de::table")]
    pub table: u32,
    /// A VRF device: our routes go into its table (found at the start of
    /// each run, [`Config::with_vrf`]) and the server connections are
    /// bound to it (`SO_BINDTODEVICE`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::vrf"
    )]
    pub vrf: Option<String>,
    /// Protocol tag of our routes ([`DEFAULT_PROTOCOL`]); part of how we
    /// recognise ours (see [`crate::routes::Ownership`]).
    #[serde(default = "de::default_protocol", deserialize_with = "de::protocol")]
    pub protocol: u8,
    /// Route metric.
    #[serde(default = "de::default_metric")]
    pub metric: u32,
    /// The delegation pools: only prefixes inside these are installed.
    #[serde(deserialize_with = "de::pools")]
    pub allowed_prefixes: Vec<Ipv6Net>,
    /// Shortest delegated prefix accepted.
    #[serde(default = "de::default_min_len", deserialize_with = "de::prefix_len")]
    pub min_prefix_len: u8,
    /// interface-id (as the relay sends it) to local interface name.
    #[serde(default, deserialize_with = "de::interface_map")]
    pub interfaces: BTreeMap<String, String>,
    /// Remove our routes that no binding backs any more.
    #[serde(default = "de::yes")]
    pub prune: bool,
    /// The prune rail: refuse a prune that would remove more of our routes
    /// than this share (`"10%"`) or number (`500`).
    #[serde(default = "de::default_prune_limit", with = "de::prune_limit")]
    pub prune_limit: PruneLimit,
    /// Without relay data: `none` (reject) or `client-address` (the client's IA_NA as gateway).
    #[serde(default)]
    pub next_hop_fallback: NextHopFallback,
    /// Install at most this many route changes a second (`None`: as fast as
    /// the kernel takes them), for a routing daemon that loses a burst.
    #[serde(default, deserialize_with = "de::routes_per_second")]
    pub max_routes_per_second: Option<u32>,
}

impl Config {
    /// Parse configuration text; `path` is only used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let invalid = |offset: Option<usize>, message: String| {
            let (line, column) = offset.map(|o| line_col(text, o)).unwrap_or((1, 1));
            ConfigError::Invalid {
                path: path.to_owned(),
                line,
                column,
                message,
            }
        };
        let config = toml::from_str::<Config>(text)
            .map_err(|e| invalid(e.span().map(|s| s.start), e.message().trim().to_string()))?;
        config
            .check()
            .map_err(|(at, message)| invalid(locate(text, &at), message))?;
        Ok(config)
    }

    /// The interfaces `[routes.interfaces]` maps interface-ids to, sorted,
    /// once each.
    pub fn mapped_interfaces(&self) -> Vec<String> {
        let mut v: Vec<String> = self.routes.interfaces.values().cloned().collect();
        v.sort();
        v.dedup();
        v
    }

    /// The client-facing interfaces `pdrestore follow` snoops on a machine
    /// with interfaces `ifs`: `[follow] interfaces` (once each, in order),
    /// else [`Config::mapped_interfaces`] and, in link-address mode, the
    /// interfaces that hold an address of `links` (as `recover` routes
    /// out of them), sorted, once each.
    pub fn follow_interfaces_on(&self, ifs: &[Interface]) -> Vec<String> {
        if self.follow.interfaces.is_some() || self.query != QueryMode::LinkAddress {
            return self.follow_interfaces();
        }
        let mut v = self.mapped_interfaces();
        for l in self.links.iter().flatten() {
            for i in ifs
                .iter()
                .filter(|i| i.addresses.iter().any(|a| a.contains(l)))
            {
                v.push(i.name.to_string());
            }
        }
        v.sort();
        v.dedup();
        v
    }

    /// The client-facing interfaces `pdrestore follow` snoops:
    /// `[follow] interfaces` (once each, in order), else
    /// [`Config::mapped_interfaces`] (see [`Config::follow_interfaces_on`]
    /// for link-address mode's `links`).
    pub fn follow_interfaces(&self) -> Vec<String> {
        match &self.follow.interfaces {
            Some(v) => {
                let mut out: Vec<String> = Vec::new();
                for n in v {
                    if !out.contains(n) {
                        out.push(n.clone());
                    }
                }
                out
            }
            None => self.mapped_interfaces(),
        }
    }

    /// Read and parse a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// This configuration in VRF `vrf`'s table (`routes.vrf`): `links`
    /// are this namespace's links. An error names what is wrong: no such
    /// link, or a link that is not a VRF device. Without `routes.vrf`, the
    /// configuration as it is.
    pub fn with_vrf(&self, links: &[crate::routes::netlink::Link]) -> Result<Config, String> {
        let Some(name) = &self.routes.vrf else {
            return Ok(self.clone());
        };
        let link = links
            .iter()
            .find(|l| *l.name == **name)
            .ok_or_else(|| format!("routes.vrf: no network interface named {name:?}"))?;
        let table = link
            .vrf_table
            .ok_or_else(|| format!("routes.vrf: {name:?} is not a VRF device"))?;
        let mut c = self.clone();
        c.routes.table = table;
        Ok(c)
    }

    /// The effective settings as TOML (what `check-config` prints).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot print: {e}"))
    }

    /// Route planning settings for the given relay DUID; `links` are the
    /// links the recovery queries ([`Config::query_links`]).
    pub fn plan_settings(&self, relay_id: Duid, links: &[Ipv6Addr]) -> PlanSettings {
        PlanSettings {
            relay_id,
            owner: self.ownership(),
            interface_map: self
                .routes
                .interfaces
                .iter()
                .filter_map(|(k, v)| Some((interface_id_octets(k).ok()?, v.clone())))
                .collect(),
            our_layer: match self.query {
                QueryMode::RelayId => OurLayer::RelayId,
                QueryMode::LinkAddress => OurLayer::LinkAddress(links.to_vec()),
            },
            fallback: self.routes.next_hop_fallback,
        }
    }

    /// The ownership rule of this configuration (`[routes]`: table,
    /// protocol, metric, pools, shortest prefix).
    pub fn ownership(&self) -> Ownership {
        let r = &self.routes;
        Ownership::new(
            r.table,
            r.protocol,
            r.metric,
            &r.allowed_prefixes,
            r.min_prefix_len,
        )
    }

    /// The links the recovery asks about. With QUERY_BY_RELAY_ID: `links`,
    /// or `::` (every link). With QUERY_BY_LINK_ADDRESS: `links`, or one
    /// global address per prefix of each interface `[routes.interfaces]`
    /// names (the router's address on each client link).
    pub fn query_links(&self, interfaces: &[Interface]) -> Vec<Ipv6Addr> {
        if let Some(l) = &self.links {
            return l.clone();
        }
        match self.query {
            QueryMode::RelayId => vec![Ipv6Addr::UNSPECIFIED],
            QueryMode::LinkAddress => {
                let mut out: Vec<Ipv6Addr> = Vec::new();
                let mut nets: Vec<Ipv6Net> = Vec::new();
                for i in interfaces {
                    if !self.routes.interfaces.values().any(|n| *n == *i.name) {
                        continue;
                    }
                    for a in &i.addresses {
                        let global = !a.addr().is_loopback()
                            && !a.addr().is_unicast_link_local()
                            && !a.addr().is_multicast();
                        if global && !nets.contains(&a.trunc()) {
                            nets.push(a.trunc());
                            out.push(a.addr());
                        }
                    }
                }
                out
            }
        }
    }

    /// The server groups in order of first appearance: each one's name and
    /// the indexes of its servers (see [`ServerConfig::group`]).
    pub fn server_groups(&self) -> Vec<(String, Vec<usize>)> {
        let mut out: Vec<(String, Vec<usize>)> = Vec::new();
        for (i, s) in self.servers.iter().enumerate() {
            let name = s.group_name();
            match out.iter_mut().find(|(n, _)| *n == name) {
                Some((_, members)) => members.push(i),
                None => out.push((name, vec![i])),
            }
        }
        out
    }

    /// The fan-out of a recovery: on every server, for each of `links`,
    /// QUERY_BY_RELAY_ID of `relay` filtered to that link, or
    /// QUERY_BY_LINK_ADDRESS of that link (`query = "link-address"`); asked
    /// as `requestor_duid`, or as `relay` when none is set.
    pub fn recovery_fanout(&self, relay: &Duid, links: &[Ipv6Addr]) -> FanoutConfig {
        let requestor = self.requestor_duid.clone().unwrap_or_else(|| relay.clone());
        let queries = links
            .iter()
            .map(|l| match self.query {
                QueryMode::RelayId => QuerySpec::new(Query::ByRelayId(relay.clone())).link(*l),
                QueryMode::LinkAddress => QuerySpec::new(Query::ByLinkAddress).link(*l),
            })
            .collect();
        self.fanout_config(requestor, queries)
    }

    /// The longest a `recover` run (and `follow`'s start-up recovery, and
    /// each of its resyncs) can wait with this configuration: see
    /// [`WorstCase`]. `check-config` prints it.
    pub fn worst_case(&self) -> WorstCase {
        // The DUIDs and the queries play no part in it.
        let fanout = self.fanout_config(Duid::from_bytes(Vec::new()), Vec::new());
        WorstCase {
            interface_wait: self.interface_wait,
            server: fanout.worst_case(),
        }
    }

    /// The fan-out this configuration asks for, running `queries` on every
    /// server: its servers, data, connect and first-answer timeouts, queries in flight,
    /// retries (waiting for servers until `startup_deadline`) and limits.
    /// `requestor` is the configured `requestor_duid`, or the relay DUID
    /// when none is set.
    pub fn fanout_config(&self, requestor: Duid, queries: Vec<QuerySpec>) -> FanoutConfig {
        let mut cfg = FanoutConfig::new(requestor, queries);
        cfg.servers = self
            .servers
            .iter()
            .map(|s| FanoutServer {
                addr: s.socket_addr(),
                source: s.source,
            })
            .collect();
        cfg.connection.data_timeout = self.data_timeout;
        cfg.connection.connect_timeout = self.connect_timeout;
        cfg.connection.first_answer_timeout = self.first_answer_timeout;
        cfg.connection.max_in_flight = self.max_in_flight as usize;
        cfg.max_connections = self.max_connections as usize;
        cfg.connection.limits = self.limits;
        cfg.connection.device = self.routes.vrf.clone();
        cfg.retry = RetryPolicy {
            attempts: self.retries.saturating_add(1),
            initial_delay: self.retry_initial_delay,
            max_delay: self.retry_max_delay,
            startup_patience: self.startup_deadline,
            ..RetryPolicy::default()
        };
        cfg
    }
}

#[cfg(test)]
mod tests;
