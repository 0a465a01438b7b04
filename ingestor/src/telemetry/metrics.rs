//! Every metric the service exports, with its OpenTelemetry name and unit. The Prometheus
//! name (after an OTLP → Prometheus translation) is given in each doc comment and in
//! `docs/telemetry.md`; the Grafana dashboards query those names, and a test checks that they exist.
//!
//! Labels are bounded: `chain` (the configured chain name), `stage`, `error_type`,
//! `endpoint` (an index in `urls`). Never a URL, a hash, an address or raw error text. The
//! per-endpoint node metrics are in [`super::rpc_metrics`].

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Gauge, Histogram, Meter};

/// The instrumentation scope.
pub const SCOPE: &str = "ethhook-ingestor";

/// The instruments.
pub struct Metrics {
    /// `ethhook.logs.published` `{log}` → `ethhook_logs_published_total`.
    pub logs_published: Counter<u64>,
    /// `ethhook.blocks.processed` `{block}` → `ethhook_blocks_processed_total`.
    pub blocks_processed: Counter<u64>,
    /// `ethhook.chain.head` `{block}` → `ethhook_chain_head`.
    pub chain_head: Gauge<u64>,
    /// `ethhook.chain.delivered` `{block}` → `ethhook_chain_delivered`.
    pub chain_delivered: Gauge<u64>,
    /// `ethhook.chain.lag.blocks` `{block}` → `ethhook_chain_lag_blocks`.
    pub lag_blocks: Gauge<u64>,
    /// `ethhook.chain.lag.time` `s` → `ethhook_chain_lag_time_seconds`: now minus the
    /// timestamp of the last delivered block.
    pub lag_seconds: Gauge<f64>,
    /// `ethhook.chain.catching_up` `{state}` → `ethhook_chain_catching_up`: 1 while the
    /// chain catches up, 0 once it is live.
    pub catching_up: Gauge<u64>,
    /// `ethhook.chain.eta` `s` → `ethhook_chain_eta_seconds`: while catching up, the
    /// estimated time to reach the head at the last interval's block rate; 0 once live.
    pub eta: Gauge<f64>,
    /// `ethhook.reorgs` `{reorg}` → `ethhook_reorgs_total`.
    pub reorgs: Counter<u64>,
    /// `ethhook.reorg.depth` `{block}` → `ethhook_reorg_depth_bucket` / `_sum` / `_count`.
    pub reorg_depth: Histogram<u64>,
    /// `ethhook.records.retracted` `{record}` → `ethhook_records_retracted_total`.
    pub retracted: Counter<u64>,
    /// `ethhook.dedup.hits` `{record}` → `ethhook_dedup_hits_total`.
    pub dedup_hits: Counter<u64>,
    /// `ethhook.decode.failures` `{log}` → `ethhook_decode_failures_total`, by `event`
    /// (the event's record name): logs a configured event's selector and address selected
    /// that its ABI does not decode (published to the raw topic only).
    pub decode_failures: Counter<u64>,
    /// `ethhook.reconnects` `{reconnect}` → `ethhook_reconnects_total`.
    pub reconnects: Counter<u64>,
    /// `ethhook.breaker.state` `{state}` → `ethhook_breaker_state`: 0 closed, 1 half-open,
    /// 2 open.
    pub breaker_state: Gauge<u64>,
    /// `ethhook.produce.duration` `s` → `ethhook_produce_duration_seconds_bucket` / `_sum` /
    /// `_count`: from enqueueing a block's first record to the broker's last acknowledgement.
    pub produce_duration: Histogram<f64>,
    /// `ethhook.errors` `{error}` → `ethhook_errors_total`, by `stage` and `error_type`.
    pub errors: Counter<u64>,
    /// `ethhook.rpc.rate_limited` `{request}` → `ethhook_rpc_rate_limited_total`, by
    /// `method`: answers that were a rate limit (waited out and sent again).
    pub rate_limited: Counter<u64>,
    /// `ethhook.incomplete_answers` `{answer}` → `ethhook_incomplete_answers_total`, by
    /// `check`: node answers refused as incomplete or inconsistent (asked again, never
    /// published). `check` is `log_index`, `bloom`, `receipts`, `block`, `link`,
    /// `header_hash` or `receipts_root`.
    pub incomplete_answers: Counter<u64>,
    /// `ethhook.rpc.batch_cuts` `{cut}` → `ethhook_rpc_batch_cuts_total`: JSON-RPC batches
    /// an endpoint refused for their size (the size then halves).
    pub batch_cuts: Counter<u64>,
    /// `ethhook.rpc.batch_size` `{request}` → `ethhook_rpc_batch_size`: requests per
    /// JSON-RPC batch in use over HTTP (1: no batching; 0 over a WebSocket, whose calls
    /// are pipelined, not batched).
    pub batch_size: Gauge<u64>,
    /// `ethhook.chain.endpoint` `{index}` → `ethhook_chain_endpoint`: the index in `urls`
    /// of the endpoint in use (never its URL).
    pub endpoint: Gauge<u64>,
    /// `ethhook.kafka.queue.messages` `{message}` → `ethhook_kafka_queue_messages`: records
    /// in the producer's queue (librdkafka `msg_cnt`).
    pub kafka_queue_messages: Gauge<u64>,
    /// `ethhook.kafka.queue.size` `By` → `ethhook_kafka_queue_size_bytes` (librdkafka `msg_size`).
    pub kafka_queue_bytes: Gauge<u64>,
    /// `ethhook.sink.stalled` `{state}` → `ethhook_sink_stalled`: 1 while the chain's records
    /// have waited longer than `kafka.stall_warning_ms` for the brokers' acknowledgement,
    /// else 0.
    pub sink_stalled: Gauge<u64>,
    /// `ethhook.chain.stalled` `{state}` → `ethhook_chain_stalled`: 1 while the chain has
    /// delivered no block for `health.stall_after_ms` with its node's head past its last
    /// delivered block, else 0.
    pub chain_stalled: Gauge<u64>,
    /// The chains [`Self::register_chain`] was called for.
    chains: Mutex<BTreeSet<String>>,
}

