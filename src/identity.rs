//! The relay's DUID (RFC 5460 s.5.4.1): "A relay SHOULD be able to generate a
//! DUID for this purpose, and capture the result in stable storage. A relay
//! SHOULD also allow the DUID value to be configurable."
//!
//! The configured value wins. Otherwise the DUID stored in the state
//! directory is used; on the very first run one is generated (DUID-LLT from
//! an interface's MAC address and the current time, or DUID-UUID when there
//! is no MAC) and written atomically with mode 0600. A corrupt or unreadable
//! file is an error, never silently replaced: the servers know the relay by it.

use crate::files::Durability;
use crate::proto::Duid;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Name of the file in the state directory.
pub const DUID_FILE: &str = "relay-duid";

/// Seconds between the Unix epoch and 2000-01-01T00:00:00Z (DUID-LLT time base).
const DUID_EPOCH: u64 = 946_684_800;

/// Where the relay DUID came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DuidSource {
    /// The configuration file.
    Configured,
    /// The state file, written by an earlier run.
    Stored(PathBuf),
    /// Generated now and written to the state file.
    Generated(PathBuf),
}

impl fmt::Display for DuidSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DuidSource::Configured => write!(f, "configured (relay_duid)"),
            DuidSource::Stored(p) => write!(f, "stored in {}", p.display()),
            DuidSource::Generated(p) => write!(f, "generated now and stored in {}", p.display()),
        }
    }
}

/// Why the relay DUID cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The state file exists but cannot be read.
    #[error("cannot read relay DUID file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The state file does not hold a DUID.
    #[error("relay DUID file {path} is corrupt ({why}); fix it or set relay_duid in the configuration — it is not replaced automatically, because the DHCPv6 servers know this relay by it")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The state file cannot be written.
    #[error("cannot write relay DUID file {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// The relay DUID: configured, stored, or generated and stored.
pub fn relay_duid(
    configured: Option<&Duid>,
    state_dir: &Path,
) -> Result<(Duid, DuidSource), IdentityError> {
    if let Some(found) = lookup(configured, state_dir)? {
        return Ok(found);
    }
    let path = state_dir.join(DUID_FILE);
    let d = generate();
    store(&path, &d)?;
    Ok((d, DuidSource::Generated(path)))
}

/// The relay DUID when it is configured or stored, without creating
/// anything (`check-config`, `recover --dry-run`); `None` before the first run.
pub fn lookup(
    configured: Option<&Duid>,
    state_dir: &Path,
) -> Result<Option<(Duid, DuidSource)>, IdentityError> {
    if let Some(d) = configured {
        return Ok(Some((d.clone(), DuidSource::Configured)));
    }
    let path = state_dir.join(DUID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let d = parse_stored(&text).map_err(|why| IdentityError::Corrupt {
                path: path.clone(),
                why,
            })?;
            Ok(Some((d, DuidSource::Stored(path))))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(IdentityError::Read { path, source }),
    }
}

fn parse_stored(text: &str) -> Result<Duid, String> {
    let line = text.trim();
    if line.is_empty() {
        return Err("empty".into());
    }
    if line.lines().count() != 1 {
        return Err("more than one line".into());
    }
    let d: Duid = line.parse().map_err(|e| format!("{e}"))?;
    if d.len() < 3 {
        return Err(format!("{} octets is too short for a DUID", d.len()));
    }
    Ok(d)
}

/// A new DUID: DUID-LLT from the first interface (by name) with an Ethernet
/// MAC address, else DUID-UUID from the kernel's random UUID.
pub fn generate() -> Duid {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(DUID_EPOCH);
    let time = (now.saturating_sub(DUID_EPOCH) & 0xffff_ffff) as u32;
    match first_mac() {
        Some(mac) => Duid::new_llt(1, time, &mac),
        None => Duid::new_uuid(random_uuid()),
    }
}

