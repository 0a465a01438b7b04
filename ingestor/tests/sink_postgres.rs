//! The shipped PostgreSQL sinks, `redpanda/connect/jdbc-sink.json` (the chain topic) and
//! `redpanda/connect/jdbc-sink-erc20-transfer.json` (decoded ERC-20 `Transfer`, into the
//! table `redpanda/connect/erc20_transfers.sql` makes), run as shipped (only their topics and
//! hosts replaced) in one worker on the real stack: the ingestor publishing a real chain in
//! the registry's wire format to Apache Kafka, Apicurio Registry (its Confluent-compatible API
//! for the ingestor, its own API for the converter), Kafka Connect with the Debezium JDBC
//! sink and Apicurio's Avro converter, and PostgreSQL. After history, live blocks and a
//! reorganisation that retracts decoded transfers, each table equals the chain field for
//! field: one row per canonical log, `data` as `bytea`, `block_timestamp` a timestamp; one
//! row per canonical transfer, its `value` a `numeric(78,0)` equal to the log's word read by
//! hand (`2**256-1` included); no retracted row in either.
//!
//! A database that refuses the sink, first its password, then the right to create the
//! table, fails the connector's task each time: `FAILED` in Connect's REST status, with
//! PostgreSQL's reason in the worker's log. Nothing is lost: once the role is fixed and the
//! failed task restarted, the table equals the chain, blocks published meanwhile included.

mod common;

use std::time::Duration;

use common::*;
use devstack::apicurio::Apicurio;
use devstack::compare::expected_from_node;
use devstack::connect::{
    Connect, ConnectorConfig, SHIPPED_SINK, SHIPPED_TRANSFER_SINK, SHIPPED_TRANSFER_TABLE,
};
use devstack::node::{Node, quantity};
use devstack::postgres::Postgres;
use devstack::proc::wait_for;
use devstack::service::Service;
use devstack::traffic::{ERC20_ABI, LogSpec, Sender, TRANSFER_SELECTOR, reorg_with_logs};

const TABLE: &str = "evm_logs";
const TRANSFERS: &str = "erc20_transfers";

/// `2**256-1`, the largest `uint256`.
const MAX_UINT256: &str =
    "115792089237316195423570985008687907853269984665640564039457584007913129639935";

/// Every row of the table as text, ordered by key: the timestamp in epoch milliseconds, the
/// topics joined by commas, the data in hex.
const ROW_SQL: &str = "SELECT key, chain_id, block_number, block_hash, \
    (extract(epoch FROM block_timestamp) * 1000)::bigint, transaction_hash, \
    transaction_index, log_index, address, array_to_string(topics, ','), \
    encode(data, 'hex') FROM evm_logs ORDER BY key";

/// The rows the node's canonical chain makes, as [`ROW_SQL`] prints them.
fn rows_of_chain(node: &Node, chain_id: u64) -> Vec<Vec<String>> {
    let head = node.head().expect("head");
    expected_from_node(node, chain_id, 0, head)
        .expect("node logs")
        .into_iter()
        .map(|(key, l)| {
            vec![
                key,
                l.chain_id.to_string(),
                l.block_number.to_string(),
                l.block_hash,
                l.block_timestamp_ms.to_string(),
                l.transaction_hash,
                l.transaction_index.to_string(),
                l.log_index.to_string(),
                l.address,
                l.topics.join(","),
                hex::encode(&l.data),
            ]
        })
        .collect()
}

/// Every row of the transfers table as text, ordered by key: the timestamp in epoch
/// milliseconds, `value` as PostgreSQL prints the `numeric`.
const TRANSFER_SQL: &str = "SELECT key, chain_id, block_number, block_hash, \
    (extract(epoch FROM block_timestamp) * 1000)::bigint, transaction_hash, \
    transaction_index, log_index, address, \"from\", \"to\", value::text \
    FROM erc20_transfers ORDER BY key";

/// An ERC-20 `Transfer` of `value` (a big-endian word) between two accounts.
fn transfer(from: u8, to: u8, value: [u8; 32]) -> LogSpec {
    let account = |byte: u8| {
        let mut w = [0u8; 32];
        w[12..].fill(byte);
        w
    };
    LogSpec {
        topics: vec![TRANSFER_SELECTOR, account(from), account(to)],
        data: value.to_vec(),
    }
}

/// The word whose byte `i` (from the most significant) is `byte`, the others 0.
fn word(i: usize, byte: u8) -> [u8; 32] {
    let mut w = [0u8; 32];
    w[i] = byte;
    w
}

