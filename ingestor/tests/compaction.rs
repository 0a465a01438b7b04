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

// Ignored until its segments roll another way: with indexes this small, Kafka 4.1's cleaner
// sometimes merges cleaned segments into one whose index overflows ("Attempt to append to
// a full index"), marks the partition uncleanable and never cleans it again (seen in about
// half the clean-clone runs). Run it with `scripts/test.sh --test compaction -- --ignored`.
#[test]
#[ignore = "Kafka's cleaner can overflow the test's tiny segment indexes; see the comment"]
fn the_log_cleaner_leaves_exactly_the_chain_after_reorganisations() {
    let mut s = Stack::start(61, 8);
    let (brokers, topic) = (s.brokers(), s.topic());
    // Compaction within seconds. The active segment is never cleaned, so segments roll
    // often: every batch gets an index entry and an index holds 8 (a time-based roll
    // would wait for the records' timestamps, the blocks', which anvil runs ahead of the
    // clock). Any dirty share is worth a cleaning, and a tombstone goes at the cleaning
    // after the one that found it.
    create_topic(
        &brokers,
        &topic,
        1,
        &[
            ("cleanup.policy", "compact"),
            ("max.message.bytes", "16777216"),
            ("index.interval.bytes", "0"),
            ("segment.index.bytes", "96"),
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
