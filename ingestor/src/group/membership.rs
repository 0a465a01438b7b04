//! This instance's membership: a consumer on its own thread, subscribed to the membership
//! topics of the configured chains with the cooperative-sticky assignor. Its rebalance
//! callbacks turn assignments into [`Command`]s for the supervisor:
//! - an assignment starts the assigned chains;
//! - a revocation stops the revoked chains, and the callback waits (bounded by
//!   `shutdown_timeout_ms`) until they flushed and committed, so the next owner starts
//!   after the last commit;
//! - a lost assignment (the session expired) cancels them without committing, and the
//!   callback returns at once.
//!
//! The consumer never reads records or commits offsets of its own: transactions add the
//! membership partition's offset with this member's group metadata (see [`super::fence`]).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::consumer::{
    BaseConsumer, Consumer, ConsumerContext, ConsumerGroupMetadata, Rebalance,
};
use rdkafka::topic_partition_list::TopicPartitionList;
use tokio::sync::mpsc;

use super::identity::identity;
use super::members::Subscriptions;
use super::{GroupError, chain_of, membership_topic};
use crate::config::Config;
use crate::events;
use crate::sink::client_config;

/// Commands queued from the membership thread to the supervisor (a rebalance sends at most
/// two).
const COMMANDS: usize = 8;
/// How long one `poll` of the membership consumer blocks.
const POLL: Duration = Duration::from_millis(100);
/// How often the membership thread refreshes the group metadata it keeps for after the
/// consumer closed (transactions read the consumer's own at the time; rebalances refresh
/// it too).
const REFRESH: Duration = Duration::from_secs(1);

/// What the group decided, for the supervisor.
#[derive(Debug)]
pub enum Command {
    /// These chains are now this instance's.
    Assigned {
        /// Chain ids.
        chains: Vec<u64>,
        /// When the assignment arrived.
        at: Instant,
    },
    /// These chains go to another member: stop them, then answer on `done`.
    Revoked {
        /// Chain ids.
        chains: Vec<u64>,
        /// The session expired: the chains are already someone else's; stop without
        /// committing.
        lost: bool,
        /// Answered (or dropped) once the chains stopped.
        done: std::sync::mpsc::SyncSender<()>,
    },
}

/// The member's view of the group, shared with the chains' publishers and `/status`.
pub struct GroupState {
    /// `group.id`.
    pub group: String,
    /// The group metadata for `send_offsets_to_transaction` (refreshed at each poll and
    /// rebalance); `None` before the first join.
    metadata: Mutex<Option<Arc<ConsumerGroupMetadata>>>,
    /// The coordinator's generation of this member (-1 before it joined).
    generation: AtomicI32,
    /// Chains whose membership partition is assigned here.
    owned: Mutex<BTreeSet<u64>>,
    /// A chain was lost while still assigned: leave and join the group again.
    rejoin: AtomicBool,
    /// Chains whose members disagree (set after a rebalance; 0 when they agree).
    mismatched: AtomicBool,
    /// The consumer, to read the group metadata at the moment a transaction needs it (weak:
    /// the membership thread owns it, and closes it when it ends).
    consumer: OnceLock<Weak<BaseConsumer<Context>>>,
}

impl GroupState {
    fn new(group: &str) -> Self {
        Self {
            group: group.to_owned(),
            metadata: Mutex::new(None),
            generation: AtomicI32::new(-1),
            owned: Mutex::new(BTreeSet::new()),
            rejoin: AtomicBool::new(false),
            mismatched: AtomicBool::new(false),
            consumer: OnceLock::new(),
        }
    }

