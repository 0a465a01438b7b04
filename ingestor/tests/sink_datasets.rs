//! The shipped PostgreSQL sinks of the datasets, `redpanda/connect/jdbc-sink-blocks.json` and
//! `redpanda/connect/jdbc-sink-transactions.json`, into the tables `evm_blocks.sql` and
//! `evm_transactions.sql` make, run as shipped (only their topics and hosts replaced) in one
//! worker on the real stack: the ingestor publishing a real chain's blocks and transactions
//! in the registry's wire format to Apache Kafka, Apicurio Registry, Kafka Connect with the
//! Debezium JDBC sink and Apicurio's Avro converter, and PostgreSQL.
//!
//! After a history of every transaction shape (plain transfers, reverted and quiet
//! creations, types 0x0, 0x1, 0x2 and 0x4, empty blocks), live blocks, a reorganisation at
//! the same height and one onto a shorter branch, each table equals the node's
//! `eth_getBlockByNumber(n, true)` and `eth_getTransactionReceipt` field by field: one row
//! per canonical block and per canonical transaction, amounts `numeric(78,0)`, bytes
//! `bytea`, times timestamps; no row of an orphaned block or transaction, and no row above
//! the new head. `extra` stays in the topics: the sinks leave it out (the JDBC sink writes a
//! map as an hstore literal without escaping quotes, which an access list's JSON holds).

mod common;

use std::time::Duration;

use common::datasets::{differences, expected_from_node};
use common::*;
use devstack::apicurio::Apicurio;
use devstack::connect::{
    Connect, ConnectorConfig, SHIPPED_BLOCKS_SINK, SHIPPED_BLOCKS_TABLE, SHIPPED_TRANSACTIONS_SINK,
    SHIPPED_TRANSACTIONS_TABLE,
};
use devstack::datasets::View;
use devstack::postgres::Postgres;
use devstack::proc::wait_for;
use devstack::service::Service;
use devstack::traffic::{Sender, reorg_with_logs};
use serde_json::json;

const BLOCKS: &str = "evm_blocks";
const TRANSACTIONS: &str = "evm_transactions";

/// A query printing every row of `table` as `key` and a JSON object of its other columns,
/// each read back by its PostgreSQL type into what the dataset's decoded record holds:
/// `numeric` as decimal text, `bytea` as `0x` hex, a timestamp as epoch milliseconds, the
/// rest as PostgreSQL gives it to JSON.
fn rows_sql(pg: &Postgres, table: &str) -> String {
    let columns = pg.columns(table).expect("columns");
    assert!(!columns.is_empty(), "no table {table}");
    let fields: Vec<String> = columns
        .iter()
        .filter(|(name, _)| name != "key")
        .map(|(name, ty)| {
            let c = format!("\"{name}\"");
            let value = match ty.as_str() {
                t if t.starts_with("numeric") => format!("{c}::text"),
                t if t.starts_with("timestamp") => {
                    format!("(extract(epoch FROM {c}) * 1000)::bigint")
                }
                "bytea" => format!("'0x' || encode({c}, 'hex')"),
                _ => c,
            };
            format!("'{name}', {value}")
        })
        .collect();
    format!(
        "SELECT key, json_build_object({})::text FROM {table} ORDER BY key",
        fields.join(", ")
    )
}

/// The table's rows by key.
fn table_view(pg: &Postgres, sql: &str) -> anyhow::Result<View> {
    pg.query(sql)?
        .into_iter()
        .map(|row| match row.as_slice() {
            [key, object] => Ok((key.clone(), serde_json::from_str(object)?)),
            other => anyhow::bail!("a row of {} fields: {other:?}", other.len()),
        })
        .collect()
}

/// The records' fields the tables hold: all but `extra`.
fn without_extra(view: &View) -> View {
    view.iter()
        .map(|(k, v)| {
            let mut v = v.clone();
            v.as_object_mut().expect("record").remove("extra");
            (k.clone(), v)
        })
        .collect()
}

