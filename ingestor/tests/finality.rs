//! `confirmations = N` and `finality = "safe" | "finalized"`: blocks are published only once
//! they are deep enough, and then all of them.

mod common;

use common::*;
use devstack::anvil::Anvil;
use devstack::proc::free_port;
use devstack::service::Service;
use devstack::traffic::{LogShapes, Sender};

/// Mines blocks with logs up to the head, starts the ingestor with `setting`, and checks the
/// topic holds exactly the blocks `lag` behind the head; then mines `lag` empty blocks and
/// checks the rest arrived.
fn holds_back(setting: &str, lag: u64) {
    let dir = tempdir();
    let (brokers, names) = (shared_brokers(), Names::new());
    // safe = head - 2, finalized = head - 4.
    let port = free_port().expect("port");
    let anvil =
        Anvil::start_with(31337, port, dir.path(), &["--slots-in-an-epoch", "2"]).expect("anvil");
    let node = anvil.node();
    let mut sender = Sender::new(node.clone()).expect("sender");
    let mut shapes = LogShapes::new(41);
    for _ in 0..8 {
        sender.block(&[shapes.logs(3)]).expect("block with logs");
    }
    let mut entry = fast_retry_entry(31337, anvil.ws_url());
    entry.extra.push(setting.into());
    let toml = names.config(&brokers, &[entry], "");
    let mut service = Service::start(BIN.as_ref(), dir.path(), &toml, &[]).expect("ingestor");

    let head = node.head().expect("head");
    assert_view_matches_node_up_to(&brokers, &names.topic(31337), &node, 31337, head - lag);
    node.mine(lag).expect("empty blocks");
    assert_view_matches_node(&brokers, &names.topic(31337), &node, 31337);
    stop_cleanly(&mut service);
}

#[test]
fn confirmations_hold_blocks_back_until_deep_enough() {
    holds_back("confirmations = 3", 3);
}

#[test]
fn finality_safe_follows_the_safe_block() {
    holds_back("finality = \"safe\"", 2);
}

#[test]
fn finality_finalized_follows_the_finalized_block() {
    holds_back("finality = \"finalized\"", 4);
}
