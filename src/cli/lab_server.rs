//! `pdrestore lab-server`: the command line around
//! [`crate::server::serve_many`].

use crate::exit;
use crate::proto::{Duid, QueryType};
use crate::server::faults::{self, Fault};
use crate::server::load;
use crate::server::store::{unix_now, StoreBuilder};
use crate::server::synth::{Synth, SynthConfig};
use crate::server::{serve_many, RelayData, ServerConfig};
use clap::{ArgAction, Args};
use ipnet::{IpNet, Ipv6Net};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Options of `pdrestore lab-server`.
#[derive(Args, Debug, Clone)]
pub struct LabServerArgs {
    /// Address and port to listen on (RFC 5460 s.5.6: port 547); repeat for several.
    #[arg(long, value_name = "ADDR:PORT", default_values_t = [SocketAddr::new(std::net::Ipv6Addr::UNSPECIFIED.into(), crate::proto::SERVER_PORT)])]
    pub listen: Vec<SocketAddr>,

    /// Bindings as JSON Lines, the shape `pdrestore decode --json` prints
    /// (`clt_time` relative to server start, or absolute `cltt`); repeatable.
    #[arg(long, value_name = "FILE")]
    pub bindings: Vec<PathBuf>,

    /// Bindings from a Kea lease dump (tests/data/kea/bindings.json shape),
    /// times moved so that `populated-at` is the server start; repeatable.
    #[arg(long, value_name = "FILE")]
    pub kea_bindings: Vec<PathBuf>,

    /// Generate N synthetic bindings (needs --relay-id).
    #[arg(long, value_name = "N")]
    pub synthetic: Option<u64>,

    /// RELAY_ID (hex DUID) of the first synthetic relay; relay R adds R to its last two octets.
    #[arg(long, value_name = "HEX", requires = "synthetic")]
    pub relay_id: Option<Duid>,

    /// Seed of the synthetic generator.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Number of synthetic relays.
    #[arg(long, default_value_t = 1)]
    pub relays: u32,

    /// Number of synthetic client links (2001:db8:0:J::/64).
    #[arg(long = "links", default_value_t = 4)]
    pub link_count: u32,

    /// Delegated-prefix pool of synthetic bindings.
    #[arg(long, default_value = "2001:db8:8000::/33")]
    pub pool: Ipv6Net,

    /// Length of synthetic delegated prefixes.
    #[arg(long, default_value_t = 56)]
    pub delegated_len: u8,

    /// Share of synthetic clients holding an IA_NA address instead of a prefix.
    #[arg(long, default_value_t = 0.1)]
    pub ia_na_share: f64,

    /// Distinct synthetic remote-ids per relay (0: none).
    #[arg(long, default_value_t = 16)]
    pub remote_ids: u32,

    /// Share of synthetic clients behind two relays.
    #[arg(long, default_value_t = 0.0)]
    pub two_hop_share: f64,

    /// Link prefix (repeatable); a /64 is derived around any other relay link-address.
    #[arg(long = "link", value_name = "PREFIX")]
    pub link: Vec<Ipv6Net>,

    /// The server DUID (hex); a fixed DUID-EN by default.
    #[arg(long, value_name = "HEX")]
    pub server_duid: Option<Duid>,

    /// BULK_LQ_MAX_CONNS: connections open at once; more are closed at once.
    #[arg(long, default_value_t = crate::server::BULK_LQ_MAX_CONNS)]
    pub max_conns: usize,

    /// Source prefix allowed to connect (repeatable); everyone when none is given.
    #[arg(long, value_name = "PREFIX")]
    pub allow: Vec<IpNet>,

    /// Requestor DUID allowed to query (repeatable); others get NotAllowed.
    #[arg(long, value_name = "HEX")]
    pub allow_requestor: Vec<Duid>,

    /// Query type allowed (1-5, repeatable); others get NotAllowed.
    #[arg(long, value_name = "N")]
    pub allow_query_type: Vec<u8>,

    /// BULK_LQ_DATA_TIMEOUT: idle or blocked connections are closed after it.
    #[arg(long, default_value = "300s", value_parser = humantime::parse_duration)]
    pub data_timeout: Duration,

    /// Queries processed in parallel per connection.
    #[arg(long, default_value_t = 4)]
    pub max_parallel_queries: usize,

    /// One binding per OPTION_CLIENT_DATA (Kea's shape); `false` groups a client's bindings.
    #[arg(long, default_value_t = true, action = ArgAction::Set, value_name = "BOOL")]
    pub one_binding_per_client_data: bool,

    /// STATUS_CODE Success in every successful REPLY (Kea does; RFC 5460 s.7.2 omits it).
    #[arg(long)]
    pub status_on_success: bool,

    /// Serve bindings marked reclaimed to relay-id and remote-id queries (Kea 3.3 quirk).
    #[arg(long)]
    pub serve_reclaimed: bool,

