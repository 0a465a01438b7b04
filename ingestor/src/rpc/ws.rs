//! The WebSocket transport (`ws://`, `wss://`): requests correlated by id, subscription
//! notifications and keepalive pings, all driven by one connection task.
//!
//! The connection task owns the socket and runs one `select!` over outgoing requests,
//! incoming frames and a keepalive timer. When the connection dies (close, reset, a missed
//! pong, a malformed or oversized frame) every pending request fails with that reason and
//! the transport is dead: the caller reconnects. Notifications missed while disconnected
//! are lost; the follower never relies on them (they are only wake-ups).
//!
//! Latency: our socket has `TCP_NODELAY`, and on Linux it acknowledges every frame at once
//! (`TCP_QUICKACK`, set again after each read, as the kernel clears it). A node whose own
//! socket runs Nagle's algorithm (anvil's does) otherwise holds a `newHeads` notification
//! until our delayed ACK of its previous answer fires: 13 to 20 ms on every live block.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior, interval, timeout};
use tokio_tungstenite::Connector;
use tokio_tungstenite::tungstenite::error::{Error as WsError, TlsError};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::client::RpcOptions;
use super::error::RpcError;
use super::frame::{Frame, parse_frame};
use super::redact::redact_url;
use super::tls;

/// Capacity of the outgoing request queue and of the notification queue.
const QUEUE_CAPACITY: usize = 1024;

struct Outgoing {
    id: u64,
    text: String,
    reply: oneshot::Sender<Result<Box<RawValue>, RpcError>>,
}

/// A live WebSocket connection; dropping it closes the socket.
pub(super) struct WsTransport {
    outgoing: mpsc::Sender<Outgoing>,
    task: JoinHandle<()>,
}

impl Drop for WsTransport {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl WsTransport {
    /// Opens the WebSocket (TLS for `wss://`) and starts the connection task.
    /// Notifications go to the returned receiver; when it is full they are dropped.
    pub(super) async fn connect(
        url: &str,
        opts: &RpcOptions,
    ) -> Result<(Self, mpsc::Receiver<Frame>), RpcError> {
        let config = WebSocketConfig::default()
            .max_message_size(Some(opts.max_message_bytes))
            .max_frame_size(Some(opts.max_message_bytes));
        let connector = url
            .starts_with("wss:")
            .then(|| Connector::Rustls(opts.tls.clone()));
        let connect =
            tokio_tungstenite::connect_async_tls_with_config(url, Some(config), true, connector);
        let (ws, _) = match timeout(opts.connect_timeout, connect).await {
            Err(_) => {
                return Err(RpcError::Connect {
                    url: redact_url(url),
                    reason: "timed out".into(),
                });
            }
            Ok(Err(e)) => return Err(connect_error(url, &e)),
            Ok(Ok(ok)) => ok,
        };
        let (out_tx, out_rx) = mpsc::channel(QUEUE_CAPACITY);
        let (note_tx, note_rx) = mpsc::channel(QUEUE_CAPACITY);
        let ack = QuickAck::of(ws.get_ref());
        let task = tokio::spawn(run_connection(
            ws,
            out_rx,
            note_tx,
            opts.keepalive_interval,
            opts.max_message_bytes,
            ack,
        ));
        Ok((
            Self {
                outgoing: out_tx,
                task,
            },
            note_rx,
        ))
    }

    /// Sends request `id` (already serialised as `text`) and waits for its answer.
    pub(super) async fn call(
        &self,
        id: u64,
        text: String,
    ) -> Result<oneshot::Receiver<Result<Box<RawValue>, RpcError>>, RpcError> {
        let (reply, rx) = oneshot::channel();
        self.outgoing
            .send(Outgoing { id, text, reply })
            .await
            .map_err(|_| RpcError::Disconnected("connection task ended".into()))?;
        Ok(rx)
    }
}

/// Acknowledges received data at once (Linux `TCP_QUICKACK`); a no-op elsewhere.
#[derive(Clone, Copy)]
struct QuickAck(Option<i32>);

impl QuickAck {
    fn of(stream: &tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>) -> Self {
        use std::os::fd::AsRawFd;
        use tokio_tungstenite::MaybeTlsStream;
        match stream {
            MaybeTlsStream::Plain(s) => Self(Some(s.as_raw_fd())),
            MaybeTlsStream::Rustls(s) => Self(Some(s.get_ref().0.as_raw_fd())),
            _ => Self(None),
        }
    }

