//! One span per block: `block` (chain id, number, hash, log count) with children `fetch`,
//! `encode` and `produce`. The spans cross tasks and a ranged catch-up request fetches
//! many blocks at once, so they are built with explicit start and end times through the
//! OpenTelemetry API rather than as `tracing` spans: the `fetch` child of a block fetched in
//! a range covers that ranged request.
//!
//! Every record of the block carries the W3C `traceparent` of its `block` span, so consumers
//! can continue the trace.

use std::time::SystemTime;

use opentelemetry::global::{self, BoxedSpan, BoxedTracer};
use opentelemetry::trace::{Span, SpanKind, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};

use super::metrics::SCOPE;

/// When a block's data was fetched from the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchTiming {
    /// Request sent.
    pub started: SystemTime,
    /// Answer received and checked.
    pub finished: SystemTime,
}

impl FetchTiming {
    /// A fetch that started at `started` and finished now.
    pub fn since(started: SystemTime) -> Self {
        Self {
            started,
            finished: SystemTime::now(),
        }
    }
}

fn tracer() -> BoxedTracer {
    global::tracer(SCOPE)
}

/// The spans of one block being published.
#[derive(Debug)]
pub struct BlockTrace {
    cx: Context,
    produce: Option<BoxedSpan>,
}

impl BlockTrace {
    /// Starts the `block` span at the fetch's start and records the `fetch` child.
    pub fn start(chain_id: u64, number: u64, hash: &str, logs: usize, fetch: FetchTiming) -> Self {
        let tracer = tracer();
        let block = tracer
            .span_builder("block")
            .with_kind(SpanKind::Producer)
            .with_start_time(fetch.started)
            .with_attributes(vec![
                KeyValue::new("chain.id", chain_id as i64),
                KeyValue::new("block.number", number as i64),
                KeyValue::new("block.hash", hash.to_owned()),
                KeyValue::new("block.log_count", logs as i64),
            ])
            .start(&tracer);
        let cx = Context::new().with_span(block);
        let mut f = tracer
            .span_builder("fetch")
            .with_start_time(fetch.started)
            .start_with_context(&tracer, &cx);
        f.end_with_timestamp(fetch.finished);
        Self { cx, produce: None }
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
        self.produce = Some(
            tracer
                .span_builder("produce")
                .with_kind(SpanKind::Producer)
                .start_with_context(&tracer, &self.cx),
        );
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

    /// Ends `produce` and `block`: every record was acknowledged.
    pub fn acknowledged(mut self, records: usize) {
        if let Some(mut p) = self.produce.take() {
            p.set_attribute(KeyValue::new(
                "messaging.batch.message_count",
                records as i64,
            ));
            p.end();
        }
        self.cx.span().end();
    }
}
