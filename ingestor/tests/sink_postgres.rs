//! The shipped PostgreSQL sink, `redpanda/connect/jdbc-sink.json`, run as shipped (only its
//! hosts replaced) on the real stack: Apache Kafka, Apicurio Registry, Kafka Connect with
//! the Debezium JDBC sink and Apicurio's Avro converter, and PostgreSQL. Values are the
//! ingestor's own encoding in the registry's wire format, with the id Apicurio's ccompat API
//! gave the schema; tombstones retract logs as a reorg does. The table ends as the topic's
//! compacted view: one row per live key, equal field by field, retracted keys absent, with
//! `block_timestamp` a timestamp column and `data` `bytea`.
//!
//! Needs the JVM stack (`KAFKA_LIBS`, and `APICURIO_HOME`, `APICURIO_JAVA`, `CONNECT_LIBS`,
//! `CONNECT_PLUGINS`, `POSTGRES_BIN` from `scripts/deps-jvm.sh env`); without `KAFKA_LIBS`
//! it says so and passes.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use devstack::apicurio::Apicurio;
use devstack::connect::{Connect, ConnectorConfig};
use devstack::postgres::Postgres;
use devstack::proc::{Managed, free_port, wait_for, wait_for_port};
use ingestor::encode::{Encoder, Framing, SCHEMA_JSON};
use ingestor::rpc::hex::{Address, B256};
use ingestor::rpc::types::Log;
use rdkafka::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

const CHAIN_ID: u64 = 31337;
const TOPIC: &str = "evm.logs.31337";
const TABLE: &str = "evm_logs";

/// A single-node KRaft broker from `KAFKA_LIBS`.
// TODO(merge): replace with devstack::kafka::Kafka once the broker module lands.
struct Broker {
    _process: Managed,
    port: u16,
}

impl Broker {
    fn start(dir: &Path) -> anyhow::Result<Self> {
        let libs = devstack::tool("KAFKA_LIBS")?;
        let classpath = format!("{}/*", libs.display());
        let (port, controller) = (free_port()?, free_port()?);
        let work = dir.join("kafka");
        std::fs::create_dir_all(&work)?;
        let config = work.join("server.properties");
        std::fs::write(
            &config,
            format!(
                "process.roles=broker,controller\nnode.id=1\n\
                 controller.quorum.voters=1@127.0.0.1:{controller}\n\
                 listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}\n\
                 advertised.listeners=PLAINTEXT://127.0.0.1:{port}\n\
                 controller.listener.names=CONTROLLER\ninter.broker.listener.name=PLAINTEXT\n\
                 listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n\
                 log.dirs={}\nnum.partitions=1\noffsets.topic.replication.factor=1\n\
                 transaction.state.log.replication.factor=1\ntransaction.state.log.min.isr=1\n\
                 group.initial.rebalance.delay.ms=0\n",
                work.join("data").display()
            ),
        )?;
        let format = Command::new("java")
            .args(["-cp", &classpath, "kafka.tools.StorageTool", "format"])
            .args(["-t", "eYl-RbJkTq2UH2ygTL6GgQ", "-c"])
            .arg(&config)
            .output()?;
        anyhow::ensure!(
            format.status.success(),
            "kafka storage format: {}",
            String::from_utf8_lossy(&format.stderr)
        );
        let mut cmd = Command::new("java");
        cmd.args(["-Xmx384m", "-cp", &classpath, "kafka.Kafka"])
            .arg(&config);
        let process = Managed::spawn("kafka", cmd, work.join("kafka.log"))?;
        wait_for_port(port, Duration::from_secs(60))?;
        Ok(Self {
            _process: process,
            port,
        })
    }

    fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// The record key: `<chain_id>:<transaction_hash>:<log_index>`, as the ingestor writes it.
fn record_key(chain_id: u64, tx: &B256, log_index: u64) -> String {
    format!("{chain_id}:{tx}:{log_index}")
}

fn log(block: u64, tx: u8, log_index: u64, topics: usize, data_len: usize) -> Log {
    Log {
        block_number: block,
        block_hash: B256::new([block as u8; 32]),
        transaction_hash: B256::new([tx; 32]),
        transaction_index: u64::from(tx % 3),
        log_index,
        address: Address::new([0xab; 20]),
        topics: (0..topics).map(|t| B256::new([t as u8 + 1; 32])).collect(),
        data: (0..data_len).map(|i| (i % 251) as u8).collect(),
    }
}

fn block_time_s(block: u64) -> u64 {
    1_700_000_000 + block * 12
}

/// The row the table should hold for `log`, as [`ROW_SQL`] prints it.
fn expected_row(log: &Log) -> Vec<String> {
    let topics: Vec<String> = log.topics.iter().map(ToString::to_string).collect();
    vec![
        record_key(CHAIN_ID, &log.transaction_hash, log.log_index),
        CHAIN_ID.to_string(),
        log.block_number.to_string(),
        log.block_hash.to_string(),
        (block_time_s(log.block_number) * 1000).to_string(),
        log.transaction_hash.to_string(),
        log.transaction_index.to_string(),
        log.log_index.to_string(),
        log.address.to_string(),
        topics.join(","),
        hex::encode(&log.data),
    ]
}

const ROW_SQL: &str = "SELECT key, chain_id, block_number, block_hash, \
    (extract(epoch FROM block_timestamp) * 1000)::bigint, transaction_hash, \
    transaction_index, log_index, address, array_to_string(topics, ','), \
    encode(data, 'hex') FROM evm_logs ORDER BY key";

fn produce(producer: &BaseProducer, key: &str, value: Option<&[u8]>) {
    let mut record = BaseRecord::<str, [u8]>::to(TOPIC).key(key);
    if let Some(v) = value {
        record = record.payload(v);
    }
    producer.send(record).map_err(|(e, _)| e).expect("enqueue");
}

/// Waits until the table holds exactly `want` (sorted by key).
fn wait_for_rows(pg: &Postgres, connect: &Connect, want: &[Vec<String>]) {
    let result = wait_for(
        "the table to match the topic",
        Duration::from_secs(120),
        || {
            let rows = pg.query(ROW_SQL).ok()?;
            (rows == want).then_some(())
        },
    );
    if let Err(e) = result {
        panic!(
            "{e}\nrows: {:?}\nconnector: {:?}\n{}",
            pg.query(ROW_SQL),
            connect.status(),
            connect.process.log_tail(40)
        );
    }
}

#[test]
fn the_shipped_jdbc_sink_upserts_by_key_and_deletes_on_tombstones() {
    if std::env::var_os("KAFKA_LIBS").is_none() {
        eprintln!("KAFKA_LIBS is not set: the Kafka Connect sink test did not run");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    // One after the other, from this thread: a `Managed` process dies with the thread that
    // spawned it.
    let timed = |what: &str, since: Instant| eprintln!("{what} ready in {:.1?}", since.elapsed());
    let t = Instant::now();
    let broker = Broker::start(dir.path()).expect("kafka");
    timed("kafka", t);
    let t = Instant::now();
    let registry = Apicurio::start(dir.path()).expect("apicurio");
    timed("apicurio", t);
    let t = Instant::now();
    let pg = Postgres::start(dir.path()).expect("postgres");
    timed("postgres", t);

    // The ingestor's side: the schema registered under the topic's subject, values framed
    // with the id the ccompat API gave.
    let schema_id = registry
        .register(&format!("{TOPIC}-value"), SCHEMA_JSON)
        .expect("register");
    assert!(
        registry
            .schema(schema_id)
            .expect("schema")
            .contains("EvmLog")
    );
    let encoder = Encoder::new(Framing::Registry { schema_id }).expect("encoder");
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.brokers())
        .set("enable.idempotence", "true")
        .create()
        .expect("producer");

    // Three blocks: empty data and no topics, 4 topics and 2.5 KB of data, several logs
    // per transaction. Block 3 is then reorganised away (tombstones) and replaced by a
    // block 3' with one log under a key block 3 also had.
    let mut live = vec![
        log(1, 0x11, 0, 0, 0),
        log(1, 0x11, 1, 4, 2500),
        log(2, 0x22, 2, 1, 32),
        log(2, 0x23, 3, 2, 1),
    ];
    let orphaned = [log(3, 0x33, 4, 3, 100), log(3, 0x34, 5, 0, 7)];
    for l in live.iter().chain(&orphaned) {
        let key = record_key(CHAIN_ID, &l.transaction_hash, l.log_index);
        let value = encoder.encode(CHAIN_ID, block_time_s(l.block_number), l);
        produce(&producer, &key, Some(&value));
    }
    for l in &orphaned {
        produce(
            &producer,
            &record_key(CHAIN_ID, &l.transaction_hash, l.log_index),
            None,
        );
    }
    let mut replacement = log(3, 0x34, 5, 1, 9);
    replacement.block_hash = B256::new([0x3f; 32]);
    let value = encoder.encode(CHAIN_ID, block_time_s(3), &replacement);
    produce(
        &producer,
        &record_key(CHAIN_ID, &replacement.transaction_hash, 5),
        Some(&value),
    );
    live.push(replacement);
    producer.flush(Duration::from_secs(30)).expect("flush");

    let sink = ConnectorConfig::local_sink(TOPIC, &pg.jdbc_url(), &registry.converter_url())
        .expect("the shipped sink");
    let plugins = devstack::tool("CONNECT_PLUGINS").expect("CONNECT_PLUGINS");
    let t = Instant::now();
    let connect = Connect::start(dir.path(), &broker.brokers(), &plugins, &sink).expect("connect");
    timed("connect (connector and task running)", t);
    let t = Instant::now();
    let mut want: Vec<Vec<String>> = live.iter().map(expected_row).collect();
    want.sort();
    wait_for_rows(&pg, &connect, &want);
    timed("the table", t);

    let columns = pg.columns(TABLE).expect("columns");
    let type_of = |name: &str| {
        columns
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.as_str())
            .unwrap_or_else(|| panic!("no column {name} in {columns:?}"))
    };
    assert_eq!(type_of("key"), "text");
    assert!(
        type_of("block_timestamp").starts_with("timestamp"),
        "{columns:?}"
    );
    assert_eq!(type_of("data"), "bytea");
    assert_eq!(type_of("topics"), "text[]");
    assert_eq!(type_of("block_number"), "bigint");
    let primary_key = pg
        .query(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a \
             ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
             WHERE i.indrelid = 'evm_logs'::regclass AND i.indisprimary",
        )
        .expect("primary key");
    assert_eq!(primary_key, [["key"]]);

    // A retraction of a row that is already in the table, in a batch of its own.
    let gone = live.remove(0);
    produce(
        &producer,
        &record_key(CHAIN_ID, &gone.transaction_hash, gone.log_index),
        None,
    );
    producer.flush(Duration::from_secs(30)).expect("flush");
    let mut want: Vec<Vec<String>> = live.iter().map(expected_row).collect();
    want.sort();
    wait_for_rows(&pg, &connect, &want);
    assert!(connect.status().expect("status").is_running());
}