/// The rows the node's canonical ERC-20 transfers make, decoded by hand from its logs (the
/// selector, two indexed addresses, one data word), as [`TRANSFER_SQL`] prints them.
fn transfers_of_chain(node: &Node) -> Vec<Vec<String>> {
    let head = node.head().expect("head");
    let mut rows = Vec::new();
    for log in node.logs(0, head).expect("logs") {
        let (topics, data) = topics_and_data(&log);
        if topics.len() != 3 || topics[0] != TRANSFER_SELECTOR || data.len() != 32 {
            continue;
        }
        let number = quantity(&log["blockNumber"]).expect("number");
        let block = node.block(number).expect("block");
        let ms = quantity(&block["timestamp"]).expect("timestamp") * 1000;
        let tx = log["transactionHash"].as_str().expect("tx");
        let index = quantity(&log["logIndex"]).expect("log index");
        let address = |w: &[u8]| format!("0x{}", hex::encode(&w[12..]));
        rows.push(vec![
            format!("31337:{tx}:{index}"),
            "31337".to_owned(),
            number.to_string(),
            log["blockHash"].as_str().expect("block hash").to_owned(),
            ms.to_string(),
            tx.to_owned(),
            quantity(&log["transactionIndex"])
                .expect("tx index")
                .to_string(),
            index.to_string(),
            log["address"].as_str().expect("address").to_owned(),
            address(&topics[1]),
            address(&topics[2]),
            decimal(&data),
        ]);
    }
    rows.sort();
    rows
}

/// Waits until the table holds exactly the node's canonical chain.
fn assert_table_equals_chain(pg: &Postgres, connect: &Connect, node: &Node, service: &Service) {
    assert_rows_equal(pg, connect, service, "evm_logs", ROW_SQL, || {
        rows_of_chain(node, 31337)
    });
}

/// Waits until the transfers table holds exactly the node's canonical ERC-20 transfers.
fn assert_transfers_equal_chain(pg: &Postgres, connect: &Connect, node: &Node, service: &Service) {
    assert_rows_equal(pg, connect, service, TRANSFERS, TRANSFER_SQL, || {
        transfers_of_chain(node)
    });
}

/// Waits until `sql` returns exactly what `want` says the chain makes.
fn assert_rows_equal(
    pg: &Postgres,
    connect: &Connect,
    service: &Service,
    table: &str,
    sql: &str,
    mut rows_of_chain: impl FnMut() -> Vec<Vec<String>>,
) {
    let mut want = Vec::new();
    let result = wait_for(
        &format!("{table} to equal the chain"),
        Duration::from_secs(180),
        || {
            want = rows_of_chain();
            let rows = pg.query(sql).ok()?;
            (rows == want).then_some(())
        },
    );
    if let Err(e) = result {
        let rows = pg.query(sql).unwrap_or_default();
        let missing = want.iter().filter(|r| !rows.contains(r)).count();
        let extra = rows.iter().filter(|r| !want.contains(r)).count();
        panic!(
            "{e}: {} rows, {} expected, {missing} missing or different, {extra} extra\n\
             first extra: {:?}\nfirst missing: {:?}\n{}\n{}",
            rows.len(),
            want.len(),
            rows.iter().find(|r| !want.contains(r)),
            want.iter().find(|r| !rows.contains(r)),
            connect.report(),
            service.process.log_tail(20)
        );
    }
}

