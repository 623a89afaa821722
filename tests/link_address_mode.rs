//! Issue 22, link-address mode and what an operator tripped over: the
//! real binary (`recover`, `check-config`, `follow`) against a real
//! `pdrestore lab-server` in a private network namespace with client links
//! cust0 (2001:db8:0:1::1/64) and cust1 (2001:db8:0:2::1/64).
//!
//! - link-address mode speaks of the requestor DUID only, and a corrupt
//!   relay DUID file does not block it;
//! - check-config prints the effective links and refuses a `source` the
//!   box does not have;
//! - follow snoops the interfaces of `links` by default, and without
//!   CAP_NET_RAW names the interface;
//! - a SIGTERM during follow's start-up recovery stops it without a
//!   "ready" line.
//!
//! Needs root (`ip netns`): skipped with a `SKIPPED` line otherwise, a
//! failure under CI (tests/support).

mod route_lab;
mod support;
use pdrestore::netns::NetNs;
use route_lab::{jsonl_file, lab_server_in, numbered_range, pdrestore_in};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

const LINKS: &str = "links = [\"2001:db8:0:1::1\", \"2001:db8:0:2::1\"]";

/// A link-address configuration in `dir`: one server on [::1]:`port`,
/// `top` more top-level keys, no interface map.
fn config(dir: &Path, port: u16, top: &str, server: &str) -> PathBuf {
    let t = format!(
        "query = \"link-address\"\n{LINKS}\nstate_directory = {:?}\nstartup_deadline = \"0s\"\nretries = 0\n{top}\n[[server]]\naddress = \"::1\"\nport = {port}\n{server}\n[routes]\nallowed_prefixes = [\"2001:db8:8000::/40\"]\n",
        dir.join("state")
    );
    let p = dir.join("pdrestore.toml");
    std::fs::write(&p, t).unwrap();
    p
}

/// A corrupt relay DUID file in `dir`'s state directory.
fn corrupt_duid_file(dir: &Path) {
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("relay-duid"), "not a duid\n").unwrap();
}

