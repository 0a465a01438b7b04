//! Fetching blocks with their logs: one block by hash (live), or a range (catch-up) whose
//! size adapts: it aims at `backfill_target_logs` logs per request (dense chains get short
//! ranges, sparse chains long ones, up to `backfill_range_blocks`), and halves when the
//! node refuses a range (a provider's cap, a timeout, an answer over `max_message_bytes`).
//!
//! Unless `proof = "none"`, a block's logs are taken from its receipts and proven complete
//! against its header (see [`BlockLogs::prove`], and the chain's [`Policy`] for the proofs
//! by the block hash, computed from the same answers): live blocks
//! cost one `eth_getBlockReceipts`, a catch-up range one batch of headers and one of
//! receipts. A block whose bloom is zero has no logs, which the bloom proves: nothing more
//! is asked. A node without `eth_getBlockReceipts` is asked per transaction instead
//! ([`Proof::TransactionReceipts`]). Without the check, logs come from `eth_getLogs`
//! (ranged in catch-up) and only their order and block are checked.
//!
//! An incomplete answer is asked again, after a short backoff, a few times in place before
//! the session gives up (and the breaker, or another endpoint, takes over).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use crate::events;
use crate::proof::Policy;
use crate::rpc::body::Body;
use crate::rpc::hex::B256;
use crate::rpc::receipt::Receipt;
use crate::rpc::types::{Header, Log};
use crate::rpc::{RpcClient, RpcError};
use crate::telemetry::trace::FetchTiming;

use super::block::{BlockLogs, Inconsistent, check_link, needs_receipts, no_receipts};
use super::body::{Wants, attach, outcomes};
use super::error::FollowError;

/// Each transaction's hash and the fields of its receipt a dataset publishes.
type Outcomes = Vec<(B256, Option<Box<crate::rpc::outcome::ReceiptFields>>)>;

/// Incomplete or contradictory answers asked again in place before the session fails.
const INCONSISTENT_RETRIES: u32 = 5;
/// First wait before asking again (doubles: 100, 200, 400, 800, 1600 ms).
const INCONSISTENT_BACKOFF: Duration = Duration::from_millis(100);

/// The next range size after `size` blocks returned `logs` logs: proportional to the
/// target, at most doubling, between 1 and `max`.
pub(super) fn next_range(size: u64, logs: usize, target_logs: u64, max: u64) -> u64 {
    let proportional = size.saturating_mul(target_logs) / (logs as u64).max(1);
    proportional.min(size.saturating_mul(2)).clamp(1, max)
}

/// The range size of one chain, kept across sessions: a range that killed a connection
/// (an answer over `max_message_bytes` on a WebSocket) is not asked again after reconnecting.
#[derive(Debug)]
pub(super) struct RangeSize(AtomicU64);

impl RangeSize {
    /// Starts small: the first answer tells how dense the chain is.
    pub(super) fn new(max_range_blocks: u64) -> Self {
        Self(AtomicU64::new(max_range_blocks.min(16)))
    }
}

/// Where a block's logs come from, and what proves them complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Proof {
    /// `eth_getLogs`, unchecked (`proof = "none"`).
    None,
    /// `eth_getBlockReceipts`: the logs of every receipt, checked against the header.
    BlockReceipts,
    /// The block's transaction hashes, then `eth_getTransactionReceipt` for each: for a
    /// node without `eth_getBlockReceipts`.
    TransactionReceipts,
}

impl Proof {
    /// The label in `/status` and the logs.
    pub(super) fn label(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::BlockReceipts => "block_receipts",
            Self::TransactionReceipts => "transaction_receipts",
        }
    }
}

/// Fetches blocks for one chain over one connection.
pub(super) struct Fetcher<'a> {
    pub(super) rpc: &'a RpcClient,
    pub(super) chain: &'a str,
    range_blocks: &'a AtomicU64,
    max_range_blocks: u64,
    target_logs: u64,
    /// Where logs come from and how they are proven complete.
    proof: Proof,
    /// The chain's proofs by the block hash.
    policy: Arc<Policy>,
    /// What the chain's datasets need beyond the logs.
    wants: Wants,
}

