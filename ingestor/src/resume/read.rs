//! Reading a chain topic's tail at start-up (blocking: call from `spawn_blocking`).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use crate::checkpoint::Checkpoint;
use crate::config::{ChainConfig, KafkaConfig};
use crate::encode::peek::peek_block;
use crate::sink::{digest, parse_key};
use crate::telemetry::KafkaContext;

use super::Resumed;
use super::view::{TailRecord, View, build_view};

/// The chain topic's tail could not be read.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot read the tail of topic `{topic}` at start-up: {reason}; check `kafka.brokers` and that the broker is up"
)]
pub struct ResumeError {
    /// The topic.
    pub topic: String,
    /// Why.
    pub reason: String,
}

/// Reads `cfg`'s topic from the checkpoint's window start (or the look-back) to its end
/// and builds where the chain resumes. Only committed records are read.
pub fn read_tail(
    k: &KafkaConfig,
    cfg: &ChainConfig,
    checkpoint: Option<&Checkpoint>,
) -> Result<Resumed, ResumeError> {
    let topic = cfg.topic();
    let err = |reason: String| ResumeError {
        topic: topic.clone(),
        reason,
    };
    let mut c = crate::sink::client_config(k, "ethhook-ingestor-resume");
    c.set("group.id", "ethhook-ingestor-resume")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("fetch.wait.max.ms", "20")
        .set("isolation.level", "read_committed");
    let consumer: BaseConsumer<KafkaContext> = c
        .create_with_context(KafkaContext)
        .map_err(|e| err(e.to_string()))?;
    let timeout = Duration::from_millis(k.admin_timeout_ms);
    let metadata = consumer
        .fetch_metadata(Some(&topic), timeout)
        .map_err(|e| err(format!("metadata request failed: {e}")))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic.as_str())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(err("the broker lists no partition for it".into()));
    }
    let mut tpl = TopicPartitionList::new();
    for &p in &partitions {
        let stored = checkpoint
            .and_then(|c| c.partitions.iter().find(|o| o.partition == p))
            .map(|o| o.window_start);
        let start = match stored {
            Some(o) => o,
            None => {
                let (low, high) = consumer
                    .fetch_watermarks(&topic, p, timeout)
                    .map_err(|e| err(format!("partition {p} watermarks: {e}")))?;
                let back = i64::try_from(k.resume_lookback_records).unwrap_or(i64::MAX);
                low.max(high.saturating_sub(back))
            }
        };
        tpl.add_partition_offset(&topic, p, Offset::Offset(start))
            .map_err(|e| err(e.to_string()))?;
    }
    consumer.assign(&tpl).map_err(|e| err(e.to_string()))?;

    let mut view = View::default();
    let mut at_end = HashSet::new();
    let mut last_progress = Instant::now();
    while at_end.len() < partitions.len() {
        if last_progress.elapsed() > timeout {
            return Err(err(format!(
                "no progress towards its end within kafka.admin_timeout_ms = {}",
                k.admin_timeout_ms
            )));
        }
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
                last_progress = Instant::now();
            }
            Some(Err(e)) if is_transient(&e) => {}
            Some(Err(e)) => return Err(err(e.to_string())),
            Some(Ok(m)) => {
                at_end.remove(&m.partition());
                last_progress = Instant::now();
                let Some(id) = m
                    .key()
                    .and_then(|k| std::str::from_utf8(k).ok())
                    .and_then(|k| parse_key(cfg.chain_id, k))
                else {
                    continue; // not one of ours
                };
                let value = match m.payload() {
                    None => None,
                    Some(bytes) => match peek_block(bytes) {
                        Some((chain, number, hash)) if chain == cfg.chain_id => {
                            Some((number, hash, digest(bytes)))
                        }
                        _ => continue,
                    },
                };
                view.push(TailRecord {
                    partition: m.partition(),
                    offset: m.offset(),
                    id,
                    value,
                });
            }
        }
    }
    Ok(build_view(
        checkpoint,
        cfg.reorg_window_blocks,
        k.dedup_cache_capacity,
        view,
    ))
}

fn is_transient(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(RDKafkaErrorCode::BrokerTransportFailure | RDKafkaErrorCode::AllBrokersDown)
    )
}
