//! The generated documentation, from one source each: the man pages
//! (`pdrestore(8)`, one page per subcommand, `pdrestore.toml(5)`), the shell
//! completions, and `docs/configuration.md`.
//!
//! The command-line pages and completions come from the clap definition
//! ([`crate::cli::Cli`]) plus the sections clap does not write (EXIT STATUS,
//! ENVIRONMENT, FILES, EXAMPLES, SEE ALSO, in [`page_extras`]); the
//! configuration reference, in Markdown and as `pdrestore.toml(5)`, comes
//! from [`CONFIG_REFERENCE`]. `cargo run --example generate_docs -- docs`
//! writes them; a test fails when the committed copies are stale.

use crate::cli::Cli;
use clap::CommandFactory;
use roff::{bold, italic, roman, Roff};
use std::io;
use std::path::Path;

/// One section of the configuration reference.
#[derive(Debug)]
pub struct ConfigSection {
    /// The TOML table (`""` for the top level).
    pub table: &'static str,
    /// The heading.
    pub title: &'static str,
    /// Paragraphs before the keys (Markdown: `code`, *emphasis*).
    pub intro: &'static [&'static str],
    /// The keys: name, default, meaning.
    pub keys: &'static [(&'static str, &'static str, &'static str)],
}

/// What comes before the sections of the configuration reference.
pub const CONFIG_PREAMBLE: &[&str] = &[
    "pdrestore reads one TOML file, by default `/etc/pdrestore/pdrestore.toml` (`--config FILE` overrides). A complete, commented example is `pdrestore.example.toml` at the top of the repository (installed as `/usr/share/doc/pdrestore/examples/pdrestore.toml`). `pdrestore check-config` validates a file, prints the effective settings, the relay and requestor DUIDs and the worst case of one run (what the unit's `TimeoutStartSec` must cover), and warns about `[routes.interfaces]` targets that do not exist on this machine.",
    "Unknown keys and bad values are errors that name the file, line and column, e.g. `pdrestore: /etc/pdrestore/pdrestore.toml:12:11: \"kea 1\" is neither an IP address nor a DNS name`. So are values that contradict each other: the same server twice, an IPv4 `source` for an IPv6 server.",
    "Durations use humantime syntax: `300s`, `5m`, `1h 30m`, `500ms`.",
];

