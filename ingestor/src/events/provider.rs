//! Events of a provider's limits: what the follower learned an endpoint will not do, and
//! how it works around it. Each is said once per connection (or once per cut), never per
//! request.

use super::{KeyValue, chain_label, info, metrics, status, warn};

/// An HTTP endpoint refused a JSON-RPC batch for its size: the size halves.
pub struct BatchCut<'a> {
    /// Chain name.
    pub chain: &'a str,
    /// Requests in the refused batch.
    pub from: usize,
    /// The size used from now on for this endpoint (1: no batching).
    pub to: usize,
    /// The node's answer (log text only).
    pub why: &'a str,
}
impl BatchCut<'_> {
    /// Writes the event.
    pub fn emit(self) {
        warn!(
            chain = self.chain,
            from = self.from,
            to = self.to,
            "node refused a JSON-RPC batch of {} requests; batches of {} from now on for this endpoint: {}",
            self.from,
            self.to,
            self.why
        );
        metrics().batch_cuts.add(1, &chain_label(self.chain));
        BatchSize {
            chain: self.chain,
            size: self.to,
        }
        .emit();
    }
}

/// The batch size in use for the chain's current endpoint.
pub struct BatchSize<'a> {
    /// Chain name.
    pub chain: &'a str,
    /// Requests per batch (1: none; 0: a WebSocket, whose calls are pipelined instead).
    pub size: usize,
}
impl BatchSize<'_> {
    /// Updates the gauge and `/status` (where a WebSocket shows no batch size).
    pub fn emit(self) {
        metrics()
            .batch_size
            .record(self.size as u64, &chain_label(self.chain));
        let size = (self.size > 0).then_some(self.size);
        status::update(self.chain, |s| s.rpc_batch_size = size);
    }
}

/// How the follower learns of new heads on this connection.
pub struct HeadsSource<'a> {
    /// Chain name.
    pub chain: &'a str,
    /// `subscribed` or `polled`.
    pub how: &'static str,
    /// Why it polls (the node's refusal of `eth_subscribe`), when it does over a WebSocket.
    pub refused: Option<&'a dyn std::fmt::Display>,
    /// The poll interval.
    pub poll_ms: u64,
}
impl HeadsSource<'_> {
    /// Writes the event (a line only when a subscription was refused).
    pub fn emit(self) {
        if let Some(why) = self.refused {
            warn!(
                chain = self.chain,
                poll_ms = self.poll_ms,
                "the node refused eth_subscribe; polling the head every {} ms on this connection instead: {why}",
                self.poll_ms
            );
        }
        status::update(self.chain, |s| s.heads = Some(self.how));
    }
}

/// Where the chain's blocks are proven complete from, decided once per endpoint.
pub struct CompletenessSource<'a> {
    /// Chain name.
    pub chain: &'a str,
    /// Index of the endpoint in `urls`.
    pub endpoint: usize,
    /// `block_receipts`, `transaction_receipts` or `none`.
    pub source: &'static str,
}
impl CompletenessSource<'_> {
    /// Writes the event: a warning when the node lacks `eth_getBlockReceipts`.
    pub fn emit(self) {
        if self.source == "transaction_receipts" {
            warn!(
                chain = self.chain,
                endpoint = self.endpoint,
                "the node does not serve eth_getBlockReceipts: each block's logs are proven \
                 complete from its transactions' receipts (eth_getTransactionReceipt, one per \
                 transaction), which costs more requests"
            );
        } else {
            info!(
                chain = self.chain,
                endpoint = self.endpoint,
                source = self.source,
                "log completeness proven from {}",
                self.source
            );
        }
        status::update(self.chain, |s| s.completeness = Some(self.source));
    }
}

/// The proof in force on a chain: said at start-up, and when `auto` settled.
pub struct ProofInForce<'a> {
    /// Chain name.
    pub chain: &'a str,
    /// `chains[].proof`.
    pub configured: &'static str,
    /// The proof in force (see [`crate::proof::Policy::label`]).
    pub proof: &'static str,
}
impl ProofInForce<'_> {
    /// Writes the event.
    pub fn emit(self) {
        info!(
            chain = self.chain,
            configured = self.configured,
            proof = self.proof,
            "blocks proven by {} (proof = {})",
            self.proof,
            self.configured
        );
        status::update(self.chain, |s| s.proof = Some(self.proof));
    }
}

/// `proof = "auto"` settled one check on a chain's block.
pub struct ProofDecided<'a> {
    /// Chain name.
    pub chain: &'a str,
    /// `header_hash` or `receipts_root`.
    pub check: &'static str,
    /// The block that settled it.
    pub block: u64,
    /// Why it does not hold (log text); `None`: it holds, and every later block must pass it.
    pub why: Option<&'a str>,
}
impl ProofDecided<'_> {
    /// Writes the event: a warning when the check does not hold.
    pub fn emit(self) {
        match self.why {
            None => info!(
                chain = self.chain,
                check = self.check,
                block = self.block,
                "proof = auto: block {} proven by its {}; every later block must be",
                self.block,
                self.check
            ),
            Some(why) => warn!(
                chain = self.chain,
                check = self.check,
                block = self.block,
                "proof = auto: the {} does not hold on this chain ({why}); its blocks are proven without it",
                self.check
            ),
        }
    }
}

/// One answer refused by a completeness or consistency check.
pub(crate) fn count_incomplete(chain: &str, check: &'static str) {
    metrics().incomplete_answers.add(
        1,
        &[
            KeyValue::new("chain", chain.to_owned()),
            KeyValue::new("check", check),
        ],
    );
}
