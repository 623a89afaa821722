//! Safe on a real router (issue 12, docs/reliability.md): pdrestore never
//! touches a route it does not own, never empties the table on a suspicious
//! answer, rides out a slow boot, and fails clearly without privileges.
//!
//! Each test but one builds its own network namespace (`ip netns`, as
//! root: skipped with a `SKIPPED` line otherwise, a failure under CI;
//! tests/support) with veth client links, runs the recovery (the library,
//! or the real binary through `ip netns exec` where the process matters),
//! and checks the kernel's table with `ip -6 route`. Nothing touches the
//! host: every address used is inside the namespace (loopback and its veth
//! links). The prune rail's refusals need no kernel: that test recovers
//! from lab servers on 127.0.0.1 into an in-memory table, without root.

mod route_lab;
mod support;
use pdrestore::agent::{self, RecoverOptions, Summary};
use pdrestore::config::{Config, DEFAULT_PROTOCOL};
use pdrestore::netns::NetNs;
use pdrestore::proto::{Binding, Duid};
use pdrestore::routes::MemoryTable;
use pdrestore::server::{self, BindingStore, ServerConfig};
use route_lab::{pdrestore_in, wait_listening, Child, RELAY};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const POOL: &str = "2001:db8:8000::/40";

fn lab() -> Option<NetNs> {
    route_lab::client_links("pdr-safe", 2)
}

/// Prefix number `n` of the pool (a /56), on link `link` (cust0 or cust1).
fn binding(n: u32, link: u32) -> Binding {
    route_lab::numbered(n, link)
}

/// `binding`s `range`, on cust0 and cust1 in turn.
fn bindings(range: std::ops::Range<u32>) -> Vec<Binding> {
    route_lab::numbered_range(range)
}

/// The configuration text: our relay, `servers` on the namespace's
/// loopback, the pool, both links mapped; `top` and `routes` add keys.
fn config_text(servers: &[u16], top: &str, routes: &str) -> String {
    config_text_at("::1", servers, top, routes)
}

/// `config_text` with the servers on `host`.
fn config_text_at(host: &str, servers: &[u16], top: &str, routes: &str) -> String {
    let mut t = format!("relay_duid = \"{RELAY}\"\nstate_directory = \"/nonexistent\"\n{top}\n");
    for p in servers {
        t.push_str(&format!("[[server]]\naddress = \"{host}\"\nport = {p}\n"));
    }
    t.push_str(&format!(
        "[routes]\nallowed_prefixes = [\"{POOL}\"]\n{routes}\n[routes.interfaces]\n\"ge-0/0/0\" = \"cust0\"\n\"ge-0/0/1\" = \"cust1\"\n"
    ));
    t
}

/// Serve each set on its port of the namespace's loopback and run
/// `agent::run` (the whole `recover`, netlink included) inside it.
fn recover_lib(
    ns: &NetNs,
    sets: Vec<(u16, Vec<Binding>)>,
    config: String,
    opts: RecoverOptions,
) -> Summary {
    ns.run(move || async move {
        let mut handles = Vec::new();
        for (port, b) in sets {
            let l = tokio::net::TcpListener::bind(("::1", port)).await.unwrap();
            let store = BindingStore::from_bindings(&b, server::store::unix_now(), &[]).unwrap();
            handles.push(server::spawn(l, Arc::new(store), ServerConfig::default()).unwrap());
        }
        let cfg = Config::parse(&config, Path::new("safety.toml")).unwrap();
        let relay: Duid = RELAY.parse().unwrap();
        let summary = agent::run(&cfg, &relay, &opts, std::future::pending())
            .await
            .unwrap()
            .summary();
        for h in handles {
            h.shutdown().await.unwrap();
        }
        summary
    })
    .unwrap()
}

