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
    /// Write the man pages and shell completions generated from this command line.
    ///
    /// Writes DIR/man/pdrestore.8 (and one page per subcommand) and
    /// DIR/completions/{pdrestore.bash,_pdrestore,pdrestore.fish}.
    #[command(hide = true)]
    GenerateDocs {
        /// Output directory (the repository keeps them under docs/).
        dir: PathBuf,
    },
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
        /// Internal: already inside a private network namespace.
        #[arg(long, hide = true)]
        in_private_netns: bool,
    },
    /// Restore the delegated-prefix routes: query every server, reconcile, install.
    ///
    /// Exit status: 0 every server answered and every planned route is in
    /// place; 1 partial (a server failed or a route did, but something was
    /// restored); 2 nothing restored; 64 usage error; 70 internal error (route
    /// table unusable); 78 configuration error. SIGTERM/SIGINT stop cleanly:
    /// what was received is installed, nothing is pruned, a rerun converges.
    Recover {
        /// Configuration file.
        #[arg(long, short, default_value = pdrestore::config::DEFAULT_PATH)]
        config: PathBuf,
        /// Plan and print the changes; touch nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the summary as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Print the relay DUID (hex and colon-hex) and where it comes from.
    ///
    /// The DUID is the configured `relay_duid`, or the one stored in the state
    /// directory, or a new one generated and stored now (RFC 5460 5.4.1). Set
    /// it as the Relay-ID in the relay agent's configuration.
    Duid {
        /// Configuration file.
        #[arg(long, short, default_value = pdrestore::config::DEFAULT_PATH)]
        config: PathBuf,
    },
    /// Validate the configuration file and print the effective settings.
    CheckConfig {
        /// Configuration file.
        #[arg(long, short, default_value = pdrestore::config::DEFAULT_PATH)]
        config: PathBuf,
    },
    /// Decode Bulk Leasequery messages: a raw stream (RFC 5460 5.1 framing), or a pcap or pcapng capture.
    ///
    /// Prints every message (type, xid, status) and every binding. A pcap or
    /// pcapng file (told by its magic number; tcpdump, dumpcap, tshark) has
    /// its TCP connections to or from port 547 (and each --port) reassembled,
    /// and each direction is decoded as a raw stream, under a header line
    /// naming the connection and direction. Exit code 0 when everything
    /// decoded; 1 when some frame or option was malformed, octets are
    /// missing from a captured stream, the capture is malformed or has no
    /// TCP traffic on those ports; 66 when the file cannot be read.
    Decode {
        /// The file: a raw stream (e.g. a Kea `*.response.bin`), pcap or pcapng; `-` reads standard input.
        file: PathBuf,
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
        /// In a capture, also follow TCP connections on this port (547 always is); repeatable.
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
    Query(Box<pdrestore::requestor::cli::QueryArgs>),
    /// Serve bindings over Bulk Leasequery (RFC 5460): a lab and test server
    /// that can misbehave on purpose.
    LabServer(Box<pdrestore::server::cli::LabServerArgs>),
}

/// Exit status for command-line usage errors (sysexits EX_USAGE).
const EXIT_USAGE: u8 = 64;
/// Exit status for configuration errors (sysexits EX_CONFIG).
const EXIT_CONFIG: u8 = 78;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    // The demo prints its own story; its servers' logs would drown it.
    init_logging(if matches!(cli.command, Command::Demo { .. }) {
        "warn"
    } else {
        "info"
    });
    match cli.command {
        Command::Decode { file, json, ports } => cmd_decode(&file, json, &ports),
        Command::Query(args) => pdrestore::requestor::cli::run(*args),
        Command::Duid { config } => cmd_duid(&config),
        Command::GenerateDocs { dir } => cmd_generate_docs(&dir),
        Command::Demo {
            bindings,
            links,
            show,
            in_private_netns,
        } => cmd_demo(
            pdrestore::demo::DemoOptions {
                bindings,
                links,
                show,
            },
            in_private_netns,
        ),
        Command::Recover {
            config,
            dry_run,
            json,
        } => cmd_recover(&config, dry_run, json),
        Command::LabServer(args) => pdrestore::server::cli::run(*args),
        Command::CheckConfig { config } => cmd_check_config(&config),
    }
}

fn load_config(path: &std::path::Path) -> Result<pdrestore::config::Config, ExitCode> {
    pdrestore::config::Config::load(path).map_err(|e| {
        eprintln!("pdrestore: {e}");
        ExitCode::from(EXIT_CONFIG)
    })
}

