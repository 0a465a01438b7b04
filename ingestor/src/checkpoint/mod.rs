//! Durable per-chain progress in a compacted topic (default `ingestor.checkpoints`, key = the
//! chain id in decimal). A checkpoint names the last block whose records were all
//! acknowledged and carries the reorg window, so a restart resumes exactly there and can
//! retract what blocks orphaned while the service was down had published.

mod codec;
mod load;

pub use codec::{Encoded, SCHEMA_JSON, decode, encode, encode_window};
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
    /// The reorg window ending at `block_number`, oldest first.
    pub window: Vec<WindowBlock>,
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
        "cannot read checkpoint topic `{topic}`: {reason}; check `kafka.brokers` and that the broker is up"
    )]
    Read {
        /// The topic.
        topic: String,
        /// Why.
        reason: String,
    },
}
