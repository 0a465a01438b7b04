//! The shipped PostgreSQL sink, `redpanda/connect/jdbc-sink.json`, run as shipped (only its
//! topic and hosts replaced) on the real stack: the ingestor publishing a real chain in the
//! registry's wire format to Apache Kafka, Apicurio Registry (its Confluent-compatible API
//! for the ingestor, its own API for the converter), Kafka Connect with the Debezium JDBC
//! sink and Apicurio's Avro converter, and PostgreSQL. After history, live blocks and a
//! reorganisation, the table equals the chain field for field: one row per canonical log,
//! `data` as `bytea`, `block_timestamp` a timestamp, no retracted row.
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
use devstack::connect::{Connect, ConnectorConfig};
use devstack::node::Node;
use devstack::postgres::Postgres;
use devstack::proc::wait_for;
use devstack::service::Service;
use devstack::traffic::{Sender, reorg_with_logs};

const TABLE: &str = "evm_logs";

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

/// Waits until the table holds exactly the node's canonical chain.
fn assert_table_equals_chain(pg: &Postgres, connect: &Connect, node: &Node, service: &Service) {
    let mut want = Vec::new();
    let result = wait_for(
        "the table to equal the chain",
        Duration::from_secs(180),
        || {
            want = rows_of_chain(node, 31337);
            let rows = pg.query(ROW_SQL).ok()?;
            (rows == want).then_some(())
        },
    );
    if let Err(e) = result {
        let rows = pg.query(ROW_SQL).unwrap_or_default();
        let missing = want.iter().filter(|r| !rows.contains(r)).count();
        let extra = rows.iter().filter(|r| !want.contains(r)).count();
        panic!(
            "{e}: {} rows, {} expected, {missing} missing or different, {extra} extra\n\
             first extra: {:?}\nconnector: {:?}\n{}\n{}",
            rows.len(),
            want.len(),
            rows.iter().find(|r| !want.contains(r)),
            connect.status(),
            connect.process.log_tail(30),
            service.process.log_tail(20)
        );
    }
}

#[test]
fn the_shipped_jdbc_sink_makes_the_table_equal_to_the_chain() {
    let mut stack = Stack::start(180, 8);
    // One after the other, from this thread: a `Managed` process dies with the thread that
    // spawned it.
    let registry = Apicurio::start(stack.dir.path()).expect("apicurio");
    let pg = Postgres::start(stack.dir.path()).expect("postgres");
    let topic = stack.topic();
    let toml = format!(
        "{}\n[schema_registry]\nurl = \"{}\"\n",
        stack.config(&[]),
        registry.ccompat_url()
    );
    let mut service = Service::start(BIN.as_ref(), stack.dir.path(), &toml, &[]).expect("ingestor");
    let sink = ConnectorConfig::local_sink(&topic, &pg.jdbc_url(), &registry.converter_url())
        .expect("the shipped sink");
    let plugins = devstack::tool("CONNECT_PLUGINS").expect("CONNECT_PLUGINS");
    let connect =
        Connect::start(stack.dir.path(), &stack.brokers(), &plugins, &sink).expect("connect");
    assert_table_equals_chain(&pg, &connect, &stack.node, &service);

    // Live blocks, then a reorganisation of the last two (other transactions, so other
    // keys: their rows must go), then a block on the new branch.
    for round in 0..3 {
        stack
            .sender
            .block(&[stack.shapes.logs(3 + round), stack.shapes.logs(2)])
            .expect("live block");
    }
    assert_table_equals_chain(&pg, &connect, &stack.node, &service);
    reorg_with_logs(&stack.node, 2, &[stack.shapes.logs(4)]).expect("reorg");
    let mut sender = Sender::new(stack.node.clone()).expect("sender");
    sender
        .block(&[stack.shapes.logs(3)])
        .expect("block on the new branch");
    assert_table_equals_chain(&pg, &connect, &stack.node, &service);
    assert!(
        service.process.log_text().contains("chain reorganised"),
        "{}",
        service.process.log_tail(20)
    );

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
    assert!(connect.status().expect("status").is_running());
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
    let mut sink = ConnectorConfig::local_sink(&topic, &pg.jdbc_url(), &registry.converter_url())
        .expect("the shipped sink");
    sink.set("connection.username", "sink").expect("username");
    let password = sink
        .get("connection.password")
        .expect("the shipped sink's password")
        .to_owned();
    let plugins = devstack::tool("CONNECT_PLUGINS").expect("CONNECT_PLUGINS");
    let mut connect =
        Connect::launch(stack.dir.path(), &stack.brokers(), &plugins, &sink).expect("connect");

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
