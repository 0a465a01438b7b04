//! An HTTP JSON-RPC proxy in front of anvil that behaves like a hosted provider: it
//! forwards every request (single or batch) to anvil and rewrites anvil's real answers.
//!
//! Habits, each switched on by a field of [`Habits`]:
//! - `lagging`: answers `[]` to the first `eth_getLogs {blockHash}` of each block that has
//!   logs, and `null` to the first `eth_getBlockByNumber` of each number (a load-balanced
//!   provider whose other node announced the block but has not indexed it);
//! - `cap_logs`: refuses a ranged `eth_getLogs` whose answer holds more than N logs, in
//!   turn with Infura's, Alchemy's and QuickNode's wording (QuickNode's with HTTP 413);
//! - `rate_limit_every`: answers every Nth HTTP request with a rate limit, in turn Alchemy's
//!   (HTTP 429, `Retry-After: 1`), Infura's (-32005 in a 200) and QuickNode's (429, -32007).
//! - `behind`: a node N blocks behind anvil: `eth_blockNumber` answers N less, and
//!   `eth_getBlockByNumber` answers `null` above that (a provider's node still syncing).
//! - `cut_tail`: leaves out the tail of a block's logs in the first `eth_getLogs` answer
//!   that holds them (by hash or in a range), and only where the rest still makes the
//!   header's `logsBloom`: by block number mod 3, its last log, its last two, or its last
//!   transaction's logs (a provider still indexing a busy block);
//! - `short_receipts`: leaves out the last receipt of the first `eth_getBlockReceipts`
//!   answer of each block;
//! - `stuck_receipts`: while its flag is set, leaves out the last receipt of every
//!   `eth_getBlockReceipts` answer (a provider that answers one block wrongly for as long as
//!   it likes);
//! - `no_block_receipts`: answers `eth_getBlockReceipts` with -32601, method not found;
//! - `batches`: refuses JSON-RPC batches as nodes do (see [`Batches`]);
//! - `checksum_addresses`: writes every log's `address` in EIP-55 mixed case (as some
//!   clients do);
//! - `repeat_log`: repeats a log in the first ranged `eth_getLogs` answer that holds each
//!   block's logs (a provider's index returning one log twice);
//! - `refuse_subscribe` (WebSocket only): answers `eth_subscribe` with -32601.
//! - `slow` (HTTP only): every answer waits this long first (a distant or busy provider),
//!   so a catch-up lasts long enough to watch.
//! - `tamper`: answers whose content is changed where only the proofs by the block hash
//!   can tell (see [`super::tamper`]).
//!
//! [`ProviderProxy::start`] serves HTTP; [`ProviderProxy::start_ws`] relays a WebSocket.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use serde_json::{Value, json};

/// How a node refuses batches.
#[derive(Debug, Clone, Copy)]
pub enum Batches {
    /// Every batch: one error object with a `null` id (Erigon's answer over its limit).
    RefuseAll,
    /// More than N calls: the first N answered, the rest each an error.
    Cap(usize),
    /// More than one call: HTTP 413 without a JSON-RPC body.
    Status413,
    /// More than one call: the connection is dropped without an answer (older Erigon).
    Drop,
}

/// Which habits the proxy has.
#[derive(Debug, Clone, Default)]
pub struct Habits {
    pub lagging: bool,
    pub cap_logs: Option<usize>,
    pub rate_limit_every: Option<usize>,
    pub behind: Option<u64>,
    pub cut_tail: bool,
    pub short_receipts: bool,
    pub stuck_receipts: Option<Arc<std::sync::atomic::AtomicBool>>,
    pub no_block_receipts: bool,
    pub batches: Option<Batches>,
    pub checksum_addresses: bool,
    pub repeat_log: bool,
    pub refuse_subscribe: bool,
    pub slow: Option<std::time::Duration>,
    pub tamper: super::tamper::Tamper,
}

/// What the proxy did, for the test to check that it did something.
#[derive(Default)]
pub struct Counts {
    pub requests: AtomicUsize,
    pub empty_answers: AtomicUsize,
    pub null_headers: AtomicUsize,
    pub refused_ranges: AtomicUsize,
    pub rate_limited: AtomicUsize,
    /// Logs left out by `cut_tail`, each where the bloom could not tell.
    pub cut_logs: AtomicUsize,
    /// Receipts answers shortened by `short_receipts`.
    pub short_receipts: AtomicUsize,
    /// Batches refused.
    pub refused_batches: AtomicUsize,
    /// `eth_subscribe` or `eth_getBlockReceipts` refused as unknown.
    pub refused_methods: AtomicUsize,
    /// Log addresses written in mixed case.
    pub checksummed: AtomicUsize,
    /// Logs repeated in a ranged answer.
    pub repeated_logs: AtomicUsize,
    /// What `tamper` changed.
    pub tampered: super::tamper::Tampered,
}

