//! Reading a topic to its end at start-up (the checkpoint topic, a chain topic's tail):
//! one `read_committed` consumer, assigned rather than subscribed, that stops once
//! librdkafka reported the end of every partition. Blocks: call from `spawn_blocking`.
//!
//! The end is librdkafka's end-of-partition event, which a `read_committed` consumer gets
//! at the partition's last stable offset: the records of a transaction still open are not
//! waited for (they are not the committed state a restart resumes from).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use crate::config::KafkaConfig;
use crate::telemetry::KafkaContext;

/// How much a start-up read fetches ahead of what it has handled (KiB).
const READ_AHEAD_KBYTES: &str = "8192";

/// Reading a topic to its end failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The consumer could not be created (a configuration librdkafka refuses).
    #[error("cannot create a consumer: {0}")]
    Client(#[source] Box<KafkaError>),
    /// The topic's metadata could not be had.
    #[error("metadata request failed: {0}")]
    Metadata(#[source] Box<KafkaError>),
    /// The broker lists the topic without partitions.
    #[error("the broker lists no partition for it")]
    NoPartitions,
    /// Where to start reading a partition could not be found.
    #[error("partition {partition}: cannot find where to start: {source}")]
    Start {
        /// The partition.
        partition: i32,
        /// Why.
        #[source]
        source: Box<KafkaError>,
    },
    /// The partitions could not be assigned.
    #[error("cannot assign its partitions: {0}")]
    Assign(#[source] Box<KafkaError>),
    /// The broker answered with an error that is not a passing transport failure.
    #[error("{0}")]
    Broker(#[source] Box<KafkaError>),
    /// Nothing came for `kafka.admin_timeout_ms`.
    #[error(
        "no progress towards the end of `{topic}` within kafka.admin_timeout_ms = {timeout_ms}"
    )]
    Stalled {
        /// The topic.
        topic: String,
        /// The timeout.
        timeout_ms: u128,
    },
}

/// Why [`TopicRead::to_end`] stopped before the end.
#[derive(Debug)]
pub enum ToEndError<E> {
    /// Reading failed.
    Read(ReadError),
    /// The caller's step refused a record.
    Each(E),
}

/// A consumer assigned to every partition of one topic.
pub struct TopicRead {
    /// `None` only once dropped.
    consumer: Option<BaseConsumer<KafkaContext>>,
    topic: String,
    partitions: Vec<i32>,
    timeout: Duration,
}

impl TopicRead {
    /// A consumer (group `client_id`, never committing) for `topic`'s partitions; `start`
    /// picks each partition's first offset.
    pub fn open(
        k: &KafkaConfig,
        topic: &str,
        client_id: &str,
        mut start: impl FnMut(&BaseConsumer<KafkaContext>, i32) -> Result<Offset, KafkaError>,
    ) -> Result<Self, ReadError> {
        let mut c = super::client_config(k, client_id);
        c.set("group.id", client_id)
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            // An empty partition's end is only reported after a fetch returns: do not let
            // the broker hold it for the default 500 ms.
            .set("fetch.wait.max.ms", "20")
            // Fetched records wait in librdkafka's queue until polled: a long topic read
            // faster than it is handled would fill librdkafka's default of 64 MiB.
            .set("queued.max.messages.kbytes", READ_AHEAD_KBYTES)
            .set("isolation.level", "read_committed");
        let consumer: BaseConsumer<KafkaContext> = c
            .create_with_context(KafkaContext)
            .map_err(|e| ReadError::Client(Box::new(e)))?;
        let timeout = Duration::from_millis(k.admin_timeout_ms);
        let metadata = consumer
            .fetch_metadata(Some(topic), timeout)
            .map_err(|e| ReadError::Metadata(Box::new(e)))?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.name() == topic)
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if partitions.is_empty() {
            return Err(ReadError::NoPartitions);
        }
        let mut tpl = TopicPartitionList::new();
        for &p in &partitions {
            let offset = start(&consumer, p).map_err(|source| ReadError::Start {
                partition: p,
                source: Box::new(source),
            })?;
            tpl.add_partition_offset(topic, p, offset)
                .map_err(|e| ReadError::Assign(Box::new(e)))?;
        }
        consumer
            .assign(&tpl)
            .map_err(|e| ReadError::Assign(Box::new(e)))?;
        Ok(Self {
            consumer: Some(consumer),
            topic: topic.to_owned(),
            partitions,
            timeout,
        })
    }

    /// Hands every record to `each`, in offset order per partition, until the end of every
    /// partition. Fails when no progress was made for `kafka.admin_timeout_ms`, or with the
    /// first error of `each`.
    pub fn to_end<E>(
        &self,
        mut each: impl FnMut(&BorrowedMessage<'_>) -> Result<(), E>,
    ) -> Result<(), ToEndError<E>> {
        let Some(consumer) = &self.consumer else {
            return Ok(());
        };
        let mut at_end = HashSet::new();
        let mut progress = Instant::now();
        while at_end.len() < self.partitions.len() {
            if progress.elapsed() > self.timeout {
                return Err(ToEndError::Read(ReadError::Stalled {
                    topic: self.topic.clone(),
                    timeout_ms: self.timeout.as_millis(),
                }));
            }
            match consumer.poll(Duration::from_millis(200)) {
                None => {}
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    at_end.insert(p);
                    progress = Instant::now();
                }
                Some(Err(e)) if is_transient(&e) => {}
                Some(Err(e)) => return Err(ToEndError::Read(ReadError::Broker(Box::new(e)))),
                Some(Ok(m)) => {
                    use rdkafka::message::Message;
                    at_end.remove(&m.partition());
                    progress = Instant::now();
                    each(&m).map_err(ToEndError::Each)?;
                }
            }
        }
        Ok(())
    }
}

impl Drop for TopicRead {
    /// Closes the consumer on a thread of its own: rdkafka's drop of a consumer in a group
    /// polls its close every 100 ms, which would add that to every start-up read.
    fn drop(&mut self) {
        if let Some(consumer) = self.consumer.take() {
            // No thread to be had: the consumer is closed here, as rdkafka would.
            let _ = std::thread::Builder::new()
                .name("topic-read-close".into())
                .spawn(move || drop(consumer));
        }
    }
}

fn is_transient(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(RDKafkaErrorCode::BrokerTransportFailure | RDKafkaErrorCode::AllBrokersDown)
    )
}
