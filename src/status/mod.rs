//! `pdrestore status`: the routes pdrestore holds, joined with what it
//! knows of each, without IO (the command gathers; [`Status::build`] joins;
//! [`Status::to_text`] and serde render).
//!
//! What is joined, per route of ours in the kernel (the ownership rule,
//! [`crate::routes::Ownership`]):
//! - follow's live view ([`crate::follow::live`]) when the service
//!   answers: a prefix it learned by snooping after the ledger was written
//!   is `snooped`, at its last client transaction;
//! - else the ledger of the last recovery ([`crate::recovery::ledger`]):
//!   `recover`, `start-up` or `resync`, at the time it was written, with the
//!   client DUID, the server, the client's last transaction, the lease's end;
//!   a route the recovery kept with no server naming it is `kept`;
//! - else `unknown`: a route of ours no record names (installed before the
//!   ledger existed, or by hand with our protocol).
//!
//! The other way round, leases known to be current with no route of ours in
//! the kernel are listed as `missing`, with why: follow's state of the
//! prefix (`link-down`: dropped with its interface, reinstalled when it
//! comes back) or `not-in-kernel`.

use crate::agent::last_run::LastRun;
use crate::follow::live::{LiveRoute, LiveState};
use crate::recovery::ledger::{Ledger, LedgerServer, Record};
use crate::routes::TableRoute;
use ipnet::Ipv6Net;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[cfg(test)]
mod tests;

/// Which routes to show.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Filters {
    /// Routes inside this prefix (or equal to it).
    pub prefix: Option<Ipv6Net>,
    /// Routes whose lease is this client's (DUID, hex, lower case, no
    /// separators).
    pub client: Option<String>,
    /// Routes out of this interface.
    pub interface: Option<String>,
}

impl Filters {
    /// Whether any filter is set.
    pub fn any(&self) -> bool {
        self.prefix.is_some() || self.client.is_some() || self.interface.is_some()
    }

    fn keeps(&self, prefix: &Ipv6Net, dev: &str, client: Option<&str>) -> bool {
        self.prefix.is_none_or(|p| p.contains(prefix))
            && self.interface.as_deref().is_none_or(|i| i == dev)
            && self
                .client
                .as_deref()
                .is_none_or(|c| client.is_some_and(|x| x.eq_ignore_ascii_case(c)))
    }
}

/// A DUID as given on the command line (`00:01:...`, `0001...`, either
/// case) in the form the status compares: lower-case hex, no separators;
/// `None` when it is not hex octets.
pub fn normalize_duid(s: &str) -> Option<String> {
    let h: String = s
        .chars()
        .filter(|c| !matches!(c, ':' | '-' | ' '))
        .collect();
    (!h.is_empty() && h.len() % 2 == 0 && h.chars().all(|c| c.is_ascii_hexdigit()))
        .then(|| h.to_ascii_lowercase())
}

/// Where the knowledge came from, as far as `status` could read it.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// The last recovery's ledger (`Err`: why it could not be read; `Ok(None)`: none yet).
    pub ledger: Option<Result<Ledger, String>>,
    /// The last recovery's outcome.
    pub last_run: Option<Result<LastRun, String>>,
    /// follow's live view (`Err`: why it did not answer, `None` in it: not running).
    pub live: Option<Result<(LiveState, Vec<LiveRoute>), String>>,
}

/// One route of ours, with what pdrestore knows of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteStatus {
    /// The delegated prefix.
    pub prefix: String,
    /// The next hop.
    pub via: String,
    /// The interface.
    pub dev: String,
    /// The route's metric.
    pub metric: u32,
    /// Seconds until the kernel removes it (`None`: no expiry).
    pub kernel_expires_in: Option<u32>,
    /// How pdrestore learned it: `recover`, `start-up`, `resync`,
    /// `snooped`, `kept` (ours, no server named it) or `unknown`.
    pub learned: String,
    /// When (seconds since the Unix epoch): the recovery's end, or the
    /// snooped client transaction.
    pub learned_at: Option<u64>,
    /// The client's DUID, hex.
    pub client: Option<String>,
    /// The server: its configured address, or `DUID <hex>` for a server
    /// snooping saw that no recovery heard from.
    pub server: Option<String>,
    /// When the server last heard from the client (Unix seconds).
    pub client_last_transaction: Option<u64>,
    /// When the lease ends (Unix seconds; `None`: never or not known).
    pub lease_expires_at: Option<u64>,
}

