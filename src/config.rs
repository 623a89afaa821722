//! The configuration file (TOML), default `/etc/pdrestore/pdrestore.toml`.
//!
//! Every key is documented in `docs/configuration.md`; `pdrestore.example.toml`
//! at the top of the repository is a complete example. Unknown keys and bad
//! values are errors that name the file, line and column.

use crate::proto::{Duid, Query};
use crate::recovery::prune::PruneLimit;
use crate::recovery::settings::{NextHopFallback, OurLayer, PlanSettings};
use crate::requestor::fanout::{FanoutConfig, QuerySpec, ServerConfig as FanoutServer};
use crate::requestor::{Limits, RetryPolicy};
use crate::routes::{Interface, Ownership};
use ipnet::Ipv6Net;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub mod follow;
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
    #[serde(default, deserialize_with = "config_duid")]
    pub relay_duid: Option<Duid>,
    /// Our CLIENTID in queries (RFC 5007 s.4.3.1); default: the relay DUID.
    #[serde(default, deserialize_with = "config_duid")]
    pub requestor_duid: Option<Duid>,
    /// Where the generated relay DUID is kept.
    #[serde(default = "default_state_directory")]
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
        deserialize_with = "some_non_empty"
    )]
    pub links: Option<Vec<Ipv6Addr>>,
    /// BULK_LQ_DATA_TIMEOUT (RFC 5460 s.5.6): blocked write, silent read.
    #[serde(default = "default_data_timeout", with = "duration")]
    pub data_timeout: Duration,
    /// Longest wait for one TCP connect (a black-holed server costs this per try).
    #[serde(default = "default_connect_timeout", with = "duration")]
    pub connect_timeout: Duration,
    /// From the start of a run: while it lasts, failed connects are retried
    /// (with backoff) without counting against `retries`, so a server that
    /// is not reachable yet at boot is waited for.
    #[serde(default = "default_startup_deadline", with = "duration_or_zero")]
    pub startup_deadline: Duration,
    /// Longest wait, before installing, for the interfaces that
    /// `[routes.interfaces]` names to exist and be up (0: no wait).
    #[serde(default = "default_interface_wait", with = "duration_or_zero")]
    pub interface_wait: Duration,
    /// Attempts per server after the first one.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// First delay between attempts (doubles each time, with jitter).
    #[serde(default = "default_retry_initial", with = "duration")]
    pub retry_initial_delay: Duration,
    /// Longest delay between attempts.
    #[serde(default = "default_retry_max", with = "duration")]
    pub retry_max_delay: Duration,
    /// Connections to one server at once, each carrying its share of the
    /// queries (the link queries of `query = "link-address"` run in
    /// parallel); at most the server's own limit (Kea's
    /// max-requester-connections, 10 by default).
    #[serde(default = "default_connections", deserialize_with = "positive")]
    pub max_connections: u32,
    /// Queries in flight on one connection (RFC 5460 s.6.5); 1 unless the servers are known to interleave.
    #[serde(default = "default_in_flight", deserialize_with = "positive")]
    pub max_in_flight: u32,
    /// Where `recover` writes the metrics of each run (and `follow` those of
    /// its last recovery and its counters) for node_exporter's textfile
    /// collector (see [`crate::metrics`]); `--metrics-file` wins.
    /// None by default: no metrics file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_file: Option<PathBuf>,
    /// The DHCPv6 servers.
    #[serde(rename = "server", deserialize_with = "non_empty")]
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

/// One DHCPv6 server.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Its address.
    pub address: IpAddr,
    /// TCP port (RFC 5460 s.5.6: 547).
    #[serde(default = "default_port")]
    pub port: u16,
    /// Source address to connect from.
    #[serde(default)]
    pub source: Option<IpAddr>,
}

impl ServerConfig {
    /// The server's socket address.
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.address, self.port)
    }
}

/// Route settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RoutesConfig {
    /// Routing table: a number or `main` (254).
    #[serde(default = "default_table", deserialize_with = "table")]
    pub table: u32,
    /// Protocol tag of our routes ([`DEFAULT_PROTOCOL`]); part of how we
    /// recognise ours (see [`crate::routes::Ownership`]).
    #[serde(default = "default_protocol", deserialize_with = "protocol")]
    pub protocol: u8,
    /// Route metric.
    #[serde(default = "default_metric")]
    pub metric: u32,
    /// The delegation pools: only prefixes inside these are installed.
    #[serde(deserialize_with = "pools")]
    pub allowed_prefixes: Vec<Ipv6Net>,
    /// Shortest delegated prefix accepted.
    #[serde(default = "default_min_len", deserialize_with = "prefix_len")]
    pub min_prefix_len: u8,
    /// interface-id (as the relay sends it) to local interface name.
    #[serde(default, deserialize_with = "interface_map")]
    pub interfaces: BTreeMap<String, String>,
    /// Remove our routes that no binding backs any more.
    #[serde(default = "yes")]
    pub prune: bool,
    /// The prune rail: refuse a prune that would remove more of our routes
    /// than this share (`"10%"`) or number (`500`).
    #[serde(default = "default_prune_limit", with = "prune_limit")]
    pub prune_limit: PruneLimit,
    /// Without relay data: `none` (reject) or `client-address` (the client's IA_NA as gateway).
    #[serde(default)]
    pub next_hop_fallback: NextHopFallback,
}

