//! Decoded events end to end, on a real anvil and Kafka: ERC-20 `Transfer` and `Approval`
//! and ERC-721 `Transfer` logs (one selector, another number of indexed arguments) emitted in
//! one block land on their own topics and nowhere else, no failure counted; a reorganisation
//! tombstones the orphaned keys on their decoded topics before the new branch's records;
//! a log the ABI cannot decode stays on the raw topic, counted. Records are read back by an
//! independent consumer, decoded by fastavro with the schemas `ingestor schemas` prints, and
//! compared field by field with the node's raw logs decoded by hand (exact integers).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::process::Command;

use common::*;
use devstack::consumer::{Record, TopicReader};
use devstack::node::{Node, quantity};
use devstack::traffic::{LogSpec, Sender, reorg_with_logs};
use serde_json::Value;

/// keccak256("Transfer(address,address,uint256)").
const TRANSFER: &str = "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef";
/// keccak256("Approval(address,address,uint256)").
const APPROVAL: &str = "8c5be1e5ebec7d5bd14f71427d1e84f3dd0314c0f7b2291e5b200ac8c7c3b925";

const ERC20: &str = r#"[
  {"type":"event","name":"Transfer","anonymous":false,"inputs":[
    {"name":"from","type":"address","indexed":true},
    {"name":"to","type":"address","indexed":true},
    {"name":"value","type":"uint256","indexed":false}]},
  {"type":"event","name":"Approval","anonymous":false,"inputs":[
    {"name":"owner","type":"address","indexed":true},
    {"name":"spender","type":"address","indexed":true},
    {"name":"value","type":"uint256","indexed":false}]}
]"#;

const ERC721: &str = r#"{"contractName":"Nft","abi":[
  {"type":"event","name":"Transfer","anonymous":false,"inputs":[
    {"name":"from","type":"address","indexed":true},
    {"name":"to","type":"address","indexed":true},
    {"name":"tokenId","type":"uint256","indexed":true}]}
]}"#;

fn word(hex_str: &str) -> [u8; 32] {
    let mut w = [0u8; 32];
    let b = hex::decode(hex_str).expect("hex");
    w[32 - b.len()..].copy_from_slice(&b);
    w
}

fn address_word(byte: u8) -> [u8; 32] {
    let mut w = [0u8; 32];
    w[12..].fill(byte);
    w
}

fn erc20(selector: &str, from: u8, to: u8, value: [u8; 32]) -> LogSpec {
    LogSpec {
        topics: vec![word(selector), address_word(from), address_word(to)],
        data: value.to_vec(),
    }
}

fn erc721(from: u8, to: u8, token: [u8; 32]) -> LogSpec {
    LogSpec {
        topics: vec![word(TRANSFER), address_word(from), address_word(to), token],
        data: vec![],
    }
}

/// A 256-bit big-endian unsigned integer in decimal, by long division.
fn decimal(be: &[u8]) -> String {
    let mut n = be.to_vec();
    let mut digits = Vec::new();
    while n.iter().any(|b| *b != 0) {
        let mut rem = 0u32;
        for b in n.iter_mut() {
            let cur = (rem << 8) | u32::from(*b);
            *b = (cur / 10) as u8;
            rem = cur % 10;
        }
        digits.push(b'0' + rem as u8);
    }
    if digits.is_empty() {
        digits.push(b'0');
    }
    digits.reverse();
    String::from_utf8(digits).expect("digits")
}

fn bytes_of(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string").trim_start_matches("0x")).expect("hex")
}

/// The decoded topics of this test: ERC-20 Transfer, Approval, ERC-721 Transfer.
struct Topics {
    erc20: String,
    approval: String,
    erc721: String,
}

