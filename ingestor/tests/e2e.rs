//! End to end on real processes: two anvil chains, Apache Kafka, the ingestor binary, and an
//! independent consumer that compares every record with the node's own eth_getLogs.

mod common;

use std::time::Duration;

use common::*;
use devstack::anvil::Anvil;
use devstack::service::{ChainEntry, Service};
use devstack::traffic::{LogShapes, Sender};

#[test]
fn two_chains_history_then_live_match_the_node_field_by_field() {
    let dir = tempdir();
    let (brokers, names) = (shared_brokers(), Names::new());
    let chains = [
        Anvil::start(1337, dir.path()).expect("anvil"),
        Anvil::start(4242, dir.path()).expect("anvil"),
    ];
    let mut shapes = LogShapes::new(7);
    let mut senders: Vec<_> = chains
        .iter()
        .map(|a| Sender::new(a.node()).expect("sender"))
        .collect();

    // History, mined before the ingestor starts.
    let mut history = Vec::new();
    for sender in &mut senders {
        history.push(mine_history(sender, &mut shapes, 24).expect("history"));
    }

    // Small ranges and a low live threshold so that catch-up uses several concurrent ranges.
    let entries: Vec<_> = chains
        .iter()
        .map(|a| {
            let mut e = ChainEntry::new(a.chain_id, a.ws_url());
            e.extra = vec![
                "backfill_range_blocks = 5".into(),
                "live_threshold_blocks = 3".into(),
            ];
            e
        })
        .collect();
    // A tiny producer queue, so that backpressure (QueueFull: wait, never drop) is exercised.
    let toml = names
        .config(&brokers, &entries, "shutdown_timeout_ms = 20000")
        .replace("[kafka]\n", "[kafka]\nqueue_max_messages = 64\n");
    let mut service = Service::start(BIN.as_ref(), dir.path(), &toml, &[]).expect("ingestor");

    // Wait (on a condition) until the history is on the topics, then mine live blocks.
    for (anvil, count) in chains.iter().zip(&history) {
        let mut reader = service
            .reader(&brokers, &names.topic(anvil.chain_id), &[])
            .unwrap_or_else(|e| panic!("reader: {e:#}"));
        let mut records = Vec::new();
        reader
            .read_until(&mut records, READ_DEADLINE, |r| r.len() >= *count)
            .expect("history published");
    }
    for round in 0..6 {
        for sender in &mut senders {
            if round == 2 {
                sender.node().mine(1).expect("empty live block");
            }
            sender
                .block(&[shapes.logs(3 + round), shapes.logs(2)])
                .expect("live block");
        }
    }

    for anvil in &chains {
        let topic = names.topic(anvil.chain_id);
        let report = assert_topic_matches_node(&brokers, &topic, &anvil.node(), anvil.chain_id);
        eprintln!("{topic}: {report}");
        // An independent implementation reads every record: fastavro, checking the
        // single-object header against the specification's fingerprint.
        let n = assert_fastavro_reads_every_record(&brokers, &topic, &anvil.node(), anvil.chain_id);
        eprintln!("{topic}: {n} records decoded by fastavro, equal to the node");
    }
    let code = service
        .stop(Duration::from_secs(60))
        .expect("ingestor exits");
    assert_eq!(code, Some(0), "clean shutdown exits 0");
}