/// Serve `set` on 127.0.0.1 and recover (`agent::recover`) into `table`,
/// the in-memory table of the router of `lab()` (cust0, cust1): no root.
/// `routes` adds keys to the configuration's `[routes]`.
fn recover_memory(table: MemoryTable, set: Vec<Binding>, routes: &str) -> (Summary, MemoryTable) {
    route_lab::block_on(async move {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let store = BindingStore::from_bindings(&set, server::store::unix_now(), &[]).unwrap();
        let h = server::spawn(l, Arc::new(store), ServerConfig::default()).unwrap();
        let text = config_text_at("127.0.0.1", &[h.local_addr().port()], "", routes);
        let cfg = Config::parse(&text, Path::new("safety.toml")).unwrap();
        let relay: Duid = RELAY.parse().unwrap();
        let ifs = route_lab::client_interfaces(2);
        let opts = RecoverOptions::default();
        let out = agent::recover(&cfg, &relay, table, ifs, &opts, std::future::pending())
            .await
            .unwrap();
        h.shutdown().await.unwrap();
        (out.0.summary(), out.1)
    })
}

/// Our routes (pdrestore's protocol, in the main table) in an in-memory
/// table that holds nothing else.
fn memory_ours(t: &MemoryTable) -> usize {
    for r in t.routes() {
        assert_eq!((r.table, r.protocol), (254, DEFAULT_PROTOCOL), "{r:?}");
    }
    route_lab::memory_routes(t).len()
}

/// `ip -6 route show` of the main table, one string per route, with the
/// expiry timer blanked and pdrestore's protocol by number.
fn routes(ns: &NetNs) -> Vec<String> {
    ns.ip(["-6", "route", "show"])
        .unwrap()
        .lines()
        .map(|l| {
            let mut w: Vec<String> = l.split_whitespace().map(str::to_owned).collect();
            if let Some(i) = w.iter().position(|x| x == "expires") {
                w[i + 1] = "~".into();
            }
            w.join(" ").replace("proto pdrestore", "proto 57")
        })
        .collect()
}

fn has(routes: &[String], start: &str) -> bool {
    routes.iter().any(|r| r.starts_with(start))
}

