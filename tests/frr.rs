//! Issue 22: FRR redistributes pdrestore's routes, tested with the real
//! FRR (Debian's frr package, /usr/lib/frr/zebra and bgpd, vtysh).
//!
//! The lab of tests/follow_lab (a "router" namespace with a veth client
//! link to a "client" namespace, a lab server on the router's loopback)
//! plus a "peer" namespace joined to the router by a veth pair with an IPv6
//! eBGP session. Each namespace runs its own zebra and bgpd, started by the
//! test with every path (config, pid files, vty sockets, the zserv socket,
//! logs) in the lab's temporary directory: nothing touches the host's FRR.
//! The router's bgpd has `redistribute kernel route-map POOLS`, the
//! route-map matching a prefix-list of the pool (docs/frr.md shows this
//! very configuration).
//!
//! - Recover, then follow: the peer holds exactly the delegated prefixes
//!   (a pruned one withdrawn, a kernel route of another protocol outside
//!   the pool never advertised); a new lease seen by `follow` reaches the
//!   peer, a release takes it away, and so does the end of a lease: follow
//!   removes the route itself (the kernel's garbage collection is made 10
//!   minutes long in the lab, so it cannot be what removed it).
//! - A zebra without a large netlink receive buffer (no `-s`) and a burst
//!   of 10 000 routes: when the kernel drops notifications to zebra (the
//!   Drops column of /proc/net/netlink), `recover` warns and lists them in
//!   `netlink_listener_drops`, exactly as many as the kernel counted, and
//!   zebra lacks exactly that many routes. Whether a free-running zebra
//!   keeps up depends on the machine; a zebra stopped through the burst
//!   (SIGSTOP) always drops without `-s` and never with `-s 90000000`;
//!   paced (`max_routes_per_second = 2000`), the burst loses nothing.
//!
//! Needs root (namespaces), iproute2 and FRR: skipped with a `SKIPPED`
//! line otherwise, a failure under CI (tests/support). Nothing touches the
//! host's interfaces or routes.

mod follow_lab;
mod support;
use follow_lab::*;
use pdrestore::netns::NetNs;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One lab at a time: the burst's drops depend on zebra having a core.
static SERIAL: Mutex<()> = Mutex::new(());

const ZEBRA: &str = "/usr/lib/frr/zebra";
const BGPD: &str = "/usr/lib/frr/bgpd";

/// Root, iproute2 and FRR; skipped visibly (a failure under CI) otherwise.
#[track_caller]
fn need_frr() -> bool {
    if !support::need_netns() {
        return false;
    }
    if !Path::new(ZEBRA).exists() || !Path::new(BGPD).exists() {
        return support::unmet(
            &format!("needs FRR's {ZEBRA} and {BGPD} (apt-get install frr)"),
            false,
        );
    }
    support::need_tool("vtysh", "frr")
}

/// The router's bgpd: AS 65001, an eBGP session to the peer, kernel routes
/// redistributed through the route-map POOLS (the pool's prefix-list).
const ROUTER_BGPD: &str = "\
hostname router
ipv6 prefix-list POOLS seq 5 permit 2001:db8:8000::/40 le 64
route-map POOLS permit 10
 match ipv6 address prefix-list POOLS
exit
router bgp 65001
 bgp router-id 192.0.2.1
 no bgp ebgp-requires-policy
 neighbor 2001:db8:ffff::2 remote-as 65002
 neighbor 2001:db8:ffff::2 timers connect 1
 neighbor 2001:db8:ffff::2 advertisement-interval 0
 address-family ipv6 unicast
  redistribute kernel route-map POOLS
  neighbor 2001:db8:ffff::2 activate
 exit-address-family
exit
";

/// The peer's bgpd: AS 65002, takes what the router sends.
const PEER_BGPD: &str = "\
hostname peer
router bgp 65002
 bgp router-id 192.0.2.2
 no bgp ebgp-requires-policy
 neighbor 2001:db8:ffff::1 remote-as 65001
 neighbor 2001:db8:ffff::1 timers connect 1
 address-family ipv6 unicast
  neighbor 2001:db8:ffff::1 activate
 exit-address-family
exit
";

/// Debian's receive buffer for zebra (/etc/frr/daemons: `-s 90000000`).
const BIG_BUFFER: &[&str] = &["-s", "90000000"];

/// One namespace's FRR: zebra and maybe bgpd, each a foreground child of
/// `ip netns exec` (killed when dropped), every path under `dir`.
struct Frr {
    ns: String,
    dir: PathBuf,
    daemons: Vec<Child>,
}

