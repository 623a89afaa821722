//! End-to-end recovery benchmark (issue 7): two lab servers each holding the
//! same N delegated-prefix bindings for our relay (with differing CLT_TIMEs),
//! `pdrestore recover` into a private namespace, then in the same run the same
//! routes installed by (a) pdrestore's netlink batch path alone and (b)
//! `ip -6 -batch`.
//!
//! Run: `cargo bench --bench recovery -- [N ...]` (default 100000 1000000). Needs root.
//! `PDR_QUERY=link-address` recovers by QUERY_BY_LINK_ADDRESS instead, over 16 client
//! links (one query per link and server, four connections per server at once).
//! Each size runs `PDR_ROUNDS` rounds (default 3); every round and the medians are printed.
//! `PDR_PROFILE=/tmp/perf.data` records a perf profile of the `pdrestore recover` process,
//! `PDR_PROFILE_RERUN=FILE` one of the second run. `PDR_RUST_LOG` sets pdrestore's log filter
//! (default `warn`; its log goes to stderr).

#[path = "support/mod.rs"]
mod support;

use pdrestore::demo::{link_commands, link_ifname};
use pdrestore::netns::NetNs;
use pdrestore::proto::LeaseKind;
use pdrestore::routes::{Change, NetlinkTable, Route, RouteTable};
use pdrestore::server::synth::{Synth, SynthConfig};
use pdrestore::server::{self, BindingStore, LeaseRecord, ServerConfig};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Recovery by QUERY_BY_LINK_ADDRESS (`PDR_QUERY=link-address`) rather than by Relay-ID.
fn by_link() -> bool {
    std::env::var("PDR_QUERY").is_ok_and(|q| q == "link-address")
}

/// Client links: 16 for the link-address run, 4 otherwise.
fn links() -> u32 {
    if by_link() {
        16
    } else {
        4
    }
}
const RELAY: &str = "00:03:00:01:02:00:5e:00:00:02";

fn records(n: u64, now: u64) -> Vec<LeaseRecord> {
    Synth::new(SynthConfig {
        count: n,
        seed: 99,
        relay_id: RELAY.parse().unwrap(),
        links: links(),
        pool: "2001:db8:8000::/33".parse().unwrap(),
        delegated_len: 56,
        ia_na_share: 0.0,
        now,
        ..SynthConfig::default()
    })
    .unwrap()
    .collect()
}

fn lab() -> NetNs {
    let ns = NetNs::create("pdr-bench-rec").unwrap();
    for c in link_commands(links()) {
        ns.ip(&c).unwrap();
    }
    ns
}

/// The routes the recovery should end with: prefix via the client's link-local, out of its link.
fn expected_routes(recs: &[LeaseRecord], ifindex: &dyn Fn(&str) -> u32) -> Vec<Route> {
    recs.iter()
        .filter_map(|r| {
            let LeaseKind::Prefix(p) = r.lease else {
                return None;
            };
            let l = r.relay.last()?;
            let j: u32 = std::str::from_utf8(l.interface_id.as_ref()?)
                .ok()?
                .strip_prefix("ge-0/0/")?
                .parse()
                .ok()?;
            let name = link_ifname(j);
            Some(Route {
                prefix: p,
                gateway: l.peer_address,
                ifindex: ifindex(&name),
                interface: name.into(),
                table: 254,
                protocol: pdrestore::config::DEFAULT_PROTOCOL,
                metric: 1024,
                expires: Some(86000),
            })
        })
        .collect()
}

struct Usage {
    wall: Duration,
    max_rss_kib: i64,
    cpu: Duration,
}