#[test]
fn the_shipped_jdbc_sinks_make_the_tables_equal_to_the_chain() {
    let mut stack = Stack::start(180, 8);
    // Transfers in the history too: the largest uint256, zero, and a small one.
    stack
        .sender
        .block(&[
            vec![transfer(1, 2, [0xff; 32]), transfer(2, 3, [0; 32])],
            vec![transfer(3, 1, word(31, 7))],
        ])
        .expect("history of transfers");
    // One after the other, from this thread: a `Managed` process dies with the thread that
    // spawned it.
    let registry = Apicurio::start(stack.dir.path()).expect("apicurio");
    let pg = Postgres::start(stack.dir.path()).expect("postgres");
    // The transfers table as shipped, made before the sink runs.
    let ddl = std::fs::read_to_string(SHIPPED_TRANSFER_TABLE).expect("erc20_transfers.sql");
    pg.query(&ddl).expect("the transfers table");
    let topic = stack.topic();
    let transfers = format!("{topic}.Transfer");
    std::fs::write(stack.dir.path().join("erc20.json"), ERC20_ABI).expect("abi");
    let chain_topic = format!("topic = {topic:?}");
    let events = format!(
        "[[chains.events]]\nabi = \"erc20.json\"\nnames = [\"Transfer\"]\ntopic = {transfers:?}"
    );
    let toml = format!(
        "{}\n[schema_registry]\nurl = \"{}\"\n",
        stack.config(&[&chain_topic, &events]),
        registry.ccompat_url()
    );
    let mut service = Service::start(BIN.as_ref(), stack.dir.path(), &toml, &[]).expect("ingestor");
    let sinks = [
        ConnectorConfig::local_sink(
            SHIPPED_SINK,
            &topic,
            &pg.jdbc_url(),
            &registry.converter_url(),
        )
        .expect("the shipped sink"),
        ConnectorConfig::local_sink(
            SHIPPED_TRANSFER_SINK,
            &transfers,
            &pg.jdbc_url(),
            &registry.converter_url(),
        )
        .expect("the shipped transfers sink"),
    ];
    let plugins = devstack::tool("CONNECT_PLUGINS").expect("CONNECT_PLUGINS");
    let connect =
        Connect::start(stack.dir.path(), &stack.brokers(), &plugins, &sinks).expect("connect");
    assert_table_equals_chain(&pg, &connect, &stack.node, &service);
    assert_transfers_equal_chain(&pg, &connect, &stack.node, &service);

    // Live blocks, each with a transfer: 2**64, 2**200 (beyond numeric(38)), 2**255. Then a
    // reorganisation of the last two (other transactions, so other keys: their rows must
    // go), then a block on the new branch.
    let values = [word(23, 1), word(6, 1), word(0, 0x80)];
    for (round, value) in values.into_iter().enumerate() {
        stack
            .sender
            .block(&[
                stack.shapes.logs(3 + round),
                vec![transfer(4, 5, value)],
                stack.shapes.logs(2),
            ])
            .expect("live block");
    }
    assert_table_equals_chain(&pg, &connect, &stack.node, &service);
    assert_transfers_equal_chain(&pg, &connect, &stack.node, &service);
    let before = pg.query(TRANSFER_SQL).expect("transfers");
    reorg_with_logs(
        &stack.node,
        2,
        &[vec![
            stack.shapes.log(),
            transfer(6, 7, word(31, 42)),
            stack.shapes.log(),
        ]],
    )
    .expect("reorg");
    let mut sender = Sender::new(stack.node.clone()).expect("sender");
    sender
        .block(&[stack.shapes.logs(3), vec![transfer(7, 8, word(30, 1))]])
        .expect("block on the new branch");
    assert_table_equals_chain(&pg, &connect, &stack.node, &service);
    assert_transfers_equal_chain(&pg, &connect, &stack.node, &service);
    assert!(
        service.process.log_text().contains("chain reorganised"),
        "{}",
        service.process.log_tail(20)
    );
    let after = pg.query(TRANSFER_SQL).expect("transfers");
    let retracted: Vec<_> = before.iter().filter(|r| !after.contains(r)).collect();
    assert_eq!(
        retracted.len(),
        2,
        "the orphaned blocks' transfers: {retracted:?}"
    );
    let values: Vec<&str> = after.iter().map(|r| r[11].as_str()).collect();
    for want in [MAX_UINT256, "0", "7", "18446744073709551616", "42", "256"] {
        assert!(values.contains(&want), "{want} in {values:?}");
    }

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
    assert_eq!(type_of("block_number"), "bigint");
    let primary_key = pg
        .query(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a \
             ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
             WHERE i.indrelid = 'evm_logs'::regclass AND i.indisprimary",
        )
        .expect("primary key");
    assert_eq!(primary_key, [["key"]]);

    // The transfers' columns are typed: value an exact numeric(78,0), addresses text.
    let typed = pg
        .query(
            "SELECT column_name, data_type, coalesce(numeric_precision::text, ''), \
             coalesce(numeric_scale::text, '') FROM information_schema.columns \
             WHERE table_name = 'erc20_transfers' \
             AND column_name IN ('value', 'from', 'to', 'block_timestamp') \
             ORDER BY column_name",
        )
        .expect("columns");
    assert_eq!(
        typed,
        [
            ["block_timestamp", "timestamp without time zone", "", ""],
            ["from", "text", "", ""],
            ["to", "text", "", ""],
            ["value", "numeric", "78", "0"],
        ]
    );
    for name in connect.names() {
        let status = connect.status_of(name).expect("status");
        assert!(status.is_running(), "{name}: {status:?}");
    }
    stop_cleanly(&mut service);
}

