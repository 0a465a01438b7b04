//! The local stack EthHook Ingestor is run and tested against: real processes on free
//! loopback ports, stopped when dropped (and killed if the owning thread dies).
//!
//! - [`proc`]: spawning, readiness waits with deadlines, cleanup.
//! - [`anvil`] and [`kafka`]: the pinned chain node and Apache Kafka broker (KRaft, a JVM).
//! - [`node`]: a minimal HTTP JSON-RPC client, independent of the ingestor's own.
//! - [`traffic`]: transactions that emit realistic logs (0-4 topics, empty to >1 KB data,
//!   many per transaction and per block, empty blocks).
//! - [`consumer`]: an independent consumer decoding records with `schemas/evm_log.avsc`.
//! - [`datasets`]: the same for the `blocks` and `transactions` datasets, with their schema
//!   files, as JSON that reads like the node's.
//! - [`events`]: the demo's reader of decoded-event topics, with `ingestor schemas`' schemas.
//! - [`avro_ref`]: fastavro as the reference implementation (fingerprint, decoding).
//! - [`completeness`]: the benchmark of the log completeness check on saturated blooms.
//! - [`compare`]: the node's `eth_getLogs` (or a recorded block's receipts) versus what the
//!   topic holds, field by field.
//! - [`realnode`]: a JSON-RPC node (HTTP and WebSocket) serving one block recorded from a
//!   real chain, `shared/realdata/*.json`, shown at start or released later.
//! - [`service`]: the ingestor binary as a child process with a generated config.
//! - [`apicurio`], [`postgres`] and [`connect`]: the sink stack (Apicurio Registry, a
//!   throwaway PostgreSQL, Kafka Connect running the shipped JDBC sink), from
//!   `scripts/deps-jvm.sh`.

pub mod anvil;
pub mod apicurio;
pub mod avro_ref;
pub mod bench;
pub mod compare;
pub mod completeness;
pub mod connect;
pub mod consumer;
pub mod dataset_lines;
pub mod datasets;
pub mod demo;
pub mod events;
pub mod failover;
pub mod jaeger;
pub mod kafka;
pub mod latency;
pub mod memory;
pub mod node;
pub mod postgres;
pub mod proc;
pub mod realnode;
pub mod service;
pub mod traffic;

/// Where the pinned tools are: `ANVIL_BIN` / `KAFKA_LIBS` / `JAVA_BIN` / `FASTAVRO_PYTHON`
/// (set by `scripts/deps.sh env`).
pub fn tool(var: &str) -> anyhow::Result<std::path::PathBuf> {
    std::env::var_os(var).map(Into::into).ok_or_else(|| {
        anyhow::anyhow!(
            "{var} is not set: run through scripts/test.sh or eval \"$(scripts/deps.sh env)\""
        )
    })
}
