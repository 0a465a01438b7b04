//! No silent loss and no stall on a provider's limits, on real anvil behind proxies that
//! rewrite its real answers: a busy block's logs cut short at the tail where the bloom
//! cannot tell, receipts answers short by one, a node without `eth_getBlockReceipts`,
//! HTTP endpoints that refuse batches in each way nodes do, a WebSocket without
//! `eth_subscribe`, and a reorganisation that replaces the head at its own height. Every
//! test ends comparing the topic with the node field by field.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::provider::{Batches, Habits, ProviderProxy};
use common::*;
use devstack::anvil::Anvil;
use devstack::compare::{compare, expected_from_node};
use devstack::consumer::TopicReader;
use devstack::node::Node;
use devstack::proc::wait_for;
use devstack::service::{ChainEntry, Service};
use devstack::traffic::{LogShapes, LogSpec, Sender};

const WAIT: Duration = Duration::from_secs(120);

fn entry(chain_id: u64, url: String, extra: &[&str]) -> ChainEntry {
    let mut e = fast_retry_entry(chain_id, String::new());
    e.urls = vec![url];
    e.extra.extend(extra.iter().map(|l| (*l).to_owned()));
    e
}

/// `n` identical logs: cutting any of them leaves the block's bloom as it was.
fn same_logs(n: usize) -> Vec<LogSpec> {
    vec![
        LogSpec {
            topics: vec![[0xaa; 32], [0xbb; 32]],
            data: vec![7; 64],
        };
        n
    ]
}

/// A busy block: many varied logs (a mostly set bloom), then two transactions of
/// identical logs. Returns its log count.
fn busy_block(sender: &mut Sender, shapes: &mut LogShapes) -> usize {
    sender
        .block(&[shapes.logs(300), same_logs(6), same_logs(4)])
        .expect("busy block")
}

