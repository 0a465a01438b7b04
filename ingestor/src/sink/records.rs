//! Turning an [`Update`] into the records to produce: encoded logs for a block, tombstones
//! for a retraction. This is the one place a block fans out to several topics: each log to
//! the chain topic (lane 0, unless the chain's `raw = false`) and to the topic of every
//! configured event that decodes it (lane `1 + i` for event `i`); a retracted key is
//! tombstoned on the chain topic (when it is published) and on every decoded topic that
//! holds it ([`Placed`]). The dedup LRU skips values already on a topic, and forgets keys it
//! retracts. Without the chain topic a log is still encoded as `EvmLog`: its decoded records
//! reuse those fields.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use crate::config::ChainConfig;
use crate::decode::{Catalog, Routed};
use crate::encode::{DatasetEncoder, EncodeError, Encoder, Framing, header};
use crate::events;
use crate::follower::Update;
use crate::rpc::hex::Address;
use crate::telemetry::trace::{BlockTrace, TracedBlock, TracedRetraction};
use crate::window::{LogId, WindowBlock};

use super::datasets::{DatasetLanes, RecordId, TxPlaced, block_records, retract_records};
use super::dedup::{Dedup, IdKey};
use super::placed::Placed;

/// How a chain's values announce their schemas: the chain topic's, and each decoded
/// event's (in the order of the chain's event catalog; missing ones are single-object).
#[derive(Debug, Clone, Default)]
pub struct Framings {
    /// The chain topic's `EvmLog` values.
    pub raw: Option<Framing>,
    /// Each event's values.
    pub events: Vec<Framing>,
    /// The blocks topic's `EvmBlock` values.
    pub blocks: Option<Framing>,
    /// The transactions topic's `EvmTransaction` values.
    pub transactions: Option<Framing>,
}

/// The record key: `<chain_id>:<transaction_hash>:<log_index>`.
pub fn record_key(chain_id: u64, tx: &crate::rpc::hex::B256, log_index: u64) -> String {
    format!("{chain_id}:{tx}:{log_index}")
}

/// A record key as [`record_key`] writes it (or a block's `<chain_id>:<number>`, a
/// transaction's `<chain_id>:<hash>`), for display without a `String`.
#[derive(Debug, Clone, Copy)]
pub(super) struct RecordKey<'a> {
    pub(super) chain_id: u64,
    pub(super) id: &'a RecordId,
}

impl std::fmt::Display for RecordKey<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.id {
            RecordId::Log(id) => write!(f, "{}:{}:{}", self.chain_id, id.tx, id.log_index),
            RecordId::Block(n) => write!(f, "{}:{n}", self.chain_id),
            RecordId::Transaction(tx) => write!(f, "{}:{tx}", self.chain_id),
        }
    }
}

/// A record key written into a stack buffer (the longest, 108 bytes, fits), or into a
/// `String` should it not fit.
pub(super) enum KeyBuf {
    /// The bytes and how many are used.
    Stack([u8; KEY_BYTES], usize),
    /// The fallback.
    Heap(String),
}

/// Room for a record key: 20 digits, `:`, 66 for the hash, `:`, 20 digits.
const KEY_BYTES: usize = 112;

impl KeyBuf {
    /// `key`, written out.
    pub(super) fn new(key: RecordKey<'_>) -> Self {
        struct Fill<'b>(&'b mut [u8; KEY_BYTES], usize);
        impl std::fmt::Write for Fill<'_> {
            fn write_str(&mut self, s: &str) -> std::fmt::Result {
                let end = self.1 + s.len();
                self.0
                    .get_mut(self.1..end)
                    .ok_or(std::fmt::Error)?
                    .copy_from_slice(s.as_bytes());
                self.1 = end;
                Ok(())
            }
        }
        let mut buf = [0u8; KEY_BYTES];
        let mut fill = Fill(&mut buf, 0);
        match std::fmt::write(&mut fill, format_args!("{key}")) {
            Ok(()) => {
                let len = fill.1;
                Self::Stack(buf, len)
            }
            Err(_) => Self::Heap(key.to_string()),
        }
    }

    /// The key.
    pub(super) fn as_str(&self) -> &str {
        match self {
            // Whole `str`s were copied in, so the bytes are UTF-8.
            Self::Stack(buf, len) => std::str::from_utf8(&buf[..*len]).unwrap_or_default(),
            Self::Heap(s) => s,
        }
    }
}

/// The written-out key of the last record, reused by the records after it about the same
/// log (its decoded events' records follow its raw one).
#[derive(Default)]
pub(super) struct KeyCache(Option<(RecordId, KeyBuf)>);