fn first_mac() -> Option<[u8; 6]> {
    let mut names: Vec<_> = std::fs::read_dir("/sys/class/net")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n != "lo")
        .collect();
    names.sort();
    names.into_iter().find_map(|n| {
        let text = std::fs::read_to_string(format!("/sys/class/net/{n}/address")).ok()?;
        let bytes = crate::proto::duid::parse_hex(text.trim()).ok()?;
        let mac: [u8; 6] = bytes.try_into().ok()?;
        (mac != [0; 6]).then_some(mac)
    })
}

fn random_uuid() -> [u8; 16] {
    let mut out = [0u8; 16];
    if let Ok(text) = std::fs::read_to_string("/proc/sys/kernel/random/uuid") {
        if let Ok(b) = crate::proto::duid::parse_hex(&text.trim().replace('-', "")) {
            if b.len() == 16 {
                out.copy_from_slice(&b);
                return out;
            }
        }
    }
    // No procfs: mix the clock and the process id (still unique enough per host).
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    out[..16].copy_from_slice(&(t ^ (u128::from(std::process::id()) << 64)).to_be_bytes());
    out
}

/// Write the DUID atomically: mode 0600, synced, renamed, the directory
/// synced ([`crate::files::replace`]).
pub fn store(path: &Path, d: &Duid) -> Result<(), IdentityError> {
    let werr = |source| IdentityError::Write {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(werr)?;
    let text = format!("{}\n", d.to_colon_hex());
    crate::files::replace(path, 0o600, Durability::Synced, |f| {
        f.write_all(text.as_bytes())
    })
    .map_err(werr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn configured_wins() {
        let dir = tempfile::tempdir().unwrap();
        let d: Duid = "0003000102005e000002".parse().unwrap();
        let (got, src) = relay_duid(Some(&d), dir.path()).unwrap();
        assert_eq!((got, src), (d, DuidSource::Configured));
        assert!(!dir.path().join(DUID_FILE).exists(), "nothing written");
    }

    #[test]
    fn generated_once_then_reused_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let (first, src) = relay_duid(None, &state).unwrap();
        assert_eq!(src, DuidSource::Generated(state.join(DUID_FILE)));
        assert!(matches!(
            first.kind(),
            crate::proto::duid::DuidKind::Llt { .. } | crate::proto::duid::DuidKind::Uuid(_)
        ));
        let mode = std::fs::metadata(state.join(DUID_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let (second, src) = relay_duid(None, &state).unwrap();
        assert_eq!(second, first);
        assert_eq!(src, DuidSource::Stored(state.join(DUID_FILE)));
        // No temp files left behind.
        assert_eq!(std::fs::read_dir(&state).unwrap().count(), 1);
    }

    #[test]
    fn corrupt_file_is_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(DUID_FILE);
        for bad in ["", "zz:zz\n", "00:01\n00:02\n", "00\n"] {
            std::fs::write(&p, bad).unwrap();
            let e = relay_duid(None, dir.path()).unwrap_err();
            assert!(matches!(e, IdentityError::Corrupt { .. }), "{bad:?}: {e}");
            assert!(e.to_string().contains("not replaced automatically"));
            assert_eq!(
                std::fs::read_to_string(&p).unwrap(),
                bad,
                "file left as it was"
            );
        }
        std::fs::write(&p, "00:03:00:01:02:00:5e:00:00:02\n").unwrap();
        assert_eq!(
            relay_duid(None, dir.path()).unwrap().0.to_hex(),
            "0003000102005e000002"
        );
    }

    #[test]
    fn unreadable_and_unwritable() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should be: unreadable as a file.
        std::fs::create_dir(dir.path().join(DUID_FILE)).unwrap();
        assert!(matches!(
            relay_duid(None, dir.path()),
            Err(IdentityError::Read { .. })
        ));
        // A state directory that cannot be created (procfs refuses, even to root).
        let e = relay_duid(None, Path::new("/proc/pdrestore-test-state")).unwrap_err();
        assert!(matches!(e, IdentityError::Write { .. }), "{e}");
        assert!(
            e.to_string()
                .starts_with("cannot write relay DUID file /proc/pdrestore-test-state/relay-duid"),
            "{e}"
        );
    }
}