/// The configuration reference: every key, its default and its meaning.
pub const CONFIG_REFERENCE: &[ConfigSection] = &[
    ConfigSection {
        table: "",
        title: "Top level",
        intro: &[],
        keys: &[
            ("relay_duid", "generated", "Our Relay-ID (RFC 5460 5.4.1), hex (`0003000102005e000002`) or colon-hex (`00:03:00:01:02:00:5e:00:00:02`), 3 to 130 octets. The relay agent must put this DUID in OPTION_RELAY_ID of the RELAY-FORW messages it sends, so that the servers associate it with the bindings. When absent, pdrestore generates a DUID-LLT (from the first interface's MAC address and the current time; DUID-UUID when there is no MAC) on the first run and keeps it in `state_directory/relay-duid`; `pdrestore duid` prints it."),
            ("requestor_duid", "`relay_duid`", "Our OPTION_CLIENTID in LEASEQUERY messages (RFC 5007 4.3.1), 3 to 130 octets. Servers may restrict bulk leasequery to known requestors."),
            ("state_directory", "`/var/lib/pdrestore`", "Where the generated relay DUID is kept (mode 0600, written atomically), and the writer lock (`writer.lock`: one `recover` or `follow` writes the routes at a time); the server groups' last answers (`group-answers.json`); what the last recovery knew of each route it left in place (`routes.ledger`) and its outcome (`last-run.json`), for `pdrestore status`; and, while `follow` runs, its live view (`follow.sock`, mode 0600), which `status` reads. Made with mode 0700 when missing. `recover --dry-run` and `check-config` never write there."),
            ("query", "`\"relay-id\"`", "How the bindings are found. `\"relay-id\"`: QUERY_BY_RELAY_ID with our relay DUID (RFC 5460 5.3.1), for relay agents that put OPTION_RELAY_ID in every RELAY-FORW. `\"link-address\"`: one QUERY_BY_LINK_ADDRESS per link (RFC 5460 5.3.1, 6.1), for relay agents that send no Relay-ID, such as ISC dhcrelay (Debian's isc-dhcp-relay, VyOS, Cumulus). In that mode our layer of a binding's relay chain is the one whose link-address is one of `links`; a binding relayed by another relay on the same subnet (a link query returns the whole subnet) is dropped and counted (`other-relay`), never routed."),
            ("links", "see meaning", "With `query = \"relay-id\"`: the link filter of each QUERY_BY_RELAY_ID, `[\"::\"]` (every link) by default. With `query = \"link-address\"`: the addresses the relay uses as link-address, one query each (for ISC dhcrelay, the router's global address on each client link, e.g. `[\"2001:db8:1::1\", \"2001:db8:2::1\"]`); by default the global addresses of the interfaces `[routes.interfaces]` names, one per prefix. An empty list, and `::` in link-address mode, are refused. Pruning covers only the routes out of the interfaces of the links asked about: a link not queried keeps its routes. Servers differ in how they match a link-address (Kea: by subnet; dhcpkit: the exact address the relay used), so give the relay agent's own link-address (operations guide, section 1); a link that held our routes and answers empty keeps them (the prune rail per link)."),
            ("data_timeout", "`300s`", "BULK_LQ_DATA_TIMEOUT (RFC 5460 5.6): how long a blocked write or a silent read may last before the connection is abandoned. RFC 5460 advises against values below the default."),
            ("connect_timeout", "`5s`", "How long one TCP connect may take. A server whose SYNs are dropped costs this much per try, not the data timeout."),
            ("first_answer_timeout", "`30s`", "Once a query is written, how long to wait for the server's first message while no query on the connection has received anything (at most `data_timeout`; a longer value counts as `data_timeout`). Past it the query ends with \"no answer to the query\" (`no-answer`): a server that accepts the connection and never answers (a query type it ignores, a hung worker) costs this, not the data timeout, and such a query is tried once more at most, whatever `retries` says. A stream that stalls after the first message is the data timeout's."),
            ("startup_deadline", "`5m`", "From the start of the run: until then, a try that cannot connect at all (refused, timed out, unreachable) is retried with backoff without counting against `retries`, so a server that is not reachable yet while the router boots (IGP or BGP still converging, the server restarting) is waited for. A server that answers is never waited for beyond `retries`."),
            ("interface_wait", "`30s`", "Before installing, how long to wait for the interfaces that `[routes.interfaces]` names to exist and be up (a VLAN or a bond often comes up a few seconds after pdrestore starts). Those still missing are reported, and a run that had to refuse prefixes for a missing interface is not complete (exit status 1). `0s` does not wait."),
            ("retries", "`3`", "Further attempts per server after the first (failed connects after `startup_deadline`, timeouts, partial results, QueryTerminated)."),
            ("retry_initial_delay", "`1s`", "Delay before the first retry; doubles each time, with jitter."),
            ("retry_max_delay", "`30s`", "Longest delay between attempts."),
            ("group_grace", "`10s`", "Once a server group (`[[server]] group`) has answered completely through one member, how much longer its other members are waited for (a replica still connecting, retrying or streaming): then they are stopped, and what they delivered is kept. `0s` stops them at once."),
            ("max_connections", "`4`", "Connections to one server at once, each carrying its share of the queries, so that the link queries of `query = \"link-address\"` run in parallel (a multi-threaded server answers them in parallel, each walking only its subnet; pipelining them on one connection is `max_in_flight`). Keep it within the server's own limit (Kea's `max-requester-connections`, 10 by default). Each connection gets an even share of `max_bindings_per_server`."),
            ("max_in_flight", "`1`", "Queries in flight on one connection (RFC 5460 6.5). Raise only for servers that interleave replies."),
            ("metrics_file", "none", "Where `recover` writes the outcome and figures of each run (and `follow` those of its last recovery, start-up or resync, with its own `pdrestore_follow_*` counters, rewritten after each resync and each batch of route changes, at most once a second) for node_exporter's textfile collector, e.g. `\"/var/lib/prometheus/node-exporter/pdrestore.prom\"`: Prometheus text format, all gauges (per server: bindings, complete, duration; routes added, replaced, unchanged, removed, foreign, failed, rejected by reason; the outcome, exit status, prune state, and the times of the run's end and of the last complete run). The file is replaced atomically (a temporary file in the same directory, fsync, rename) with mode 0644; when the write fails the old file stays and the run's exit status is unchanged (a warning is logged). `recover --metrics-file PATH` and `follow --metrics-file PATH` override it; a dry run writes none. An absolute path; under `pdrestore.service`, the directory must be writable by the service (see the Monitoring section of the operations guide)."),
        ],
    },
    ConfigSection {
        table: "server",
        title: "`[[server]]` (one table per DHCPv6 server; at least one)",
        intro: &[],
        keys: &[
            ("address", "required", "The server's address (IPv6, or IPv4), or a DNS name, resolved when the configuration is read (at the start of every run, and by `check-config`, which prints the address): its first IPv6 address, else its first address. A name that does not resolve is a configuration error (exit 78), which `pdrestore.service` does not retry: give literal addresses where DNS may not answer at boot. Each server (address and port) may appear once."),
            ("port", "`547`", "TCP port (RFC 5460 5.6)."),
            ("source", "none", "Source address to connect from (e.g. a loopback address the server's ACL allows); of the same family as `address`. `check-config` refuses one this machine does not have (a run would fail to connect from it on every try; at boot `recover` retries, as the address may still be coming up)."),
            ("group", "the server's own", "The server group, a name (1 to 64 letters, digits, `.`, `_`, `-`, `:`). Servers of one group are replicas that each hold every binding of the group (a Kea HA pair, hot-standby or load-balancing): the group has answered completely when one member has, and a member that failed beside it is a warning, not a partial run. Servers in different groups hold different bindings (one per region, two servers during a migration): every group must answer completely for a complete run and for pruning. By default each server is a group of its own, named by its address and port. Every member is asked at once, and the bindings of all that answered are reconciled (the most recent client transaction wins); once a group has answered completely, its other members are waited for `group_grace` more at most."),
        ],
    },
    ConfigSection {
        table: "routes",
        title: "`[routes]`",
        intro: &[
            "A route is pdrestore's only when it is in `table`, carries `protocol`, is a unicast route through one next hop out of one interface (the only kind pdrestore installs), and its destination lies inside `allowed_prefixes` with a length from `min_prefix_len` to 128. Nothing else is ever replaced or removed, whatever `prune` says: not the router's own `proto dhcp` default route, not a static route on a customer prefix, not a route with our protocol outside the pools. New routes are added create-exclusive: where another route already holds the table, prefix and metric, it is left in place and the prefix is reported as a conflict with a foreign route.",
        ],
        keys: &[
            ("table", "`254` (`\"main\"`)", "Routing table for our routes: a number, `\"main\"`, or a name iproute2 knows (`rt_tables` and `rt_tables.d/*.conf` of /etc/iproute2, then /usr/share/iproute2 and /usr/lib/iproute2; `PDRESTORE_IPROUTE2_DIRS`, directories separated by `:`, replaces them), resolved when the configuration is read (`check-config` prints the number). Tables 0 and 255 are refused. Changing it leaves our routes in the old table: remove them there (`ip -6 route flush table OLD proto 57`) once the new table is filled."),
            ("vrf", "none", "A VRF device (e.g. `\"vrf-subscribers\"`): our routes go into its table, read from the device at the start of each run (`check-config` prints it; leave `table` out), and every server connection is bound to the device (`SO_BINDTODEVICE`), so that the servers are reached through the VRF. The client interfaces are the VRF's members. A VRF that does not exist (or a device that is not one) is a configuration error (exit 78). Needs a kernel with the `vrf` link type."),
            ("protocol", "`57` (`pdrestore`)", "The protocol tag pdrestore puts on its routes, part of how it recognises them. 57 is pdrestore's own number, unassigned in iproute2 and the kernel; `/etc/iproute2/rt_protos.d/pdrestore.conf` (shipped in the package) makes `ip route` show `proto pdrestore`. Do not use 16 (`dhcp`): systemd-networkd, dhcpcd and NetworkManager put it on the routes they learn by DHCP. Values 0-4 (kernel, boot, static) are refused."),
            ("metric", "`1024`", "Route metric (priority)."),
            ("allowed_prefixes", "required", "The delegation pools. Only delegated prefixes inside one of these are installed: a server cannot make pdrestore route anything else. Each pool must have its host bits clear; `::/0` and pools broader than /16 are refused."),
            ("min_prefix_len", "`48`", "The shortest delegated prefix accepted."),
            ("prune", "`true`", "Remove our routes that no binding backs any more. Pruning runs only when every server answered completely, so a failing server never takes routes away, and within `prune_limit`."),
            ("prune_limit", "`\"10%\"`", "The prune rail: a prune that would remove more of our routes (those listed at the start) than this share (`\"10%\"`) or number (`500`) is refused, and so is one after every server answered with no binding at all (a wrong relay DUID, a pool typo, a server that lost its leases). Then nothing is removed, the summary says why, and the exit status is 1; `recover --force-prune` removes them for one run. `\"100%\"` turns the rail off."),
            ("max_routes_per_second", "none (as fast as the kernel takes them)", "An install pace: at most this many route changes a second, sent in slices of a twentieth of a second's worth. For a routing daemon that learns kernel routes and cannot take a burst (FRR's zebra started without a large netlink receive buffer, `-s`, loses part of a burst of thousands of routes without a word; see docs/frr.md): a whole number, at least 1. A recovery then takes at least its routes divided by this many seconds; giving the daemon a large receive buffer is the better fix."),
            ("next_hop_fallback", "`\"none\"`", "For a binding without relay data: `\"none\"` rejects it, `\"client-address\"` uses the client's most recent IA_NA address as the gateway, on the interface whose prefix covers it."),
        ],
    },
    ConfigSection {
        table: "routes.interfaces",
        title: "`[routes.interfaces]`",
        intro: &[
            "A table from the interface-id the relay sends (OPTION_INTERFACE_ID) to a local interface name (at most 15 characters), e.g. `\"ge-0/0/1\" = \"eth1\"`. A binary interface-id is written `0x` and its octets in hex: ISC dhcrelay with `-I` sends its own interface number in 4 octets (host byte order), so br1 may be `\"0x07000000\" = \"br1\"`; summaries and `pdrestore query` show interface-ids in that form, ready to paste. An interface-id in the table is routed out of that interface only: when it does not exist, its prefixes are refused (`missing-interface`), never guessed. Without an entry, an interface-id that is the name of a local interface is used as is; otherwise the interface whose addresses cover the relay layer's link-address is chosen.",
        ],
        keys: &[],
    },
    ConfigSection {
        table: "limits",
        title: "`[limits]`",
        intro: &[],
        keys: &[
            ("max_bindings_per_query", "`4000000`", "A query that returns more is cut off with an error."),
            ("max_bindings_per_server", "`8000000`", "Across all queries to one server."),
            ("max_bytes_per_connection", "`4294967296`", "Octets read from one connection."),
            ("max_relay_depth", "`32`", "Deepest relay chain accepted in a binding (RFC 8415 HOP_COUNT_LIMIT), at least 1; a server that sends a deeper one is cut off, not retried."),
        ],
    },
    ConfigSection {
        table: "follow",
        title: "`[follow]` (`pdrestore follow` only)",
        intro: &[
            "`pdrestore follow` runs the recovery of `recover` at start, then keeps the routes in step with the leases by watching the DHCPv6 traffic the relay exchanges with its clients on the client-facing interfaces (AF_PACKET, CAP_NET_RAW; nothing is sent or injected): a REPLY leaving the router installs or refreshes a delegated prefix's route (RFC 8987 4), a valid lifetime of 0 or a RELEASE or DECLINE that the server confirms removes it, and the routes the kernel drops with an interface come back when it is up again. Every route passes the same checks as `recover` (`[routes]`); only our own routes are ever replaced or removed.",
        ],
        keys: &[
            ("interfaces", "the targets of `[routes.interfaces]` (and, with `query = \"link-address\"`, the interfaces holding `links`)", "The client-facing interfaces to snoop, e.g. `[\"eth1\", \"eth2.100\"]`. By default the interfaces `recover` routes out of: the targets of `[routes.interfaces]` and, in link-address mode, the interfaces that hold an address of `links` (found at start). An interface that does not exist yet is snooped as soon as it appears. An empty list is refused."),
            ("packets_per_second", "`20000`", "DHCPv6 packets handled per second on one interface (a token bucket), so that a flood on one link cannot starve the others or the route installation. What the budget does not allow waits in the capture socket's buffer; what does not fit there is dropped by the kernel."),
            ("packet_burst", "`4000`", "The largest burst handled at once on one interface (the bucket's size)."),
            ("capture_buffer", "`16777216`", "Receive buffer of each capture socket, in octets (65536 to 1073741824): how large a burst of REPLYs (a renewal storm after an outage) is queued while the service catches up. Kernel memory, used only while packets wait; the kernel doubles the value for its bookkeeping."),
            ("resync_interval", "`1h`", "A Bulk Leasequery resync (the recovery of `recover`, with the prune rail) runs this often, with up to 10% jitter. SIGHUP (`systemctl reload pdrestore-follow`) asks for one at once. Leases near expiry never bring it forward: they are asked about one by one (`confirm_before`). A resync that failed is tried again after 5 minutes (or the interval, if shorter). Snooping goes on routing while a resync (or the start-up recovery) runs; its result is merged by time: the most recent client transaction wins."),
            ("min_resync_interval", "`5m`", "The floor: no resync starts sooner than this after the last one ended, whatever asks for it (the interval, SIGHUP). A SIGHUP within it is kept and honoured when it has passed."),
            ("confirm_before", "`5m`", "A followed prefix whose lease runs out within this long, with no renewal snooped, is asked about alone: a QUERY_BY_ADDRESS of the prefix (RFC 5007 4.1.2.1) to every server over the bulk connection (RFC 5460 6), in batches of up to 64. When a server holds a later expiry (the client renewed by a path the relay does not see), the route is extended; else it is removed when the lease ends. `0s` asks nothing."),
            ("confirm_per_minute", "`600`", "Targeted queries per minute at most (a token bucket of one batch): N leases near expiry cost N small queries spread over time, never N full resyncs."),
            ("max_prefixes", "`1000000`", "Most delegated prefixes followed at once (about 100 octets of memory each). A REPLY for one more is refused and counted (`cap`); routes over the cap that a resync installs are left to expire in the kernel."),
        ],
    },
];

