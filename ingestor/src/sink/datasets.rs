//! The records of the `blocks` and `transactions` datasets, built beside a block's logs
//! ([`super::records`]): one `EvmBlock` keyed `<chain_id>:<number>` and one
//! `EvmTransaction` per transaction keyed `<chain_id>:<hash>`. A retraction tombstones the
//! orphaned heights the new branch does not reach, and the orphaned transactions it does
//! not include again ([`TxPlaced`] remembers which transactions each recent block
//! published).

use std::collections::{BTreeMap, HashSet};

use crate::encode::DatasetEncoder;
use crate::follower::{BlockData, Retraction};
use crate::rpc::hex::B256;

/// A record's identity, from which its key is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordId {
    /// A log: `<chain_id>:<transaction_hash>:<log_index>`.
    Log(crate::window::LogId),
    /// A block: `<chain_id>:<number>`.
    Block(u64),
    /// A transaction: `<chain_id>:<hash>`.
    Transaction(B256),
}

/// The lanes of a chain's dataset topics, when it publishes them.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct DatasetLanes {
    /// The blocks topic's lane.
    pub(super) blocks: Option<usize>,
    /// The transactions topic's lane.
    pub(super) transactions: Option<usize>,
}

/// The transactions each recent block published, so that a retraction tombstones them.
/// Blocks older than the reorg window (and the blocks in flight) are dropped.
#[derive(Debug, Default)]
pub struct TxPlaced {
    by_block: BTreeMap<u64, Vec<B256>>,
    keep_blocks: u64,
}

impl TxPlaced {
    /// Keeps the transactions of the newest `keep_blocks` blocks (at least).
    pub fn new(keep_blocks: u64) -> Self {
        Self {
            by_block: BTreeMap::new(),
            keep_blocks: keep_blocks.max(1),
        }
    }

    /// Block `block` published `txs` (replacing what it published before).
    pub fn note(&mut self, block: u64, txs: Vec<B256>) {
        self.by_block.insert(block, txs);
        let newest = self.by_block.last_key_value().map_or(block, |(n, _)| *n);
        let oldest = newest.saturating_sub(self.keep_blocks);
        while self
            .by_block
            .first_key_value()
            .is_some_and(|(n, _)| *n < oldest)
        {
            self.by_block.pop_first();
        }
    }

    /// The transactions of `blocks`, which are forgotten (they are being retracted).
    pub fn take_blocks(&mut self, blocks: impl IntoIterator<Item = u64>) -> Vec<B256> {
        blocks
            .into_iter()
            .flat_map(|n| self.by_block.remove(&n).unwrap_or_default())
            .collect()
    }
}

/// One dataset record: its lane, its identity, its value (`None`: a tombstone).
pub(super) type DatasetRecord = (usize, RecordId, Option<Vec<u8>>);

/// The dataset records of block `data` on chain `chain_id`.
pub(super) fn block_records(
    chain_id: u64,
    data: &BlockData,
    lanes: DatasetLanes,
    encoder: &DatasetEncoder,
    placed: &mut TxPlaced,
) -> Vec<DatasetRecord> {
    let mut out = Vec::with_capacity(1 + data.transactions.len());
    let b = &data.block;
    if let Some(lane) = lanes.blocks {
        out.push((
            lane,
            RecordId::Block(b.number),
            Some(encoder.block(chain_id, b)),
        ));
    }
    if let Some(lane) = lanes.transactions {
        placed.note(
            b.number,
            data.transactions.iter().map(|(t, _)| t.hash).collect(),
        );
        for (tx, receipt) in &data.transactions {
            out.push((
                lane,
                RecordId::Transaction(tx.hash),
                Some(encoder.transaction(chain_id, b, tx, receipt)),
            ));
        }
    }
    out
}

/// The dataset tombstones of retraction `r`.
pub(super) fn retract_records(
    r: &Retraction,
    lanes: DatasetLanes,
    placed: &mut TxPlaced,
) -> Vec<DatasetRecord> {
    let mut out = Vec::new();
    if let Some(lane) = lanes.blocks {
        for b in r.orphaned.iter().filter(|b| b.number > r.reached) {
            out.push((lane, RecordId::Block(b.number), None));
        }
    }
    if let Some(lane) = lanes.transactions {
        let kept: HashSet<&B256> = r.kept_transactions.iter().collect();
        let mut seen = HashSet::new();
        for tx in placed.take_blocks(r.orphaned.iter().map(|b| b.number)) {
            if !kept.contains(&tx) && seen.insert(tx) {
                out.push((lane, RecordId::Transaction(tx), None));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::WindowBlock;

    fn h(b: u8) -> B256 {
        B256::new([b; 32])
    }

    fn block(n: u64) -> WindowBlock {
        WindowBlock {
            number: n,
            hash: h(n as u8),
            parent_hash: h(n as u8 - 1),
            logs: Vec::new(),
        }
    }

    #[test]
    fn a_retraction_tombstones_what_the_new_branch_does_not_publish_again() {
        let mut placed = TxPlaced::new(10);
        placed.note(5, vec![h(0x50)]);
        placed.note(6, vec![h(0x60), h(0x61)]);
        placed.note(7, vec![h(0x70)]);
        let r = Retraction {
            ancestor: 5,
            orphaned: vec![block(6), block(7)],
            tombstones: Vec::new(),
            reached: 6,
            kept_transactions: vec![h(0x61)],
        };
        let lanes = DatasetLanes {
            blocks: Some(1),
            transactions: Some(2),
        };
        let out = retract_records(&r, lanes, &mut placed);
        let ids: Vec<_> = out
            .iter()
            .map(|(l, id, v)| (*l, *id, v.is_none()))
            .collect();
        assert_eq!(
            ids,
            [
                (1, RecordId::Block(7), true),
                (2, RecordId::Transaction(h(0x60)), true),
                (2, RecordId::Transaction(h(0x70)), true),
            ]
        );
        assert_eq!(placed.take_blocks([5]), [h(0x50)], "the ancestor's stay");
        for n in 20..40 {
            placed.note(n, vec![h(n as u8)]);
        }
        assert!(
            placed.take_blocks([20]).is_empty(),
            "beyond the kept blocks"
        );
    }
}
