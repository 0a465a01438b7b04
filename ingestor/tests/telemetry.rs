//! Telemetry end to end: the ingestor (against anvil and Apache Kafka) exports OTLP traces and
//! metrics to a receiver that lives in the test and decodes them with the
//! `opentelemetry-proto` types; records carry the block span's `traceparent`; every metric
//! the Grafana dashboards query is exported under that Prometheus name; secrets in `ws_url`
//! reach neither logs nor telemetry; the health endpoint answers, and `/metrics` serves the
//! same names in the Prometheus text format; a dead collector does not stop ingestion.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::otlp::{OtlpReceiver, attrs, prometheus_names};
use common::proxy::WsProxy;
use common::*;
use devstack::anvil::Anvil;
use devstack::consumer::TopicReader;
use devstack::proc::{free_port, wait_for};
use devstack::service::{Service, config_toml};
use devstack::traffic::{LogShapes, Sender, reorg_with_logs};

const SECRETS: [&str; 2] = ["SECRETPATHKEY123", "SECRETQUERYKEY456"];
const DASHBOARDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../grafana/dashboards");

/// Every metric name the service documents (`ingestor::telemetry::metrics::NAMES`).
fn documented() -> BTreeSet<String> {
    ingestor::telemetry::metrics::NAMES
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
}

/// `ethhook_*` identifiers in every `expr` of every dashboard.
fn dashboard_metrics() -> BTreeSet<String> {
    fn walk(v: &serde_json::Value, out: &mut BTreeSet<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    if let (true, Some(expr)) = (k == "expr", v.as_str()) {
                        for (i, _) in expr.match_indices("ethhook_") {
                            let name: String = expr[i..]
                                .chars()
                                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                                .collect();
                            out.insert(name);
                        }
                    }
                    walk(v, out);
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(DASHBOARDS).expect("grafana/dashboards") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("dashboard");
        let json: serde_json::Value = serde_json::from_str(&text).expect("dashboard JSON");
        walk(&json, &mut out);
    }
    out
}