/// Bucket boundaries of `ethhook.reorg.depth`.
pub const REORG_DEPTH_BOUNDS: &[f64] =
    &[1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 32.0, 64.0, 128.0];

/// Bucket boundaries of `ethhook.produce.duration`.
pub const PRODUCE_DURATION_BOUNDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A histogram by `chain` that `/metrics` writes with zero counts for every registered chain
/// without an observation yet, so that its series exist from the first scrape (an
/// OpenTelemetry histogram has no data point before its first observation).
pub struct ChainHistogram {
    /// The OpenTelemetry name.
    pub name: &'static str,
    /// Its unit.
    pub unit: &'static str,
    /// Its description.
    pub description: &'static str,
    /// Its bucket boundaries.
    pub bounds: &'static [f64],
}

/// The histograms by `chain` (see [`ChainHistogram`]).
pub const CHAIN_HISTOGRAMS: &[ChainHistogram] = &[
    ChainHistogram {
        name: "ethhook.reorg.depth",
        unit: "{block}",
        description: "Depth of each reorganisation (orphaned blocks)",
        bounds: REORG_DEPTH_BOUNDS,
    },
    ChainHistogram {
        name: "ethhook.produce.duration",
        unit: "s",
        description: "From enqueueing a block's first record to its last acknowledgement",
        bounds: PRODUCE_DURATION_BOUNDS,
    },
];

/// Cumulative librdkafka counters, exported as observable counters:
/// `ethhook.kafka.retries` → `ethhook_kafka_retries_total` (request retries), and
/// `ethhook.kafka.errors` → `ethhook_kafka_errors_total` (transmission errors), summed over
/// brokers, from `ClientContext::stats`.
pub static KAFKA_RETRIES: AtomicU64 = AtomicU64::new(0);
/// See [`KAFKA_RETRIES`].
pub static KAFKA_ERRORS: AtomicU64 = AtomicU64::new(0);