    /// The group metadata now: read from the consumer (a rebalance may have just moved the
    /// generation on), or the last one seen once the consumer closed.
    pub fn metadata(&self) -> Option<Arc<ConsumerGroupMetadata>> {
        if let Some(consumer) = self.consumer.get().and_then(Weak::upgrade)
            && let Some(now) = consumer.group_metadata()
        {
            return Some(Arc::new(now));
        }
        self.metadata
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The member's generation (-1 before it joined).
    pub fn generation(&self) -> i32 {
        self.generation.load(Ordering::Relaxed)
    }

    /// The chains owned now.
    pub fn owned(&self) -> BTreeSet<u64> {
        self.owned.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether `chain` is owned now.
    pub fn owns(&self, chain: u64) -> bool {
        self.owned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&chain)
    }

    /// Whether a live member was seen with other chains at the last check.
    pub fn mismatched(&self) -> bool {
        self.mismatched.load(Ordering::Relaxed)
    }

    /// Asks the membership thread to leave and join again (a chain was lost while still
    /// assigned here).
    pub fn request_rejoin(&self) {
        self.rejoin.store(true, Ordering::Relaxed);
    }

    fn refresh<C: ConsumerContext>(&self, consumer: &BaseConsumer<C>) {
        let metadata = consumer.group_metadata().map(Arc::new);
        *self.metadata.lock().unwrap_or_else(|e| e.into_inner()) = metadata;
        if let Some((generation, _)) = identity(consumer) {
            self.generation.store(generation, Ordering::Relaxed);
        }
    }
}

struct Context {
    state: Arc<GroupState>,
    commands: mpsc::Sender<Command>,
    /// Bound on waiting for revoked chains to stop.
    revoke_wait: Duration,
    /// A chain was lost since the last assignment: the next one is a rejoin.
    lost_since: Mutex<Option<Instant>>,
    /// Check the members' subscriptions at the next poll.
    check_members: AtomicBool,
}

impl ClientContext for Context {}

impl ConsumerContext for Context {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        self.state.refresh(consumer);
        let Rebalance::Revoke(tpl) = rebalance else {
            return;
        };
        let chains = self.chains(tpl);
        if chains.is_empty() {
            return;
        }
        let lost = consumer.assignment_lost();
        if lost {
            *self.lost_since.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        }
        let started = Instant::now();
        let (done, wait) = std::sync::mpsc::sync_channel(1);
        let sent = self.commands.blocking_send(Command::Revoked {
            chains: chains.clone(),
            lost,
            done,
        });
        // The supervisor answers once the chains stopped, or drops the answer (or the
        // whole queue) once it stopped every chain at shutdown; only the bound passing
        // means they may still run.
        let stopped = sent.is_err()
            || !matches!(
                wait.recv_timeout(self.revoke_wait),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout)
            );
        {
            let mut owned = self.state.owned.lock().unwrap_or_else(|e| e.into_inner());
            for c in &chains {
                owned.remove(c);
            }
        }
        events::ChainsRevoked {
            group: &self.state.group,
            chains: &chains,
            lost,
            stopped,
            waited_ms: started.elapsed().as_millis() as u64,
        }
        .emit();
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        self.state.refresh(consumer);
        self.check_members.store(true, Ordering::Relaxed);
        let Rebalance::Assign(tpl) = rebalance else {
            return;
        };
        let chains = self.chains(tpl);
        let rejoined = self
            .lost_since
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        events::GroupJoined {
            group: &self.state.group,
            generation: self.state.generation(),
            assigned: &chains,
            owned: self.state.owned().len() + chains.len(),
            rejoined_after_ms: rejoined.map(|t| t.elapsed().as_millis() as u64),
        }
        .emit();
        if chains.is_empty() {
            return;
        }
        self.state
            .owned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(chains.iter().copied());
        // The supervisor only stops reading once it shuts down, and then nothing starts.
        let _ = self.commands.blocking_send(Command::Assigned {
            chains,
            at: Instant::now(),
        });
    }
}

impl Context {
    fn chains(&self, tpl: &TopicPartitionList) -> Vec<u64> {
        tpl.elements()
            .iter()
            .filter_map(|e| chain_of(&self.state.group, e.topic()))
            .collect()
    }
}

