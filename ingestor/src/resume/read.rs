//! Reading a chain topic's tail at start-up (blocking: call from `spawn_blocking`).

use rdkafka::Offset;
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;

use crate::checkpoint::Checkpoint;
use crate::config::{ChainConfig, KafkaConfig};
use crate::encode::peek::peek_block;
use crate::sink::{ReadError, ToEndError, TopicRead, digest, parse_key};

use super::Resumed;
use super::view::{TailRecord, View, build_view};

/// The chain topic's tail could not be read.
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

/// Reads `cfg`'s topic from the checkpoint's window start (or the look-back) to its end
/// and builds where the chain resumes. Only committed records are read.
pub fn read_tail(
    k: &KafkaConfig,
    cfg: &ChainConfig,
    checkpoint: Option<&Checkpoint>,
) -> Result<Resumed, ResumeError> {
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
    read.to_end(|m| {
        let Some(id) = m
            .key()
            .and_then(|k| std::str::from_utf8(k).ok())
            .and_then(|k| parse_key(cfg.chain_id, k))
        else {
            return Ok(()); // not one of ours
        };
        let value = match m.payload() {
            None => None,
            Some(bytes) => match peek_block(bytes) {
                Some((chain, number, hash)) if chain == cfg.chain_id => {
                    Some((number, hash, digest(bytes)))
                }
                _ => return Ok(()),
            },
        };
        view.push(TailRecord {
            partition: m.partition(),
            offset: m.offset(),
            id,
            value,
        });
        Ok::<_, std::convert::Infallible>(())
    })
    .map_err(|e| match e {
        ToEndError::Read(source) => err(source),
        ToEndError::Each(never) => match never {},
    })?;
    Ok(build_view(
        checkpoint,
        cfg.reorg_window_blocks,
        k.dedup_cache_capacity,
        view,
    ))
}
