//! Where a decoded-event topic's read-back starts when no chain-topic record says (the
//! chain's `raw = false`, or nothing read there): the partition is searched by block number.
//!
//! A topic's block numbers rise with its offsets except where they dip: after a
//! reorganisation (to the common ancestor, within the reorg window) and after a crash (to
//! the blocks that were in flight, within `max_blocks_in_flight`, since the replay skips
//! every record the topic already holds). So once a value's block is below the window's
//! oldest block by more than both bounds, no record before it belongs to the window or
//! after it. Tombstones carry no block and are stepped over; offsets missing (compacted
//! away, or transaction markers) are as if absent.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use crate::encode::peek::peek_block;
use crate::sink::parse_key;
use crate::telemetry::KafkaContext;

/// The lowest block whose records a search for `oldest` (the window's oldest block) may
/// step past: below it by the reorg window, the blocks in flight and one.
pub(super) fn floor(oldest: u64, reorg_window_blocks: usize, max_blocks_in_flight: usize) -> u64 {
    let margin = reorg_window_blocks.saturating_add(max_blocks_in_flight);
    oldest.saturating_sub(u64::try_from(margin).unwrap_or(u64::MAX).saturating_add(1))
}

/// The offset in `[low, high]` to read from: every value before it is of a block below
/// `floor` or precedes one that is. `first_value(from, to)` is the offset and block of the
/// first value (not a tombstone, one of ours) at an offset in `[from, to)`, if any; an
/// answer of `None` is always safe (the start moves earlier).
pub(super) fn start_offset<E>(
    low: i64,
    high: i64,
    floor: u64,
    mut first_value: impl FnMut(i64, i64) -> Result<Option<(i64, u64)>, E>,
) -> Result<i64, E> {
    let (mut lo, mut hi) = (low, high);
    // Invariant: no value before `lo` is of a block at or above what `floor` protects;
    // the answer is at most `hi`.
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match first_value(mid, hi)? {
            Some((at, block)) if block < floor => lo = at.saturating_add(1).clamp(mid + 1, hi),
            _ => hi = mid,
        }
    }
    Ok(lo)
}

