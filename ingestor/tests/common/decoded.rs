//! Decoded events' test helpers: the ABIs and logs the tests emit, what each decoded topic
//! must hold (the node's logs decoded by hand, exact integers), and the topics read back by
//! an independent consumer, values decoded by fastavro with the schemas `ingestor schemas`
//! prints.

use std::collections::{BTreeMap, HashMap};
use std::process::Command;

use devstack::consumer::{Record, TopicReader};
use devstack::node::{Node, quantity};
use devstack::traffic::{ERC20_ABI, LogSpec, Sender, reorg_with_logs};
use serde_json::Value;

use super::{BIN, READ_DEADLINE, Stack, decimal, tempdir, topics_and_data};

/// keccak256("Transfer(address,address,uint256)").
pub const TRANSFER: &str = "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef";
/// keccak256("Approval(address,address,uint256)").
pub const APPROVAL: &str = "8c5be1e5ebec7d5bd14f71427d1e84f3dd0314c0f7b2291e5b200ac8c7c3b925";

pub const ERC721: &str = r#"{"contractName":"Nft","abi":[
  {"type":"event","name":"Transfer","anonymous":false,"inputs":[
    {"name":"from","type":"address","indexed":true},
    {"name":"to","type":"address","indexed":true},
    {"name":"tokenId","type":"uint256","indexed":true}]}
]}"#;

pub fn word(hex_str: &str) -> [u8; 32] {
    let mut w = [0u8; 32];
    let b = hex::decode(hex_str).expect("hex");
    w[32 - b.len()..].copy_from_slice(&b);
    w
}

pub fn address_word(byte: u8) -> [u8; 32] {
    let mut w = [0u8; 32];
    w[12..].fill(byte);
    w
}

pub fn erc20(selector: &str, from: u8, to: u8, value: [u8; 32]) -> LogSpec {
    LogSpec {
        topics: vec![word(selector), address_word(from), address_word(to)],
        data: value.to_vec(),
    }
}

pub fn erc721(from: u8, to: u8, token: [u8; 32]) -> LogSpec {
    LogSpec {
        topics: vec![word(TRANSFER), address_word(from), address_word(to), token],
        data: vec![],
    }
}

/// The decoded topics of this test: ERC-20 Transfer, Approval, ERC-721 Transfer.
pub struct Topics {
    pub erc20: String,
    pub approval: String,
    pub erc721: String,
}