impl Frr {
    /// zebra with `zebra_args`, then bgpd with `bgpd_conf` if any, in `ns`;
    /// back once vtysh answers.
    fn start(ns: &NetNs, dir: &Path, zebra_args: &[&str], bgpd_conf: Option<&str>) -> Frr {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir).unwrap();
        // The daemons drop to the frr user: let it make its sockets here.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let mut daemons = vec![Self::daemon(
            ns,
            dir,
            ZEBRA,
            "zebra",
            "/dev/null",
            zebra_args,
        )];
        let zserv = dir.join("zserv.api");
        wait_for(Duration::from_secs(10), || zserv.exists())
            .unwrap_or_else(|| panic!("zebra did not start: {}", log(dir, "zebra")));
        if let Some(conf) = bgpd_conf {
            let file = dir.join("bgpd.conf");
            std::fs::write(&file, conf).unwrap();
            daemons.push(Self::daemon(
                ns,
                dir,
                BGPD,
                "bgpd",
                file.to_str().unwrap(),
                &[],
            ));
        }
        let frr = Frr {
            ns: ns.name().to_owned(),
            dir: dir.to_owned(),
            daemons,
        };
        let up = wait_for(Duration::from_secs(10), || {
            let ok = frr.vtysh_ok("show version");
            ok && (bgpd_conf.is_none() || frr.vtysh_ok("show bgp summary"))
        });
        assert!(up.is_some(), "FRR did not answer: {}", log(dir, "zebra"));
        frr
    }

    fn daemon(ns: &NetNs, dir: &Path, bin: &str, name: &str, conf: &str, args: &[&str]) -> Child {
        let d = dir.to_str().unwrap();
        let mut c = std::process::Command::new("ip");
        c.args(["netns", "exec", ns.name(), bin, "-f", conf])
            .args(["-i", &format!("{d}/{name}.pid"), "--vty_socket", d])
            .args(["-z", &format!("{d}/zserv.api"), "-P", "0"])
            .args(["--log", &format!("file:{d}/{name}.log")])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        Child(c.spawn().unwrap())
    }

    /// Send `sig` to zebra (`ip netns exec` execs it: the child is zebra).
    fn signal_zebra(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.daemons[0].0.id() as i32, sig) };
    }

    /// `vtysh -c cmd` in the namespace, against these daemons: its output.
    fn vtysh(&self, cmd: &str) -> std::process::Output {
        std::process::Command::new("ip")
            .args(["netns", "exec", &self.ns, "vtysh", "--vty_socket"])
            .arg(&self.dir)
            .args(["-c", cmd])
            .output()
            .unwrap()
    }

    fn vtysh_ok(&self, cmd: &str) -> bool {
        self.vtysh(cmd).status.success()
    }

    fn json(&self, cmd: &str) -> serde_json::Value {
        let out = self.vtysh(cmd);
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{cmd}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
    }

    /// How many kernel routes zebra holds (`show ipv6 route summary json`).
    fn kernel_route_count(&self) -> u64 {
        let j = self.json("show ipv6 route summary json");
        let kinds = j["routes"].as_array().unwrap_or_else(|| panic!("{j}"));
        kinds
            .iter()
            .filter(|k| k["type"] == "kernel")
            .map(|k| k["rib"].as_u64().unwrap_or_else(|| panic!("{j}")))
            .sum()
    }

    /// The IPv6 unicast prefixes in bgpd's table (`show bgp ipv6 unicast json`).
    fn bgp_prefixes(&self) -> BTreeSet<String> {
        let j = self.json("show bgp ipv6 unicast json");
        j["routes"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// zebra's IPv6 routes of type kernel (`K` in `show ipv6 route`).
    fn kernel_routes(&self) -> BTreeSet<String> {
        let j = self.json("show ipv6 route kernel json");
        j.as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }
}

/// A directory for the daemons' files in the lab's: the daemons run as the
/// frr user, who must be able to reach it (the lab's is root's, 0700).
fn frr_dir(lab: &Lab) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let open = std::fs::Permissions::from_mode(0o755);
    std::fs::set_permissions(lab.dir.path(), open.clone()).unwrap();
    let dir = lab.dir.path().join("frr");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, open).unwrap();
    dir
}

fn log(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default()
}

