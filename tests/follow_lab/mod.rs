//! The lab of `pdrestore follow` (tests/follow.rs, benches/follow.rs): a
//! "router" network namespace with one veth pair per client link to a
//! "client" namespace each, a lab server on the router's loopback, the real
//! binary running `follow` inside the router namespace, systemd's notify
//! socket played by a Unix datagram socket, and DHCPv6 frames sent with
//! real UDP sockets (from the router: they leave it, Outgoing; from a
//! client: Incoming). Needs root; nothing touches the host: every address
//! is inside the namespaces (link-local and documentation prefixes on the
//! veth pairs, the router's loopback).
#![allow(dead_code)]

use pdrestore::netns::NetNs;
use pdrestore::proto::{
    Binding, ClientMessage, DhcpOption, Duid, IaPrefix, LeaseKind, Message, MessageType,
    RelayLayer, RelayMessage, StatusCode,
};
use std::net::{Ipv6Addr, SocketAddrV6, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The Relay-ID of the lab.
pub const RELAY: &str = "000200000009010203040506";
/// The delegation pool.
pub const POOL: &str = "2001:db8:8000::/40";

/// A child process, killed and reaped when dropped.
pub struct Child(pub std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One client link: the router's end, the client's end and namespace.
pub struct Link {
    pub router_if: String,
    pub client_if: String,
    pub client: NetNs,
    /// The router's global address on the link (its /64).
    pub router_global: String,
}

pub struct Lab {
    pub router: NetNs,
    pub links: Vec<Link>,
    pub dir: tempfile::TempDir,
}

fn mac(link: usize, end: u8) -> String {
    format!("02:00:00:00:{link:02x}:{end:02x}")
}

/// Router fe80::1 on each link; the client fe80::2 and, as a lightweight
/// relay, fe80::3 (on the client's veth too). Static neighbours, no DAD.
pub fn lab(prefix: &str, links: usize) -> Lab {
    let router = NetNs::create(&format!("{prefix}-r")).expect("router netns");
    let mut out = Vec::new();
    for j in 0..links {
        let client = NetNs::create(&format!("{prefix}-c{j}")).expect("client netns");
        veth(&router, &client, j);
        out.push(Link {
            router_if: format!("cust{j}"),
            client_if: format!("cpe{j}"),
            client,
            router_global: format!("2001:db8:0:{}::1/64", j + 1),
        });
    }
    Lab {
        router,
        links: out,
        dir: tempfile::tempdir().unwrap(),
    }
}

/// Client link `j`: the veth pair custJ (router) and cpeJ (client), its
/// addresses and neighbours, up.
fn veth(router: &NetNs, client: &NetNs, j: usize) {
    let (rif, cif) = (format!("cust{j}"), format!("cpe{j}"));
    router
        .ip([
            "link",
            "add",
            &rif,
            "address",
            &mac(j, 1),
            "type",
            "veth",
            "peer",
            "name",
            &cif,
            "address",
            &mac(j, 2),
            "netns",
            client.name(),
        ])
        .unwrap();
    let global = format!("2001:db8:0:{}::1/64", j + 1);
    for (ns, ifname, addrs, peer_mac, neigh) in [
        (
            router,
            &rif,
            vec!["fe80::1/64", global.as_str()],
            mac(j, 2),
            vec!["fe80::2", "fe80::3"],
        ),
        (
            client,
            &cif,
            vec!["fe80::2/64", "fe80::3/64"],
            mac(j, 1),
            vec!["fe80::1"],
        ),
    ] {
        ns.ip(["link", "set", "dev", ifname, "addrgenmode", "none"])
            .unwrap();
        for a in addrs {
            ns.ip(["-6", "addr", "add", a, "dev", ifname, "nodad"])
                .unwrap();
        }
        ns.ip(["link", "set", "dev", ifname, "up"]).unwrap();
        for n in neigh {
            ns.ip([
                "-6",
                "neigh",
                "replace",
                n,
                "lladdr",
                &peer_mac,
                "dev",
                ifname,
                "nud",
                "permanent",
            ])
            .unwrap();
        }
    }
}

/// Delete client link `j` (both ends) and make it again under the same
/// names, as a network manager rebuilding a VLAN or bridge does: the router's
/// end gets a new interface index.
pub fn recreate_link(lab: &Lab, j: usize) {
    lab.router
        .ip(["link", "del", &lab.links[j].router_if])
        .unwrap();
    veth(&lab.router, &lab.links[j].client, j);
}

/// Interface index of `ifname` in `ns`.
pub fn ifindex(ns: &NetNs, ifname: &str) -> u32 {
    let out = ns.ip(["-o", "link", "show", "dev", ifname]).unwrap();
    out.split(':').next().unwrap().trim().parse().unwrap()
}

/// The configuration: lab servers on the router's loopback, the pool, the
/// state directory (the writer lock) in the lab's directory, the links
/// mapped (`ge-0/0/J` = `custJ`); `extra` adds lines at the end.
pub fn config(lab: &Lab, ports: &[u16], extra: &str) -> PathBuf {
    let state = lab.dir.path().join("state");
    let mut t = format!(
        "relay_duid = \"{RELAY}\"\nstate_directory = {state:?}\nstartup_deadline = \"0s\"\nretries = 0\nconnect_timeout = \"1s\"\ninterface_wait = \"0s\"\n"
    );
    for p in ports {
        t.push_str(&format!("[[server]]\naddress = \"::1\"\nport = {p}\n"));
    }
    t.push_str(&format!(
        "[routes]\nallowed_prefixes = [\"{POOL}\"]\nprune_limit = \"100%\"\n[routes.interfaces]\n"
    ));
    for (j, _) in lab.links.iter().enumerate() {
        t.push_str(&format!("\"ge-0/0/{j}\" = \"cust{j}\"\n"));
    }
    t.push_str(extra);
    let p = lab.dir.path().join("follow.toml");
    std::fs::write(&p, t).unwrap();
    p
}

/// A binding the lab server holds: prefix `n` (a /56 of the pool) of client
/// `fe80::2` on link `link`, relayed by us.
pub fn binding(n: u32, link: usize) -> Binding {
    Binding {
        client_duid: format!("00030001{n:012x}").parse().unwrap(),
        lease: LeaseKind::Prefix(prefix_n(n).parse().unwrap()),
        preferred_lifetime: 1800,
        valid_lifetime: 3600,
        clt_time: 5,
        relay: vec![RelayLayer {
            hop_count: 0,
            link_address: format!("2001:db8:0:{}::1", link + 1).parse().unwrap(),
            peer_address: "fe80::2".parse().unwrap(),
            interface_id: Some(format!("ge-0/0/{link}").into_bytes()),
            remote_id: None,
            relay_id: Some(RELAY.parse().unwrap()),
        }],
    }
}

/// Delegated prefix number `n` of the pool.
pub fn prefix_n(n: u32) -> String {
    let p: ipnet::Ipv6Net = format!("2001:db8:80{:02x}:{:x}00::/56", n / 256, n % 256)
        .parse()
        .unwrap();
    p.to_string()
}

/// `pdrestore lab-server` in the router namespace on [::1]:`port`, serving `bindings`.
pub fn lab_server(lab: &Lab, port: u16, bindings: &[Binding]) -> Child {
    lab_server_with(lab, port, bindings, &[])
}

/// [`lab_server`] with more arguments (`--fault ...`).
pub fn lab_server_with(lab: &Lab, port: u16, bindings: &[Binding], args: &[&str]) -> Child {
    let file = lab.dir.path().join(format!("bindings-{port}.jsonl"));
    let text: String = bindings
        .iter()
        .map(|b| serde_json::to_string(b).unwrap() + "\n")
        .collect();
    std::fs::write(&file, text).unwrap();
    let mut c = std::process::Command::new("ip");
    c.args([
        "netns",
        "exec",
        lab.router.name(),
        env!("CARGO_BIN_EXE_pdrestore"),
    ])
    .args([
        "lab-server",
        "--listen",
        &format!("[::1]:{port}"),
        "--bindings",
    ])
    .arg(&file)
    .args(args)
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null());
    let child = Child(c.spawn().unwrap());
    crate::support::wait_listening(&lab.router, port);
    child
}

/// `pdrestore follow` running in the router namespace, with a notify socket.
pub struct Follow {
    pub child: Child,
    pub notify: UnixDatagram,
    pub log: PathBuf,
    pub statuses: Vec<String>,
}

impl Follow {
    /// Start it with `config` and wait (20 s at most) for READY=1.
    pub fn start(lab: &Lab, config: &Path, args: &[&str], rust_log: &str) -> Follow {
        let mut f = Follow::spawn(lab, config, args, rust_log);
        assert!(
            f.wait_notify(|m| m.contains("READY=1"), Duration::from_secs(20)),
            "follow did not get ready; log:\n{}",
            f.log_text()
        );
        f
    }

    /// Start it with `config`, not waiting for anything.
    pub fn spawn(lab: &Lab, config: &Path, args: &[&str], rust_log: &str) -> Follow {
        let sock = lab.dir.path().join(format!("notify-{}", fastrand::u32(..)));
        let notify = UnixDatagram::bind(&sock).unwrap();
        let log = lab
            .dir
            .path()
            .join(format!("follow-{}.log", fastrand::u32(..)));
        let mut c = std::process::Command::new("ip");
        c.args([
            "netns",
            "exec",
            lab.router.name(),
            env!("CARGO_BIN_EXE_pdrestore"),
        ])
        .arg("follow")
        .arg("-c")
        .arg(config)
        .args(args)
        .env("NOTIFY_SOCKET", &sock)
        .env("RUST_LOG", rust_log)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
        Follow {
            child: Child(c.spawn().unwrap()),
            notify,
            log,
            statuses: Vec::new(),
        }
    }

    /// Read notify messages until one satisfies `pred` (true) or `wait` passes.
    pub fn wait_notify(&mut self, pred: impl Fn(&str) -> bool, wait: Duration) -> bool {
        let until = Instant::now() + wait;
        let mut buf = vec![0u8; 4096];
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.notify.set_read_timeout(Some(left)).unwrap();
            match self.notify.recv(&mut buf) {
                Ok(n) => {
                    let m = String::from_utf8_lossy(&buf[..n]).into_owned();
                    if let Some(s) = m.lines().find_map(|l| l.strip_prefix("STATUS=")) {
                        self.statuses.push(s.to_string());
                    }
                    if pred(&m) {
                        return true;
                    }
                }
                Err(_) => return false,
            }
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> i32 {
        self.child.0.id() as i32
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.pid(), sig) };
    }

    /// SIGTERM, then the exit status (within 10 s).
    pub fn stop(&mut self) -> std::process::ExitStatus {
        self.signal(libc::SIGTERM);
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(s) = self.child.0.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < until,
                "follow did not stop; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Our routes in the router namespace, as `prefix via X dev Y`, sorted.
pub fn ours(ns: &NetNs) -> Vec<String> {
    let mut v: Vec<String> = ns
        .ip(["-6", "route", "show", "proto", "57"])
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().take(5).collect::<Vec<_>>().join(" "))
        .collect();
    v.sort();
    v
}

/// The line of `prefix` in the router's table, if any.
pub fn route_line(ns: &NetNs, prefix: &str) -> Option<String> {
    let out = ns.ip(["-6", "route", "show", prefix]).unwrap();
    out.lines().next().map(str::to_owned)
}

/// Seconds left of the route of `prefix` (its `expires Ns`).
pub fn expires(line: &str) -> Option<u32> {
    let w: Vec<&str> = line.split_whitespace().collect();
    let i = w.iter().position(|x| *x == "expires")?;
    w.get(i + 1)?.trim_end_matches("sec").parse().ok()
}

/// Poll until `pred` holds of the route line of `prefix` (or its absence),
/// within `wait`; how long it took.
pub fn wait_route(
    ns: &NetNs,
    prefix: &str,
    wait: Duration,
    pred: impl Fn(Option<&str>) -> bool,
) -> Option<Duration> {
    let start = Instant::now();
    loop {
        let l = route_line(ns, prefix);
        if pred(l.as_deref()) {
            return Some(start.elapsed());
        }
        if start.elapsed() > wait {
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

pub fn client_duid(n: u8) -> Duid {
    Duid::new_ll(1, &[2, 0, 0, 0, 1, n])
}

pub fn server_duid() -> Duid {
    Duid::new_ll(1, &[2, 0, 0, 0, 9, 9])
}

/// An IA_PD with one IAPREFIX.
pub fn ia_pd(iaid: u32, prefix: &str, preferred: u32, valid: u32) -> DhcpOption {
    let mut data = Vec::new();
    data.extend_from_slice(&iaid.to_be_bytes());
    data.extend_from_slice(&(preferred / 2).to_be_bytes());
    data.extend_from_slice(&(preferred * 4 / 5).to_be_bytes());
    DhcpOption::IaPrefix(IaPrefix {
        preferred_lifetime: preferred,
        valid_lifetime: valid,
        prefix: prefix.parse().unwrap(),
        options: vec![],
    })
    .encode(&mut data);
    DhcpOption::Unknown { code: 25, data }
}

pub fn message(msg_type: MessageType, xid: u32, options: Vec<DhcpOption>) -> Vec<u8> {
    Message::Client(ClientMessage {
        msg_type,
        transaction_id: xid,
        options,
    })
    .to_bytes()
}

/// A REPLY to client `client` delegating `prefix` with `valid`.
pub fn reply(xid: u32, client: u8, prefix: &str, valid: u32) -> Vec<u8> {
    message(
        MessageType::Reply,
        xid,
        vec![
            DhcpOption::ClientId(client_duid(client)),
            DhcpOption::ServerId(server_duid()),
            ia_pd(1, prefix, valid.min(1800), valid),
        ],
    )
}

/// A REPLY with status Success and no IA (the answer to a RELEASE).
pub fn release_reply(xid: u32, client: u8) -> Vec<u8> {
    message(
        MessageType::Reply,
        xid,
        vec![
            DhcpOption::ClientId(client_duid(client)),
            DhcpOption::ServerId(server_duid()),
            DhcpOption::status(StatusCode::Success, "released"),
        ],
    )
}

/// A RELEASE of `prefix`.
pub fn release(xid: u32, client: u8, prefix: &str) -> Vec<u8> {
    message(
        MessageType::Release,
        xid,
        vec![
            DhcpOption::ClientId(client_duid(client)),
            DhcpOption::ServerId(server_duid()),
            ia_pd(1, prefix, 0, 0),
        ],
    )
}

/// `inner` in a RELAY-REPL to a lightweight relay for client `peer`.
pub fn relay_repl(inner: &[u8], peer: &str) -> Vec<u8> {
    Message::Relay(RelayMessage {
        msg_type: MessageType::RelayRepl,
        hop_count: 0,
        link_address: Ipv6Addr::UNSPECIFIED,
        peer_address: peer.parse().unwrap(),
        options: vec![
            DhcpOption::InterfaceId(b"port-7".to_vec()),
            DhcpOption::RelayMsg(Box::new(Message::decode(inner).unwrap())),
        ],
    })
    .to_bytes()
}

/// Send UDP datagrams from `from`:`sport` to `to`:`dport` out of `ifname`
/// inside `ns`.
pub fn send_udp(
    ns: &NetNs,
    ifname: &str,
    from: &str,
    sport: u16,
    to: &str,
    dport: u16,
    payloads: Vec<Vec<u8>>,
) {
    let scope = ifindex(ns, ifname);
    let (from, to): (Ipv6Addr, Ipv6Addr) = (from.parse().unwrap(), to.parse().unwrap());
    ns.run(move || async move {
        // SO_REUSEADDR: a process spawned meanwhile by this test process
        // may hold a copy of an earlier socket on the same port until its
        // exec.
        use socket2::{Domain, Protocol, Socket, Type};
        let s = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP)).expect("UDP socket");
        s.set_reuse_address(true).expect("SO_REUSEADDR");
        s.bind(&SocketAddrV6::new(from, sport, 0, scope).into())
            .expect("bind UDP");
        let s: UdpSocket = s.into();
        for p in payloads {
            s.send_to(&p, SocketAddrV6::new(to, dport, 0, scope))
                .expect("send UDP");
        }
    })
    .unwrap();
}

/// From the router (relay) on link `j` to the client: leaves the router.
pub fn to_client(lab: &Lab, j: usize, dst: &str, dport: u16, payloads: Vec<Vec<u8>>) {
    send_udp(
        &lab.router,
        &lab.links[j].router_if,
        "fe80::1",
        547,
        dst,
        dport,
        payloads,
    );
}

/// From the client of link `j` to the relay's port 547: arrives at the router.
pub fn to_relay(lab: &Lab, j: usize, payloads: Vec<Vec<u8>>) {
    let l = &lab.links[j];
    send_udp(
        &l.client,
        &l.client_if,
        "fe80::2",
        546,
        "fe80::1",
        547,
        payloads,
    );
}
