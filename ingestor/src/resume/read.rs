//! Reading a chain's topics' tails at start-up (blocking: call from `spawn_blocking`).

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};

use crate::checkpoint::Checkpoint;
use crate::config::{ChainConfig, KafkaConfig};
use crate::encode::peek::peek_block;
use crate::sink::{ReadError, ToEndError, TopicRead, digest, parse_key};
use crate::telemetry::KafkaContext;

use super::Resumed;
use super::datasets::{Dataset, DatasetTail};
use super::seek::{floor, probe, start_offset};
use super::view::{TailRecord, View, build_view};

/// A topic's tail could not be read.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot read the tail of topic `{topic}` at start-up: {source}; check `kafka.brokers` and that the broker is up"
)]
pub struct ResumeError {
    /// The topic.
    pub topic: String,
    /// Why.
    #[source]
    pub source: ReadError,
}

/// Reads `cfg`'s topics to their ends (the chain topic, when published, from the
/// checkpoint's window start or the look-back; each decoded topic as [`read_decoded`] says)
/// and builds where the chain resumes. Only committed records are read.
pub fn read_tail(
    k: &KafkaConfig,
    cfg: &ChainConfig,
    checkpoint: Option<&Checkpoint>,
) -> Result<Resumed, ResumeError> {
    let (view, oldest_ms) = match cfg.raw {
        true => read_chain(k, cfg, checkpoint)?,
        false => (View::default(), None),
    };
    let since = match (oldest_ms, checkpoint.and_then(|c| c.window.first())) {
        (Some(ts), _) => Since::Time(ts),
        (None, Some(oldest)) => Since::Block(floor(
            oldest.number,
            cfg.reorg_window_blocks,
            cfg.max_blocks_in_flight,
        )),
        (None, None) => Since::Lookback,
    };
    let mut decoded = Vec::new();
    for event in cfg.catalog.events() {
        decoded.push(read_decoded(k, cfg.chain_id, &event.topic, since)?);
    }
    let mut tail = DatasetTail::default();
    let datasets = [
        (cfg.blocks_topic(), Dataset::Blocks),
        (cfg.transactions_topic(), Dataset::Transactions),
    ];
    for (topic, dataset) in datasets {
        if let Some(topic) = topic {
            read_since(k, cfg.chain_id, &topic, since, |m| {
                tail.push(dataset, cfg.chain_id, m)
            })?;
        }
    }
    let mut resumed = build_view(
        checkpoint,
        cfg.reorg_window_blocks,
        k.dedup_cache_capacity,
        view,
        decoded,
        &tail.blocks(),
    );
    let oldest = resumed.window.blocks().next().map(|b| b.number);
    let keep = cfg.reorg_window_blocks as u64 + cfg.max_blocks_in_flight as u64;
    resumed.tx_placed = tail.placed(oldest, keep);
    resumed.records_read += tail.records;
    Ok(resumed)
}

/// Reads the chain topic from the checkpoint's window start (or the look-back) to its end:
/// its view, and the timestamp of its oldest value read.
fn read_chain(
    k: &KafkaConfig,
    cfg: &ChainConfig,
    checkpoint: Option<&Checkpoint>,
) -> Result<(View, Option<i64>), ResumeError> {
    let topic = cfg.topic();
    let err = |source: ReadError| ResumeError {
        topic: topic.clone(),
        source,
    };
    let timeout = std::time::Duration::from_millis(k.admin_timeout_ms);
    let read = TopicRead::open(k, &topic, "ethhook-ingestor-resume", |consumer, p| {
        let stored = checkpoint
            .and_then(|c| c.partitions.iter().find(|o| o.partition == p))
            .map(|o| o.window_start);
        if let Some(o) = stored {
            return Ok(Offset::Offset(o));
        }
        let (low, high) = consumer.fetch_watermarks(&topic, p, timeout)?;
        let back = i64::try_from(k.resume_lookback_records).unwrap_or(i64::MAX);
        Ok(Offset::Offset(low.max(high.saturating_sub(back))))
    })
    .map_err(err)?;
    let mut view = View::default();
    let mut oldest_ms: Option<i64> = None;
    read.to_end(|m| {
        if push(&mut view, cfg.chain_id, m)
            && let Some(ts) = m.timestamp().to_millis()
        {
            oldest_ms = Some(oldest_ms.map_or(ts, |o| o.min(ts)));
        }
        Ok::<_, std::convert::Infallible>(())
    })
    .map_err(|e| match e {
        ToEndError::Read(source) => err(source),
        ToEndError::Each(never) => match never {},
    })?;
    Ok((view, oldest_ms))
}

