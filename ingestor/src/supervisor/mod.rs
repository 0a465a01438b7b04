//! Starts one supervised follower/publisher pair per chain and owns shutdown.
//!
//! Every task is joined: a panic or a fatal error is logged with the chain's name, and a
//! chain that stops on its own stops the process (other chains flush first), because the
//! errors that stop a chain are ones an operator must fix (wrong chain id, a broker that
//! refuses records). Transient trouble (a node down, a malformed answer) never stops a
//! chain: the follower retries with backoff, independently of every other chain.
//!
//! In group mode ([`run_group`]) the chains run while the group assigns them to this
//! instance.

mod group;

pub use group::run_group;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::backoff::jittered as backoff_jittered;
use crate::checkpoint::{Checkpoint, load_all};
use crate::config::{ChainConfig, Config, KafkaConfig};
use crate::events;
use crate::follower::{FollowError, Follower, handover};
use crate::resume::{Resumed, read_tail};
use crate::sink::{
    Commit, Framings, Outcome, Producer, Progress, Pump, SinkError, flush, transactional_producer,
};
use crate::telemetry::rpc_metrics::RpcMetrics;
use crate::window::Window;

/// Updates (blocks, retractions) queued between a follower and its publisher.
const HANDOVER_CAPACITY: usize = 32;
/// Bytes of logs queued between a follower and its publisher (see `follower::handover`).
const HANDOVER_BYTES: usize = 8 << 20;

/// Why the service did not end cleanly. One line per failed chain.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    /// A publisher could not be built.
    #[error(transparent)]
    Setup(#[from] SinkError),
    /// One or more chains stopped on an error, or records were unacknowledged at the deadline.
    #[error("{}", join(.0))]
    Failed(Vec<ChainError>),
}