/// A lease known to be current with no route of ours in the kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Missing {
    /// The delegated prefix.
    pub prefix: String,
    /// The next hop it should have (follow's knowledge), if known.
    pub via: Option<String>,
    /// The interface it should go out of, if known.
    pub dev: Option<String>,
    /// The client's DUID, hex, if known.
    pub client: Option<String>,
    /// When the lease ends (Unix seconds; `None`: never).
    pub lease_expires_at: Option<u64>,
    /// Why it is absent: `link-down` (follow reinstalls it when the
    /// interface is up), `deleted` or `inspecting` (follow is looking at
    /// it), `not-in-kernel` (nothing explains it).
    pub reason: String,
}

/// follow, as the status sees it.
#[derive(Debug, Clone, Serialize)]
pub struct FollowStatus {
    /// The service answered on its socket.
    pub running: bool,
    /// Its live state, when it answered.
    pub state: Option<LiveState>,
    /// Why it did not answer, when not simply absent.
    pub error: Option<String>,
}

/// The ledger, as the status read it.
#[derive(Debug, Clone, Serialize)]
pub struct LedgerStatus {
    /// The recovery that wrote it.
    pub run: String,
    /// When (Unix seconds).
    pub written_at: u64,
    /// Routes it names.
    pub routes: usize,
}

/// What `pdrestore status` prints (text, or this as one JSON object).
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// The route table read.
    pub table: u32,
    /// Our protocol tag.
    pub protocol: u8,
    /// The filters given.
    pub filters: Filters,
    /// When the status was taken (Unix seconds).
    pub now: u64,
    /// Routes of ours shown (after the filters).
    pub total: usize,
    /// Of them, per interface.
    pub by_interface: BTreeMap<String, usize>,
    /// Of them, per server (`unknown` when no record names one).
    pub by_server: BTreeMap<String, usize>,
    /// Of them, per way learned.
    pub by_learned: BTreeMap<String, usize>,
    /// The last recovery.
    pub last_run: Option<LastRun>,
    /// The ledger read.
    pub ledger: Option<LedgerStatus>,
    /// follow.
    pub follow: FollowStatus,
    /// Sources that could not be read, each with why.
    pub problems: Vec<String>,
    /// Leases known to be current without a route of ours (after the filters).
    pub missing: Vec<Missing>,
    /// The routes, by prefix.
    pub routes: Vec<RouteStatus>,
}

