//! The node's transports: HTTP POST (one call or a batch per request) and WebSocket (calls,
//! batches, `eth_subscribe newHeads`), each on a free loopback port.

use std::convert::Infallible;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

use super::State;
use super::answer::{self, METHOD_NOT_FOUND};

/// Binds both ports and serves them on the current runtime; returns (HTTP, WebSocket).
pub(super) async fn listen(state: Arc<State>) -> anyhow::Result<(u16, u16)> {
    let http = TcpListener::bind("127.0.0.1:0").await?;
    let ws = TcpListener::bind("127.0.0.1:0").await?;
    let ports = (http.local_addr()?.port(), ws.local_addr()?.port());
    let shared = state.clone();
    // The accept loops end with the runtime, which the node owns and drops.
    tokio::spawn(async move {
        while let Ok((tcp, _)) = http.accept().await {
            tokio::spawn(serve_http(tcp, shared.clone()));
        }
    });
    tokio::spawn(async move {
        while let Ok((tcp, _)) = ws.accept().await {
            tokio::spawn(serve_ws(tcp, state.clone()));
        }
    });
    Ok(ports)
}

async fn serve_http(tcp: TcpStream, state: Arc<State>) {
    let service = service_fn(move |req: Request<Incoming>| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(http_answer(&state, req).await) }
    });
    let _ = http1::Builder::new()
        .serve_connection(TokioIo::new(tcp), service)
        .await;
}

async fn http_answer(state: &State, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let reply = |status: u16, body: String| {
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap_or_default()
    };
    if req.method() != Method::POST {
        return reply(405, String::new());
    }
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return reply(400, String::new()),
    };
    match handle(state, &body, None) {
        Some(text) => reply(200, text),
        None => reply(200, String::new()),
    }
}

/// A WebSocket connection's `newHeads` subscriptions.
#[derive(Default)]
struct Subscriptions {
    ids: Vec<String>,
    next: u64,
}

/// Answers a request body (one call or a batch). `subs` is the WebSocket connection's;
/// over HTTP (`None`) subscriptions are refused. `None`: nothing to answer (notifications).
fn handle(state: &State, body: &[u8], subs: Option<&mut Subscriptions>) -> Option<String> {
    let parsed: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return Some(answer::bare_error(-32700, &format!("parse error: {e}")).to_string());
        }
    };
    let mut subs = subs;
    let out = match &parsed {
        Value::Array(calls) if calls.is_empty() => answer::bare_error(-32600, "empty batch"),
        Value::Array(calls) => Value::Array(
            calls
                .iter()
                .filter_map(|c| one(state, c, subs.as_deref_mut()))
                .collect(),
        ),
        call => one(state, call, subs)?,
    };
    Some(out.to_string())
}

/// Answers one call; `None` for a notification (no `id`).
fn one(state: &State, call: &Value, subs: Option<&mut Subscriptions>) -> Option<Value> {
    call.get("id")?;
    let method = call["method"].as_str().unwrap_or_default();
    let params = call.get("params").unwrap_or(&Value::Null);
    state.count(method);
    let outcome = match (method, subs) {
        ("eth_subscribe", Some(subs)) => match params.get(0).and_then(Value::as_str) {
            Some("newHeads") => {
                subs.next += 1;
                let id = format!("0x{:032x}", subs.next);
                subs.ids.push(id.clone());
                Ok(json!(id))
            }
            other => Err((-32602, format!("unsupported subscription {other:?}"))),
        },
        ("eth_unsubscribe", Some(subs)) => {
            let id = params.get(0).and_then(Value::as_str).unwrap_or_default();
            let before = subs.ids.len();
            subs.ids.retain(|s| s != id);
            Ok(json!(subs.ids.len() != before))
        }
        ("eth_subscribe" | "eth_unsubscribe", None) => {
            Err((METHOD_NOT_FOUND, "notifications not supported".into()))
        }
        _ => answer::answer(&state.recorded, state.view(), method, params),
    };
    let holds_data = match &outcome {
        Ok(Value::Array(items)) => !items.is_empty(),
        Ok(Value::Object(_)) => true,
        _ => false,
    };
    if holds_data {
        state.served(method);
    }
    Some(answer::response(call, outcome))
}

async fn serve_ws(tcp: TcpStream, state: Arc<State>) {
    let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else {
        return;
    };
    let (mut tx, mut rx) = ws.split();
    let mut released = state.released.subscribe();
    let mut subs = Subscriptions::default();
    // A block visible before the connection subscribed is not announced (as nodes do).
    released.mark_unchanged();
    loop {
        tokio::select! {
            frame = rx.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(t))) => t.as_bytes().to_vec(),
                    Some(Ok(Message::Binary(b))) => b.to_vec(),
                    Some(Ok(Message::Ping(p))) => {
                        if tx.send(Message::Pong(p)).await.is_err() { return }
                        continue;
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                    Some(Ok(_)) => continue,
                };
                if let Some(reply) = handle(&state, &text, Some(&mut subs))
                    && tx.send(Message::Text(reply.into())).await.is_err()
                {
                    return;
                }
            }
            changed = released.changed() => {
                if changed.is_err() {
                    return;
                }
                if !*released.borrow_and_update() {
                    continue;
                }
                for id in &subs.ids {
                    state.count("eth_subscription");
                    let note = json!({
                        "jsonrpc": "2.0",
                        "method": "eth_subscription",
                        "params": {"subscription": id, "result": state.recorded.header},
                    });
                    if tx.send(Message::Text(note.to_string().into())).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}
