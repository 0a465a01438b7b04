//! The JSON-RPC client the follower uses, over either transport: a WebSocket (`ws://`,
//! `wss://`: pipelined requests and `newHeads` notifications) or HTTP (`http://`,
//! `https://`: keep-alive, real JSON-RPC batches, no notifications, so the follower polls).
//!
//! Rate limits are handled here, for every call: the same request is sent again after the
//! provider's `Retry-After` or a capped, jittered backoff, each wait reported as an event.
//! They never surface as errors, so they never shrink a range or open the breaker.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::future::join_all;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::timeout;

use super::batch::{self, BatchLimit};
use super::error::RpcError;
use super::frame::Frame;
use super::http::HttpTransport;
use super::ws::WsTransport;
use crate::events;
use crate::telemetry::rpc_metrics::RpcMetrics;

/// Longest `Retry-After` honoured as given; a longer one waits this long, then asks again.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);
/// Single requests in flight at once over HTTP when the endpoint takes no batches.
const UNBATCHED_IN_FLIGHT: usize = 16;

/// Settings of one client.
#[derive(Debug, Clone)]
pub struct RpcOptions {
    /// Chain name, for the rate-limit events and the per-endpoint metrics.
    pub chain: Arc<str>,
    /// The endpoint's index in the chain's `urls`, for the per-endpoint metrics.
    pub endpoint: usize,
    /// Where the calls are counted and timed.
    pub metrics: Arc<RpcMetrics>,
    /// Deadline for opening the connection.
    pub connect_timeout: Duration,
    /// Deadline for each request's answer.
    pub request_timeout: Duration,
    /// WebSocket ping interval; two intervals without any frame mark the connection dead.
    pub keepalive_interval: Duration,
    /// Largest accepted answer (a ranged `eth_getLogs` answer can be large).
    pub max_message_bytes: usize,
    /// Most requests in one HTTP batch.
    pub batch_max: usize,
    /// First and largest wait after a rate limit without `Retry-After`.
    pub rate_limit_backoff: (Duration, Duration),
    /// TLS for `wss://` and `https://`.
    pub tls: Arc<rustls::ClientConfig>,
}

impl RpcOptions {
    /// The same settings for the chain's endpoint `i`.
    pub fn at_endpoint(&self, i: usize) -> Self {
        Self {
            endpoint: i,
            ..self.clone()
        }
    }
}

enum Transport {
    Ws(WsTransport),
    Http(HttpTransport),
}

/// A connection to one endpoint. Dropping it closes the socket.
pub struct RpcClient {
    transport: Transport,
    next_id: AtomicU64,
    opts: RpcOptions,
    /// The batch size the endpoint takes (HTTP), shared with its other connections.
    batch_limit: Arc<BatchLimit>,
    /// Over HTTP nothing is ever notified; holding the sender keeps the receiver open.
    _no_notes: Option<mpsc::Sender<Frame>>,
}

impl RpcClient {
    /// Connects to `url` (`ws`, `wss`, `http`, `https`). Notifications go to the returned
    /// receiver (never any over HTTP); when it is full they are dropped (wake-ups only).
    pub async fn connect(
        url: &str,
        opts: &RpcOptions,
    ) -> Result<(Self, mpsc::Receiver<Frame>), RpcError> {
        let connected = if url.starts_with("ws") {
            WsTransport::connect(url, opts)
                .await
                .map(|(ws, notes)| (Transport::Ws(ws), notes, None))
        } else {
            let (tx, rx) = mpsc::channel(1);
            HttpTransport::new(url, opts).map(|http| (Transport::Http(http), rx, Some(tx)))
        };
        let (transport, notes, keep) =
            connected.inspect_err(|e| opts.metrics.failed(&opts.chain, opts.endpoint, e))?;
        let client = Self {
            transport,
            next_id: AtomicU64::new(1),
            opts: opts.clone(),
            batch_limit: Arc::new(BatchLimit::new(opts.batch_max)),
            _no_notes: keep,
        };
        Ok((client, notes))
    }

    /// Uses `limit` as the endpoint's batch size: what an earlier connection to the same
    /// endpoint learned is kept.
    pub fn with_batch_limit(mut self, limit: Arc<BatchLimit>) -> Self {
        self.batch_limit = limit;
        self
    }

    /// The endpoint's index in the chain's `urls`.
    pub fn endpoint(&self) -> usize {
        self.opts.endpoint
    }