impl<'a> Fetcher<'a> {
    pub(super) fn new(
        rpc: &'a RpcClient,
        chain: &'a str,
        range: &'a RangeSize,
        max_range_blocks: u64,
        target_logs: u64,
        proof: Proof,
        policy: Arc<Policy>,
    ) -> Self {
        Self {
            rpc,
            chain,
            range_blocks: &range.0,
            max_range_blocks,
            target_logs,
            proof,
            policy,
            wants: Wants::default(),
        }
    }

    /// The same, fetching what `wants` says besides the logs.
    pub(super) fn wanting(self, wants: Wants) -> Self {
        Self { wants, ..self }
    }

    /// Runs `fetch` again while it fails on an inconsistent answer, at most
    /// [`INCONSISTENT_RETRIES`] times, with a doubling wait.
    async fn retrying<T, F, Fut>(&self, fetch: F) -> Result<T, FollowError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, FollowError>>,
    {
        let mut attempt = 0;
        loop {
            match fetch().await {
                Err(FollowError::Inconsistent(i)) if attempt < INCONSISTENT_RETRIES => {
                    let wait = crate::backoff::delay(
                        attempt,
                        INCONSISTENT_BACKOFF,
                        INCONSISTENT_BACKOFF * 16,
                        1.0,
                    );
                    events::InconsistentAnswer {
                        chain: self.chain,
                        what: &i.what,
                        check: i.check,
                        retry_in_ms: wait.as_millis() as u64,
                        in_place: true,
                    }
                    .emit();
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// The current range size, in blocks.
    pub(super) fn span(&self) -> u64 {
        self.range_blocks.load(Ordering::Relaxed)
    }

    /// One block by number: its header, then `eth_getLogs {blockHash}` (skipped when its
    /// bloom is zero). `None` when the node does not have that block yet.
    pub(super) async fn block(&self, number: u64) -> Result<Option<BlockLogs>, FollowError> {
        self.retrying(|| self.block_once(number)).await
    }

    async fn block_once(&self, number: u64) -> Result<Option<BlockLogs>, FollowError> {
        let started = SystemTime::now();
        let Some(header) = self.rpc.header_by_number(number).await? else {
            return Ok(None);
        };
        self.with_logs(header, started).await.map(Some)
    }

    /// The block of `header`, a header the node announced in a `newHeads` notification:
    /// only its logs are asked for. When the answer does not complete it, or the node
    /// refuses the hash (an index behind the notification on a load-balanced provider, or
    /// a block orphaned meanwhile), that hash is not asked again: the block is fetched by
    /// number, which retries in place as usual.
    ///
    /// A notification's header that lacks a field the header hash covers (providers trim
    /// `newHeads`) is not proven: the block is fetched by number, whose header is whole.
    pub(super) async fn announced(&self, header: Header) -> Result<Option<BlockLogs>, FollowError> {
        let number = header.number;
        if self.proof != Proof::None
            && self.policy.checks_header_hash()
            && header.sealed.consensus.is_err()
        {
            return self.block(number).await;
        }
        match self.with_logs(header, SystemTime::now()).await {
            Ok(block) => Ok(Some(block)),
            Err(
                e @ (FollowError::Inconsistent(_)
                | FollowError::Unprovable(_)
                | FollowError::Rpc(RpcError::Node { .. })),
            ) => {
                let check = match &e {
                    FollowError::Inconsistent(i) => i.check,
                    FollowError::Unprovable(crate::proof::Refusal::Uncovered { check, .. }) => {
                        check
                    }
                    _ => "block",
                };
                events::InconsistentAnswer {
                    chain: self.chain,
                    what: &e.to_string(),
                    check,
                    retry_in_ms: 0,
                    in_place: true,
                }
                .emit();
                self.block(number).await
            }
            Err(e) => Err(e),
        }
    }

    /// `header`'s block with its logs, proven complete as [`Proof`] says, and what its
    /// datasets publish besides (its body; every transaction's receipt).
    async fn with_logs(
        &self,
        header: Header,
        started: SystemTime,
    ) -> Result<BlockLogs, FollowError> {
        let all = self.wants.transactions;
        // The body is asked beside the logs or receipts.
        let (hash, number) = (header.hash, header.number);
        let body = async {
            let Some(full) = self.wants.body() else {
                return Ok(None);
            };
            let body = self.rpc.block_body(&hash, full).await?;
            body.map(Some)
                .ok_or_else(|| FollowError::from(no_body(number)))
        };
        let (body, (mut block, outcomes)) = tokio::try_join!(body, self.proven(header, all))?;
        attach(&mut block, body, outcomes)?;
        block.fetched = FetchTiming::since(started).from_endpoint(self.rpc.endpoint());
        Ok(block)
    }

    /// `header`'s block with its logs, proven complete as [`Proof`] says, and with `all`
    /// each transaction's outcome from its receipt.
    async fn proven(
        &self,
        header: Header,
        all: bool,
    ) -> Result<(BlockLogs, Option<Outcomes>), FollowError> {
        Ok(if self.proof == Proof::None {
            let logs = self.rpc.logs_by_block_hash(&header.hash).await?;
            let outcomes = match all {
                true => Some(outcomes(&mut self.receipts(&header).await?)),
                false => None,
            };
            (BlockLogs::assemble(header, logs, false)?, outcomes)
        } else {
            let mut receipts = match needs_receipts(&header, all) {
                true => Some(self.receipts(&header).await?),
                false => None,
            };
            let outcomes = receipts.as_mut().filter(|_| all).map(|r| outcomes(r));
            let weight = logs_weight(receipts.iter().flatten());
            let policy = self.policy.clone();
            let block =
                crate::cpu::offload(weight, move || BlockLogs::prove(header, receipts, &policy))
                    .await?;
            (block, outcomes)
        })
    }

    /// The receipts of `header`'s block (with their outcomes when the transactions are
    /// published); an answer of `null` (a node that has not indexed the block yet) is an
    /// incomplete answer.
    async fn receipts(&self, header: &Header) -> Result<Vec<Receipt>, FollowError> {
        let fields = self.wants.transactions;
        let receipts = match self.proof {
            Proof::TransactionReceipts => {
                self.rpc
                    .receipts_by_transaction(&header.hash, fields)
                    .await?
            }
            _ => self.rpc.block_receipts(&header.hash, fields).await?,
        };
        receipts.ok_or_else(|| no_receipts(header.number).into())
    }

    /// Blocks `from..=to`, splitting the range when the node refuses it.
    pub(super) async fn range(&self, from: u64, to: u64) -> Result<Vec<BlockLogs>, FollowError> {
        let mut out = Vec::with_capacity((to - from + 1) as usize);
        let mut start = from;
        while start <= to {
            let size = self
                .range_blocks
                .load(Ordering::Relaxed)
                .min(to - start + 1);
            let end = start + size - 1;
            match self.retrying(|| self.chunk(start, end)).await {
                Ok(blocks) => {
                    let logs = blocks.iter().map(|b| b.logs.len()).sum();
                    let next = next_range(size, logs, self.target_logs, self.max_range_blocks);
                    self.range_blocks.store(next, Ordering::Relaxed);
                    out.extend(blocks);
                    start = end + 1;
                }
                Err(FollowError::Rpc(e)) if e.is_range_refused() && size > 1 => {
                    let smaller = (size / 2).max(1);
                    self.range_blocks.store(smaller, Ordering::Relaxed);
                    events::RangeShrunk {
                        chain: self.chain,
                        from_blocks: size,
                        to_blocks: smaller,
                    }
                    .emit();
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Blocks `from..=to`: every header (one batch), checked to link, and their logs: one
    /// ranged `eth_getLogs` without the proof, else the receipts of every block whose bloom
    /// is not zero (one batch). With the blocks or transactions datasets, every block's
    /// body too (one batch, asked beside the receipts), and with the transactions every
    /// block's receipts.
    async fn chunk(&self, from: u64, to: u64) -> Result<Vec<BlockLogs>, FollowError> {
        let started = SystemTime::now();
        let all = self.wants.transactions;
        let (mut blocks, mut outcomes, bodies) = if self.proof == Proof::None {
            let (logs, headers) = tokio::try_join!(
                self.rpc.logs_in_range(from, to),
                self.rpc.headers_by_number(from, to)
            )?;
            let headers = linked(from, headers)?;
            let receipts = async {
                match all {
                    true => {
                        let hashes: Vec<B256> = headers.iter().map(|h| h.hash).collect();
                        self.receipts_of(&hashes, true).await.map(Some)
                    }
                    false => Ok(None),
                }
            };
            let (receipts, bodies) = tokio::try_join!(receipts, self.bodies(&headers))?;
            let mut outcomes = Vec::with_capacity(headers.len());
            for (h, r) in headers.iter().zip(receipts.into_iter().flatten()) {
                let mut r = r.ok_or_else(|| no_receipts(h.number))?;
                outcomes.push(Some(super::body::outcomes(&mut r)));
            }
            let weight = logs.len().saturating_mul(16);
            let blocks =
                crate::cpu::offload(weight, move || assemble_range(from, headers, logs)).await?;
            (blocks, outcomes, bodies)
        } else {
            let headers = linked(from, self.rpc.headers_by_number(from, to).await?)?;
            let with_logs: Vec<B256> = headers
                .iter()
                .filter(|h| needs_receipts(h, all))
                .map(|h| h.hash)
                .collect();
            let (receipts, bodies) =
                tokio::try_join!(self.receipts_of(&with_logs, all), self.bodies(&headers))?;
            let mut receipts = receipts.into_iter();
            // Each header with its receipts where it needs them (`None` where its zero bloom
            // proves it empty, and where the node had none: then the proof refuses it).
            let mut paired = Vec::with_capacity(headers.len());
            let mut outcomes = Vec::with_capacity(headers.len());
            for h in headers {
                let mut r = match needs_receipts(&h, all) {
                    true => Some(
                        receipts
                            .next()
                            .flatten()
                            .ok_or_else(|| no_receipts(h.number))?,
                    ),
                    false => None,
                };
                outcomes.push(r.as_mut().filter(|_| all).map(|r| super::body::outcomes(r)));
                paired.push((h, r));
            }
            let weight = logs_weight(paired.iter().filter_map(|(_, r)| r.as_ref()).flatten());
            let policy = self.policy.clone();
            let blocks = crate::cpu::offload(weight, move || {
                paired
                    .into_iter()
                    .map(|(h, r)| BlockLogs::prove(h, r, &policy))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?;
            (blocks, outcomes, bodies)
        };
        if let Some(bodies) = bodies {
            outcomes.resize_with(blocks.len(), || None);
            for ((b, body), o) in blocks.iter_mut().zip(bodies).zip(outcomes.drain(..)) {
                let body = body.ok_or_else(|| no_body(b.header.number))?;
                attach(b, Some(body), o)?;
            }
        }
        let fetched = FetchTiming::since(started).from_endpoint(self.rpc.endpoint());
        for b in &mut blocks {
            b.fetched = fetched;
        }
        Ok(blocks)
    }

    /// The bodies of `headers`' blocks (one batch), when the datasets publish them.
    async fn bodies(&self, headers: &[Header]) -> Result<Option<Vec<Option<Body>>>, FollowError> {
        let Some(full) = self.wants.body() else {
            return Ok(None);
        };
        let hashes: Vec<B256> = headers.iter().map(|h| h.hash).collect();
        Ok(Some(self.rpc.block_bodies(&hashes, full).await?))
    }

    /// The receipts of the blocks `hashes` (with their outcomes when `fields`): one batch,
    /// or per transaction for a node without `eth_getBlockReceipts`.
    async fn receipts_of(
        &self,
        hashes: &[B256],
        fields: bool,
    ) -> Result<Vec<Option<Vec<Receipt>>>, FollowError> {
        Ok(match self.proof {
            Proof::TransactionReceipts => {
                let mut all = Vec::with_capacity(hashes.len());
                for hash in hashes {
                    all.push(self.rpc.receipts_by_transaction(hash, fields).await?);
                }
                all
            }
            _ => self.rpc.blocks_receipts(hashes, fields).await?,
        })
    }
}

/// The node answered no body (`null`) for block `number`, whose header it gave.
fn no_body(number: u64) -> Inconsistent {
    Inconsistent::new(
        "block",
        format!("block {number}: the node has no body for it (not indexed yet, or orphaned?)"),
    )
}

/// The CPU pool's weight of proving `receipts`: bloom checks hash every log three times.
fn logs_weight<'r>(receipts: impl Iterator<Item = &'r Receipt>) -> usize {
    receipts.map(|r| r.logs.len()).sum::<usize>() * 512
}

/// The headers of `from..`, which must all be present and each extend the one before.
fn linked(from: u64, headers: Vec<Option<Header>>) -> Result<Vec<Header>, Inconsistent> {
    let mut out = Vec::with_capacity(headers.len());
    let mut prev: Option<(u64, B256)> = None;
    for (i, header) in headers.into_iter().enumerate() {
        let number = from + i as u64;
        let header = header.ok_or_else(|| {
            Inconsistent::new(
                "link",
                format!("block {number} unknown to the node below its head"),
            )
        })?;
        check_link(prev, &header)?;
        prev = Some((header.number, header.hash));
        out.push(header);
    }
    Ok(out)
}

/// Pairs linked headers `from..` with the logs of a ranged query: logs sorted by block and
/// each attached to the header it names.
fn assemble_range(
    from: u64,
    headers: Vec<Header>,
    logs: Vec<Log>,
) -> Result<Vec<BlockLogs>, Inconsistent> {
    let mut out = Vec::with_capacity(headers.len());
    let mut logs = logs.into_iter().peekable();
    for (i, header) in headers.into_iter().enumerate() {
        let number = from + i as u64;
        let mut mine = Vec::new();
        while let Some(log) = logs.next_if(|l| l.block_number == number) {
            mine.push(log);
        }
        out.push(BlockLogs::assemble(header, mine, false)?);
    }
    if let Some(stray) = logs.next() {
        return Err(Inconsistent::new(
            "block",
            format!(
                "ranged logs out of order or outside the range: log in block {}",
                stray.block_number
            ),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::hex::{Address, B256};

    fn header(n: u64) -> Header {
        Header {
            number: n,
            hash: B256::new([n as u8; 32]),
            parent_hash: B256::new([(n - 1) as u8; 32]),
            timestamp_s: n,
            logs_bloom: crate::rpc::bloom::Bloom::default(),
            gas_used: 0,
            transactions: None,
            sealed: Default::default(),
        }
    }

    fn log(n: u64, index: u64) -> Log {
        Log {
            block_number: n,
            block_hash: B256::new([n as u8; 32]),
            transaction_hash: B256::new([0; 32]),
            transaction_index: 0,
            log_index: index,
            address: Address::new([0; 20]),
            topics: vec![],
            data: vec![],
        }
    }

    #[test]
    fn range_adapts_to_density() {
        assert_eq!(next_range(16, 6400, 10_000, 1000), 25, "400 logs per block");
        assert_eq!(
            next_range(16, 0, 10_000, 1000),
            32,
            "empty: at most doubles"
        );
        assert_eq!(next_range(800, 10, 10_000, 1000), 1000, "capped");
        assert_eq!(
            next_range(10, 1_000_000, 10_000, 1000),
            1,
            "never below one block"
        );
    }

    fn linked_headers(from: u64, to: u64) -> Vec<Header> {
        linked(from, (from..=to).map(|n| Some(header(n))).collect()).expect("linked")
    }

    #[test]
    fn groups_logs_by_block_including_empty_blocks() {
        let blocks = assemble_range(
            5,
            linked_headers(5, 7),
            vec![log(5, 0), log(5, 1), log(7, 0)],
        )
        .expect("consistent");
        let counts: Vec<_> = blocks.iter().map(|b| b.logs.len()).collect();
        assert_eq!(counts, [2, 0, 1]);
    }

    #[test]
    fn rejects_what_does_not_fit() {
        assert!(linked(5, vec![Some(header(5)), None]).is_err());
        let unsorted = assemble_range(5, linked_headers(5, 6), vec![log(6, 0), log(5, 0)]);
        assert!(unsorted.is_err());
        let mut forked = header(6);
        forked.parent_hash = B256::new([0xee; 32]);
        assert!(linked(5, vec![Some(header(5)), Some(forked)]).is_err());
        let mut wrong_hash = log(5, 0);
        wrong_hash.block_hash = B256::new([0xee; 32]);
        assert!(assemble_range(5, linked_headers(5, 5), vec![wrong_hash]).is_err());
    }
}
