//! The per-chain publisher: encodes each block's logs, enqueues them in order, and reports
//! a block delivered only when the broker acknowledged every one of its records.
//!
//! Backpressure: a full producer queue makes the publisher wait (never drop); at most
//! `max_blocks_in_flight` blocks await acknowledgement, after which the publisher stops
//! taking blocks and the bounded channel stops the follower.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream::FuturesOrdered;
use futures_util::{FutureExt, StreamExt};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use tokio::sync::mpsc;

use crate::config::ChainConfig;
use crate::encode::Encoder;
use crate::events;
use crate::follower::BlockLogs;
use crate::rpc::hex::B256;

use super::dedup::Dedup;
use super::error::SinkError;

/// How long to wait before offering a record again to a full producer queue.
const QUEUE_FULL_WAIT: Duration = Duration::from_millis(10);

/// A block whose records were all acknowledged.
#[derive(Debug, Clone, Copy)]
pub struct Delivered {
    /// Block number.
    pub number: u64,
    /// Block hash.
    pub hash: B256,
    /// Records acknowledged.
    pub records: usize,
    /// Records skipped as already produced.
    pub dedup_hits: usize,
}

/// The record key: `<chain_id>:<transaction_hash>:<log_index>`.
pub fn record_key(chain_id: u64, tx: &B256, log_index: u64) -> String {
    format!("{chain_id}:{tx}:{log_index}")
}

/// Publishes one chain's blocks.
pub struct Publisher {
    cfg: Arc<ChainConfig>,
    topic: String,
    producer: FutureProducer,
    encoder: Encoder,
    dedup: Dedup,
    last: Option<Delivered>,
}

impl Publisher {
    /// A publisher for `cfg`'s topic on the shared `producer`.
    pub fn new(
        cfg: Arc<ChainConfig>,
        producer: FutureProducer,
        dedup_capacity: usize,
    ) -> Result<Self, SinkError> {
        Ok(Self {
            topic: cfg.topic(),
            cfg,
            producer,
            encoder: Encoder::new()?,
            dedup: Dedup::new(dedup_capacity),
            last: None,
        })
    }

    /// Publishes blocks until the channel closes and everything is acknowledged; returns
    /// the last delivered block.
    pub async fn run(
        mut self,
        mut blocks: mpsc::Receiver<BlockLogs>,
    ) -> Result<Option<Delivered>, SinkError> {
        let mut pending: FuturesOrdered<BoxFuture<'static, Result<Delivered, SinkError>>> =
            FuturesOrdered::new();
        loop {
            tokio::select! {
                biased;
                Some(done) = pending.next(), if !pending.is_empty() => self.delivered(done?),
                block = blocks.recv(), if pending.len() < self.cfg.max_blocks_in_flight => match block {
                    Some(block) => pending.push_back(self.enqueue(block).await?),
                    None => break,
                },
            }
        }
        while let Some(done) = pending.next().await {
            self.delivered(done?);
        }
        Ok(self.last)
    }

    fn delivered(&mut self, d: Delivered) {
        events::BlockDelivered {
            chain: &self.cfg.name,
            number: d.number,
            hash: &d.hash,
            records: d.records,
            dedup_hits: d.dedup_hits,
        }
        .emit();
        self.last = Some(d);
    }

    /// Encodes and enqueues every record of `block`; the returned future resolves when all
    /// are acknowledged.
    async fn enqueue(
        &mut self,
        block: BlockLogs,
    ) -> Result<BoxFuture<'static, Result<Delivered, SinkError>>, SinkError> {
        let chain_id = self.cfg.chain_id;
        let ts_s = block.header.timestamp_s;
        let ts_ms = ts_s.saturating_mul(1000) as i64;
        let mut deliveries = Vec::with_capacity(block.logs.len());
        let mut dedup_hits = 0;
        for log in &block.logs {
            let key = record_key(chain_id, &log.transaction_hash, log.log_index);
            let value = self.encoder.encode(chain_id, ts_s, log)?;
            if self.dedup.seen(&key, &value) {
                dedup_hits += 1;
                continue;
            }
            let mut record = FutureRecord::to(&self.topic)
                .key(&key)
                .payload(&value)
                .timestamp(ts_ms);
            let delivery = loop {
                match self.producer.send_result(record) {
                    Ok(delivery) => break delivery,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        events::ProducerQueueFull {
                            chain: &self.cfg.name,
                        }
                        .emit();
                        record = back;
                        tokio::time::sleep(QUEUE_FULL_WAIT).await;
                    }
                    Err((error, _)) => {
                        return Err(SinkError::Enqueue {
                            key,
                            error: Box::new(error),
                        });
                    }
                }
            };
            deliveries.push((key, delivery));
        }
        let (number, hash, topic) = (block.header.number, block.header.hash, self.topic.clone());
        Ok(async move {
            let records = deliveries.len();
            for (key, delivery) in deliveries {
                match delivery.await {
                    Ok(Ok(_)) => {}
                    Ok(Err((error, _))) => {
                        return Err(SinkError::Delivery {
                            topic,
                            key,
                            block: number,
                            error: Box::new(error),
                        });
                    }
                    Err(_) => return Err(SinkError::Cancelled { key, block: number }),
                }
            }
            Ok(Delivered {
                number,
                hash,
                records,
                dedup_hits,
            })
        }
        .boxed())
    }
}
