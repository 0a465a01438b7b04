//! Restarts: the ingestor killed with SIGKILL mid-stream resumes from its checkpoint, and a
//! broker restart (Kafka killed and started again on its data) is ridden out without exiting.
//! Each ends with the compacted view equal to the node's canonical chain.

mod common;

use std::time::Duration;

use common::*;
use devstack::anvil::Anvil;
use devstack::kafka::Kafka;
use devstack::proc::wait_for;
use devstack::service::Service;
use devstack::traffic::{LogShapes, Sender};

const DEBUG: &[(&str, &str)] = &[("RUST_LOG", "info,ingestor::events=debug")];

#[test]
fn killed_with_sigkill_mid_stream_it_resumes_from_the_checkpoint() {
    let stack = Stack::start(21, 40);
    let toml = stack.config(&[]);
    let (brokers, topic) = (stack.brokers(), stack.topic());
    let Stack {
        dir,
        anvil,
        mut sender,
        mut shapes,
        history,
        ..
    } = stack;
    let mut first = Service::start(BIN.as_ref(), dir.path(), &toml, DEBUG).expect("ingestor");

    // Kill it while it is still publishing: right after its first checkpoint, with live
    // blocks coming.
    wait_for("a first checkpoint", Duration::from_secs(120), || {
        first
            .process
            .log_text()
            .contains("checkpoint written")
            .then_some(())
    })
    .expect("checkpoint");
    sender
        .block(&[shapes.logs(40), shapes.logs(40)])
        .expect("live block");
    first.process.signal(libc::SIGKILL);
    assert_eq!(
        first
            .process
            .wait_exit(Duration::from_secs(30))
            .expect("exit"),
        None
    );

    // Blocks mined while it is down.
    for _ in 0..6 {
        sender
            .block(&[shapes.logs(7), shapes.logs(3)])
            .expect("block while down");
    }
    let second_dir = dir.path().join("second");
    std::fs::create_dir_all(&second_dir).expect("dir");
    let mut second = Service::start(BIN.as_ref(), &second_dir, &toml, DEBUG).expect("restart");
    assert_view_matches_node(&brokers, &topic, &anvil.node(), 31337);

    let log = second.process.log_text();
    let resumed = log
        .lines()
        .find(|l| l.contains("resuming chain"))
        .unwrap_or_default();
    let checkpoint: u64 = resumed
        .split("checkpoint=Some(")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no checkpoint: {resumed}"));
    // It resumes right after the checkpoint, not at start_block (0). Blocks after the
    // checkpoint that were already published are replayed with their records skipped.
    let first_delivered = log
        .lines()
        .find(|l| l.contains("block delivered"))
        .unwrap_or_default();
    assert!(
        first_delivered.contains(&format!(" block={} ", checkpoint + 1)),
        "the restart did not resume after checkpoint {checkpoint}: {first_delivered}"
    );
    assert!(history > 0);
    stop_cleanly(&mut second);
}

#[test]
fn a_broker_restart_is_ridden_out_and_nothing_is_lost() {
    let dir = tempdir();
    // A broker of its own: this test kills it.
    let mut kafka = Kafka::start(dir.path()).expect("kafka");
    let (brokers, names) = (kafka.brokers(), Names::new());
    let topic = names.topic(31337);
    let anvil = Anvil::start(31337, dir.path()).expect("anvil");
    let mut sender = Sender::new(anvil.node()).expect("sender");
    let mut shapes = LogShapes::new(23);
    let history = mine_history(&mut sender, &mut shapes, 6).expect("history");
    let toml = names.config(&brokers, &[fast_retry_entry(31337, anvil.ws_url())], "");
    let (mut service, _, _) = start_and_wait_for(dir.path(), &brokers, &toml, &topic, history);

    kafka.kill().expect("kafka killed");
    for _ in 0..4 {
        sender
            .block(&[shapes.logs(9), shapes.logs(2)])
            .expect("block while the broker is down");
    }
    // The follower keeps fetching until backpressure; the publisher's records wait.
    wait_for("the producer to notice", Duration::from_secs(60), || {
        let log = service.process.log_text();
        log.contains("Connection refused").then_some(())
    })
    .expect("the broker was down");
    kafka.restart().expect("kafka again, on its data");
    sender
        .block(&[shapes.logs(5)])
        .expect("block after the restart");

    assert_view_matches_node(&brokers, &topic, &anvil.node(), 31337);
    assert!(
        service.process.is_running(),
        "{}",
        service.process.log_tail(20)
    );
    stop_cleanly(&mut service);
}

#[test]
fn a_reorg_while_the_service_is_down_is_retracted_on_restart() {
    let stack = Stack::start(29, 6);
    let toml = stack.config(&[]);
    let (brokers, topic) = (stack.brokers(), stack.topic());
    let Stack {
        dir,
        node,
        mut shapes,
        history,
        ..
    } = stack;
    let (mut first, _, _) = start_and_wait_for(dir.path(), &brokers, &toml, &topic, history);
    assert_view_matches_node(&brokers, &topic, &node, 31337);
    // A clean stop writes the checkpoint at the head.
    stop_cleanly(&mut first);

    // While it is down, the last 2 blocks are replaced by a branch with other logs.
    devstack::traffic::reorg_with_logs(&node, 2, &[shapes.logs(3), shapes.logs(2)]).expect("reorg");
    Sender::new(node.clone())
        .expect("sender")
        .block(&[shapes.logs(4)])
        .expect("block on the new branch");

    let second_dir = dir.path().join("second");
    std::fs::create_dir_all(&second_dir).expect("dir");
    let mut second = Service::start(BIN.as_ref(), &second_dir, &toml, &[]).expect("restart");
    assert_view_matches_node(&brokers, &topic, &node, 31337);
    let log = second.process.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("chain reorganised") && l.contains("depth=2 ")),
        "{log}"
    );
    stop_cleanly(&mut second);
}
