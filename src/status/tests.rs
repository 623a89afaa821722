//! The join, on made-up routes, ledgers and live views.

use super::*;
use crate::follow::live::{LiveInterface, LiveResync};
use crate::proto::Duid;
use crate::recovery::ledger::{Lease, LedgerHeader, LedgerServer, Record, RunKind};
use std::sync::Arc;

const NOW: u64 = 1_800_000_000;
const WRITTEN: u64 = NOW - 600;

fn kroute(prefix: &str, via: &str, dev: &str) -> TableRoute {
    TableRoute {
        prefix: prefix.parse().unwrap(),
        table: 254,
        protocol: 57,
        metric: 1024,
        kind: 1,
        gateway: Some(via.parse().unwrap()),
        multipath: false,
        ifindex: 3,
        interface: Arc::from(dev),
        expires: Some(3000),
    }
}

fn lease(prefix: &str, client: &str, server: u16, expires: Option<u64>) -> Record {
    Record {
        prefix: prefix.parse().unwrap(),
        lease: Some(Lease {
            client: client.parse::<Duid>().unwrap(),
            server,
            last_transaction: Some(WRITTEN - 30),
            expires,
        }),
    }
}

fn ledger(records: Vec<Record>) -> Ledger {
    Ledger {
        header: LedgerHeader {
            written_at: WRITTEN,
            run: RunKind::Recover,
            table: 254,
            protocol: 57,
            servers: vec![
                LedgerServer {
                    address: "[2001:db8::a]:547".into(),
                    group: "a".into(),
                    duid: Some("000300010a".into()),
                },
                LedgerServer {
                    address: "[2001:db8::b]:547".into(),
                    group: "b".into(),
                    duid: Some("000300010b".into()),
                },
            ],
        },
        records,
    }
}

fn live_route(prefix: &str, client: Option<&str>, seen: Option<u64>, state: &str) -> LiveRoute {
    LiveRoute {
        prefix: prefix.parse().unwrap(),
        via: "fe80::9".parse().unwrap(),
        dev: "cust1".into(),
        expires_at: Some(NOW + 7200),
        state: state.into(),
        snooped: seen.is_some(),
        seen_at: seen,
        client: client.map(str::to_string),
        server: seen.map(|_| "000300010b".to_string()),
    }
}

fn live_state() -> LiveState {
    LiveState {
        pid: 42,
        started_at: NOW - 3600,
        ready: true,
        resyncing: false,
        followed: 3,
        foreign: 0,
        pending_releases: 0,
        last_resync: Some(LiveResync {
            at: WRITTEN,
            outcome: "complete".into(),
        }),
        next_resync_at: Some(NOW + 1800),
        interfaces: vec![LiveInterface {
            name: "cust1".into(),
            index: 3,
            up: true,
        }],
        packets: 10,
        malformed: 0,
        counters: Default::default(),
        listed: None,
    }
}

fn kernel() -> Vec<TableRoute> {
    vec![
        kroute("2001:db8:100::/56", "fe80::1", "cust0"),
        kroute("2001:db8:200::/56", "fe80::2", "cust1"),
        kroute("2001:db8:300::/56", "fe80::3", "cust1"),
        kroute("2001:db8:400::/56", "fe80::4", "cust0"),
    ]
}

#[test]
fn without_follow_the_ledger_names_each_lease_and_what_is_missing() {
    let l = ledger(vec![
        lease("2001:db8:100::/56", "0001aa", 0, Some(NOW + 100)),
        lease("2001:db8:200::/56", "0001bb", 1, None),
        Record {
            prefix: "2001:db8:300::/56".parse().unwrap(),
            lease: None,
        },
        // Current, and not in the kernel: missing.
        lease("2001:db8:500::/56", "0001ee", 0, Some(NOW + 100)),
        // Over: not missing.
        lease("2001:db8:600::/56", "0001ff", 0, Some(NOW - 1)),
    ]);
    let s = Status::build(
        254,
        57,
        kernel(),
        Sources {
            ledger: Some(Ok(l)),
            ..Default::default()
        },
        Filters::default(),
        NOW,
    );
    assert_eq!(s.total, 4);
    let r = &s.routes;
    assert_eq!(
        (
            r[0].learned.as_str(),
            r[0].client.as_deref(),
            r[0].server.as_deref()
        ),
        ("recover", Some("0001aa"), Some("[2001:db8::a]:547"))
    );
    assert_eq!(r[0].lease_expires_at, Some(NOW + 100));
    assert_eq!(r[0].learned_at, Some(WRITTEN));
    assert_eq!(r[0].client_last_transaction, Some(WRITTEN - 30));
    assert_eq!(r[1].server.as_deref(), Some("[2001:db8::b]:547"));
    assert_eq!(
        (r[2].learned.as_str(), r[2].client.as_ref()),
        ("kept", None)
    );
    assert_eq!(
        (r[3].learned.as_str(), r[3].client.as_ref()),
        ("unknown", None)
    );
    assert_eq!(s.missing.len(), 1);
    assert_eq!(s.missing[0].prefix, "2001:db8:500::/56");
    assert_eq!(s.missing[0].reason, "not-in-kernel");
    assert_eq!(s.by_interface["cust0"], 2);
    assert_eq!(s.by_server["unknown"], 2);
    assert_eq!(s.by_learned["recover"], 2);
    assert!(!s.follow.running);
    let text = s.to_text(50);
    assert!(
        text.contains("routes: 4 of ours in table 254 (protocol 57)"),
        "{text}"
    );
    assert!(
        text.contains("2001:db8:100::/56 via fe80::1 dev cust0 metric 1024 expires 3000s: recover"),
        "{text}"
    );
    assert!(
        text.contains("client 0001aa, server [2001:db8::a]:547, lease ends in 1m 40s"),
        "{text}"
    );
    assert!(text.contains("follow: not running"), "{text}");
    assert!(text.contains("missing: 1 leases"), "{text}");
    assert!(text.contains("last run: none recorded"), "{text}");
    // The limit cuts the list and says so.
    let text = s.to_text(1);
    assert!(text.contains("... 3 more routes"), "{text}");
}

