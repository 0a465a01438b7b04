//! What group mode adds to each transaction: the chain's membership partition with this
//! member's group metadata (`send_offsets_to_transaction`, KIP-447). The coordinator checks
//! the metadata's generation and member id at the commit: a member that was paused past its
//! session and lost the chain cannot commit, even before the new owner's transactional id
//! fenced its producer. A refused transaction is aborted, never committed.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use super::GroupState;
use super::membership_topic;
use crate::events;

/// One chain's ownership, as its publisher sees it.
#[derive(Clone)]
pub struct Fence {
    state: Arc<GroupState>,
    topic: String,
    chain: String,
    /// Cancelled when the assignment is lost: no commit after that.
    lost: CancellationToken,
    /// When the assignment arrived; taken at the first commit (shared by the chain's
    /// attempts).
    assigned_at: Arc<Mutex<Option<Instant>>>,
}

impl Fence {
    /// The fence of chain `chain_id` (named `chain`), assigned at `assigned_at` (taken by
    /// the first commit).
    pub fn new(
        state: Arc<GroupState>,
        chain_id: u64,
        chain: &str,
        lost: CancellationToken,
        assigned_at: Arc<Mutex<Option<Instant>>>,
    ) -> Self {
        Self {
            topic: membership_topic(&state.group, chain_id),
            state,
            chain: chain.to_owned(),
            lost,
            assigned_at,
        }
    }

    /// The offsets and metadata to add to the open transaction, or why it must not commit.
    pub fn offsets(&self) -> Result<(TopicPartitionList, Arc<ConsumerGroupMetadata>), String> {
        if self.lost.is_cancelled() {
            return Err(format!(
                "chain {} was lost to another member of group {}",
                self.chain, self.state.group
            ));
        }
        let Some(metadata) = self.state.metadata() else {
            return Err(format!(
                "not a member of group {} (no group metadata)",
                self.state.group
            ));
        };
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&self.topic, 0, Offset::Offset(0))
            .map_err(|e| e.to_string())?;
        Ok((tpl, metadata))
    }

    /// A transaction committed: the first one ends the hand-over.
    pub fn committed(&mut self) {
        let first = self
            .assigned_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(at) = first {
            events::ChainTakenOver {
                chain: &self.chain,
                group: &self.state.group,
                generation: self.state.generation(),
                after_assignment_ms: at.elapsed().as_millis() as u64,
            }
            .emit();
        }
    }
}
