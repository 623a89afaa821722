//! The `pdrestore` command line.

use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Restore IPv6 delegated-prefix routes on a DHCPv6 relay with Bulk Leasequery (RFC 5460).
#[derive(Parser, Debug)]
#[command(name = "pdrestore", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Decode a captured byte stream of framed DHCPv6 messages (RFC 5460 5.1 framing).
    ///
    /// Prints every message (type, xid, status) and every binding. Exit code 0
    /// when everything decoded, 1 when some frame or option was malformed.
    Decode {
        /// The capture file (e.g. a Kea `*.response.bin`); `-` reads standard input.
        file: PathBuf,
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Serve bindings over Bulk Leasequery (RFC 5460): a lab and test server
    /// that can misbehave on purpose.
    LabServer(Box<pdrestore::server::cli::LabServerArgs>),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match cli.command {
        Command::Decode { file, json } => cmd_decode(&file, json),
        Command::LabServer(args) => pdrestore::server::cli::run(*args),
    }
}

fn cmd_decode(file: &std::path::Path, json: bool) -> ExitCode {
    let data = if file.as_os_str() == "-" {
        let mut v = Vec::new();
        if let Err(e) = std::io::Read::read_to_end(&mut std::io::stdin(), &mut v) {
            eprintln!("pdrestore: reading standard input: {e}");
            return ExitCode::from(66);
        }
        v
    } else {
        match std::fs::read(file) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("pdrestore: {}: {e}", file.display());
                return ExitCode::from(66);
            }
        }
    };
    let records = pdrestore::decode::decode_stream(&data);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut failed = false;
    for r in &records {
        failed |= matches!(r, pdrestore::decode::Record::Error { .. });
        let line = if json {
            serde_json::to_string(r).expect("records serialise")
        } else {
            pdrestore::decode::format_record(r)
        };
        if writeln!(out, "{line}").is_err() {
            return ExitCode::from(74);
        }
    }
    let _ = out.flush();
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Logs go to stderr; `RUST_LOG` (tracing-subscriber syntax) sets the level, `info` by default.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
