//! Events of group mode (`[group]`): joins, assignments, hand-overs, losses, and members
//! that disagree. Each updates the group metrics and `/status`.

use super::{KeyValue, chain_label, error, info, status, warn};
use crate::group::Mismatch;
use crate::telemetry::metrics::group_metrics;

fn group_label(group: &str) -> [KeyValue; 1] {
    [KeyValue::new("group", group.to_owned())]
}

/// A rebalance completed: this member's generation and the chains added to it.
pub struct GroupJoined<'a> {
    /// `group.id`.
    pub group: &'a str,
    /// The generation joined.
    pub generation: i32,
    /// Chain ids newly assigned.
    pub assigned: &'a [u64],
    /// Chains owned now.
    pub owned: usize,
    /// Set when this member had lost its chains (session expired): since when, in ms.
    pub rejoined_after_ms: Option<u64>,
}
impl GroupJoined<'_> {
    /// Writes the event.
    pub fn emit(self) {
        match self.rejoined_after_ms {
            Some(ms) => warn!(
                group = self.group,
                generation = self.generation,
                assigned = ?self.assigned,
                owned = self.owned,
                lost_ms = ms,
                "rejoined the group after losing its chains"
            ),
            None => info!(
                group = self.group,
                generation = self.generation,
                assigned = ?self.assigned,
                owned = self.owned,
                "group rebalanced"
            ),
        }
        let m = group_metrics();
        let l = group_label(self.group);
        m.generation.record(self.generation.max(0) as u64, &l);
        m.chains_owned.record(self.owned as u64, &l);
        status::update_group(|g| {
            g.id = self.group.to_owned();
            g.generation = self.generation;
        });
    }
}

/// The group revoked chains from this member (or this member lost them).
pub struct ChainsRevoked<'a> {
    /// `group.id`.
    pub group: &'a str,
    /// Chain ids.
    pub chains: &'a [u64],
    /// The session had expired: cancelled without committing.
    pub lost: bool,
    /// The chains stopped before the wait's bound.
    pub stopped: bool,
    /// Time the rebalance callback waited for them.
    pub waited_ms: u64,
}
impl ChainsRevoked<'_> {
    /// Writes the event.
    pub fn emit(self) {
        if self.lost {
            warn!(
                group = self.group,
                chains = ?self.chains,
                waited_ms = self.waited_ms,
                "chains lost: the group session expired; cancelled without committing"
            );
        } else if self.stopped {
            info!(
                group = self.group,
                chains = ?self.chains,
                waited_ms = self.waited_ms,
                "chains revoked: committed and handed over"
            );
        } else {
            error!(
                group = self.group,
                chains = ?self.chains,
                waited_ms = self.waited_ms,
                "chains revoked before they stopped (shutdown_timeout_ms passed); their next owner fences them"
            );
        }
    }
}

/// A chain starts on this instance because the group assigned it.
pub struct ChainAssigned<'a> {
    /// Chain name.
    pub chain: &'a str,
    /// `group.id`.
    pub group: &'a str,
    /// Chains owned now.
    pub owned: &'a [String],
}
impl ChainAssigned<'_> {
    /// Writes the event.
    pub fn emit(self) {
        info!(chain = self.chain, group = self.group, "chain assigned");
        owned(self.group, self.owned);
    }
}

/// A chain assigned here committed its first transaction: the hand-over is over.
pub struct ChainTakenOver<'a> {
    /// Chain name.
    pub chain: &'a str,
    /// `group.id`.
    pub group: &'a str,
    /// This member's generation.
    pub generation: i32,
    /// From the assignment to the first commit.
    pub after_assignment_ms: u64,
}
impl ChainTakenOver<'_> {
    /// Writes the event.
    pub fn emit(self) {
        info!(
            chain = self.chain,
            group = self.group,
            generation = self.generation,
            handover_ms = self.after_assignment_ms,
            "chain taken over: first transaction committed"
        );
        let m = group_metrics();
        let l = chain_label(self.chain);
        m.handovers.add(1, &l);
        m.handover_duration
            .record(self.after_assignment_ms as f64 / 1000.0, &l);
    }
}

