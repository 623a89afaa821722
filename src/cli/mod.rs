//! The `pdrestore` command line: every subcommand's clap definition and
//! the code that runs it, in one place (the binary's `main` is [`main`]).
//! The definitions are shared with the generation of the man pages and
//! shell completions (see [`crate::docs`]).
//!
//! One file per subcommand: [`recover`], [`follow`], [`query`] (the
//! requestor run by hand), [`lab_server`], [`decode`], [`check`]
//! (`check-config` and `duid`), [`demo`]; [`log`] sets up the log, for a
//! terminal or for the journal. What they share (the runtime, signals,
//! the configuration, writing to standard output) is here.

pub mod check;
pub mod decode;
pub mod demo;
pub mod follow;
pub mod lab_server;
pub mod log;
pub mod query;
pub mod recover;
pub mod status;

use crate::exit;
use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Restore IPv6 delegated-prefix routes on a DHCPv6 relay with Bulk Leasequery (RFC 5460).
#[derive(Parser, Debug)]
#[command(name = "pdrestore", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the whole job on an embedded default, in a private network namespace.
    ///
    /// Starts two lab servers in-process with synthetic bindings that partly
    /// disagree, creates a private network namespace with veth client links
    /// (as root with `ip netns`, otherwise in an unprivileged user+network
    /// namespace), runs the real recovery into it, prints the kernel routes
    /// and the summary, and cleans up. The host's routes are never touched.
    Demo {
        /// Bindings per server.
        #[arg(long, default_value_t = 2000)]
        bindings: u64,
        /// Client-facing links (veth pairs).
        #[arg(long, default_value_t = 4)]
        links: u32,
        /// Routes to print (0 = all).
        #[arg(long, default_value_t = 12)]
        show: usize,
    },
    /// Restore the delegated-prefix routes: query every server, reconcile, install.
    ///
    /// Exit status: 0 every server answered and every planned route is in
    /// place; 1 partial (a server failed, a route did, an interface was
    /// missing, or the prune rail refused a prune, but something was
    /// restored); 2 nothing restored; 64 usage error; 70 internal error (route
    /// table unusable); 74 standard output could not be written; 75 refused
    /// at once: another pdrestore (`follow`, or a `recover`) writes the
    /// routes, named in the one line printed (`systemctl reload
    /// pdrestore-follow` resyncs a running follow); 77 no permission to
    /// change routes (CAP_NET_ADMIN); 78 configuration error. SIGTERM/SIGINT
    /// stop cleanly: what was received is installed, nothing is pruned, a
    /// rerun converges. One writer at a time: a run (not a dry run) holds
    /// the lock `writer.lock` in the state directory.
    Recover {
        /// Configuration file.
        #[arg(long, short, default_value = crate::config::DEFAULT_PATH)]
        config: PathBuf,
        /// Plan and print the changes; touch nothing (not even the state directory).
        #[arg(long)]
        dry_run: bool,
        /// Print the summary as one JSON object.
        #[arg(long)]
        json: bool,
        /// Prune past the rail for this run: remove our unbacked routes even
        /// when every server answered empty or the removal exceeds prune_limit.
        #[arg(long)]
        force_prune: bool,
        /// Write the run's outcome and figures to this file for
        /// node_exporter's textfile collector (Prometheus text format,
        /// replaced atomically); overrides `metrics_file` of the
        /// configuration. A dry run writes none.
        #[arg(long, value_name = "PATH")]
        metrics_file: Option<PathBuf>,
    },
    /// Keep the routes in step with the leases: start-up recovery, then snoop the relay's DHCPv6 traffic (RFC 8987).
    ///
    /// Runs the same recovery as `recover` (every safety rule included),
    /// tells systemd READY=1, then watches the client-facing interfaces
    /// (AF_PACKET, needs CAP_NET_RAW): a REPLY leaving the router installs
    /// or refreshes a delegated prefix's route, a valid lifetime of 0 or a
    /// confirmed RELEASE/DECLINE removes it, routes dropped with an
    /// interface come back with it, and a Bulk Leasequery resync runs every
    /// `[follow] resync_interval` and on SIGHUP. SIGTERM stops cleanly and
    /// leaves every route in place. It holds the writer lock (`writer.lock`
    /// in the state directory) for its lifetime, so a `recover` meanwhile is
    /// refused. Exit status: 0 stopped cleanly; 64 usage; 70 internal error;
    /// 75 refused at once: another pdrestore writes the routes (named); 77
    /// no CAP_NET_ADMIN or CAP_NET_RAW; 78 configuration error.
    Follow {
        /// Configuration file.
        #[arg(long, short, default_value = crate::config::DEFAULT_PATH)]
        config: PathBuf,
        /// After the start-up recovery, handle what arrives until nothing has for `--idle`, then exit 0 (tests, one-off catch-up).
        #[arg(long)]
        once: bool,
        /// With --once: how long without a packet or kernel event ends the run.
        #[arg(long, default_value = "1s", value_parser = humantime::parse_duration, requires = "once")]
        idle: std::time::Duration,
        /// Keep this file for node_exporter's textfile collector: the last
        /// recovery (start-up or resync) as `recover` writes it, and the
        /// service's counters, rewritten after each resync and each batch of
        /// route changes (at most once a second); overrides `metrics_file`
        /// of the configuration.
        #[arg(long, value_name = "PATH")]
        metrics_file: Option<PathBuf>,
    },
    /// Print the relay DUID (hex and colon-hex) and where it comes from.
    ///
    /// The DUID is the configured `relay_duid`, or the one stored in the state
    /// directory, or a new one generated and stored now (RFC 5460 5.4.1). Set
    /// it as the Relay-ID in the relay agent's configuration.
    Duid {
        /// Configuration file.
        #[arg(long, short, default_value = crate::config::DEFAULT_PATH)]
        config: PathBuf,
    },
    /// Validate the configuration file and print the effective settings.
    ///
    /// Also prints the relay and requestor DUIDs, and the worst case of one
    /// run (`recover`, or follow's start-up recovery) with these settings:
    /// the longest it can wait for interfaces and servers, which the unit's
    /// TimeoutStartSec must cover. Exit status: 0 valid; 74 standard output
    /// could not be written; 78 not valid.
    CheckConfig {
        /// Configuration file.
        #[arg(long, short, default_value = crate::config::DEFAULT_PATH)]
        config: PathBuf,
    },
    /// Decode DHCPv6: Bulk Leasequery from a raw stream (RFC 5460 5.1 framing), or a pcap or pcapng capture of it and of DHCPv6 over UDP.
    ///
    /// Prints every message (type, xid, status) and every binding. A pcap or
    /// pcapng file (told by its magic number; tcpdump, dumpcap, tshark) has
    /// its TCP connections to or from port 547 (and each --port) reassembled,
    /// and each direction is decoded as a raw stream, under a header line
    /// naming the connection and direction. Then every IPv6 UDP datagram to
    /// or from port 546 or 547 (and each --port) is decoded, in capture order,
    /// after its packet number, source and destination: relay messages
    /// unwrapped (each layer's hop-count, link-address, peer-address,
    /// interface-id, remote-id, relay-id; RFC 8415 s.9), the client and server
    /// DUIDs, each IA_NA with its addresses and IA_PD with its prefixes
    /// (lifetimes, IAID, T1, T2, status codes). Exit code 0 when everything
    /// decoded; 1 when some frame, datagram or option was malformed, octets
    /// are missing from a captured stream, the capture is malformed or has
    /// no DHCPv6 traffic (TCP or UDP) on those ports; 66 when the file cannot
    /// be read; 74 when standard output cannot be written.
    Decode {
        /// The file: a raw stream (e.g. a Kea `*.response.bin`), pcap or pcapng; `-` reads standard input.
        file: PathBuf,
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
        /// In a capture, also follow TCP connections and decode UDP datagrams on this port (547 always is, and 546 for UDP); repeatable.
        #[arg(long = "port", value_name = "PORT")]
        ports: Vec<u16>,
    },
    /// Ask DHCPv6 servers for their bindings with Bulk Leasequery (RFC 5460), all servers at once.
    ///
    /// Exactly one query: --relay-id, --link-address, --remote-id, --client-id or
    /// --address. Bindings are printed as they arrive (a table, or one JSON object
    /// per line with --json); a summary per server (bindings, outcome, duration)
    /// goes to stderr at the end.
    ///
    /// Exit codes: 0 every server's answer was whole (its bindings, or none
    /// matching); 1 some server's answer was not (partial, timed out, refused, or a
    /// status such as NotConfigured), after the retries; 64 bad arguments;
    /// 70 a server called our query malformed (MalformedQuery: a pdrestore bug);
    /// 74 standard output could not be written.
    Query(Box<query::QueryArgs>),
    /// Show the routes pdrestore holds and what it knows of each: client, server, how and when learned, lease end.
    ///
    /// Reads our routes from the kernel (the ownership rule: our table, our
    /// protocol, inside the pools, at any metric) and joins each with the
    /// ledger the last recovery wrote in the state directory (`recover`,
    /// or follow's start-up recovery or resync) and, when `follow` runs,
    /// with its live view over its read-only socket (`follow.sock` in the
    /// state directory: what it snooped since). Prints the counts per
    /// interface, server and way learned, the last recovery's outcome,
    /// follow's state, leases known to be current without a route
    /// ("missing", with why), then the routes. Reading the state directory
    /// and the socket needs root (the directory is 0700). Exit status: 0;
    /// 1 some lease known to be current has no route of ours; 64 usage; 70
    /// the route table could not be read; 74 standard output could not be
    /// written; 78 configuration error.
    Status(Box<status::StatusArgs>),
    /// Serve bindings over Bulk Leasequery (RFC 5460): a lab and test server
    /// that can misbehave on purpose.
    LabServer(Box<lab_server::LabServerArgs>),
}

