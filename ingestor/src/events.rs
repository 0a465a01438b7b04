//! Every log line the service writes, one struct per event. A call site is one line:
//! `events::ChainConnected { .. }.emit()`. Labels stay bounded (chain name, stage,
//! error type); hashes and raw node messages go only into the log text, never labels.
//! Metrics hang off these same `emit()`s as they are added, so logs and metrics never drift.

use tracing::{debug, error, info, warn};

/// The follower opened a connection and verified the chain id.
pub struct ChainConnected<'a> {
    /// Chain name.
    pub chain: &'a str,
    /// Redacted URL.
    pub url: &'a str,
    /// The node's head at connect time.
    pub head: u64,
}
impl ChainConnected<'_> {
    /// Writes the event.
    pub fn emit(self) {
        info!(
            chain = self.chain,
            url = self.url,
            head = self.head,
            "connected to node"
        );
    }
}

/// A node call failed; the follower retries after `retry_in_ms`.
pub struct NodeCallFailed<'a> {
    /// Chain name.
    pub chain: &'a str,
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
            error_type = self.error_type,
            retry_in_ms = self.retry_in_ms,
            "node call failed, reconnecting: {}",
            self.error
        );
    }
}

/// The node's answer contradicted itself; nothing from it was published.
pub struct InconsistentAnswer<'a> {
    /// Chain name.
    pub chain: &'a str,
    /// What did not match.
    pub what: &'a str,
}
impl InconsistentAnswer<'_> {
    /// Writes the event.
    pub fn emit(self) {
        warn!(
            chain = self.chain,
            error_type = "inconsistent_answer",
            "node answer rejected, retrying: {}",
            self.what
        );
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
    /// Records acknowledged.
    pub records: usize,
    /// Records skipped by the dedup LRU.
    pub dedup_hits: usize,
}
impl BlockDelivered<'_> {
    /// Writes the event.
    pub fn emit(self) {
        debug!(
            chain = self.chain, block = self.number, hash = %self.hash, records = self.records,
            dedup_hits = self.dedup_hits, "block delivered"
        );
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
    /// The error.
    pub error: &'a dyn std::fmt::Display,
}
impl ChainFailed<'_> {
    /// Writes the event.
    pub fn emit(self) {
        error!(
            chain = self.chain,
            stage = self.stage,
            "chain stopped: {}",
            self.error
        );
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
    }
}

/// The circuit breaker in front of a chain's node changed state.
pub struct BreakerChanged<'a> {
    /// Chain name.
    pub chain: &'a str,
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
            state = self.state.as_str(),
            retry_in_ms = self.retry_in_ms,
            "circuit breaker changed state"
        );
    }
}

/// A chain starts from its checkpoint (or from `start_block` when it has none).
pub struct ChainResumed<'a> {
    /// Chain name.
    pub chain: &'a str,
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
            "transaction aborted, resuming from the last committed checkpoint: {}",
            self.error
        );
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
