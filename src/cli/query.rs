//! `pdrestore query`: one Bulk Leasequery to one or more servers, bindings
//! printed as they arrive, a per-server summary on stderr.

use crate::config::Config;
use crate::exit;
use crate::proto::duid::parse_hex;
use crate::proto::{Binding, Duid, OwnedBindings, Query, ServerIndex};
use crate::requestor::fanout::{
    parse_server_addr, Fanout, FanoutConfig, QuerySpec, ServerConfig, ServerReport, Update,
};
use crate::requestor::{Delivery, Outcome, RetryPolicy};
use clap::{ArgGroup, Args};
use serde::Serialize;
use std::io::Write;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

// Exit codes (see `crate::exit`): OK every server's answer was whole;
// PARTIAL some was not (partial, failed, or a status); USAGE bad
// arguments; SOFTWARE a server said MalformedQuery (a bug of pdrestore);
// IOERR standard output could not be written; CONFIG a bad configuration.

/// Arguments of `pdrestore query`.
#[derive(Args, Debug, Clone)]
#[command(group(ArgGroup::new("what").required(false).multiple(false).args(
    ["relay_id", "link_address", "remote_id", "client_id", "address"]
)))]
pub struct QueryArgs {
    /// Take the servers, the DUIDs, timeouts, retries and limits from this
    /// configuration file (options given here win); without a query
    /// option, ask QUERY_BY_RELAY_ID for the relay DUID it names.
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
    /// A server: `ADDR`, `ADDR:PORT` or `[ADDR]:PORT` (port 547 by default); repeat for several, all queried at once.
    #[arg(long = "server", value_name = "ADDR[:PORT]", required_unless_present = "config", value_parser = parse_server_addr)]
    pub servers: Vec<SocketAddr>,
    /// QUERY_BY_RELAY_ID: bindings recorded with this relay DUID (hex or colon-hex).
    #[arg(long, value_name = "HEX")]
    pub relay_id: Option<Duid>,
    /// QUERY_BY_LINK_ADDRESS: bindings on the link of this address.
    #[arg(long, value_name = "ADDR")]
    pub link_address: Option<Ipv6Addr>,
    /// QUERY_BY_REMOTE_ID: bindings recorded with this Remote-ID (RFC 4649).
    #[arg(long, value_name = "ENTERPRISE:HEX", value_parser = parse_remote_id)]
    pub remote_id: Option<(u32, Vec<u8>)>,
    /// QUERY_BY_CLIENTID: the bindings of this client DUID.
    #[arg(long, value_name = "HEX")]
    pub client_id: Option<Duid>,
    /// QUERY_BY_ADDRESS: the binding holding this address.
    #[arg(long, value_name = "ADDR")]
    pub address: Option<Ipv6Addr>,
    /// Link filter for --relay-id and --remote-id (the query's link-address).
    #[arg(long, value_name = "ADDR")]
    pub link: Option<Ipv6Addr>,
    /// Our DUID, sent as OPTION_CLIENTID. Default: a DUID-UUID drawn at random for this run.
    #[arg(long, value_name = "HEX")]
    pub requestor_duid: Option<Duid>,
    /// Local address to connect from.
    #[arg(long, value_name = "ADDR")]
    pub source: Option<IpAddr>,
    /// BULK_LQ_DATA_TIMEOUT: blocked write, silent read (RFC 5460 5.6), e.g. 30s, 2m [default: 300s].
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub timeout: Option<Duration>,
    /// Longest wait for each TCP connect [default: 5s].
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub connect_timeout: Option<Duration>,
    /// Longest wait for the server's first message once the query is sent (at most the data timeout); past it, "no answer to the query" [default: 30s].
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub first_answer_timeout: Option<Duration>,
    /// Overall time allowed for each server, every try and wait included (none by default).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub deadline: Option<Duration>,
    /// Retries per server after the first try (refused or failed connects, timeouts, partial results, QueryTerminated) [default: 3].
    #[arg(long, value_name = "N")]
    pub retries: Option<u32>,
    /// Wait before the first retry; it doubles each time (with jitter), up to 60 s [default: 1s].
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub retry_delay: Option<Duration>,
    /// Queries outstanding at once on one connection (RFC 5460 6.5) [default: 1].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub max_in_flight: Option<u32>,
    /// One JSON object per binding and line, as `decode --json` prints them, plus `server`.
    #[arg(long)]
    pub json: bool,
}

