//! A per-chain circuit breaker in front of the node, and the reconnect policy that combines
//! it with capped, jittered exponential backoff.
//!
//! Closed: connections are attempted after each backoff delay. After
//! `failure_threshold` consecutive failures the breaker opens: no attempt is made for
//! `open_for`. Then it is half-open: one trial; success closes it, failure opens it again.

use std::time::Duration;

use tokio::time::Instant;

use crate::backoff;

/// The breaker's state, as exported in metrics and `/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Attempts go through (after backoff).
    Closed,
    /// Attempts are refused until the open period ends.
    Open,
    /// One trial attempt is allowed.
    HalfOpen,
}

impl BreakerState {
    /// A bounded label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }
}

/// Backoff plus breaker: tells the follower how long to wait before the next attempt.
#[derive(Debug)]
pub struct Reconnect {
    initial: Duration,
    max: Duration,
    threshold: u32,
    open_for: Duration,
    failures: u32,
    opened_at: Option<Instant>,
    jitter: fn() -> f64,
}

impl Reconnect {
    /// A policy with random jitter.
    pub fn new(initial: Duration, max: Duration, threshold: u32, open_for: Duration) -> Self {
        Self::with_jitter(initial, max, threshold, open_for, rand::random::<f64>)
    }

    /// A policy with a given jitter source (tests use a constant).
    pub fn with_jitter(
        initial: Duration,
        max: Duration,
        threshold: u32,
        open_for: Duration,
        jitter: fn() -> f64,
    ) -> Self {
        Self {
            initial,
            max,
            threshold: threshold.max(1),
            open_for,
            failures: 0,
            opened_at: None,
            jitter,
        }
    }

    /// The state now.
    pub fn state(&self) -> BreakerState {
        match self.opened_at {
            None => BreakerState::Closed,
            Some(at) if Instant::now() < at + self.open_for => BreakerState::Open,
            Some(_) => BreakerState::HalfOpen,
        }
    }

    /// Records a failed connection or session; returns how long to wait before the next
    /// attempt: the backoff delay, or the rest of the open period when the breaker is open.
    pub fn failed(&mut self) -> Duration {
        let was_trial = self.state() == BreakerState::HalfOpen;
        self.failures = self.failures.saturating_add(1);
        let backoff = backoff::delay(self.failures - 1, self.initial, self.max, (self.jitter)());
        if was_trial || self.failures >= self.threshold {
            self.opened_at = Some(Instant::now());
            return self.open_for.max(backoff);
        }
        backoff
    }

    /// Records a working session: the breaker closes and backoff starts over.
    pub fn succeeded(&mut self) {
        self.failures = 0;
        self.opened_at = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn policy() -> Reconnect {
        Reconnect::with_jitter(100 * MS, 1000 * MS, 4, 5000 * MS, || 1.0)
    }

    /// Drives the policy the way the follower does: wait what it says, then try again.
    #[tokio::test(start_paused = true)]
    async fn backoff_doubles_then_the_breaker_opens_and_half_opens() {
        let mut r = policy();
        let start = Instant::now();
        let mut waits = Vec::new();
        for _ in 0..3 {
            let wait = r.failed();
            assert_eq!(r.state(), BreakerState::Closed);
            tokio::time::sleep(wait).await;
            waits.push(wait);
        }
        assert_eq!(waits, [100 * MS, 200 * MS, 400 * MS]);
        assert_eq!(
            start.elapsed(),
            700 * MS,
            "paused time advanced by the waits only"
        );

        // The fourth consecutive failure opens the breaker for the open period.
        assert_eq!(r.failed(), 5000 * MS);
        assert_eq!(r.state(), BreakerState::Open);
        tokio::time::sleep(4999 * MS).await;
        assert_eq!(r.state(), BreakerState::Open);
        tokio::time::sleep(MS).await;
        assert_eq!(r.state(), BreakerState::HalfOpen);

        // A failed trial opens it again at once; a successful one closes it.
        assert_eq!(r.failed(), 5000 * MS);
        assert_eq!(r.state(), BreakerState::Open);
        tokio::time::advance(5000 * MS).await;
        assert_eq!(r.state(), BreakerState::HalfOpen);
        r.succeeded();
        assert_eq!(r.state(), BreakerState::Closed);
        assert_eq!(r.failed(), 100 * MS, "backoff starts over after success");
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_is_capped() {
        let mut r = Reconnect::with_jitter(100 * MS, 300 * MS, 100, 5000 * MS, || 1.0);
        let waits: Vec<_> = (0..5).map(|_| r.failed()).collect();
        assert_eq!(waits, [100 * MS, 200 * MS, 300 * MS, 300 * MS, 300 * MS]);
        let mut low = Reconnect::with_jitter(100 * MS, 300 * MS, 100, 5000 * MS, || 0.0);
        assert_eq!(
            low.failed(),
            50 * MS,
            "jitter scales into [0.5, 1.0] of the delay"
        );
    }
}
