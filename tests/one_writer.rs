//! One writer of the routes at a time (issue 20, cases 4 and 1), from the
//! operator's side: the real binary in a "router" network namespace
//! (tests/follow_lab), lab servers on its loopback, the kernel's table read
//! with `ip -6 route`, the exit status and the one line a refused run
//! writes.
//!
//! The namespace tests need root (`ip netns`, AF_PACKET) and iproute2:
//! skipped with a `SKIPPED` line otherwise, a failure under CI
//! (tests/support); the units' test needs neither. Nothing
//! touches the host's interfaces or routes; the state directory (the
//! writer lock) is in each lab's temporary directory.

mod follow_lab;
mod prom;
mod support;
use follow_lab::*;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

const SECOND: Duration = Duration::from_secs(1);

/// Root (namespaces, AF_PACKET) and iproute2; skipped visibly otherwise.
#[track_caller]
fn root() -> bool {
    support::need_root("network namespaces and AF_PACKET sockets")
        && support::need_tool("ip", "iproute2")
}

/// `pdrestore ARGS` in the router namespace.
fn pdrestore(lab: &Lab, args: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new("ip");
    c.args([
        "netns",
        "exec",
        lab.router.name(),
        env!("CARGO_BIN_EXE_pdrestore"),
    ])
    .args(args)
    .env("RUST_LOG", "info")
    .env("NO_COLOR", "1");
    c
}

/// `pdrestore lab-server` serving `bindings` on [::1]:`port`, its REPLY
/// held back 3 s (a slow server: the run that asks it lasts).
fn slow_lab_server(lab: &Lab, port: u16, bindings: &[pdrestore::proto::Binding]) -> Child {
    lab_server_with(lab, port, bindings, &["--fault", "delay-reply=3s"])
}

/// Wait (5 s at most) until the writer lock names `pid` as `command`,
/// so that the next run surely comes second; the checks that follow say
/// what went wrong if it never does.
fn wait_holder(lab: &Lab, pid: u32, command: &str) {
    let file = lab.dir.path().join("state").join("writer.lock");
    let want = format!("pid={pid} command={command} ");
    let t0 = Instant::now();
    while !std::fs::read_to_string(&file).is_ok_and(|t| t.starts_with(&want))
        && t0.elapsed() < 5 * SECOND
    {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The refusal: exit 75 (EX_TEMPFAIL), one line on stderr naming
/// `holder` and its pid and saying what to do, nothing on stdout.
fn assert_refused(out: &Output, holder: &str, pid: u32) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(75), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.starts_with(&format!(
            "pdrestore: not run: pdrestore {holder} (pid {pid}, started "
        )),
        "{err}"
    );
    assert!(err.contains("systemctl reload pdrestore-follow"), "{err}");
    assert!(!err.contains("WARN") && !err.contains("foreign"), "{err}");
    assert!(out.stdout.is_empty(), "no summary: {:?}", out.stdout);
    err
}

