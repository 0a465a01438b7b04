//! Group mode: several instances share the configured chains through Kafka's consumer-group
//! protocol (`[group]`). No election or lease of our own: the broker's group coordinator
//! assigns the work and notices a dead member, and transactional ids fence a zombie.
//!
//! - [`membership`]: one consumer per instance, subscribed to one single-partition
//!   *membership topic* per chain (`ethhook.group.<group_id>.<chain_id>`). An assigned
//!   partition is a chain this instance owns. Rebalances are cooperative (incremental):
//!   only the chains that move stop.
//! - [`members`]: the members' subscriptions, read from the coordinator, to detect members
//!   whose configurations list other chains.
//! - [`fence`]: what each transaction adds in group mode: the membership partition's
//!   offset with the consumer's group metadata (KIP-447), so a member whose generation is
//!   stale cannot commit.
//!
//! # Invariants
//! - A chain is followed only while its membership partition is assigned here. A revoked
//!   chain is flushed and committed before the rebalance callback returns; a lost one
//!   (session expired) is cancelled without committing.
//! - Members that list different chains can never own one chain twice: each chain has its
//!   own topic, so its partition goes to one member of those subscribed to it.

pub mod fence;
pub mod identity;
pub mod members;
pub mod membership;

pub use fence::Fence;
pub use members::{Mismatch, Subscriptions};
pub use membership::{Command, GroupState, Membership};

/// The membership topic of `chain_id` in group `group_id`.
pub fn membership_topic(group_id: &str, chain_id: u64) -> String {
    format!("ethhook.group.{group_id}.{chain_id}")
}

/// The chain id of a membership topic of `group_id`, if it is one.
pub fn chain_of(group_id: &str, topic: &str) -> Option<u64> {
    topic
        .strip_prefix("ethhook.group.")?
        .strip_prefix(group_id)?
        .strip_prefix('.')?
        .parse()
        .ok()
}

/// Why group membership could not start or goes wrong.
#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    /// The consumer could not be created or subscribed.
    #[error("group {group}: consumer: {source}")]
    Client {
        /// The group id.
        group: String,
        /// librdkafka's error.
        source: rdkafka::error::KafkaError,
    },
    /// The coordinator could not be asked for the group's members.
    #[error("group {group}: cannot list the members: {source}")]
    Members {
        /// The group id.
        group: String,
        /// librdkafka's error.
        source: rdkafka::error::KafkaError,
    },
    /// The configuration has no `[group]`.
    #[error("group mode needs a [group] section")]
    NotConfigured,
    /// A live member lists other chains.
    #[error(transparent)]
    Mismatch(#[from] Mismatch),
    /// The consumer thread could not be started.
    #[error("group {group}: cannot start the membership thread: {source}")]
    Thread {
        /// The group id.
        group: String,
        /// The OS error.
        source: std::io::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership_topics_name_their_chain() {
        let t = membership_topic("prod", 8453);
        assert_eq!(t, "ethhook.group.prod.8453");
        assert_eq!(chain_of("prod", &t), Some(8453));
        assert_eq!(chain_of("pro", &t), None);
        assert_eq!(chain_of("prod", "evm.logs.1"), None);
    }
}