/// Poll `f` every 50 ms until it holds or `wait` passes: how long it took.
fn wait_for(wait: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if f() {
            return Some(start.elapsed());
        }
        if start.elapsed() > wait {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Wait (20 s at most) until the peer's BGP table is exactly `want`.
fn peer_holds(peer: &Frr, want: &BTreeSet<String>, what: &str) -> Duration {
    let mut last = BTreeSet::new();
    wait_for(Duration::from_secs(20), || {
        last = peer.bgp_prefixes();
        last == *want
    })
    .unwrap_or_else(|| {
        let extra: Vec<_> = last.difference(want).collect();
        let missing: Vec<_> = want.difference(&last).collect();
        panic!("{what}: the peer never held exactly the expected prefixes; extra {extra:?}, missing {missing:?}")
    })
}

/// A veth pair between the router (up0, 2001:db8:ffff::1) and the peer
/// (up1, ::2): the BGP session's link.
fn uplink(router: &NetNs, peer: &NetNs) {
    router
        .ip([
            "link",
            "add",
            "up0",
            "type",
            "veth",
            "peer",
            "name",
            "up1",
            "netns",
            peer.name(),
        ])
        .unwrap();
    for (ns, ifname, addr) in [
        (router, "up0", "2001:db8:ffff::1/64"),
        (peer, "up1", "2001:db8:ffff::2/64"),
    ] {
        ns.ip(["-6", "addr", "add", addr, "dev", ifname, "nodad"])
            .unwrap();
        ns.ip(["link", "set", "dev", ifname, "up"]).unwrap();
    }
}

/// `pdrestore recover --json -c cfg` in the router namespace, writing its
/// metrics to `metrics.prom` in the lab's directory: the exit status and
/// the JSON summary.
fn recover(lab: &Lab, cfg: &Path) -> (Option<i32>, serde_json::Value) {
    let metrics = lab.dir.path().join("metrics.prom");
    let out = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            lab.router.name(),
            env!("CARGO_BIN_EXE_pdrestore"),
        ])
        .args(["recover", "--json", "-c", cfg.to_str().unwrap()])
        .arg("--metrics-file")
        .arg(&metrics)
        .output()
        .unwrap();
    let j = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON summary ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), j)
}

fn set(v: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    v.into_iter().collect()
}