/// Every exported OpenTelemetry metric name (the observable ones included).
pub const NAMES: &[&str] = &[
    "ethhook.logs.published",
    "ethhook.blocks.processed",
    "ethhook.chain.head",
    "ethhook.chain.delivered",
    "ethhook.chain.lag.blocks",
    "ethhook.chain.lag.time",
    "ethhook.chain.catching_up",
    "ethhook.chain.eta",
    "ethhook.reorgs",
    "ethhook.reorg.depth",
    "ethhook.records.retracted",
    "ethhook.dedup.hits",
    "ethhook.decode.failures",
    "ethhook.reconnects",
    "ethhook.breaker.state",
    "ethhook.produce.duration",
    "ethhook.errors",
    "ethhook.rpc.rate_limited",
    "ethhook.incomplete_answers",
    "ethhook.rpc.batch_cuts",
    "ethhook.rpc.batch_size",
    "ethhook.rpc.requests",
    "ethhook.rpc.errors",
    "ethhook.rpc.duration",
    "ethhook.chain.endpoint",
    "ethhook.kafka.queue.messages",
    "ethhook.kafka.queue.size",
    "ethhook.kafka.retries",
    "ethhook.kafka.errors",
    "ethhook.sink.stalled",
    "ethhook.chain.stalled",
];