fn run(ns: &NetNs, args: &[&str]) -> (Option<i32>, String, String) {
    let out = pdrestore_in(ns, args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn link_address_mode_speaks_of_the_requestor_only_and_needs_no_relay_duid() {
    let Some(ns) = route_lab::client_links("pdr-lam", 2) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = jsonl_file(dir.path(), "b.jsonl", &numbered_range(0..60));
    let _s = lab_server_in(&ns, 5801, &file, &[]);
    let cfg = config(dir.path(), 5801, "", "");
    corrupt_duid_file(dir.path());
    let c = cfg.to_str().unwrap();

    // The dry run's text lists 50 changes and says where the rest is.
    let (code, out, _) = run(&ns, &["recover", "--dry-run", "-c", c]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(out.matches("would add ").count(), 50, "{out}");
    assert!(out.contains("... 10 more changes (see --json)"), "{out}");

    let (code, out, err) = run(&ns, &["recover", "--json", "-c", c]);
    assert_eq!(
        code,
        Some(0),
        "a corrupt relay DUID file does not block: {out}\n{err}"
    );
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["query"], "link-address");
    assert!(j["relay_duid"].is_null(), "{j}");
    assert!(j["requestor_duid"].as_str().unwrap().len() >= 8, "{j}");
    assert_eq!(j["links"][1], "2001:db8:0:2::1");
    assert_eq!(j["routes"]["added"], 60, "{j}");
    assert!(
        err.contains("link-address mode uses no relay DUID"),
        "{err}"
    );

    let (code, out, _) = run(&ns, &["recover", "--dry-run", "-c", c]);
    assert_eq!(code, Some(0), "{out}");
    let first = out.lines().next().unwrap();
    assert!(
        first.starts_with(
            "pdrestore recover (dry run): link-address 2001:db8:0:1::1, 2001:db8:0:2::1 (requestor "
        ),
        "{first}"
    );
    assert!(!out.contains("relay-id"), "{out}");
    assert!(!out.contains("which no server knows"), "{out}");

    let (code, out, err) = run(&ns, &["check-config", "-c", c]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(
        out.contains("# links asked about: 2001:db8:0:1::1 (cust0), 2001:db8:0:2::1 (cust1)"),
        "{out}"
    );
    assert!(
        out.contains("# requestor DUID: a temporary one each run"),
        "{out}"
    );
    assert!(!out.contains("# relay DUID"), "{out}");

    // Every client moved (another link-local): the dry run's log says it
    // would replace them, not that it is replacing them.
    let mut moved = numbered_range(0..60);
    for b in &mut moved {
        b.relay[0].peer_address = (u128::from(b.relay[0].peer_address) + 0x1000).into();
    }
    let file = jsonl_file(dir.path(), "moved.jsonl", &moved);
    let _m = lab_server_in(&ns, 5805, &file, &[]);
    let cfg = config(dir.path(), 5805, "", "");
    let (code, out, err) = run(&ns, &["recover", "--dry-run", "-c", cfg.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(
        err.contains("would replace our routes whose client moved"),
        "{err}"
    );
    assert!(!err.contains("replacing our routes"), "{err}");
}

#[test]
fn check_config_refuses_a_source_the_box_does_not_have() {
    let Some(ns) = route_lab::client_links("pdr-lam-src", 1) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bad = config(dir.path(), 5802, "", "source = \"2001:db8:ffff::99\"");
    let (code, out, err) = run(&ns, &["check-config", "-c", bad.to_str().unwrap()]);
    assert_eq!(code, Some(78), "{out}\n{err}");
    assert!(
        err.contains(
            "server [::1]:5802: source 2001:db8:ffff::99 is not an address of this machine"
        ),
        "{err}"
    );
    // The router's own address on cust0 is fine.
    let good = config(dir.path(), 5802, "", "source = \"2001:db8:0:1::1\"");
    let (code, out, err) = run(&ns, &["check-config", "-c", good.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}\n{err}");
}

/// `follow` with a line reader on its log, killed when dropped.
struct Follow {
    child: route_lab::Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Follow {
    fn start(ns: &NetNs, cfg: &Path, prefix: &[&str]) -> Follow {
        let mut c = std::process::Command::new("ip");
        c.args(["netns", "exec", ns.name()])
            .args(prefix)
            .arg(env!("CARGO_BIN_EXE_pdrestore"))
            .args(["follow", "-c", cfg.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        let err = child.stderr.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        Follow {
            child: route_lab::Child(child),
            lines,
            seen: Vec::new(),
        }
    }

    /// Wait up to `limit` for a line containing `what`.
    fn wait_for(&mut self, what: &str, limit: Duration) -> bool {
        let end = Instant::now() + limit;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    let hit = l.contains(what);
                    self.seen.push(l);
                    if hit {
                        return true;
                    }
                }
                Err(_) => break,
            }
        }
        false
    }

    /// SIGTERM, then the exit status and every line.
    fn stop(mut self) -> (Option<i32>, String) {
        // SAFETY: plain kill(2) on our child's pid.
        unsafe { libc::kill(self.child.0.id() as i32, libc::SIGTERM) };
        let status = self.child.0.wait().unwrap();
        self.seen.extend(self.lines.try_iter());
        while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(300)) {
            self.seen.push(l);
        }
        (status.code(), self.seen.join("\n"))
    }
}

#[test]
fn follow_snoops_the_interfaces_of_links_and_a_stop_at_start_up_is_not_ready() {
    let Some(ns) = route_lab::client_links("pdr-lam-follow", 2) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = jsonl_file(dir.path(), "b.jsonl", &numbered_range(0..4));
    // Every message 2 s late: the start-up recovery is still running when
    // the SIGTERM comes.
    let _s = lab_server_in(&ns, 5803, &file, &["--fault", "delay-each=2s"]);
    let cfg = config(dir.path(), 5803, "first_answer_timeout = \"30s\"", "");
    let mut f = Follow::start(&ns, &cfg, &[]);
    for link in ["cust0", "cust1"] {
        assert!(
            f.wait_for(&format!("interface={link}"), Duration::from_secs(20)),
            "snooping {link}: {:?}",
            f.seen
        );
    }
    // The recovery takes 6 s (three messages 2 s apart): stop it midway.
    std::thread::sleep(Duration::from_secs(1));
    let (code, log) = f.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(!log.contains("follow: ready"), "{log}");
    assert!(
        log.contains("follow: stopped during the start-up recovery, before it was ready"),
        "{log}"
    );
}

#[test]
fn follow_without_cap_net_raw_names_the_interface() {
    let Some(ns) = route_lab::client_links("pdr-lam-raw", 1) else {
        return;
    };
    if !support::need_tool("setpriv", "util-linux") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 5804, "", "");
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", ns.name()])
        .args(["setpriv", "--inh-caps=-net_raw", "--bounding-set=-net_raw"])
        .arg(env!("CARGO_BIN_EXE_pdrestore"))
        .args(["follow", "-c", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(77), "{err}");
    assert!(
        err.contains("opening a packet socket on cust0 (interface index"),
        "{err}"
    );
    assert!(err.contains("needs CAP_NET_RAW"), "{err}");
}
