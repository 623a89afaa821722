//! The other listeners of the kernel's route notifications, and whether
//! they lost some while we installed routes.
//!
//! A routing daemon (FRR's zebra, BIRD) learns of kernel routes from the
//! notifications of its rtnetlink socket. When a burst of routes overflows
//! that socket's receive buffer the kernel drops notifications, and the
//! daemon silently misses routes: nothing is logged, the only trace is the
//! Drops column of `/proc/net/netlink`. [`Snapshot`] reads that file's
//! NETLINK_ROUTE sockets; [`Snapshot::dropped_since`] compares two looks
//! and names the sockets whose drops grew in between. The parser is pure;
//! reading the files is [`Snapshot::read`].

use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// NETLINK_ROUTE, the Eth column of `/proc/net/netlink` for rtnetlink.
const NETLINK_ROUTE: u32 = 0;

/// One line of `/proc/net/netlink`: sk, Eth, Pid, Groups, Rmem, Wmem,
/// Dump, Locks, Drops, Inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketLine {
    /// The netlink protocol (the Eth column; 0 is NETLINK_ROUTE).
    pub protocol: u32,
    /// The socket's port id (the process id for a process's first socket).
    pub portid: u32,
    /// The first 32 multicast groups it listens to (a bit mask).
    pub groups: u32,
    /// Messages the kernel dropped for want of room in its receive buffer.
    pub drops: u64,
    /// The socket's inode (`socket:[INODE]` in its owner's /proc/PID/fd).
    pub inode: u64,
}

/// Parse the text of `/proc/net/netlink`: the header and any line that does
/// not read as ten columns of numbers are skipped.
pub fn parse_proc_netlink(text: &str) -> Vec<SocketLine> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<SocketLine> {
    let cols: Vec<&str> = line.split_whitespace().collect();
    if cols.len() < 10 {
        return None;
    }
    u64::from_str_radix(cols[0], 16).ok()?;
    Some(SocketLine {
        protocol: cols[1].parse().ok()?,
        portid: cols[2].parse().ok()?,
        groups: u32::from_str_radix(cols[3], 16).ok()?,
        drops: cols[8].parse().ok()?,
        inode: cols[9].parse().ok()?,
    })
}

/// The inodes of the sockets among the targets of `/proc/PID/fd` links
/// (`socket:[INODE]`).
pub fn socket_inodes<'a>(targets: impl IntoIterator<Item = &'a str>) -> BTreeSet<u64> {
    targets
        .into_iter()
        .filter_map(|t| t.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok())
        .collect()
}

/// The rtnetlink sockets of a network namespace at one moment: drops by
/// inode, with their port ids.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    sockets: BTreeMap<u64, SocketLine>,
}

/// A socket that lost route notifications between two snapshots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListenerDrops {
    /// The socket's inode.
    pub inode: u64,
    /// Its netlink port id.
    pub portid: u32,
    /// The process holding it, when it could be found (`comm`, pid).
    pub process: Option<String>,
    /// Notifications dropped between the two looks.
    pub drops: u64,
}

impl Snapshot {
    /// The NETLINK_ROUTE sockets of the text of `/proc/net/netlink`.
    pub fn parse(text: &str) -> Snapshot {
        Snapshot {
            sockets: parse_proc_netlink(text)
                .into_iter()
                .filter(|s| s.protocol == NETLINK_ROUTE)
                .map(|s| (s.inode, s))
                .collect(),
        }
    }

    /// A look at the calling thread's network namespace
    /// (`/proc/thread-self/net/netlink`); `None` when it cannot be read.
    pub fn read() -> Option<Snapshot> {
        std::fs::read_to_string("/proc/thread-self/net/netlink")
            .or_else(|_| std::fs::read_to_string("/proc/net/netlink"))
            .ok()
            .map(|t| Snapshot::parse(&t))
    }

    /// How many sockets it holds.
    pub fn len(&self) -> usize {
        self.sockets.len()
    }

    /// It holds no socket.
    pub fn is_empty(&self) -> bool {
        self.sockets.is_empty()
    }

    /// The sockets whose drops grew since `before` (a socket `before` did
    /// not know counts from zero), leaving out `ours` (inodes), by inode.
    pub fn dropped_since(&self, before: &Snapshot, ours: &BTreeSet<u64>) -> Vec<ListenerDrops> {
        self.sockets
            .values()
            .filter(|s| !ours.contains(&s.inode))
            .filter_map(|s| {
                let was = before.sockets.get(&s.inode).map_or(0, |b| b.drops);
                let drops = s.drops.checked_sub(was).filter(|d| *d > 0)?;
                Some(ListenerDrops {
                    inode: s.inode,
                    portid: s.portid,
                    process: None,
                    drops,
                })
            })
            .collect()
    }
}

/// The socket inodes this process holds (`/proc/self/fd`).
pub fn own_sockets() -> BTreeSet<u64> {
    fd_targets("/proc/self/fd")
}

fn fd_targets(dir: &str) -> BTreeSet<u64> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeSet::new();
    };
    let targets: Vec<String> = entries
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    socket_inodes(targets.iter().map(String::as_str))
}

/// Fill in which process holds each socket of `drops`, as `comm (pid N)`,
/// by a look through every `/proc/PID/fd` (best effort: a process gone or
/// unreadable is left out).
pub fn find_owners(drops: &mut [ListenerDrops]) {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return;
    };
    for p in procs.flatten() {
        let name = p.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let held = fd_targets(&format!("/proc/{pid}/fd"));
        for d in drops.iter_mut().filter(|d| held.contains(&d.inode)) {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            d.process = Some(format!("{} (pid {pid})", comm.trim()));
        }
    }
}