/// The `pdrestore` command: parse the command line, set up logging, run
/// the subcommand; its exit status (see [`crate::exit`]).
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(exit::USAGE)
            } else {
                ExitCode::from(exit::OK)
            };
        }
    };
    // The demo prints its own story; its servers' logs would drown it.
    log::init(if matches!(cli.command, Command::Demo { .. }) {
        "warn"
    } else {
        "info"
    });
    match cli.command {
        Command::Decode { file, json, ports } => decode::run(&file, json, &ports),
        Command::Query(args) => query::run(*args),
        Command::Duid { config } => check::duid(&config),
        Command::Demo {
            bindings,
            links,
            show,
        } => demo::run(crate::demo::DemoOptions {
            bindings,
            links,
            show,
        }),
        Command::Recover {
            config,
            dry_run,
            json,
            force_prune,
            metrics_file,
        } => recover::run(&config, dry_run, json, force_prune, metrics_file),
        Command::Follow {
            config,
            once,
            idle,
            metrics_file,
        } => follow::run(&config, once.then_some(idle), metrics_file),
        Command::LabServer(args) => lab_server::run(*args),
        Command::Status(args) => status::run(*args),
        Command::CheckConfig { config } => check::check_config(&config),
    }
}

/// The configuration at `path`, or the exit status of its error (printed).
fn load_config(path: &Path) -> Result<crate::config::Config, u8> {
    crate::config::Config::load(path).map_err(|e| {
        eprintln!("pdrestore: {e}");
        exit::CONFIG
    })
}

