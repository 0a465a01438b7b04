//! Events of the followers: connections, endpoints, node answers, the walk and reorganisations.

use super::{
    ChainState, KeyValue, chain_label, debug, error, error_count, info, metrics, now_ms,
    record_lag, status, warn,
};

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
        status::update(self.chain, |s| {
            s.state = ChainState::Connecting;
            s.last_rejection = Some(format!("node call failed: {}", self.error));
        });
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
    /// Which check refused it (bounded: `log_index`, `bloom`, `receipts`, `block`, `link`).
    pub check: &'static str,
    /// Delay before asking again.
    pub retry_in_ms: u64,
    /// Asked again on the same connection (else: the session ends and reconnects).
    pub in_place: bool,
}
impl InconsistentAnswer<'_> {
    /// Writes the event.
    /// Writes the event: the line once a minute at most while the same refusal repeats
    /// (the metric counts each).
    pub fn emit(self) {
        let write = status::update(self.chain, |s| {
            s.last_rejection = Some(format!(
                "node answer rejected ({}): {}",
                self.check, self.what
            ));
            if !self.in_place {
                s.state = ChainState::Connecting;
            }
            status::RepeatedLine::admit(&mut s.rejection_line, self.what, now_ms())
        });
        if let Some(repeated) = write {
            warn!(
                chain = self.chain,
                error_type = "inconsistent_answer",
                retry_in_ms = self.retry_in_ms,
                in_place = self.in_place,
                check = self.check,
                repeated,
                "node answer rejected, retrying: {}",
                self.what
            );
        }
        error_count(Some(self.chain), "follow", "inconsistent_answer");
        super::provider::count_incomplete(self.chain, self.check);
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

/// The follower saw the head it may publish up to.
pub struct HeadSeen<'a> {
    /// Chain name.
    pub chain: &'a str,
    /// The head (tag, less confirmations).
    pub head: u64,
    /// The next block the follower hands over.
    pub next: u64,
}
impl HeadSeen<'_> {
    /// Updates the head gauge and the lag (no log line: it happens on every poll).
    pub fn emit(self) {
        metrics()
            .chain_head
            .record(self.head, &chain_label(self.chain));
        let ended = status::update(self.chain, |s| {
            s.head = Some(self.head);
            s.next_block = Some(self.next);
            s.lag_blocks = s.delivered.map(|d| self.head.saturating_sub(d));
            record_lag(self.chain, s);
            s.progressed(now_ms(), false)
        });
        if let Some(stall) = ended {
            ChainStallEnded {
                chain: self.chain,
                stall: &stall,
            }
            .emit();
        }
    }
}

/// A chain has delivered no block for `health.stall_after_ms` while its node's head is
/// past its last delivered block: one ERROR line when it begins.
pub struct ChainStalled<'a> {
    /// Chain name.
    pub chain: &'a str,
    /// The stall.
    pub stall: &'a status::Stall,
    /// `health.stall_after_ms`.
    pub after_ms: u64,
}
impl ChainStalled<'_> {
    /// Writes the event.
    pub fn emit(self) {
        error!(
            chain = self.chain,
            block = self.stall.block,
            stalled_ms = now_ms().saturating_sub(self.stall.since_ms),
            "chain stalled: block {} not delivered for over {} ms while the node's head moved \
             on; last reason: {}",
            self.stall.block,
            self.after_ms,
            self.stall.reason
        );
        metrics().chain_stalled.record(1, &chain_label(self.chain));
        status::update(self.chain, |s| s.stalled = Some(self.stall.clone()));
    }
}

/// A stalled chain delivered a block again, or its head came back to it.
pub struct ChainStallEnded<'a> {
    /// Chain name.
    pub chain: &'a str,
    /// The stall that ended (already cleared from the status).
    pub stall: &'a status::Stall,
}
impl ChainStallEnded<'_> {
    /// Writes the event.
    pub fn emit(self) {
        info!(
            chain = self.chain,
            block = self.stall.block,
            stalled_ms = now_ms().saturating_sub(self.stall.since_ms),
            "chain moving again: block {} is past its stall",
            self.stall.block
        );
        metrics().chain_stalled.record(0, &chain_label(self.chain));
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

/// Blocks found on the topic after the checkpoint were settled against the node: the
/// canonical ones are replayed (their records skipped as already published), the orphaned
/// ones retracted.
pub struct PublishedBlocksSettled<'a> {
    /// Chain name.
    pub chain: &'a str,
    /// Blocks still canonical.
    pub canonical: usize,
    /// Blocks the node orphaned.
    pub orphaned: usize,
    /// Tombstones for the orphaned blocks' records.
    pub retracted: usize,
    /// Blocks above the node's head, settled later.
    pub unsettled: usize,
}
impl PublishedBlocksSettled<'_> {
    /// Writes the event.
    pub fn emit(self) {
        if self.orphaned > 0 {
            warn!(
                chain = self.chain,
                canonical = self.canonical,
                orphaned = self.orphaned,
                retracted = self.retracted,
                unsettled = self.unsettled,
                "blocks published before the restart were orphaned while it was down: retracting their records"
            );
        } else {
            info!(
                chain = self.chain,
                canonical = self.canonical,
                unsettled = self.unsettled,
                "blocks published before the restart are still canonical: their replay skips what is on the topic"
            );
        }
    }
}
