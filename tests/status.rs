//! Issue 22, `pdrestore status`: the real binary in a private network
//! namespace ("router", with client links cust0 and cust1), a real
//! `pdrestore lab-server` on its loopback.
//!
//! - after `recover`: every route of ours with its lease (client DUID,
//!   server, learned by `recover`, lease end), the counts per interface,
//!   server and way learned, the last run's outcome, in text and JSON; the
//!   filters by prefix, client and interface; a route another protocol
//!   holds is not listed; a route deleted by hand is `missing` (exit 1);
//! - with `follow` running: its live state (ready, interfaces), the
//!   start-up recovery's routes learned by `start-up`, a snooped lease
//!   learned by `snooped` with its client's DUID, and a route dropped with
//!   its link `missing` as `link-down`.
//!
//! Needs root (`ip netns`, AF_PACKET): skipped with a `SKIPPED` line
//! otherwise, a failure under CI (tests/support).

mod follow_lab;
mod support;
use follow_lab::*;
use serde_json::Value;
use std::time::Duration;

#[track_caller]
fn root() -> bool {
    support::need_root("network namespaces and AF_PACKET sockets")
        && support::need_tool("ip", "iproute2")
}

/// `pdrestore status` in the router namespace: exit status, stdout, stderr.
fn status(lab: &Lab, cfg: &std::path::Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", lab.router.name()])
        .arg(env!("CARGO_BIN_EXE_pdrestore"))
        .arg("status")
        .arg("-c")
        .arg(cfg)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn status_json(lab: &Lab, cfg: &std::path::Path, args: &[&str]) -> (Option<i32>, Value) {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    let (code, out, err) = status(lab, cfg, &a);
    let j = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    (code, j)
}

fn route<'a>(j: &'a Value, prefix: &str) -> &'a Value {
    j["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["prefix"] == prefix)
        .unwrap_or_else(|| panic!("{prefix} not listed: {j:#}"))
}

fn client_hex(n: u32) -> String {
    format!("00030001{n:012x}")
}

#[test]
fn status_after_recover_names_each_lease_and_what_is_missing() {
    if !root() {
        return;
    }
    let lab = lab("pdr-st1", 2);
    // Prefixes 0..6 on cust0, 6..10 on cust1.
    let bindings: Vec<_> = (0..10).map(|n| binding(n, usize::from(n >= 6))).collect();
    let _server = lab_server(&lab, 5901, &bindings);
    let cfg = config(&lab, &[5901], "");
    // A route in the pool of another protocol: not ours, never listed.
    lab.router
        .ip([
            "-6",
            "route",
            "add",
            "2001:db8:80ff:ff00::/56",
            "via",
            "fe80::3",
            "dev",
            "cust0",
            "proto",
            "static",
        ])
        .unwrap();
    let (code, out, err) = status(&lab, &cfg, &[]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("routes: 0 of ours"), "{out}");
    assert!(out.contains("last run: none recorded"), "{out}");
    assert!(out.contains("ledger: none"), "{out}");

    let run = std::process::Command::new("ip")
        .args(["netns", "exec", lab.router.name()])
        .arg(env!("CARGO_BIN_EXE_pdrestore"))
        .args(["recover", "-c"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0), "{run:?}");

    let (code, out, err) = status(&lab, &cfg, &[]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(
        out.contains("routes: 10 of ours in table 254 (protocol 57)"),
        "{out}"
    );
    assert!(out.contains("  by interface: cust0 6, cust1 4"), "{out}");
    assert!(out.contains("  by server: [::1]:5901 10"), "{out}");
    assert!(out.contains("  learned: recover 10"), "{out}");
    assert!(
        out.contains("last run: recover ended ") && out.contains("complete, 10 bindings; 10 added"),
        "{out}"
    );
    assert!(
        out.contains("  server [::1]:5901 (group [::1]:5901): complete, 10 bindings"),
        "{out}"
    );
    assert!(out.contains("follow: not running"), "{out}");
    assert!(out.contains("ledger: written by recover "), "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with(&format!("{} via", prefix_n(7))))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.contains("via fe80::2 dev cust1 metric 1024 expires"),
        "{line}"
    );
    assert!(
        line.contains(&format!(
            "client {}, server [::1]:5901, lease ends in ",
            client_hex(7)
        )),
        "{line}"
    );
    assert!(!out.contains("2001:db8:80ff:ff00::/56"), "{out}");

    let (code, j) = status_json(&lab, &cfg, &[]);
    assert_eq!(code, Some(0));
    assert_eq!(j["total"], 10, "{j:#}");
    assert_eq!(j["by_interface"]["cust1"], 4);
    assert_eq!(j["last_run"]["outcome"], "complete");
    assert_eq!(j["last_run"]["run"], "recover");
    assert_eq!(j["last_run"]["routes"]["added"], 10);
    assert_eq!(j["follow"]["running"], false);
    let r = route(&j, &prefix_n(3));
    assert_eq!(r["client"], client_hex(3));
    assert_eq!(r["server"], "[::1]:5901");
    assert_eq!(r["learned"], "recover");
    assert_eq!(r["dev"], "cust0");
    let now = j["now"].as_u64().unwrap();
    // The lab server's leases: 3600 s valid, the client heard from 5 s before.
    let ends = r["lease_expires_at"].as_u64().unwrap();
    assert!((now + 3500..=now + 3600).contains(&ends), "{r}");
    let clt = r["client_last_transaction"].as_u64().unwrap();
    assert!((now - 100..=now).contains(&clt), "{r}");

    // The filters.
    let (_, j) = status_json(&lab, &cfg, &["--interface", "cust1"]);
    assert_eq!(j["total"], 4);
    let (_, j) = status_json(&lab, &cfg, &["--client", &client_hex(8)]);
    assert_eq!(j["total"], 1);
    assert_eq!(j["routes"][0]["prefix"], prefix_n(8));
    let colons: Vec<String> = client_hex(8)
        .as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8(c.to_vec()).unwrap().to_uppercase())
        .collect();
    let (_, j) = status_json(&lab, &cfg, &["--client", &colons.join(":")]);
    assert_eq!(j["total"], 1, "a DUID with colons, upper case");
    let (_, j) = status_json(&lab, &cfg, &["--prefix", &prefix_n(2)]);
    assert_eq!(j["total"], 1);
    assert_eq!(j["routes"][0]["prefix"], prefix_n(2));
    let (code, _, err) = status(&lab, &cfg, &["--client", "zz"]);
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("not a DUID in hex"), "{err}");

    // A route deleted by hand: its lease is current, so it is missing.
    lab.router
        .ip(["-6", "route", "del", &prefix_n(4), "proto", "57"])
        .unwrap();
    let (code, out, _) = status(&lab, &cfg, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("routes: 9 of ours"), "{out}");
    assert!(
        out.contains("missing: 1 leases known to be current without a route of ours"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "  {} client {} (not-in-kernel)",
            prefix_n(4),
            client_hex(4)
        )),
        "{out}"
    );
    let (_, j) = status_json(&lab, &cfg, &[]);
    assert_eq!(j["missing"][0]["prefix"], prefix_n(4));
    assert_eq!(j["missing"][0]["reason"], "not-in-kernel");

    // A damaged ledger is named, and the routes are still listed.
    let ledger = lab.dir.path().join("state/routes.ledger");
    let mut data = std::fs::read(&ledger).unwrap();
    data.truncate(data.len() - 3);
    std::fs::write(&ledger, data).unwrap();
    let (code, out, _) = status(&lab, &cfg, &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("routes: 9 of ours"), "{out}");
    assert!(
        out.contains("problem: ledger: ")
            && out.contains("routes.ledger: not a pdrestore ledger at octet"),
        "{out}"
    );
}

