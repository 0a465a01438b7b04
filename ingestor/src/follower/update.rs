//! What the follower hands to the publisher, in order.

use crate::rpc::hex::B256;
use crate::window::{LogId, WindowBlock};

use super::block::BlockLogs;

/// One step of the canonical chain as seen by the follower.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// The next canonical block: publish its logs.
    Block(BlockLogs),
    /// A reorganisation: the blocks above `ancestor` were orphaned. Publish a tombstone
    /// for each of `tombstones` (keys the replacement blocks do not publish again); the
    /// replacement blocks follow as [`Update::Block`]s.
    Retract(Retraction),
}

/// A reorganisation to retract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retraction {
    /// The common ancestor: the last block that stays canonical.
    pub ancestor: u64,
    /// The orphaned blocks, oldest first.
    pub orphaned: Vec<WindowBlock>,
    /// Logs published from orphaned blocks that no replacement block publishes again.
    pub tombstones: Vec<LogId>,
    /// The highest height the new branch publishes again (the ancestor when none): on the
    /// blocks topic, orphaned heights above it are tombstoned, the others replaced.
    pub reached: u64,
    /// Transactions the replacement blocks include: on the transactions topic they are
    /// published again with their new block, not tombstoned.
    pub kept_transactions: Vec<B256>,
}

impl Update {
    /// About how many bytes the update holds: a log's fixed fields, topics and data, or a
    /// retraction's ids. At least 1.
    pub fn weight(&self) -> usize {
        const LOG_FIXED: usize = 160;
        const ID: usize = 48;
        match self {
            Self::Block(b) => {
                let data = b.data.as_ref().map_or(0, |d| {
                    d.transactions
                        .iter()
                        .map(|(t, _)| 512 + t.input.len())
                        .sum::<usize>()
                });
                256 + data
                    + b.logs
                        .iter()
                        .map(|l| LOG_FIXED + 32 * l.topics.len() + l.data.len())
                        .sum::<usize>()
            }
            Self::Retract(r) => 1 + ID * (r.orphaned.len() + r.tombstones.len()),
        }
    }
}

impl BlockLogs {
    /// The window entry for this block.
    pub fn window_block(&self) -> WindowBlock {
        WindowBlock {
            number: self.header.number,
            hash: self.header.hash,
            parent_hash: self.header.parent_hash,
            logs: self
                .logs
                .iter()
                .map(|l| LogId {
                    tx: l.transaction_hash,
                    log_index: l.log_index,
                })
                .collect(),
        }
    }
}
