//! The stall watch: a chain whose node's head is past its last delivered block, and that
//! has delivered nothing for `health.stall_after_ms`, is stalled. Whatever holds it (a node
//! answer refused again and again, a node that stopped answering, brokers that do not
//! acknowledge), the stall shows the same way: one ERROR line naming the block and the last
//! reason, `ethhook_chain_stalled` at 1, `stalled` in `/status`, and `/readyz` failing.
//!
//! The clock is kept by the events themselves ([`super::status::ChainStatus::progressed`]
//! on every head seen and block delivered, which also end a stall); this task only looks
//! at it, a few times per `stall_after_ms`, to say when a stall begins.

use std::time::Duration;

use tokio::time::{MissedTickBehavior, interval};
use tokio_util::sync::CancellationToken;

use super::status;
use crate::events;

/// How often the chains are looked at: four times per `stall_after_ms`, between 100 ms and
/// 5 s.
fn period(stall_after_ms: u64) -> Duration {
    Duration::from_millis(stall_after_ms / 4)
        .clamp(Duration::from_millis(100), Duration::from_secs(5))
}

/// Looks at every chain's clock until `stop`.
pub async fn watch(stall_after_ms: u64, stop: CancellationToken) {
    let mut tick = interval(period(stall_after_ms));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        let now = events::now_ms();
        for (chain, s) in status::snapshot() {
            if let Some(stall) = s.stall_begins(now, stall_after_ms) {
                events::ChainStalled {
                    chain: &chain,
                    stall: &stall,
                    after_ms: stall_after_ms,
                }
                .emit();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::status::{ChainStatus, RepeatedLine, Stall};

    fn chain(head: u64, delivered: Option<u64>) -> ChainStatus {
        ChainStatus {
            head: Some(head),
            delivered,
            ..ChainStatus::default()
        }
    }

    #[test]
    fn a_chain_behind_its_head_without_a_delivery_stalls_after_the_deadline() {
        let mut s = chain(10, Some(4));
        assert_eq!(s.progressed(1_000, false), None);
        assert_eq!(s.waiting_since_ms, Some(1_000));
        // The head moving on does not restart the clock; only a delivery does.
        s.head = Some(12);
        assert_eq!(s.progressed(30_000, false), None);
        assert_eq!(s.stall_begins(60_999, 60_000), None, "not yet");
        s.last_rejection = Some("node answer rejected (receipts): block 5: …".into());
        let stall = s.stall_begins(61_000, 60_000).expect("stalled");
        assert_eq!(
            stall,
            Stall {
                since_ms: 1_000,
                block: 5,
                reason: "node answer rejected (receipts): block 5: …".into()
            }
        );
        s.stalled = Some(stall.clone());
        assert_eq!(s.stall_begins(90_000, 60_000), None, "said once");
        // A delivery ends it, and restarts the clock while still behind.
        s.delivered = Some(5);
        assert_eq!(s.progressed(91_000, true), Some(stall));
        assert_eq!(
            (s.waiting_since_ms, s.last_rejection.as_ref()),
            (Some(91_000), None)
        );
    }

    #[test]
    fn a_chain_at_its_head_never_stalls_however_long_it_waits() {
        let mut s = chain(10, Some(10));
        assert_eq!(s.progressed(1_000, false), None);
        assert_eq!(s.stall_begins(10_000_000, 60_000), None);
        // Nothing delivered yet, the head known: the clock runs from the first look.
        let mut fresh = ChainStatus {
            head: Some(3),
            next_block: Some(0),
            ..ChainStatus::default()
        };
        fresh.progressed(0, false);
        let stall = fresh.stall_begins(60_000, 60_000).expect("stalled");
        assert_eq!((stall.block, stall.reason.contains("no answer")), (0, true));
        // The head falling back to the delivered block (a node re-synced) ends a stall.
        let mut s = chain(10, Some(4));
        s.progressed(0, false);
        s.stalled = s.stall_begins(60_000, 60_000);
        s.head = Some(4);
        assert!(s.progressed(61_000, false).is_some());
    }

    #[test]
    fn an_identical_line_is_written_once_a_minute() {
        let mut line = None;
        assert_eq!(RepeatedLine::admit(&mut line, "a", 0), Some(0));
        assert_eq!(RepeatedLine::admit(&mut line, "a", 100), None);
        assert_eq!(RepeatedLine::admit(&mut line, "a", 59_999), None);
        assert_eq!(
            RepeatedLine::admit(&mut line, "a", 60_000),
            Some(2),
            "with the count"
        );
        assert_eq!(
            RepeatedLine::admit(&mut line, "b", 60_001),
            Some(0),
            "another line"
        );
        assert_eq!(RepeatedLine::admit(&mut line, "a", 60_002), Some(0));
    }

    #[test]
    fn looks_a_few_times_per_deadline() {
        assert_eq!(period(60_000), Duration::from_secs(5));
        assert_eq!(period(2_000), Duration::from_millis(500));
        assert_eq!(period(10), Duration::from_millis(100));
    }
}
