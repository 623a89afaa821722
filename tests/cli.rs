//! The command line: exit codes and output of decode, check-config, duid.

use std::process::Command;

fn pdrestore() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pdrestore"))
}

fn data(name: &str) -> String {
    format!("{}/tests/data/kea/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn decode_json_lines_of_a_kea_capture() {
    let out = pdrestore()
        .args(["decode", "--json", &data("16_clientid_3.response.bin")])
        .output()
        .unwrap();
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = lines.iter().map(|l| l["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["message", "binding", "message", "binding", "message"]
    );
    assert_eq!(lines[0]["type"], "LEASEQUERY-REPLY");
    assert_eq!(lines[0]["status"], 0);
    assert_eq!(lines[4]["type"], "LEASEQUERY-DONE");
    for b in [&lines[1], &lines[3]] {
        assert_eq!(b["client_duid"], "00030001020000000003");
        for key in [
            "xid",
            "preferred_lifetime",
            "valid_lifetime",
            "clt_time",
            "relay",
        ] {
            assert!(b.get(key).is_some(), "{key} missing in {b}");
        }
        assert_eq!(b["relay"][0]["link_address"], "2001:db8:1::1");
        assert_eq!(b["relay"][0]["relay_id"], "000200000009010203040506");
    }
    assert!(lines[1].get("address").is_some() || lines[1].get("prefix").is_some());
}

#[test]
fn decode_reports_malformed_frames_with_offsets_and_goes_on() {
    let good = std::fs::read(data("05_relayid_unknown.response.bin")).unwrap();
    let mut stream = good.clone(); // offset 0: a valid REPLY (64 octets)
                                   // offset 64: a DONE whose CLT_TIME option claims 4 octets but the frame holds 2.
    stream.extend_from_slice(&[0, 10, 16, 0, 0, 5, 0, 46, 0, 4, 0, 0]);
    // offset 76: a zero-length frame.
    stream.extend_from_slice(&[0, 0]);
    // offset 78: the valid REPLY again.
    stream.extend_from_slice(&good);
    // offset 142: a frame cut short.
    stream.extend_from_slice(&[0, 50, 15, 0]);
    let path = std::env::temp_dir().join(format!("pdr-bad-{}.bin", std::process::id()));
    std::fs::write(&path, &stream).unwrap();
    let out = pdrestore()
        .args(["decode", "--json"])
        .arg(&path)
        .output()
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(out.status.code(), Some(1));
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary: Vec<(String, u64)> = lines
        .iter()
        .map(|l| {
            (
                l["kind"].as_str().unwrap().to_string(),
                l["offset"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("message".into(), 0),
            ("error".into(), 64),
            ("error".into(), 76),
            ("message".into(), 78),
            ("error".into(), 142)
        ]
    );
    assert_eq!(
        lines[1]["error"],
        "message at offset 66: option CLT_TIME(46) at offset 4: option length 4 overruns its container (2 octets left)"
    );
    assert_eq!(lines[2]["error"], "zero-length frame at offset 76");
    assert_eq!(
        lines[4]["error"],
        "truncated frame at offset 142: message-size 52, 4 octets left"
    );
}

#[test]
fn exit_codes_for_usage_and_files() {
    assert_eq!(
        pdrestore()
            .arg("frobnicate")
            .output()
            .unwrap()
            .status
            .code(),
        Some(64)
    );
    assert_eq!(
        pdrestore().args(["decode"]).output().unwrap().status.code(),
        Some(64)
    );
    assert_eq!(
        pdrestore()
            .args(["decode", "/nonexistent"])
            .output()
            .unwrap()
            .status
            .code(),
        Some(66)
    );
    assert_eq!(
        pdrestore().arg("--help").output().unwrap().status.code(),
        Some(0)
    );
    let out = pdrestore()
        .args(["check-config", "-c", "/nonexistent.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
}

#[test]
fn check_config_and_duid() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("pdrestore.toml");
    std::fs::write(
        &cfg,
        format!(
            "state_directory = {:?}\n[[server]]\naddress = \"::1\"\n[routes]\nallowed_prefixes = [\"2001:db8::/32\"]\n",
            dir.path().join("state")
        ),
    )
    .unwrap();
    let out = pdrestore()
        .args(["check-config", "-c"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("data_timeout = \"5m\""));
    let first = pdrestore().args(["duid", "-c"]).arg(&cfg).output().unwrap();
    assert!(first.status.success());
    assert!(String::from_utf8_lossy(&first.stderr).contains("generated now"));
    let second = pdrestore().args(["duid", "-c"]).arg(&cfg).output().unwrap();
    assert_eq!(first.stdout, second.stdout, "the same DUID on every run");
    assert!(String::from_utf8_lossy(&second.stderr).contains("stored in"));
    let text = String::from_utf8(second.stdout).unwrap();
    let mut lines = text.lines();
    let hex = lines.next().unwrap();
    let colon = lines.next().unwrap();
    assert_eq!(colon.replace(':', ""), hex);
    // A corrupt file is refused (configuration error), not replaced.
    std::fs::write(dir.path().join("state/relay-duid"), "garbage\n").unwrap();
    let bad = pdrestore().args(["duid", "-c"]).arg(&cfg).output().unwrap();
    assert_eq!(bad.status.code(), Some(78));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("state/relay-duid")).unwrap(),
        "garbage\n"
    );
}

#[test]
fn generated_man_pages_completions_and_configuration_reference_are_current() {
    // docs/man, docs/completions and docs/configuration.md are generated from
    // the CLI definition and src/docs.rs; regenerate them with
    // `cargo run --example generate_docs -- docs` when either changes.
    let dir = tempfile::tempdir().unwrap();
    pdrestore::docs::generate(dir.path()).unwrap();
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    let stale = "run `cargo run --example generate_docs -- docs`";
    for sub in ["man", "completions"] {
        let mut fresh: Vec<_> = std::fs::read_dir(dir.path().join(sub))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        fresh.sort();
        let mut committed: Vec<_> = std::fs::read_dir(repo.join(sub))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        committed.sort();
        assert_eq!(fresh, committed, "docs/{sub} file list is stale: {stale}");
        for name in fresh {
            let a = std::fs::read(dir.path().join(sub).join(&name)).unwrap();
            let b = std::fs::read(repo.join(sub).join(&name)).unwrap();
            assert!(
                a == b,
                "docs/{sub}/{} is stale: {stale}",
                name.to_string_lossy()
            );
        }
    }
    let a = std::fs::read(dir.path().join("configuration.md")).unwrap();
    let b = std::fs::read(repo.join("configuration.md")).unwrap();
    assert!(a == b, "docs/configuration.md is stale: {stale}");
}

#[test]
fn man_pages_have_the_operator_sections_and_completions_no_hidden_commands() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    let page = |n: &str| std::fs::read_to_string(repo.join("man").join(n)).unwrap();
    for name in ["pdrestore.8", "pdrestore-recover.8", "pdrestore-query.8"] {
        let p = page(name);
        for sec in [
            ".SH \"EXIT STATUS\"",
            ".SH ENVIRONMENT",
            ".SH FILES",
            ".SH EXAMPLES",
        ] {
            assert!(p.contains(sec), "{name} lacks {sec}");
        }
        assert!(p.contains("RUST_LOG") && p.contains("NO_COLOR"), "{name}");
    }
    assert!(page("pdrestore-recover.8").contains("77"));
    let toml5 = page("pdrestore.toml.5");
    assert!(toml5.starts_with(".ie") || toml5.contains(".TH pdrestore.toml 5"));
    for key in [
        "prune_limit",
        "connect_timeout",
        "startup_deadline",
        "interface_wait",
        "allowed_prefixes",
    ] {
        assert!(toml5.contains(key), "pdrestore.toml(5) lacks {key}");
    }
    for f in ["pdrestore.bash", "_pdrestore", "pdrestore.fish"] {
        let c = std::fs::read_to_string(repo.join("completions").join(f)).unwrap();
        assert!(!c.contains("generate-docs"), "{f} offers a hidden command");
        assert!(
            !c.contains("in-private-netns"),
            "{f} offers a hidden option"
        );
        assert!(c.contains("force-prune"), "{f}");
    }
}
