//! Why a chain's follower stopped or must retry.

use crate::rpc::RpcError;

use super::block::Inconsistent;

/// A follower failure. [`FollowError::is_fatal`] says whether retrying can help.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// A node call failed; reconnect and retry.
    #[error(transparent)]
    Rpc(#[from] RpcError),
    /// The node's answers contradicted each other; retry, nothing was published.
    #[error("inconsistent answer from the node: {0}")]
    Inconsistent(#[from] Inconsistent),
    /// The node serves another chain than configured. Nothing is published.
    #[error(
        "node at {url} reports chain id {actual}, but the config says chain_id = {expected}; fix `chain_id` or the endpoint"
    )]
    ChainIdMismatch {
        /// Configured chain id.
        expected: u64,
        /// The node's `eth_chainId`.
        actual: u64,
        /// Redacted node URL.
        url: String,
    },
    /// No block of the reorg window is canonical any more.
    #[error(
        "chain reorganised deeper than the {window} blocks remembered below block {tip}; \
         stopping rather than leaving orphaned records published. Raise `reorg_window_blocks` \
         (or use `confirmations`/`finality`), then retract by hand or republish into a new topic"
    )]
    ReorgTooDeep {
        /// The last block handed over.
        tip: u64,
        /// Blocks the window held.
        window: usize,
    },
    /// The TLS trust settings cannot be used (a CA file that went away since start-up).
    #[error(transparent)]
    Tls(crate::rpc::tls::TlsConfigError),
    /// A block cannot be encoded for a proof the configuration requires
    /// (`proof = "receipts_root"`): a header field missing, a transaction type of unknown
    /// receipt encoding. Always [`crate::proof::Refusal::Uncovered`].
    #[error(transparent)]
    Unprovable(crate::proof::Refusal),
    /// The sink stopped (its own error is reported by it).
    #[error("the publisher stopped")]
    SinkClosed,
}

impl FollowError {
    /// Whether retrying cannot help: the chain stops.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            Self::ChainIdMismatch { .. }
                | Self::ReorgTooDeep { .. }
                | Self::Tls(_)
                | Self::Unprovable(_)
                | Self::SinkClosed
        )
    }

    /// Every [`Self::error_type`] but the node's own ([`crate::rpc::error::RpcError::TYPES`]):
    /// with those, the labels of stage `follow` that exist at 0 from start-up.
    pub const TYPES: &'static [&'static str] = &[
        "inconsistent_answer",
        "chain_id_mismatch",
        "reorg_too_deep",
        "tls_config",
        "unprovable",
        "sink_closed",
    ];

    /// A short, bounded label for logs and metrics.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Rpc(e) => e.error_type(),
            Self::Inconsistent(_) => "inconsistent_answer",
            Self::ChainIdMismatch { .. } => "chain_id_mismatch",
            Self::ReorgTooDeep { .. } => "reorg_too_deep",
            Self::Tls(_) => "tls_config",
            Self::Unprovable(_) => "unprovable",
            Self::SinkClosed => "sink_closed",
        }
    }
}

impl From<crate::proof::Refusal> for FollowError {
    fn from(r: crate::proof::Refusal) -> Self {
        match r {
            crate::proof::Refusal::Inconsistent(i) => Self::Inconsistent(i),
            r @ crate::proof::Refusal::Uncovered { .. } => Self::Unprovable(r),
        }
    }
}
