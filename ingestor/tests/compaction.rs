//! Kafka's log cleaner on a chain topic: after history, live blocks and reorganisations of
//! depth 1, 2 and 3, compaction leaves exactly the chain. A plain consumer reading from the
//! beginning finds every canonical log once, equal to the node field by field, in order,
//! and neither a retracted key nor a tombstone.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::kafka::create_topic;
use common::*;
use devstack::compare::{compare, expected_from_node};
use devstack::consumer::{Record, TopicReader};
use devstack::proc::wait_for;
use devstack::traffic::{Sender, reorg_with_logs};

/// Every record of `topic` from the beginning to its end, once it holds `keys`.
fn read_all(brokers: &str, topic: &str, keys: &HashSet<String>) -> anyhow::Result<Vec<Record>> {
    let mut reader = TopicReader::new(brokers, topic)?;
    let mut records = Vec::new();
    reader.read_until(&mut records, Duration::from_secs(30), |rs| {
        let seen: HashSet<&str> = rs.iter().map(|r| r.key.as_str()).collect();
        keys.iter().all(|k| seen.contains(k.as_str()))
    })?;
    reader.read_to_end(&mut records, Duration::from_secs(30))?;
    Ok(records)
}

#[test]
fn the_log_cleaner_leaves_exactly_the_chain_after_reorganisations() {
    let mut s = Stack::start(61, 8);
    let (brokers, topic) = (s.brokers(), s.topic());
    // Compaction within seconds. The active segment is never cleaned, so segments roll by
    // time, often: Kafka rolls before an append whose largest timestamp is more than
    // `segment.ms` past the segment's first batch's, and a log's timestamp is its block's,
    // at least a second past the previous block's. So each block starts a segment. (A
    // tombstone carries the clock's time; anvil's block times are never behind the clock,
    // so the next block still rolls. Rolling by size instead needs indexes so small that
    // Kafka's cleaner overflows one when it merges cleaned segments, and stops cleaning.)
    // Any dirty share is worth a cleaning, and a tombstone goes at the cleaning after the
    // one that found it.
    create_topic(
        &brokers,
        &topic,
        1,
        &[
            ("cleanup.policy", "compact"),
            ("max.message.bytes", "16777216"),
            ("segment.ms", "100"),
            ("min.cleanable.dirty.ratio", "0.001"),
            ("delete.retention.ms", "0"),
        ],
    );
    let (mut service, _, _) =
        start_and_wait_for(s.dir.path(), &brokers, &s.config(&[]), &topic, s.history);

    for depth in 1..=3u64 {
        let txs = [s.shapes.logs(5), s.shapes.logs(2)];
        for _ in 0..depth {
            s.sender.block(&txs).expect("live block");
        }
        // The branch to be orphaned is published before the reorganisation.
        assert_view_matches_node(&brokers, &topic, &s.node, 31337);
        let branch: Vec<_> = (0..depth).map(|i| s.shapes.logs(1 + i as usize)).collect();
        reorg_with_logs(&s.node, depth, &branch).expect("anvil_reorg");
        // The reorganisation dropped some of the sender's transactions: its nonce too.
        s.sender = Sender::new(s.node.clone()).expect("sender");
        s.sender
            .block(&[s.shapes.logs(3)])
            .expect("block on the new branch");
        assert_view_matches_node(&brokers, &topic, &s.node, 31337);
    }
    let expected =
        expected_from_node(&s.node, 31337, 0, s.node.head().expect("head")).expect("node");
    let keys: HashSet<String> = expected.keys().cloned().collect();
    let before = read_all(&brokers, &topic, &keys).expect("the topic before cleaning");
    let retracted: HashSet<String> = before
        .iter()
        .filter(|r| r.log.is_none())
        .map(|r| r.key.clone())
        .collect();
    assert!(!retracted.is_empty(), "the reorganisations retracted keys");

    // Blocks keep coming (each append may roll a segment) until the cleaner has left
    // exactly the chain.
    let mut last = String::new();
    let cleaned = wait_for("the log cleaner", Duration::from_secs(180), || {
        s.sender.block(&[s.shapes.logs(1)]).ok()?;
        let expected = expected_from_node(&s.node, 31337, 0, s.node.head().ok()?).ok()?;
        let keys: HashSet<String> = expected.keys().cloned().collect();
        let records = read_all(&brokers, &topic, &keys).ok()?;
        let report = compare(&expected, &records);
        last = report.to_string();
        report.is_clean().then_some(records)
    })
    .unwrap_or_else(|e| panic!("{e}; last comparison: {last}"));
    let left: Vec<&String> = cleaned
        .iter()
        .map(|r| &r.key)
        .filter(|k| retracted.contains(*k))
        .collect();
    assert!(left.is_empty(), "retracted keys left: {left:?}");
    assert!(cleaned.iter().all(|r| r.log.is_some()), "no tombstone left");
    eprintln!(
        "{} records before cleaning ({} keys retracted), {} after: the chain",
        before.len(),
        retracted.len(),
        cleaned.len()
    );
    stop_cleanly(&mut service);
}
