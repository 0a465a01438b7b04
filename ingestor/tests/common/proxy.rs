//! A WebSocket proxy in front of anvil that can lie (corrupt the `blockHash` of the next N
//! answers that carry one), lag (answer `[]` to the first `eth_getLogs {blockHash}` or
//! `eth_getBlockReceipts` of each block that has logs, like a load-balanced provider that has not indexed it yet), and cut
//! every connection (refusing new ones until restored).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

struct State {
    up: AtomicBool,
    corrupt_left: AtomicUsize,
    corrupted: AtomicUsize,
    lagging: AtomicBool,
    lagged: AtomicUsize,
    seen_hashes: Mutex<HashSet<String>>,
    cuts: watch::Sender<u64>,
}

pub struct WsProxy {
    pub port: u16,
    state: Arc<State>,
    _server: super::server::Background,
}

impl WsProxy {
    pub fn start(upstream_port: u16) -> Self {
        let state = Arc::new(State {
            up: AtomicBool::new(true),
            corrupt_left: AtomicUsize::new(0),
            corrupted: AtomicUsize::new(0),
            lagging: AtomicBool::new(false),
            lagged: AtomicUsize::new(0),
            seen_hashes: Mutex::default(),
            cuts: watch::channel(0).0,
        });
        let accept_state = state.clone();
        // While cut, a connection is accepted and dropped at once.
        let server = super::server::accept_loop(move |tcp| {
            let state = accept_state.clone();
            async move {
                if state.up.load(Ordering::SeqCst) {
                    relay(tcp, upstream_port, state).await;
                }
            }
        });
        Self {
            port: server.port,
            state,
            _server: server,
        }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    /// Corrupts the `blockHash` in the next `n` answers that contain one.
    pub fn corrupt_next(&self, n: usize) {
        self.state.corrupt_left.store(n, Ordering::SeqCst);
    }

    /// Answers corrupted so far.
    pub fn corrupted(&self) -> usize {
        self.state.corrupted.load(Ordering::SeqCst)
    }

    /// Answers `[]` to the first `eth_getLogs {blockHash}` of each block that has logs.
    pub fn lag(&self) {
        self.state.lagging.store(true, Ordering::SeqCst);
    }

    /// `eth_getLogs` answers replaced by `[]` so far.
    pub fn lagged(&self) -> usize {
        self.state.lagged.load(Ordering::SeqCst)
    }

    /// Drops every connection and refuses new ones until [`WsProxy::restore`].
    pub fn cut(&self) {
        self.state.up.store(false, Ordering::SeqCst);
        self.state.cuts.send_modify(|n| *n += 1);
    }

    pub fn restore(&self) {
        self.state.up.store(true, Ordering::SeqCst);
    }
}

fn maybe_corrupt(state: &State, text: String) -> String {
    const FIELD: &str = "\"blockHash\":\"0x";
    let Some(at) = text.find(FIELD) else {
        return text;
    };
    let take = state
        .corrupt_left
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    if take.is_err() {
        return text;
    }
    state.corrupted.fetch_add(1, Ordering::SeqCst);
    let i = at + FIELD.len();
    let flipped = if &text[i..i + 1] == "0" { "1" } else { "0" };
    format!("{}{flipped}{}", &text[..i], &text[i + 1..])
}

/// Remembers the request ids of `eth_getLogs {blockHash}` and `eth_getBlockReceipts`
/// calls on one connection.
fn note_request(text: &str, asked: &mut HashMap<u64, String>) {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
        return;
    };
    let hash = match v["method"].as_str() {
        Some("eth_getLogs") => v["params"][0]["blockHash"].as_str(),
        Some("eth_getBlockReceipts") => v["params"][0].as_str(),
        _ => None,
    };
    if let (Some(id), Some(hash)) = (v["id"].as_u64(), hash) {
        asked.insert(id, hash.to_owned());
    }
}

/// `[]` for the first answer about each block hash, when lagging.
fn maybe_lag(state: &State, text: String, asked: &mut HashMap<u64, String>) -> String {
    let Ok(mut v) = serde_json::from_str::<serde_json::Value>(&text) else {
        return text;
    };
    let Some(hash) = v["id"].as_u64().and_then(|id| asked.remove(&id)) else {
        return text;
    };
    if state.lagging.load(Ordering::SeqCst)
        && v["result"].as_array().is_some_and(|l| !l.is_empty())
        && state.seen_hashes.lock().expect("lock").insert(hash)
    {
        v["result"] = serde_json::json!([]);
        state.lagged.fetch_add(1, Ordering::SeqCst);
        return v.to_string();
    }
    text
}

type Client = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;
type Upstream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Accepts the client's WebSocket on `tcp` and opens one to anvil on `upstream_port`.
pub async fn ws_pair(tcp: tokio::net::TcpStream, upstream_port: u16) -> Option<(Client, Upstream)> {
    let client = tokio_tungstenite::accept_async(tcp).await.ok()?;
    let (node, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{upstream_port}"))
        .await
        .ok()?;
    Some((client, node))
}

async fn relay(tcp: tokio::net::TcpStream, upstream_port: u16, state: Arc<State>) {
    let mut cuts = state.cuts.subscribe();
    let Some((client, node)) = ws_pair(tcp, upstream_port).await else {
        return;
    };
    let (mut to_client, mut from_client) = client.split();
    let (mut to_node, mut from_node) = node.split();
    let mut asked = HashMap::new();
    loop {
        tokio::select! {
            m = from_client.next() => match m {
                Some(Ok(m)) => {
                    if let Message::Text(t) = &m {
                        note_request(t, &mut asked);
                    }
                    if to_node.send(m).await.is_err() { return }
                }
                _ => return,
            },
            m = from_node.next() => match m {
                Some(Ok(Message::Text(t))) => {
                    let t = maybe_lag(&state, t.to_string(), &mut asked);
                    let t = maybe_corrupt(&state, t);
                    if to_client.send(Message::Text(t.into())).await.is_err() { return }
                }
                Some(Ok(m)) => if to_client.send(m).await.is_err() { return },
                _ => return,
            },
            // A cut drops both sockets without a close frame, like a network failure.
            _ = cuts.changed() => return,
        }
    }
}
