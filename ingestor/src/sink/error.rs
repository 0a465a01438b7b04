//! Why publishing stopped.

use rdkafka::error::KafkaError;

use crate::encode::EncodeError;

/// A sink failure. Each one stops its chain: nothing after it is reported delivered.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The producer or admin client could not be created from the settings.
    #[error("kafka client settings rejected: {0}")]
    Client(Box<KafkaError>),
    /// A topic could not be created or checked at start-up.
    #[error(
        "topic `{topic}` on brokers {brokers}: {reason}; check `kafka.brokers` and that the broker is up"
    )]
    Topic {
        /// The topic.
        topic: String,
        /// The configured brokers.
        brokers: String,
        /// The broker's or client's reason.
        reason: String,
    },
    /// A record could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The broker did not acknowledge a record within `kafka.message_timeout_ms`, or refused it.
    #[error("delivery of record {key} (block {block}) to `{topic}` failed: {error}")]
    Delivery {
        /// The topic.
        topic: String,
        /// The record key.
        key: String,
        /// Its block.
        block: u64,
        /// librdkafka's error.
        error: Box<KafkaError>,
    },
    /// The producer went away with records pending (only during a forced shutdown).
    #[error("producer dropped with record {key} (block {block}) unacknowledged")]
    Cancelled {
        /// The record key.
        key: String,
        /// Its block.
        block: u64,
    },
    /// Enqueueing failed for a reason other than a full queue.
    #[error("cannot enqueue record {key}: {error}")]
    Enqueue {
        /// The record key.
        key: String,
        /// librdkafka's error.
        error: Box<KafkaError>,
    },
}

impl SinkError {
    /// A short, bounded label for logs and metrics.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Client(_) => "client_config",
            Self::Topic { .. } => "topic",
            Self::Encode(_) => "encode",
            Self::Delivery { .. } => "delivery",
            Self::Cancelled { .. } => "cancelled",
            Self::Enqueue { .. } => "enqueue",
        }
    }
}
