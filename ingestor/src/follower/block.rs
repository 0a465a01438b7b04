//! A block and its logs, assembled from node answers and checked against each other.

use crate::proof::{Policy, Refusal};
use crate::rpc::bloom::Bloom;
use crate::rpc::hex::B256;
use crate::rpc::receipt::Receipt;
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
    /// Its records beyond the logs, when the chain's datasets publish them.
    pub data: Option<Box<super::body::BlockData>>,
}

/// The node's answers do not fit together; retry, never publish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}")]
pub struct Inconsistent {
    /// The check that refused the answer (a bounded metric label): `log_index`, `bloom`,
    /// `receipts`, `block`, `link`, `header_hash` or `receipts_root`.
    pub check: &'static str,
    /// What did not match (log text).
    pub what: String,
}

impl Inconsistent {
    /// An answer refused by `check`.
    pub fn new(check: &'static str, what: impl Into<String>) -> Self {
        Self {
            check,
            what: what.into(),
        }
    }
}

impl BlockLogs {
    /// Pairs a header with logs that must all belong to it, in strictly increasing
    /// `log_index` order. With `complete`, they must also be *all* of the block's logs:
    /// indexes 0, 1, 2, … without a gap, and together exactly the header's `logsBloom`
    /// (a lagging provider answers `[]` or a part for a block it has not indexed yet).
    pub fn assemble(header: Header, logs: Vec<Log>, complete: bool) -> Result<Self, Inconsistent> {
        check_logs(&header, logs.iter(), complete)?;
        Ok(Self {
            header,
            logs,
            fetched: FetchTiming::since(std::time::SystemTime::now()),
            data: None,
        })
    }
}

impl BlockLogs {
    /// The one proof of a block's logs, whatever path fetched it (live or catch-up, either
    /// transport, either receipts method).
    ///
    /// - `receipts` given: [`BlockLogs::from_receipts`], every check.
    /// - `receipts` not fetched: only a zero `logsBloom` proves the block has no log (every
    ///   log sets three bits of it for its address alone), so the block is published with
    ///   none. Its gas is not checked: that check finds receipts missing from an answer,
    ///   and there is no answer. A non-zero bloom without receipts is refused.
    ///
    /// Which blocks need their receipts is [`needs_receipts`]'s to say.
    ///
    /// Then `policy`'s proofs by the block hash (header hash; receipts root when the
    /// receipts were fetched), see [`Policy`].
    pub fn prove(
        header: Header,
        receipts: Option<Vec<Receipt>>,
        policy: &Policy,
    ) -> Result<Self, Refusal> {
        match receipts {
            Some(receipts) => {
                check_receipts(&header, &receipts)?;
                check_logs(&header, receipts.iter().flat_map(|r| &r.logs), true)?;
                policy.judge(&header, Some(&receipts))?;
                Ok(Self::of_receipts(header, receipts))
            }
            None if !needs_receipts(&header, false) => {
                let block = Self::assemble(header, Vec::new(), true)?;
                policy.judge(&block.header, None)?;
                Ok(block)
            }
            None => Err(no_receipts(header.number).into()),
        }
    }

    /// The block of `header` with the logs of its `receipts`, proven complete: one receipt
    /// per transaction (indexes 0, 1, 2, … without a gap, at least as many as the block's
    /// transactions where the header listed them, and the last one's `cumulativeGasUsed`
    /// equal to the header's `gasUsed`, so no receipt is missing at the end either, unless
    /// its transaction used no gas and the count was not listed), every receipt and log
    /// naming this block and its transaction, and the logs together passing [`BlockLogs::assemble`]'s
    /// checks (log indexes without a gap, exactly the header's `logsBloom`).
    pub fn from_receipts(header: Header, receipts: Vec<Receipt>) -> Result<Self, Inconsistent> {
        check_receipts(&header, &receipts)?;
        check_logs(&header, receipts.iter().flat_map(|r| &r.logs), true)?;
        Ok(Self::of_receipts(header, receipts))
    }

    /// The block of `header` with the logs of `receipts`, which passed [`check_receipts`]
    /// and [`check_logs`].
    fn of_receipts(header: Header, receipts: Vec<Receipt>) -> Self {
        let mut logs = Vec::with_capacity(receipts.iter().map(|r| r.logs.len()).sum());
        for r in receipts {
            logs.extend(r.logs);
        }
        Self {
            header,
            logs,
            fetched: FetchTiming::since(std::time::SystemTime::now()),
            data: None,
        }
    }
}

