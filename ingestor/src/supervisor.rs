//! Starts one supervised follower/publisher pair per chain and owns shutdown.
//!
//! Every task is joined: a panic or a fatal error is logged with the chain's name, and a
//! chain that stops on its own stops the process (other chains flush first), because the
//! errors that stop a chain are ones an operator must fix (wrong chain id, a broker that
//! refuses records). Transient trouble (a node down, a malformed answer) never stops a
//! chain: the follower retries with backoff, independently of every other chain.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::producer::FutureProducer;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::events;
use crate::follower::{FollowError, Follower};
use crate::sink::{Delivered, Publisher, SinkError, flush};

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

struct ChainOutcome {
    name: String,
    result: Result<Option<Delivered>, String>,
}

/// Runs every chain until `stop` resolves or a chain fails, then drains within the deadline.
pub async fn run(
    config: Config,
    producer: FutureProducer,
    stop: impl Future<Output = &'static str>,
) -> Result<(), SupervisorError> {
    let shutdown = CancellationToken::new();
    let mut chains = JoinSet::new();
    for chain in config.chains {
        let cfg = Arc::new(chain);
        let (tx, rx) = mpsc::channel(HANDOVER_CAPACITY);
        // The chain's own stop: cancelled by shutdown, or when its publisher ends (a
        // follower idle at the head would otherwise only notice at its next block).
        let chain_stop = shutdown.child_token();
        let follower = Follower::new(cfg.clone(), tx, chain_stop.clone());
        let publisher = Publisher::new(
            cfg.clone(),
            producer.clone(),
            config.kafka.dedup_cache_capacity,
        )?;
        let name = cfg.name.clone();
        chains.spawn(async move {
            let follow = tokio::spawn(follower.run());
            // The publisher ends when the follower drops its sender, or on its own error.
            let publish = tokio::spawn(publisher.run(rx)).await;
            chain_stop.cancel();
            let follow = follow.await;
            ChainOutcome {
                result: combine(&name, follow, publish),
                name,
            }
        });
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
        let left = flush(&producer, Duration::from_secs(1))
            .err()
            .unwrap_or_default();
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
                delivered: delivered.map(|d| d.number),
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

/// Reduces the two tasks' results to the one error that matters.
fn combine(
    chain: &str,
    follow: Result<Result<(), FollowError>, tokio::task::JoinError>,
    publish: Result<Result<Option<Delivered>, SinkError>, tokio::task::JoinError>,
) -> Result<Option<Delivered>, String> {
    let publish = match publish {
        Ok(Ok(last)) => Ok(last),
        Ok(Err(e)) => {
            events::ChainFailed {
                chain,
                stage: "publish",
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
                error: &e,
            }
            .emit();
            Err(e.to_string())
        }
        Err(e) => Err(format!("follower task failed: {e}")),
    }
}
