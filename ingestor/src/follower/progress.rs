//! A chain's catch-up progress: the follower reports each range it hands over, and a timer
//! beside it turns the last interval into a status line (blocks/s, logs/s, ETA) every
//! `status_interval_ms` while the chain catches up, and never once it is live.
//!
//! The numbers come from plain functions of counts and [`Instant`]s, so they are tested
//! without waiting.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior, interval_at};

use crate::events;
use crate::telemetry::status::Phase;

/// `count` per second over `elapsed` (0 over no time).
pub(super) fn per_second(count: u64, elapsed: Duration) -> f64 {
    let s = elapsed.as_secs_f64();
    if s > 0.0 { count as f64 / s } else { 0.0 }
}

/// Share of the catch-up `first..=head` done, in percent, when `next` is the next block to
/// hand over.
pub(super) fn percent(first: u64, next: u64, head: u64) -> f64 {
    let total = (head + 1).saturating_sub(first);
    if total == 0 {
        return 100.0;
    }
    let done = next.saturating_sub(first).min(total);
    100.0 * done as f64 / total as f64
}

/// Seconds to hand over `remaining` blocks at `blocks_per_s`; `None` when nothing moved.
pub(super) fn eta_s(remaining: u64, blocks_per_s: f64) -> Option<f64> {
    (blocks_per_s > 0.0).then(|| remaining as f64 / blocks_per_s)
}

/// The counts at the start of the current interval.
#[derive(Debug, Clone, Copy)]
struct Mark {
    at: Instant,
    blocks: u64,
    logs: u64,
}

/// What the status line of one interval says.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Report {
    pub(super) block: u64,
    pub(super) head: u64,
    pub(super) percent: f64,
    pub(super) blocks_per_s: f64,
    pub(super) logs_per_s: f64,
    pub(super) eta_s: Option<f64>,
    pub(super) endpoint: usize,
}

/// One chain's progress, shared by its follower (which feeds it) and its status timer.
#[derive(Debug)]
pub(super) struct Progress {
    /// `None` until the follower first compared its position with the head.
    phase: Option<Phase>,
    /// When the current catch-up started, and its first block.
    started: Instant,
    first: u64,
    /// The next block to hand over, and the head caught up to.
    next: u64,
    head: u64,
    /// Blocks and logs handed over during the current catch-up.
    blocks: u64,
    logs: u64,
    mark: Mark,
    endpoint: usize,
}

impl Progress {
    pub(super) fn new(now: Instant) -> Self {
        Self {
            phase: None,
            started: now,
            first: 0,
            next: 0,
            head: 0,
            blocks: 0,
            logs: 0,
            mark: Mark {
                at: now,
                blocks: 0,
                logs: 0,
            },
            endpoint: 0,
        }
    }

    /// A catch-up pass from `next` to `head` on endpoint `endpoint` begins. True when it
    /// starts a catch-up (the chain was live, or just started), false when it continues one.
    pub(super) fn catching_up(
        &mut self,
        now: Instant,
        next: u64,
        head: u64,
        endpoint: usize,
    ) -> bool {
        self.next = next;
        self.head = head;
        self.endpoint = endpoint;
        if self.phase == Some(Phase::CatchingUp) {
            return false;
        }
        self.phase = Some(Phase::CatchingUp);
        self.started = now;
        self.first = next;
        self.blocks = 0;
        self.logs = 0;
        self.mark = Mark {
            at: now,
            blocks: 0,
            logs: 0,
        };
        true
    }

    /// `blocks` blocks up to `last`, with `logs` logs, were handed over.
    pub(super) fn advanced(&mut self, last: u64, blocks: u64, logs: u64) {
        self.next = last + 1;
        self.blocks += blocks;
        self.logs += logs;
    }

    /// The status of the interval ending `now`, which starts the next one; `None` unless
    /// catching up.
    pub(super) fn report(&mut self, now: Instant) -> Option<Report> {
        if self.phase != Some(Phase::CatchingUp) {
            return None;
        }
        let elapsed = now.saturating_duration_since(self.mark.at);
        let blocks_per_s = per_second(self.blocks - self.mark.blocks, elapsed);
        let logs_per_s = per_second(self.logs - self.mark.logs, elapsed);
        self.mark = Mark {
            at: now,
            blocks: self.blocks,
            logs: self.logs,
        };
        Some(Report {
            block: self.next.saturating_sub(1),
            head: self.head,
            percent: percent(self.first, self.next, self.head),
            blocks_per_s,
            logs_per_s,
            eta_s: eta_s((self.head + 1).saturating_sub(self.next), blocks_per_s),
            endpoint: self.endpoint,
        })
    }

    /// The chain is live. `None` if it already was; else `Some` of the catch-up it ends
    /// (how long it took and the blocks it handed over), if there was one.
    pub(super) fn live(&mut self, now: Instant) -> Option<Option<(Duration, u64)>> {
        let before = self.phase.replace(Phase::Live);
        match before {
            Some(Phase::Live) => None,
            Some(Phase::CatchingUp) => Some(Some((
                now.saturating_duration_since(self.started),
                self.blocks,
            ))),
            None => Some(None),
        }
    }
}

