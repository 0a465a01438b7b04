//! The per-chain publisher (idempotent mode): encodes each update's records, enqueues them
//! in order, and applies an update to the delivered [`Progress`] only when the broker
//! acknowledged every one of its records. The checkpoint follows it: at most one
//! checkpoint write is in flight, it always carries the newest delivered state, and
//! writes are at least `checkpoint_interval_ms` apart.
//!
//! Backpressure: a full producer queue makes the publisher wait (never drop); at most
//! `max_blocks_in_flight` updates await acknowledgement, after which the publisher stops
//! taking updates and the bounded channel stops the follower. A wait for acknowledgements
//! longer than `kafka.stall_warning_ms` is reported ([`StallWatch`]).

use std::sync::Arc;

use futures_util::future::BoxFuture;
use futures_util::stream::FuturesOrdered;
use futures_util::{FutureExt, StreamExt};
use tokio::time::{Instant, sleep_until};

use crate::config::{ChainConfig, KafkaConfig};
use crate::events;
use crate::follower::{HandoverRx, Update};
use crate::window::Window;

use super::client::Producer;
use super::dedup::Dedup;
use super::error::SinkError;
use super::placed::Placed;
use super::produce::{acknowledged, enqueue, enqueue_checkpoint, outgoing};
use super::progress::{Landed, Progress};
use super::records::{Builder, Effect, Framings, KeyCache, RecordKey};
use super::stall::StallWatch;

/// An update whose records were all acknowledged.
#[derive(Debug)]
pub struct Acked {
    /// What it does to the delivered window.
    pub effect: Effect,
    /// Records acknowledged on the chain topic (decoded events' not counted).
    pub records: usize,
    /// Records skipped by the dedup LRU.
    pub dedup_hits: usize,
    /// The block's timestamp (s); `None` for a retraction.
    pub timestamp_s: Option<u64>,
    /// Enqueue to last acknowledgement (s), when measured.
    pub produce_s: Option<f64>,
    /// Where its records landed.
    pub landed: Landed,
}

/// How a publisher ended: the delivered window (what the checkpoint holds) and why.
#[derive(Debug)]
pub struct Outcome {
    /// Blocks whose records were all acknowledged (committed, in transactional mode), by
    /// number and hash (their keys are not kept here).
    pub window: Window,
    /// `Ok` when its input ended and everything was acknowledged.
    pub result: Result<(), SinkError>,
}

type Pending<T> = FuturesOrdered<BoxFuture<'static, Result<T, SinkError>>>;

/// Publishes one chain's updates.
pub struct Publisher {
    cfg: Arc<ChainConfig>,
    /// Each lane's topic (0: the chain topic).
    topics: Arc<[String]>,
    checkpoint_topic: String,
    producer: Producer,
    builder: Builder,
    progress: Progress,
    stall_warning: std::time::Duration,
}

impl Publisher {
    /// A publisher for `cfg`'s topics on the shared `producer`, continuing after
    /// `progress`, skipping what `dedup` knows is on a topic already; `placed` says which
    /// decoded topics hold the recent keys; `k` names the checkpoint topic and the stall
    /// threshold.
    pub fn new(
        cfg: Arc<ChainConfig>,
        k: &KafkaConfig,
        producer: Producer,
        (dedup, placed): (Dedup, Placed),
        progress: Progress,
        framings: &Framings,
    ) -> Result<Self, SinkError> {
        let builder = Builder::new(&cfg, framings, dedup, placed)?;
        Ok(Self {
            stall_warning: std::time::Duration::from_millis(k.stall_warning_ms),
            topics: builder.topics(),
            checkpoint_topic: k.checkpoint_topic.clone(),
            builder,
            cfg,
            producer,
            progress,
        })
    }

    /// Publishes until the channel closes and everything (the last checkpoint included)
    /// is acknowledged, or until an error.
    pub async fn run(mut self, mut updates: HandoverRx) -> Outcome {
        let result = self.pump(&mut updates).await;
        Outcome {
            window: self.progress.window().clone(),
            result,
        }
    }

