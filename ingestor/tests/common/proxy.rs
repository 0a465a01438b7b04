//! A WebSocket proxy in front of anvil that can lie (corrupt the `blockHash` of the next N
//! answers that carry one) and cut every connection (refusing new ones until restored).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

struct State {
    up: AtomicBool,
    corrupt_left: AtomicUsize,
    corrupted: AtomicUsize,
    cuts: watch::Sender<u64>,
}

pub struct WsProxy {
    pub port: u16,
    state: Arc<State>,
    _runtime: tokio::runtime::Runtime,
}

impl WsProxy {
    pub fn start(upstream_port: u16) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("proxy runtime");
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(State {
            up: AtomicBool::new(true),
            corrupt_left: AtomicUsize::new(0),
            corrupted: AtomicUsize::new(0),
            cuts: watch::channel(0).0,
        });
        let accept_state = state.clone();
        runtime.spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                if accept_state.up.load(Ordering::SeqCst) {
                    tokio::spawn(relay(tcp, upstream_port, accept_state.clone()));
                }
            }
        });
        Self {
            port,
            state,
            _runtime: runtime,
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

async fn relay(tcp: tokio::net::TcpStream, upstream_port: u16, state: Arc<State>) {
    let mut cuts = state.cuts.subscribe();
    let Ok(client) = tokio_tungstenite::accept_async(tcp).await else {
        return;
    };
    let Ok((node, _)) =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{upstream_port}")).await
    else {
        return;
    };
    let (mut to_client, mut from_client) = client.split();
    let (mut to_node, mut from_node) = node.split();
    loop {
        tokio::select! {
            m = from_client.next() => match m {
                Some(Ok(m)) => if to_node.send(m).await.is_err() { return },
                _ => return,
            },
            m = from_node.next() => match m {
                Some(Ok(Message::Text(t))) => {
                    let t = maybe_corrupt(&state, t.to_string());
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
