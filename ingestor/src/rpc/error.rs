//! The error of one JSON-RPC call, with the retry decision attached.
//!
//! Every failure of a single call is transient from the transport's point of view; what
//! the caller must know is whether the connection is gone ([`RpcError::backend_gone`]) and
//! whether a smaller range may succeed ([`RpcError::is_range_refused`]). Giving up is the
//! follower's decision: it knows about chain ids and configuration.

use super::frame::{FrameError, NodeError};
use super::types::TypeError;

/// Why a call to the node failed.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// The WebSocket could not be opened.
    #[error("cannot connect to {url}: {reason}")]
    Connect {
        /// The redacted URL.
        url: String,
        /// The transport's reason.
        reason: String,
    },
    /// The connection went away (closed, reset, missed keepalive) before the answer came.
    #[error("connection to the node lost: {0}")]
    Disconnected(String),
    /// No answer within the request timeout.
    #[error("`{method}` got no answer within {timeout_ms} ms")]
    Timeout {
        /// The method called.
        method: &'static str,
        /// The timeout that elapsed.
        timeout_ms: u64,
    },
    /// The node sent a frame that is not JSON-RPC; the connection is dropped.
    #[error("malformed frame from the node: {0}")]
    Frame(#[from] FrameError),
    /// The node answered with a JSON-RPC error object.
    #[error("`{method}`: {source}")]
    Node {
        /// The method called.
        method: &'static str,
        /// The node's error.
        source: NodeError,
    },
    /// The node answered, but the result is not what the method promises.
    #[error("`{method}` returned an invalid result: {source}")]
    Invalid {
        /// The method called.
        method: &'static str,
        /// What is wrong.
        source: TypeError,
    },
}

impl RpcError {
    /// Whether the connection is gone and must be re-established before retrying.
    pub fn backend_gone(&self) -> bool {
        matches!(
            self,
            Self::Connect { .. } | Self::Disconnected(_) | Self::Frame(_)
        )
    }

    /// Whether the node refused a ranged query as too large, so a smaller range may succeed.
    pub fn is_range_refused(&self) -> bool {
        match self {
            Self::Node { source, .. } => {
                let m = source.message.to_ascii_lowercase();
                source.code == -32005
                    || m.contains("range")
                    || m.contains("too many")
                    || m.contains("limit")
                    || m.contains("too large")
            }
            Self::Timeout { .. } => true,
            _ => false,
        }
    }

    /// A short, bounded label for metrics and logs (never the raw message).
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Connect { .. } => "connect",
            Self::Disconnected(_) => "disconnected",
            Self::Timeout { .. } => "timeout",
            Self::Frame(_) => "malformed_frame",
            Self::Node { .. } => "node_error",
            Self::Invalid { .. } => "invalid_result",
        }
    }
}
