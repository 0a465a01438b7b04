//! Exactly-once mode: a per-chain transactional producer (`transactional.id =
//! <prefix>-<chain_id>`). Each batch of ready updates (up to `transaction_max_blocks`) is
//! one transaction holding their records, tombstones and the resulting checkpoint, so a
//! `read_committed` consumer sees all of a block or none of it, and the checkpoint never
//! disagrees with the records.
//!
//! An abortable error aborts the transaction and the chain resumes from the last committed
//! checkpoint; a fatal one does the same with a new producer. Being fenced by another
//! instance with the same id stops the chain (in group mode: drops it, see
//! [`crate::group`]). In group mode each transaction also carries the chain's membership
//! partition with the member's group metadata ([`Fence`]).

use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::producer::Producer as _;
use rdkafka::types::RDKafkaErrorCode;

use super::client::{Producer, producer_config};
use super::dedup::Dedup;
use super::error::SinkError;
use super::placed::Placed;
use super::produce::{acknowledged, enqueue, enqueue_checkpoint, outgoing};
use super::progress::{Landed, Progress};
use super::publisher::{Acked, Outcome, apply};
use super::records::{Builder, Framings, KeyCache, RecordKey};
use super::stall::StallWatch;
use crate::config::{ChainConfig, KafkaConfig};
use crate::events;
use crate::follower::{HandoverRx, Update};
use crate::group::Fence;
use crate::telemetry::KafkaContext;

/// `<prefix>-<chain_id>`.
pub fn transactional_id(k: &KafkaConfig, chain_id: u64) -> String {
    format!("{}-{chain_id}", k.transactional_id_prefix)
}

/// Creates the chain's transactional producer and initialises transactions (which fences
/// any earlier instance with the same id).
pub async fn transactional_producer(k: &KafkaConfig, chain_id: u64) -> Result<Producer, SinkError> {
    let id = transactional_id(k, chain_id);
    let mut c: ClientConfig = producer_config(k);
    // librdkafka requires message.timeout.ms <= transaction.timeout.ms.
    let message_timeout_ms = k.message_timeout_ms.min(k.transaction_timeout_ms);
    c.set("transactional.id", &id)
        .set(
            "transaction.timeout.ms",
            k.transaction_timeout_ms.to_string(),
        )
        .set("message.timeout.ms", message_timeout_ms.to_string());
    let producer: Producer = c
        .create_with_context(KafkaContext)
        .map_err(|e| SinkError::Client(Box::new(e)))?;
    let timeout = Duration::from_millis(k.transaction_timeout_ms);
    let p = producer.clone();
    tokio::task::spawn_blocking(move || p.init_transactions(timeout))
        .await
        .map_err(|e| aborted(format!("init_transactions task: {e}"), true))?
        .map_err(|e| classify(&id, e))?;
    Ok(producer)
}

/// Calls of `commit_transaction` again after a retriable error, at most.
const COMMIT_RETRIES: u32 = 8;
/// First wait before calling it again (doubles, up to 32 times this).
const COMMIT_BACKOFF: Duration = Duration::from_millis(100);

fn aborted(reason: String, recreate_producer: bool) -> SinkError {
    SinkError::Aborted {
        reason,
        recreate_producer,
    }
}

fn is_fenced(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::Fenced
            | RDKafkaErrorCode::ProducerFenced
            | RDKafkaErrorCode::InvalidProducerEpoch
    )
}

/// Maps a transactional API error: fenced stops, fatal recreates, anything else aborts.
fn classify(transactional_id: &str, e: KafkaError) -> SinkError {
    if e.rdkafka_error_code().is_some_and(is_fenced) {
        return SinkError::Fenced {
            transactional_id: transactional_id.to_owned(),
        };
    }
    let fatal = matches!(&e, KafkaError::Transaction(t) if t.is_fatal());
    aborted(e.to_string(), fatal)
}

