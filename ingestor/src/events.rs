//! Every log line the service writes, one struct per event. A call site is one line:
//! `events::ChainConnected { .. }.emit()`, and that `emit()` writes the log line, updates
//! the metrics ([`crate::telemetry::metrics`]) and the chain status behind `/status`
//! together, so logs, metrics and health never drift. Labels stay bounded (chain name,
//! stage, error type); hashes and raw node messages go only into the log text.

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::KeyValue;
use tracing::{debug, error, info, warn};

use crate::telemetry::metrics::{chain_label, metrics};
use crate::telemetry::status::{self, ChainState};

fn error_count(chain: Option<&str>, stage: &'static str, error_type: &'static str) {
    let mut labels = vec![
        KeyValue::new("stage", stage),
        KeyValue::new("error_type", error_type),
    ];
    if let Some(c) = chain {
        labels.push(KeyValue::new("chain", c.to_owned()));
    }
    metrics().errors.add(1, &labels);
}

fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// Records the lag gauges from the chain's status.
fn record_lag(chain: &str, s: &status::ChainStatus) {
    let l = chain_label(chain);
    if let Some(lag) = s.lag_blocks {
        metrics().lag_blocks.record(lag, &l);
    }
    if let Some(lag) = s.lag_seconds {
        metrics().lag_seconds.record(lag, &l);
    }
}

/// The follower opened a connection and verified the chain id.
pub struct ChainConnected<'a> {
    /// Chain name.
    pub chain: &'a str,
    /// Redacted URL.
    pub url: &'a str,
    /// Its index in the chain's `urls`.
    pub endpoint: usize,
    /// The node's head at connect time.
    pub head: u64,
}
impl ChainConnected<'_> {
    /// Writes the event.
    pub fn emit(self) {
        info!(
            chain = self.chain,
            url = self.url,
            endpoint = self.endpoint,
            head = self.head,
            "connected to node"
        );
        metrics()
            .endpoint
            .record(self.endpoint as u64, &chain_label(self.chain));
        let mut reconnect = false;
        status::update(self.chain, |s| {
            s.endpoint = Some(self.endpoint);
            reconnect = s.state != ChainState::Following && s.head.is_some();
            if reconnect {
                s.reconnects += 1;
            }
            s.state = ChainState::Following;
        });
        if reconnect {
            metrics().reconnects.add(1, &chain_label(self.chain));
        }
    }
}

/// A node call failed; the follower retries after `retry_in_ms`.
pub struct NodeCallFailed<'a> {
    /// Chain name.
    pub chain: &'a str,
    /// Index in `urls` of the endpoint that failed.
    pub endpoint: usize,
    /// Index of the endpoint tried next (after `retry_in_ms`).
    pub next_endpoint: usize,
    /// Bounded error type.
    pub error_type: &'static str,
    /// The full error (log text only).
    pub error: &'a dyn std::fmt::Display,
    /// Delay before the next attempt (on a new connection).
    pub retry_in_ms: u64,
}
impl NodeCallFailed<'_> {
    /// Writes the event.
    pub fn emit(self) {
        warn!(
            chain = self.chain,
            endpoint = self.endpoint,
            next_endpoint = self.next_endpoint,
            error_type = self.error_type,
            retry_in_ms = self.retry_in_ms,
            "node call failed, reconnecting: {}",
            self.error
        );
        error_count(Some(self.chain), "follow", self.error_type);
        status::update(self.chain, |s| s.state = ChainState::Connecting);
    }
}

/// The node answered with a rate limit; the same request goes again after `wait_ms`.
pub struct RateLimited<'a> {
    /// Chain name.
    pub chain: &'a str,
    /// The method (bounded: the follower's few `eth_*` calls).
    pub method: &'static str,
    /// The wait before sending it again.
    pub wait_ms: u64,
    /// The provider's answer (log text only).
    pub error: &'a dyn std::fmt::Display,
}
impl RateLimited<'_> {
    /// Writes the event.
    pub fn emit(self) {
        warn!(
            chain = self.chain,
            method = self.method,
            wait_ms = self.wait_ms,
            "rate limited by the node, waiting: {}",
            self.error
        );
        metrics().rate_limited.add(
            1,
            &[
                KeyValue::new("chain", self.chain.to_owned()),
                KeyValue::new("method", self.method),
            ],
        );
    }
}

