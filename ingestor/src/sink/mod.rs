//! Publishing to the Kafka-API cluster: the shared idempotent producer, topic bootstrap,
//! the per-chain [`Publisher`] and its dedup LRU.

mod client;
mod dedup;
mod error;
mod publisher;

pub use client::{ensure_topic, flush, producer};
pub use dedup::Dedup;
pub use error::SinkError;
pub use publisher::{Delivered, Publisher, record_key};
