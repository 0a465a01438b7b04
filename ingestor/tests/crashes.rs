//! Crashes in the default (idempotent) mode: `kill -9` at the worst moments, the chain
//! changing while the service is down, then a restart. Each test ends comparing the
//! compacted view with the node (0 missing, 0 extra, 0 mismatched) and counting the records
//! produced twice on the raw topic (0).

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use devstack::bench::transfer_like;
use devstack::compare::{compare, compare_compacted, expected_from_node, produced_twice};
use devstack::consumer::{Record, TopicReader};
use devstack::node::Node;
use devstack::service::Service;
use devstack::traffic::{LogShapes, LogSpec, Sender, reorg_with_logs};

const DEBUG: &[(&str, &str)] = &[("RUST_LOG", "info,ingestor::events=debug")];

/// Reads on until `done` holds for the newest record.
fn read_until_last(
    reader: &mut TopicReader,
    all: &mut Vec<Record>,
    done: impl Fn(&Record) -> bool,
) {
    let from = all.len();
    reader
        .read_until(all, READ_DEADLINE, |rs| {
            rs[from..].iter().rev().take(1).any(&done)
        })
        .expect("record seen");
}

/// A reader of `topic` that sees a record as soon as the broker has it (no 500 ms fetch
/// wait).
fn fast_reader(brokers: &str, topic: &str) -> TopicReader {
    TopicReader::with_options(brokers, topic, &[("fetch.wait.max.ms", "1")]).expect("reader")
}

fn start(dir: &Path, name: &str, toml: &str) -> Service {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).expect("dir");
    Service::start(BIN.as_ref(), &d, toml, DEBUG).expect("ingestor")
}

/// Reads `reader` on until the compacted view of everything read equals the node, then to
/// the end; asserts the view is clean and nothing was produced twice.
fn assert_all_read_matches(reader: &mut TopicReader, all: &mut Vec<Record>, node: &Node) {
    let expected = expected_from_node(node, 31337, 0, node.head().expect("head")).expect("node");
    let mut checked = usize::MAX;
    let converged = reader.read_until(all, READ_DEADLINE, |rs| {
        if rs.len() == checked {
            return false;
        }
        checked = rs.len();
        compare_compacted(&expected, rs).is_clean()
    });
    if let Err(e) = converged {
        panic!("{e}; {}", compare_compacted(&expected, all));
    }
    reader.read_to_end(all, READ_DEADLINE).expect("to end");
    let view = compare_compacted(&expected, all);
    assert!(view.is_clean(), "compacted view: {view}");
    assert_eq!(view.records, expected.len());
    let twice = produced_twice(all);
    assert!(
        twice.is_empty(),
        "{} records produced twice, first {:?}",
        twice.len(),
        twice.first()
    );
}

fn large_block(shapes: &mut LogShapes) -> Vec<Vec<LogSpec>> {
    vec![shapes.logs(120), shapes.logs(120), shapes.logs(120)]
}

/// The count in the last log line containing `needle` of the field `field=N`.
fn field(log: &str, needle: &str, field: &str) -> Option<u64> {
    log.lines()
        .rfind(|l| l.contains(needle))?
        .split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{field}="))?.parse().ok())
}