/// `first_value` for [`start_offset`] on partition `p` of `topic`, through `consumer`
/// (assigned to that partition alone for each probe): values of chain `chain_id` only. No
/// record for `timeout` is an error.
pub(super) fn probe(
    consumer: &BaseConsumer<KafkaContext>,
    topic: &str,
    p: i32,
    chain_id: u64,
    timeout: Duration,
) -> impl FnMut(i64, i64) -> Result<Option<(i64, u64)>, KafkaError> {
    move |from, to| {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, p, Offset::Offset(from))?;
        consumer.assign(&tpl)?;
        let mut progress = Instant::now();
        loop {
            if progress.elapsed() > timeout {
                return Err(KafkaError::MessageConsumption(
                    RDKafkaErrorCode::OperationTimedOut,
                ));
            }
            match consumer.poll(Duration::from_millis(100)) {
                None => {}
                Some(Err(KafkaError::PartitionEOF(q))) if q == p => return Ok(None),
                Some(Err(e))
                    if matches!(
                        e.rdkafka_error_code(),
                        Some(
                            RDKafkaErrorCode::BrokerTransportFailure
                                | RDKafkaErrorCode::AllBrokersDown
                        )
                    ) => {}
                Some(Err(KafkaError::PartitionEOF(_))) => {}
                Some(Err(e)) => return Err(e),
                Some(Ok(m)) => {
                    progress = Instant::now();
                    // A record fetched for an earlier probe is still a record at its
                    // offset: at worst it is not the first value, which is safe.
                    if m.partition() != p || m.offset() < from {
                        continue;
                    }
                    if m.offset() >= to {
                        return Ok(None);
                    }
                    let ours = m
                        .key()
                        .and_then(|k| std::str::from_utf8(k).ok())
                        .and_then(|k| parse_key(chain_id, k))
                        .is_some();
                    let block = m.payload().and_then(peek_block);
                    if let (true, Some((chain, number, _))) = (ours, block)
                        && chain == chain_id
                    {
                        return Ok(Some((m.offset(), number)));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A partition: per offset, `None` for a gap (compacted away), `Some(None)` for a
    /// tombstone, `Some(Some(block))` for a value.
    struct Log(Vec<Option<Option<u64>>>);

    impl Log {
        /// From `(offset, value)` pairs; offsets not listed are gaps.
        fn new(records: &[(i64, Option<u64>)]) -> Self {
            let len = records.iter().map(|r| r.0 + 1).max().unwrap_or(0) as usize;
            let mut v = vec![None; len];
            for (o, b) in records {
                v[*o as usize] = Some(*b);
            }
            Self(v)
        }

        /// One value per offset, of these blocks in order: no tombstone, no gap.
        fn of_blocks(blocks: &[u64]) -> Self {
            Self(blocks.iter().map(|b| Some(Some(*b))).collect())
        }

        /// Offsets read back from `start`, where `floor` is the search's floor, and the
        /// number of probes.
        fn search(&self, floor: u64) -> (i64, usize) {
            let mut probes = 0;
            let start = start_offset(0, self.0.len() as i64, floor, |from, to| {
                probes += 1;
                Ok::<_, std::convert::Infallible>((from..to).find_map(|o| {
                    match self.0[o as usize] {
                        Some(Some(b)) => Some((o, b)),
                        _ => None,
                    }
                }))
            });
            match start {
                Ok(s) => (s, probes),
                Err(never) => match never {},
            }
        }

        /// Every offset holding a value of a block at or above `oldest`.
        fn needed(&self, oldest: u64) -> Vec<i64> {
            (0..self.0.len() as i64)
                .filter(|o| matches!(self.0[*o as usize], Some(Some(b)) if b >= oldest))
                .collect()
        }
    }

    /// Every record of a block at or above `oldest` is read, with `margin` the bound on
    /// the dips.
    fn covers(log: &Log, oldest: u64, margin: usize) -> i64 {
        let (start, _) = log.search(floor(oldest, margin, 0));
        let needed = log.needed(oldest);
        assert!(
            needed.iter().all(|o| *o >= start),
            "start {start} skips some of {needed:?}"
        );
        start
    }

    #[test]
    fn a_rising_sequence_starts_at_the_first_record_of_the_floor() {
        // Blocks 1..=100, two records each.
        let records: Vec<(i64, Option<u64>)> =
            (0..200).map(|o| (o, Some(o as u64 / 2 + 1))).collect();
        let log = Log::new(&records);
        let (start, probes) = log.search(60);
        assert_eq!(start, 118, "block 60's first record");
        assert!(probes <= 9, "{probes} probes for 200 records");
        assert_eq!(covers(&log, 70, 9), 118);
    }

    #[test]
    fn tombstones_and_gaps_are_stepped_over() {
        let mut records = Vec::new();
        let mut o = 0;
        for block in 1..=50u64 {
            records.push((o, Some(block)));
            // Every third block's records are followed by tombstones, every fifth by a
            // compacted gap.
            if block % 3 == 0 {
                records.push((o + 1, None));
                records.push((o + 2, None));
                o += 2;
            }
            o += if block % 5 == 0 { 4 } else { 1 };
        }
        let log = Log::new(&records);
        for oldest in [1, 2, 10, 25, 49, 50, 51, 80] {
            covers(&log, oldest, 3);
        }
        // Only tombstones from the middle on: nothing to skip past them.
        let mut only_tombstones: Vec<(i64, Option<u64>)> =
            (0..10).map(|o| (o, Some(o as u64))).collect();
        only_tombstones.extend((10..40).map(|o| (o, None)));
        let log = Log::new(&only_tombstones);
        let (start, _) = log.search(5);
        assert!(start <= 5, "{start}");
        assert_eq!(log.search(100).0, 10, "past every value, at the tombstones");
    }

    #[test]
    fn reorganisation_dips_within_the_margin_are_covered() {
        // Blocks rise to 40, a reorganisation back to 33 (ancestor 32), up to 60, another
        // back to 55, up to 70; then a crash replay from 66 (in flight).
        let mut blocks: Vec<u64> = (1..=40).collect();
        blocks.extend(33..=60);
        blocks.extend(55..=70);
        blocks.extend(66..=72);
        let log = Log::of_blocks(&blocks);
        for oldest in 1..=75 {
            covers(&log, oldest, 8);
        }
    }

    #[test]
    fn a_margin_too_small_for_the_dips_is_what_makes_a_search_miss() {
        // Block 50, then a dip of 30 blocks: with a margin of 5 the first probe lands in
        // the dip and the search steps past block 48..50's records. The margin is what the
        // guarantee stands on.
        let mut blocks: Vec<u64> = (1..=50).collect();
        blocks.extend(20..=89);
        let log = Log::of_blocks(&blocks);
        let (start, _) = log.search(floor(48, 5, 0));
        assert!(start > 49, "stepped past block 48..50 ({start})");
        covers(&log, 48, 30);
    }

    #[test]
    fn empty_and_all_above_the_floor_start_at_the_beginning() {
        assert_eq!(Log::new(&[]).search(10).0, 0);
        let log = Log::new(&[(3, Some(20)), (4, None), (7, Some(21))]);
        assert_eq!(log.search(10).0, 0);
        let log = Log::new(&[(3, Some(2)), (4, None), (7, Some(3))]);
        assert_eq!(log.search(10).0, 8, "everything below: the end");
    }

    #[test]
    fn the_floor_is_below_the_window_by_both_bounds() {
        assert_eq!(floor(1000, 128, 256), 1000 - 385);
        assert_eq!(floor(10, 128, 256), 0);
    }
}
