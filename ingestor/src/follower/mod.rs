//! The chain follower: one per chain. It connects, checks the chain id, subscribes to
//! `newHeads` (as a wake-up only), and walks from the last handed-over block to the head,
//! checking every `parentHash`. Far behind, it catches up with ranged `eth_getLogs`
//! (bounded range, bounded requests in flight); near the head, block by block with
//! `eth_getLogs {blockHash}`. Blocks go to the sink through a bounded channel, strictly in
//! order: a full channel pauses the follower.
//!
//! It keeps a reorg window of the blocks it handed over. A block whose `parentHash` does
//! not match the window's tip starts a retraction (see `reorg`). With `confirmations` or a
//! `safe`/`finalized` finality, the head it walks to is held back accordingly.

mod backoff;
mod block;
mod breaker;
mod error;
mod fetch;
mod reorg;
mod update;

use std::convert::Infallible;
use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use tokio::sync::mpsc;
use tokio::time::{MissedTickBehavior, interval};
use tokio_util::sync::CancellationToken;

pub use backoff::{delay as backoff_delay, jittered as backoff_jittered};
pub use block::{BlockLogs, Inconsistent};
pub use breaker::{BreakerState, Reconnect};
pub use error::FollowError;
pub use update::{Retraction, Update};

use crate::config::{ChainConfig, Finality, StartBlock};
use crate::events;
use crate::rpc::redact::redact_url;
use crate::rpc::{RpcClient, RpcError, WsOptions};
use crate::window::Window;
use fetch::Fetcher;

/// Follows one chain until shutdown or a fatal error.
pub struct Follower {
    cfg: Arc<ChainConfig>,
    sink: mpsc::Sender<Update>,
    /// The blocks handed to the sink, newest last (restored from the checkpoint).
    window: Window,
    /// Where to start when the window is empty; `Latest` is resolved on first connect.
    start: StartBlock,
    shutdown: CancellationToken,
    reconnect: Reconnect,
}

impl Follower {
    /// A follower that continues after `window`'s tip, or starts at the configured
    /// `start_block` when the window is empty.
    pub fn new(
        cfg: Arc<ChainConfig>,
        window: Window,
        sink: mpsc::Sender<Update>,
        shutdown: CancellationToken,
    ) -> Self {
        let start = cfg.start_block;
        let reconnect = Reconnect::new(
            ChainConfig::ms(cfg.reconnect_backoff_initial_ms),
            ChainConfig::ms(cfg.reconnect_backoff_max_ms),
            cfg.breaker_failure_threshold,
            ChainConfig::ms(cfg.breaker_open_ms),
        );
        Self {
            cfg,
            sink,
            window,
            start,
            shutdown,
            reconnect,
        }
    }

    /// Runs until shutdown (`Ok`) or an error retrying cannot fix.
    pub async fn run(mut self) -> Result<(), FollowError> {
        loop {
            let shutdown = self.shutdown.clone();
            let Err(err) = tokio::select! {
                r = self.session() => r,
                _ = shutdown.cancelled() => return Ok(()),
            };
            if err.is_fatal() {
                return Err(err);
            }
            let before = self.reconnect.state();
            let wait = self.reconnect.failed();
            let after = self.reconnect.state();
            if before != after {
                events::BreakerChanged {
                    chain: &self.cfg.name,
                    state: after,
                    retry_in_ms: wait.as_millis() as u64,
                }
                .emit();
            }
            match &err {
                FollowError::Inconsistent(i) => events::InconsistentAnswer {
                    chain: &self.cfg.name,
                    what: &i.0,
                }
                .emit(),
                other => events::NodeCallFailed {
                    chain: &self.cfg.name,
                    error_type: other.error_type(),
                    error: other,
                    retry_in_ms: wait.as_millis() as u64,
                }
                .emit(),
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.cancelled() => return Ok(()),
            }
        }
    }

    fn ws_options(&self) -> WsOptions {
        WsOptions {
            connect_timeout: ChainConfig::ms(self.cfg.connect_timeout_ms),
            request_timeout: ChainConfig::ms(self.cfg.request_timeout_ms),
            keepalive_interval: ChainConfig::ms(self.cfg.keepalive_interval_ms),
            max_message_bytes: self.cfg.max_message_bytes,
        }
    }

