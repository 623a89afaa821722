//! `pdrestore status`: the routes pdrestore holds and what it knows of
//! each ([`crate::status`]), read from the kernel, the state directory
//! (the ledger, the last run) and follow's live socket.

use super::{load_config_in_vrf, runtime};
use crate::agent::last_run::LastRun;
use crate::exit;
use crate::follow::live::{self, LiveError, LiveRequest};
use crate::recovery::ledger;
use crate::routes::{NetlinkTable, RouteTable, TableRoute};
use crate::status::{normalize_duid, unix, Filters, Sources, Status};
use ipnet::Ipv6Net;
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

/// How long follow may take to answer.
const LIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// The command line of `status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Configuration file.
    #[arg(long, short, default_value = crate::config::DEFAULT_PATH)]
    pub config: std::path::PathBuf,
    /// Print one JSON object (every matching route) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Only routes inside this prefix (or equal to it).
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<Ipv6Net>,
    /// Only routes whose lease is this client's (DUID in hex, with or
    /// without colons).
    #[arg(long, value_name = "DUID")]
    pub client: Option<String>,
    /// Only routes out of this interface.
    #[arg(long, value_name = "NAME")]
    pub interface: Option<String>,
    /// Routes (and missing leases) listed in the text at most; 0 lists all.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

/// Run `status`.
pub fn run(args: StatusArgs) -> ExitCode {
    let config = match load_config_in_vrf(&args.config) {
        Ok(c) => c,
        Err(code) => return ExitCode::from(code),
    };
    let client = match args.client.as_deref().map(normalize_duid) {
        Some(None) => {
            eprintln!(
                "pdrestore: --client {:?} is not a DUID in hex",
                args.client.unwrap_or_default()
            );
            return ExitCode::from(exit::USAGE);
        }
        Some(Some(c)) => Some(c),
        None => None,
    };
    let filters = Filters {
        prefix: args.prefix.map(|p| p.trunc()),
        client,
        interface: args.interface,
    };
    let rt = match runtime(None) {
        Ok(rt) => rt,
        Err(code) => return ExitCode::from(code),
    };
    let dir = &config.state_directory;
    let gathered = rt.block_on(async {
        let ours = ours(&config).await?;
        let request = LiveRequest {
            prefix: filters.prefix,
            client: filters.client.clone(),
            interface: filters.interface.clone(),
            no_routes: false,
        };
        let live = match live::ask(&dir.join(live::SOCKET_NAME), &request, LIVE_TIMEOUT).await {
            Ok(x) => Some(Ok(x)),
            Err(LiveError::NotRunning { .. }) => None,
            Err(e) => Some(Err(e.to_string())),
        };
        Ok::<_, String>((ours, live))
    });
    let (ours, live) = match gathered {
        Ok(x) => x,
        Err(e) => {
            eprintln!("pdrestore: {e}");
            return ExitCode::from(exit::SOFTWARE);
        }
    };
    let ledger = match ledger::read(dir) {
        Ok(l) => Some(Ok(l)),
        Err(e) if e.is_missing() => None,
        Err(e) => Some(Err(e.to_string())),
    };
    let last_run = LastRun::load(dir).transpose();
    let sources = Sources {
        ledger,
        last_run,
        live,
    };
    let status = Status::build(
        config.routes.table,
        config.routes.protocol,
        ours,
        sources,
        filters,
        unix(SystemTime::now()),
    );
    let out = if args.json {
        serde_json::to_string_pretty(&status).expect("a status serializes") + "\n"
    } else {
        status.to_text(args.limit)
    };
    if std::io::stdout().lock().write_all(out.as_bytes()).is_err() {
        return ExitCode::from(exit::IOERR);
    }
    // A lease known to be current without its route is worth an alert.
    ExitCode::from(if status.missing.is_empty() {
        exit::OK
    } else {
        exit::PARTIAL
    })
}

/// Our routes in the kernel, by the ownership rule (at any metric).
async fn ours(config: &crate::config::Config) -> Result<Vec<TableRoute>, String> {
    let owner = config.ownership();
    let mut table = NetlinkTable::open().map_err(|e| format!("cannot open rtnetlink: {e}"))?;
    let mut out = Vec::new();
    table
        .list_table(config.routes.table, &mut |r| {
            if owner.owns(&r) {
                out.push(r);
            }
        })
        .await
        .map_err(|e| format!("cannot list table {}: {e}", config.routes.table))?;
    Ok(out)
}
