//! The exposition read back by an independent parser (`prometheus-parse`), and checked
//! against every name the Grafana dashboards query.

use std::collections::BTreeSet;

use opentelemetry::KeyValue;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use prometheus_parse::{LineInfo, Value};

use super::*;
use crate::telemetry::metrics::{Metrics, SCOPE, chain_label};
use crate::telemetry::rpc_metrics::RpcMetrics;

const DASHBOARDS: &[&str] = &[include_str!(
    "../../../../grafana/dashboards/pipeline-overview.json"
)];

/// Every instrument recorded once for chain `ethereum`, then scraped.
fn scraped() -> String {
    let (scrape, reader) = Scrape::new();
    let provider = SdkMeterProvider::builder().with_reader(reader).build();
    let m = Metrics::new(&provider.meter(SCOPE));
    m.register_chain("ethereum");
    let l = chain_label("ethereum");
    let with = |k: &'static str, v: &'static str| [l[0].clone(), KeyValue::new(k, v)];
    m.logs_published.add(400, &l);
    m.blocks_processed.add(1, &l);
    m.chain_head.record(12, &l);
    m.chain_delivered.record(11, &l);
    m.lag_blocks.record(1, &l);
    m.lag_seconds.record(2.5, &l);
    m.catching_up.record(1, &l);
    m.eta.record(42.5, &l);
    m.reorgs.add(1, &l);
    m.reorg_depth.record(2, &l);
    m.retracted.add(3, &l);
    m.dedup_hits.add(4, &l);
    m.decode_failures.add(1, &with("event", "Transfer"));
    m.reconnects.add(1, &l);
    m.breaker_state.record(2, &l);
    m.produce_duration.record(0.003, &l);
    m.produce_duration.record(0.2, &l);
    m.errors.add(
        1,
        &[
            l[0].clone(),
            KeyValue::new("stage", "follow"),
            KeyValue::new("error_type", "say \"hi\"\\\n"),
        ],
    );
    m.rate_limited.add(1, &with("method", "eth_getLogs"));
    m.incomplete_answers.add(1, &with("check", "receipts"));
    m.batch_cuts.add(1, &l);
    m.batch_size.record(50, &l);
    m.endpoint.record(1, &l);
    m.kafka_queue_messages.record(10, &[]);
    m.kafka_queue_bytes.record(1024, &[]);
    let rpc = RpcMetrics::new(&provider.meter(SCOPE));
    rpc.register("ethereum", 2);
    let timeout = crate::rpc::error::RpcError::Timeout {
        method: "eth_getLogs",
        timeout_ms: 1,
    };
    rpc.call(
        "ethereum",
        1,
        3,
        std::time::Duration::from_millis(40),
        Some(&timeout),
    );
    let text = scrape.render().expect("render");
    drop(provider);
    text
}

fn parse(text: &str) -> prometheus_parse::Scrape {
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(
            matches!(LineInfo::parse(line), LineInfo::Sample { .. }),
            "not a sample line: {line}"
        );
    }
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("parses")
}

fn value(scrape: &prometheus_parse::Scrape, name: &str, label: (&str, &str)) -> Value {
    scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == name && (label.0.is_empty() || s.labels.get(label.0) == Some(label.1))
        })
        .unwrap_or_else(|| {
            let seen: Vec<_> = scrape.samples.iter().filter(|s| s.metric == name).collect();
            panic!("no {name}{{{}={:?}}} in {seen:?}", label.0, label.1)
        })
        .value
        .clone()
}