fn default_state_directory() -> PathBuf {
    PathBuf::from("/var/lib/pdrestore")
}
fn default_data_timeout() -> Duration {
    crate::proto::BULK_LQ_DATA_TIMEOUT
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_startup_deadline() -> Duration {
    Duration::from_secs(300)
}
fn default_interface_wait() -> Duration {
    Duration::from_secs(30)
}
fn default_prune_limit() -> PruneLimit {
    PruneLimit::Share(1000)
}
fn default_retries() -> u32 {
    3
}
fn default_retry_initial() -> Duration {
    Duration::from_secs(1)
}
fn default_retry_max() -> Duration {
    Duration::from_secs(30)
}
fn default_connections() -> u32 {
    4
}
fn default_in_flight() -> u32 {
    1
}
fn default_port() -> u16 {
    crate::proto::SERVER_PORT
}
fn default_table() -> u32 {
    254
}
fn default_protocol() -> u8 {
    DEFAULT_PROTOCOL
}
fn default_metric() -> u32 {
    1024
}
fn default_min_len() -> u8 {
    48
}
fn yes() -> bool {
    true
}

mod duration {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        let v = humantime::parse_duration(&s).map_err(|e| {
            serde::de::Error::custom(format!("invalid duration {s:?}: {e} (try \"30s\", \"5m\")"))
        })?;
        if v.is_zero() {
            return Err(serde::de::Error::custom(
                "duration must be greater than zero",
            ));
        }
        Ok(v)
    }
}

mod duration_or_zero {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        super::duration::serialize(d, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(|e| {
            serde::de::Error::custom(format!("invalid duration {s:?}: {e} (try \"30s\", \"0s\")"))
        })
    }
}

mod prune_limit {
    use super::PruneLimit;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(l: &PruneLimit, s: S) -> Result<S::Ok, S::Error> {
        match l {
            PruneLimit::Count(n) => s.serialize_u64(*n),
            share => s.serialize_str(&share.to_string()),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PruneLimit, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum L {
            N(u64),
            S(String),
        }
        let bad = |s: &str| {
            serde::de::Error::custom(format!(
                "invalid prune_limit {s:?}: a share of our routes (\"10%\") or a number of routes (500)"
            ))
        };
        match L::deserialize(d)? {
            L::N(n) => Ok(PruneLimit::Count(n)),
            L::S(s) => {
                let Some(num) = s.trim().strip_suffix('%') else {
                    return Err(bad(&s));
                };
                let v: f64 = num.trim().parse().map_err(|_| bad(&s))?;
                if !(0.0..=100.0).contains(&v) {
                    return Err(serde::de::Error::custom(format!(
                        "prune_limit {s:?} is not a share from 0% to 100%"
                    )));
                }
                Ok(PruneLimit::Share((v * 100.0).round() as u32))
            }
        }
    }
}

/// A DUID as the configuration may give it: 3 to 130 octets (RFC 8415
/// s.11.1: a 2-octet type, then at most 128 octets).
fn config_duid<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duid>, D::Error> {
    let v = Duid::deserialize(d)?;
    if v.len() < 3 {
        return Err(serde::de::Error::custom(format!(
            "a DUID of {} octet(s) is too short: a DUID is a 2-octet type and at least one octet more (RFC 8415 11.1)",
            v.len()
        )));
    }
    Ok(Some(v))
}

/// Pools: not empty (the rest is checked in `Config::check`, where an
/// element's own position is known).
fn pools<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Ipv6Net>, D::Error> {
    non_empty(d)
}

/// A pool the configuration may hold: no host bits, nothing as broad as
/// `::/0` or broader than a /16 (wider than any registry's allocation to
/// an ISP).
fn check_pool(p: &Ipv6Net) -> Result<(), String> {
    if p.prefix_len() < MIN_POOL_LEN {
        return Err(format!(
            "pool {p} is broader than /{MIN_POOL_LEN}: a server could make pdrestore route almost anything"
        ));
    }
    if p.trunc() != *p {
        return Err(format!(
            "pool {p} has host bits set (did you mean {}?)",
            p.trunc()
        ));
    }
    Ok(())
}

/// The shortest pool accepted (`::/0` and anything broader than this are refused).
pub const MIN_POOL_LEN: u8 = 16;

/// The longest interface name Linux takes (IFNAMSIZ less the final NUL).
pub const MAX_IFNAME: usize = 15;

/// A valid Linux interface name: 1 to 15 octets, not `.` or `..`, no `/`,
/// `:` or white space (the kernel's `dev_valid_name`).
pub fn check_ifname(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("an interface name cannot be empty".into());
    }
    if name.len() > MAX_IFNAME {
        return Err(format!(
            "interface name {name:?} is {} octets long; Linux allows at most {MAX_IFNAME}",
            name.len()
        ));
    }
    if name == "."
        || name == ".."
        || name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        return Err(format!("{name:?} is not a valid interface name"));
    }
    Ok(())
}

