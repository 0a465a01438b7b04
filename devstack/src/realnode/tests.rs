use std::sync::Arc;

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{self, Message};

use super::*;

const HASH: &str = "0xaa00000000000000000000000000000000000000000000000000000000000000";
const TX0: &str = "0x0100000000000000000000000000000000000000000000000000000000000000";
const TX1: &str = "0x0200000000000000000000000000000000000000000000000000000000000000";

fn recording() -> Arc<Recorded> {
    let log = |tx: &str, i: &str, index: &str, topic: &str| {
        json!({"address": "0x00000000000000000000000000000000000000aa", "topics": [topic],
               "data": "0x", "blockHash": HASH, "blockNumber": "0x10",
               "transactionHash": tx, "transactionIndex": i, "logIndex": index,
               "removed": false})
    };
    let v = json!({
        "chain": "test", "chain_id": 7, "source": "-", "receipts_source": "-",
        "block": {"number": "0x10", "hash": HASH, "gasUsed": "0xa410",
                  "transactions": [{"hash": TX0, "type": "0x0"}, {"hash": TX1, "type": "0x2"}]},
        "receipts": [
            {"transactionHash": TX0, "transactionIndex": "0x0", "logs": [log(TX0, "0x0", "0x0", HASH)]},
            {"transactionHash": TX1, "transactionIndex": "0x1", "logs": [log(TX1, "0x1", "0x1", TX1)]},
        ],
    });
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("test-16.json");
    std::fs::write(&path, v.to_string()).expect("write");
    Arc::new(Recorded::load(&path).expect("load"))
}

fn ask(rec: &Recorded, view: answer::View, method: &str, params: Value) -> answer::Outcome {
    answer::answer(rec, view, method, &params)
}

const SHOWN: answer::View = answer::View {
    visible: true,
    block_receipts: true,
};

#[test]
fn answers_the_recorded_block_and_nothing_else() {
    let rec = recording();
    assert_eq!((rec.number, rec.tx_count(), rec.log_count()), (16, 2, 2));
    assert_eq!(ask(&rec, SHOWN, "eth_chainId", json!([])), Ok(json!("0x7")));
    assert_eq!(
        ask(&rec, SHOWN, "eth_blockNumber", json!([])),
        Ok(json!("0x10"))
    );
    let full = ask(&rec, SHOWN, "eth_getBlockByNumber", json!(["0x10", true])).expect("block");
    assert_eq!(full["transactions"][1]["type"], "0x2");
    let hashes = ask(&rec, SHOWN, "eth_getBlockByHash", json!([HASH, false])).expect("block");
    assert_eq!(hashes["transactions"], json!([TX0, TX1]));
    let latest = ask(
        &rec,
        SHOWN,
        "eth_getBlockByNumber",
        json!(["finalized", false]),
    );
    assert_eq!(latest.expect("block")["hash"], HASH);
    for (method, params) in [
        ("eth_getBlockByNumber", json!(["0xf", false])),
        ("eth_getBlockReceipts", json!(["0x0"])),
        ("eth_getBlockByHash", json!([TX0, false])),
    ] {
        assert_eq!(
            ask(&rec, SHOWN, method, params),
            Ok(Value::Null),
            "{method}"
        );
    }
    let receipts = ask(&rec, SHOWN, "eth_getBlockReceipts", json!([HASH])).expect("receipts");
    assert_eq!(receipts.as_array().map(Vec::len), Some(2));
    let by_number = ask(&rec, SHOWN, "eth_getBlockReceipts", json!(["0x10"]));
    assert_eq!(by_number, Ok(receipts));
    let one = ask(&rec, SHOWN, "eth_getTransactionReceipt", json!([TX1])).expect("receipt");
    assert_eq!(one["transactionIndex"], "0x1");
    assert_eq!(
        ask(&rec, SHOWN, "eth_sendRawTransaction", json!(["0x00"])).map_err(|e| e.0),
        Err(-32601)
    );
}

#[test]
fn get_logs_filters() {
    let rec = recording();
    let count = |filter: Value| {
        ask(&rec, SHOWN, "eth_getLogs", json!([filter]))
            .expect("logs")
            .as_array()
            .map_or(0, Vec::len)
    };
    assert_eq!(count(json!({"blockHash": HASH})), 2);
    assert_eq!(count(json!({"fromBlock": "0x1", "toBlock": "0x10"})), 2);
    assert_eq!(count(json!({"fromBlock": "0x11", "toBlock": "0x20"})), 0);
    assert_eq!(count(json!({"blockHash": HASH, "topics": [TX1]})), 1);
    assert_eq!(
        count(json!({"blockHash": HASH, "topics": [[HASH, TX1]]})),
        2
    );
    assert_eq!(count(json!({"blockHash": HASH, "topics": [null, TX1]})), 0);
    assert_eq!(
        count(json!({"blockHash": HASH, "address": "0x00000000000000000000000000000000000000AA"})),
        2
    );
    assert!(ask(&rec, SHOWN, "eth_getLogs", json!([7])).is_err());
}