/// [`BlockLogs::from_receipts`]'s checks of the receipts themselves: one per transaction
/// in order (at least as many as the transactions the header lists), each naming this
/// block, each log naming its transaction, the gas adding up.
fn check_receipts(header: &Header, receipts: &[Receipt]) -> Result<(), Inconsistent> {
    let n = header.number;
    let count = receipts.len() as u64;
    // The gas rule below misses a last receipt whose transaction used no gas (Tempo's and
    // Arbitrum's system transactions use none); the block's count of transactions, where
    // the node listed them, does not.
    if let Some(txs) = header.transactions
        && count < txs
    {
        return Err(Inconsistent::new(
            "receipts",
            format!("block {n}: {count} receipts for its {txs} transactions (receipts missing)"),
        ));
    }
    let mut gas = 0;
    for (i, r) in receipts.iter().enumerate() {
        if r.block_hash != header.hash || r.block_number != n {
            return Err(Inconsistent::new(
                "block",
                format!(
                    "receipt of transaction {} says block {} {}, but block {n} is {}",
                    r.transaction_index, r.block_number, r.block_hash, header.hash
                ),
            ));
        }
        if r.transaction_index != i as u64 || r.cumulative_gas_used < gas {
            return Err(Inconsistent::new(
                "receipts",
                format!(
                    "block {n}: receipt of transaction {} where {i} was expected (receipts missing or out of order)",
                    r.transaction_index
                ),
            ));
        }
        if let Some(stray) = r.logs.iter().find(|l| {
            l.transaction_index != r.transaction_index || l.transaction_hash != r.transaction_hash
        }) {
            return Err(Inconsistent::new(
                "receipts",
                format!(
                    "block {n}: log {} is listed in the receipt of transaction {i} but names transaction {}",
                    stray.log_index, stray.transaction_index
                ),
            ));
        }
        gas = r.cumulative_gas_used;
    }
    if gas != header.gas_used {
        return Err(Inconsistent::new(
            "receipts",
            format!(
                "block {n}: its receipts account for {gas} gas, the header for {} (receipts missing)",
                header.gas_used
            ),
        ));
    }
    Ok(())
}

/// [`BlockLogs::assemble`]'s checks of `logs` against `header`.
fn check_logs<'l>(
    header: &Header,
    logs: impl Iterator<Item = &'l Log> + Clone,
    complete: bool,
) -> Result<(), Inconsistent> {
    let mut last: Option<u64> = None;
    for (i, log) in logs.clone().enumerate() {
        if log.block_hash != header.hash || log.block_number != header.number {
            return Err(Inconsistent::new(
                "block",
                format!(
                    "log {} says block {} {}, but block {} is {}",
                    log.log_index, log.block_number, log.block_hash, header.number, header.hash
                ),
            ));
        }
        if last.is_some_and(|l| log.log_index <= l) {
            return Err(Inconsistent::new(
                "log_index",
                format!("block {}: log indexes out of order", header.number),
            ));
        }
        if complete && log.log_index != i as u64 {
            return Err(Inconsistent::new(
                "log_index",
                format!(
                    "block {}: log index {} where {i} was expected (logs missing)",
                    header.number, log.log_index
                ),
            ));
        }
        last = Some(log.log_index);
    }
    if complete && Bloom::of_logs(logs.clone()) != header.logs_bloom {
        return Err(Inconsistent::new(
            "bloom",
            match logs.count() {
                0 => format!(
                    "block {}: logsBloom is not empty but the node returned no logs (not indexed yet?)",
                    header.number
                ),
                n => format!(
                    "block {}: its {n} logs do not make its logsBloom (logs missing or wrong)",
                    header.number
                ),
            },
        ));
    }
    Ok(())
}

/// The node answered no receipts (`null`) for block `number`.
pub(super) fn no_receipts(number: u64) -> Inconsistent {
    Inconsistent::new(
        "receipts",
        format!("block {number}: the node has no receipts for it (not indexed yet?)"),
    )
}

/// Whether `header`'s block needs its receipts: always when the transactions are
/// published (`all`); else not when its `logsBloom` is zero, which on its own proves the
/// block has no log (see [`BlockLogs::prove`]).
pub(super) fn needs_receipts(header: &Header, all: bool) -> bool {
    all || !header.logs_bloom.is_zero()
}

