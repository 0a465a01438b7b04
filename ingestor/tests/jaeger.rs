//! Traces in a real backend: the ingestor exports its block traces over OTLP/HTTP to the
//! pinned Jaeger (all in one, in-memory storage), and a block is found again the way an
//! operator looks a slow block up: Jaeger's query API (what its UI searches with), by
//! service name and the tag `block.number`, and by minimum duration. The trace holds the
//! `block` span with the chain, number, hash, log count, the endpoint it was fetched from
//! and the fetch and publish durations, and its `fetch`, `encode` and `produce` children,
//! whose durations lie within the block's. A reorganisation's retraction is a trace of its
//! own, found by its depth: the `retract` span, with its `produce` child.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use devstack::jaeger::Jaeger;
use devstack::proc::wait_for;
use devstack::service::Service;
use devstack::traffic::{LogShapes, reorg_with_logs};
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
    let Stack {
        dir, node, sender, ..
    } = stack;
    let mut sender = sender;
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
        t.get("chain.name").map(String::as_str),
        Some("chain-31337"),
        "{t:?}"
    );
    assert_eq!(
        t.get("rpc.endpoint").map(String::as_str),
        Some("0"),
        "{t:?}"
    );
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
    // The durations as attributes, each that of its child span (Jaeger's microseconds
    // against the attribute's milliseconds: 1 µs of rounding), the publish one within the
    // block's.
    let ms = |name: &str| -> f64 {
        t.get(name)
            .unwrap_or_else(|| panic!("no {name}: {t:?}"))
            .parse()
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let fetch_us = micros(spans(&trace, "fetch")[0], "duration") as f64;
    assert!(
        (ms("fetch.duration_ms") * 1e3 - fetch_us).abs() <= 1.0,
        "fetch.duration_ms {} against the fetch span's {fetch_us} µs",
        ms("fetch.duration_ms")
    );
    let publish = ms("publish.duration_ms");
    assert!(
        publish > 0.0 && publish * 1e3 <= duration as f64 + 1.0,
        "publish.duration_ms {publish} in a block span of {duration} µs"
    );
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

    // A reorganisation of the last 2 blocks: its retraction is a `retract` trace, found by
    // its depth, with the chain, the common ancestor and the tombstones, and a `produce`
    // child.
    let mut shapes = LogShapes::new(74);
    for logs in [3, 2] {
        sender.block(&[shapes.logs(logs)]).expect("a block of logs");
    }
    assert_view_matches_node(&brokers, &topic, &node, 31337);
    let head = node.head().expect("head");
    let orphaned_logs = node.logs(head - 1, head).expect("logs").len();
    reorg_with_logs(&node, 2, &[shapes.logs(2), shapes.logs(1)]).expect("reorg");
    assert_view_matches_node(&brokers, &topic, &node, 31337);
    let by_depth = [
        ("tags", r#"{"reorg.depth":"2"}"#),
        ("limit", "20"),
        ("lookback", "1h"),
    ];
    let retraction = wait_for(
        "Jaeger to return the retraction's trace with its produce span",
        Duration::from_secs(60),
        || {
            jaeger
                .traces(&service_name, &by_depth)
                .ok()?
                .into_iter()
                .find(|t| !spans(t, "retract").is_empty() && !spans(t, "produce").is_empty())
        },
    )
    .unwrap_or_else(|e| panic!("{e}; jaeger log:\n{}", jaeger.process.log_tail(20)));
    let retract = spans(&retraction, "retract");
    assert_eq!(retract.len(), 1, "{retraction}");
    let r = tags(retract[0]);
    assert_eq!(
        r.get("chain.name").map(String::as_str),
        Some("chain-31337"),
        "{r:?}"
    );
    assert_eq!(
        r.get("reorg.ancestor"),
        Some(&(head - 2).to_string()),
        "{r:?}"
    );
    assert_eq!(
        r.get("reorg.tombstones"),
        Some(&orphaned_logs.to_string()),
        "{r:?}"
    );
    assert!(r.contains_key("publish.duration_ms"), "{r:?}");
    assert!(spans(&retraction, "block").is_empty(), "{retraction}");

    stop_cleanly(&mut service);
}
