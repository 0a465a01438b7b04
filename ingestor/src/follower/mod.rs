//! The chain follower: one per chain. It connects to the most preferred endpoint it may
//! use (see `endpoints`), checks the chain id, subscribes to `newHeads` over a WebSocket
//! (over HTTP it polls), and walks from the last handed-over block to the head, checking
//! every `parentHash`. Far behind, it catches up with ranged `eth_getLogs` (bounded range,
//! bounded requests in flight); near the head, block by block with `eth_getLogs
//! {blockHash}`. A notification's header is used as it comes: a live block costs one
//! round trip (its logs), or none when its bloom is zero. Blocks go to the sink through a
//! bounded channel, strictly in order: a full channel pauses the follower.
//!
//! While it catches up, a timer beside the walk writes a status line every
//! `status_interval_ms` (see `progress`); once it is live, none.
//!
//! It keeps a reorg window of the blocks it handed over. A block whose `parentHash` does
//! not match the window's tip starts a retraction (see `reorg`). With `confirmations` or a
//! `safe`/`finalized` finality, the head it walks to is held back accordingly.

mod block;
mod body;
mod breaker;
mod endpoints;
mod error;
mod fetch;
mod handover;
mod progress;
mod published;
mod reorg;
mod update;

use std::pin::Pin;
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use tokio::sync::mpsc;
use tokio::time::{MissedTickBehavior, interval};
use tokio_util::sync::CancellationToken;

pub use block::{BlockLogs, Inconsistent};
pub use body::{BlockData, Wants};
pub use breaker::{BreakerState, Reconnect};
pub use error::FollowError;
pub use handover::{Closed, HandoverRx, HandoverTx, handover};
pub use update::{Retraction, Update};

use crate::config::{ChainConfig, Finality, StartBlock};
use crate::events;
use crate::proof::{Level, Policy};
use crate::rpc::frame::Frame;
use crate::rpc::redact::redact_url;
use crate::rpc::tls::Trust;
use crate::rpc::types::Header;
use crate::rpc::{BatchLimit, RpcClient, RpcError, RpcOptions};
use crate::telemetry::rpc_metrics::RpcMetrics;
use crate::window::{Window, WindowBlock};
use endpoints::Endpoints;
use fetch::{Fetcher, Proof, RangeSize};
use progress::Progress;

/// How a walk towards the head ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Walk {
    /// Every block it could fetch extended the chain handed over.
    Extended,
    /// A block did not extend the last one handed over: a reorganisation to retract.
    Forked,
    /// The node did not serve a block its head named (not indexed yet, or gone with a
    /// reorganisation onto a shorter branch): the walk waits for the next wake-up.
    Unserved,
}

/// A background check that a preferred endpoint is back: its index and its outcome.
type Probe = Pin<Box<dyn Future<Output = (usize, Result<(), FollowError>)> + Send>>;

/// Follows one chain until shutdown or a fatal error.
pub struct Follower {
    cfg: Arc<ChainConfig>,
    sink: HandoverTx,
    /// The blocks handed to the sink, newest last (restored from the checkpoint).
    window: Window,
    /// Blocks found on the topic outside the window at start-up, not yet settled against
    /// the node (see `published`), oldest first.
    unconfirmed: Vec<WindowBlock>,
    /// Where to start when the window is empty; `Latest` is resolved on first connect.
    start: StartBlock,
    shutdown: CancellationToken,
    /// The chain's endpoints, each behind its own breaker.
    endpoints: Endpoints,
    urls: Vec<String>,
    /// The catch-up range size, kept across sessions.
    range: Arc<RangeSize>,
    /// Per endpoint: the JSON-RPC batch size it takes, learned from its refusals.
    batch_limits: Vec<Arc<BatchLimit>>,
    /// Per endpoint: how its blocks are proven complete, decided on its first connection.
    proofs: Vec<Option<Proof>>,
    /// The chain's proofs by the block hash (`proof`), shared by every endpoint: what
    /// `auto` settled on one holds for all.
    policy: Arc<Policy>,
    /// Catch-up progress, read by the status timer.
    progress: Arc<Mutex<Progress>>,
    /// Where every endpoint's calls are counted and timed.
    rpc_metrics: Arc<RpcMetrics>,
}

