//! The metrics file of `recover` (issue 16), end to end: the real binary,
//! run through `ip netns exec` in a private network namespace (as root;
//! skipped otherwise) against `pdrestore lab-server`, writes the file, and
//! a Prometheus text-format parser (`prometheus-parse`) reads it back.
//!
//! Everything happens inside the namespace (its loopback and veth links);
//! the metrics file lives in a temporary directory.

mod prom;
mod route_lab;
mod support;
use pdrestore::netns::NetNs;
use pdrestore::proto::Binding;
use prom::Metrics;
use route_lab::{layer, pd, pdrestore_in, wait_listening, Child, RELAY};
use std::path::Path;

const POOL: &str = "2001:db8:8000::/40";

fn lab() -> Option<NetNs> {
    route_lab::client_links("pdr-metrics", 2)
}

/// Prefix `prefix` for client `n`, on link cust0 or cust1.
fn binding(n: u32, prefix: &str) -> Binding {
    let link = n % 2;
    pd(
        &format!("00030001{n:012x}"),
        prefix,
        5,
        vec![layer(
            &format!("2001:db8:0:{}::1", link + 1),
            &format!("fe80::{:x}", n + 1),
            &format!("ge-0/0/{link}"),
            Some(RELAY),
        )],
    )
}

/// Six prefixes of the pool and one outside it (rejected: outside-pools).
fn bindings() -> Vec<Binding> {
    let mut v: Vec<Binding> = (0..6)
        .map(|n| binding(n, &format!("2001:db8:8000:{n:x}00::/56")))
        .collect();
    v.push(binding(6, "2001:db9:1:100::/56"));
    v
}

/// The configuration: `state` is the state directory (the writer lock).
fn config_text(state: &Path, ports: &[u16], top: &str) -> String {
    let mut t = format!(
        "relay_duid = \"{RELAY}\"\nstate_directory = {state:?}\nstartup_deadline = \"0s\"\nretries = 0\n{top}\n"
    );
    for p in ports {
        t.push_str(&format!("[[server]]\naddress = \"::1\"\nport = {p}\n"));
    }
    t.push_str(&format!(
        "[routes]\nallowed_prefixes = [\"{POOL}\"]\n[routes.interfaces]\n\"ge-0/0/0\" = \"cust0\"\n\"ge-0/0/1\" = \"cust1\"\n"
    ));
    t
}

/// `pdrestore lab-server` serving `file` on [::1]:`port` in the namespace.
fn lab_server(ns: &NetNs, port: u16, file: &Path) -> Child {
    let mut c = pdrestore_in(
        ns,
        &[
            "lab-server",
            "--listen",
            &format!("[::1]:{port}"),
            "--bindings",
            file.to_str().unwrap(),
        ],
    );
    c.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    Child(c.spawn().unwrap())
}

/// `recover` with `args`; its exit status and log.
fn recover_log(ns: &NetNs, args: &[&str]) -> (i32, String) {
    let mut all = vec!["recover", "--json"];
    all.extend_from_slice(args);
    let out = pdrestore_in(ns, &all).output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!("{log}");
    (out.status.code().unwrap(), log)
}

/// `recover` with `args`; its exit status.
fn recover(ns: &NetNs, args: &[&str]) -> i32 {
    recover_log(ns, args).0
}

const A: &str = "[::1]:5561";
const DEAD: &str = "[::1]:5562";