/// Recover, then follow: the peer learns exactly the delegated prefixes
/// through `redistribute kernel route-map POOLS`, loses a pruned one, never
/// sees a kernel route of another protocol outside the pool (which zebra
/// does hold), gains a new lease's prefix and loses a released one.
#[test]
fn the_bgp_peer_holds_exactly_the_delegated_prefixes_through_recover_and_follow() {
    if !need_frr() {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lab = lab("pdr-frr1", 1);
    // The kernel's garbage collection of expired routes: 10 minutes, so
    // that only follow can take away a route whose lease ran out.
    let gc = std::process::Command::new("ip")
        .args(["netns", "exec", lab.router.name(), "sysctl", "-qw"])
        .arg("net.ipv6.route.gc_interval=600")
        .status()
        .unwrap();
    assert!(gc.success());
    let peer_ns = NetNs::create("pdr-frr1-p").unwrap();
    uplink(&lab.router, &peer_ns);
    // Before FRR: a route of ours in the pool that no lease backs any more
    // (recover prunes it), and someone else's route outside the pool.
    let stale = prefix_n(50);
    let other = "2001:db8:9999::/48";
    for (p, proto) in [(stale.as_str(), "57"), (other, "58")] {
        lab.router
            .ip([
                "-6", "route", "add", p, "via", "fe80::2", "dev", "cust0", "proto", proto,
            ])
            .unwrap();
    }
    let dir = frr_dir(&lab);
    let router = Frr::start(
        &lab.router,
        &dir.join("router"),
        BIG_BUFFER,
        Some(ROUTER_BGPD),
    );
    let peer = Frr::start(&peer_ns, &dir.join("peer"), BIG_BUFFER, Some(PEER_BGPD));
    // zebra holds both as kernel routes; only the pool's reaches the peer.
    let k = router.kernel_routes();
    assert!(k.contains(&stale) && k.contains(other), "{k:?}");
    peer_holds(&peer, &set([stale.clone()]), "before recover");

    let leases: Vec<_> = (0..20).map(|n| binding(n, 0)).collect();
    let _server = lab_server(&lab, 5801, &leases);
    let cfg = config(&lab, &[5801], "");
    let (code, j) = recover(&lab, &cfg);
    assert_eq!(code, Some(0), "{j}");
    assert_eq!(
        (&j["routes"]["added"], &j["routes"]["removed"]),
        (&20.into(), &1.into()),
        "{j}"
    );
    assert_eq!(j["netlink_listener_drops"], serde_json::json!([]), "{j}");
    let delegated = set((0..20).map(prefix_n));
    let took = peer_holds(&peer, &delegated, "after recover");
    eprintln!("the peer held the 20 recovered prefixes {took:?} after recover");
    assert!(router.kernel_routes().contains(other));

    // follow: a new lease reaches the peer, its release takes it away.
    let mut f = Follow::start(&lab, &cfg, &[], "info");
    let p = prefix_n(100);
    to_client(&lab, 0, "fe80::2", 546, vec![reply(0x100, 2, &p, 600)]);
    let mut with = delegated.clone();
    with.insert(p.clone());
    peer_holds(&peer, &with, "after a new lease");
    to_relay(&lab, 0, vec![release(0x101, 2, &p)]);
    to_client(&lab, 0, "fe80::2", 546, vec![release_reply(0x101, 2)]);
    let took = peer_holds(&peer, &delegated, "after a release");
    eprintln!("the peer lost the released prefix {took:?} after the release");
    // A lease that runs out (valid 3 s): follow removes its route at the
    // end of its 8 s expiry bucket. The kernel's garbage collection, which
    // alone would take an expired route away, is 10 minutes away here.
    let q = prefix_n(101);
    to_client(&lab, 0, "fe80::2", 546, vec![reply(0x102, 2, &q, 3)]);
    let sent = Instant::now();
    let mut with = delegated.clone();
    with.insert(q.clone());
    peer_holds(&peer, &with, "after a 3 s lease");
    peer_holds(&peer, &delegated, "after the 3 s lease ran out");
    let took = sent.elapsed();
    eprintln!("the peer lost the prefix of a 3 s lease {took:?} after its REPLY");
    assert!(took < Duration::from_secs(13), "{took:?}");
    assert!(f.log_text().contains("expired"), "{}", f.log_text());
    assert!(f.stop().success(), "{}", f.log_text());
}

/// The Drops of every rtnetlink socket in the namespace, summed.
fn route_socket_drops(ns: &NetNs) -> u64 {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", ns.name(), "cat", "/proc/net/netlink"])
        .output()
        .unwrap();
    pdrestore::routes::listeners::parse_proc_netlink(&String::from_utf8_lossy(&out.stdout))
        .iter()
        .filter(|s| s.protocol == 0)
        .map(|s| s.drops)
        .sum()
}

/// `pdrestore lab-server --synthetic count` (one link, ge-0/0/0, prefixes
/// of the pool) in the router namespace, once it listens.
fn synthetic_server(lab: &Lab, port: u16, count: u32) -> Child {
    let child = Child(
        std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                lab.router.name(),
                env!("CARGO_BIN_EXE_pdrestore"),
            ])
            .args(["lab-server", "--listen", &format!("[::1]:{port}")])
            .args(["--synthetic", &count.to_string(), "--relay-id", RELAY])
            .args(["--links", "1", "--ia-na-share", "0", "--pool", POOL])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    crate::support::wait_listening(&lab.router, port);
    child
}

/// A burst of `count` routes (a synthetic lab server on `port`) recovered
/// into the router of `lab` while `zebra` listens, `during` run around
/// `recover`, `routes` more keys of `[routes]`: (the JSON summary, drops the kernel counted on the
/// namespace's route sockets, kernel routes zebra holds once it settled).
/// The summary reports exactly the kernel's drops, and zebra holds a route
/// for each notification it was not denied.
fn burst(
    lab: &Lab,
    zebra: &Frr,
    port: u16,
    count: u32,
    routes: &str,
    during: impl FnOnce(&mut dyn FnMut()),
) -> (serde_json::Value, u64, u64) {
    let _server = synthetic_server(lab, port, count);
    let cfg = config(lab, &[port], "");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replacen("[routes]\n", &format!("[routes]\n{routes}"), 1),
    )
    .unwrap();
    assert_eq!(route_socket_drops(&lab.router), 0);
    let mut out = None;
    during(&mut || {
        let (code, j) = recover(lab, &cfg);
        assert_eq!(code, Some(0), "{j}");
        out = Some(j);
    });
    let j = out.expect("recover ran");
    assert_eq!(j["routes"]["added"], count, "{j}");
    let dropped = route_socket_drops(&lab.router);
    let reported: u64 = j["netlink_listener_drops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["drops"].as_u64().unwrap())
        .sum();
    assert_eq!(reported, dropped, "{j}");
    let prom = std::fs::read_to_string(lab.dir.path().join("metrics.prom")).unwrap();
    let series = format!("\npdrestore_netlink_listener_drops {dropped}\n");
    assert!(prom.contains(&series), "{series:?} not in {prom}");
    // Let zebra read what it did get: its count still for half a second.
    let (mut held, mut still) = (0, 0);
    wait_for(Duration::from_secs(30), || {
        let now = zebra.kernel_route_count();
        still = if now == held { still + 1 } else { 0 };
        held = now;
        still >= 10
    });
    assert_eq!(
        held + dropped,
        u64::from(count),
        "zebra holds {held}, {dropped} dropped"
    );
    (j, dropped, held)
}

