//! A block and its logs, assembled from node answers and checked against each other.

use crate::rpc::bloom::Bloom;
use crate::rpc::hex::B256;
use crate::rpc::types::{Header, Log};
use crate::telemetry::trace::FetchTiming;

/// One canonical block as handed to the sink: its header and every log in it, ordered by
/// `log_index`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockLogs {
    /// The header.
    pub header: Header,
    /// The block's logs.
    pub logs: Vec<Log>,
    /// When it was fetched (for its trace).
    pub fetched: FetchTiming,
}

/// The node's answers do not fit together; retry, never publish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Inconsistent(pub String);

impl BlockLogs {
    /// Pairs a header with logs that must all belong to it, in strictly increasing
    /// `log_index` order. With `complete`, they must also be *all* of the block's logs:
    /// indexes 0, 1, 2, … without a gap, and together exactly the header's `logsBloom`
    /// (a lagging provider answers `[]` or a part for a block it has not indexed yet).
    pub fn assemble(header: Header, logs: Vec<Log>, complete: bool) -> Result<Self, Inconsistent> {
        let mut last: Option<u64> = None;
        for (i, log) in logs.iter().enumerate() {
            if log.block_hash != header.hash || log.block_number != header.number {
                return Err(Inconsistent(format!(
                    "log {} says block {} {}, but block {} is {}",
                    log.log_index, log.block_number, log.block_hash, header.number, header.hash
                )));
            }
            if last.is_some_and(|l| log.log_index <= l) {
                return Err(Inconsistent(format!(
                    "block {}: log indexes out of order",
                    header.number
                )));
            }
            if complete && log.log_index != i as u64 {
                return Err(Inconsistent(format!(
                    "block {}: log index {} where {i} was expected (logs missing)",
                    header.number, log.log_index
                )));
            }
            last = Some(log.log_index);
        }
        if complete && Bloom::of_logs(&logs) != header.logs_bloom {
            return Err(Inconsistent(match logs.len() {
                0 => format!(
                    "block {}: logsBloom is not empty but the node returned no logs (not indexed yet?)",
                    header.number
                ),
                n => format!(
                    "block {}: its {n} logs do not make its logsBloom (logs missing or wrong)",
                    header.number
                ),
            }));
        }
        Ok(Self {
            header,
            logs,
            fetched: FetchTiming::since(std::time::SystemTime::now()),
        })
    }
}

/// Checks that `header` extends `parent` (when there is one).
pub(super) fn check_link(parent: Option<(u64, B256)>, header: &Header) -> Result<(), Inconsistent> {
    match parent {
        Some((n, _)) if header.number != n + 1 => Err(Inconsistent(format!(
            "expected block {}, got block {}",
            n + 1,
            header.number
        ))),
        Some((_, hash)) if header.parent_hash != hash => Err(Inconsistent(format!(
            "block {} has parent {}, expected {}",
            header.number, header.parent_hash, hash
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::hex::Address;

    fn header(n: u64, h: u8, p: u8) -> Header {
        Header {
            number: n,
            hash: B256::new([h; 32]),
            parent_hash: B256::new([p; 32]),
            timestamp_s: n,
            logs_bloom: Bloom::default(),
        }
    }

    fn with_bloom(mut h: Header, logs: &[Log]) -> Header {
        h.logs_bloom = Bloom::of_logs(logs);
        h
    }

    fn log(block: &Header, index: u64) -> Log {
        Log {
            block_number: block.number,
            block_hash: block.hash,
            transaction_hash: B256::new([9; 32]),
            transaction_index: 0,
            log_index: index,
            address: Address::new([1; 20]),
            topics: vec![],
            data: vec![],
        }
    }

    #[test]
    fn logs_must_belong_to_the_block_in_order() {
        let h = header(5, 5, 4);
        let logs = vec![log(&h, 0), log(&h, 1)];
        let h = with_bloom(h, &logs);
        assert!(BlockLogs::assemble(h.clone(), logs, true).is_ok());
        assert!(BlockLogs::assemble(h.clone(), vec![log(&h, 1), log(&h, 1)], false).is_err());
        let other = header(5, 6, 4);
        assert!(BlockLogs::assemble(h, vec![log(&other, 0)], false).is_err());
    }

    #[test]
    fn incomplete_answers_are_refused() {
        let h = header(5, 5, 4);
        let mut second = log(&h, 1);
        second.topics = vec![B256::new([7; 32])];
        let all = vec![log(&h, 0), second.clone()];
        let h = with_bloom(h, &all);
        let err = |logs: Vec<Log>| {
            BlockLogs::assemble(h.clone(), logs, true)
                .expect_err("incomplete")
                .0
        };
        assert!(err(vec![]).contains("not empty but the node returned no logs"));
        assert!(
            err(vec![log(&h, 0)]).contains("do not make its logsBloom"),
            "tail missing"
        );
        assert!(
            err(vec![second]).contains("where 0 was expected"),
            "head missing"
        );
        assert!(BlockLogs::assemble(h.clone(), all, true).is_ok());
        // Without the check (a chain whose headers do not follow the standard), it passes.
        assert!(BlockLogs::assemble(h, vec![], false).is_ok());
    }

    #[test]
    fn links() {
        assert!(check_link(None, &header(9, 9, 8)).is_ok());
        assert!(check_link(Some((8, B256::new([8; 32]))), &header(9, 9, 8)).is_ok());
        assert!(check_link(Some((8, B256::new([7; 32]))), &header(9, 9, 8)).is_err());
        assert!(check_link(Some((7, B256::new([8; 32]))), &header(9, 9, 8)).is_err());
    }
}
