//! `pdrestore demo`: the embedded default, in a private network namespace.

use crate::demo::DemoOptions;
use crate::exit;
use std::process::ExitCode;

/// Set by the demo for its own second run inside a user + network namespace.
const DEMO_INSIDE: &str = "PDRESTORE_DEMO_IN_PRIVATE_NETNS";

/// `pdrestore demo`: as root in a namespace of its own, otherwise again
/// inside an unprivileged user and network namespace.
pub fn run(opts: DemoOptions) -> ExitCode {
    let result = if std::env::var_os(DEMO_INSIDE).is_some() {
        crate::demo::run_in_current_namespace(&opts)
    } else if crate::netns::can_create() {
        crate::demo::run_as_root(&opts)
    } else {
        // Not root: run again inside an unprivileged user + network namespace.
        let exe = match std::env::current_exe() {
            Ok(e) => e,
            Err(e) => {
                eprintln!("pdrestore demo: cannot find my own executable: {e}");
                return ExitCode::from(exit::SOFTWARE);
            }
        };
        let status = std::process::Command::new("unshare")
            .args(["--user", "--map-root-user", "--net", "--"])
            .arg(exe)
            .env(DEMO_INSIDE, "1")
            .args([
                "demo",
                "--bindings",
                &opts.bindings.to_string(),
                "--links",
                &opts.links.to_string(),
                "--show",
                &opts.show.to_string(),
            ])
            .status();
        return match status {
            Ok(s) => {
                ExitCode::from(s.code().unwrap_or(i32::from(exit::SOFTWARE)).clamp(0, 255) as u8)
            }
            Err(e) => {
                eprintln!("pdrestore demo: not root, and unshare(1) failed: {e}; run as root or enable unprivileged user namespaces");
                ExitCode::from(exit::SOFTWARE)
            }
        };
    };
    match result {
        Ok(report) => ExitCode::from(report.exit_code()),
        // A closed pipe ends it quietly, as `head` expects.
        Err(crate::demo::DemoError::Stdout(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::from(exit::IOERR)
        }
        Err(crate::demo::DemoError::Stdout(e)) => {
            eprintln!("pdrestore demo: standard output: {e}");
            ExitCode::from(exit::IOERR)
        }
        Err(e) => {
            eprintln!("pdrestore demo: {e}");
            ExitCode::from(exit::SOFTWARE)
        }
    }
}
