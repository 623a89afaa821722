//! Throughput of `pdrestore query`: bindings per second received and
//! decoded, with the CPU time and peak RSS of the pdrestore process alone.
//!
//! ```text
//! cargo build --release --bin pdrestore --example query_throughput
//! target/release/examples/query_throughput [BINDINGS] [--server ADDR --relay-id HEX]
//! ```
//!
//! Without `--server`, a built-in peer on 127.0.0.1 (in this process, so its
//! CPU time is not counted) answers the QUERY_BY_RELAY_ID with BINDINGS
//! bindings (default 1,000,000), one per LEASEQUERY-DATA, shaped like Kea's
//! (CLIENTID, IAPREFIX, CLT_TIME, LQ_RELAY_DATA with INTERFACE_ID, REMOTE_ID
//! and RELAY_ID). With `--server`, an external server (the lab server) is
//! queried instead. pdrestore runs as a child with `--json` into /dev/null;
//! its CPU time comes from wait4(2), its peak RSS from VmHWM in
//! /proc/PID/status, sampled every 10 ms (ru_maxrss would count pages shared
//! with this process before exec). Its voluntary context switches (wait4's
//! ru_nvcsw) count how often it slept waiting for the socket: the wake-ups.

use pdrestore::proto::{ClientMessage, DhcpOption, Duid, IaPrefix, MessageType, RelayMessage};
use std::net::{Ipv6Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const RELAY: &str = "0003000102005e000002";

fn client_data(i: u32) -> DhcpOption {
    let prefix = Ipv6Addr::new(0x2001, 0xdb8, (i >> 16) as u16, i as u16, 0, 0, 0, 0);
    DhcpOption::ClientData(vec![
        DhcpOption::ClientId(Duid::new_ll(
            1,
            &[2, 0, 0, (i >> 16) as u8, (i >> 8) as u8, i as u8],
        )),
        DhcpOption::IaPrefix(IaPrefix {
            preferred_lifetime: 3000,
            valid_lifetime: 4000,
            prefix: ipnet::Ipv6Net::new(prefix, 64).unwrap(),
            options: vec![],
        }),
        DhcpOption::CltTime(11),
        DhcpOption::LqRelayData {
            peer_address: "fe80::1".parse().unwrap(),
            message: RelayMessage {
                msg_type: MessageType::RelayForw,
                hop_count: 0,
                link_address: "2001:db8:1::2".parse().unwrap(),
                peer_address: "fe80::1".parse().unwrap(),
                options: vec![
                    DhcpOption::InterfaceId(b"ge-0/0/1".to_vec()),
                    DhcpOption::RemoteId {
                        enterprise: 4491,
                        id: b"CM-000".to_vec(),
                    },
                    DhcpOption::RelayId(RELAY.parse().unwrap()),
                ],
            },
        },
    ])
}

fn push_frame(out: &mut Vec<u8>, msg: &[u8]) {
    out.extend_from_slice(&(msg.len() as u16).to_be_bytes());
    out.extend_from_slice(msg);
}

/// The whole reply stream for `n` bindings with xid 0, and the offsets of
/// every message's xid field.
fn stream(n: u32, requestor: &Duid) -> (Vec<u8>, Vec<usize>) {
    let mut out = Vec::with_capacity(n as usize * 160);
    let mut xids = Vec::with_capacity(n as usize + 1);
    for i in 0..n {
        let msg = if i == 0 {
            ClientMessage {
                msg_type: MessageType::LeasequeryReply,
                transaction_id: 0,
                options: vec![
                    DhcpOption::ClientId(requestor.clone()),
                    DhcpOption::ServerId("0002000009bf0102030405060708".parse().unwrap()),
                    client_data(i),
                ],
            }
        } else {
            ClientMessage {
                msg_type: MessageType::LeasequeryData,
                transaction_id: 0,
                options: vec![client_data(i)],
            }
        };
        xids.push(out.len() + 3);
        push_frame(&mut out, &msg.to_bytes());
    }
    xids.push(out.len() + 3);
    push_frame(&mut out, &[16, 0, 0, 0]);
    (out, xids)
}

async fn serve(listener: tokio::net::TcpListener, data: std::sync::Arc<(Vec<u8>, Vec<usize>)>) {
    while let Ok((mut s, _)) = listener.accept().await {
        let data = data.clone();
        tokio::spawn(async move {
            let mut len = [0u8; 2];
            if s.read_exact(&mut len).await.is_err() {
                return;
            }
            let mut q = vec![0u8; u16::from_be_bytes(len) as usize];
            if s.read_exact(&mut q).await.is_err() {
                return;
            }
            let mut out = data.0.clone();
            for &x in &data.1 {
                out[x..x + 3].copy_from_slice(&q[1..4]);
            }
            let _ = s.write_all(&out).await;
            let mut b = [0u8; 64];
            while matches!(s.read(&mut b).await, Ok(n) if n > 0) {}
        });
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut bindings: u32 = 1_000_000;
    let mut server: Option<String> = None;
    let mut relay = RELAY.to_string();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--server" => server = it.next().cloned(),
            "--relay-id" => relay = it.next().cloned().expect("--relay-id HEX"),
            n => bindings = n.replace('_', "").parse().expect("BINDINGS is a number"),
        }
    }
    let requestor: Duid = "000100012a2b2c2d020000009901".parse().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server: String = match server {
        Some(s) => s,
        None => {
            let t = Instant::now();
            let data = std::sync::Arc::new(stream(bindings, &requestor));
            eprintln!(
                "built-in peer: {} bindings, {} MB of replies, built in {:.1}s",
                bindings,
                data.0.len() / 1_000_000,
                t.elapsed().as_secs_f64()
            );
            let listener = rt
                .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
                .unwrap();
            let addr: SocketAddr = listener.local_addr().unwrap();
            rt.spawn(serve(listener, data));
            addr.to_string()
        }
    };
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(|p| p.parent())
        .unwrap()
        .join("pdrestore");
    let t = Instant::now();
    // Reaped by wait4 below, which also gives its resource usage.
    #[allow(clippy::zombie_processes)]
    let child = Command::new(&bin)
        .args([
            "query",
            "--server",
            &server,
            "--relay-id",
            &relay,
            "--requestor-duid",
            &requestor.to_hex(),
            "--json",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e} (build it first)", bin.display()));
    let pid = child.id() as libc::pid_t;
    // Peak RSS from /proc: VmHWM starts afresh at exec, whereas wait4's
    // ru_maxrss would count the pages the child shared with this process
    // (and its reply buffer) before exec. Sampled until the child is gone.
    let hwm = std::thread::spawn(move || {
        let mut peak_kb = 0u64;
        while let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            let Some(kb) = s
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            else {
                break; // a zombie has no memory lines
            };
            peak_kb = peak_kb.max(kb);
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        peak_kb
    });
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 on our own child's pid.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    let wall = t.elapsed().as_secs_f64();
    assert_eq!(rc, pid, "wait4");
    let mut err = String::new();
    if let Some(mut e) = child.stderr {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    let peak_kb = hwm.join().unwrap();
    let cpu = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    let (user, sys) = (cpu(ru.ru_utime), cpu(ru.ru_stime));
    let got: u64 = err
        .lines()
        .filter_map(|l| l.split(": ").nth(1)?.split(' ').next()?.parse::<u64>().ok())
        .sum();
    eprint!("{err}");
    println!(
        "{got} bindings in {wall:.2}s wall: {:.0} bindings/s; pdrestore CPU {user:.2}s user + {sys:.2}s sys ({:.0} bindings per CPU second); peak RSS {:.1} MiB; {} wake-ups; exit {}",
        got as f64 / wall,
        got as f64 / (user + sys).max(1e-9),
        peak_kb as f64 / 1024.0,
        ru.ru_nvcsw,
        libc::WEXITSTATUS(status)
    );
}