/// Waits until both tables hold exactly the node's canonical chain.
fn assert_tables_equal_chain(pg: &Postgres, connect: &Connect, s: &Stack, service: &Service) {
    let sql = [
        (BLOCKS, rows_sql(pg, BLOCKS)),
        (TRANSACTIONS, rows_sql(pg, TRANSACTIONS)),
    ];
    let mut diff = Vec::new();
    let result = wait_for(
        "evm_blocks and evm_transactions to equal the chain",
        Duration::from_secs(180),
        || {
            let expected = expected_from_node(&s.node, 31337, s.node.head().ok()?);
            diff.clear();
            for (table, sql) in &sql {
                let want = without_extra(match *table {
                    BLOCKS => &expected.blocks,
                    _ => &expected.transactions,
                });
                match table_view(pg, sql) {
                    Ok(got) => diff.extend(
                        differences(&want, &got)
                            .into_iter()
                            .map(|d| format!("{table} {d}")),
                    ),
                    Err(e) => diff.push(format!("{table}: {e:#}")),
                }
            }
            diff.is_empty().then_some(())
        },
    );
    if let Err(e) = result {
        panic!(
            "{e}: {} differences, the first: {:#?}\n{}\n{}",
            diff.len(),
            &diff[..diff.len().min(20)],
            connect.report(),
            service.process.log_tail(20)
        );
    }
}