#[test]
fn traces_metrics_and_traceparent_reach_an_otlp_receiver_and_dashboards_match() {
    let dir = tempdir();
    let otlp = OtlpReceiver::start();
    let (brokers, names) = (shared_brokers(), Names::new());
    let topic = names.topic(31337);
    let anvil = Anvil::start(31337, dir.path()).expect("anvil");
    let node = anvil.node();
    let proxy = WsProxy::start(anvil.port);
    let mut sender = Sender::new(node.clone()).expect("sender");
    let mut shapes = LogShapes::new(51);
    let history = mine_history(&mut sender, &mut shapes, 4).expect("history");

    // An API key in the path and in the query of ws_url: it must never be written anywhere.
    let ws_url = format!("{}/v2/{}?apikey={}", proxy.ws_url(), SECRETS[0], SECRETS[1]);
    let toml = names.config(&brokers, &[fast_retry_entry(31337, ws_url)], "");
    let endpoint = otlp.endpoint();
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "300"),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("OTEL_SERVICE_NAME", "ethhook-test"),
        ("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test"),
    ];
    let mut service = Service::start(BIN.as_ref(), dir.path(), &toml, &env).expect("ingestor");
    let mut reader = TopicReader::new(&brokers, &topic).expect("reader");
    let mut records = Vec::new();
    reader
        .read_until(&mut records, READ_DEADLINE, |r| r.len() >= history)
        .expect("history published");
    // A reorganisation, so that the reorg metrics have data too.
    // (The block must be published before it is orphaned, or there is nothing to retract.)
    sender.block(&[shapes.logs(4)]).expect("block");
    assert_view_matches_node(&brokers, &topic, &node, 31337);
    reorg_with_logs(&node, 1, &[shapes.logs(2)]).expect("reorg");
    Sender::new(node.clone())
        .expect("sender")
        .block(&[shapes.logs(3)])
        .expect("block");
    // A dropped connection, so that the error and reconnect metrics have data too.
    proxy.cut();
    wait_for("a failed node call", Duration::from_secs(60), || {
        service
            .process
            .log_text()
            .contains("node call failed")
            .then_some(())
    })
    .expect("the cut was noticed");
    proxy.restore();
    assert_view_matches_node(&brokers, &topic, &node, 31337);
    let head = node.head().expect("head");

    // Metrics: every documented metric arrives.
    let metrics = wait_for("every documented metric", Duration::from_secs(60), || {
        let m = otlp.metrics();
        documented().iter().all(|n| m.contains_key(n)).then_some(m)
    })
    .unwrap_or_else(|e| panic!("{e}; got {:?}", otlp.metrics().keys().collect::<Vec<_>>()));

    // Dashboards query only what is exported, under its Prometheus name.
    let exported: BTreeSet<String> = metrics
        .iter()
        .flat_map(|(name, (unit, kind))| prometheus_names(name, unit, kind))
        .collect();
    let queried = dashboard_metrics();
    assert!(
        queried.len() >= 15,
        "dashboards query too little: {queried:?}"
    );
    let unknown: Vec<_> = queried.difference(&exported).collect();
    assert!(
        unknown.is_empty(),
        "dashboards query metrics the service does not export: {unknown:?}; exported: {exported:?}"
    );

    // Labels are bounded: only chain, stage, error_type, the method of a rate-limited
    // call (one of the follower's few `eth_*` calls), the check an incomplete answer
    // failed, and an endpoint's index in `urls` (never its URL); never a hash.
    const CHECKS: [&str; 7] = [
        "receipts",
        "log_index",
        "bloom",
        "block",
        "link",
        "header_hash",
        "receipts_root",
    ];
    for (k, v) in otlp.metric_attributes() {
        assert!(
            ["chain", "stage", "error_type"].contains(&k.as_str())
                || (k == "method" && v.starts_with("eth_"))
                || (k == "check" && CHECKS.contains(&v.as_str()))
                || (k == "endpoint" && v.parse::<usize>().is_ok()),
            "label {k}={v}"
        );
        assert!(!v.starts_with("0x"), "label {k}={v}");
    }

    // Traces: a `block` span per block up to the head, with fetch/encode/produce children.
    let spans = wait_for("a block span for the head", Duration::from_secs(60), || {
        let spans = otlp.spans();
        spans
            .iter()
            .any(|s| {
                s.name == "block"
                    && attrs(&s.attributes).get("block.number") == Some(&head.to_string())
            })
            .then_some(spans)
    })
    .expect("block spans");
    let mut blocks: BTreeMap<u64, &opentelemetry_proto::tonic::trace::v1::Span> = BTreeMap::new();
    for s in spans.iter().filter(|s| s.name == "block") {
        let a = attrs(&s.attributes);
        assert_eq!(a.get("chain.id").map(String::as_str), Some("31337"));
        let number: u64 = a["block.number"].parse().expect("number");
        let want = node.block(number).expect("block");
        if a["block.hash"] == want["hash"].as_str().unwrap_or_default() {
            blocks.insert(number, s);
        }
    }
    for n in 0..=head {
        let span = blocks
            .get(&n)
            .unwrap_or_else(|| panic!("no block span for canonical block {n}"));
        let logs = node.logs(n, n).expect("logs").len();
        assert_eq!(
            attrs(&span.attributes)["block.log_count"],
            logs.to_string(),
            "block {n}"
        );
        for child in ["fetch", "encode", "produce"] {
            assert!(
                spans.iter().any(|s| s.name == child
                    && s.trace_id == span.trace_id
                    && s.parent_span_id == span.span_id),
                "block {n}: no {child} child span"
            );
        }
    }
    let resource = otlp.resources().into_iter().next().expect("a resource");
    assert_eq!(
        resource.get("service.name").map(String::as_str),
        Some("ethhook-test")
    );
    assert_eq!(
        resource.get("deployment.environment").map(String::as_str),
        Some("test")
    );

    // Every record carries its block span's traceparent.
    let mut all = Vec::new();
    TopicReader::new(&brokers, &topic)
        .expect("reader")
        .read_to_end(&mut all, READ_DEADLINE)
        .expect("read");
    let by_trace: BTreeMap<String, String> = spans
        .iter()
        .filter(|s| s.name == "block")
        .map(|s| {
            (
                format!(
                    "00-{}-{}-01",
                    hex::encode(&s.trace_id),
                    hex::encode(&s.span_id)
                ),
                attrs(&s.attributes)["block.hash"].clone(),
            )
        })
        .collect();
    for r in all.iter().filter(|r| r.log.is_some()) {
        let tp = r
            .headers
            .iter()
            .find(|(k, _)| k == "traceparent")
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("record {} has no traceparent", r.key));
        let hash = by_trace
            .get(&tp)
            .unwrap_or_else(|| panic!("record {}: traceparent {tp} names no block span", r.key));
        assert_eq!(
            Some(hash),
            r.log.as_ref().map(|l| &l.block_hash),
            "record {}",
            r.key
        );
    }

    // Health endpoint.
    let addr = service.health_addr().expect("health address logged");
    assert_eq!(http_get(&addr, "/healthz"), (200, "ok\n".into()));
    let ready = wait_for("ready", Duration::from_secs(30), || {
        let (code, body) = http_get(&addr, "/readyz");
        (code == 200).then_some(body)
    });
    assert!(ready.is_ok(), "{:?}", http_get(&addr, "/readyz"));
    let (code, body) = http_get(&addr, "/status");
    assert_eq!(code, 200);
    let status: serde_json::Value = serde_json::from_str(&body).expect("status JSON");
    let chain = &status["chains"]["chain-31337"];
    assert_eq!(chain["chain_id"], 31337);
    assert_eq!(chain["state"], "following");
    assert_eq!(chain["delivered"], head);
    assert_eq!(chain["lag_blocks"], 0);
    assert_eq!(chain["reorgs"], 1);
    assert!(chain["reconnects"].as_u64() >= Some(1), "{chain}");
    assert_eq!(http_get(&addr, "/nope").0, 404);

    // /metrics: the same instruments in the Prometheus text format, read back by an
    // independent parser; every name the dashboards query is served.
    let (code, text) = http_get(&addr, "/metrics");
    assert_eq!(code, 200, "{text}");
    let scraped = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .expect("the text format");
    let mut served: BTreeSet<String> = scraped.samples.iter().map(|s| s.metric.clone()).collect();
    // The parser files a histogram's buckets under the family's name.
    served.extend(
        scraped
            .samples
            .iter()
            .filter(|s| matches!(s.value, prometheus_parse::Value::Histogram(_)))
            .map(|s| format!("{}_bucket", s.metric)),
    );
    let missing: Vec<_> = queried.difference(&served).collect();
    assert!(
        missing.is_empty(),
        "dashboards query metrics /metrics does not serve: {missing:?}; served: {served:?}"
    );
    let delivered = scraped
        .samples
        .iter()
        .find(|s| {
            s.metric == "ethhook_chain_delivered" && s.labels.get("chain") == Some("chain-31337")
        })
        .map(|s| s.value.clone());
    assert_eq!(delivered, Some(prometheus_parse::Value::Gauge(head as f64)));

    // Secrets: nowhere in logs, spans, resources or metric labels.
    stop_cleanly(&mut service);
    let log = service.process.log_text();
    let telemetry_text = format!(
        "{:?}{:?}{:?}",
        otlp.spans(),
        otlp.resources(),
        otlp.metric_attributes()
    );
    for secret in SECRETS {
        assert!(!log.contains(secret), "{secret} in the log");
        assert!(!telemetry_text.contains(secret), "{secret} in telemetry");
    }
    assert!(log.contains("<redacted>"), "the URL is logged redacted");
}

