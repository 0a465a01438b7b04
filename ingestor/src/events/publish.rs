//! Events of the publishers: deliveries, the producer, checkpoints, transactions and topics.

use super::{
    KeyValue, chain_label, debug, error_count, info, metrics, now_ms, now_s, record_lag, status,
    warn,
};

/// Every record of a block was acknowledged by the broker.
pub struct BlockDelivered<'a> {
    /// Chain name.
    pub chain: &'a str,
    /// Block number.
    pub number: u64,
    /// Block hash (log text only).
    pub hash: &'a dyn std::fmt::Display,
    /// Block timestamp (s), when known.
    pub timestamp_s: Option<u64>,
    /// Records acknowledged.
    pub records: usize,
    /// Records skipped by the dedup LRU.
    pub dedup_hits: usize,
    /// From enqueueing the first record to the last acknowledgement, when measured.
    pub produce_s: Option<f64>,
}
impl BlockDelivered<'_> {
    /// Writes the event.
    pub fn emit(self) {
        debug!(
            chain = self.chain, block = self.number, hash = %self.hash, records = self.records,
            dedup_hits = self.dedup_hits, produce_ms = self.produce_s.map(|s| s * 1e3),
            "block delivered"
        );
        let m = metrics();
        let l = chain_label(self.chain);
        m.logs_published.add(self.records as u64, &l);
        m.blocks_processed.add(1, &l);
        if self.dedup_hits > 0 {
            m.dedup_hits.add(self.dedup_hits as u64, &l);
        }
        m.chain_delivered.record(self.number, &l);
        if let Some(p) = self.produce_s {
            m.produce_duration.record(p, &l);
        }
        let ended = status::update(self.chain, |s| {
            s.delivered = Some(self.number);
            s.lag_blocks = s.head.map(|h| h.saturating_sub(self.number));
            if let Some(ts) = self.timestamp_s {
                s.lag_seconds = Some((now_s() - ts as f64).max(0.0));
            }
            record_lag(self.chain, s);
            s.progressed(now_ms(), true)
        });
        if let Some(stall) = ended {
            super::ChainStallEnded {
                chain: self.chain,
                stall: &stall,
            }
            .emit();
        }
    }
}

/// The producer queue is full: the chain waits (never drops).
pub struct ProducerQueueFull<'a> {
    /// Chain name.
    pub chain: &'a str,
}
impl ProducerQueueFull<'_> {
    /// Writes the event.
    pub fn emit(self) {
        debug!(chain = self.chain, "producer queue full, waiting");
    }
}

/// A chain's records have waited longer than `kafka.stall_warning_ms` for the broker's
/// acknowledgement (librdkafka retries them until `kafka.message_timeout_ms`): the chain is
/// paused on the broker.
pub struct PublishStalled<'a> {
    /// Chain name.
    pub chain: &'a str,
    /// How long it has waited.
    pub waited_ms: u64,
}
impl PublishStalled<'_> {
    /// Writes the event.
    pub fn emit(self) {
        warn!(
            chain = self.chain,
            waited_ms = self.waited_ms,
            "publishing stalled: no acknowledgement from the brokers for {} ms; the chain waits \
             (nothing is dropped) until they acknowledge, or fails after kafka.message_timeout_ms",
            self.waited_ms
        );
        metrics().sink_stalled.record(1, &chain_label(self.chain));
        let since_ms = ((now_s() * 1e3) as u64).saturating_sub(self.waited_ms);
        status::update(self.chain, |s| s.stalled_since_ms = Some(since_ms));
    }
}

/// The brokers acknowledged a stalled chain's records again: it continues.
pub struct PublishResumed<'a> {
    /// Chain name.
    pub chain: &'a str,
    /// From the last acknowledgement before the stall to this one.
    pub paused_ms: u64,
}
impl PublishResumed<'_> {
    /// Writes the event.
    pub fn emit(self) {
        info!(
            chain = self.chain,
            paused_ms = self.paused_ms,
            "publishing resumed: the brokers acknowledge again after a pause of {} ms",
            self.paused_ms
        );
        Self::cleared(self.chain);
    }

    /// The chain is no longer stalled; nothing logged (its publisher stopped, and said why).
    pub fn cleared(chain: &str) {
        metrics().sink_stalled.record(0, &chain_label(chain));
        status::update(chain, |s| s.stalled_since_ms = None);
    }
}

/// A transaction was aborted; the chain resumes from its last committed checkpoint.
pub struct TransactionAborted<'a> {
    /// Chain name.
    pub chain: &'a str,
    /// Bounded error type.
    pub error_type: &'static str,
    /// Whether the producer is recreated (fatal error) rather than reused.
    pub recreate_producer: bool,
    /// Delay before the chain resumes.
    pub retry_in_ms: u64,
    /// The error.
    pub error: &'a dyn std::fmt::Display,
}
impl TransactionAborted<'_> {
    /// Writes the event.
    pub fn emit(self) {
        warn!(
            chain = self.chain,
            error_type = self.error_type,
            recreate_producer = self.recreate_producer,
            retry_in_ms = self.retry_in_ms,
            "transaction aborted, resuming from the last committed checkpoint: {}",
            self.error
        );
        error_count(Some(self.chain), "publish", self.error_type);
    }
}

