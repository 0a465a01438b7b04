//! librdkafka statistics (`statistics.interval.ms`) into metrics, through the producer's
//! client context.

use std::sync::atomic::Ordering;

use rdkafka::ClientContext;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;

use super::metrics::{KAFKA_ERRORS, KAFKA_RETRIES, metrics};

/// The producer's context: forwards statistics to metrics, logs like the default context.
#[derive(Debug, Clone, Copy, Default)]
pub struct KafkaContext;

impl ClientContext for KafkaContext {
    fn stats(&self, stats: Statistics) {
        let m = metrics();
        m.kafka_queue_messages.record(stats.msg_cnt, &[]);
        m.kafka_queue_bytes.record(stats.msg_size, &[]);
        let (retries, errors) = stats
            .brokers
            .values()
            .fold((0u64, 0u64), |(r, e), b| (r + b.txretries, e + b.txerrs));
        KAFKA_RETRIES.store(retries, Ordering::Relaxed);
        KAFKA_ERRORS.store(errors, Ordering::Relaxed);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // End of partition is how the checkpoint reader finds the end: not an error.
        if matches!(error, KafkaError::PartitionEOF(_))
            || error.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::PartitionEOF)
        {
            return;
        }
        crate::events::KafkaClientError {
            error_type: error
                .rdkafka_error_code()
                .map_or("client", |c| super::code_label(c)),
            error: &error,
            reason,
        }
        .emit();
    }
}

impl ConsumerContext for KafkaContext {}
