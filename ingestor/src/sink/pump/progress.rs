//! What a publisher has delivered (committed, in transactional mode): the reorg window and
//! where its records stand in the chain topic. The checkpoint is made from it.
//!
//! A retraction does not shrink the window when it is acknowledged, only when the first
//! block that replaces it is: until then the checkpoint keeps naming the orphaned tip, so
//! a restart in between retracts again (from the keys still on the topic) instead of
//! forgetting what the replacements had already published.

use std::collections::{BTreeMap, HashMap};

use crate::checkpoint::{Checkpoint, PartitionOffsets};
use crate::rpc::hex::B256;
use crate::window::Window;

use super::offsets::Offsets;
use crate::sink::records::Effect;

/// Where one update's acknowledged records landed.
#[derive(Debug, Clone, Default)]
pub struct Landed {
    /// The lowest offset per partition.
    pub first: Offsets,
    /// The highest offset per partition.
    pub last: Offsets,
}

impl Landed {
    /// Notes one acknowledged record.
    pub fn note(&mut self, partition: i32, offset: i64) {
        self.first.lower(partition, offset);
        self.last.raise(partition, offset);
    }
}

/// Where the topic stood at start-up, as read back by `resume`.
#[derive(Debug, Clone, Default)]
pub struct TopicState {
    /// The first offsets of each block found on the topic, by number and hash.
    pub blocks: HashMap<(u64, B256), Offsets>,
    /// One past the last record read, per partition.
    pub next: Offsets,
    /// The checkpoint's offsets, for partitions nothing was read from.
    pub carried: Vec<PartitionOffsets>,
}

/// The delivered window and its offsets.
#[derive(Debug, Clone)]
pub struct Progress {
    window: Window,
    /// First offsets of the window's blocks' records, by block number.
    first: BTreeMap<u64, Offsets>,
    /// First offsets of blocks published before the restart (a replayed block's records
    /// that were skipped as already published).
    prior: HashMap<(u64, B256), Offsets>,
    next: Offsets,
    carried: Vec<PartitionOffsets>,
    /// The ancestor of an acknowledged retraction whose replacements are not yet.
    retracting: Option<u64>,
}

impl Progress {
    /// Progress continuing after `window`, with the topic as `topic` found it.
    pub fn new(window: Window, topic: TopicState) -> Self {
        let mut first = BTreeMap::new();
        let mut prior = topic.blocks;
        for b in window.blocks() {
            if let Some(o) = prior.remove(&(b.number, b.hash)) {
                first.insert(b.number, o);
            }
        }
        Self {
            window,
            first,
            prior,
            next: topic.next,
            carried: topic.carried,
            retracting: None,
        }
    }

    /// The delivered window.
    pub fn window(&self) -> &Window {
        &self.window
    }

    /// Applies an update whose records were all acknowledged; returns whether the
    /// checkpoint changed.
    pub fn apply(&mut self, effect: &Effect, landed: &Landed) -> bool {
        for (p, o) in landed.last.iter() {
            self.next.raise(p, o + 1);
        }
        match effect {
            Effect::Retract { ancestor } => {
                let a = self.retracting.map_or(*ancestor, |r| r.min(*ancestor));
                self.retracting = Some(a);
                false
            }
            Effect::Block(b) => {
                if let Some(ancestor) = self.retracting.take() {
                    self.window.truncate_above(ancestor);
                    self.first.split_off(&ancestor.saturating_add(1));
                }
                let mut first = self.prior.remove(&(b.number, b.hash)).unwrap_or_default();
                first.lower_all(&landed.first);
                // The keys stay with the follower (and on the topic): the checkpoint needs
                // only the hashes, and the window is cloned per transaction.
                self.window.push(crate::window::WindowBlock {
                    number: b.number,
                    hash: b.hash,
                    parent_hash: b.parent_hash,
                    logs: Vec::new(),
                });
                self.first.insert(b.number, first);
                if let Some(oldest) = self.window.blocks().next().map(|b| b.number) {
                    self.first = self.first.split_off(&oldest);
                }
                true
            }
        }
    }