/// `docs/configuration.md`.
pub fn configuration_markdown() -> String {
    let mut s = String::from("# Configuration reference\n\n");
    s.push_str("<!-- Generated from src/docs.rs (CONFIG_REFERENCE): edit it there, then run `cargo run --example generate_docs -- docs`. -->\n\n");
    for p in CONFIG_PREAMBLE {
        s.push_str(p);
        s.push_str("\n\n");
    }
    for sec in CONFIG_REFERENCE {
        s.push_str(&format!("## {}\n\n", sec.title));
        for p in sec.intro {
            s.push_str(p);
            s.push_str("\n\n");
        }
        if !sec.keys.is_empty() {
            s.push_str("| key | default | meaning |\n|---|---|---|\n");
            for (k, d, m) in sec.keys {
                s.push_str(&format!("| `{k}` | {d} | {} |\n", m.replace('|', "\\|")));
            }
            s.push('\n');
        }
    }
    s.trim_end().to_string() + "\n"
}

/// Markdown inline text (`code`) as roff inlines (code in bold).
fn inlines(md: &str) -> Vec<roff::Inline> {
    md.split('`')
        .enumerate()
        .filter(|(_, t)| !t.is_empty())
        .map(|(i, t)| if i % 2 == 1 { bold(t) } else { roman(t) })
        .collect()
}

