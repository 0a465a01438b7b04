//! Which decoded-event topics hold each recent key, so that a retraction tombstones a key on
//! exactly the topics that have it. Filled as records are built and, at start-up, from the
//! decoded topics' tails (see `resume`); keys of blocks older than the reorg window (and the
//! blocks in flight) are dropped, as no retraction reaches them.
//!
//! Keys are kept per block, in the order they were noted: noting one is an append to its
//! block's list (no hashing, no random access into a table of every recent key), and a
//! retraction, which takes whole blocks, indexes only the blocks it takes.

use std::collections::{BTreeMap, HashMap};

use crate::window::LogId;

/// Where one key is: lanes 0 to 63 as bits, and any higher lane (no allocation unless a
/// chain decodes more than 63 events).
#[derive(Debug, Default, Clone, PartialEq)]
struct Lanes {
    bits: u64,
    more: Vec<usize>,
}

impl Lanes {
    fn add(&mut self, lane: usize) {
        match u32::try_from(lane).ok().and_then(|l| 1u64.checked_shl(l)) {
            Some(bit) => self.bits |= bit,
            None if !self.more.contains(&lane) => self.more.push(lane),
            None => {}
        }
    }

    fn merge(&mut self, other: Self) {
        self.bits |= other.bits;
        for lane in other.more {
            self.add(lane);
        }
    }

    /// The lanes, in ascending order.
    fn list(self) -> Vec<usize> {
        let Self { bits, mut more } = self;
        let mut lanes: Vec<usize> = (0..64).filter(|l| bits >> l & 1 == 1).collect();
        more.sort_unstable();
        lanes.append(&mut more);
        lanes
    }
}

/// Recent keys and the lanes (`1 + event index`) they were published to, by block.
#[derive(Debug, Default)]
pub struct Placed {
    /// Each block's keys, in the order noted (a key may appear more than once).
    by_block: BTreeMap<u64, Vec<(LogId, Lanes)>>,
    /// Blocks kept below the newest.
    keep_blocks: u64,
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
        let keys = self.by_block.entry(block).or_default();
        match keys.last_mut() {
            // The events decoding one log are noted one after another.
            Some((last, lanes)) if *last == id => lanes.add(lane),
            _ => {
                let mut lanes = Lanes::default();
                lanes.add(lane);
                keys.push((id, lanes));
            }
        }
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

    /// The keys of `blocks` and their lanes (ascending); those blocks are forgotten (they
    /// are being retracted).
    pub fn take_blocks(
        &mut self,
        blocks: impl IntoIterator<Item = u64>,
    ) -> HashMap<LogId, Vec<usize>> {
        let mut merged: HashMap<LogId, Lanes> = HashMap::new();
        for number in blocks {
            for (id, lanes) in self.by_block.remove(&number).unwrap_or_default() {
                merged.entry(id).or_default().merge(lanes);
            }
        }
        merged.into_iter().map(|(id, l)| (id, l.list())).collect()
    }

    /// The lanes holding `id`, in ascending order; it is forgotten (the tests' view of a
    /// key; a retraction takes whole blocks).
    #[cfg(test)]
    pub fn take(&mut self, id: &LogId) -> Vec<usize> {
        let mut found = Lanes::default();
        for keys in self.by_block.values_mut() {
            keys.retain(|(k, lanes)| {
                if k == id {
                    found.merge(lanes.clone());
                }
                k != id
            });
        }
        found.list()
    }

    /// Keys held (a key noted in two blocks counts twice).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_block.values().map(Vec::len).sum()
    }

    /// Whether no key is held.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.by_block.values().all(Vec::is_empty)
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
        p.note(1, id(2), 2);
        p.note(1, id(1), 70);
        assert_eq!(p.take(&id(1)), [1, 3, 64, 70]);
        assert!(p.take(&id(1)).is_empty(), "taken once");
        p.note(30, id(3), 1);
        assert_eq!(p.len(), 1, "block 1 is beyond the kept blocks");
    }

    #[test]
    fn a_retraction_takes_its_blocks() {
        let mut p = Placed::new(10);
        p.note(5, id(1), 1);
        p.note(6, id(2), 1);
        p.note(6, id(2), 2);
        p.note(7, id(3), 2);
        p.note(7, id(2), 3);
        let taken = p.take_blocks([6, 7]);
        assert_eq!(taken.len(), 2);
        assert_eq!(taken[&id(2)], [1, 2, 3]);
        assert_eq!(taken[&id(3)], [2]);
        assert_eq!(p.take(&id(1)), [1], "the ancestor's keys stay");
        assert!(p.take_blocks([6, 7]).is_empty());
    }
}
