//! The configuration: every key, the defaults, every mistake where it is.

use super::*;

#[test]
fn the_fanout_it_asks_for() {
    let text = format!(
        "{}\n{}",
        "data_timeout = \"30s\"\nretries = 2\nmax_in_flight = 4\n[[server]]\naddress = \"::1\"\n[[server]]\naddress = \"127.0.0.1\"\nport = 5547\nsource = \"127.0.0.2\"",
        "[routes]\nallowed_prefixes = [\"2001:db8::/32\"]\n[limits]\nmax_bindings_per_query = 7\n"
    );
    let config = Config::parse(&text, Path::new("t.toml")).unwrap();
    let q = vec![QuerySpec::new(crate::proto::Query::ByLinkAddress)];
    let cfg = config.fanout_config(Duid::from_bytes(vec![0, 3, 0, 1, 1]), q);
    assert_eq!(cfg.servers.len(), 2);
    assert_eq!(cfg.servers[0].addr, "[::1]:547".parse().unwrap());
    assert_eq!(cfg.servers[1].source, Some("127.0.0.2".parse().unwrap()));
    assert_eq!(cfg.connection.data_timeout, Duration::from_secs(30));
    assert_eq!(cfg.connection.max_in_flight, 4);
    assert_eq!(cfg.connection.limits.max_bindings_per_query, 7);
    assert_eq!(cfg.connection.limits.max_relay_depth, 32);
    assert_eq!(cfg.retry.attempts, 3);
}

const FULL: &str = r#"
relay_duid = "00:03:00:01:02:00:5e:00:00:02"
requestor_duid = "000100012a2b2c2d020000009901"
state_directory = "/tmp/pdr-state"
links = ["2001:db8:1::1", "2001:db8:2::1"]
data_timeout = "2m"
retries = 5
retry_initial_delay = "500ms"
retry_max_delay = "1m"
group_grace = "3s"
max_in_flight = 2
metrics_file = "/var/lib/prometheus/node-exporter/pdrestore.prom"

[[server]]
address = "2001:db8::547"

[[server]]
address = "2001:db8::548"
port = 5547
source = "2001:db8::1"
group = "kea-ha"

[routes]
table = 100
protocol = 200
metric = 512
allowed_prefixes = ["2001:db8:8000::/40", "2001:db8:9000::/40"]
min_prefix_len = 40
prune = false
next_hop_fallback = "client-address"
max_routes_per_second = 2000

[routes.interfaces]
"ge-0/0/1" = "eth1"

[limits]
max_bindings_per_query = 10
max_bindings_per_server = 20
max_bytes_per_connection = 30
max_relay_depth = 8
"#;

fn parse(t: &str) -> Result<Config, ConfigError> {
    Config::parse(t, Path::new("test.toml"))
}

fn err(t: &str) -> String {
    parse(t).unwrap_err().to_string()
}

