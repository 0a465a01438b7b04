//! Enqueueing one record, waiting (never dropping) while the producer queue is full; its
//! acknowledgement counts into the [`Acks`] it carries.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::BaseRecord;
use rdkafka::types::RDKafkaErrorCode;

use crate::events;

use super::acks::{Acks, Refused};
use super::client::Producer;
use crate::sink::SinkError;

/// How long to wait before offering a record again to a full producer queue.
const QUEUE_FULL_WAIT: Duration = Duration::from_millis(10);

/// One record to enqueue.
pub(in crate::sink) struct Outgoing<'a> {
    pub(in crate::sink) topic: &'a str,
    pub(in crate::sink) key: &'a str,
    /// `None`: a tombstone.
    pub(in crate::sink) payload: Option<&'a [u8]>,
    pub(in crate::sink) timestamp_ms: i64,
    pub(in crate::sink) traceparent: Option<&'a str>,
}

/// Enqueues one record, whose acknowledgement counts into `acks`.
pub(in crate::sink) async fn enqueue(
    producer: &Producer,
    chain: &str,
    out: Outgoing<'_>,
    acks: &Arc<Acks>,
) -> Result<(), SinkError> {
    let (topic, key) = (out.topic, out.key);
    let mut record: BaseRecord<'_, str, [u8], Arc<Acks>> =
        BaseRecord::with_opaque_to(topic, acks.clone())
            .key(key)
            .timestamp(out.timestamp_ms);
    if let Some(p) = out.payload {
        record = record.payload(p);
    }
    if let Some(tp) = out.traceparent {
        record = record.headers(OwnedHeaders::new().insert(Header {
            key: "traceparent",
            value: Some(tp),
        }));
    }
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                events::ProducerQueueFull { chain }.emit();
                record = back;
                tokio::time::sleep(QUEUE_FULL_WAIT).await;
            }
            Err((error, _)) => {
                return Err(SinkError::Enqueue {
                    key: key.to_owned(),
                    error: Box::new(error),
                });
            }
        }
    }
}

/// The [`SinkError::Delivery`] of a refused record of `block`.
pub(in crate::sink) fn refused(r: Refused, block: u64) -> SinkError {
    SinkError::Delivery {
        topic: r.topic,
        key: r.key,
        block,
        error: Box::new(r.error),
    }
}

/// The [`Outgoing`] form of a built record for `topic`, under `key` (its written-out key).
pub(in crate::sink) fn outgoing<'a>(
    topic: &'a str,
    key: &'a str,
    r: &'a crate::sink::OutRecord,
) -> Outgoing<'a> {
    Outgoing {
        topic,
        key,
        payload: r.payload.as_deref(),
        timestamp_ms: r.timestamp_ms,
        traceparent: r.traceparent.as_deref(),
    }
}

/// Enqueues `cp` to the checkpoint `topic` (key = the chain id); returns its size and its
/// acknowledgement.
pub(in crate::sink) async fn enqueue_checkpoint(
    producer: &Producer,
    chain: &str,
    topic: &str,
    cp: &crate::checkpoint::Checkpoint,
) -> Result<(usize, Arc<Acks>), SinkError> {
    use crate::checkpoint::{Checkpoint, encode};
    let bytes = encode(cp).map_err(SinkError::Checkpoint)?;
    let key = Checkpoint::key(cp.chain_id);
    let out = Outgoing {
        topic,
        key: &key,
        payload: Some(&bytes),
        timestamp_ms: cp.updated_at_ms,
        traceparent: None,
    };
    let acks = Acks::new(None);
    enqueue(producer, chain, out, &acks).await?;
    acks.expect(1);
    Ok((bytes.len(), acks))
}
