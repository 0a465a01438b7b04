//! A block's records beyond its logs, for the `blocks` and `transactions` datasets: its
//! body (`eth_getBlockByHash`) and each transaction paired with its receipt's outcome,
//! checked to be the block the logs were proven against.

use crate::config::{ChainConfig, Dataset};
use crate::rpc::body::{BlockFields, Body, TxFields};
use crate::rpc::hex::B256;
use crate::rpc::outcome::ReceiptFields;
use crate::rpc::receipt::Receipt;

use super::block::{BlockLogs, Inconsistent};

/// What a chain's datasets need fetched beyond the logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wants {
    /// The block's own record.
    pub blocks: bool,
    /// Each transaction's record: the transaction objects, and every block's receipts.
    pub transactions: bool,
}

impl Wants {
    /// What `cfg`'s datasets need.
    pub fn of(cfg: &ChainConfig) -> Self {
        Self {
            blocks: cfg.publishes(Dataset::Blocks),
            transactions: cfg.publishes(Dataset::Transactions),
        }
    }

    /// Whether the block's body is fetched, and then whether with its transaction objects.
    pub(super) fn body(self) -> Option<bool> {
        (self.blocks || self.transactions).then_some(self.transactions)
    }
}

/// The records of a block beyond its logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockData {
    /// The block's members.
    pub block: BlockFields,
    /// Each transaction, in order, with its receipt's outcome (empty unless the
    /// transactions dataset is published).
    pub transactions: Vec<(TxFields, ReceiptFields)>,
}

/// Each receipt's hash and outcome, taken out of `receipts` (read with their fields).
pub(super) fn outcomes(receipts: &mut [Receipt]) -> Vec<(B256, Option<Box<ReceiptFields>>)> {
    receipts
        .iter_mut()
        .map(|r| (r.transaction_hash, r.fields.take()))
        .collect()
}

/// Adds `body` (when fetched) to `block`, each transaction with the outcome of its
/// receipt (when the transactions are published): the body must be the block's, and the
/// receipts one per transaction, in its order.
pub(super) fn attach(
    block: &mut BlockLogs,
    body: Option<Body>,
    outcomes: Option<Vec<(B256, Option<Box<ReceiptFields>>)>>,
) -> Result<(), Inconsistent> {
    let Some(body) = body else {
        return Ok(());
    };
    let n = block.header.number;
    if body.block.hash != block.header.hash || body.block.number != n {
        return Err(Inconsistent::new(
            "block",
            format!(
                "block {n} {}: the node's body is block {} {}",
                block.header.hash, body.block.number, body.block.hash
            ),
        ));
    }
    let mut transactions = Vec::with_capacity(body.transactions.len());
    if let Some(outcomes) = outcomes {
        if outcomes.len() != body.transactions.len() {
            return Err(Inconsistent::new(
                "receipts",
                format!(
                    "block {n}: {} receipts for its {} transactions",
                    outcomes.len(),
                    body.transactions.len()
                ),
            ));
        }
        for (i, (tx, (hash, fields))) in body.transactions.into_iter().zip(outcomes).enumerate() {
            let fields = fields.filter(|_| hash == tx.hash && tx.transaction_index == i as u64);
            let Some(fields) = fields else {
                return Err(Inconsistent::new(
                    "receipts",
                    format!(
                        "block {n}: transaction {i} is {}, its receipt names {hash}",
                        tx.hash
                    ),
                ));
            };
            transactions.push((tx, *fields));
        }
    }
    block.data = Some(Box::new(BlockData {
        block: body.block,
        transactions,
    }));
    Ok(())
}
