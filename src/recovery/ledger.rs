//! The ledger: what the last recovery knew of each route it left in the
//! kernel (the lease behind it: client DUID, server, the client's last
//! transaction, the lease's end), for `pdrestore status`.
//!
//! Written by every recovery that changes routes (`recover`, and
//! `follow`'s start-up recovery and resyncs) once its routes are in place,
//! to `state_directory/routes.ledger`, whole, through a temporary file and a
//! rename (a reader sees the old ledger or the new one). A dry run writes
//! none. `follow` keeps what it learns after that in memory and answers
//! for it over its live socket ([`crate::follow::live`]).
//!
//! # Format
//! Compact and binary, because it is written on the boot path after the
//! last route (1M routes: ~45 MB, see docs/performance.md):
//! - `PDRLDG01` (8 octets), the header's length (u32, big-endian), the
//!   header (JSON, [`LedgerHeader`]);
//! - one record per route: the prefix (16 octets of address, 1 of length),
//!   a kind octet (0: a route of ours no server named, kept; 1: a lease),
//!   and for a lease: the server's position in the header's list (u16), the
//!   client's last transaction and the lease's end (u32 seconds since the
//!   Unix epoch each; 0: unknown; `u32::MAX`: never), the client DUID's
//!   length (u16) and the DUID;
//! - `PDRLDGND` and the number of records (u64, big-endian).
//!
//! The reader is strict: a bad magic, a header that is not JSON, a record
//! cut short or a length past the end is an error naming the file and the
//! offset, never a panic and never a half-read ledger taken as whole.

use crate::files::Durability;
use crate::proto::Duid;
use ipnet::Ipv6Net;
use serde::{Deserialize, Serialize};
use std::io::{BufWriter, Write};
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};

/// The ledger's file name in the state directory.
pub const FILE_NAME: &str = "routes.ledger";

/// The first octets of a ledger (format version 1).
const MAGIC: &[u8; 8] = b"PDRLDG01";
/// The trailer's first octets (then the number of records, u64): a ledger
/// cut between two records is not taken for a whole one.
const END: &[u8; 8] = b"PDRLDGND";
/// The trailer's length; a record is longer (18 octets at least).
const TRAILER: usize = 16;

/// A time field's "unknown".
const UNKNOWN: u32 = 0;
/// A time field's "never" (an infinite lifetime, RFC 8415 s.7.7).
const NEVER: u32 = u32::MAX;

/// Which recovery wrote the ledger.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunKind {
    /// `pdrestore recover`.
    #[default]
    Recover,
    /// `pdrestore follow`'s start-up recovery.
    StartUp,
    /// A resync of `pdrestore follow`.
    Resync,
}

impl RunKind {
    /// The name used in the ledger, `status` and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Recover => "recover",
            RunKind::StartUp => "start-up",
            RunKind::Resync => "resync",
        }
    }
}

/// A server as the ledger names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerServer {
    /// Its configured address and port.
    pub address: String,
    /// Its group (`[[server]] group`).
    pub group: String,
    /// Its DUID (OPTION_SERVERID), hex, when it answered.
    pub duid: Option<String>,
}

/// What the ledger says of itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerHeader {
    /// When it was written (seconds since the Unix epoch).
    pub written_at: u64,
    /// The recovery that wrote it.
    pub run: RunKind,
    /// The route table.
    pub table: u32,
    /// Our protocol tag.
    pub protocol: u8,
    /// The servers, in configuration order (records name them by position).
    pub servers: Vec<LedgerServer>,
}

/// A route the recovery left in place, as it knows it (borrowed from the
/// prefix table while it is written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Known<'a> {
    /// The delegated prefix.
    pub prefix: Ipv6Net,
    /// The lease behind the route; `None`: a route of ours no server named,
    /// kept (the prune did not run or held it back).
    pub lease: Option<KnownLease<'a>>,
}

/// The lease behind a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownLease<'a> {
    /// The client's DUID.
    pub client: &'a [u8],
    /// The server whose binding won, by position in the configuration.
    pub server: u16,
    /// When the server last heard from the client (seconds since the Unix
    /// epoch, from OPTION_CLT_TIME, RFC 5007 s.4.1.2.5).
    pub last_transaction: Option<u64>,
    /// When the lease ends (seconds since the Unix epoch; `None`: never).
    pub expires: Option<u64>,
}

/// A route of the ledger, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The delegated prefix.
    pub prefix: Ipv6Net,
    /// The lease behind it (`None`: kept without a lease).
    pub lease: Option<Lease>,
}

/// A lease of the ledger, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The client's DUID.
    pub client: Duid,
    /// The server, by position in [`LedgerHeader::servers`].
    pub server: u16,
    /// When the server last heard from the client (Unix seconds).
    pub last_transaction: Option<u64>,
    /// When the lease ends (Unix seconds; `None`: never).
    pub expires: Option<u64>,
}

