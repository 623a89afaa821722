//! `pdrestore follow`: the service, until SIGTERM.

use super::{load_config_in_vrf, runtime, writer_lock};
use crate::exit;
use crate::follow::{self, FollowOptions};
use crate::metrics::{write_recover, RecoverMetrics};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Run `follow` with the configuration at `path`; `once` ends it when
/// nothing happened for that long.
pub fn run(path: &Path, once: Option<Duration>, metrics_file: Option<PathBuf>) -> ExitCode {
    let config = match load_config_in_vrf(path) {
        Ok(c) => c,
        Err(code) => return ExitCode::from(code),
    };
    // The writer lock first, held for the service's lifetime: before the
    // capture sockets, the relay DUID and the start-up recovery. A refused
    // follow writes no metrics file (the holder's counts).
    let _lock = match writer_lock(&config, "follow") {
        Ok(l) => l,
        Err(code) => return ExitCode::from(code),
    };
    let metrics_file = metrics_file.or_else(|| config.metrics_file.clone());
    // As recover: link-address mode needs no relay DUID.
    let relay = match super::recover::run_duid(&config, false, &mut Vec::new()) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("pdrestore: {e}");
            return ExitCode::from(exit::CONFIG);
        }
    };
    let rt = match runtime(Some(2)) {
        Ok(rt) => rt,
        Err(code) => return ExitCode::from(code),
    };
    let opts = FollowOptions {
        once,
        notify: true,
        metrics_file,
    };
    let result = rt.block_on(async {
        let control = match follow::shell::signal_control() {
            Ok(c) => c,
            Err(e) => return Err((exit::SOFTWARE, format!("cannot handle signals: {e}"))),
        };
        follow::run(&config, &relay, &opts, control)
            .await
            .map_err(|e| (e.exit_code(), e.to_string()))
    });
    match result {
        Ok(summary) => {
            eprintln!("pdrestore follow: {}", summary.status);
            ExitCode::from(exit::OK)
        }
        Err((code, text)) => {
            eprintln!("pdrestore: {text}");
            // As `recover` does: an operator's alert sees a service that
            // could not start.
            if let Some(file) = &opts.metrics_file {
                let run = RecoverMetrics::failure(code, std::time::SystemTime::now());
                if let Err(e) = write_recover(file, &run) {
                    tracing::warn!(file = %file.display(), error = %e, "cannot write the metrics file; the old one, if any, is left as it was");
                }
            }
            ExitCode::from(code)
        }
    }
}
