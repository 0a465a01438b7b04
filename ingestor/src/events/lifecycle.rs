//! Events of the process and its chains: start-up, resumption, failures and shutdown.

use super::{ChainState, error, error_count, info, metrics, status};

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

/// A signal arrived during start-up, before any chain ran: nothing was published.
pub struct StoppedBeforePublishing {
    /// The signal's name.
    pub signal: &'static str,
}
impl StoppedBeforePublishing {
    /// Writes the event.
    pub fn emit(self) {
        info!(
            signal = self.signal,
            "stopped during start-up, before publishing"
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
        status::update(self.chain, |s| s.state = ChainState::Stopped);
    }
}

/// A chain starts from its checkpoint (or from `start_block` when it has none), after
/// reading its topic's tail back.
pub struct ChainResumed<'a> {
    /// Chain name.
    pub chain: &'a str,
    /// Chain id.
    pub chain_id: u64,
    /// The checkpoint's block, if any.
    pub checkpoint: Option<u64>,
    /// Whether the checkpoint was in the first format (read, and rewritten in the current
    /// one at the next write).
    pub migrated: bool,
    /// Blocks of reorg window restored.
    pub window: usize,
    /// Records read back from the chain topic.
    pub records_read: usize,
    /// Blocks found on the topic outside the window (settled against the node next).
    pub unconfirmed: usize,
    /// Keys the dedup cache was seeded with.
    pub dedup_seeded: usize,
}
impl ChainResumed<'_> {
    /// Writes the event.
    pub fn emit(self) {
        info!(
            chain = self.chain,
            checkpoint = ?self.checkpoint,
            window = self.window,
            records_read = self.records_read,
            unconfirmed = self.unconfirmed,
            dedup_seeded = self.dedup_seeded,
            migrated = self.migrated,
            "resuming chain"
        );
        metrics().register_chain(self.chain);
        status::update(self.chain, |s| {
            s.chain_id = self.chain_id;
            s.delivered = self.checkpoint;
        });
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
        info!(addr = %self.addr, "health endpoint listening (/healthz, /readyz, /status, /metrics)");
    }
}