fn join(errors: &[ChainError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why a chain stopped, or the shutdown did not finish.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The publisher stopped on an error.
    #[error("chain {chain}: {source}")]
    Publish {
        /// Chain name.
        chain: String,
        /// Why.
        source: SinkError,
    },
    /// The follower stopped on an error retrying cannot fix.
    #[error("chain {chain}: {source}")]
    Follow {
        /// Chain name.
        chain: String,
        /// Why.
        source: FollowError,
    },
    /// A chain's follower or publisher task panicked or was cancelled.
    #[error("chain {chain}: {task} task failed: {source}")]
    Task {
        /// Chain name.
        chain: String,
        /// `publisher` or `follower`.
        task: &'static str,
        /// Why.
        source: tokio::task::JoinError,
    },
    /// A chain's own task panicked or was cancelled.
    #[error("chain task failed: {0}")]
    Chain(tokio::task::JoinError),
    /// The shutdown deadline passed with records unacknowledged.
    #[error("shutdown deadline of {deadline_ms} ms passed with records unacknowledged {left}")]
    Deadline {
        /// `shutdown_timeout_ms`.
        deadline_ms: u64,
        /// What librdkafka still held.
        left: String,
    },
}

/// Where chains get their producer.
#[derive(Clone)]
pub enum Producers {
    /// One idempotent producer shared by every chain.
    Shared(Producer),
    /// Transactional mode: each chain makes its own (one `transactional.id` per chain).
    PerChain,
}

struct ChainOutcome {
    name: String,
    result: Result<Option<u64>, ChainError>,
}

/// Runs every chain until `stop` resolves or a chain fails, then drains within the deadline.
///
/// Each chain continues from its checkpoint in `checkpoints` (by chain id), or from its
/// `start_block` when it has none, and frames its values as `framings` says (by chain id;
/// single-object encoding when absent).
pub async fn run(
    config: Config,
    producers: Producers,
    mut checkpoints: HashMap<u64, Checkpoint>,
    framings: HashMap<u64, Framings>,
    rpc_metrics: Arc<RpcMetrics>,
    stop: impl Future<Output = &'static str>,
) -> Result<(), SupervisorError> {
    let shutdown = CancellationToken::new();
    let mut chains = JoinSet::new();
    let kafka = Arc::new(config.kafka);
    for chain in config.chains {
        let cfg = Arc::new(chain);
        let chain = Chain {
            framings: framings.get(&cfg.chain_id).cloned().unwrap_or_default(),
            checkpoint: checkpoints.remove(&cfg.chain_id),
            cfg,
            kafka: kafka.clone(),
            producers: producers.clone(),
            stop: shutdown.child_token(),
            group: None,
            rpc_metrics: rpc_metrics.clone(),
        };
        chains.spawn(chain.run());
    }

    let mut failures = Vec::new();
    let reason = tokio::select! {
        signal = stop => signal,
        Some(outcome) = chains.join_next() => {
            record(outcome, &mut failures);
            "a chain stopped"
        }
    };
    shutdown.cancel();
    events::ShutdownStarted {
        reason,
        deadline_ms: config.shutdown_timeout_ms,
    }
    .emit();
    let deadline = Duration::from_millis(config.shutdown_timeout_ms);
    let drained = tokio::time::timeout(deadline, async {
        while let Some(outcome) = chains.join_next().await {
            record(outcome, &mut failures);
        }
    })
    .await;
    if drained.is_err() {
        chains.abort_all();
        let left = match &producers {
            Producers::Shared(p) => flush(p, Duration::from_secs(1)).err().unwrap_or_default(),
            Producers::PerChain => String::new(),
        };
        failures.push(ChainError::Deadline {
            deadline_ms: config.shutdown_timeout_ms,
            left,
        });
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(SupervisorError::Failed(failures))
    }
}

fn record(outcome: Result<ChainOutcome, tokio::task::JoinError>, failures: &mut Vec<ChainError>) {
    match outcome {
        Ok(ChainOutcome {
            name,
            result: Ok(delivered),
        }) => {
            events::ChainStopped {
                chain: &name,
                delivered,
            }
            .emit();
        }
        Ok(ChainOutcome { result: Err(e), .. }) => failures.push(e),
        Err(e) => failures.push(ChainError::Chain(e)),
    }
}

/// One chain's follower/publisher pair, restarted from the last committed checkpoint when a
/// transaction is aborted.
struct Chain {
    cfg: Arc<ChainConfig>,
    kafka: Arc<KafkaConfig>,
    /// The shared idempotent producer, or none in transactional mode.
    producers: Producers,
    /// Cancelled by shutdown.
    stop: CancellationToken,
    /// How values announce their schemas (the chain topic's and each decoded event's).
    framings: Framings,
    /// The checkpoint read at start-up (transactional mode reads it again at every
    /// attempt, once its producer fenced any earlier one).
    checkpoint: Option<Checkpoint>,
    /// Group mode: the chain's ownership.
    group: Option<Ownership>,
    /// Where the chain's endpoints' calls are counted and timed.
    rpc_metrics: Arc<RpcMetrics>,
}

/// Group mode: what a chain's publisher needs to fence itself (see [`crate::group::fence`]).
#[derive(Clone)]
struct Ownership {
    state: Arc<crate::group::GroupState>,
    /// Cancelled when the assignment is lost: no commit after that.
    lost: CancellationToken,
    /// When the group assigned the chain (taken by the first commit).
    assigned_at: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
}

impl Chain {
    async fn run(mut self) -> ChainOutcome {
        let name = self.cfg.name.clone();
        let mut txn_producer: Option<Producer> = None;
        let mut rewinds = 0u32;
        let mut committed = Window::from_blocks(
            self.cfg.reorg_window_blocks,
            self.checkpoint
                .as_ref()
                .map(|c| c.window.clone())
                .unwrap_or_default(),
        );
        loop {
            let checkpoint = self.checkpoint.take();
            let (publish, follow) = self
                .attempt(&mut txn_producer, checkpoint, &committed)
                .await;
            if let Ok(Outcome {
                window: now_committed,
                result: Err(e),
            }) = &publish
                && e.rewinds()
                && !self.stop.is_cancelled()
            {
                let recreate = matches!(
                    e,
                    SinkError::Aborted {
                        recreate_producer: true,
                        ..
                    }
                );
                // A transaction committed since the last abort: this is a new failure, not
                // the same one again, so the backoff starts over.
                if now_committed.tip() != committed.tip() {
                    rewinds = 0;
                }
                let wait = backoff_jittered(
                    rewinds,
                    ChainConfig::ms(self.cfg.reconnect_backoff_initial_ms),
                    ChainConfig::ms(self.cfg.reconnect_backoff_max_ms),
                );
                rewinds = rewinds.saturating_add(1);
                events::TransactionAborted {
                    chain: &name,
                    error_type: e.error_type(),
                    recreate_producer: recreate,
                    retry_in_ms: wait.as_millis() as u64,
                    error: e,
                }
                .emit();
                if recreate {
                    txn_producer = None;
                }
                committed = now_committed.clone();
                tokio::select! {
                    _ = tokio::time::sleep(wait) => continue,
                    _ = self.stop.cancelled() => {}
                }
            }
            // Group mode: a chain told to stop, or fenced by its next owner, ends as the
            // group decided; the group supervisor logs it (an abort then is expected).
            let expected = self.group.is_some()
                && (self.stop.is_cancelled()
                    || matches!(
                        &publish,
                        Ok(Outcome {
                            result: Err(SinkError::Fenced { .. }),
                            ..
                        })
                    ));
            return ChainOutcome {
                result: combine(&name, follow, publish, !expected),
                name,
            };
        }
    }

    /// Runs a follower and a publisher from the checkpoint and the topic's tail until the
    /// publisher ends. `committed` is the outcome's window if it cannot start.
    async fn attempt(
        &self,
        txn_producer: &mut Option<Producer>,
        checkpoint: Option<Checkpoint>,
        committed: &Window,
    ) -> (
        Result<Outcome, tokio::task::JoinError>,
        Result<Result<(), FollowError>, tokio::task::JoinError>,
    ) {
        let stop = self.stop.child_token();
        let (tx, rx) = handover(HANDOVER_CAPACITY, HANDOVER_BYTES);
        let not_started = |e| (Ok(failed(committed.clone(), e)), Ok(Ok(())));
        let (producer, checkpoint) = match &self.producers {
            Producers::Shared(shared) => (shared.clone(), checkpoint),
            Producers::PerChain => {
                let producer = match txn_producer.take() {
                    Some(p) => p,
                    // A new producer fences any earlier one first; only then is the
                    // committed checkpoint final.
                    None => match transactional_producer(&self.kafka, self.cfg.chain_id).await {
                        Ok(p) => p,
                        Err(e) => return not_started(e),
                    },
                };
                *txn_producer = Some(producer.clone());
                match self.committed_checkpoint().await {
                    Ok(c) => (producer, c),
                    Err(e) => return not_started(e),
                }
            }
        };
        let resumed = match self.resume(checkpoint.as_ref()).await {
            Ok(r) => r,
            Err(e) => return not_started(e),
        };
        events::ChainResumed {
            chain: &self.cfg.name,
            chain_id: self.cfg.chain_id,
            checkpoint: checkpoint.as_ref().map(|c| c.block_number),
            migrated: checkpoint.as_ref().is_some_and(|c| c.migrated),
            window: resumed.window.len(),
            records_read: resumed.records_read,
            unconfirmed: resumed.unconfirmed.len(),
            dedup_seeded: resumed.dedup.len(),
        }
        .emit();
        let progress = Progress::new(resumed.window.clone(), resumed.topic);
        let commit = match &self.producers {
            Producers::Shared(_) => Commit::Idempotent,
            Producers::PerChain => Commit::Transactional {
                fence: self.fence(),
            },
        };
        let publish = Pump::new(
            self.cfg.clone(),
            (&self.kafka, commit),
            producer,
            (resumed.dedup, resumed.placed, resumed.tx_placed),
            progress,
            &self.framings,
        )
        .map(|p| tokio::spawn(p.run(rx)));
        let publish = match publish {
            Ok(p) => p,
            Err(e) => return not_started(e),
        };
        let follower = Follower::new(
            self.cfg.clone(),
            resumed.window,
            resumed.unconfirmed,
            tx,
            stop.clone(),
            self.rpc_metrics.clone(),
        );
        let follow = tokio::spawn(follower.run());
        // The publisher ends when the follower drops its sender, or on its own error; then
        // the follower is stopped (an idle one would only notice at its next block).
        let publish = publish.await;
        stop.cancel();
        (publish, follow.await)
    }

    /// Group mode: the fence for this attempt's publisher.
    fn fence(&self) -> Option<crate::group::Fence> {
        self.group.as_ref().map(|o| {
            crate::group::Fence::new(
                o.state.clone(),
                self.cfg.chain_id,
                &self.cfg.name,
                o.lost.clone(),
                o.assigned_at.clone(),
            )
        })
    }

    /// Reads the chain topic's tail back (see [`crate::resume`]).
    async fn resume(&self, checkpoint: Option<&Checkpoint>) -> Result<Resumed, SinkError> {
        let (kafka, cfg, cp) = (self.kafka.clone(), self.cfg.clone(), checkpoint.cloned());
        let read = tokio::task::spawn_blocking(move || read_tail(&kafka, &cfg, cp.as_ref()))
            .await
            .map_err(|e| SinkError::Aborted {
                reason: format!("topic tail reader task: {e}"),
                recreate_producer: false,
            })?;
        match (read, &self.producers) {
            (Ok(r), _) => Ok(r),
            // Transactional mode goes on retrying, as after an abort.
            (Err(e), Producers::PerChain) => Err(SinkError::Aborted {
                reason: e.to_string(),
                recreate_producer: false,
            }),
            (Err(e), Producers::Shared(_)) => Err(SinkError::Resume(e)),
        }
    }

    /// The chain's committed checkpoint.
    async fn committed_checkpoint(&self) -> Result<Option<Checkpoint>, SinkError> {
        let kafka = self.kafka.clone();
        let mut all = tokio::task::spawn_blocking(move || load_all(&kafka))
            .await
            .map_err(|e| SinkError::Aborted {
                reason: format!("checkpoint reader task: {e}"),
                recreate_producer: true,
            })?
            .map_err(|e| SinkError::Aborted {
                reason: e.to_string(),
                recreate_producer: true,
            })?;
        Ok(all.remove(&self.cfg.chain_id))
    }
}

fn failed(window: Window, e: SinkError) -> Outcome {
    Outcome {
        window,
        result: Err(e),
    }
}
/// Reduces the two tasks' results to the one error that matters.
fn combine(
    chain: &str,
    follow: Result<Result<(), FollowError>, tokio::task::JoinError>,
    publish: Result<Outcome, tokio::task::JoinError>,
    log_publish_error: bool,
) -> Result<Option<u64>, ChainError> {
    let task = |task, source| ChainError::Task {
        chain: chain.to_owned(),
        task,
        source,
    };
    let publish = match publish {
        Ok(Outcome {
            window,
            result: Ok(()),
        }) => Ok(window.tip().map(|t| t.0)),
        Ok(Outcome { result: Err(e), .. }) => {
            if log_publish_error {
                events::ChainFailed {
                    chain,
                    stage: "publish",
                    error_type: e.error_type(),
                    error: &e,
                }
                .emit();
            }
            Err(ChainError::Publish {
                chain: chain.to_owned(),
                source: e,
            })
        }
        Err(e) => Err(task("publisher", e)),
    };
    match follow {
        Ok(Ok(())) | Ok(Err(FollowError::SinkClosed)) => publish,
        Ok(Err(e)) => {
            events::ChainFailed {
                chain,
                stage: "follow",
                error_type: e.error_type(),
                error: &e,
            }
            .emit();
            Err(ChainError::Follow {
                chain: chain.to_owned(),
                source: e,
            })
        }
        Err(e) => Err(task("follower", e)),
    }
}