/// Waits until the service reports `chain` delivered up to the node's head.
fn wait_delivered(service: &Service, chain: &str, node: &Node) {
    let head = node.head().expect("head");
    wait_for(&format!("{chain} delivered to {head}"), WAIT, || {
        chain_status(service, chain)
            .and_then(|s| s["delivered"].as_u64())
            .filter(|d| *d >= head)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", service.process.log_tail(30)));
}

fn status_of(service: &Service, chain: &str, field: &str) -> serde_json::Value {
    chain_status(service, chain).map_or(serde_json::Value::Null, |s| s[field].clone())
}

#[test]
fn a_busy_blocks_tail_cut_where_the_bloom_cannot_tell_is_never_lost() {
    let stack = Stack::start(170, 4);
    let unchecked = Anvil::start(4243, stack.dir.path()).expect("anvil");
    let over_ws = Anvil::start(4244, stack.dir.path()).expect("anvil");
    let mut shapes = LogShapes::new(171);
    let mut senders = [
        Sender::new(stack.node.clone()).expect("sender"),
        Sender::new(unchecked.node()).expect("sender"),
        Sender::new(over_ws.node()).expect("sender"),
    ];
    // Catch-up: busy blocks before the service starts.
    for _ in 0..6 {
        for s in &mut senders {
            busy_block(s, &mut shapes);
        }
    }
    let cut = Habits {
        cut_tail: true,
        ..Habits::default()
    };
    let http = ProviderProxy::start(stack.anvil.port, cut.clone());
    let control = ProviderProxy::start(unchecked.port, cut.clone());
    let ws = ProviderProxy::start_ws(over_ws.port, cut);
    let toml = stack.names.config(
        &stack.brokers(),
        &[
            entry(31337, http.url(), &[]),
            entry(4243, control.url(), &["verify_log_completeness = false"]),
            entry(4244, ws.ws_url(), &[]),
        ],
        "",
    );
    let mut service = Service::start(BIN.as_ref(), stack.dir.path(), &toml, &[]).expect("ingestor");
    wait_delivered(&service, "chain-31337", &stack.node);
    // Live: busy blocks one by one.
    for _ in 0..6 {
        for s in &mut senders {
            busy_block(s, &mut shapes);
        }
    }
    assert_topic_matches_node(
        &stack.brokers(),
        &stack.names.topic(31337),
        &stack.node,
        31337,
    );
    assert_topic_matches_node(
        &stack.brokers(),
        &stack.names.topic(4244),
        &over_ws.node(),
        4244,
    );

    // The control: the same proxy, without the proof, loses exactly what it cut.
    let unchecked_node = unchecked.node();
    wait_delivered(&service, "chain-4243", &unchecked_node);
    let expected = expected_from_node(
        &unchecked_node,
        4243,
        0,
        unchecked_node.head().expect("head"),
    )
    .expect("node");
    let mut reader = TopicReader::new(&stack.brokers(), &stack.names.topic(4243)).expect("reader");
    let mut records = Vec::new();
    reader
        .read_to_end(&mut records, READ_DEADLINE)
        .expect("read");
    let report = compare(&expected, &records);
    let lost = control.counts().cut_logs.load(Ordering::SeqCst);
    assert!(lost >= 12, "the proxy cut {lost} logs");
    assert_eq!(report.missing.len(), lost, "{report}");
    assert!(
        report.extra.is_empty() && report.duplicates.is_empty() && report.mismatched.is_empty()
    );

    // The checked chains were served the same cuts wherever they asked eth_getLogs; their
    // logs come from receipts, proven complete.
    assert_eq!(
        status_of(&service, "chain-31337", "completeness"),
        "block_receipts"
    );
    assert_eq!(status_of(&service, "chain-4243", "completeness"), "none");
    stop_cleanly(&mut service);
}

#[test]
fn short_receipts_and_a_node_without_block_receipts_lose_nothing() {
    let mut stack = Stack::start(172, 6);
    let other = Anvil::start(4245, stack.dir.path()).expect("anvil");
    let mut other_sender = Sender::new(other.node()).expect("sender");
    let mut shapes = LogShapes::new(173);
    for _ in 0..4 {
        busy_block(&mut other_sender, &mut shapes);
    }
    let short = ProviderProxy::start(
        stack.anvil.port,
        Habits {
            short_receipts: true,
            ..Habits::default()
        },
    );
    let without = ProviderProxy::start_ws(
        other.port,
        Habits {
            no_block_receipts: true,
            ..Habits::default()
        },
    );
    let toml = stack.names.config(
        &stack.brokers(),
        &[
            entry(31337, short.url(), &[]),
            entry(4245, without.ws_url(), &[]),
        ],
        "",
    );
    let mut service = Service::start(BIN.as_ref(), stack.dir.path(), &toml, &[]).expect("ingestor");
    wait_delivered(&service, "chain-31337", &stack.node);
    for round in 0..4 {
        stack
            .sender
            .block(&[stack.shapes.logs(3 + round), same_logs(3)])
            .expect("live");
        busy_block(&mut other_sender, &mut shapes);
    }
    assert_topic_matches_node(
        &stack.brokers(),
        &stack.names.topic(31337),
        &stack.node,
        31337,
    );
    assert_topic_matches_node(
        &stack.brokers(),
        &stack.names.topic(4245),
        &other.node(),
        4245,
    );

    let shortened = short.counts().short_receipts.load(Ordering::SeqCst);
    assert!(shortened >= 8, "receipts answers shortened: {shortened}");
    let log = service.process.log_text();
    let rejected =
        log.matches("check=\"receipts\"").count() + log.matches("check=receipts").count();
    // In catch-up one refusal asks a whole range again, whose short answers it holds (each
    // block's first answer only is short); live, each block's is refused on its own.
    assert!(
        rejected >= 4 && rejected <= shortened,
        "{rejected} rejections for {shortened} short answers, 4 of them live\n{}",
        service.process.log_tail(20)
    );
    // The node without eth_getBlockReceipts: detected once, said once, asked per transaction.
    assert_eq!(
        status_of(&service, "chain-4245", "completeness"),
        "transaction_receipts"
    );
    assert_eq!(
        log.matches("does not serve eth_getBlockReceipts").count(),
        1
    );
    stop_cleanly(&mut service);
}

#[test]
fn http_endpoints_that_refuse_batches_are_followed_with_smaller_ones() {
    let dir = tempdir();
    let names = Names::new();
    let brokers = shared_brokers();
    let forms = [
        (5001, Batches::RefuseAll, 1),
        (5002, Batches::Cap(10), 10),
        (5003, Batches::Status413, 1),
        (5004, Batches::Drop, 1),
    ];
    let mut shapes = LogShapes::new(174);
    let mut chains = Vec::new();
    for (id, batches, _) in forms {
        let anvil = Anvil::start(id, dir.path()).expect("anvil");
        let mut sender = Sender::new(anvil.node()).expect("sender");
        mine_history(&mut sender, &mut shapes, 30).expect("history");
        let proxy = ProviderProxy::start(
            anvil.port,
            Habits {
                batches: Some(batches),
                ..Habits::default()
            },
        );
        chains.push((anvil, sender, proxy));
    }
    // Ranges of up to 64 blocks: header batches over every limit.
    let entries: Vec<_> = chains
        .iter()
        .zip(forms)
        .map(|((_, _, proxy), (id, _, _))| entry(id, proxy.url(), &["rpc_batch_max = 64"]))
        .collect();
    let toml = names.config(&brokers, &entries, "");
    let mut service = Service::start(BIN.as_ref(), dir.path(), &toml, &[]).expect("ingestor");
    for ((anvil, _, _), (id, _, _)) in chains.iter().zip(forms) {
        wait_delivered(&service, &format!("chain-{id}"), &anvil.node());
    }
    for round in 0..3 {
        for (_, sender, _) in &mut chains {
            sender.block(&[shapes.logs(2 + round)]).expect("live");
        }
    }
    for ((anvil, _, proxy), (id, _, size)) in chains.iter().zip(forms) {
        assert_topic_matches_node(&brokers, &names.topic(id), &anvil.node(), id);
        assert!(proxy.counts().refused_batches.load(Ordering::SeqCst) >= 1);
        let in_use = status_of(&service, &format!("chain-{id}"), "rpc_batch_size");
        assert!(
            in_use.as_u64().is_some_and(|s| s <= size),
            "chain {id}: batch size {in_use} in /status, expected at most {size}"
        );
    }
    let log = service.process.log_text();
    assert!(
        !log.contains("malformed frame"),
        "{}",
        service.process.log_tail(30)
    );
    assert!(log.contains("node refused a JSON-RPC batch"));
    stop_cleanly(&mut service);
}

#[test]
fn a_websocket_without_subscriptions_is_polled_on_the_same_socket() {
    let mut stack = Stack::start(175, 6);
    let proxy = ProviderProxy::start_ws(
        stack.anvil.port,
        Habits {
            refuse_subscribe: true,
            ..Habits::default()
        },
    );
    let toml = stack
        .names
        .config(&stack.brokers(), &[entry(31337, proxy.ws_url(), &[])], "");
    let mut service = Service::start(BIN.as_ref(), stack.dir.path(), &toml, &[]).expect("ingestor");
    wait_delivered(&service, "chain-31337", &stack.node);
    // Live: each block is delivered within a few poll intervals (200 ms here).
    for round in 0..5 {
        stack
            .sender
            .block(&[stack.shapes.logs(2 + round)])
            .expect("live");
        wait_delivered(&service, "chain-31337", &stack.node);
    }
    assert_topic_matches_node(
        &stack.brokers(),
        &stack.names.topic(31337),
        &stack.node,
        31337,
    );
    assert_eq!(status_of(&service, "chain-31337", "heads"), "polled");
    assert!(proxy.counts().refused_methods.load(Ordering::SeqCst) >= 1);
    let log = service.process.log_text();
    assert_eq!(
        log.matches("the node refused eth_subscribe").count(),
        1,
        "{}",
        service.process.log_tail(20)
    );
    assert!(
        !log.contains("breaker opened") && !log.contains("node call failed"),
        "{}",
        service.process.log_tail(20)
    );
    stop_cleanly(&mut service);
}

#[test]
fn a_head_replaced_at_its_own_height_is_retracted_without_a_new_block() {
    for over_http in [false, true] {
        let mut stack = Stack::start(176, 6);
        let url = if over_http {
            format!("http://127.0.0.1:{}", stack.anvil.port)
        } else {
            stack.anvil.ws_url()
        };
        let toml = stack
            .names
            .config(&stack.brokers(), &[entry(31337, url, &[])], "");
        let mut service =
            Service::start(BIN.as_ref(), stack.dir.path(), &toml, &[]).expect("ingestor");
        stack
            .sender
            .block(&[stack.shapes.logs(4)])
            .expect("head block");
        wait_delivered(&service, "chain-31337", &stack.node);
        let head = stack.node.head().expect("head");
        let before = block_hashes(&stack.node, head, head);
        // The head is replaced by a block at the same height; nothing is built on it.
        devstack::traffic::reorg_with_logs(&stack.node, 1, &[stack.shapes.logs(3)]).expect("reorg");
        assert_eq!(stack.node.head().expect("head"), head, "same height");
        assert_ne!(
            block_hashes(&stack.node, head, head),
            before,
            "another block"
        );
        assert_view_matches_node(
            &stack.brokers(),
            &stack.names.topic(31337),
            &stack.node,
            31337,
        );
        assert_eq!(status_of(&service, "chain-31337", "reorgs"), 1);
        stop_cleanly(&mut service);
    }
}

/// A provider that answers one block wrongly for as long as it likes: the chain waits on
/// that block (nothing skipped, nothing unproven published), and the stall shows within
/// `health.stall_after_ms` in `/readyz`, `/status`, `ethhook_chain_stalled` and one ERROR
/// line, while the repeated refusal is written once, not at every retry. Once the provider
/// answers right, the chain moves on and equals the node.
#[test]
fn a_block_refused_again_and_again_stalls_the_chain_visibly_until_it_passes() {
    let mut stack = Stack::start(174, 3);
    let stuck = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let proxy = ProviderProxy::start(
        stack.anvil.port,
        Habits {
            stuck_receipts: Some(stuck.clone()),
            ..Habits::default()
        },
    );
    let toml = stack.names.config(
        &stack.brokers(),
        &[entry(31337, proxy.url(), &[])],
        "[health]\nstall_after_ms = 3000\n",
    );
    let mut service = Service::start(BIN.as_ref(), stack.dir.path(), &toml, &[]).expect("ingestor");
    let chain = "chain-31337";
    let stalled = wait_for("the stall in /status", WAIT, || {
        chain_status(&service, chain).filter(|s| !s["stalled"].is_null())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", service.process.log_tail(30)));
    // Block 1 (the edge shapes' block) is the first with logs: every receipts answer for it
    // is short by one receipt.
    assert_eq!(stalled["stalled"]["block"], 1, "{stalled}");
    let reason = stalled["stalled"]["reason"].as_str().expect("reason");
    assert!(
        reason.contains("node answer rejected (receipts): block 1:"),
        "{reason}"
    );
    assert_eq!(
        stalled["delivered"], 0,
        "nothing delivered past the refused block"
    );
    let addr = service.health_addr().expect("health");
    let (code, body) = http_get(&addr, "/readyz");
    assert_eq!(code, 503, "{body}");
    assert!(
        body.contains("chain-31337: stalled at block 1: node answer rejected"),
        "{body}"
    );
    assert_eq!(metric(&service, "ethhook_chain_stalled", chain), Some(1.0));
    // The head moves on meanwhile; the chain still waits on block 1, said once.
    stack.sender.block(&[stack.shapes.logs(3)]).expect("block");
    let refusals = wait_for("ten refusals counted", WAIT, || {
        metric(&service, "ethhook_incomplete_answers_total", chain).filter(|n| *n >= 10.0)
    })
    .expect("refusals");
    let log = service.process.log_text();
    let count = |needle: &str| log.lines().filter(|l| l.contains(needle)).count();
    assert_eq!(count("chain stalled: block 1 not delivered"), 1, "{log}");
    assert!(
        log.lines()
            .any(|l| l.contains("ERROR") && l.contains("chain stalled"))
    );
    let lines = count("node answer rejected, retrying: block 1:");
    assert!(
        lines <= 2 && (lines as f64) < refusals,
        "{lines} lines for {refusals} refusals: an identical refusal is written once a minute"
    );

    // The provider answers right again: the chain moves on, says so, and equals the node.
    stuck.store(false, std::sync::atomic::Ordering::SeqCst);
    wait_delivered(&service, chain, &stack.node);
    wait_for_log(&service, "chain moving again: block 1 is past its stall");
    assert!(status_of(&service, chain, "stalled").is_null());
    assert_eq!(metric(&service, "ethhook_chain_stalled", chain), Some(0.0));
    assert_topic_matches_node(&stack.brokers(), &stack.topic(), &stack.node, 31337);
    stop_cleanly(&mut service);
}

/// `ethhook_incomplete_answers_total{chain, check}` as `/metrics` serves it.
fn refused_by(service: &Service, chain: &str, check: &str) -> f64 {
    let Some(addr) = service.health_addr() else {
        return 0.0;
    };
    let (_, body) = http_get(&addr, "/metrics");
    let (chain, check) = (format!("chain=\"{chain}\""), format!("check=\"{check}\""));
    body.lines()
        .filter(|l| l.starts_with("ethhook_incomplete_answers_total{"))
        .filter(|l| l.contains(&chain) && l.contains(&check))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A block whose last receipt's logs are alike (leaving its last log out keeps the bloom).
fn tamperable_block(sender: &mut Sender, shapes: &mut LogShapes) -> usize {
    sender
        .block(&[shapes.logs(12), same_logs(4)])
        .expect("block")
}

#[test]
fn answers_changed_where_only_the_block_hash_can_tell_are_refused() {
    use common::tamper::Tamper;
    let stack = Stack::start(177, 2);
    let over_ws = Anvil::start(4246, stack.dir.path()).expect("anvil");
    let control = Anvil::start(4247, stack.dir.path()).expect("anvil");
    let mut shapes = LogShapes::new(178);
    let mut senders = [
        Sender::new(stack.node.clone()).expect("sender"),
        Sender::new(over_ws.node()).expect("sender"),
        Sender::new(control.node()).expect("sender"),
    ];
    // Catch-up: blocks before the service starts.
    for _ in 0..4 {
        for s in &mut senders {
            tamperable_block(s, &mut shapes);
        }
    }
    let all = Habits {
        tamper: Tamper {
            drop_receipt_log: true,
            flip_log_data: true,
            move_timestamp: true,
            ..Tamper::default()
        },
        ..Habits::default()
    };
    let http = ProviderProxy::start(stack.anvil.port, all.clone());
    let ws = ProviderProxy::start_ws(over_ws.port, all);
    let logs_only = ProviderProxy::start(
        control.port,
        Habits {
            tamper: Tamper {
                drop_receipt_log: true,
                flip_log_data: true,
                ..Tamper::default()
            },
            ..Habits::default()
        },
    );
    let toml = stack.names.config(
        &stack.brokers(),
        &[
            entry(31337, http.url(), &[]),
            entry(4246, ws.ws_url(), &[]),
            entry(4247, logs_only.url(), &["proof = \"receipts\""]),
        ],
        "",
    );
    let mut service = Service::start(BIN.as_ref(), stack.dir.path(), &toml, &[]).expect("ingestor");
    wait_delivered(&service, "chain-31337", &stack.node);
    // Live: one block at a time.
    for _ in 0..4 {
        for s in &mut senders {
            tamperable_block(s, &mut shapes);
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    for (chain_id, node, proxy) in [
        (31337, stack.node.clone(), &http),
        (4246, over_ws.node(), &ws),
    ] {
        let chain = format!("chain-{chain_id}");
        wait_delivered(&service, &chain, &node);
        assert_topic_matches_node(
            &stack.brokers(),
            &stack.names.topic(chain_id),
            &node,
            chain_id,
        );
        let t = &proxy.counts().tampered;
        let (dropped, flipped, moved) = (
            t.dropped_logs.load(Ordering::SeqCst),
            t.flipped_logs.load(Ordering::SeqCst),
            t.moved_headers.load(Ordering::SeqCst),
        );
        assert!(
            dropped >= 3 && flipped >= 3 && moved >= 3,
            "{chain}: {dropped} {flipped} {moved}"
        );
        let (root, hash) = (
            refused_by(&service, &chain, "receipts_root"),
            refused_by(&service, &chain, "header_hash"),
        );
        // Over WebSocket, live blocks come with their `newHeads` header (not rewritten): only
        // the catch-up's headers, and a live block asked again by number, are changed.
        assert!(
            root >= 3.0 && hash >= 2.0,
            "{chain}: refused by the receipts root {root} times, by the header hash {hash}"
        );
        assert_eq!(
            status_of(&service, &chain, "proof"),
            "receipts_root",
            "{chain}"
        );
    }

    // The control, proven by its receipts only: the old hole shows, exactly.
    let control_node = control.node();
    wait_delivered(&service, "chain-4247", &control_node);
    assert_eq!(status_of(&service, "chain-4247", "proof"), "receipts");
    let expected = expected_from_node(&control_node, 4247, 0, control_node.head().expect("head"))
        .expect("node");
    let mut reader = TopicReader::new(&stack.brokers(), &stack.names.topic(4247)).expect("reader");
    let mut records = Vec::new();
    reader
        .read_to_end(&mut records, READ_DEADLINE)
        .expect("read");
    let report = compare(&expected, &records);
    let t = &logs_only.counts().tampered;
    let (dropped, flipped) = (
        t.dropped_logs.load(Ordering::SeqCst),
        t.flipped_logs.load(Ordering::SeqCst),
    );
    assert!(dropped >= 3 && flipped >= 3, "{dropped} {flipped}");
    assert_eq!(report.missing.len(), dropped, "{report}");
    assert_eq!(report.mismatched.len(), flipped, "{report}");
    assert_eq!(refused_by(&service, "chain-4247", "receipts_root"), 0.0);
    assert!(
        service
            .process
            .log_text()
            .contains("blocks proven by receipts_root")
    );
    stop_cleanly(&mut service);
}

#[test]
fn an_explicit_receipts_root_stops_on_a_receipt_type_it_cannot_encode() {
    use common::tamper::Tamper;
    let stack = Stack::start(179, 2);
    let retyped = ProviderProxy::start(
        stack.anvil.port,
        Habits {
            tamper: Tamper {
                retype_receipts: Some(0x55),
                ..Tamper::default()
            },
            ..Habits::default()
        },
    );
    let toml = stack.names.config(
        &stack.brokers(),
        &[entry(31337, retyped.url(), &["proof = \"receipts_root\""])],
        "",
    );
    let mut service = Service::start(BIN.as_ref(), stack.dir.path(), &toml, &[]).expect("ingestor");
    let code = service
        .process
        .wait_exit(WAIT)
        .expect("the ingestor exits by itself");
    let log = service.process.log_text();
    assert_ne!(code, Some(0), "{log}");
    let last = log.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: chain chain-31337: block ")
            && last.contains("cannot be proven by its receipts_root")
            && last.contains("has type 0x55, whose receipt encoding is not known")
            && last.contains("set proof = \"receipts\""),
        "last line: {last}"
    );
    let mut reader = TopicReader::new(&stack.brokers(), &stack.names.topic(31337)).expect("reader");
    let mut records = Vec::new();
    reader
        .read_to_end(&mut records, READ_DEADLINE)
        .expect("read");
    assert!(
        records.is_empty(),
        "nothing may be published: {} records",
        records.len()
    );
}
