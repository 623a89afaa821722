//! The `[follow]` table: settings of `pdrestore follow`, the long-running
//! service that keeps the delegated-prefix routes in step with the leases by
//! snooping the relay's DHCPv6 traffic (RFC 8987 s.4).

use serde::{Deserialize, Deserializer, Serialize};
use std::time::Duration;

/// `[follow]`: what `pdrestore follow` snoops and how often it resyncs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FollowConfig {
    /// The client-facing interfaces to snoop; by default the targets of
    /// `[routes.interfaces]`.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "interface_names"
    )]
    pub interfaces: Option<Vec<String>>,
    /// Packets handled per second on one interface (a token bucket); the
    /// excess waits in the socket buffer, where the kernel drops and counts
    /// what does not fit.
    #[serde(deserialize_with = "super::de::positive")]
    pub packets_per_second: u32,
    /// Largest burst of packets handled at once on one interface.
    #[serde(deserialize_with = "super::de::positive")]
    pub packet_burst: u32,
    /// Receive buffer asked for each capture socket, octets: how large a
    /// burst is queued while the service catches up (kernel memory, used
    /// only while packets wait).
    #[serde(deserialize_with = "buffer_size")]
    pub capture_buffer: usize,
    /// Bulk Leasequery resynchronisation every this long (with up to 10%
    /// jitter), and on SIGHUP.
    #[serde(with = "super::de::duration")]
    pub resync_interval: Duration,
    /// No resync starts sooner than this after the last one ended, whatever
    /// asks for it (the floor).
    #[serde(with = "super::de::duration")]
    pub min_resync_interval: Duration,
    /// A followed prefix whose lease runs out within this long with no
    /// renewal seen is asked about alone (a targeted query); `0s`: never.
    #[serde(with = "super::de::duration_or_zero")]
    pub confirm_before: Duration,
    /// Targeted queries per minute at most.
    #[serde(deserialize_with = "super::de::positive")]
    pub confirm_per_minute: u32,
    /// Most prefixes followed at once; a REPLY for one more is refused
    /// (`cap`) and counted.
    #[serde(deserialize_with = "super::de::positive_usize")]
    pub max_prefixes: usize,
}

impl Default for FollowConfig {
    fn default() -> Self {
        FollowConfig {
            interfaces: None,
            packets_per_second: 20_000,
            packet_burst: 4_000,
            capture_buffer: 16 << 20,
            resync_interval: Duration::from_secs(3600),
            min_resync_interval: Duration::from_secs(300),
            confirm_before: Duration::from_secs(300),
            confirm_per_minute: 600,
            max_prefixes: 1_000_000,
        }
    }
}

fn buffer_size<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let v = usize::deserialize(d)?;
    if !(65536..=1 << 30).contains(&v) {
        return Err(serde::de::Error::custom(
            "must be 65536 to 1073741824 octets",
        ));
    }
    Ok(v)
}

fn interface_names<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    if v.is_empty() {
        return Err(serde::de::Error::custom(
            "must not be empty (leave it out to snoop the targets of [routes.interfaces])",
        ));
    }
    for n in &v {
        super::check_ifname(n).map_err(serde::de::Error::custom)?;
    }
    Ok(Some(v))
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::Path;
    use std::time::Duration;

    const BASE: &str = "[[server]]\naddress = \"::1\"\n[routes]\nallowed_prefixes = [\"2001:db8::/32\"]\n[routes.interfaces]\n\"ge-0/0/0\" = \"cust0\"\n";

    #[test]
    fn defaults_and_keys() {
        let c = Config::parse(BASE, Path::new("t.toml")).unwrap();
        assert_eq!(c.follow, super::FollowConfig::default());
        assert_eq!(c.follow_interfaces(), vec!["cust0".to_string()]);
        let t = format!("{BASE}[follow]\ninterfaces = [\"eth1\", \"eth2\"]\npackets_per_second = 5\npacket_burst = 7\ncapture_buffer = 1048576\nresync_interval = \"10m\"\nmax_prefixes = 9\n");
        let c = Config::parse(&t, Path::new("t.toml")).unwrap();
        assert_eq!(c.follow_interfaces(), vec!["eth1", "eth2"]);
        assert_eq!(c.follow.packets_per_second, 5);
        assert_eq!(c.follow.packet_burst, 7);
        assert_eq!(c.follow.capture_buffer, 1 << 20);
        assert_eq!(c.follow.resync_interval, Duration::from_secs(600));
        assert_eq!(c.follow.max_prefixes, 9);
        assert_eq!(Config::parse(&c.to_toml(), Path::new("t.toml")).unwrap(), c);
    }

    #[test]
    fn mistakes_are_refused_with_their_position() {
        for (extra, want) in [
            ("interfaces = []", "must not be empty"),
            ("interfaces = [\"a/b\"]", "not a valid interface name"),
            ("packets_per_second = 0", "at least 1"),
            ("max_prefixes = 0", "at least 1"),
            ("capture_buffer = 10", "65536 to"),
            ("resync_interval = \"0s\"", "greater than zero"),
            ("snoop = true", "unknown field"),
        ] {
            let t = format!("{BASE}[follow]\n{extra}\n");
            let e = Config::parse(&t, Path::new("t.toml"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{extra}: {e}");
            assert!(e.starts_with("t.toml:8:"), "{extra}: {e}");
        }
    }
}