/// `pdrestore.toml(5)`.
pub fn configuration_man() -> Vec<u8> {
    let mut r = Roff::new();
    r.control(
        "TH",
        ["pdrestore.toml", "5", "", "pdrestore", "File Formats"],
    );
    r.control("SH", ["NAME"]);
    r.text([roman("pdrestore.toml - configuration of pdrestore(8)")]);
    r.control("SH", ["SYNOPSIS"]);
    r.text([bold("/etc/pdrestore/pdrestore.toml")]);
    r.control("SH", ["DESCRIPTION"]);
    for p in CONFIG_PREAMBLE {
        r.text(inlines(p));
        r.control("PP", []);
    }
    for sec in CONFIG_REFERENCE {
        let title = sec.title.replace('`', "");
        r.control("SH", [title.to_uppercase().as_str()]);
        for p in sec.intro {
            r.text(inlines(p));
            r.control("PP", []);
        }
        for (k, d, m) in sec.keys {
            r.control("TP", []);
            let mut head = vec![bold(*k), roman(" (default: ")];
            head.extend(inlines(d));
            head.push(roman(")"));
            r.text(head);
            r.text(inlines(m));
        }
    }
    r.control("SH", ["FILES"]);
    r.control("TP", []);
    r.text([bold("/etc/pdrestore/pdrestore.toml")]);
    r.text([roman("The configuration file.")]);
    r.control("TP", []);
    r.text([bold("/var/lib/pdrestore/relay-duid")]);
    r.text([roman("The generated relay DUID.")]);
    r.control("TP", []);
    r.text([bold("/etc/iproute2/rt_protos.d/pdrestore.conf")]);
    r.text([roman("Names route protocol 57 pdrestore for ip(8).")]);
    r.control("SH", ["SEE ALSO"]);
    r.text([
        bold("pdrestore"),
        roman("(8), "),
        bold("pdrestore-recover"),
        roman("(8), "),
        bold("pdrestore-check-config"),
        roman("(8), RFC 5460, RFC 5007"),
    ]);
    let mut out = Vec::new();
    r.to_writer(&mut out).expect("writing to a Vec");
    out
}

