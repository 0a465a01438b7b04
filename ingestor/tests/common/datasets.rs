//! The `blocks` and `transactions` datasets against the node: what each record must hold,
//! built from `eth_getBlockByNumber(n, true)` and `eth_getTransactionReceipt` by hand (the
//! members the schemas name are listed here again, not taken from the ingestor), and the
//! compacted views of the topics compared with it field by field.

use std::collections::BTreeMap;

use devstack::datasets::{
    BLOCK_SCHEMA_PATH, TRANSACTION_SCHEMA_PATH, View, quantity_decimal, read_view,
};
use devstack::node::{Node, quantity};
use serde_json::{Map, Value, json};

use super::READ_DEADLINE;

/// The block members `EvmBlock` names.
const BLOCK_NAMED: &[&str] = &[
    "number",
    "hash",
    "parentHash",
    "timestamp",
    "miner",
    "gasUsed",
    "gasLimit",
    "baseFeePerGas",
    "transactions",
    "logsBloom",
    "stateRoot",
    "transactionsRoot",
    "receiptsRoot",
    "extraData",
    "size",
    "withdrawalsRoot",
    "blobGasUsed",
    "excessBlobGas",
    "parentBeaconBlockRoot",
];

/// The transaction members `EvmTransaction` names (or its block's, repeated).
const TX_NAMED: &[&str] = &[
    "hash",
    "transactionIndex",
    "from",
    "to",
    "value",
    "nonce",
    "gas",
    "gasPrice",
    "maxFeePerGas",
    "maxPriorityFeePerGas",
    "input",
    "type",
    "blockHash",
    "blockNumber",
    "blockTimestamp",
];

/// The receipt members `EvmTransaction` names (or the transaction's and block's, repeated).
const RECEIPT_NAMED: &[&str] = &[
    "status",
    "gasUsed",
    "cumulativeGasUsed",
    "effectiveGasPrice",
    "contractAddress",
    "logs",
    "logsBloom",
    "transactionHash",
    "transactionIndex",
    "blockHash",
    "blockNumber",
    "from",
    "to",
    "type",
];

/// What the two dataset topics must hold, by key.
#[derive(Debug, Default)]
pub struct Expected {
    /// `<chain_id>:<number>` → the `EvmBlock` record.
    pub blocks: View,
    /// `<chain_id>:<hash>` → the `EvmTransaction` record.
    pub transactions: View,
}

fn q(v: &Value) -> Value {
    match v {
        Value::Null => Value::Null,
        v => json!(quantity(v).expect("quantity")),
    }
}

fn dec(v: &Value) -> Value {
    match v.as_str() {
        None => Value::Null,
        Some(s) => json!(quantity_decimal(s).expect("decimal quantity")),
    }
}

