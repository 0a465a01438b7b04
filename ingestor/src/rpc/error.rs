//! The error of one JSON-RPC call, with the retry decision attached.
//!
//! Every failure of a single call is transient from the transport's point of view; what
//! the caller must know is whether the connection is gone ([`RpcError::backend_gone`]),
//! whether a smaller range may succeed ([`RpcError::is_range_refused`]), and whether the
//! provider only asked us to slow down ([`RpcError::rate_limit`]). Giving up is the
//! follower's decision: it knows about chain ids and configuration.

use std::time::Duration;

use super::frame::{FrameError, NodeError};
use super::provider;
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
    /// The TLS handshake failed: an untrusted, expired or mismatched certificate. Retried
    /// behind the breaker like any failed connection.
    #[error("TLS to {url}: {reason}")]
    Tls {
        /// The redacted URL.
        url: String,
        /// What is wrong, on one line.
        reason: String,
    },
    /// The provider is rate-limiting us (HTTP 429, or a JSON-RPC rate-limit error). The
    /// same request is sent again after the wait; ranges do not shrink.
    #[error("HTTP 429 Too Many Requests: {detail}")]
    RateLimited {
        /// `Retry-After`, when the provider gave one.
        retry_after: Option<Duration>,
        /// The provider's message (log text only).
        detail: String,
    },
    /// An answer larger than `max_message_bytes`: a range that must shrink.
    #[error("answer larger than max_message_bytes = {limit_bytes}")]
    TooLarge {
        /// The configured limit.
        limit_bytes: usize,
    },
    /// An HTTP status that carries no JSON-RPC answer (a 401, a load balancer's 502).
    #[error("HTTP status {status} from the node: {detail}")]
    Http {
        /// The status code.
        status: u16,
        /// The start of the body (log text only).
        detail: String,
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
            Self::Connect { .. }
                | Self::Tls { .. }
                | Self::Disconnected(_)
                | Self::Frame(_)
                | Self::Http { .. }
        )
    }

    /// Whether the node refused a ranged query as too large, so a smaller range may succeed.
    pub fn is_range_refused(&self) -> bool {
        match self {
            Self::Node { source, .. } => provider::is_range_refusal(source),
            Self::Timeout { .. } | Self::TooLarge { .. } => true,
            _ => false,
        }
    }

    /// `Some(retry_after)` when the provider is rate-limiting us: wait, then send the same
    /// request again. Never a reason to shrink a range or to open the breaker.
    pub fn rate_limit(&self) -> Option<Option<Duration>> {
        match self {
            Self::RateLimited { retry_after, .. } => Some(*retry_after),
            Self::Node { source, .. } if provider::is_rate_limit(source) => Some(None),
            _ => None,
        }
    }

    /// Every [`Self::error_type`]: the labels that exist at 0 from start-up.
    pub const TYPES: &'static [&'static str] = &[
        "connect",
        "tls",
        "rate_limited",
        "too_large",
        "http_status",
        "disconnected",
        "timeout",
        "malformed_frame",
        "node_error",
        "invalid_result",
    ];

    /// A short, bounded label for metrics and logs (never the raw message).
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Connect { .. } => "connect",
            Self::Tls { .. } => "tls",
            Self::RateLimited { .. } => "rate_limited",
            Self::TooLarge { .. } => "too_large",
            Self::Http { .. } => "http_status",
            Self::Disconnected(_) => "disconnected",
            Self::Timeout { .. } => "timeout",
            Self::Frame(_) => "malformed_frame",
            Self::Node { .. } => "node_error",
            Self::Invalid { .. } => "invalid_result",
        }
    }
}