/// The sections clap does not write, for one page.
#[derive(Debug, Default, Clone, Copy)]
pub struct PageExtras {
    /// Exit statuses and their meaning.
    pub exit_status: &'static [(&'static str, &'static str)],
    /// Files and what they are.
    pub files: &'static [(&'static str, &'static str)],
    /// Examples: what, then the command.
    pub examples: &'static [(&'static str, &'static str)],
}

type Rows = &'static [(&'static str, &'static str)];

const ENVIRONMENT: Rows = &[
    ("RUST_LOG", "Log filter in tracing-subscriber syntax (e.g. info, debug, pdrestore=debug). Logs go to standard error; info by default."),
    ("NO_COLOR", "When set and not empty, logs carry no colour. Without it, colour is used only when standard error is a terminal (never in the journal)."),
    ("JOURNAL_STREAM", "Set by systemd when standard error goes to the journal (device:inode of the stream, systemd.exec(5)). When it names standard error, each log line starts with its syslog priority (<3> error, <4> warning, <6> info, <7> debug), which journald takes as the line's priority, and carries no timestamp of its own."),
];

const CONFIG_FILES: Rows = &[
    (
        "/etc/pdrestore/pdrestore.toml",
        "The configuration file (pdrestore.toml(5)).",
    ),
    (
        "/var/lib/pdrestore/relay-duid",
        "The relay DUID, generated on the first run when relay_duid is not configured.",
    ),
];