/// The members of `obj` not in `named`.
fn unnamed(obj: &Value, named: &[&str]) -> Map<String, Value> {
    obj.as_object()
        .expect("object")
        .iter()
        .filter(|(k, _)| !named.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The `EvmBlock` of the node's block object `b` (with its transaction objects).
pub fn block_record(chain_id: u64, b: &Value) -> Value {
    json!({
        "chain_id": chain_id,
        "number": q(&b["number"]),
        "hash": b["hash"],
        "parent_hash": b["parentHash"],
        "timestamp": quantity(&b["timestamp"]).expect("timestamp") * 1000,
        "miner": b["miner"],
        "gas_used": q(&b["gasUsed"]),
        "gas_limit": q(&b["gasLimit"]),
        "base_fee_per_gas": dec(&b["baseFeePerGas"]),
        "transaction_count": b["transactions"].as_array().expect("transactions").len(),
        "logs_bloom": b["logsBloom"],
        "state_root": b["stateRoot"],
        "transactions_root": b["transactionsRoot"],
        "receipts_root": b["receiptsRoot"],
        "extra_data": b["extraData"],
        "size": q(&b["size"]),
        "withdrawals_root": b["withdrawalsRoot"].clone(),
        "blob_gas_used": q(&b["blobGasUsed"]),
        "excess_blob_gas": q(&b["excessBlobGas"]),
        "parent_beacon_block_root": b["parentBeaconBlockRoot"].clone(),
        "extra": unnamed(b, BLOCK_NAMED),
    })
}

/// The `EvmTransaction` of transaction object `t` of block `b`, with its receipt `r`.
pub fn transaction_record(chain_id: u64, b: &Value, t: &Value, r: &Value) -> Value {
    let mut extra = unnamed(t, TX_NAMED);
    for (k, v) in unnamed(r, RECEIPT_NAMED) {
        match extra.get(&k) {
            Some(same) if *same == v => {}
            Some(_) => {
                extra.insert(format!("receipt.{k}"), v);
            }
            None => {
                extra.insert(k, v);
            }
        }
    }
    let status = match r["status"].as_str() {
        None => Value::Null,
        Some(s) => json!(quantity(&json!(s)).expect("status") == 1),
    };
    json!({
        "chain_id": chain_id,
        "block_number": q(&b["number"]),
        "block_hash": b["hash"],
        "block_timestamp": quantity(&b["timestamp"]).expect("timestamp") * 1000,
        "transaction_index": q(&t["transactionIndex"]),
        "hash": t["hash"],
        "from": t["from"],
        "to": t["to"].clone(),
        "value": dec(&t["value"]),
        "nonce": q(&t["nonce"]),
        "gas": q(&t["gas"]),
        "gas_price": dec(&t["gasPrice"]),
        "max_fee_per_gas": dec(&t["maxFeePerGas"]),
        "max_priority_fee_per_gas": dec(&t["maxPriorityFeePerGas"]),
        "input": t["input"],
        "type": match &t["type"] { Value::Null => json!(0), v => q(v) },
        "status": status,
        "gas_used": q(&r["gasUsed"]),
        "cumulative_gas_used": q(&r["cumulativeGasUsed"]),
        "effective_gas_price": dec(&r["effectiveGasPrice"]),
        "contract_address": r["contractAddress"].clone(),
        "logs_count": r["logs"].as_array().expect("logs").len(),
        "extra": extra,
    })
}

/// What the dataset topics must hold for the node's blocks `0..=to`.
pub fn expected_from_node(node: &Node, chain_id: u64, to: u64) -> Expected {
    let mut out = Expected::default();
    for n in 0..=to {
        let b = node
            .call("eth_getBlockByNumber", json!([format!("{n:#x}"), true]))
            .expect("block");
        out.blocks
            .insert(format!("{chain_id}:{n}"), block_record(chain_id, &b));
        for t in b["transactions"].as_array().expect("transactions") {
            let r = node
                .call("eth_getTransactionReceipt", json!([t["hash"]]))
                .expect("receipt");
            let hash = t["hash"].as_str().expect("hash");
            out.transactions.insert(
                format!("{chain_id}:{hash}"),
                transaction_record(chain_id, &b, t, &r),
            );
        }
    }
    out
}

/// Whether a decoded `extra` (strings) holds the node's members: a string as it is, any
/// other JSON value as its text.
fn extra_equal(expected: &Value, got: &Value) -> bool {
    let (Some(e), Some(g)) = (expected.as_object(), got.as_object()) else {
        return false;
    };
    e.len() == g.len()
        && e.iter().all(|(k, ev)| match (ev, g.get(k)) {
            (Value::String(s), Some(Value::String(t))) => s == t,
            (other, Some(Value::String(t))) => {
                serde_json::from_str::<Value>(t).ok().as_ref() == Some(other)
            }
            _ => false,
        })
}

/// Every difference between the expected and the actual view, one line each.
pub fn differences(expected: &View, got: &View) -> Vec<String> {
    let mut out = Vec::new();
    for (k, e) in expected {
        let Some(g) = got.get(k) else {
            out.push(format!("{k}: missing"));
            continue;
        };
        let (eo, go) = (
            e.as_object().expect("record"),
            g.as_object().expect("record"),
        );
        let names: BTreeMap<&String, ()> = eo.keys().chain(go.keys()).map(|n| (n, ())).collect();
        for n in names.keys() {
            let (ev, gv) = (&e[n.as_str()], &g[n.as_str()]);
            let same = match n.as_str() {
                "extra" => extra_equal(ev, gv),
                _ => ev == gv,
            };
            if !same {
                out.push(format!("{k}.{n}: expected {ev}, got {gv}"));
            }
        }
    }
    out.extend(
        got.keys()
            .filter(|k| !expected.contains_key(*k))
            .map(|k| format!("{k}: not on the node's chain")),
    );
    out
}

/// Reads `topic` until its compacted view equals `expected` (or the deadline passes, which
/// fails naming the differences); returns the records read.
pub fn assert_dataset_view(
    brokers: &str,
    topic: &str,
    schema_path: &str,
    expected: &View,
) -> Vec<devstack::consumer::Record> {
    let (view, records) = read_view(brokers, topic, schema_path, READ_DEADLINE, |v| {
        differences(expected, v).is_empty()
    })
    .unwrap_or_else(|e| panic!("{topic}: {e:#}"));
    let diff = differences(expected, &view);
    assert!(
        diff.is_empty(),
        "{topic}: {} differences, the first: {:#?}",
        diff.len(),
        &diff[..diff.len().min(20)]
    );
    records
}

/// Both dataset topics' compacted views equal the node's blocks `0..=head`, field by field.
pub fn assert_datasets_match_node(
    brokers: &str,
    blocks_topic: &str,
    transactions_topic: &str,
    node: &Node,
    chain_id: u64,
) -> Expected {
    let expected = expected_from_node(node, chain_id, node.head().expect("head"));
    assert_dataset_view(brokers, blocks_topic, BLOCK_SCHEMA_PATH, &expected.blocks);
    assert_dataset_view(
        brokers,
        transactions_topic,
        TRANSACTION_SCHEMA_PATH,
        &expected.transactions,
    );
    expected
}