/// A chain stopped on this instance because the group moved it (or this instance stops).
pub struct ChainReleased<'a> {
    /// Chain name.
    pub chain: &'a str,
    /// `group.id`.
    pub group: &'a str,
    /// `revoked`, `lost` or `shutdown`.
    pub kind: &'static str,
    /// Last committed block.
    pub delivered: Option<u64>,
    /// Why its last transaction was aborted rather than committed, if it was (the next
    /// owner resumes from the committed checkpoint).
    pub error: Option<&'a dyn std::fmt::Display>,
    /// From the revocation to the chain's stop.
    pub took_ms: u64,
    /// Chains owned now.
    pub owned: &'a [String],
}
impl ChainReleased<'_> {
    /// Writes the event.
    pub fn emit(self) {
        match self.error {
            None => info!(
                chain = self.chain,
                group = self.group,
                kind = self.kind,
                delivered = ?self.delivered,
                took_ms = self.took_ms,
                "chain released"
            ),
            Some(e) => info!(
                chain = self.chain,
                group = self.group,
                kind = self.kind,
                took_ms = self.took_ms,
                "chain released; its last transaction was aborted: {e}"
            ),
        }
        group_metrics().revocations.add(
            1,
            &[
                KeyValue::new("chain", self.chain.to_owned()),
                KeyValue::new("kind", self.kind),
            ],
        );
        status::remove(self.chain);
        owned(self.group, self.owned);
    }
}

/// A chain's producer was fenced or its transaction refused by the group: another member
/// owns it now. The chain is dropped; the process goes on.
pub struct ChainLost<'a> {
    /// Chain name.
    pub chain: &'a str,
    /// `group.id`.
    pub group: &'a str,
    /// Why.
    pub error: &'a dyn std::fmt::Display,
    /// Chains owned now.
    pub owned: &'a [String],
}
impl ChainLost<'_> {
    /// Writes the event.
    pub fn emit(self) {
        warn!(
            chain = self.chain,
            group = self.group,
            "chain lost to another member: {}",
            self.error
        );
        group_metrics().revocations.add(
            1,
            &[
                KeyValue::new("chain", self.chain.to_owned()),
                KeyValue::new("kind", "lost"),
            ],
        );
        status::remove(self.chain);
        owned(self.group, self.owned);
    }
}

fn owned(group: &str, chains: &[String]) {
    group_metrics()
        .chains_owned
        .record(chains.len() as u64, &group_label(group));
    status::update_group(|g| {
        g.id = group.to_owned();
        g.owned = chains.to_vec();
    });
}

/// The membership consumer leaves and joins again (a chain was lost while assigned here).
pub struct GroupRejoining<'a> {
    /// `group.id`.
    pub group: &'a str,
}
impl GroupRejoining<'_> {
    /// Writes the event.
    pub fn emit(self) {
        warn!(group = self.group, "leaving and rejoining the group");
    }
}

/// The membership consumer reported an error (it retries on its own).
pub struct GroupError<'a> {
    /// `group.id`.
    pub group: &'a str,
    /// The error.
    pub error: &'a dyn std::fmt::Display,
}
impl GroupError<'_> {
    /// Writes the event.
    pub fn emit(self) {
        warn!(group = self.group, "group membership: {}", self.error);
        super::error_count(None, "group", "membership");
    }
}

/// The members' subscriptions were compared after a rebalance.
pub struct GroupMembersChecked<'a> {
    /// `group.id`.
    pub group: &'a str,
    /// A member that lists other chains, if any.
    pub mismatch: Option<&'a Mismatch>,
}
impl GroupMembersChecked<'_> {
    /// Writes the event.
    pub fn emit(self) {
        if let Some(m) = self.mismatch {
            error!(group = self.group, "group members disagree: {m}");
        }
        group_metrics()
            .mismatch
            .record(u64::from(self.mismatch.is_some()), &group_label(self.group));
        status::update_group(|g| g.mismatch = self.mismatch.is_some());
    }
}

/// The membership thread panicked.
pub struct GroupThreadPanicked<'a> {
    /// `group.id`.
    pub group: &'a str,
}
impl GroupThreadPanicked<'_> {
    /// Writes the event.
    pub fn emit(self) {
        error!(group = self.group, "the group membership thread panicked");
    }
}