/// Checks that `header` extends `parent` (when there is one).
pub(super) fn check_link(parent: Option<(u64, B256)>, header: &Header) -> Result<(), Inconsistent> {
    match parent {
        Some((n, _)) if header.number != n + 1 => Err(Inconsistent::new(
            "link",
            format!("expected block {}, got block {}", n + 1, header.number),
        )),
        Some((_, hash)) if header.parent_hash != hash => Err(Inconsistent::new(
            "link",
            format!(
                "block {} has parent {}, expected {}",
                header.number, header.parent_hash, hash
            ),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proof::Level;
    use crate::rpc::hex::Address;

    /// Today's proof: the receipts, no proof by the block hash.
    fn receipts_only() -> Policy {
        Policy::new("test", Level::Receipts)
    }

    fn refusal(r: Refusal) -> Inconsistent {
        match r {
            Refusal::Inconsistent(i) => i,
            other => panic!("not an inconsistent answer: {other}"),
        }
    }

    fn header(n: u64, h: u8, p: u8) -> Header {
        Header {
            number: n,
            hash: B256::new([h; 32]),
            parent_hash: B256::new([p; 32]),
            timestamp_s: n,
            logs_bloom: Bloom::default(),
            gas_used: 0,
            transactions: None,
            sealed: Default::default(),
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
                .what
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

    fn receipt(block: &Header, index: u64, gas: u64, logs: Vec<Log>) -> Receipt {
        Receipt {
            transaction_hash: B256::new([index as u8 + 1; 32]),
            transaction_index: index,
            block_hash: block.hash,
            block_number: block.number,
            cumulative_gas_used: gas,
            logs,
            consensus: Err(crate::rpc::types::TypeError::Missing("type")),
            fields: None,
        }
    }

    /// Logs of transaction `tx` with block indexes `from..from + n`, all alike (a busy
    /// token: the bloom cannot tell one missing).
    fn tx_logs(block: &Header, tx: u64, from: u64, n: u64) -> Vec<Log> {
        (from..from + n)
            .map(|i| {
                let mut l = log(block, i);
                l.transaction_index = tx;
                l.transaction_hash = B256::new([tx as u8 + 1; 32]);
                l
            })
            .collect()
    }

    #[test]
    fn receipts_prove_a_block_complete() {
        let mut h = header(7, 7, 6);
        let all = [tx_logs(&h, 0, 0, 3), tx_logs(&h, 1, 3, 2)].concat();
        h = with_bloom(h, &all);
        h.gas_used = 90_000;
        let full = || {
            vec![
                receipt(&h, 0, 50_000, tx_logs(&h, 0, 0, 3)),
                receipt(&h, 1, 90_000, tx_logs(&h, 1, 3, 2)),
            ]
        };
        let block = BlockLogs::from_receipts(h.clone(), full()).expect("complete");
        assert_eq!(block.logs, all);

        let refused = |receipts: Vec<Receipt>| {
            BlockLogs::from_receipts(h.clone(), receipts).expect_err("incomplete")
        };
        // The last receipt missing: the gas does not add up (its logs' bloom would not tell).
        let mut short = full();
        short.pop();
        let err = refused(short);
        assert_eq!(err.check, "receipts", "{err}");
        assert!(
            err.what.contains("50000 gas, the header for 90000"),
            "{err}"
        );
        // A receipt missing in the middle.
        let mut gap = full();
        gap.remove(0);
        assert_eq!(refused(gap).check, "receipts");
        // A receipt's last log missing, alike to the others: its log indexes still run on,
        // and the bloom is the same; the next receipt's first index shows the gap.
        let mut cut = full();
        cut[0].logs.pop();
        assert_eq!(refused(cut).check, "log_index");
        // A receipt of another block.
        let mut other = full();
        other[1].block_hash = B256::new([0xee; 32]);
        assert_eq!(refused(other).check, "block");
        // A log listed under the wrong transaction.
        let mut moved = full();
        let stray = moved[1].logs.remove(0);
        moved[0].logs.push(stray);
        assert_eq!(refused(moved).check, "receipts");
        // No receipts at all for a block that used gas.
        assert_eq!(refused(vec![]).check, "receipts");
        // A last transaction of no gas (a system transaction): its receipt missing shows
        // only in the count of transactions the header lists.
        let mut free = h.clone();
        free.transactions = Some(3);
        let mut with_free = full();
        with_free.push(receipt(&h, 2, 90_000, vec![]));
        assert!(BlockLogs::from_receipts(free.clone(), with_free).is_ok());
        let err = BlockLogs::from_receipts(free, full()).expect_err("count");
        assert!(
            err.what.contains("2 receipts for its 3 transactions"),
            "{err}"
        );
    }

    #[test]
    fn a_zero_bloom_proves_a_block_without_logs_whatever_its_gas() {
        // Plain transfers: gas used, no log, a zero bloom; no receipts fetched.
        let mut quiet = header(8, 8, 7);
        quiet.gas_used = 42_000;
        let block =
            BlockLogs::prove(quiet.clone(), None, &receipts_only()).expect("proven by the bloom");
        assert!(block.logs.is_empty());
        // Receipts fetched anyway must still account for the gas.
        let err = refusal(
            BlockLogs::prove(quiet.clone(), Some(vec![]), &receipts_only()).expect_err("gas"),
        );
        assert!(err.what.contains("0 gas, the header for 42000"), "{err}");
        let both = vec![
            receipt(&quiet, 0, 21_000, vec![]),
            receipt(&quiet, 1, 42_000, vec![]),
        ];
        assert!(BlockLogs::prove(quiet, Some(both), &receipts_only()).is_ok());
        // A bloom with bits set needs its receipts.
        let mut busy = header(9, 9, 8);
        let logs = [log(&busy, 0)];
        busy = with_bloom(busy, &logs);
        let err = BlockLogs::prove(busy, None, &receipts_only()).expect_err("no receipts");
        assert_eq!(refusal(err).check, "receipts");
    }

    #[test]
    fn links() {
        assert!(check_link(None, &header(9, 9, 8)).is_ok());
        assert!(check_link(Some((8, B256::new([8; 32]))), &header(9, 9, 8)).is_ok());
        assert!(check_link(Some((8, B256::new([7; 32]))), &header(9, 9, 8)).is_err());
        assert!(check_link(Some((7, B256::new([8; 32]))), &header(9, 9, 8)).is_err());
    }
}
