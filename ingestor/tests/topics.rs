//! Topics an operator created otherwise: at start-up the service says what differs and what
//! it costs (warnings), or refuses (a checkpoint topic that is not compacted).

mod common;

use std::time::Duration;

use common::kafka::{create_topic, topic_config};
use common::*;
use devstack::service::Service;

fn expected(stack: &Stack) -> devstack::compare::Expected {
    let head = stack.node.head().expect("head");
    devstack::compare::expected_from_node(&stack.node, 31337, 0, head).expect("node")
}

/// Reads the chain topic until it holds as many records as the node has logs.
fn read_node_count(stack: &Stack) -> Vec<devstack::consumer::Record> {
    let want = expected(stack).len();
    let mut reader =
        devstack::consumer::TopicReader::new(&stack.brokers(), &stack.topic()).expect("reader");
    let mut records = Vec::new();
    reader
        .read_until(&mut records, READ_DEADLINE, |r| r.len() >= want)
        .expect("records");
    records
}

#[test]
fn existing_topics_that_differ_are_reported() {
    let stack = Stack::start(81, 4);
    create_topic(
        &stack.brokers(),
        &stack.topic(),
        2,
        &[
            ("cleanup.policy", "delete"),
            ("max.message.bytes", "1000000"),
        ],
    );
    let mut service =
        Service::start(BIN.as_ref(), stack.dir.path(), &stack.config(&[]), &[]).expect("ingestor");
    // Every record is published all the same (read until the node's count: the reader's
    // end-of-partition detection is only reliable with one partition).
    let records = read_node_count(&stack);
    let report = devstack::compare::compare(&expected(&stack), &records);
    assert!(report.is_clean(), "{report}");
    let log = service.process.log_text();
    for (setting, found) in [
        ("partitions", "2"),
        ("cleanup.policy", "delete"),
        ("max.message.bytes", "1000000"),
    ] {
        let line = format!(
            "topic=\"{}\" setting=\"{setting}\" found=\"{found}\"",
            stack.topic()
        );
        assert!(log.contains(&line), "{line} in {log}");
    }
    stop_cleanly(&mut service);

    // A checkpoint topic that is not compacted is refused.
    let deleting = format!("{}.delete", stack.names.checkpoints());
    create_topic(
        &stack.brokers(),
        &deleting,
        1,
        &[("cleanup.policy", "delete")],
    );
    let toml = stack.config(&[]).replace(
        &format!("checkpoint_topic = {:?}", stack.names.checkpoints()),
        &format!("checkpoint_topic = {deleting:?}"),
    );
    let mut refused = Service::start(BIN.as_ref(), stack.dir.path(), &toml, &[]).expect("ingestor");
    let code = refused
        .process
        .wait_exit(Duration::from_secs(60))
        .expect("exits");
    let log = refused.process.log_text();
    let last = log.lines().last().unwrap_or_default();
    assert_eq!(code, Some(1), "{log}");
    assert!(
        last.contains(&format!("topic `{deleting}`"))
            && last.contains("cleanup.policy is `delete`"),
        "{last}"
    );
}

/// The settings the service gives the topics it creates, and `redpanda/topics.sh` gives
/// them too: compacted, tombstones kept a week, the chain topic's segments rolled daily and
/// the checkpoint topic's hourly.
fn assert_created_settings(brokers: &str, chain_topic: &str, checkpoints: &str) {
    for (topic, segment_ms) in [(chain_topic, "86400000"), (checkpoints, "3600000")] {
        for (name, want) in [
            ("cleanup.policy", "compact"),
            ("delete.retention.ms", "604800000"),
            ("max.message.bytes", "16777216"),
            ("segment.ms", segment_ms),
        ] {
            assert_eq!(topic_config(brokers, topic, name), want, "{topic}: {name}");
        }
    }
}