fn parse_remote_id(s: &str) -> Result<(u32, Vec<u8>), String> {
    let (e, id) = s
        .split_once(':')
        .ok_or_else(|| "expected ENTERPRISE:HEX, e.g. 4491:434d2d303030".to_string())?;
    let e: u32 = e
        .parse()
        .map_err(|_| format!("enterprise number {e:?} is not a number"))?;
    let id = parse_hex(id).map_err(|err| err.to_string())?;
    Ok((e, id))
}

/// A DUID-UUID (RFC 6355) drawn at random: the default requestor DUID.
pub fn random_duid() -> Duid {
    let mut u = [0u8; 16];
    for b in &mut u {
        *b = fastrand::u8(..);
    }
    // RFC 4122 version 4, variant 1.
    u[6] = (u[6] & 0x0f) | 0x40;
    u[8] = (u[8] & 0x3f) | 0x80;
    Duid::new_uuid(u)
}

impl QueryArgs {
    /// The query these arguments ask for; `relay` is the relay DUID of the
    /// configuration, asked for when no query is given.
    pub fn spec_or(&self, relay: Option<&Duid>) -> Result<QuerySpec, String> {
        let (query, link) = if let Some(d) = &self.relay_id {
            (Query::ByRelayId(d.clone()), self.link)
        } else if let Some((enterprise, id)) = &self.remote_id {
            (
                Query::ByRemoteId {
                    enterprise: *enterprise,
                    id: id.clone(),
                },
                self.link,
            )
        } else if self.link.is_some() {
            return Err("--link filters --relay-id and --remote-id only".into());
        } else if let Some(a) = self.link_address {
            if a.is_unspecified() {
                return Err(
                    "--link-address :: names no link: QUERY_BY_LINK_ADDRESS needs an address of the link (RFC 5460 5.3); for every link use --relay-id"
                        .into(),
                );
            }
            (Query::ByLinkAddress, Some(a))
        } else if let Some(d) = &self.client_id {
            (Query::ByClientId(d.clone()), None)
        } else if let Some(a) = self.address {
            (Query::ByAddress(a), None)
        } else if let Some(d) = relay {
            (Query::ByRelayId(d.clone()), None)
        } else {
            return Err(
                "one query is needed: --relay-id, --link-address, --remote-id, --client-id or --address"
                    .into(),
            );
        };
        let mut spec = QuerySpec::new(query);
        if let Some(l) = link {
            spec = spec.link(l);
        }
        Ok(spec)
    }

    /// The query these arguments ask for.
    pub fn spec(&self) -> Result<QuerySpec, String> {
        self.spec_or(None)
    }

    /// The fan-out these arguments ask for.
    pub fn fanout_config(&self) -> Result<FanoutConfig, String> {
        self.fanout_config_with(None)
    }

    /// The fan-out these arguments ask for, on top of `config` when given
    /// (its servers, DUIDs, timeouts, retries, queries in flight and limits;
    /// what the arguments give wins).
    pub fn fanout_config_with(&self, config: Option<&Config>) -> Result<FanoutConfig, String> {
        let relay = match config {
            Some(c) => crate::identity::lookup(c.relay_duid.as_ref(), &c.state_directory)
                .map_err(|e| e.to_string())?
                .map(|(d, _)| d),
            None => None,
        };
        let requestor = self
            .requestor_duid
            .clone()
            .or_else(|| config.and_then(|c| c.requestor_duid.clone()))
            .or_else(|| relay.clone())
            .unwrap_or_else(random_duid);
        let spec = self.spec_or(relay.as_ref())?;
        let mut cfg = match config {
            Some(c) => c.fanout_config(requestor, vec![spec]),
            None => FanoutConfig::new(requestor, vec![spec]),
        };
        if !self.servers.is_empty() {
            cfg.servers = self.servers.iter().map(|&a| ServerConfig::new(a)).collect();
        }
        if cfg.servers.len() > ServerIndex::LIMIT {
            return Err(format!(
                "at most {} servers can be queried at once",
                ServerIndex::LIMIT
            ));
        }
        if let Some(t) = self.timeout {
            cfg.connection.data_timeout = t;
        }
        if let Some(t) = self.connect_timeout {
            cfg.connection.connect_timeout = t;
        }
        if let Some(t) = self.first_answer_timeout {
            cfg.connection.first_answer_timeout = t;
        }
        if let Some(n) = self.max_in_flight {
            cfg.connection.max_in_flight = n as usize;
        }
        if self.source.is_some() {
            cfg.connection.source = self.source;
        }
        cfg.connection.server_deadline = self.deadline;
        if config.is_none() {
            cfg.retry = RetryPolicy {
                attempts: 4,
                initial_delay: Duration::from_secs(1),
                ..RetryPolicy::default()
            };
        }
        // A diagnostic query does not wait for servers to come up.
        cfg.retry.startup_patience = Duration::ZERO;
        if let Some(r) = self.retries {
            cfg.retry.attempts = r.saturating_add(1);
        }
        if let Some(d) = self.retry_delay {
            cfg.retry.initial_delay = d;
        }
        Ok(cfg)
    }
}