/// Seconds since the Unix epoch.
pub fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn rfc3339(secs: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

/// `secs` from `now`, as `in 5m 3s` or `4s ago`.
fn relative(secs: u64, now: u64) -> String {
    let fmt = |d: u64| humantime::format_duration(Duration::from_secs(d)).to_string();
    if secs > now {
        format!("in {}", fmt(secs - now))
    } else {
        format!("{} ago", fmt(now - secs))
    }
}

/// The sources, read: what each knows, and the problems met.
struct Read {
    ledger: Option<Ledger>,
    last_run: Option<LastRun>,
    follow: FollowStatus,
    live: Option<Vec<LiveRoute>>,
    problems: Vec<String>,
}

impl Read {
    fn of(sources: Sources) -> Read {
        let mut problems = Vec::new();
        let ledger = read_ok(&mut problems, "ledger", sources.ledger);
        let last_run = read_ok(&mut problems, "last run", sources.last_run);
        let (follow, live) = match sources.live {
            Some(Ok((state, routes))) => (
                FollowStatus {
                    running: true,
                    state: Some(state),
                    error: None,
                },
                Some(routes),
            ),
            Some(Err(e)) => {
                problems.push(format!("follow: {e}"));
                let f = FollowStatus {
                    running: false,
                    state: None,
                    error: Some(e),
                };
                (f, None)
            }
            None => {
                let f = FollowStatus {
                    running: false,
                    state: None,
                    error: None,
                };
                (f, None)
            }
        };
        Read {
            ledger,
            last_run,
            follow,
            live,
            problems,
        }
    }
}

/// What a source gave, or `None` with why it gave nothing in `problems`.
fn read_ok<T>(problems: &mut Vec<String>, what: &str, r: Option<Result<T, String>>) -> Option<T> {
    match r {
        Some(Ok(x)) => Some(x),
        Some(Err(e)) => {
            problems.push(format!("{what}: {e}"));
            None
        }
        None => None,
    }
}

/// The ledger's and follow's knowledge, by prefix.
struct Knowledge<'a> {
    live: HashMap<Ipv6Net, &'a LiveRoute>,
    records: HashMap<Ipv6Net, &'a Record>,
    servers: &'a [LedgerServer],
    written: Option<u64>,
    run: Option<&'static str>,
}

impl<'a> Knowledge<'a> {
    fn of(read: &'a Read) -> Self {
        let ledger = read.ledger.as_ref();
        Knowledge {
            live: read.live.iter().flatten().map(|r| (r.prefix, r)).collect(),
            records: ledger
                .iter()
                .flat_map(|l| l.records.iter())
                .map(|r| (r.prefix, r))
                .collect(),
            servers: ledger.map_or(&[], |l| &l.header.servers[..]),
            written: ledger.map(|l| l.header.written_at),
            run: ledger.map(|l| l.header.run.as_str()),
        }
    }