fn cmd_duid(path: &std::path::Path) -> ExitCode {
    let config = match load_config(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match pdrestore::identity::relay_duid(config.relay_duid.as_ref(), &config.state_directory) {
        Ok((duid, source)) => {
            println!("{}", duid.to_hex());
            println!("{}", duid.to_colon_hex());
            eprintln!("relay DUID {source}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pdrestore: {e}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

fn cmd_check_config(path: &std::path::Path) -> ExitCode {
    match load_config(path) {
        Ok(config) => {
            print!("{}", config.to_toml());
            eprintln!("{}: OK", path.display());
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

fn cmd_decode(file: &std::path::Path, json: bool, ports: &[u16]) -> ExitCode {
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
    use pdrestore::decode::capture::Format;
    let format = Format::detect(&data);
    if format != Format::Raw {
        return cmd_decode_capture(file, &data, format, json, ports);
    }
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

/// `decode` of a pcap or pcapng file: every direction of every connection
/// on the ports, decoded as a raw stream.
fn cmd_decode_capture(
    file: &std::path::Path,
    data: &[u8],
    format: pdrestore::decode::capture::Format,
    json: bool,
    extra_ports: &[u16],
) -> ExitCode {
    use pdrestore::decode::capture::{self, DecodedStream};
    let mut ports = vec![capture::BULK_LEASEQUERY_PORT];
    for p in extra_ports {
        if !ports.contains(p) {
            ports.push(*p);
        }
    }
    let port_list = ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let name = file.display();
    let cap = match capture::read_capture(data, format, &ports) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("pdrestore: {name}: {e}");
            return ExitCode::from(1);
        }
    };
    for note in capture::notes(&cap) {
        eprintln!("pdrestore: {name}: {note}");
    }
    let mut failed = false;
    if let Some(e) = &cap.error {
        eprintln!("pdrestore: {name}: {e}; the packets before it are decoded");
        failed = true;
    }
    if cap.streams.is_empty() {
        eprintln!(
            "pdrestore: {name}: no TCP traffic on port{} {port_list} in {} packet(s) ({format})",
            if ports.len() > 1 { "s" } else { "" },
            cap.packets
        );
        return ExitCode::from(1);
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for stream in cap.streams {
        let d = DecodedStream::new(stream);
        failed |= d.failed();
        let lines = if json { d.json_lines() } else { d.text_lines() };
        for line in lines {
            if writeln!(out, "{line}").is_err() {
                return ExitCode::from(74);
            }
        }
    }
    if out.flush().is_err() {
        return ExitCode::from(74);
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Logs go to stderr; `RUST_LOG` (tracing-subscriber syntax) sets the level, `default` otherwise.
fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Resolves on SIGTERM or SIGINT.
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

fn cmd_recover(path: &std::path::Path, dry_run: bool, json: bool) -> ExitCode {
    let config = match load_config(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let relay = match pdrestore::identity::relay_duid(
        config.relay_duid.as_ref(),
        &config.state_directory,
    ) {
        Ok((d, _)) => d,
        Err(e) => {
            eprintln!("pdrestore: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pdrestore: cannot start the runtime: {e}");
            return ExitCode::from(70);
        }
    };
    let result = rt.block_on(async {
        let mut table = pdrestore::routes::NetlinkTable::open()?;
        let interfaces = table.interfaces()?;
        let opts = pdrestore::agent::RecoverOptions {
            dry_run,
            ..Default::default()
        };
        pdrestore::agent::recover(&config, &relay, table, interfaces, &opts, stop_signal()).await
    });
    match result {
        Ok((summary, _)) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string(&summary).expect("summary serialises")
                );
            } else {
                print!("{}", summary.to_text());
            }
            ExitCode::from(summary.exit_code)
        }
        Err(e) => {
            eprintln!("pdrestore: {e}");
            ExitCode::from(70)
        }
    }
}

fn cmd_demo(opts: pdrestore::demo::DemoOptions, in_private_netns: bool) -> ExitCode {
    let result = if in_private_netns {
        pdrestore::demo::run_in_current_namespace(&opts)
    } else if pdrestore::netns::can_create() {
        pdrestore::demo::run_as_root(&opts)
    } else {
        // Not root: run again inside an unprivileged user + network namespace.
        let exe = match std::env::current_exe() {
            Ok(e) => e,
            Err(e) => {
                eprintln!("pdrestore demo: cannot find my own executable: {e}");
                return ExitCode::from(70);
            }
        };
        let status = std::process::Command::new("unshare")
            .args(["--user", "--map-root-user", "--net", "--"])
            .arg(exe)
            .args([
                "demo",
                "--in-private-netns",
                "--bindings",
                &opts.bindings.to_string(),
                "--links",
                &opts.links.to_string(),
                "--show",
                &opts.show.to_string(),
            ])
            .status();
        return match status {
            Ok(s) => ExitCode::from(s.code().unwrap_or(70).clamp(0, 255) as u8),
            Err(e) => {
                eprintln!("pdrestore demo: not root, and unshare(1) failed: {e}; run as root or enable unprivileged user namespaces");
                ExitCode::from(70)
            }
        };
    };
    match result {
        Ok(summary) => ExitCode::from(summary.exit_code),
        Err(e) => {
            eprintln!("pdrestore demo: {e}");
            ExitCode::from(70)
        }
    }
}

fn cmd_generate_docs(dir: &std::path::Path) -> ExitCode {
    use clap::CommandFactory;
    fn write_man(cmd: &clap::Command, name: &str, dir: &std::path::Path) -> std::io::Result<()> {
        let cmd = cmd.clone().name(name.to_string());
        let mut buf = Vec::new();
        clap_mangen::Man::new(cmd.clone())
            .section("8")
            .render(&mut buf)?;
        std::fs::write(dir.join(format!("{name}.8")), buf)?;
        for sub in cmd
            .get_subcommands()
            .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        {
            write_man(sub, &format!("{name}-{}", sub.get_name()), dir)?;
        }
        Ok(())
    }
    let result = (|| -> std::io::Result<()> {
        let mut cmd = Cli::command();
        cmd.build();
        let man = dir.join("man");
        let comp = dir.join("completions");
        std::fs::create_dir_all(&man)?;
        std::fs::create_dir_all(&comp)?;
        write_man(&cmd, "pdrestore", &man)?;
        use clap_complete::{generate_to, Shell};
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            generate_to(shell, &mut cmd, "pdrestore", &comp)?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pdrestore generate-docs: {}: {e}", dir.display());
            ExitCode::from(74)
        }
    }
}
