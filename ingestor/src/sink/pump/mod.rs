//! The per-chain pump: takes the follower's updates in order, sends each one's records
//! (built by [`Builder`], fanned out to the chain topic and the decoded topics) and applies
//! it to the delivered [`Progress`] once the broker has acknowledged all of them; the
//! checkpoint is written from that progress only. Two commit policies share it:
//!
//! - [`Commit::Idempotent`] ([`idempotent`]): blocks are pipelined on the shared
//!   idempotent producer, and a checkpoint of the newest delivered state is written at most
//!   every `checkpoint_interval_ms`.
//! - [`Commit::Transactional`] ([`transactional`]): batches of ready blocks are one
//!   transaction each on the chain's own producer, with the checkpoint of the resulting
//!   state as its last record.

mod idempotent;
mod offsets;
mod progress;
mod send;
mod stall;
mod transactional;

use std::sync::Arc;

pub use offsets::Offsets;
use progress::Landed;
pub use progress::{Progress, TopicState};

use crate::config::{ChainConfig, KafkaConfig};
use crate::events;
use crate::follower::HandoverRx;
use crate::group::Fence;
use crate::window::Window;

use super::SinkError;
use super::datasets::TxPlaced;
use super::dedup::Dedup;
use super::kafka::Producer;
use super::placed::Placed;
use super::records::{Builder, Effect, Framings};

/// How a chain's records are committed.
pub enum Commit {
    /// On the shared idempotent producer; the checkpoint follows the acknowledgements.
    Idempotent,
    /// In transactions on the chain's own transactional producer; in group mode each one
    /// also carries the chain's membership partition ([`Fence`]).
    Transactional {
        /// Group mode's fence.
        fence: Option<Fence>,
    },
}

/// An update whose records were all acknowledged.
#[derive(Debug)]
struct Acked {
    /// What it does to the delivered window.
    effect: Effect,
    /// Logs published (see the builder: chain-topic records, or with `raw = false` logs
    /// with a decoded record).
    records: usize,
    /// Records skipped by the dedup LRU.
    dedup_hits: usize,
    /// The block's timestamp (s); `None` for a retraction.
    timestamp_s: Option<u64>,
    /// Enqueue to last acknowledgement (s), when measured.
    produce_s: Option<f64>,
    /// Where its records landed.
    landed: Landed,
}

/// How a pump ended: the delivered window (what the checkpoint holds) and why.
#[derive(Debug)]
pub struct Outcome {
    /// Blocks whose records were all acknowledged (committed, in transactional mode), by
    /// number and hash (their keys are not kept here).
    pub window: Window,
    /// `Ok` when its input ended and everything was acknowledged.
    pub result: Result<(), SinkError>,
}

/// Publishes one chain's updates.
pub struct Pump {
    cfg: Arc<ChainConfig>,
    /// Each lane's topic (0: the chain topic).
    topics: Arc<[String]>,
    /// The chain topic, whose offsets the checkpoint names (`None` with `raw = false`).
    chain_topic: Option<Arc<str>>,
    checkpoint_topic: String,
    producer: Producer,
    builder: Builder,
    progress: Progress,
    stall_warning: std::time::Duration,
    policy: Policy,
}

/// A commit policy's own state.
enum Policy {
    Idempotent,
    Transactional(transactional::Transactions),
}

impl Pump {
    /// A pump for `cfg`'s topics on `producer` (the shared idempotent one, or the chain's
    /// transactional one), continuing after `progress`, skipping what `dedup` knows is on a
    /// topic already; `placed` says which decoded topics hold the recent keys, `tx_placed`
    /// which transactions the recent blocks published; `k` names
    /// the checkpoint topic, the stall threshold and the transactions' limits.
    pub fn new(
        cfg: Arc<ChainConfig>,
        (k, commit): (&KafkaConfig, Commit),
        producer: Producer,
        (dedup, placed, tx_placed): (Dedup, Placed, TxPlaced),
        progress: Progress,
        framings: &Framings,
    ) -> Result<Self, SinkError> {
        let builder = Builder::new(&cfg, framings, dedup, (placed, tx_placed))?;
        let policy = match commit {
            Commit::Idempotent => Policy::Idempotent,
            Commit::Transactional { fence } => {
                Policy::Transactional(transactional::Transactions::new(k, cfg.chain_id, fence))
            }
        };
        Ok(Self {
            policy,
            stall_warning: std::time::Duration::from_millis(k.stall_warning_ms),
            topics: builder.topics(),
            chain_topic: cfg.raw_topic().map(Into::into),
            checkpoint_topic: k.checkpoint_topic.clone(),
            builder,
            cfg,
            producer,
            progress,
        })
    }

    /// Publishes under `commit` until the channel closes and everything (the last
    /// checkpoint included) is acknowledged or committed, or until an error.
    pub async fn run(mut self, mut updates: HandoverRx) -> Outcome {
        let result = match std::mem::replace(&mut self.policy, Policy::Idempotent) {
            Policy::Idempotent => idempotent::run(&mut self, &mut updates).await,
            Policy::Transactional(mut t) => t.run(&mut self, &mut updates).await,
        };
        Outcome {
            window: self.progress.window().clone(),
            result,
        }
    }

    /// Applies an acknowledged update to the delivered progress and reports it; returns
    /// whether the checkpoint changed.
    fn apply(&mut self, acked: Acked) -> bool {
        let changed = self.progress.apply(&acked.effect, &acked.landed);
        if let Effect::Block(b) = &acked.effect {
            events::BlockDelivered {
                chain: &self.cfg.name,
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
}