/// A running membership: the consumer's thread and the state it shares.
pub struct Membership {
    state: Arc<GroupState>,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Membership {
    /// Checks that no live member lists other chains, then joins the group. The supervisor
    /// reads the returned receiver.
    pub fn start(cfg: &Config) -> Result<(Self, mpsc::Receiver<Command>), GroupError> {
        let Some(g) = &cfg.group else {
            return Err(GroupError::NotConfigured);
        };
        let group = g.id.clone();
        let client = |source| GroupError::Client {
            group: group.clone(),
            source,
        };
        let state = Arc::new(GroupState::new(&group));
        let (tx, rx) = mpsc::channel(COMMANDS);
        let context = Context {
            state: state.clone(),
            commands: tx,
            revoke_wait: Duration::from_millis(cfg.shutdown_timeout_ms),
            lost_since: Mutex::new(None),
            check_members: AtomicBool::new(false),
        };
        let heartbeat_ms = (g.session_timeout_ms / 3).min(3_000);
        let consumer: BaseConsumer<Context> = client_config(
            &cfg.kafka,
            &format!("ethhook-ingestor-{}", std::process::id()),
        )
        .set("group.id", &group)
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("session.timeout.ms", g.session_timeout_ms.to_string())
        .set("heartbeat.interval.ms", heartbeat_ms.to_string())
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .create_with_context(context)
        .map_err(client)?;
        let ours: BTreeSet<u64> = cfg.chains.iter().map(|c| c.chain_id).collect();
        let timeout = Duration::from_millis(cfg.kafka.admin_timeout_ms);
        if let Some(m) =
            Subscriptions::fetch(&consumer, &group, timeout)?.mismatch(&group, None, &ours)
        {
            return Err(m.into());
        }
        let names: Vec<String> = ours.iter().map(|c| membership_topic(&group, *c)).collect();
        let topics: Vec<&str> = names.iter().map(String::as_str).collect();
        consumer.subscribe(&topics).map_err(client)?;
        let consumer = Arc::new(consumer);
        let _ = state.consumer.set(Arc::downgrade(&consumer));
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("group-membership".into())
            .spawn(move || run(consumer, &names, ours, timeout, &flag))
            .map_err(|source| GroupError::Thread {
                group: group.clone(),
                source,
            })?;
        Ok((
            Self {
                state,
                stop,
                thread,
            },
            rx,
        ))
    }

    /// The shared state.
    pub fn state(&self) -> Arc<GroupState> {
        self.state.clone()
    }

    /// Leaves the group (the consumer closes, so the others rebalance at once) and joins
    /// the thread. Call once this instance's chains stopped.
    pub fn close(self) {
        self.stop.store(true, Ordering::Relaxed);
        if self.thread.join().is_err() {
            events::GroupThreadPanicked {
                group: &self.state.group,
            }
            .emit();
        }
    }
}

/// The membership thread: polls (which runs the rebalance callbacks), rejoins on request,
/// and checks the members' subscriptions after each rebalance.
fn run(
    consumer: Arc<BaseConsumer<Context>>,
    topics: &[String],
    ours: BTreeSet<u64>,
    timeout: Duration,
    stop: &AtomicBool,
) {
    let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
    let state = consumer.context().state.clone();
    let mut refreshed = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if state.rejoin.swap(false, Ordering::Relaxed) {
            events::GroupRejoining {
                group: &state.group,
            }
            .emit();
            consumer.unsubscribe();
            if let Err(e) = consumer.subscribe(&topics) {
                events::GroupError {
                    group: &state.group,
                    error: &e,
                }
                .emit();
            }
        }
        if let Some(Err(e)) = consumer.poll(POLL) {
            events::GroupError {
                group: &state.group,
                error: &e,
            }
            .emit();
        }
        if refreshed.elapsed() >= REFRESH {
            state.refresh(&consumer);
            refreshed = Instant::now();
        }
        if consumer
            .context()
            .check_members
            .swap(false, Ordering::Relaxed)
        {
            let me = identity(&consumer).map(|(_, m)| m);
            match Subscriptions::fetch(&consumer, &state.group, timeout) {
                Ok(subs) => {
                    let mismatch = subs.mismatch(&state.group, me.as_deref(), &ours);
                    state
                        .mismatched
                        .store(mismatch.is_some(), Ordering::Relaxed);
                    events::GroupMembersChecked {
                        group: &state.group,
                        mismatch: mismatch.as_ref(),
                    }
                    .emit();
                }
                Err(e) => events::GroupError {
                    group: &state.group,
                    error: &e,
                }
                .emit(),
            }
        }
    }
    // Dropping the consumer closes it: it leaves the group, and the revocation it runs
    // finds the supervisor gone.
    drop(consumer);
}