impl State {
    fn new(upstream_port: u16, habits: Habits) -> Arc<Self> {
        Arc::new(State {
            habits,
            upstream: format!("http://127.0.0.1:{upstream_port}"),
            client: reqwest::Client::builder()
                .use_preconfigured_tls(
                    (*ingestor::rpc::tls::Trust::default()
                        .client_config()
                        .expect("tls"))
                    .clone(),
                )
                .build()
                .expect("client"),
            seen_hashes: Mutex::default(),
            seen_numbers: Mutex::default(),
            cut_blocks: Mutex::default(),
            short_blocks: Mutex::default(),
            tampered: Default::default(),
            real_head: AtomicU64::new(0),
            counts: Counts::default(),
        })
    }

    /// The answer to a method the node "does not have", if `req` calls one.
    fn refused_method(&self, req: &Value) -> Option<Value> {
        let method = req["method"].as_str().unwrap_or_default();
        let refused = (method == "eth_getBlockReceipts" && self.habits.no_block_receipts)
            || (method == "eth_subscribe" && self.habits.refuse_subscribe);
        refused.then(|| {
            self.counts.refused_methods.fetch_add(1, Ordering::SeqCst);
            error_for(
                req,
                -32601,
                &format!("the method {method} does not exist/is not available"),
            )
        })
    }
}

struct State {
    habits: Habits,
    upstream: String,
    client: reqwest::Client,
    seen_hashes: Mutex<HashSet<String>>,
    seen_numbers: Mutex<HashSet<String>>,
    /// Blocks whose logs (`cut_tail`) or receipts (`short_receipts`) were answered once.
    cut_blocks: Mutex<HashSet<String>>,
    short_blocks: Mutex<HashSet<String>>,
    /// Blocks whose receipts or header `tamper` answered once.
    tampered: super::tamper::Seen,
    /// The real head, from the last `eth_blockNumber` (for `behind`).
    real_head: AtomicU64,
    counts: Counts,
}

pub struct ProviderProxy {
    pub port: u16,
    state: Arc<State>,
    _server: super::server::Background,
}

impl ProviderProxy {
    pub fn start(upstream_port: u16, habits: Habits) -> Self {
        let state = State::new(upstream_port, habits);
        let shared = state.clone();
        let server = super::server::http(move |req| handle(shared.clone(), req));
        Self {
            port: server.port,
            state,
            _server: server,
        }
    }

    /// The same habits over a WebSocket relayed to anvil's (notifications pass through).
    pub fn start_ws(upstream_port: u16, habits: Habits) -> Self {
        let state = State::new(upstream_port, habits);
        let shared = state.clone();
        let server =
            super::server::accept_loop(move |tcp| relay_ws(tcp, upstream_port, shared.clone()));
        Self {
            port: server.port,
            state,
            _server: server,
        }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn habits(&self) -> &Habits {
        &self.state.habits
    }

    pub fn counts(&self) -> &Counts {
        &self.state.counts
    }
}

fn reply(status: u16, headers: &[(&str, &str)], body: &Value) -> Response<Full<Bytes>> {
    let mut b = Response::builder()
        .status(status)
        .header("content-type", "application/json");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Full::new(Bytes::from(body.to_string())))
        .expect("response")
}

fn error_for(request: &Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": request["id"], "error": {"code": code, "message": message}})
}