impl Metrics {
    /// The instruments, created from `meter`.
    pub(crate) fn new(meter: &Meter) -> Self {
        let counter = |name: &'static str, unit: &'static str, doc: &'static str| {
            meter
                .u64_counter(name)
                .with_unit(unit)
                .with_description(doc)
                .build()
        };
        let gauge = |name: &'static str, unit: &'static str, doc: &'static str| {
            meter
                .u64_gauge(name)
                .with_unit(unit)
                .with_description(doc)
                .build()
        };
        meter
            .u64_observable_counter("ethhook.kafka.retries")
            .with_unit("{request}")
            .with_description("Kafka request retries (librdkafka statistics)")
            .with_callback(|o| o.observe(KAFKA_RETRIES.load(Ordering::Relaxed), &[]))
            .build();
        meter
            .u64_observable_counter("ethhook.kafka.errors")
            .with_unit("{error}")
            .with_description("Kafka transmission errors (librdkafka statistics)")
            .with_callback(|o| o.observe(KAFKA_ERRORS.load(Ordering::Relaxed), &[]))
            .build();
        Self {
            logs_published: counter(
                "ethhook.logs.published",
                "{log}",
                "Log records acknowledged by the broker",
            ),
            blocks_processed: counter(
                "ethhook.blocks.processed",
                "{block}",
                "Blocks whose records were all acknowledged",
            ),
            chain_head: gauge(
                "ethhook.chain.head",
                "{block}",
                "The node's head (latest, safe or finalized, less confirmations)",
            ),
            chain_delivered: gauge(
                "ethhook.chain.delivered",
                "{block}",
                "The last fully acknowledged block",
            ),
            lag_blocks: gauge(
                "ethhook.chain.lag.blocks",
                "{block}",
                "Head minus last delivered block",
            ),
            lag_seconds: meter
                .f64_gauge("ethhook.chain.lag.time")
                .with_unit("s")
                .with_description("Now minus the timestamp of the last delivered block")
                .build(),
            catching_up: gauge(
                "ethhook.chain.catching_up",
                "{state}",
                "1 while the chain catches up, 0 once it is live",
            ),
            eta: meter
                .f64_gauge("ethhook.chain.eta")
                .with_unit("s")
                .with_description(
                    "Estimated time to reach the head at the last interval's block rate (0: live)",
                )
                .build(),
            reorgs: counter("ethhook.reorgs", "{reorg}", "Reorganisations retracted"),
            reorg_depth: meter
                .u64_histogram(CHAIN_HISTOGRAMS[0].name)
                .with_unit(CHAIN_HISTOGRAMS[0].unit)
                .with_description(CHAIN_HISTOGRAMS[0].description)
                .with_boundaries(CHAIN_HISTOGRAMS[0].bounds.to_vec())
                .build(),
            retracted: counter(
                "ethhook.records.retracted",
                "{record}",
                "Tombstones published for orphaned records",
            ),
            dedup_hits: counter(
                "ethhook.dedup.hits",
                "{record}",
                "Records skipped as already produced with the same value",
            ),
            decode_failures: counter(
                "ethhook.decode.failures",
                "{log}",
                "Logs a configured event selected that its ABI does not decode",
            ),
            reconnects: counter(
                "ethhook.reconnects",
                "{reconnect}",
                "Connections to the node after a failure",
            ),
            breaker_state: gauge(
                "ethhook.breaker.state",
                "{state}",
                "Circuit breaker: 0 closed, 1 half-open, 2 open",
            ),
            produce_duration: meter
                .f64_histogram(CHAIN_HISTOGRAMS[1].name)
                .with_unit(CHAIN_HISTOGRAMS[1].unit)
                .with_description(CHAIN_HISTOGRAMS[1].description)
                .with_boundaries(CHAIN_HISTOGRAMS[1].bounds.to_vec())
                .build(),
            errors: counter("ethhook.errors", "{error}", "Errors by stage and type"),
            rate_limited: counter(
                "ethhook.rpc.rate_limited",
                "{request}",
                "Node answers that were a rate limit (waited out, then sent again)",
            ),
            incomplete_answers: counter(
                "ethhook.incomplete_answers",
                "{answer}",
                "Node answers refused as incomplete or inconsistent, by check",
            ),
            batch_cuts: counter(
                "ethhook.rpc.batch_cuts",
                "{cut}",
                "JSON-RPC batches refused for their size (the size halves)",
            ),
            batch_size: gauge(
                "ethhook.rpc.batch_size",
                "{request}",
                "Requests per JSON-RPC batch in use (1: none)",
            ),
            endpoint: gauge(
                "ethhook.chain.endpoint",
                "{index}",
                "Index in `urls` of the endpoint in use",
            ),
            kafka_queue_messages: gauge(
                "ethhook.kafka.queue.messages",
                "{message}",
                "Records in the producer queue",
            ),
            kafka_queue_bytes: gauge(
                "ethhook.kafka.queue.size",
                "By",
                "Bytes in the producer queue",
            ),
            sink_stalled: gauge(
                "ethhook.sink.stalled",
                "{state}",
                "1 while the chain's records wait for the brokers past kafka.stall_warning_ms",
            ),
            chain_stalled: gauge(
                "ethhook.chain.stalled",
                "{state}",
                "1 while the chain delivers nothing past health.stall_after_ms behind its head",
            ),
            chains: Mutex::default(),
        }
    }

    /// Sets every counter of `chain` to exist at 0 (`ethhook.errors` for every stage and
    /// error type of a chain), so dashboards and alerts see 0 rather than no data; `/metrics`
    /// writes its [`CHAIN_HISTOGRAMS`] with zero counts until their first observation.
    pub fn register_chain(&self, chain: &str) {
        let l = chain_label(chain);
        if let Ok(mut chains) = self.chains.lock() {
            chains.insert(chain.to_owned());
        }
        let follow = crate::rpc::error::RpcError::TYPES
            .iter()
            .chain(crate::follower::FollowError::TYPES)
            .map(|t| ("follow", *t));
        let publish = crate::sink::SinkError::TYPES
            .iter()
            .map(|t| ("publish", *t));
        for (stage, error_type) in follow.chain(publish) {
            self.errors.add(
                0,
                &[
                    KeyValue::new("stage", stage),
                    KeyValue::new("error_type", error_type),
                    l[0].clone(),
                ],
            );
        }
        for c in [
            &self.logs_published,
            &self.blocks_processed,
            &self.reorgs,
            &self.retracted,
            &self.dedup_hits,
            &self.decode_failures,
            &self.reconnects,
            &self.batch_cuts,
        ] {
            c.add(0, &l);
        }
        for check in ["bloom", "header_hash", "receipts_root"] {
            self.incomplete_answers
                .add(0, &[l[0].clone(), KeyValue::new("check", check)]);
        }
        self.rate_limited
            .add(0, &[l[0].clone(), KeyValue::new("method", "eth_getLogs")]);
        self.breaker_state.record(0, &l);
        self.sink_stalled.record(0, &l);
        self.chain_stalled.record(0, &l);
    }
}

