//! Sending: one update's records enqueued in order (each waits, never drops, while the
//! producer queue is full), or a checkpoint, and the wait for their acknowledgements.

use std::sync::Arc;

use rdkafka::producer::DeliveryFuture;

use crate::events;
use crate::follower::Update;
use crate::telemetry::trace::BlockTrace;
use crate::window::LogId;

use super::progress::{Landed, Progress};
use super::{Acked, Pump};
use crate::sink::SinkError;
use crate::sink::kafka::{acknowledged, enqueue, enqueue_checkpoint, outgoing};
use crate::sink::records::{KeyCache, RecordKey};

/// An update's records, enqueued.
pub(super) struct InFlight {
    chain_id: u64,
    /// Each lane's topic.
    topics: Arc<[String]>,
    /// The block the update is about (for errors).
    block: u64,
    deliveries: Vec<(usize, LogId, DeliveryFuture)>,
    /// Its effect and counts; `landed` and `produce_s` are filled on acknowledgement.
    acked: Acked,
    trace: Option<BlockTrace>,
    started: std::time::Instant,
}

impl InFlight {
    /// Waits until every record is acknowledged: the update with where its chain-topic
    /// records landed, and its spans (which the caller closes when the update counts as
    /// delivered).
    pub(super) async fn acknowledged(self) -> Result<(Acked, Option<BlockTrace>), SinkError> {
        let mut acked = self.acked;
        for (lane, id, delivery) in self.deliveries {
            let key = RecordKey {
                chain_id: self.chain_id,
                id: &id,
            };
            let (partition, offset) =
                acknowledged(delivery, &self.topics[lane], key, self.block).await?;
            // The checkpoint's offsets are the chain topic's.
            if lane == 0 {
                acked.landed.note(partition, offset);
            }
        }
        acked.produce_s = Some(self.started.elapsed().as_secs_f64());
        Ok((acked, self.trace))
    }
}

/// A checkpoint, enqueued.
pub(super) struct CheckpointInFlight {
    topic: String,
    chain: String,
    key: String,
    block: u64,
    bytes: usize,
    delivery: DeliveryFuture,
}

impl CheckpointInFlight {
    /// Waits for its acknowledgement, and reports it.
    pub(super) async fn acknowledged(self) -> Result<(), SinkError> {
        acknowledged(self.delivery, &self.topic, &self.key, self.block).await?;
        events::CheckpointWritten {
            chain: &self.chain,
            block: self.block,
            bytes: self.bytes,
        }
        .emit();
        Ok(())
    }
}

impl Pump {
    /// Builds and enqueues every record of `update`, in order.
    pub(super) async fn send(&mut self, update: Update) -> Result<InFlight, SinkError> {
        let batch = self.builder.build(update).await;
        let mut trace = batch.trace;
        if let Some(t) = trace.as_mut() {
            t.producing();
        }
        let started = std::time::Instant::now();
        let chain_id = self.cfg.chain_id;
        let mut deliveries = Vec::with_capacity(batch.records.len());
        // Each record is dropped once librdkafka has copied it; its id stays for errors.
        let mut keys = KeyCache::default();
        for r in batch.records {
            let out = outgoing(&self.topics[r.lane], keys.key(chain_id, &r.id), &r);
            let d = enqueue(&self.producer, &self.cfg.name, out).await?;
            deliveries.push((r.lane, r.id, d));
        }
        Ok(InFlight {
            chain_id,
            topics: self.topics.clone(),
            block: batch.effect.block(),
            deliveries,
            acked: Acked {
                effect: batch.effect,
                records: batch.logs_published,
                dedup_hits: batch.dedup_hits,
                timestamp_s: batch.timestamp_s,
                produce_s: None,
                landed: Landed::default(),
            },
            trace,
            started,
        })
    }

    /// Enqueues the checkpoint of `progress`; `None` when it has no block yet.
    pub(super) async fn send_checkpoint(
        &self,
        progress: &Progress,
    ) -> Result<Option<CheckpointInFlight>, SinkError> {
        let Some(cp) = progress.checkpoint(self.cfg.chain_id) else {
            return Ok(None);
        };
        let (key, bytes, delivery) =
            enqueue_checkpoint(&self.producer, &self.cfg.name, &self.checkpoint_topic, &cp).await?;
        Ok(Some(CheckpointInFlight {
            topic: self.checkpoint_topic.clone(),
            chain: self.cfg.name.clone(),
            key,
            block: cp.block_number,
            bytes,
            delivery,
        }))
    }
}
