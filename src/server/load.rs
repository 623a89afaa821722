//! Loading bindings: JSON Lines in the shape `pdrestore decode --json`
//! prints, and Kea's lease dump (tests/data/kea/bindings.json).
//!
//! # JSON Lines (`--bindings`)
//! One binding per line, as [`crate::proto::Binding`] serialises it:
//! `client_duid`, `address` or `prefix`, `preferred_lifetime`,
//! `valid_lifetime`, `clt_time`, `relay` (outermost layer first, each with
//! `hop_count`, `link_address`, `peer_address`, and hex `interface_id`,
//! `remote_id`, `relay_id`). Times:
//! - with `clt_time` (what `decode --json` prints), the binding is replayed as
//!   it was when recorded: the client was last heard from `clt_time` seconds
//!   before the server started, and the lifetimes run from the server start;
//! - with `cltt` (absolute: Unix seconds, or RFC 3339 text such as
//!   `2026-11-27T07:00:00Z`), the lifetimes are counted from `cltt`, like a
//!   server's own lease database; `cltt` wins when both are given;
//! - with neither, the client was heard from at server start.
//!
//! A line may add `"reclaimed": true` (see [`super::store`]). Blank lines,
//! lines starting with `#`, and lines whose `kind` is not `binding` (the
//! message lines of `decode --json`) are skipped, and the fields that say
//! where a record came from (`offset`, `xid`, and `query --json`'s `server`
//! and `attempt`) are ignored, so a whole `decode --json` or `query --json`
//! output, a real server's answer among them, can be served as is.

use super::store::LeaseRecord;
use crate::proto::duid::parse_hex;
use crate::proto::{Duid, LeaseKind, RelayLayer};
use ipnet::Ipv6Net;
use serde::Deserialize;
use std::net::Ipv6Addr;
use std::path::Path;

/// A bindings file that cannot be loaded: which file, which line, what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct LoadError {
    /// The file.
    pub file: String,
    /// 1-based line number, when the fault is on one line.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    offset: Option<serde_json::Value>,
    #[serde(default)]
    xid: Option<serde_json::Value>,
    /// `query --json`: the server that answered, and the try.
    #[serde(default)]
    server: Option<serde_json::Value>,
    #[serde(default)]
    attempt: Option<serde_json::Value>,
    /// `decode --json` of a capture: the TCP connection and direction.
    #[serde(default)]
    connection: Option<serde_json::Value>,
    #[serde(default)]
    direction: Option<serde_json::Value>,
    client_duid: Duid,
    #[serde(default)]
    address: Option<Ipv6Addr>,
    #[serde(default)]
    prefix: Option<Ipv6Net>,
    preferred_lifetime: u32,
    valid_lifetime: u32,
    #[serde(default)]
    clt_time: Option<u32>,
    #[serde(default)]
    cltt: Option<serde_json::Value>,
    #[serde(default)]
    relay: Vec<RelayLayer>,
    #[serde(default)]
    reclaimed: bool,
}

fn parse_cltt(v: &serde_json::Value) -> Result<u64, String> {
    match v {
        serde_json::Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| format!("cltt {n} is not a Unix time in seconds")),
        serde_json::Value::String(s) => humantime::parse_rfc3339_weak(s)
            .map_err(|e| format!("cltt {s:?}: {e}"))
            .and_then(|t| {
                t.duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .map_err(|_| format!("cltt {s:?} is before 1970"))
            }),
        other => Err(format!(
            "cltt must be Unix seconds or RFC 3339 text, not {other}"
        )),
    }
}

