//! Blocks found on the topic outside the checkpoint's window at start-up (published, but
//! the crash came before the checkpoint said so). Each is settled against the node before
//! the walk reaches its number: one the node no longer has as canonical is retracted with
//! tombstones, like a reorganisation; a canonical one is left to the walk, whose replay of
//! it the dedup cache skips record by record.

use crate::events;
use crate::window::LogId;

use super::Follower;
use super::error::FollowError;
use super::fetch::Fetcher;
use super::update::{Retraction, Update};

impl Follower {
    /// Settles every unconfirmed block whose number the node has reached. Returns the
    /// lowest number still unsettled: the walk must stop below it.
    pub(super) async fn settle_published(
        &mut self,
        fetcher: &Fetcher<'_>,
    ) -> Result<Option<u64>, FollowError> {
        let (Some(from), Some(to)) = (
            self.unconfirmed.first().map(|b| b.number),
            self.unconfirmed.iter().map(|b| b.number).max(),
        ) else {
            return Ok(None);
        };
        let headers = fetcher.rpc.headers_by_number(from, to).await?;
        let mut orphaned = Vec::new();
        let mut canonical = 0;
        let mut unsettled = Vec::new();
        for b in std::mem::take(&mut self.unconfirmed) {
            match headers
                .get((b.number - from) as usize)
                .and_then(Option::as_ref)
            {
                None => unsettled.push(b),
                Some(h) if h.hash == b.hash => canonical += 1,
                Some(_) => orphaned.push(b),
            }
        }
        let limit = unsettled.iter().map(|b| b.number).min();
        let tombstones: Vec<LogId> = orphaned
            .iter()
            .flat_map(|b| b.logs.iter().copied())
            .collect();
        if canonical + orphaned.len() > 0 {
            events::PublishedBlocksSettled {
                chain: &self.cfg.name,
                canonical,
                orphaned: orphaned.len(),
                retracted: tombstones.len(),
                unsettled: unsettled.len(),
            }
            .emit();
        }
        if !orphaned.is_empty() {
            let ancestor = self.window.tip().map_or(u64::MAX, |t| t.0);
            // The node has a block at each orphaned height, which the walk publishes.
            let reached = orphaned.iter().map(|b| b.number).max().unwrap_or(ancestor);
            let sent = self
                .send(Update::Retract(Retraction {
                    ancestor,
                    orphaned,
                    tombstones,
                    reached,
                    kept_transactions: Vec::new(),
                }))
                .await;
            if let Err(e) = sent {
                self.unconfirmed = unsettled;
                return Err(e);
            }
        }
        self.unconfirmed = unsettled;
        Ok(limit)
    }
}
