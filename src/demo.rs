//! `pdrestore demo`: the whole job on an embedded default, in a private
//! network namespace.
//!
//! Two lab servers run in-process with the same synthetic bindings for one
//! relay, except that they partly disagree: the second server has newer
//! transactions (and other clients) for some prefixes, misses some, knows a
//! few more, and offers one prefix outside the delegation pool. The real
//! recovery (`recover`: fan-out, reconciliation, planning, batched netlink)
//! then runs into the namespace, whose client-facing links are veth pairs.
//! The kernel routes it made and the summary are printed, and everything is
//! cleaned up. As root the namespace comes from `ip netns`; otherwise pdrestore
//! re-runs itself in an unprivileged user+network namespace (`unshare -rn`).

use crate::agent::{recover, RecoverOptions, Report};
use crate::config::Config;
use crate::netns::{ip, NetNs, NetNsError};
use crate::proto::{Duid, LeaseKind};
use crate::routes::{NetlinkTable, RouteTable};
use crate::server::synth::{link_prefix, Synth, SynthConfig};
use crate::server::{self, BindingStore, LeaseRecord, ServerConfig};
use std::sync::Arc;

/// Demo parameters.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Bindings per server.
    pub bindings: u64,
    /// Client-facing links (veth pairs).
    pub links: u32,
    /// Print this many routes (all with 0).
    pub show: usize,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            bindings: 2000,
            links: 4,
            show: 12,
        }
    }
}

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Namespace or link setup failed.
    #[error(transparent)]
    NetNs(#[from] NetNsError),
    /// Something else, described.
    #[error("{0}")]
    Other(String),
    /// Standard output could not be written (a closed pipe: `| head`).
    #[error("standard output: {0}")]
    Stdout(std::io::Error),
}

/// Write `text` to standard output, as one write.
fn say(text: &str) -> Result<(), DemoError> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(DemoError::Stdout)
}

/// The demo's Relay-ID.
pub fn demo_relay_id() -> Duid {
    "00:03:00:01:02:00:5e:00:00:02".parse().expect("valid DUID")
}

/// Name of the veth end that faces the clients of link `j`.
pub fn link_ifname(j: u32) -> String {
    format!("cust{j}")
}

/// `ip` commands that make the client links: a veth pair per link, the
/// router's end with `link_prefix(j)::1/64`.
pub fn link_commands(links: u32) -> Vec<Vec<String>> {
    let mut cmds = Vec::new();
    for j in 0..links {
        let name = link_ifname(j);
        let peer = format!("cpe{j}");
        let addr = format!(
            "{}/64",
            std::net::Ipv6Addr::from(u128::from(link_prefix(j).network()) | 1)
        );
        for c in [
            vec!["link", "add", &name, "type", "veth", "peer", "name", &peer],
            vec!["link", "set", &name, "up"],
            vec!["link", "set", &peer, "up"],
            vec!["-6", "addr", "add", &addr, "dev", &name, "nodad"],
        ] {
            cmds.push(c.into_iter().map(str::to_owned).collect());
        }
    }
    cmds
}

/// The two servers' bindings: (first, second).
pub fn demo_bindings(
    opts: &DemoOptions,
    now: u64,
) -> Result<(Vec<LeaseRecord>, Vec<LeaseRecord>), DemoError> {
    let cfg = SynthConfig {
        count: opts.bindings,
        seed: 2026,
        relay_id: demo_relay_id(),
        relays: 1,
        links: opts.links,
        pool: "2001:db8:8000::/33".parse().expect("valid"),
        delegated_len: 56,
        ia_na_share: 0.05,
        remote_ids: 8,
        two_hop_share: 0.0,
        now,
        ..SynthConfig::default()
    };
    let a: Vec<LeaseRecord> = Synth::new(cfg.clone())
        .map_err(|e| DemoError::Other(e.to_string()))?
        .collect();
    let mut b = Vec::with_capacity(a.len() + 8);
    for (k, r) in a.iter().enumerate() {
        if k % 25 == 7 {
            continue; // only the first server knows it
        }
        let mut r = r.clone();
        if k % 10 == 3 {
            // The second server saw the prefix go to another client more recently.
            let mut d = r.client_duid.as_bytes().to_vec();
            if let Some(last) = d.last_mut() {
                *last ^= 0x80;
            }
            r.client_duid = Duid::from_bytes(d);
            r.cltt = now.saturating_sub(1);
            if let Some(l) = r.relay.last_mut() {
                l.peer_address =
                    std::net::Ipv6Addr::from(u128::from(l.peer_address) | 0xbeef << 32);
            }
        }
        b.push(r);
    }
    // A few only the second server knows.
    let more = Synth::new(SynthConfig {
        count: opts.bindings + 5,
        ..cfg
    })
    .map_err(|e| DemoError::Other(e.to_string()))?
    .skip(opts.bindings as usize);
    b.extend(more);
    // And one it should never have offered: outside the pool.
    if let Some(mut rogue) = b
        .iter()
        .find(|r| matches!(r.lease, LeaseKind::Prefix(_)))
        .cloned()
    {
        rogue.lease = LeaseKind::Prefix("2001:db9:6666::/56".parse().expect("valid"));
        rogue.client_duid = "00030001deadbeef0001".parse().expect("valid");
        b.push(rogue);
    }
    Ok((a, b))
}

