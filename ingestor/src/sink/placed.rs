//! Which decoded-event topics hold each recent key, so that a retraction tombstones a key on
//! exactly the topics that have it. Filled as records are built and, at start-up, from the
//! decoded topics' tails (see `resume`); keys of blocks older than the reorg window (and the
//! blocks in flight) are dropped, as no retraction reaches them.

use std::collections::HashMap;

use crate::window::LogId;

/// Where one key is: its block, lanes 0 to 63 as bits, and any higher lane (no allocation
/// unless a chain decodes more than 63 events).
#[derive(Debug)]
struct Lanes {
    block: u64,
    bits: u64,
    more: Vec<usize>,
}

/// Recent keys and the lanes (`1 + event index`) they were published to.
#[derive(Debug, Default)]
pub struct Placed {
    by_id: HashMap<LogId, Lanes, foldhash::fast::RandomState>,
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
        let entry = self.by_id.entry(id).or_insert(Lanes {
            block,
            bits: 0,
            more: Vec::new(),
        });
        entry.block = block;
        match u32::try_from(lane).ok().and_then(|l| 1u64.checked_shl(l)) {
            Some(bit) => entry.bits |= bit,
            None if !entry.more.contains(&lane) => entry.more.push(lane),
            None => {}
        }
        if block > self.newest {
            self.newest = block;
            if self.newest >= self.pruned_at.saturating_add(self.keep_blocks) {
                let oldest = self.newest.saturating_sub(self.keep_blocks);
                self.by_id.retain(|_, l| l.block >= oldest);
                self.pruned_at = self.newest;
            }
        }
    }

    /// The lanes holding `id`, in ascending order; it is forgotten (it is being retracted).
    pub fn take(&mut self, id: &LogId) -> Vec<usize> {
        let Some(Lanes { bits, mut more, .. }) = self.by_id.remove(id) else {
            return Vec::new();
        };
        let mut lanes: Vec<usize> = (0..64).filter(|l| bits >> l & 1 == 1).collect();
        more.sort_unstable();
        lanes.append(&mut more);
        lanes
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
        p.note(1, id(1), 70);
        p.note(1, id(1), 64);
        p.note(1, id(1), 70);
        p.note(2, id(2), 2);
        assert_eq!(p.take(&id(1)), [1, 3, 64, 70]);
        assert!(p.take(&id(1)).is_empty(), "taken once");
        p.note(30, id(3), 1);
        assert_eq!(p.len(), 1, "block 2 is beyond the kept blocks");
    }
}