/// The broker acknowledged a chain's checkpoint.
pub struct CheckpointWritten<'a> {
    /// Chain name.
    pub chain: &'a str,
    /// The checkpoint's block.
    pub block: u64,
    /// The record's size.
    pub bytes: usize,
}
impl CheckpointWritten<'_> {
    /// Writes the event.
    pub fn emit(self) {
        debug!(
            chain = self.chain,
            block = self.block,
            bytes = self.bytes,
            "checkpoint written"
        );
    }
}

/// librdkafka reported a client-level error (a broker down, a failed request); it retries.
pub struct KafkaClientError<'a> {
    /// Bounded error type.
    pub error_type: &'static str,
    /// The error.
    pub error: &'a dyn std::fmt::Display,
    /// librdkafka's reason text.
    pub reason: &'a str,
}
impl KafkaClientError<'_> {
    /// Writes the event.
    pub fn emit(self) {
        warn!(
            error_type = self.error_type,
            "kafka client error (librdkafka retries): {}: {}", self.error, self.reason
        );
        error_count(None, "kafka", self.error_type);
    }
}

/// The schema was registered (or found) under a chain topic's subject.
pub struct SchemaRegistered<'a> {
    /// Chain name.
    pub chain: &'a str,
    /// The subject (`<topic>-value`).
    pub subject: &'a str,
    /// The registry's id, written into every value.
    pub schema_id: u32,
}
impl SchemaRegistered<'_> {
    /// Writes the event.
    pub fn emit(self) {
        info!(
            chain = self.chain,
            subject = self.subject,
            schema_id = self.schema_id,
            "schema registered"
        );
    }
}

/// Registering the schema failed in a way that may pass; the request is retried.
pub struct RegistryRetrying<'a> {
    /// The subject (`<topic>-value`).
    pub subject: &'a str,
    /// Failed attempts so far.
    pub attempt: u32,
    /// Pause before the next one.
    pub retry_in_ms: u64,
    /// The failure (its URL redacted; credentials are never part of it).
    pub error: &'a crate::registry::RegistryError,
}
impl RegistryRetrying<'_> {
    /// Writes the event.
    pub fn emit(self) {
        warn!(
            subject = self.subject,
            attempt = self.attempt,
            retry_in_ms = self.retry_in_ms,
            error = %self.error,
            "schema registry not ready, retrying"
        );
    }
}

/// An existing topic differs from what the service would have created.
pub struct TopicDiffers<'a> {
    /// The topic.
    pub topic: &'a str,
    /// The setting (`partitions`, `cleanup.policy`, `max.message.bytes`).
    pub setting: &'static str,
    /// Its value on the broker.
    pub found: &'a str,
    /// What it costs.
    pub why: &'static str,
}
impl TopicDiffers<'_> {
    /// Writes the event.
    pub fn emit(self) {
        warn!(
            topic = self.topic,
            setting = self.setting,
            found = self.found,
            "existing topic differs from what the service creates: {}",
            self.why
        );
    }
}

/// A transaction's commit failed with a retriable error: librdkafka goes on committing in
/// the background, and the commit is called again (not aborted).
pub struct CommitRetried<'a> {
    /// Chain name.
    pub chain: &'a str,
    /// Retries so far.
    pub attempt: u32,
    /// Delay before calling commit again.
    pub retry_in_ms: u64,
    /// The error.
    pub error: &'a dyn std::fmt::Display,
}
impl CommitRetried<'_> {
    /// Writes the event.
    pub fn emit(self) {
        warn!(
            chain = self.chain,
            attempt = self.attempt,
            retry_in_ms = self.retry_in_ms,
            "transaction commit failed with a retriable error, committing again: {}",
            self.error
        );
        error_count(Some(self.chain), "publish", "commit_retried");
    }
}

/// A log that a configured event's selector and address selected does not decode: it is
/// published to the raw topic only (with `raw = false`, nowhere). Counted every time;
/// logged when `log` (at most once a minute per contract and event, the caller decides),
/// with how many went unlogged since.
pub struct DecodeFailed<'a> {
    /// The chain's name.
    pub chain: &'a str,
    /// The event's record name (the metric's `event` label).
    pub event: &'a str,
    /// The contract.
    pub address: &'a crate::rpc::hex::Address,
    /// An example transaction.
    pub tx: &'a crate::rpc::hex::B256,
    /// Why it does not decode.
    pub error: &'a crate::decode::DecodeError,
    /// Write the log line.
    pub log: bool,
    /// Failures of this contract and event not logged since the last line.
    pub unlogged: u64,
    /// Whether the chain publishes its raw topic.
    pub raw: bool,
}

impl DecodeFailed<'_> {
    /// Counts it, and logs it if asked.
    pub fn emit(self) {
        metrics().decode_failures.add(
            1,
            &[
                KeyValue::new("chain", self.chain.to_owned()),
                KeyValue::new("event", self.event.to_owned()),
            ],
        );
        if self.log {
            let kept = match self.raw {
                true => "it is published to the raw topic only",
                false => "it is not published (the chain has `raw = false`)",
            };
            warn!(
                chain = self.chain,
                event = self.event,
                address = %self.address,
                tx = %self.tx,
                reason = self.error.reason(),
                unlogged = self.unlogged,
                "a log of {} does not decode as `{}` ({}); {kept} (e.g. transaction {}; {} more since the last such line)",
                self.address, self.event, self.error, self.tx, self.unlogged
            );
        }
    }
}