impl KeyCache {
    /// The key of `id` on `chain_id`.
    pub(super) fn key(&mut self, chain_id: u64, id: &RecordId) -> &str {
        if !matches!(&self.0, Some((last, _)) if last == id) {
            self.0 = Some((*id, KeyBuf::new(RecordKey { chain_id, id })));
        }
        self.0.as_ref().map_or("", |(_, k)| k.as_str())
    }
}

/// One record to produce. `payload: None` is a tombstone.
#[derive(Debug, Clone)]
pub struct OutRecord {
    /// Its topic among the chain's: 0 the chain topic, `1 + i` decoded event `i`'s.
    pub lane: usize,
    /// What it is about: a log's key is [`record_key`] of the chain and its id.
    pub id: RecordId,
    /// Avro single-object value, or `None` to delete the key.
    pub payload: Option<Vec<u8>>,
    /// Kafka timestamp (ms).
    pub timestamp_ms: i64,
    /// W3C `traceparent` header of the block's span, when traces are exported.
    pub traceparent: Option<String>,
}

/// What an update does to the delivered window once all its records are acknowledged.
#[derive(Debug, Clone)]
pub enum Effect {
    /// A block was published.
    Block(WindowBlock),
    /// Blocks above `ancestor` were retracted.
    Retract {
        /// The common ancestor.
        ancestor: u64,
    },
}

impl Effect {
    /// The block number the update is about (the ancestor for a retraction).
    pub fn block(&self) -> u64 {
        match self {
            Self::Block(b) => b.number,
            Self::Retract { ancestor } => *ancestor,
        }
    }
}

/// The records of one update and its effect.
#[derive(Debug)]
pub(super) struct Batch {
    /// Records, in order.
    pub(super) records: Vec<OutRecord>,
    /// The effect once acknowledged.
    pub(super) effect: Effect,
    /// Records skipped by the dedup LRU.
    pub(super) dedup_hits: usize,
    /// Logs published: records for the chain topic, or with `raw = false` the logs with
    /// at least one decoded record (tombstones, for a retraction).
    pub(super) logs_published: usize,
    /// The block's timestamp (s); `None` for a retraction.
    pub(super) timestamp_s: Option<u64>,
    /// The block's spans; `None` for a retraction.
    pub(super) trace: Option<BlockTrace>,
}

/// What building a chain's records keeps between updates: the encoders, the dedup cache
/// and where decoded keys are, shared with the CPU pool that builds a large update (see
/// [`crate::cpu`]).
#[derive(Clone)]
pub(super) struct Builder {
    chain_id: u64,
    /// Each lane's topic.
    topics: Arc<[String]>,
    state: Arc<Mutex<State>>,
}

struct State {
    chain: String,
    /// Whether lane 0 (the chain topic) is published.
    raw: bool,
    encoder: Encoder,
    catalog: Arc<Catalog>,
    /// Each event's value header (framing and schema).
    headers: Vec<Vec<u8>>,
    dedup: Dedup,
    placed: Placed,
    failures: FailureLog,
    /// The blocks and transactions datasets' encoder, when the chain publishes either.
    datasets: Option<DatasetEncoder>,
    lanes: DatasetLanes,
    tx_placed: TxPlaced,
}

impl Builder {
    /// For `cfg`'s topics, framed as `framings` says, skipping what `dedup` knows is on a
    /// topic, retracting decoded keys where `placed` says they are and transactions where
    /// `tx_placed` says they are.
    pub(super) fn new(
        cfg: &ChainConfig,
        framings: &Framings,
        dedup: Dedup,
        (placed, tx_placed): (Placed, TxPlaced),
    ) -> Result<Self, EncodeError> {
        let events = cfg.catalog.events();
        let headers = events
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let framing = framings
                    .events
                    .get(i)
                    .copied()
                    .unwrap_or(Framing::SingleObject);
                header(&e.schema_json, framing)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut topics: Vec<String> = std::iter::once(cfg.topic())
            .chain(events.iter().map(|e| e.topic.clone()))
            .collect();
        let mut lanes = DatasetLanes::default();
        if let Some(t) = cfg.blocks_topic() {
            lanes.blocks = Some(topics.len());
            topics.push(t);
        }
        if let Some(t) = cfg.transactions_topic() {
            lanes.transactions = Some(topics.len());
            topics.push(t);
        }
        let datasets = match lanes.blocks.is_some() || lanes.transactions.is_some() {
            true => Some(DatasetEncoder::new(
                framings.blocks.unwrap_or(Framing::SingleObject),
                framings.transactions.unwrap_or(Framing::SingleObject),
            )?),
            false => None,
        };
        Ok(Self {
            chain_id: cfg.chain_id,
            topics: topics.into(),
            state: Arc::new(Mutex::new(State {
                chain: cfg.name.clone(),
                raw: cfg.raw,
                encoder: Encoder::new(framings.raw.unwrap_or(Framing::SingleObject))?,
                catalog: cfg.catalog.clone(),
                headers,
                dedup,
                placed,
                failures: FailureLog::default(),
                datasets,
                lanes,
                tx_placed,
            })),
        })
    }

