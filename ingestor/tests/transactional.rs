//! Exactly-once mode, the real ingestor binary and a real anvil. On Apache Kafka (the shared
//! broker): a `kill -9` while a transaction holds records on the log (a `read_uncommitted`
//! reader sees them, a `read_committed` one never does), then a restart whose
//! `init_transactions` aborts it; and a second instance started
//! while the first is writing, which fences it (nothing injected). Against librdkafka's
//! in-process mock cluster, only broker errors a real broker cannot be made to answer on
//! demand: `AddPartitionsToTxn` refused (`TOPIC_AUTHORIZATION_FAILED`, then
//! `CLUSTER_AUTHORIZATION_FAILED` mid-transaction), `InitProducerId` refused once (a fatal
//! error), `EndTxn` failing retriably twenty times in a row, and `EndTxn` answered
//! `PRODUCER_FENCED` at a moment the test chooses. Reads are `read_committed`.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;
use devstack::anvil::Anvil;
use devstack::consumer::{Isolation, Record, TopicReader};
use devstack::proc::wait_for;
use devstack::service::{Service, config_toml};
use devstack::traffic::{LogShapes, Sender};
use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

const TOPIC: &str = "evm.logs.31337";
const TRANSACTIONAL: &[(&str, &str)] = &[
    ("INGESTOR_KAFKA__TRANSACTIONAL", "true"),
    ("INGESTOR_KAFKA__TRANSACTION_TIMEOUT_MS", "10000"),
    ("INGESTOR_KAFKA__ADMIN_TIMEOUT_MS", "5000"),
    ("RUST_LOG", "info,ingestor::events=debug"),
];

fn mock_cluster() -> MockCluster<'static, rdkafka::producer::DefaultProducerContext> {
    let mock = MockCluster::new(1).expect("mock cluster");
    // The mock broker does not implement CreateTopics; the ingestor then checks metadata.
    mock.create_topic(TOPIC, 1, 1).expect("topic");
    mock.create_topic("ingestor.checkpoints", 1, 1)
        .expect("checkpoint topic");
    mock
}

/// The mock cluster, an anvil chain with history, and a config for both.
struct MockStack {
    mock: MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    brokers: String,
    anvil: Anvil,
    sender: Sender,
    shapes: LogShapes,
    toml: String,
    /// Declared last: removed after the processes stopped.
    dir: tempfile::TempDir,
}

impl MockStack {
    fn start(seed: u64, blocks: usize) -> Self {
        let dir = tempdir();
        let mock = mock_cluster();
        let brokers = mock.bootstrap_servers();
        let anvil = Anvil::start(31337, dir.path()).expect("anvil");
        let mut sender = Sender::new(anvil.node()).expect("sender");
        let mut shapes = LogShapes::new(seed);
        mine_history(&mut sender, &mut shapes, blocks).expect("history");
        let toml = config_toml(&brokers, &[fast_retry_entry(31337, anvil.ws_url())], "");
        Self {
            mock,
            brokers,
            anvil,
            sender,
            shapes,
            toml,
            dir,
        }
    }
}

/// Every record, read committed, equals the node's logs with no duplicate: exactly once.
fn assert_exactly_once(brokers: &str, anvil: &Anvil, dir: &std::path::Path) {
    let mut reader = TopicReader::new(brokers, TOPIC).expect("reader");
    assert_reader_matches_node(&mut reader, &anvil.node(), 31337, dir);
}

/// Each partition's `[last stable offset, high watermark)`, where it is not empty: the
/// records of a transaction still open.
fn open_ranges(committed: &TopicReader, uncommitted: &TopicReader) -> Option<Ranges> {
    // The high watermark first: the last stable offset, read after it, is then below it
    // only if records under it are still uncommitted.
    let high = uncommitted.ends(Duration::from_secs(5)).ok()?;
    let stable = committed.ends(Duration::from_secs(5)).ok()?;
    let open: Ranges = high
        .into_iter()
        .filter_map(|(p, h)| Some((p, (*stable.get(&p)?, h))))
        .filter(|(_, (s, h))| s < h)
        .collect();
    (!open.is_empty()).then_some(open)
}

/// Per partition, a range of offsets `[from, to)`.
type Ranges = HashMap<i32, (i64, i64)>;

fn within(ranges: &Ranges, r: &Record) -> bool {
    ranges
        .get(&r.partition)
        .is_some_and(|&(from, to)| (from..to).contains(&r.offset))
}

