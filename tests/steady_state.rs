//! One route owner in steady state (issue 20, cases 1, 3, 5 and 6's
//! follow half), from the operator's side: the real binary in a "router"
//! network namespace (tests/follow_lab), lab servers on its loopback, the
//! kernel's table read with `ip -6 route`, the exit status, the JSON
//! summary and the metrics file. Cases 2, 4 and 1's writers' half are in
//! tests/one_writer.rs.
//!
//! Needs root (`ip netns`, AF_PACKET) and iproute2: skipped with a
//! `SKIPPED` line otherwise, a failure under CI (tests/support). Nothing
//! touches the host's interfaces or routes.

mod follow_lab;
mod prom;
mod support;
use follow_lab::*;
use pdrestore::netns::NetNs;
use pdrestore::proto::Binding;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One lab at a time: the timing assertions should not share two cores
/// with another follow process.
static SERIAL: Mutex<()> = Mutex::new(());

const SECOND: Duration = Duration::from_secs(1);

/// Root (namespaces, AF_PACKET) and iproute2; skipped visibly otherwise.
#[track_caller]
fn root() -> bool {
    support::need_root("network namespaces and AF_PACKET sockets")
        && support::need_tool("ip", "iproute2")
}

/// `ip -6 route add ROUTE` in `ns`, by hand (the operator, or another run).
fn add_route(ns: &NetNs, route: &str) {
    let mut args = vec!["-6", "route", "add"];
    args.extend(route.split(' '));
    ns.ip(&args).unwrap();
}

