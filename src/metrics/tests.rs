//! The metrics file: encoding, reading back, atomic replacement.

use super::*;
use std::time::Duration;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(secs * 1000 + 250)
}

fn partial_run() -> RecoverMetrics {
    RecoverMetrics {
        outcome: "partial".into(),
        exit_code: 1,
        finished_at: at(1_764_633_600),
        figures: Some(RunFigures {
            servers: vec![
                ServerMetrics {
                    server: "[2001:db8::547]:547".into(),
                    bindings: 100,
                    complete: true,
                    duration_seconds: 1.5,
                },
                ServerMetrics {
                    server: "192.0.2.7:547".into(),
                    bindings: 0,
                    complete: false,
                    duration_seconds: 5.0,
                },
            ],
            groups: vec![
                GroupMetrics {
                    group: "[2001:db8::547]:547".into(),
                    complete: true,
                    degraded: 0,
                },
                GroupMetrics {
                    group: "192.0.2.7:547".into(),
                    complete: false,
                    degraded: 0,
                },
            ],
            refusals: [(
                Refusal {
                    server: "192.0.2.7:547".into(),
                    query_type: "relay-id".into(),
                    status: "NotAllowed".into(),
                    text: "requestor \"x\" not allowed".into(),
                },
                1,
            )]
            .into_iter()
            .collect(),
            bindings: 100,
            planned: 97,
            added: 90,
            replaced: 2,
            unchanged: 5,
            removed: 0,
            foreign_conflicts: 1,
            failed: 0,
            rejected: [
                ("outside-pools".to_string(), 2),
                ("bad-next-hop".to_string(), 1),
            ]
            .into_iter()
            .collect(),
            conflicts: 3,
            netlink_listener_drops: 1260,
            prune_state: "skipped".into(),
            prune_ours: 7,
            prune_candidates: 0,
            prune_held_back: [("link-empty".to_string(), 1)].into_iter().collect(),
            duration_seconds: 5.125,
        }),
    }
}

