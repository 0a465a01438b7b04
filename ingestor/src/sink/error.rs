//! Why publishing stopped.

use rdkafka::error::KafkaError;

use crate::encode::EncodeError;

/// A sink failure. Each one stops its chain: nothing after it is reported delivered.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The producer or admin client could not be created from the settings.
    #[error("kafka client settings rejected: {0}")]
    Client(Box<KafkaError>),
    /// The cluster refused our credentials, our TLS handshake or our client certificate at
    /// start-up.
    #[error("kafka {what} at brokers {brokers}: {reason}; {fix}")]
    Security {
        /// `authentication failed`, `TLS handshake failed` or `TLS client certificate refused`.
        what: &'static str,
        /// The configured brokers.
        brokers: String,
        /// librdkafka's reason, on one line.
        reason: String,
        /// What to check.
        fix: &'static str,
    },
    /// No broker answered at start-up.
    #[error(
        "kafka brokers {brokers} did not answer within {waited_ms} ms (kafka.admin_timeout_ms); check `kafka.brokers` and that the broker is up"
    )]
    Unreachable {
        /// The configured brokers.
        brokers: String,
        /// How long the service waited.
        waited_ms: u64,
    },
    /// Something listens at the brokers' address but does not answer as a broker's client
    /// listener speaking `kafka.security_protocol`: a listener of another protocol, or the
    /// KRaft controller's.
    #[error("kafka brokers {brokers} {seen} ({reason}); {likely}")]
    WrongListener {
        /// The configured brokers.
        brokers: String,
        /// What the service saw.
        seen: String,
        /// librdkafka's reason, on one line.
        reason: String,
        /// What is likely wrong, and what to check.
        likely: String,
    },
    /// A topic could not be created or checked at start-up.
    #[error("topic `{topic}` on brokers {brokers}: {reason}")]
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
    /// A checkpoint could not be encoded.
    #[error("checkpoint: {0}")]
    Checkpoint(crate::checkpoint::CheckpointError),
    /// Transactional mode: another instance with the same `transactional.id` took over.
    #[error(
        "fenced: another instance took over transactional.id `{transactional_id}`; this one stops (hot standby promoted)"
    )]
    Fenced {
        /// The transactional id.
        transactional_id: String,
    },
    /// Transactional mode: the transaction was aborted; the chain resumes from its last
    /// committed checkpoint (with a new producer when `recreate_producer`).
    #[error("transaction aborted: {reason}")]
    Aborted {
        /// Why.
        reason: String,
        /// librdkafka reported a fatal error: the producer must be rebuilt.
        recreate_producer: bool,
    },
    /// The chain topic's tail could not be read back at start-up.
    #[error(transparent)]
    Resume(#[from] crate::resume::ResumeError),
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
    /// Whether the chain resumes from its last committed checkpoint instead of stopping.
    pub fn rewinds(&self) -> bool {
        matches!(self, Self::Aborted { .. })
    }

    /// Every [`Self::error_type`], and `commit_retried` (a retriable commit error): the
    /// labels of stage `publish` that exist at 0 from start-up.
    pub const TYPES: &'static [&'static str] = &[
        "client_config",
        "security",
        "unreachable",
        "wrong_listener",
        "topic",
        "encode",
        "delivery",
        "enqueue",
        "checkpoint",
        "resume",
        "fenced",
        "transaction_aborted",
        "commit_retried",
    ];

    /// A short, bounded label for logs and metrics.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Client(_) => "client_config",
            Self::Security { .. } => "security",
            Self::Unreachable { .. } => "unreachable",
            Self::WrongListener { .. } => "wrong_listener",
            Self::Topic { .. } => "topic",
            Self::Encode(_) => "encode",
            Self::Delivery { .. } => "delivery",
            Self::Enqueue { .. } => "enqueue",
            Self::Checkpoint(_) => "checkpoint",
            Self::Resume(_) => "resume",
            Self::Fenced { .. } => "fenced",
            Self::Aborted { .. } => "transaction_aborted",
        }
    }
}
