//! Per-chain state for `/status` and `/readyz`, updated by the events module.

use std::collections::BTreeMap;
use std::sync::{LazyLock, RwLock};

use serde::Serialize;

/// What a chain is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ChainState {
    /// Connecting (or waiting to reconnect).
    #[default]
    Connecting,
    /// Connected and following.
    Following,
    /// The node's circuit breaker is open.
    BreakerOpen,
    /// Stopped (shutdown or a fatal error).
    Stopped,
}

/// Whether a chain is catching up or following its head. Independent of [`ChainState`]: a
/// chain catching up is `following` its node all the same, and keeps its phase across a
/// reconnect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// More than `live_threshold_blocks` behind its head: ranged catch-up, with a status
    /// line every `status_interval_ms`.
    CatchingUp,
    /// At its head, or close enough to fetch block by block.
    Live,
}

/// One chain's view.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChainStatus {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// State.
    pub state: ChainState,
    /// Index in the chain's `urls` of the endpoint in use (never its URL).
    pub endpoint: Option<usize>,
    /// The node's head (as followed: tag, less confirmations).
    pub head: Option<u64>,
    /// Last fully acknowledged block.
    pub delivered: Option<u64>,
    /// `head - delivered`.
    pub lag_blocks: Option<u64>,
    /// Now minus the last delivered block's timestamp, when known.
    pub lag_seconds: Option<f64>,
    /// `catching_up` or `live`; `None` until the follower first compared its progress with
    /// the head.
    pub phase: Option<Phase>,
    /// While catching up, the estimated seconds to reach the head at the last interval's
    /// block rate (`None` before the first status line, or when no block was handed over
    /// in the last interval); 0 once live.
    pub eta_s: Option<f64>,
    /// Reconnects after a failure.
    pub reconnects: u64,
    /// Reorganisations retracted.
    pub reorgs: u64,
    /// While the chain's records have waited longer than `kafka.stall_warning_ms` for the
    /// brokers' acknowledgement: since when (Unix time, ms) none came. `None` otherwise.
    pub stalled_since_ms: Option<u64>,
    /// How the head is learned: `subscribed` (`newHeads`) or `polled`.
    pub heads: Option<&'static str>,
    /// Requests per JSON-RPC batch in use over HTTP (1: no batching).
    pub rpc_batch_size: Option<usize>,
    /// Where each block's logs are proven complete from: `block_receipts`,
    /// `transaction_receipts`, or `none` (`proof = "none"`).
    pub completeness: Option<&'static str>,
    /// The proof in force (`chains[].proof`): `receipts_root` (receipts, header hash and
    /// receipts root), `receipts+header_hash`, `receipts+receipts_root`, `receipts`, `none`,
    /// or `auto (deciding)` until `auto` settled on the chain's first blocks.
    pub proof: Option<&'static str>,
    /// While the chain has delivered no block for `health.stall_after_ms` with its node's
    /// head past its last delivered block: since when, the block it waits on, and why.
    pub stalled: Option<Stall>,
    /// Why the node's last answer was refused or its last call failed, since the last
    /// delivered block (the reason a stall names).
    #[serde(skip)]
    pub last_rejection: Option<String>,
    /// Since when (Unix ms) the head has been past the last delivered block without a
    /// delivery; `None` while the chain is at its head.
    #[serde(skip)]
    pub waiting_since_ms: Option<u64>,
    /// The next block the follower hands over, as of its last look at the head.
    #[serde(skip)]
    pub next_block: Option<u64>,
    /// The last refusal written to the log, when, and how many identical ones were not
    /// written since (see [`RepeatedLine`]).
    #[serde(skip)]
    pub rejection_line: Option<RepeatedLine>,
}

/// A chain stuck on one block (see [`ChainStatus::stalled`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stall {
    /// When the chain last delivered a block, or started waiting for one (Unix ms).
    pub since_ms: u64,
    /// The block it waits on.
    pub block: u64,
    /// The last rejection's reason (or what else holds the chain).
    pub reason: String,
}

/// A log line repeated identically is written once a minute at most.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepeatedLine {
    /// The line's text.
    pub text: String,
    /// When it was last written (Unix ms).
    pub written_ms: u64,
    /// Identical lines not written since.
    pub suppressed: u64,
}

/// How long an identical line stays unwritten.
pub const REPEAT_EVERY_MS: u64 = 60_000;

impl RepeatedLine {
    /// Whether `text` is written now (`Some(n)`: with `n` identical lines not written since
    /// the last), updating `line`.
    pub fn admit(line: &mut Option<RepeatedLine>, text: &str, now_ms: u64) -> Option<u64> {
        match line {
            Some(l) if l.text == text && now_ms.saturating_sub(l.written_ms) < REPEAT_EVERY_MS => {
                l.suppressed += 1;
                None
            }
            _ => {
                let suppressed = match line.take() {
                    Some(l) if l.text == text => l.suppressed,
                    _ => 0,
                };
                *line = Some(RepeatedLine {
                    text: text.to_owned(),
                    written_ms: now_ms,
                    suppressed: 0,
                });
                Some(suppressed)
            }
        }
    }
}