/// How long the open transaction must stay open while the instance is stopped: a commit
/// it sent just before it stopped would land well within this (markers are written in
/// milliseconds on loopback).
const HOLD: Duration = Duration::from_secs(1);

/// On Kafka: `kill -9` while a transaction holds records on the log, then a restart whose
/// `init_transactions` fences the dead instance and aborts its transaction. The instance
/// is stopped (SIGSTOP) until the topic's last stable offset is behind its high watermark,
/// and stays so for a second, and only then killed: the kill lands mid-transaction. The
/// transaction's records were written: a `read_uncommitted` reader sees them, before and
/// after the restart; a `read_committed` reader never does, and after the restart sees
/// every record exactly once (each of those keys once, published again).
#[test]
fn on_kafka_a_kill_mid_transaction_leaves_every_record_exactly_once() {
    let stack = Stack::start(29, 6);
    let toml = stack.config(&["checkpoint_interval_ms = 0"]);
    let (brokers, topic) = (stack.brokers(), stack.topic());
    let Stack {
        dir,
        anvil,
        mut sender,
        mut shapes,
        ..
    } = stack;
    let mut first =
        Service::start(BIN.as_ref(), dir.path(), &toml, TRANSACTIONAL).expect("ingestor");
    let mut reader = TopicReader::new(&brokers, &topic).expect("reader");
    assert_reader_matches_node(&mut reader, &anvil.node(), 31337, dir.path());

    // Live traffic of large blocks until the kill.
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                sender
                    .block(&[shapes.logs(120), shapes.logs(120)])
                    .expect("live block");
                std::thread::sleep(Duration::from_millis(100)); // the traffic's pace
            }
            (sender, shapes)
        })
    };
    let committed = TopicReader::new(&brokers, &topic).expect("reader");
    let uncommitted = TopicReader::with_isolation(&brokers, &topic, Isolation::ReadUncommitted)
        .expect("read_uncommitted reader");
    let open = wait_for(
        "a transaction holding records while the instance is stopped",
        Duration::from_secs(120),
        || {
            first.process.signal(libc::SIGSTOP);
            let held = open_ranges(&committed, &uncommitted).filter(|open| {
                let start = Instant::now();
                while start.elapsed() < HOLD {
                    if open_ranges(&committed, &uncommitted).as_ref() != Some(open) {
                        return false;
                    }
                    std::thread::sleep(Duration::from_millis(50)); // the probe's pace
                }
                true
            });
            if held.is_none() {
                first.process.signal(libc::SIGCONT);
            }
            held
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", first.process.log_tail(30)));
    first.process.signal(libc::SIGKILL);
    first
        .process
        .wait_exit(Duration::from_secs(30))
        .expect("killed");
    stop.store(true, Ordering::SeqCst);
    let (mut sender, mut shapes) = traffic.join().expect("traffic thread");

    // Before the restart: the transaction is still open and its records are on the log.
    let mut seen = Vec::new();
    TopicReader::with_isolation(&brokers, &topic, Isolation::ReadUncommitted)
        .expect("reader")
        .read_to_end(&mut seen, READ_DEADLINE)
        .expect("read uncommitted");
    let written: Vec<Record> = seen.into_iter().filter(|r| within(&open, r)).collect();
    assert!(!written.is_empty(), "no record in {open:?}");
    let mut seen = Vec::new();
    TopicReader::new(&brokers, &topic)
        .expect("reader")
        .read_to_end(&mut seen, READ_DEADLINE)
        .expect("read committed");
    assert!(!seen.iter().any(|r| within(&open, r)), "read committed");
    eprintln!(
        "killed with {} records in an open transaction at {open:?}",
        written.len()
    );

    let second_dir = dir.path().join("second");
    std::fs::create_dir_all(&second_dir).expect("dir");
    let mut second =
        Service::start(BIN.as_ref(), &second_dir, &toml, TRANSACTIONAL).expect("restart");
    sender
        .block(&[shapes.logs(3)])
        .expect("block after the restart");
    let mut reader = TopicReader::new(&brokers, &topic).expect("reader");
    // Exactly once: no key missing, none twice, every field equal to the node's.
    let chain = assert_reader_matches_node(&mut reader, &anvil.node(), 31337, &second_dir);
    assert!(!chain.iter().any(|r| within(&open, r)), "read committed");
    let keys: HashSet<&str> = written.iter().map(|r| r.key.as_str()).collect();
    let again = chain
        .iter()
        .filter(|r| keys.contains(r.key.as_str()))
        .count();
    assert_eq!(again, keys.len(), "the aborted keys, published again once");
    // The aborted records stay on the log where they were written.
    let mut seen = Vec::new();
    TopicReader::with_isolation(&brokers, &topic, Isolation::ReadUncommitted)
        .expect("reader")
        .read_to_end(&mut seen, READ_DEADLINE)
        .expect("read uncommitted");
    let still: Vec<(i64, &str)> = seen
        .iter()
        .filter(|r| within(&open, r))
        .map(|r| (r.offset, r.key.as_str()))
        .collect();
    let was: Vec<(i64, &str)> = written.iter().map(|r| (r.offset, r.key.as_str())).collect();
    assert_eq!(still, was);
    let resumed = second.process.log_text();
    assert!(
        resumed
            .lines()
            .any(|l| l.contains("resuming chain") && l.contains("checkpoint=Some(")),
        "{resumed}"
    );
    stop_cleanly(&mut second);
}

/// On Kafka, nothing injected: instance A writes transactions of live blocks; instance B,
/// with the same config, starts while A is writing. B's `init_transactions` bumps the
/// transactional id's epoch, so A's next transactional request is refused and A stops with
/// its one `fenced` line (exit 1); B resumes from the committed checkpoint, and a
/// `read_committed` reader sees the chain exactly once.
#[test]
fn on_kafka_a_second_instance_fences_the_first_which_stops() {
    let stack = Stack::start(41, 6);
    let toml = stack.config(&[]);
    let (brokers, topic) = (stack.brokers(), stack.topic());
    let transactional_id = format!("{}-31337", stack.names.transactional_id_prefix());
    let Stack {
        dir,
        anvil,
        mut sender,
        mut shapes,
        ..
    } = stack;
    let mut first =
        Service::start(BIN.as_ref(), dir.path(), &toml, TRANSACTIONAL).expect("instance A");
    let mut reader = TopicReader::new(&brokers, &topic).expect("reader");
    assert_reader_matches_node(&mut reader, &anvil.node(), 31337, dir.path());

    // Live traffic: a block every 100 ms until A has stopped.
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                sender
                    .block(&[shapes.logs(4), shapes.logs(2)])
                    .expect("live block");
                std::thread::sleep(Duration::from_millis(100)); // the traffic's pace
            }
            (sender, shapes)
        })
    };
    wait_for_log(&first, "block delivered");

    let second_dir = dir.path().join("second");
    std::fs::create_dir_all(&second_dir).expect("dir");
    let mut second =
        Service::start(BIN.as_ref(), &second_dir, &toml, TRANSACTIONAL).expect("instance B");
    let code = first
        .process
        .wait_exit(Duration::from_secs(90))
        .unwrap_or_else(|e| panic!("{e}\n{}", first.process.log_tail(30)));
    stop.store(true, Ordering::SeqCst);
    let (mut sender, mut shapes) = traffic.join().expect("traffic thread");
    let log = first.process.log_text();
    let last = log.lines().last().unwrap_or_default();
    eprintln!("{last}");
    assert_eq!(code, Some(1), "{log}");
    assert!(
        last.starts_with("error: chain chain-31337: fenced: another instance took over")
            && last.contains(&format!("transactional.id `{transactional_id}`")),
        "{last}"
    );

    sender
        .block(&[shapes.logs(3)])
        .expect("block after A stopped");
    let mut reader = TopicReader::new(&brokers, &topic).expect("reader");
    assert_reader_matches_node(&mut reader, &anvil.node(), 31337, &second_dir);
    let resumed = second.process.log_text();
    assert!(
        resumed
            .lines()
            .any(|l| l.contains("resuming chain") && l.contains("checkpoint=Some(")),
        "{resumed}"
    );
    assert!(
        second.process.is_running(),
        "{}",
        second.process.log_tail(20)
    );
    stop_cleanly(&mut second);
}