#[test]
fn every_key() {
    let c = parse(FULL).unwrap();
    assert_eq!(
        c.relay_duid.as_ref().unwrap().to_hex(),
        "0003000102005e000002"
    );
    assert_eq!(
        c.requestor_duid.as_ref().unwrap().to_hex(),
        "000100012a2b2c2d020000009901"
    );
    assert_eq!(c.state_directory, PathBuf::from("/tmp/pdr-state"));
    assert_eq!(c.links.as_ref().map(Vec::len), Some(2));
    assert_eq!(c.data_timeout, Duration::from_secs(120));
    assert_eq!(c.retries, 5);
    assert_eq!(c.retry_initial_delay, Duration::from_millis(500));
    assert_eq!(c.retry_max_delay, Duration::from_secs(60));
    assert_eq!(c.max_in_flight, 2);
    assert_eq!(
        c.metrics_file.as_deref(),
        Some(Path::new(
            "/var/lib/prometheus/node-exporter/pdrestore.prom"
        ))
    );
    assert_eq!(c.servers.len(), 2);
    assert_eq!(
        c.servers[0].socket_addr(),
        "[2001:db8::547]:547".parse().unwrap()
    );
    assert_eq!(c.servers[1].port, 5547);
    assert_eq!(c.servers[1].source, Some("2001:db8::1".parse().unwrap()));
    assert_eq!(c.group_grace, Duration::from_secs(3));
    assert_eq!(
        c.server_groups(),
        [
            ("[2001:db8::547]:547".to_string(), vec![0]),
            ("kea-ha".to_string(), vec![1])
        ]
    );
    assert_eq!(
        (c.routes.table, c.routes.protocol, c.routes.metric),
        (100, 200, 512)
    );
    assert_eq!(c.routes.allowed_prefixes.len(), 2);
    assert_eq!(c.routes.min_prefix_len, 40);
    assert!(!c.routes.prune);
    assert_eq!(c.routes.next_hop_fallback, NextHopFallback::ClientAddress);
    assert_eq!(c.routes.max_routes_per_second, Some(2000));
    assert_eq!(c.routes.interfaces["ge-0/0/1"], "eth1");
    assert_eq!(
        c.limits,
        Limits {
            max_bindings_per_query: 10,
            max_bindings_per_server: 20,
            max_bytes_per_connection: 30,
            max_relay_depth: 8
        }
    );
    // Printing the effective settings and reading them back gives the same.
    assert_eq!(parse(&c.to_toml()).unwrap(), c);
}

#[test]
fn defaults() {
    let c =
        parse("[[server]]\naddress = \"::1\"\n[routes]\nallowed_prefixes = [\"2001:db8::/32\"]\n")
            .unwrap();
    assert_eq!(c.relay_duid, None);
    assert_eq!(c.state_directory, PathBuf::from("/var/lib/pdrestore"));
    assert_eq!(c.links, None);
    assert_eq!(c.query, QueryMode::RelayId);
    assert_eq!(c.query_links(&[]), vec![Ipv6Addr::UNSPECIFIED]);
    assert_eq!(c.data_timeout, Duration::from_secs(300));
    assert_eq!(c.max_in_flight, 1);
    assert_eq!(c.metrics_file, None);
    assert!(!c.to_toml().contains("metrics_file"), "{}", c.to_toml());
    assert_eq!(c.servers[0].port, 547);
    assert_eq!(
        (c.routes.table, c.routes.protocol, c.routes.metric),
        (254, DEFAULT_PROTOCOL, 1024)
    );
    assert_eq!(DEFAULT_PROTOCOL, 57);
    assert_eq!(c.connect_timeout, Duration::from_secs(5));
    assert_eq!(c.first_answer_timeout, Duration::from_secs(30));
    assert_eq!(c.startup_deadline, Duration::from_secs(300));
    assert_eq!(c.interface_wait, Duration::from_secs(30));
    assert_eq!(c.routes.prune_limit, PruneLimit::Share(1000));
    assert_eq!(c.routes.min_prefix_len, 48);
    assert!(c.routes.prune);
    assert_eq!(c.routes.next_hop_fallback, NextHopFallback::None);
    assert_eq!(c.routes.max_routes_per_second, None, "no pace by default");
    assert_eq!(c.limits, Limits::default());
    let c = parse("[[server]]\naddress = \"::1\"\n[routes]\ntable = \"main\"\nallowed_prefixes = [\"2001:db8::/32\"]\n").unwrap();
    assert_eq!(c.routes.table, 254);
}

