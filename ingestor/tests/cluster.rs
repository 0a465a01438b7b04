//! A replicated cluster loses brokers: three KRaft nodes (each broker and controller), chain
//! and checkpoint topics with replication factor 3 (the service creates them, with
//! `kafka.topic_replication_factor = 3`) and `min.insync.replicas=2` (the brokers' default:
//! the service sets no topic-level `min.insync.replicas`).
//!
//! Under live traffic, and while the history is still being backfilled, the chain topic's
//! partition leader is killed with SIGKILL, then every node is restarted in turn: the topic
//! must equal the node record for record (none missing, none produced twice) and the
//! ingestor must never exit. With two of three nodes down the chain must wait (bounded
//! memory, nothing delivered) and say so in its log, in `ethhook_sink_stalled` on `/metrics`
//! and in `/status`, then continue by itself once one returns, and say that too.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;
use devstack::anvil::Anvil;
use devstack::compare::produced_twice;
use devstack::consumer::TopicReader;
use devstack::kafka::KafkaCluster;
use devstack::proc::wait_for;
use devstack::service::Service;
use devstack::traffic::{LogShapes, Sender};

/// How long a node may take to come back in sync after a restart.
const IN_SYNC: Duration = Duration::from_secs(90);

/// Mines a block of a few logs every 100 ms until stopped; gives the sender back.
struct Traffic {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<(Sender, LogShapes)>,
}

impl Traffic {
    fn start(mut sender: Sender, mut shapes: LogShapes) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut i = 0usize;
            while !flag.load(Ordering::Relaxed) {
                let txs: Vec<_> = (0..1 + i % 2).map(|_| shapes.logs(1 + i % 5)).collect();
                sender.block(&txs).expect("live block");
                i += 1;
                // Pacing, not waiting for anything: about ten blocks a second.
                std::thread::sleep(Duration::from_millis(100));
            }
            (sender, shapes)
        });
        Self { stop, handle }
    }

    fn stop(self) -> (Sender, LogShapes) {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().expect("traffic thread")
    }
}

