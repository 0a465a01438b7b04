//! Turning an [`Update`] into the records to produce: encoded logs for a block, tombstones
//! for a retraction. The dedup LRU skips values already on the topic, and forgets keys it
//! retracts.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use crate::encode::Encoder;
use crate::follower::Update;
use crate::telemetry::trace::BlockTrace;
use crate::window::{LogId, WindowBlock};

use super::dedup::Dedup;

/// The record key: `<chain_id>:<transaction_hash>:<log_index>`.
pub fn record_key(chain_id: u64, tx: &crate::rpc::hex::B256, log_index: u64) -> String {
    format!("{chain_id}:{tx}:{log_index}")
}

/// One record to produce. `payload: None` is a tombstone.
#[derive(Debug, Clone)]
pub struct OutRecord {
    /// Key.
    pub key: String,
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
    /// The block's timestamp (s); `None` for a retraction.
    pub(super) timestamp_s: Option<u64>,
    /// The block's spans; `None` for a retraction.
    pub(super) trace: Option<BlockTrace>,
}

/// What building a chain's records keeps between updates: the encoder and the dedup
/// cache, shared with the CPU pool that builds a large update (see [`crate::cpu`]).
#[derive(Clone)]
pub(super) struct Builder {
    chain_id: u64,
    state: Arc<Mutex<(Encoder, Dedup)>>,
}

impl Builder {
    pub(super) fn new(chain_id: u64, encoder: Encoder, dedup: Dedup) -> Self {
        Self {
            chain_id,
            state: Arc::new(Mutex::new((encoder, dedup))),
        }
    }

    /// The records of `update`: a large one (a catch-up block) on the CPU pool.
    pub(super) async fn build(&self, update: Update) -> Batch {
        let (chain_id, state) = (self.chain_id, self.state.clone());
        crate::cpu::offload(update.weight(), move || {
            // Poisoned only by a panic, which has already ended the publisher.
            let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
            let (encoder, dedup) = &mut *state;
            build(chain_id, update, encoder, dedup)
        })
        .await
    }
}

/// Builds the records for `update`.
fn build(chain_id: u64, update: Update, encoder: &Encoder, dedup: &mut Dedup) -> Batch {
    match update {
        Update::Block(block) => {
            let encode_started = SystemTime::now();
            let trace = BlockTrace::start(
                chain_id,
                block.header.number,
                &block.header.hash.to_string(),
                block.logs.len(),
                block.fetched,
            );
            let traceparent = trace.traceparent();
            let ts_s = block.header.timestamp_s;
            let timestamp_ms = ts_s.saturating_mul(1000) as i64;
            let mut records = Vec::with_capacity(block.logs.len());
            let mut dedup_hits = 0;
            for log in &block.logs {
                let value = encoder.encode(chain_id, ts_s, log);
                let id = LogId {
                    tx: log.transaction_hash,
                    log_index: log.log_index,
                };
                if dedup.seen(id, &value) {
                    dedup_hits += 1;
                    continue;
                }
                records.push(OutRecord {
                    key: record_key(chain_id, &log.transaction_hash, log.log_index),
                    payload: Some(value),
                    timestamp_ms,
                    traceparent: traceparent.clone(),
                });
            }
            trace.encoded(encode_started);
            Batch {
                records,
                effect: Effect::Block(block.window_block()),
                dedup_hits,
                timestamp_s: Some(ts_s),
                trace: Some(trace),
            }
        }
        Update::Retract(r) => {
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or_default();
            let records = r
                .tombstones
                .iter()
                .map(|id| {
                    dedup.forget(id);
                    OutRecord {
                        key: record_key(chain_id, &id.tx, id.log_index),
                        payload: None,
                        timestamp_ms: now_ms,
                        traceparent: None,
                    }
                })
                .collect();
            // Keys the replacement blocks publish again must not be skipped as duplicates.
            for b in &r.orphaned {
                for id in &b.logs {
                    dedup.forget(id);
                }
            }
            Batch {
                records,
                effect: Effect::Retract {
                    ancestor: r.ancestor,
                },
                dedup_hits: 0,
                timestamp_s: None,
                trace: None,
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
    }
}
