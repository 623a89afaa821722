//! `pdrestore check-config` and `pdrestore duid`: the configuration and
//! the identities it gives, without touching anything.

use super::{load_config, print_or_quiet};
use crate::exit;
use std::fmt::Write;
use std::path::Path;
use std::process::ExitCode;

/// `pdrestore duid`: the relay DUID, hex and colon-hex, and where it comes from.
pub fn duid(path: &Path) -> ExitCode {
    let config = match load_config(path) {
        Ok(c) => c,
        Err(code) => return ExitCode::from(code),
    };
    match crate::identity::relay_duid(config.relay_duid.as_ref(), &config.state_directory) {
        Ok((duid, source)) => {
            eprintln!("relay DUID {source}");
            let text = format!("{}\n{}\n", duid.to_hex(), duid.to_colon_hex());
            ExitCode::from(print_or_quiet(&text).unwrap_or(exit::OK))
        }
        Err(e) => {
            eprintln!("pdrestore: {e}");
            ExitCode::from(exit::CONFIG)
        }
    }
}

/// `pdrestore check-config`: validate, print the effective settings, the
/// DUIDs and the worst case of one run.
pub fn check_config(path: &Path) -> ExitCode {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("pdrestore: {}: {e}", path.display());
            return ExitCode::from(exit::CONFIG);
        }
    };
    let config = match crate::config::Config::parse(&text, path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("pdrestore: {e}");
            return ExitCode::from(exit::CONFIG);
        }
    };
    let mut out = config.to_toml();
    // The effective identities, without creating anything. (Writing to a
    // String cannot fail.)
    match crate::identity::lookup(config.relay_duid.as_ref(), &config.state_directory) {
        Ok(Some((relay, source))) => {
            let _ = writeln!(out, "# relay DUID: {} ({source})", relay.to_hex());
            let requestor = config.requestor_duid.clone().unwrap_or(relay);
            let _ = writeln!(out, "# requestor DUID: {}", requestor.to_hex());
        }
        Ok(None) => {
            let _ = writeln!(
                out,
                "# relay DUID: none yet; the first `pdrestore recover` (or `pdrestore duid`) generates one in {}",
                config.state_directory.display()
            );
            let _ = match &config.requestor_duid {
                Some(d) => writeln!(out, "# requestor DUID: {}", d.to_hex()),
                None => writeln!(out, "# requestor DUID: the relay DUID"),
            };
        }
        Err(e) => {
            eprintln!("pdrestore: {e}");
            return ExitCode::from(exit::CONFIG);
        }
    }
    // What the unit's TimeoutStartSec must cover.
    let _ = writeln!(
        out,
        "# worst case of one run, the transfer aside: {}",
        config.worst_case()
    );
    if let Some(code) = print_or_quiet(&out) {
        return ExitCode::from(code);
    }
    if !config.routes.interfaces.is_empty() {
        let links = crate::routes::netlink::links_now();
        match links {
            Ok(links) => {
                let names: Vec<&str> = links.iter().map(|l| &*l.name).collect();
                for w in config.interface_warnings(&text, path, &names) {
                    eprintln!("{w}");
                }
            }
            Err(e) => eprintln!("pdrestore: cannot list this machine's interfaces: {e}"),
        }
    }
    eprintln!("{}: OK", path.display());
    ExitCode::SUCCESS
}