#[test]
fn every_name_the_dashboards_query_is_served() {
    let text = scraped();
    let scrape = parse(&text);
    let served: BTreeSet<String> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect();
    let mut queried = BTreeSet::new();
    for dashboard in DASHBOARDS {
        for (at, _) in dashboard.match_indices("ethhook_") {
            let name: String = dashboard[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            queried.insert(name);
        }
    }
    assert!(queried.len() >= 15, "dashboard names found: {queried:?}");
    let missing: Vec<_> = queried.difference(&served).collect();
    assert!(missing.is_empty(), "queried but not served: {missing:?}");
    // And every metric of the service is there, under its documented name.
    for name in crate::telemetry::metrics::NAMES {
        let base = name.replace('.', "_");
        assert!(
            served.iter().any(|s| s.starts_with(&base)),
            "{name} not served"
        );
    }
    assert!(!scrape.samples.is_empty());
}

#[test]
fn kinds_values_and_labels_survive_an_independent_parser() {
    let text = scraped();
    let scrape = parse(&text);
    let chain = ("chain", "ethereum");
    assert_eq!(
        value(&scrape, "ethhook_logs_published_total", chain),
        Value::Counter(400.0)
    );
    assert_eq!(
        value(&scrape, "ethhook_chain_lag_time_seconds", chain),
        Value::Gauge(2.5)
    );
    assert_eq!(
        value(&scrape, "ethhook_chain_eta_seconds", chain),
        Value::Gauge(42.5)
    );
    assert_eq!(
        value(&scrape, "ethhook_kafka_queue_size_bytes", ("", "")),
        Value::Gauge(1024.0),
        "{text}"
    );
    assert_eq!(
        // The parser keeps escapes as written: the value ends at the right quote, escaped.
        value(
            &scrape,
            "ethhook_errors_total",
            ("error_type", r#"say \"hi\"\\\n"#)
        ),
        Value::Counter(1.0)
    );
    let Value::Histogram(buckets) = value(&scrape, "ethhook_produce_duration_seconds", chain)
    else {
        panic!("not a histogram: {text}");
    };
    let counts: Vec<f64> = buckets.iter().map(|b| b.count).collect();
    assert!(
        counts.windows(2).all(|w| w[0] <= w[1]),
        "cumulative: {counts:?}"
    );
    assert_eq!(
        buckets.last().map(|b| (b.less_than, b.count)),
        Some((f64::INFINITY, 2.0))
    );
    assert_eq!(
        value(&scrape, "ethhook_produce_duration_seconds_count", chain),
        Value::Untyped(2.0)
    );
    assert_eq!(
        scrape.docs.get("ethhook_reorgs_total").map(String::as_str),
        Some("Reorganisations retracted")
    );
}

#[test]
fn names_follow_the_otlp_translation() {
    assert_eq!(
        base_name("ethhook.chain.lag.time", "s"),
        "ethhook_chain_lag_time_seconds"
    );
    assert_eq!(
        base_name("ethhook.kafka.queue.size", "By"),
        "ethhook_kafka_queue_size_bytes"
    );
    assert_eq!(base_name("ethhook.reorgs", "{reorg}"), "ethhook_reorgs");
    assert_eq!(base_name("a.duration_seconds", "s"), "a_duration_seconds");
    assert_eq!(sanitize("9lives-x"), "_9lives_x");
    assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}

#[test]
fn chain_histograms_exist_at_zero_before_their_first_observation() {
    let (scrape, reader) = Scrape::new();
    let provider = SdkMeterProvider::builder().with_reader(reader).build();
    let m = Metrics::new(&provider.meter(SCOPE));
    m.register_chain("quiet");
    m.register_chain("busy");
    m.produce_duration.record(0.2, &chain_label("busy"));
    let mut rm = ResourceMetrics::default();
    scrape.reader.collect(&mut rm).expect("collect");
    let text = render(&rm, &zeros(&m.chains(), &[]));
    let scrape = parse(&text);
    for chain in ["quiet", "busy"] {
        let depth = scrape
            .samples
            .iter()
            .find(|s| s.metric == "ethhook_reorg_depth" && s.labels.get("chain") == Some(chain));
        match depth.map(|s| &s.value) {
            Some(Value::Histogram(buckets)) => {
                assert!(buckets.iter().all(|b| b.count == 0.0), "{text}");
                assert!(buckets.iter().any(|b| b.less_than == 2.0), "{text}");
            }
            other => panic!("{chain}: {other:?}\n{text}"),
        }
    }
    assert_eq!(
        text.matches("# TYPE ethhook_produce_duration_seconds histogram")
            .count(),
        1,
        "{text}"
    );
    assert!(text.contains("ethhook_produce_duration_seconds_count{chain=\"quiet\"} 0"));
    assert!(text.contains("ethhook_produce_duration_seconds_count{chain=\"busy\"} 1"));
    // Every stage and error type a chain can count exists at 0.
    for (chain, stage, error_type) in [
        ("quiet", "publish", "transaction_aborted"),
        ("busy", "follow", "timeout"),
        ("busy", "follow", "inconsistent_answer"),
    ] {
        let found = scrape.samples.iter().find(|s| {
            s.metric == "ethhook_errors_total"
                && s.labels.get("chain") == Some(chain)
                && s.labels.get("stage") == Some(stage)
                && s.labels.get("error_type") == Some(error_type)
        });
        assert!(
            matches!(found.map(|s| &s.value), Some(Value::Counter(v)) if *v == 0.0),
            "{chain} {stage} {error_type}: {found:?}\n{text}"
        );
    }
}

#[test]
fn every_endpoint_has_its_node_metrics_from_the_first_scrape() {
    let (scrape, reader) = Scrape::new();
    let provider = SdkMeterProvider::builder().with_reader(reader).build();
    let rpc = RpcMetrics::new(&provider.meter(SCOPE));
    rpc.register("eth", 2);
    let timeout = crate::rpc::error::RpcError::Timeout {
        method: "eth_getLogs",
        timeout_ms: 1,
    };
    rpc.call(
        "eth",
        1,
        5,
        std::time::Duration::from_millis(40),
        Some(&timeout),
    );
    let mut rm = ResourceMetrics::default();
    scrape.reader.collect(&mut rm).expect("collect");
    let text = render(&rm, &zeros(&[], &rpc.series()));
    let scrape = parse(&text);
    let sample = |name: &str, endpoint: &str, error_type: Option<&str>| {
        scrape
            .samples
            .iter()
            .find(|s| {
                s.metric == name
                    && s.labels.get("chain") == Some("eth")
                    && s.labels.get("endpoint") == Some(endpoint)
                    && error_type.is_none_or(|t| s.labels.get("error_type") == Some(t))
            })
            .map(|s| s.value.clone())
            .unwrap_or_else(|| panic!("no {name} of endpoint {endpoint}\n{text}"))
    };
    let count = |v: Value| match v {
        Value::Counter(c) => c,
        Value::Histogram(buckets) => buckets.last().map_or(-1.0, |b| b.count),
        other => panic!("{other:?}"),
    };
    // The endpoint never used: every series at 0.
    assert_eq!(count(sample("ethhook_rpc_requests_total", "0", None)), 0.0);
    for t in crate::rpc::error::RpcError::TYPES {
        assert_eq!(count(sample("ethhook_rpc_errors_total", "0", Some(t))), 0.0);
    }
    assert_eq!(
        count(sample("ethhook_rpc_duration_seconds", "0", None)),
        0.0
    );
    // The one called: 5 requests, a timeout, one call of 40 ms.
    assert_eq!(count(sample("ethhook_rpc_requests_total", "1", None)), 5.0);
    assert_eq!(
        count(sample("ethhook_rpc_errors_total", "1", Some("timeout"))),
        1.0
    );
    assert_eq!(
        count(sample("ethhook_rpc_duration_seconds", "1", None)),
        1.0
    );
    assert_eq!(
        text.matches("ethhook_rpc_duration_seconds_count{").count(),
        2,
        "{text}"
    );
}
