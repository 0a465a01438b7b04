//! Reading the checkpoint topic to its end at start-up: the last value per chain wins, as it
//! does after compaction.

use std::collections::HashMap;

use rdkafka::Offset;
use rdkafka::message::Message;

use crate::config::KafkaConfig;
use crate::sink::{ReadError, ToEndError, TopicRead};

use super::{Checkpoint, CheckpointError, decode};

/// Every chain's latest checkpoint, by chain id. Blocks: call from `spawn_blocking`.
///
/// Only committed records are read, so an aborted transaction's checkpoint never counts.
pub fn load_all(k: &KafkaConfig) -> Result<HashMap<u64, Checkpoint>, CheckpointError> {
    let topic = &k.checkpoint_topic;
    let err = |source: ReadError| CheckpointError::Read {
        topic: topic.clone(),
        source,
    };
    let read = TopicRead::open(k, topic, "ethhook-ingestor-checkpoints", |_, _| {
        Ok(Offset::Beginning)
    })
    .map_err(err)?;
    // Only each chain's last value is decoded: an exactly-once run writes one checkpoint
    // per transaction, and the topic holds them all until its segment is compacted.
    let mut latest: HashMap<u64, (i64, Vec<u8>)> = HashMap::new();
    read.to_end(|m| {
        let Some(chain_id) = m
            .key()
            .and_then(|k| std::str::from_utf8(k).ok())
            .and_then(|k| k.parse::<u64>().ok())
        else {
            return Ok::<_, std::convert::Infallible>(());
        };
        match m.payload() {
            None => {
                latest.remove(&chain_id);
            }
            Some(bytes) => {
                let (offset, value) = latest.entry(chain_id).or_default();
                *offset = m.offset();
                value.clear();
                value.extend_from_slice(bytes);
            }
        }
        Ok(())
    })
    .map_err(|e| match e {
        ToEndError::Read(source) => err(source),
        ToEndError::Each(never) => match never {},
    })?;
    latest
        .into_iter()
        .map(|(chain_id, (offset, bytes))| {
            let cp = decode(&bytes).map_err(|e| CheckpointError::Record {
                topic: topic.clone(),
                chain_id,
                offset,
                source: Box::new(e),
            })?;
            Ok((chain_id, cp))
        })
        .collect()
}
