//! Sending: one update's records enqueued in order (each waits, never drops, while the
//! producer queue is full), or a checkpoint, and the wait for their acknowledgements.

use std::sync::Arc;

use crate::events;
use crate::follower::Update;
use crate::sink::SinkError;
use crate::sink::kafka::{Acks, enqueue, enqueue_checkpoint, outgoing, refused};
use crate::sink::records::KeyCache;
use crate::telemetry::trace::BlockTrace;

use super::progress::{Landed, Progress};
use super::{Acked, Pump};

/// An update's records, enqueued.
pub(super) struct InFlight {
    /// The block the update is about (for errors).
    block: u64,
    acks: Arc<Acks>,
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
        let spans = self.acks.wait().await.map_err(|r| refused(r, self.block))?;
        // The checkpoint's offsets are the chain topic's.
        for (partition, first, last) in spans {
            acked.landed.note(partition, first);
            acked.landed.note(partition, last);
        }
        acked.produce_s = Some(self.started.elapsed().as_secs_f64());
        Ok((acked, self.trace))
    }
}

/// A checkpoint, enqueued.
pub(super) struct CheckpointInFlight {
    chain: String,
    block: u64,
    bytes: usize,
    acks: Arc<Acks>,
}

impl CheckpointInFlight {
    /// Waits for its acknowledgement, and reports it.
    pub(super) async fn acknowledged(self) -> Result<(), SinkError> {
        self.acks.wait().await.map_err(|r| refused(r, self.block))?;
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
        let acks = Acks::new(self.chain_topic.clone());
        let mut keys = KeyCache::default();
        // Each record is dropped once librdkafka has copied it.
        let records = batch.records.len();
        for r in batch.records {
            let out = outgoing(&self.topics[r.lane], keys.key(chain_id, &r.id), &r);
            enqueue(&self.producer, &self.cfg.name, out, &acks).await?;
        }
        acks.expect(records);
        Ok(InFlight {
            block: batch.effect.block(),
            acks,
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
        let (bytes, acks) =
            enqueue_checkpoint(&self.producer, &self.cfg.name, &self.checkpoint_topic, &cp).await?;
        Ok(Some(CheckpointInFlight {
            chain: self.cfg.name.clone(),
            block: cp.block_number,
            bytes,
            acks,
        }))
    }
}