    /// One connection's life. It only ends with the error that ended it: a retryable one
    /// (reconnect) or a fatal one (including the sink having closed).
    async fn session(&mut self) -> Result<Infallible, FollowError> {
        let (rpc, mut notes) = RpcClient::connect(&self.cfg.ws_url, &self.ws_options()).await?;
        let actual = rpc.chain_id().await?;
        if actual != self.cfg.chain_id {
            return Err(FollowError::ChainIdMismatch {
                expected: self.cfg.chain_id,
                actual,
                url: redact_url(&self.cfg.ws_url),
            });
        }
        rpc.subscribe_new_heads().await?;
        let head = rpc.block_number().await?;
        events::ChainConnected {
            chain: &self.cfg.name,
            url: &redact_url(&self.cfg.ws_url),
            head,
        }
        .emit();
        if self.reconnect.state() != BreakerState::Closed {
            events::BreakerChanged {
                chain: &self.cfg.name,
                state: BreakerState::Closed,
                retry_in_ms: 0,
            }
            .emit();
        }
        self.reconnect.succeeded();
        if self.start == StartBlock::Latest {
            self.start = StartBlock::Number(self.target_head(&rpc).await?);
        }
        let cfg = self.cfg.clone();
        let fetcher = Fetcher::new(
            &rpc,
            &cfg.name,
            cfg.backfill_range_blocks,
            cfg.backfill_target_logs,
        );
        self.verify_tip(&fetcher).await?;
        let mut poll = interval(ChainConfig::ms(self.cfg.head_poll_interval_ms));
        poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let head = self.target_head(&rpc).await?;
            events::HeadSeen {
                chain: &self.cfg.name,
                head,
            }
            .emit();
            let next = self.next_block();
            if next <= head {
                let walked = if head - next + 1 > self.cfg.live_threshold_blocks {
                    self.catch_up(&fetcher, next, head).await
                } else {
                    self.step_to(&fetcher, next, head).await
                };
                match walked {
                    Err(FollowError::ParentMismatch { .. }) => self.retract(&fetcher).await?,
                    other => other?,
                }
                continue;
            }
            tokio::select! {
                note = notes.recv() => if note.is_none() {
                    return Err(RpcError::Disconnected("notification stream ended".into()).into());
                },
                _ = poll.tick() => {}
            }
        }
    }

    /// The highest block the follower may publish: the node's `latest`, `safe` or
    /// `finalized` block, less `confirmations`.
    async fn target_head(&self, rpc: &RpcClient) -> Result<u64, FollowError> {
        let head = match self.cfg.finality {
            Finality::Latest => rpc.block_number().await?,
            tag => match rpc.header_by_tag(tag.tag()).await? {
                Some(h) => h.number,
                None => return Ok(0),
            },
        };
        Ok(head.saturating_sub(self.cfg.confirmations))
    }

    fn next_block(&self) -> u64 {
        match (self.window.tip(), self.start) {
            (Some((n, _)), _) => n + 1,
            (None, StartBlock::Number(n)) => n,
            (None, StartBlock::Latest) => 0,
        }
    }

    /// Block by block from `from` to `head`.
    async fn step_to(
        &mut self,
        fetcher: &Fetcher<'_>,
        from: u64,
        head: u64,
    ) -> Result<(), FollowError> {
        for number in from..=head {
            let Some(block) = fetcher.block(number).await? else {
                return Ok(()); // not served yet: wait for the next wake-up
            };
            self.hand_over(block).await?;
        }
        Ok(())
    }

    /// Ranged catch-up from `from` to `head`, `backfill_concurrency` ranges in flight,
    /// handed over in order.
    async fn catch_up(
        &mut self,
        fetcher: &Fetcher<'_>,
        from: u64,
        head: u64,
    ) -> Result<(), FollowError> {
        let mut in_flight = FuturesOrdered::new();
        let mut next = from;
        loop {
            while in_flight.len() < self.cfg.backfill_concurrency && next <= head {
                let end = next.saturating_add(fetcher.span() - 1).min(head);
                in_flight.push_back(fetcher.range(next, end));
                next = end + 1;
            }
            let Some(blocks) = in_flight.next().await else {
                return Ok(());
            };
            let blocks = blocks?;
            let (last, logs) = (
                blocks.last().map(|b| b.header.number),
                blocks.iter().map(|b| b.logs.len()).sum(),
            );
            for block in blocks {
                self.hand_over(block).await?;
            }
            if let Some(block) = last {
                events::BackfillProgress {
                    chain: &self.cfg.name,
                    block,
                    head,
                    logs,
                }
                .emit();
            }
        }
    }

    /// Checks that `block` extends the window's tip, then gives it to the sink (waiting if
    /// full). A parent that does not match is a reorganisation: nothing is handed over.
    async fn hand_over(&mut self, block: BlockLogs) -> Result<(), FollowError> {
        if let Some((n, hash)) = self.window.tip() {
            if block.header.number != n + 1 {
                return Err(Inconsistent(format!(
                    "expected block {}, got {}",
                    n + 1,
                    block.header.number
                ))
                .into());
            }
            if block.header.parent_hash != hash {
                return Err(FollowError::ParentMismatch {
                    number: block.header.number,
                });
            }
        }
        let entry = block.window_block();
        self.send(Update::Block(block)).await?;
        self.window.push(entry);
        Ok(())
    }

    async fn send(&self, update: Update) -> Result<(), FollowError> {
        self.sink
            .send(update)
            .await
            .map_err(|_| FollowError::SinkClosed)
    }
}