const RECOVER_FILES: Rows = &[
    (
        "/etc/pdrestore/pdrestore.toml",
        "The configuration file (pdrestore.toml(5)).",
    ),
    (
        "/var/lib/pdrestore/relay-duid",
        "The relay DUID, generated on the first run when relay_duid is not configured.",
    ),
    (
        "/var/lib/pdrestore/writer.lock",
        "The writer lock (flock(2)), held by recover for its run and follow for its lifetime: one writer of the routes at a time. It names its holder (pid, command, start time); the kernel releases it with the process.",
    ),
    (
        "/usr/lib/systemd/system/pdrestore.service",
        "Runs recover once at boot (Restart=on-failure).",
    ),
    (
        "/var/lib/prometheus/node-exporter/pdrestore.prom",
        "The metrics file, when metrics_file or --metrics-file names it (for node_exporter's textfile collector).",
    ),
];

const RECOVER_EXIT: Rows = &[
    ("0", "Every server answered and every planned route is in place."),
    ("1", "Partial: a server failed, a route did, an interface was missing, or the prune rail refused a prune; something was restored."),
    ("2", "Nothing was restored, and something failed."),
    ("64", "Usage error."),
    ("70", "Internal error (the route table is unusable)."),
    ("74", "Standard output could not be written (a closed pipe: `recover --json | head`), after the run was over; the metrics file holds the run's own status."),
    ("75", "Refused at once, nothing done: another pdrestore (follow, or a recover) writes the routes; the one line printed names it (pid, command, start time). A running follow is resynced with systemctl reload pdrestore-follow. A dry run is never refused."),
    ("77", "No permission to change routes (CAP_NET_ADMIN), found before any server is asked."),
    ("78", "Configuration error."),
];

const RECOVER_EXAMPLES: Rows = &[
    (
        "See what would change, touching nothing:",
        "pdrestore recover --dry-run",
    ),
    (
        "Restore and print the summary as JSON:",
        "pdrestore recover --json",
    ),
    (
        "Prune past the rail once, after checking the dry run:",
        "pdrestore recover --force-prune",
    ),
    (
        "Also write the metrics for node_exporter's textfile collector:",
        "pdrestore recover --metrics-file /var/lib/prometheus/node-exporter/pdrestore.prom",
    ),
];

const TOP_EXAMPLES: Rows = &[
    (
        "Check the configuration and print the DUIDs:",
        "pdrestore check-config",
    ),
    (
        "See what would change, touching nothing:",
        "pdrestore recover --dry-run",
    ),
    (
        "Restore and print the summary as JSON:",
        "pdrestore recover --json",
    ),
    (
        "Prune past the rail once, after checking the dry run:",
        "pdrestore recover --force-prune",
    ),
    (
        "Ask one server for every binding of a link:",
        "pdrestore query --server '[2001:db8::547]' --link-address 2001:db8:1::1",
    ),
    (
        "Try the whole job in a private namespace:",
        "pdrestore demo",
    ),
];

const QUERY_EXIT: Rows = &[
    ("0", "Every server's answer was whole."),
    ("1", "Some server's answer was not (partial, timed out, refused, or a status such as NotConfigured)."),
    ("64", "Bad arguments."),
    ("70", "A server called our query malformed (a pdrestore bug)."),
    ("74", "Standard output could not be written."),
    ("78", "The --config file is not valid."),
];

const QUERY_EXAMPLES: Rows = &[
    (
        "Every binding of our relay, with the servers and DUIDs of the configuration:",
        "pdrestore query --config /etc/pdrestore/pdrestore.toml --json",
    ),
    (
        "Every binding of one link:",
        "pdrestore query --server '[2001:db8::547]' --link-address 2001:db8:1::1",
    ),
    (
        "One client:",
        "pdrestore query --server 192.0.2.7 --client-id 0003000102000000c101",
    ),
];

const LAB_SERVER_EXIT: Rows = &[
    ("0", "Stopped by a signal."),
    ("64", "Usage error."),
    ("65", "A bindings or fault file cannot be read or parsed."),
    ("69", "A listening address cannot be bound."),
    ("70", "Internal error."),
    ("74", "Serving failed."),
];

const LAB_SERVER_EXAMPLES: Rows = &[
    (
        "Serve 100000 synthetic bindings on a test port:",
        "pdrestore lab-server --listen '[::1]:5547' --synthetic 100000",
    ),
    (
        "Serve what a real server answered (recorded with query --json):",
        "pdrestore lab-server --listen '[::1]:5547' --bindings answer.jsonl",
    ),
];

