//! `pdrestore check-config` and `pdrestore duid`: the configuration and
//! the identities it gives, without touching anything.

use super::load_config;
use crate::exit;
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
            println!("{}", duid.to_hex());
            println!("{}", duid.to_colon_hex());
            eprintln!("relay DUID {source}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pdrestore: {e}");
            ExitCode::from(exit::CONFIG)
        }
    }
}

/// `pdrestore check-config`: validate, print the effective settings.
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
    print!("{}", config.to_toml());
    // The effective identities, without creating anything.
    match crate::identity::lookup(config.relay_duid.as_ref(), &config.state_directory) {
        Ok(Some((relay, source))) => {
            println!("# relay DUID: {} ({source})", relay.to_hex());
            let requestor = config.requestor_duid.clone().unwrap_or(relay);
            println!("# requestor DUID: {}", requestor.to_hex());
        }
        Ok(None) => {
            println!(
                "# relay DUID: none yet; the first `pdrestore recover` (or `pdrestore duid`) generates one in {}",
                config.state_directory.display()
            );
            match &config.requestor_duid {
                Some(d) => println!("# requestor DUID: {}", d.to_hex()),
                None => println!("# requestor DUID: the relay DUID"),
            }
        }
        Err(e) => {
            eprintln!("pdrestore: {e}");
            return ExitCode::from(exit::CONFIG);
        }
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
