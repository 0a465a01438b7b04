//! Starts one supervised follower/publisher pair per chain and owns shutdown.
//!
//! Every task is joined: a panic or a fatal error is logged with the chain's name, and a
//! chain that stops on its own stops the process (other chains flush first), because the
//! errors that stop a chain are ones an operator must fix (wrong chain id, a broker that
//! refuses records). Transient trouble (a node down, a malformed answer) never stops a
//! chain: the follower retries with backoff, independently of every other chain.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::backoff::jittered as backoff_jittered;
use crate::checkpoint::{Checkpoint, load_all};
use crate::config::{ChainConfig, Config, KafkaConfig};
use crate::encode::Framing;
use crate::events;
use crate::follower::{FollowError, Follower};
use crate::sink::{
    Outcome, Producer, Publisher, SinkError, TransactionalPublisher, flush, transactional_producer,
};
use crate::window::Window;

/// Blocks buffered between a follower and its publisher.
const HANDOVER_CAPACITY: usize = 32;

/// Why the service did not end cleanly. One line per failed chain.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    /// A publisher could not be built.
    #[error(transparent)]
    Setup(#[from] SinkError),
    /// One or more chains stopped on an error, or records were unacknowledged at the deadline.
    #[error("{}", .0.join("; "))]
    Failed(Vec<String>),
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
    result: Result<Option<u64>, String>,
}

/// Runs every chain until `stop` resolves or a chain fails, then drains within the deadline.
///
/// Each chain continues from its checkpoint in `checkpoints` (by chain id), or from its
/// `start_block` when it has none, and frames its values as `framings` says (by chain id;
/// single-object encoding when absent).
pub async fn run(
    config: Config,
    producers: Producers,
    checkpoints: HashMap<u64, Checkpoint>,
    framings: HashMap<u64, Framing>,
    stop: impl Future<Output = &'static str>,
) -> Result<(), SupervisorError> {
    let shutdown = CancellationToken::new();
    let mut chains = JoinSet::new();
    let kafka = Arc::new(config.kafka);
    for chain in config.chains {
        let cfg = Arc::new(chain);
        let checkpoint = checkpoints.get(&cfg.chain_id);
        events::ChainResumed {
            chain: &cfg.name,
            chain_id: cfg.chain_id,
            checkpoint: checkpoint.map(|c| c.block_number),
            window: checkpoint.map_or(0, |c| c.window.len()),
        }
        .emit();
        let window = Window::from_blocks(
            cfg.reorg_window_blocks,
            checkpoint.map(|c| c.window.clone()).unwrap_or_default(),
        );
        let chain = Chain {
            framing: framings
                .get(&cfg.chain_id)
                .copied()
                .unwrap_or(Framing::SingleObject),
            cfg,
            kafka: kafka.clone(),
            producers: producers.clone(),
            stop: shutdown.child_token(),
        };
        chains.spawn(chain.run(window));
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
        failures.push(format!(
            "shutdown deadline of {} ms passed with records unacknowledged {left}",
            config.shutdown_timeout_ms
        ));
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(SupervisorError::Failed(failures))
    }
}

fn record(outcome: Result<ChainOutcome, tokio::task::JoinError>, failures: &mut Vec<String>) {
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
        Ok(ChainOutcome {
            name,
            result: Err(e),
        }) => failures.push(format!("chain {name}: {e}")),
        Err(e) => failures.push(format!("chain task failed: {e}")),
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
    /// How values announce their schema.
    framing: Framing,
}

impl Chain {
    async fn run(self, mut window: Window) -> ChainOutcome {
        let name = self.cfg.name.clone();
        let mut txn_producer: Option<Producer> = None;
        let mut rewinds = 0u32;
        loop {
            let (publish, follow) = self.attempt(&mut txn_producer, window.clone()).await;
            if let Ok(Outcome {
                window: committed,
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
                if committed.tip() != window.tip() {
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
                window = committed.clone();
                tokio::select! {
                    _ = tokio::time::sleep(wait) => continue,
                    _ = self.stop.cancelled() => {}
                }
            }
            return ChainOutcome {
                result: combine(&name, follow, publish),
                name,
            };
        }
    }

    /// Runs a follower and a publisher from `window` until the publisher ends.
    async fn attempt(
        &self,
        txn_producer: &mut Option<Producer>,
        window: Window,
    ) -> (
        Result<Outcome, tokio::task::JoinError>,
        Result<Result<(), FollowError>, tokio::task::JoinError>,
    ) {
        let stop = self.stop.child_token();
        let (tx, rx) = mpsc::channel(HANDOVER_CAPACITY);
        let mut window = window;
        let publish = if let Producers::Shared(shared) = &self.producers {
            match Publisher::new(
                self.cfg.clone(),
                shared.clone(),
                &self.kafka.checkpoint_topic,
                self.kafka.dedup_cache_capacity,
                window.clone(),
                self.framing,
            ) {
                Ok(p) => tokio::spawn(p.run(rx)),
                Err(e) => return (Ok(failed(window, e)), Ok(Ok(()))),
            }
        } else {
            let producer = match txn_producer.take() {
                Some(p) => Ok(p),
                // A new producer fences any earlier one first; only then is the committed
                // checkpoint final, so it is read again.
                None => match transactional_producer(&self.kafka, self.cfg.chain_id).await {
                    Ok(p) => self.committed_window().await.map(|w| {
                        window = w;
                        p
                    }),
                    Err(e) => Err(e),
                },
            };
            let publisher = producer.and_then(|p| {
                *txn_producer = Some(p.clone());
                TransactionalPublisher::new(
                    self.cfg.clone(),
                    &self.kafka,
                    p,
                    window.clone(),
                    self.framing,
                )
            });
            match publisher {
                Ok(p) => tokio::spawn(p.run(rx)),
                Err(e) => return (Ok(failed(window, e)), Ok(Ok(()))),
            }
        };
        let follower = Follower::new(self.cfg.clone(), window, tx, stop.clone());
        let follow = tokio::spawn(follower.run());
        // The publisher ends when the follower drops its sender, or on its own error; then
        // the follower is stopped (an idle one would only notice at its next block).
        let publish = publish.await;
        stop.cancel();
        (publish, follow.await)
    }
}

impl Chain {
    /// The chain's committed checkpoint as a window (empty without one).
    async fn committed_window(&self) -> Result<Window, SinkError> {
        let kafka = self.kafka.clone();
        let all = tokio::task::spawn_blocking(move || load_all(&kafka))
            .await
            .map_err(|e| SinkError::Aborted {
                reason: format!("checkpoint reader task: {e}"),
                recreate_producer: true,
            })?
            .map_err(|e| SinkError::Aborted {
                reason: e.to_string(),
                recreate_producer: true,
            })?;
        let blocks = all
            .get(&self.cfg.chain_id)
            .map(|c| c.window.clone())
            .unwrap_or_default();
        Ok(Window::from_blocks(self.cfg.reorg_window_blocks, blocks))
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
) -> Result<Option<u64>, String> {
    let publish = match publish {
        Ok(Outcome {
            window,
            result: Ok(()),
        }) => Ok(window.tip().map(|t| t.0)),
        Ok(Outcome { result: Err(e), .. }) => {
            events::ChainFailed {
                chain,
                stage: "publish",
                error_type: e.error_type(),
                error: &e,
            }
            .emit();
            Err(e.to_string())
        }
        Err(e) => Err(format!("publisher task failed: {e}")),
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
            Err(e.to_string())
        }
        Err(e) => Err(format!("follower task failed: {e}")),
    }
}