    /// When to send OPTION_LQ_RELAY_DATA.
    #[arg(long, value_enum, default_value_t = RelayData::Always)]
    pub relay_data: RelayData,

    /// Octets buffered per query before a write.
    #[arg(long, default_value_t = 64 * 1024)]
    pub write_batch: usize,

    /// Inject a fault, e.g. `close-after=5`, `stall-after=3,conn=0`,
    /// `done-error=2:1,xid=0x102`, `delay-each=10ms` (repeatable; see the docs
    /// of pdrestore::server::faults).
    #[arg(long, value_name = "SPEC")]
    pub fault: Vec<Fault>,

    /// Faults from a file: one `--fault` SPEC per line; blank lines and `#` comments skipped.
    #[arg(long, value_name = "FILE")]
    pub fault_file: Vec<PathBuf>,
}

impl LabServerArgs {
    /// The server configuration these options give.
    pub fn config(&self) -> ServerConfig {
        ServerConfig {
            server_duid: self
                .server_duid
                .clone()
                .unwrap_or_else(crate::server::default_server_duid),
            max_conns: self.max_conns,
            allow: self.allow.clone(),
            allowed_requestors: self.allow_requestor.clone(),
            allowed_query_types: self
                .allow_query_type
                .iter()
                .map(|&q| QueryType::from(q))
                .collect(),
            data_timeout: self.data_timeout,
            max_parallel_queries: self.max_parallel_queries,
            one_binding_per_client_data: self.one_binding_per_client_data,
            status_on_success: self.status_on_success,
            relay_data: self.relay_data,
            serve_reclaimed: self.serve_reclaimed,
            write_batch: self.write_batch,
            faults: self.fault.clone(),
        }
    }

    /// Build the binding store these options describe.
    pub fn store(&self, start: u64) -> Result<crate::server::BindingStore, String> {
        let mut b = StoreBuilder::new();
        for f in &self.bindings {
            for (n, r) in load::read_json_lines(f, start)
                .map_err(|e| e.to_string())?
                .iter()
                .enumerate()
            {
                b.push(r)
                    .map_err(|e| format!("{}: binding {}: {e}", f.display(), n + 1))?;
            }
        }
        for f in &self.kea_bindings {
            for (n, r) in load::read_kea(f, start)
                .map_err(|e| e.to_string())?
                .iter()
                .enumerate()
            {
                b.push(r)
                    .map_err(|e| format!("{}: lease #{n}: {e}", f.display()))?;
            }
        }
        if let Some(count) = self.synthetic {
            let relay_id = self
                .relay_id
                .clone()
                .ok_or("--synthetic needs --relay-id HEX")?;
            let synth = Synth::new(SynthConfig {
                count,
                seed: self.seed,
                relay_id,
                relays: self.relays,
                links: self.link_count,
                pool: self.pool,
                delegated_len: self.delegated_len,
                ia_na_share: self.ia_na_share,
                remote_ids: self.remote_ids,
                two_hop_share: self.two_hop_share,
                now: start,
                ..SynthConfig::default()
            })
            .map_err(|e| format!("--synthetic: {e}"))?;
            b.reserve(usize::try_from(count).unwrap_or(usize::MAX).min(1 << 26));
            for r in synth {
                b.push(&r).map_err(|e| format!("--synthetic: {e}"))?;
            }
        }
        Ok(b.build(&self.link))
    }
}

/// Run the lab server until SIGTERM or SIGINT.
pub fn run(args: LabServerArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pdrestore lab-server: tokio runtime: {e}");
            return ExitCode::from(exit::SOFTWARE);
        }
    };
    rt.block_on(async move {
        let start = unix_now();
        let store = match args.store(start) {
            Ok(s) => Arc::new(s),
            Err(e) => {
                eprintln!("pdrestore lab-server: {e}");
                return ExitCode::from(exit::DATAERR);
            }
        };
        let mut config = args.config();
        for f in &args.fault_file {
            match faults::read_file(f) {
                Ok(v) => config.faults.extend(v),
                Err(e) => {
                    eprintln!("pdrestore lab-server: {e}");
                    return ExitCode::from(exit::DATAERR);
                }
            }
        }
        let mut listeners = Vec::new();
        for a in &args.listen {
            match tokio::net::TcpListener::bind(a).await {
                Ok(l) => listeners.push(l),
                Err(e) => {
                    eprintln!("pdrestore lab-server: listen on {a}: {e}");
                    return ExitCode::from(exit::UNAVAILABLE);
                }
            }
        }
        tracing::info!(
            bindings = store.len(),
            links = store.links().len(),
            store_bytes = store.heap_size(),
            listen = ?args.listen,
            "lab server ready"
        );
        match serve_many(listeners, store, config, super::stop_signal()).await {
            Ok(()) => {
                tracing::info!("lab server stopped");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("pdrestore lab-server: {e}");
                ExitCode::from(exit::IOERR)
            }
        }
    })
}
