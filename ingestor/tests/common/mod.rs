//! Shared set-up for the end-to-end tests: real anvil processes and Apache Kafka on free
//! loopback ports, stopped when the test ends, pass or fail (the broker shared by a test
//! binary's tests when the binary exits: [`kafka`]).
#![allow(dead_code, missing_docs, unreachable_pub)]

pub mod datasets;
pub mod decoded;
pub mod kafka;
pub mod otlp;
pub mod provider;
pub mod proxy;
pub mod registry;
pub mod server;
pub mod tamper;
pub mod tls;

use std::path::Path;
use std::time::Duration;

use devstack::compare::{Expected, Report, compare, compare_compacted, expected_from_node};
use devstack::consumer::{Record, TopicReader};
use devstack::node::Node;
use devstack::service::Service;
use devstack::traffic::{LogShapes, LogSpec, Sender, Tx};
pub use kafka::{Names, shared_brokers};

pub const BIN: &str = env!("CARGO_BIN_EXE_ingestor");
pub const READ_DEADLINE: Duration =
    Duration::from_secs(match option_env!("ETHHOOK_TEST_READ_DEADLINE_S") {
        Some(_) => 30,
        None => 180,
    });

/// Every shape the contract names: 0 to 4 topics, each with empty, small and >= 1 KB data.
pub fn edge_logs() -> Vec<LogSpec> {
    let mut out = Vec::new();
    for topics in 0..=4u8 {
        for len in [0usize, 1, 31, 32, 33, 1024, 2500] {
            out.push(LogSpec {
                topics: (0..topics)
                    .map(|t| [t.wrapping_mul(37).wrapping_add(len as u8); 32])
                    .collect(),
                data: (0..len).map(|i| (i % 251) as u8).collect(),
            });
        }
    }
    out
}

/// One log of `topics` topics of `byte`, and `data`.
fn log_of(topics: usize, byte: u8, data: Vec<u8>) -> LogSpec {
    LogSpec {
        topics: vec![[byte; 32]; topics],
        data,
    }
}

/// The blocks of every shape a real chain has (see [`Tx`]), in order: a block of
/// transactions that log nothing has a zero `logsBloom` and a `gasUsed` that is not.
pub fn every_shape() -> Vec<Vec<Tx>> {
    vec![
        // Plain transfers only (mainnet's quiet block).
        vec![Tx::Transfer, Tx::Transfer],
        // A reverted creation (its log is not the block's) and a call that logs nothing.
        vec![Tx::Reverted, Tx::QuietCall],
        // A creation that logs nothing, one whose constructor logs, and a transfer.
        vec![
            Tx::QuietCreation,
            Tx::Logs(vec![log_of(2, 0x31, vec![0x32; 32])]),
            Tx::Transfer,
        ],
        // A transaction of 0 logs next to one of 500.
        vec![Tx::Transfer, Tx::Logs(vec![log_of(1, 0x41, vec![]); 500])],
        // A log of 0 topics, one of 4 topics and no data, among quiet transactions.
        vec![
            Tx::Reverted,
            Tx::Logs(vec![log_of(0, 0, vec![0x51; 7]), log_of(4, 0x52, vec![])]),
            Tx::QuietCall,
            Tx::Transfer,
        ],
        // A lone call that logs nothing.
        vec![Tx::QuietCall],
        // Every transaction type anvil makes, none logging: 0x0, 0x1, 0x2 and EIP-7702's 0x4.
        vec![Tx::Legacy, Tx::AccessList, Tx::Transfer, Tx::SetCode],
        // The same types beside logs. Anvil orders a block by priority fee and drops a
        // transaction whose turn comes before its nonce's: those paying a gas price (0x0,
        // 0x1) go first, a set-code transaction last.
        vec![
            Tx::Legacy,
            Tx::AccessList,
            Tx::Logs(vec![log_of(3, 0x61, vec![0x62; 64])]),
            Tx::SetCode,
        ],
    ]
}

/// Mines [`every_shape`]'s blocks, then an empty block. Returns the number of logs.
pub fn mine_every_shape(sender: &mut Sender) -> anyhow::Result<usize> {
    let mut logs = 0;
    for block in every_shape() {
        logs += sender.mixed_block(&block)?;
    }
    sender.node().mine(1)?;
    Ok(logs)
}