impl Follower {
    /// A follower that continues after `window`'s tip, or starts at the configured
    /// `start_block` when the window is empty; `unconfirmed` are blocks the topic holds
    /// outside the window (retracted first if the node orphaned them).
    pub fn new(
        cfg: Arc<ChainConfig>,
        window: Window,
        unconfirmed: Vec<WindowBlock>,
        sink: HandoverTx,
        shutdown: CancellationToken,
        rpc_metrics: Arc<RpcMetrics>,
    ) -> Self {
        let start = cfg.start_block;
        let urls = cfg.endpoints();
        let endpoints = Endpoints::new(urls.len(), || {
            Reconnect::new(
                ChainConfig::ms(cfg.reconnect_backoff_initial_ms),
                ChainConfig::ms(cfg.reconnect_backoff_max_ms),
                cfg.breaker_failure_threshold,
                ChainConfig::ms(cfg.breaker_open_ms),
            )
        });
        Self {
            range: Arc::new(RangeSize::new(cfg.backfill_range_blocks)),
            batch_limits: (0..urls.len())
                .map(|_| Arc::new(BatchLimit::new(cfg.rpc_batch_max)))
                .collect(),
            proofs: vec![None; urls.len()],
            policy: Arc::new(Policy::new(&cfg.name, cfg.proof_level())),
            progress: Arc::new(Mutex::new(Progress::new(tokio::time::Instant::now()))),
            cfg,
            sink,
            window,
            unconfirmed,
            start,
            shutdown,
            endpoints,
            urls,
            rpc_metrics,
        }
    }

    /// Runs until shutdown (`Ok`) or an error retrying cannot fix.
    pub async fn run(self) -> Result<(), FollowError> {
        let cfg = self.cfg.clone();
        let every = ChainConfig::ms(cfg.status_interval_ms);
        let status = progress::report_every(&cfg.name, self.progress.clone(), every);
        tokio::select! {
            ended = self.walk() => ended,
            never = status => match never {},
        }
    }

