//! The exactly-once commit policy, on the chain's own transactional producer. Each batch
//! of ready updates (up to `transaction_max_blocks`) is one transaction holding their
//! records, tombstones and the resulting checkpoint, so a `read_committed` consumer sees
//! all of a block or none of it, and the checkpoint never disagrees with the records.
//!
//! An abortable error aborts the transaction and the chain resumes from the last committed
//! checkpoint; a fatal one does the same with a new producer. Being fenced by another
//! instance with the same id stops the chain (in group mode: drops it, see
//! [`crate::group`]). In group mode each transaction also carries the chain's membership
//! partition with the member's group metadata ([`Fence`]).

use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::producer::Producer as _;

use crate::config::KafkaConfig;
use crate::events;
use crate::follower::{HandoverRx, Update};
use crate::group::Fence;
use crate::sink::SinkError;
use crate::sink::kafka::{aborted, classify, transactional_id};

use super::Pump;
use super::stall::StallWatch;

/// Calls of `commit_transaction` again after a retriable error, at most.
const COMMIT_RETRIES: u32 = 8;
/// First wait before calling it again (doubles, up to 32 times this).
const COMMIT_BACKOFF: Duration = Duration::from_millis(100);

/// The policy's state: the transactional id, the limits, and group mode's fence.
pub(super) struct Transactions {
    id: String,
    max_blocks: usize,
    timeout: Duration,
    /// Group mode: the chain's membership partition, added to every transaction.
    fence: Option<Fence>,
}

impl Transactions {
    /// For chain `chain_id` under `k`'s transaction settings.
    pub(super) fn new(k: &KafkaConfig, chain_id: u64, fence: Option<Fence>) -> Self {
        Self {
            id: transactional_id(k, chain_id),
            max_blocks: k.transaction_max_blocks,
            timeout: Duration::from_millis(k.transaction_timeout_ms),
            fence,
        }
    }

    /// Commits batches until the channel closes or an error; the pump's progress is the
    /// last committed one.
    pub(super) async fn run(
        &mut self,
        pump: &mut Pump,
        updates: &mut HandoverRx,
    ) -> Result<(), SinkError> {
        // A transaction that runs past the threshold is a stall: its records (or its
        // commit) wait for the brokers.
        let mut stall = StallWatch::new(&pump.cfg.name, pump.stall_warning);
        while let Some(first) = updates.recv().await {
            let mut batch = vec![first];
            while batch.len() < self.max_blocks {
                match updates.try_recv() {
                    Some(u) => batch.push(u),
                    None => break,
                }
            }
            stall.waiting();
            let committed = stall.during(self.transaction(pump, batch)).await;
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
                    self.abort(pump).await?;
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// One transaction: every update's records, then the checkpoint of the resulting window.
    async fn transaction(
        &mut self,
        pump: &mut Pump,
        updates: Vec<Update>,
    ) -> Result<(), SinkError> {
        let started = std::time::Instant::now();
        pump.producer
            .begin_transaction()
            .map_err(|e| classify(&self.id, e))?;
        let mut sent = Vec::with_capacity(updates.len());
        for update in updates {
            sent.push(pump.send(update).await?);
        }
        // Offsets are assigned as records are acknowledged; the checkpoint, which names
        // them, is the transaction's last record.
        let mut progress = pump.progress.clone();
        let mut acked = Vec::with_capacity(sent.len());
        for s in sent {
            let (a, trace) = s.acknowledged().await?;
            progress.apply(&a.effect, &a.landed);
            acked.push((a, trace));
        }
        if let Some(cp) = pump.send_checkpoint(&progress).await? {
            cp.acknowledged().await?;
        }
        self.fence_offsets(pump).await?;
        self.commit(pump).await?;
        if let Some(f) = &mut self.fence {
            f.committed();
        }
        let produce_s = started.elapsed().as_secs_f64();
        for (mut a, trace) in acked {
            if let Some(t) = trace {
                t.acknowledged(a.records);
            }
            a.produce_s = Some(produce_s);
            pump.apply(a);
        }
        Ok(())
    }

    /// Group mode: adds the membership partition with the current group metadata to the
    /// open transaction (KIP-447). A refusal (stale generation, unknown member) or a lost
    /// assignment aborts the transaction.
    async fn fence_offsets(&self, pump: &Pump) -> Result<(), SinkError> {
        let Some(fence) = &self.fence else {
            return Ok(());
        };
        let (fence, p, timeout) = (fence.clone(), pump.producer.clone(), self.timeout);
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
    async fn commit(&self, pump: &Pump) -> Result<(), SinkError> {
        let mut attempt = 0;
        loop {
            let p = pump.producer.clone();
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
                        chain: &pump.cfg.name,
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
    async fn abort(&self, pump: &Pump) -> Result<(), SinkError> {
        let p = pump.producer.clone();
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