#[test]
fn killed_as_a_large_block_appears_no_ghost_and_no_duplicate_survives() {
    let stack = Stack::start(41, 4);
    // With checkpoints an hour apart, every kill lands after the block's records and
    // before its checkpoint: the window a crash with default settings hits only by chance.
    let toml = stack.config(&["checkpoint_interval_ms = 3600000"]);
    let (brokers, topic) = (stack.brokers(), stack.topic());
    let Stack {
        dir,
        node,
        mut shapes,
        ..
    } = stack;
    let mut service = start(dir.path(), "run-0", &toml);
    let mut reader = fast_reader(&brokers, &topic);
    let mut all = Vec::new();
    assert_all_read_matches(&mut reader, &mut all, &node);

    // Odd rounds reorganise the block away while the service is down (ghosts to retract);
    // even rounds leave it canonical (a replay to skip).
    let (mut orphaned_rounds, mut replayed_rounds, mut hits) = (0, 0, 0);
    for round in 1..=8 {
        let mut sender = Sender::new(node.clone()).expect("sender");
        sender
            .block(&large_block(&mut shapes))
            .expect("large block");
        let fresh = node.head().expect("head") as i64;
        read_until_last(&mut reader, &mut all, |r| {
            r.log.as_ref().is_some_and(|l| l.block_number == fresh)
        });
        kill_9(&mut service);
        let reorganised = round % 2 == 1;
        if reorganised {
            reorg_with_logs(&node, 1, &[shapes.logs(5)]).expect("reorg");
        }
        service = start(dir.path(), &format!("run-{round}"), &toml);
        assert_all_read_matches(&mut reader, &mut all, &node);
        let log = service.process.log_text();
        let unconfirmed = field(&log, "resuming chain", "unconfirmed").expect("resume line");
        if unconfirmed > 0 && reorganised {
            assert!(
                log.contains("orphaned while it was down"),
                "round {round}: {}",
                service.process.log_tail(30)
            );
            orphaned_rounds += 1;
        }
        if unconfirmed > 0 && !reorganised {
            let round_hits: u64 = log
                .lines()
                .filter(|l| l.contains("block delivered"))
                .filter_map(|l| field(l, "", "dedup_hits"))
                .sum();
            assert!(round_hits > 0, "round {round}: the replay skipped nothing");
            hits += round_hits;
            replayed_rounds += 1;
        }
        eprintln!("round {round}: reorganised={reorganised} unconfirmed blocks={unconfirmed}");
    }
    eprintln!(
        "{orphaned_rounds} rounds retracted a block published after the checkpoint, {replayed_rounds} replayed one ({hits} records skipped)"
    );
    assert_eq!(
        (orphaned_rounds, replayed_rounds),
        (4, 4),
        "every round must crash after its block's records and before its checkpoint"
    );
    stop_cleanly(&mut service);
}

#[test]
fn killed_between_a_retraction_and_its_replacement_no_ghost_and_no_duplicate_survives() {
    let stack = Stack::start(43, 4);
    let toml = stack.config(&[]);
    let (brokers, topic) = (stack.brokers(), stack.topic());
    let Stack {
        dir,
        node,
        mut shapes,
        ..
    } = stack;
    let mut service = start(dir.path(), "run-0", &toml);
    let mut reader = fast_reader(&brokers, &topic);
    let mut all = Vec::new();
    for round in 1..=3 {
        let mut sender = Sender::new(node.clone()).expect("sender");
        sender
            .block(&large_block(&mut shapes))
            .expect("large block");
        assert_all_read_matches(&mut reader, &mut all, &node);
        // Replace it with another large block and extend the branch: the service retracts
        // 360 records, then publishes 300. It dies at the first tombstone.
        reorg_with_logs(&node, 1, &[shapes.logs(300)]).expect("reorg");
        node.mine(1).expect("mine");
        read_until_last(&mut reader, &mut all, |r| r.log.is_none());
        kill_9(&mut service);
        service = start(dir.path(), &format!("run-{round}"), &toml);
        assert_all_read_matches(&mut reader, &mut all, &node);
    }
    stop_cleanly(&mut service);
}

#[test]
fn killed_in_the_middle_of_a_200k_log_backfill_the_raw_topic_has_no_duplicate() {
    let dir = tempdir();
    let (brokers, names) = (shared_brokers(), Names::new());
    let anvil = devstack::anvil::Anvil::start(31337, dir.path()).expect("anvil");
    let node = anvil.node();
    let mut sender = Sender::new(node.clone()).expect("sender");
    let block: Vec<Vec<LogSpec>> = (0..4)
        .map(|t| (0..100).map(|i| transfer_like(t * 100 + i)).collect())
        .collect();
    for _ in 0..500 {
        sender.block(&block).expect("block");
    }
    let toml = names.config(&brokers, &[fast_retry_entry(31337, anvil.ws_url())], "");
    let mut service = start(dir.path(), "run-0", &toml);
    let mut reader = fast_reader(&brokers, &names.topic(31337));
    let mut all = Vec::new();
    reader
        .read_until(&mut all, READ_DEADLINE, |rs| rs.len() >= 100_000)
        .expect("half the backfill");
    kill_9(&mut service);
    let published = all.len();
    let mut service = start(dir.path(), "run-1", &toml);
    let expected = expected_from_node(&node, 31337, 0, node.head().expect("head")).expect("node");
    assert_eq!(expected.len(), 200_000);
    reader
        .read_until(&mut all, READ_DEADLINE, |rs| rs.len() >= expected.len())
        .expect("the rest");
    reader.read_to_end(&mut all, READ_DEADLINE).expect("to end");
    // The raw topic, not only the compacted view: every key exactly once.
    let report = compare(&expected, &all);
    assert!(report.is_clean(), "raw topic: {report}");
    let log = service.process.log_text();
    let skipped: u64 = log
        .lines()
        .filter(|l| l.contains("block delivered"))
        .filter_map(|l| field(l, "", "dedup_hits"))
        .sum();
    eprintln!(
        "killed with {published} records readable; the restart skipped {skipped} already published; resume: {}",
        log.lines()
            .find(|l| l.contains("resuming chain"))
            .unwrap_or_default()
    );
    stop_cleanly(&mut service);
}