    /// A server snooping saw, by its DUID: the address a recovery heard
    /// it at, else the DUID.
    fn server_by_duid(&self, d: &str) -> String {
        self.servers
            .iter()
            .find(|s| s.duid.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(d)))
            .map_or_else(|| format!("DUID {d}"), |s| s.address.clone())
    }

    /// The kernel's route `t` with what is known of it.
    fn route(&self, t: &TableRoute) -> RouteStatus {
        let rec = self.records.get(&t.prefix).copied();
        let lv = self.live.get(&t.prefix).copied();
        let mut r = RouteStatus {
            prefix: t.prefix.to_string(),
            via: t.gateway.map_or_else(|| "-".into(), |g| g.to_string()),
            dev: t.interface.to_string(),
            metric: t.metric,
            kernel_expires_in: t.expires,
            learned: "unknown".into(),
            learned_at: None,
            client: None,
            server: None,
            client_last_transaction: None,
            lease_expires_at: None,
        };
        let snooped_later = lv.filter(|l| {
            l.snooped && (rec.is_none() || l.seen_at.unwrap_or(0) > self.written.unwrap_or(0))
        });
        if let Some(l) = snooped_later {
            r.learned = "snooped".into();
            r.learned_at = l.seen_at;
            r.client = l.client.clone();
            r.server = l.server.as_deref().map(|d| self.server_by_duid(d));
            r.client_last_transaction = l.seen_at;
            r.lease_expires_at = l.expires_at;
        } else if let Some(rec) = rec {
            r.learned_at = self.written;
            match &rec.lease {
                Some(lease) => {
                    r.learned = self.run.unwrap_or("unknown").into();
                    r.client = Some(lease.client.to_hex());
                    r.server = self
                        .servers
                        .get(usize::from(lease.server))
                        .map(|s| s.address.clone());
                    r.client_last_transaction = lease.last_transaction;
                    r.lease_expires_at = lease.expires;
                }
                None => r.learned = "kept".into(),
            }
            // follow may have moved the lease's end since (a targeted
            // query, a renewal by the same client).
            if let Some(l) = lv.filter(|l| l.expires_at.is_some()) {
                r.lease_expires_at = l.expires_at;
            }
        } else if let Some(l) = lv {
            r.lease_expires_at = l.expires_at;
            r.client = l.client.clone();
        }
        r
    }

    /// Leases known to be current without a route in `in_kernel`: follow's
    /// followed prefixes when it answered, else the ledger's leases.
    fn missing(
        &self,
        read: &Read,
        in_kernel: &HashSet<Ipv6Net>,
        now: u64,
    ) -> Vec<(Ipv6Net, Missing)> {
        let mut out = Vec::new();
        if let Some(lr) = &read.live {
            for l in lr.iter().filter(|l| !in_kernel.contains(&l.prefix)) {
                let reason = match l.state.as_str() {
                    "installed" => "not-in-kernel",
                    s => s,
                };
                let client = l.client.clone().or_else(|| {
                    self.records
                        .get(&l.prefix)
                        .and_then(|r| r.lease.as_ref())
                        .map(|x| x.client.to_hex())
                });
                let m = Missing {
                    prefix: l.prefix.to_string(),
                    via: Some(l.via.to_string()),
                    dev: Some(l.dev.clone()),
                    client,
                    lease_expires_at: l.expires_at,
                    reason: reason.into(),
                };
                out.push((l.prefix, m));
            }
            return out;
        }
        for rec in read.ledger.iter().flat_map(|l| l.records.iter()) {
            let Some(lease) = &rec.lease else { continue };
            if in_kernel.contains(&rec.prefix) || lease.expires.is_some_and(|e| e <= now) {
                continue;
            }
            let m = Missing {
                prefix: rec.prefix.to_string(),
                via: None,
                dev: None,
                client: Some(lease.client.to_hex()),
                lease_expires_at: lease.expires,
                reason: "not-in-kernel".into(),
            };
            out.push((rec.prefix, m));
        }
        out
    }
}

impl Status {
    /// Join the kernel's routes of ours (`ours`, already chosen by the
    /// ownership rule) with what the sources know, under `filters`, at
    /// `now` (Unix seconds).
    pub fn build(
        table: u32,
        protocol: u8,
        mut ours: Vec<TableRoute>,
        sources: Sources,
        filters: Filters,
        now: u64,
    ) -> Status {
        let read = Read::of(sources);
        let known = Knowledge::of(&read);
        ours.sort_unstable_by_key(|t| (t.prefix, t.metric));
        let in_kernel: HashSet<Ipv6Net> = ours.iter().map(|t| t.prefix).collect();
        let routes: Vec<RouteStatus> = ours
            .iter()
            .map(|t| known.route(t))
            .zip(&ours)
            .filter(|(r, t)| filters.keeps(&t.prefix, &r.dev, r.client.as_deref()))
            .map(|(r, _)| r)
            .collect();
        let mut missing = known.missing(&read, &in_kernel, now);
        missing.retain(|(p, m)| {
            filters.keeps(p, m.dev.as_deref().unwrap_or(""), m.client.as_deref())
                && (filters.interface.is_none() || m.dev.is_some())
        });
        missing.sort_unstable_by_key(|(p, _)| *p);
        let mut by_interface = BTreeMap::new();
        let mut by_server = BTreeMap::new();
        let mut by_learned = BTreeMap::new();
        for r in &routes {
            *by_interface.entry(r.dev.clone()).or_insert(0) += 1;
            let server = r.server.clone().unwrap_or_else(|| "unknown".into());
            *by_server.entry(server).or_insert(0) += 1;
            *by_learned.entry(r.learned.clone()).or_insert(0) += 1;
        }
        let ledger = read.ledger.as_ref().map(|l| LedgerStatus {
            run: l.header.run.as_str().into(),
            written_at: l.header.written_at,
            routes: l.records.len(),
        });
        Status {
            table,
            protocol,
            filters,
            now,
            total: routes.len(),
            by_interface,
            by_server,
            by_learned,
            last_run: read.last_run,
            ledger,
            follow: read.follow,
            problems: read.problems,
            missing: missing.into_iter().map(|(_, m)| m).collect(),
            routes,
        }
    }

