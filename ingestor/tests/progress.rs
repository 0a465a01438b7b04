//! Catch-up progress end to end: the ingestor (against anvil and Apache Kafka) catches up
//! 2,000 blocks through a slow provider and writes a status line every
//! `status_interval_ms` whose block rises to the head and whose ETA shrinks, then one line
//! once live; a chain that starts live in the same process writes none. `/status` and
//! `/metrics` say the same.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::provider::{Habits, ProviderProxy};
use common::*;
use devstack::anvil::Anvil;
use devstack::proc::wait_for;
use devstack::service::{ChainEntry, Service};

const CATCHING_UP: &str = "chain-31337";
const LIVE: &str = "chain-31338";

/// The `key=value` fields of each log line with `message` about `chain`, in order.
fn lines_of(log: &str, message: &str, chain: &str) -> Vec<BTreeMap<String, String>> {
    let needle = format!(": {message} chain=\"{chain}\" ");
    log.lines()
        .filter(|l| l.contains(&needle))
        .map(|l| {
            l.split_whitespace()
                .filter_map(|w| w.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
                .collect()
        })
        .collect()
}

fn number(fields: &BTreeMap<String, String>, key: &str) -> f64 {
    fields
        .get(key)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no number {key} in {fields:?}"))
}

#[test]
fn a_catch_up_reports_its_progress_and_a_live_chain_stays_quiet() {
    let stack = Stack::start(61, 4);
    stack.node.mine(2000).expect("mine");
    let head = stack.node.head().expect("head");
    assert!(head >= 2000, "{head}");
    let live = Anvil::start(31338, stack.dir.path()).expect("anvil");
    live.node().mine(3).expect("mine");

    // Each answer of the catching-up chain's provider waits 10 ms, and its ranges hold 10
    // blocks, one in flight: 2,000 blocks take some seconds, many status intervals of 200 ms.
    let slow = ProviderProxy::start(
        stack.anvil.port,
        Habits {
            slow: Some(Duration::from_millis(10)),
            ..Habits::default()
        },
    );
    let status = "status_interval_ms = 200";
    let mut catching_up = ChainEntry::with_urls(31337, vec![slow.url()]);
    catching_up.extra = vec![
        status.into(),
        "backfill_range_blocks = 10".into(),
        "backfill_concurrency = 1".into(),
        "head_poll_interval_ms = 200".into(),
    ];
    let mut quiet = fast_retry_entry(31338, live.ws_url());
    quiet.extra.push(status.into());
    let toml = stack
        .names
        .config(&stack.brokers(), &[catching_up, quiet], "");
    let mut service = Service::start(BIN.as_ref(), stack.dir.path(), &toml, &[]).expect("ingestor");

    // While it catches up, /status says so, with an ETA and the lag.
    let during = wait_for("/status: catching up with an ETA", READ_DEADLINE, || {
        let s = chain_status(&service, CATCHING_UP)?;
        (s["phase"] == "catching_up" && s["eta_s"].as_f64().is_some()).then_some(s)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", service.process.log_tail(30)));
    assert!(during["eta_s"].as_f64() > Some(0.0), "{during}");
    assert!(during["lag_blocks"].as_u64() > Some(0), "{during}");

    let done = "caught up: following the head live";
    wait_for_log(&service, done);
    let log = service.process.log_text();

    // The status lines: several, each about the head caught up to, blocks rising to it,
    // the ETA shrinking.
    let lines = lines_of(&log, "catching up", CATCHING_UP);
    assert!(lines.len() >= 4, "too few status lines:\n{log}");
    let blocks: Vec<f64> = lines.iter().map(|l| number(l, "block")).collect();
    assert!(
        blocks.windows(2).all(|w| w[0] <= w[1]),
        "blocks must not go back: {blocks:?}"
    );
    assert!(blocks[0] < blocks[blocks.len() - 1], "{blocks:?}");
    for l in &lines {
        assert_eq!(number(l, "head"), head as f64, "{l:?}");
        assert!(number(l, "block") <= head as f64, "{l:?}");
        assert_eq!(l.get("endpoint").map(String::as_str), Some("0"), "{l:?}");
        assert!(number(l, "blocks_per_s") >= 0.0, "{l:?}");
        assert!(number(l, "logs_per_s") >= 0.0, "{l:?}");
        assert!((0.0..=100.0).contains(&number(l, "percent")), "{l:?}");
    }
    let percents: Vec<f64> = lines.iter().map(|l| number(l, "percent")).collect();
    assert!(percents.windows(2).all(|w| w[0] <= w[1]), "{percents:?}");
    let etas: Vec<f64> = lines
        .iter()
        .filter_map(|l| l.get("eta_s").and_then(|v| v.parse().ok()))
        .collect();
    assert!(etas.len() >= 3, "ETAs: {etas:?}\n{log}");
    assert!(
        etas[etas.len() - 1] < etas[0],
        "the ETA must shrink: {etas:?}"
    );

    // One line when live: the head reached, the blocks and the time it took.
    let live_lines = lines_of(&log, done, CATCHING_UP);
    assert_eq!(live_lines.len(), 1, "{log}");
    assert_eq!(number(&live_lines[0], "block"), head as f64);
    assert!(number(&live_lines[0], "blocks") >= 2000.0, "{live_lines:?}");
    assert!(number(&live_lines[0], "took_s") > 0.0, "{live_lines:?}");
    let started = lines_of(&log, "catch-up started", CATCHING_UP);
    assert_eq!(started.len(), 1, "{log}");

    // The chain that started live wrote nothing of the kind, over the same intervals.
    for message in ["catching up", "catch-up started", done] {
        assert!(
            lines_of(&log, message, LIVE).is_empty(),
            "{LIVE} is live: no `{message}` line\n{log}"
        );
    }

    // /status and /metrics: both live, ETA 0, nothing left to deliver.
    let after = wait_for("/status: live and delivered", READ_DEADLINE, || {
        let s = chain_status(&service, CATCHING_UP)?;
        (s["delivered"] == head).then_some(s)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", service.process.log_tail(30)));
    assert_eq!(after["phase"], "live", "{after}");
    assert_eq!(after["eta_s"], 0.0, "{after}");
    assert_eq!(after["lag_blocks"], 0, "{after}");
    let quiet = chain_status(&service, LIVE).expect("status");
    assert_eq!(quiet["phase"], "live", "{quiet}");
    let addr = service.health_addr().expect("health address");
    let (code, text) = http_get(&addr, "/metrics");
    assert_eq!(code, 200);
    for chain in [CATCHING_UP, LIVE] {
        for name in ["ethhook_chain_catching_up", "ethhook_chain_eta_seconds"] {
            let sample = format!("{name}{{chain=\"{chain}\"}} ");
            let value = text
                .lines()
                .find_map(|l| l.strip_prefix(&sample))
                .and_then(|v| v.trim().parse::<f64>().ok());
            assert_eq!(value, Some(0.0), "{sample} in\n{text}");
        }
    }

    // Live from then on: no status line after the live one.
    stop_cleanly(&mut service);
    let log = service.process.log_text();
    let tail = &log[log.find(done).expect("live line")..];
    assert!(
        lines_of(tail, "catching up", CATCHING_UP).is_empty(),
        "a status line after going live:\n{tail}"
    );
}
