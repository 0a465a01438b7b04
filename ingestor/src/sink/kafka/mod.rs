//! The room for Kafka itself: building clients, creating and checking topics, enqueueing
//! one record, the transactional producer, and reading a topic to its end.

mod acks;
mod client;
mod preflight;
mod produce;
mod read;
mod topics;
mod txn;

pub use client::{MAX_MESSAGE_BYTES, Producer, client_config, flush, producer};
pub use preflight::check_cluster;
pub use read::{ReadError, ToEndError, TopicRead};
pub use topics::ensure_topics;
pub use txn::{transactional_id, transactional_producer};

pub(in crate::sink) use acks::Acks;
pub(in crate::sink) use produce::{enqueue, enqueue_checkpoint, outgoing, refused};
pub(in crate::sink) use txn::{aborted, classify};