/// The octets of an interface-id as `[routes.interfaces]` writes it: `0x`
/// and hex digits for binary ids (ISC dhcrelay sends 4 octets, its own
/// interface number: `"0x07000000"`), else the text itself.
pub fn interface_id_octets(key: &str) -> Result<Vec<u8>, String> {
    if key.is_empty() {
        return Err("an interface-id cannot be empty".into());
    }
    match key.strip_prefix("0x").or_else(|| key.strip_prefix("0X")) {
        Some(hex) => crate::proto::duid::parse_hex(hex)
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                format!(
                    "interface-id {key:?}: after 0x, give the octets in hex (e.g. \"0x07000000\")"
                )
            }),
        None => Ok(key.as_bytes().to_vec()),
    }
}

fn interface_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    struct Name(String);
    impl<'de> Deserialize<'de> for Name {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let n = String::deserialize(d)?;
            check_ifname(&n).map_err(serde::de::Error::custom)?;
            Ok(Name(n))
        }
    }
    let m = BTreeMap::<String, Name>::deserialize(d)?;
    for k in m.keys() {
        interface_id_octets(k).map_err(serde::de::Error::custom)?;
    }
    Ok(m.into_iter().map(|(k, v)| (k, v.0)).collect())
}

fn positive<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let v = u32::deserialize(d)?;
    if v == 0 {
        return Err(serde::de::Error::custom("must be at least 1"));
    }
    Ok(v)
}

fn some_non_empty<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Vec<T>>, D::Error> {
    non_empty(d).map(Some)
}

fn non_empty<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    let v = Vec::<T>::deserialize(d)?;
    if v.is_empty() {
        return Err(serde::de::Error::custom("must not be empty"));
    }
    Ok(v)
}

fn prefix_len<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    let v = u8::deserialize(d)?;
    if !(1..=128).contains(&v) {
        return Err(serde::de::Error::custom("must be 1 to 128"));
    }
    Ok(v)
}

fn protocol<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    let v = u8::deserialize(d)?;
    // 0-4 are the kernel's own (unspec, redirect, kernel, boot, static).
    if v <= 4 {
        return Err(serde::de::Error::custom(
            "protocol 0-4 belong to the kernel and static routes; keep the default (57, pdrestore) or use another value of your own",
        ));
    }
    Ok(v)
}

fn table<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum T {
        N(u32),
        S(String),
    }
    let v = match T::deserialize(d)? {
        T::N(n) => n,
        T::S(s) => match s.as_str() {
            "main" => 254,
            "default" => 253,
            other => other.parse().map_err(|_| {
                serde::de::Error::custom(format!("unknown table {other:?} (a number or \"main\")"))
            })?,
        },
    };
    if v == 0 || v == 255 {
        return Err(serde::de::Error::custom(
            "table 0 and 255 (local) cannot hold our routes",
        ));
    }
    Ok(v)
}

/// A configuration error: file, line, column, what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not a valid configuration.
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What was wrong.
        message: String,
    },
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, column)
}