/// The same error for a single request or for each request of a batch.
fn errors_for(body: &Value, code: i64, message: &str) -> Value {
    match body {
        Value::Array(items) => {
            Value::Array(items.iter().map(|r| error_for(r, code, message)).collect())
        }
        one => error_for(one, code, message),
    }
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let bytes = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return reply(400, &[], &json!("unreadable body")),
    };
    let Ok(body) = serde_json::from_slice::<Value>(&bytes) else {
        return reply(400, &[], &json!("not JSON"));
    };
    let n = state.counts.requests.fetch_add(1, Ordering::SeqCst) + 1;
    if let Some(wait) = state.habits.slow {
        tokio::time::sleep(wait).await;
    }
    if let Some(every) = state.habits.rate_limit_every
        && n.is_multiple_of(every)
    {
        let form = state.counts.rate_limited.fetch_add(1, Ordering::SeqCst) % 3;
        return match form {
            0 => reply(
                429,
                &[("retry-after", "1")],
                &errors_for(
                    &body,
                    429,
                    "Your app has exceeded its compute units per second capacity. If you have retries enabled, you can safely ignore this message. If not, check out https://docs.alchemy.com/reference/throughput",
                ),
            ),
            1 => reply(
                200,
                &[],
                &errors_for(&body, -32005, "project ID request rate exceeded"),
            ),
            _ => reply(
                429,
                &[],
                &errors_for(
                    &body,
                    -32007,
                    "100/second request limit reached - reduce calls per second or upgrade your account at quicknode.com",
                ),
            ),
        };
    }
    if let (Some(batches), Value::Array(items)) = (state.habits.batches, &body) {
        let over = match batches {
            Batches::RefuseAll => true,
            Batches::Cap(n) => items.len() > n,
            Batches::Status413 | Batches::Drop => items.len() > 1,
        };
        if over {
            state.counts.refused_batches.fetch_add(1, Ordering::SeqCst);
            match batches {
                Batches::RefuseAll => {
                    let message = format!("batch limit 0 exceeded: {} requests given", items.len());
                    return reply(
                        200,
                        &[],
                        &json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32000, "message": message}}),
                    );
                }
                Batches::Status413 => {
                    return Response::builder()
                        .status(413)
                        .header("content-type", "text/plain")
                        .body(Full::new(Bytes::from("Request Entity Too Large")))
                        .expect("response");
                }
                // Ends the connection's task: the socket closes with no answer.
                Batches::Drop => std::panic::resume_unwind(Box::new("dropped")),
                Batches::Cap(n) => {
                    let (answered, refused) = items.split_at(n);
                    let mut out = match forward(&state, &Value::Array(answered.to_vec())).await {
                        Some(Value::Array(a)) => a,
                        _ => return reply(502, &[], &json!("upstream down")),
                    };
                    let message = format!("Exceeded max limit of {n} batch requests");
                    out.extend(refused.iter().map(|r| error_for(r, -32600, &message)));
                    return reply(200, &[], &Value::Array(out));
                }
            }
        }
    }
    if let Some(refusal) = state.refused_method(&body) {
        return reply(200, &[], &refusal);
    }
    let Some(answer) = forward(&state, &body).await else {
        return reply(502, &[], &json!("upstream down or not JSON"));
    };
    match (&body, answer) {
        (Value::Array(reqs), Value::Array(answers)) => {
            let rewritten: Vec<Value> = answers
                .into_iter()
                .map(|a| {
                    let req = reqs
                        .iter()
                        .find(|r| r["id"] == a["id"])
                        .cloned()
                        .unwrap_or_default();
                    rewrite(&state, &req, a).1
                })
                .collect();
            reply(200, &[], &Value::Array(rewritten))
        }
        (one, answer) => {
            let (status, v) = rewrite(&state, one, answer);
            reply(status, &[], &v)
        }
    }
}