/// One line of `query --json`: `decode --json`'s binding record, with the
/// server instead of a file offset.
#[derive(Serialize)]
struct JsonBinding<'a> {
    kind: &'static str,
    server: String,
    xid: u32,
    attempt: u32,
    #[serde(flatten)]
    binding: &'a Binding,
}

const HEADER: &str = "SERVER                 LEASE                                        CLIENT-DUID                    PREF   VALID    CLT  LINK / PEER / INTERFACE";

fn text_row(d: &Delivery) -> String {
    let b = &d.binding;
    let mut s = format!(
        "{:<22} {:<44} {:<30} {:>6} {:>6} {:>6}",
        d.server.to_string(),
        b.lease.to_string(),
        b.client_duid.to_hex(),
        b.preferred_lifetime,
        b.valid_lifetime,
        b.clt_time
    );
    // The relay layer next to the client is the innermost, the last one.
    if let Some(l) = b.relay.last() {
        s.push_str(&format!("  {} / {}", l.link_address, l.peer_address));
        if let Some(i) = &l.interface_id {
            // As the configuration writes it: paste it into [routes.interfaces].
            let id = crate::proto::binding::display_interface_id(i);
            s.push_str(&format!(" / {id:?}"));
        }
    }
    s
}

/// Run `pdrestore query`. See the subcommand's help for the exit codes.
pub fn run(args: QueryArgs) -> ExitCode {
    let config = match &args.config {
        Some(p) => match Config::load(p) {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("pdrestore query: {e}");
                return ExitCode::from(exit::CONFIG);
            }
        },
        None => None,
    };
    let cfg = match args.fanout_config_with(config.as_ref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("pdrestore query: {e}");
            return ExitCode::from(exit::USAGE);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pdrestore query: starting the runtime: {e}");
            return ExitCode::from(exit::IOERR);
        }
    };
    eprintln!(
        "pdrestore query: requestor DUID {}, {} server(s)",
        cfg.connection.requestor,
        cfg.servers.len()
    );
    rt.block_on(query_and_print(cfg, args.json))
}

/// Run the fan-out, print every binding as it arrives and the summary per
/// server at the end; the exit code.
async fn query_and_print(cfg: FanoutConfig, json: bool) -> ExitCode {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut out_ok = true;
    if !json {
        out_ok &= writeln!(out, "{HEADER}").is_ok();
    }
    let mut fanout = Fanout::start(cfg, OwnedBindings);
    let mut reports = Vec::new();
    while let Some(u) = fanout.recv().await {
        match u {
            Update::Bindings(v) => {
                for d in v {
                    out_ok &= writeln!(out, "{}", line(&d, json)).is_ok();
                }
            }
            Update::ServerDone(r) => {
                out_ok &= out.flush().is_ok();
                reports.push(r);
            }
        }
    }
    out_ok &= out.flush().is_ok();
    let code = summarise(&mut reports);
    ExitCode::from(if out_ok { code } else { exit::IOERR })
}

/// One binding's line: JSON or a table row.
fn line(d: &Delivery, json: bool) -> String {
    if !json {
        return text_row(d);
    }
    serde_json::to_string(&JsonBinding {
        kind: "binding",
        server: d.server.to_string(),
        xid: d.xid.get(),
        attempt: d.attempt,
        binding: &d.binding,
    })
    .unwrap_or_default()
}

