//! Reorganisations: finding the common ancestor in the window, fetching the replacement
//! blocks, and handing over a retraction followed by the new canonical blocks.

use std::collections::HashSet;

use crate::events;
use crate::rpc::hex::B256;
use crate::window::LogId;

use super::block::Inconsistent;
use super::block::check_link;
use super::error::FollowError;
use super::fetch::Fetcher;
use super::update::{Retraction, Update};
use super::{Follower, Walk};

impl Follower {
    /// Checks that the window's tip is still canonical on the node (after a restart or a
    /// reconnect); retracts if the node has another block at its height.
    pub(super) async fn verify_tip(&mut self, fetcher: &Fetcher<'_>) -> Result<(), FollowError> {
        let Some((number, hash)) = self.window.tip() else {
            return Ok(());
        };
        match fetcher.rpc.header_by_number(number).await? {
            Some(h) if h.hash == hash => Ok(()),
            // The node has not reached the tip (a provider's node still syncing, or behind
            // a load balancer): no evidence of a reorganisation. The walk waits for it, and
            // the next block's parent hash settles it.
            None => Ok(()),
            Some(_) => self.retract(fetcher).await,
        }
    }

    /// Walks the window back to the newest block the node still has, fetches the blocks
    /// that replace the orphaned ones, and hands over the retraction and then those blocks.
    /// Nothing changes unless all of that succeeded; a reorg deeper than the window stops
    /// the chain.
    pub(super) async fn retract(&mut self, fetcher: &Fetcher<'_>) -> Result<(), FollowError> {
        let Some((tip, _)) = self.window.tip() else {
            return Ok(());
        };
        let mut ancestor = None;
        for b in self.window.blocks().rev() {
            match fetcher.rpc.header_by_number(b.number).await? {
                Some(h) if h.hash == b.hash => {
                    ancestor = Some((b.number, b.hash));
                    break;
                }
                _ => {}
            }
        }
        let Some(ancestor) = ancestor else {
            return Err(FollowError::ReorgTooDeep {
                tip,
                window: self.window.len(),
            });
        };
        let mut replacements = Vec::new();
        let mut parent = ancestor;
        for number in ancestor.0 + 1..=tip {
            let Some(block) = fetcher.block(number).await? else {
                break; // the new chain is shorter than the old one (so far)
            };
            check_link(Some(parent), &block.header)?;
            parent = (number, block.header.hash);
            replacements.push(block);
        }
        let republished: HashSet<LogId> = replacements
            .iter()
            .flat_map(|b| b.window_block().logs)
            .collect();
        let kept_transactions: Vec<B256> = replacements
            .iter()
            .filter_map(|b| b.data.as_ref())
            .flat_map(|d| d.transactions.iter().map(|(t, _)| t.hash))
            .collect();
        let reached = parent.0;
        let orphaned = self.window.truncate_above(ancestor.0);
        let tombstones: Vec<LogId> = orphaned
            .iter()
            .flat_map(|b| b.logs.iter().copied())
            .filter(|id| !republished.contains(id))
            .collect();
        events::ChainReorganised {
            chain: &self.cfg.name,
            depth: tip - ancestor.0,
            ancestor: ancestor.0,
            retracted: tombstones.len(),
        }
        .emit();
        self.send(Update::Retract(Retraction {
            ancestor: ancestor.0,
            orphaned,
            tombstones,
            reached,
            kept_transactions,
        }))
        .await?;
        for block in replacements {
            let number = block.header.number;
            if self.hand_over(block).await? == Walk::Forked {
                // Linked above; the node changed branch again meanwhile. Asked again.
                return Err(Inconsistent::new(
                    "link",
                    format!("replacement block {number} no longer extends the ancestor"),
                )
                .into());
            }
        }
        Ok(())
    }
}