#[test]
fn errors_name_line_and_column() {
    let base = "[[server]]\naddress = \"::1\"\n[routes]\nallowed_prefixes = [\"2001:db8::/32\"]\n";
    let e = err(&format!("bogus = 1\n{base}"));
    assert!(e.starts_with("test.toml:1:1: unknown field `bogus`"), "{e}");
    let e = err(&format!("{base}colour = \"red\"\n"));
    assert!(
        e.starts_with("test.toml:5:1: unknown field `colour`"),
        "{e}"
    );
    let e = err(
        "[[server]]\naddress = \"not_an_ip\"\n[routes]\nallowed_prefixes = [\"2001:db8::/32\"]\n",
    );
    assert!(
        e.starts_with("test.toml:2:11: \"not_an_ip\" is neither an IP address nor a DNS name"),
        "{e}"
    );
    let e = err(&format!("data_timeout = \"soon\"\n{base}"));
    assert!(
        e.starts_with("test.toml:1:16: invalid duration \"soon\""),
        "{e}"
    );
    let e = err(&format!("data_timeout = \"0s\"\n{base}"));
    assert!(
        e.contains("1:16: duration must be greater than zero"),
        "{e}"
    );
    let e = err(&format!("relay_duid = \"00:0g\"\n{base}"));
    assert!(
        e.starts_with("test.toml:1:14: invalid character 'g' in DUID"),
        "{e}"
    );
    let e = err(&format!("max_in_flight = 0\n{base}"));
    assert!(e.starts_with("test.toml:1:17: must be at least 1"), "{e}");
    let e = err("server = []\n[routes]\nallowed_prefixes = [\"2001:db8::/32\"]\n");
    assert!(e.starts_with("test.toml:1:10: must not be empty"), "{e}");
    let e = err("[routes]\nallowed_prefixes = [\"2001:db8::/32\"]\n");
    assert!(e.contains("missing field `server`"), "{e}");
    let e =
        err("[[server]]\naddress = \"::1\"\n[routes]\nallowed_prefixes = [\"2001:db8::/329\"]\n");
    assert!(
        e.starts_with("test.toml:4:21: invalid IP address syntax"),
        "{e}"
    );
    let e = err("[[server]]\naddress = \"::1\"\n[routes]\nallowed_prefixes = []\n");
    assert!(e.starts_with("test.toml:4:20: must not be empty"), "{e}");
    let e = err(&format!("{base}min_prefix_len = 129\n"));
    assert!(e.starts_with("test.toml:5:18: must be 1 to 128"), "{e}");
    let e = err(&format!("{base}protocol = 3\n"));
    assert!(
        e.starts_with("test.toml:5:12: protocol 0-4 belong to the kernel"),
        "{e}"
    );
    let e = err(&format!("{base}table = \"other\"\n"));
    assert!(
        e.starts_with("test.toml:5:9: unknown table \"other\""),
        "{e}"
    );
    let e = err(&format!("{base}table = 255\n"));
    assert!(e.contains("5:9: table 0 and 255"), "{e}");
    let e = err(&format!("{base}next_hop_fallback = \"magic\"\n"));
    assert!(
        e.starts_with("test.toml:5:21: unknown variant `magic`"),
        "{e}"
    );
    let e = err(&format!("{base}[limits]\nmax_relay_depth = \"x\"\n"));
    assert!(e.starts_with("test.toml:6:19: invalid type"), "{e}");
    let e = err("[[server]]\naddress = \"::1\"\nport = 70000\n[routes]\nallowed_prefixes = [\"2001:db8::/32\"]\n");
    assert!(e.starts_with("test.toml:3:8:"), "{e}");
    let e = err("[[server]\n");
    assert!(e.starts_with("test.toml:1:"), "{e}");
    let e = err(&format!("metrics_file = \"pdrestore.prom\"\n{base}"));
    assert!(
        e.starts_with("test.toml:1:16: metrics_file \"pdrestore.prom\" must be an absolute path"),
        "{e}"
    );
    let e = err(&format!("metrics_file = \"/\"\n{base}"));
    assert!(e.contains("1:16: metrics_file \"/\" must be"), "{e}");
}

