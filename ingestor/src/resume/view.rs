//! Building a chain's resume state from its topic's tail records: the latest value per key
//! wins and a tombstone deletes the key, as compaction will.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::checkpoint::Checkpoint;
use crate::rpc::hex::B256;
use crate::sink::{Dedup, Offsets, Placed, TopicState, TxPlaced};
use crate::window::{LogId, Window, WindowBlock};

use super::Resumed;

/// Blocks beyond the reorg window whose decoded keys are still placed: the blocks in flight
/// may run ahead of the window's tip.
const PLACED_MARGIN_BLOCKS: u64 = 16;

/// One record of the tail, in offset order within its partition.
#[derive(Debug, Clone)]
pub struct TailRecord {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// The log it is about.
    pub id: LogId,
    /// Its block number, block hash and value digest; `None` for a tombstone.
    pub value: Option<(u64, B256, u64)>,
}

/// The latest state per key of the records read.
#[derive(Debug, Default)]
pub struct View {
    latest: HashMap<LogId, Option<Entry>>,
    /// Keys in the order their latest record was read.
    order: Vec<LogId>,
    next: Offsets,
    records: usize,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    number: u64,
    hash: B256,
    digest: u64,
    partition: i32,
    offset: i64,
}

impl View {
    /// Adds the next record of its partition.
    pub fn push(&mut self, r: TailRecord) {
        self.records += 1;
        self.next.raise(r.partition, r.offset + 1);
        let entry = r.value.map(|(number, hash, digest)| Entry {
            number,
            hash,
            digest,
            partition: r.partition,
            offset: r.offset,
        });
        if self.latest.insert(r.id, entry).is_none() {
            self.order.push(r.id);
        }
    }
}