impl ChainStatus {
    /// The head moved to `head`, or a block was delivered: keeps the clock of
    /// [`Self::waiting_since_ms`] (restarted by a delivery). Returns the stall this ends,
    /// if any.
    pub fn progressed(&mut self, now_ms: u64, delivered_now: bool) -> Option<Stall> {
        let behind = match (self.head, self.delivered) {
            (Some(h), Some(d)) => h > d,
            (Some(_), None) => true,
            (None, _) => false,
        };
        self.waiting_since_ms = match (behind, self.waiting_since_ms) {
            (false, _) => None,
            (true, Some(since)) if !delivered_now => Some(since),
            (true, _) => Some(now_ms),
        };
        if delivered_now {
            self.last_rejection = None;
        }
        match delivered_now || self.waiting_since_ms.is_none() {
            true => self.stalled.take(),
            false => None,
        }
    }

    /// Whether the chain is stalled at `now_ms` after `after_ms` without a delivery while
    /// behind its head: the stall that begins now, if it does.
    pub fn stall_begins(&self, now_ms: u64, after_ms: u64) -> Option<Stall> {
        let since = self.waiting_since_ms?;
        if self.stalled.is_some() || now_ms.saturating_sub(since) < after_ms {
            return None;
        }
        let reason = match (&self.last_rejection, self.stalled_since_ms) {
            (Some(r), _) => r.clone(),
            (None, Some(_)) => "the brokers do not acknowledge its records".to_owned(),
            (None, None) => "no answer of the node has completed the block yet".to_owned(),
        };
        Some(Stall {
            since_ms: since,
            block: self
                .delivered
                .map(|d| d + 1)
                .or(self.next_block)
                .unwrap_or_default(),
            reason,
        })
    }
}

/// Group mode's view (`[group]`), for `/status`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GroupStatus {
    /// `group.id`.
    pub id: String,
    /// The group generation this member joined last (-1 before it joined).
    pub generation: i32,
    /// The chains this instance owns, by name.
    pub owned: Vec<String>,
    /// Whether a live member lists other chains (see the `group members disagree` line).
    pub mismatch: bool,
}

static GROUP: LazyLock<RwLock<Option<GroupStatus>>> = LazyLock::new(|| RwLock::new(None));

/// Applies `f` to the group's status (creating it).
pub fn update_group(f: impl FnOnce(&mut GroupStatus)) {
    let mut g = GROUP.write().unwrap_or_else(|e| e.into_inner());
    f(g.get_or_insert_with(GroupStatus::default));
}

/// The group's status, in group mode.
pub fn group() -> Option<GroupStatus> {
    GROUP.read().unwrap_or_else(|e| e.into_inner()).clone()
}

static CHAINS: LazyLock<RwLock<BTreeMap<String, ChainStatus>>> =
    LazyLock::new(|| RwLock::new(BTreeMap::new()));

/// Applies `f` to `chain`'s status (creating it), and returns what it returns.
pub fn update<T>(chain: &str, f: impl FnOnce(&mut ChainStatus) -> T) -> T {
    let mut map = CHAINS.write().unwrap_or_else(|e| e.into_inner());
    f(map.entry(chain.to_owned()).or_default())
}

/// Forgets `chain` (group mode: it moved to another member).
pub fn remove(chain: &str) {
    CHAINS
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .remove(chain);
}

/// A copy of every chain's status.
pub fn snapshot() -> BTreeMap<String, ChainStatus> {
    CHAINS.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Ready: every chain is following, not stalled on the brokers, and within
/// `max_lag_blocks` of its head (in group mode: every chain this member owns; one that owns
/// none is ready once it joined). Returns the chains that are not, with why.
pub fn not_ready(max_lag_blocks: u64) -> Vec<String> {
    let chains = snapshot();
    if chains.is_empty() {
        // Group mode: a member the group gave no chain is a ready standby.
        if group().is_some_and(|g| g.generation >= 0) {
            return Vec::new();
        }
        return vec!["no chain started yet".into()];
    }
    chains
        .iter()
        .filter_map(|(name, s)| match (s.state, s.lag_blocks) {
            // A stall shows before the lag does: the head moves on, the delivered block
            // stays, and `max_lag_blocks` of a slow chain can take many minutes.
            (_, _) if s.stalled.is_some() => s
                .stalled
                .as_ref()
                .map(|st| format!("{name}: stalled at block {}: {}", st.block, st.reason)),
            (ChainState::Following, _) if s.stalled_since_ms.is_some() => Some(format!(
                "{name}: publishing stalled (the brokers do not acknowledge)"
            )),
            (ChainState::Following, Some(lag)) if lag <= max_lag_blocks => None,
            (ChainState::Following, Some(lag)) => Some(format!("{name}: {lag} blocks behind")),
            (ChainState::Following, None) => Some(format!("{name}: nothing delivered yet")),
            (state, _) => Some(format!("{name}: {state:?}")),
        })
        .collect()
}