/// Case 4: two `recover` at once (the timer's and a hand run). The second
/// is refused at once (exit 75) with one line naming the first's pid and
/// command, prints no summary, reports no route foreign and writes no
/// metrics file; the first completes and installs every route.
#[test]
fn a_second_recover_is_refused_while_the_first_runs() {
    if !root() {
        return;
    }
    let lab = lab("pdr-wl4", 1);
    let set: Vec<_> = (0..200).map(|n| binding(n, 0)).collect();
    let _server = slow_lab_server(&lab, 5801, &set);
    let prom = lab.dir.path().join("recover.prom");
    // Both runs write the same metrics file (a top-level key: first).
    let cfg = config(&lab, &[5801], "");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let text = format!("metrics_file = {:?}\n{text}", prom.to_str().unwrap());
    std::fs::write(&cfg, text).unwrap();
    let cfg = cfg.to_str().unwrap();
    let first = pdrestore(&lab, &["recover", "-c", cfg, "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_holder(&lab, first.id(), "recover");
    let t0 = Instant::now();
    let second = pdrestore(&lab, &["recover", "-c", cfg, "--json"])
        .output()
        .unwrap();
    let took = t0.elapsed();
    assert_refused(&second, "recover", first.id());
    assert!(took < SECOND, "refused after {took:?}, not at once");
    assert!(!prom.exists(), "the refused run wrote a metrics file");
    assert!(ours(&lab.router).is_empty(), "the second wrote routes");
    // The first goes on and completes.
    let out = first.wait_with_output().unwrap();
    let j: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no summary ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(0), "{j}");
    assert_eq!(j["outcome"], "complete");
    assert_eq!(j["routes"]["added"], 200);
    assert_eq!(
        j["routes"]["foreign_conflicts"].as_array().unwrap().len(),
        0
    );
    assert_eq!(ours(&lab.router).len(), 200);
    let m = prom::Metrics::read(&prom);
    assert_eq!(
        m.get("pdrestore_recover_outcome", &[("outcome", "complete")]),
        1.0
    );
    assert_eq!(m.get("pdrestore_routes_foreign_conflicts", &[]), 0.0);
    // The lock went with its holder: a rerun is not refused.
    let again = pdrestore(&lab, &["recover", "-c", cfg, "--json"])
        .output()
        .unwrap();
    assert_eq!(
        again.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}

/// Case 1, the writers' half: `recover` while `follow` runs is refused
/// (exit 75) naming follow and `systemctl reload pdrestore-follow`, and
/// follow's routes are left as they are; `recover --dry-run` still works
/// (it takes no lock); follow goes on routing.
#[test]
fn recover_is_refused_while_follow_runs_a_dry_run_is_not() {
    if !root() {
        return;
    }
    let lab = lab("pdr-wl1", 1);
    let _server = lab_server(&lab, 5802, &[binding(0, 0)]);
    let cfg = config(&lab, &[5802], "");
    let mut f = Follow::start(&lab, &cfg, &[], "info");
    let p = prefix_n(1);
    to_client(&lab, 0, "fe80::2", 546, vec![reply(0x100, 2, &p, 600)]);
    assert!(wait_route(&lab.router, &p, SECOND, |l| l.is_some()).is_some());
    let before: Vec<String> = ours(&lab.router);
    assert_eq!(before.len(), 2, "{before:?}");
    let lines = |ns: &pdrestore::netns::NetNs| {
        let mut v: Vec<String> = ns
            .ip(["-6", "route", "show", "proto", "57"])
            .unwrap()
            .lines()
            .map(|l| l.split(" expires").next().unwrap().to_owned())
            .collect();
        v.sort();
        v
    };
    let kernel = lines(&lab.router);
    let cfg = cfg.to_str().unwrap();
    let t0 = Instant::now();
    let out = pdrestore(&lab, &["recover", "-c", cfg]).output().unwrap();
    assert!(t0.elapsed() < SECOND, "refused after {:?}", t0.elapsed());
    let err = assert_refused(&out, "follow", f.pid() as u32);
    assert!(err.contains("to resync it now"), "{err}");
    // The dry run takes no lock: it runs, and touches nothing.
    let dry = pdrestore(&lab, &["recover", "--dry-run", "-c", cfg])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&dry.stdout);
    assert!(
        dry.status.code() != Some(75) && stdout.contains("(dry run)"),
        "{:?}: {stdout}{}",
        dry.status,
        String::from_utf8_lossy(&dry.stderr)
    );
    assert_eq!(lines(&lab.router), kernel, "follow's routes were touched");
    // follow goes on.
    let q = prefix_n(2);
    to_client(&lab, 0, "fe80::2", 546, vec![reply(0x101, 2, &q, 600)]);
    assert!(
        wait_route(&lab.router, &q, SECOND, |l| l.is_some()).is_some(),
        "log:\n{}",
        f.log_text()
    );
    let status = f.stop();
    assert!(status.success(), "{status:?}; log:\n{}", f.log_text());
}

/// The shipped units and a refused run (exit 75, `pdrestore::exit::TEMPFAIL`):
/// the oneshot and the resync count it a success (neither failed nor
/// restarted: the writer that holds the lock keeps the routes); follow
/// retries it (`Restart=on-failure`, 75 not in `RestartPreventExitStatus`),
/// so it starts once a recover run by hand is done. No root needed;
/// `.ci/run` runs `systemd-analyze verify` on the same files.
#[test]
fn the_units_neither_fail_nor_loop_on_a_refused_run() {
    let unit = |name: &str| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/").to_owned() + name;
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    };
    let values = |text: &str, key: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix(&format!("{key}=")))
            .flat_map(|v| v.split_whitespace().map(str::to_owned))
            .collect()
    };
    let tempfail = pdrestore::exit::TEMPFAIL.to_string();
    assert_eq!(tempfail, "75");
    for name in ["pdrestore.service", "pdrestore-resync.service"] {
        let text = unit(name);
        assert_eq!(values(&text, "SuccessExitStatus"), ["75"], "{name}");
    }
    let follow = unit("pdrestore-follow.service");
    assert_eq!(values(&follow, "Restart"), ["on-failure"]);
    assert!(!values(&follow, "RestartPreventExitStatus").contains(&tempfail));
    assert!(values(&follow, "SuccessExitStatus").is_empty());
}
