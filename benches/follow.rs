//! `pdrestore follow` under a renewal storm (run as root: `sudo cargo bench
//! --bench follow`; skipped otherwise).
//!
//! The lab of tests/follow.rs (a router namespace, one veth pair to a
//! client namespace, a lab server on the router's loopback) with the real
//! binary following the router's veth. Two phases, 100k REPLYs each, every
//! one for a distinct delegated prefix, sent with a real UDP socket from
//! the router's side of the veth (so they leave the router, as a relay's
//! REPLYs do):
//!
//! 1. **Storm**: 100k REPLYs with new IA_PDs, sent as fast as the kernel
//!    takes them (after an outage, every client at once). Reported: REPLYs
//!    handled per second, routes added per second (from the first frame
//!    to the last route event), what the capture could not keep (the
//!    kernel drops what does not fit in the socket buffer), the follow
//!    process's CPU time, its peak RSS (VmHWM) and the peak less the RSS
//!    it had when ready, per followed prefix.
//! 2. **Renewals at a steady 20k/s**: the same 100k prefixes renewed (each
//!    REPLY refreshes a kernel expiry): the delay from each frame's send to
//!    its route event (RTM_NEWROUTE, read by this process on its own
//!    rtnetlink socket), median and p99.
//!
//! Every REPLY is for the same client DUID, unless `--distinct-clients`
//! gives each prefix a client of its own (a DUID-LLT, 14 octets, as most
//! CPEs send): what the live view's store of client DUIDs costs. At the
//! end, one `pdrestore status`-like request of the live view lists every
//! followed prefix: how long it takes, and the process's peak RSS after it.

#[path = "../tests/follow_lab/mod.rs"]
mod follow_lab;
#[path = "../tests/support/mod.rs"]
mod support;

use follow_lab::*;
use pdrestore::follow::live::{ask, LiveRequest, SOCKET_NAME};
use pdrestore::follow::watch::{parse_events, KernelEvent};
use pdrestore::proto::{DhcpOption, Duid, MessageType};
use std::collections::HashMap;
use std::net::{Ipv6Addr, SocketAddrV6, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const N: u32 = 100_000;
const RATE: f64 = 20_000.0;

/// Delegated prefix `n`: a /56 of 2001:db8:8000::/33.
fn prefix(n: u32) -> ipnet::Ipv6Net {
    let base = u128::from("2001:db8:8000::".parse::<Ipv6Addr>().unwrap());
    ipnet::Ipv6Net::new(Ipv6Addr::from(base + (u128::from(n) << 72)), 56).unwrap()
}

/// The REPLY delegating prefix `n` to its own client (a DUID-LLT).
fn reply_own_client(xid: u32, n: u32, valid: u32) -> Vec<u8> {
    let [a, b, c, d] = n.to_be_bytes();
    let client = Duid::new_llt(1, 0x2a2b_2c2d, &[2, 0, a, b, c, d]);
    message(
        MessageType::Reply,
        xid,
        vec![
            DhcpOption::ClientId(client),
            DhcpOption::ServerId(server_duid()),
            ia_pd(1, &prefix(n).to_string(), valid.min(1800), valid),
        ],
    )
}

/// Route events of our protocol, with their arrival time, by prefix.
struct Monitor {
    seen: Arc<Mutex<HashMap<ipnet::Ipv6Net, Instant>>>,
    stop: Arc<AtomicBool>,
}

fn monitor(lab: &Lab) -> Monitor {
    let seen: Arc<Mutex<HashMap<ipnet::Ipv6Net, Instant>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let (s2, st2) = (seen.clone(), stop.clone());
    let (tx, rx) = std::sync::mpsc::channel();
    let name = lab.router.name().to_string();
    std::thread::spawn(move || {
        use std::os::fd::AsRawFd;
        let nsf = std::fs::File::open(format!("/var/run/netns/{name}")).unwrap();
        // SAFETY: setns with a valid namespace fd; only this thread moves.
        assert_eq!(
            unsafe { libc::setns(nsf.as_raw_fd(), libc::CLONE_NEWNET) },
            0
        );
        let mut s = netlink_sys::Socket::new(netlink_sys::protocols::NETLINK_ROUTE).unwrap();
        s.bind_auto().unwrap();
        s.add_membership(11).unwrap();
        let v: libc::c_int = 64 << 20;
        // SAFETY: setsockopt with a live c_int.
        unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                &v as *const _ as *const libc::c_void,
                4,
            );
        }
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 100_000,
        };
        // SAFETY: setsockopt with a live timeval.
        unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &tv as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::timeval>() as u32,
            );
        }
        tx.send(()).unwrap();
        let mut buf = vec![0u8; 1 << 20];
        let names = Default::default();
        let mut lost = 0u64;
        while !st2.load(Ordering::Relaxed) {
            let n = match s.recv(&mut &mut buf[..], 0) {
                Ok(n) => n,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    lost += 1;
                    continue;
                }
                Err(_) => continue,
            };
            let now = Instant::now();
            let mut m = s2.lock().unwrap();
            for e in parse_events(&buf[..n.min(buf.len())], 254, 0, &names).events {
                if let KernelEvent::Route { new: true, route } = e {
                    if route.protocol == 57 {
                        m.insert(route.prefix, now);
                    }
                }
            }
        }
        if lost > 0 {
            eprintln!("monitor: {lost} overflows (events lost)");
        }
    });
    rx.recv().unwrap();
    Monitor { seen, stop }
}