/// A ledger as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ledger {
    /// Its header.
    pub header: LedgerHeader,
    /// Its routes, in the order written.
    pub records: Vec<Record>,
}

/// Why a ledger could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not a ledger, or is damaged.
    #[error("{}: not a pdrestore ledger at octet {offset}: {what}", path.display())]
    Bad {
        /// The file.
        path: PathBuf,
        /// Where.
        offset: usize,
        /// What was wrong.
        what: String,
    },
}

impl LedgerError {
    /// The ledger does not exist (no recovery has written one).
    pub fn is_missing(&self) -> bool {
        matches!(self, LedgerError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

fn time_field(t: Option<u64>, none: u32) -> u32 {
    match t {
        None => none,
        Some(s) => u32::try_from(s).unwrap_or(NEVER - 1).max(1),
    }
}

/// Write `routes` under `header` to `dir/routes.ledger` (replaced
/// atomically, not synced: [`crate::files::replace`] with
/// [`Durability::Cached`]; the next recovery writes it again); the number
/// of routes written.
pub fn write<'a>(
    dir: &Path,
    header: &LedgerHeader,
    routes: impl Iterator<Item = Known<'a>>,
) -> std::io::Result<u64> {
    std::fs::create_dir_all(dir)?;
    let head = serde_json::to_vec(header).map_err(std::io::Error::other)?;
    let mut n = 0u64;
    crate::files::replace(&dir.join(FILE_NAME), 0o600, Durability::Cached, |f| {
        let mut w = BufWriter::with_capacity(1 << 20, f);
        w.write_all(MAGIC)?;
        w.write_all(&u32::try_from(head.len()).unwrap_or(u32::MAX).to_be_bytes())?;
        w.write_all(&head)?;
        let mut rec = Vec::with_capacity(64);
        for k in routes {
            rec.clear();
            encode(&k, &mut rec);
            w.write_all(&rec)?;
            n += 1;
        }
        w.write_all(END)?;
        w.write_all(&n.to_be_bytes())?;
        w.flush()
    })?;
    Ok(n)
}

/// One record's octets.
fn encode(k: &Known<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(&k.prefix.addr().octets());
    out.push(k.prefix.prefix_len());
    match &k.lease {
        None => out.push(0),
        Some(l) => {
            out.push(1);
            out.extend_from_slice(&l.server.to_be_bytes());
            out.extend_from_slice(&time_field(l.last_transaction, UNKNOWN).to_be_bytes());
            let exp = match l.expires {
                None => NEVER,
                Some(s) => time_field(Some(s), NEVER),
            };
            out.extend_from_slice(&exp.to_be_bytes());
            let d = &l.client[..l.client.len().min(usize::from(u16::MAX))];
            out.extend_from_slice(&(d.len() as u16).to_be_bytes());
            out.extend_from_slice(d);
        }
    }
}

/// Read `dir/routes.ledger`.
pub fn read(dir: &Path) -> Result<Ledger, LedgerError> {
    let path = dir.join(FILE_NAME);
    let data = std::fs::read(&path).map_err(|source| LedgerError::Io {
        path: path.clone(),
        source,
    })?;
    parse(&data).map_err(|(offset, what)| LedgerError::Bad { path, offset, what })
}

/// A ledger's octets, strictly; on error, the offset and what was wrong.
pub fn parse(data: &[u8]) -> Result<Ledger, (usize, String)> {
    let mut r = Reader { data, at: 0 };
    if r.take(8, "the magic")? != MAGIC {
        return Err((0, "bad magic (expected PDRLDG01)".into()));
    }
    let hlen = u32::from_be_bytes(r.array("the header's length")?) as usize;
    let at = r.at;
    let head = r.take(hlen, "the header")?;
    let header: LedgerHeader =
        serde_json::from_slice(head).map_err(|e| (at, format!("the header: {e}")))?;
    let mut records = Vec::new();
    while data.len() - r.at > TRAILER {
        let at = r.at;
        let addr: [u8; 16] = r.array("a record's prefix")?;
        let len = r.take(1, "a record's prefix length")?[0];
        let prefix = Ipv6Net::new(Ipv6Addr::from(addr), len)
            .map_err(|_| (at + 16, format!("prefix length {len} over 128")))?;
        let kind_at = r.at;
        let lease = match r.take(1, "a record's kind")?[0] {
            0 => None,
            1 => {
                let server = u16::from_be_bytes(r.array("a lease's server")?);
                if usize::from(server) >= header.servers.len() {
                    return Err((r.at - 2, format!("server {server} not in the header")));
                }
                let last = u32::from_be_bytes(r.array("a lease's last transaction")?);
                let exp = u32::from_be_bytes(r.array("a lease's end")?);
                let dlen = usize::from(u16::from_be_bytes(r.array("a DUID's length")?));
                let client = Duid::from_bytes(r.take(dlen, "a client DUID")?);
                Some(Lease {
                    client,
                    server,
                    last_transaction: (last != UNKNOWN).then_some(u64::from(last)),
                    expires: (exp != NEVER).then_some(u64::from(exp)),
                })
            }
            k => return Err((kind_at, format!("record kind {k} (expected 0 or 1)"))),
        };
        records.push(Record { prefix, lease });
    }
    let at = r.at;
    if r.take(8, "the trailer")? != END {
        return Err((at, "no trailer: the ledger was cut short".into()));
    }
    let n = u64::from_be_bytes(r.array("the trailer's count")?);
    if n != records.len() as u64 {
        return Err((
            at + 8,
            format!("the trailer counts {n} records, {} read", records.len()),
        ));
    }
    Ok(Ledger { header, records })
}

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], (usize, String)> {
        let s = self
            .at
            .checked_add(n)
            .and_then(|end| self.data.get(self.at..end))
            .ok_or_else(|| {
                (
                    self.at,
                    format!(
                        "{what} cut short ({n} octets wanted, {} left)",
                        self.data.len() - self.at
                    ),
                )
            })?;
        self.at += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], (usize, String)> {
        let s = self.take(N, what)?;
        Ok(s.try_into().expect("N octets taken"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> LedgerHeader {
        LedgerHeader {
            written_at: 1_800_000_000,
            run: RunKind::Resync,
            table: 254,
            protocol: 57,
            servers: vec![LedgerServer {
                address: "[2001:db8::547]:547".into(),
                group: "a".into(),
                duid: Some("000100aa".into()),
            }],
        }
    }

    #[test]
    fn a_ledger_survives_a_round_trip() {
        let dir = std::env::temp_dir().join(format!("pdr-ledger-{}", std::process::id()));
        let known = [
            Known {
                prefix: "2001:db8:100::/56".parse().unwrap(),
                lease: Some(KnownLease {
                    client: &[0, 3, 0, 1, 2, 3, 4, 5, 6, 7],
                    server: 0,
                    last_transaction: Some(1_799_999_000),
                    expires: Some(1_800_003_600),
                }),
            },
            Known {
                prefix: "2001:db8:200::/64".parse().unwrap(),
                lease: Some(KnownLease {
                    client: &[0, 4, 9],
                    server: 0,
                    last_transaction: None,
                    expires: None,
                }),
            },
            Known {
                prefix: "2001:db8:300::/48".parse().unwrap(),
                lease: None,
            },
        ];
        assert_eq!(write(&dir, &header(), known.iter().copied()).unwrap(), 3);
        let l = read(&dir).unwrap();
        assert_eq!(l.header, header());
        assert_eq!(l.records.len(), 3);
        let a = l.records[0].lease.as_ref().unwrap();
        assert_eq!(a.client.as_bytes(), &[0, 3, 0, 1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(a.last_transaction, Some(1_799_999_000));
        assert_eq!(a.expires, Some(1_800_003_600));
        let b = l.records[1].lease.as_ref().unwrap();
        assert_eq!((b.last_transaction, b.expires), (None, None));
        assert_eq!(l.records[2].lease, None);
        assert_eq!(l.records[2].prefix, "2001:db8:300::/48".parse().unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_damaged_ledger_is_an_error_naming_the_offset() {
        let dir = std::env::temp_dir().join(format!("pdr-ledger-bad-{}", std::process::id()));
        let known = [Known {
            prefix: "2001:db8:100::/56".parse().unwrap(),
            lease: Some(KnownLease {
                client: &[0, 3, 0, 1],
                server: 0,
                last_transaction: None,
                expires: Some(5),
            }),
        }];
        write(&dir, &header(), known.iter().copied()).unwrap();
        let whole = std::fs::read(dir.join(FILE_NAME)).unwrap();
        // Every cut is an error, never a panic or a shorter ledger.
        for cut in 0..whole.len() {
            assert!(parse(&whole[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad = whole.clone();
        bad[0] = b'X';
        assert_eq!(parse(&bad).unwrap_err().0, 0);
        let mut kind = whole.clone();
        let head = 12 + u32::from_be_bytes(whole[8..12].try_into().unwrap()) as usize;
        kind[head + 17] = 7;
        let (at, what) = parse(&kind).unwrap_err();
        assert_eq!(at, head + 17);
        assert!(what.contains("record kind 7"), "{what}");
        let mut server = whole.clone();
        server[head + 19] = 9;
        assert!(parse(&server).unwrap_err().1.contains("server 9"));
        std::fs::write(dir.join(FILE_NAME), &whole[..whole.len() - 1]).unwrap();
        let e = read(&dir).unwrap_err().to_string();
        assert!(
            e.contains("routes.ledger") && e.contains("cut short"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(read(&dir).unwrap_err().is_missing());
    }
}
