//! Events of a chain's catch-up: when it starts, a status line every `status_interval_ms`
//! while it lasts, and the moment the chain is live.

use std::fmt;
use std::time::Duration;

use super::{chain_label, info, metrics, status};
use crate::telemetry::status::Phase;

/// One decimal: what a person reads in a status line.
fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// An ETA in seconds (written like the other numbers of the line: `3.0`, `12.3`), or
/// `unknown` when nothing moved in the last interval.
struct Eta(Option<f64>);

impl fmt::Display for Eta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(s) => write!(f, "{:?}", round1(s)),
            None => f.write_str("unknown"),
        }
    }
}

/// The chain is more than `live_threshold_blocks` behind its head: ranged catch-up begins.
pub struct CatchUpStarted<'a> {
    /// Chain name.
    pub chain: &'a str,
    /// The first block to fetch.
    pub from: u64,
    /// The head it catches up to.
    pub head: u64,
    /// Index in `urls` of the endpoint in use.
    pub endpoint: usize,
}
impl CatchUpStarted<'_> {
    /// Writes the event.
    pub fn emit(self) {
        info!(
            chain = self.chain,
            from = self.from,
            head = self.head,
            blocks = (self.head + 1).saturating_sub(self.from),
            endpoint = self.endpoint,
            "catch-up started"
        );
        metrics().catching_up.record(1, &chain_label(self.chain));
        status::update(self.chain, |s| {
            s.phase = Some(Phase::CatchingUp);
            s.eta_s = None;
        });
    }
}

/// The status line of a chain catching up, once per `status_interval_ms`.
pub struct CatchUpStatus<'a> {
    /// Chain name.
    pub chain: &'a str,
    /// The last block handed to the publisher.
    pub block: u64,
    /// The head it catches up to.
    pub head: u64,
    /// Share of the catch-up done, 0 to 100.
    pub percent: f64,
    /// Blocks handed over per second, over the last interval.
    pub blocks_per_s: f64,
    /// Logs handed over per second, over the last interval.
    pub logs_per_s: f64,
    /// Seconds to reach the head at `blocks_per_s`; `None` when it is 0.
    pub eta_s: Option<f64>,
    /// Index in `urls` of the endpoint in use.
    pub endpoint: usize,
}
impl CatchUpStatus<'_> {
    /// Writes the event.
    pub fn emit(self) {
        info!(
            chain = self.chain,
            block = self.block,
            head = self.head,
            percent = round1(self.percent),
            blocks_per_s = round1(self.blocks_per_s),
            logs_per_s = round1(self.logs_per_s),
            eta_s = %Eta(self.eta_s),
            endpoint = self.endpoint,
            "catching up"
        );
        if let Some(eta) = self.eta_s {
            metrics().eta.record(eta, &chain_label(self.chain));
        }
        status::update(self.chain, |s| {
            s.phase = Some(Phase::CatchingUp);
            s.eta_s = self.eta_s.map(round1);
        });
    }
}

/// The chain reached its head (or came within `live_threshold_blocks` of it): it is live.
/// Logged only when it ends a catch-up; a chain that starts live only updates its status.
pub struct ChainLive<'a> {
    /// Chain name.
    pub chain: &'a str,
    /// The last block handed to the publisher.
    pub block: u64,
    /// The catch-up that ended, if any: how long it took and how many blocks it handed over.
    pub caught_up: Option<(Duration, u64)>,
}
impl ChainLive<'_> {
    /// Writes the event.
    pub fn emit(self) {
        if let Some((took, blocks)) = self.caught_up {
            info!(
                chain = self.chain,
                block = self.block,
                blocks = blocks,
                took_s = round1(took.as_secs_f64()),
                "caught up: following the head live"
            );
        }
        let l = chain_label(self.chain);
        metrics().catching_up.record(0, &l);
        metrics().eta.record(0.0, &l);
        status::update(self.chain, |s| {
            s.phase = Some(Phase::Live);
            s.eta_s = Some(0.0);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_eta_says_so_and_a_known_one_has_one_decimal() {
        assert_eq!(Eta(None).to_string(), "unknown");
        assert_eq!(Eta(Some(12.345)).to_string(), "12.3");
        assert_eq!(Eta(Some(940.0)).to_string(), "940.0");
    }
}
