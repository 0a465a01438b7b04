//! The `blocks` and `transactions` datasets end to end on anvil: a varied history caught
//! up, live blocks of every transaction shape, a reorganisation replacing the head's blocks
//! at the same height and one onto a shorter branch (which then grows), and a restart after
//! a reorganisation made while the service was down. Each time the compacted view of each dataset topic,
//! read by an independent consumer with the schema files, equals the node's
//! `eth_getBlockByNumber(n, true)` and `eth_getTransactionReceipt` field by field, and the
//! logs topic still equals the node's logs.

mod common;

use common::datasets::assert_datasets_match_node;
use common::*;
use devstack::service::Service;
use devstack::traffic::{Sender, reorg_with_logs};
use serde_json::json;

/// The dataset topics of a test: `(blocks, transactions)`.
fn dataset_topics(s: &Stack) -> (String, String) {
    let topic = s.topic();
    (format!("{topic}.blocks"), format!("{topic}.transactions"))
}

/// The config publishing every dataset, to this test's topics; `transactional` adds
/// exactly-once mode, `chain` more lines to the chain's table.
fn datasets_config(s: &Stack, transactional: bool, chain: &[&str]) -> String {
    let (blocks, transactions) = dataset_topics(s);
    let mut lines = vec![
        r#"datasets = ["logs", "blocks", "transactions"]"#.to_owned(),
        format!("blocks_topic = {blocks:?}"),
        format!("transactions_topic = {transactions:?}"),
    ];
    lines.extend(chain.iter().map(|l| (*l).to_owned()));
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let toml = s.config(&lines);
    match transactional {
        true => toml.replacen("[kafka]\n", "[kafka]\ntransactional = true\n", 1),
        false => toml,
    }
}

/// Every topic equals the node: logs, blocks and transactions.
fn assert_all_match_node(s: &Stack) {
    let (blocks, transactions) = dataset_topics(s);
    let brokers = s.brokers();
    assert_datasets_match_node(&brokers, &blocks, &transactions, &s.node, 31337);
    assert_view_matches_node(&brokers, &s.topic(), &s.node, 31337);
}

/// Rolls the node back by `depth` blocks (`anvil_rollback`): the head is lower and no block
/// replaces the ones removed yet.
fn rollback(s: &mut Stack, depth: u64) {
    s.node
        .call("anvil_rollback", json!([depth]))
        .expect("anvil_rollback");
    s.sender = Sender::new(s.node.clone()).expect("sender");
}

/// Catch-up, live blocks, a same-height reorganisation and a shorter new branch.
fn catch_up_live_and_reorgs(seed: u64, transactional: bool) {
    let mut s = Stack::start(seed, 5);
    let toml = datasets_config(&s, transactional, &[]);
    let (mut service, _, _) =
        start_and_wait_for(s.dir.path(), &s.brokers(), &toml, &s.topic(), s.history);
    assert_all_match_node(&s);

    // Live: every transaction shape, types 0x0, 0x1, 0x2 and 0x4 among them.
    mine_every_shape(&mut s.sender).expect("live blocks");
    assert_all_match_node(&s);

    // The last two blocks replaced by two others: same heights, other transactions.
    let head = s.node.head().expect("head");
    reorg_with_logs(&s.node, 2, &[s.shapes.logs(2), s.shapes.logs(1)]).expect("anvil_reorg");
    s.sender = Sender::new(s.node.clone()).expect("sender");
    assert_eq!(s.node.head().expect("head"), head);
    assert_all_match_node(&s);

    // A shorter branch: three blocks removed, one mined, then the branch grows past the
    // old head (a node whose head is below the last block published is waited for, not
    // taken for a reorganisation).
    mine_every_shape(&mut s.sender).expect("live blocks");
    rollback(&mut s, 3);
    s.sender
        .block(&[s.shapes.logs(3)])
        .expect("a block on the shorter branch");
    mine_every_shape(&mut s.sender).expect("live blocks on the new branch");
    assert_all_match_node(&s);

    // `ingestor tail --dataset`, compacted, prints what the node has, field by field.
    let expected =
        common::datasets::expected_from_node(&s.node, 31337, s.node.head().expect("head"));
    for (dataset, want) in [
        ("blocks", &expected.blocks),
        ("transactions", &expected.transactions),
    ] {
        let lines = tail(
            &service,
            &["--dataset", dataset, "--from-beginning", "--format", "json"],
        );
        let mut view = devstack::datasets::View::new();
        for line in &lines {
            let v: serde_json::Value = serde_json::from_str(line).expect("json line");
            let key = v["key"].as_str().expect("key").to_owned();
            match v["log"].is_object() {
                true => view.insert(key, v["log"].clone()),
                false => view.remove(&key),
            };
        }
        let diff = common::datasets::differences(want, &view);
        assert!(
            diff.is_empty(),
            "tail --dataset {dataset}: {:#?}",
            &diff[..diff.len().min(10)]
        );
        let text = tail(&service, &["--dataset", dataset, "--from-beginning"]);
        let word = match dataset {
            "blocks" => "block ",
            _ => "tx ",
        };
        assert!(
            text.iter()
                .all(|l| l.starts_with(word) || l.starts_with("tombstone")),
            "{text:#?}"
        );
        assert_eq!(text.len(), lines.len());
    }

    stop_cleanly(&mut service);
}

/// Runs `ingestor tail` on the service's config; returns its stdout lines.
fn tail(service: &Service, args: &[&str]) -> Vec<String> {
    let out = std::process::Command::new(BIN)
        .arg("tail")
        .arg("--config")
        .arg(&service.config)
        .args(args)
        .output()
        .expect("run tail");
    assert!(
        out.status.success(),
        "tail: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn blocks_and_transactions_equal_the_node_through_catch_up_live_blocks_and_reorgs() {
    catch_up_live_and_reorgs(41, false);
}

#[test]
fn the_same_in_exactly_once_mode() {
    catch_up_live_and_reorgs(43, true);
}

/// `kill -9` after the history and live blocks are published; while the service is down the
/// last three blocks are replaced by a shorter branch of one, which then grows; the restart
/// must tombstone the orphaned transactions, which it knows only from reading its topics
/// back (of the three orphaned blocks, one has transactions but no logs, one is empty).
#[test]
fn a_reorganisation_while_down_is_retracted_after_a_restart() {
    let mut s = Stack::start(47, 3);
    // Checkpoints an hour apart: what the restart retracts is after its checkpoint.
    let toml = datasets_config(&s, false, &["checkpoint_interval_ms = 3600000"]);
    let (mut service, _, _) =
        start_and_wait_for(s.dir.path(), &s.brokers(), &toml, &s.topic(), s.history);
    mine_every_shape(&mut s.sender).expect("live blocks");
    assert_all_match_node(&s);
    kill_9(&mut service);

    rollback(&mut s, 3);
    s.sender
        .block(&[s.shapes.logs(2)])
        .expect("a block on the shorter branch");
    let mut service = Service::start(BIN.as_ref(), s.dir.path(), &toml, &[]).expect("restart");
    // The heights above the shorter branch are settled once the node reaches them again.
    mine_every_shape(&mut s.sender).expect("live blocks");
    assert_all_match_node(&s);
    stop_cleanly(&mut service);
}