/// Every mistake of the safety issue's list is refused with its line and column.
#[test]
fn mistakes_are_refused_where_they_are() {
    let base = "[[server]]\naddress = \"::1\"\n[routes]\nallowed_prefixes = [\"2001:db8::/32\"]\n";
    let e = err(&format!("links = []\n{base}"));
    assert!(e.starts_with("test.toml:1:9: must not be empty"), "{e}");
    let e = err("[[server]]\naddress = \"::1\"\n[routes]\nallowed_prefixes = [\"2001:db8::/32\", \"::/0\"]\n");
    assert!(
        e.starts_with("test.toml:4:38: pool ::/0 is broader than /16"),
        "{e}"
    );
    let e = err("[[server]]\naddress = \"::1\"\n[routes]\nallowed_prefixes = [\"2000::/3\"]\n");
    assert!(
        e.starts_with("test.toml:4:21: pool 2000::/3 is broader"),
        "{e}"
    );
    let e = err(
        "[[server]]\naddress = \"::1\"\n[routes]\nallowed_prefixes = [\"2001:db8:8000::1/40\"]\n",
    );
    assert!(
        e.starts_with("test.toml:4:21: pool 2001:db8:8000::1/40 has host bits set (did you mean 2001:db8:8000::/40?)"),
        "{e}"
    );
    let e = err(&format!("relay_duid = \"01\"\n{base}"));
    assert!(
        e.starts_with("test.toml:1:14: a DUID of 1 octet(s) is too short"),
        "{e}"
    );
    let e = err(&format!("requestor_duid = \"00:03\"\n{base}"));
    assert!(e.starts_with("test.toml:1:18: a DUID of 2 octet(s)"), "{e}");
    let e = err(&format!(
        "{base}[routes.interfaces]\n\"ge-0/0/1\" = \"a-very-long-ifname\"\n"
    ));
    assert!(
        e.starts_with("test.toml:6:14: interface name \"a-very-long-ifname\" is 18 octets long; Linux allows at most 15"),
        "{e}"
    );
    let e = err(&format!("{base}[routes.interfaces]\n\"x\" = \"eth/1\"\n"));
    assert!(
        e.starts_with("test.toml:6:7: \"eth/1\" is not a valid interface name"),
        "{e}"
    );
    let e = err(&format!("{base}[limits]\nmax_relay_depth = 0\n"));
    assert!(e.starts_with("test.toml:6:19: must be at least 1"), "{e}");
    let e = err("[[server]]\naddress = \"2001:db8::547\"\n[[server]]\naddress = \"2001:db8::547\"\nport = 547\n[routes]\nallowed_prefixes = [\"2001:db8::/32\"]\n");
    assert!(
        e.starts_with("test.toml:4:11: server [2001:db8::547]:547 is configured twice (also server 1 of the file)"),
        "{e}"
    );
    let e = err("[[server]]\naddress = \"2001:db8::547\"\nsource = \"192.0.2.1\"\n[routes]\nallowed_prefixes = [\"2001:db8::/32\"]\n");
    assert!(
        e.starts_with("test.toml:3:10: source 192.0.2.1 cannot reach server 2001:db8::547: one is IPv4, the other IPv6"),
        "{e}"
    );
    let mut many = String::new();
    for p in 0..65 {
        many.push_str(&format!(
            "[[server]]\naddress = \"::1\"\nport = {}\n",
            1000 + p
        ));
    }
    let e = err(&format!(
        "{many}[routes]\nallowed_prefixes = [\"2001:db8::/32\"]\n"
    ));
    assert!(
        e.starts_with("test.toml:194:11: at most 64 servers can be configured"),
        "{e}"
    );
    let e = err(&format!("{base}max_routes_per_second = 0\n"));
    assert!(e.starts_with("test.toml:5:25: must be at least 1"), "{e}");
    let e = err(&format!("{base}prune_limit = \"ten\"\n"));
    assert!(
        e.starts_with("test.toml:5:15: invalid prune_limit \"ten\""),
        "{e}"
    );
    let e = err(&format!("{base}prune_limit = \"150%\"\n"));
    assert!(
        e.starts_with("test.toml:5:15: prune_limit \"150%\" is not a share"),
        "{e}"
    );
    let e = err(&format!("connect_timeout = \"0s\"\n{base}"));
    assert!(
        e.starts_with("test.toml:1:19: duration must be greater than zero"),
        "{e}"
    );
    // Zero is allowed where it means "do not wait".
    let c = parse(&format!(
        "startup_deadline = \"0s\"\ninterface_wait = \"0s\"\n{base}prune_limit = 500\n"
    ))
    .unwrap();
    assert_eq!(c.startup_deadline, Duration::ZERO);
    assert_eq!(c.interface_wait, Duration::ZERO);
    assert_eq!(c.routes.prune_limit, PruneLimit::Count(500));
    let c = parse(&format!("{base}prune_limit = \"2.5%\"\n")).unwrap();
    assert_eq!(c.routes.prune_limit, PruneLimit::Share(250));
    assert_eq!(parse(&c.to_toml()).unwrap(), c);
}