impl Metrics {
    /// The chains registered so far ([`Self::register_chain`]).
    pub fn chains(&self) -> Vec<String> {
        self.chains
            .lock()
            .map(|c| c.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// `[chain=<name>]`.
pub fn chain_label(chain: &str) -> [KeyValue; 1] {
    [KeyValue::new("chain", chain.to_owned())]
}

static METRICS: LazyLock<Metrics> =
    LazyLock::new(|| Metrics::new(&opentelemetry::global::meter(SCOPE)));

/// The instruments, created on first use from the global meter provider (install the
/// provider first: see [`super::init`]).
pub fn metrics() -> &'static Metrics {
    &METRICS
}

/// Group mode's instruments (`[group]`), created at the first group event, so an instance
/// without a group exports none of them.
pub struct GroupMetrics {
    /// `ethhook.group.chains_owned` `{chain}` → `ethhook_group_chains_owned`: chains this
    /// instance owns, by `group`.
    pub chains_owned: Gauge<u64>,
    /// `ethhook.group.generation` `{generation}` → `ethhook_group_generation`: the group
    /// generation this member joined last.
    pub generation: Gauge<u64>,
    /// `ethhook.group.handovers` `{handover}` → `ethhook_group_handovers_total`: chains
    /// taken over by this instance (first commit after an assignment), by `chain`.
    pub handovers: Counter<u64>,
    /// `ethhook.group.handover.duration` `s` →
    /// `ethhook_group_handover_duration_seconds_bucket` / `_sum` / `_count`: from a chain's
    /// assignment to this instance to its first committed transaction here, by `chain`.
    pub handover_duration: Histogram<f64>,
    /// `ethhook.group.revocations` `{revocation}` → `ethhook_group_revocations_total`:
    /// chains given up by this instance, by `chain` and `kind` (`revoked`, `lost`).
    pub revocations: Counter<u64>,
    /// `ethhook.group.mismatch` `{state}` → `ethhook_group_mismatch`: 1 while a live member
    /// of the group lists other chains, else 0.
    pub mismatch: Gauge<u64>,
}

/// Every group-mode metric name (exported only with `[group]`).
pub const GROUP_NAMES: &[&str] = &[
    "ethhook.group.chains_owned",
    "ethhook.group.generation",
    "ethhook.group.handovers",
    "ethhook.group.handover.duration",
    "ethhook.group.revocations",
    "ethhook.group.mismatch",
];

impl GroupMetrics {
    fn new(meter: &Meter) -> Self {
        Self {
            chains_owned: meter
                .u64_gauge("ethhook.group.chains_owned")
                .with_unit("{chain}")
                .with_description("Chains this instance owns in its group")
                .build(),
            generation: meter
                .u64_gauge("ethhook.group.generation")
                .with_unit("{generation}")
                .with_description("The group generation this member joined last")
                .build(),
            handovers: meter
                .u64_counter("ethhook.group.handovers")
                .with_unit("{handover}")
                .with_description("Chains taken over by this instance")
                .build(),
            handover_duration: meter
                .f64_histogram("ethhook.group.handover.duration")
                .with_unit("s")
                .with_description("From a chain's assignment to its first commit here")
                .with_boundaries(vec![
                    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0,
                ])
                .build(),
            revocations: meter
                .u64_counter("ethhook.group.revocations")
                .with_unit("{revocation}")
                .with_description("Chains given up by this instance (revoked or lost)")
                .build(),
            mismatch: meter
                .u64_gauge("ethhook.group.mismatch")
                .with_unit("{state}")
                .with_description("1 while a live member of the group lists other chains")
                .build(),
        }
    }
}

static GROUP_METRICS: LazyLock<GroupMetrics> =
    LazyLock::new(|| GroupMetrics::new(&opentelemetry::global::meter(SCOPE)));

/// Group mode's instruments (see [`GroupMetrics`]).
pub fn group_metrics() -> &'static GroupMetrics {
    &GROUP_METRICS
}
