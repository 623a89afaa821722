//! The outcome policy and the renderings, on made-up reports.

use super::*;
use crate::agent::Summary;
use crate::recovery::prune::{PruneRefusal, PruneReport};
use crate::recovery::rejection::{Rejected, Rejection};
use crate::requestor::fanout::QueryReport;
use crate::requestor::{Disposition, Outcome as QueryOutcome, PartialReason};
use crate::routes::{RouteError, RouteOp};

const SERVER_ID: &str = "000200000009aa";

fn server(i: usize, outcome: QueryOutcome, bindings: u64) -> ServerPart {
    let addr: SocketAddr = format!("[2001:db8::{}]:547", i + 1).parse().unwrap();
    let disposition = if outcome.is_complete() {
        Disposition::Done
    } else {
        Disposition::Final
    };
    ServerPart {
        addr,
        group: addr.to_string(),
        stopped: false,
        report: Some(ServerReport {
            server: addr,
            server_index: ServerIndex::new(i).unwrap(),
            server_id: Some(format!("{SERVER_ID}{i:02x}").parse().unwrap()),
            queries: vec![QueryReport {
                index: 0,
                outcome,
                disposition,
                attempts: 1,
                bindings,
                stats: None,
            }],
            connections: 1,
            duration: Duration::from_millis(40),
        }),
        delivered: bindings,
    }
}

/// Two servers that answered whole, 10 bindings, 10 routes planned and added.
fn report() -> Report {
    let mut install = InstallReport::default();
    install.table.planned = 10;
    install.table.added = 10;
    Report {
        query: QueryMode::RelayId,
        relay: "0003000102005e000002".parse().unwrap(),
        requestor: "0003000102005e000002".parse().unwrap(),
        links: vec![Ipv6Addr::UNSPECIFIED],
        dry_run: false,
        interrupted: false,
        servers: vec![
            server(0, QueryOutcome::Complete, 6),
            server(1, QueryOutcome::Complete, 4),
        ],
        bindings: 10,
        install,
        missing_interfaces: Vec::new(),
        notes: Vec::new(),
        first_binding: Some(Duration::from_millis(3)),
        duration: Duration::from_millis(50),
        listener_drops: Vec::new(),
    }
}

fn failed_route() -> RouteError {
    RouteError::from_errno(RouteOp::Add, "2001:db8:8000:100::/56".parse().unwrap(), 19)
}

fn refused(reason: Rejection) -> Rejected {
    Rejected {
        prefix: "2001:db8:8000:200::/56".parse().unwrap(),
        client: "01".parse().unwrap(),
        server: ServerIndex::new(0).unwrap(),
        reason,
    }
}

#[test]
fn complete_when_every_server_answered_and_every_route_is_in_place() {
    let r = report();
    assert_eq!((r.outcome(), r.exit_code()), (Outcome::Complete, exit::OK));
    let s = Summary::of(&r);
    assert_eq!((s.outcome.as_str(), s.exit_code), ("complete", 0));
    assert_eq!(r.answered().len(), 2);
}

#[test]
fn a_failed_server_makes_it_partial_and_is_not_among_the_answered() {
    let mut r = report();
    r.servers[1] = server(1, QueryOutcome::Partial(PartialReason::Closed), 4);
    assert_eq!(
        (r.outcome(), r.exit_code()),
        (Outcome::Partial, exit::PARTIAL)
    );
    let answered = r.answered();
    assert_eq!(answered.len(), 1);
    assert_eq!(answered[0].to_hex(), format!("{SERVER_ID}00"));
    // Nothing in place: failed.
    r.install.table.planned = 0;
    r.install.table.added = 0;
    assert_eq!(
        (r.outcome(), r.exit_code()),
        (Outcome::Failed, exit::NOTHING)
    );
}

#[test]
fn a_refused_route_or_a_missing_interface_is_not_complete() {
    let mut r = report();
    r.install.table.failed.push(failed_route());
    assert_eq!(r.outcome(), Outcome::Partial);
    // Every planned route refused: nothing in place.
    r.install.table.planned = 1;
    assert_eq!(r.outcome(), Outcome::Failed);
    let mut r = report();
    r.install
        .table
        .rejected
        .push(refused(Rejection::NoInterface {
            interface_id: Some("ge-0/0/9".into()),
            link_address: Ipv6Addr::UNSPECIFIED,
        }));
    assert_eq!(r.outcome(), Outcome::Partial);
    // Another relay's bindings (link queries) are dropped, not a failure.
    let mut r = report();
    r.install
        .table
        .rejected
        .push(refused(Rejection::OtherRelay {
            link_address: "2001:db8:2::7".parse().unwrap(),
        }));
    assert_eq!(r.outcome(), Outcome::Complete);
    let s = Summary::of(&r);
    assert!(s.routes.rejected.is_empty());
    assert_eq!(s.routes.dropped.get("other-relay"), Some(&1));
}