#[test]
fn a_dead_collector_does_not_stop_ingestion() {
    let stack = Stack::start(53, 4);
    let toml = stack.config(&[]);
    let (brokers, topic) = (stack.brokers(), stack.topic());
    let Stack {
        dir,
        anvil,
        mut sender,
        mut shapes,
        ..
    } = stack;
    let dead = format!("http://127.0.0.1:{}", free_port().expect("port"));
    // gRPC this time, so both transports are built and used.
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", dead.as_str()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "200"),
        ("OTEL_BSP_SCHEDULE_DELAY", "50"),
    ];
    let mut service = Service::start(BIN.as_ref(), dir.path(), &toml, &env).expect("ingestor");
    assert_view_matches_node(&brokers, &topic, &anvil.node(), 31337);
    for _ in 0..3 {
        sender.block(&[shapes.logs(20)]).expect("live block");
    }
    assert_view_matches_node(&brokers, &topic, &anvil.node(), 31337);
    assert!(
        service.process.is_running(),
        "{}",
        service.process.log_tail(20)
    );
    stop_cleanly(&mut service);
}

#[test]
fn an_unknown_otlp_protocol_is_a_clear_error() {
    let dir = tempdir();
    let toml = config_toml(
        "127.0.0.1:1",
        &[devstack::service::ChainEntry::new(
            1,
            "ws://127.0.0.1:1".into(),
        )],
        "",
    );
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
    ];
    let mut service = Service::start(BIN.as_ref(), dir.path(), &toml, &env).expect("ingestor");
    assert_eq!(
        service
            .process
            .wait_exit(Duration::from_secs(30))
            .expect("exit"),
        Some(1)
    );
    let log = service.process.log_text();
    assert!(
        log.lines().last().unwrap_or_default().contains(
            "OTEL_EXPORTER_OTLP_PROTOCOL=\"http/json\" is not supported; use \"grpc\" or \"http/protobuf\""
        ),
        "{log}"
    );
}