/// A complete run writes its figures (metrics_file in the configuration);
/// a partial one (a server that refuses, `--metrics-file`) replaces them
/// and keeps the last complete time; a dry run writes nothing; a run that
/// ends before a summary (a configuration error) writes outcome `error`;
/// a file that cannot be written changes no exit status.
#[test]
fn recover_writes_the_metrics_file_that_a_parser_reads_back() {
    let Some(ns) = lab() else { return };
    let dir = tempfile::tempdir().unwrap();
    let jsonl: String = bindings()
        .iter()
        .map(|b| serde_json::to_string(b).unwrap() + "\n")
        .collect();
    let file = dir.path().join("a.jsonl");
    std::fs::write(&file, jsonl).unwrap();
    let _server = lab_server(&ns, 5561, &file);
    wait_listening(&ns, 5561);
    let prom = dir.path().join("pdrestore.prom");
    // The state directory (the writer lock) apart: `dir` is listed below.
    let state = tempfile::tempdir().unwrap();
    let state = state.path();

    // 1: complete, the path from the configuration.
    let cfg = dir.path().join("one.toml");
    std::fs::write(
        &cfg,
        config_text(
            state,
            &[5561],
            &format!("metrics_file = {:?}", prom.to_str().unwrap()),
        ),
    )
    .unwrap();
    let before = pdrestore::metrics::unix_seconds(std::time::SystemTime::now());
    assert_eq!(recover(&ns, &["-c", cfg.to_str().unwrap()]), 0);
    let m = Metrics::read(&prom);
    eprintln!("after the complete run:\n{}", m.1);
    assert_eq!(
        m.get("pdrestore_recover_outcome", &[("outcome", "complete")]),
        1.0
    );
    assert_eq!(
        m.get("pdrestore_recover_outcome", &[("outcome", "partial")]),
        0.0
    );
    assert_eq!(m.get("pdrestore_recover_exit_code", &[]), 0.0);
    assert_eq!(m.get("pdrestore_server_bindings", &[("server", A)]), 7.0);
    assert_eq!(m.get("pdrestore_server_complete", &[("server", A)]), 1.0);
    assert!(m.get("pdrestore_server_duration_seconds", &[("server", A)]) >= 0.0);
    assert_eq!(m.get("pdrestore_bindings_received", &[]), 7.0);
    assert_eq!(m.get("pdrestore_routes_planned", &[]), 6.0);
    assert_eq!(m.get("pdrestore_routes_added", &[]), 6.0);
    assert_eq!(m.get("pdrestore_routes_unchanged", &[]), 0.0);
    assert_eq!(m.get("pdrestore_routes_failed", &[]), 0.0);
    assert_eq!(m.get("pdrestore_routes_foreign_conflicts", &[]), 0.0);
    assert_eq!(
        m.get("pdrestore_routes_rejected", &[("reason", "outside-pools")]),
        1.0
    );
    assert_eq!(m.get("pdrestore_prune_state", &[("state", "done")]), 1.0);
    assert_eq!(m.get("pdrestore_prune_state", &[("state", "refused")]), 0.0);
    let end1 = m.get("pdrestore_last_run_timestamp_seconds", &[]);
    assert!(end1 >= before, "{end1} < {before}");
    assert_eq!(
        m.get("pdrestore_last_complete_timestamp_seconds", &[]),
        end1
    );
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&prom).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o644);

    // 2: partial (the second server refuses), the path from the flag.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let cfg = dir.path().join("two.toml");
    std::fs::write(&cfg, config_text(state, &[5561, 5562], "")).unwrap();
    let flag = [
        "-c",
        cfg.to_str().unwrap(),
        "--metrics-file",
        prom.to_str().unwrap(),
    ];
    assert_eq!(recover(&ns, &flag), 1);
    let m = Metrics::read(&prom);
    eprintln!("after the partial run:\n{}", m.1);
    assert_eq!(
        m.get("pdrestore_recover_outcome", &[("outcome", "partial")]),
        1.0
    );
    assert_eq!(
        m.get("pdrestore_recover_outcome", &[("outcome", "complete")]),
        0.0
    );
    assert_eq!(m.get("pdrestore_recover_exit_code", &[]), 1.0);
    assert_eq!(m.get("pdrestore_server_complete", &[("server", A)]), 1.0);
    assert_eq!(m.get("pdrestore_server_complete", &[("server", DEAD)]), 0.0);
    assert_eq!(m.get("pdrestore_server_bindings", &[("server", DEAD)]), 0.0);
    assert_eq!(m.get("pdrestore_routes_added", &[]), 0.0);
    assert_eq!(m.get("pdrestore_routes_unchanged", &[]), 6.0);
    assert_eq!(m.get("pdrestore_prune_state", &[("state", "skipped")]), 1.0);
    let end2 = m.get("pdrestore_last_run_timestamp_seconds", &[]);
    assert!(end2 > end1, "{end2} <= {end1}");
    assert_eq!(
        m.get("pdrestore_last_complete_timestamp_seconds", &[]),
        end1
    );
    let written = m.1;

    // 3: a dry run writes nothing.
    let mut dry = flag.to_vec();
    dry.push("--dry-run");
    assert_eq!(recover(&ns, &dry), 1);
    assert_eq!(std::fs::read_to_string(&prom).unwrap(), written);

    // 4: a configuration error: outcome error, exit 78, last complete kept.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "bogus = 1\n").unwrap();
    let args = [
        "-c",
        bad.to_str().unwrap(),
        "--metrics-file",
        prom.to_str().unwrap(),
    ];
    assert_eq!(recover(&ns, &args), 78);
    let m = Metrics::read(&prom);
    assert_eq!(
        m.get("pdrestore_recover_outcome", &[("outcome", "error")]),
        1.0
    );
    assert_eq!(m.get("pdrestore_recover_exit_code", &[]), 78.0);
    assert_eq!(
        m.get("pdrestore_last_complete_timestamp_seconds", &[]),
        end1
    );
    assert!(!m.has("pdrestore_routes_added"), "{}", m.1);

    // 5: a metrics file that cannot be written is logged; the exit status
    // is the run's.
    let cfg = dir.path().join("one.toml");
    let nowhere = dir.path().join("no-such-dir").join("pdrestore.prom");
    let args = [
        "-c",
        cfg.to_str().unwrap(),
        "--metrics-file",
        nowhere.to_str().unwrap(),
    ];
    let (code, log) = recover_log(&ns, &args);
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("cannot write the metrics file"), "{log}");
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "a.jsonl",
            "bad.toml",
            "one.toml",
            "pdrestore.prom",
            "two.toml"
        ]
    );
}