#[test]
fn a_prune_the_rail_refused_is_partial() {
    let mut r = report();
    r.install.table.prune = PruneReport {
        held_back: Vec::new(),
        state: PruneState::Refused(PruneRefusal::OverLimit),
        ours: 20,
        candidates: 9,
        limit: None,
    };
    assert_eq!(r.outcome(), Outcome::Partial);
    let s = Summary::of(&r);
    assert_eq!(
        (s.routes.prune.state, s.routes.prune.reason_code),
        ("refused", Some("over-limit"))
    );
    assert!(s
        .to_text()
        .contains("prune refused: it would remove 9 of our 20 routes"));
}

#[test]
fn an_empty_relay_id_answer_is_explained_and_not_complete() {
    let mut r = report();
    r.bindings = 0;
    r.install.table.planned = 0;
    r.install.table.added = 0;
    r.explain();
    assert_eq!(r.notes, vec![Note::NoRelayIdBindings]);
    assert!(r.empty_answer());
    assert_eq!(r.outcome(), Outcome::Partial);
    let s = Summary::of(&r);
    assert!(s.empty_answer);
    assert!(
        s.notes[0].contains("query = \"link-address\""),
        "{}",
        s.notes[0]
    );
    // By link-address, with no link to ask about.
    let mut r = report();
    r.query = QueryMode::LinkAddress;
    r.links.clear();
    r.explain();
    assert_eq!(r.notes, vec![Note::NoLinks]);
}

#[test]
fn an_interrupted_run_names_the_servers_it_did_not_hear_from() {
    let mut r = report();
    r.interrupted = true;
    r.servers[1].report = None;
    r.servers[1].delivered = 3;
    assert_eq!(r.outcome(), Outcome::Partial);
    let s = Summary::of(&r);
    let v = &s.servers[1];
    assert_eq!(
        (v.status.as_str(), v.bindings, v.complete),
        ("interrupted", 3, false)
    );
    assert_eq!(v.server, "[2001:db8::2]:547");
    assert_eq!(v.duration_ms, 50);
}

#[test]
fn the_text_and_the_json_agree() {
    let mut r = report();
    r.notes.push(Note::TemporaryRelayDuid {
        state_directory: "/var/lib/pdrestore".into(),
    });
    let s = Summary::of(&r);
    let json: serde_json::Value = serde_json::to_value(&s).unwrap();
    assert_eq!(json["outcome"], "complete");
    assert_eq!(json["routes"]["added"], 10);
    assert_eq!(json["servers"][0]["status_code"], "complete");
    let text = r.to_text();
    assert!(
        text.starts_with("pdrestore recover: relay-id 0003000102005e000002, complete in 0.050s"),
        "{text}"
    );
    assert!(
        text.contains("routes: 10 planned, 10 added, 0 replaced"),
        "{text}"
    );
    assert!(
        text.contains("note: no relay DUID is configured or stored in /var/lib/pdrestore"),
        "{text}"
    );
}

/// A routing daemon's socket that lost notifications: a warning with what
/// to do, listed in the JSON; the run is still complete (our routes are in).
#[test]
fn a_listener_that_dropped_notifications_is_a_warning_not_a_failure() {
    let mut r = report();
    assert!(Summary::of(&r).netlink_listener_drops.is_empty());
    r.listener_drops = vec![crate::routes::listeners::ListenerDrops {
        inode: 686583,
        portid: 20161,
        process: Some("zebra (pid 20161)".into()),
        drops: 1260,
    }];
    assert_eq!(r.outcome(), Outcome::Complete);
    let s = Summary::of(&r);
    assert_eq!(s.netlink_listener_drops.len(), 1);
    assert_eq!(s.warnings.len(), 1);
    assert!(
        s.warnings[0].contains("zebra (pid 20161)"),
        "{:?}",
        s.warnings
    );
    assert!(s.warnings[0].contains("-s 90000000"), "{:?}", s.warnings);
    let j = serde_json::to_value(&s).unwrap();
    assert_eq!(j["netlink_listener_drops"][0]["drops"], 1260);
    assert_eq!(
        j["netlink_listener_drops"][0]["process"],
        "zebra (pid 20161)"
    );
    assert!(s.to_text().contains("lost kernel route notifications"));
}