/// What each decoded topic must hold, from the node's logs decoded by hand: per topic, key →
/// the record's fields as JSON.
pub fn expected(node: &Node, topics: &Topics) -> HashMap<String, BTreeMap<String, Value>> {
    let mut out: HashMap<String, BTreeMap<String, Value>> = HashMap::new();
    for t in [&topics.erc20, &topics.approval, &topics.erc721] {
        out.insert(t.clone(), BTreeMap::new());
    }
    let head = node.head().expect("head");
    let mut stamps = HashMap::new();
    for log in node.logs(0, head).expect("logs") {
        let (t, data) = topics_and_data(&log);
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
/// or `None` for a tombstone). With `registry_id`, every value must be framed `0x00` + that
/// id; its body is then read as a single-object value of `schema` would be.
pub fn read_topic(
    brokers: &str,
    topic: &str,
    schema: &Value,
    registry_id: Option<u32>,
) -> Vec<(String, i64, Option<Value>)> {
    let mut records: Vec<Record> = Vec::new();
    TopicReader::new(brokers, topic)
        .expect("reader")
        .undecoded()
        .read_to_end(&mut records, READ_DEADLINE)
        .expect("read");
    let dir = tempdir();
    let (schema_path, values_path) = (dir.path().join("schema.json"), dir.path().join("values"));
    std::fs::write(&schema_path, schema.to_string()).expect("write");
    let single_object = |raw: &Vec<u8>| -> Vec<u8> {
        let Some(id) = registry_id else {
            return raw.clone();
        };
        let mut header = vec![0u8];
        header.extend_from_slice(&id.to_be_bytes());
        assert_eq!(raw[..5], header[..], "{topic}: 0x00 + schema id {id}");
        let fp = ingestor::encode::fingerprint::fingerprint(&schema.to_string()).expect("fp");
        let mut v = vec![0xc3, 0x01];
        v.extend_from_slice(&fp);
        v.extend_from_slice(&raw[5..]);
        v
    };
    let values: Vec<String> = records
        .iter()
        .filter_map(|r| r.raw.as_ref().map(|raw| hex::encode(single_object(raw))))
        .collect();
    if values.is_empty() {
        // Nothing for fastavro to read (a topic not written yet, or tombstones only).
        return records
            .into_iter()
            .map(|r| (r.key, r.offset, None))
            .collect();
    }
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
pub fn compacted(records: &[(String, i64, Option<Value>)]) -> BTreeMap<String, Value> {
    let mut view = BTreeMap::new();
    for (key, _, value) in records {
        match value {
            Some(v) => view.insert(key.clone(), v.clone()),
            None => view.remove(key),
        };
    }
    view
}

pub fn schemas(config: &std::path::Path) -> HashMap<String, Value> {
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
pub fn assert_topics_match_node(
    brokers: &str,
    node: &Node,
    topics: &Topics,
    schemas: &HashMap<String, Value>,
) -> HashMap<String, Vec<(String, i64, Option<Value>)>> {
    assert_topics_match_node_framed(brokers, node, topics, schemas, &HashMap::new())
}

/// [`assert_topics_match_node`] for values framed with the registry ids `ids` (by topic).
pub fn assert_topics_match_node_framed(
    brokers: &str,
    node: &Node,
    topics: &Topics,
    schemas: &HashMap<String, Value>,
    ids: &HashMap<String, u32>,
) -> HashMap<String, Vec<(String, i64, Option<Value>)>> {
    let want = expected(node, topics);
    let mut all = HashMap::new();
    for (topic, want) in &want {
        // A block's decoded records are acknowledged with its chain-topic records, not
        // necessarily readable at the same instant: read again until the keys are there.
        let started = std::time::Instant::now();
        let (records, view) = loop {
            let records = read_topic(brokers, topic, &schemas[topic], ids.get(topic).copied());
            let view = compacted(&records);
            if view.keys().eq(want.keys()) || started.elapsed() > READ_DEADLINE {
                break (records, view);
            }
        };
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
        // A tombstone only where the key was.
        for (i, r) in records.iter().enumerate() {
            if r.2.is_none() {
                assert!(
                    records[..i].iter().any(|e| e.0 == r.0 && e.2.is_some()),
                    "{topic}: a tombstone for {} it never held",
                    r.0
                );
            }
        }
        all.insert(topic.clone(), records);
    }
    all
}

/// Writes the ABIs into the stack's folder; the config with the three events, each on a
/// topic of this test's own, and those topics.
pub fn config(s: &Stack) -> (String, Topics) {
    std::fs::write(s.dir.path().join("erc20.json"), ERC20_ABI).expect("abi");
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
    (s.config(&extra), topics)
}

/// Keys with the same value twice in a row on a topic.
pub fn produced_twice(records: &[(String, i64, Option<Value>)]) -> Vec<String> {
    let mut last: HashMap<&str, &Option<Value>> = HashMap::new();
    records
        .iter()
        .filter(|r| last.insert(&r.0, &r.2) == Some(&r.2))
        .map(|r| r.0.clone())
        .collect()
}

/// Decoded records read back, by topic: key, offset and value (`None`: a tombstone).
pub type ByTopic = HashMap<String, Vec<(String, i64, Option<Value>)>>;

/// One block of ERC-20 `Transfer` and `Approval` and ERC-721 `Transfer` logs, exact extremes
/// (`2**256 - 1`) included: 2 records on each `Transfer` topic, 1 on the `Approval` one.
pub fn mine_the_transfers(s: &mut Stack) {
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
}

/// Replaces the head block (the one [`mine_the_transfers`] made, read back as `before`) with
/// one of other transfers, and mines an `Approval` block on top; returns the old head and
/// the keys it orphaned, by topic.
pub fn reorg_the_transfers(s: &Stack, before: &ByTopic) -> (u64, Vec<(String, String)>) {
    let head = s.node.head().expect("head");
    let orphaned = before
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
    (head, orphaned)
}

/// Each `orphaned` key has a tombstone on its topic in `after`, before any record of a
/// block from `head` on that is not an orphaned key.
pub fn assert_tombstoned_before_the_new_branch(
    after: &ByTopic,
    orphaned: &[(String, String)],
    head: u64,
) {
    for (topic, key) in orphaned {
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
            .filter(|r| !orphaned.iter().any(|(_, k)| k == &r.0))
            .map(|r| r.1)
            .min();
        if let Some(first_new) = first_new {
            assert!(
                tombstone.1 < first_new,
                "{topic}: tombstone of {key} after the new branch"
            );
        }
    }
}