#[test]
fn link_address_mode() {
    let pools = "[routes]\nallowed_prefixes = [\"2001:db8:8000::/40\"]\n";
    let c = parse(&format!(
        "query = \"link-address\"\nlinks = [\"2001:db8:1::1\", \"2001:db8:2::1\"]\n[[server]]\naddress = \"2001:db8:ff::547\"\n{pools}"
    ))
    .unwrap();
    assert_eq!(c.query, QueryMode::LinkAddress);
    let links = c.query_links(&[]);
    assert_eq!(links.len(), 2);
    assert_eq!(
        c.plan_settings(Duid::from_bytes(vec![0, 3, 0]), &links)
            .our_layer,
        OurLayer::LinkAddress(links.clone())
    );
    // Without links: the global addresses of the mapped interfaces, one per prefix.
    let c = parse(&format!(
        "query = \"link-address\"\n[[server]]\naddress = \"::1\"\n{pools}[routes.interfaces]\n\"0x07000000\" = \"br1\"\n\"0x06000000\" = \"br2\"\n"
    ))
    .unwrap();
    let ifs = vec![
        Interface {
            name: "br1".into(),
            index: 3,
            addresses: vec![
                "fe80::1/64".parse().unwrap(),
                "2001:db8:1::1/64".parse().unwrap(),
                "2001:db8:1::5/64".parse().unwrap(),
            ],
        },
        Interface {
            name: "br2".into(),
            index: 4,
            addresses: vec!["2001:db8:2::1/64".parse().unwrap()],
        },
        Interface {
            name: "up0".into(),
            index: 2,
            addresses: vec!["2001:db8:ff::1/64".parse().unwrap()],
        },
    ];
    assert_eq!(
        c.query_links(&ifs),
        vec![
            "2001:db8:1::1".parse::<Ipv6Addr>().unwrap(),
            "2001:db8:2::1".parse().unwrap()
        ]
    );
    let map = c
        .plan_settings(Duid::from_bytes(vec![0, 3, 0]), &[])
        .interface_map;
    assert_eq!(
        map.get(&vec![7u8, 0, 0, 0]).map(String::as_str),
        Some("br1")
    );
    // The mistakes, where they are.
    let e = err(&format!(
        "query = \"link-address\"\nlinks = [\"2001:db8:1::1\", \"::\"]\n[[server]]\naddress = \"::1\"\n{pools}"
    ));
    assert!(
        e.starts_with(
            "test.toml:2:27: query = \"link-address\" asks for the bindings of each link"
        ),
        "{e}"
    );
    let e = err(&format!(
        "query = \"link-address\"\n[[server]]\naddress = \"::1\"\n{pools}"
    ));
    assert!(
        e.starts_with("test.toml:1:9: query = \"link-address\" needs `links`"),
        "{e}"
    );
    let e = err(&format!(
        "query = \"by-magic\"\n[[server]]\naddress = \"::1\"\n{pools}"
    ));
    assert!(
        e.starts_with("test.toml:1:9: unknown variant `by-magic`"),
        "{e}"
    );
    let e = err(&format!(
        "[[server]]\naddress = \"::1\"\n{pools}[routes.interfaces]\n\"0x7g\" = \"br1\"\n"
    ));
    assert!(
        e.contains("interface-id \"0x7g\": after 0x, give the octets in hex"),
        "{e}"
    );
}

