//! Decoded events without the chain topic (`raw = false`), on a real anvil and Kafka: the
//! decoded topics equal the node's decodable logs field by field through a reorganisation
//! (the orphaned keys tombstoned before the new branch), and through `kill -9` rounds with
//! a small reorg window, so that the start-up read-back's search by block number skips the
//! older records: no ghost, nothing produced twice, in both modes. The chain topic is never
//! created.

mod common;

use std::process::Command;
use std::time::Duration;

use common::decoded::*;
use common::*;
use devstack::traffic::{LogSpec, Sender, reorg_with_logs};
use rdkafka::consumer::{BaseConsumer, Consumer};

/// The decoded-events config of [`config`] with `raw = false` (the chain's topic still
/// named, to show it is not created), `lines` added to its chain table and `top` to
/// `[kafka]`.
fn raw_off(s: &Stack, lines: &[&str], top: &[&str]) -> (String, Topics) {
    let (toml, topics) = config(s);
    let named = format!("topic = {:?}\n", s.topic());
    assert!(toml.contains(&named), "{toml}");
    let chain = std::iter::once("raw = false")
        .chain(lines.iter().copied())
        .fold(named.clone(), |t, l| format!("{t}{l}\n"));
    let kafka = top
        .iter()
        .fold("[kafka]\n".to_owned(), |t, l| format!("{t}{l}\n"));
    let toml = toml
        .replacen(&named, &chain, 1)
        .replacen("[kafka]\n", &kafka, 1);
    (toml, topics)
}

/// Whether the broker lists `topic` (asking for every topic: asking for one by name is
/// where a broker that creates topics on demand would create it).
fn topic_exists(brokers: &str, topic: &str) -> bool {
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("consumer");
    let metadata = consumer
        .fetch_metadata(None, Duration::from_secs(30))
        .expect("metadata");
    metadata.topics().iter().any(|t| t.name() == topic)
}

#[test]
fn decoded_topics_alone_equal_the_node_through_a_reorg_and_the_chain_topic_is_never_made() {
    let mut s = Stack::start(83, 2);
    let brokers = s.brokers();
    let (toml, topics) = raw_off(&s, &[], &[]);
    let mut service = devstack::service::Service::start(BIN.as_ref(), s.dir.path(), &toml, &[])
        .expect("ingestor");
    let schemas = schemas(&service.config);
    mine_the_transfers(&mut s);
    let before = assert_topics_match_node(&brokers, &s.node, &topics, &schemas);
    assert_eq!(before[&topics.erc20].len(), 2);
    assert_eq!(before[&topics.erc721].len(), 2);
    assert_eq!(before[&topics.approval].len(), 1);

    // A reorganisation replaces that block: its keys are tombstoned on their decoded topics
    // before any record of the new branch.
    let (head, orphaned) = reorg_the_transfers(&s, &before);
    let after = assert_topics_match_node(&brokers, &s.node, &topics, &schemas);
    assert_tombstoned_before_the_new_branch(&after, &orphaned, head);
    for (topic, records) in &after {
        assert!(
            produced_twice(records).is_empty(),
            "{topic}: produced twice"
        );
    }
    assert!(
        !topic_exists(&brokers, &s.topic()),
        "the chain topic {} was created",
        s.topic()
    );
    for topic in [&topics.erc20, &topics.approval, &topics.erc721] {
        assert!(topic_exists(&brokers, topic), "{topic}");
    }

    // `check-config` says so; `tail` without an event or topic names the way out.
    let out = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&service.config)
        .output()
        .expect("check-config");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("(31337 -> decoded events only)"), "{text}");
    let out = Command::new(BIN)
        .args(["tail", "--config"])
        .arg(&service.config)
        .arg("--from-beginning")
        .output()
        .expect("tail");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("has `raw = false`: it publishes no chain topic"),
        "{err}"
    );
    stop_cleanly(&mut service);
    assert!(!topic_exists(&brokers, &s.topic()));
}

#[test]
fn kill_9_rounds_without_the_chain_topic_leave_no_ghost_and_no_duplicate() {
    crash_rounds(false);
}

/// The same in exactly-once mode (the reader is `read_committed`).
#[test]
fn kill_9_rounds_without_the_chain_topic_in_exactly_once_mode() {
    crash_rounds(true);
}

/// `kill -9` rounds with a reorg window of 3 blocks and 1 block in flight (a search margin
/// of 5 blocks) and a look-back of 1 record, so that what a restart knows of its decoded
/// topics is what the search by block number found. Each round mines a block of 120
/// transfers, waits until the decoded topics hold it, kills the service, and while it is
/// down orphans that block (odd rounds: it must be retracted from the keys read back, or
/// they stay as ghosts) or leaves it canonical (even rounds), then mines 2 more blocks. In
/// idempotent mode the checkpoint is an hour apart, so the block is always after it (its
/// replay must skip every record read back, or they are produced twice); in exactly-once
/// mode it is committed with its checkpoint, and the orphaned one is in the window.
fn crash_rounds(transactional: bool) {
    let s = Stack::start(if transactional { 97 } else { 89 }, 2);
    let brokers = s.brokers();
    let mut chain = vec!["reorg_window_blocks = 3", "max_blocks_in_flight = 1"];
    let mut top = vec!["resume_lookback_records = 1"];
    match transactional {
        true => top.push("transactional = true"),
        false => chain.push("checkpoint_interval_ms = 3600000"),
    }
    let (toml, topics) = raw_off(&s, &chain, &top);
    let mut service = devstack::service::Service::start(BIN.as_ref(), s.dir.path(), &toml, &[])
        .expect("ingestor");
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
    let mut orphaned = 0;
    for round in 0..6u8 {
        Sender::new(s.node.clone())
            .expect("sender")
            .block(&transfers(0x10 + round))
            .expect("block");
        assert_topics_match_node(&brokers, &s.node, &topics, &schemas);
        kill_9(&mut service);
        if round % 2 == 1 {
            let before = s.node.head().expect("head");
            reorg_with_logs(
                &s.node,
                1,
                &[vec![
                    erc721(0x30 + round, 1, word("0b")),
                    erc20(APPROVAL, 0x30 + round, 2, word("0c")),
                ]],
            )
            .expect("reorg while down");
            assert_eq!(s.node.head().expect("head"), before);
            orphaned += 1;
        }
        let mut sender = Sender::new(s.node.clone()).expect("sender");
        for i in 0..2 {
            sender
                .block(&[vec![erc20(TRANSFER, 0x20 + round, i + 1, word("07"))]])
                .expect("block while down");
        }
        service = devstack::service::Service::start(BIN.as_ref(), s.dir.path(), &toml, &[])
            .expect("restart");
        // The blocks mined while down come after the replay: once their keys are there,
        // so is everything the restart publishes for the blocks before them.
        assert_topics_match_node(&brokers, &s.node, &topics, &schemas);
    }
    let all = assert_topics_match_node(&brokers, &s.node, &topics, &schemas);
    let mut tombstones = 0;
    for (topic, records) in &all {
        assert!(
            produced_twice(records).is_empty(),
            "{topic}: produced twice"
        );
        tombstones += records.iter().filter(|r| r.2.is_none()).count();
    }
    assert_eq!(
        tombstones,
        orphaned * 120,
        "every orphaned record retracted once"
    );
    assert!(!topic_exists(&brokers, &s.topic()));
    stop_cleanly(&mut service);
}
