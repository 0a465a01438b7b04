//! The idempotent commit policy: blocks are pipelined on the shared producer and each one
//! is applied to the delivered progress only when the broker acknowledged all of its
//! records, in order. At most one checkpoint write is in flight, it always carries the
//! newest delivered state, and writes are at least `checkpoint_interval_ms` apart.
//!
//! Backpressure: a full producer queue makes the pump wait (never drop); at most
//! `max_blocks_in_flight` updates await acknowledgement, after which the pump stops taking
//! updates and the bounded channel stops the follower. A wait for acknowledgements longer
//! than `kafka.stall_warning_ms` is reported ([`StallWatch`]).

use futures_util::future::BoxFuture;
use futures_util::stream::FuturesOrdered;
use futures_util::{FutureExt, StreamExt};
use tokio::time::{Instant, sleep_until};

use crate::follower::HandoverRx;
use crate::sink::SinkError;

use super::stall::StallWatch;
use super::{Acked, Pump};

type Pending<T> = FuturesOrdered<BoxFuture<'static, Result<T, SinkError>>>;

/// Publishes until the channel closes and everything (the last checkpoint included) is
/// acknowledged, or until an error.
pub(super) async fn run(pump: &mut Pump, updates: &mut HandoverRx) -> Result<(), SinkError> {
    let mut pending: Pending<Acked> = FuturesOrdered::new();
    let mut checkpoint: Pending<()> = FuturesOrdered::new();
    let mut dirty = false;
    let every = std::time::Duration::from_millis(pump.cfg.checkpoint_interval_ms);
    let mut next_write = Instant::now();
    let mut stall = StallWatch::new(&pump.cfg.name, pump.stall_warning);
    loop {
        let stall_due = stall.due();
        tokio::select! {
            biased;
            Some(done) = pending.next(), if !pending.is_empty() => {
                let acked = done?;
                stall.acknowledged(!pending.is_empty());
                dirty |= pump.apply(acked);
            }
            Some(done) = checkpoint.next(), if !checkpoint.is_empty() => done?,
            () = sleep_until(next_write), if dirty && checkpoint.is_empty() => {}
            () = sleep_until(stall_due.unwrap_or(next_write)), if stall_due.is_some() => {
                stall.check();
            }
            update = updates.recv(), if pending.len() < pump.cfg.max_blocks_in_flight => match update {
                Some(update) => {
                    stall.waiting();
                    let sent = stall.during(pump.send(update)).await?;
                    pending.push_back(delivered(sent.acknowledged()).boxed());
                    // Encoding a block is CPU work: let other chains' tasks (and the I/O
                    // driver) run between blocks, not only when the budget ends.
                    tokio::task::yield_now().await;
                }
                None => break,
            },
        }
        if dirty && checkpoint.is_empty() && Instant::now() >= next_write {
            if let Some(cp) = pump.send_checkpoint(&pump.progress).await? {
                checkpoint.push_back(cp.acknowledged().boxed());
            }
            dirty = false;
            next_write = Instant::now() + every;
        }
    }
    while let Some(done) = pending.next().await {
        dirty |= pump.apply(done?);
    }
    while let Some(done) = checkpoint.next().await {
        done?;
    }
    if dirty && let Some(cp) = pump.send_checkpoint(&pump.progress).await? {
        cp.acknowledged().await?;
    }
    Ok(())
}

/// An acknowledged update counts as delivered at once: its spans close here.
async fn delivered(
    acknowledged: impl Future<
        Output = Result<(Acked, Option<crate::telemetry::trace::BlockTrace>), SinkError>,
    >,
) -> Result<Acked, SinkError> {
    let (acked, trace) = acknowledged.await?;
    if let Some(t) = trace {
        t.acknowledged(acked.records);
    }
    Ok(acked)
}
