//! Route table names, as iproute2 knows them: `rt_tables` and the
//! `rt_tables.d/*.conf` files of `/etc/iproute2` (the operator's), then of
//! `/usr/share/iproute2` and `/usr/lib/iproute2` (the defaults newer
//! iproute2 ships there), each line `NUMBER NAME` (decimal or `0x` hex),
//! `#` starting a comment. The first definition of a name wins, in that
//! order (`/etc` before the defaults; in a directory, `rt_tables` before
//! `rt_tables.d`, whose files are read in name order).
//!
//! `PDRESTORE_IPROUTE2_DIRS` (directories separated by `:`) replaces the
//! three directories, for tests and for systems that keep them elsewhere.

use std::path::{Path, PathBuf};

/// The directories searched, in order.
pub fn dirs() -> Vec<PathBuf> {
    match std::env::var_os("PDRESTORE_IPROUTE2_DIRS") {
        Some(v) => std::env::split_paths(&v).collect(),
        None => ["/etc/iproute2", "/usr/share/iproute2", "/usr/lib/iproute2"]
            .iter()
            .map(PathBuf::from)
            .collect(),
    }
}

/// The number of table `name` in the files of `dirs`, if one defines it.
pub fn lookup(name: &str, dirs: &[PathBuf]) -> Option<u32> {
    dirs.iter().find_map(|d| lookup_in(name, d))
}

fn lookup_in(name: &str, dir: &Path) -> Option<u32> {
    let mut files = vec![dir.join("rt_tables")];
    if let Ok(rd) = std::fs::read_dir(dir.join("rt_tables.d")) {
        let mut conf: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "conf"))
            .collect();
        conf.sort();
        files.extend(conf);
    }
    files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .find_map(|text| find(&text, name))
}

/// The number `text` (an rt_tables file) gives `name`.
fn find(text: &str, name: &str) -> Option<u32> {
    text.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or("");
        let mut w = line.split_whitespace();
        let (num, n) = (w.next()?, w.next()?);
        if n != name {
            return None;
        }
        match num.strip_prefix("0x").or_else(|| num.strip_prefix("0X")) {
            Some(hex) => u32::from_str_radix(hex, 16).ok(),
            None => num.parse().ok(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_rt_tables_and_rt_tables_d_in_order() {
        let etc = tempfile::tempdir().unwrap();
        let usr = tempfile::tempdir().unwrap();
        std::fs::write(
            etc.path().join("rt_tables"),
            "# reserved\n255\tlocal\n254 main\n100 subscribers # BNG\n",
        )
        .unwrap();
        std::fs::create_dir(etc.path().join("rt_tables.d")).unwrap();
        std::fs::write(
            etc.path().join("rt_tables.d/b.conf"),
            "0x20 vrf-blue\n201 twice\n",
        )
        .unwrap();
        std::fs::write(etc.path().join("rt_tables.d/a.conf"), "200 twice\n").unwrap();
        std::fs::write(etc.path().join("rt_tables.d/c.txt"), "300 ignored\n").unwrap();
        std::fs::write(
            usr.path().join("rt_tables"),
            "100 elsewhere\n101 subscribers\n",
        )
        .unwrap();
        let dirs = vec![etc.path().to_path_buf(), usr.path().to_path_buf()];
        assert_eq!(lookup("subscribers", &dirs), Some(100), "/etc first");
        assert_eq!(lookup("vrf-blue", &dirs), Some(32), "hex, rt_tables.d");
        assert_eq!(lookup("twice", &dirs), Some(200), "a.conf before b.conf");
        assert_eq!(
            lookup("elsewhere", &dirs),
            Some(100),
            "the defaults' directory"
        );
        assert_eq!(lookup("ignored", &dirs), None, "only *.conf");
        assert_eq!(lookup("BNG", &dirs), None, "a comment is no name");
        assert_eq!(lookup("nope", &dirs), None);
        assert_eq!(lookup("main", &[PathBuf::from("/nonexistent")]), None);
    }
}
