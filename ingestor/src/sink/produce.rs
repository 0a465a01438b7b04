//! Enqueueing one record, waiting (never dropping) while the producer queue is full.

use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;

use crate::events;

use super::error::SinkError;

/// How long to wait before offering a record again to a full producer queue.
const QUEUE_FULL_WAIT: Duration = Duration::from_millis(10);

/// Enqueues `key`/`payload` (a tombstone when `None`); the future resolves on acknowledgement.
pub(super) async fn enqueue(
    producer: &FutureProducer,
    chain: &str,
    topic: &str,
    key: &str,
    payload: Option<&[u8]>,
    timestamp_ms: i64,
) -> Result<DeliveryFuture, SinkError> {
    let mut record: FutureRecord<'_, str, [u8]> =
        FutureRecord::to(topic).key(key).timestamp(timestamp_ms);
    if let Some(p) = payload {
        record = record.payload(p);
    }
    loop {
        match producer.send_result(record) {
            Ok(delivery) => return Ok(delivery),
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

/// Waits for `delivery`; a refusal or timeout is a [`SinkError::Delivery`].
pub(super) async fn acknowledged(
    delivery: DeliveryFuture,
    topic: &str,
    key: &str,
    block: u64,
) -> Result<(), SinkError> {
    match delivery.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((error, _))) => Err(SinkError::Delivery {
            topic: topic.to_owned(),
            key: key.to_owned(),
            block,
            error: Box::new(error),
        }),
        Err(_) => Err(SinkError::Cancelled {
            key: key.to_owned(),
            block,
        }),
    }
}