/// Parse JSON Lines text; `start` is the server start (Unix seconds), `file`
/// names the source in errors.
pub fn parse_json_lines(text: &str, start: u64, file: &str) -> Result<Vec<LeaseRecord>, LoadError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let err = |message: String| LoadError {
            file: file.to_string(),
            line: Some(n + 1),
            message,
        };
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(t).map_err(|e| err(format!("not JSON: {e}")))?;
        match value.get("kind").and_then(|k| k.as_str()) {
            None | Some("binding") => {}
            Some(_) => continue,
        }
        let l: Line = serde_json::from_value(value).map_err(|e| err(e.to_string()))?;
        let _ = (
            &l.kind,
            &l.offset,
            &l.xid,
            &l.server,
            &l.attempt,
            &l.connection,
            &l.direction,
        );
        let lease = match (l.address, l.prefix) {
            (Some(a), None) => LeaseKind::Address(a),
            (None, Some(p)) => LeaseKind::Prefix(p),
            _ => return Err(err("give exactly one of \"address\" and \"prefix\"".into())),
        };
        let (cltt, base) = match (&l.cltt, l.clt_time) {
            (Some(v), _) => {
                let c = parse_cltt(v).map_err(err)?;
                (c, c)
            }
            (None, Some(age)) => (start.saturating_sub(u64::from(age)), start),
            (None, None) => (start, start),
        };
        if l.preferred_lifetime > l.valid_lifetime {
            return Err(err(format!(
                "preferred_lifetime {} is over valid_lifetime {}",
                l.preferred_lifetime, l.valid_lifetime
            )));
        }
        if l.client_duid.is_empty() {
            return Err(err("empty client_duid".into()));
        }
        out.push(LeaseRecord {
            client_duid: l.client_duid,
            lease,
            cltt,
            preferred_until: base + u64::from(l.preferred_lifetime),
            valid_until: base + u64::from(l.valid_lifetime),
            relay: l.relay,
            reclaimed: l.reclaimed,
        });
    }
    Ok(out)
}

/// Read a JSON Lines bindings file (see the module documentation).
pub fn read_json_lines(path: &Path, start: u64) -> Result<Vec<LeaseRecord>, LoadError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| LoadError {
        file: file.clone(),
        line: None,
        message: e.to_string(),
    })?;
    parse_json_lines(&text, start, &file)
}

#[derive(Debug, Deserialize)]
struct KeaDump {
    #[serde(rename = "populated-at")]
    populated_at: u64,
    leases: Vec<KeaLease>,
}

#[derive(Debug, Deserialize)]
struct KeaLease {
    #[serde(rename = "type")]
    kind: String,
    address: Ipv6Addr,
    #[serde(rename = "prefix-len")]
    prefix_len: u8,
    duid: String,
    state: u32,
    cltt: u64,
    #[serde(rename = "valid-lft")]
    valid_lft: u32,
    #[serde(rename = "preferred-lft")]
    preferred_lft: u32,
    #[serde(rename = "relay-info", default)]
    relay_info: Option<Vec<KeaRelay>>,
}

#[derive(Debug, Deserialize)]
struct KeaRelay {
    hop: u8,
    link: Ipv6Addr,
    peer: Ipv6Addr,
    #[serde(default)]
    options: Option<String>,
    #[serde(rename = "relay-id", default)]
    relay_id: Option<String>,
    #[serde(rename = "remote-id", default)]
    remote_id: Option<String>,
}

