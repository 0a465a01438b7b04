//! A block and its logs, assembled from node answers and checked against each other.

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
    /// `log_index` order.
    pub fn assemble(header: Header, logs: Vec<Log>) -> Result<Self, Inconsistent> {
        let mut last: Option<u64> = None;
        for log in &logs {
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
            last = Some(log.log_index);
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
        }
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
        assert!(BlockLogs::assemble(h.clone(), vec![log(&h, 0), log(&h, 1)]).is_ok());
        assert!(BlockLogs::assemble(h.clone(), vec![log(&h, 1), log(&h, 1)]).is_err());
        let other = header(5, 6, 4);
        assert!(BlockLogs::assemble(h, vec![log(&other, 0)]).is_err());
    }

    #[test]
    fn links() {
        assert!(check_link(None, &header(9, 9, 8)).is_ok());
        assert!(check_link(Some((8, B256::new([8; 32]))), &header(9, 9, 8)).is_ok());
        assert!(check_link(Some((8, B256::new([7; 32]))), &header(9, 9, 8)).is_err());
        assert!(check_link(Some((7, B256::new([8; 32]))), &header(9, 9, 8)).is_err());
    }
}
