//! Reorganisations on a real anvil (`anvil_reorg`): orphaned records are retracted with
//! tombstones, the compacted view equals the node's canonical chain, and a reorg deeper
//! than the window stops the chain with a clear error.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use devstack::consumer::{Record, TopicReader};
use devstack::node::Node;
use devstack::traffic::{LogShapes, Sender, reorg_with_logs};

/// Keys published from blocks with the given hashes.
fn keys_of_blocks(records: &[Record], hashes: &[String]) -> HashSet<String> {
    records
        .iter()
        .filter(|r| {
            r.log
                .as_ref()
                .is_some_and(|l| hashes.contains(&l.block_hash))
        })
        .map(|r| r.key.clone())
        .collect()
}

fn tombstones(records: &[Record]) -> HashSet<String> {
    records
        .iter()
        .filter(|r| r.log.is_none())
        .map(|r| r.key.clone())
        .collect()
}

/// Reorganises the last `depth` blocks (published to `topic`) into a branch that emits other logs, extends it by
/// one block, and checks the topic: its compacted view equals the node, and every key of
/// the orphaned blocks got a tombstone.
fn reorg_and_check(node: &Node, shapes: &mut LogShapes, brokers: &str, topic: &str, depth: u64) {
    let head = node.head().expect("head");
    let orphaned = block_hashes(node, head - depth + 1, head);
    let mut branch: Vec<_> = (0..depth).map(|i| shapes.logs(2 + i as usize)).collect();
    if depth > 2 {
        branch[1].clear(); // an empty block inside the new branch
    }
    // Everything from the old branch is on the topic before the reorg.
    let mut reader = TopicReader::new(brokers, topic).expect("reader");
    let mut before = Vec::new();
    reader
        .read_until(&mut before, READ_DEADLINE, |rs| {
            let hashes: HashSet<&str> = rs
                .iter()
                .filter_map(|r| r.log.as_ref().map(|l| l.block_hash.as_str()))
                .collect();
            orphaned.iter().all(|h| hashes.contains(h.as_str()))
        })
        .expect("old branch published");
    reorg_with_logs(node, depth, &branch).expect("anvil_reorg");
    Sender::new(node.clone())
        .expect("sender")
        .block(&[shapes.logs(3)])
        .expect("block on the new branch");
    assert_ne!(
        block_hashes(node, head, head)[0],
        orphaned[orphaned.len() - 1]
    );

    assert_view_matches_node(brokers, topic, node, 31337);
    let mut all = Vec::new();
    TopicReader::new(brokers, topic)
        .expect("reader")
        .read_to_end(&mut all, READ_DEADLINE)
        .expect("read");
    let orphaned_keys = keys_of_blocks(&all, &orphaned);
    assert!(!orphaned_keys.is_empty(), "the orphaned blocks had logs");
    let retracted = tombstones(&all);
    let missing: Vec<_> = orphaned_keys.difference(&retracted).collect();
    assert!(
        missing.is_empty(),
        "orphaned keys without a tombstone: {missing:?}"
    );
}

#[test]
fn reorgs_of_depth_1_and_3_are_retracted_and_the_view_equals_the_node() {
    let mut s = Stack::start(13, 5);
    let (brokers, topic) = (s.brokers(), s.topic());
    let (mut service, _, _) = start_and_wait_for(
        s.dir.path(),
        &brokers,
        &s.config(&[]),
        &s.topic(),
        s.history,
    );

    for _ in 0..3 {
        let txs = [s.shapes.logs(5), s.shapes.logs(1)];
        s.sender.block(&txs).expect("live block");
    }
    reorg_and_check(&s.node, &mut s.shapes, &brokers, &topic, 1);
    reorg_and_check(&s.node, &mut s.shapes, &brokers, &topic, 3);

    let log = service.process.log_text();
    for depth in [1, 3] {
        assert!(
            log.lines()
                .any(|l| l.contains("chain reorganised") && l.contains(&format!("depth={depth} "))),
            "no reorg of depth {depth} logged:\n{}",
            service.process.log_tail(40)
        );
    }
    stop_cleanly(&mut service);
}

#[test]
fn a_reorg_deeper_than_the_window_stops_the_chain_with_a_clear_error() {
    let mut s = Stack::start(17, 5);
    let brokers = s.brokers();
    let toml = s.config(&["reorg_window_blocks = 2"]);
    let (mut service, mut reader, mut records) =
        start_and_wait_for(s.dir.path(), &brokers, &toml, &s.topic(), s.history);
    let (node, shapes) = (&s.node, &mut s.shapes);

    let head = node.head().expect("head");
    reorg_with_logs(node, 3, &[shapes.logs(2), shapes.logs(2), shapes.logs(2)]).expect("reorg");
    Sender::new(node.clone())
        .expect("sender")
        .block(&[shapes.logs(3)])
        .expect("block on the fork");
    let fork = block_hashes(node, head - 2, head + 1);

    let code = service
        .process
        .wait_exit(Duration::from_secs(60))
        .expect("ingestor stops by itself");
    let log = service.process.log_text();
    let last = log.lines().last().unwrap_or_default();
    assert_eq!(code, Some(1), "{last}");
    assert!(
        last.contains(&format!(
            "chain reorganised deeper than the 2 blocks remembered below block {head}"
        )),
        "{last}"
    );
    reader
        .read_to_end(&mut records, Duration::from_secs(30))
        .expect("read");
    let forked = keys_of_blocks(&records, &fork);
    assert!(
        forked.is_empty(),
        "records from the fork were published: {forked:?}"
    );
}