/// Applies the habits to one answer; returns the HTTP status to send it with.
fn rewrite(state: &State, req: &Value, mut answer: Value) -> (u16, Value) {
    let method = req["method"].as_str().unwrap_or_default();
    let param = &req["params"][0];
    match method {
        "eth_getLogs" if state.habits.lagging => {
            if let Some(hash) = param["blockHash"].as_str()
                && answer["result"].as_array().is_some_and(|l| !l.is_empty())
                && state
                    .seen_hashes
                    .lock()
                    .expect("lock")
                    .insert(hash.to_owned())
            {
                answer["result"] = json!([]);
                state.counts.empty_answers.fetch_add(1, Ordering::SeqCst);
            }
        }
        "eth_blockNumber" if state.habits.behind.is_some() => {
            let real = quantity(&answer["result"]);
            state.real_head.store(real, Ordering::SeqCst);
            let behind = state.habits.behind.unwrap_or_default();
            answer["result"] = json!(format!("{:#x}", real.saturating_sub(behind)));
        }
        "eth_getBlockByNumber" if state.habits.behind.is_some() => {
            let behind = state.habits.behind.unwrap_or_default();
            let number = quantity(&answer["result"]["number"]);
            // Its head is the real one (as last asked) less `behind`: nothing above it yet.
            if answer["result"].is_object()
                && number + behind > state.real_head.load(Ordering::SeqCst)
            {
                answer["result"] = Value::Null;
                state.counts.null_headers.fetch_add(1, Ordering::SeqCst);
            }
        }
        "eth_getBlockByNumber" if state.habits.lagging => {
            if let Some(number) = param.as_str()
                && number.starts_with("0x")
                && state
                    .seen_numbers
                    .lock()
                    .expect("lock")
                    .insert(number.to_owned())
            {
                answer["result"] = Value::Null;
                state.counts.null_headers.fetch_add(1, Ordering::SeqCst);
            }
        }
        _ => {}
    }
    if method == "eth_getBlockReceipts"
        && let Some(hash) = param.as_str()
        && let Some(receipts) = answer["result"].as_array_mut()
        && !receipts.is_empty()
    {
        if state.habits.lagging
            && state
                .seen_hashes
                .lock()
                .expect("lock")
                .insert(hash.to_owned())
        {
            receipts.clear();
            state.counts.empty_answers.fetch_add(1, Ordering::SeqCst);
        } else if state
            .habits
            .stuck_receipts
            .as_ref()
            .is_some_and(|on| on.load(Ordering::SeqCst))
            || (state.habits.short_receipts
                && state
                    .short_blocks
                    .lock()
                    .expect("lock")
                    .insert(hash.to_owned()))
        {
            receipts.pop();
            state.counts.short_receipts.fetch_add(1, Ordering::SeqCst);
        }
    }
    if state.habits.checksum_addresses {
        checksum_logs(state, method, &mut answer["result"]);
    }
    if method == "eth_getLogs"
        && state.habits.repeat_log
        && param.get("fromBlock").is_some()
        && let Some(logs) = answer["result"].as_array_mut()
        && let Some(first) = logs.first().cloned()
        && state
            .cut_blocks
            .lock()
            .expect("lock")
            .insert(format!("repeat:{}", first["blockHash"]))
    {
        logs.insert(1, first);
        state.counts.repeated_logs.fetch_add(1, Ordering::SeqCst);
    }
    if method == "eth_getBlockReceipts"
        && let Some(hash) = param.as_str()
        && let Some(receipts) = answer["result"].as_array_mut()
    {
        super::tamper::receipts(
            state.habits.tamper,
            &state.tampered,
            &state.counts.tampered,
            hash,
            receipts,
        );
    }
    if matches!(method, "eth_getBlockByNumber" | "eth_getBlockByHash")
        && answer["result"].is_object()
    {
        super::tamper::header(
            state.habits.tamper,
            &state.tampered,
            &state.counts.tampered,
            &mut answer["result"],
        );
    }
    if method == "eth_getLogs"
        && state.habits.cut_tail
        && let Some(logs) = answer["result"].as_array_mut()
    {
        *logs = cut_logs(state, std::mem::take(logs));
    }
    if method == "eth_getLogs"
        && param.get("fromBlock").is_some()
        && let Some(cap) = state.habits.cap_logs
        && answer["result"].as_array().is_some_and(|l| l.len() > cap)
    {
        let form = state.counts.refused_ranges.fetch_add(1, Ordering::SeqCst) % 3;
        return match form {
            0 => (
                200,
                error_for(
                    req,
                    -32005,
                    "query returned more than 10000 results. Try with this block range [0x0, 0x10].",
                ),
            ),
            1 => (
                200,
                error_for(
                    req,
                    -32602,
                    "Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range and no limit on the response size, or you can request any block range with a cap of 10K logs in the response.",
                ),
            ),
            _ => (
                413,
                error_for(req, -32614, "eth_getLogs is limited to a 10,000 range"),
            ),
        };
    }
    (200, answer)
}

/// Sends `body` to anvil; its answer.
async fn forward(state: &State, body: &Value) -> Option<Value> {
    let r = state
        .client
        .post(&state.upstream)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .ok()?;
    serde_json::from_slice(&r.bytes().await.ok()?).ok()
}

/// Relays one WebSocket connection to anvil, applying the habits to each answer.
async fn relay_ws(tcp: tokio::net::TcpStream, upstream_port: u16, state: Arc<State>) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let Some((client, node)) = super::proxy::ws_pair(tcp, upstream_port).await else {
        return;
    };
    let (mut to_client, mut from_client) = client.split();
    let (mut to_node, mut from_node) = node.split();
    let mut asked = std::collections::HashMap::<String, Value>::new();
    loop {
        tokio::select! {
            m = from_client.next() => match m {
                Some(Ok(Message::Text(t))) => {
                    let req: Value = serde_json::from_str(&t).unwrap_or_default();
                    if let Some(refusal) = state.refused_method(&req) {
                        if to_client.send(Message::Text(refusal.to_string().into())).await.is_err() { return }
                        continue;
                    }
                    asked.insert(req["id"].to_string(), req);
                    if to_node.send(Message::Text(t)).await.is_err() { return }
                }
                Some(Ok(m)) => if to_node.send(m).await.is_err() { return },
                _ => return,
            },
            m = from_node.next() => match m {
                Some(Ok(Message::Text(t))) => {
                    let answer: Value = serde_json::from_str(&t).unwrap_or_default();
                    let text = match asked.remove(&answer["id"].to_string()) {
                        Some(req) => rewrite(&state, &req, answer).1.to_string(),
                        None => t.to_string(),
                    };
                    if to_client.send(Message::Text(text.into())).await.is_err() { return }
                }
                Some(Ok(m)) => if to_client.send(m).await.is_err() { return },
                _ => return,
            },
        }
    }
}

