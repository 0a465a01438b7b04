//! The queue from a follower to its publisher, bounded twice: in updates (blocks or
//! retractions) and in bytes. A block of 10,000 large logs takes as much of the queue as
//! it weighs, so a backfill of heavy blocks cannot fill memory with 32 of them.
//!
//! The byte budget is a semaphore: the sender takes an update's weight in permits before
//! queueing it, and the receiver gives them back as it takes the update out. An update
//! heavier than the whole budget takes all of it, so it still passes, alone.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::update::Update;

/// The receiving end is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the publisher's queue is closed")]
pub struct Closed;

/// A new hand-over queue of at most `items` updates and `bytes` bytes (at least 1 each).
pub fn handover(items: usize, bytes: usize) -> (HandoverTx, HandoverRx) {
    let (tx, rx) = mpsc::channel(items.max(1));
    let max = u32::try_from(bytes.max(1)).unwrap_or(u32::MAX);
    let budget = Arc::new(Semaphore::new(max as usize));
    (HandoverTx { tx, budget, max }, HandoverRx { rx })
}

/// The follower's end.
#[derive(Clone)]
pub struct HandoverTx {
    tx: mpsc::Sender<(Update, OwnedSemaphorePermit)>,
    budget: Arc<Semaphore>,
    max: u32,
}

impl HandoverTx {
    /// Queues `update`, waiting for room in items and in bytes.
    pub async fn send(&self, update: Update) -> Result<(), Closed> {
        let weight = u32::try_from(Update::weight(&update))
            .unwrap_or(u32::MAX)
            .min(self.max);
        let permit = self
            .budget
            .clone()
            .acquire_many_owned(weight)
            .await
            .map_err(|_| Closed)?;
        self.tx.send((update, permit)).await.map_err(|_| Closed)
    }
}

/// The publisher's end.
pub struct HandoverRx {
    rx: mpsc::Receiver<(Update, OwnedSemaphorePermit)>,
}

impl HandoverRx {
    /// The next update; its bytes go back to the budget. `None` once the follower is gone
    /// and the queue is empty. Cancel-safe (it only awaits `mpsc::Receiver::recv`), so it
    /// can sit in a `select!`.
    pub async fn recv(&mut self) -> Option<Update> {
        self.rx.recv().await.map(|(update, _weight)| update)
    }

    /// The next update if one is queued now.
    pub fn try_recv(&mut self) -> Option<Update> {
        self.rx.try_recv().ok().map(|(update, _weight)| update)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::follower::Retraction;
    use crate::rpc::hex::B256;
    use crate::window::LogId;
    use std::time::Duration;

    fn retraction(tombstones: usize) -> Update {
        Update::Retract(Retraction {
            ancestor: 1,
            orphaned: Vec::new(),
            tombstones: (0..tombstones as u64)
                .map(|i| LogId {
                    tx: B256::new([1; 32]),
                    log_index: i,
                })
                .collect(),
            reached: 1,
            kept_transactions: Vec::new(),
        })
    }

    #[tokio::test]
    async fn bytes_bound_the_queue_and_come_back_on_receive() {
        // 100 tombstones weigh 4,801 bytes: two fit in 10,000, a third waits.
        let (tx, mut rx) = handover(32, 10_000);
        tx.send(retraction(100)).await.expect("first");
        tx.send(retraction(100)).await.expect("second");
        let third = tokio::time::timeout(Duration::from_millis(50), tx.send(retraction(100)));
        assert!(third.await.is_err(), "a third must wait for room in bytes");
        assert!(rx.recv().await.is_some());
        tokio::time::timeout(Duration::from_secs(5), tx.send(retraction(100)))
            .await
            .expect("room came back on receive")
            .expect("open");
    }

    #[tokio::test]
    async fn an_update_heavier_than_the_budget_passes_alone() {
        let (tx, mut rx) = handover(32, 100);
        tx.send(retraction(1_000))
            .await
            .expect("takes the whole budget");
        assert_eq!(rx.recv().await.map(|u| Update::weight(&u)), Some(48_001));
        drop(rx);
        assert_eq!(tx.send(retraction(1)).await, Err(Closed));
    }
}