// The child is reaped with wait4 (for its rusage), not Child::wait.
#[allow(clippy::zombie_processes)]
fn run_measured(cmd: &mut std::process::Command) -> (Usage, String) {
    let start = Instant::now();
    let child = cmd.stdout(std::process::Stdio::piped()).spawn().unwrap();
    let pid = child.id() as libc::pid_t;
    // Peak RSS of pdrestore itself: VmHWM of its own address space, sampled
    // every 5 ms once `ip netns exec` has exec'd it. (ru_maxrss would count
    // this benchmark's memory: the child starts as a vfork of it.)
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut peak_kib = 0i64;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                if comm.trim() == "pdrestore" {
                    let status =
                        std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                    if let Some(v) = status
                        .lines()
                        .find_map(|l| l.strip_prefix("VmHWM:"))
                        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
                    {
                        peak_kib = peak_kib.max(v);
                    }
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            peak_kib
        })
    };
    let mut stdout = child.stdout.unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut out).unwrap();
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for our own child.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our child; pointers are to live locals.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    assert_eq!(r, pid);
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let max_rss_kib = sampler.join().unwrap();
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (
        Usage {
            wall: start.elapsed(),
            max_rss_kib,
            cpu: tv(ru.ru_utime) + tv(ru.ru_stime),
        },
        out,
    )
}

/// One round's figures.
struct Round {
    installed: u64,
    operations: u64,
    counted: usize,
    duration: Duration,
    usage: Usage,
    first_binding: u64,
    first_route: u64,
    last_done: u64,
    netlink: Duration,
    ipbatch: Duration,
    rerun: Rerun,
}