    /// The batch size in use (1: no batching).
    pub fn batch_size(&self) -> usize {
        self.batch_limit.get()
    }

    /// Whether the node pushes `newHeads` (WebSocket); otherwise the head is polled.
    pub fn subscribes(&self) -> bool {
        matches!(self.transport, Transport::Ws(_))
    }

    /// Calls `method` with `params` and waits for its result; rate limits are waited out.
    /// The result comes back as its JSON text, for the method's typed parser.
    pub async fn request(
        &self,
        method: &'static str,
        params: Value,
    ) -> Result<Box<RawValue>, RpcError> {
        let mut attempt = 0;
        loop {
            let sent = Instant::now();
            let answer = self.send_once(method, params.clone()).await;
            match answer {
                Err(e) if e.rate_limit().is_some() => {
                    self.timed(1, sent, None);
                    self.wait_rate_limit(method, &e, attempt).await;
                    attempt += 1;
                }
                other => {
                    self.timed(1, sent, other.as_ref().err());
                    return other;
                }
            }
        }
    }

    /// Records a call of `requests` sent at `sent` in the per-endpoint metrics.
    fn timed(&self, requests: usize, sent: Instant, error: Option<&RpcError>) {
        self.opts.metrics.call(
            &self.opts.chain,
            self.opts.endpoint,
            requests as u64,
            sent.elapsed(),
            error,
        );
    }

    /// Calls `method` once per entry of `params`: one JSON-RPC batch per `batch_max`
    /// requests over HTTP, pipelined requests over a WebSocket. Results in `params` order;
    /// the first error fails the whole call. Rate-limited requests are sent again.
    pub async fn batch(
        &self,
        method: &'static str,
        params: Vec<Value>,
    ) -> Result<Vec<Box<RawValue>>, RpcError> {
        let mut results: Vec<Option<Box<RawValue>>> = vec![None; params.len()];
        let mut todo: Vec<usize> = (0..params.len()).collect();
        let mut attempt = 0;
        while !todo.is_empty() {
            let sent = Instant::now();
            let answers = self.batch_once(method, &params, &todo).await;
            let failed = match &answers {
                Err(e) if e.rate_limit().is_none() => Some(e),
                _ => None,
            };
            self.timed(todo.len(), sent, failed);
            let mut limited = None;
            let mut still = Vec::new();
            match answers {
                Err(e) if e.rate_limit().is_some() => {
                    limited = Some(e);
                    still = todo;
                }
                Err(e) => return Err(e),
                Ok(answers) => {
                    for (i, answer) in todo.into_iter().zip(answers) {
                        match answer {
                            Ok(v) => results[i] = Some(v),
                            Err(e) if e.rate_limit().is_some() => {
                                still.push(i);
                                limited = Some(e);
                            }
                            Err(e) => {
                                self.opts
                                    .metrics
                                    .failed(&self.opts.chain, self.opts.endpoint, &e);
                                return Err(e);
                            }
                        }
                    }
                }
            }
            if let Some(e) = limited {
                self.wait_rate_limit(method, &e, attempt).await;
                attempt += 1;
            }
            todo = still;
        }
        Ok(results.into_iter().flatten().collect())
    }

