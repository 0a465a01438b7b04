//! Durable per-chain progress in a compacted topic (default `ingestor.checkpoints`, key = the
//! chain id in decimal). A checkpoint names the last block whose records were all
//! acknowledged, the reorg window's block hashes, and where the chain topic's records
//! stand. It is the same size whatever the blocks hold: the keys a reorganisation must
//! retract are read back from the chain topic at start-up (see `resume`).

mod codec;
mod legacy;
mod load;

pub use codec::{SCHEMA_JSON, decode, encode, now_ms};
pub use legacy::{LEGACY_SCHEMA_JSON, decode_legacy, encode_legacy};
pub use load::load_all;

use crate::rpc::hex::B256;
use crate::window::WindowBlock;

/// A chain's durable progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// The last fully delivered block.
    pub block_number: u64,
    /// Its hash.
    pub block_hash: B256,
    /// When it was written (ms since the Unix epoch).
    pub updated_at_ms: i64,
    /// The reorg window ending at `block_number`, oldest first. Its blocks' `logs` are
    /// empty: they are rebuilt from the chain topic (a migrated first-format checkpoint
    /// still carries them).
    pub window: Vec<WindowBlock>,
    /// The chain topic's offsets, per partition; empty for a migrated checkpoint.
    pub partitions: Vec<PartitionOffsets>,
    /// Whether it was read from the first format (which listed every key).
    pub migrated: bool,
}

/// Where a chain topic's partition stood when a checkpoint was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionOffsets {
    /// The partition.
    pub partition: i32,
    /// The first record of the window's blocks here (or `next` when there is none).
    pub window_start: i64,
    /// One past the last acknowledged record here.
    pub next: i64,
}

impl Checkpoint {
    /// The record key: the chain id in decimal.
    pub fn key(chain_id: u64) -> String {
        chain_id.to_string()
    }
}

/// Checkpoints could not be read or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Encoding or decoding failed.
    #[error("{0}")]
    Codec(String),
    /// The checkpoint topic could not be read to its end.
    #[error(
        "cannot read checkpoint topic `{topic}`: {source}; check `kafka.brokers` and that the broker is up"
    )]
    Read {
        /// The topic.
        topic: String,
        /// Why.
        #[source]
        source: crate::sink::ReadError,
    },
    /// A record of the checkpoint topic does not decode.
    #[error(
        "checkpoint topic `{topic}`: the record for chain {chain_id} at offset {offset} does not decode: {source}"
    )]
    Record {
        /// The topic.
        topic: String,
        /// The chain its key names.
        chain_id: u64,
        /// Its offset.
        offset: i64,
        /// Why.
        #[source]
        source: Box<CheckpointError>,
    },
}
