//! Publishing to the Kafka-API cluster: the shared idempotent producer, topic bootstrap,
//! record construction (logs and tombstones), the per-chain publishers (idempotent or
//! transactional) and the dedup LRU.

mod client;
mod dedup;
mod error;
mod offsets;
mod placed;
mod preflight;
mod produce;
mod progress;
mod publisher;
mod read;
mod records;
mod stall;
mod topics;
mod transactional;

pub use client::{MAX_MESSAGE_BYTES, Producer, client_config, flush, producer};
pub use dedup::{Dedup, digest};
pub use error::SinkError;
pub use offsets::Offsets;
pub use placed::Placed;
pub use preflight::check_cluster;
pub use progress::{Landed, Progress, TopicState};
pub use publisher::{Acked, Outcome, Publisher};
pub use read::{ReadError, ToEndError, TopicRead};
pub use records::{Effect, Framings, OutRecord, parse_key, record_key};
pub use topics::ensure_topics;
pub use transactional::{TransactionalPublisher, transactional_id, transactional_producer};
