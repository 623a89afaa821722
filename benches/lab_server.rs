//! Lab server streaming benchmark: bindings per second to a reader on
//! loopback, and the server's peak memory.
//!
//! Starts `pdrestore lab-server --synthetic N` as its own process (so its
//! memory is its own), sends QUERY_BY_RELAY_ID for the relay holding every
//! binding, and reads the whole stream with a minimal reader that splits
//! frames and counts CLIENT_DATA-bearing messages until LEASEQUERY-DONE.
//! Prints bindings/s per run and the server's VmHWM / VmRSS from /proc.
//!
//! `cargo bench --bench lab_server` (N = 1,000,000; set `LAB_BENCH_N` to change).

use pdrestore::proto::{Duid, LeasequeryBuilder, Query, Xid};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const RELAY: &str = "00020000000901020304";

fn proc_status(pid: u32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn kib(k: u64) -> String {
    format!("{:.1} MiB", k as f64 / 1024.0)
}

/// Stream one query; returns (bindings, messages, octets, elapsed).
fn run_query(addr: SocketAddr, xid: Xid, q: Query) -> (u64, u64, u64, Duration) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_nodelay(true).ok();
    let msg =
        LeasequeryBuilder::new(xid, "000100012a2b2c2d020000009901".parse().unwrap(), q).to_bytes();
    let mut framed = (msg.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&msg);
    let t = Instant::now();
    s.write_all(&framed).unwrap();
    let mut buf = vec![0u8; 1 << 18];
    let (mut start, mut end) = (0usize, 0usize);
    let (mut bindings, mut messages, mut octets) = (0u64, 0u64, 0u64);
    loop {
        // Whole frames in buf[start..end].
        while end - start >= 2 {
            let len = u16::from_be_bytes([buf[start], buf[start + 1]]) as usize;
            if end - start < 2 + len {
                break;
            }
            let m = &buf[start + 2..start + 2 + len];
            messages += 1;
            match m[0] {
                // REPLY: a binding when it holds CLIENT_DATA.
                15 => bindings += u64::from(has_client_data(m)),
                17 => bindings += 1,
                16 => return (bindings, messages, octets, t.elapsed()),
                t => panic!("unexpected message type {t}"),
            }
            start += 2 + len;
        }
        if start > 0 {
            buf.copy_within(start..end, 0);
            end -= start;
            start = 0;
        }
        let n = s.read(&mut buf[end..]).expect("read");
        assert!(n > 0, "server closed the stream");
        end += n;
        octets += n as u64;
    }
}

/// Whether a message has a top-level OPTION_CLIENT_DATA.
fn has_client_data(m: &[u8]) -> bool {
    let mut o = &m[4..];
    while o.len() >= 4 {
        let code = u16::from_be_bytes([o[0], o[1]]);
        let len = u16::from_be_bytes([o[2], o[3]]) as usize;
        if code == 45 {
            return true;
        }
        o = o.get(4 + len..).unwrap_or(&[]);
    }
    false
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    let n: u64 = std::env::var("LAB_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let addr: SocketAddr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let t = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_pdrestore"))
        .args(["lab-server", "--listen", &addr.to_string()])
        .args(["--synthetic", &n.to_string(), "--relay-id", RELAY])
        .env("RUST_LOG", "warn,pdrestore::cli::lab_server=info")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start lab-server");
    let pid = child.id();
    let _server = Server(child);
    while TcpStream::connect(addr).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "server did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let load = t.elapsed();
    let rss_loaded = proc_status(pid, "VmRSS:").unwrap_or(0);
    let hwm_loaded = proc_status(pid, "VmHWM:").unwrap_or(0);
    println!("lab-server: {n} synthetic bindings, ready in {load:.2?}");
    println!(
        "server memory after load: VmRSS {} (VmHWM {} during generation)",
        kib(rss_loaded),
        kib(hwm_loaded)
    );
    let relay: Duid = RELAY.parse().unwrap();
    let mut rates = Vec::new();
    for run in 0..5u32 {
        let (b, m, o, d) = run_query(
            addr,
            Xid::new(0x100 + run).unwrap(),
            Query::ByRelayId(relay.clone()),
        );
        assert_eq!(b, n, "every binding streamed");
        let rate = b as f64 / d.as_secs_f64();
        println!(
            "run {run}: {b} bindings, {m} messages, {:.1} MB in {d:.3?}: {:.2} M bindings/s, {:.0} MB/s",
            o as f64 / 1e6,
            rate / 1e6,
            o as f64 / 1e6 / d.as_secs_f64()
        );
        rates.push(rate);
    }
    // Two readers at once, on two connections.
    let t2 = Instant::now();
    let hs: Vec<_> = (0..2u32)
        .map(|i| {
            let relay = relay.clone();
            std::thread::spawn(move || {
                run_query(addr, Xid::new(0x200 + i).unwrap(), Query::ByRelayId(relay))
            })
        })
        .collect();
    let total: u64 = hs.into_iter().map(|h| h.join().unwrap().0).sum();
    let d2 = t2.elapsed();
    println!(
        "2 connections in parallel: {total} bindings in {d2:.3?}: {:.2} M bindings/s in total",
        total as f64 / d2.as_secs_f64() / 1e6
    );
    let rss_after = proc_status(pid, "VmRSS:").unwrap_or(0);
    let hwm_after = proc_status(pid, "VmHWM:").unwrap_or(0);
    rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "single connection: best {:.2} M bindings/s, median {:.2} M bindings/s",
        rates[rates.len() - 1] / 1e6,
        rates[rates.len() / 2] / 1e6
    );
    println!(
        "server memory after streaming: VmRSS {} (+{}), VmHWM {}",
        kib(rss_after),
        kib(rss_after.saturating_sub(rss_loaded)),
        kib(hwm_after)
    );
}