    /// Sessions on the chain's endpoints, one after the other, until shutdown or a fatal error.
    async fn walk(mut self) -> Result<(), FollowError> {
        let opts = self.rpc_options()?;
        self.rpc_metrics.register(&self.cfg.name, self.urls.len());
        self.policy.announce();
        loop {
            let shutdown = self.shutdown.clone();
            let (current, wait) = self.endpoints.next();
            if !wait.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.cancelled() => return Ok(()),
                }
            }
            let ended = tokio::select! {
                r = self.session(current, &opts) => r,
                _ = shutdown.cancelled() => return Ok(()),
            };
            let err = match ended {
                // A preferred endpoint answered a probe: use it.
                Ok(preferred) => {
                    self.endpoints.succeeded(preferred);
                    events::EndpointSwitch {
                        chain: &self.cfg.name,
                        from: current,
                        to: preferred,
                        why: "failback",
                    }
                    .emit();
                    continue;
                }
                Err(err) if err.is_fatal() => return Err(err),
                Err(err) => err,
            };
            self.failed(current, &err);
            // What happens next: another endpoint at once, or this one after its backoff.
            let (next, wait) = self.endpoints.next();
            if next != current {
                events::EndpointSwitch {
                    chain: &self.cfg.name,
                    from: current,
                    to: next,
                    why: "failover",
                }
                .emit();
            }
            match &err {
                FollowError::Inconsistent(i) => events::InconsistentAnswer {
                    chain: &self.cfg.name,
                    what: &i.what,
                    check: i.check,
                    retry_in_ms: wait.as_millis() as u64,
                    in_place: false,
                }
                .emit(),
                other => events::NodeCallFailed {
                    chain: &self.cfg.name,
                    endpoint: current,
                    next_endpoint: next,
                    error_type: other.error_type(),
                    error: other,
                    retry_in_ms: wait.as_millis() as u64,
                }
                .emit(),
            }
        }
    }

    /// Records a failure of endpoint `i`, reporting its breaker's changes.
    fn failed(&mut self, i: usize, err: &FollowError) {
        let before = self.endpoints.state(i);
        let wait = self.endpoints.failed(i);
        let after = self.endpoints.state(i);
        if before != after {
            events::BreakerChanged {
                chain: &self.cfg.name,
                endpoint: i,
                state: after,
                retry_in_ms: wait.as_millis() as u64,
                error: err,
            }
            .emit();
        }
    }

    fn rpc_options(&self) -> Result<RpcOptions, FollowError> {
        let tls = Trust::from_env(self.cfg.tls_ca_file.as_deref())
            .client_config()
            .map_err(FollowError::Tls)?;
        Ok(RpcOptions {
            chain: self.cfg.name.as_str().into(),
            endpoint: 0,
            metrics: self.rpc_metrics.clone(),
            connect_timeout: ChainConfig::ms(self.cfg.connect_timeout_ms),
            request_timeout: ChainConfig::ms(self.cfg.request_timeout_ms),
            keepalive_interval: ChainConfig::ms(self.cfg.keepalive_interval_ms),
            max_message_bytes: self.cfg.max_message_bytes,
            batch_max: self.cfg.rpc_batch_max,
            rate_limit_backoff: (
                ChainConfig::ms(self.cfg.reconnect_backoff_initial_ms),
                ChainConfig::ms(self.cfg.reconnect_backoff_max_ms),
            ),
            tls,
        })
    }

    /// Connects to endpoint `i` and checks that it serves the configured chain.
    async fn connect(
        cfg: &ChainConfig,
        url: &str,
        opts: &RpcOptions,
    ) -> Result<(RpcClient, mpsc::Receiver<Frame>), FollowError> {
        let (rpc, notes) = RpcClient::connect(url, opts).await?;
        let actual = rpc.chain_id().await?;
        if actual != cfg.chain_id {
            return Err(FollowError::ChainIdMismatch {
                expected: cfg.chain_id,
                actual,
                url: redact_url(url),
            });
        }
        Ok((rpc, notes))
    }

    /// One connection's life on endpoint `current`. It ends with the error that ended it (a
    /// retryable one: reconnect; a fatal one, including the sink having closed), or with
    /// `Ok(i)` when a more preferred endpoint `i` is back.
    async fn session(&mut self, current: usize, opts: &RpcOptions) -> Result<usize, FollowError> {
        let url = self.urls[current].clone();
        let opts = &opts.at_endpoint(current);
        let (rpc, mut notes) = Self::connect(&self.cfg, &url, opts).await?;
        let rpc = rpc.with_batch_limit(self.batch_limits[current].clone());
        self.learn_heads(&rpc).await?;
        let proof = self.learn_proof(&rpc, current).await?;
        let head = rpc.block_number().await?;
        events::ChainConnected {
            chain: &self.cfg.name,
            url: &redact_url(&url),
            endpoint: current,
            head,
        }
        .emit();
        if self.endpoints.state(current) != BreakerState::Closed {
            events::BreakerChanged {
                chain: &self.cfg.name,
                endpoint: current,
                state: BreakerState::Closed,
                retry_in_ms: 0,
                error: &"connected",
            }
            .emit();
        }
        self.endpoints.succeeded(current);
        if self.start == StartBlock::Latest {
            self.start = StartBlock::Number(self.target_head(&rpc).await?);
        }
        let (cfg, range) = (self.cfg.clone(), self.range.clone());
        let fetcher = Fetcher::new(
            &rpc,
            &cfg.name,
            &range,
            cfg.backfill_range_blocks,
            cfg.backfill_target_logs,
            proof,
            self.policy.clone(),
        )
        .wanting(Wants::of(&cfg));
        self.follow(&rpc, &fetcher, &mut notes, current, opts).await
    }

    /// The walk to the head, then waiting for the next one, until the session ends.
    async fn follow(
        &mut self,
        rpc: &RpcClient,
        fetcher: &Fetcher<'_>,
        notes: &mut mpsc::Receiver<Frame>,
        current: usize,
        opts: &RpcOptions,
    ) -> Result<usize, FollowError> {
        self.settle_published(fetcher).await?;
        self.verify_tip(fetcher).await?;
        let mut poll = interval(ChainConfig::ms(self.cfg.head_poll_interval_ms));
        poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut probe: Option<Probe> = None;
        // The newest header a `newHeads` notification carried: with `latest` finality it is
        // the head (no `eth_blockNumber`), and the next block's header (only its logs are
        // asked for). A poll tick and a reorganisation clear it: a notification may have
        // been dropped, and the node is asked again.
        let mut announced: Option<Header> = None;
        // Set when the tip may have been replaced at its own height (a poll tick, or a
        // notification of a height already handed over): the tip's hash is asked again,
        // since a head that did not grow shows no reorganisation by its number.
        let mut recheck_tip = false;
        loop {
            if std::mem::take(&mut recheck_tip) {
                self.verify_tip(fetcher).await?;
            }
            let limit = self.settle_published(fetcher).await?;
            let head = match &announced {
                Some(h) if self.cfg.finality == Finality::Latest => {
                    h.number.saturating_sub(self.cfg.confirmations)
                }
                _ => self.target_head(rpc).await?,
            };
            let head = limit.map_or(head, |l| head.min(l.saturating_sub(1)));
            let next = self.next_block();
            events::HeadSeen {
                chain: &self.cfg.name,
                head,
                next,
            }
            .emit();
            let catching_up = next <= head && head - next + 1 > self.cfg.live_threshold_blocks;
            if !catching_up {
                self.went_live(next);
            }
            if next <= head {
                let walked = if catching_up {
                    self.catching_up(next, head, current);
                    self.catch_up(fetcher, next, head).await
                } else {
                    self.step_to(fetcher, next, head, announced.as_ref()).await
                };
                match walked? {
                    Walk::Extended => continue,
                    Walk::Forked => {
                        announced = None;
                        self.retract(fetcher).await?;
                        continue;
                    }
                    // Asking again at once would spin on a header that may never be
                    // served: the head is asked again after the next wake-up, and the tip
                    // checked, which a shorter branch replaced.
                    Walk::Unserved => {
                        announced = None;
                        recheck_tip = true;
                    }
                }
            }
            let failback = self.endpoints.failback_at(current);
            tokio::select! {
                note = notes.recv() => match note {
                    None => return Err(RpcError::Disconnected("notification stream ended".into()).into()),
                    // A header that does not parse is a wake-up only.
                    Some(Frame::Notification { result, .. }) => {
                        announced = Header::parse(result.get()).ok();
                        let tip = self.window.tip().map(|(n, _)| n);
                        if let (Some(h), Some(tip)) = (&announced, tip) && h.number <= tip {
                            recheck_tip = true;
                            announced = None;
                        }
                    }
                    Some(Frame::Response { .. } | Frame::Unmatched(_)) => announced = None,
                },
                _ = poll.tick() => {
                    announced = None;
                    recheck_tip = true;
                }
                _ = tokio::time::sleep_until(failback.map_or_else(tokio::time::Instant::now, |f| f.1)),
                    if probe.is_none() && failback.is_some() => {
                    if let Some((i, _)) = failback {
                        let (cfg, url, opts) = (self.cfg.clone(), self.urls[i].clone(), opts.at_endpoint(i));
                        probe = Some(Box::pin(async move {
                            (i, Self::connect(&cfg, &url, &opts).await.map(|_| ()))
                        }));
                    }
                }
                (i, outcome) = async { match probe.as_mut() { Some(p) => p.await, None => std::future::pending().await } },
                    if probe.is_some() => {
                    probe = None;
                    match outcome {
                        Ok(()) => return Ok(i),
                        Err(e) if e.is_fatal() => return Err(e),
                        Err(e) => {
                            self.failed(i, &e);
                        }
                    }
                }
            }
        }
    }

    /// Subscribes to `newHeads` over a WebSocket. A node that refuses the method (a gateway,
    /// a plan without subscriptions) is polled every `head_poll_interval_ms` on this
    /// connection instead; the subscription is tried again on the next connection.
    async fn learn_heads(&self, rpc: &RpcClient) -> Result<(), FollowError> {
        let chain = &self.cfg.name;
        // Over a WebSocket, calls are pipelined, never batched: size 0.
        let size = if rpc.subscribes() {
            0
        } else {
            rpc.batch_size()
        };
        events::BatchSize { chain, size }.emit();
        let refused = if !rpc.subscribes() {
            None
        } else {
            match rpc.subscribe_new_heads().await {
                Ok(_) => None,
                Err(RpcError::Node { source, method })
                    if crate::rpc::provider::is_method_missing(&source) =>
                {
                    Some(RpcError::Node { source, method })
                }
                Err(e) => return Err(e.into()),
            }
        };
        let subscribed = rpc.subscribes() && refused.is_none();
        events::HeadsSource {
            chain,
            how: if subscribed { "subscribed" } else { "polled" },
            refused: refused.as_ref().map(|e| e as &dyn std::fmt::Display),
            poll_ms: self.cfg.head_poll_interval_ms,
        }
        .emit();
        Ok(())
    }

    /// How endpoint `i`'s blocks are proven complete: decided on its first connection (a
    /// node without `eth_getBlockReceipts` is asked per transaction), said once.
    async fn learn_proof(&mut self, rpc: &RpcClient, i: usize) -> Result<Proof, FollowError> {
        if let Some(p) = self.proofs[i] {
            return Ok(p);
        }
        let proof = if self.cfg.proof_level() == Level::None {
            Proof::None
        } else if rpc.serves_block_receipts().await? {
            Proof::BlockReceipts
        } else {
            Proof::TransactionReceipts
        };
        events::CompletenessSource {
            chain: &self.cfg.name,
            endpoint: i,
            source: proof.label(),
        }
        .emit();
        self.proofs[i] = Some(proof);
        Ok(proof)
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

    /// A catch-up pass from `next` to `head` begins (said once per catch-up).
    fn catching_up(&self, next: u64, head: u64, endpoint: usize) {
        let now = tokio::time::Instant::now();
        if progress::lock(&self.progress).catching_up(now, next, head, endpoint) {
            events::CatchUpStarted {
                chain: &self.cfg.name,
                from: next,
                head,
                endpoint,
            }
            .emit();
        }
    }

    /// The follower is at its head, or within `live_threshold_blocks` of it (said once,
    /// when it becomes so).
    fn went_live(&self, next: u64) {
        let now = tokio::time::Instant::now();
        let changed = progress::lock(&self.progress).live(now);
        if let Some(caught_up) = changed {
            events::ChainLive {
                chain: &self.cfg.name,
                block: next.saturating_sub(1),
                caught_up,
            }
            .emit();
        }
    }

    fn next_block(&self) -> u64 {
        match (self.window.tip(), self.start) {
            (Some((n, _)), _) => n + 1,
            (None, StartBlock::Number(n)) => n,
            (None, StartBlock::Latest) => 0,
        }
    }

    /// Block by block from `from` to `head`; the block of `announced` (a notification's
    /// header) without asking for its header again.
    async fn step_to(
        &mut self,
        fetcher: &Fetcher<'_>,
        from: u64,
        head: u64,
        announced: Option<&Header>,
    ) -> Result<Walk, FollowError> {
        for number in from..=head {
            let block = match announced {
                Some(h) if h.number == number => fetcher.announced(h.clone()).await?,
                _ => fetcher.block(number).await?,
            };
            let Some(block) = block else {
                return Ok(Walk::Unserved);
            };
            if self.hand_over(block).await? == Walk::Forked {
                return Ok(Walk::Forked);
            }
        }
        Ok(Walk::Extended)
    }

    /// Ranged catch-up from `from` to `head`, `backfill_concurrency` ranges in flight,
    /// handed over in order.
    async fn catch_up(
        &mut self,
        fetcher: &Fetcher<'_>,
        from: u64,
        head: u64,
    ) -> Result<Walk, FollowError> {
        let mut in_flight = FuturesOrdered::new();
        let mut next = from;
        loop {
            while in_flight.len() < self.cfg.backfill_concurrency && next <= head {
                let end = next.saturating_add(fetcher.span() - 1).min(head);
                in_flight.push_back(fetcher.range(next, end));
                next = end + 1;
            }
            let Some(blocks) = in_flight.next().await else {
                return Ok(Walk::Extended);
            };
            let blocks = blocks?;
            let (last, count, logs) = (
                blocks.last().map(|b| b.header.number),
                blocks.len() as u64,
                blocks.iter().map(|b| b.logs.len()).sum::<usize>(),
            );
            for block in blocks {
                if self.hand_over(block).await? == Walk::Forked {
                    return Ok(Walk::Forked);
                }
            }
            tokio::task::yield_now().await;
            if let Some(block) = last {
                progress::lock(&self.progress).advanced(block, count, logs as u64);
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
    /// full). A parent that does not match is a reorganisation, an expected outcome of the
    /// walk: nothing is handed over, and [`Walk::Forked`] says so.
    async fn hand_over(&mut self, block: BlockLogs) -> Result<Walk, FollowError> {
        if let Some((n, hash)) = self.window.tip() {
            if block.header.number != n + 1 {
                return Err(Inconsistent::new(
                    "link",
                    format!("expected block {}, got {}", n + 1, block.header.number),
                )
                .into());
            }
            if block.header.parent_hash != hash {
                return Ok(Walk::Forked);
            }
        }
        let entry = block.window_block();
        self.send(Update::Block(block)).await?;
        self.window.push(entry);
        Ok(Walk::Extended)
    }

    async fn send(&self, update: Update) -> Result<(), FollowError> {
        self.sink
            .send(update)
            .await
            .map_err(|_| FollowError::SinkClosed)
    }
}