    async fn pump(&mut self, updates: &mut HandoverRx) -> Result<(), SinkError> {
        let mut pending: Pending<Acked> = FuturesOrdered::new();
        let mut checkpoint: Pending<()> = FuturesOrdered::new();
        let mut dirty = false;
        let every = std::time::Duration::from_millis(self.cfg.checkpoint_interval_ms);
        let mut next_write = Instant::now();
        let mut stall = StallWatch::new(&self.cfg.name, self.stall_warning);
        loop {
            let stall_due = stall.due();
            tokio::select! {
                biased;
                Some(done) = pending.next(), if !pending.is_empty() => {
                    let acked = done?;
                    stall.acknowledged(!pending.is_empty());
                    dirty |= self.apply(acked);
                }
                Some(done) = checkpoint.next(), if !checkpoint.is_empty() => done?,
                () = sleep_until(next_write), if dirty && checkpoint.is_empty() => {}
                () = sleep_until(stall_due.unwrap_or(next_write)), if stall_due.is_some() => {
                    stall.check();
                }
                update = updates.recv(), if pending.len() < self.cfg.max_blocks_in_flight => match update {
                    Some(update) => {
                        stall.waiting();
                        pending.push_back(stall.during(self.enqueue(update)).await?);
                        // Encoding a block is CPU work: let other chains' tasks (and the
                        // I/O driver) run between blocks, not only when the budget ends.
                        tokio::task::yield_now().await;
                    }
                    None => break,
                },
            }
            if dirty && checkpoint.is_empty() && Instant::now() >= next_write {
                checkpoint.push_back(self.write_checkpoint().await?);
                dirty = false;
                next_write = Instant::now() + every;
            }
        }
        while let Some(done) = pending.next().await {
            dirty |= self.apply(done?);
        }
        while let Some(done) = checkpoint.next().await {
            done?;
        }
        if dirty {
            self.write_checkpoint().await?.await?;
        }
        Ok(())
    }

    /// Whether the checkpoint changed.
    fn apply(&mut self, acked: Acked) -> bool {
        apply(&self.cfg.name, &mut self.progress, acked)
    }

    /// Encodes and enqueues every record of `update`; the returned future resolves when all
    /// are acknowledged.
    async fn enqueue(
        &mut self,
        update: Update,
    ) -> Result<BoxFuture<'static, Result<Acked, SinkError>>, SinkError> {
        let batch = self.builder.build(update).await;
        let block = batch.effect.block();
        let mut deliveries = Vec::with_capacity(batch.records.len());
        let mut trace = batch.trace;
        if let Some(t) = trace.as_mut() {
            t.producing();
        }
        let started = std::time::Instant::now();
        // Each record is dropped once librdkafka has copied it; its key stays for errors.
        let chain_id = self.cfg.chain_id;
        let mut keys = KeyCache::default();
        for r in batch.records {
            let topic = &self.topics[r.lane];
            let out = outgoing(topic, keys.key(chain_id, &r.id), &r);
            let d = enqueue(&self.producer, &self.cfg.name, out).await?;
            deliveries.push((r.lane, r.id, d));
        }
        let (effect, dedup_hits, topics) = (batch.effect, batch.dedup_hits, self.topics.clone());
        let (timestamp_s, records) = (batch.timestamp_s, batch.raw_records);
        // Acknowledged means every topic's records: the checkpoint follows only then.
        Ok(async move {
            let mut landed = Landed::default();
            for (lane, id, delivery) in deliveries {
                let key = RecordKey { chain_id, id: &id };
                let (partition, offset) = acknowledged(delivery, &topics[lane], key, block).await?;
                if lane == 0 {
                    landed.note(partition, offset);
                }
            }
            let produce_s = started.elapsed().as_secs_f64();
            if let Some(t) = trace {
                t.acknowledged(records);
            }
            Ok(Acked {
                effect,
                records,
                dedup_hits,
                timestamp_s,
                produce_s: Some(produce_s),
                landed,
            })
        }
        .boxed())
    }

    /// Enqueues the checkpoint of the delivered progress.
    async fn write_checkpoint(
        &self,
    ) -> Result<BoxFuture<'static, Result<(), SinkError>>, SinkError> {
        let Some(cp) = self.progress.checkpoint(self.cfg.chain_id) else {
            return Ok(async { Ok(()) }.boxed());
        };
        let (key, bytes, d) =
            enqueue_checkpoint(&self.producer, &self.cfg.name, &self.checkpoint_topic, &cp).await?;
        let (topic, chain, block, bytes) = (
            self.checkpoint_topic.clone(),
            self.cfg.name.clone(),
            cp.block_number,
            bytes,
        );
        Ok(async move {
            acknowledged(d, &topic, &key, block).await?;
            events::CheckpointWritten {
                chain: &chain,
                block,
                bytes,
            }
            .emit();
            Ok(())
        }
        .boxed())
    }
}

/// Applies an acknowledged update to the delivered progress and reports it; returns
/// whether the checkpoint changed.
pub(super) fn apply(chain: &str, progress: &mut Progress, acked: Acked) -> bool {
    let changed = progress.apply(&acked.effect, &acked.landed);
    if let Effect::Block(b) = &acked.effect {
        events::BlockDelivered {
            chain,
            number: b.number,
            hash: &b.hash,
            timestamp_s: acked.timestamp_s,
            records: acked.records,
            dedup_hits: acked.dedup_hits,
            produce_s: acked.produce_s,
        }
        .emit();
    }
    changed
}