#[test]
fn an_aborted_transaction_is_replayed_without_duplicates() {
    let MockStack {
        dir,
        mock,
        brokers,
        anvil,
        mut sender,
        mut shapes,
        toml,
    } = MockStack::start(31, 6);
    let mut service =
        Service::start(BIN.as_ref(), dir.path(), &toml, TRANSACTIONAL).expect("ingestor");
    assert_exactly_once(&brokers, &anvil, dir.path());

    // The broker refuses to add the transaction's partitions (twice: the topic's and the
    // checkpoint topic's may be added by separate requests): the transaction must abort
    // and the chain resume from its committed checkpoint. Refusing the partitions, rather
    // than a produce request, keeps the aborted records off the log: the mock broker writes
    // no abort markers, so a read_committed reader would see whatever an aborted
    // transaction had written.
    mock.request_errors(
        RDKafkaApiKey::AddPartitionsToTxn,
        &[
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
        ],
    );
    for _ in 0..3 {
        sender
            .block(&[shapes.logs(6), shapes.logs(4)])
            .expect("live block");
    }
    wait_for_log(&service, "transaction aborted");
    sender
        .block(&[shapes.logs(2)])
        .expect("block after the abort");
    assert_exactly_once(&brokers, &anvil, dir.path());
    assert!(
        service.process.is_running(),
        "{}",
        service.process.log_tail(20)
    );
    stop_cleanly(&mut service);
}