/// Writes a first-format checkpoint (the one before 0.3, which listed every key) for the
/// node's block `tip`, with a window of its last 128 blocks, to `checkpoints`.
fn write_first_format_checkpoint(brokers: &str, checkpoints: &str, node: &Node, tip: u64) {
    use ingestor::checkpoint::{Checkpoint, encode_legacy};
    use ingestor::rpc::hex::B256;
    use ingestor::window::{LogId, WindowBlock};
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let hash = |v: &serde_json::Value, field: &'static str| {
        B256::parse(field, v[field].as_str().expect("hex")).expect("hash")
    };
    let window: Vec<WindowBlock> = (tip.saturating_sub(127)..=tip)
        .map(|n| {
            let block = node.block(n).expect("block");
            WindowBlock {
                number: n,
                hash: hash(&block, "hash"),
                parent_hash: hash(&block, "parentHash"),
                logs: node
                    .logs(n, n)
                    .expect("logs")
                    .iter()
                    .map(|l| LogId {
                        tx: hash(l, "transactionHash"),
                        log_index: devstack::node::quantity(&l["logIndex"]).expect("index"),
                    })
                    .collect(),
            }
        })
        .collect();
    let cp = Checkpoint {
        chain_id: 31337,
        block_number: tip,
        block_hash: window.last().expect("window").hash,
        updated_at_ms: 1_700_000_000_000,
        window,
        partitions: Vec::new(),
        migrated: true,
    };
    let bytes = encode_legacy(&cp).expect("encode");
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("producer");
    producer
        .send(BaseRecord::to(checkpoints).key("31337").payload(&bytes))
        .map_err(|(e, _)| e)
        .expect("send");
    producer.flush(Duration::from_secs(30)).expect("flush");
}

#[test]
fn a_first_format_checkpoint_is_migrated_without_ghosts_or_duplicates() {
    let stack = Stack::start(47, 6);
    let toml = stack.config(&[]);
    let (brokers, topic) = (stack.brokers(), stack.topic());
    let Stack {
        dir,
        names,
        node,
        mut shapes,
        ..
    } = stack;
    let mut service = start(dir.path(), "run-0", &toml);
    let mut reader = fast_reader(&brokers, &topic);
    let mut all = Vec::new();
    assert_all_read_matches(&mut reader, &mut all, &node);
    stop_cleanly(&mut service);

    // As the previous version could leave it after a crash: its checkpoint two blocks
    // behind what it had published. While the service is down, the head is reorganised.
    let head = node.head().expect("head");
    write_first_format_checkpoint(&brokers, &names.checkpoints(), &node, head - 2);
    reorg_with_logs(&node, 1, &[shapes.logs(3)]).expect("reorg");

    let mut service = start(dir.path(), "run-1", &toml);
    assert_all_read_matches(&mut reader, &mut all, &node);
    let log = service.process.log_text();
    let resumed = log
        .lines()
        .find(|l| l.contains("resuming chain"))
        .unwrap_or_default();
    assert!(
        resumed.contains("migrated=true")
            && resumed.contains(&format!("checkpoint=Some({})", head - 2)),
        "{resumed}"
    );
    assert!(
        log.contains("orphaned while it was down"),
        "{}",
        service.process.log_tail(30)
    );
    stop_cleanly(&mut service);

    // The checkpoint it wrote is in the current format.
    let mut service = start(dir.path(), "run-2", &toml);
    wait_for_log(&service, "resuming chain");
    let log = service.process.log_text();
    let resumed = log
        .lines()
        .find(|l| l.contains("resuming chain"))
        .unwrap_or_default();
    assert!(
        resumed.contains("migrated=false") && resumed.contains(&format!("checkpoint=Some({head})")),
        "{resumed}"
    );
    stop_cleanly(&mut service);
}