#[test]
fn the_encoding_is_prometheus_text_in_a_fixed_order() {
    let text = encode(&partial_run().registry(Some(1_764_000_000.5)));
    let expected = "\
# HELP pdrestore_recover_outcome Outcome of the last recover run: 1 for the outcome it had (complete, partial, failed; error when it ended before a summary)
# TYPE pdrestore_recover_outcome gauge
pdrestore_recover_outcome{outcome=\"complete\"} 0
pdrestore_recover_outcome{outcome=\"partial\"} 1
pdrestore_recover_outcome{outcome=\"failed\"} 0
pdrestore_recover_outcome{outcome=\"error\"} 0
";
    assert!(text.starts_with(expected), "{text}");
    for line in [
        "pdrestore_recover_exit_code 1\n",
        "# TYPE pdrestore_last_run_timestamp_seconds gauge\npdrestore_last_run_timestamp_seconds 1764633600.25\n",
        "pdrestore_last_complete_timestamp_seconds 1764000000.5\n",
        "pdrestore_recover_duration_seconds 5.125\n",
        "pdrestore_server_bindings{server=\"[2001:db8::547]:547\"} 100\npdrestore_server_bindings{server=\"192.0.2.7:547\"} 0\n",
        "pdrestore_server_complete{server=\"[2001:db8::547]:547\"} 1\npdrestore_server_complete{server=\"192.0.2.7:547\"} 0\n",
        "pdrestore_server_duration_seconds{server=\"192.0.2.7:547\"} 5.0\n",
        "pdrestore_bindings_received 100\n",
        "pdrestore_routes_planned 97\n",
        "pdrestore_routes_added 90\n",
        "pdrestore_routes_replaced 2\n",
        "pdrestore_routes_unchanged 5\n",
        "pdrestore_routes_removed 0\n",
        "pdrestore_routes_foreign_conflicts 1\n",
        "pdrestore_routes_failed 0\n",
        "pdrestore_binding_conflicts 3\n",
        "pdrestore_netlink_listener_drops 1260\n",
        "pdrestore_routes_rejected{reason=\"bad-next-hop\"} 1\npdrestore_routes_rejected{reason=\"outside-pools\"} 2\n",
        "pdrestore_prune_state{state=\"done\"} 0\npdrestore_prune_state{state=\"off\"} 0\npdrestore_prune_state{state=\"skipped\"} 1\npdrestore_prune_state{state=\"refused\"} 0\n",
        "pdrestore_prune_candidates 0\n",
        "pdrestore_prune_routes_owned 7\n",
        "pdrestore_server_group_complete{group=\"[2001:db8::547]:547\"} 1\npdrestore_server_group_complete{group=\"192.0.2.7:547\"} 0\n",
        "pdrestore_server_group_degraded{group=\"192.0.2.7:547\"} 0\n",
        "pdrestore_prune_held_back{reason=\"link-empty\"} 1\n",
        "pdrestore_server_queries_refused{server=\"192.0.2.7:547\",query_type=\"relay-id\",status=\"NotAllowed\",text=\"requestor \\\"x\\\" not allowed\"} 1\n",
    ] {
        assert!(text.contains(line), "{line:?} not in:\n{text}");
    }
    assert!(!text.contains("# EOF"), "0.0.4 text, not OpenMetrics");
}

#[test]
fn a_parser_reads_back_what_was_encoded() {
    let text = encode(&partial_run().registry(None));
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
    let value = |name: &str, label: Option<(&str, &str)>| -> f64 {
        let s = scrape
            .samples
            .iter()
            .find(|s| s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
            .unwrap_or_else(|| panic!("no {name} {label:?} in\n{text}"));
        match s.value {
            prometheus_parse::Value::Gauge(v) => v,
            ref other => panic!("{name} is not a gauge: {other:?}"),
        }
    };
    assert_eq!(
        value("pdrestore_recover_outcome", Some(("outcome", "partial"))),
        1.0
    );
    assert_eq!(
        value("pdrestore_recover_outcome", Some(("outcome", "complete"))),
        0.0
    );
    assert_eq!(
        value(
            "pdrestore_server_complete",
            Some(("server", "192.0.2.7:547"))
        ),
        0.0
    );
    assert_eq!(
        value(
            "pdrestore_routes_rejected",
            Some(("reason", "outside-pools"))
        ),
        2.0
    );
    // Never complete: 0, so that "too old" alerts fire.
    assert_eq!(value(LAST_COMPLETE, None), 0.0);
    assert_eq!(previous_value(&text, LAST_COMPLETE), Some(0.0));
}

#[test]
fn a_complete_run_sets_the_last_complete_time_and_others_keep_it() {
    let mut run = partial_run();
    run.outcome = "complete".into();
    run.exit_code = 0;
    let text = encode(&run.registry(Some(5.0)));
    assert_eq!(previous_value(&text, LAST_COMPLETE), Some(1_764_633_600.25));
    let text = encode(&partial_run().registry(Some(5.0)));
    assert_eq!(previous_value(&text, LAST_COMPLETE), Some(5.0));
    assert_eq!(
        previous_value(&text, "pdrestore_last_run_timestamp_seconds"),
        Some(1_764_633_600.25)
    );
}

#[test]
fn a_run_without_a_summary_has_only_its_outcome_and_times() {
    let text = encode(&RecoverMetrics::failure(77, at(10)).registry(Some(3.0)));
    assert!(
        text.contains("pdrestore_recover_outcome{outcome=\"error\"} 1\n"),
        "{text}"
    );
    assert!(text.contains("pdrestore_recover_exit_code 77\n"), "{text}");
    assert!(
        text.contains("pdrestore_last_complete_timestamp_seconds 3.0\n"),
        "{text}"
    );
    assert!(!text.contains("pdrestore_routes"), "{text}");
    assert!(!text.contains("pdrestore_server"), "{text}");
}

#[test]
fn previous_value_reads_only_that_sample() {
    let text = "# HELP pdrestore_last_complete_timestamp_seconds x\n\
        pdrestore_last_complete_timestamp_seconds_other 9\n\
        pdrestore_last_complete_timestamp_seconds{a=\"b\"} 8\n\
        pdrestore_last_complete_timestamp_seconds 1.5e9\n";
    assert_eq!(previous_value(text, LAST_COMPLETE), Some(1.5e9));
    assert_eq!(previous_value("garbage\n", LAST_COMPLETE), None);
    assert_eq!(
        previous_value(&format!("{LAST_COMPLETE} NaN\n"), LAST_COMPLETE),
        None
    );
    assert_eq!(
        previous_value(&format!("{LAST_COMPLETE} -1\n"), LAST_COMPLETE),
        None
    );
}

/// Files in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn the_write_replaces_the_file_readable_by_others() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("pdrestore.prom");
    write_atomic(&p, b"a 1\n").unwrap();
    write_atomic(&p, b"a 2\n").unwrap();
    assert_eq!(std::fs::read_to_string(&p).unwrap(), "a 2\n");
    let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
    assert_eq!(names(dir.path()), ["pdrestore.prom"]);
}

#[test]
fn a_write_that_fails_midway_leaves_the_old_file_and_no_temporary() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("pdrestore.prom");
    write_atomic(&p, b"old 1\n").unwrap();
    let err = write_atomic_with(&p, |f| {
        f.write_all(b"new 1\nhalf")?;
        Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"))
    })
    .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::StorageFull);
    assert_eq!(std::fs::read_to_string(&p).unwrap(), "old 1\n");
    assert_eq!(names(dir.path()), ["pdrestore.prom"]);
}

#[test]
fn a_panic_between_the_temporary_write_and_the_rename_leaves_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("pdrestore.prom");
    write_atomic(&p, b"old 1\n").unwrap();
    let seen = std::sync::Mutex::new(Vec::new());
    let r = std::panic::catch_unwind(|| {
        let _ = write_atomic_with(&p, |f| {
            f.write_all(b"new 1\n")?;
            f.sync_all()?;
            // The temporary is complete and synced; the process dies
            // before the rename.
            *seen.lock().unwrap() = names(dir.path());
            panic!("killed before the rename");
        });
    });
    assert!(r.is_err());
    let seen = seen.into_inner().unwrap();
    assert_eq!(seen.len(), 2, "{seen:?}");
    let tmp = seen.iter().find(|n| *n != "pdrestore.prom").unwrap();
    // A temporary left by a real kill is not read by the collector (*.prom).
    assert!(
        tmp.starts_with(".pdrestore.prom.") && tmp.ends_with(".tmp"),
        "{tmp}"
    );
    assert_eq!(std::fs::read_to_string(&p).unwrap(), "old 1\n");
    assert_eq!(names(dir.path()), ["pdrestore.prom"]);
}

#[test]
fn a_directory_that_cannot_be_written_fails_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir").join("pdrestore.prom");
    assert_eq!(
        write_atomic(&missing, b"a 1\n").unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
    // A file where the directory should be.
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    assert!(write_atomic(&file.join("pdrestore.prom"), b"a 1\n").is_err());
    assert_eq!(names(dir.path()), ["file"]);
    assert!(write_atomic(Path::new("/"), b"a 1\n").is_err());
}

#[test]
fn write_recover_keeps_the_last_complete_time_of_the_file_it_replaces() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("pdrestore.prom");
    let mut complete = partial_run();
    complete.outcome = "complete".into();
    complete.exit_code = 0;
    complete.finished_at = at(100);
    write_recover(&p, &complete).unwrap();
    let mut later = partial_run();
    later.finished_at = at(200);
    write_recover(&p, &later).unwrap();
    write_recover(&p, &RecoverMetrics::failure(78, at(300))).unwrap();
    let text = std::fs::read_to_string(&p).unwrap();
    assert_eq!(previous_value(&text, LAST_COMPLETE), Some(100.25));
    assert_eq!(
        previous_value(&text, "pdrestore_last_run_timestamp_seconds"),
        Some(300.25)
    );
}