#[test]
fn status_with_follow_running_shows_its_live_state_and_snooped_leases() {
    if !root() {
        return;
    }
    let lab = lab("pdr-st2", 2);
    let _server = lab_server(&lab, 5902, &[binding(0, 0), binding(1, 1)]);
    let cfg = config(&lab, &[5902], "");
    let mut f = Follow::start(&lab, &cfg, &[], "info");
    // A new lease snooped on cust0, for client 7.
    let p = prefix_n(20);
    to_client(&lab, 0, "fe80::2", 546, vec![reply(0x200, 7, &p, 600)]);
    wait_route(&lab.router, &p, Duration::from_secs(2), |l| l.is_some())
        .unwrap_or_else(|| panic!("no route; log:\n{}", f.log_text()));

    let (code, j) = status_json(&lab, &cfg, &[]);
    assert_eq!(code, Some(0), "{j:#}\n{}", f.log_text());
    assert_eq!(j["follow"]["running"], true, "{j:#}");
    let st = &j["follow"]["state"];
    assert_eq!(st["ready"], true);
    assert_eq!(st["pid"], f.pid());
    assert_eq!(st["followed"], 3);
    assert_eq!(j["total"], 3);
    assert_eq!(j["last_run"]["run"], "start-up");
    assert_eq!(route(&j, &prefix_n(0))["learned"], "start-up");
    assert_eq!(route(&j, &prefix_n(1))["client"], client_hex(1));
    let s = route(&j, &p);
    assert_eq!(s["learned"], "snooped", "{s}");
    assert_eq!(s["client"], client_duid(7).to_hex());
    assert_eq!(s["server"], format!("DUID {}", server_duid().to_hex()));
    let now = j["now"].as_u64().unwrap();
    let ends = s["lease_expires_at"].as_u64().unwrap();
    assert!((now + 590..=now + 600).contains(&ends), "{s}");
    assert_eq!(j["by_learned"]["snooped"], 1);

    // Filters go to follow too: only the snooped client's route.
    let (_, j) = status_json(&lab, &cfg, &["--client", &client_duid(7).to_hex()]);
    assert_eq!(j["total"], 1, "{j:#}");

    // cust1 down: the kernel drops its route, follow keeps the lease.
    lab.router.ip(["link", "set", "cust1", "down"]).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let (code, out, err) = status(&lab, &cfg, &[]);
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert!(out.contains("follow: running (pid "), "{out}");
    assert!(out.contains(", ready;"), "{out}");
    assert!(out.contains("interfaces: cust0 up, cust1 down\n"), "{out}");
    assert!(
        out.contains(&format!(
            "  {} via fe80::2 dev cust1 client {} (link-down)",
            prefix_n(1),
            client_hex(1)
        )),
        "{out}"
    );
    lab.router.ip(["link", "set", "cust1", "up"]).unwrap();
    f.stop();
    // Stopped: the socket is gone, and status says follow is not running.
    let (_, out, _) = status(&lab, &cfg, &[]);
    assert!(out.contains("follow: not running\n"), "{out}");
}
