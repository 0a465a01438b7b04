//! WebSocket JSON-RPC client: requests correlated by id, subscription notifications and
//! keepalive pings, all driven by one connection task.
//!
//! The connection task owns the socket and runs one `select!` over outgoing requests,
//! incoming frames and a keepalive timer. When the connection dies (close, reset, a missed
//! pong, a malformed frame) every pending request fails with a retryable error and the
//! client is dead: the caller reconnects. Notifications missed while disconnected are lost;
//! the follower never relies on them (they are only wake-ups).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior, interval, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::error::RpcError;
use super::frame::{Frame, parse_frame};
use super::redact::redact_url;

/// Transport settings of one connection.
#[derive(Debug, Clone)]
pub struct WsOptions {
    /// Deadline for opening the WebSocket.
    pub connect_timeout: Duration,
    /// Deadline for each request's answer.
    pub request_timeout: Duration,
    /// Interval between pings; two intervals without any frame mark the connection dead.
    pub keepalive_interval: Duration,
    /// Largest accepted message (a ranged `eth_getLogs` answer can be large).
    pub max_message_bytes: usize,
}

/// Capacity of the outgoing request queue and of the notification queue.
const QUEUE_CAPACITY: usize = 1024;

struct Outgoing {
    id: u64,
    text: String,
    reply: oneshot::Sender<Result<Value, RpcError>>,
}

/// A live connection. Cheap to share by reference; dropping it closes the socket.
pub struct RpcClient {
    outgoing: mpsc::Sender<Outgoing>,
    next_id: AtomicU64,
    request_timeout: Duration,
    task: JoinHandle<()>,
}

impl Drop for RpcClient {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RpcClient {
    /// Opens the WebSocket and starts the connection task. Notifications go to the
    /// returned receiver; when it is full they are dropped (they are wake-ups only).
    pub async fn connect(
        url: &str,
        opts: &WsOptions,
    ) -> Result<(Self, mpsc::Receiver<Frame>), RpcError> {
        let config = WebSocketConfig::default()
            .max_message_size(Some(opts.max_message_bytes))
            .max_frame_size(Some(opts.max_message_bytes));
        let connect = tokio_tungstenite::connect_async_with_config(url, Some(config), true);
        let (ws, _) = match timeout(opts.connect_timeout, connect).await {
            Err(_) => return Err(connect_err(url, "timed out")),
            Ok(Err(e)) => return Err(connect_err(url, e.to_string())),
            Ok(Ok(ok)) => ok,
        };
        let (out_tx, out_rx) = mpsc::channel(QUEUE_CAPACITY);
        let (note_tx, note_rx) = mpsc::channel(QUEUE_CAPACITY);
        let task = tokio::spawn(run_connection(ws, out_rx, note_tx, opts.keepalive_interval));
        let client = Self {
            outgoing: out_tx,
            next_id: AtomicU64::new(1),
            request_timeout: opts.request_timeout,
            task,
        };
        Ok((client, note_rx))
    }