    /// Each lane's topic: 0 the chain topic (named even when it is not published),
    /// `1 + i` decoded event `i`'s, then the blocks and the transactions topics (when
    /// published).
    pub(super) fn topics(&self) -> Arc<[String]> {
        self.topics.clone()
    }

    /// The records of `update`: a large one (a catch-up block) on the CPU pool.
    pub(super) async fn build(&self, update: Update) -> Batch {
        let (chain_id, state) = (self.chain_id, self.state.clone());
        crate::cpu::offload(update.weight(), move || {
            // Poisoned only by a panic, which has already ended the publisher.
            let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
            build(chain_id, update, &mut state)
        })
        .await
    }
}

/// How often a contract's undecodable logs of one event are logged, at most.
const FAILURE_LOG_EVERY: Duration = Duration::from_secs(60);
/// Contract and event pairs remembered for that; past it, those not logged within the last
/// interval are forgotten.
const FAILURE_LOG_PAIRS: usize = 10_000;

/// When each contract's undecodable logs of each event were last logged, and how many went
/// unlogged since.
#[derive(Default)]
struct FailureLog {
    last: HashMap<(Address, usize), (Instant, u64)>,
}

impl FailureLog {
    /// Whether to log this one, and how many went unlogged before it.
    fn due(&mut self, address: Address, event: usize) -> (bool, u64) {
        let now = Instant::now();
        if self.last.len() >= FAILURE_LOG_PAIRS {
            self.last
                .retain(|_, (at, _)| now.duration_since(*at) < FAILURE_LOG_EVERY);
        }
        match self.last.get_mut(&(address, event)) {
            Some((at, unlogged)) if now.duration_since(*at) < FAILURE_LOG_EVERY => {
                *unlogged += 1;
                (false, 0)
            }
            Some((at, unlogged)) => {
                let before = std::mem::take(unlogged);
                *at = now;
                (true, before)
            }
            None => {
                self.last.insert((address, event), (now, 0));
                (true, 0)
            }
        }
    }
}

