//! What a test needs beyond Rust (root, a tool), said honestly.
//!
//! `need_root` and `need_tool` return true when the need is met: the test
//! goes on. When it is not, on a developer's machine the test is skipped
//! with one line, `SKIPPED <test>: <reason>`, written straight to the
//! process's stderr (the test harness captures `eprintln!`, not this), so
//! that a plain `cargo test` shows what did not run and why; under CI (the
//! environment variable `CI` is `true` or `1`) the test fails instead, with
//! the same reason. `PDRESTORE_REQUIRE_TSHARK` (any value) makes the tools
//! of the Debian package tshark (tshark, dumpcap) required too.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;

/// True when the environment says this is a CI run: every need must be met.
pub fn ci() -> bool {
    std::env::var("CI")
        .is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1"))
}

/// Go on as root; otherwise skip visibly (or fail under CI). `why` says
/// what needs it ("network namespaces", ...).
#[track_caller]
pub fn need_root(why: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    unmet(&format!("needs root: {why}"), false)
}

/// Go on when `tool` is an executable on PATH (where the tests will look
/// for it when they run it); otherwise skip visibly (or fail under CI),
/// naming the Debian package.
#[track_caller]
pub fn need_tool(tool: &str, debian_package: &str) -> bool {
    if find_tool(tool).is_some() {
        return true;
    }
    let required =
        debian_package == "tshark" && std::env::var_os("PDRESTORE_REQUIRE_TSHARK").is_some();
    unmet(
        &format!("needs {tool} (apt-get install {debian_package})"),
        required,
    )
}

/// Network namespaces with `ip netns`: root and iproute2.
#[track_caller]
pub fn need_netns() -> bool {
    need_root("network namespaces (ip netns)") && need_tool("ip", "iproute2")
}

/// Where `tool` is on PATH, if anywhere.
pub fn find_tool(tool: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| {
            Path::new(p)
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// A need that is not met (found some other way than the checks above):
/// under CI, or when `required`, the test fails with `reason`; otherwise
/// one `SKIPPED` line and false (the test should return).
#[track_caller]
pub fn unmet(reason: &str, required: bool) -> bool {
    if required || ci() {
        panic!("{reason}");
    }
    let here = std::panic::Location::caller();
    let name = match std::thread::current().name() {
        Some(n) if n != "main" => n.to_owned(),
        _ => format!("{}:{}", here.file(), here.line()),
    };
    // Not eprintln!: the harness captures that and shows it only on
    // failure. One write of the whole line (stderr is unbuffered: a
    // formatted write would be several, torn by other tests' output).
    let line = format!("SKIPPED {name}: {reason}\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
    false
}

/// Wait until something listens on [::1]:`port` inside the namespace.
pub fn wait_listening(ns: &pdrestore::netns::NetNs, port: u16) {
    let up = ns
        .run(move || async move {
            for _ in 0..600 {
                if tokio::net::TcpStream::connect(("::1", port)).await.is_ok() {
                    return true;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            false
        })
        .unwrap();
    assert!(up, "lab server did not start");
}