/// The extra sections of the page of subcommand `name` (`""`: pdrestore(8)).
pub fn page_extras(name: &str) -> PageExtras {
    let e = |exit_status, files, examples| PageExtras {
        exit_status,
        files,
        examples,
    };
    match name {
        "" => e(RECOVER_EXIT, RECOVER_FILES, TOP_EXAMPLES),
        "recover" => e(RECOVER_EXIT, RECOVER_FILES, RECOVER_EXAMPLES),
        "check-config" => e(
            &[
                ("0", "The file is valid."),
                ("74", "Standard output could not be written."),
                ("78", "It is not (the error names file, line and column)."),
            ],
            CONFIG_FILES,
            &[(
                "Check another file:",
                "pdrestore check-config --config ./pdrestore.toml",
            )],
        ),
        "duid" => e(
            &[
                ("0", "The DUID was printed."),
                ("74", "Standard output could not be written."),
                (
                    "78",
                    "Configuration error, or a corrupt or unwritable DUID file.",
                ),
            ],
            CONFIG_FILES,
            &[(
                "Print the Relay-ID to configure in the relay agent:",
                "pdrestore duid",
            )],
        ),
        "decode" => e(
            &[
                ("0", "Everything decoded."),
                ("1", "Something was malformed."),
                ("66", "The file cannot be read."),
                ("74", "Standard output could not be written."),
            ],
            &[],
            &[(
                "Decode a captured stream as JSON lines:",
                "pdrestore decode --json response.bin",
            )],
        ),
        "query" => e(QUERY_EXIT, CONFIG_FILES, QUERY_EXAMPLES),
        "follow" => e(
            &[
                ("0", "Stopped cleanly (SIGTERM or SIGINT; with --once, idle); the routes are left in place."),
                ("70", "Internal error: the route table or the rtnetlink watcher failed."),
                ("75", "Refused at once, nothing done: another pdrestore (a recover, or another follow) writes the routes; the one line printed names it. pdrestore-follow.service tries again after RestartSec."),
                ("77", "No permission: changing routes needs CAP_NET_ADMIN, the capture sockets CAP_NET_RAW."),
                ("78", "Configuration error, or no client-facing interface to snoop."),
            ],
            RECOVER_FILES,
            &[
                (
                    "Run it under systemd (instead of pdrestore.service and its timer):",
                    "systemctl enable --now pdrestore-follow",
                ),
                (
                    "Resync now:",
                    "systemctl reload pdrestore-follow",
                ),
                (
                    "Catch up once, then exit:",
                    "pdrestore follow --once --idle 5s",
                ),
            ],
        ),
        "lab-server" => e(LAB_SERVER_EXIT, &[], LAB_SERVER_EXAMPLES),
        "demo" => e(
            &[
                ("0", "The recovery was complete."),
                ("1", "Partial."),
                ("70", "The namespace could not be made."),
                ("74", "Standard output could not be written."),
            ],
            &[],
            &[(
                "Run the demo with more bindings:",
                "pdrestore demo --bindings 20000",
            )],
        ),
        _ => PageExtras::default(),
    }
}

fn extras_roff(name: &str) -> Roff {
    let e = page_extras(name);
    let mut r = Roff::new();
    if !e.exit_status.is_empty() {
        r.control("SH", ["EXIT STATUS"]);
        for (code, what) in e.exit_status {
            r.control("TP", []);
            r.text([bold(*code)]);
            r.text([roman(*what)]);
        }
    }
    r.control("SH", ["ENVIRONMENT"]);
    for (var, what) in ENVIRONMENT {
        r.control("TP", []);
        r.text([bold(*var)]);
        r.text([roman(*what)]);
    }
    if !e.files.is_empty() {
        r.control("SH", ["FILES"]);
        for (f, what) in e.files {
            r.control("TP", []);
            r.text([italic(*f)]);
            r.text([roman(*what)]);
        }
    }
    if !e.examples.is_empty() {
        r.control("SH", ["EXAMPLES"]);
        for (what, cmd) in e.examples {
            r.control("PP", []);
            r.text([roman(*what)]);
            r.control("RS", []);
            r.control("EX", []);
            r.text([roman(*cmd)]);
            r.control("EE", []);
            r.control("RE", []);
        }
    }
    r.control("SH", ["SEE ALSO"]);
    r.text([
        bold("pdrestore.toml"),
        roman("(5), "),
        bold("pdrestore"),
        roman("(8), RFC 5460 (DHCPv6 Bulk Leasequery), RFC 5007 (DHCPv6 Leasequery)"),
    ]);
    r
}