/// The mock broker gives every `InitProducerId` a new producer id instead of bumping the
/// epoch of the transactional id's existing one, so it never fences by itself. The test
/// makes it answer the next `EndTxn` with `PRODUCER_FENCED`, which is what a real broker
/// answers the old instance once a standby has initialised the same transactional id.
#[test]
fn a_fenced_instance_stops_and_a_standby_resumes_exactly_once() {
    let MockStack {
        dir,
        mock,
        brokers,
        anvil,
        mut sender,
        mut shapes,
        toml,
    } = MockStack::start(37, 6);
    let mut first = Service::start(BIN.as_ref(), dir.path(), &toml, TRANSACTIONAL).expect("first");
    assert_exactly_once(&brokers, &anvil, dir.path());

    mock.request_errors(
        RDKafkaApiKey::EndTxn,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_PRODUCER_FENCED],
    );
    sender
        .block(&[shapes.logs(5)])
        .expect("block the fenced instance tries to commit");
    let code = first
        .process
        .wait_exit(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}\n{}", first.process.log_tail(30)));
    let last = first
        .process
        .log_text()
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(code, Some(1), "{last}");
    assert!(
        last.contains(
            "fenced: another instance took over transactional.id `ethhook-ingestor-31337`"
        ),
        "{last}"
    );

    // The standby resumes from the last committed checkpoint: the fenced transaction's
    // block is published once, by the standby.
    let standby_dir = dir.path().join("standby");
    std::fs::create_dir_all(&standby_dir).expect("dir");
    let mut standby =
        Service::start(BIN.as_ref(), &standby_dir, &toml, TRANSACTIONAL).expect("standby");
    sender
        .block(&[shapes.logs(3)])
        .expect("block for the standby");
    assert_exactly_once(&brokers, &anvil, &standby_dir);
    let resumed = standby.process.log_text();
    assert!(
        resumed
            .lines()
            .any(|l| l.contains("resuming chain") && l.contains("checkpoint=Some(")),
        "{resumed}"
    );
    stop_cleanly(&mut standby);
}

/// A fatal error (the broker refuses the transactional id once) rebuilds the producer and
/// the chain resumes from the committed checkpoint.
#[test]
fn a_fatal_producer_error_rebuilds_the_producer_and_resumes() {
    let MockStack {
        dir,
        mock,
        brokers,
        anvil,
        toml,
        ..
    } = MockStack::start(43, 4);
    mock.request_errors(
        RDKafkaApiKey::InitProducerId,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED],
    );
    let mut service =
        Service::start(BIN.as_ref(), dir.path(), &toml, TRANSACTIONAL).expect("ingestor");
    assert_exactly_once(&brokers, &anvil, dir.path());
    let log = service.process.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("transaction aborted") && l.contains("recreate_producer=true")),
        "{log}"
    );
    stop_cleanly(&mut service);
}