/// [`load_config`], in the table of its VRF (`routes.vrf`, found in this
/// network namespace now): [`exit::CONFIG`] when there is no such VRF.
fn load_config_in_vrf(path: &Path) -> Result<crate::config::Config, u8> {
    in_vrf(load_config(path)?)
}

/// `config` in the table of its VRF ([`crate::config::Config::with_vrf`]).
fn in_vrf(config: crate::config::Config) -> Result<crate::config::Config, u8> {
    if config.routes.vrf.is_none() {
        return Ok(config);
    }
    let links = crate::routes::netlink::links_now().map_err(|e| {
        eprintln!("pdrestore: cannot list this machine's interfaces for routes.vrf: {e}");
        exit::SOFTWARE
    })?;
    config.with_vrf(&links).map_err(|e| {
        eprintln!("pdrestore: {e}");
        exit::CONFIG
    })
}

/// The writer lock ([`crate::lock`]) for `command`, held by every run
/// that writes routes, or the exit status of its refusal, printed in one
/// line: [`exit::TEMPFAIL`] when another process holds it (named),
/// [`exit::CONFIG`] when the state directory cannot hold it.
fn writer_lock(
    config: &crate::config::Config,
    command: &str,
) -> Result<crate::lock::WriterLock, u8> {
    crate::lock::take(&config.state_directory, command).map_err(|e| {
        eprintln!("pdrestore: {e}");
        match e {
            crate::lock::LockError::Held { .. } => exit::TEMPFAIL,
            crate::lock::LockError::Io { .. } => exit::CONFIG,
        }
    })
}

/// A multi-threaded tokio runtime (with `workers` threads, or one per
/// core), or the exit status of its failure (printed).
fn runtime(workers: Option<usize>) -> Result<tokio::runtime::Runtime, u8> {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = workers {
        b.worker_threads(n);
    }
    b.enable_all().build().map_err(|e| {
        eprintln!("pdrestore: cannot start the runtime: {e}");
        exit::SOFTWARE
    })
}

/// Write `text` to standard output; `Some(`[`exit::IOERR`]`)` when it
/// cannot be written (a closed pipe ends the program quietly, as `head`
/// expects).
fn print_or_quiet(text: &str) -> Option<u8> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => None,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Some(exit::IOERR),
        Err(e) => {
            eprintln!("pdrestore: standard output: {e}");
            Some(exit::IOERR)
        }
    }
}

/// Resolves on SIGTERM or SIGINT (the stop of `recover` and `lab-server`).
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    tracing::info!("stop signal received");
}
