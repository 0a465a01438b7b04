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
use std::time::Duration;

use common::*;
use devstack::consumer::{Record, TopicReader};
use devstack::node::{Node, quantity};
use devstack::traffic::{ERC20_ABI, LogSpec, Sender, reorg_with_logs};
use serde_json::Value;

/// keccak256("Transfer(address,address,uint256)").
const TRANSFER: &str = "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef";
/// keccak256("Approval(address,address,uint256)").
const APPROVAL: &str = "8c5be1e5ebec7d5bd14f71427d1e84f3dd0314c0f7b2291e5b200ac8c7c3b925";

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
fn read_topic(
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
    assert_topics_match_node_framed(brokers, node, topics, schemas, &HashMap::new())
}

/// [`assert_topics_match_node`] for values framed with the registry ids `ids` (by topic).
fn assert_topics_match_node_framed(
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

/// `cleanup.policy` of `topic`, as the broker describes it.
fn cleanup_policy(brokers: &str, topic: &str) -> String {
    use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let described = runtime
        .block_on(admin.describe_configs(
            [&ResourceSpecifier::Topic(topic)],
            &AdminOptions::new().request_timeout(Some(Duration::from_secs(30))),
        ))
        .expect("describe");
    let resource = described
        .into_iter()
        .next()
        .expect("one")
        .expect("described");
    resource
        .entries
        .iter()
        .find(|e| e.name == "cleanup.policy")
        .and_then(|e| e.value.clone())
        .unwrap_or_default()
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

/// Writes the ABIs into the stack's folder; the config with the three events, each on a
/// topic of this test's own, and those topics.
fn config(s: &Stack) -> (String, Topics) {
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

#[test]
fn erc20_and_erc721_transfers_land_on_their_topics_and_reorgs_retract_them() {
    scenario(false);
}

/// The same in exactly-once mode: decoded records are in the block's transaction (the
/// reader is `read_committed`).
#[test]
fn the_same_in_exactly_once_mode() {
    scenario(true);
}

fn scenario(transactional: bool) {
    let mut s = Stack::start(61, 2);
    let brokers = s.brokers();
    let (toml, topics) = config(&s);
    let base = s.topic();
    let mut toml = toml;
    if transactional {
        toml = toml.replacen("[kafka]\n", "[kafka]\ntransactional = true\n", 1);
    }
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
    for topic in [&topics.erc20, &topics.approval, &topics.erc721] {
        assert_eq!(cleanup_policy(&brokers, topic), "compact", "{topic}");
    }
    // `ingestor tail --event Transfer` is ambiguous here (ERC-20's and ERC-721's share the
    // name and signature): one line naming both topics, not one of them silently.
    let out = Command::new(BIN)
        .args(["tail", "--config"])
        .arg(&service.config)
        .args(["--event", "Transfer", "--from-beginning"])
        .output()
        .expect("tail");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("is on several topics")
            && err.contains(&topics.erc20)
            && err.contains(&topics.erc721),
        "{err}"
    );
    // By topic, it prints them with their parameters by name.
    let out = Command::new(BIN)
        .args(["tail", "--config"])
        .arg(&service.config)
        .args(["--topic", &topics.erc20, "--from-beginning"])
        .output()
        .expect("tail");
    let text = String::from_utf8_lossy(&out.stdout);
    let want = format!(
        "Transfer from=0x{} to=0x{} value=1000000  block ",
        "11".repeat(20),
        "22".repeat(20)
    );
    assert!(text.lines().any(|l| l.starts_with(&want)), "{text}");
    let max = "115792089237316195423570985008687907853269984665640564039457584007913129639935";
    assert!(text.contains(&format!("value={max}")), "{text}");

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

/// The node's logs of block `n` as the service's log type.
fn node_logs(node: &Node, n: u64) -> Vec<ingestor::rpc::types::Log> {
    use ingestor::rpc::hex::{Address, B256};
    node.logs(n, n)
        .expect("logs")
        .iter()
        .map(|l| ingestor::rpc::types::Log {
            block_number: n,
            block_hash: B256::parse("h", l["blockHash"].as_str().expect("h")).expect("h"),
            transaction_hash: B256::parse("t", l["transactionHash"].as_str().expect("t"))
                .expect("t"),
            transaction_index: quantity(&l["transactionIndex"]).expect("i"),
            log_index: quantity(&l["logIndex"]).expect("i"),
            address: Address::parse("a", l["address"].as_str().expect("a")).expect("a"),
            topics: l["topics"]
                .as_array()
                .expect("topics")
                .iter()
                .map(|t| B256::parse("t", t.as_str().expect("t")).expect("t"))
                .collect(),
            data: topics_and_data(l).1,
        })
        .collect()
}

/// Produces, as the service would have, block `n`'s records: on the chain topic (`raw`)
/// or on the decoded topics (`!raw`), nothing else (no checkpoint): what a `kill -9`
/// between the two acknowledgements leaves.
fn produce_half(brokers: &str, config: &std::path::Path, node: &Node, n: u64, raw: bool) {
    use ingestor::decode::Routed;
    use ingestor::encode::{Encoder, Framing, header};
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let cfg = ingestor::config::load(config).expect("config");
    let chain = &cfg.chains[0];
    let ts = quantity(&node.block(n).expect("block")["timestamp"]).expect("ts");
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("producer");
    let encoder = Encoder::new(Framing::SingleObject).expect("encoder");
    for log in node_logs(node, n) {
        let key = ingestor::sink::record_key(31337, &log.transaction_hash, log.log_index);
        let mut out: Vec<(String, Vec<u8>)> = Vec::new();
        if raw {
            out.push((chain.topic(), encoder.encode(31337, ts, &log)));
        } else if let Routed::Decoded(bodies) = chain.catalog.route(31337, ts, &log) {
            for (i, body) in bodies {
                let e = &chain.catalog.events()[i];
                let mut v = header(&e.schema_json, Framing::SingleObject).expect("header");
                v.extend_from_slice(&body);
                out.push((e.topic.clone(), v));
            }
        }
        for (topic, value) in out {
            producer
                .send(
                    BaseRecord::to(&topic)
                        .key(&key)
                        .payload(&value)
                        .timestamp(ts as i64 * 1000),
                )
                .map_err(|(e, _)| e)
                .expect("send");
        }
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
}

/// Keys with the same value twice in a row on a topic.
fn produced_twice(records: &[(String, i64, Option<Value>)]) -> Vec<String> {
    let mut last: HashMap<&str, &Option<Value>> = HashMap::new();
    records
        .iter()
        .filter(|r| last.insert(&r.0, &r.2) == Some(&r.2))
        .map(|r| r.0.clone())
        .collect()
}

/// What a `kill -9` between the chain topic's acknowledgement and a decoded topic's leaves,
/// both ways round, made by hand while the service is stopped: block B's records on the
/// chain topic only (its block stays canonical), and block C's on its decoded topics only
/// (then C is orphaned). The restart publishes B's decoded records once, the chain topic's
/// not again, and tombstones C's decoded keys: no ghost, no duplicate.
#[test]
fn a_crash_between_the_two_acknowledgements_leaves_no_ghost_and_no_duplicate() {
    let mut s = Stack::start(67, 2);
    let brokers = s.brokers();
    let (toml, topics) = config(&s);
    let base = s.topic();
    let (mut service, _, _) = start_and_wait_for(s.dir.path(), &brokers, &toml, &base, s.history);
    let schemas = schemas(&service.config);
    s.sender
        .block(&[vec![
            erc20(TRANSFER, 1, 2, word("01")),
            erc721(1, 2, word("02")),
        ]])
        .expect("block A");
    assert_view_matches_node(&brokers, &base, &s.node, 31337);
    stop_cleanly(&mut service);

    let mut sender = Sender::new(s.node.clone()).expect("sender");
    sender
        .block(&[vec![
            erc20(TRANSFER, 3, 4, word("03")),
            erc721(3, 4, word("04")),
        ]])
        .expect("block B");
    let b = s.node.head().expect("head");
    produce_half(&brokers, &service.config, &s.node, b, true);
    sender
        .block(&[vec![
            erc20(TRANSFER, 5, 6, word("05")),
            erc20(APPROVAL, 5, 6, word("06")),
        ]])
        .expect("block C");
    let c = s.node.head().expect("head");
    produce_half(&brokers, &service.config, &s.node, c, false);
    let orphaned: Vec<String> = node_logs(&s.node, c)
        .iter()
        .map(|l| ingestor::sink::record_key(31337, &l.transaction_hash, l.log_index))
        .collect();
    reorg_with_logs(&s.node, 1, &[vec![erc721(7, 8, word("09"))]]).expect("reorg");

    let mut service =
        devstack::service::Service::start(BIN.as_ref(), s.dir.path(), &toml, &[]).expect("restart");
    Sender::new(s.node.clone())
        .expect("sender")
        .block(&[vec![erc20(TRANSFER, 9, 9, word("0a"))]])
        .expect("a block after the restart");
    assert_view_matches_node(&brokers, &base, &s.node, 31337);
    let all = assert_topics_match_node(&brokers, &s.node, &topics, &schemas);
    for (topic, records) in &all {
        assert!(
            produced_twice(records).is_empty(),
            "{topic}: produced twice"
        );
    }
    for key in &orphaned {
        let tombstoned: Vec<&String> = all
            .iter()
            .filter(|(_, rs)| rs.iter().any(|r| &r.0 == key && r.2.is_none()))
            .map(|(t, _)| t)
            .collect();
        assert_eq!(
            tombstoned.len(),
            1,
            "{key} of the orphaned block: tombstoned on {tombstoned:?}"
        );
    }
    let mut raw = Vec::new();
    TopicReader::new(&brokers, &base)
        .expect("reader")
        .read_to_end(&mut raw, READ_DEADLINE)
        .expect("read");
    assert!(
        devstack::compare::produced_twice(&raw).is_empty(),
        "the chain topic: block B's records were not produced again"
    );
    let b_keys: Vec<String> = node_logs(&s.node, b)
        .iter()
        .map(|l| ingestor::sink::record_key(31337, &l.transaction_hash, l.log_index))
        .collect();
    for key in &b_keys {
        assert_eq!(
            raw.iter().filter(|r| &r.key == key).count(),
            1,
            "{key} once"
        );
    }
    stop_cleanly(&mut service);
}

/// With a Schema Registry (Apicurio's Confluent-compatible API), each event's schema is
/// registered under its topic's subject and its values carry that id; the schema the
/// registry holds decodes them (fastavro) equal to the node.
#[test]
fn with_a_registry_each_event_is_registered_under_its_topic_subject() {
    let mut s = Stack::start(73, 2);
    let brokers = s.brokers();
    let (toml, topics) = config(&s);
    let registry = devstack::apicurio::Apicurio::start(s.dir.path()).expect("apicurio");
    let toml = format!(
        "{toml}\n[schema_registry]\nurl = \"{}\"\n",
        registry.ccompat_url()
    );
    let base = s.topic();
    let mut service = devstack::service::Service::start(BIN.as_ref(), s.dir.path(), &toml, &[])
        .expect("ingestor");
    s.sender
        .block(&[vec![
            erc20(TRANSFER, 1, 2, [0xff; 32]),
            erc20(APPROVAL, 1, 3, word("64")),
            erc721(1, 2, word("03")),
        ]])
        .expect("block");
    let mut reader = TopicReader::new(&brokers, &base)
        .expect("reader")
        .with_registry(&registry.ccompat_url());
    assert_reader_matches_node(&mut reader, &s.node, 31337, s.dir.path());
    let printed = schemas(&service.config);
    let mut ids = HashMap::new();
    let mut from_registry = HashMap::new();
    for topic in [&topics.erc20, &topics.approval, &topics.erc721] {
        // Registering it again gives the id the subject already holds for it.
        let id = registry
            .register(&format!("{topic}-value"), &printed[topic].to_string())
            .expect("registered under the topic's subject");
        let held: Value =
            serde_json::from_str(&registry.schema(id).expect("schema by id")).expect("json");
        from_registry.insert(topic.clone(), held);
        ids.insert(topic.clone(), id);
    }
    assert_ne!(
        ids[&topics.erc20], ids[&topics.erc721],
        "one schema per event"
    );
    assert_topics_match_node_framed(&brokers, &s.node, &topics, &from_registry, &ids);
    stop_cleanly(&mut service);
}

/// `kill -9` rounds with decoded topics: each round mines a block of 120 transfers and kills
/// the service at once (wherever it is: fetching, between the chain topic's and the decoded
/// topics' acknowledgements, before the checkpoint), mines more while it is down (the second
/// round reorganising the last block as well), and restarts it. At the end every decoded
/// topic equals the node, nothing was produced twice on any topic, and every tombstone is
/// for a key its topic held.
#[test]
fn kill_9_rounds_leave_no_ghost_and_no_duplicate_on_decoded_topics() {
    let s = Stack::start(79, 3);
    let brokers = s.brokers();
    let (toml, topics) = config(&s);
    let base = s.topic();
    let (mut service, _, _) = start_and_wait_for(s.dir.path(), &brokers, &toml, &base, s.history);
    let schemas = schemas(&service.config);
    let transfers = |seed: u8| -> Vec<Vec<LogSpec>> {
        (0..3u8)
            .map(|t| {
                (0..40u8)
                    .map(|i| match i % 3 {
                        0 => erc20(TRANSFER, seed, t + 1, word(&format!("{:02x}", i + 1))),
                        1 => erc721(seed, t + 1, word(&format!("{:02x}", i + 1))),
                        _ => erc20(APPROVAL, seed, t + 1, [i; 32]),
                    })
                    .collect()
            })
            .collect()
    };
    // Each round starts with everything so far published (the history, then the view
    // checked after each restart).
    for round in 0..3u8 {
        Sender::new(s.node.clone())
            .expect("sender")
            .block(&transfers(0x10 + round))
            .expect("block");
        service.process.signal(libc::SIGKILL);
        assert_eq!(
            service
                .process
                .wait_exit(Duration::from_secs(30))
                .expect("exit"),
            None
        );
        let mut sender = Sender::new(s.node.clone()).expect("sender");
        sender
            .block(&[vec![erc20(TRANSFER, 0x20 + round, 1, word("07"))]])
            .expect("block while down");
        if round == 1 {
            reorg_with_logs(
                &s.node,
                1,
                &[vec![
                    erc721(0x30, 1, word("0b")),
                    erc20(APPROVAL, 0x30, 2, word("0c")),
                ]],
            )
            .expect("reorg while down");
        }
        service = devstack::service::Service::start(BIN.as_ref(), s.dir.path(), &toml, &[])
            .expect("restart");
        assert_view_matches_node(&brokers, &base, &s.node, 31337);
    }
    let all = assert_topics_match_node(&brokers, &s.node, &topics, &schemas);
    for (topic, records) in &all {
        assert!(
            produced_twice(records).is_empty(),
            "{topic}: produced twice"
        );
    }
    let mut raw = Vec::new();
    TopicReader::new(&brokers, &base)
        .expect("reader")
        .read_to_end(&mut raw, READ_DEADLINE)
        .expect("read");
    assert!(devstack::compare::produced_twice(&raw).is_empty());
    stop_cleanly(&mut service);
}