fn count_ours(ns: &NetNs) -> usize {
    routes(ns)
        .iter()
        .filter(|r| r.contains(&format!(" proto {DEFAULT_PROTOCOL} ")))
        .count()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Write a configuration for the binary, its state directory (where the
/// writer lock is) in `dir`: each test a directory of its own.
fn write_config(dir: &Path, name: &str, text: &str) -> PathBuf {
    let state = format!("state_directory = {:?}", dir.join("state"));
    write(
        dir,
        name,
        &text.replace("state_directory = \"/nonexistent\"", &state),
    )
}

fn jsonl(bindings: &[Binding]) -> String {
    bindings
        .iter()
        .map(|b| serde_json::to_string(b).unwrap() + "\n")
        .collect()
}

/// `pdrestore lab-server` (the binary) serving `file` on [::1]:`port`.
fn lab_server(ns: &NetNs, port: u16, file: &Path, log: Option<&Path>) -> Child {
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
    c.stdout(std::process::Stdio::null());
    match log {
        Some(l) => {
            c.env("RUST_LOG", "debug")
                .stderr(std::fs::File::create(l).unwrap());
        }
        None => {
            c.stderr(std::process::Stdio::null());
        }
    }
    Child(c.spawn().unwrap())
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON summary ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Point 1 and 2: the router's own `proto dhcp` default route, a
/// `proto dhcp` route outside the pools, a `proto static` route on a
/// delegated prefix, a blackhole on another, and a route of our own protocol
/// outside the pools all survive a recovery that prunes; the static route's
/// prefix is reported as a conflict with a foreign route (text, JSON, dry
/// run); only our stale route inside the pools is removed, and logged.
#[test]
fn routes_that_are_not_ours_survive_a_pruning_recovery() {
    let Some(ns) = lab() else { return };
    for r in [
        "default via fe80::1 dev cust1 proto dhcp",
        "2001:db8:ffff::/48 via fe80::ff dev cust0 proto dhcp",
        "2001:db8:8000:200::/56 via fe80::99 dev cust0 proto static metric 1024",
        "blackhole 2001:db8:8000:400::/56 proto static metric 1024",
        "2001:db8:fffe::/48 via fe80::fe dev cust0 proto 57",
        "2001:db8:8000:f00::/56 via fe80::f dev cust0 proto 57",
    ] {
        let mut args = vec!["-6", "route", "add"];
        args.extend(r.split(' '));
        ns.ip(&args).unwrap();
    }
    let before = routes(&ns);
    let foreign: Vec<String> = before
        .iter()
        .filter(|r| !r.contains("2001:db8:8000:f00::/56") && !r.contains("proto kernel"))
        .cloned()
        .collect();
    assert_eq!(foreign.len(), 5, "{before:?}");
    let set = vec![binding(1, 0), binding(2, 0), binding(3, 1), binding(4, 1)];
    let cfg = config_text(&[5547], "", "prune_limit = \"100%\"");
    // The dry run says what it would do, the conflict included.
    let dry = recover_lib(
        &ns,
        vec![(5547, set.clone())],
        cfg.clone(),
        RecoverOptions {
            dry_run: true,
            ..Default::default()
        },
    );
    assert_eq!(routes(&ns), before, "the dry run touched nothing");
    assert_eq!(dry.routes.foreign_conflicts.len(), 2, "{}", dry.to_text());
    assert_eq!(dry.routes.removed_routes.len(), 1);
    let s = recover_lib(&ns, vec![(5547, set)], cfg, RecoverOptions::default());
    let text = s.to_text();
    assert_eq!((s.outcome.as_str(), s.exit_code), ("complete", 0), "{text}");
    assert_eq!((s.routes.added, s.routes.removed), (2, 1), "{text}");
    assert!(s.routes.pruned);
    let after = routes(&ns);
    for f in &foreign {
        assert!(after.contains(f), "{f} was touched: {after:?}");
    }
    assert!(
        !has(&after, "2001:db8:8000:f00::/56"),
        "the stale route of ours is pruned"
    );
    assert!(has(
        &after,
        "2001:db8:8000:100::/56 via fe80::2 dev cust0 proto 57 metric 1024"
    ));
    assert!(has(
        &after,
        "2001:db8:8000:300::/56 via fe80::4 dev cust1 proto 57 metric 1024"
    ));
    // The conflicts, as text and JSON with their codes.
    assert!(
        text.contains("foreign 2001:db8:8000:200::/56: a route of protocol 4 metric 1024 via fe80::99 dev cust0 holds it; left in place"),
        "{text}"
    );
    let j = serde_json::to_value(&s).unwrap();
    let c = &j["routes"]["foreign_conflicts"];
    assert_eq!(c.as_array().unwrap().len(), 2, "{c}");
    assert_eq!(c[0]["prefix"], "2001:db8:8000:200::/56");
    assert_eq!(c[0]["protocol"], 4);
    assert_eq!(c[0]["metric"], 1024);
    assert_eq!(c[0]["via"], "fe80::99");
    assert_eq!(c[0]["dev"], "cust0");
    assert_eq!(c[0]["code"], "foreign-route");
    assert_eq!(c[1]["prefix"], "2001:db8:8000:400::/56");
    assert_eq!(c[1]["via"], serde_json::Value::Null, "a blackhole has none");
    let removed = &j["routes"]["removed_routes"];
    assert_eq!(removed[0]["prefix"], "2001:db8:8000:f00::/56");
    assert_eq!(removed[0]["via"], "fe80::f");
    assert_eq!(removed[0]["dev"], "cust0");
    assert_eq!(j["routes"]["prune"]["state"], "done");

    // Configured with the shared RTPROT_DHCP, the router's own proto dhcp
    // routes outside the pools are still not ours.
    let cfg = config_text(&[5548], "", "protocol = 16\nprune_limit = \"100%\"");
    let s = recover_lib(
        &ns,
        vec![(5548, vec![binding(1, 0)])],
        cfg,
        RecoverOptions::default(),
    );
    assert_eq!(s.routes.prune.ours, 0, "{}", s.to_text());
    let after = routes(&ns);
    assert!(
        after.contains(
            &"default via fe80::1 dev cust1 proto dhcp metric 1024 pref medium".to_string()
        ),
        "{after:?}"
    );
    assert!(has(
        &after,
        "2001:db8:ffff::/48 via fe80::ff dev cust0 proto dhcp"
    ));
}

/// Point 3: a complete answer with no binding at all, or with 5 of the 100
/// prefixes we route, prunes nothing by default and says why (exit 1). In
/// memory (no root): lab servers on 127.0.0.1, the router's table a
/// MemoryTable.
#[test]
fn an_empty_or_collapsed_answer_prunes_nothing() {
    let table = route_lab::memory_table(&route_lab::client_interfaces(2));
    let (s, t) = recover_memory(table, bindings(0..100), "");
    assert_eq!(s.routes.added, 100, "{}", s.to_text());
    assert_eq!(memory_ours(&t), 100);

    let (s, t) = recover_memory(t, vec![], "");
    let text = s.to_text();
    assert_eq!((s.outcome.as_str(), s.exit_code), ("partial", 1), "{text}");
    assert_eq!(s.routes.removed, 0);
    assert_eq!(s.routes.prune.state, "refused");
    assert_eq!(s.routes.prune.reason_code, Some("empty-answer"));
    assert!(
        text.contains("prune refused: every server answered with no binding at all, which would remove all 100 of our routes"),
        "{text}"
    );
    assert_eq!(memory_ours(&t), 100);

    let (s, t) = recover_memory(t, bindings(0..5), "");
    let text = s.to_text();
    assert_eq!(s.exit_code, 1, "{text}");
    assert_eq!(s.routes.prune.reason_code, Some("over-limit"));
    assert!(
        text.contains("it would remove 95 of our 100 routes, more than prune_limit 10% allows"),
        "{text}"
    );
    assert_eq!(memory_ours(&t), 100);
}

/// Point 3: `--force-prune` (the binary) prunes a collapsed answer (5 of
/// the 100 prefixes we route), and every removal is logged and listed.
#[test]
fn a_forced_prune_removes_and_logs_every_route() {
    let Some(ns) = lab() else { return };
    let cfg = config_text(&[5550], "", "");
    let s = recover_lib(
        &ns,
        vec![(5550, bindings(0..100))],
        cfg,
        RecoverOptions::default(),
    );
    assert_eq!(s.routes.added, 100, "{}", s.to_text());
    assert_eq!(count_ours(&ns), 100);

    // The binary, --force-prune: the 95 go, each listed and logged.
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "five.jsonl", &jsonl(&bindings(0..5)));
    let _server = lab_server(&ns, 5551, &file, None);
    wait_listening(&ns, 5551);
    let cfg = write_config(dir.path(), "p.toml", &config_text(&[5551], "", ""));
    let out = pdrestore_in(
        &ns,
        &[
            "recover",
            "-c",
            cfg.to_str().unwrap(),
            "--json",
            "--force-prune",
        ],
    )
    .env("RUST_LOG", "info")
    .output()
    .unwrap();
    let j = json(&out);
    assert_eq!(out.status.code(), Some(0), "{j}");
    assert_eq!(j["routes"]["removed"], 95);
    assert_eq!(j["routes"]["removed_routes"].as_array().unwrap().len(), 95);
    assert_eq!(j["routes"]["prune"]["state"], "done");
    assert_eq!(count_ours(&ns), 5);
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        log.matches("removing our route: no binding backs it")
            .count(),
        95,
        "{log}"
    );
    assert!(log.contains("prefix=2001:db8:8000:500::/56"), "{log}");
    assert!(!log.contains('\u{1b}'), "no colour codes off a terminal");
}

/// Point 4: a server that starts listening 15 s after `recover` starts is
/// waited for with the default settings (startup_deadline), and its
/// routes are restored.
#[test]
fn a_server_that_comes_up_late_is_waited_for() {
    let Some(ns) = lab() else { return };
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "b.jsonl", &jsonl(&bindings(0..10)));
    let cfg = write_config(dir.path(), "late.toml", &config_text(&[5552], "", ""));
    let start = Instant::now();
    let child = pdrestore_in(&ns, &["recover", "-c", cfg.to_str().unwrap(), "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(15));
    let _server = lab_server(&ns, 5552, &file, None);
    let out = child.wait_with_output().unwrap();
    let j = json(&out);
    assert_eq!(out.status.code(), Some(0), "{j}");
    assert_eq!(j["servers"][0]["status"], "complete");
    assert!(j["servers"][0]["connections"].as_u64().unwrap() > 3, "{j}");
    assert!(start.elapsed() >= Duration::from_secs(15));
    assert_eq!(count_ours(&ns), 10);
}

/// Point 4: a client-facing interface that appears 5 s after the start is
/// waited for (interface_wait) and gets its routes.
#[test]
fn an_interface_that_comes_up_late_gets_its_routes() {
    let Some(ns) = lab() else { return };
    ns.ip(["link", "del", "cust1"]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "b.jsonl", &jsonl(&bindings(0..6)));
    let _server = lab_server(&ns, 5553, &file, None);
    wait_listening(&ns, 5553);
    let cfg = write_config(dir.path(), "if.toml", &config_text(&[5553], "", ""));
    let child = pdrestore_in(&ns, &["recover", "-c", cfg.to_str().unwrap(), "--json"])
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(5));
    for c in [
        "link add cust1 type veth peer name cpe1",
        "link set cust1 up",
        "link set cpe1 up",
        "-6 addr add 2001:db8:0:2::1/64 dev cust1 nodad",
    ] {
        ns.ip(c.split(' ')).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let j = json(&out);
    assert_eq!(out.status.code(), Some(0), "{j}");
    assert_eq!(j["routes"]["added"], 6);
    assert_eq!(j["missing_interfaces"].as_array().unwrap().len(), 0);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("waiting for interfaces to exist and be up"),
        "{log}"
    );
    let r = routes(&ns);
    assert!(
        has(&r, "2001:db8:8000:100::/56 via fe80::2 dev cust1 proto 57"),
        "{r:?}"
    );
}

/// Point 4: an interface that never comes is reported, and the prefixes
/// behind it make the run partial (exit 1), not complete.
#[test]
fn prefixes_refused_for_a_missing_interface_make_the_run_partial() {
    let Some(ns) = lab() else { return };
    ns.ip(["link", "del", "cust1"]).unwrap();
    let cfg = config_text(&[5554], "interface_wait = \"1s\"", "");
    let s = recover_lib(
        &ns,
        vec![(5554, bindings(0..4))],
        cfg,
        RecoverOptions::default(),
    );
    let text = s.to_text();
    assert_eq!((s.outcome.as_str(), s.exit_code), ("partial", 1), "{text}");
    assert_eq!(s.missing_interfaces, vec!["cust1".to_string()]);
    assert_eq!(s.routes.added, 2);
    assert_eq!(s.routes.rejected.len(), 2);
    assert_eq!(s.routes.rejected[0].reason_code, "missing-interface");
    assert!(text.contains("missing interface: cust1"), "{text}");
}

/// Point 4: a black-holed server (its SYNs dropped by nftables inside the
/// namespace) costs at most connect_timeout per try, not data_timeout, and
/// the healthy server beside it is restored. Needs nft (nftables).
#[test]
fn a_black_holed_server_costs_only_the_connect_timeout() {
    let Some(ns) = lab() else { return };
    if !support::need_tool("nft", "nftables") {
        return;
    }
    let mut nft = std::process::Command::new("ip")
        .args(["netns", "exec", ns.name(), "nft", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    nft.stdin
        .take()
        .unwrap()
        .write_all(
            b"table inet pdr {\n chain in {\n  type filter hook input priority 0; policy accept;\n  tcp dport 5599 drop\n }\n}\n",
        )
        .unwrap();
    let out = nft.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "nft -f: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cfg = config_text(
        &[5599, 5555],
        "connect_timeout = \"1s\"\nstartup_deadline = \"0s\"\nretries = 1\nretry_initial_delay = \"50ms\"",
        "",
    );
    let start = Instant::now();
    let s = recover_lib(
        &ns,
        vec![(5555, bindings(0..4))],
        cfg,
        RecoverOptions::default(),
    );
    let took = start.elapsed();
    let text = s.to_text();
    assert_eq!(s.exit_code, 1, "{text}");
    let black = &s.servers[0];
    assert_eq!(
        black.status, "transport failure: connect timed out",
        "{text}"
    );
    assert_eq!(black.status_code, "connect-timeout");
    assert_eq!(black.connections, 2);
    assert!(
        (2000..4000).contains(&black.duration_ms),
        "two tries of 1 s each: {} ms",
        black.duration_ms
    );
    assert!(took < Duration::from_secs(6), "{took:?}");
    assert_eq!(s.servers[1].status, "complete");
    assert_eq!(s.routes.added, 4);
}

/// Point 4: without CAP_NET_ADMIN, recover says so in one line and exits
/// 77 before asking any server (the lab server sees no connection but the
/// test's own probe). Needs setpriv (util-linux).
#[test]
fn without_cap_net_admin_recover_fails_before_asking_anyone() {
    let Some(ns) = lab() else { return };
    if !support::need_tool("setpriv", "util-linux") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "b.jsonl", &jsonl(&bindings(0..4)));
    let log = dir.path().join("server.log");
    let server = lab_server(&ns, 5556, &file, Some(&log));
    wait_listening(&ns, 5556);
    let cfg = write_config(dir.path(), "c.toml", &config_text(&[5556], "", ""));
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", ns.name()])
        .args([
            "setpriv",
            "--inh-caps=-net_admin",
            "--bounding-set=-net_admin",
        ])
        .arg(env!("CARGO_BIN_EXE_pdrestore"))
        .args(["recover", "-c", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(77), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("needs CAP_NET_ADMIN"), "{err}");
    assert_eq!(count_ours(&ns), 0);
    std::thread::sleep(Duration::from_millis(300));
    drop(server);
    let seen = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        seen.matches("connection accepted").count(),
        1,
        "only wait_listening's probe: {seen}"
    );
}

/// Point 6: a dry run creates nothing on disk (no state directory, no
/// DUID file) and says that it asked with a temporary DUID; check-config
/// prints the DUIDs without creating them either.
#[test]
fn a_dry_run_and_check_config_create_nothing() {
    let Some(ns) = lab() else { return };
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let file = write(dir.path(), "b.jsonl", &jsonl(&bindings(0..2)));
    let _server = lab_server(&ns, 5557, &file, None);
    wait_listening(&ns, 5557);
    // A second server, closed: its failure is a warning in the log.
    let text = config_text(&[5557, 5558], "startup_deadline = \"0s\"\nretries = 0", "")
        .replace(&format!("relay_duid = \"{RELAY}\"\n"), "")
        .replace(
            "state_directory = \"/nonexistent\"",
            &format!("state_directory = {:?}", state),
        );
    let cfg = write(dir.path(), "d.toml", &text);
    let out = pdrestore_in(&ns, &["recover", "--dry-run", "-c", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("(dry run)"), "{stdout}");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.lines().any(|l| l.contains(" WARN ")
            && l.contains("[::1]:5558")
            && l.contains("connection refused")),
        "a failing server is a warning: {log}"
    );
    assert!(!log.contains('\u{1b}'), "no colour codes off a terminal");
    assert!(
        stdout.contains("note: no relay DUID is configured or stored"),
        "{stdout}"
    );
    assert!(!state.exists(), "the dry run created {}", state.display());
    let out = pdrestore_in(&ns, &["check-config", "-c", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("# relay DUID: none yet"), "{stdout}");
    assert!(
        stdout.contains("# requestor DUID: the relay DUID"),
        "{stdout}"
    );
    assert!(!state.exists());
    // With the DUID configured, both are printed.
    let cfg = write(dir.path(), "e.toml", &config_text(&[5557], "", ""));
    let out = pdrestore_in(&ns, &["check-config", "-c", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("# relay DUID: {RELAY} (configured")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("# requestor DUID: {RELAY}")),
        "{stdout}"
    );
}
