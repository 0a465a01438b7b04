//! Decoded events end to end, on a real anvil and Kafka: ERC-20 `Transfer` and `Approval`
//! and ERC-721 `Transfer` logs (one selector, another number of indexed arguments) emitted in
//! one block land on their own topics and nowhere else, no failure counted; a reorganisation
//! tombstones the orphaned keys on their decoded topics before the new branch's records;
//! a log the ABI cannot decode stays on the raw topic, counted. Records are read back by an
//! independent consumer, decoded by fastavro with the schemas `ingestor schemas` prints, and
//! compared field by field with the node's raw logs decoded by hand (exact integers).

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use common::decoded::*;
use common::*;
use devstack::consumer::TopicReader;
use devstack::node::{Node, quantity};
use devstack::traffic::{LogSpec, Sender, reorg_with_logs};
use serde_json::Value;

/// `cleanup.policy` of `topic`, as the broker describes it.
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
    mine_the_transfers(&mut s);
    assert_view_matches_node(&brokers, &base, &s.node, 31337);
    let before = assert_topics_match_node(&brokers, &s.node, &topics, &schemas);
    assert_eq!(before[&topics.erc20].len(), 2);
    assert_eq!(before[&topics.erc721].len(), 2);
    assert_eq!(before[&topics.approval].len(), 1);
    assert_eq!(decode_failures(&service), 0.0, "no failure counted");
    for topic in [&topics.erc20, &topics.approval, &topics.erc721] {
        assert_eq!(
            common::kafka::topic_config(&brokers, topic, "cleanup.policy"),
            "compact",
            "{topic}"
        );
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
    let (head, orphaned) = reorg_the_transfers(&s, &before);
    assert_view_matches_node(&brokers, &base, &s.node, 31337);
    let after = assert_topics_match_node(&brokers, &s.node, &topics, &schemas);
    assert_tombstoned_before_the_new_branch(&after, &orphaned, head);
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
        kill_9(&mut service);
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
