//! Issue 22, tables by name: `routes.table` takes a name from iproute2's
//! rt_tables and rt_tables.d (here a directory of the test's own, named by
//! `PDRESTORE_IPROUTE2_DIRS`), and the real binary recovers into that table
//! inside a private network namespace. Needs root (`ip netns`): skipped
//! with a `SKIPPED` line otherwise, a failure under CI (tests/support).

mod route_lab;
mod support;
use route_lab::{jsonl_file, lab_server_in, numbered_range, pdrestore_in, table_lines, RELAY};
use std::path::Path;

fn config(dir: &Path, port: u16, table: &str) -> std::path::PathBuf {
    let t = format!(
        "relay_duid = \"{RELAY}\"\nstate_directory = {:?}\nstartup_deadline = \"0s\"\nretries = 0\n[[server]]\naddress = \"::1\"\nport = {port}\n[routes]\ntable = \"{table}\"\nallowed_prefixes = [\"2001:db8:8000::/40\"]\n[routes.interfaces]\n\"ge-0/0/0\" = \"cust0\"\n\"ge-0/0/1\" = \"cust1\"\n",
        dir.join("state")
    );
    let p = dir.join(format!("{table}.toml"));
    std::fs::write(&p, t).unwrap();
    p
}

#[test]
fn a_table_named_in_rt_tables_d_holds_the_routes() {
    let Some(ns) = route_lab::client_links("pdr-tables", 2) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let iproute2 = dir.path().join("iproute2");
    std::fs::create_dir_all(iproute2.join("rt_tables.d")).unwrap();
    std::fs::write(iproute2.join("rt_tables"), "254\tmain\n").unwrap();
    std::fs::write(
        iproute2.join("rt_tables.d/bng.conf"),
        "# subscriber routes\n100 subscribers\n",
    )
    .unwrap();
    let file = jsonl_file(dir.path(), "b.jsonl", &numbered_range(0..4));
    let _s = lab_server_in(&ns, 5901, &file, &[]);
    let cfg = config(dir.path(), 5901, "subscribers");
    let c = cfg.to_str().unwrap();
    let out = pdrestore_in(&ns, &["check-config", "-c", c])
        .env("PDRESTORE_IPROUTE2_DIRS", &iproute2)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("table = 100"), "the effective number: {text}");
    let out = pdrestore_in(&ns, &["recover", "--json", "-c", c])
        .env("PDRESTORE_IPROUTE2_DIRS", &iproute2)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let routes = table_lines(&ns, 100);
    assert_eq!(routes.len(), 4, "{routes:?}");
    assert!(routes.iter().all(|r| r.contains("proto")), "{routes:?}");
    // A name nobody defines: refused where it is, naming where it looked.
    let bad = config(dir.path(), 5901, "vrf-red");
    let out = pdrestore_in(&ns, &["check-config", "-c", bad.to_str().unwrap()])
        .env("PDRESTORE_IPROUTE2_DIRS", &iproute2)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(
        err.contains("unknown table \"vrf-red\"") && err.contains(&*iproute2.to_string_lossy()),
        "{err}"
    );
}