/// The follower moves to another of the chain's endpoints.
pub struct EndpointSwitch<'a> {
    /// Chain name.
    pub chain: &'a str,
    /// Index of the endpoint it leaves.
    pub from: usize,
    /// Index of the endpoint it tries next.
    pub to: usize,
    /// `failover` (the current one failed) or `failback` (a preferred one is back).
    pub why: &'static str,
}
impl EndpointSwitch<'_> {
    /// Writes the event.
    pub fn emit(self) {
        warn!(
            chain = self.chain,
            from = self.from,
            to = self.to,
            why = self.why,
            "switching node endpoint"
        );
    }
}

/// The node's answer contradicted itself; nothing from it was published.
pub struct InconsistentAnswer<'a> {
    /// Chain name.
    pub chain: &'a str,
    /// What did not match.
    pub what: &'a str,
    /// Delay before asking again.
    pub retry_in_ms: u64,
    /// Asked again on the same connection (else: the session ends and reconnects).
    pub in_place: bool,
}
impl InconsistentAnswer<'_> {
    /// Writes the event.
    pub fn emit(self) {
        warn!(
            chain = self.chain,
            error_type = "inconsistent_answer",
            retry_in_ms = self.retry_in_ms,
            in_place = self.in_place,
            "node answer rejected, retrying: {}",
            self.what
        );
        error_count(Some(self.chain), "follow", "inconsistent_answer");
        if !self.in_place {
            status::update(self.chain, |s| s.state = ChainState::Connecting);
        }
    }
}

/// The node refused a log range; the range shrinks.
pub struct RangeShrunk<'a> {
    /// Chain name.
    pub chain: &'a str,
    /// The refused range, in blocks.
    pub from_blocks: u64,
    /// The new range, in blocks.
    pub to_blocks: u64,
}
impl RangeShrunk<'_> {
    /// Writes the event.
    pub fn emit(self) {
        info!(
            chain = self.chain,
            from_blocks = self.from_blocks,
            to_blocks = self.to_blocks,
            "log range refused, shrinking"
        );
    }
}

/// A catch-up chunk was fetched and handed to the sink.
pub struct BackfillProgress<'a> {
    /// Chain name.
    pub chain: &'a str,
    /// Last block of the chunk.
    pub block: u64,
    /// Head being caught up to.
    pub head: u64,
    /// Logs in the chunk.
    pub logs: usize,
}
impl BackfillProgress<'_> {
    /// Writes the event.
    pub fn emit(self) {
        debug!(
            chain = self.chain,
            block = self.block,
            head = self.head,
            logs = self.logs,
            "backfill chunk fetched"
        );
    }
}

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
            dedup_hits = self.dedup_hits, "block delivered"
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
        status::update(self.chain, |s| {
            s.delivered = Some(self.number);
            s.lag_blocks = s.head.map(|h| h.saturating_sub(self.number));
            if let Some(ts) = self.timestamp_s {
                s.lag_seconds = Some((now_s() - ts as f64).max(0.0));
            }
            record_lag(self.chain, s);
        });
    }
}

/// The follower saw the head it may publish up to.
pub struct HeadSeen<'a> {
    /// Chain name.
    pub chain: &'a str,
    /// The head (tag, less confirmations).
    pub head: u64,
}
impl HeadSeen<'_> {
    /// Updates the head gauge and the lag (no log line: it happens on every poll).
    pub fn emit(self) {
        metrics()
            .chain_head
            .record(self.head, &chain_label(self.chain));
        status::update(self.chain, |s| {
            s.head = Some(self.head);
            s.lag_blocks = s.delivered.map(|d| self.head.saturating_sub(d));
            record_lag(self.chain, s);
        });
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

/// A chain stopped on an error that retrying cannot fix.
pub struct ChainFailed<'a> {
    /// Chain name.
    pub chain: &'a str,
    /// Bounded stage (`follow`, `publish`).
    pub stage: &'static str,
    /// Bounded error type.
    pub error_type: &'static str,
    /// The error.
    pub error: &'a dyn std::fmt::Display,
}
impl ChainFailed<'_> {
    /// Writes the event.
    pub fn emit(self) {
        error!(
            chain = self.chain,
            stage = self.stage,
            error_type = self.error_type,
            "chain stopped: {}",
            self.error
        );
        error_count(Some(self.chain), self.stage, self.error_type);
        status::update(self.chain, |s| s.state = ChainState::Stopped);
    }
}

/// Shutdown began (signal or a failed chain).
pub struct ShutdownStarted<'a> {
    /// Why.
    pub reason: &'a str,
    /// Deadline for in-flight records.
    pub deadline_ms: u64,
}
impl ShutdownStarted<'_> {
    /// Writes the event.
    pub fn emit(self) {
        info!(
            reason = self.reason,
            deadline_ms = self.deadline_ms,
            "shutting down: flushing in-flight records"
        );
    }
}

