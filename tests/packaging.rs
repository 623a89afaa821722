//! Issue 22, packaging: after an upgrade, the package's postinst tells the
//! operator when a running pdrestore-follow.service still runs the previous
//! version, and restarts nothing. The script runs as dpkg runs it
//! (`postinst configure OLD-VERSION`), in a private mount namespace where
//! /run/systemd/system exists (systemd is "running") and `systemctl` is a
//! stand-in on PATH that records its calls and says whether the unit is
//! active. Needs root (a mount namespace): skipped with a `SKIPPED` line
//! otherwise, a failure under CI (tests/support).

mod support;
use std::path::Path;

/// Run postinst with `args`, `active` the stand-in's answer to
/// `is-active pdrestore-follow.service`: its output and systemctl's calls.
fn postinst(dir: &Path, args: &str, active: bool) -> (String, String) {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let calls = dir.join("calls");
    let _ = std::fs::remove_file(&calls);
    let fake = format!(
        "#!/bin/sh\necho \"$*\" >> {calls:?}\ncase \"$*\" in *is-active*) exit {} ;; esac\nexit 0\n",
        if active { 0 } else { 3 }
    );
    let sc = bin.join("systemctl");
    std::fs::write(&sc, fake).unwrap();
    std::process::Command::new("chmod")
        .arg("755")
        .arg(&sc)
        .status()
        .unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/debian/postinst");
    let out = std::process::Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/system && PATH={}:$PATH sh {} {args}",
            bin.display(),
            script.display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        std::fs::read_to_string(&calls).unwrap_or_default(),
    )
}

#[test]
fn an_upgrade_tells_the_operator_to_restart_a_running_follow_and_restarts_nothing() {
    if !support::need_root("a private mount namespace for /run/systemd/system") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // An upgrade with follow running: the message, no restart.
    let (out, calls) = postinst(dir.path(), "configure 0.1.0-1", true);
    assert!(
        out.contains("pdrestore-follow.service still runs the previous version (0.1.0-1)")
            && out.contains("systemctl restart pdrestore-follow.service"),
        "{out}"
    );
    assert!(calls.contains("daemon-reload"), "{calls}");
    assert!(
        calls.contains("is-active pdrestore-follow.service"),
        "{calls}"
    );
    for verb in ["restart", "start", "try-restart", "enable"] {
        assert!(
            !calls
                .lines()
                .any(|l| l.split_whitespace().any(|w| w == verb)),
            "postinst ran systemctl {verb}: {calls}"
        );
    }
    // Follow not running: nothing said.
    let (out, _) = postinst(dir.path(), "configure 0.1.0-1", false);
    assert!(!out.contains("pdrestore-follow"), "{out}");
    // A first install (no old version): nothing said, nothing asked.
    let (out, calls) = postinst(dir.path(), "configure", true);
    assert!(!out.contains("pdrestore-follow"), "{out}");
    assert!(!calls.contains("is-active"), "{calls}");
}