/// Mines a varied history: edge shapes, many logs per tx and per block, empty blocks,
/// blocks whose transactions log nothing ([`every_shape`]), and every third block two
/// calls that log nothing beside the logs. Returns the number of logs.
pub fn mine_history(
    sender: &mut Sender,
    shapes: &mut LogShapes,
    blocks: usize,
) -> anyhow::Result<usize> {
    let mut logs = sender.block(&[edge_logs()])?;
    logs += sender.block(&[shapes.logs(150), shapes.logs(120), shapes.logs(60)])?;
    logs += mine_every_shape(sender)?;
    for i in 0..blocks {
        if i % 4 == 3 {
            sender.node().mine(2)?; // empty blocks
        } else {
            let mut txs: Vec<_> = (0..1 + i % 3)
                .map(|_| Tx::Logs(shapes.logs(1 + (i * 7) % 12)))
                .collect();
            if i % 3 == 0 {
                txs.extend([Tx::QuietCall, Tx::Transfer]);
            }
            logs += sender.mixed_block(&txs)?;
        }
    }
    Ok(logs)
}

/// Reads `topic` until it holds at least every key the node has over the whole chain,
/// then to the end; returns the records and the node's expectation.
pub fn read_all(
    brokers: &str,
    topic: &str,
    node: &Node,
    chain_id: u64,
) -> anyhow::Result<(Vec<Record>, Expected)> {
    let expected = expected_from_node(node, chain_id, 0, node.head()?)?;
    let mut reader = TopicReader::new(brokers, topic)?;
    let mut records = Vec::new();
    reader.read_until(&mut records, READ_DEADLINE, |rs| {
        let keys: std::collections::HashSet<&str> = rs.iter().map(|r| r.key.as_str()).collect();
        expected.keys().all(|k| keys.contains(k.as_str()))
    })?;
    reader.read_to_end(&mut records, READ_DEADLINE)?;
    Ok((records, expected))
}

/// Starts the ingestor with `toml` and waits until `topic` holds at least `count` records;
/// returns the service and a reader positioned after them.
pub fn start_and_wait_for(
    dir: &Path,
    brokers: &str,
    toml: &str,
    topic: &str,
    count: usize,
) -> (Service, TopicReader, Vec<Record>) {
    let mut service = Service::start(BIN.as_ref(), dir, toml, &[]).expect("ingestor");
    let mut reader = service
        .reader(brokers, topic, &[])
        .unwrap_or_else(|e| panic!("reader: {e:#}"));
    let mut records = Vec::new();
    if let Err(e) = reader.read_until(&mut records, READ_DEADLINE, |r| r.len() >= count) {
        panic!(
            "first records published: {e:#} (logs under {})",
            dir.display()
        );
    }
    (service, reader, records)
}

/// Reads `reader` until it holds as many records as the node has logs over its whole chain,
/// then to the end, and asserts every record equals the node's, field by field, exactly
/// once. Returns the records.
pub fn assert_reader_matches_node(
    reader: &mut TopicReader,
    node: &Node,
    chain_id: u64,
    dir: &Path,
) -> Vec<Record> {
    let expected = expected_from_node(node, chain_id, 0, node.head().expect("head")).expect("node");
    let mut records = Vec::new();
    if let Err(e) = reader.read_until(&mut records, READ_DEADLINE, |r| r.len() >= expected.len()) {
        panic!("{e:#} (logs under {})", dir.display());
    }
    reader
        .read_to_end(&mut records, READ_DEADLINE)
        .expect("read to end");
    let report = compare(&expected, &records);
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.records, expected.len());
    records
}

/// Asserts the topic equals the node over the whole chain.
pub fn assert_topic_matches_node(brokers: &str, topic: &str, node: &Node, chain_id: u64) -> Report {
    let (records, expected) = read_all(brokers, topic, node, chain_id).expect("read topic");
    let report = compare(&expected, &records);
    assert!(report.is_clean(), "{topic}: {report}");
    assert_eq!(report.records, expected.len());
    report
}