/// Every route of the router's main table on `prefix`, one line each.
fn lines_of(ns: &NetNs, prefix: &str) -> Vec<String> {
    ns.ip(["-6", "route", "show", "table", "main", prefix])
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Change the configuration file: `top` goes first (top-level keys),
/// `routes` right under `[routes]`.
fn edit_config(path: &Path, top: &str, routes: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    let text = text.replacen("[routes]\n", &format!("[routes]\n{routes}"), 1);
    std::fs::write(path, format!("{top}{text}")).unwrap();
}

/// Case 1: routes of ours that this follow did not install (a hand-run
/// recover, an earlier follow, a previous version: our protocol inside the
/// pools) are adopted. A renewal replaces such a route with the new expiry,
/// never calls it foreign; a valid lifetime of 0 removes one.
#[test]
fn routes_of_ours_it_did_not_install_are_adopted_not_foreign() {
    if !root() {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lab = lab("pdr-own1", 1);
    let _server = lab_server(&lab, 5721, &[]);
    let prom = lab.dir.path().join("follow.prom");
    let cfg = config(&lab, &[5721], "");
    let metrics_arg = format!("--metrics-file={}", prom.display());
    let mut f = Follow::start(&lab, &cfg, &[&metrics_arg], "info");
    let (p, q) = (prefix_n(1), prefix_n(2));
    for x in [&p, &q] {
        add_route(
            &lab.router,
            &format!("{x} via fe80::2 dev cust0 proto 57 metric 1024 expires 120"),
        );
    }
    // The client renews: the route is ours, its expiry moves.
    to_client(&lab, 0, "fe80::2", 546, vec![reply(0x100, 2, &p, 7200)]);
    let t = wait_route(&lab.router, &p, SECOND, |l| {
        l.and_then(expires).is_some_and(|e| e > 7000)
    });
    assert!(
        t.is_some(),
        "not refreshed: {:?}; log:\n{}",
        route_line(&lab.router, &p),
        f.log_text()
    );
    let line = route_line(&lab.router, &p).unwrap();
    assert!(line.contains("via fe80::2 dev cust0 proto 57"), "{line}");
    assert_eq!(lines_of(&lab.router, &p).len(), 1, "one route, not two");
    // Valid lifetime 0 for the other (never followed): removed.
    to_client(&lab, 0, "fe80::2", 546, vec![reply(0x101, 3, &q, 0)]);
    assert!(
        wait_route(&lab.router, &q, SECOND, |l| l.is_none()).is_some(),
        "a valid lifetime of 0 left it; log:\n{}",
        f.log_text()
    );
    // And for the adopted one, now followed.
    to_client(&lab, 0, "fe80::2", 546, vec![reply(0x102, 2, &p, 0)]);
    assert!(wait_route(&lab.router, &p, SECOND, |l| l.is_none()).is_some());
    let status = f.stop();
    assert!(status.success(), "{status:?}");
    let log = f.log_text();
    assert!(
        !log.contains("foreign-route") && !log.contains("not ours"),
        "{log}"
    );
    assert!(log.contains("adopted"), "{log}");
    let m = prom::Metrics::read(&prom);
    let change = |c: &str| m.counter("pdrestore_follow_route_changes_total", &[("change", c)]);
    assert_eq!(change("adopted"), 1.0, "{}", m.1);
    assert_eq!(change("removed"), 2.0, "{}", m.1);
    assert_eq!(
        m.counter(
            "pdrestore_follow_not_followed_total",
            &[("reason", "foreign")]
        ),
        0.0
    );
    assert_eq!(m.get("pdrestore_follow_foreign_prefixes", &[]), 0.0);
}

/// A binding of the lab server on link 0 with `valid` seconds from the
/// server's start.
fn short(n: u32, valid: u32) -> Binding {
    let mut b = binding(n, 0);
    b.valid_lifetime = valid;
    b.preferred_lifetime = valid / 2;
    b.clt_time = 0;
    b
}

/// Case 3: a lease near its end (a customer router switched off) costs no
/// resync storm: it is asked about alone, and left to expire when the
/// server has no later expiry (counted expired, not a manual delete); a
/// route whose snooped lifetime is shorter than the server's lease is
/// extended by the server's answer.
#[test]
fn a_lease_near_its_end_is_asked_about_alone_then_expires() {
    if !root() {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lab = lab("pdr-own3", 1);
    let _server = lab_server(&lab, 5723, &[short(0, 20), short(1, 3600)]);
    let prom = lab.dir.path().join("follow.prom");
    let cfg = config(&lab, &[5723], "");
    let metrics_arg = format!("--metrics-file={}", prom.display());
    let mut f = Follow::start(&lab, &cfg, &[&metrics_arg], "info");
    let (p0, p1) = (prefix_n(0), prefix_n(1));
    let e0 = route_line(&lab.router, &p0).and_then(|l| expires(&l));
    assert!(e0.is_some_and(|e| e <= 20), "{e0:?}");
    // The client of prefix 1 seen with 20 s (the server holds an hour).
    to_client(&lab, 0, "fe80::2", 546, vec![reply(0x300, 2, &p1, 20)]);
    let short_seen = wait_route(&lab.router, &p1, SECOND, |l| {
        l.and_then(expires).is_some_and(|e| e <= 20)
    });
    assert!(short_seen.is_some(), "{:?}", route_line(&lab.router, &p1));
    // Asked about (within a bucket, 8 s): extended to the server's expiry.
    let extended = wait_route(&lab.router, &p1, 12 * SECOND, |l| {
        l.and_then(expires).is_some_and(|e| e > 3000)
    });
    assert!(
        extended.is_some(),
        "not extended: {:?}; log:\n{}",
        route_line(&lab.router, &p1),
        f.log_text()
    );
    // Prefix 0 runs out: its route goes within a bucket of its end.
    let gone = wait_route(&lab.router, &p0, 35 * SECOND, |l| l.is_none());
    assert!(gone.is_some(), "log:\n{}", f.log_text());
    assert!(route_line(&lab.router, &p1).is_some());
    std::thread::sleep(SECOND);
    let status = f.stop();
    assert!(status.success(), "{status:?}");
    let log = f.log_text();
    assert!(!log.contains("manual-delete"), "{log}");
    let m = prom::Metrics::read(&prom);
    let change = |c: &str| m.counter("pdrestore_follow_route_changes_total", &[("change", c)]);
    assert_eq!(change("expired"), 1.0, "{}", m.1);
    assert_eq!(change("manual_delete"), 0.0, "{}", m.1);
    // The start-up recovery, and no resync since.
    assert_eq!(m.counter("pdrestore_follow_resyncs_total", &[]), 1.0);
    assert_eq!(
        m.counter("pdrestore_follow_targeted_queries_total", &[]),
        2.0,
        "{}",
        m.1
    );
    assert_eq!(
        m.counter("pdrestore_follow_targeted_extended_total", &[]),
        1.0
    );
}

/// `pdrestore recover -c CFG --json` in the router namespace: exit code
/// and summary.
fn recover(lab: &Lab, cfg: &Path) -> (i32, serde_json::Value) {
    let out = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            lab.router.name(),
            env!("CARGO_BIN_EXE_pdrestore"),
            "recover",
            "--json",
            "-c",
        ])
        .arg(cfg)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let j = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no summary ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap_or(-1), j)
}

