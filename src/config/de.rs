//! How the configuration's values are read: the defaults of the keys left
//! out, durations (humantime), the prune limit, DUIDs, pools, interface
//! names and ids, numbers with bounds. Each function names what was wrong;
//! [`super::Config::parse`] adds the file, line and column.

use super::DEFAULT_PROTOCOL;
use crate::proto::Duid;
use crate::recovery::prune::PruneLimit;
use ipnet::Ipv6Net;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub(super) fn default_state_directory() -> PathBuf {
    PathBuf::from("/var/lib/pdrestore")
}
pub(super) fn default_data_timeout() -> Duration {
    crate::proto::BULK_LQ_DATA_TIMEOUT
}
pub(super) fn default_connect_timeout() -> Duration {
    crate::requestor::core::DEFAULT_CONNECT_TIMEOUT
}
pub(super) fn default_first_answer_timeout() -> Duration {
    crate::requestor::core::DEFAULT_FIRST_ANSWER_TIMEOUT
}
pub(super) fn default_startup_deadline() -> Duration {
    crate::proto::BULK_LQ_DATA_TIMEOUT
}
pub(super) fn default_group_grace() -> Duration {
    Duration::from_secs(10)
}
pub(super) fn default_interface_wait() -> Duration {
    Duration::from_secs(30)
}
pub(super) fn default_prune_limit() -> PruneLimit {
    PruneLimit::Share(1000)
}
pub(super) fn default_retries() -> u32 {
    3
}
pub(super) fn default_retry_initial() -> Duration {
    Duration::from_secs(1)
}
pub(super) fn default_retry_max() -> Duration {
    Duration::from_secs(30)
}
pub(super) fn default_connections() -> u32 {
    4
}
pub(super) fn default_in_flight() -> u32 {
    1
}
pub(super) fn default_port() -> u16 {
    crate::proto::SERVER_PORT
}
pub(super) fn default_table() -> u32 {
    254
}
pub(super) fn default_protocol() -> u8 {
    DEFAULT_PROTOCOL
}
pub(super) fn default_metric() -> u32 {
    1024
}
pub(super) fn default_min_len() -> u8 {
    48
}
pub(super) fn yes() -> bool {
    true
}

pub(super) mod duration {
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

pub(super) mod duration_or_zero {
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

pub(super) mod prune_limit {
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
pub(super) fn config_duid<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duid>, D::Error> {
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
pub(super) fn pools<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Ipv6Net>, D::Error> {
    non_empty(d)
}

/// A pool the configuration may hold: no host bits, nothing as broad as
/// `::/0` or broader than a /16 (wider than any registry's allocation to
/// an ISP).
pub(super) fn check_pool(p: &Ipv6Net) -> Result<(), String> {
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

pub(super) fn interface_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
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

pub(super) fn positive<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let v = u32::deserialize(d)?;
    if v == 0 {
        return Err(serde::de::Error::custom("must be at least 1"));
    }
    Ok(v)
}

pub(super) fn routes_per_second<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    positive(d).map(Some)
}

pub(super) fn some_non_empty<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Vec<T>>, D::Error> {
    non_empty(d).map(Some)
}

pub(super) fn non_empty<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    let v = Vec::<T>::deserialize(d)?;
    if v.is_empty() {
        return Err(serde::de::Error::custom("must not be empty"));
    }
    Ok(v)
}

/// The longest server group name.
const MAX_GROUP: usize = 64;

/// A server group's name: 1 to 64 letters, digits, `.`, `_`, `-`, `:`.
pub(super) fn group<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let g = String::deserialize(d)?;
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':');
    if g.is_empty() || g.len() > MAX_GROUP || !g.chars().all(ok) {
        return Err(serde::de::Error::custom(format!(
            "group {g:?}: 1 to {MAX_GROUP} letters, digits, '.', '_', '-' or ':'"
        )));
    }
    Ok(Some(g))
}

pub(super) fn prefix_len<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    let v = u8::deserialize(d)?;
    if !(1..=128).contains(&v) {
        return Err(serde::de::Error::custom("must be 1 to 128"));
    }
    Ok(v)
}

pub(super) fn protocol<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    let v = u8::deserialize(d)?;
    // 0-4 are the kernel's own (unspec, redirect, kernel, boot, static).
    if v <= 4 {
        return Err(serde::de::Error::custom(
            "protocol 0-4 belong to the kernel and static routes; keep the default (57, pdrestore) or use another value of your own",
        ));
    }
    Ok(v)
}

pub(super) fn table<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
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
            other => match other.parse() {
                Ok(n) => n,
                Err(_) => {
                    let dirs = super::rt_tables::dirs();
                    super::rt_tables::lookup(other, &dirs).ok_or_else(|| {
                        let searched: Vec<String> =
                            dirs.iter().map(|d| d.display().to_string()).collect();
                        serde::de::Error::custom(format!(
                            "unknown table {other:?}: not a number, \"main\", nor a name in rt_tables or rt_tables.d/*.conf of {}",
                            searched.join(", ")
                        ))
                    })?
                }
            },
        },
    };
    if v == 0 || v == 255 {
        return Err(serde::de::Error::custom(
            "table 0 and 255 (local) cannot hold our routes",
        ));
    }
    Ok(v)
}

/// At least 1.
pub(super) fn positive_usize<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let v = usize::deserialize(d)?;
    if v == 0 {
        return Err(serde::de::Error::custom("must be at least 1"));
    }
    Ok(v)
}

/// A server's address: an IPv6 or IPv4 address, or a DNS name resolved
/// now, when the configuration is read (each run, `check-config`): its
/// first IPv6 address, else its first address (getaddrinfo's order).
pub(super) fn address<'de, D: Deserializer<'de>>(d: D) -> Result<std::net::IpAddr, D::Error> {
    let s = String::deserialize(d)?;
    if let Ok(ip) = s.parse() {
        return Ok(ip);
    }
    let name_ok = !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
        });
    if !name_ok {
        return Err(serde::de::Error::custom(format!(
            "{s:?} is neither an IP address nor a DNS name"
        )));
    }
    use std::net::ToSocketAddrs;
    let found: Vec<std::net::IpAddr> = (s.as_str(), 0)
        .to_socket_addrs()
        .map_err(|e| serde::de::Error::custom(format!("server name {s:?} does not resolve: {e}")))?
        .map(|a| a.ip())
        .collect();
    found
        .iter()
        .find(|a| a.is_ipv6())
        .or(found.first())
        .copied()
        .ok_or_else(|| serde::de::Error::custom(format!("server name {s:?} has no address")))
}

/// `routes.vrf`: a valid interface name.
pub(super) fn vrf<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let name = String::deserialize(d)?;
    check_ifname(&name).map_err(serde::de::Error::custom)?;
    Ok(Some(name))
}
