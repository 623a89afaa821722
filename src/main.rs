//! The `pdrestore` command line.

use clap::Parser;
use pdrestore::cli::{Cli, Command};
use std::io::Write;
use std::process::ExitCode;

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
        Command::Query(args) => pdrestore::cli::query::run(*args),
        Command::Duid { config } => cmd_duid(&config),
        Command::Demo {
            bindings,
            links,
            show,
        } => cmd_demo(pdrestore::demo::DemoOptions {
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
        } => cmd_recover(&config, dry_run, json, force_prune, metrics_file),
        Command::Follow {
            config,
            once,
            idle,
            metrics_file,
        } => cmd_follow(&config, once.then_some(idle), metrics_file),
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
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("pdrestore: {}: {e}", path.display());
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let config = match pdrestore::config::Config::parse(&text, path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("pdrestore: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    print!("{}", config.to_toml());
    // The effective identities, without creating anything.
    match pdrestore::identity::lookup(config.relay_duid.as_ref(), &config.state_directory) {
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
            return ExitCode::from(EXIT_CONFIG);
        }
    }
    if !config.routes.interfaces.is_empty() {
        let links = pdrestore::routes::netlink::links_now();
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

/// Logs go to stderr; `RUST_LOG` (tracing-subscriber syntax) sets the
/// level, `default` otherwise. Colour only on a terminal, and never with
/// `NO_COLOR` set (no escape codes in journald).
fn init_logging(default: &str) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && !no_color)
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

/// `recover`, then its metrics file (`--metrics-file`, or `metrics_file`
/// of the configuration; none for a dry run). A metrics file that cannot
/// be written is logged and leaves the exit status alone.
fn cmd_recover(
    path: &std::path::Path,
    dry_run: bool,
    json: bool,
    force_prune: bool,
    mut metrics_file: Option<std::path::PathBuf>,
) -> ExitCode {
    let (code, summary) = recover(path, dry_run, json, force_prune, &mut metrics_file);
    if let Some(file) = metrics_file.filter(|_| !dry_run) {
        use pdrestore::metrics::{write_recover, RecoverMetrics};
        let now = std::time::SystemTime::now();
        let run = match &summary {
            Some(s) => RecoverMetrics::from_summary(s, now),
            None => RecoverMetrics::failure(code, now),
        };
        if let Err(e) = write_recover(&file, &run) {
            tracing::warn!(file = %file.display(), error = %e, "cannot write the metrics file; the old one, if any, is left as it was");
        }
    }
    ExitCode::from(code)
}

/// The exit status, and the summary when the run got that far;
/// `metrics_file` is set from the configuration unless already given.
fn recover(
    path: &std::path::Path,
    dry_run: bool,
    json: bool,
    force_prune: bool,
    metrics_file: &mut Option<std::path::PathBuf>,
) -> (u8, Option<pdrestore::agent::Summary>) {
    let config = match pdrestore::config::Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("pdrestore: {e}");
            return (EXIT_CONFIG, None);
        }
    };
    if metrics_file.is_none() {
        metrics_file.clone_from(&config.metrics_file);
    }
    let mut notes = Vec::new();
    // A dry run creates nothing, not even the relay DUID.
    let relay = if dry_run {
        pdrestore::identity::lookup(config.relay_duid.as_ref(), &config.state_directory).map(|found| {
            found.map(|(d, _)| d).unwrap_or_else(|| {
                notes.push(format!(
                    "no relay DUID is configured or stored in {} yet: this dry run asked with a temporary one, which no server knows",
                    config.state_directory.display()
                ));
                pdrestore::identity::generate()
            })
        })
    } else {
        pdrestore::identity::relay_duid(config.relay_duid.as_ref(), &config.state_directory)
            .map(|(d, _)| d)
    };
    let relay = match relay {
        Ok(d) => d,
        Err(e) => {
            eprintln!("pdrestore: {e}");
            return (EXIT_CONFIG, None);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pdrestore: cannot start the runtime: {e}");
            return (70, None);
        }
    };
    let opts = pdrestore::agent::RecoverOptions {
        dry_run,
        force_prune,
        ..Default::default()
    };
    let result = rt.block_on(pdrestore::agent::run(&config, &relay, &opts, stop_signal()));
    match result {
        Ok(mut summary) => {
            summary.notes.extend(notes);
            if json {
                println!(
                    "{}",
                    serde_json::to_string(&summary).expect("summary serialises")
                );
            } else {
                print!("{}", summary.to_text());
            }
            (summary.exit_code, Some(summary))
        }
        Err(e) => {
            eprintln!("pdrestore: {e}");
            (e.exit_code(), None)
        }
    }
}

fn cmd_follow(
    path: &std::path::Path,
    once: Option<std::time::Duration>,
    metrics_file: Option<std::path::PathBuf>,
) -> ExitCode {
    let config = match load_config(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let metrics_file = metrics_file.or_else(|| config.metrics_file.clone());
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
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pdrestore: cannot start the runtime: {e}");
            return ExitCode::from(70);
        }
    };
    let opts = pdrestore::follow::FollowOptions {
        once,
        notify: true,
        metrics_file,
    };
    let result = rt.block_on(async {
        let control = match pdrestore::follow::shell::signal_control() {
            Ok(c) => c,
            Err(e) => return Err((70, format!("cannot handle signals: {e}"))),
        };
        pdrestore::follow::run(&config, &relay, &opts, control)
            .await
            .map_err(|e| (e.exit_code(), e.to_string()))
    });
    match result {
        Ok(summary) => {
            eprintln!("pdrestore follow: {}", summary.status);
            ExitCode::SUCCESS
        }
        Err((code, text)) => {
            eprintln!("pdrestore: {text}");
            // As `recover` does: an operator's alert sees a service that
            // could not start.
            if let Some(file) = &opts.metrics_file {
                use pdrestore::metrics::{write_recover, RecoverMetrics};
                let run = RecoverMetrics::failure(code, std::time::SystemTime::now());
                if let Err(e) = write_recover(file, &run) {
                    tracing::warn!(file = %file.display(), error = %e, "cannot write the metrics file; the old one, if any, is left as it was");
                }
            }
            ExitCode::from(code)
        }
    }
}

/// Set by the demo for its own second run inside a user + network namespace.
const DEMO_INSIDE: &str = "PDRESTORE_DEMO_IN_PRIVATE_NETNS";

fn cmd_demo(opts: pdrestore::demo::DemoOptions) -> ExitCode {
    let result = if std::env::var_os(DEMO_INSIDE).is_some() {
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
            .env(DEMO_INSIDE, "1")
            .args([
                "demo",
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
