//! Helpers for lab-server tests: a minimal requestor that speaks raw frames.
#![allow(dead_code)]

use pdrestore::proto::binding::{client_data_options, ClientData};
use pdrestore::proto::{
    Binding, Duid, LeasequeryBuilder, MessageType, MessageView, OptionCode, OptionView, Query,
    StatusCode, Xid,
};
use std::net::{Ipv6Addr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The requestor DUID used in the Kea captures.
pub const REQUESTOR: &str = "000100012a2b2c2d020000009901";

pub fn requestor() -> Duid {
    REQUESTOR.parse().unwrap()
}

/// One received message, decoded.
#[derive(Debug, Clone)]
pub struct Msg {
    pub msg_type: MessageType,
    pub xid: u32,
    pub status: Option<StatusCode>,
    /// Option codes at the top level, in order.
    pub codes: Vec<u16>,
    /// CLIENTID at the top level.
    pub client_id: Option<Vec<u8>>,
    pub server_id: Option<Vec<u8>>,
    pub bindings: Vec<Binding>,
    /// Raw LQ_RELAY_DATA option bodies of each CLIENT_DATA (one per CLIENT_DATA).
    pub relay_data: Vec<Option<Vec<u8>>>,
    /// Option codes inside each CLIENT_DATA.
    pub client_data_codes: Vec<Vec<u16>>,
    /// Whether the frame decoded at all.
    pub malformed: bool,
    pub raw: Vec<u8>,
}

/// Decode one message body.
pub fn decode(raw: &[u8]) -> Msg {
    let mut m = Msg {
        msg_type: MessageType::from(raw.first().copied().unwrap_or(0)),
        xid: 0,
        status: None,
        codes: Vec::new(),
        client_id: None,
        server_id: None,
        bindings: Vec::new(),
        relay_data: Vec::new(),
        client_data_codes: Vec::new(),
        malformed: false,
        raw: raw.to_vec(),
    };
    let v = match MessageView::parse_validated(raw) {
        Ok(v) => v,
        Err(_) => {
            m.malformed = true;
            if raw.len() >= 4 {
                m.xid = u32::from_be_bytes([0, raw[1], raw[2], raw[3]]);
            }
            return m;
        }
    };
    m.xid = v.transaction_id();
    m.status = v.status().map(|s| s.0);
    for o in v.options().valid() {
        m.codes.push(o.code().into());
        match o {
            OptionView::ClientId(d) => m.client_id = Some(d.to_vec()),
            OptionView::ServerId(d) => m.server_id = Some(d.to_vec()),
            _ => {}
        }
    }
    for opts in client_data_options(&v) {
        m.client_data_codes
            .push(opts.valid().map(|o| u16::from(o.code())).collect());
        let raw_relay = opts
            .iter()
            .filter_map(|r| r.ok())
            .find(|r| r.option_code() == OptionCode::LqRelayData)
            .map(|r| r.data.to_vec());
        m.relay_data.push(raw_relay);
        if let Ok(cd) = ClientData::parse(opts) {
            m.bindings.extend(cd.bindings().map(|b| b.to_binding()));
        }
    }
    m
}

/// A raw connection to a lab server.
pub struct Conn {
    pub stream: TcpStream,
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> Conn {
        Conn {
            stream: TcpStream::connect(addr).await.expect("connect"),
        }
    }

    /// Send a message with its length prefix.
    pub async fn send(&mut self, msg: &[u8]) {
        let mut v = (msg.len() as u16).to_be_bytes().to_vec();
        v.extend_from_slice(msg);
        self.stream.write_all(&v).await.expect("send");
    }

    pub async fn send_query(&mut self, q: &LeasequeryBuilder) {
        self.send(&q.to_bytes()).await;
    }

    /// Next message; `None` at EOF or connection error. Panics after `wait`.
    pub async fn recv_within(&mut self, wait: Duration) -> Option<Msg> {
        tokio::time::timeout(wait, self.recv_inner())
            .await
            .expect("timed out waiting for a message")
    }

    /// Next message, or `Err(())` if nothing comes within `wait`.
    pub async fn try_recv(&mut self, wait: Duration) -> Result<Option<Msg>, ()> {
        tokio::time::timeout(wait, self.recv_inner())
            .await
            .map_err(|_| ())
    }

    pub async fn recv(&mut self) -> Option<Msg> {
        self.recv_within(Duration::from_secs(10)).await
    }

    async fn recv_inner(&mut self) -> Option<Msg> {
        let mut len = [0u8; 2];
        self.stream.read_exact(&mut len).await.ok()?;
        let mut body = vec![0u8; u16::from_be_bytes(len) as usize];
        self.stream.read_exact(&mut body).await.ok()?;
        Some(decode(&body))
    }

    /// Read until every xid is complete (RFC 5460 s.6.3.1): a DONE, or a REPLY
    /// without CLIENT_DATA. Returns the messages in arrival order.
    pub async fn collect(&mut self, xids: &[u32]) -> Vec<Msg> {
        let mut open: Vec<u32> = xids.to_vec();
        let mut out = Vec::new();
        while !open.is_empty() {
            let m = self
                .recv()
                .await
                .expect("connection closed before completion");
            let complete = match m.msg_type {
                MessageType::LeasequeryDone => true,
                MessageType::LeasequeryReply => !m.codes.contains(&45),
                _ => false,
            };
            if complete {
                open.retain(|&x| x != m.xid);
            }
            out.push(m);
        }
        out
    }

    /// True if the server closes the connection within `wait` (EOF or reset).
    pub async fn closed_within(&mut self, wait: Duration) -> bool {
        let mut b = [0u8; 4096];
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut b)).await {
                Err(_) => return false,
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
            }
        }
    }
}

/// Send one query and collect its replies.
pub async fn ask(addr: SocketAddr, q: LeasequeryBuilder) -> Vec<Msg> {
    let mut c = Conn::connect(addr).await;
    let xid = q.build().transaction_id;
    c.send_query(&q).await;
    c.collect(&[xid]).await
}

pub fn query(xid: u32, q: Query) -> LeasequeryBuilder {
    LeasequeryBuilder::new(Xid::new(xid).expect("a 24-bit xid"), requestor(), q)
        .request_relay_data(true)
}

pub fn addr(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// All bindings of a reply stream.
pub fn bindings(msgs: &[Msg]) -> Vec<Binding> {
    msgs.iter().flat_map(|m| m.bindings.clone()).collect()
}

/// Message types of a reply stream, as short names.
pub fn shape(msgs: &[Msg]) -> String {
    let mut s = String::new();
    for m in msgs {
        s.push(match m.msg_type {
            MessageType::LeasequeryReply => 'R',
            MessageType::LeasequeryData => 'D',
            MessageType::LeasequeryDone => 'E',
            _ => '?',
        });
    }
    s
}
