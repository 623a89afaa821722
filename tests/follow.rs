//! `pdrestore follow` end to end in network namespaces: the real binary in
//! a "router" namespace with a veth pair per client link to "client"
//! namespaces, a lab server on the router's loopback for the start-up
//! recovery and the resyncs, DHCPv6 frames sent with real UDP sockets
//! (from the router side to a client's port 546: they leave the router;
//! from a client to the relay's port 547: they arrive), and the kernel's
//! table read with `ip -6 route`.
//!
//! Needs root (`ip netns`, AF_PACKET) and iproute2: skipped with a
//! `SKIPPED` line otherwise, a failure under CI (tests/support).
//! Nothing touches the host's interfaces or routes.

mod follow_lab;
mod prom;
mod support;
use follow_lab::*;
use pdrestore::proto::MessageType;
use std::sync::Mutex;
use std::time::Duration;

/// One lab at a time: the timing assertions should not share two cores
/// with another follow process.
static SERIAL: Mutex<()> = Mutex::new(());

/// Root (namespaces, AF_PACKET) and iproute2; skipped visibly otherwise.
#[track_caller]
fn root() -> bool {
    support::need_root("network namespaces and AF_PACKET sockets")
        && support::need_tool("ip", "iproute2")
}

const SECOND: Duration = Duration::from_secs(1);