#[test]
fn a_hidden_block_does_not_exist_and_refused_receipts_are_missing_methods() {
    let rec = recording();
    let hidden = answer::View {
        visible: false,
        block_receipts: false,
    };
    assert_eq!(
        ask(&rec, hidden, "eth_blockNumber", json!([])),
        Ok(json!("0xf"))
    );
    for (method, params) in [
        ("eth_getBlockByNumber", json!(["0x10", false])),
        ("eth_getBlockByNumber", json!(["latest", false])),
        ("eth_getBlockByHash", json!([HASH, true])),
        ("eth_getTransactionReceipt", json!([TX0])),
    ] {
        assert_eq!(
            ask(&rec, hidden, method, params),
            Ok(Value::Null),
            "{method}"
        );
    }
    let logs = ask(
        &rec,
        hidden,
        "eth_getLogs",
        json!([{"fromBlock": "0x0", "toBlock": "0x10"}]),
    );
    assert_eq!(logs, Ok(json!([])));
    let refused = ask(&rec, hidden, "eth_getBlockReceipts", json!(["0x0"]));
    assert_eq!(refused.map_err(|e| e.0), Err(answer::METHOD_NOT_FOUND));
}

#[test]
fn serves_http_batches_and_announces_the_released_block_over_websocket() {
    let node = RealNode::start(
        recording(),
        Options {
            hidden: true,
            ..Options::default()
        },
    )
    .expect("node");
    let post = |body: Value| -> Value {
        ureq::post(&node.http_url())
            .send_json(body)
            .expect("post")
            .into_json()
            .expect("json")
    };
    let batch = post(json!([
        {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []},
        {"jsonrpc": "2.0", "id": 2, "method": "eth_getBlockByNumber", "params": ["0x10", false]},
    ]));
    assert_eq!(batch[0]["result"], "0xf");
    assert_eq!(batch[1]["result"], Value::Null);
    let refused =
        post(json!({"jsonrpc": "2.0", "id": 3, "method": "eth_subscribe", "params": ["newHeads"]}));
    assert_eq!(refused["error"]["code"], -32601);

    let (mut ws, _) = tungstenite::connect(node.ws_url()).expect("ws");
    let mut call = |body: Value| -> Value {
        ws.send(Message::Text(body.to_string().into()))
            .expect("send");
        let Ok(Message::Text(t)) = ws.read() else {
            panic!("no text frame")
        };
        serde_json::from_str(&t).expect("json")
    };
    let sub =
        call(json!({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["newHeads"]}));
    let id = sub["result"].as_str().expect("subscription id").to_owned();
    node.release();
    let Ok(Message::Text(t)) = ws.read() else {
        panic!("no notification")
    };
    let note: Value = serde_json::from_str(&t).expect("json");
    assert_eq!(note["method"], "eth_subscription");
    assert_eq!(note["params"]["subscription"], id.as_str());
    assert_eq!(note["params"]["result"]["hash"], HASH);
    assert!(note["params"]["result"].get("transactions").is_none());
    let after = post(json!({"jsonrpc": "2.0", "id": 4, "method": "eth_blockNumber", "params": []}));
    assert_eq!(after["result"], "0x10");
    assert_eq!(node.calls("eth_blockNumber"), 2);
    assert_eq!(node.calls("eth_subscription"), 1);
    let receipts = post(
        json!({"jsonrpc": "2.0", "id": 5, "method": "eth_getBlockReceipts", "params": [HASH]}),
    );
    assert_eq!(receipts["result"][0]["transactionIndex"], "0x0");
    assert_eq!(
        node.served(),
        ["eth_getBlockReceipts"],
        "null answers hold no data"
    );
}

#[test]
fn a_missing_folder_is_an_error_naming_it() {
    let err = realdata_dir_in(Some("/nonexistent/realdata".into())).expect_err("missing");
    let text = format!("{err:#}");
    assert!(
        text.contains("/nonexistent/realdata") && text.contains("ETHHOOK_REALDATA_DIR"),
        "{text}"
    );
    let here = tempfile::tempdir().expect("dir");
    assert_eq!(
        realdata_dir_in(Some(here.path().into())).expect("present"),
        here.path()
    );
}