    /// The text form: the counts, the last recovery, follow, then up to
    /// `limit` routes (0: all) and every missing lease up to the same limit.
    pub fn to_text(&self, limit: usize) -> String {
        let mut o = String::new();
        let shown = if limit == 0 { usize::MAX } else { limit };
        self.text_counts(&mut o);
        self.text_last_run(&mut o);
        self.text_follow(&mut o);
        self.text_sources(&mut o);
        self.text_missing(&mut o, shown);
        self.text_routes(&mut o, shown);
        o
    }

    /// The route counts.
    fn text_counts(&self, o: &mut String) {
        let counts = |m: &BTreeMap<String, usize>| {
            m.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            o,
            "routes: {} of ours in table {} (protocol {}){}",
            self.total,
            self.table,
            self.protocol,
            if self.filters.any() {
                " matching the filters"
            } else {
                ""
            }
        );
        if self.total > 0 {
            let _ = writeln!(o, "  by interface: {}", counts(&self.by_interface));
            let _ = writeln!(o, "  by server: {}", counts(&self.by_server));
            let _ = writeln!(o, "  learned: {}", counts(&self.by_learned));
        }
    }

    /// The last recovery.
    fn text_last_run(&self, o: &mut String) {
        let now = self.now;
        match &self.last_run {
            Some(l) => {
                let r = &l.routes;
                let _ = writeln!(
                    o,
                    "last run: {} ended {} ({}): {}, {} bindings; {} added, {} replaced, {} unchanged, {} removed, {} rejected, {} failed; prune {}",
                    l.run.as_str(),
                    rfc3339(l.finished_at),
                    relative(l.finished_at, now),
                    l.outcome,
                    l.bindings,
                    r.added,
                    r.replaced,
                    r.unchanged,
                    r.removed,
                    r.rejected,
                    r.failed,
                    l.prune
                );
                for s in &l.servers {
                    let _ = writeln!(
                        o,
                        "  server {} (group {}): {}, {} bindings",
                        s.server, s.group, s.status, s.bindings
                    );
                }
                for w in &l.warnings {
                    let _ = writeln!(o, "  warning: {w}");
                }
            }
            None => {
                let _ = match self.unreadable("last run:") {
                    true => writeln!(o, "last run: not readable (see problem: below)"),
                    false => writeln!(o, "last run: none recorded"),
                };
            }
        }
    }

    /// follow's state.
    fn text_follow(&self, o: &mut String) {
        let now = self.now;
        match &self.follow.state {
            Some(f) => {
                let _ = writeln!(
                    o,
                    "follow: running (pid {}) since {}, {}; {} prefixes followed, {} foreign, {} releases pending",
                    f.pid,
                    rfc3339(f.started_at),
                    if f.ready {
                        "ready"
                    } else {
                        "start-up recovery running"
                    },
                    f.followed,
                    f.foreign,
                    f.pending_releases
                );
                let mut line = String::from("  ");
                match &f.last_resync {
                    Some(r) => {
                        let _ = write!(line, "last resync {} ({})", relative(r.at, now), r.outcome);
                    }
                    None => line.push_str("no resync yet"),
                }
                if f.resyncing {
                    line.push_str(", resync running");
                } else if let Some(n) = f.next_resync_at {
                    let _ = write!(line, ", next {}", relative(n, now));
                }
                let ifs: Vec<String> = f
                    .interfaces
                    .iter()
                    .map(|i| format!("{} {}", i.name, if i.up { "up" } else { "down" }))
                    .collect();
                let _ = write!(
                    line,
                    "; {} packets, {} malformed; interfaces: {}",
                    f.packets,
                    f.malformed,
                    ifs.join(", ")
                );
                let _ = writeln!(o, "{line}");
                let c = &f.counters;
                let _ = writeln!(
                    o,
                    "  since start: {} replies, {} added, {} refreshed, {} moved, {} removed, {} expired, {} refused, {} resyncs",
                    c.replies, c.added, c.refreshed, c.moved, c.removed, c.expired, c.refused, c.resyncs
                );
            }
            None => {
                let _ = match &self.follow.error {
                    Some(e) => writeln!(o, "follow: could not be asked ({e})"),
                    None => writeln!(o, "follow: not running"),
                };
            }
        }
    }