/// Where a decoded topic's read-back starts, besides its look-back.
#[derive(Debug, Clone, Copy)]
enum Since {
    /// The first record not older than this (ms): the oldest chain-topic value read.
    Time(i64),
    /// The search of [`super::seek`] with this floor: below the checkpoint window's
    /// oldest block by its margins (no chain-topic value was read).
    Block(u64),
    /// The look-back alone (no checkpoint).
    Lookback,
}

/// Adds `m` to `view` if it is a record of chain `chain_id`; whether it holds a value.
fn push(view: &mut View, chain_id: u64, m: &BorrowedMessage<'_>) -> bool {
    let Some(id) = m
        .key()
        .and_then(|k| std::str::from_utf8(k).ok())
        .and_then(|k| parse_key(chain_id, k))
    else {
        return false; // not one of ours
    };
    let value = match m.payload() {
        None => None,
        Some(bytes) => match peek_block(bytes) {
            Some((chain, number, hash)) if chain == chain_id => Some((number, hash, digest(bytes))),
            _ => return false,
        },
    };
    let has_value = value.is_some();
    view.push(TailRecord {
        partition: m.partition(),
        offset: m.offset(),
        id,
        value,
    });
    has_value
}

/// Reads a decoded-event topic's tail: from where `since` says, and at least its last
/// `kafka.resume_lookback_records` per partition. Decoded values start with the same
/// `chain_id`, `block_number` and `block_hash` as `EvmLog`'s, so they are peeked alike.
fn read_decoded(
    k: &KafkaConfig,
    chain_id: u64,
    topic: &str,
    since: Since,
) -> Result<View, ResumeError> {
    let mut view = View::default();
    read_since(k, chain_id, topic, since, |m| {
        push(&mut view, chain_id, m);
    })?;
    Ok(view)
}

/// Reads `topic` from where `since` says, and at least its last
/// `kafka.resume_lookback_records` per partition, giving each record to `each`. A search by
/// block number ([`Since::Block`]) finds values by their log keys: on a dataset topic it
/// finds none and reads from the start of the partition.
fn read_since(
    k: &KafkaConfig,
    chain_id: u64,
    topic: &str,
    since: Since,
    mut each: impl FnMut(&BorrowedMessage<'_>),
) -> Result<(), ResumeError> {
    let err = |source: ReadError| ResumeError {
        topic: topic.to_owned(),
        source,
    };
    let timeout = std::time::Duration::from_millis(k.admin_timeout_ms);
    let read = TopicRead::open(k, topic, "ethhook-ingestor-resume", |consumer, p| {
        let (low, high) = consumer.fetch_watermarks(topic, p, timeout)?;
        let back = i64::try_from(k.resume_lookback_records).unwrap_or(i64::MAX);
        let lookback = low.max(high.saturating_sub(back));
        Ok(Offset::Offset(match since {
            Since::Time(ts) => match by_time(consumer, topic, p, ts, timeout)? {
                Some(o) => o.min(lookback).max(low),
                None => lookback,
            },
            // Only what lies before the look-back is searched: the rest is read anyway.
            Since::Block(floor) => {
                let probe = probe(consumer, topic, p, chain_id, timeout);
                let start = start_offset(low, lookback, floor, probe)?;
                consumer.unassign()?;
                start
            }
            Since::Lookback => lookback,
        }))
    })
    .map_err(err)?;
    read.to_end(|m| {
        each(m);
        Ok::<_, std::convert::Infallible>(())
    })
    .map_err(|e| match e {
        ToEndError::Read(source) => err(source),
        ToEndError::Each(never) => match never {},
    })
}

/// The first offset of `topic`'s partition `p` whose timestamp is at least `ts_ms`; `None`
/// when there is none.
fn by_time(
    consumer: &BaseConsumer<KafkaContext>,
    topic: &str,
    p: i32,
    ts_ms: i64,
    timeout: std::time::Duration,
) -> Result<Option<i64>, KafkaError> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, p, Offset::Offset(ts_ms))?;
    let found = consumer.offsets_for_times(tpl, timeout)?;
    Ok(found
        .find_partition(topic, p)
        .and_then(|e| match e.offset() {
            Offset::Offset(o) => Some(o),
            _ => None,
        }))
}
