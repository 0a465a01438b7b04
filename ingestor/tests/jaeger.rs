//! Traces in a real backend: the ingestor exports its block traces over OTLP/HTTP to the
//! pinned Jaeger (all in one, in-memory storage), and a block is found again the way an
//! operator looks a slow block up: Jaeger's query API (what its UI searches with), by
//! service name and the tag `block.number`, and by minimum duration. The trace holds the
//! `block` span with the chain, number, hash and log count, and its `fetch`, `encode` and
//! `produce` children, whose durations lie within the block's.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use devstack::jaeger::Jaeger;
use devstack::proc::wait_for;
use devstack::service::Service;
use serde_json::Value;

/// A span's tags as strings (Jaeger's JSON gives numbers as numbers).
fn tags(span: &Value) -> BTreeMap<String, String> {
    span["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            let v = match &t["value"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (t["key"].as_str().unwrap_or_default().to_owned(), v)
        })
        .collect()
}

fn spans<'a>(trace: &'a Value, name: &str) -> Vec<&'a Value> {
    trace["spans"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["operationName"] == name)
        .collect()
}

/// The `block` span of `trace` for block `number`, once its three children arrived too.
fn complete(trace: &Value, number: u64) -> bool {
    spans(trace, "block")
        .iter()
        .any(|b| tags(b).get("block.number") == Some(&number.to_string()))
        && ["fetch", "encode", "produce"]
            .iter()
            .all(|c| !spans(trace, c).is_empty())
}

fn micros(span: &Value, field: &str) -> u64 {
    span[field]
        .as_u64()
        .unwrap_or_else(|| panic!("span without {field}: {span}"))
}

#[test]
fn a_block_is_found_in_jaeger_by_its_number_with_its_spans() {
    let stack = Stack::start(73, 4);
    let toml = stack.config(&[]);
    let (brokers, topic) = (stack.brokers(), stack.topic());
    let Stack { dir, node, .. } = stack;
    // Declared after `dir`: stopped before the directory with its log goes.
    let jaeger = Jaeger::start(dir.path()).expect("jaeger");
    let service_name = format!("ethhook-jaeger-{}", std::process::id());
    let endpoint = jaeger.otlp_http_endpoint();
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "300"),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("OTEL_SERVICE_NAME", service_name.as_str()),
    ];
    let mut service = Service::start(BIN.as_ref(), dir.path(), &toml, &env).expect("ingestor");
    assert_view_matches_node(&brokers, &topic, &node, 31337);

    // The known block: the history's block with the most logs.
    let head = node.head().expect("head");
    let (number, logs) = (1..=head)
        .map(|n| (n, node.logs(n, n).expect("logs").len()))
        .max_by_key(|&(n, logs)| (logs, std::cmp::Reverse(n)))
        .expect("a block");
    assert!(logs > 0, "the history has no block with logs");
    let hash = node.block(number).expect("block")["hash"]
        .as_str()
        .expect("hash")
        .to_owned();

    let by_tag = [
        ("tags", format!(r#"{{"block.number":"{number}"}}"#)),
        ("limit", "20".to_owned()),
        ("lookback", "1h".to_owned()),
    ];
    let by_tag: Vec<(&str, &str)> = by_tag.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let trace = wait_for(
        &format!(
            "Jaeger to return the trace of block {number} with its fetch, encode and produce spans"
        ),
        Duration::from_secs(60),
        || {
            jaeger
                .traces(&service_name, &by_tag)
                .ok()?
                .into_iter()
                .find(|t| complete(t, number))
        },
    )
    .unwrap_or_else(|e| panic!("{e}; jaeger log:\n{}", jaeger.process.log_tail(20)));

    // The service, as the resource named it.
    let process = &trace["processes"][trace["spans"][0]["processID"].as_str().expect("processID")];
    assert_eq!(process["serviceName"], service_name.as_str(), "{process}");

    // The block span: chain, number, hash, log count.
    let blocks = spans(&trace, "block");
    assert_eq!(blocks.len(), 1, "one block span per trace: {trace}");
    let block = blocks[0];
    let t = tags(block);
    assert_eq!(
        t.get("chain.id").map(String::as_str),
        Some("31337"),
        "{t:?}"
    );
    assert_eq!(t.get("block.number"), Some(&number.to_string()), "{t:?}");
    assert_eq!(t.get("block.hash"), Some(&hash), "{t:?}");
    assert_eq!(t.get("block.log_count"), Some(&logs.to_string()), "{t:?}");
    assert_eq!(
        t.get("span.kind").map(String::as_str),
        Some("producer"),
        "{t:?}"
    );

    // Its children: each a child of the block span, within its time (Jaeger keeps
    // microseconds: 1 µs of rounding allowed), fetch and produce taking time.
    let (start, duration) = (micros(block, "startTime"), micros(block, "duration"));
    let block_id = block["spanID"].as_str().expect("spanID");
    for child in ["fetch", "encode", "produce"] {
        let found = spans(&trace, child);
        assert_eq!(found.len(), 1, "one {child} span: {trace}");
        let span = found[0];
        let parent = span["references"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["refType"] == "CHILD_OF")
            .unwrap_or_else(|| panic!("{child}: no parent: {span}"));
        assert_eq!(parent["spanID"], block_id, "{child}'s parent");
        let (s, d) = (micros(span, "startTime"), micros(span, "duration"));
        assert!(
            s + 1 >= start && s + d <= start + duration + 1,
            "{child} ({s}+{d} µs) outside the block span ({start}+{duration} µs)"
        );
        if child != "encode" {
            assert!(d > 0, "{child} took no time: {span}");
        }
    }
    let produce = tags(spans(&trace, "produce")[0]);
    let records: u64 = produce["messaging.batch.message_count"]
        .parse()
        .expect("record count");
    assert!(records >= 1, "{produce:?}");

    // The slow-block search: by service and minimum duration (the block's own) the trace is
    // among the answers.
    let min = format!("{duration}us");
    let by_duration = [
        ("minDuration", min.as_str()),
        ("limit", "1000"),
        ("lookback", "1h"),
    ];
    let ids: Vec<String> = jaeger
        .traces(&service_name, &by_duration)
        .expect("traces by duration")
        .iter()
        .map(|t| t["traceID"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        ids.iter().any(|id| trace["traceID"] == id.as_str()),
        "minDuration={min}: {} traces, not {}",
        ids.len(),
        trace["traceID"]
    );

    stop_cleanly(&mut service);
}