/// Asserts that the connector's task is `FAILED` with `rest_says` in the trace of its REST
/// status, and that the worker's log after byte `log_from` holds `postgres_says`, PostgreSQL's
/// own reason, which the REST trace lacks; and that no table was made. Returns the log's
/// length, where the next refusal's lines begin.
fn assert_refused(
    pg: &Postgres,
    connect: &mut Connect,
    log_from: usize,
    rest_says: &str,
    postgres_says: &str,
) -> usize {
    let failure = connect
        .wait_failed(Duration::from_secs(240))
        .unwrap_or_else(|e| panic!("{e}\n{}", connect.process.log_tail(40)));
    let status = connect.status().expect("status");
    assert_eq!(status.connector.state, "RUNNING", "{status:?}");
    assert!(
        failure.starts_with("task 0: ") && failure.contains(rest_says),
        "{failure}"
    );
    let log = connect.process.log_text();
    assert!(
        log.get(log_from..)
            .unwrap_or_default()
            .contains(postgres_says),
        "no {postgres_says:?} in the worker's log:\n{}",
        connect.process.log_tail(60)
    );
    assert!(pg.columns(TABLE).expect("columns").is_empty(), "no table");
    log.len()
}

#[test]
fn a_database_that_refuses_the_sink_fails_its_task_and_loses_nothing() {
    let mut stack = Stack::start(181, 6);
    let registry = Apicurio::start(stack.dir.path()).expect("apicurio");
    let pg = Postgres::start(stack.dir.path()).expect("postgres");
    // A role of the sink's own, as an administrator makes one: its password asked over TCP
    // (scram-sha-256) and not the one the connector was given, and, PostgreSQL 15's default
    // for a role that does not own the database, no right to create tables in `public`.
    pg.query("CREATE ROLE sink LOGIN PASSWORD 'not the connector''s'")
        .expect("role");
    let hba = stack.dir.path().join("postgres/data/pg_hba.conf");
    let rules = std::fs::read_to_string(&hba).expect("pg_hba.conf");
    std::fs::write(
        &hba,
        format!("host all sink 127.0.0.1/32 scram-sha-256\n{rules}"),
    )
    .expect("pg_hba.conf");
    pg.query("SELECT pg_reload_conf()").expect("reload");
    let topic = stack.topic();
    let toml = format!(
        "{}\n[schema_registry]\nurl = \"{}\"\n",
        stack.config(&[]),
        registry.ccompat_url()
    );
    let mut service = Service::start(BIN.as_ref(), stack.dir.path(), &toml, &[]).expect("ingestor");
    let mut sink = ConnectorConfig::local_sink(
        SHIPPED_SINK,
        &topic,
        &pg.jdbc_url(),
        &registry.converter_url(),
    )
    .expect("the shipped sink");
    sink.set("connection.username", "sink").expect("username");
    let password = sink
        .get("connection.password")
        .expect("the shipped sink's password")
        .to_owned();
    let plugins = devstack::tool("CONNECT_PLUGINS").expect("CONNECT_PLUGINS");
    let mut connect = Connect::launch(
        stack.dir.path(),
        &stack.brokers(),
        &plugins,
        std::slice::from_ref(&sink),
    )
    .expect("connect");

    // The wrong password: the task fails as it starts, before reading a record.
    let log_from = assert_refused(
        &pg,
        &mut connect,
        0,
        "Unable to determine Dialect without JDBC metadata",
        "password authentication failed for user \"sink\"",
    );
    // A block while the task is failed: its records wait in the topic.
    stack
        .sender
        .block(&[stack.shapes.logs(2)])
        .expect("live block");
    pg.query(&format!(
        "ALTER ROLE sink PASSWORD '{}'",
        password.replace('\'', "''")
    ))
    .expect("password");
    connect.restart_failed().expect("restart");

    // In, but it may not create the table: the task fails at its first batch.
    assert_refused(
        &pg,
        &mut connect,
        log_from,
        "Could not find table: evm_logs",
        "permission denied for schema public",
    );
    stack
        .sender
        .block(&[stack.shapes.logs(3)])
        .expect("live block");
    pg.query("GRANT CREATE ON SCHEMA public TO sink")
        .expect("grant");
    connect.restart_failed().expect("restart");

    // Every record reaches the table, those published while the task was failed included.
    assert_table_equals_chain(&pg, &connect, &stack.node, &service);
    assert!(connect.status().expect("status").is_running());
    stop_cleanly(&mut service);
}
