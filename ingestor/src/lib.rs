//! EthHook Ingestor: follows EVM chains over JSON-RPC (WebSocket or HTTP, TLS, several
//! endpoints per chain) and publishes every event log to a Kafka-API topic per chain,
//! Avro-encoded, in block order.
//!
//! # Map
//! - [`backoff`]: capped, jittered exponential backoff (reconnects, rate limits, aborts).
//! - [`config`]: the TOML contract, environment overrides and validation.
//! - [`rpc`]: JSON-RPC over WebSocket (correlation by id, subscriptions, keepalive) or HTTP
//!   (keep-alive, batches), TLS trust, rate-limit waits, providers' error shapes, frame
//!   parsing, log blooms, and the validated chain types ([`rpc::types`]).
//! - [`follower`]: one task per chain; picks an endpoint (failover and failback), walks
//!   `parentHash` from the last processed block to the head, backfills with ranged
//!   `eth_getLogs`, checks every block's logs against its header, and emits
//!   [`follower::BlockLogs`] in order.
//! - [`encode`]: the `EvmLog` Avro schema (embedded from `schemas/evm_log.avsc`) and the
//!   single-object encoding.
//! - [`decode`]: decoded events: ABIs from the configuration, one Avro record schema per
//!   event, and a log decoded into its event's record.
//! - [`sink`]: what to send (a block's records fanned out to the chain and decoded
//!   topics, a retraction's tombstones, the dedup LRU seeded from the topics), the per-chain
//!   pump that sends them with one of two commit policies (idempotent or transactional) and
//!   writes the checkpoint from what the broker acknowledged, and the Kafka room (clients,
//!   topic administration, preflight, reading a topic to its end).
//! - [`registry`]: registering the schema with a Schema Registry at start-up (its id frames
//!   every value).
//! - [`tail`]: `ingestor tail`: a chain topic's records decoded (both wire formats).
//! - [`window`]: the reorg window (recent blocks with their hashes and published keys).
//! - [`checkpoint`]: durable per-chain progress in a compacted topic, loaded at start-up; a
//!   constant size (the window's hashes and the topic's offsets, never keys).
//! - [`resume`]: at start-up, each chain's topic tail read back: the window's keys, blocks
//!   published after the checkpoint (retracted when orphaned), and the dedup seed.
//! - [`supervisor`]: starts one supervised task pair per chain and handles shutdown; in
//!   transactional mode, restarts a chain from its committed checkpoint after an abort; in
//!   group mode, starts and stops chains as the group assigns them.
//! - [`group`]: group mode: chains shared by several instances through Kafka's consumer
//!   group (one membership topic per chain, cooperative rebalancing), fenced by
//!   transactional ids and the group generation.
//! - [`events`]: every log line the service writes goes through here, and updates the
//!   metrics and the health status at the same time.
//! - [`telemetry`]: OTLP export (traces, metrics), the Prometheus text exposition, block
//!   spans, status, librdkafka stats.
//! - [`health`]: `/healthz`, `/readyz`, `/status`, `/metrics` over HTTP.
//! - [`proof`]: the proofs of a block by its hash (the header hash, the receipts root,
//!   recomputed with alloy's consensus, RLP and trie crates), and per chain which of them
//!   are in force (`proof`, `auto` settling them on the chain's first blocks).
//!
//! # Invariants
//! - A chain's blocks are handed to the sink strictly in order, each linked to the previous
//!   one by `parentHash`; a block is never skipped or repeated because of a missed or
//!   duplicated `newHeads` notification (notifications are only wake-ups).
//! - A block counts as delivered only after the broker acknowledged every one of its records.
//!   A failed delivery stops the chain: nothing after it is reported delivered.
//! - The checkpoint only ever names a delivered block; a reorganisation is retracted with
//!   tombstones before any block of the new branch is published, and the checkpoint moves
//!   to the new branch only once its first block is acknowledged.
//! - At start-up the topic, not the checkpoint, says what was published: anything after the
//!   checkpoint is either retracted (orphaned) or skipped when replayed (canonical).
//!
//! # Assumptions
//! - The node answers `eth_getLogs {blockHash}` and ranged `eth_getLogs` with logs whose
//!   `blockHash` matches the header it served; answers that do not are retried, never published.
//! - A block's header carries the standard `logsBloom` of all its logs (unless the chain sets
//!   `proof = "none"`); answers whose logs do not make it are retried. Where the chain's
//!   header hash and receipts root hold ([`proof`]), the header the node answers hashes to
//!   the block hash and its receipts make its `receiptsRoot`.

pub mod backoff;
pub mod checkpoint;
pub mod config;
pub mod cpu;
pub mod decode;
pub mod encode;
pub mod events;
pub mod follower;
pub mod group;
pub mod health;
pub mod proof;
pub mod registry;
pub mod resume;
pub mod rpc;
pub mod shutdown;
pub mod sink;
pub mod supervisor;
pub mod tail;
pub mod telemetry;
pub mod window;