/// Convert Kea's lease dump (the `bindings.json` of tests/data/kea: `type`,
/// `address`, `prefix-len`, `duid`, `cltt`, `valid-lft`, `preferred-lft`,
/// `state`, `relay-info` outermost first) into records, moving every time
/// so that `populated-at` becomes `now`. A lease whose `state` is not 0
/// (declined, expired-reclaimed, released) is marked reclaimed. Relay layers
/// take INTERFACE_ID, REMOTE_ID and RELAY_ID from the stored relay `options`,
/// or from `relay-id` / `remote-id`.
pub fn parse_kea(json: &str, now: u64, file: &str) -> Result<Vec<LeaseRecord>, LoadError> {
    let err = |line: Option<usize>, message: String| LoadError {
        file: file.to_string(),
        line,
        message,
    };
    let dump: KeaDump =
        serde_json::from_str(json).map_err(|e| err(Some(e.line()), e.to_string()))?;
    let mut out = Vec::with_capacity(dump.leases.len());
    for (n, l) in dump.leases.iter().enumerate() {
        let lerr = |m: String| err(None, format!("lease #{n} ({}): {m}", l.address));
        let lease = match l.kind.as_str() {
            "IA_PD" => LeaseKind::Prefix(
                Ipv6Net::new(l.address, l.prefix_len).map_err(|e| lerr(e.to_string()))?,
            ),
            "IA_NA" | "IA_TA" => LeaseKind::Address(l.address),
            other => return Err(lerr(format!("unknown type {other:?}"))),
        };
        let cltt = (l.cltt + now).saturating_sub(dump.populated_at);
        let mut relay = Vec::new();
        for r in l.relay_info.iter().flatten() {
            let mut layer = RelayLayer {
                hop_count: r.hop,
                link_address: r.link,
                peer_address: r.peer,
                interface_id: None,
                remote_id: None,
                relay_id: None,
            };
            if let Some(o) = &r.options {
                let bytes = parse_hex(o).map_err(|e| lerr(format!("relay options: {e}")))?;
                let mut rest = &bytes[..];
                while rest.len() >= 4 {
                    let code = u16::from_be_bytes([rest[0], rest[1]]);
                    let len = u16::from_be_bytes([rest[2], rest[3]]) as usize;
                    let Some(body) = rest.get(4..4 + len) else {
                        return Err(lerr("relay options overrun".into()));
                    };
                    match code {
                        18 => layer.interface_id = Some(body.to_vec()),
                        37 => layer.remote_id = Some(body.to_vec()),
                        53 => layer.relay_id = Some(Duid::from_bytes(body)),
                        _ => {}
                    }
                    rest = &rest[4 + len..];
                }
            }
            if layer.relay_id.is_none() {
                if let Some(d) = &r.relay_id {
                    layer.relay_id = Some(d.parse().map_err(|e| lerr(format!("relay-id: {e}")))?);
                }
            }
            if layer.remote_id.is_none() {
                if let Some(d) = &r.remote_id {
                    layer.remote_id =
                        Some(parse_hex(d).map_err(|e| lerr(format!("remote-id: {e}")))?);
                }
            }
            relay.push(layer);
        }
        out.push(LeaseRecord {
            client_duid: l.duid.parse().map_err(|e| lerr(format!("duid: {e}")))?,
            lease,
            cltt,
            preferred_until: cltt + u64::from(l.preferred_lft),
            valid_until: cltt + u64::from(l.valid_lft),
            relay,
            reclaimed: l.state != 0,
        });
    }
    Ok(out)
}

/// Read a Kea lease dump file (see [`parse_kea`]).
pub fn read_kea(path: &Path, now: u64) -> Result<Vec<LeaseRecord>, LoadError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| LoadError {
        file: file.clone(),
        line: None,
        message: e.to_string(),
    })?;
    parse_kea(&text, now, &file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_times_and_errors() {
        let text = r#"
# a comment
{"kind":"message","offset":0,"type":"LEASEQUERY-REPLY","msg_type_code":15,"client_data":1}
{"kind":"binding","offset":0,"xid":1,"client_duid":"0003000102","prefix":"2001:db8:8000::/56","preferred_lifetime":3000,"valid_lifetime":4000,"clt_time":10}
{"client_duid":"0003000103","address":"2001:db8:1::5","preferred_lifetime":30,"valid_lifetime":40,"cltt":500,"reclaimed":true}
{"client_duid":"0003000104","address":"2001:db8:1::6","preferred_lifetime":30,"valid_lifetime":40,"cltt":"1970-01-01T00:10:00Z"}
"#;
        let r = parse_json_lines(text, 1000, "b.jsonl").unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(
            (r[0].cltt, r[0].preferred_until, r[0].valid_until),
            (990, 4000, 5000)
        );
        assert_eq!(
            (r[1].cltt, r[1].valid_until, r[1].reclaimed),
            (500, 540, true)
        );
        assert_eq!(r[2].cltt, 600);
        let e = parse_json_lines("\n{\"client_duid\":\"zz\"}\n", 0, "f.jsonl").unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(e.to_string().starts_with("f.jsonl:2: "), "{e}");
        let e = parse_json_lines(
            r#"{"client_duid":"00","preferred_lifetime":1,"valid_lifetime":2}"#,
            0,
            "f",
        )
        .unwrap_err();
        assert!(e.message.contains("exactly one"), "{e}");
    }
}