#[test]
fn missing_interfaces_are_warnings_with_their_position() {
    let text = "[[server]]\naddress = \"::1\"\n[routes]\nallowed_prefixes = [\"2001:db8::/32\"]\n[routes.interfaces]\n\"ge-0/0/1\" = \"eth1\"\n\"ge-0/0/2\" = \"eth9\"\n";
    let c = parse(text).unwrap();
    let w = c.interface_warnings(text, Path::new("test.toml"), &["lo", "eth1"]);
    assert_eq!(
        w,
        vec!["test.toml:7:14: warning: interface-id \"ge-0/0/2\" maps to interface \"eth9\", which does not exist on this machine".to_string()]
    );
    assert!(c
        .interface_warnings(text, Path::new("test.toml"), &["eth1", "eth9"])
        .is_empty());
}

#[test]
fn load_reports_missing_file() {
    let e = Config::load(Path::new("/nonexistent/pdrestore.toml")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/nonexistent/pdrestore.toml: No such file"),
        "{e}"
    );
}

#[test]
fn example_config_parses() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("pdrestore.example.toml");
    let c = Config::load(&p).unwrap();
    assert!(!c.servers.is_empty());
}

#[test]
fn the_worst_case_of_a_run_is_the_fanouts_after_the_interfaces() {
    let c =
        parse("[[server]]\naddress = \"::1\"\n[routes]\nallowed_prefixes = [\"2001:db8::/32\"]\n")
            .unwrap();
    let w = c.worst_case();
    // interface_wait, then startup_deadline of failed connects, then 4 tries
    // that each connect, hear a first answer at the last moment and stall,
    // each after a backoff at its cap.
    let per_try = Duration::from_secs(5 + 30 + 300) + Duration::from_millis(100);
    assert_eq!(
        w.total(),
        Duration::from_secs(30 + 300 + 4 * 30) + 4 * per_try
    );
    assert_eq!(
        w.server,
        c.recovery_fanout(&"000300010203".parse().unwrap(), &[])
            .worst_case()
    );
    assert!(
        w.to_string()
            .starts_with("29m 51s (interface_wait 30s + startup_deadline 5m + 4 tries"),
        "{w}"
    );
    // The first-answer timeout is what makes a silent server cheap: with it
    // as long as the data timeout, a try costs 5 more minutes.
    let long = parse("first_answer_timeout = \"1h\"\n[[server]]\naddress = \"::1\"\n[routes]\nallowed_prefixes = [\"2001:db8::/32\"]\n").unwrap();
    assert_eq!(
        long.worst_case().server.first_answer,
        Duration::from_secs(300)
    );
}

#[test]
fn server_groups_are_named_and_replicas_share_one() {
    let two = |g1: &str, g2: &str| {
        format!(
            "relay_duid = \"0003000102005e000002\"\n[[server]]\naddress = \"::1\"\n{g1}\n[[server]]\naddress = \"::2\"\n{g2}\n[routes]\nallowed_prefixes = [\"2001:db8::/32\"]\n"
        )
    };
    let c = parse(&two("group = \"ha\"", "group = \"ha\"")).unwrap();
    assert_eq!(c.server_groups(), [("ha".to_string(), vec![0, 1])]);
    assert_eq!(c.group_grace, Duration::from_secs(10), "the default");
    let c = parse(&two("", "")).unwrap();
    assert_eq!(c.server_groups().len(), 2, "each server its own group");
    for bad in [
        "\"\"",
        "\"a b\"",
        "\"[::1]:547\"",
        &format!("\"{}\"", "x".repeat(65)),
    ] {
        let e = err(&two(&format!("group = {bad}"), ""));
        assert!(e.contains("group") && e.contains("1 to 64"), "{bad}: {e}");
    }
}

