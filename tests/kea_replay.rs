//! Conformance against ISC Kea: every captured request of tests/data/kea is
//! replayed against a lab server loaded with Kea's bindings.json, in Kea mode
//! (STATUS_CODE Success in REPLY, reclaimed leases served to relay-id
//! queries, Kea's SERVERID). Per transaction-id, the message sequence, the
//! statuses, the option layout and the binding set (prefix or address,
//! client DUID, relay data byte for byte) must equal Kea's; times are only
//! checked for plausibility.

mod common;

use common::*;
use pdrestore::proto::frame::FrameIter;
use pdrestore::server::store::unix_now;
use pdrestore::server::{self, load, BindingStore, ServerConfig};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

const KEA_SERVER_ID: &str = "0002000009bf0102030405060708";

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/kea")
}

fn frames(bytes: &[u8]) -> Vec<Msg> {
    FrameIter::new(bytes)
        .map(|f| decode(f.expect("capture frames are whole").message))
        .collect()
}

/// What is compared for one transaction.
#[derive(Debug, PartialEq, Eq)]
struct Summary {
    /// Message types in order (R, D, E).
    shape: String,
    /// Status of each message.
    statuses: Vec<Option<u16>>,
    /// Top-level option codes of each message.
    codes: Vec<Vec<u16>>,
    /// CLIENTID and SERVERID of the REPLY.
    ids: (Option<Vec<u8>>, Option<Vec<u8>>),
    /// Option codes of each CLIENT_DATA, sorted.
    client_data: Vec<Vec<u16>>,
    /// Bindings: lease, client DUID, relay layers and raw LQ_RELAY_DATA, sorted.
    bindings: Vec<String>,
}

fn summarise(msgs: &[Msg], xid: u32) -> Summary {
    let mine: Vec<&Msg> = msgs.iter().filter(|m| m.xid == xid).collect();
    let owned: Vec<Msg> = mine.iter().map(|m| (*m).clone()).collect();
    let mut client_data: Vec<Vec<u16>> = mine
        .iter()
        .flat_map(|m| m.client_data_codes.clone())
        .collect();
    client_data.sort();
    let mut bindings: Vec<String> = Vec::new();
    for m in &mine {
        assert_eq!(
            m.bindings.len(),
            m.relay_data.len(),
            "one binding per CLIENT_DATA"
        );
        for (b, r) in m.bindings.iter().zip(&m.relay_data) {
            bindings.push(format!(
                "{} {} {:?} {}",
                b.lease,
                b.client_duid,
                b.relay,
                r.as_deref()
                    .map(pdrestore::proto::duid::hex)
                    .unwrap_or_default()
            ));
        }
    }
    bindings.sort();
    Summary {
        shape: shape(&owned),
        statuses: mine.iter().map(|m| m.status.map(u16::from)).collect(),
        codes: mine.iter().map(|m| m.codes.clone()).collect(),
        ids: (mine[0].client_id.clone(), mine[0].server_id.clone()),
        client_data,
        bindings,
    }
}

/// Lifetimes as of sending: valid + CLT_TIME = 4000 and preferred + CLT_TIME
/// = 3000 for every Kea lease (a second of slack each way), CLT_TIME small.
fn plausible_times(msgs: &[Msg], who: &str) {
    for b in bindings(msgs) {
        let age = i64::from(b.clt_time);
        assert!((0..=600).contains(&age), "{who}: {b:?}");
        assert!(
            (3998..=4002).contains(&(i64::from(b.valid_lifetime) + age)),
            "{who}: {b:?}"
        );
        assert!(
            (2998..=3002).contains(&(i64::from(b.preferred_lifetime) + age)),
            "{who}: {b:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_every_kea_capture() {
    let records = load::read_kea(&data_dir().join("bindings.json"), unix_now()).unwrap();
    let store = BindingStore::from_records(&records, &[]).unwrap();
    let config = ServerConfig {
        server_duid: KEA_SERVER_ID.parse().unwrap(),
        ..ServerConfig::default().kea_mode()
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = server::spawn(listener, Arc::new(store), config).unwrap();

    let mut cases: Vec<PathBuf> = std::fs::read_dir(data_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".request.bin"))
        .collect();
    cases.sort();
    assert_eq!(cases.len(), 9, "all nine captures");
    let mut report = BTreeMap::new();
    for req_path in cases {
        let name = req_path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .trim_end_matches(".request.bin")
            .to_string();
        let request = std::fs::read(&req_path).unwrap();
        let kea = frames(&std::fs::read(data_dir().join(format!("{name}.response.bin"))).unwrap());
        let xids: Vec<u32> = frames(&request).iter().map(|m| m.xid).collect();

        let mut c = Conn::connect(server.local_addr()).await;
        c.stream.write_all(&request).await.unwrap();
        let ours = c.collect(&xids).await;
        // Nothing more comes for these queries.
        assert!(
            c.try_recv(std::time::Duration::from_millis(100))
                .await
                .is_err(),
            "{name}: extra messages"
        );

        for &xid in &xids {
            let want = summarise(&kea, xid);
            let got = summarise(&ours, xid);
            assert_eq!(
                got.shape, want.shape,
                "{name} xid {xid:#x}: message sequence"
            );
            assert_eq!(got.statuses, want.statuses, "{name} xid {xid:#x}: statuses");
            assert_eq!(got.codes, want.codes, "{name} xid {xid:#x}: options");
            assert_eq!(got.ids, want.ids, "{name} xid {xid:#x}: CLIENTID/SERVERID");
            assert_eq!(
                got.client_data, want.client_data,
                "{name} xid {xid:#x}: CLIENT_DATA layout"
            );
            if got.bindings != want.bindings {
                let missing: Vec<_> = want
                    .bindings
                    .iter()
                    .filter(|b| !got.bindings.contains(b))
                    .collect();
                let extra: Vec<_> = got
                    .bindings
                    .iter()
                    .filter(|b| !want.bindings.contains(b))
                    .collect();
                panic!("{name} xid {xid:#x}: binding sets differ\nmissing: {missing:#?}\nextra: {extra:#?}");
            }
            report.insert(format!("{name} {xid:#x}"), got.bindings.len());
        }
        plausible_times(&kea, "kea");
        plausible_times(&ours, "lab server");
    }
    // The README's counts.
    assert_eq!(report["02_relayid_B 0x102"], 108);
    assert_eq!(report["08_link_s1 0x108"], 208);
    assert_eq!(report["23_pipelined_relayA_link_s2 0x201"], 112);
    assert_eq!(report["23_pipelined_relayA_link_s2 0x202"], 15);
    server.shutdown().await.unwrap();
}
