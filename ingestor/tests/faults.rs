//! A node that lies or disconnects: nothing wrong is published and nothing is lost.

mod common;

use std::time::Duration;

use common::proxy::WsProxy;
use common::*;
use devstack::anvil::Anvil;
use devstack::proc::wait_for;
use devstack::service::Service;
use devstack::traffic::{LogShapes, Sender};

#[test]
fn answers_with_a_wrong_block_hash_are_retried_never_published() {
    let dir = tempdir();
    let (brokers, names) = (shared_brokers(), Names::new());
    let anvil = Anvil::start(31337, dir.path()).expect("anvil");
    let proxy = WsProxy::start(anvil.port);
    let mut sender = Sender::new(anvil.node()).expect("sender");
    let mut shapes = LogShapes::new(5);
    mine_history(&mut sender, &mut shapes, 8).expect("history");

    // Lie in catch-up (ranged eth_getLogs) ...
    proxy.corrupt_next(3);
    let toml = names.config(&brokers, &[fast_retry_entry(31337, proxy.ws_url())], "");
    let mut service = Service::start(BIN.as_ref(), dir.path(), &toml, &[]).expect("ingestor");
    wait_for("three lies told", Duration::from_secs(60), || {
        (proxy.corrupted() == 3).then_some(())
    })
    .expect("lies");
    assert_topic_matches_node(&brokers, &names.topic(31337), &anvil.node(), 31337);

    // ... and live (eth_getLogs {blockHash}).
    proxy.corrupt_next(2);
    for _ in 0..3 {
        sender.block(&[shapes.logs(4)]).expect("live block");
    }
    wait_for("two more lies told", Duration::from_secs(60), || {
        (proxy.corrupted() == 5).then_some(())
    })
    .expect("lies");
    assert_topic_matches_node(&brokers, &names.topic(31337), &anvil.node(), 31337);

    // Every lie was refused (the topic equals the node), and counted: in catch-up one
    // refusal asks a whole range again, with the lies it held; live, each block's lie is
    // refused on its own.
    let refused = metric(&service, "ethhook_incomplete_answers_total", "chain-31337");
    assert!(
        refused.is_some_and(|n| n >= 3.0),
        "{refused:?} refusals\n{}",
        service.process.log_tail(30)
    );
    stop_cleanly(&mut service);
}

#[test]
fn blocks_mined_while_the_connection_is_cut_are_caught_up() {
    let dir = tempdir();
    let (brokers, names) = (shared_brokers(), Names::new());
    let anvil = Anvil::start(31337, dir.path()).expect("anvil");
    let proxy = WsProxy::start(anvil.port);
    let mut sender = Sender::new(anvil.node()).expect("sender");
    let mut shapes = LogShapes::new(9);
    let history = mine_history(&mut sender, &mut shapes, 6).expect("history");

    let toml = names.config(&brokers, &[fast_retry_entry(31337, proxy.ws_url())], "");
    let (mut service, _, _) =
        start_and_wait_for(dir.path(), &brokers, &toml, &names.topic(31337), history);

    proxy.cut();
    for _ in 0..5 {
        sender
            .block(&[shapes.logs(6), shapes.logs(2)])
            .expect("block during the cut");
    }
    sender.node().mine(2).expect("empty blocks during the cut");
    // The follower noticed the cut and is retrying against a refusing proxy.
    wait_for("a failed reconnect", Duration::from_secs(60), || {
        service
            .process
            .log_text()
            .contains("error_type=\"connect\"")
            .then_some(())
    })
    .expect("reconnect attempts");
    proxy.restore();

    assert_topic_matches_node(&brokers, &names.topic(31337), &anvil.node(), 31337);
    assert!(
        service
            .process
            .log_text()
            .matches("connected to node")
            .count()
            >= 2
    );
    stop_cleanly(&mut service);
}
