//! One span per block: `block` (chain id and name, number, hash, log count, the endpoint it
//! was fetched from, and the fetch and publish durations) with children `fetch`, `encode`
//! and `produce`; and one per reorganisation's retraction: `retract` (chain, the common
//! ancestor, the orphaned blocks, the tombstones) with the same `encode` and `produce`
//! children. The spans cross tasks and a ranged catch-up request fetches many blocks at
//! once, so they are built with explicit start and end times through the OpenTelemetry API
//! rather than as `tracing` spans: the `fetch` child of a block fetched in a range covers
//! that ranged request.
//!
//! Every record of the block carries the W3C `traceparent` of its `block` span, so consumers
//! can continue the trace.

use std::time::SystemTime;

use opentelemetry::global::{self, BoxedSpan, BoxedTracer};
use opentelemetry::trace::{Span, SpanKind, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};

use super::metrics::SCOPE;

/// When a block's data was fetched from the node, and from which endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchTiming {
    /// Request sent.
    pub started: SystemTime,
    /// Answer received and checked.
    pub finished: SystemTime,
    /// The endpoint's index in the chain's `urls`, when known.
    pub endpoint: Option<usize>,
}

impl FetchTiming {
    /// A fetch that started at `started` and finished now.
    pub fn since(started: SystemTime) -> Self {
        Self {
            started,
            finished: SystemTime::now(),
            endpoint: None,
        }
    }

    /// The same fetch, from endpoint `i`.
    pub fn from_endpoint(self, i: usize) -> Self {
        Self {
            endpoint: Some(i),
            ..self
        }
    }
}

/// Milliseconds from `from` to `to` (0 if `to` is earlier).
fn ms_between(from: SystemTime, to: SystemTime) -> f64 {
    to.duration_since(from)
        .map(|d| d.as_secs_f64() * 1e3)
        .unwrap_or_default()
}

fn tracer() -> BoxedTracer {
    global::tracer(SCOPE)
}

/// The block a [`BlockTrace::start`] traces.
#[derive(Debug, Clone, Copy)]
pub struct TracedBlock<'a> {
    /// Chain id.
    pub chain_id: u64,
    /// Chain name.
    pub chain: &'a str,
    /// Block number.
    pub number: u64,
    /// Block hash.
    pub hash: &'a str,
    /// Logs in the block.
    pub logs: usize,
}

/// The reorganisation a [`BlockTrace::retraction`] traces.
#[derive(Debug, Clone, Copy)]
pub struct TracedRetraction<'a> {
    /// Chain id.
    pub chain_id: u64,
    /// Chain name.
    pub chain: &'a str,
    /// The last block both branches share.
    pub ancestor: u64,
    /// Blocks orphaned.
    pub orphaned: usize,
    /// Tombstones published.
    pub tombstones: usize,
}

/// The spans of one block (or one retraction) being published.
#[derive(Debug)]
pub struct BlockTrace {
    cx: Context,
    produce: Option<(BoxedSpan, SystemTime)>,
}

impl BlockTrace {
    /// Starts the `block` span at the fetch's start and records the `fetch` child.
    pub fn start(b: TracedBlock<'_>, fetch: FetchTiming) -> Self {
        let tracer = tracer();
        let mut attributes = vec![
            KeyValue::new("chain.id", b.chain_id as i64),
            KeyValue::new("chain.name", b.chain.to_owned()),
            KeyValue::new("block.number", b.number as i64),
            KeyValue::new("block.hash", b.hash.to_owned()),
            KeyValue::new("block.log_count", b.logs as i64),
            KeyValue::new(
                "fetch.duration_ms",
                ms_between(fetch.started, fetch.finished),
            ),
        ];
        if let Some(i) = fetch.endpoint {
            attributes.push(KeyValue::new("rpc.endpoint", i as i64));
        }
        let block = tracer
            .span_builder("block")
            .with_kind(SpanKind::Producer)
            .with_start_time(fetch.started)
            .with_attributes(attributes)
            .start(&tracer);
        let cx = Context::new().with_span(block);
        let mut f = tracer
            .span_builder("fetch")
            .with_start_time(fetch.started)
            .start_with_context(&tracer, &cx);
        f.end_with_timestamp(fetch.finished);
        Self { cx, produce: None }
    }

    /// Starts the `retract` span of a reorganisation's retraction, now.
    pub fn retraction(r: TracedRetraction<'_>) -> Self {
        let tracer = tracer();
        let span = tracer
            .span_builder("retract")
            .with_kind(SpanKind::Producer)
            .with_attributes(vec![
                KeyValue::new("chain.id", r.chain_id as i64),
                KeyValue::new("chain.name", r.chain.to_owned()),
                KeyValue::new("reorg.ancestor", r.ancestor as i64),
                KeyValue::new("reorg.depth", r.orphaned as i64),
                KeyValue::new("reorg.tombstones", r.tombstones as i64),
            ])
            .start(&tracer);
        Self {
            cx: Context::new().with_span(span),
            produce: None,
        }
    }

    /// Records the `encode` child.
    pub fn encoded(&self, started: SystemTime) {
        let tracer = tracer();
        let mut e = tracer
            .span_builder("encode")
            .with_start_time(started)
            .start_with_context(&tracer, &self.cx);
        e.end();
    }

    /// Opens the `produce` child (ended by [`BlockTrace::acknowledged`]).
    pub fn producing(&mut self) {
        let tracer = tracer();
        self.produce = Some((
            tracer
                .span_builder("produce")
                .with_kind(SpanKind::Producer)
                .start_with_context(&tracer, &self.cx),
            SystemTime::now(),
        ));
    }

    /// The W3C `traceparent` of the `block` span; `None` when traces are not exported.
    pub fn traceparent(&self) -> Option<String> {
        let span = self.cx.span();
        let sc = span.span_context();
        sc.is_valid().then(|| {
            format!(
                "00-{}-{}-{:02x}",
                sc.trace_id(),
                sc.span_id(),
                sc.trace_flags().to_u8()
            )
        })
    }

    /// Ends `produce` and the root span: every record was acknowledged (and, in
    /// exactly-once mode, the transaction committed). The root gets `publish.duration_ms`,
    /// from the first record's send to then.
    pub fn acknowledged(mut self, records: usize) {
        let span = self.cx.span();
        if let Some((mut p, started)) = self.produce.take() {
            p.set_attribute(KeyValue::new(
                "messaging.batch.message_count",
                records as i64,
            ));
            p.end();
            span.set_attribute(KeyValue::new(
                "publish.duration_ms",
                ms_between(started, SystemTime::now()),
            ));
        }
        span.set_attribute(KeyValue::new("records", records as i64));
        span.end();
    }
}
