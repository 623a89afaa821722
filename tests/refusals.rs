//! Issue 21, a server's refusal in its own words: the real binary
//! (`pdrestore recover`, `pdrestore query`) against real lab servers
//! (`pdrestore lab-server`) inside a private network namespace, one server
//! per kind of refusal, each its own group:
//!
//! - NotAllowed (10) in the LEASEQUERY-REPLY: the server allows only
//!   QUERY_BY_LINK_ADDRESS (RFC 5007 s.4.1.3, 4.3.3);
//! - UseMulticast (5) in a plain REPLY (7), a message RFC 5460 s.4 does
//!   not allow on the connection (a listener without Bulk Leasequery, as
//!   dhcpkit's);
//! - UnknownQueryType (7) and NotConfigured (9) in the REPLY;
//! - QueryTerminated (11) in the LEASEQUERY-DONE after some data (RFC
//!   5460 s.5.5);
//! - no answer at all (a server that rejects the query type silently,
//!   dhcpkit 1.0.7 and QUERY_BY_RELAY_ID), bounded by
//!   `first_answer_timeout`.
//!
//! Each appears with its status and text in the text summary, the JSON
//! summary and the metrics file; MalformedQuery (8) makes `query` exit 70.
//! Needs root (`ip netns`): skipped with a `SKIPPED` line otherwise, a
//! failure under CI (tests/support).

mod route_lab;
mod support;
use route_lab::{jsonl_file, lab_server_in, numbered_range, pdrestore_in, RELAY};
use std::path::Path;

/// (port, lab-server arguments, status name, the server's text).
const KINDS: [(u16, &[&str], &str, &str); 6] = [
    (
        5711,
        &["--allow-query-type", "2"],
        "NotAllowed",
        "query-type not allowed",
    ),
    (
        5712,
        &["--fault", "plain-reply=5"],
        "UseMulticast",
        "lab server fault: a plain DHCPv6 listener, no Bulk Leasequery here (UseMulticast(5))",
    ),
    (
        5713,
        &["--fault", "done-error=0:7"],
        "UnknownQueryType",
        "error injected by the lab server: UnknownQueryType(7)",
    ),
    (
        5714,
        &["--fault", "done-error=0:9"],
        "NotConfigured",
        "error injected by the lab server: NotConfigured(9)",
    ),
    (
        5715,
        &["--fault", "terminate-at=3"],
        "QueryTerminated",
        "error injected by the lab server: QueryTerminated(11)",
    ),
    (5716, &["--fault", "stall-after=0"], "no-answer", ""),
];

fn config(dir: &Path) -> std::path::PathBuf {
    let mut t = format!(
        "relay_duid = \"{RELAY}\"\nstate_directory = {:?}\nmetrics_file = {:?}\nfirst_answer_timeout = \"1s\"\nretries = 0\nstartup_deadline = \"0s\"\n",
        dir.join("state"),
        dir.join("pdrestore.prom")
    );
    for (port, ..) in KINDS {
        t.push_str(&format!("[[server]]\naddress = \"::1\"\nport = {port}\n"));
    }
    t.push_str("[routes]\nallowed_prefixes = [\"2001:db8:8000::/40\"]\n[routes.interfaces]\n\"ge-0/0/0\" = \"cust0\"\n\"ge-0/0/1\" = \"cust1\"\n");
    let p = dir.join("pdrestore.toml");
    std::fs::write(&p, t).unwrap();
    p
}

#[test]
fn each_refusal_is_reported_with_its_status_and_text() {
    let Some(ns) = route_lab::client_links("pdr-refuse", 2) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = jsonl_file(dir.path(), "b.jsonl", &numbered_range(0..10));
    let _servers: Vec<_> = KINDS
        .iter()
        .map(|(port, extra, ..)| lab_server_in(&ns, *port, &file, extra))
        .collect();
    let cfg = config(dir.path());
    let out = pdrestore_in(&ns, &["recover", "--json", "-c", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    let j: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("no JSON ({e}): {log}"));
    // QueryTerminated came after data: those routes are in, the rest is
    // refused: partial.
    assert_eq!(out.status.code(), Some(1), "{j}\n{log}");
    for (i, (port, _, name, text)) in KINDS.iter().enumerate() {
        let s = &j["servers"][i];
        assert_eq!(s["server"], format!("[::1]:{port}"));
        assert_eq!(s["complete"], false, "{s}");
        let q = &s["queries"][0];
        assert_eq!(q["query_type"], "relay-id");
        assert!(q["hint"].is_string(), "{name}: a hint: {q}");
        if *name == "no-answer" {
            assert_eq!(q["outcome_code"], "no-answer", "{q}");
            assert!(q["server_status"].is_null());
            assert_eq!(s["status"], "no answer to the query");
            continue;
        }
        let st = &q["server_status"];
        assert_eq!(st["name"], *name, "{q}");
        assert_eq!(st["text"], *text, "{q}");
        let message = match *name {
            "UseMulticast" => "REPLY",
            "QueryTerminated" => "LEASEQUERY-DONE",
            _ => "LEASEQUERY-REPLY",
        };
        assert_eq!(st["message"], message, "{q}");
        assert!(s["status"].as_str().unwrap().contains(text), "{s}");
    }
    assert_eq!(
        j["servers"][4]["bindings"], 3,
        "data before QueryTerminated"
    );

    // The text names each status with its text, and the hints.
    let out = pdrestore_in(&ns, &["recover", "-c", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for (_, _, name, words) in KINDS {
        assert!(text.contains(name) || name == "no-answer", "{name}: {text}");
        assert!(text.contains(words), "{words}: {text}");
    }
    assert!(text.contains("no answer to the query"), "{text}");
    assert!(
        text.contains("Bulk Leasequery may not be enabled on this listener"),
        "{text}"
    );

    // The metrics file: one series per refusal, with its text.
    let prom = std::fs::read_to_string(dir.path().join("pdrestore.prom")).unwrap();
    for (port, _, name, words) in KINDS {
        let series = format!(
            "pdrestore_server_queries_refused{{server=\"[::1]:{port}\",query_type=\"relay-id\",status=\"{name}\",text=\"{words}\"}} 1"
        );
        assert!(prom.contains(&series), "{series} not in\n{prom}");
    }

    // `pdrestore query` says it too, with the hint, and exits 1.
    let out = pdrestore_in(
        &ns,
        &["query", "--server", "[::1]:5711", "--relay-id", RELAY],
    )
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("NotAllowed(10) \"query-type not allowed\"")
            && err.contains("hint: the server does not allow this query"),
        "{err}"
    );
}

/// MalformedQuery calls our own query broken: `query` exits 70 and says
/// so, the server's text shown.
#[test]
fn malformed_query_is_shown_with_its_text_and_called_our_bug() {
    let Some(ns) = route_lab::client_links("pdr-refuse-mq", 1) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = jsonl_file(dir.path(), "b.jsonl", &numbered_range(0..2));
    let _s = lab_server_in(&ns, 5721, &file, &["--fault", "done-error=0:8"]);
    let out = pdrestore_in(
        &ns,
        &["query", "--server", "[::1]:5721", "--relay-id", RELAY],
    )
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(70), "{err}");
    assert!(
        err.contains("MalformedQuery(8) \"error injected by the lab server: MalformedQuery(8)\""),
        "{err}"
    );
    assert!(err.contains("a server called our query malformed"), "{err}");
}