#[test]
fn follow_knows_what_it_snooped_after_the_ledger() {
    let l = ledger(vec![
        lease("2001:db8:100::/56", "0001aa", 0, Some(NOW + 100)),
        lease("2001:db8:200::/56", "0001bb", 1, Some(NOW + 100)),
    ]);
    let live = vec![
        // Renewed by another client since the ledger: snooped.
        live_route(
            "2001:db8:200::/56",
            Some("0001cc"),
            Some(NOW - 5),
            "installed",
        ),
        // Snooped before the ledger was written: the ledger's, with
        // follow's end of the lease.
        live_route(
            "2001:db8:100::/56",
            Some("0001aa"),
            Some(WRITTEN - 100),
            "installed",
        ),
        // New since, no DUID known.
        live_route("2001:db8:300::/56", None, Some(NOW - 2), "installed"),
        // Dropped with its link.
        live_route(
            "2001:db8:700::/56",
            Some("0001dd"),
            Some(NOW - 9),
            "link-down",
        ),
    ];
    let s = Status::build(
        254,
        57,
        kernel(),
        Sources {
            ledger: Some(Ok(l)),
            live: Some(Ok((live_state(), live))),
            ..Default::default()
        },
        Filters::default(),
        NOW,
    );
    let r = &s.routes;
    assert_eq!(r[0].learned, "recover");
    assert_eq!(r[0].lease_expires_at, Some(NOW + 7200));
    assert_eq!(
        (
            r[1].learned.as_str(),
            r[1].client.as_deref(),
            r[1].learned_at
        ),
        ("snooped", Some("0001cc"), Some(NOW - 5))
    );
    // The snooped server's DUID is named by the address the ledger gives it.
    assert_eq!(r[1].server.as_deref(), Some("[2001:db8::b]:547"));
    assert_eq!(
        (r[2].learned.as_str(), r[2].client.as_ref()),
        ("snooped", None)
    );
    assert_eq!(s.missing.len(), 1);
    assert_eq!(s.missing[0].reason, "link-down");
    assert!(s.follow.running);
    let text = s.to_text(0);
    assert!(text.contains("follow: running (pid 42)"), "{text}");
    assert!(text.contains("next in 30m"), "{text}");
    assert!(
        text.contains("2001:db8:700::/56 via fe80::9 dev cust1 client 0001dd (link-down)"),
        "{text}"
    );
}

#[test]
fn the_filters_narrow_routes_missing_and_counts() {
    let l = ledger(vec![
        lease("2001:db8:100::/56", "0001aa", 0, Some(NOW + 100)),
        lease("2001:db8:200::/56", "0001bb", 1, Some(NOW + 100)),
        lease("2001:db8:500::/56", "0001bb", 0, Some(NOW + 100)),
    ]);
    let with = |f: Filters| {
        Status::build(
            254,
            57,
            kernel(),
            Sources {
                ledger: Some(Ok(l.clone())),
                ..Default::default()
            },
            f,
            NOW,
        )
    };
    let s = with(Filters {
        client: normalize_duid("00:01:BB"),
        ..Default::default()
    });
    assert_eq!(s.total, 1);
    assert_eq!(s.routes[0].prefix, "2001:db8:200::/56");
    assert_eq!(s.missing.len(), 1);
    let s = with(Filters {
        interface: Some("cust0".into()),
        ..Default::default()
    });
    assert_eq!(s.total, 2);
    assert!(
        s.missing.is_empty(),
        "no interface known for a ledger's missing lease"
    );
    let s = with(Filters {
        prefix: Some("2001:db8::/32".parse().unwrap()),
        ..Default::default()
    });
    assert_eq!(s.total, 4);
    let s = with(Filters {
        prefix: Some("2001:db8:100::/48".parse().unwrap()),
        ..Default::default()
    });
    assert_eq!(s.total, 1);
    assert!(s.to_text(50).contains("matching the filters"));
    assert_eq!(normalize_duid("0001XZ"), None);
    assert_eq!(normalize_duid("00-01-aB"), Some("0001ab".into()));
}

#[test]
fn an_unreadable_source_is_a_problem_not_a_failure() {
    let s = Status::build(
        254,
        57,
        kernel(),
        Sources {
            ledger: Some(Err(
                "routes.ledger: not a pdrestore ledger at octet 0".into()
            )),
            live: Some(Err("follow.sock: Permission denied (os error 13)".into())),
            last_run: Some(Err("last-run.json: Permission denied (os error 13)".into())),
        },
        Filters::default(),
        NOW,
    );
    assert_eq!(s.total, 4);
    assert_eq!(s.problems.len(), 3);
    let text = s.to_text(50);
    assert!(
        text.contains("problem: ledger: routes.ledger: not a pdrestore ledger at octet 0"),
        "{text}"
    );
    assert!(
        text.contains("follow: could not be asked (follow.sock: Permission denied (os error 13))"),
        "{text}"
    );
    assert!(
        text.contains("ledger: not readable (see problem: below)"),
        "{text}"
    );
    assert!(
        text.contains("last run: not readable (see problem: below)"),
        "{text}"
    );
    assert!(
        text.contains("hint: the state directory and follow's socket are root's"),
        "{text}"
    );
    assert!(!s.follow.running);
}
