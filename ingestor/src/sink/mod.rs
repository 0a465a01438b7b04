//! Publishing to the Kafka-API cluster, in three rooms:
//!
//! - [`records`]: what to send. A block's records (encoded logs on the chain topic, and on
//!   each decoded topic that decodes them) and a retraction's tombstones, with the dedup
//!   LRU and where decoded keys are ([`Placed`]).
//! - [`pump`]: the per-chain pump that sends them in order and advances the checkpoint
//!   after the broker's acknowledgement, under one of two commit policies (idempotent or
//!   transactional).
//! - [`kafka`]: clients, topic administration, preflight and reading a topic to its end.

mod datasets;
mod dedup;
mod error;
mod kafka;
mod placed;
mod pump;
mod records;

pub use datasets::{RecordId, TxPlaced};
pub use dedup::{Dedup, digest};
pub use error::SinkError;
pub use kafka::{
    MAX_MESSAGE_BYTES, Producer, ReadError, ToEndError, TopicRead, check_cluster, client_config,
    ensure_topics, flush, producer, transactional_id, transactional_producer,
};
pub use placed::Placed;
pub use pump::{Commit, Offsets, Outcome, Progress, Pump, TopicState};
pub use records::{Effect, Framings, OutRecord, parse_key, record_key};