    /// The ledger, and what could not be read.
    fn text_sources(&self, o: &mut String) {
        let now = self.now;
        match &self.ledger {
            Some(l) => {
                let _ = writeln!(
                    o,
                    "ledger: written by {} {} ({} routes)",
                    l.run,
                    relative(l.written_at, now),
                    l.routes
                );
            }
            None if self.unreadable("ledger:") => {
                let _ = writeln!(o, "ledger: not readable (see problem: below)");
            }
            None => {
                let _ = writeln!(
                    o,
                    "ledger: none (no recovery has run here yet): leases are not known"
                );
            }
        }
        for p in &self.problems {
            let _ = writeln!(o, "problem: {p}");
        }
        if self
            .problems
            .iter()
            .any(|p| p.contains("Permission denied"))
        {
            let _ = writeln!(
                o,
                "hint: the state directory and follow's socket are root's (0700, 0600): run status as root"
            );
        }
    }

    /// Whether the source whose problems start with `what` could not be read.
    fn unreadable(&self, what: &str) -> bool {
        self.problems.iter().any(|p| p.starts_with(what))
    }

    /// The missing leases, `shown` at most.
    fn text_missing(&self, o: &mut String, shown: usize) {
        let now = self.now;
        if !self.missing.is_empty() {
            let _ = writeln!(
                o,
                "missing: {} leases known to be current without a route of ours",
                self.missing.len()
            );
            for m in self.missing.iter().take(shown) {
                let _ = writeln!(
                    o,
                    "  {}{}{} client {} ({}), lease ends {}",
                    m.prefix,
                    m.via
                        .as_ref()
                        .map_or(String::new(), |v| format!(" via {v}")),
                    m.dev
                        .as_ref()
                        .map_or(String::new(), |d| format!(" dev {d}")),
                    m.client.as_deref().unwrap_or("unknown"),
                    m.reason,
                    m.lease_expires_at
                        .map_or("never".into(), |e| relative(e, now))
                );
            }
        }
    }

    /// The routes, `shown` at most.
    fn text_routes(&self, o: &mut String, shown: usize) {
        let now = self.now;
        if !self.routes.is_empty() {
            o.push('\n');
        }
        for r in self.routes.iter().take(shown) {
            let _ = writeln!(
                o,
                "{} via {} dev {} metric {}{}: {}{}, client {}, server {}, lease ends {}",
                r.prefix,
                r.via,
                r.dev,
                r.metric,
                r.kernel_expires_in
                    .map_or(String::new(), |e| format!(" expires {e}s")),
                r.learned,
                r.learned_at
                    .map_or(String::new(), |t| format!(" {}", rfc3339(t))),
                r.client.as_deref().unwrap_or("unknown"),
                r.server.as_deref().unwrap_or("unknown"),
                match (r.lease_expires_at, r.learned.as_str()) {
                    (Some(e), _) => relative(e, now),
                    (None, "unknown" | "kept") => "unknown".into(),
                    (None, _) => "never".into(),
                }
            );
        }
        if self.routes.len() > shown {
            let _ = writeln!(
                o,
                "... {} more routes (--limit 0 lists them all; --json too)",
                self.routes.len() - shown
            );
        }
    }
}
