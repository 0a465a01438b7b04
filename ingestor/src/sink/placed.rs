//! Which decoded-event topics hold each recent key, so that a retraction tombstones a key on
//! exactly the topics that have it. Filled as records are built and, at start-up, from the
//! decoded topics' tails (see `resume`); keys of blocks older than the reorg window (and the
//! blocks in flight) are dropped, as no retraction reaches them.

use std::collections::HashMap;

use crate::window::LogId;

/// Recent keys and the lanes (`1 + event index`) they were published to.
#[derive(Debug, Default)]
pub struct Placed {
    by_id: HashMap<LogId, (u64, Vec<usize>)>,
    /// Blocks kept below the newest.
    keep_blocks: u64,
    newest: u64,
    pruned_at: u64,
}

impl Placed {
    /// Keeps the keys of the newest `keep_blocks` blocks (at least).
    pub fn new(keep_blocks: u64) -> Self {
        Self {
            keep_blocks: keep_blocks.max(1),
            ..Self::default()
        }
    }

    /// `id`, of block `block`, is on lane `lane`.
    pub fn note(&mut self, block: u64, id: LogId, lane: usize) {
        let entry = self.by_id.entry(id).or_insert_with(|| (block, Vec::new()));
        entry.0 = block;
        if !entry.1.contains(&lane) {
            entry.1.push(lane);
        }
        if block > self.newest {
            self.newest = block;
            if self.newest >= self.pruned_at.saturating_add(self.keep_blocks) {
                let oldest = self.newest.saturating_sub(self.keep_blocks);
                self.by_id.retain(|_, (b, _)| *b >= oldest);
                self.pruned_at = self.newest;
            }
        }
    }

    /// The lanes holding `id`, which is forgotten (it is being retracted).
    pub fn take(&mut self, id: &LogId) -> Vec<usize> {
        self.by_id.remove(id).map(|(_, l)| l).unwrap_or_default()
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::hex::B256;

    fn id(i: u64) -> LogId {
        LogId {
            tx: B256::new([1; 32]),
            log_index: i,
        }
    }

    #[test]
    fn lanes_per_key_and_old_blocks_dropped() {
        let mut p = Placed::new(10);
        p.note(1, id(1), 1);
        p.note(1, id(1), 3);
        p.note(1, id(1), 3);
        p.note(2, id(2), 2);
        assert_eq!(p.take(&id(1)), [1, 3]);
        assert!(p.take(&id(1)).is_empty(), "taken once");
        p.note(30, id(3), 1);
        assert_eq!(p.len(), 1, "block 2 is beyond the kept blocks");
    }
}
