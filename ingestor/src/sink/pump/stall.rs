//! How long a chain's publishing has waited for the broker. A chain whose records got no
//! acknowledgement for `kafka.stall_warning_ms` while some wait (a broker down, fewer
//! in-sync replicas than `min.insync.replicas`: librdkafka retries them quietly until
//! `kafka.message_timeout_ms`) is *stalled*: one log line, `ethhook_sink_stalled` = 1 and
//! `stalled_since_ms` in `/status`. The next acknowledgement ends it with one more line
//! that says how long the pause lasted.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::events;

/// One publisher's watch.
pub(super) struct StallWatch {
    chain: String,
    after: Duration,
    /// Since when something has waited with no acknowledgement.
    since: Option<Instant>,
    /// Whether the current wait was reported as a stall.
    reported: bool,
}

impl StallWatch {
    /// A watch that reports waits longer than `after`.
    pub(super) fn new(chain: &str, after: Duration) -> Self {
        Self {
            chain: chain.to_owned(),
            after,
            since: None,
            reported: false,
        }
    }

    /// Something waits for the broker: the clock starts, unless it runs already.
    pub(super) fn waiting(&mut self) {
        self.since.get_or_insert_with(Instant::now);
    }

    /// The broker acknowledged; `more` says whether anything still waits (the clock then
    /// starts again from now).
    pub(super) fn acknowledged(&mut self, more: bool) {
        let now = Instant::now();
        if let (true, Some(since)) = (self.reported, self.since) {
            events::PublishResumed {
                chain: &self.chain,
                paused_ms: now.duration_since(since).as_millis() as u64,
            }
            .emit();
        }
        self.reported = false;
        self.since = more.then_some(now);
    }

    /// When the current wait becomes a stall; `None` when nothing waits or it was reported.
    pub(super) fn due(&self) -> Option<Instant> {
        match (self.reported, self.since) {
            (false, Some(since)) => Some(since + self.after),
            _ => None,
        }
    }

    /// Reports the stall, once, if it is due.
    pub(super) fn check(&mut self) {
        let (Some(due), Some(since)) = (self.due(), self.since) else {
            return;
        };
        if Instant::now() >= due {
            self.reported = true;
            events::PublishStalled {
                chain: &self.chain,
                waited_ms: since.elapsed().as_millis() as u64,
            }
            .emit();
        }
    }

    /// Runs `work` (an enqueue waiting for room, a transaction), reporting a stall if it is
    /// still running when one is due.
    pub(super) async fn during<T>(&mut self, work: impl Future<Output = T>) -> T {
        let mut work = std::pin::pin!(work);
        loop {
            let Some(due) = self.due() else {
                return work.await;
            };
            tokio::select! {
                out = &mut work => return out,
                () = tokio::time::sleep_until(due) => self.check(),
            }
        }
    }
}

impl Drop for StallWatch {
    /// A publisher that ends while stalled (its error is logged on its own) leaves no stale
    /// stall behind: the chain starts over with a new one.
    fn drop(&mut self) {
        if self.reported {
            events::PublishResumed::cleared(&self.chain);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_wait_longer_than_the_threshold_is_due_once_and_an_acknowledgement_ends_it() {
        let mut w = StallWatch::new("c", Duration::from_secs(10));
        assert_eq!(w.due(), None, "nothing waits");
        w.waiting();
        let due = w.due().expect("due");
        tokio::time::advance(Duration::from_secs(5)).await;
        w.waiting();
        assert_eq!(w.due(), Some(due), "the clock runs from the first wait");
        w.check();
        assert!(!w.reported);
        w.during(tokio::time::sleep(Duration::from_secs(20))).await;
        assert!(w.reported, "reported while the work ran");
        assert_eq!(w.due(), None, "reported once");
        w.acknowledged(true);
        assert!(!w.reported);
        assert_eq!(w.due(), Some(Instant::now() + Duration::from_secs(10)));
        w.acknowledged(false);
        assert_eq!(w.due(), None);
    }
}