fn config_text(servers: &[std::net::SocketAddr], links: u32, state: &std::path::Path) -> String {
    let mut t = format!(
        "relay_duid = \"{}\"\nstate_directory = {:?}\ndata_timeout = \"30s\"\nretries = 1\nretry_initial_delay = \"200ms\"\n",
        demo_relay_id().to_colon_hex(),
        state
    );
    for s in servers {
        t.push_str(&format!(
            "[[server]]\naddress = \"{}\"\nport = {}\n",
            s.ip(),
            s.port()
        ));
    }
    t.push_str("[routes]\nallowed_prefixes = [\"2001:db8:8000::/33\"]\nmin_prefix_len = 48\n[routes.interfaces]\n");
    for j in 0..links {
        t.push_str(&format!("\"ge-0/0/{j}\" = \"{}\"\n", link_ifname(j)));
    }
    t
}

/// Inside the namespace (links made): start the two servers, recover, stop them.
pub async fn run_inside(opts: &DemoOptions) -> Result<Report, DemoError> {
    let now = server::store::unix_now();
    let (a, b) = demo_bindings(opts, now)?;
    let mut handles = Vec::new();
    for (n, records) in [a, b].into_iter().enumerate() {
        let store = BindingStore::from_records(&records, &[])
            .map_err(|e| DemoError::Other(e.to_string()))?;
        let l = tokio::net::TcpListener::bind("[::1]:0")
            .await
            .map_err(|e| DemoError::Other(format!("listening on [::1]: {e}")))?;
        let config = ServerConfig {
            server_duid: Duid::new_en(32473, format!("pdrestore-demo-{}", n + 1).as_bytes()),
            ..ServerConfig::default()
        };
        handles.push(
            server::spawn(l, Arc::new(store), config)
                .map_err(|e| DemoError::Other(e.to_string()))?,
        );
    }
    let addrs: Vec<_> = handles.iter().map(|h| h.local_addr()).collect();
    let state = std::env::temp_dir().join(format!("pdrestore-demo-{}", std::process::id()));
    let config = Config::parse(
        &config_text(&addrs, opts.links, &state),
        std::path::Path::new("(demo)"),
    )
    .map_err(|e| DemoError::Other(e.to_string()))?;
    let mut table = NetlinkTable::open().map_err(|e| DemoError::Other(e.to_string()))?;
    let interfaces = table
        .interfaces()
        .await
        .map_err(|e| DemoError::Other(e.to_string()))?;
    let (report, mut table) = recover(
        &config,
        &demo_relay_id(),
        table,
        interfaces,
        &RecoverOptions::default(),
        std::future::pending::<()>(),
    )
    .await
    .map_err(|e| DemoError::Other(e.to_string()))?;
    let _ = table.sync().await;
    for h in handles {
        let _ = h.shutdown().await;
    }
    Ok(report)
}

fn print_result(report: &Report, routes: &str, show: usize) -> Result<(), DemoError> {
    let lines: Vec<&str> = routes.lines().collect();
    let mut text = format!(
        "== kernel routes with protocol {} (pdrestore) in the demo namespace ({} routes) ==\n",
        crate::config::DEFAULT_PROTOCOL,
        lines.len()
    );
    let n = if show == 0 {
        lines.len()
    } else {
        show.min(lines.len())
    };
    for l in &lines[..n] {
        text.push_str(l);
        text.push('\n');
    }
    if n < lines.len() {
        text.push_str(&format!("... {} more\n", lines.len() - n));
    }
    text.push_str("\n== summary ==\n");
    text.push_str(&report.to_text());
    say(&text)
}

/// Run the demo as root, in a namespace made with `ip netns`.
pub fn run_as_root(opts: &DemoOptions) -> Result<Report, DemoError> {
    let ns = NetNs::create("pdrestore-demo")?;
    say(&format!(
        "network namespace {} (deleted at the end)\n",
        ns.name()
    ))?;
    for c in link_commands(opts.links) {
        ns.ip(&c)?;
    }
    let o = opts.clone();
    let report = ns.run(move || async move { run_inside(&o).await })??;
    let proto = crate::config::DEFAULT_PROTOCOL.to_string();
    let routes = ns.ip(["-6", "route", "show", "proto", &proto])?;
    print_result(&report, &routes, opts.show)?;
    Ok(report)
}

/// Run the demo in the namespace this process is already in (after `unshare -rn`).
pub fn run_in_current_namespace(opts: &DemoOptions) -> Result<Report, DemoError> {
    ip(["link", "set", "lo", "up"])?;
    for c in link_commands(opts.links) {
        ip(&c)?;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| DemoError::Other(e.to_string()))?;
    let report = rt.block_on(run_inside(opts))?;
    let proto = crate::config::DEFAULT_PROTOCOL.to_string();
    let routes =
        String::from_utf8_lossy(&ip(["-6", "route", "show", "proto", &proto])?.stdout).into_owned();
    print_result(&report, &routes, opts.show)?;
    Ok(report)
}
