//! `pdrestore check-config` and `pdrestore duid`: the configuration and
//! the identities it gives, without touching anything.

use super::{in_vrf, load_config, print_or_quiet};
use crate::config::QueryMode;
use crate::exit;
use crate::routes::Interface;
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
    // With routes.vrf, the table printed is the VRF's.
    let config = match in_vrf(config) {
        Ok(c) => c,
        Err(code) => return ExitCode::from(code),
    };
    let mut out = config.to_toml();
    // The effective identities, without creating anything.
    if let Err(e) = write_identities(&mut out, &config) {
        eprintln!("pdrestore: {e}");
        return ExitCode::from(exit::CONFIG);
    }
    let interfaces = crate::routes::netlink::interfaces_now();
    if let Ok(ifs) = &interfaces {
        write_links(&mut out, &config, ifs);
    }
    let sources = absent_sources(&config, interfaces.as_deref().ok());
    // What the unit's TimeoutStartSec must cover.
    let _ = writeln!(
        out,
        "# worst case of one run, the transfer aside: {}",
        config.worst_case()
    );
    if let Some(code) = print_or_quiet(&out) {
        return ExitCode::from(code);
    }
    if !sources.is_empty() {
        for e in sources {
            eprintln!("pdrestore: {}: {e}", path.display());
        }
        return ExitCode::from(exit::CONFIG);
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

/// The identities as comments: in relay-id mode the relay DUID (and where
/// it comes from) and the requestor DUID; in link-address mode only the
/// requestor DUID (no relay DUID is used, so a corrupt file is no error).
fn write_identities(
    out: &mut String,
    config: &crate::config::Config,
) -> Result<(), crate::identity::IdentityError> {
    let found = crate::identity::lookup(config.relay_duid.as_ref(), &config.state_directory);
    if config.query == QueryMode::LinkAddress {
        let _ = match (&config.requestor_duid, found) {
            (Some(d), _) => writeln!(out, "# requestor DUID: {} (requestor_duid)", d.to_hex()),
            (None, Ok(Some((d, source)))) => {
                writeln!(out, "# requestor DUID: {} (the relay DUID, {source})", d.to_hex())
            }
            (None, _) => writeln!(
                out,
                "# requestor DUID: a temporary one each run (no requestor_duid; link-address mode uses no relay DUID)"
            ),
        };
        return Ok(());
    }
    match found? {
        Some((relay, source)) => {
            let _ = writeln!(out, "# relay DUID: {} ({source})", relay.to_hex());
            let requestor = config.requestor_duid.clone().unwrap_or(relay);
            let _ = writeln!(out, "# requestor DUID: {}", requestor.to_hex());
        }
        None => {
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
    }
    Ok(())
}

/// The links a recovery would ask about on this machine now, as comments.
fn write_links(out: &mut String, config: &crate::config::Config, ifs: &[Interface]) {
    let links = config.query_links(ifs);
    let text: Vec<String> = links
        .iter()
        .map(|l| {
            let on = ifs
                .iter()
                .find(|i| i.addresses.iter().any(|a| a.contains(l)))
                .map(|i| format!(" ({})", i.name))
                .unwrap_or_default();
            format!("{l}{on}")
        })
        .collect();
    let _ = match config.query {
        QueryMode::RelayId if links.iter().all(|l| l.is_unspecified()) => {
            writeln!(out, "# links asked about: every link (::)")
        }
        _ if links.is_empty() => writeln!(
            out,
            "# links asked about: none (no global address on the interfaces [routes.interfaces] names)"
        ),
        _ => writeln!(out, "# links asked about: {}", text.join(", ")),
    };
}

/// Every server `source` that is not an address of this machine: a
/// connection from it would fail (EADDRNOTAVAIL) on every try. Checked by
/// binding a socket to it; `ifs`, when listed, names the interfaces.
fn absent_sources(config: &crate::config::Config, ifs: Option<&[Interface]>) -> Vec<String> {
    let mut out = Vec::new();
    for s in &config.servers {
        let Some(src) = s.source else { continue };
        if let Err(e) = std::net::UdpSocket::bind((src, 0)) {
            let known = ifs.map(|ifs| {
                ifs.iter().any(|i| {
                    i.addresses
                        .iter()
                        .any(|a| std::net::IpAddr::V6(a.addr()) == src)
                })
            });
            let hint = match known {
                Some(false) | None => "not an address of this machine",
                Some(true) => "an address of this machine that cannot be used yet (tentative?)",
            };
            out.push(format!(
                "server {}: source {src} is {hint} ({e}); a connection from it would fail on every try",
                s.socket_addr()
            ));
        }
    }
    out
}