#[test]
fn follow_snoops_the_interfaces_of_links_in_link_address_mode() {
    let iface = |name: &str, addr: &str| crate::routes::Interface {
        name: name.into(),
        index: 1,
        addresses: vec![addr.parse().unwrap()],
    };
    let ifs = [
        iface("br1", "2001:db8:1::1/64"),
        iface("br2", "2001:db8:2::1/64"),
        iface("up0", "2001:db8:ff::1/64"),
    ];
    let base = "[[server]]\naddress = \"::1\"\n[routes]\nallowed_prefixes = [\"2001:db8::/32\"]\n";
    let lam =
        format!("query = \"link-address\"\nlinks = [\"2001:db8:2::1\", \"2001:db8:1::1\"]\n{base}");
    let c = parse(&lam).unwrap();
    assert_eq!(c.follow_interfaces_on(&ifs), ["br1", "br2"]);
    // With a map too: both, once each.
    let c = parse(&format!(
        "{lam}[routes.interfaces]\n\"x\" = \"br2\"\n\"y\" = \"eth9\"\n"
    ))
    .unwrap();
    assert_eq!(c.follow_interfaces_on(&ifs), ["br1", "br2", "eth9"]);
    // [follow] interfaces wins; relay-id mode keeps the map's targets.
    let c = parse(&format!("{lam}[follow]\ninterfaces = [\"up0\"]\n")).unwrap();
    assert_eq!(c.follow_interfaces_on(&ifs), ["up0"]);
    let c = parse(&format!("links = [\"2001:db8:1::1\"]\n{base}")).unwrap();
    assert!(c.follow_interfaces_on(&ifs).is_empty());
}

#[test]
fn a_server_name_is_resolved_when_the_file_is_read() {
    let with = |a: &str| {
        format!("[[server]]\naddress = \"{a}\"\n[routes]\nallowed_prefixes = [\"2001:db8::/32\"]\n")
    };
    // localhost is in every /etc/hosts: ::1 when it has an IPv6 line.
    let c = parse(&with("localhost")).unwrap();
    assert!(
        c.servers[0].address.is_loopback(),
        "{:?}",
        c.servers[0].address
    );
    let e = err(&with("no-such-host.invalid"));
    assert!(
        e.contains("server name \"no-such-host.invalid\" does not resolve"),
        "{e}"
    );
    let e = err(&with("not a name"));
    assert!(e.contains("is neither an IP address nor a DNS name"), "{e}");
    assert!(e.starts_with("test.toml:2:11:"), "where it is: {e}");
}

#[test]
fn routes_vrf_takes_the_vrf_devices_table_and_binds_the_connections() {
    use crate::routes::netlink::Link;
    let text = |extra: &str| {
        format!("[[server]]\naddress = \"::1\"\n[routes]\nallowed_prefixes = [\"2001:db8::/32\"]\n{extra}")
    };
    let c = parse(&text("vrf = \"vrf-blue\"\n")).unwrap();
    assert_eq!(c.routes.vrf.as_deref(), Some("vrf-blue"));
    let link = |name: &str, vrf_table: Option<u32>| Link {
        name: name.into(),
        index: 9,
        up: true,
        vrf_table,
    };
    let in_vrf = c
        .with_vrf(&[link("eth0", None), link("vrf-blue", Some(1010))])
        .unwrap();
    assert_eq!(in_vrf.routes.table, 1010);
    let f = in_vrf.fanout_config("0003000102005e000002".parse().unwrap(), Vec::new());
    assert_eq!(f.connection.device.as_deref(), Some("vrf-blue"));
    assert_eq!(
        c.with_vrf(&[link("vrf-blue", None)]).unwrap_err(),
        "routes.vrf: \"vrf-blue\" is not a VRF device"
    );
    assert_eq!(
        c.with_vrf(&[]).unwrap_err(),
        "routes.vrf: no network interface named \"vrf-blue\""
    );
    // Without vrf: as it is, no device.
    let plain = parse(&text("")).unwrap();
    assert_eq!(plain.with_vrf(&[]).unwrap(), plain);
    let f = plain.fanout_config("0003000102005e000002".parse().unwrap(), Vec::new());
    assert_eq!(f.connection.device, None);
    // Both a table and a VRF: refused where the VRF is.
    let e = err(&text("table = 100\nvrf = \"vrf-blue\"\n"));
    assert!(e.contains("routes.vrf takes the VRF device's table"), "{e}");
    let e = err(&text("vrf = \"a/b\"\n"));
    assert!(e.contains("not a valid interface name"), "{e}");
}