/// A fatal error in the middle of a transaction, after others committed: the broker
/// refuses the transaction's partitions with `CLUSTER_AUTHORIZATION_FAILED`, which
/// librdkafka makes fatal. The producer cannot abort; it is rebuilt, the chain resumes from
/// the committed checkpoint (reading its topic back), and a `read_committed` reader sees
/// every record exactly once.
#[test]
fn a_fatal_error_mid_transaction_rebuilds_the_producer_and_resumes() {
    let MockStack {
        dir,
        mock,
        brokers,
        anvil,
        mut sender,
        mut shapes,
        toml,
    } = MockStack::start(47, 4);
    let mut service =
        Service::start(BIN.as_ref(), dir.path(), &toml, TRANSACTIONAL).expect("ingestor");
    assert_exactly_once(&brokers, &anvil, dir.path());
    mock.request_errors(
        RDKafkaApiKey::AddPartitionsToTxn,
        &[
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED,
        ],
    );
    sender
        .block(&[shapes.logs(6), shapes.logs(4)])
        .expect("live block");
    wait_for_log(&service, "transaction aborted");
    let log = service.process.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("transaction aborted") && l.contains("recreate_producer=true")),
        "{}",
        service.process.log_tail(30)
    );
    sender
        .block(&[shapes.logs(3)])
        .expect("block after the rebuild");
    assert_exactly_once(&brokers, &anvil, dir.path());
    assert!(
        service.process.is_running(),
        "{}",
        service.process.log_tail(20)
    );
    stop_cleanly(&mut service);
}

/// A retriable `commit_transaction` error means the commit goes on in the background:
/// librdkafka says to call it again, so it is committed again, never aborted. librdkafka
/// retries `EndTxn` itself and only returns a (retriable) time-out when the call's timeout
/// passes: twenty failed `EndTxn`s in a row outlast a 3 s transaction timeout.
#[test]
fn a_retriable_commit_error_is_committed_again_not_aborted() {
    let MockStack {
        dir,
        mock,
        brokers,
        anvil,
        mut sender,
        mut shapes,
        toml,
    } = MockStack::start(45, 4);
    let env = [
        TRANSACTIONAL,
        &[("INGESTOR_KAFKA__TRANSACTION_TIMEOUT_MS", "3000")],
    ]
    .concat();
    let mut service = Service::start(BIN.as_ref(), dir.path(), &toml, &env).expect("ingestor");
    assert_exactly_once(&brokers, &anvil, dir.path());
    mock.request_errors(
        RDKafkaApiKey::EndTxn,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS; 20],
    );
    sender.block(&[shapes.logs(5)]).expect("live block");
    wait_for_log(&service, "committing again");
    sender.block(&[shapes.logs(3)]).expect("live block");
    assert_exactly_once(&brokers, &anvil, dir.path());
    assert!(
        !service.process.log_text().contains("transaction aborted"),
        "{}",
        service.process.log_tail(20)
    );
    stop_cleanly(&mut service);
}

/// After transactions committed again, a new abort waits the first backoff step, not the
/// step after the previous abort's (the counter starts over).
#[test]
fn the_abort_backoff_starts_over_after_a_commit() {
    let MockStack {
        dir,
        mock,
        brokers,
        anvil,
        mut sender,
        mut shapes,
        toml,
    } = MockStack::start(47, 4);
    let mut service =
        Service::start(BIN.as_ref(), dir.path(), &toml, TRANSACTIONAL).expect("ingestor");
    assert_exactly_once(&brokers, &anvil, dir.path());
    let refuse = || {
        mock.request_errors(
            RDKafkaApiKey::AddPartitionsToTxn,
            &[
                RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
                RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
            ],
        )
    };
    let aborts = |service: &Service| -> Vec<u64> {
        service
            .process
            .log_text()
            .lines()
            .filter(|l| l.contains("transaction aborted"))
            .filter_map(|l| {
                l.split("retry_in_ms=")
                    .nth(1)?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
            .collect()
    };
    let mut first_of_round = Vec::new();
    for _ in 0..2 {
        let before = aborts(&service).len();
        first_of_round.push(before);
        refuse();
        sender.block(&[shapes.logs(4)]).expect("live block");
        wait_for("an abort", Duration::from_secs(60), || {
            (aborts(&service).len() > before).then_some(())
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", service.process.log_tail(30)));
        // Commits go through again before the next refusal.
        sender.block(&[shapes.logs(2)]).expect("live block");
        assert_exactly_once(&brokers, &anvil, dir.path());
    }
    // reconnect_backoff_initial_ms = 100: the first step waits 50..=100 ms, the second
    // 100..=200 ms. Aborts in a row (no commit between) step up; after commits, the first
    // abort of the next round is back at the first step.
    let waits = aborts(&service);
    for i in first_of_round {
        assert!(
            waits[i] <= 100,
            "abort {i} waited the first step: {waits:?}"
        );
    }
    stop_cleanly(&mut service);
}