/// Runs a chain with `env` and waits until `otlp` holds the head block's span and a metric.
fn assert_exported(otlp: &OtlpReceiver, seed: u64, env: &[(&str, &str)]) {
    let stack = Stack::start(seed, 3);
    let toml = stack.config(&[]);
    let (brokers, topic) = (stack.brokers(), stack.topic());
    let Stack { dir, anvil, .. } = stack;
    let mut env = env.to_vec();
    env.extend([
        ("OTEL_METRIC_EXPORT_INTERVAL", "300"),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ]);
    let mut service = Service::start(BIN.as_ref(), dir.path(), &toml, &env).expect("ingestor");
    assert_view_matches_node(&brokers, &topic, &anvil.node(), 31337);
    let head = anvil.node().head().expect("head");
    wait_for("block spans and metrics", Duration::from_secs(60), || {
        let head_span = otlp.spans().iter().any(|s| {
            s.name == "block" && attrs(&s.attributes).get("block.number") == Some(&head.to_string())
        });
        let metrics = otlp.metrics();
        (head_span && metrics.contains_key("ethhook.logs.published")).then_some(())
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}: {} requests, {:?}; {}",
            otlp.requests(),
            otlp.metrics().keys(),
            service.process.log_tail(10)
        )
    });
    stop_cleanly(&mut service);
}

#[test]
fn traces_and_metrics_also_arrive_over_grpc() {
    let otlp = OtlpReceiver::start_grpc();
    let endpoint = otlp.endpoint();
    assert_exported(
        &otlp,
        57,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ],
    );
}

/// An `https://` collector, trusted through `SSL_CERT_FILE`, over both protocols.
#[test]
fn traces_and_metrics_arrive_over_https() {
    let dir = tempdir();
    let ca = common::tls::TestCa::new(dir.path(), "collector-ca");
    let ca_file = ca.pem_file.display().to_string();
    for (otlp, protocol, seed) in [
        (OtlpReceiver::start(), "http/protobuf", 58),
        (OtlpReceiver::start_grpc(), "grpc", 59),
    ] {
        let port: u16 = otlp
            .endpoint()
            .rsplit(':')
            .next()
            .and_then(|p| p.trim_end_matches('/').parse().ok())
            .expect("receiver port");
        let tls = common::tls::TlsProxy::start(&ca, port, false);
        let endpoint = tls.url("https", "");
        assert_exported(
            &otlp,
            seed,
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
                ("SSL_CERT_FILE", ca_file.as_str()),
            ],
        );
    }
}
