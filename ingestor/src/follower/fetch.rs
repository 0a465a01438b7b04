//! Fetching blocks with their logs: one block by hash (live), or a range (catch-up) whose
//! size adapts: it aims at `backfill_target_logs` logs per request (dense chains get short
//! ranges, sparse chains long ones, up to `backfill_range_blocks`), and halves when the
//! node refuses a range (a provider's cap, a timeout, an answer over `max_message_bytes`).
//!
//! Every block's logs are checked for completeness against its header (see
//! [`BlockLogs::assemble`]); an incomplete answer is asked again, after a short backoff, a
//! few times in place before the session gives up (and the breaker, or another endpoint,
//! takes over). A block whose bloom is zero has no logs: `eth_getLogs` is not called.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use crate::events;
use crate::rpc::types::{Header, Log};
use crate::rpc::{RpcClient, RpcError};
use crate::telemetry::trace::FetchTiming;

use super::block::{BlockLogs, Inconsistent, check_link};
use super::error::FollowError;

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

/// Fetches blocks for one chain over one connection.
pub(super) struct Fetcher<'a> {
    pub(super) rpc: &'a RpcClient,
    pub(super) chain: &'a str,
    range_blocks: &'a AtomicU64,
    max_range_blocks: u64,
    target_logs: u64,
    /// Check each block's logs against its header (`verify_log_completeness`).
    complete: bool,
}

impl<'a> Fetcher<'a> {
    pub(super) fn new(
        rpc: &'a RpcClient,
        chain: &'a str,
        range: &'a RangeSize,
        max_range_blocks: u64,
        target_logs: u64,
        complete: bool,
    ) -> Self {
        Self {
            rpc,
            chain,
            range_blocks: &range.0,
            max_range_blocks,
            target_logs,
            complete,
        }
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
                        what: &i.0,
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
    pub(super) async fn announced(&self, header: Header) -> Result<Option<BlockLogs>, FollowError> {
        let number = header.number;
        match self.with_logs(header, SystemTime::now()).await {
            Ok(block) => Ok(Some(block)),
            Err(e @ (FollowError::Inconsistent(_) | FollowError::Rpc(RpcError::Node { .. }))) => {
                events::InconsistentAnswer {
                    chain: self.chain,
                    what: &e.to_string(),
                    retry_in_ms: 0,
                    in_place: true,
                }
                .emit();
                self.block(number).await
            }
            Err(e) => Err(e),
        }
    }

    /// `header`'s block with its logs (`eth_getLogs {blockHash}`, skipped when its bloom is
    /// zero), checked for completeness.
    async fn with_logs(
        &self,
        header: Header,
        started: SystemTime,
    ) -> Result<BlockLogs, FollowError> {
        let logs = if self.complete && header.logs_bloom.is_zero() {
            Vec::new()
        } else {
            self.rpc.logs_by_block_hash(&header.hash).await?
        };
        let mut block = BlockLogs::assemble(header, logs, self.complete)?;
        block.fetched = FetchTiming::since(started);
        Ok(block)
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

    /// One ranged `eth_getLogs` plus every header in the range (one batch), checked
    /// against each other.
    async fn chunk(&self, from: u64, to: u64) -> Result<Vec<BlockLogs>, FollowError> {
        let started = SystemTime::now();
        let (logs, headers) = tokio::try_join!(
            self.rpc.logs_in_range(from, to),
            self.rpc.headers_by_number(from, to)
        )?;
        let complete = self.complete;
        // Bloom checks hash every log three times: catch-up work for the CPU pool.
        let weight = logs.len().saturating_mul(512);
        let mut blocks = crate::cpu::offload(weight, move || {
            assemble_range(from, headers, logs, complete)
        })
        .await?;
        let fetched = FetchTiming::since(started);
        for b in &mut blocks {
            b.fetched = fetched;
        }
        Ok(blocks)
    }
}

/// Pairs headers `from..` with the logs of a ranged query: headers must be present and
/// linked, logs sorted by block and each attached to the header it names.
fn assemble_range(
    from: u64,
    headers: Vec<Option<Header>>,
    logs: Vec<Log>,
    complete: bool,
) -> Result<Vec<BlockLogs>, Inconsistent> {
    let mut out = Vec::with_capacity(headers.len());
    let mut logs = logs.into_iter().peekable();
    let mut prev: Option<(u64, crate::rpc::hex::B256)> = None;
    for (i, header) in headers.into_iter().enumerate() {
        let number = from + i as u64;
        let header = header.ok_or_else(|| {
            Inconsistent(format!("block {number} unknown to the node below its head"))
        })?;
        check_link(prev, &header)?;
        prev = Some((header.number, header.hash));
        let mut mine = Vec::new();
        while let Some(log) = logs.next_if(|l| l.block_number == number) {
            mine.push(log);
        }
        out.push(BlockLogs::assemble(header, mine, complete)?);
    }
    if let Some(stray) = logs.next() {
        return Err(Inconsistent(format!(
            "ranged logs out of order or outside the range: log in block {}",
            stray.block_number
        )));
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

    #[test]
    fn groups_logs_by_block_including_empty_blocks() {
        let headers = vec![Some(header(5)), Some(header(6)), Some(header(7))];
        let blocks = assemble_range(5, headers, vec![log(5, 0), log(5, 1), log(7, 0)], false)
            .expect("consistent");
        let counts: Vec<_> = blocks.iter().map(|b| b.logs.len()).collect();
        assert_eq!(counts, [2, 0, 1]);
    }

    #[test]
    fn rejects_what_does_not_fit() {
        let missing = assemble_range(5, vec![Some(header(5)), None], vec![], false);
        assert!(missing.is_err());
        let unsorted = assemble_range(
            5,
            vec![Some(header(5)), Some(header(6))],
            vec![log(6, 0), log(5, 0)],
            false,
        );
        assert!(unsorted.is_err());
        let mut forked = header(6);
        forked.parent_hash = B256::new([0xee; 32]);
        assert!(assemble_range(5, vec![Some(header(5)), Some(forked)], vec![], false).is_err());
        let mut wrong_hash = log(5, 0);
        wrong_hash.block_hash = B256::new([0xee; 32]);
        assert!(assemble_range(5, vec![Some(header(5))], vec![wrong_hash], false).is_err());
        // A ranged answer that misses a block's logs (its bloom says it has some).
        let mut has_logs = header(6);
        has_logs.logs_bloom = crate::rpc::bloom::Bloom::of_logs(&[log(6, 0)]);
        let err = assemble_range(5, vec![Some(header(5)), Some(has_logs)], vec![], true)
            .expect_err("head block's logs missing");
        assert!(err.0.contains("block 6"), "{err}");
    }
}