/// Case 5: the metric changed (1024 to 512): every route of ours moves
/// make-before-break (one route per prefix after, counted as moved), the
/// run and the next exit 0 with nothing to prune, and an operator's
/// blackhole and static routes on delegated prefixes, at 1024 and 2048, are
/// reported as foreign with their metric and never shadowed.
#[test]
fn a_metric_change_moves_our_routes_and_shadows_no_foreign_route() {
    if !root() {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lab = lab("pdr-own5", 1);
    let set: Vec<Binding> = (0..5).map(|n| binding(n, 0)).collect();
    let _server = lab_server(&lab, 5725, &set);
    let (p3, p4) = (prefix_n(3), prefix_n(4));
    add_route(
        &lab.router,
        &format!("blackhole {p3} proto static metric 1024"),
    );
    add_route(
        &lab.router,
        &format!("{p4} via fe80::99 dev cust0 proto static metric 2048"),
    );
    let cfg = config(&lab, &[5725], "");
    let (code, j) = recover(&lab, &cfg);
    assert_eq!(code, 0, "{j}");
    assert_eq!(j["routes"]["added"], 3, "{j}");
    assert_eq!(ours(&lab.router).len(), 3);
    // The metric changes.
    edit_config(&cfg, "", "metric = 512\n");
    let (code, j) = recover(&lab, &cfg);
    assert_eq!((code, j["outcome"].as_str()), (0, Some("complete")), "{j}");
    let moved = j["routes"]["moved_routes"].as_array().unwrap();
    assert_eq!(moved.len(), 3, "{j}");
    for m in moved {
        assert_eq!(
            (m["old_metric"].as_u64(), m["metric"].as_u64()),
            (Some(1024), Some(512)),
            "{m}"
        );
    }
    assert_eq!(j["routes"]["removed"], 0, "a move is not a prune: {j}");
    assert_eq!(j["routes"]["prune"]["state"], "done", "{j}");
    for n in 0..3 {
        let p = prefix_n(n);
        let l = lines_of(&lab.router, &p);
        assert_eq!(l.len(), 1, "{p}: {l:?}");
        assert!(l[0].contains("proto 57 metric 512"), "{l:?}");
    }
    // The operator's routes: untouched, alone, reported with their metric.
    for (p, metric) in [(&p3, 1024), (&p4, 2048)] {
        let l = lines_of(&lab.router, p);
        assert_eq!(l.len(), 1, "{p} shadowed: {l:?}");
        assert!(
            l[0].contains("proto static") && l[0].contains(&format!("metric {metric}")),
            "{l:?}"
        );
    }
    let foreign = j["routes"]["foreign_conflicts"].as_array().unwrap();
    let mut got: Vec<(String, u64)> = foreign
        .iter()
        .map(|c| {
            (
                c["prefix"].as_str().unwrap().to_owned(),
                c["metric"].as_u64().unwrap(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(got, vec![(p3.clone(), 1024), (p4.clone(), 2048)], "{j}");
    // The next run: nothing to move, nothing refused.
    let (code, j) = recover(&lab, &cfg);
    assert_eq!(code, 0, "{j}");
    assert_eq!(j["routes"]["unchanged"], 3, "{j}");
    assert_eq!(j["routes"]["moved_routes"].as_array().unwrap().len(), 0);
    assert_eq!(j["routes"]["prune"]["state"], "done", "{j}");
}

/// Case 6, follow's half: a server that accepts the start-up query and
/// never answers holds up READY, not routing: a snooped REPLY is routed
/// within a second, before READY; the recovery that comes to nothing then
/// takes nothing away.
#[test]
fn snooping_routes_while_the_startup_recovery_waits_for_a_silent_server() {
    if !root() {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lab = lab("pdr-own6", 1);
    let _server = lab_server_with(&lab, 5726, &[binding(0, 0)], &["--fault", "stall-after=0"]);
    let cfg = config(&lab, &[5726], "");
    edit_config(&cfg, "data_timeout = \"6s\"\n", "");
    let mut f = Follow::spawn(&lab, &cfg, &[], "info");
    let p = prefix_n(9);
    let t0 = Instant::now();
    let mut routed = None;
    for xid in 0x600..0x640 {
        // The capture sockets open while the recovery starts: sent until seen.
        to_client(&lab, 0, "fe80::2", 546, vec![reply(xid, 2, &p, 3600)]);
        if wait_route(&lab.router, &p, Duration::from_millis(100), |l| l.is_some()).is_some() {
            routed = Some(t0.elapsed());
            break;
        }
    }
    let routed = routed.unwrap_or_else(|| panic!("not routed; log:\n{}", f.log_text()));
    assert!(routed < 2 * SECOND, "routed after {routed:?}");
    let ready_early = f.wait_notify(|m| m.contains("READY=1"), Duration::from_millis(10));
    assert!(!ready_early, "READY before the recovery ended");
    assert!(
        f.wait_notify(|m| m.contains("READY=1"), 20 * SECOND),
        "never ready; log:\n{}",
        f.log_text()
    );
    assert!(
        route_line(&lab.router, &p).is_some(),
        "the empty recovery took it"
    );
    assert_eq!(
        ours(&lab.router),
        vec![format!("{p} via fe80::2 dev cust0")]
    );
    let status = f.stop();
    assert!(status.success(), "{status:?}");
}
