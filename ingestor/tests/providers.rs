//! Real providers, reproduced on real processes: TLS (`wss://`, `https://`) through a
//! TLS-terminating proxy with a CA made here; HTTP-only chains; several endpoints with
//! failover; and proxies that rewrite anvil's real answers the way hosted providers do
//! (lagging indexes, response caps, rate limits). Every test ends comparing the topic with
//! the node field by field.

mod common;

use std::time::Duration;

use common::provider::{Habits, ProviderProxy};
use common::proxy::WsProxy;
use common::tls::{TestCa, TlsProxy};
use common::*;
use devstack::anvil::Anvil;
use devstack::consumer::TopicReader;
use devstack::proc::wait_for;
use devstack::service::{ChainEntry, Service};
use devstack::traffic::{LogShapes, Sender};

const WAIT: Duration = Duration::from_secs(120);

/// A chain entry for `urls` that retries fast (tests wait on it).
fn entry(chain_id: u64, urls: Vec<String>, extra: &[&str]) -> ChainEntry {
    let mut e = fast_retry_entry(chain_id, String::new());
    e.urls = urls;
    e.extra.extend(extra.iter().map(|l| (*l).to_owned()));
    e
}

/// Waits until `topic` holds `count` records.
fn wait_records(brokers: &str, topic: &str, count: usize, dir: &std::path::Path) {
    let mut reader = TopicReader::new(brokers, topic).expect("reader");
    let mut records = Vec::new();
    if let Err(e) = reader.read_until(&mut records, READ_DEADLINE, |r| r.len() >= count) {
        panic!("{topic}: {e} (logs under {})", dir.display());
    }
}

fn log_count(service: &Service, needle: &str) -> usize {
    service.process.log_text().matches(needle).count()
}

#[test]
fn wss_https_and_plain_http_chains_match_the_node() {
    let dir = tempdir();
    let (brokers, names) = (shared_brokers(), Names::new());
    let chain_ca = TestCa::new(dir.path(), "chain-ca");
    let env_ca = TestCa::new(dir.path(), "env-ca");
    let nodes = [
        Anvil::start(1001, dir.path()).expect("anvil"),
        Anvil::start(1002, dir.path()).expect("anvil"),
        Anvil::start(1003, dir.path()).expect("anvil"),
    ];
    let wss = TlsProxy::start(&chain_ca, nodes[0].port, false);
    let https = TlsProxy::start(&env_ca, nodes[1].port, false);
    let mut shapes = LogShapes::new(41);
    let mut senders: Vec<_> = nodes
        .iter()
        .map(|a| Sender::new(a.node()).expect("sender"))
        .collect();
    let history: Vec<_> = senders
        .iter_mut()
        .map(|s| mine_history(s, &mut shapes, 12).expect("history"))
        .collect();

    let ca_line = format!(
        "tls_ca_file = {:?}",
        chain_ca.pem_file.display().to_string()
    );
    let entries = [
        // Trusted through the chain's own CA file.
        entry(1001, vec![wss.url("wss", "/")], &[&ca_line]),
        // Trusted through SSL_CERT_FILE; HTTP: polled head, batched headers.
        entry(1002, vec![https.url("https", "/")], &[]),
        entry(
            1003,
            vec![format!("http://127.0.0.1:{}", nodes[2].port)],
            &[],
        ),
    ];
    let toml = names.config(&brokers, &entries, "");
    let env_ca_path = env_ca.pem_file.display().to_string();
    let mut service = Service::start(
        BIN.as_ref(),
        dir.path(),
        &toml,
        &[("SSL_CERT_FILE", env_ca_path.as_str())],
    )
    .expect("ingestor");
    for (node, count) in nodes.iter().zip(&history) {
        let topic = names.topic(node.chain_id);
        wait_records(&brokers, &topic, *count, dir.path());
    }
    // Live blocks: the per-block path over each transport.
    for round in 0..3 {
        for sender in &mut senders {
            sender
                .block(&[shapes.logs(2 + round), shapes.logs(1)])
                .expect("live block");
        }
    }
    for node in &nodes {
        let topic = names.topic(node.chain_id);
        let report = assert_topic_matches_node(&brokers, &topic, &node.node(), node.chain_id);
        eprintln!("{topic}: {report}");
    }
    let log = service.process.log_text();
    for url in [wss.url("wss", ""), https.url("https", "")] {
        assert!(
            log.contains(&format!("url=\"{url}\"")),
            "connected over {url}: {log}"
        );
    }
    stop_cleanly(&mut service);
}