    /// Sets the option again (the kernel clears it after a while). A failure only costs
    /// latency, so it is ignored.
    fn now(self) {
        #[cfg(target_os = "linux")]
        if let Some(fd) = self.0 {
            let on: libc::c_int = 1;
            // SAFETY: `fd` is the connection's socket, open for as long as the connection
            // task (the only caller) owns the stream; the option value is a valid c_int.
            unsafe {
                libc::setsockopt(
                    fd,
                    libc::IPPROTO_TCP,
                    libc::TCP_QUICKACK,
                    (&on as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
    }
}

/// A failed WebSocket handshake, with certificate problems named as such.
fn connect_error(url: &str, e: &WsError) -> RpcError {
    let rustls = match e {
        WsError::Tls(TlsError::Rustls(r)) => Some(&**r),
        other => tls::find_rustls_error(other),
    };
    match rustls {
        Some(r) => RpcError::Tls {
            url: redact_url(url),
            reason: tls::describe(r),
        },
        None => RpcError::Connect {
            url: redact_url(url),
            reason: e.to_string(),
        },
    }
}

type Pending = HashMap<u64, oneshot::Sender<Result<Box<RawValue>, RpcError>>>;

/// The same failure for every request still pending when the connection ended.
fn for_each_pending(reason: &RpcError) -> RpcError {
    match reason {
        RpcError::Frame(f) => RpcError::Frame(f.clone()),
        RpcError::TooLarge { limit_bytes } => RpcError::TooLarge {
            limit_bytes: *limit_bytes,
        },
        RpcError::Node { method, source } => RpcError::Node {
            method,
            source: source.clone(),
        },
        other => RpcError::Disconnected(other.to_string()),
    }
}

async fn run_connection<S>(
    ws: S,
    mut outgoing: mpsc::Receiver<Outgoing>,
    notifications: mpsc::Sender<Frame>,
    keepalive_every: Duration,
    max_message_bytes: usize,
    ack: QuickAck,
) where
    S: futures_util::Stream<Item = Result<Message, WsError>>
        + futures_util::Sink<Message, Error = WsError>
        + Unpin,
{
    let (mut sink, mut stream) = ws.split();
    let mut pending = Pending::new();
    let mut keepalive = interval(keepalive_every);
    keepalive.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_frame = Instant::now();
    ack.now();

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
                ack.now();
                // The frame is parsed where it lies (its text is not copied); a large one
                // on the CPU pool.
                let text = match incoming {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Binary(b))) => match Utf8Bytes::try_from(b) {
                        Ok(t) => t,
                        Err(_) => break RpcError::Disconnected("binary frame is not UTF-8".into()),
                    },
                    Some(Ok(Message::Close(_))) | None => break RpcError::Disconnected("closed by the node".into()),
                    Some(Ok(_)) => {
                        // Ping, pong or raw frame: proof of life; tungstenite answers pings itself.
                        last_frame = Instant::now();
                        continue;
                    }
                    // An answer over `max_message_bytes`: the rest of it is still on the
                    // socket, so the connection is lost, and the range must shrink.
                    Some(Err(WsError::Capacity(_))) => break RpcError::TooLarge { limit_bytes: max_message_bytes },
                    Some(Err(e)) => break RpcError::Disconnected(e.to_string()),
                };
                last_frame = Instant::now();
                let parsed = crate::cpu::offload(text.len(), move || parse_frame(text.as_str())).await;
                match parsed {
                    Ok(Frame::Response { id, result }) => {
                        if let Some(reply) = pending.remove(&id) {
                            let _ = reply.send(result.map_err(|source| RpcError::Node { method: "?", source }));
                        }
                    }
                    // Nothing to tie it to: every pending request gets the node's error.
                    Ok(Frame::Unmatched(source)) => break RpcError::Node { method: "?", source },
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
    for (_, reply) in pending.drain() {
        let _ = reply.send(Err(for_each_pending(&reason)));
    }
}