/// The second recovery, over routes already in place.
struct Rerun {
    duration: Duration,
    unchanged: u64,
    operations: u64,
    usage: Usage,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn bench(n: u64, rounds: usize) {
    let now = server::store::unix_now();
    let a = records(n, now);
    // Server B: same bindings; every other one last heard from later than on A.
    let b: Vec<LeaseRecord> = a
        .iter()
        .enumerate()
        .map(|(k, r)| {
            let mut r = r.clone();
            if k % 2 == 0 {
                r.cltt = r.cltt.saturating_sub(600);
            } else {
                r.cltt = (r.cltt + 60).min(now);
            }
            r
        })
        .collect();
    println!(
        "--- {n} bindings per server, 2 servers, {} links, by {}, {rounds} round(s) ---",
        links(),
        if by_link() {
            "link-address"
        } else {
            "relay-id"
        }
    );
    let mut all = Vec::new();
    for k in 1..=rounds {
        let r = round(&a, &b);
        print_round(k, n, &r);
        all.push(r);
    }
    let rate = |d: f64| n as f64 / d;
    let rec = median(all.iter().map(|r| r.duration.as_secs_f64()).collect());
    let nl = median(all.iter().map(|r| r.netlink.as_secs_f64()).collect());
    let ip = median(all.iter().map(|r| r.ipbatch.as_secs_f64()).collect());
    let rss = median(all.iter().map(|r| r.usage.max_rss_kib as f64).collect());
    println!("medians over {rounds} round(s):");
    println!(
        "  recover {rec:.3}s ({:.0} routes/s), netlink batch alone {nl:.3}s ({:.0}/s), ip -6 -batch {ip:.3}s ({:.0}/s), peak RSS {:.1} MiB ({:.0} B per binding received)",
        rate(rec),
        rate(nl),
        rate(ip),
        rss / 1024.0,
        rss * 1024.0 / (2 * n) as f64
    );
    println!(
        "  ratios: recover / netlink = {:.2} (target <= 1.25); ip -batch / recover = {:.2} (target >= 3)",
        rec / nl,
        ip / rec
    );
    let worst = all
        .iter()
        .map(|r| r.duration.as_secs_f64() / r.netlink.as_secs_f64())
        .fold(0f64, f64::max);
    println!("  worst round: recover / netlink = {worst:.2}");
}

fn round(a: &[LeaseRecord], b: &[LeaseRecord]) -> Round {
    let ns = lab();
    // Servers inside the namespace, on their own thread, until told to stop.
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let ns_path = format!("/var/run/netns/{}", ns.name());
    let (sa, sb) = (
        Arc::new(BindingStore::from_records(a, &[]).unwrap()),
        Arc::new(BindingStore::from_records(b, &[]).unwrap()),
    );
    let servers = std::thread::spawn(move || {
        let f = std::fs::File::open(&ns_path).unwrap();
        // SAFETY: valid namespace fd; affects only this thread.
        assert_eq!(
            unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&f), libc::CLONE_NEWNET) },
            0
        );
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut hs = Vec::new();
            for (port, store) in [(547, sa), (548, sb)] {
                let l = tokio::net::TcpListener::bind(("::1", port)).await.unwrap();
                hs.push(server::spawn(l, store, ServerConfig::default()).unwrap());
            }
            ready_tx.send(()).unwrap();
            tokio::task::spawn_blocking(move || stop_rx.recv())
                .await
                .unwrap()
                .ok();
            for h in hs {
                let _ = h.shutdown().await;
            }
        });
    });
    ready_rx.recv().unwrap();
    let dir = std::env::temp_dir().join(format!("pdr-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("pdrestore.toml");
    let mut t = format!("relay_duid = \"{RELAY}\"\nstate_directory = {:?}\n", dir);
    if by_link() {
        t.push_str("query = \"link-address\"\n");
    }
    // PDR_CONFIG_EXTRA: more top-level settings (e.g. "max_connections = 1").
    if let Ok(extra) = std::env::var("PDR_CONFIG_EXTRA") {
        t.push_str(&extra);
        t.push('\n');
    }
    t.push_str(
        "[[server]]\naddress = \"::1\"\nport = 547\n[[server]]\naddress = \"::1\"\nport = 548\n",
    );
    t.push_str("[routes]\nallowed_prefixes = [\"2001:db8:8000::/33\"]\n[routes.interfaces]\n");
    for j in 0..links() {
        writeln!(t, "\"ge-0/0/{j}\" = \"{}\"", link_ifname(j)).unwrap();
    }
    std::fs::write(&cfg, t).unwrap();
    // PDR_PROFILE=FILE records a perf profile of pdrestore into FILE.
    let mut cmd = std::process::Command::new("ip");
    cmd.args(["netns", "exec", ns.name()]);
    if let Ok(file) = std::env::var("PDR_PROFILE") {
        cmd.args(["perf", "record", "-g", "-q", "-o", &file, "--"]);
    }
    // PDR_RUST_LOG: pdrestore's log filter (default `warn`), on stderr.
    let log = std::env::var("PDR_RUST_LOG").unwrap_or_else(|_| "warn".into());
    cmd.args([env!("CARGO_BIN_EXE_pdrestore"), "recover", "--json", "-c"])
        .arg(&cfg)
        .env("RUST_LOG", &log);
    let (usage, out) = run_measured(&mut cmd);
    // A second run over the routes the first put in: what an operator's
    // on-demand run costs when nothing changed.
    let mut again = std::process::Command::new("ip");
    again.args(["netns", "exec", ns.name()]);
    if let Ok(file) = std::env::var("PDR_PROFILE_RERUN") {
        again.args(["perf", "record", "-g", "-q", "-o", &file, "--"]);
    }
    again
        .args([env!("CARGO_BIN_EXE_pdrestore"), "recover", "--json", "-c"])
        .arg(&cfg)
        .env("RUST_LOG", &log);
    let (rerun_usage, rerun_out) = run_measured(&mut again);
    stop_tx.send(()).unwrap();
    servers.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let j2: serde_json::Value = serde_json::from_str(rerun_out.trim()).expect("recover --json");
    let rerun = Rerun {
        duration: Duration::from_millis(j2["duration_ms"].as_u64().unwrap()),
        unchanged: j2["routes"]["unchanged"].as_u64().unwrap(),
        operations: j2["routes"]["operations"].as_u64().unwrap(),
        usage: rerun_usage,
    };
    let j: serde_json::Value = serde_json::from_str(out.trim()).expect("recover --json");
    let installed = j["routes"]["added"].as_u64().unwrap();
    let operations = j["routes"]["operations"].as_u64().unwrap();
    let duration = Duration::from_millis(j["duration_ms"].as_u64().unwrap());
    let first_binding = j["first_binding_ms"].as_u64().unwrap_or(0);
    let first_route = j["first_route_ms"].as_u64().unwrap_or(0);
    // When the last server's stream ended (its LEASEQUERY-DONE), on the same clock.
    let last_done = j["servers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["duration_ms"].as_u64())
        .max()
        .unwrap_or(0);
    let counted = ns
        .ip([
            "-6",
            "route",
            "show",
            "proto",
            &pdrestore::config::DEFAULT_PROTOCOL.to_string(),
        ])
        .unwrap()
        .lines()
        .count();
    drop(ns);

    // Baseline (a): the same routes through the netlink batch path alone.
    let ns = lab();
    let recs = a.to_vec();
    let netlink = ns
        .run(move || async move {
            let mut t = NetlinkTable::open().unwrap();
            let ifs = t.interfaces().await.unwrap();
            let idx = |name: &str| ifs.iter().find(|i| &*i.name == name).unwrap().index;
            let changes: Vec<Change> = expected_routes(&recs, &idx)
                .into_iter()
                .map(Change::Add)
                .collect();
            let start = Instant::now();
            // Handed over whole (no copy), applied by the table's netlink thread.
            let mut errors = t.submit(changes).await.unwrap();
            errors.extend(t.sync().await.unwrap());
            assert!(errors.is_empty());
            start.elapsed()
        })
        .unwrap();
    drop(ns);

    // Baseline (b): ip -6 -batch of the same routes.
    let ns = lab();
    let mut cmds = String::new();
    for r in expected_routes(a, &|_| 0) {
        writeln!(
            cmds,
            "route replace {} via {} dev {} proto {} metric 1024 expires 86000",
            r.prefix,
            r.gateway,
            r.interface,
            pdrestore::config::DEFAULT_PROTOCOL
        )
        .unwrap();
    }
    let start = Instant::now();
    ns.ip_batch(&cmds).unwrap();
    let ipbatch = start.elapsed();
    drop(ns);

    Round {
        installed,
        operations,
        counted,
        duration,
        usage,
        first_binding,
        first_route,
        last_done,
        netlink,
        ipbatch,
        rerun,
    }
}

fn print_round(k: usize, n: u64, r: &Round) {
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    println!("round {k}:");
    println!("  recover: {} routes added ({} in the kernel, {} route operations), total {:.3}s (process wall {:.3}s), {:.0} routes/s", r.installed, r.counted, r.operations, r.duration.as_secs_f64(), r.usage.wall.as_secs_f64(), rate(r.duration));
    println!(
        "    first binding after {} ms, first route after {} ms ({} ms later)",
        r.first_binding,
        r.first_route,
        r.first_route.saturating_sub(r.first_binding)
    );
    println!(
        "    last LEASEQUERY-DONE after {} ms; every route in place {} ms later",
        r.last_done,
        (r.duration.as_millis() as u64).saturating_sub(r.last_done)
    );
    println!(
        "    pdrestore peak RSS {:.1} MiB ({:.0} bytes per binding received), CPU {:.3}s",
        r.usage.max_rss_kib as f64 / 1024.0,
        r.usage.max_rss_kib as f64 * 1024.0 / (2 * n) as f64,
        r.usage.cpu.as_secs_f64()
    );
    println!(
        "  rerun over the installed routes: {:.3}s, {} unchanged, {} changes, peak RSS {:.1} MiB, CPU {:.3}s",
        r.rerun.duration.as_secs_f64(),
        r.rerun.unchanged,
        r.rerun.operations,
        r.rerun.usage.max_rss_kib as f64 / 1024.0,
        r.rerun.usage.cpu.as_secs_f64()
    );
    println!(
        "  baseline (a) netlink batch alone: {:.3}s, {:.0} routes/s",
        r.netlink.as_secs_f64(),
        rate(r.netlink)
    );
    println!(
        "  baseline (b) ip -6 -batch:        {:.3}s, {:.0} routes/s",
        r.ipbatch.as_secs_f64(),
        rate(r.ipbatch)
    );
    println!(
        "  ratios: recover / netlink = {:.2}; ip -batch / recover = {:.2}",
        r.duration.as_secs_f64() / r.netlink.as_secs_f64(),
        r.ipbatch.as_secs_f64() / r.duration.as_secs_f64()
    );
}

fn main() {
    let Some(sizes) = support::sizes::<u64>("recovery", &[100_000, 1_000_000]) else {
        return;
    };
    // PDR_ROUNDS: rounds per size (default 3); the kernel's own speed varies
    // from run to run, so medians are printed as well as every round.
    let rounds = std::env::var("PDR_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3usize)
        .max(1);
    for n in sizes {
        bench(n, rounds);
    }
}