/// The ingestor's resident memory, in KiB.
fn rss_kib(service: &Service) -> u64 {
    let pid = service.process.pid().expect("pid");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

/// `ethhook_sink_stalled` of chain-31337, as `/metrics` serves it.
fn stalled_gauge(service: &Service) -> Option<f64> {
    metric(service, "ethhook_sink_stalled", "chain-31337")
}

/// Waits until the log after `from` has a line with `needle`; returns that line.
fn wait_for_line(service: &Service, from: usize, needle: &str) -> String {
    wait_for(needle, Duration::from_secs(60), || {
        let log = service.process.log_text();
        log.get(from..)?
            .lines()
            .find(|l| l.contains(needle))
            .map(str::to_owned)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", service.process.log_tail(30)))
}

fn assert_alive(service: &mut Service) {
    assert!(
        service.process.is_running(),
        "the ingestor exited:\n{}",
        service.process.log_tail(30)
    );
}

/// Every record of `topic` equals the node's, each exactly once, and none was produced twice.
fn assert_exactly_the_node(brokers: &str, topic: &str, anvil: &Anvil) {
    let report = assert_topic_matches_node(brokers, topic, &anvil.node(), 31337);
    let mut records = Vec::new();
    TopicReader::new(brokers, topic)
        .expect("reader")
        .read_to_end(&mut records, READ_DEADLINE)
        .expect("read");
    assert_eq!(records.len(), report.records);
    let twice = produced_twice(&records);
    assert!(
        twice.is_empty(),
        "{} produced twice: {twice:?}",
        twice.len()
    );
}

#[test]
fn a_replicated_cluster_loses_brokers_and_nothing_is_lost_or_doubled() {
    let started = Instant::now();
    let dir = tempdir();
    let mut cluster = KafkaCluster::start(dir.path(), 3).expect("three-node cluster");
    eprintln!("cluster up after {:?}", started.elapsed());
    let (brokers, names) = (cluster.brokers(), Names::new());
    let topic = names.topic(31337);
    let anvil = Anvil::start(31337, dir.path()).expect("anvil");
    let mut sender = Sender::new(anvil.node()).expect("sender");
    let mut shapes = LogShapes::new(41);
    mine_history(&mut sender, &mut shapes, 150).expect("history");
    let history_head = anvil.node().head().expect("head");
    let toml = names
        .config(&brokers, &[fast_retry_entry(31337, anvil.ws_url())], "")
        .replacen(
            "[kafka]\n",
            "[kafka]\ntopic_replication_factor = 3\nstall_warning_ms = 2000\n",
            1,
        );
    let mut service = Service::start(BIN.as_ref(), dir.path(), &toml, &[]).expect("ingestor");
    let traffic = Traffic::start(sender, shapes);

    // Mid-backfill: the history's first records are on the topic, not all of them yet.
    wait_for("the chain topic", Duration::from_secs(60), || {
        cluster.leader_of(&topic, 0).ok().flatten()
    })
    .expect("the service created its topic");
    let mut reader = TopicReader::new(&brokers, &topic).expect("reader");
    let mut first = Vec::new();
    reader
        .read_until(&mut first, READ_DEADLINE, |r| !r.is_empty())
        .expect("first records");
    let leader = cluster
        .leader_of(&topic, 0)
        .expect("metadata")
        .expect("a leader");
    cluster.kill(leader).expect("leader killed");
    let delivered_at_kill =
        chain_status(&service, "chain-31337").and_then(|s| s["delivered"].as_u64());
    eprintln!(
        "killed leader node {} at {:?}; delivered {delivered_at_kill:?} of the history's {history_head} blocks",
        leader + 1,
        started.elapsed()
    );
    let next = wait_for("a new leader", Duration::from_secs(60), || {
        cluster
            .leader_of(&topic, 0)
            .ok()
            .flatten()
            .filter(|l| *l != leader)
    })
    .expect("new leader");
    eprintln!("node {} leads at {:?}", next + 1, started.elapsed());
    cluster.restart(leader).expect("killed node back");
    cluster.wait_in_sync(&topic, IN_SYNC).expect("in sync");
    assert_alive(&mut service);

    // A rolling restart, as an operator does it: the next node only once all are in sync.
    for i in 0..cluster.size() {
        cluster.restart(i).expect("rolling restart");
        cluster.wait_in_sync(&topic, IN_SYNC).expect("in sync");
        cluster
            .wait_in_sync(&names.checkpoints(), IN_SYNC)
            .expect("checkpoints in sync");
        assert_alive(&mut service);
        eprintln!("node {} restarted at {:?}", i + 1, started.elapsed());
    }
    let (mut sender, mut shapes) = traffic.stop();
    assert_exactly_the_node(&brokers, &topic, &anvil);
    eprintln!("complete after the faults at {:?}", started.elapsed());

    // Nothing waits for the brokers now: not stalled.
    wait_for("no stall", Duration::from_secs(60), || {
        let status = chain_status(&service, "chain-31337")?;
        (status["stalled_since_ms"].is_null() && stalled_gauge(&service)? == 0.0).then_some(())
    })
    .expect("not stalled before the outage");

    // Two of three down: no acknowledgement is possible (acks=all, min.insync.replicas=2,
    // and no KRaft quorum either).
    let survivor = cluster.leader_of(&topic, 0).ok().flatten().unwrap_or(0);
    let down: Vec<usize> = (0..cluster.size()).filter(|i| *i != survivor).collect();
    let log_before = service.process.log_text().len();
    for &i in &down {
        cluster.kill(i).expect("kill");
    }
    let before = anvil.node().head().expect("head");
    for _ in 0..5 {
        sender
            .block(&[shapes.logs(4)])
            .expect("block while two are down");
    }
    let head = anvil.node().head().expect("head");
    let delivered = wait_for(
        "the chain to see the new head",
        Duration::from_secs(60),
        || {
            let status = chain_status(&service, "chain-31337")?;
            (status["head"].as_u64()? >= head).then(|| status["delivered"].as_u64())?
        },
    )
    .expect("status");
    assert!(
        delivered <= before,
        "delivered {delivered} with two of three brokers down (head before {before})"
    );
    // The service says the chain is paused on the brokers: its log, the gauge, /status.
    let stalled = wait_for_line(&service, log_before, "publishing stalled");
    assert!(stalled.contains("chain-31337"), "{stalled}");
    let since = wait_for(
        "the stall in /status and /metrics",
        Duration::from_secs(60),
        || {
            let status = chain_status(&service, "chain-31337")?;
            let since = status["stalled_since_ms"].as_u64()?;
            (stalled_gauge(&service)? == 1.0).then_some(since)
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", service.process.log_tail(30)));
    // A stalled chain is not ready, whatever its lag.
    let addr = service.health_addr().expect("health address");
    let (code, body) = http_get(&addr, "/readyz");
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("chain-31337: publishing stalled"), "{body}");
    let rss = rss_kib(&service);
    eprintln!(
        "two down at {:?}: delivered {delivered}, head {head}, rss {rss} KiB; {stalled}",
        started.elapsed()
    );
    assert!(rss < 512 * 1024, "rss {rss} KiB while paused");
    assert_alive(&mut service);

    // One returns: the chain continues by itself (two of three: a quorum, and enough
    // in-sync replicas), and says so.
    let log_paused = service.process.log_text().len();
    cluster.restart(down[0]).expect("one node back");
    sender.block(&[shapes.logs(3)]).expect("block after");
    let head = anvil.node().head().expect("head");
    wait_for("the chain to deliver the head", READ_DEADLINE, || {
        let status = chain_status(&service, "chain-31337")?;
        (status["delivered"].as_u64()? >= head).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", service.process.log_tail(30)));
    let resumed = wait_for_line(&service, log_paused, "publishing resumed");
    let paused_ms: u64 = resumed
        .split("paused_ms=")
        .nth(1)
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no paused_ms: {resumed}"));
    assert!(paused_ms >= 2000, "{resumed}");
    wait_for("the stall cleared", Duration::from_secs(60), || {
        let status = chain_status(&service, "chain-31337")?;
        (status["stalled_since_ms"].is_null() && stalled_gauge(&service)? == 0.0).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", service.process.log_tail(30)));
    wait_for("ready again", Duration::from_secs(60), || {
        (http_get(&addr, "/readyz").0 == 200).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", http_get(&addr, "/readyz")));
    assert_alive(&mut service);
    eprintln!(
        "resumed with two of three at {:?} (stalled since {since} ms); {resumed}",
        started.elapsed()
    );
    // The last one back too, then the topic is compared with the node.
    cluster.restart(down[1]).expect("the last node back");
    assert_exactly_the_node(&brokers, &topic, &anvil);
    assert_alive(&mut service);
    stop_cleanly(&mut service);
    eprintln!("done at {:?}", started.elapsed());
}