/// Decodes every record of `topic` with fastavro (the reference implementation, which also
/// checks each single-object header and fingerprint) and compares it with the node field by
/// field. Returns the number of records.
pub fn assert_fastavro_reads_every_record(
    brokers: &str,
    topic: &str,
    node: &Node,
    chain_id: u64,
) -> usize {
    let expected = expected_from_node(node, chain_id, 0, node.head().expect("head")).expect("node");
    let mut reader = TopicReader::new(brokers, topic).expect("reader").keep_raw();
    let mut records = Vec::new();
    reader
        .read_until(&mut records, READ_DEADLINE, |rs| rs.len() >= expected.len())
        .expect("records");
    reader
        .read_to_end(&mut records, READ_DEADLINE)
        .expect("read to end");
    let values: Vec<Vec<u8>> = records.iter().filter_map(|r| r.raw.clone()).collect();
    assert_eq!(values.len(), records.len(), "no tombstones expected");
    let decoded = devstack::avro_ref::decode(&values).expect("fastavro decodes every value");
    for (r, log) in records.iter_mut().zip(decoded) {
        r.log = Some(log);
    }
    let report = compare(&expected, &records);
    assert!(report.is_clean(), "{topic} through fastavro: {report}");
    report.records
}

/// Asserts the compacted view of `topic` (latest value per key, tombstones deleting keys)
/// equals the node's canonical logs over the whole chain, field for field: reads until it
/// does (or the deadline passes), then to the end, and compares again.
pub fn assert_view_matches_node(brokers: &str, topic: &str, node: &Node, chain_id: u64) -> Report {
    assert_view_matches_node_up_to(brokers, topic, node, chain_id, node.head().expect("head"))
}

/// [`assert_view_matches_node`] for the node's blocks `0..=to` only: nothing above `to` may
/// be on the topic.
pub fn assert_view_matches_node_up_to(
    brokers: &str,
    topic: &str,
    node: &Node,
    chain_id: u64,
    to: u64,
) -> Report {
    let expected = expected_from_node(node, chain_id, 0, to).expect("node logs");
    let mut reader = TopicReader::new(brokers, topic).expect("reader");
    let mut records = Vec::new();
    let mut checked = usize::MAX;
    let converged = reader.read_until(&mut records, READ_DEADLINE, |rs| {
        if rs.len() == checked {
            return false;
        }
        checked = rs.len();
        compare_compacted(&expected, rs).is_clean()
    });
    if let Err(e) = converged {
        panic!("{topic}: {e}; {}", compare_compacted(&expected, &records));
    }
    reader
        .read_to_end(&mut records, READ_DEADLINE)
        .expect("read to end");
    let report = compare_compacted(&expected, &records);
    assert!(report.is_clean(), "{topic}: {report}");
    assert_eq!(report.records, expected.len());
    report
}

/// A chain entry that retries and polls fast (tests wait on it).
pub fn fast_retry_entry(chain_id: u64, ws_url: String) -> devstack::service::ChainEntry {
    let mut entry = devstack::service::ChainEntry::new(chain_id, ws_url);
    entry.extra = vec![
        "reconnect_backoff_initial_ms = 100".into(),
        "reconnect_backoff_max_ms = 1000".into(),
        "keepalive_interval_ms = 1000".into(),
        "head_poll_interval_ms = 200".into(),
    ];
    entry
}

/// The hashes of blocks `from..=to` on the node.
pub fn block_hashes(node: &Node, from: u64, to: u64) -> Vec<String> {
    (from..=to)
        .map(|n| {
            node.block(n).expect("block")["hash"]
                .as_str()
                .expect("hash")
                .to_owned()
        })
        .collect()
}

/// One anvil chain (id 31337) with a varied history mined, in a temporary directory, and
/// this test's names on the shared broker. Everything stops when it is dropped.
pub struct Stack {
    pub names: Names,
    pub anvil: devstack::anvil::Anvil,
    pub node: Node,
    pub sender: Sender,
    pub shapes: LogShapes,
    /// Logs mined before the ingestor starts.
    pub history: usize,
    /// Declared last: removed after the processes stopped.
    pub dir: tempfile::TempDir,
}