/// What to tell the operator about sockets that dropped notifications.
pub fn advice(drops: &[ListenerDrops]) -> String {
    let who: Vec<String> = drops
        .iter()
        .map(|d| {
            let owner = d.process.as_deref().unwrap_or("an unknown process");
            format!(
                "{owner}, netlink socket inode {} port {}: {} dropped",
                d.inode, d.portid, d.drops
            )
        })
        .collect();
    format!(
        "a route listener lost kernel route notifications during this run ({}): a routing daemon (FRR's zebra, BIRD) that learns kernel routes may now miss some of ours and not redistribute them. Give it a large netlink receive buffer (zebra: `-s 90000000`, as Debian's /etc/frr/daemons sets in zebra_options) or pace the installation with [routes] max_routes_per_second; then restart the daemon, which reads the whole table at start (running recover again does not help: it changes nothing, so no notification is sent again)",
        who.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real `/proc/net/netlink` of a namespace with zebra (Linux 6.x).
    const TEXT: &str = "\
sk               Eth Pid        Groups   Rmem     Wmem     Dump  Locks    Drops    Inode
00000000b20f0e27 0   0          00000000 0        0        0     2        0        4
00000000341fd90e 4   0          00000000 0        0        0     2        0        222
000000007a6e6927 0   4071250290 00000000 0        0        0     2        0        686585
00000000613c0baf 0   20161      800405f5 0        0        0     2        1219     686583
0000000009abffbc 0   4107781119 11800111 0        0        0     2        0        686586
000000001234abcd 9   20162      00000001 0        0        0     2        77       686590
";

    #[test]
    fn parses_every_column_it_needs_and_skips_the_header() {
        let lines = parse_proc_netlink(TEXT);
        assert_eq!(lines.len(), 6);
        assert_eq!(
            lines[3],
            SocketLine {
                protocol: 0,
                portid: 20161,
                groups: 0x8004_05f5,
                drops: 1219,
                inode: 686583
            }
        );
        assert_eq!(lines[5].protocol, 9);
    }

    #[test]
    fn malformed_lines_are_skipped() {
        let t = "garbage\n0000 0 1 2\nzz 0 1 0 0 0 0 2 0 5\n0000000000000001 0 1 0 0 0 0 2 x 5\n";
        assert!(parse_proc_netlink(t).is_empty());
    }

    #[test]
    fn only_route_sockets_are_kept() {
        let s = Snapshot::parse(TEXT);
        assert_eq!(s.len(), 4);
        assert!(!s.sockets.contains_key(&686590), "protocol 9 left out");
    }

    #[test]
    fn drops_that_grew_are_named_ours_and_unchanged_ones_are_not() {
        let before = Snapshot::parse(TEXT);
        let after = Snapshot::parse(
            &(TEXT
                .replace("1219     686583", "2438     686583")
                .replace("2        0        686585", "2        5        686585")
                + "00000000deadbeef 0   555        00000400 0        0        0     2        3        700000\n"),
        );
        let ours = BTreeSet::from([686585]);
        let d = after.dropped_since(&before, &ours);
        assert_eq!(
            d.iter().map(|x| (x.inode, x.drops)).collect::<Vec<_>>(),
            vec![(686583, 1219), (700000, 3)]
        );
        assert_eq!(d[0].portid, 20161);
        assert!(Snapshot::parse(TEXT)
            .dropped_since(&before, &BTreeSet::new())
            .is_empty());
    }

    #[test]
    fn a_socket_reopened_with_fewer_drops_is_not_a_drop() {
        let before = Snapshot::parse(TEXT);
        let after = Snapshot::parse(&TEXT.replace("1219     686583", "0        686583"));
        assert!(after.dropped_since(&before, &BTreeSet::new()).is_empty());
    }

    #[test]
    fn socket_inodes_reads_fd_link_targets() {
        let t = [
            "socket:[12]",
            "pipe:[13]",
            "/dev/null",
            "socket:[x]",
            "socket:[99]",
        ];
        assert_eq!(socket_inodes(t), BTreeSet::from([12, 99]));
    }

    #[test]
    fn advice_names_the_owner_and_what_to_do() {
        let a = advice(&[ListenerDrops {
            inode: 7,
            portid: 20161,
            process: Some("zebra (pid 20161)".into()),
            drops: 1219,
        }]);
        for want in [
            "zebra (pid 20161)",
            "inode 7",
            "1219 dropped",
            "-s 90000000",
            "max_routes_per_second",
            "restart",
        ] {
            assert!(a.contains(want), "{want}: {a}");
        }
    }

    #[test]
    fn a_real_proc_net_netlink_parses_and_holds_our_own_route_socket() {
        // SAFETY: a plain socket(2), bound (a netlink socket is listed once
        // bound) to a port the kernel picks; closed below.
        let fd = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW, 0) };
        assert!(fd >= 0);
        // SAFETY: an all-zero sockaddr_nl is valid (family set below).
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        let len = std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
        // SAFETY: `sa` is a sockaddr_nl of `len` octets.
        let r = unsafe { libc::bind(fd, (&sa as *const libc::sockaddr_nl).cast(), len) };
        assert_eq!(r, 0);
        let s = Snapshot::read().expect("/proc/net/netlink");
        let ours = own_sockets();
        // SAFETY: the fd opened above.
        unsafe { libc::close(fd) };
        assert!(s.sockets.keys().any(|i| ours.contains(i)), "{s:?}");
    }
}