/// Publishes one chain's updates in transactions.
pub struct TransactionalPublisher {
    cfg: Arc<ChainConfig>,
    id: String,
    /// Each lane's topic (0: the chain topic).
    topics: Arc<[String]>,
    checkpoint_topic: String,
    producer: Producer,
    builder: Builder,
    progress: Progress,
    max_blocks: usize,
    timeout: Duration,
    stall_warning: Duration,
    /// Group mode: the chain's membership partition, added to every transaction.
    fence: Option<Fence>,
}

impl TransactionalPublisher {
    /// A publisher on the chain's own transactional `producer`, continuing after the
    /// committed `progress`, skipping what `dedup` knows is committed on the topic.
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
            id: transactional_id(k, cfg.chain_id),
            topics: builder.topics(),
            checkpoint_topic: k.checkpoint_topic.clone(),
            builder,
            cfg,
            producer,
            progress,
            max_blocks: k.transaction_max_blocks,
            timeout: Duration::from_millis(k.transaction_timeout_ms),
            stall_warning: Duration::from_millis(k.stall_warning_ms),
            fence: None,
        })
    }

    /// Group mode: every transaction also carries the chain's membership partition with
    /// this member's group metadata, so a member that lost the chain cannot commit.
    pub fn with_fence(mut self, fence: Option<Fence>) -> Self {
        self.fence = fence;
        self
    }

    /// Commits batches until the channel closes or an error; the outcome's window is the
    /// last committed one.
    pub async fn run(mut self, mut updates: HandoverRx) -> Outcome {
        let result = self.pump(&mut updates).await;
        Outcome {
            window: self.progress.window().clone(),
            result,
        }
    }

    async fn pump(&mut self, updates: &mut HandoverRx) -> Result<(), SinkError> {
        // A transaction that runs past the threshold is a stall: its records (or its
        // commit) wait for the brokers.
        let mut stall = StallWatch::new(&self.cfg.name, self.stall_warning);
        while let Some(first) = updates.recv().await {
            let mut batch = vec![first];
            while batch.len() < self.max_blocks {
                match updates.try_recv() {
                    Some(u) => batch.push(u),
                    None => break,
                }
            }
            stall.waiting();
            let committed = stall.during(self.transaction(batch)).await;
            if committed.is_ok() {
                stall.acknowledged(false);
            }
            if let Err(e) = committed {
                let e = match e {
                    SinkError::Enqueue { error, .. } | SinkError::Delivery { error, .. } => {
                        classify(&self.id, *error)
                    }
                    other => other,
                };
                if let SinkError::Aborted { .. } = e {
                    self.abort().await?;
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// One transaction: every update's records, then the checkpoint of the resulting window.
    async fn transaction(&mut self, updates: Vec<Update>) -> Result<(), SinkError> {
        let started = std::time::Instant::now();
        self.producer
            .begin_transaction()
            .map_err(|e| classify(&self.id, e))?;
        let mut acked = Vec::with_capacity(updates.len());
        let mut deliveries = Vec::new();
        for update in updates {
            let batch = self.builder.build(update).await;
            let block = batch.effect.block();
            let mut trace = batch.trace;
            if let Some(t) = trace.as_mut() {
                t.producing();
            }
            let first_delivery = deliveries.len();
            let mut keys = KeyCache::default();
            for r in &batch.records {
                let topic = &self.topics[r.lane];
                let out = outgoing(topic, keys.key(self.cfg.chain_id, &r.id), r);
                let d = enqueue(&self.producer, &self.cfg.name, out).await?;
                deliveries.push((r.lane, r.id, block, d));
            }
            acked.push((
                first_delivery..deliveries.len(),
                Acked {
                    records: batch.raw_records,
                    dedup_hits: batch.dedup_hits,
                    effect: batch.effect,
                    timestamp_s: batch.timestamp_s,
                    produce_s: None,
                    landed: Landed::default(),
                },
                trace,
            ));
        }
        // Offsets are assigned as records are acknowledged; the checkpoint, which names
        // them, is the transaction's last record.
        let mut landed = Vec::with_capacity(deliveries.len());
        for (lane, id, block, d) in deliveries {
            let key = RecordKey {
                chain_id: self.cfg.chain_id,
                id: &id,
            };
            let (p, o) = acknowledged(d, &self.topics[lane], key, block).await?;
            landed.push((lane, p, o));
        }
        let mut progress = self.progress.clone();
        for (range, a, _) in &mut acked {
            // The checkpoint's offsets are the chain topic's.
            for &(lane, p, o) in &landed[range.clone()] {
                if lane == 0 {
                    a.landed.note(p, o);
                }
            }
            progress.apply(&a.effect, &a.landed);
        }
        if let Some(cp) = progress.checkpoint(self.cfg.chain_id) {
            let (key, bytes, d) =
                enqueue_checkpoint(&self.producer, &self.cfg.name, &self.checkpoint_topic, &cp)
                    .await?;
            acknowledged(d, &self.checkpoint_topic, &key, cp.block_number).await?;
            events::CheckpointWritten {
                chain: &self.cfg.name,
                block: cp.block_number,
                bytes,
            }
            .emit();
        }
        self.fence_offsets().await?;
        self.commit().await?;
        if let Some(f) = &mut self.fence {
            f.committed();
        }
        let produce_s = started.elapsed().as_secs_f64();
        for (_, mut a, trace) in acked {
            if let Some(t) = trace {
                t.acknowledged(a.records);
            }
            a.produce_s = Some(produce_s);
            apply(&self.cfg.name, &mut self.progress, a);
        }
        Ok(())
    }

    /// Group mode: adds the membership partition with the current group metadata to the
    /// open transaction (KIP-447). A refusal (stale generation, unknown member) or a lost
    /// assignment aborts the transaction.
    async fn fence_offsets(&self) -> Result<(), SinkError> {
        let Some(fence) = &self.fence else {
            return Ok(());
        };
        let (fence, p, timeout) = (fence.clone(), self.producer.clone(), self.timeout);
        // Reading the group metadata asks the consumer's own thread: off the runtime too.
        tokio::task::spawn_blocking(move || {
            let (offsets, metadata) = fence.offsets().map_err(|reason| aborted(reason, false))?;
            Ok::<_, SinkError>(p.send_offsets_to_transaction(&offsets, &metadata, timeout))
        })
        .await
        .map_err(|e| aborted(format!("send_offsets_to_transaction task: {e}"), true))??
        .map_err(|e| classify(&self.id, e))
    }

    /// Commits the open transaction. librdkafka's contract: a retriable error means the
    /// commit continues in the background and the call must be made again (up to
    /// [`COMMIT_RETRIES`] times here); only an abortable error aborts, and a fatal one
    /// rebuilds the producer (see [`classify`]).
    async fn commit(&self) -> Result<(), SinkError> {
        let mut attempt = 0;
        loop {
            let p = self.producer.clone();
            let timeout = self.timeout;
            let committed = tokio::task::spawn_blocking(move || p.commit_transaction(timeout))
                .await
                .map_err(|e| aborted(format!("commit task: {e}"), true))?;
            match committed {
                Ok(()) => return Ok(()),
                Err(KafkaError::Transaction(t))
                    if t.is_retriable()
                        && !t.is_fatal()
                        && !t.txn_requires_abort()
                        && attempt < COMMIT_RETRIES =>
                {
                    let wait =
                        crate::backoff::delay(attempt, COMMIT_BACKOFF, COMMIT_BACKOFF * 32, 1.0);
                    events::CommitRetried {
                        chain: &self.cfg.name,
                        attempt: attempt + 1,
                        retry_in_ms: wait.as_millis() as u64,
                        error: &t,
                    }
                    .emit();
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(e) => return Err(classify(&self.id, e)),
            }
        }
    }

    /// Aborts the open transaction; a producer that cannot abort must be rebuilt.
    async fn abort(&self) -> Result<(), SinkError> {
        let p = self.producer.clone();
        let timeout = self.timeout;
        tokio::task::spawn_blocking(move || p.abort_transaction(timeout))
            .await
            .map_err(|e| aborted(format!("abort task: {e}"), true))?
            .map_err(|e| match classify(&self.id, e) {
                SinkError::Aborted { reason, .. } => aborted(reason, true),
                other => other,
            })
    }
}