    async fn wait_rate_limit(&self, method: &'static str, e: &RpcError, attempt: u32) {
        let (initial, max) = self.opts.rate_limit_backoff;
        let wait = match e.rate_limit().flatten() {
            Some(after) => after.min(MAX_RETRY_AFTER),
            None => crate::backoff::jittered(attempt, initial, max),
        };
        self.opts
            .metrics
            .failed(&self.opts.chain, self.opts.endpoint, e);
        events::RateLimited {
            chain: &self.opts.chain,
            method,
            wait_ms: millis(wait),
            error: e,
        }
        .emit();
        tokio::time::sleep(wait).await;
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn named(&self, method: &'static str, e: RpcError) -> RpcError {
        match e {
            RpcError::Node { source, .. } => RpcError::Node { method, source },
            RpcError::Timeout { .. } => RpcError::Timeout {
                method,
                timeout_ms: millis(self.opts.request_timeout),
            },
            other => other,
        }
    }

    async fn send_once(
        &self,
        method: &'static str,
        params: Value,
    ) -> Result<Box<RawValue>, RpcError> {
        let id = self.next_id();
        let text = request_text(id, method, &params);
        let answer = match &self.transport {
            Transport::Ws(ws) => {
                let rx = ws.call(id, text).await?;
                match timeout(self.opts.request_timeout, rx).await {
                    Err(_) => Err(RpcError::Timeout {
                        method,
                        timeout_ms: 0,
                    }),
                    Ok(Err(_)) => Err(RpcError::Disconnected(
                        "connection closed with the request pending".into(),
                    )),
                    Ok(Ok(result)) => result,
                }
            }
            Transport::Http(http) => http
                .post(text)
                .await
                .and_then(|frames| take_answer(frames, &[id]).pop().unwrap_or_else(missing)),
        };
        answer.map_err(|e| self.named(method, e))
    }

    /// One round of [`RpcClient::batch`] for the entries `which` of `params`.
    async fn batch_once(
        &self,
        method: &'static str,
        params: &[Value],
        which: &[usize],
    ) -> Result<Vec<Answer>, RpcError> {
        match &self.transport {
            Transport::Ws(_) => Ok(join_all(
                which
                    .iter()
                    .map(|&i| self.send_once(method, params[i].clone())),
            )
            .await),
            Transport::Http(http) => {
                let mut out = Vec::with_capacity(which.len());
                let mut rest = which;
                while !rest.is_empty() {
                    let size = self.batch_limit.get();
                    if size <= 1 {
                        // No batching: single requests, pipelined.
                        // Collected first: a lazy `map` here makes the future not `Send`.
                        let calls: Vec<_> = rest
                            .iter()
                            .map(|&i| self.send_once(method, params[i].clone()))
                            .collect();
                        let singles = futures_util::stream::iter(calls)
                            .buffered(UNBATCHED_IN_FLIGHT)
                            .collect::<Vec<_>>()
                            .await;
                        out.extend(singles);
                        break;
                    }
                    let (chunk, after) = rest.split_at(size.min(rest.len()));
                    let ids: Vec<u64> = chunk.iter().map(|_| self.next_id()).collect();
                    let body = ids
                        .iter()
                        .zip(chunk)
                        .map(|(id, &i)| request_text(*id, method, &params[i]))
                        .collect::<Vec<_>>()
                        .join(",");
                    let answer = http.post(format!("[{body}]")).await;
                    if chunk.len() > 1
                        && let Some(why) = batch::refusal(&answer, &ids)
                    {
                        if let Some(to) = self.batch_limit.cut(chunk.len()) {
                            events::BatchCut {
                                chain: &self.opts.chain,
                                from: chunk.len(),
                                to,
                                why: &why,
                            }
                            .emit();
                        }
                        continue;
                    }
                    let frames = answer.map_err(|e| self.named(method, e))?;
                    out.extend(
                        take_answer(frames, &ids)
                            .into_iter()
                            .map(|r| r.map_err(|e| self.named(method, e))),
                    );
                    rest = after;
                }
                Ok(out)
            }
        }
    }
}

fn request_text(id: u64, method: &str, params: &Value) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string()
}

/// One request's answer: its result as JSON text, or why there is none.
type Answer = Result<Box<RawValue>, RpcError>;

fn missing() -> Answer {
    Err(RpcError::Frame(super::frame::FrameError::BadId))
}