#[test]
fn untrusted_and_expired_certificates_are_named_redacted_and_retried() {
    let dir = tempdir();
    let (brokers, names) = (shared_brokers(), Names::new());
    let anvil = Anvil::start(31337, dir.path()).expect("anvil");
    Sender::new(anvil.node())
        .expect("sender")
        .block(&[LogShapes::new(2).logs(5)])
        .expect("logs");
    let unknown_ca = TestCa::new(dir.path(), "unknown-ca");
    let expired_ca = TestCa::new(dir.path(), "expired-ca");
    let untrusted = TlsProxy::start(&unknown_ca, anvil.port, false);
    let expired = TlsProxy::start(&expired_ca, anvil.port, true);
    let ca_line = format!(
        "tls_ca_file = {:?}",
        expired_ca.pem_file.display().to_string()
    );
    let chain = entry(
        31337,
        vec![
            untrusted.url("wss", "/v2/SECRETKEY"),
            expired.url("https", "/?apikey=SECRETKEY"),
        ],
        &[&ca_line],
    );
    let toml = names.config(&brokers, &[chain], "");
    let mut service = Service::start(BIN.as_ref(), dir.path(), &toml, &[]).expect("ingestor");
    let untrusted_line = format!(
        "TLS to wss://127.0.0.1:{}/<redacted>: certificate not trusted (unknown issuer)",
        untrusted.port
    );
    let expired_line = format!(
        "TLS to https://127.0.0.1:{}/<redacted>: certificate expired",
        expired.port
    );
    wait_for("both certificate errors, named", WAIT, || {
        let log = service.process.log_text();
        (log.contains(&untrusted_line) && log.contains(&expired_line)).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}: {}", service.process.log_tail(20)));
    // Retried behind the breaker, never a crash, and the key appears nowhere.
    wait_for("several attempts", WAIT, || {
        (log_count(&service, &untrusted_line) >= 3).then_some(())
    })
    .expect("retried");
    let log = service.process.log_text();
    assert!(!log.contains("SECRETKEY"), "{log}");
    assert!(
        log.lines()
            .all(|l| !l.contains("certificate") || !l.contains('\n'))
    );
    let mut records = Vec::new();
    TopicReader::new(&brokers, &names.topic(31337))
        .expect("reader")
        .read_to_end(&mut records, Duration::from_secs(30))
        .expect("read");
    assert!(
        records.is_empty(),
        "nothing may be published: {}",
        records.len()
    );
    stop_cleanly(&mut service);
}

/// The sum of `name`'s samples of `chain`'s endpoint `endpoint` on `/metrics` (every
/// `error_type` of an error counter).
fn endpoint_metric(service: &Service, name: &str, chain: &str, endpoint: &str) -> f64 {
    let Some(addr) = service.health_addr() else {
        return 0.0;
    };
    let (_, body) = http_get(&addr, "/metrics");
    let labels = [
        format!("chain=\"{chain}\""),
        format!("endpoint=\"{endpoint}\""),
    ];
    body.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter(|l| labels.iter().all(|x| l.contains(x.as_str())))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn a_dead_first_endpoint_fails_over_and_the_chain_comes_back_to_it() {
    let stack = Stack::start(13, 12);
    let mut sender = Sender::new(stack.node.clone()).expect("sender");
    let mut shapes = LogShapes::new(14);
    let primary = WsProxy::start(stack.anvil.port);
    primary.cut();
    let chain = entry(
        31337,
        vec![primary.ws_url(), stack.anvil.ws_url()],
        &["breaker_failure_threshold = 2", "breaker_open_ms = 1000"],
    );
    let toml = stack.names.config(&stack.brokers(), &[chain], "");
    let mut service = Service::start(BIN.as_ref(), stack.dir.path(), &toml, &[]).expect("ingestor");
    wait_records(
        &stack.brokers(),
        &stack.topic(),
        stack.history,
        stack.dir.path(),
    );
    let endpoint = |service: &Service| {
        chain_status(service, "chain-31337").and_then(|s| s["endpoint"].as_u64())
    };
    wait_for("the fallback in use", WAIT, || {
        (endpoint(&service) == Some(1)).then_some(())
    })
    .expect("status names endpoint 1");
    sender.block(&[shapes.logs(3)]).expect("live block");
    // Per endpoint on /metrics: the dead one's failed connections, the fallback's calls
    // and their times; the dead one sent nothing that was answered.
    let per_endpoint =
        |name: &str, endpoint: &str| endpoint_metric(&service, name, "chain-31337", endpoint);
    wait_for("endpoint 1's calls on /metrics", WAIT, || {
        (per_endpoint("ethhook_rpc_requests_total", "1") > 0.0).then_some(())
    })
    .expect("requests of endpoint 1");
    assert!(per_endpoint("ethhook_rpc_errors_total", "0") >= 2.0);
    assert_eq!(per_endpoint("ethhook_rpc_errors_total", "1"), 0.0);
    assert_eq!(per_endpoint("ethhook_rpc_requests_total", "0"), 0.0);
    assert!(per_endpoint("ethhook_rpc_duration_seconds_count", "1") > 0.0);
    assert_eq!(per_endpoint("ethhook_rpc_duration_seconds_count", "0"), 0.0);

    primary.restore();
    wait_for("the preferred endpoint in use again", WAIT, || {
        (endpoint(&service) == Some(0)).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}: {}", service.process.log_tail(20)));
    assert!(log_count(&service, "why=\"failback\"") >= 1);
    for _ in 0..3 {
        sender
            .block(&[shapes.logs(4), shapes.logs(1)])
            .expect("live block");
    }
    assert_topic_matches_node(&stack.brokers(), &stack.topic(), &stack.node, 31337);
    stop_cleanly(&mut service);
}

#[test]
fn a_lagging_provider_loses_nothing_over_websocket_or_http() {
    let stack = Stack::start(15, 10);
    let other = Anvil::start(4243, stack.dir.path()).expect("anvil");
    let mut ws_sender = Sender::new(stack.node.clone()).expect("sender");
    let mut http_sender = Sender::new(other.node()).expect("sender");
    let mut shapes = LogShapes::new(16);
    let other_history = mine_history(&mut http_sender, &mut shapes, 10).expect("history");
    let ws = WsProxy::start(stack.anvil.port);
    ws.lag();
    let http = ProviderProxy::start(
        other.port,
        Habits {
            lagging: true,
            ..Habits::default()
        },
    );
    let toml = stack.names.config(
        &stack.brokers(),
        &[
            entry(31337, vec![ws.ws_url()], &[]),
            entry(4243, vec![http.url()], &[]),
        ],
        "",
    );
    let mut service = Service::start(BIN.as_ref(), stack.dir.path(), &toml, &[]).expect("ingestor");
    wait_records(
        &stack.brokers(),
        &stack.topic(),
        stack.history,
        stack.dir.path(),
    );
    wait_records(
        &stack.brokers(),
        &stack.names.topic(4243),
        other_history,
        stack.dir.path(),
    );
    // Live blocks come one by one: each is first answered `[]` (and over HTTP, its header
    // first `null`: a head the node announced but cannot serve yet).
    for round in 0..6 {
        ws_sender
            .block(&[shapes.logs(2 + round)])
            .expect("live block");
        http_sender
            .block(&[shapes.logs(1 + round)])
            .expect("live block");
    }
    ws_sender.node().mine(1).expect("empty block");
    for (node, id) in [(&stack.node, 31337), (&other.node(), 4243)] {
        assert_topic_matches_node(&stack.brokers(), &stack.names.topic(id), node, id);
    }
    assert!(
        ws.lagged() >= 6,
        "WebSocket answers emptied: {}",
        ws.lagged()
    );
    let counts = http.counts();
    let emptied = counts
        .empty_answers
        .load(std::sync::atomic::Ordering::SeqCst);
    let nulls = counts
        .null_headers
        .load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        emptied >= 6 && nulls >= 6,
        "HTTP: {emptied} emptied, {nulls} null headers"
    );
    // Every emptied answer was refused (the topics equal the nodes); in catch-up one refusal
    // asks a whole range again, whose emptied answers it holds, so there are fewer lines.
    let refused = log_count(&service, "node answer rejected");
    assert!(
        refused >= 6,
        "{refused} refusals for {} emptied answers\n{}",
        ws.lagged() + emptied,
        service.process.log_tail(20)
    );
    stop_cleanly(&mut service);
}

#[test]
fn capped_and_oversized_ranges_shrink_and_lose_nothing() {
    let mut stack = Stack::start(17, 8);
    // Dense blocks: any range over 12 blocks holds more than the cap of 600 logs (which
    // the history's largest block, of 500 logs, is under: one block over a provider's cap
    // cannot be asked in a smaller range).
    for _ in 0..30 {
        let (a, b) = (stack.shapes.logs(25), stack.shapes.logs(25));
        stack.sender.block(&[a, b]).expect("dense block");
    }
    // Dense blocks of similar size, so that several blocks together exceed the limit.
    let dense = Anvil::start(4244, stack.dir.path()).expect("anvil");
    let mut sender = Sender::new(dense.node()).expect("sender");
    let mut shapes = LogShapes::new(18);
    let mut dense_logs = 0;
    for _ in 0..12 {
        dense_logs += sender
            .block(&[shapes.logs(40), shapes.logs(40)])
            .expect("dense block");
    }
    let largest_block = (1..=dense.node().head().expect("head"))
        .map(|n| {
            let logs = dense.node().logs(n, n).expect("logs");
            serde_json::to_string(&logs).expect("json").len()
        })
        .max()
        .expect("blocks");
    // Any one block fits; three do not.
    let limit = largest_block * 2 + 4096;

    let capped = ProviderProxy::start(
        stack.anvil.port,
        Habits {
            cap_logs: Some(600),
            ..Habits::default()
        },
    );
    // Ranged `eth_getLogs` is what providers cap: it is asked without the completeness
    // proof (which reads each block's receipts instead).
    let toml = stack.names.config(
        &stack.brokers(),
        &[
            entry(
                31337,
                vec![capped.url()],
                &["verify_log_completeness = false"],
            ),
            entry(
                4244,
                vec![dense.ws_url()],
                &[
                    &format!("max_message_bytes = {limit}"),
                    "live_threshold_blocks = 2",
                    "verify_log_completeness = false",
                ],
            ),
        ],
        "",
    );
    let mut service = Service::start(BIN.as_ref(), stack.dir.path(), &toml, &[]).expect("ingestor");
    assert_topic_matches_node(&stack.brokers(), &stack.topic(), &stack.node, 31337);
    let report = assert_topic_matches_node(
        &stack.brokers(),
        &stack.names.topic(4244),
        &dense.node(),
        4244,
    );
    assert_eq!(report.records, dense_logs);
    let refused = capped
        .counts()
        .refused_ranges
        .load(std::sync::atomic::Ordering::SeqCst);
    assert!(refused >= 3, "every provider's wording used: {refused}");
    let log = service.process.log_text();
    let shrinks = |chain: &str| {
        log.lines()
            .filter(|l| l.contains("log range refused, shrinking") && l.contains(chain))
            .count()
    };
    assert_eq!(shrinks("chain-31337"), refused, "one shrink per refusal");
    assert!(
        shrinks("chain-4244") >= 1,
        "an answer over max_message_bytes shrinks the range: {}",
        service.process.log_tail(30)
    );
    stop_cleanly(&mut service);
}

#[test]
fn rate_limits_are_waited_out_without_shrinking_ranges_or_opening_the_breaker() {
    let stack = Stack::start(19, 16);
    let mut sender = Sender::new(stack.node.clone()).expect("sender");
    let mut shapes = LogShapes::new(20);
    let proxy = ProviderProxy::start(
        stack.anvil.port,
        Habits {
            rate_limit_every: Some(4),
            ..Habits::default()
        },
    );
    let toml = stack.names.config(
        &stack.brokers(),
        &[entry(31337, vec![proxy.url()], &[])],
        "",
    );
    let mut service = Service::start(BIN.as_ref(), stack.dir.path(), &toml, &[]).expect("ingestor");
    wait_records(
        &stack.brokers(),
        &stack.topic(),
        stack.history,
        stack.dir.path(),
    );
    for _ in 0..4 {
        sender.block(&[shapes.logs(3)]).expect("live block");
    }
    assert_topic_matches_node(&stack.brokers(), &stack.topic(), &stack.node, 31337);
    let limited = || {
        proxy
            .counts()
            .rate_limited
            .load(std::sync::atomic::Ordering::SeqCst)
    };
    assert!(limited() >= 3, "all three wordings: {}", limited());
    // Every rate limit was waited out: one event each (read once the last one is logged).
    wait_for("one event per rate limit", WAIT, || {
        (log_count(&service, "rate limited by the node, waiting:") == limited()).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}: {}", service.process.log_tail(20)));
    for never in [
        "log range refused",
        "circuit breaker changed state",
        "node call failed",
    ] {
        assert_eq!(log_count(&service, never), 0, "{never}");
    }
    stop_cleanly(&mut service);
}

/// Our bloom of each block's logs equals the node's own `logsBloom` (anvil's, an
/// independent implementation), and a block missing any one log does not.
#[test]
fn our_log_bloom_equals_the_nodes_for_every_block() {
    use ingestor::rpc::bloom::Bloom;
    use ingestor::rpc::types::Log;
    let dir = tempdir();
    let anvil = Anvil::start(31337, dir.path()).expect("anvil");
    let mut sender = Sender::new(anvil.node()).expect("sender");
    let mut shapes = LogShapes::new(23);
    mine_history(&mut sender, &mut shapes, 8).expect("history");
    let node = anvil.node();
    let mut checked = 0;
    for n in 1..=node.head().expect("head") {
        let header = node.block(n).expect("block");
        let want = Bloom::parse("logsBloom", header["logsBloom"].as_str().expect("bloom"))
            .expect("bloom hex");
        let logs =
            Log::parse_list(&serde_json::Value::Array(node.logs(n, n).expect("logs")).to_string())
                .expect("logs parse");
        assert_eq!(Bloom::of_logs(&logs), want, "block {n}");
        assert_eq!(want.is_zero(), logs.is_empty(), "block {n}");
        let items = |l: &Log| -> Vec<Vec<u8>> {
            std::iter::once(l.address.0.to_vec())
                .chain(l.topics.iter().map(|t| t.0.to_vec()))
                .collect()
        };
        // A dense block saturates the bloom (a missing log may leave it unchanged); on a
        // sparse one, any log that sets a bit of its own is missed by the check.
        for skip in 0..if logs.len() <= 12 { logs.len() } else { 0 } {
            let fewer = logs
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, l)| l);
            let others: std::collections::HashSet<Vec<u8>> =
                fewer.clone().flat_map(items).collect();
            if items(&logs[skip]).iter().all(|i| others.contains(i)) {
                continue; // every item it sets is set by another log too
            }
            let fewer: Vec<_> = fewer.cloned().collect();
            assert_ne!(Bloom::of_logs(&fewer), want, "block {n} without log {skip}");
            checked += 1;
        }
    }
    assert!(checked > 20, "only {checked} single-log omissions checked");
}

/// A restart onto a provider whose node is behind the checkpoint: the blocks it has not
/// reached are not evidence of a reorganisation. Nothing is retracted (no tombstone on the
/// raw topic), nothing is published twice, and the chain goes on once the node catches up
/// to the blocks it serves.
#[test]
fn a_restart_onto_a_node_behind_the_checkpoint_retracts_nothing() {
    let stack = Stack::start(19, 6);
    let mut service =
        Service::start(BIN.as_ref(), stack.dir.path(), &stack.config(&[]), &[]).expect("ingestor");
    wait_records(
        &stack.brokers(),
        &stack.topic(),
        stack.history,
        stack.dir.path(),
    );
    assert_topic_matches_node(&stack.brokers(), &stack.topic(), &stack.node, 31337);
    stop_cleanly(&mut service);
    let tip = stack.node.head().expect("head");

    let behind = ProviderProxy::start(
        stack.anvil.port,
        Habits {
            behind: Some(4),
            ..Habits::default()
        },
    );
    let toml = stack.names.config(
        &stack.brokers(),
        &[entry(31337, vec![behind.url()], &[])],
        "",
    );
    let second = stack.dir.path().join("second");
    std::fs::create_dir_all(&second).expect("dir");
    let mut service = Service::start(BIN.as_ref(), &second, &toml, &[]).expect("restart");
    wait_for_log(&service, "connected to node");
    let mut sender = Sender::new(stack.node.clone()).expect("sender");
    let mut shapes = LogShapes::new(20);
    for i in 0..7 {
        sender.block(&[shapes.logs(2 + i)]).expect("block");
    }
    // The provider serves up to the node's head less 4: the service publishes that far.
    let served = stack.node.head().expect("head") - 4;
    assert!(served > tip);
    let report = assert_view_matches_node_up_to(
        &stack.brokers(),
        &stack.topic(),
        &stack.node,
        31337,
        served,
    );
    assert!(report.is_clean());
    // The raw topic: every key exactly once, and no tombstone at all.
    let mut reader =
        devstack::consumer::TopicReader::new(&stack.brokers(), &stack.topic()).expect("reader");
    let expected =
        devstack::compare::expected_from_node(&stack.node, 31337, 0, served).expect("node");
    let mut records = Vec::new();
    reader
        .read_until(&mut records, READ_DEADLINE, |r| r.len() >= expected.len())
        .expect("records");
    reader
        .read_to_end(&mut records, READ_DEADLINE)
        .expect("end");
    let raw = devstack::compare::compare(&expected, &records);
    assert!(raw.is_clean(), "raw topic: {raw}");
    assert!(
        behind
            .counts()
            .null_headers
            .load(std::sync::atomic::Ordering::SeqCst)
            > 0,
        "the proxy never hid a block"
    );
    stop_cleanly(&mut service);
}
