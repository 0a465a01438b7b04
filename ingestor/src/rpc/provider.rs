//! What hosted providers' error answers mean: a rate limit (wait, same request again) or a
//! refused log range (ask for fewer blocks). The wording is theirs, and it varies, so this
//! is matched on code and text; the unit tests hold the answers as providers send them.
//!
//! Rate limits are checked first: Infura's rate limit and its result cap share code -32005.
//! A refused batch is checked before both: Erigon says "batch limit … exceeded".

use super::frame::NodeError;

/// Phrases that only rate limits use.
const RATE_PHRASES: &[&str] = &[
    "rate limit",
    "rate-limit",
    "ratelimit",
    "request rate",
    "too many requests",
    "compute units",
    "capacity",
    "request limit reached",
    "limit exceeded",
    "throughput",
    "credits",
];

/// Phrases of a refused log range (too many blocks, logs or bytes).
const RANGE_PHRASES: &[&str] = &[
    "more than",
    "results",
    "response size",
    "range",
    "too large",
    "too many",
    "larger than",
    "size exceeded",
    "exceeds limit",
];

/// Phrases of a refused JSON-RPC batch (too many calls in one batch).
const BATCH_PHRASES: &[&str] = &[
    "batch limit",
    "batch size",
    "batch too large",
    "rpc-max-batch-size",
    "exceeded max limit",
    "batch request limit",
    "batch requests",
    "batch is too",
];

/// Phrases of a method the node does not serve.
const MISSING_METHOD_PHRASES: &[&str] = &[
    "method not found",
    "does not exist",
    "not available",
    "not supported",
    "unsupported method",
    "unknown method",
    "not whitelisted",
];

/// Whether the node refused a JSON-RPC batch for its size: Erigon's "batch limit 100
/// exceeded", Nethermind's and Besu's "batch size too large" or "exceeds
/// --rpc-max-batch-size", a provider's "Exceeded max limit of batch requests". Matched on
/// wording only: the codes (-32000, -32600, -32005) mean other things too.
pub fn is_batch_refusal(e: &NodeError) -> bool {
    let m = e.message.to_ascii_lowercase();
    BATCH_PHRASES.iter().any(|p| m.contains(p))
}

/// Whether the node does not serve the method called: JSON-RPC -32601, or its wording
/// under another code (gateways answer -32600 or -32000 "method … is not available").
pub fn is_method_missing(e: &NodeError) -> bool {
    let m = e.message.to_ascii_lowercase();
    e.code == -32601
        || (m.contains("method") && MISSING_METHOD_PHRASES.iter().any(|p| m.contains(p)))
}

/// Whether the node's error is a rate limit: JSON-RPC code 429 (Alchemy), -32007
/// (QuickNode), -32029, or rate-limit wording under any code (Infura's -32005 "project ID
/// request rate exceeded", BSC's "limit exceeded").
pub fn is_rate_limit(e: &NodeError) -> bool {
    if is_batch_refusal(e) {
        return false;
    }
    let m = e.message.to_ascii_lowercase();
    matches!(e.code, 429 | -32007 | -32029) || RATE_PHRASES.iter().any(|p| m.contains(p))
}

/// Whether the node refused a ranged query as too large, so a smaller range may succeed.
pub fn is_range_refusal(e: &NodeError) -> bool {
    if is_rate_limit(e) || is_batch_refusal(e) || is_method_missing(e) {
        return false;
    }
    let m = e.message.to_ascii_lowercase();
    matches!(e.code, -32005 | -32614) || RANGE_PHRASES.iter().any(|p| m.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(code: i64, message: &str) -> NodeError {
        NodeError {
            code,
            message: message.into(),
        }
    }

    /// As the providers word them (collected from their users' bug reports).
    #[test]
    fn range_refusals_of_real_providers() {
        for (code, text) in [
            // Infura, result cap.
            (
                -32005,
                "query returned more than 10000 results. Try with this block range [0xBDE5F8, 0x102DBCC].",
            ),
            // Infura, block-range cap.
            (-32602, "range 1000000 exceeds limit of 10000"),
            // Alchemy.
            (
                -32602,
                "Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range and no limit on the response size, or you can request any block range with a cap of 10K logs in the response. Based on your parameters and the response size limit, this block range should work: [0x0, 0xd043b8]",
            ),
            (-32600, "Response size is larger than 150MB limit"),
            // QuickNode (sent with HTTP 413).
            (-32614, "eth_getLogs is limited to a 10,000 range"),
            (-32600, "block range too high"),
        ] {
            let err = e(code, text);
            assert!(is_range_refusal(&err), "{text}");
            assert!(!is_rate_limit(&err), "{text}");
        }
    }

    #[test]
    fn rate_limits_of_real_providers() {
        for (code, text) in [
            // Alchemy (sent with HTTP 429).
            (
                429,
                "Your app has exceeded its compute units per second capacity. If you have retries enabled, you can safely ignore this message. If not, check out https://docs.alchemy.com/reference/throughput",
            ),
            // Infura.
            (-32005, "project ID request rate exceeded"),
            (-32005, "daily request count exceeded, request rate limited"),
            // QuickNode.
            (
                -32007,
                "100/second request limit reached - reduce calls per second or upgrade your account at quicknode.com",
            ),
            // Public geth-style endpoints.
            (-32005, "limit exceeded"),
        ] {
            let err = e(code, text);
            assert!(is_rate_limit(&err), "{text}");
            assert!(!is_range_refusal(&err), "{text}");
        }
    }

    #[test]
    fn batch_refusals_of_real_nodes() {
        for (code, text) in [
            // Erigon (one error object with a null id).
            (-32000, "batch limit 100 exceeded: 142 requests given"),
            // Nethermind.
            (-32600, "Batch size too large"),
            // Besu.
            (-32005, "Number of requests exceeds --rpc-max-batch-size"),
            // A hosted provider.
            (-32600, "Exceeded max limit of 10 batch requests"),
            // geth's BatchRequestLimit.
            (-32600, "batch too large"),
        ] {
            let err = e(code, text);
            assert!(is_batch_refusal(&err), "{text}");
            assert!(!is_rate_limit(&err) && !is_range_refusal(&err), "{text}");
        }
    }

    #[test]
    fn missing_methods() {
        for (code, text) in [
            (
                -32601,
                "the method eth_subscribe does not exist/is not available",
            ),
            (-32601, "Method not found"),
            (-32000, "method eth_getBlockReceipts is not supported"),
            (-32600, "Unsupported method: eth_subscribe"),
        ] {
            let err = e(code, text);
            assert!(is_method_missing(&err), "{text}");
            assert!(!is_range_refusal(&err) && !is_batch_refusal(&err), "{text}");
        }
        assert!(!is_method_missing(&e(-32000, "header not found")));
    }

    #[test]
    fn other_errors_are_neither() {
        let err = e(-32000, "header not found");
        assert!(!is_rate_limit(&err) && !is_range_refusal(&err));
    }
}