impl Stack {
    /// Starts anvil (and the shared broker if it is not running yet), and mines
    /// [`mine_history`] of `blocks` with shapes `seed`.
    pub fn start(seed: u64, blocks: usize) -> Self {
        let dir = tempdir();
        shared_brokers();
        let anvil = devstack::anvil::Anvil::start(31337, dir.path()).expect("anvil");
        let node = anvil.node();
        let mut sender = Sender::new(node.clone()).expect("sender");
        let mut shapes = LogShapes::new(seed);
        let history = mine_history(&mut sender, &mut shapes, blocks).expect("history");
        Self {
            names: Names::new(),
            anvil,
            node,
            sender,
            shapes,
            history,
            dir,
        }
    }

    pub fn brokers(&self) -> String {
        shared_brokers()
    }

    /// The chain's topic (this test's own).
    pub fn topic(&self) -> String {
        self.names.topic(31337)
    }

    /// A config for the node with [`fast_retry_entry`] and `extra` lines in its chain table,
    /// under this test's names.
    pub fn config(&self, extra: &[&str]) -> String {
        let mut entry = fast_retry_entry(31337, self.anvil.ws_url());
        entry.extra.extend(extra.iter().map(|l| (*l).to_owned()));
        self.names.config(&self.brokers(), &[entry], "")
    }
}

/// A GET on the health endpoint: the status code and the body.
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect health");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"
    )
    .expect("send");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read");
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    (code, body)
}

/// One chain's entry of `/status`, once the service logged its health address.
pub fn chain_status(service: &Service, chain: &str) -> Option<serde_json::Value> {
    let addr = service.health_addr()?;
    let (code, body) = http_get(&addr, "/status");
    if code != 200 {
        return None;
    }
    let status: serde_json::Value = serde_json::from_str(&body).ok()?;
    Some(status["chains"][chain].clone())
}

/// `metric{chain="<chain>",…}` as `/metrics` serves it (summed over its other labels).
pub fn metric(service: &Service, name: &str, chain: &str) -> Option<f64> {
    let addr = service.health_addr()?;
    let (code, body) = http_get(&addr, "/metrics");
    if code != 200 {
        return None;
    }
    let chain = format!("chain=\"{chain}\"");
    let values: Vec<f64> = body
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(&chain))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

/// Waits (60 s at most) until the service's log contains `needle`; on failure, shows the
/// log's tail.
pub fn wait_for_log(service: &Service, needle: &str) {
    devstack::proc::wait_for(needle, Duration::from_secs(60), || {
        service.process.log_text().contains(needle).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", service.process.log_tail(30)));
}

/// `kill -9`; the service must die of it (no exit code).
pub fn kill_9(service: &mut Service) {
    service.process.signal(libc::SIGKILL);
    assert_eq!(
        service
            .process
            .wait_exit(Duration::from_secs(30))
            .expect("exit"),
        None,
        "killed"
    );
}

/// SIGTERM; the service must exit 0 (everything in flight acknowledged).
pub fn stop_cleanly(service: &mut Service) {
    let code = service.stop(Duration::from_secs(60)).expect("exit");
    assert_eq!(code, Some(0), "{}", service.process.log_tail(20));
}

/// A directory for one test's processes and logs, removed when dropped (kept when
/// `ETHHOOK_KEEP_TEST_DIRS` is set, to read the logs after a failure). A failing test prints
/// the tail of each of its processes' logs anyway ([`devstack::proc::Managed`]).
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("ethhook-test-")
        .disable_cleanup(devstack::proc::keep_test_dirs())
        .tempdir()
        .expect("tempdir")
}

/// The topics and data of a node's JSON log, as bytes: what a hand decoding reads.
pub fn topics_and_data(log: &serde_json::Value) -> (Vec<Vec<u8>>, Vec<u8>) {
    let bytes_of = |v: &serde_json::Value| {
        hex::decode(v.as_str().expect("hex string").trim_start_matches("0x")).expect("hex")
    };
    let topics = log["topics"]
        .as_array()
        .expect("topics")
        .iter()
        .map(bytes_of)
        .collect();
    (topics, bytes_of(&log["data"]))
}

/// A big-endian unsigned integer (a `uint256` word, or any length) in decimal, by long
/// division: what a decoded `uint` must read as.
pub fn decimal(be: &[u8]) -> String {
    devstack::datasets::decimal(be)
}