/// What each decoded topic must hold, from the node's logs decoded by hand: per topic, key →
/// the record's fields as JSON.
fn expected(node: &Node, topics: &Topics) -> HashMap<String, BTreeMap<String, Value>> {
    let mut out: HashMap<String, BTreeMap<String, Value>> = HashMap::new();
    for t in [&topics.erc20, &topics.approval, &topics.erc721] {
        out.insert(t.clone(), BTreeMap::new());
    }
    let head = node.head().expect("head");
    let mut stamps = HashMap::new();
    for log in node.logs(0, head).expect("logs") {
        let t: Vec<Vec<u8>> = log["topics"]
            .as_array()
            .expect("topics")
            .iter()
            .map(bytes_of)
            .collect();
        let data = bytes_of(&log["data"]);
        let Some(first) = t.first().map(hex::encode) else {
            continue;
        };
        let addr = |w: &[u8]| format!("0x{}", hex::encode(&w[12..]));
        let (topic, names, amount) = match (first.as_str(), t.len(), data.len()) {
            (TRANSFER, 3, 32) => (&topics.erc20, ["from", "to", "value"], decimal(&data)),
            (APPROVAL, 3, 32) => (
                &topics.approval,
                ["owner", "spender", "value"],
                decimal(&data),
            ),
            (TRANSFER, 4, 0) => (&topics.erc721, ["from", "to", "tokenId"], decimal(&t[3])),
            _ => continue,
        };
        let number = quantity(&log["blockNumber"]).expect("number");
        let ts = *stamps.entry(number).or_insert_with(|| {
            quantity(&node.block(number).expect("block")["timestamp"]).expect("ts") * 1000
        });
        let tx = log["transactionHash"].as_str().expect("tx").to_owned();
        let index = quantity(&log["logIndex"]).expect("index");
        let mut fields = BTreeMap::new();
        fields.insert("chain_id".into(), Value::from(31337));
        fields.insert("block_number".into(), Value::from(number));
        fields.insert("block_hash".into(), log["blockHash"].clone());
        fields.insert("block_timestamp".into(), Value::from(ts));
        fields.insert("transaction_hash".into(), Value::from(tx.clone()));
        fields.insert(
            "transaction_index".into(),
            Value::from(quantity(&log["transactionIndex"]).expect("tx index")),
        );
        fields.insert("log_index".into(), Value::from(index));
        fields.insert("address".into(), log["address"].clone());
        fields.insert(names[0].into(), Value::from(addr(&t[1])));
        fields.insert(names[1].into(), Value::from(addr(&t[2])));
        fields.insert(names[2].into(), Value::from(amount));
        out.get_mut(topic).expect("topic").insert(
            format!("31337:{tx}:{index}"),
            Value::Object(fields.into_iter().collect()),
        );
    }
    out
}

/// Every record of `topic`, values decoded by fastavro with `schema`: (key, offset, fields
/// or `None` for a tombstone).
fn read_topic(brokers: &str, topic: &str, schema: &Value) -> Vec<(String, i64, Option<Value>)> {
    let mut records: Vec<Record> = Vec::new();
    TopicReader::new(brokers, topic)
        .expect("reader")
        .undecoded()
        .read_to_end(&mut records, READ_DEADLINE)
        .expect("read");
    let dir = tempdir();
    let (schema_path, values_path) = (dir.path().join("schema.json"), dir.path().join("values"));
    std::fs::write(&schema_path, schema.to_string()).expect("write");
    let values: Vec<String> = records
        .iter()
        .filter_map(|r| r.raw.as_ref().map(hex::encode))
        .collect();
    std::fs::write(&values_path, values.join("\n") + "\n").expect("write");
    let python = devstack::tool("ETHABI_PYTHON").expect("ETHABI_PYTHON");
    let out = Command::new(python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../scripts/eth_abi_ref.py"
        ))
        .args([
            "read",
            schema_path.to_str().expect("p"),
            values_path.to_str().expect("p"),
        ])
        .output()
        .expect("fastavro");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut decoded = String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("json"))
        .collect::<Vec<_>>()
        .into_iter();
    records
        .into_iter()
        .map(|r| {
            let value = r
                .raw
                .as_ref()
                .map(|_| decoded.next().expect("one per value"));
            (r.key, r.offset, value)
        })
        .collect()
}

/// The compacted view: the latest value per key.
fn compacted(records: &[(String, i64, Option<Value>)]) -> BTreeMap<String, Value> {
    let mut view = BTreeMap::new();
    for (key, _, value) in records {
        match value {
            Some(v) => view.insert(key.clone(), v.clone()),
            None => view.remove(key),
        };
    }
    view
}

fn schemas(config: &std::path::Path) -> HashMap<String, Value> {
    let out = Command::new(BIN)
        .args(["schemas", "--config", config.to_str().expect("path")])
        .output()
        .expect("ingestor schemas");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("json line");
            (
                v["topic"].as_str().expect("topic").to_owned(),
                v["schema"].clone(),
            )
        })
        .collect()
}

/// Each decoded topic's compacted view equals what the node's logs decode to by hand.
fn assert_topics_match_node(
    brokers: &str,
    node: &Node,
    topics: &Topics,
    schemas: &HashMap<String, Value>,
) -> HashMap<String, Vec<(String, i64, Option<Value>)>> {
    let want = expected(node, topics);
    let mut all = HashMap::new();
    for (topic, want) in &want {
        let records = read_topic(brokers, topic, &schemas[topic]);
        let view = compacted(&records);
        let keys: Vec<_> = view.keys().collect();
        let want_keys: Vec<_> = want.keys().collect();
        assert_eq!(keys, want_keys, "keys of {topic}");
        for (key, value) in &view {
            let fields: BTreeMap<String, Value> = value
                .as_object()
                .expect("record")
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let want_fields: BTreeMap<String, Value> = want[key]
                .as_object()
                .expect("record")
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            assert_eq!(fields, want_fields, "{topic} {key}");
        }
        all.insert(topic.clone(), records);
    }
    all
}

