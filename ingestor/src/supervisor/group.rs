//! Group mode's supervisor: chains start and stop as the group assigns and revokes them
//! (see [`crate::group`]). Chains that do not move are never touched.
//!
//! - Assigned: the chain starts as a transactional chain does after a restart: its new
//!   producer fences the previous owner, then the committed checkpoint and the topic's
//!   tail say where to resume.
//! - Revoked: the chain stops gracefully (its open transaction and checkpoint commit),
//!   and only then is the rebalance callback answered.
//! - Lost (the session expired): the chain stops without committing.
//! - A chain fenced or refused by the group is dropped ("lost to another member"); if the
//!   group still assigns it here, the member leaves and joins again.
//! - On SIGTERM every chain stops gracefully, then the member leaves the group.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{Chain, ChainError, ChainOutcome, Ownership, Producers, SupervisorError};
use crate::config::{ChainConfig, Config, KafkaConfig};
use crate::events;
use crate::group::{Command, GroupState, Membership};
use crate::sink::{Framings, SinkError};
use crate::telemetry::rpc_metrics::RpcMetrics;

/// A chain running here.
struct Running {
    stop: CancellationToken,
    lost: CancellationToken,
    /// Set when this instance asked it to stop: why, and since when.
    stopping: Option<(&'static str, Instant)>,
}

struct Supervisor {
    chains: HashMap<u64, Arc<ChainConfig>>,
    kafka: Arc<KafkaConfig>,
    framings: HashMap<u64, Framings>,
    state: Arc<GroupState>,
    running: HashMap<u64, Running>,
    /// Chains assigned again while their previous task still stops: started when it ends.
    pending: HashMap<u64, Instant>,
    tasks: JoinSet<(u64, ChainOutcome)>,
    failures: Vec<ChainError>,
    /// Where the chains' endpoints' calls are counted and timed.
    rpc_metrics: Arc<RpcMetrics>,
}

/// Runs the chains the group assigns to this instance until `stop` resolves or a chain
/// fails on an error that is not a lost ownership, then stops every owned chain within
/// `shutdown_timeout_ms` and leaves the group.
pub async fn run_group(
    config: Config,
    membership: Membership,
    mut commands: mpsc::Receiver<Command>,
    framings: HashMap<u64, Framings>,
    rpc_metrics: Arc<RpcMetrics>,
    stop: impl Future<Output = &'static str>,
) -> Result<(), SupervisorError> {
    let deadline = Duration::from_millis(config.shutdown_timeout_ms);
    let mut s = Supervisor {
        chains: config
            .chains
            .into_iter()
            .map(|c| (c.chain_id, Arc::new(c)))
            .collect(),
        kafka: Arc::new(config.kafka),
        framings,
        state: membership.state(),
        running: HashMap::new(),
        pending: HashMap::new(),
        tasks: JoinSet::new(),
        failures: Vec::new(),
        rpc_metrics,
    };
    let mut stop = std::pin::pin!(stop);
    let reason = loop {
        tokio::select! {
            signal = &mut stop => break signal,
            command = commands.recv() => match command {
                None => break "the group membership stopped",
                Some(Command::Assigned { chains, at }) => {
                    for id in chains {
                        s.start(id, at);
                    }
                }
                Some(Command::Revoked { chains, lost, done }) => {
                    let kind = if lost { "lost" } else { "revoked" };
                    for id in &chains {
                        s.ask_stop(*id, kind, lost);
                    }
                    // A lost chain is someone else's already, and cannot commit: the
                    // member rejoins at once (a chain assigned back meanwhile starts once
                    // its old task ended). A revoked one commits first.
                    let fatal = !lost && s.wait_for(&chains, deadline).await;
                    // The callback also stops waiting if this answer is dropped.
                    let _ = done.try_send(());
                    if fatal {
                        break "a chain stopped";
                    }
                }
            },
            Some(outcome) = s.tasks.join_next() => {
                if s.ended(outcome) {
                    break "a chain stopped";
                }
            }
        }
    };
    events::ShutdownStarted {
        reason,
        deadline_ms: config.shutdown_timeout_ms,
    }
    .emit();
    s.pending.clear();
    let ids: Vec<u64> = s.running.keys().copied().collect();
    for id in &ids {
        s.ask_stop(*id, "shutdown", false);
    }
    let drained = tokio::time::timeout(deadline, async {
        while let Some(outcome) = s.tasks.join_next().await {
            s.ended(outcome);
        }
    })
    .await;
    if drained.is_err() {
        s.tasks.abort_all();
        s.failures.push(ChainError::Deadline {
            deadline_ms: config.shutdown_timeout_ms,
            left: String::new(),
        });
    }
    // Every chain stopped: a revocation still queued is answered by dropping it, and
    // nothing starts any more.
    drop(commands);
    // Leaving the group now lets the others take the chains at once.
    let _ = tokio::task::spawn_blocking(move || membership.close()).await;
    if s.failures.is_empty() {
        Ok(())
    } else {
        Err(SupervisorError::Failed(s.failures))
    }
}

impl Supervisor {
    fn owned_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .running
            .iter()
            .filter(|(_, r)| r.stopping.is_none())
            .filter_map(|(id, _)| self.chains.get(id).map(|c| c.name.clone()))
            .collect();
        names.sort();
        names
    }