/// Print the summary of every server, in address order, on stderr; the
/// exit code it makes.
fn summarise(reports: &mut [ServerReport]) -> u8 {
    reports.sort_by_key(|r| r.server);
    let mut all_complete = true;
    let mut our_bug = false;
    for r in reports.iter() {
        let status = if r.is_complete() {
            "complete"
        } else {
            "INCOMPLETE"
        };
        eprintln!("{status} {r}");
        // What a refusal or a silence says of the server's support for
        // the query type, once per server.
        let mut hints: Vec<&str> = r.queries.iter().filter_map(|q| q.outcome.hint()).collect();
        hints.dedup();
        for h in hints {
            eprintln!("  hint: {h}");
        }
        all_complete &= r.is_complete();
        our_bug |= r.our_bug();
    }
    if our_bug {
        // A query we refused to send ourselves says so in its outcome.
        let unsent = reports
            .iter()
            .flat_map(|r| &r.queries)
            .any(|q| matches!(q.outcome, Outcome::OurBug(_)));
        eprintln!(
            "pdrestore query: {}: this is a pdrestore bug",
            if unsent {
                "pdrestore refused to send a query of its own making"
            } else {
                "a server called our query malformed"
            }
        );
    }
    if our_bug {
        exit::SOFTWARE
    } else if all_complete {
        exit::OK
    } else {
        exit::PARTIAL
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        q: QueryArgs,
    }

    fn parse(a: &[&str]) -> Result<QueryArgs, clap::Error> {
        T::try_parse_from(std::iter::once("t").chain(a.iter().copied())).map(|t| t.q)
    }

    #[test]
    fn exactly_one_query() {
        // No query: refused (without --config there is no relay DUID to ask for).
        assert!(parse(&["--server", "::1"]).unwrap().spec().is_err(), "none");
        assert!(parse(&[
            "--server",
            "::1",
            "--relay-id",
            "0003000102005e000002",
            "--client-id",
            "0003"
        ])
        .is_err());
        let q = parse(&[
            "--server",
            "127.0.0.1:5547",
            "--server",
            "::1",
            "--remote-id",
            "4491:434d2d303030",
            "--link",
            "2001:db8:1::1",
            "--timeout",
            "30s",
        ])
        .unwrap();
        assert_eq!(q.servers.len(), 2);
        assert_eq!(q.servers[1].port(), 547);
        assert_eq!(q.timeout, Some(Duration::from_secs(30)));
        let s = q.spec().unwrap();
        assert_eq!(
            s.query,
            Query::ByRemoteId {
                enterprise: 4491,
                id: b"CM-000".to_vec()
            }
        );
        assert_eq!(s.link_address, "2001:db8:1::1".parse::<Ipv6Addr>().unwrap());
        let cfg = q.fanout_config().unwrap();
        assert_eq!(cfg.retry.attempts, 4);
        assert_eq!(cfg.connection.max_in_flight, 1);
    }

    #[test]
    fn link_only_filters_relay_and_remote_id() {
        let q = parse(&[
            "--server",
            "::1",
            "--client-id",
            "0003",
            "--link",
            "2001:db8::1",
        ])
        .unwrap();
        assert!(q.spec().is_err());
        let q = parse(&["--server", "::1", "--link-address", "2001:db8:2::1"]).unwrap();
        let s = q.spec().unwrap();
        assert_eq!(s.query, Query::ByLinkAddress);
        assert_eq!(s.link_address, "2001:db8:2::1".parse::<Ipv6Addr>().unwrap());
    }

    #[test]
    fn at_most_64_servers() {
        let mut a = vec!["--relay-id", "0003000102005e000002"];
        let addrs: Vec<String> = (0..65).map(|i| format!("127.0.0.1:{}", 1000 + i)).collect();
        for s in &addrs[..64] {
            a.extend(["--server", s]);
        }
        assert_eq!(
            parse(&a).unwrap().fanout_config().unwrap().servers.len(),
            64
        );
        a.extend(["--server", &addrs[64]]);
        let e = parse(&a).unwrap().fanout_config().unwrap_err();
        assert!(e.contains("at most 64 servers"), "{e}");
    }

    #[test]
    fn random_duid_is_a_uuid() {
        let a = random_duid();
        assert_eq!(a.len(), 18);
        assert_eq!(&a.as_bytes()[..2], &[0, 4]);
        assert_ne!(a, random_duid());
    }
}
