//! `pdrestore recover`: the relay DUID, the run, its summary (text or
//! JSON) on standard output, its metrics file.

use super::{load_config_in_vrf, print_or_quiet, runtime, stop_signal, writer_lock};
use crate::agent::{self, Note, RecoverOptions, Report};
use crate::config::{Config, QueryMode};
use crate::exit;
use crate::metrics::{write_recover, RecoverMetrics};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `recover`, then its metrics file (`--metrics-file`, or `metrics_file`
/// of the configuration; none for a dry run). A metrics file that cannot
/// be written is logged and leaves the exit status alone.
pub fn run(
    path: &Path,
    dry_run: bool,
    json: bool,
    force_prune: bool,
    mut metrics_file: Option<PathBuf>,
) -> ExitCode {
    let (code, report) = recover(path, dry_run, force_prune, &mut metrics_file);
    let code = match &report {
        Some(r) => {
            let text = if json {
                serde_json::to_string(&r.summary()).expect("summary serialises") + "\n"
            } else {
                r.to_text()
            };
            print_or_quiet(&text).unwrap_or(code)
        }
        None => code,
    };
    if let Some(file) = metrics_file.filter(|_| !dry_run) {
        let now = std::time::SystemTime::now();
        let run = match &report {
            Some(r) => RecoverMetrics::from_report(r, now),
            None => RecoverMetrics::failure(code, now),
        };
        if let Err(e) = write_recover(&file, &run) {
            tracing::warn!(file = %file.display(), error = %e, "cannot write the metrics file; the old one, if any, is left as it was");
        }
    }
    ExitCode::from(code)
}

/// The exit status, and the report when the run got that far;
/// `metrics_file` is set from the configuration unless already given, and
/// cleared when another writer holds the lock. The writer lock is held
/// for the whole run.
fn recover(
    path: &Path,
    dry_run: bool,
    force_prune: bool,
    metrics_file: &mut Option<PathBuf>,
) -> (u8, Option<Report>) {
    let config = match load_config_in_vrf(path) {
        Ok(c) => c,
        Err(code) => return (code, None),
    };
    // One writer at a time; a dry run writes nothing and takes no lock. A
    // refused run writes no metrics file either: the holder's is the one
    // that counts.
    let _lock = if dry_run {
        None
    } else {
        match writer_lock(&config, "recover") {
            Ok(l) => Some(l),
            Err(code) => {
                *metrics_file = None;
                return (code, None);
            }
        }
    };
    if metrics_file.is_none() {
        metrics_file.clone_from(&config.metrics_file);
    }
    let mut notes = Vec::new();
    let relay = match run_duid(&config, dry_run, &mut notes) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("pdrestore: {e}");
            return (exit::CONFIG, None);
        }
    };
    let rt = match runtime(None) {
        Ok(rt) => rt,
        Err(code) => return (code, None),
    };
    let opts = RecoverOptions {
        dry_run,
        force_prune,
        ..Default::default()
    };
    match rt.block_on(agent::run(&config, &relay, &opts, stop_signal())) {
        Ok(mut report) => {
            report.notes.extend(notes);
            (report.exit_code(), Some(report))
        }
        Err(e) => {
            eprintln!("pdrestore: {e}");
            (e.exit_code(), None)
        }
    }
}

/// The DUID the run asks with. Relay-id mode: the relay DUID (the
/// Relay-ID queried), configured or stored, made and stored when there is
/// none; a dry run creates nothing and asks with a temporary one (noted).
/// Link-address mode needs no relay DUID: the one it has is only the
/// requestor's CLIENTID (unless `requestor_duid` is set), so none is made
/// or stored, and a missing or corrupt relay DUID file means a temporary
/// one (a corrupt file is logged, not fatal).
pub(super) fn run_duid(
    config: &Config,
    dry_run: bool,
    notes: &mut Vec<Note>,
) -> Result<crate::proto::Duid, crate::identity::IdentityError> {
    use crate::identity::{generate, lookup, relay_duid};
    let found = || lookup(config.relay_duid.as_ref(), &config.state_directory);
    match config.query {
        QueryMode::RelayId if dry_run => Ok(found()?.map(|(d, _)| d).unwrap_or_else(|| {
            notes.push(Note::TemporaryRelayDuid {
                state_directory: config.state_directory.clone(),
            });
            generate()
        })),
        QueryMode::RelayId => {
            relay_duid(config.relay_duid.as_ref(), &config.state_directory).map(|(d, _)| d)
        }
        QueryMode::LinkAddress => Ok(match found() {
            Ok(Some((d, _))) => d,
            Ok(None) => generate(),
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    "link-address mode uses no relay DUID: asking with a temporary requestor DUID"
                );
                generate()
            }
        }),
    }
}