/// A REPLY with a new IA_PD installs its route within 100 ms; a renewal
/// moves the kernel's expiry; a valid lifetime of 0 removes it; SIGTERM
/// ends cleanly and leaves the routes.
#[test]
fn a_reply_installs_a_renewal_refreshes_valid_zero_removes_sigterm_leaves() {
    if !root() {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lab = lab("pdr-fol1", 1);
    let _server = lab_server(&lab, 5701, &[binding(0, 0)]);
    let cfg = config(&lab, &[5701], "");
    let mut f = Follow::start(&lab, &cfg, &[], "info");
    // The start-up recovery ran.
    assert_eq!(
        ours(&lab.router),
        vec![format!("{} via fe80::2 dev cust0", prefix_n(0))]
    );
    let p = prefix_n(1);
    to_client(&lab, 0, "fe80::2", 546, vec![reply(0x100, 2, &p, 600)]);
    let took = wait_route(&lab.router, &p, SECOND, |l| l.is_some())
        .unwrap_or_else(|| panic!("no route; log:\n{}", f.log_text()));
    let line = route_line(&lab.router, &p).unwrap();
    assert!(line.contains("via fe80::2 dev cust0 proto 57"), "{line}");
    assert!(took < Duration::from_millis(100), "route after {took:?}");
    let e = expires(&line).unwrap();
    assert!((590..=600).contains(&e), "{line}");
    // A renewal: the expiry moves.
    to_client(&lab, 0, "fe80::2", 546, vec![reply(0x101, 2, &p, 7200)]);
    let t = wait_route(&lab.router, &p, SECOND, |l| {
        l.and_then(expires).is_some_and(|e| e > 7000)
    });
    assert!(
        t.is_some(),
        "not refreshed: {:?}",
        route_line(&lab.router, &p)
    );
    // Valid lifetime 0: removed.
    to_client(&lab, 0, "fe80::2", 546, vec![reply(0x102, 2, &p, 0)]);
    assert!(wait_route(&lab.router, &p, SECOND, |l| l.is_none()).is_some());
    let log = f.log_text();
    assert!(
        log.contains("why=\"reply\"") || log.contains("why=reply"),
        "{log}"
    );
    assert!(
        log.contains("renewal") && log.contains("valid-lifetime-0"),
        "{log}"
    );
    // SIGTERM: exit 0, the start-up route is still there.
    let before = ours(&lab.router);
    let status = f.stop();
    assert!(status.success(), "{status:?}; log:\n{}", f.log_text());
    assert_eq!(ours(&lab.router), before);
    assert!(f.log_text().contains("routes left in place"));
}

/// RELEASE from the client, then the server's REPLY with status Success for
/// that transaction-id: the route goes. A REPLY for another transaction
/// does not take it.
#[test]
fn release_then_success_reply_removes_the_route() {
    if !root() {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lab = lab("pdr-fol2", 1);
    let _server = lab_server(&lab, 5702, &[]);
    let cfg = config(&lab, &[5702], "");
    let f = Follow::start(&lab, &cfg, &[], "info");
    let p = prefix_n(5);
    to_client(&lab, 0, "fe80::2", 546, vec![reply(0x200, 2, &p, 3600)]);
    assert!(wait_route(&lab.router, &p, SECOND, |l| l.is_some()).is_some());
    to_relay(&lab, 0, vec![release(0x201, 2, &p)]);
    // Another transaction's REPLY changes nothing.
    to_client(&lab, 0, "fe80::2", 546, vec![release_reply(0x202, 2)]);
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        route_line(&lab.router, &p).is_some(),
        "removed by the wrong REPLY"
    );
    to_client(&lab, 0, "fe80::2", 546, vec![release_reply(0x201, 2)]);
    assert!(
        wait_route(&lab.router, &p, SECOND, |l| l.is_none()).is_some(),
        "not released; log:\n{}",
        f.log_text()
    );
    assert!(f.log_text().contains("why=\"release\"") || f.log_text().contains("why=release"));
}

/// A RELAY-REPL to a lightweight relay (RFC 6221) on the link: the route
/// goes to the client, the inner peer-address, not to the relay.
#[test]
fn a_relay_reply_to_an_ldra_routes_via_the_inner_peer_address() {
    if !root() {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lab = lab("pdr-fol3", 1);
    let _server = lab_server(&lab, 5703, &[]);
    let cfg = config(&lab, &[5703], "");
    let f = Follow::start(&lab, &cfg, &[], "info");
    let p = prefix_n(7);
    let rr = relay_repl(&reply(0x300, 2, &p, 3600), "fe80::2");
    to_client(&lab, 0, "fe80::3", 547, vec![rr]);
    assert!(
        wait_route(&lab.router, &p, SECOND, |l| l.is_some()).is_some(),
        "log:\n{}",
        f.log_text()
    );
    let line = route_line(&lab.router, &p).unwrap();
    assert!(line.contains("via fe80::2 dev cust0"), "{line}");
}

/// A REPLY (and a RELAY-REPL) arriving from the client side is a forgery:
/// nothing changes, and STATUS counts it. A prefix outside the pools is
/// refused with its reason code; a foreign route on a delegated prefix is
/// left in place.
#[test]
fn forgeries_refusals_and_foreign_routes_change_nothing() {
    if !root() {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lab = lab("pdr-fol4", 1);
    let _server = lab_server(&lab, 5704, &[]);
    let cfg = config(&lab, &[5704], "");
    let mut f = Follow::start(&lab, &cfg, &[], "info");
    let p = prefix_n(9);
    to_relay(&lab, 0, vec![reply(0x400, 2, &p, 3600)]);
    to_relay(
        &lab,
        0,
        vec![relay_repl(&reply(0x401, 2, &p, 3600), "fe80::2")],
    );
    // Outside the pools.
    to_client(
        &lab,
        0,
        "fe80::2",
        546,
        vec![reply(0x402, 2, "2001:db8:9900::/56", 3600)],
    );
    // A static route holds prefix 10.
    let q = prefix_n(10);
    lab.router
        .ip([
            "-6", "route", "add", &q, "via", "fe80::2", "dev", "cust0", "proto", "static",
        ])
        .unwrap();
    to_client(&lab, 0, "fe80::2", 546, vec![reply(0x403, 2, &q, 3600)]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(route_line(&lab.router, &p).is_none());
    assert!(route_line(&lab.router, "2001:db8:9900::/56").is_none());
    let line = route_line(&lab.router, &q).unwrap();
    assert!(line.contains("proto static"), "{line}");
    let log = f.log_text();
    assert!(
        log.contains("reason=\"outside-pools\"") || log.contains("reason=outside-pools"),
        "{log}"
    );
    assert!(
        log.contains("reason=\"forged\"") || log.contains("reason=forged"),
        "{log}"
    );
    assert!(log.contains("foreign-route"), "{log}");
    // STATUS says so (it is sent every 5 s).
    let seen = f.wait_notify(
        |m| m.contains("2 forged, 1 refused, 1 foreign"),
        Duration::from_secs(8),
    );
    assert!(seen, "statuses: {:?}", f.statuses);
    let _ = MessageType::Reply;
}

/// An interface going down takes our routes with it; when it comes back
/// up, they are back. A route of ours deleted by hand is not fought.
#[test]
fn link_down_then_up_restores_routes_a_manual_delete_is_not_fought() {
    if !root() {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lab = lab("pdr-fol5", 2);
    let _server = lab_server(&lab, 5705, &[binding(0, 0), binding(1, 1)]);
    let cfg = config(&lab, &[5705], "");
    let f = Follow::start(&lab, &cfg, &[], "info");
    let p = prefix_n(20);
    to_client(&lab, 0, "fe80::2", 546, vec![reply(0x500, 2, &p, 3600)]);
    assert!(wait_route(&lab.router, &p, SECOND, |l| l.is_some()).is_some());
    let before = ours(&lab.router);
    assert_eq!(before.len(), 3, "{before:?}");
    lab.router.ip(["link", "set", "cust0", "down"]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        ours(&lab.router).len(),
        1,
        "the kernel drops them with the link"
    );
    lab.router.ip(["link", "set", "cust0", "up"]).unwrap();
    let back = wait_route(&lab.router, &p, 2 * SECOND, |l| l.is_some());
    assert!(back.is_some(), "not restored; log:\n{}", f.log_text());
    assert!(wait_route(&lab.router, &prefix_n(0), SECOND, |l| l.is_some()).is_some());
    assert_eq!(ours(&lab.router), before);
    assert!(f.log_text().contains("link-up"));
    // By hand (well after the link's flap, so it cannot be taken for its
    // effect): deleted, logged, not put back.
    std::thread::sleep(Duration::from_millis(800));
    lab.router.ip(["-6", "route", "del", &p]).unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    assert!(route_line(&lab.router, &p).is_none(), "fought the operator");
    assert!(f.log_text().contains("manual-delete"), "{}", f.log_text());
}

/// SIGHUP runs a resync against the lab server and converges on its
/// answer: a binding gone is pruned, a new one installed; snooping goes on
/// after it.
#[test]
fn sighup_resyncs_and_converges() {
    if !root() {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lab = lab("pdr-fol6", 1);
    let server = lab_server(&lab, 5706, &[binding(0, 0), binding(1, 0), binding(2, 0)]);
    // A floor of 1 s (5 min by default): the SIGHUP right after the start-up
    // recovery is honoured within a second.
    let cfg = config(&lab, &[5706], "[follow]\nmin_resync_interval = \"1s\"\n");
    let mut f = Follow::start(&lab, &cfg, &[], "info");
    assert_eq!(ours(&lab.router).len(), 3);
    drop(server);
    let _server = lab_server(&lab, 5706, &[binding(0, 0), binding(1, 0), binding(3, 0)]);
    f.signal(libc::SIGHUP);
    // The start-up recovery was the first.
    let done = f.wait_notify(|m| m.contains("2 resyncs"), Duration::from_secs(10));
    assert!(done, "statuses {:?}", f.statuses);
    let mut want: Vec<String> = [0, 1, 3]
        .iter()
        .map(|n| format!("{} via fe80::2 dev cust0", prefix_n(*n)))
        .collect();
    want.sort();
    let mut ok = false;
    for _ in 0..100 {
        if ours(&lab.router) == want {
            ok = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(ok, "{:?}; log:\n{}", ours(&lab.router), f.log_text());
    assert!(f.log_text().contains("resync done"), "{}", f.log_text());
    // Snooping goes on after the resync.
    let p = prefix_n(30);
    to_client(&lab, 0, "fe80::2", 546, vec![reply(0x600, 2, &p, 3600)]);
    assert!(wait_route(&lab.router, &p, SECOND, |l| l.is_some()).is_some());
    let status = f.stop();
    assert!(status.success());
}

/// `follow --once`: the start-up recovery, then what arrives, then exit 0
/// once nothing has for `--idle`; the routes stay.
#[test]
fn once_handles_what_arrives_then_exits_when_idle() {
    if !root() {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lab = lab("pdr-fol7", 1);
    let _server = lab_server(&lab, 5707, &[binding(0, 0)]);
    let prom = lab.dir.path().join("follow.prom");
    let cfg = config(&lab, &[5707], "");
    let metrics_arg = format!("--metrics-file={}", prom.display());
    let mut f = Follow::start(
        &lab,
        &cfg,
        &["--once", "--idle", "700ms", &metrics_arg],
        "info",
    );
    let p = prefix_n(40);
    to_client(&lab, 0, "fe80::2", 546, vec![reply(0x700, 2, &p, 3600)]);
    let until = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = f.child.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < until,
            "did not exit; log:\n{}",
            f.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}; log:\n{}", f.log_text());
    let mut want = vec![
        format!("{} via fe80::2 dev cust0", prefix_n(0)),
        format!("{p} via fe80::2 dev cust0"),
    ];
    want.sort();
    assert_eq!(ours(&lab.router), want);
    let _ = f.wait_notify(|_| false, Duration::from_millis(1));
    // The metrics file: the start-up recovery in recover's series, and the
    // service's counters as they were when it ended.
    let m = prom::Metrics::read(&prom);
    let get = |name: &str, labels: &[(&str, &str)]| m.get(name, labels);
    let counter = |name: &str, labels: &[(&str, &str)]| m.counter(name, labels);
    assert_eq!(
        get("pdrestore_recover_outcome", &[("outcome", "complete")]),
        1.0
    );
    assert_eq!(get("pdrestore_routes_added", &[]), 1.0);
    assert!(get("pdrestore_last_complete_timestamp_seconds", &[]) > 1.7e9);
    assert_eq!(get("pdrestore_follow_prefixes", &[]), 2.0);
    assert_eq!(
        counter(
            "pdrestore_follow_route_changes_total",
            &[("change", "added")]
        ),
        1.0
    );
    assert_eq!(
        counter("pdrestore_follow_messages_total", &[("kind", "reply")]),
        1.0
    );
    assert_eq!(
        counter("pdrestore_follow_messages_total", &[("kind", "forged")]),
        0.0
    );
    assert!(get("pdrestore_follow_start_timestamp_seconds", &[]) > 1.7e9);
    // Nothing but the file itself in the directory (no temporary file left).
    let tmp: Vec<_> = std::fs::read_dir(lab.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(tmp.is_empty(), "{tmp:?}");
}

/// Issue 20, case 2: the client link is deleted and made again under the
/// same name (a VLAN or bridge rebuilt: a new interface index). follow
/// opens its capture again on the new index (an INFO line with both
/// indexes, `pdrestore_follow_captures_reopened_total` 1), and a REPLY
/// on the new interface gets its route within a second.
#[test]
fn an_interface_recreated_under_its_name_is_snooped_again() {
    if !root() {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lab = lab("pdr-fol8", 1);
    let _server = lab_server(&lab, 5708, &[]);
    let prom = lab.dir.path().join("follow.prom");
    let cfg = config(&lab, &[5708], "");
    let metrics_arg = format!("--metrics-file={}", prom.display());
    let mut f = Follow::start(&lab, &cfg, &[&metrics_arg], "info");
    let old = ifindex(&lab.router, "cust0");
    recreate_link(&lab, 0);
    let new = ifindex(&lab.router, "cust0");
    assert_ne!(old, new, "the same index again");
    // Give follow the time to see the new link (its re-open line), then
    // a REPLY on the new interface.
    let reopened = format!("old_ifindex={old} ifindex={new}");
    let t0 = std::time::Instant::now();
    while !f.log_text().contains(&reopened) && t0.elapsed() < 2 * SECOND {
        std::thread::sleep(Duration::from_millis(10));
    }
    let p = prefix_n(50);
    to_client(&lab, 0, "fe80::2", 546, vec![reply(0x800, 2, &p, 3600)]);
    let took = wait_route(&lab.router, &p, SECOND, |l| l.is_some());
    assert!(
        took.is_some(),
        "no route for a REPLY on the re-created interface; log:\n{}",
        f.log_text()
    );
    let line = route_line(&lab.router, &p).unwrap();
    assert!(line.contains("via fe80::2 dev cust0 proto 57"), "{line}");
    // The re-open line, at INFO, with both indexes.
    let log = f.log_text();
    let line = log
        .lines()
        .find(|l| l.contains(&reopened))
        .unwrap_or_else(|| panic!("no re-open line ({reopened}); log:\n{log}"));
    assert!(
        line.contains(" INFO ") && line.contains("interface=cust0"),
        "{line}"
    );
    let status = f.stop();
    assert!(status.success(), "{status:?}; log:\n{}", f.log_text());
    let m = prom::Metrics::read(&prom);
    assert_eq!(
        m.counter("pdrestore_follow_captures_reopened_total", &[]),
        1.0,
        "{}",
        m.1
    );
    assert_eq!(
        m.counter("pdrestore_follow_messages_total", &[("kind", "reply")]),
        1.0
    );
}

/// The live view (`pdrestore status`): the socket in the state directory
/// answers with the state and the followed prefixes, a snooped one with
/// its client's DUID, one of the start-up recovery without; the socket
/// goes when the service stops.
#[test]
fn the_live_view_lists_what_is_followed_and_goes_with_the_service() {
    use pdrestore::follow::live::{ask, LiveError, LiveRequest, SOCKET_NAME};
    if !root() {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lab = lab("pdr-fol9", 1);
    let _server = lab_server(&lab, 5709, &[binding(0, 0)]);
    let cfg = config(&lab, &[5709], "");
    let mut f = Follow::start(&lab, &cfg, &[], "info");
    let p = prefix_n(1);
    to_client(&lab, 0, "fe80::2", 546, vec![reply(0x900, 2, &p, 600)]);
    assert!(wait_route(&lab.router, &p, SECOND, |l| l.is_some()).is_some());
    let sock = lab.dir.path().join("state").join(SOCKET_NAME);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (state, routes) = rt
        .block_on(ask(&sock, &LiveRequest::default(), 5 * SECOND))
        .unwrap_or_else(|e| panic!("{e}; log:\n{}", f.log_text()));
    assert_eq!(state.pid, f.pid() as u32);
    assert!(state.ready && !state.resyncing, "{state:?}");
    assert_eq!((state.followed, state.listed), (2, Some(2)));
    assert_eq!(
        state.last_resync.as_ref().map(|r| r.outcome.as_str()),
        Some("complete")
    );
    assert!(state.interfaces.iter().any(|i| i.name == "cust0" && i.up));
    assert!(
        state.packets >= 1 && state.counters.replies >= 1,
        "{state:?}"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(state.started_at <= now && state.started_at + 60 > now);
    let listed: Vec<(String, bool, Option<String>)> = routes
        .iter()
        .map(|r| (r.prefix.to_string(), r.snooped, r.client.clone()))
        .collect();
    assert_eq!(
        listed,
        vec![
            (prefix_n(0), false, None),
            (prefix_n(1), true, Some(client_duid(2).to_hex())),
        ]
    );
    let snooped = &routes[1];
    assert_eq!(
        (snooped.dev.as_str(), snooped.state.as_str()),
        ("cust0", "installed")
    );
    assert_eq!(snooped.server, Some(server_duid().to_hex()));
    let left = snooped.expires_at.unwrap().saturating_sub(now);
    assert!((590..=601).contains(&left), "{snooped:?}");
    // By client.
    let req = LiveRequest {
        client: Some(client_duid(2).to_hex()),
        ..LiveRequest::default()
    };
    let (_, routes) = rt.block_on(ask(&sock, &req, 5 * SECOND)).unwrap();
    assert_eq!(routes.len(), 1);
    assert!(f.stop().success());
    assert!(!sock.exists(), "the socket stays after the service");
    let e = rt
        .block_on(ask(&sock, &LiveRequest::default(), SECOND))
        .unwrap_err();
    assert!(matches!(e, LiveError::NotRunning { .. }), "{e}");
}