/// Builds the records for `update`.
fn build(chain_id: u64, update: Update, state: &mut State) -> Batch {
    let State {
        chain,
        raw,
        encoder,
        catalog,
        headers,
        dedup,
        placed,
        failures,
        datasets,
        lanes,
        tx_placed,
    } = state;
    match update {
        Update::Block(block) => {
            let encode_started = SystemTime::now();
            let trace = BlockTrace::start(
                TracedBlock {
                    chain_id,
                    chain,
                    number: block.header.number,
                    hash: &block.header.hash.to_string(),
                    logs: block.logs.len(),
                },
                block.fetched,
            );
            let traceparent = trace.traceparent();
            let ts_s = block.header.timestamp_s;
            let timestamp_ms = ts_s.saturating_mul(1000) as i64;
            let mut records = Vec::with_capacity(block.logs.len());
            let mut dedup_hits = 0;
            let mut logs_published = 0;
            for log in &block.logs {
                let (value, fields) = encoder.encode_with_fields(chain_id, ts_s, log);
                let id = LogId {
                    tx: log.transaction_hash,
                    log_index: log.log_index,
                };
                let key = IdKey::of(&id);
                let before = records.len();
                let mut push = |lane: usize, value: Vec<u8>| {
                    if dedup.seen_at(key, lane, &value) {
                        dedup_hits += 1;
                        return;
                    }
                    records.push(OutRecord {
                        lane,
                        id: RecordId::Log(id),
                        payload: Some(value),
                        timestamp_ms,
                        traceparent: traceparent.clone(),
                    });
                };
                let head = |i: usize| headers.get(i).map_or(&[][..], Vec::as_slice);
                let routed = if catalog.is_empty() {
                    Routed::Unrelated
                } else {
                    catalog.route_framed(value.get(fields).unwrap_or_default(), log, head)
                };
                if *raw {
                    push(0, value);
                }
                match routed {
                    Routed::Unrelated => {}
                    Routed::Decoded(values) => {
                        for (i, v) in values {
                            if headers.get(i).is_none() {
                                continue;
                            }
                            placed.note(block.header.number, id, i + 1);
                            push(i + 1, v);
                        }
                    }
                    Routed::Failed { event, error } => {
                        let (log_it, unlogged) = failures.due(log.address, event);
                        let name = catalog.events().get(event).map_or("", |e| &e.record);
                        events::DecodeFailed {
                            chain,
                            event: name,
                            address: &log.address,
                            tx: &log.transaction_hash,
                            error: &error,
                            log: log_it,
                            unlogged,
                            raw: *raw,
                        }
                        .emit();
                    }
                }
                // The log counts as published by its chain-topic record, or without the
                // chain topic by its decoded ones.
                let published = &records[before..];
                if published.iter().any(|r| r.lane == 0 || !*raw) {
                    logs_published += 1;
                }
            }
            if let (Some(data), Some(encoder)) = (&block.data, datasets.as_ref()) {
                for (lane, id, payload) in block_records(chain_id, data, *lanes, encoder, tx_placed)
                {
                    records.push(OutRecord {
                        lane,
                        id,
                        payload,
                        timestamp_ms,
                        traceparent: traceparent.clone(),
                    });
                }
            }
            trace.encoded(encode_started);
            Batch {
                records,
                effect: Effect::Block(block.window_block()),
                dedup_hits,
                logs_published,
                timestamp_s: Some(ts_s),
                trace: Some(trace),
            }
        }
        Update::Retract(r) => {
            let encode_started = SystemTime::now();
            let trace = BlockTrace::retraction(TracedRetraction {
                chain_id,
                chain,
                ancestor: r.ancestor,
                orphaned: r.orphaned.len(),
                tombstones: r.tombstones.len(),
            });
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or_default();
            let mut records = Vec::with_capacity(r.tombstones.len());
            let mut lanes_of = placed.take_blocks(r.orphaned.iter().map(|b| b.number));
            for id in &r.tombstones {
                let lanes = lanes_of.remove(id).unwrap_or_default();
                for lane in raw.then_some(0).into_iter().chain(lanes) {
                    dedup.forget_on(lane, id);
                    records.push(OutRecord {
                        lane,
                        id: RecordId::Log(*id),
                        payload: None,
                        timestamp_ms: now_ms,
                        traceparent: None,
                    });
                }
            }
            let logs_published = if *raw {
                r.tombstones.len()
            } else {
                records.len()
            };
            for (lane, id, payload) in retract_records(&r, *lanes, tx_placed) {
                records.push(OutRecord {
                    lane,
                    id,
                    payload,
                    timestamp_ms: now_ms,
                    traceparent: None,
                });
            }
            // Keys the replacement blocks publish again must not be skipped as duplicates.
            for b in &r.orphaned {
                for id in &b.logs {
                    for lane in 0..=headers.len() {
                        dedup.forget_on(lane, id);
                    }
                }
            }
            trace.encoded(encode_started);
            Batch {
                records,
                effect: Effect::Retract {
                    ancestor: r.ancestor,
                },
                dedup_hits: 0,
                logs_published,
                timestamp_s: None,
                trace: Some(trace),
            }
        }
    }
}

/// The log id of a record key written by [`record_key`] for `chain_id`; `None` for any
/// other key.
pub fn parse_key(chain_id: u64, key: &str) -> Option<LogId> {
    let mut parts = key.splitn(3, ':');
    let chain: u64 = parts.next()?.parse().ok()?;
    let tx = crate::rpc::hex::B256::parse("key", parts.next()?).ok()?;
    let log_index = parts.next()?.parse().ok()?;
    (chain == chain_id).then_some(LogId { tx, log_index })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        let id = LogId {
            tx: crate::rpc::hex::B256::new([0xab; 32]),
            log_index: 17,
        };
        let key = record_key(5, &id.tx, id.log_index);
        assert_eq!(parse_key(5, &key), Some(id));
        assert_eq!(parse_key(6, &key), None);
        assert_eq!(parse_key(5, "5:0xab:1"), None);
        assert_eq!(parse_key(5, "garbage"), None);
        let long = LogId {
            tx: id.tx,
            log_index: u64::MAX,
        };
        let stack = KeyBuf::new(RecordKey {
            chain_id: u64::MAX,
            id: &RecordId::Log(long),
        });
        assert!(matches!(stack, KeyBuf::Stack(..)), "the longest key fits");
        assert_eq!(
            stack.as_str(),
            record_key(u64::MAX, &long.tx, long.log_index)
        );
    }
}