#[test]
fn the_shipped_dataset_sinks_make_blocks_and_transactions_tables_equal_to_the_chain() {
    let mut s = Stack::start(182, 5);
    let registry = Apicurio::start(s.dir.path()).expect("apicurio");
    let pg = Postgres::start(s.dir.path()).expect("postgres");
    for ddl in [SHIPPED_BLOCKS_TABLE, SHIPPED_TRANSACTIONS_TABLE] {
        let sql = std::fs::read_to_string(ddl).expect("the shipped table");
        pg.query(&sql).unwrap_or_else(|e| panic!("{ddl}: {e:#}"));
    }
    let topic = s.topic();
    let (blocks, transactions) = (format!("{topic}.blocks"), format!("{topic}.transactions"));
    let lines = [
        r#"datasets = ["logs", "blocks", "transactions"]"#.to_owned(),
        format!("blocks_topic = {blocks:?}"),
        format!("transactions_topic = {transactions:?}"),
    ];
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let toml = format!(
        "{}\n[schema_registry]\nurl = \"{}\"\n",
        s.config(&lines),
        registry.ccompat_url()
    );
    let mut service = Service::start(BIN.as_ref(), s.dir.path(), &toml, &[]).expect("ingestor");
    let sink = |file: &str, topic: &str| {
        ConnectorConfig::local_sink(file, topic, &pg.jdbc_url(), &registry.converter_url())
            .unwrap_or_else(|e| panic!("{file}: {e:#}"))
    };
    let sinks = [
        sink(SHIPPED_BLOCKS_SINK, &blocks),
        sink(SHIPPED_TRANSACTIONS_SINK, &transactions),
    ];
    let plugins = devstack::tool("CONNECT_PLUGINS").expect("CONNECT_PLUGINS");
    let connect = Connect::start(s.dir.path(), &s.brokers(), &plugins, &sinks).expect("connect");
    assert_tables_equal_chain(&pg, &connect, &s, &service);

    // Live: every transaction shape again, then the last two blocks replaced at the same
    // heights by blocks of other transactions (their rows replaced, the orphaned
    // transactions' rows deleted).
    mine_every_shape(&mut s.sender).expect("live blocks");
    assert_tables_equal_chain(&pg, &connect, &s, &service);
    let orphaned = pg
        .query("SELECT key FROM evm_transactions ORDER BY block_number DESC, transaction_index LIMIT 1")
        .expect("the head's transaction");
    let head = s.node.head().expect("head");
    reorg_with_logs(&s.node, 2, &[s.shapes.logs(2), s.shapes.logs(1)]).expect("anvil_reorg");
    s.sender = Sender::new(s.node.clone()).expect("sender");
    assert_eq!(s.node.head().expect("head"), head);
    assert_tables_equal_chain(&pg, &connect, &s, &service);
    let key = match orphaned.as_slice() {
        [row] if row.len() == 1 => &row[0],
        other => panic!("the head's transaction: {other:?}"),
    };
    let still = pg
        .query(&format!(
            "SELECT count(*) FROM evm_transactions WHERE key = '{key}'"
        ))
        .expect("count");
    assert_eq!(still, [["0"]], "the orphaned transaction {key} is deleted");

    // A shorter branch: three blocks removed and one mined; the heights above it are
    // deleted by their tombstones.
    s.node
        .call("anvil_rollback", json!([3]))
        .expect("anvil_rollback");
    s.sender = Sender::new(s.node.clone()).expect("sender");
    s.sender
        .block(&[s.shapes.logs(3)])
        .expect("a block on the shorter branch");
    // The service waits for a node below its last block; the branch grows past the old
    // head, then the tables follow it.
    mine_every_shape(&mut s.sender).expect("live blocks on the new branch");
    assert_tables_equal_chain(&pg, &connect, &s, &service);
    assert!(
        service.process.log_text().contains("chain reorganised"),
        "{}",
        service.process.log_tail(20)
    );

    // The columns are typed: amounts exact, bytes raw, times timestamps; no `extra`.
    let typed = |table: &str, names: &[&str]| -> Vec<(String, String)> {
        pg.columns(table)
            .expect("columns")
            .into_iter()
            .filter(|(n, _)| names.contains(&n.as_str()))
            .collect()
    };
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    };
    assert_eq!(
        typed(
            TRANSACTIONS,
            &["value", "input", "block_timestamp", "status", "extra"]
        ),
        pairs(&[
            ("block_timestamp", "timestamp(3) without time zone"),
            ("value", "numeric(78,0)"),
            ("input", "bytea"),
            ("status", "boolean"),
        ])
    );
    assert_eq!(
        typed(
            BLOCKS,
            &["timestamp", "base_fee_per_gas", "logs_bloom", "extra"]
        ),
        pairs(&[
            ("timestamp", "timestamp(3) without time zone"),
            ("base_fee_per_gas", "numeric(78,0)"),
            ("logs_bloom", "bytea"),
        ])
    );
    for table in [BLOCKS, TRANSACTIONS] {
        let primary_key = pg
            .query(&format!(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a \
                 ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
                 WHERE i.indrelid = '{table}'::regclass AND i.indisprimary"
            ))
            .expect("primary key");
        assert_eq!(primary_key, [["key"]], "{table}");
    }
    // Every shape is in the table: a transfer, a revert, a creation, an empty block.
    let shapes = pg
        .query(
            "SELECT (SELECT count(*) FROM evm_transactions WHERE status = false), \
             (SELECT count(*) FROM evm_transactions WHERE \"to\" IS NULL \
                AND contract_address IS NOT NULL), \
             (SELECT count(*) FROM evm_transactions WHERE input = ''::bytea AND value > 0), \
             (SELECT count(*) FROM evm_blocks WHERE transaction_count = 0), \
             (SELECT count(DISTINCT type) FROM evm_transactions)",
        )
        .expect("shapes");
    let counts: Vec<u64> = shapes[0]
        .iter()
        .map(|c| c.parse().expect("count"))
        .collect();
    assert!(
        counts[..4].iter().all(|&c| c > 0) && counts[4] >= 4,
        "reverted, creations, transfers, empty blocks, types: {counts:?}"
    );
    for name in connect.names() {
        let status = connect.status_of(name).expect("status");
        assert!(status.is_running(), "{name}: {status:?}");
    }
    stop_cleanly(&mut service);
}