/// One step of the path to a value in the file.
#[derive(Debug, Clone, Copy)]
enum Step {
    Key(&'static str),
    Index(usize),
}

/// The offset in `text` of the value at `path` (of its key when the value
/// has no span of its own).
fn locate(text: &str, path: &[Step]) -> Option<usize> {
    let doc = toml_edit::ImDocument::parse(text).ok()?;
    let mut item = doc.as_item();
    let mut key_at = None;
    for step in path {
        item = match *step {
            Step::Key(k) => {
                key_at = item
                    .as_table_like()
                    .and_then(|t| t.get_key_value(k))
                    .and_then(|(k, _)| k.span());
                item.get(k)?
            }
            Step::Index(i) => item.get(i)?,
        };
    }
    item.span().or(key_at).map(|r| r.start)
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

    /// What one value alone cannot say: checks across keys, with the path
    /// of the value to blame.
    fn check(&self) -> Result<(), (Vec<Step>, String)> {
        if self.query == QueryMode::LinkAddress {
            match &self.links {
                Some(links) => {
                    if let Some(i) = links.iter().position(|l| l.is_unspecified()) {
                        return Err((
                            vec![Step::Key("links"), Step::Index(i)],
                            "query = \"link-address\" asks for the bindings of each link by one of its addresses; :: names no link (RFC 5460 5.3)".into(),
                        ));
                    }
                }
                None if self.routes.interfaces.is_empty() => {
                    return Err((
                        vec![Step::Key("query")],
                        "query = \"link-address\" needs `links` (the router's address on each client link), or a [routes.interfaces] map naming the client-facing interfaces whose addresses they are".into(),
                    ));
                }
                None => {}
            }
        }
        if let Some(m) = &self.metrics_file {
            if !m.is_absolute() || m.file_name().is_none() {
                return Err((
                    vec![Step::Key("metrics_file")],
                    format!(
                        "metrics_file {:?} must be an absolute path to a file (e.g. \"/var/lib/prometheus/node-exporter/pdrestore.prom\")",
                        m.display().to_string()
                    ),
                ));
            }
        }
        for (i, p) in self.routes.allowed_prefixes.iter().enumerate() {
            check_pool(p).map_err(|m| {
                (
                    vec![
                        Step::Key("routes"),
                        Step::Key("allowed_prefixes"),
                        Step::Index(i),
                    ],
                    m,
                )
            })?;
        }
        if self.servers.len() > crate::proto::ServerIndex::LIMIT {
            return Err((
                vec![
                    Step::Key("server"),
                    Step::Index(crate::proto::ServerIndex::LIMIT),
                    Step::Key("address"),
                ],
                format!(
                    "at most {} servers can be configured",
                    crate::proto::ServerIndex::LIMIT
                ),
            ));
        }
        for (i, s) in self.servers.iter().enumerate() {
            let at = |k| vec![Step::Key("server"), Step::Index(i), Step::Key(k)];
            if let Some(j) = self.servers[..i]
                .iter()
                .position(|o| o.socket_addr() == s.socket_addr())
            {
                return Err((
                    at("address"),
                    format!(
                        "server {} is configured twice (also server {} of the file)",
                        s.socket_addr(),
                        j + 1
                    ),
                ));
            }
            if let Some(src) = s.source {
                if src.is_ipv4() != s.address.is_ipv4() {
                    return Err((
                        at("source"),
                        format!(
                            "source {src} cannot reach server {}: one is IPv4, the other IPv6",
                            s.address
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Warnings, with file:line:column, for every `[routes.interfaces]`
    /// target not in `present` (the interfaces of this machine): not an
    /// error, since a configuration may be checked on another machine, but
    /// `recover` waits for them (`interface_wait`) and fails what needs them.
    pub fn interface_warnings(&self, text: &str, path: &Path, present: &[&str]) -> Vec<String> {
        let mut out = Vec::new();
        for (id, name) in &self.routes.interfaces {
            if present.contains(&name.as_str()) {
                continue;
            }
            let at = toml_edit::ImDocument::parse(text).ok().and_then(|doc| {
                let item = doc.get("routes")?.get("interfaces")?.get(id.as_str())?;
                item.span().map(|r| r.start)
            });
            let (line, column) = at.map(|o| line_col(text, o)).unwrap_or((1, 1));
            out.push(format!(
                "{}:{line}:{column}: warning: interface-id {id:?} maps to interface {name:?}, which does not exist on this machine",
                path.display()
            ));
        }
        out
    }

    /// The client-facing interfaces `pdrestore follow` snoops:
    /// `[follow] interfaces`, else the targets of `[routes.interfaces]`,
    /// once each, in order.
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
            None => {
                let mut v: Vec<String> = self.routes.interfaces.values().cloned().collect();
                v.sort();
                v.dedup();
                v
            }
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

    /// The fan-out this configuration asks for, running `queries` on every
    /// server: its servers, data and connect timeouts, queries in flight,
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
        cfg.connection.max_in_flight = self.max_in_flight as usize;
        cfg.max_connections = self.max_connections as usize;
        cfg.connection.limits = self.limits;
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
mod tests {
    use super::*;

    #[test]
    fn the_fanout_it_asks_for() {
        let text = format!(
            "{}\n{}",
            "data_timeout = \"30s\"\nretries = 2\nmax_in_flight = 4\n[[server]]\naddress = \"::1\"\n[[server]]\naddress = \"127.0.0.1\"\nport = 5547\nsource = \"127.0.0.2\"",
            "[routes]\nallowed_prefixes = [\"2001:db8::/32\"]\n[limits]\nmax_bindings_per_query = 7\n"
        );
        let config = Config::parse(&text, Path::new("t.toml")).unwrap();
        let q = vec![QuerySpec::new(crate::proto::Query::ByLinkAddress)];
        let cfg = config.fanout_config(Duid::from_bytes(vec![0, 3, 0, 1, 1]), q);
        assert_eq!(cfg.servers.len(), 2);
        assert_eq!(cfg.servers[0].addr, "[::1]:547".parse().unwrap());
        assert_eq!(cfg.servers[1].source, Some("127.0.0.2".parse().unwrap()));
        assert_eq!(cfg.connection.data_timeout, Duration::from_secs(30));
        assert_eq!(cfg.connection.max_in_flight, 4);
        assert_eq!(cfg.connection.limits.max_bindings_per_query, 7);
        assert_eq!(cfg.connection.limits.max_relay_depth, 32);
        assert_eq!(cfg.retry.attempts, 3);
    }

    const FULL: &str = r#"
relay_duid = "00:03:00:01:02:00:5e:00:00:02"
requestor_duid = "000100012a2b2c2d020000009901"
state_directory = "/tmp/pdr-state"
links = ["2001:db8:1::1", "2001:db8:2::1"]
data_timeout = "2m"
retries = 5
retry_initial_delay = "500ms"
retry_max_delay = "1m"
max_in_flight = 2
metrics_file = "/var/lib/prometheus/node-exporter/pdrestore.prom"

[[server]]
address = "2001:db8::547"

[[server]]
address = "2001:db8::548"
port = 5547
source = "2001:db8::1"

[routes]
table = 100
protocol = 200
metric = 512
allowed_prefixes = ["2001:db8:8000::/40", "2001:db8:9000::/40"]
min_prefix_len = 40
prune = false
next_hop_fallback = "client-address"

[routes.interfaces]
"ge-0/0/1" = "eth1"

[limits]
max_bindings_per_query = 10
max_bindings_per_server = 20
max_bytes_per_connection = 30
max_relay_depth = 8
"#;

    fn parse(t: &str) -> Result<Config, ConfigError> {
        Config::parse(t, Path::new("test.toml"))
    }

    fn err(t: &str) -> String {
        parse(t).unwrap_err().to_string()
    }

    #[test]
    fn every_key() {
        let c = parse(FULL).unwrap();
        assert_eq!(
            c.relay_duid.as_ref().unwrap().to_hex(),
            "0003000102005e000002"
        );
        assert_eq!(
            c.requestor_duid.as_ref().unwrap().to_hex(),
            "000100012a2b2c2d020000009901"
        );
        assert_eq!(c.state_directory, PathBuf::from("/tmp/pdr-state"));
        assert_eq!(c.links.as_ref().map(Vec::len), Some(2));
        assert_eq!(c.data_timeout, Duration::from_secs(120));
        assert_eq!(c.retries, 5);
        assert_eq!(c.retry_initial_delay, Duration::from_millis(500));
        assert_eq!(c.retry_max_delay, Duration::from_secs(60));
        assert_eq!(c.max_in_flight, 2);
        assert_eq!(
            c.metrics_file.as_deref(),
            Some(Path::new(
                "/var/lib/prometheus/node-exporter/pdrestore.prom"
            ))
        );
        assert_eq!(c.servers.len(), 2);
        assert_eq!(
            c.servers[0].socket_addr(),
            "[2001:db8::547]:547".parse().unwrap()
        );
        assert_eq!(c.servers[1].port, 5547);
        assert_eq!(c.servers[1].source, Some("2001:db8::1".parse().unwrap()));
        assert_eq!(
            (c.routes.table, c.routes.protocol, c.routes.metric),
            (100, 200, 512)
        );
        assert_eq!(c.routes.allowed_prefixes.len(), 2);
        assert_eq!(c.routes.min_prefix_len, 40);
        assert!(!c.routes.prune);
        assert_eq!(c.routes.next_hop_fallback, NextHopFallback::ClientAddress);
        assert_eq!(c.routes.interfaces["ge-0/0/1"], "eth1");
        assert_eq!(
            c.limits,
            Limits {
                max_bindings_per_query: 10,
                max_bindings_per_server: 20,
                max_bytes_per_connection: 30,
                max_relay_depth: 8
            }
        );
        // Printing the effective settings and reading them back gives the same.
        assert_eq!(parse(&c.to_toml()).unwrap(), c);
    }

    #[test]
    fn defaults() {
        let c = parse(
            "[[server]]\naddress = \"::1\"\n[routes]\nallowed_prefixes = [\"2001:db8::/32\"]\n",
        )
        .unwrap();
        assert_eq!(c.relay_duid, None);
        assert_eq!(c.state_directory, PathBuf::from("/var/lib/pdrestore"));
        assert_eq!(c.links, None);
        assert_eq!(c.query, QueryMode::RelayId);
        assert_eq!(c.query_links(&[]), vec![Ipv6Addr::UNSPECIFIED]);
        assert_eq!(c.data_timeout, Duration::from_secs(300));
        assert_eq!(c.max_in_flight, 1);
        assert_eq!(c.metrics_file, None);
        assert!(!c.to_toml().contains("metrics_file"), "{}", c.to_toml());
        assert_eq!(c.servers[0].port, 547);
        assert_eq!(
            (c.routes.table, c.routes.protocol, c.routes.metric),
            (254, DEFAULT_PROTOCOL, 1024)
        );
        assert_eq!(DEFAULT_PROTOCOL, 57);
        assert_eq!(c.connect_timeout, Duration::from_secs(5));
        assert_eq!(c.startup_deadline, Duration::from_secs(300));
        assert_eq!(c.interface_wait, Duration::from_secs(30));
        assert_eq!(c.routes.prune_limit, PruneLimit::Share(1000));
        assert_eq!(c.routes.min_prefix_len, 48);
        assert!(c.routes.prune);
        assert_eq!(c.routes.next_hop_fallback, NextHopFallback::None);
        assert_eq!(c.limits, Limits::default());
        let c = parse("[[server]]\naddress = \"::1\"\n[routes]\ntable = \"main\"\nallowed_prefixes = [\"2001:db8::/32\"]\n").unwrap();
        assert_eq!(c.routes.table, 254);
    }

    #[test]
    fn errors_name_line_and_column() {
        let base =
            "[[server]]\naddress = \"::1\"\n[routes]\nallowed_prefixes = [\"2001:db8::/32\"]\n";
        let e = err(&format!("bogus = 1\n{base}"));
        assert!(e.starts_with("test.toml:1:1: unknown field `bogus`"), "{e}");
        let e = err(&format!("{base}colour = \"red\"\n"));
        assert!(
            e.starts_with("test.toml:5:1: unknown field `colour`"),
            "{e}"
        );
        let e = err("[[server]]\naddress = \"not-an-ip\"\n[routes]\nallowed_prefixes = [\"2001:db8::/32\"]\n");
        assert!(
            e.starts_with("test.toml:2:11: invalid IP address syntax"),
            "{e}"
        );
        let e = err(&format!("data_timeout = \"soon\"\n{base}"));
        assert!(
            e.starts_with("test.toml:1:16: invalid duration \"soon\""),
            "{e}"
        );
        let e = err(&format!("data_timeout = \"0s\"\n{base}"));
        assert!(
            e.contains("1:16: duration must be greater than zero"),
            "{e}"
        );
        let e = err(&format!("relay_duid = \"00:0g\"\n{base}"));
        assert!(
            e.starts_with("test.toml:1:14: invalid character 'g' in DUID"),
            "{e}"
        );
        let e = err(&format!("max_in_flight = 0\n{base}"));
        assert!(e.starts_with("test.toml:1:17: must be at least 1"), "{e}");
        let e = err("server = []\n[routes]\nallowed_prefixes = [\"2001:db8::/32\"]\n");
        assert!(e.starts_with("test.toml:1:10: must not be empty"), "{e}");
        let e = err("[routes]\nallowed_prefixes = [\"2001:db8::/32\"]\n");
        assert!(e.contains("missing field `server`"), "{e}");
        let e = err(
            "[[server]]\naddress = \"::1\"\n[routes]\nallowed_prefixes = [\"2001:db8::/329\"]\n",
        );
        assert!(
            e.starts_with("test.toml:4:21: invalid IP address syntax"),
            "{e}"
        );
        let e = err("[[server]]\naddress = \"::1\"\n[routes]\nallowed_prefixes = []\n");
        assert!(e.starts_with("test.toml:4:20: must not be empty"), "{e}");
        let e = err(&format!("{base}min_prefix_len = 129\n"));
        assert!(e.starts_with("test.toml:5:18: must be 1 to 128"), "{e}");
        let e = err(&format!("{base}protocol = 3\n"));
        assert!(
            e.starts_with("test.toml:5:12: protocol 0-4 belong to the kernel"),
            "{e}"
        );
        let e = err(&format!("{base}table = \"other\"\n"));
        assert!(
            e.starts_with("test.toml:5:9: unknown table \"other\""),
            "{e}"
        );
        let e = err(&format!("{base}table = 255\n"));
        assert!(e.contains("5:9: table 0 and 255"), "{e}");
        let e = err(&format!("{base}next_hop_fallback = \"magic\"\n"));
        assert!(
            e.starts_with("test.toml:5:21: unknown variant `magic`"),
            "{e}"
        );
        let e = err(&format!("{base}[limits]\nmax_relay_depth = \"x\"\n"));
        assert!(e.starts_with("test.toml:6:19: invalid type"), "{e}");
        let e = err("[[server]]\naddress = \"::1\"\nport = 70000\n[routes]\nallowed_prefixes = [\"2001:db8::/32\"]\n");
        assert!(e.starts_with("test.toml:3:8:"), "{e}");
        let e = err("[[server]\n");
        assert!(e.starts_with("test.toml:1:"), "{e}");
        let e = err(&format!("metrics_file = \"pdrestore.prom\"\n{base}"));
        assert!(
            e.starts_with(
                "test.toml:1:16: metrics_file \"pdrestore.prom\" must be an absolute path"
            ),
            "{e}"
        );
        let e = err(&format!("metrics_file = \"/\"\n{base}"));
        assert!(e.contains("1:16: metrics_file \"/\" must be"), "{e}");
    }

    /// Every mistake of the safety issue's list is refused with its line and column.
    #[test]
    fn mistakes_are_refused_where_they_are() {
        let base =
            "[[server]]\naddress = \"::1\"\n[routes]\nallowed_prefixes = [\"2001:db8::/32\"]\n";
        let e = err(&format!("links = []\n{base}"));
        assert!(e.starts_with("test.toml:1:9: must not be empty"), "{e}");
        let e = err("[[server]]\naddress = \"::1\"\n[routes]\nallowed_prefixes = [\"2001:db8::/32\", \"::/0\"]\n");
        assert!(
            e.starts_with("test.toml:4:38: pool ::/0 is broader than /16"),
            "{e}"
        );
        let e = err("[[server]]\naddress = \"::1\"\n[routes]\nallowed_prefixes = [\"2000::/3\"]\n");
        assert!(
            e.starts_with("test.toml:4:21: pool 2000::/3 is broader"),
            "{e}"
        );
        let e = err("[[server]]\naddress = \"::1\"\n[routes]\nallowed_prefixes = [\"2001:db8:8000::1/40\"]\n");
        assert!(
            e.starts_with("test.toml:4:21: pool 2001:db8:8000::1/40 has host bits set (did you mean 2001:db8:8000::/40?)"),
            "{e}"
        );
        let e = err(&format!("relay_duid = \"01\"\n{base}"));
        assert!(
            e.starts_with("test.toml:1:14: a DUID of 1 octet(s) is too short"),
            "{e}"
        );
        let e = err(&format!("requestor_duid = \"00:03\"\n{base}"));
        assert!(e.starts_with("test.toml:1:18: a DUID of 2 octet(s)"), "{e}");
        let e = err(&format!(
            "{base}[routes.interfaces]\n\"ge-0/0/1\" = \"a-very-long-ifname\"\n"
        ));
        assert!(
            e.starts_with("test.toml:6:14: interface name \"a-very-long-ifname\" is 18 octets long; Linux allows at most 15"),
            "{e}"
        );
        let e = err(&format!("{base}[routes.interfaces]\n\"x\" = \"eth/1\"\n"));
        assert!(
            e.starts_with("test.toml:6:7: \"eth/1\" is not a valid interface name"),
            "{e}"
        );
        let e = err(&format!("{base}[limits]\nmax_relay_depth = 0\n"));
        assert!(e.starts_with("test.toml:6:19: must be at least 1"), "{e}");
        let e = err("[[server]]\naddress = \"2001:db8::547\"\n[[server]]\naddress = \"2001:db8::547\"\nport = 547\n[routes]\nallowed_prefixes = [\"2001:db8::/32\"]\n");
        assert!(
            e.starts_with("test.toml:4:11: server [2001:db8::547]:547 is configured twice (also server 1 of the file)"),
            "{e}"
        );
        let e = err("[[server]]\naddress = \"2001:db8::547\"\nsource = \"192.0.2.1\"\n[routes]\nallowed_prefixes = [\"2001:db8::/32\"]\n");
        assert!(
            e.starts_with("test.toml:3:10: source 192.0.2.1 cannot reach server 2001:db8::547: one is IPv4, the other IPv6"),
            "{e}"
        );
        let mut many = String::new();
        for p in 0..65 {
            many.push_str(&format!(
                "[[server]]\naddress = \"::1\"\nport = {}\n",
                1000 + p
            ));
        }
        let e = err(&format!(
            "{many}[routes]\nallowed_prefixes = [\"2001:db8::/32\"]\n"
        ));
        assert!(
            e.starts_with("test.toml:194:11: at most 64 servers can be configured"),
            "{e}"
        );
        let e = err(&format!("{base}prune_limit = \"ten\"\n"));
        assert!(
            e.starts_with("test.toml:5:15: invalid prune_limit \"ten\""),
            "{e}"
        );
        let e = err(&format!("{base}prune_limit = \"150%\"\n"));
        assert!(
            e.starts_with("test.toml:5:15: prune_limit \"150%\" is not a share"),
            "{e}"
        );
        let e = err(&format!("connect_timeout = \"0s\"\n{base}"));
        assert!(
            e.starts_with("test.toml:1:19: duration must be greater than zero"),
            "{e}"
        );
        // Zero is allowed where it means "do not wait".
        let c = parse(&format!(
            "startup_deadline = \"0s\"\ninterface_wait = \"0s\"\n{base}prune_limit = 500\n"
        ))
        .unwrap();
        assert_eq!(c.startup_deadline, Duration::ZERO);
        assert_eq!(c.interface_wait, Duration::ZERO);
        assert_eq!(c.routes.prune_limit, PruneLimit::Count(500));
        let c = parse(&format!("{base}prune_limit = \"2.5%\"\n")).unwrap();
        assert_eq!(c.routes.prune_limit, PruneLimit::Share(250));
        assert_eq!(parse(&c.to_toml()).unwrap(), c);
    }

    #[test]
    fn link_address_mode() {
        let pools = "[routes]\nallowed_prefixes = [\"2001:db8:8000::/40\"]\n";
        let c = parse(&format!(
            "query = \"link-address\"\nlinks = [\"2001:db8:1::1\", \"2001:db8:2::1\"]\n[[server]]\naddress = \"2001:db8:ff::547\"\n{pools}"
        ))
        .unwrap();
        assert_eq!(c.query, QueryMode::LinkAddress);
        let links = c.query_links(&[]);
        assert_eq!(links.len(), 2);
        assert_eq!(
            c.plan_settings(Duid::from_bytes(vec![0, 3, 0]), &links)
                .our_layer,
            OurLayer::LinkAddress(links.clone())
        );
        // Without links: the global addresses of the mapped interfaces, one per prefix.
        let c = parse(&format!(
            "query = \"link-address\"\n[[server]]\naddress = \"::1\"\n{pools}[routes.interfaces]\n\"0x07000000\" = \"br1\"\n\"0x06000000\" = \"br2\"\n"
        ))
        .unwrap();
        let ifs = vec![
            Interface {
                name: "br1".into(),
                index: 3,
                addresses: vec![
                    "fe80::1/64".parse().unwrap(),
                    "2001:db8:1::1/64".parse().unwrap(),
                    "2001:db8:1::5/64".parse().unwrap(),
                ],
            },
            Interface {
                name: "br2".into(),
                index: 4,
                addresses: vec!["2001:db8:2::1/64".parse().unwrap()],
            },
            Interface {
                name: "up0".into(),
                index: 2,
                addresses: vec!["2001:db8:ff::1/64".parse().unwrap()],
            },
        ];
        assert_eq!(
            c.query_links(&ifs),
            vec![
                "2001:db8:1::1".parse::<Ipv6Addr>().unwrap(),
                "2001:db8:2::1".parse().unwrap()
            ]
        );
        let map = c
            .plan_settings(Duid::from_bytes(vec![0, 3, 0]), &[])
            .interface_map;
        assert_eq!(
            map.get(&vec![7u8, 0, 0, 0]).map(String::as_str),
            Some("br1")
        );
        // The mistakes, where they are.
        let e = err(&format!(
            "query = \"link-address\"\nlinks = [\"2001:db8:1::1\", \"::\"]\n[[server]]\naddress = \"::1\"\n{pools}"
        ));
        assert!(
            e.starts_with(
                "test.toml:2:27: query = \"link-address\" asks for the bindings of each link"
            ),
            "{e}"
        );
        let e = err(&format!(
            "query = \"link-address\"\n[[server]]\naddress = \"::1\"\n{pools}"
        ));
        assert!(
            e.starts_with("test.toml:1:9: query = \"link-address\" needs `links`"),
            "{e}"
        );
        let e = err(&format!(
            "query = \"by-magic\"\n[[server]]\naddress = \"::1\"\n{pools}"
        ));
        assert!(
            e.starts_with("test.toml:1:9: unknown variant `by-magic`"),
            "{e}"
        );
        let e = err(&format!(
            "[[server]]\naddress = \"::1\"\n{pools}[routes.interfaces]\n\"0x7g\" = \"br1\"\n"
        ));
        assert!(
            e.contains("interface-id \"0x7g\": after 0x, give the octets in hex"),
            "{e}"
        );
    }

    #[test]
    fn missing_interfaces_are_warnings_with_their_position() {
        let text = "[[server]]\naddress = \"::1\"\n[routes]\nallowed_prefixes = [\"2001:db8::/32\"]\n[routes.interfaces]\n\"ge-0/0/1\" = \"eth1\"\n\"ge-0/0/2\" = \"eth9\"\n";
        let c = parse(text).unwrap();
        let w = c.interface_warnings(text, Path::new("test.toml"), &["lo", "eth1"]);
        assert_eq!(
            w,
            vec!["test.toml:7:14: warning: interface-id \"ge-0/0/2\" maps to interface \"eth9\", which does not exist on this machine".to_string()]
        );
        assert!(c
            .interface_warnings(text, Path::new("test.toml"), &["eth1", "eth9"])
            .is_empty());
    }

    #[test]
    fn load_reports_missing_file() {
        let e = Config::load(Path::new("/nonexistent/pdrestore.toml")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("/nonexistent/pdrestore.toml: No such file"),
            "{e}"
        );
    }

    #[test]
    fn example_config_parses() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("pdrestore.example.toml");
        let c = Config::load(&p).unwrap();
        assert!(!c.servers.is_empty());
    }
}