/// Locks `progress` (a panic elsewhere cannot leave it half-written: every update is a
/// few assignments).
pub(super) fn lock(progress: &Mutex<Progress>) -> std::sync::MutexGuard<'_, Progress> {
    progress.lock().unwrap_or_else(|e| e.into_inner())
}

/// Every `every`, the status line of `chain` if it is catching up. Runs until dropped.
pub(super) async fn report_every(
    chain: &str,
    progress: Arc<Mutex<Progress>>,
    every: Duration,
) -> Infallible {
    let mut tick = interval_at(Instant::now() + every, every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let report = lock(&progress).report(Instant::now());
        if let Some(r) = report {
            events::CatchUpStatus {
                chain,
                block: r.block,
                head: r.head,
                percent: r.percent,
                blocks_per_s: r.blocks_per_s,
                logs_per_s: r.logs_per_s,
                eta_s: r.eta_s,
                endpoint: r.endpoint,
            }
            .emit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn rates_percentage_and_eta_are_plain_arithmetic() {
        assert_eq!(per_second(500, 2 * S), 250.0);
        assert_eq!(per_second(500, Duration::ZERO), 0.0);
        assert_eq!(percent(1000, 1000, 1999), 0.0);
        assert_eq!(percent(1000, 1500, 1999), 50.0);
        assert_eq!(percent(1000, 2000, 1999), 100.0);
        assert_eq!(percent(0, 5000, 1999), 100.0, "clamped");
        assert_eq!(eta_s(1000, 250.0), Some(4.0));
        assert_eq!(eta_s(1000, 0.0), None, "nothing moved: unknown");
        assert_eq!(eta_s(0, 250.0), Some(0.0));
    }

    #[test]
    fn each_report_covers_the_interval_since_the_last() {
        let t0 = Instant::now();
        let mut p = Progress::new(t0);
        assert!(p.catching_up(t0, 0, 1999, 1));
        p.advanced(499, 500, 2000);
        let r = p.report(t0 + S).expect("catching up");
        assert_eq!(
            r,
            Report {
                block: 499,
                head: 1999,
                percent: 25.0,
                blocks_per_s: 500.0,
                logs_per_s: 2000.0,
                eta_s: Some(3.0),
                endpoint: 1,
            }
        );
        // A slower second interval: only its own blocks count.
        p.advanced(999, 500, 0);
        let r = p.report(t0 + 3 * S).expect("catching up");
        assert_eq!((r.block, r.blocks_per_s, r.logs_per_s), (999, 250.0, 0.0));
        assert_eq!(r.eta_s, Some(4.0));
        // Nothing handed over (a reconnect, a full queue): the ETA is unknown.
        let r = p.report(t0 + 4 * S).expect("catching up");
        assert_eq!((r.blocks_per_s, r.eta_s), (0.0, None));
    }

    #[test]
    fn a_new_pass_continues_the_catch_up_and_may_move_the_head() {
        let t0 = Instant::now();
        let mut p = Progress::new(t0);
        assert!(p.catching_up(t0, 100, 199, 0));
        p.advanced(199, 100, 10);
        assert!(!p.catching_up(t0 + S, 200, 299, 2), "same catch-up");
        let r = p.report(t0 + 2 * S).expect("catching up");
        assert_eq!((r.head, r.percent, r.endpoint), (299, 50.0, 2));
        assert_eq!(r.blocks_per_s, 50.0);
    }

    #[test]
    fn live_ends_the_catch_up_once_and_silences_the_reports() {
        let t0 = Instant::now();
        let mut p = Progress::new(t0);
        assert_eq!(
            p.live(t0),
            Some(None),
            "started live: no catch-up to report"
        );
        assert_eq!(p.report(t0 + S), None);
        assert!(p.catching_up(t0 + S, 10, 2009, 0));
        p.advanced(2009, 2000, 7);
        assert_eq!(p.live(t0 + 5 * S), Some(Some((4 * S, 2000))));
        assert_eq!(p.live(t0 + 6 * S), None, "already live");
        assert_eq!(p.report(t0 + 7 * S), None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_timer_reports_only_while_catching_up() {
        let progress = Arc::new(Mutex::new(Progress::new(Instant::now())));
        let timer = tokio::spawn(report_every("c", progress.clone(), S));
        lock(&progress).catching_up(Instant::now(), 0, 99, 0);
        tokio::time::sleep(S + S / 2).await; // paused clock: advances at once
        // The first tick took a report: the interval's mark moved to it.
        assert!(lock(&progress).mark.at > Instant::now() - S);
        lock(&progress).live(Instant::now());
        let mark = lock(&progress).mark.at;
        tokio::time::sleep(3 * S).await;
        assert_eq!(lock(&progress).mark.at, mark, "no report once live");
        timer.abort();
    }
}