fn write_man(cmd: &clap::Command, name: &str, sub: &str, dir: &Path) -> io::Result<()> {
    let cmd = cmd.clone().name(name.to_string());
    let man = clap_mangen::Man::new(cmd.clone()).section("8");
    let mut buf = Vec::new();
    man.render_title(&mut buf)?;
    man.render_name_section(&mut buf)?;
    man.render_synopsis_section(&mut buf)?;
    man.render_description_section(&mut buf)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut buf)?;
    }
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(&mut buf)?;
    }
    extras_roff(sub).to_writer(&mut buf)?;
    if cmd.get_version().is_some() || cmd.get_long_version().is_some() {
        man.render_version_section(&mut buf)?;
    }
    std::fs::write(dir.join(format!("{name}.8")), buf)?;
    for s in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        write_man(s, &format!("{name}-{}", s.get_name()), s.get_name(), dir)?;
    }
    Ok(())
}

/// Write `dir/man/*.8`, `dir/man/pdrestore.toml.5`,
/// `dir/completions/{pdrestore.bash,_pdrestore,pdrestore.fish}` and
/// `dir/configuration.md`.
pub fn generate(dir: &Path) -> io::Result<()> {
    let mut cmd = Cli::command();
    cmd.build();
    let man = dir.join("man");
    let comp = dir.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&comp)?;
    write_man(&cmd, "pdrestore", "", &man)?;
    std::fs::write(man.join("pdrestore.toml.5"), configuration_man())?;
    use clap_complete::{generate_to, Shell};
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        generate_to(shell, &mut cmd, "pdrestore", &comp)?;
    }
    std::fs::write(dir.join("configuration.md"), configuration_markdown())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    /// The default a key's documentation gives: the first `code` span of
    /// its default column, as a TOML value (`300s` and other words as a
    /// string); `None` for a default in words ("required", "generated").
    fn documented(default: &str) -> Option<toml::Value> {
        let start = default.find('`')? + 1;
        let end = start + default[start..].find('`')?;
        let code = &default[start..end];
        let value = toml::from_str::<toml::Table>(&format!("v = {code}"))
            .ok()
            .and_then(|t| t.get("v").cloned());
        Some(value.unwrap_or_else(|| toml::Value::String(code.to_string())))
    }

    /// Two values are the same setting: equal, or the same duration.
    fn same(doc: &toml::Value, code: &toml::Value) -> bool {
        let duration = |v: &toml::Value| v.as_str().and_then(|s| humantime::parse_duration(s).ok());
        doc == code || duration(doc).is_some_and(|d| Some(d) == duration(code))
    }

    /// Every default the configuration reference states is the code's (the
    /// effective settings of a minimal file, as `check-config` prints them),
    /// and every key the code has is documented.
    #[test]
    fn the_documented_defaults_are_the_code_defaults() {
        let minimal =
            "[[server]]\naddress = \"::1\"\n[routes]\nallowed_prefixes = [\"2001:db8::/32\"]\n";
        let config = Config::parse(minimal, std::path::Path::new("t.toml")).unwrap();
        let effective: toml::Table = toml::from_str(&config.to_toml()).unwrap();
        let mut checked = 0;
        for sec in CONFIG_REFERENCE {
            let table = match sec.table {
                "" => Some(&effective),
                "server" => effective["server"].as_array().and_then(|a| a[0].as_table()),
                t => effective.get(t).and_then(|v| v.as_table()),
            };
            for (key, default, _) in sec.keys {
                let code = table.and_then(|t| t.get(*key));
                match (documented(default), code) {
                    (Some(doc), Some(code)) => {
                        assert!(
                            same(&doc, code),
                            "{}.{key}: documented {doc}, code {code}",
                            sec.table
                        );
                        checked += 1;
                    }
                    // A default in words: the key has no value of its own.
                    (None, _) | (Some(_), None) => {
                        assert!(
                            code.is_none() || !default.contains('`'),
                            "{}.{key}: documented {default:?}, code {code:?}",
                            sec.table
                        );
                    }
                }
            }
        }
        assert!(checked >= 25, "only {checked} defaults compared");
        // Every key of the effective settings is documented.
        let documented_keys = |table: &str| -> Vec<&str> {
            CONFIG_REFERENCE
                .iter()
                .filter(|s| s.table == table)
                .flat_map(|s| s.keys.iter().map(|k| k.0))
                .collect()
        };
        for (key, value) in &effective {
            match value.as_table() {
                Some(t) => {
                    for (k, v) in t {
                        let section = format!("{key}.{k}");
                        let known = documented_keys(key).contains(&k.as_str())
                            || (v.is_table()
                                && CONFIG_REFERENCE.iter().any(|s| s.table == section));
                        assert!(known, "{section} is not documented");
                    }
                }
                None if key == "server" => {}
                None => assert!(
                    documented_keys("").contains(&key.as_str()),
                    "{key} is not documented"
                ),
            }
        }
    }
}