/// The answers to `ids`, in that order; an id without an answer is a malformed reply.
fn take_answer(frames: Vec<Frame>, ids: &[u64]) -> Vec<Answer> {
    let mut unmatched = None;
    let mut by_id: std::collections::HashMap<u64, Answer> = frames
        .into_iter()
        .filter_map(|f| match f {
            Frame::Response { id, result } => Some((
                id,
                result.map_err(|source| RpcError::Node {
                    method: "?",
                    source,
                }),
            )),
            Frame::Unmatched(source) => {
                unmatched = Some(source);
                None
            }
            Frame::Notification { .. } => None,
        })
        .collect();
    // An error the node did not tie to a request answers every request left unanswered.
    let or_unmatched = || match &unmatched {
        Some(source) => Err(RpcError::Node {
            method: "?",
            source: source.clone(),
        }),
        None => missing(),
    };
    ids.iter()
        .map(|id| by_id.remove(id).unwrap_or_else(or_unmatched))
        .collect()
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::{SinkExt, StreamExt};
    use tokio::net::TcpListener;
    use tokio_tungstenite::tungstenite::Message;

    fn opts() -> RpcOptions {
        RpcOptions {
            endpoint: 0,
            metrics: Arc::new(RpcMetrics::new(&opentelemetry::global::meter("test"))),
            chain: "test".into(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
            keepalive_interval: Duration::from_secs(30),
            max_message_bytes: 1 << 20,
            batch_max: 2,
            rate_limit_backoff: (Duration::from_millis(10), Duration::from_millis(50)),
            tls: crate::rpc::tls::Trust::default()
                .client_config()
                .expect("tls"),
        }
    }

    /// An HTTP node that answers its requests, in order, with `(status, extra header, body)`;
    /// `{id}` in a body becomes the id of the request it answers (the first, for a batch).
    async fn fake_http_node(answers: Vec<(u16, &'static str, String)>) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let mut answers = answers.into_iter();
            // One keep-alive connection carries every request.
            if let Ok((mut tcp, _)) = listener.accept().await {
                let mut buf = Vec::new();
                loop {
                    let mut chunk = [0u8; 4096];
                    let n = tcp.read(&mut chunk).await.expect("read");
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    let Some(head_end) = text.find("\r\n\r\n") else {
                        continue;
                    };
                    let len: usize = text[..head_end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().expect("length"))
                        })
                        .unwrap_or(0);
                    if buf.len() < head_end + 4 + len {
                        continue;
                    }
                    let body = &text[head_end + 4..head_end + 4 + len];
                    let id = body
                        .split("\"id\":")
                        .nth(1)
                        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
                        .unwrap_or("0")
                        .to_owned();
                    let Some((status, header, answer)) = answers.next() else {
                        return;
                    };
                    let answer = answer.replace("{id}", &id);
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n{header}content-length: {}\r\n\r\n{answer}",
                        answer.len()
                    );
                    tcp.write_all(reply.as_bytes()).await.expect("write");
                    buf.clear();
                }
            }
        });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn http_rate_limits_are_waited_out_and_caps_are_range_refusals() {
        let ok = |v: &str| {
            (
                200,
                "",
                format!(r#"{{"jsonrpc":"2.0","id":{{id}},"result":"{v}"}}"#),
            )
        };
        let url = fake_http_node(vec![
            (429, "retry-after: 0\r\n", r#"{"jsonrpc":"2.0","id":{id},"error":{"code":429,"message":"Your app has exceeded its compute units per second capacity."}}"#.into()),
            (200, "", r#"{"jsonrpc":"2.0","id":{id},"error":{"code":-32005,"message":"project ID request rate exceeded"}}"#.into()),
            ok("0x539"),
            (413, "", r#"{"jsonrpc":"2.0","id":{id},"error":{"code":-32614,"message":"eth_getLogs is limited to a 10,000 range"}}"#.into()),
            (502, "", "<html>bad gateway</html>".into()),
            (200, "", format!(r#"{{"id":{{id}},"result":"{}"}}"#, "a".repeat(2 << 20))),
        ])
        .await;
        let (client, _notes) = RpcClient::connect(&url, &opts()).await.expect("client");
        assert!(!client.subscribes());
        assert_eq!(
            client.chain_id().await.expect("after two rate limits"),
            1337
        );
        let err = client.logs_in_range(0, 10).await.expect_err("capped");
        assert!(
            err.is_range_refused() && err.rate_limit().is_none(),
            "{err}"
        );
        let err = client.block_number().await.expect_err("502");
        assert!(
            matches!(err, RpcError::Http { status: 502, .. }) && err.backend_gone(),
            "{err}"
        );
        let err = client.block_number().await.expect_err("too large");
        assert!(
            matches!(err, RpcError::TooLarge { .. }) && err.is_range_refused(),
            "{err}"
        );
    }

    #[tokio::test]
    async fn http_batches_keep_request_order() {
        // batch_max = 2: three calls are two POSTs; the answers come back in reverse order.
        let url = fake_http_node(vec![
            (
                200,
                "",
                r#"[{"jsonrpc":"2.0","id":2,"result":"b"},{"jsonrpc":"2.0","id":1,"result":"a"}]"#
                    .into(),
            ),
            (200, "", r#"[{"jsonrpc":"2.0","id":3,"result":"c"}]"#.into()),
        ])
        .await;
        let (client, _notes) = RpcClient::connect(&url, &opts()).await.expect("client");
        let got = client
            .batch("eth_x", vec![json!([1]), json!([2]), json!([3])])
            .await
            .expect("batch");
        let got: Vec<&str> = got.iter().map(|r| r.get()).collect();
        assert_eq!(got, [r#""a""#, r#""b""#, r#""c""#]);
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
