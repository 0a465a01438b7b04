//! The `blocks` and `transactions` topics read back at start-up, like the decoded-event
//! topics: the latest record per key wins and a tombstone deletes the key. What they hold
//! says which blocks were published (a block without logs left no record elsewhere), so
//! that the follower retracts those the node no longer has, and which transactions each
//! recent block published, so that such a retraction tombstones them.
//!
//! Their values start with `chain_id`, the block's number and its hash, as `EvmLog`'s do,
//! and are peeked alike.

use std::collections::{BTreeSet, HashMap};

use rdkafka::message::{BorrowedMessage, Message};

use crate::encode::peek::peek_block;
use crate::rpc::hex::B256;
use crate::sink::TxPlaced;

/// The latest state per key of the dataset topics' records read.
#[derive(Debug, Default)]
pub(super) struct DatasetTail {
    /// Block number → the hash of its latest record (`None`: tombstoned).
    blocks: HashMap<u64, Option<B256>>,
    /// Transaction hash → its latest record's block number and hash (`None`: tombstoned).
    transactions: HashMap<B256, Option<(u64, B256)>>,
    /// Records read.
    pub(super) records: usize,
}

/// Which dataset a topic holds.
#[derive(Debug, Clone, Copy)]
pub(super) enum Dataset {
    /// Keys `<chain_id>:<number>`.
    Blocks,
    /// Keys `<chain_id>:<transaction_hash>`.
    Transactions,
}

impl DatasetTail {
    /// Adds the next record `m` of `dataset`'s topic, if it is one of chain `chain_id`'s.
    pub(super) fn push(&mut self, dataset: Dataset, chain_id: u64, m: &BorrowedMessage<'_>) {
        let Some(key) = m.key().and_then(|k| std::str::from_utf8(k).ok()) else {
            return;
        };
        let value = match m.payload() {
            None => None,
            Some(bytes) => match peek_block(bytes) {
                Some((chain, number, hash)) if chain == chain_id => Some((number, hash)),
                _ => return,
            },
        };
        self.insert(dataset, chain_id, key, value);
    }

    /// Adds a record of `key` holding a value of block `value` (`None`: a tombstone).
    fn insert(&mut self, dataset: Dataset, chain_id: u64, key: &str, value: Option<(u64, B256)>) {
        let Some((chain, id)) = key.split_once(':') else {
            return;
        };
        if chain.parse::<u64>().ok() != Some(chain_id) {
            return;
        }
        match dataset {
            Dataset::Blocks => {
                let Ok(number) = id.parse::<u64>() else {
                    return;
                };
                self.blocks.insert(number, value.map(|(_, hash)| hash));
            }
            Dataset::Transactions => {
                let Ok(tx) = B256::parse("key", id) else {
                    return;
                };
                self.transactions.insert(tx, value);
            }
        }
        self.records += 1;
    }

    /// Every block a record still names, by number and hash.
    pub(super) fn blocks(&self) -> BTreeSet<(u64, B256)> {
        let blocks = self.blocks.iter().filter_map(|(n, h)| h.map(|h| (*n, h)));
        let of_transactions = self.transactions.values().flatten().copied();
        blocks.chain(of_transactions).collect()
    }

    /// The transactions still on the topic, by block, from block `oldest` on (all without
    /// it), kept as [`TxPlaced::new`] says for `keep_blocks`.
    pub(super) fn placed(&self, oldest: Option<u64>, keep_blocks: u64) -> TxPlaced {
        let mut by_block: HashMap<u64, Vec<B256>> = HashMap::new();
        for (tx, at) in &self.transactions {
            if let Some((number, _)) = at
                && oldest.is_none_or(|o| *number >= o)
            {
                by_block.entry(*number).or_default().push(*tx);
            }
        }
        let mut placed = TxPlaced::new(keep_blocks);
        let mut numbers: Vec<u64> = by_block.keys().copied().collect();
        numbers.sort_unstable();
        for n in numbers {
            let mut txs = by_block.remove(&n).unwrap_or_default();
            txs.sort_unstable();
            placed.note(n, txs);
        }
        placed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(b: u8) -> B256 {
        B256::new([b; 32])
    }

    #[test]
    fn the_latest_record_per_key_wins_and_names_its_block() {
        let mut t = DatasetTail::default();
        let tx = |b: u8| format!("1:{}", h(b));
        t.insert(Dataset::Blocks, 1, "1:5", Some((5, h(5))));
        t.insert(Dataset::Blocks, 1, "1:6", Some((6, h(6))));
        t.insert(Dataset::Blocks, 1, "1:6", None);
        t.insert(Dataset::Blocks, 1, "2:7", Some((7, h(7))));
        t.insert(Dataset::Transactions, 1, &tx(0x50), Some((5, h(5))));
        t.insert(Dataset::Transactions, 1, &tx(0x70), Some((7, h(0x77))));
        t.insert(Dataset::Transactions, 1, &tx(0x71), Some((7, h(0x77))));
        t.insert(Dataset::Transactions, 1, &tx(0x71), None);
        t.insert(Dataset::Transactions, 1, "1:zz", Some((8, h(8))));
        assert_eq!(t.records, 7, "another chain's and a bad key are skipped");
        let blocks: Vec<_> = t.blocks().into_iter().collect();
        assert_eq!(blocks, [(5, h(5)), (7, h(0x77))]);
        let mut placed = t.placed(Some(6), 10);
        assert!(placed.take_blocks([5]).is_empty(), "below the window");
        assert_eq!(placed.take_blocks([7]), [h(0x70)]);
    }
}