    /// Starts chain `id`, assigned at `at`, unless it runs already or is not configured.
    fn start(&mut self, id: u64, at: Instant) {
        let Some(cfg) = self.chains.get(&id).cloned() else {
            return;
        };
        if let Some(r) = self.running.get(&id) {
            if r.stopping.is_some() {
                self.pending.insert(id, at);
            }
            return;
        }
        let stop = CancellationToken::new();
        let lost = CancellationToken::new();
        let chain = Chain {
            framings: self.framings.get(&id).cloned().unwrap_or_default(),
            checkpoint: None,
            cfg: cfg.clone(),
            kafka: self.kafka.clone(),
            producers: Producers::PerChain,
            rpc_metrics: self.rpc_metrics.clone(),
            stop: stop.clone(),
            group: Some(Ownership {
                state: self.state.clone(),
                lost: lost.clone(),
                assigned_at: Arc::new(Mutex::new(Some(at))),
            }),
        };
        self.running.insert(
            id,
            Running {
                stop,
                lost,
                stopping: None,
            },
        );
        self.tasks.spawn(async move { (id, chain.run().await) });
        events::ChainAssigned {
            chain: &cfg.name,
            group: &self.state.group,
            owned: &self.owned_names(),
        }
        .emit();
    }

    /// Asks chain `id` to stop (`lost`: without committing).
    fn ask_stop(&mut self, id: u64, why: &'static str, lost: bool) {
        if let Some(r) = self.running.get_mut(&id) {
            if lost {
                r.lost.cancel();
            }
            r.stop.cancel();
            r.stopping.get_or_insert((why, Instant::now()));
        }
    }

    /// Waits, at most `deadline`, until none of `chains` runs. True if a chain failed in a
    /// way that stops the process.
    async fn wait_for(&mut self, chains: &[u64], deadline: Duration) -> bool {
        let mut fatal = false;
        let _ = tokio::time::timeout(deadline, async {
            while chains.iter().any(|c| self.running.contains_key(c)) {
                match self.tasks.join_next().await {
                    Some(outcome) => fatal |= self.ended(outcome),
                    None => break,
                }
            }
        })
        .await;
        fatal
    }

    /// A chain task ended. True if that stops the process.
    fn ended(&mut self, outcome: Result<(u64, ChainOutcome), tokio::task::JoinError>) -> bool {
        let (id, out) = match outcome {
            Ok(done) => done,
            Err(e) => {
                self.failures.push(ChainError::Chain(e));
                return true;
            }
        };
        let running = self.running.remove(&id);
        let owned = self.owned_names();
        let fatal = match (running.and_then(|r| r.stopping), out.result) {
            (Some((kind, since)), result) => {
                let (delivered, error) = match result {
                    Ok(d) => (d, None),
                    Err(e) => (None, Some(e)),
                };
                events::ChainReleased {
                    chain: &out.name,
                    group: &self.state.group,
                    kind,
                    delivered,
                    error: error.as_ref().map(|e| e as &dyn std::fmt::Display),
                    took_ms: since.elapsed().as_millis() as u64,
                    owned: &owned,
                }
                .emit();
                false
            }
            (None, Err(ChainError::Publish { source, .. }))
                if matches!(source, SinkError::Fenced { .. }) =>
            {
                events::ChainLost {
                    chain: &out.name,
                    group: &self.state.group,
                    error: &source,
                    owned: &owned,
                }
                .emit();
                // Still assigned here: the group has not noticed yet; leave and join again
                // so it assigns the chain afresh.
                if self.state.owns(id) {
                    self.state.request_rejoin();
                }
                false
            }
            (None, Ok(delivered)) => {
                events::ChainStopped {
                    chain: &out.name,
                    delivered,
                }
                .emit();
                true
            }
            (None, Err(e)) => {
                self.failures.push(e);
                true
            }
        };
        if let Some(at) = self.pending.remove(&id) {
            self.start(id, at);
        }
        fatal
    }
}
