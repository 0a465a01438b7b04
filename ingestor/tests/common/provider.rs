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

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use serde_json::{Value, json};

/// Which habits the proxy has.
#[derive(Debug, Clone, Default)]
pub struct Habits {
    pub lagging: bool,
    pub cap_logs: Option<usize>,
    pub rate_limit_every: Option<usize>,
    pub behind: Option<u64>,
}

/// What the proxy did, for the test to check that it did something.
#[derive(Default)]
pub struct Counts {
    pub requests: AtomicUsize,
    pub empty_answers: AtomicUsize,
    pub null_headers: AtomicUsize,
    pub refused_ranges: AtomicUsize,
    pub rate_limited: AtomicUsize,
}

struct State {
    habits: Habits,
    upstream: String,
    client: reqwest::Client,
    seen_hashes: Mutex<HashSet<String>>,
    seen_numbers: Mutex<HashSet<String>>,
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
        let state = Arc::new(State {
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
            real_head: AtomicU64::new(0),
            counts: Counts::default(),
        });
        let shared = state.clone();
        let server = super::server::http(move |req| handle(shared.clone(), req));
        Self {
            port: server.port,
            state,
            _server: server,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
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
    let upstream = state
        .client
        .post(&state.upstream)
        .header("content-type", "application/json")
        .body(bytes.to_vec())
        .send()
        .await;
    let answer: Value = match upstream {
        Ok(r) => match r
            .bytes()
            .await
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
        {
            Some(v) => v,
            None => return reply(502, &[], &json!("bad upstream answer")),
        },
        Err(_) => return reply(502, &[], &json!("upstream down")),
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

/// A hex quantity's value; 0 when absent or malformed.
fn quantity(v: &Value) -> u64 {
    v.as_str()
        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        .unwrap_or(0)
}
