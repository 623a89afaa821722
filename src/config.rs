//! The configuration file (TOML), default `/etc/pdrestore/pdrestore.toml`.
//!
//! Every key is documented in `docs/configuration.md`; `pdrestore.example.toml`
//! at the top of the repository is a complete example. Unknown keys and bad
//! values are errors that name the file, line and column.

use crate::proto::Duid;
use crate::recovery::plan::{NextHopFallback, PlanSettings};
use ipnet::Ipv6Net;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the configuration is read from when `--config` is not given.
pub const DEFAULT_PATH: &str = "/etc/pdrestore/pdrestore.toml";

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Our Relay-ID (RFC 5460 s.5.4.1), hex or colon-hex. When absent, one is
    /// generated once and kept in `state_directory`.
    #[serde(default)]
    pub relay_duid: Option<Duid>,
    /// Our CLIENTID in queries (RFC 5007 s.4.3.1); default: the relay DUID.
    #[serde(default)]
    pub requestor_duid: Option<Duid>,
    /// Where the generated relay DUID is kept.
    #[serde(default = "default_state_directory")]
    pub state_directory: PathBuf,
    /// Links to query (QUERY_BY_RELAY_ID link-address); `::` means all links.
    #[serde(default = "default_links")]
    pub links: Vec<Ipv6Addr>,
    /// BULK_LQ_DATA_TIMEOUT (RFC 5460 s.5.6): connect, blocked write, silent read.
    #[serde(default = "default_data_timeout", with = "duration")]
    pub data_timeout: Duration,
    /// Attempts per server after the first one.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// First delay between attempts (doubles each time, with jitter).
    #[serde(default = "default_retry_initial", with = "duration")]
    pub retry_initial_delay: Duration,
    /// Longest delay between attempts.
    #[serde(default = "default_retry_max", with = "duration")]
    pub retry_max_delay: Duration,
    /// Queries in flight on one connection (RFC 5460 s.6.5); 1 unless the servers are known to interleave.
    #[serde(default = "default_in_flight", deserialize_with = "positive")]
    pub max_in_flight: u32,
    /// The DHCPv6 servers.
    #[serde(rename = "server", deserialize_with = "non_empty")]
    pub servers: Vec<ServerConfig>,
    /// Route settings.
    pub routes: RoutesConfig,
    /// Resource bounds against broken or hostile servers.
    #[serde(default)]
    pub limits: Limits,
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
    /// Protocol tag of our routes (16 = RTPROT_DHCP); how we recognise ours.
    #[serde(default = "default_protocol", deserialize_with = "protocol")]
    pub protocol: u8,
    /// Route metric.
    #[serde(default = "default_metric")]
    pub metric: u32,
    /// The delegation pools: only prefixes inside these are installed.
    #[serde(deserialize_with = "non_empty")]
    pub allowed_prefixes: Vec<Ipv6Net>,
    /// Shortest delegated prefix accepted.
    #[serde(default = "default_min_len", deserialize_with = "prefix_len")]
    pub min_prefix_len: u8,
    /// interface-id (as the relay sends it) to local interface name.
    #[serde(default)]
    pub interfaces: BTreeMap<String, String>,
    /// Remove our routes that no binding backs any more.
    #[serde(default = "yes")]
    pub prune: bool,
    /// Without relay data: `none` (reject) or `client-address` (the client's IA_NA as gateway).
    #[serde(default)]
    pub next_hop_fallback: NextHopFallback,
}

/// Resource bounds (against servers that stream forever or send monsters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Most bindings accepted from one query.
    pub max_bindings_per_query: u64,
    /// Most bindings accepted from one server, all queries and tries together.
    pub max_bindings_per_server: u64,
    /// Most octets read from one connection.
    pub max_bytes_per_connection: u64,
    /// Deepest relay chain accepted in a binding (RFC 8415 s.7.6
    /// HOP_COUNT_LIMIT is 32); a deeper one cuts the server off.
    pub max_relay_depth: u8,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bindings_per_query: 4_000_000,
            max_bindings_per_server: 8_000_000,
            max_bytes_per_connection: 4 << 30,
            max_relay_depth: 32,
        }
    }
}

fn default_state_directory() -> PathBuf {
    PathBuf::from("/var/lib/pdrestore")
}
fn default_links() -> Vec<Ipv6Addr> {
    vec![Ipv6Addr::UNSPECIFIED]
}
fn default_data_timeout() -> Duration {
    Duration::from_secs(300)
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
fn default_in_flight() -> u32 {
    1
}
fn default_port() -> u16 {
    547
}
fn default_table() -> u32 {
    254
}
fn default_protocol() -> u8 {
    16
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

fn positive<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let v = u32::deserialize(d)?;
    if v == 0 {
        return Err(serde::de::Error::custom("must be at least 1"));
    }
    Ok(v)
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
            "protocol 0-4 belong to the kernel and static routes; use 16 (dhcp) or a private value",
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

impl Config {
    /// Parse configuration text; `path` is only used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        toml::from_str::<Config>(text).map_err(|e| {
            let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
            ConfigError::Invalid {
                path: path.to_owned(),
                line,
                column,
                message: e.message().trim().to_string(),
            }
        })
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

    /// Route planning settings for the given relay DUID.
    pub fn plan_settings(&self, relay_id: Duid) -> PlanSettings {
        PlanSettings {
            relay_id,
            table: self.routes.table,
            protocol: self.routes.protocol,
            metric: self.routes.metric,
            allowed_prefixes: self.routes.allowed_prefixes.clone(),
            min_prefix_len: self.routes.min_prefix_len,
            interface_map: self.routes.interfaces.clone(),
            fallback: self.routes.next_hop_fallback,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(c.links.len(), 2);
        assert_eq!(c.data_timeout, Duration::from_secs(120));
        assert_eq!(c.retries, 5);
        assert_eq!(c.retry_initial_delay, Duration::from_millis(500));
        assert_eq!(c.retry_max_delay, Duration::from_secs(60));
        assert_eq!(c.max_in_flight, 2);
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
        assert_eq!(c.links, vec![Ipv6Addr::UNSPECIFIED]);
        assert_eq!(c.data_timeout, Duration::from_secs(300));
        assert_eq!(c.max_in_flight, 1);
        assert_eq!(c.servers[0].port, 547);
        assert_eq!(
            (c.routes.table, c.routes.protocol, c.routes.metric),
            (254, 16, 1024)
        );
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