/// A chain's tasks finished during shutdown, with its last delivered block.
pub struct ChainStopped<'a> {
    /// Chain name.
    pub chain: &'a str,
    /// Last block whose records were all acknowledged.
    pub delivered: Option<u64>,
}
impl ChainStopped<'_> {
    /// Writes the event.
    pub fn emit(self) {
        info!(chain = self.chain, delivered = ?self.delivered, "chain stopped cleanly");
        status::update(self.chain, |s| s.state = ChainState::Stopped);
    }
}

/// The chain reorganised: blocks above `ancestor` were orphaned and are being retracted.
pub struct ChainReorganised<'a> {
    /// Chain name.
    pub chain: &'a str,
    /// Orphaned blocks.
    pub depth: u64,
    /// The common ancestor.
    pub ancestor: u64,
    /// Tombstones to publish (keys not published again by the new blocks).
    pub retracted: usize,
}
impl ChainReorganised<'_> {
    /// Writes the event.
    pub fn emit(self) {
        warn!(
            chain = self.chain,
            depth = self.depth,
            ancestor = self.ancestor,
            retracted = self.retracted,
            "chain reorganised: retracting orphaned blocks"
        );
        let m = metrics();
        let l = chain_label(self.chain);
        m.reorgs.add(1, &l);
        m.reorg_depth.record(self.depth, &l);
        m.retracted.add(self.retracted as u64, &l);
        status::update(self.chain, |s| s.reorgs += 1);
    }
}

/// The circuit breaker in front of one of a chain's endpoints changed state.
pub struct BreakerChanged<'a> {
    /// Chain name.
    pub chain: &'a str,
    /// Index in `urls` of the endpoint.
    pub endpoint: usize,
    /// What made it change (log text only).
    pub error: &'a dyn std::fmt::Display,
    /// The new state.
    pub state: crate::follower::BreakerState,
    /// Delay before the next attempt.
    pub retry_in_ms: u64,
}
impl BreakerChanged<'_> {
    /// Writes the event.
    pub fn emit(self) {
        warn!(
            chain = self.chain,
            endpoint = self.endpoint,
            state = self.state.as_str(),
            retry_in_ms = self.retry_in_ms,
            "circuit breaker changed state: {}",
            self.error
        );
        use crate::follower::BreakerState;
        let value = match self.state {
            BreakerState::Closed => 0,
            BreakerState::HalfOpen => 1,
            BreakerState::Open => 2,
        };
        metrics()
            .breaker_state
            .record(value, &chain_label(self.chain));
        if self.state == BreakerState::Open {
            status::update(self.chain, |s| s.state = ChainState::BreakerOpen);
        }
    }
}

/// A chain starts from its checkpoint (or from `start_block` when it has none).
pub struct ChainResumed<'a> {
    /// Chain name.
    pub chain: &'a str,
    /// Chain id.
    pub chain_id: u64,
    /// The checkpoint's block, if any.
    pub checkpoint: Option<u64>,
    /// Blocks of reorg window restored.
    pub window: usize,
}
impl ChainResumed<'_> {
    /// Writes the event.
    pub fn emit(self) {
        info!(
            chain = self.chain,
            checkpoint = ?self.checkpoint,
            window = self.window,
            "resuming chain"
        );
        metrics().register_chain(self.chain);
        status::update(self.chain, |s| {
            s.chain_id = self.chain_id;
            s.delivered = self.checkpoint;
        });
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
}
impl CheckpointWritten<'_> {
    /// Writes the event.
    pub fn emit(self) {
        debug!(chain = self.chain, block = self.block, "checkpoint written");
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

/// Telemetry export was set up (or not) from the environment.
pub struct TelemetryStarted {
    /// Traces exported.
    pub traces: bool,
    /// Metrics exported.
    pub metrics: bool,
}
impl TelemetryStarted {
    /// Writes the event.
    pub fn emit(self) {
        info!(
            traces = self.traces,
            metrics = self.metrics,
            "OTLP export (set OTEL_EXPORTER_OTLP_ENDPOINT to enable)"
        );
    }
}

/// The health endpoint is listening.
pub struct HealthListening<'a> {
    /// The bound address.
    pub addr: &'a dyn std::fmt::Display,
}
impl HealthListening<'_> {
    /// Writes the event.
    pub fn emit(self) {
        info!(addr = %self.addr, "health endpoint listening (/healthz, /readyz, /status)");
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