/// `cut_tail` on one block's logs (JSON, in order): the logs kept.
fn cut_block(state: &State, logs: Vec<Value>) -> Vec<Value> {
    use ingestor::rpc::bloom::Bloom;
    use ingestor::rpc::types::Log;
    let Some(first) = logs.first() else {
        return logs;
    };
    let number = quantity(&first["blockNumber"]);
    let hash = first["blockHash"].as_str().unwrap_or_default().to_owned();
    if !state.cut_blocks.lock().expect("lock").insert(hash) {
        return logs;
    }
    let keep = match number % 3 {
        0 => logs.len().saturating_sub(1),
        1 => logs.len().saturating_sub(2),
        _ => {
            let last_tx = &logs[logs.len() - 1]["transactionIndex"];
            logs.iter()
                .position(|l| &l["transactionIndex"] == last_tx)
                .unwrap_or(logs.len())
        }
    };
    if keep == 0 {
        return logs; // all gone: any check sees that
    }
    let parsed: Vec<Log> = logs
        .iter()
        .map(|l| Log::parse(&l.to_string()).expect("anvil's log"))
        .collect();
    if Bloom::of_logs(&parsed[..keep]) != Bloom::of_logs(&parsed) {
        return logs; // the bloom would tell: not the case under test
    }
    state
        .counts
        .cut_logs
        .fetch_add(logs.len() - keep, Ordering::SeqCst);
    logs.into_iter().take(keep).collect()
}

/// `cut_tail` on an `eth_getLogs` answer (one block's, or a range's in block order).
fn cut_logs(state: &State, logs: Vec<Value>) -> Vec<Value> {
    let mut out = Vec::with_capacity(logs.len());
    let mut block: Vec<Value> = Vec::new();
    for log in logs {
        if block
            .first()
            .is_some_and(|b| b["blockHash"] != log["blockHash"])
        {
            out.extend(cut_block(state, std::mem::take(&mut block)));
        }
        block.push(log);
    }
    out.extend(cut_block(state, block));
    out
}

/// A hex quantity's value; 0 when absent or malformed.
fn quantity(v: &Value) -> u64 {
    v.as_str()
        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        .unwrap_or(0)
}

/// Writes the `address` of every log in `result` (an `eth_getLogs` answer, a receipt or a
/// list of receipts) in EIP-55 mixed case.
fn checksum_logs(state: &State, method: &str, result: &mut Value) {
    let logs: Vec<&mut Value> = match (method, result) {
        ("eth_getLogs", Value::Array(logs)) => logs.iter_mut().collect(),
        ("eth_getBlockReceipts", Value::Array(receipts)) => receipts
            .iter_mut()
            .filter_map(|r| r["logs"].as_array_mut())
            .flatten()
            .collect(),
        ("eth_getTransactionReceipt", r @ Value::Object(_)) => r["logs"]
            .as_array_mut()
            .map(|l| l.iter_mut().collect())
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    for log in logs {
        if let Some(address) = log["address"].as_str() {
            let mixed = eip55(address);
            if mixed != address {
                state.counts.checksummed.fetch_add(1, Ordering::SeqCst);
            }
            log["address"] = json!(mixed);
        }
    }
}

/// `address` (`0x` + 40 hex digits) in EIP-55 mixed case: a letter is upper case where the
/// Keccak-256 of the lower-case hex has a nibble of 8 or more.
pub fn eip55(address: &str) -> String {
    use tiny_keccak::{Hasher, Keccak};
    let lower = address.trim_start_matches("0x").to_ascii_lowercase();
    let mut hash = [0u8; 32];
    let mut k = Keccak::v256();
    k.update(lower.as_bytes());
    k.finalize(&mut hash);
    let mixed: String = lower
        .chars()
        .enumerate()
        .map(|(i, c)| {
            let nibble = (hash[i / 2] >> (if i % 2 == 0 { 4 } else { 0 })) & 0xf;
            if c.is_ascii_alphabetic() && nibble >= 8 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect();
    format!("0x{mixed}")
}