/// Java's `Utils.murmur2` (the Kafka Java client's default partitioner hash).
fn java_murmur2(data: &[u8]) -> i32 {
    const M: u32 = 0x5bd1_e995;
    let mut h: u32 = 0x9747_b28c ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        for (i, b) in rest.iter().enumerate() {
            h ^= u32::from(*b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Kafka's own test vectors (`UtilsTest.testMurmur2`).
#[test]
fn java_murmur2_matches_kafkas_vectors() {
    for (key, want) in [
        ("21", -973_932_308),
        ("foobar", -790_332_482),
        ("a-little-bit-long-string", -985_981_536),
        ("a-little-bit-longer-string", -1_486_304_829),
        (
            "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
            -58_897_971,
        ),
        ("abc", 479_470_107),
    ] {
        assert_eq!(java_murmur2(key.as_bytes()), want, "{key}");
    }
}

/// With several partitions, every key lands where a Java producer (or Kafka Connect) would
/// put it: `toPositive(murmur2(key)) % partitions`.
#[test]
fn keys_are_partitioned_as_java_clients_do() {
    let stack = Stack::start(83, 8);
    let toml = stack
        .config(&[])
        .replace("[kafka]\n", "[kafka]\ntopic_partitions = 3\n");
    let mut service = Service::start(BIN.as_ref(), stack.dir.path(), &toml, &[]).expect("ingestor");
    let records = read_node_count(&stack);
    let report = devstack::compare::compare(&expected(&stack), &records);
    assert_eq!(
        report.missing.len() + report.extra.len() + report.mismatched.len(),
        0,
        "{report}"
    );
    let mut used = std::collections::BTreeSet::new();
    for r in &records {
        let want = (java_murmur2(r.key.as_bytes()) & 0x7fff_ffff) % 3;
        assert_eq!(r.partition, want, "{}", r.key);
        used.insert(r.partition);
    }
    assert_eq!(used.len(), 3, "keys spread over every partition");
    stop_cleanly(&mut service);
    assert_created_settings(&stack.brokers(), &stack.topic(), &stack.names.checkpoints());
}

/// `redpanda/topics.sh`, run as an operator would against the real broker (with Kafka's own
/// topic tool where rpk is not installed), creates topics the service takes without a
/// single warning, with the compaction settings the service gives its own.
#[test]
fn topics_made_by_the_operators_script_are_what_the_service_expects() {
    let stack = Stack::start(83, 4);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../redpanda/topics.sh");
    let topic = stack.topic();
    let prefix = topic.trim_end_matches("31337");
    let out = std::process::Command::new("bash")
        .args([script, "31337"])
        .env("REPLICAS", "1")
        .env("CHECKPOINT_TOPIC", stack.names.checkpoints())
        .env("TOPIC_PREFIX", prefix)
        .env("DATASETS", "blocks transactions")
        .env("BOOTSTRAP_SERVERS", stack.brokers())
        .env("PATH", "/usr/bin:/bin") // no rpk: Kafka's own tool
        .output()
        .expect("topics.sh");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains(&format!("created {topic}")), "{said}");
    assert!(
        said.contains(&format!("created {}", stack.names.checkpoints())),
        "{said}"
    );
    // The datasets' topics under the names the service publishes them to by default.
    let datasets = ["evm.blocks.31337", "evm.transactions.31337"];
    for t in datasets {
        assert!(said.contains(&format!("created {t}")), "{said}");
    }

    let config = stack.config(&[r#"datasets = ["logs", "blocks", "transactions"]"#]);
    let mut service =
        Service::start(BIN.as_ref(), stack.dir.path(), &config, &[]).expect("ingestor");
    let records = read_node_count(&stack);
    let report = devstack::compare::compare(&expected(&stack), &records);
    assert!(report.is_clean(), "{report}");
    stop_cleanly(&mut service);
    let log = service.process.log_text();
    assert!(!log.contains("setting="), "no topic setting differs: {log}");
    assert_created_settings(&stack.brokers(), &stack.topic(), &stack.names.checkpoints());
    for t in datasets {
        assert_created_settings(&stack.brokers(), t, &stack.names.checkpoints());
    }
}
