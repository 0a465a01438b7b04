//! The reorg window: the most recent blocks of a chain, each with its hash, its parent and
//! the record keys published from it. The follower keeps one for blocks handed over, the
//! publisher one for blocks delivered (which is what the checkpoint stores).

use std::collections::VecDeque;

use crate::rpc::hex::B256;

/// One log's identity inside a block: the record key is `<chain>:<tx>:<log_index>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LogId {
    /// Transaction hash.
    pub tx: B256,
    /// Log index in the block.
    pub log_index: u64,
}

/// One block of the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowBlock {
    /// Block number.
    pub number: u64,
    /// Block hash.
    pub hash: B256,
    /// Parent hash.
    pub parent_hash: B256,
    /// The logs published from this block.
    pub logs: Vec<LogId>,
}

/// The last `capacity` blocks, oldest first, each the parent of the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    blocks: VecDeque<WindowBlock>,
    capacity: usize,
}

impl Window {
    /// An empty window holding at most `capacity` blocks (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            blocks: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// A window restored from stored blocks (oldest first); keeps the newest `capacity`.
    pub fn from_blocks(capacity: usize, blocks: Vec<WindowBlock>) -> Self {
        let mut w = Self::new(capacity);
        for b in blocks {
            w.push(b);
        }
        w
    }

    /// The newest block's number and hash.
    pub fn tip(&self) -> Option<(u64, B256)> {
        self.blocks.back().map(|b| (b.number, b.hash))
    }

    /// How many blocks it holds.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    /// Whether it holds no block.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Most blocks it keeps.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Blocks, oldest first.
    pub fn blocks(&self) -> impl DoubleEndedIterator<Item = &WindowBlock> + ExactSizeIterator {
        self.blocks.iter()
    }

    /// Appends the new tip, forgetting the oldest block beyond capacity.
    pub fn push(&mut self, block: WindowBlock) {
        self.blocks.push_back(block);
        while self.blocks.len() > self.capacity {
            self.blocks.pop_front();
        }
    }

    /// Removes every block above `number` and returns them, oldest first.
    pub fn truncate_above(&mut self, number: u64) -> Vec<WindowBlock> {
        let keep = self.blocks.partition_point(|b| b.number <= number);
        self.blocks.split_off(keep).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(n: u64) -> WindowBlock {
        WindowBlock {
            number: n,
            hash: B256::new([n as u8; 32]),
            parent_hash: B256::new([n.wrapping_sub(1) as u8; 32]),
            logs: vec![LogId {
                tx: B256::new([0xee; 32]),
                log_index: n,
            }],
        }
    }

    #[test]
    fn keeps_the_newest_blocks_and_truncates() {
        let mut w = Window::from_blocks(3, (1..=5).map(block).collect());
        assert_eq!(w.len(), 3);
        assert_eq!(w.tip(), Some((5, B256::new([5; 32]))));
        let gone = w.truncate_above(3);
        assert_eq!(gone.iter().map(|b| b.number).collect::<Vec<_>>(), [4, 5]);
        assert_eq!(w.tip().map(|t| t.0), Some(3));
        assert!(w.truncate_above(9).is_empty());
        assert_eq!(w.truncate_above(0).len(), 1);
        assert!(w.is_empty());
    }
}
