//! The answers of a node that holds one recorded block: what each JSON-RPC method returns,
//! as pure functions of the recording, the request and whether the block is visible yet.

use serde_json::{Value, json};

use super::Recorded;

/// JSON-RPC's "method not found".
pub(super) const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;

/// What the node answers with, besides the recording.
#[derive(Debug, Clone, Copy)]
pub(super) struct View {
    /// The recorded block is visible (the head); else the head is the block before it and
    /// the block does not exist.
    pub(super) visible: bool,
    /// `eth_getBlockReceipts` is served; else it is refused with -32601.
    pub(super) block_receipts: bool,
}

/// The outcome of one call: its result, or a JSON-RPC error (code, message).
pub(super) type Outcome = Result<Value, (i64, String)>;

/// The response object for one request (`id` echoed).
pub(super) fn response(request: &Value, outcome: Outcome) -> Value {
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    match outcome {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err((code, message)) => {
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
        }
    }
}

/// A JSON-RPC error response without a request to answer (parse error, empty batch).
pub(super) fn bare_error(code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": null, "error": {"code": code, "message": message}})
}

fn not_found(method: &str) -> Outcome {
    Err((
        METHOD_NOT_FOUND,
        format!("the method {method} does not exist/is not available"),
    ))
}

fn invalid(what: impl Into<String>) -> Outcome {
    Err((INVALID_PARAMS, what.into()))
}

/// A hex quantity (`0x1a`), if it is one.
fn quantity(v: &Value) -> Option<u64> {
    let s = v.as_str()?.strip_prefix("0x")?;
    u64::from_str_radix(s, 16).ok()
}

/// Which block a block parameter names (a tag is the head, null too); an invalid-params
/// error for a parameter that is not one.
fn block_number(rec: &Recorded, view: View, param: &Value) -> Result<u64, (i64, String)> {
    let head = rec.head(view.visible);
    match param.as_str() {
        Some("latest" | "safe" | "finalized" | "pending") => Ok(head),
        Some("earliest") => Ok(0),
        None if param.is_null() => Ok(head),
        _ => {
            quantity(param).ok_or_else(|| (INVALID_PARAMS, format!("invalid block number {param}")))
        }
    }
}

/// Whether `number` is the recorded block and it is visible.
fn is_the_block(rec: &Recorded, view: View, number: u64) -> bool {
    view.visible && number == rec.number
}

/// Whether `hash` is the recorded block's and it is visible.
fn is_the_hash(rec: &Recorded, view: View, hash: &Value) -> bool {
    view.visible
        && hash
            .as_str()
            .is_some_and(|h| h.eq_ignore_ascii_case(&rec.hash))
}

/// The block object, with full transactions or their hashes.
fn block(rec: &Recorded, full: &Value) -> Value {
    if full.as_bool().unwrap_or(false) {
        rec.block.clone()
    } else {
        rec.block_hashes.clone()
    }
}

/// Answers one call (not a batch). `eth_subscribe` and `eth_unsubscribe` are the
/// transport's (WebSocket only); here they are refused as over HTTP.
pub(super) fn answer(rec: &Recorded, view: View, method: &str, params: &Value) -> Outcome {
    let p = |i: usize| params.get(i).unwrap_or(&Value::Null);
    match method {
        "eth_chainId" => Ok(json!(format!("{:#x}", rec.chain_id))),
        "net_version" => Ok(json!(rec.chain_id.to_string())),
        "eth_blockNumber" => Ok(json!(format!("{:#x}", rec.head(view.visible)))),
        "eth_getBlockByNumber" => {
            let number = block_number(rec, view, p(0))?;
            Ok(match is_the_block(rec, view, number) {
                true => block(rec, p(1)),
                false => Value::Null,
            })
        }
        "eth_getBlockByHash" => Ok(match is_the_hash(rec, view, p(0)) {
            true => block(rec, p(1)),
            false => Value::Null,
        }),
        "eth_getBlockReceipts" if !view.block_receipts => not_found(method),
        "eth_getBlockReceipts" => {
            let found = match p(0) {
                Value::Object(o) => match (o.get("blockHash"), o.get("blockNumber")) {
                    (Some(hash), _) => is_the_hash(rec, view, hash),
                    (None, Some(n)) => is_the_block(rec, view, block_number(rec, view, n)?),
                    (None, None) => return invalid("blockHash or blockNumber expected"),
                },
                Value::String(s) if s.len() == 66 => is_the_hash(rec, view, p(0)),
                other => is_the_block(rec, view, block_number(rec, view, other)?),
            };
            Ok(match found {
                true => rec.receipts.clone(),
                false => Value::Null,
            })
        }
        "eth_getTransactionReceipt" => {
            let hash = p(0).as_str().unwrap_or_default();
            Ok(rec
                .receipt_of(hash)
                .filter(|_| view.visible)
                .cloned()
                .unwrap_or(Value::Null))
        }
        "eth_getLogs" => logs(rec, view, p(0)),
        _ => not_found(method),
    }
}

/// `eth_getLogs` over the recorded block: by `blockHash` or `fromBlock..=toBlock`, with
/// the optional `address` and `topics` filters.
fn logs(rec: &Recorded, view: View, filter: &Value) -> Outcome {
    let Some(f) = filter.as_object() else {
        return invalid("a filter object expected");
    };
    let in_block = match f.get("blockHash") {
        Some(hash) if is_the_hash(rec, view, hash) => true,
        Some(_) => return Err((-32000, "unknown block".into())),
        None => {
            let from = block_number(rec, view, f.get("fromBlock").unwrap_or(&Value::Null))?;
            let to = block_number(rec, view, f.get("toBlock").unwrap_or(&Value::Null))?;
            view.visible && from <= rec.number && to >= rec.number
        }
    };
    if !in_block {
        return Ok(json!([]));
    }
    let wanted = |log: &&Value| {
        matches_address(f.get("address"), log) && matches_topics(f.get("topics"), log)
    };
    Ok(Value::Array(
        rec.logs.iter().filter(wanted).cloned().collect(),
    ))
}

/// One value, or any of a list (a filter's `address` or a topic position); null: any.
fn one_of(filter: Option<&Value>, value: Option<&str>) -> bool {
    let eq = |w: &Value| {
        w.as_str()
            .zip(value)
            .is_some_and(|(w, v)| w.eq_ignore_ascii_case(v))
    };
    match filter {
        None | Some(Value::Null) => true,
        Some(Value::Array(any)) => any.is_empty() || any.iter().any(eq),
        Some(one) => eq(one),
    }
}

fn matches_address(filter: Option<&Value>, log: &Value) -> bool {
    one_of(filter, log["address"].as_str())
}

fn matches_topics(filter: Option<&Value>, log: &Value) -> bool {
    let Some(Value::Array(positions)) = filter else {
        return true;
    };
    let topics = log["topics"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    positions.iter().enumerate().all(|(i, want)| {
        want.is_null() || one_of(Some(want), topics.get(i).and_then(Value::as_str))
    })
}
