//! A chain's endpoints (`urls`), each behind its own breaker, and the choice of which to
//! use: the most preferred one that may be tried now.
//!
//! A failed endpoint waits its backoff (or its breaker's open period) before it may be
//! tried again; meanwhile the next one is used at once, so a dead first endpoint never
//! delays the chain. While a less preferred endpoint is in use, [`Endpoints::failback_at`]
//! says when a preferred one may be tried again; the follower probes it in the background
//! and moves back only once the probe connected.

use std::time::Duration;

use tokio::time::Instant;

use super::breaker::{BreakerState, Reconnect};

/// The endpoints of one chain and their breakers.
#[derive(Debug)]
pub(super) struct Endpoints {
    breakers: Vec<Reconnect>,
    /// When each endpoint may be tried next.
    ready_at: Vec<Instant>,
}

impl Endpoints {
    /// `count` endpoints, each with a breaker from `breaker`.
    pub(super) fn new(count: usize, breaker: impl Fn() -> Reconnect) -> Self {
        let now = Instant::now();
        Self {
            breakers: (0..count).map(|_| breaker()).collect(),
            ready_at: vec![now; count],
        }
    }

    /// The endpoint to use next, and how long to wait before trying it: the most preferred
    /// one that may be tried now, or else the one that may be tried soonest.
    pub(super) fn next(&self) -> (usize, Duration) {
        let now = Instant::now();
        if let Some(i) = self.ready_at.iter().position(|at| *at <= now) {
            return (i, Duration::ZERO);
        }
        let (i, at) = self
            .ready_at
            .iter()
            .enumerate()
            .min_by_key(|(_, at)| **at)
            .map(|(i, at)| (i, *at))
            .unwrap_or((0, now));
        (i, at - now)
    }

    /// Records a failure of endpoint `i`; returns its wait before it may be tried again.
    pub(super) fn failed(&mut self, i: usize) -> Duration {
        let wait = self.breakers[i].failed();
        self.ready_at[i] = Instant::now() + wait;
        wait
    }

    /// Records that endpoint `i` connected and answered.
    pub(super) fn succeeded(&mut self, i: usize) {
        self.breakers[i].succeeded();
        self.ready_at[i] = Instant::now();
    }

    /// Endpoint `i`'s breaker.
    pub(super) fn state(&self, i: usize) -> BreakerState {
        self.breakers[i].state()
    }

    /// While endpoint `current` is in use: the most preferred endpoint before it, and when it
    /// may be tried again. `None` on the first endpoint.
    pub(super) fn failback_at(&self, current: usize) -> Option<(usize, Instant)> {
        self.ready_at[..current]
            .iter()
            .enumerate()
            .min_by_key(|(i, at)| (**at, *i))
            .map(|(i, at)| (i, *at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn endpoints(n: usize) -> Endpoints {
        Endpoints::new(n, || {
            Reconnect::with_jitter(100 * MS, 1000 * MS, 2, 5000 * MS, || 1.0)
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_dead_first_endpoint_never_delays_the_next() {
        let mut e = endpoints(2);
        assert_eq!(e.next(), (0, Duration::ZERO));
        assert_eq!(e.failed(0), 100 * MS);
        assert_eq!(e.next(), (1, Duration::ZERO), "the fallback at once");
        e.succeeded(1);
        assert_eq!(e.failback_at(1).map(|(i, _)| i), Some(0));
        assert_eq!(e.failback_at(0), None);
        // The probe of endpoint 0 fails again: its breaker opens (threshold 2).
        tokio::time::advance(100 * MS).await;
        assert_eq!(e.failed(0), 5000 * MS);
        assert_eq!(e.state(0), BreakerState::Open);
        let (_, at) = e.failback_at(1).expect("preferred");
        assert_eq!(
            at - Instant::now(),
            5000 * MS,
            "tried again once the breaker half-opens"
        );
        tokio::time::advance(5000 * MS).await;
        assert_eq!(e.state(0), BreakerState::HalfOpen);
        assert_eq!(
            e.next(),
            (0, Duration::ZERO),
            "preferred again once it may be tried"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn all_down_waits_for_the_soonest() {
        let mut e = endpoints(2);
        e.failed(0);
        tokio::time::advance(50 * MS).await;
        e.failed(1);
        assert_eq!(e.next(), (0, 50 * MS));
    }
}