/// Combines the checkpoint (if any), the chain topic's view and the decoded-event topics'
/// views (`decoded[i]` is lane `1 + i`) into where the chain resumes.
///
/// A key found only on a decoded topic (its chain-topic record was not acknowledged before
/// a crash) belongs to its block all the same: that block is retracted if orphaned, and
/// its decoded records are skipped if replayed. So does a block the dataset topics name
/// (`dataset_blocks`), without logs.
pub fn build_view(
    checkpoint: Option<&Checkpoint>,
    window_capacity: usize,
    dedup_capacity: usize,
    view: View,
    decoded: Vec<View>,
    dataset_blocks: &BTreeSet<(u64, B256)>,
) -> Resumed {
    let mut groups: BTreeMap<(u64, B256), (Vec<LogId>, Offsets)> = BTreeMap::new();
    // A block the dataset topics name was published, with or without logs.
    for block in dataset_blocks {
        groups.entry(*block).or_default();
    }
    for id in &view.order {
        let Some(Some(e)) = view.latest.get(id) else {
            continue; // deleted
        };
        let (logs, first) = groups.entry((e.number, e.hash)).or_default();
        logs.push(*id);
        first.lower(e.partition, e.offset);
    }
    for v in &decoded {
        for id in &v.order {
            let Some(Some(e)) = v.latest.get(id) else {
                continue;
            };
            let in_raw = matches!(view.latest.get(id), Some(Some(r)) if (r.number, r.hash) == (e.number, e.hash));
            let (logs, _) = groups.entry((e.number, e.hash)).or_default();
            if !in_raw && !logs.contains(id) {
                logs.push(*id);
            }
        }
    }
    let mut topic = TopicState {
        blocks: groups
            .iter()
            .map(|(k, (_, first))| (*k, first.clone()))
            .collect(),
        next: view.next,
        carried: checkpoint.map(|c| c.partitions.clone()).unwrap_or_default(),
    };
    let mut blocks = checkpoint.map(|c| c.window.clone()).unwrap_or_default();
    for b in &mut blocks {
        if let Some((mut logs, _)) = groups.remove(&(b.number, b.hash)) {
            // A migrated checkpoint listed its keys: keep them too.
            logs.retain(|id| !b.logs.contains(id));
            b.logs.extend(logs);
        }
    }
    let oldest = blocks.first().map(|b| b.number);
    let unconfirmed: Vec<WindowBlock> = groups
        .into_iter()
        // Below the window is beyond any reorganisation the service retracts.
        .filter(|((number, _), _)| oldest.is_none_or(|o| *number >= o))
        .map(|((number, hash), (logs, _))| WindowBlock {
            number,
            hash,
            parent_hash: B256::new([0; 32]),
            logs,
        })
        .collect();
    topic
        .blocks
        .retain(|(n, _), _| oldest.is_none_or(|o| *n >= o));
    // What the replay can meet again is what the topic holds outside the window: all of
    // it is seeded (the cache grows to hold it), oldest first.
    let mut seeds: Vec<(i64, i32, LogId, u64)> = unconfirmed
        .iter()
        .flat_map(|b| &b.logs)
        .filter_map(|id| match view.latest.get(id) {
            Some(Some(e)) => Some((e.offset, e.partition, *id, e.digest)),
            _ => None,
        })
        .collect();
    seeds.sort_unstable_by_key(|s| (s.0, s.1));
    // The same for each decoded topic: its keys outside the window are seeded, and every
    // key it holds from the window's oldest block on is placed (a retraction tombstones it
    // there).
    let in_window: HashSet<(u64, B256)> = blocks.iter().map(|b| (b.number, b.hash)).collect();
    let mut placed = Placed::new(window_capacity as u64 + PLACED_MARGIN_BLOCKS);
    let mut lane_seeds: Vec<(i64, usize, LogId, u64)> = Vec::new();
    let mut records_read = view.records;
    for (i, v) in decoded.iter().enumerate() {
        records_read += v.records;
        for id in &v.order {
            let Some(Some(e)) = v.latest.get(id) else {
                continue;
            };
            if oldest.is_some_and(|o| e.number < o) {
                continue;
            }
            placed.note(e.number, *id, i + 1);
            if !in_window.contains(&(e.number, e.hash)) {
                lane_seeds.push((e.offset, i + 1, *id, e.digest));
            }
        }
    }
    lane_seeds.sort_unstable_by_key(|s| (s.0, s.1));
    let mut dedup = Dedup::new(match dedup_capacity {
        0 => 0,
        n => n.max(seeds.len() + lane_seeds.len()),
    });
    for (_, _, id, digest) in seeds {
        dedup.seed(id, digest);
    }
    for (_, lane, id, digest) in lane_seeds {
        dedup.seed_on(lane, id, digest);
    }
    Resumed {
        window: Window::from_blocks(window_capacity, blocks),
        unconfirmed,
        dedup,
        placed,
        tx_placed: TxPlaced::new(window_capacity as u64 + PLACED_MARGIN_BLOCKS),
        topic,
        records_read,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(b: u8) -> B256 {
        B256::new([b; 32])
    }

    fn id(i: u64) -> LogId {
        LogId {
            tx: h(0xee),
            log_index: i,
        }
    }

    fn rec(offset: i64, i: u64, value: Option<(u64, u8)>) -> TailRecord {
        TailRecord {
            partition: 0,
            offset,
            id: id(i),
            value: value.map(|(n, hb)| (n, h(hb), crate::sink::digest(format!("v{i}").as_bytes()))),
        }
    }

    /// A checkpoint at block 11, its window blocks 10 and 11 (without logs).
    fn checkpoint_at_11() -> Checkpoint {
        let block = |n: u8| WindowBlock {
            number: u64::from(n),
            hash: h(n),
            parent_hash: h(n - 1),
            logs: vec![],
        };
        Checkpoint {
            chain_id: 1,
            block_number: 11,
            block_hash: h(11),
            updated_at_ms: 0,
            window: vec![block(10), block(11)],
            partitions: vec![],
            migrated: false,
        }
    }

    #[test]
    fn rebuilds_window_keys_and_finds_what_came_after_the_checkpoint() {
        let cp = checkpoint_at_11();
        let mut view = View::default();
        for r in [
            rec(5, 0, Some((10, 10))),
            rec(6, 1, Some((11, 11))),
            rec(7, 2, Some((11, 11))),
            rec(8, 3, Some((12, 12))),   // after the checkpoint
            rec(9, 4, Some((12, 0x12))), // another branch's block 12
            rec(10, 2, None),            // tombstone
            rec(11, 5, Some((9, 9))),    // below the window
        ] {
            view.push(r);
        }
        let r = build_view(Some(&cp), 128, 100, view, Vec::new(), &BTreeSet::new());
        let logs: Vec<Vec<u64>> = r
            .window
            .blocks()
            .map(|b| b.logs.iter().map(|l| l.log_index).collect())
            .collect();
        assert_eq!(logs, [vec![0], vec![1]]);
        let un: Vec<(u64, B256, usize)> = r
            .unconfirmed
            .iter()
            .map(|b| (b.number, b.hash, b.logs.len()))
            .collect();
        assert_eq!(un, [(12, h(12), 1), (12, h(0x12), 1)]);
        assert_eq!(r.records_read, 7);
        assert_eq!(r.topic.next.get(0), Some(12));
        assert_eq!(r.topic.blocks[&(12, h(12))].get(0), Some(8));
        let mut dedup = r.dedup;
        assert_eq!(dedup.len(), 2, "the values outside the window are seeded");
        assert!(
            dedup.seen(id(3), b"v3"),
            "published after the checkpoint: a hit"
        );
        assert!(
            !dedup.seen(id(1), b"v1"),
            "the window's keys are not replayed"
        );
        assert!(!dedup.seen(id(4), b"v3"), "another value is not a hit");
    }

    #[test]
    fn decoded_topics_join_their_blocks_are_placed_and_seeded() {
        let cp = checkpoint_at_11();
        let mut raw = View::default();
        for r in [
            rec(0, 1, Some((11, 11))),
            rec(1, 3, Some((12, 12))), // after the checkpoint
        ] {
            raw.push(r);
        }
        let mut decoded = View::default();
        for r in [
            rec(0, 1, Some((11, 11))),
            rec(1, 3, Some((12, 12))),
            rec(2, 9, Some((13, 13))), // its chain-topic record never acknowledged
            rec(3, 7, Some((5, 5))),   // below the window
        ] {
            decoded.push(r);
        }
        let r = build_view(
            Some(&cp),
            128,
            100,
            raw,
            vec![View::default(), decoded],
            &BTreeSet::new(),
        );
        let un: Vec<(u64, Vec<u64>)> = r
            .unconfirmed
            .iter()
            .map(|b| (b.number, b.logs.iter().map(|l| l.log_index).collect()))
            .collect();
        assert_eq!(
            un,
            [(12, vec![3]), (13, vec![9])],
            "a decoded-only key joins its block"
        );
        let mut placed = r.placed;
        assert_eq!(placed.take(&id(1)), [2]);
        assert_eq!(placed.take(&id(9)), [2]);
        assert!(placed.take(&id(7)).is_empty(), "below the window");
        let mut dedup = r.dedup;
        assert!(
            dedup.seen_on(2, id(3), b"v3"),
            "replayed: skipped on lane 2"
        );
        assert!(dedup.seen_on(2, id(9), b"v9"));
        assert!(!dedup.seen_on(1, id(9), b"v9"), "not on lane 1");
        assert!(
            !dedup.seen_on(2, id(1), b"v1"),
            "the window's keys are not replayed"
        );
        assert_eq!(r.records_read, 6);
    }
}
