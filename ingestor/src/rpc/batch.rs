//! The JSON-RPC batch size one HTTP endpoint takes, learned from its refusals.
//!
//! Every node and provider caps its batches (Nethermind 100, Besu `--rpc-max-batch-size`,
//! Erigon's "batch limit", hosted providers far lower on free plans), and each says so in
//! its own way. A refused batch halves the size, down to 1 (no batching: single requests,
//! pipelined), and the size is kept for the endpoint's later connections. A refusal is
//! never a reason to fail over: the endpoint works, with smaller batches.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::error::RpcError;
use super::frame::Frame;
use super::provider;

/// The batch size in use for one endpoint, shared by its connections.
#[derive(Debug)]
pub struct BatchLimit(AtomicUsize);

impl BatchLimit {
    /// Starts at `max` (the chain's `rpc_batch_max`), at least 1.
    pub fn new(max: usize) -> Self {
        Self(AtomicUsize::new(max.max(1)))
    }

    /// The size in use.
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    /// Halves the size after a batch of `refused` requests was refused, when it is still
    /// above that; returns the new size, or `None` when another refusal already cut it (or
    /// it is 1 already).
    pub fn cut(&self, refused: usize) -> Option<usize> {
        let current = self.get();
        if current <= 1 || refused <= 1 {
            return None;
        }
        let next = (refused.min(current) / 2).max(1);
        self.0
            .compare_exchange(current, next, Ordering::Relaxed, Ordering::Relaxed)
            .ok()
            .map(|_| next)
    }
}

/// Why the node would not take a batch, when that is what its answer says.
pub(super) fn refusal(answer: &Result<Vec<Frame>, RpcError>, ids: &[u64]) -> Option<String> {
    let frames = match answer {
        Ok(frames) => frames,
        // An HTTP 413 without a JSON-RPC answer, for a batch.
        Err(RpcError::Http {
            status: 413,
            detail,
        }) => return Some(format!("HTTP 413: {detail}")),
        // Older Erigon drops the connection on a batch over its limit.
        Err(RpcError::Disconnected(why)) => {
            return Some(format!("connection dropped on the batch ({why})"));
        }
        Err(_) => return None,
    };
    for f in frames {
        match f {
            Frame::Unmatched(e) => return Some(e.to_string()),
            Frame::Response { result: Err(e), .. } if provider::is_batch_refusal(e) => {
                return Some(e.to_string());
            }
            _ => {}
        }
    }
    let answered = frames
        .iter()
        .filter(|f| matches!(f, Frame::Response { id, .. } if ids.contains(id)))
        .count();
    (answered < ids.len()).then(|| format!("answered {answered} of {} requests", ids.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::frame::parse_batch;

    #[test]
    fn halves_down_to_one_and_only_once_per_refusal() {
        let limit = BatchLimit::new(100);
        assert_eq!(limit.cut(100), Some(50));
        assert_eq!(
            limit.cut(100),
            Some(50 / 2),
            "a batch of the old size refused late"
        );
        assert_eq!(limit.get(), 25);
        for _ in 0..10 {
            limit.cut(limit.get());
        }
        assert_eq!(limit.get(), 1);
        assert_eq!(limit.cut(1), None);
        assert_eq!(BatchLimit::new(0).get(), 1);
    }

    #[test]
    fn refusals_as_nodes_send_them() {
        let ids = [1, 2, 3];
        let erigon = parse_batch(
            br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"batch limit 100 exceeded: 142 requests given"}}"#,
        );
        assert!(
            refusal(&erigon.map_err(RpcError::from), &ids)
                .is_some_and(|w| w.contains("batch limit"))
        );
        let per_element = parse_batch(
            br#"[{"jsonrpc":"2.0","id":1,"result":"0x1"},{"jsonrpc":"2.0","id":2,"error":{"code":-32600,"message":"Exceeded max limit of 1 batch requests"}},{"jsonrpc":"2.0","id":3,"error":{"code":-32600,"message":"Exceeded max limit of 1 batch requests"}}]"#,
        );
        assert!(refusal(&per_element.map_err(RpcError::from), &ids).is_some());
        let short = parse_batch(br#"[{"jsonrpc":"2.0","id":1,"result":"0x1"}]"#);
        assert!(
            refusal(&short.map_err(RpcError::from), &ids).is_some_and(|w| w.contains("1 of 3"))
        );
        let too_large = Err(RpcError::Http {
            status: 413,
            detail: "Request Entity Too Large".into(),
        });
        assert!(refusal(&too_large, &ids).is_some());
        let dropped = Err(RpcError::Disconnected("connection reset".into()));
        assert!(refusal(&dropped, &ids).is_some());
    }

    #[test]
    fn other_answers_are_not_refusals() {
        let ids = [1, 2];
        let fine = parse_batch(
            br#"[{"jsonrpc":"2.0","id":2,"result":"0x2"},{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"header not found"}}]"#,
        );
        assert_eq!(refusal(&fine.map_err(RpcError::from), &ids), None);
        let limited = Err(RpcError::RateLimited {
            retry_after: None,
            detail: "slow down".into(),
        });
        assert_eq!(refusal(&limited, &ids), None);
    }
}
