//! Every log line the service writes, one struct per event. A call site is one line:
//! `events::ChainConnected { .. }.emit()`, and that `emit()` writes the log line, updates
//! the metrics ([`crate::telemetry::metrics`]) and the chain status behind `/status`
//! together, so logs, metrics and health never drift. Labels stay bounded (chain name,
//! stage, error type); hashes and raw node messages go only into the log text.

pub(crate) use std::time::{SystemTime, UNIX_EPOCH};

pub(crate) use opentelemetry::KeyValue;
pub(crate) use tracing::{debug, error, info, warn};

pub(crate) use crate::telemetry::metrics::{chain_label, metrics};
pub(crate) use crate::telemetry::status::{self, ChainState};

pub(crate) fn error_count(chain: Option<&str>, stage: &'static str, error_type: &'static str) {
    let mut labels = vec![
        KeyValue::new("stage", stage),
        KeyValue::new("error_type", error_type),
    ];
    if let Some(c) = chain {
        labels.push(KeyValue::new("chain", c.to_owned()));
    }
    metrics().errors.add(1, &labels);
}

pub(crate) fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

pub(crate) fn now_ms() -> u64 {
    (now_s() * 1e3) as u64
}

/// Records the lag gauges from the chain's status.
pub(crate) fn record_lag(chain: &str, s: &status::ChainStatus) {
    let l = chain_label(chain);
    if let Some(lag) = s.lag_blocks {
        metrics().lag_blocks.record(lag, &l);
    }
    if let Some(lag) = s.lag_seconds {
        metrics().lag_seconds.record(lag, &l);
    }
}

mod follow;
mod group;
mod lifecycle;
mod progress;
mod provider;
mod publish;

pub use follow::*;
pub use group::*;
pub use lifecycle::*;
pub use progress::*;
pub use provider::*;
pub use publish::*;
