//! What a run remembers of the last: the bindings of each server group's
//! last complete answer, link by link (`::` in relay-id mode), kept in
//! `state_directory/group-answers.json`, so
//! that the prune rail can tell a group whose answer collapsed (a server
//! that lost its leases, a replica pair both restored from an old backup)
//! from one that never held anything ([`crate::recovery::prune::decide_part`]).
//!
//! The file is small (a count per group and link), read at the start of every run
//! (a missing or unreadable file is an empty memory: the group rail starts
//! with the next complete answer) and replaced atomically after a run that
//! wrote routes. A group the rail held back keeps its old count (unless
//! `--force-prune` accepted the new one): a collapsed answer is never
//! learned as normal.

use crate::files::Durability;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// The file's name in the state directory.
pub const FILE: &str = "group-answers.json";

/// The bindings of each server group's last complete answer, per link.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memory {
    /// Group name: link-address asked about (`::` for all links): bindings.
    pub groups: BTreeMap<String, BTreeMap<String, u64>>,
}

impl Memory {
    /// The memory kept in `dir`; empty when there is none (or it does not
    /// parse, which is logged).
    pub fn load(dir: &Path) -> Memory {
        let path = dir.join(FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(path = %path.display(), error = %e, "the group answer counts do not parse; starting afresh");
                Memory::default()
            }),
            Err(_) => Memory::default(),
        }
    }

    /// Keep it in `dir` (replaced atomically and synced,
    /// [`crate::files::replace`]). The directory must exist (the writer
    /// lock made it).
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        crate::files::replace(&dir.join(FILE), 0o600, Durability::Synced, |f| {
            f.write_all(&bytes)?;
            f.write_all(b"\n")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_memory_survives_a_round_trip_and_a_bad_file_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Memory::load(dir.path()), Memory::default());
        let mut m = Memory::default();
        m.groups
            .insert("kea-ha".into(), [("::".to_string(), 1200)].into());
        m.groups.insert(
            "[2001:db8::548]:547".into(),
            [
                ("2001:db8:1::1".to_string(), 7),
                ("2001:db8:2::1".into(), 0),
            ]
            .into(),
        );
        m.save(dir.path()).unwrap();
        assert_eq!(Memory::load(dir.path()), m);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from(FILE)],
            "no temporary file left"
        );
        std::fs::write(dir.path().join(FILE), b"{not json").unwrap();
        assert_eq!(Memory::load(dir.path()), Memory::default());
        assert!(Memory::default().save(&dir.path().join("missing")).is_err());
    }
}