    /// Calls `method` with `params` and waits for its result.
    pub async fn request(&self, method: &'static str, params: Value) -> Result<Value, RpcError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let text =
            json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string();
        let (reply, rx) = oneshot::channel();
        self.outgoing
            .send(Outgoing { id, text, reply })
            .await
            .map_err(|_| RpcError::Disconnected("connection task ended".into()))?;
        match timeout(self.request_timeout, rx).await {
            Err(_) => Err(RpcError::Timeout {
                method,
                timeout_ms: millis(self.request_timeout),
            }),
            Ok(Err(_)) => Err(RpcError::Disconnected(
                "connection closed with the request pending".into(),
            )),
            Ok(Ok(result)) => result.map_err(|e| match e {
                RpcError::Node { source, .. } => RpcError::Node { method, source },
                other => other,
            }),
        }
    }
}

fn connect_err(url: &str, reason: impl Into<String>) -> RpcError {
    RpcError::Connect {
        url: redact_url(url),
        reason: reason.into(),
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

type Pending = HashMap<u64, oneshot::Sender<Result<Value, RpcError>>>;

async fn run_connection<S>(
    ws: S,
    mut outgoing: mpsc::Receiver<Outgoing>,
    notifications: mpsc::Sender<Frame>,
    keepalive_every: Duration,
) where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
        + futures_util::Sink<Message, Error = tokio_tungstenite::tungstenite::Error>
        + Unpin,
{
    let (mut sink, mut stream) = ws.split();
    let mut pending = Pending::new();
    let mut keepalive = interval(keepalive_every);
    keepalive.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_frame = Instant::now();

    let reason: RpcError = loop {
        tokio::select! {
            out = outgoing.recv() => {
                let Some(out) = out else {
                    let _ = sink.close().await;
                    return;
                };
                pending.insert(out.id, out.reply);
                if let Err(e) = sink.send(Message::Text(out.text.into())).await {
                    break RpcError::Disconnected(e.to_string());
                }
            }
            incoming = stream.next() => {
                let text = match incoming {
                    Some(Ok(Message::Text(t))) => t.to_string(),
                    Some(Ok(Message::Binary(b))) => match String::from_utf8(b.to_vec()) {
                        Ok(t) => t,
                        Err(_) => break RpcError::Disconnected("binary frame is not UTF-8".into()),
                    },
                    Some(Ok(Message::Close(_))) | None => break RpcError::Disconnected("closed by the node".into()),
                    Some(Ok(_)) => {
                        // Ping, pong or raw frame: proof of life; tungstenite answers pings itself.
                        last_frame = Instant::now();
                        continue;
                    }
                    Some(Err(e)) => break RpcError::Disconnected(e.to_string()),
                };
                last_frame = Instant::now();
                match parse_frame(&text) {
                    Ok(Frame::Response { id, result }) => {
                        if let Some(reply) = pending.remove(&id) {
                            let _ = reply.send(result.map_err(|source| RpcError::Node { method: "?", source }));
                        }
                    }
                    Ok(note @ Frame::Notification { .. }) => {
                        // Full queue: the consumer is busy and will poll the head anyway.
                        let _ = notifications.try_send(note);
                    }
                    Err(e) => break RpcError::Frame(e),
                }
            }
            _ = keepalive.tick() => {
                if last_frame.elapsed() > keepalive_every * 2 {
                    break RpcError::Disconnected("no frame or pong within two keepalive intervals".into());
                }
                pending.retain(|_, reply| !reply.is_closed());
                if let Err(e) = sink.send(Message::Ping(Default::default())).await {
                    break RpcError::Disconnected(e.to_string());
                }
            }
        }
    };
    let message = reason.to_string();
    for (_, reply) in pending.drain() {
        let err = match &reason {
            RpcError::Frame(f) => RpcError::Frame(f.clone()),
            _ => RpcError::Disconnected(message.clone()),
        };
        let _ = reply.send(Err(err));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    fn opts() -> WsOptions {
        WsOptions {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
            keepalive_interval: Duration::from_secs(30),
            max_message_bytes: 1 << 20,
        }
    }

    /// A one-connection node that answers the first request with `reply` (or hangs up).
    async fn fake_node(reply: Option<&'static str>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.expect("accept");
            let mut ws = tokio_tungstenite::accept_async(tcp)
                .await
                .expect("handshake");
            let _ = ws.next().await;
            if let Some(text) = reply {
                let _ = ws.send(Message::Text(text.into())).await;
                let _ = ws.next().await;
            }
        });
        format!("ws://{addr}")
    }

    #[tokio::test]
    async fn answers_are_correlated_by_id() {
        let url = fake_node(Some(r#"{"jsonrpc":"2.0","id":1,"result":"0x539"}"#)).await;
        let (client, _notes) = RpcClient::connect(&url, &opts()).await.expect("connect");
        assert_eq!(client.chain_id().await.expect("chain id"), 1337);
    }

    #[tokio::test]
    async fn malformed_frames_fail_the_call_without_panicking() {
        for garbage in [
            "not json",
            "[]",
            r#"{"id":1}"#,
            r#"{"jsonrpc":"2.0","id":1,"error":"x"}"#,
        ] {
            let url = fake_node(Some(garbage)).await;
            let (client, _notes) = RpcClient::connect(&url, &opts()).await.expect("connect");
            let err = client.chain_id().await.expect_err(garbage);
            assert!(matches!(err, RpcError::Frame(_)), "{garbage}: {err}");
            assert!(err.backend_gone());
        }
    }

    #[tokio::test]
    async fn node_errors_and_invalid_results_are_typed() {
        let url = fake_node(Some(r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32005,"message":"query returned more than 10000 results"}}"#)).await;
        let (client, _notes) = RpcClient::connect(&url, &opts()).await.expect("connect");
        let err = client.logs_in_range(0, 10).await.expect_err("refused");
        assert!(err.is_range_refused() && !err.backend_gone(), "{err}");

        let url = fake_node(Some(r#"{"jsonrpc":"2.0","id":1,"result":"0xZZ"}"#)).await;
        let (client, _notes) = RpcClient::connect(&url, &opts()).await.expect("connect");
        assert!(matches!(
            client.chain_id().await,
            Err(RpcError::Invalid { .. })
        ));
    }

    #[tokio::test]
    async fn a_node_that_hangs_up_gives_a_retryable_disconnect() {
        let url = fake_node(None).await;
        let (client, _notes) = RpcClient::connect(&url, &opts()).await.expect("connect");
        let err = client.block_number().await.expect_err("hung up");
        assert!(err.backend_gone(), "{err}");
        let refused = RpcClient::connect("ws://127.0.0.1:1", &opts())
            .await
            .err()
            .expect("nobody listens");
        assert!(matches!(refused, RpcError::Connect { .. }));
    }
}