/// Send `frames` from the router's veth; `rate` paces them (None: as fast
/// as the kernel takes them). Returns the send time of each.
fn send(lab: &Lab, frames: Vec<Vec<u8>>, rate: Option<f64>) -> Vec<Instant> {
    let scope = ifindex(&lab.router, "cust0");
    lab.router
        .run(move || async move {
            let s = UdpSocket::bind(SocketAddrV6::new("fe80::1".parse().unwrap(), 547, 0, scope))
                .unwrap();
            let to = SocketAddrV6::new("fe80::2".parse().unwrap(), 546, 0, scope);
            let start = Instant::now();
            let mut at = Vec::with_capacity(frames.len());
            for (i, f) in frames.iter().enumerate() {
                if let Some(r) = rate {
                    let due = start + Duration::from_secs_f64(i as f64 / r);
                    while Instant::now() < due {
                        std::hint::spin_loop();
                    }
                }
                at.push(Instant::now());
                while s.send_to(f, to).is_err() {
                    std::thread::yield_now();
                }
            }
            at
        })
        .unwrap()
}

fn proc_cpu(pid: i32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = s.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|x| x.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|x| x.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn proc_kb(pid: i32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Wait until `n` routes were seen, or none came for a second, or `wait` passed.
fn wait_for(m: &Monitor, n: usize, wait: Duration) {
    let until = Instant::now() + wait;
    let (mut last, mut at) = (0, Instant::now());
    while Instant::now() < until {
        let now = m.seen.lock().unwrap().len();
        if now >= n || (now == last && at.elapsed() > Duration::from_secs(1)) {
            return;
        }
        if now != last {
            (last, at) = (now, Instant::now());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn percentile(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    if !pdrestore::netns::can_create() {
        eprintln!("skipped: the follow benchmark needs root (network namespaces, AF_PACKET)");
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let distinct = std::env::args().any(|a| a == "--distinct-clients");
    let frame = |xid: u32, n: u32, valid: u32| {
        if distinct {
            reply_own_client(xid, n, valid)
        } else {
            reply(xid, 2, &prefix(n).to_string(), valid)
        }
    };
    let lab = lab("pdr-fbench", 1);
    let _server = lab_server(&lab, 5790, &[]);
    let cfg = config(
        &lab,
        &[5790],
        "[follow]\npackets_per_second = 1000000\npacket_burst = 100000\nmax_prefixes = 200000\ncapture_buffer = 268435456\n",
    );
    // The pool of this benchmark is wider than the lab's.
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace(POOL, "2001:db8:8000::/33");
    std::fs::write(&cfg, text).unwrap();
    let log = std::env::var("FOLLOW_LOG").unwrap_or_else(|_| "info".into());
    let mut f = Follow::start(&lab, &cfg, &[], &log);
    let pid = f.pid();
    let rss_ready = proc_kb(pid, "VmRSS:");
    let mon = monitor(&lab);
    let frames: Vec<Vec<u8>> = (0..N).map(|n| frame(n, n, 3600)).collect();

    // Phase 1: the storm.
    let cpu0 = proc_cpu(pid);
    let t0 = Instant::now();
    let sent = send(&lab, frames, None);
    let send_secs = t0.elapsed().as_secs_f64();
    wait_for(&mon, N as usize, Duration::from_secs(60));
    // Let the last events settle, then read what it handled.
    std::thread::sleep(Duration::from_millis(300));
    let routed = mon.seen.lock().unwrap().len();
    let last_route = mon
        .seen
        .lock()
        .unwrap()
        .values()
        .max()
        .copied()
        .unwrap_or(t0);
    let first_route = mon
        .seen
        .lock()
        .unwrap()
        .values()
        .min()
        .copied()
        .unwrap_or(t0);
    let cpu1 = proc_cpu(pid);
    let storm_secs = (last_route - sent[0]).as_secs_f64();
    let hwm = proc_kb(pid, "VmHWM:");
    // The STATUS sent after the storm (every 5 s).
    let since = f.statuses.len();
    f.wait_notify(|m| m.contains("STATUS="), Duration::from_secs(6));
    f.wait_notify(|m| m.contains("STATUS="), Duration::from_secs(6));
    let status = f
        .statuses
        .get(since..)
        .and_then(|s| s.last())
        .cloned()
        .unwrap_or_default();
    let handled: u64 = status
        .split(';')
        .next()
        .and_then(|s| s.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(routed as u64);
    let replies: u64 = status
        .split(" REPLYs")
        .next()
        .and_then(|s| s.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0);

    println!(
        "follow storm: {N} REPLYs sent in {send_secs:.3}s ({:.0}/s offered), {}",
        N as f64 / send_secs,
        if distinct {
            "a client DUID per prefix"
        } else {
            "one client DUID"
        }
    );
    println!("  REPLYs the follow process handled: {replies}");
    println!(
        "  routes installed: {routed} ({} not captured: dropped by the kernel at the capture socket)",
        N as usize - routed
    );
    println!(
        "  handled: {:.0} REPLYs/s, {:.0} routes/s (first frame to last route {storm_secs:.3}s; first route after {:.1} ms)",
        routed as f64 / storm_secs,
        routed as f64 / (last_route - first_route).as_secs_f64().max(1e-9),
        (first_route - sent[0]).as_secs_f64() * 1e3
    );
    println!(
        "  CPU of the follow process: {:.2}s ({:.1} us per REPLY)",
        cpu1 - cpu0,
        (cpu1 - cpu0) / routed.max(1) as f64 * 1e6
    );
    println!(
        "  peak RSS {} KiB (ready: {} KiB): {:.0} B per followed prefix overall, {:.0} B above the ready state",
        hwm,
        rss_ready,
        hwm as f64 * 1024.0 / handled.max(1) as f64,
        (hwm.saturating_sub(rss_ready)) as f64 * 1024.0 / handled.max(1) as f64
    );
    println!("  status: {status}");

    // Phase 2: renewals at a steady rate, frame-to-route delay.
    mon.seen.lock().unwrap().clear();
    let frames: Vec<Vec<u8>> = (0..N).map(|n| frame(N + n, n, 7200)).collect();
    let cpu2 = proc_cpu(pid);
    let sent = send(&lab, frames, Some(RATE));
    wait_for(&mon, N as usize, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(300));
    let cpu3 = proc_cpu(pid);
    let seen = mon.seen.lock().unwrap().clone();
    let mut delays: Vec<f64> = (0..N)
        .filter_map(|n| {
            let at = seen.get(&prefix(n))?;
            Some((*at - sent[n as usize]).as_secs_f64() * 1e3)
        })
        .collect();
    delays.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "follow renewals at {RATE:.0}/s: {} of {N} refreshed; frame to route: median {:.2} ms, p99 {:.2} ms, max {:.2} ms; CPU {:.2}s ({:.0}% of one core)",
        delays.len(),
        percentile(&delays, 0.5),
        percentile(&delays, 0.99),
        delays.last().copied().unwrap_or(f64::NAN),
        cpu3 - cpu2,
        (cpu3 - cpu2) / (N as f64 / RATE) * 100.0
    );
    println!("  peak RSS {} KiB", proc_kb(pid, "VmHWM:"));

    // The live view: every followed prefix, as `pdrestore status` asks.
    let sock = lab.dir.path().join("state").join(SOCKET_NAME);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let t = Instant::now();
    match rt.block_on(ask(&sock, &LiveRequest::default(), Duration::from_secs(30))) {
        Ok((_, routes)) => println!(
            "live view: {} routes ({} with their client DUID) in {:.0} ms; peak RSS after it {} KiB",
            routes.len(),
            routes.iter().filter(|r| r.client.is_some()).count(),
            t.elapsed().as_secs_f64() * 1e3,
            proc_kb(pid, "VmHWM:")
        ),
        Err(e) => println!("live view: {e}"),
    }
    mon.stop.store(true, Ordering::Relaxed);
    let st = f.stop();
    assert!(st.success(), "{st:?}");
}
