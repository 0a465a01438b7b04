//! Per-endpoint node metrics, so a bad provider shows before the breaker fails it over:
//! requests, errors by type, and the time each call took, by `chain` and `endpoint` (the
//! index in `urls`, never the URL).
//!
//! - `ethhook.rpc.requests` `{request}` → `ethhook_rpc_requests_total`: JSON-RPC requests
//!   sent (each request of a batch counts, and each time a rate-limited one is sent again).
//! - `ethhook.rpc.errors` `{error}` → `ethhook_rpc_errors_total`, by `error_type` (the
//!   types of `ethhook_errors_total{stage="follow"}` that a node causes): failed calls,
//!   connections refused, and rate limits waited out.
//! - `ethhook.rpc.duration` `s` → `ethhook_rpc_duration_seconds_bucket` / `_sum` /
//!   `_count`: from sending a call (a batch: all its requests) to its answer, rate-limit
//!   waits excluded.
//!
//! Every endpoint of a chain exists at 0 from the chain's start, the histogram included
//! (`/metrics` writes it with zero counts until its first observation). One [`RpcMetrics`]
//! is made by [`super::init`] and handed to every chain's follower and to `/metrics`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter};

use super::metrics::ChainHistogram;
use crate::rpc::error::RpcError;

/// Bucket boundaries of `ethhook.rpc.duration`.
pub const RPC_DURATION_BOUNDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// `ethhook.rpc.duration`, written with zero counts for every registered endpoint.
pub const RPC_DURATION: ChainHistogram = ChainHistogram {
    name: "ethhook.rpc.duration",
    unit: "s",
    description: "From sending a node call (a batch: all its requests) to its answer",
    bounds: RPC_DURATION_BOUNDS,
};

/// The names this module exports.
pub const NAMES: &[&str] = &[
    "ethhook.rpc.requests",
    "ethhook.rpc.errors",
    RPC_DURATION.name,
];

/// The instruments.
#[derive(Debug)]
pub struct RpcMetrics {
    requests: Counter<u64>,
    errors: Counter<u64>,
    duration: Histogram<f64>,
    /// Chain → how many endpoints it has.
    endpoints: Mutex<BTreeMap<String, usize>>,
}

/// `[chain, endpoint]`.
fn labels(chain: &str, endpoint: usize) -> [KeyValue; 2] {
    [
        KeyValue::new("chain", chain.to_owned()),
        KeyValue::new("endpoint", endpoint.to_string()),
    ]
}

impl RpcMetrics {
    /// The instruments, created from `meter`.
    pub fn new(meter: &Meter) -> Self {
        Self {
            requests: meter
                .u64_counter(NAMES[0])
                .with_unit("{request}")
                .with_description("JSON-RPC requests sent to the endpoint")
                .build(),
            errors: meter
                .u64_counter(NAMES[1])
                .with_unit("{error}")
                .with_description("Failed calls, refused connections and rate limits, by type")
                .build(),
            duration: meter
                .f64_histogram(RPC_DURATION.name)
                .with_unit(RPC_DURATION.unit)
                .with_description(RPC_DURATION.description)
                .with_boundaries(RPC_DURATION.bounds.to_vec())
                .build(),
            endpoints: Mutex::default(),
        }
    }

    /// Makes every series of `chain`'s `count` endpoints exist at 0.
    pub fn register(&self, chain: &str, count: usize) {
        if let Ok(mut e) = self.endpoints.lock() {
            e.insert(chain.to_owned(), count);
        }
        for i in 0..count {
            let l = labels(chain, i);
            self.requests.add(0, &l);
            for t in RpcError::TYPES {
                self.errors.add(0, &with_type(&l, t));
            }
        }
    }

    /// One call to endpoint `endpoint` of `chain`: `requests` sent, answered after
    /// `elapsed`, failed with `error` if it did.
    pub fn call(
        &self,
        chain: &str,
        endpoint: usize,
        requests: u64,
        elapsed: Duration,
        error: Option<&RpcError>,
    ) {
        let l = labels(chain, endpoint);
        self.requests.add(requests, &l);
        self.duration.record(elapsed.as_secs_f64(), &l);
        if let Some(e) = error {
            self.failed(chain, endpoint, e);
        }
    }

    /// An error from endpoint `endpoint` of `chain` outside a timed call (a refused
    /// connection, a rate limit waited out).
    pub fn failed(&self, chain: &str, endpoint: usize, e: &RpcError) {
        self.errors
            .add(1, &with_type(&labels(chain, endpoint), e.error_type()));
    }

    /// Every registered `[chain, endpoint]`.
    pub fn series(&self) -> Vec<[KeyValue; 2]> {
        let Ok(e) = self.endpoints.lock() else {
            return Vec::new();
        };
        e.iter()
            .flat_map(|(chain, n)| (0..*n).map(move |i| labels(chain, i)))
            .collect()
    }
}

fn with_type(l: &[KeyValue; 2], t: &'static str) -> [KeyValue; 3] {
    [l[0].clone(), l[1].clone(), KeyValue::new("error_type", t)]
}