fn decode_failures(service: &devstack::service::Service) -> f64 {
    let addr = service.health_addr().expect("health address");
    let (code, text) = http_get(&addr, "/metrics");
    assert_eq!(code, 200);
    text.lines()
        .filter(|l| l.starts_with("ethhook_decode_failures_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn erc20_and_erc721_transfers_land_on_their_topics_and_reorgs_retract_them() {
    let mut s = Stack::start(61, 2);
    let brokers = s.brokers();
    std::fs::write(s.dir.path().join("erc20.json"), ERC20).expect("abi");
    std::fs::write(s.dir.path().join("erc721.json"), ERC721).expect("abi");
    let base = s.topic();
    let topics = Topics {
        erc20: format!("{base}.Transfer"),
        approval: format!("{base}.Approval"),
        erc721: format!("{base}.NftTransfer"),
    };
    let chain_topic = format!("topic = {base:?}");
    let events = [
        "[[chains.events]]".to_owned(),
        "abi = \"erc20.json\"".into(),
        "names = [\"Transfer\"]".into(),
        format!("topic = {:?}", topics.erc20),
        "[[chains.events]]".into(),
        "abi = \"erc20.json\"".into(),
        "names = [\"Approval\"]".into(),
        format!("topic = {:?}", topics.approval),
        "[[chains.events]]".into(),
        "abi = \"erc721.json\"".into(),
        format!("topic = {:?}", topics.erc721),
    ];
    let mut extra: Vec<&str> = vec![&chain_topic];
    extra.extend(events.iter().map(String::as_str));
    let toml = s.config(&extra);
    let (mut service, _, _) = start_and_wait_for(s.dir.path(), &brokers, &toml, &base, s.history);
    let schemas = schemas(&service.config);

    // One block: ERC-20 Transfer and Approval and ERC-721 Transfer, exact extremes included.
    let max = [0xff; 32];
    s.sender
        .block(&[
            vec![
                erc20(TRANSFER, 0x11, 0x22, word("0f4240")), // 1000000
                erc721(0x11, 0x33, word("07")),
                erc20(APPROVAL, 0x11, 0x44, max),
            ],
            vec![erc20(TRANSFER, 0x22, 0x11, max), erc721(0x33, 0x11, max)],
        ])
        .expect("block");
    assert_view_matches_node(&brokers, &base, &s.node, 31337);
    let before = assert_topics_match_node(&brokers, &s.node, &topics, &schemas);
    assert_eq!(before[&topics.erc20].len(), 2);
    assert_eq!(before[&topics.erc721].len(), 2);
    assert_eq!(before[&topics.approval].len(), 1);
    assert_eq!(decode_failures(&service), 0.0, "no failure counted");

    // A reorganisation replaces that block: its keys are tombstoned on their decoded topics
    // before any record of the new branch.
    let head = s.node.head().expect("head");
    let orphaned_keys: Vec<(String, String)> = before
        .iter()
        .flat_map(|(t, rs)| rs.iter().map(|r| (t.clone(), r.0.clone())))
        .collect();
    reorg_with_logs(
        &s.node,
        1,
        &[vec![
            erc20(TRANSFER, 0x55, 0x66, word("05")),
            erc721(0x55, 0x66, word("09")),
        ]],
    )
    .expect("reorg");
    Sender::new(s.node.clone())
        .expect("sender")
        .block(&[vec![erc20(APPROVAL, 0x66, 0x77, word("2a"))]])
        .expect("block on the new branch");
    assert_eq!(s.node.head().expect("head"), head + 1);
    assert_view_matches_node(&brokers, &base, &s.node, 31337);
    let after = assert_topics_match_node(&brokers, &s.node, &topics, &schemas);
    for (topic, key) in &orphaned_keys {
        let records = &after[topic];
        let tombstone = records
            .iter()
            .find(|r| &r.0 == key && r.2.is_none())
            .unwrap_or_else(|| panic!("no tombstone for {key} on {topic}"));
        let first_new = records
            .iter()
            .filter(|r| {
                r.2.as_ref()
                    .is_some_and(|v| v["block_number"].as_u64() >= Some(head))
            })
            .filter(|r| !orphaned_keys.iter().any(|(_, k)| k == &r.0))
            .map(|r| r.1)
            .min();
        if let Some(first_new) = first_new {
            assert!(
                tombstone.1 < first_new,
                "{topic}: tombstone of {key} after the new branch"
            );
        }
    }
    for topic in [&topics.erc20, &topics.erc721] {
        assert!(
            after[topic].iter().any(|r| r.2.is_none()),
            "{topic}: the orphaned records were tombstoned"
        );
    }
    assert_eq!(decode_failures(&service), 0.0);

    // A log with the ERC-20 Transfer selector the ABI cannot decode (64 bytes of data where
    // the value takes 32): on the raw topic only, counted and logged.
    let bad = LogSpec {
        topics: vec![word(TRANSFER), address_word(1), address_word(2)],
        data: vec![7; 64],
    };
    // (A sender of its own: the one above moved the account's nonce.)
    Sender::new(s.node.clone())
        .expect("sender")
        .block(&[vec![bad]])
        .expect("block");
    assert_view_matches_node(&brokers, &base, &s.node, 31337);
    assert_topics_match_node(&brokers, &s.node, &topics, &schemas);
    wait_for_log(&service, "does not decode as `Transfer`");
    assert_eq!(decode_failures(&service), 1.0);
    stop_cleanly(&mut service);
}
