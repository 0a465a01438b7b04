//! Reading the checkpoint topic to its end at start-up: the last value per chain wins, as it
//! does after compaction.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use crate::config::KafkaConfig;
use crate::telemetry::KafkaContext;

use super::{Checkpoint, CheckpointError, decode};

/// Every chain's latest checkpoint, by chain id. Blocks: call from `spawn_blocking`.
///
/// The end of each partition is found by librdkafka's end-of-partition event rather than
/// the high watermark (tansu 0.6 reports a watermark inside the last batch). Only committed
/// records are read, so an aborted transaction's checkpoint never counts.
pub fn load_all(k: &KafkaConfig) -> Result<HashMap<u64, Checkpoint>, CheckpointError> {
    let topic = &k.checkpoint_topic;
    let err = |reason: String| CheckpointError::Read {
        topic: topic.clone(),
        reason,
    };
    let mut c = crate::sink::client_config(k, "ethhook-ingestor-checkpoints");
    c.set("group.id", "ethhook-ingestor-checkpoints")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        // An empty partition's end is only reported after a fetch returns: do not let the
        // broker hold it for the default 500 ms.
        .set("fetch.wait.max.ms", "20")
        .set("isolation.level", "read_committed");
    let consumer: BaseConsumer<KafkaContext> = c
        .create_with_context(KafkaContext)
        .map_err(|e| err(e.to_string()))?;
    let timeout = Duration::from_millis(k.admin_timeout_ms);
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
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
    for p in &partitions {
        tpl.add_partition_offset(topic, *p, Offset::Beginning)
            .map_err(|e| err(e.to_string()))?;
    }
    consumer.assign(&tpl).map_err(|e| err(e.to_string()))?;

    let mut latest: HashMap<u64, Checkpoint> = HashMap::new();
    let mut at_end = HashSet::new();
    let started = Instant::now();
    while at_end.len() < partitions.len() {
        if started.elapsed() > timeout {
            return Err(err(format!(
                "its end was not reached within kafka.admin_timeout_ms = {}",
                k.admin_timeout_ms
            )));
        }
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
            }
            Some(Err(e)) if is_transient(&e) => {}
            Some(Err(e)) => return Err(err(e.to_string())),
            Some(Ok(m)) => {
                at_end.remove(&m.partition());
                let Some(key) = m.key().and_then(|k| std::str::from_utf8(k).ok()) else {
                    continue;
                };
                let Ok(chain_id) = key.parse::<u64>() else {
                    continue;
                };
                match m.payload() {
                    None => {
                        latest.remove(&chain_id);
                    }
                    Some(bytes) => {
                        let cp = decode(bytes).map_err(|e| {
                            err(format!(
                                "record for chain {chain_id} at offset {}: {e}",
                                m.offset()
                            ))
                        })?;
                        latest.insert(chain_id, cp);
                    }
                }
            }
        }
    }
    Ok(latest)
}

fn is_transient(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(RDKafkaErrorCode::BrokerTransportFailure | RDKafkaErrorCode::AllBrokersDown)
    )
}