/// The warning of a run whose burst zebra lost part of.
fn assert_warned(j: &serde_json::Value) {
    let d = &j["netlink_listener_drops"][0];
    assert!(
        d["process"].as_str().unwrap_or("").starts_with("zebra"),
        "{d}"
    );
    let w = j["warnings"][0].as_str().unwrap_or("");
    assert!(w.contains("-s 90000000") && w.contains("zebra"), "{j}");
}

/// A zebra without `-s` and a burst of 10 000 routes: what the kernel
/// dropped to zebra's socket is what `recover` reports, with a warning that
/// names zebra and the fix; zebra then lacks routes. On a machine where
/// nothing drops, the summary must say nothing dropped.
#[test]
fn a_zebra_without_a_large_receive_buffer_loses_a_burst_and_recover_says_so() {
    if !need_frr() {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lab = lab("pdr-frr2", 1);
    let zebra = Frr::start(&lab.router, &frr_dir(&lab).join("router"), &[], None);
    let (j, dropped, held) = burst(&lab, &zebra, 5802, 10_000, "", |run| run());
    eprintln!(
        "burst of 10000 routes in {} ms: the kernel dropped {dropped} notifications to zebra (no -s); zebra holds {held} kernel routes",
        j["duration_ms"]
    );
    if dropped == 0 {
        assert!(j["warnings"].as_array().unwrap().is_empty(), "{j}");
    } else {
        assert_warned(&j);
    }
}

/// `[routes] max_routes_per_second = 2000`: the same burst to the same kind
/// of zebra (no `-s`) takes 5 s and loses nothing.
#[test]
fn a_paced_recovery_loses_nothing_to_a_zebra_without_a_large_buffer() {
    if !need_frr() {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lab = lab("pdr-frr4", 1);
    let zebra = Frr::start(&lab.router, &frr_dir(&lab).join("router"), &[], None);
    let pace = "max_routes_per_second = 2000\n";
    let (j, dropped, held) = burst(&lab, &zebra, 5805, 10_000, pace, |run| run());
    let ms = j["duration_ms"].as_u64().unwrap();
    eprintln!("10000 routes at 2000/s in {ms} ms: {dropped} dropped, zebra holds {held}");
    assert!(ms >= 4900, "not paced: {ms} ms");
    assert_eq!(dropped, 0, "{j}");
    assert!(j["warnings"].as_array().unwrap().is_empty(), "{j}");
}

/// zebra stopped (SIGSTOP) through a burst of 10 000 routes, as a zebra busy
/// elsewhere: its default receive buffer overflows for sure, and recover
/// warns; with `-s 90000000` the same burst loses nothing.
#[test]
fn a_zebra_that_cannot_keep_up_loses_routes_unless_its_buffer_is_large() {
    if !need_frr() {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for (args, port) in [(&[][..], 5803), (BIG_BUFFER, 5804)] {
        let lab = lab("pdr-frr3", 1);
        let zebra = Frr::start(&lab.router, &frr_dir(&lab).join("router"), args, None);
        let (j, dropped, held) = burst(&lab, &zebra, port, 10_000, "", |run| {
            zebra.signal_zebra(libc::SIGSTOP);
            run();
            zebra.signal_zebra(libc::SIGCONT);
        });
        eprintln!(
            "zebra {args:?} stopped through a burst of 10000: {dropped} dropped, {held} held"
        );
        if args.is_empty() {
            assert!(dropped > 0, "{j}");
            assert_warned(&j);
        } else {
            assert_eq!(dropped, 0, "{j}");
            assert!(j["warnings"].as_array().unwrap().is_empty(), "{j}");
        }
    }
}