    /// The checkpoint of the delivered window; `None` while it is empty.
    pub fn checkpoint(&self, chain_id: u64) -> Option<Checkpoint> {
        let (block_number, block_hash) = self.window.tip()?;
        let mut start = Offsets::default();
        for o in self.first.values() {
            start.lower_all(o);
        }
        let mut partitions: Vec<PartitionOffsets> = self
            .next
            .iter()
            .map(|(partition, next)| PartitionOffsets {
                partition,
                window_start: start.get(partition).unwrap_or(next).min(next),
                next,
            })
            .collect();
        for c in &self.carried {
            if self.next.get(c.partition).is_none() {
                partitions.push(*c);
            }
        }
        partitions.sort_by_key(|p| p.partition);
        Some(Checkpoint {
            chain_id,
            block_number,
            block_hash,
            updated_at_ms: crate::checkpoint::now_ms(),
            window: self.window.blocks().cloned().collect(),
            partitions,
            migrated: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::WindowBlock;

    fn block(n: u64, fork: u8) -> WindowBlock {
        WindowBlock {
            number: n,
            hash: B256::new([n as u8 ^ fork; 32]),
            parent_hash: B256::new([(n - 1) as u8; 32]),
            logs: Vec::new(),
        }
    }

    fn landed(p: i32, first: i64, last: i64) -> Landed {
        let mut l = Landed::default();
        l.note(p, first);
        l.note(p, last);
        l
    }

    #[test]
    fn the_window_start_follows_the_oldest_block() {
        let mut p = Progress::new(Window::new(2), TopicState::default());
        assert!(p.checkpoint(1).is_none());
        assert!(p.apply(&Effect::Block(block(1, 0)), &landed(0, 0, 9)));
        assert!(p.apply(&Effect::Block(block(2, 0)), &Landed::default()));
        assert!(p.apply(&Effect::Block(block(3, 0)), &landed(0, 10, 19)));
        let cp = p.checkpoint(1).expect("checkpoint");
        assert_eq!(cp.block_number, 3);
        assert_eq!(
            cp.partitions,
            [PartitionOffsets {
                partition: 0,
                window_start: 10,
                next: 20
            }]
        );
    }

    #[test]
    fn a_retraction_shrinks_the_window_only_with_its_first_replacement() {
        let mut p = Progress::new(Window::new(8), TopicState::default());
        for n in 1..=3 {
            p.apply(&Effect::Block(block(n, 0)), &landed(0, n as i64, n as i64));
        }
        assert!(!p.apply(&Effect::Retract { ancestor: 1 }, &landed(0, 4, 5)));
        assert_eq!(
            p.checkpoint(1).expect("cp").block_number,
            3,
            "orphaned tip kept"
        );
        assert!(p.apply(&Effect::Block(block(2, 0xff)), &landed(0, 6, 6)));
        let cp = p.checkpoint(1).expect("cp");
        assert_eq!((cp.block_number, cp.block_hash), (2, block(2, 0xff).hash));
        assert_eq!(cp.window.len(), 2);
        assert_eq!(cp.partitions[0].window_start, 1);
        assert_eq!(cp.partitions[0].next, 7);
    }

    #[test]
    fn a_replayed_block_keeps_the_offsets_of_its_earlier_records() {
        let b = block(5, 0);
        let mut topic = TopicState::default();
        let mut o = Offsets::default();
        o.lower(1, 70);
        topic.blocks.insert((5, b.hash), o);
        topic.next.raise(1, 90);
        let mut p = Progress::new(Window::new(8), topic);
        p.apply(&Effect::Block(b), &landed(1, 90, 95));
        let cp = p.checkpoint(1).expect("cp");
        assert_eq!(
            cp.partitions,
            [PartitionOffsets {
                partition: 1,
                window_start: 70,
                next: 96
            }]
        );
    }
}
