//! Every block shape a real chain has, on every path: blocks whose transactions log nothing
//! (plain transfers, reverted creations, calls that log nothing: a zero `logsBloom` with a
//! `gasUsed` that is not), empty blocks, creations with and without constructor logs, a
//! transaction of 0 logs next to one of 500, logs of 0 topics and of 4 topics without data
//! (see `common::every_shape`).
//!
//! Each shape is mined before the service starts (catch-up) and again while it follows
//! (live), on chains followed over WebSocket and HTTP, with `eth_getBlockReceipts`, with the
//! per-transaction fallback (a node without it), and without the proof; in idempotent and
//! exactly-once mode; and behind HTTP endpoints with batch limits and habits of their own.
//! Every chain's compacted topic must equal its node field by field, its last block must be
//! delivered (`/status`), and no honest node's answer may have been refused.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::provider::{Batches, Habits, ProviderProxy, eip55};
use common::*;
use devstack::anvil::Anvil;
use devstack::proc::wait_for;
use devstack::service::{ChainEntry, Service};
use devstack::traffic::{LogShapes, Sender, Tx};

const WAIT: Duration = Duration::from_secs(180);

/// How the service reaches a chain.
#[derive(Clone)]
enum Via {
    Ws,
    Http,
    ProxyWs(Habits),
    ProxyHttp(Habits),
}

/// One chain of a scenario: its node, its proxy if any, and how it is configured.
struct Path {
    id: u64,
    anvil: Anvil,
    sender: Sender,
    shapes: LogShapes,
    proxy: Option<ProviderProxy>,
    url: String,
    extra: Vec<&'static str>,
    /// The `completeness` the service must report.
    proof: &'static str,
}

impl Path {
    /// Starts anvil `id`, mines a history of every shape on it (caught up later), and puts
    /// `via` in front of it.
    fn start(dir: &std::path::Path, id: u64, via: Via, extra: &[&'static str]) -> Self {
        let anvil = Anvil::start(id, dir).expect("anvil");
        let mut sender = Sender::new(anvil.node()).expect("sender");
        let mut shapes = LogShapes::new(id);
        mine_history(&mut sender, &mut shapes, 6).expect("history");
        let (proxy, url) = match via {
            Via::Ws => (None, anvil.ws_url()),
            Via::Http => (None, format!("http://127.0.0.1:{}", anvil.port)),
            Via::ProxyWs(h) => {
                let p = ProviderProxy::start_ws(anvil.port, h);
                let url = p.ws_url();
                (Some(p), url)
            }
            Via::ProxyHttp(h) => {
                let p = ProviderProxy::start(anvil.port, h);
                let url = p.url();
                (Some(p), url)
            }
        };
        let unchecked = extra.contains(&"verify_log_completeness = false");
        let proof = match &proxy {
            _ if unchecked => "none",
            Some(p) if p.habits().no_block_receipts => "transaction_receipts",
            _ => "block_receipts",
        };
        Self {
            id,
            anvil,
            sender,
            shapes,
            proxy,
            url,
            extra: extra.to_vec(),
            proof,
        }
    }

    fn name(&self) -> String {
        format!("chain-{}", self.id)
    }

    /// Its chain entry: catch-up from block 0 in ranges (the history is longer than the
    /// live threshold), small ranges (unless `extra` says otherwise) so that quiet blocks
    /// fall at every place in a range.
    fn entry(&self) -> ChainEntry {
        let mut e = fast_retry_entry(self.id, String::new());
        e.urls = vec![self.url.clone()];
        e.extra.push("live_threshold_blocks = 2".into());
        if !self
            .extra
            .iter()
            .any(|l| l.starts_with("backfill_range_blocks"))
        {
            e.extra.push("backfill_range_blocks = 5".into());
        }
        e.extra.extend(self.extra.iter().map(|l| (*l).to_owned()));
        e
    }

    /// Mines every shape again, block by block, while the service follows, then a block of
    /// logs.
    fn mine_live(&mut self) {
        mine_every_shape(&mut self.sender).expect("live shapes");
        let logs = self.shapes.logs(5);
        self.sender
            .mixed_block(&[Tx::Transfer, Tx::Logs(logs)])
            .expect("live block");
    }
}

/// Waits until `/status` says `path`'s chain delivered its node's head.
fn wait_delivered(service: &Service, path: &Path) {
    let head = path.anvil.node().head().expect("head");
    wait_for(
        &format!("{} delivered to {head}", path.name()),
        WAIT,
        || {
            chain_status(service, &path.name())
                .and_then(|s| s["delivered"].as_u64())
                .filter(|d| *d >= head)
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", service.process.log_tail(40)));
}

/// Runs `paths` through one service (in exactly-once mode with `transactional`): catch-up
/// of the history, then every shape live; every chain's view equals its node, delivered to
/// its head. With `honest`, no answer may have been refused.
fn run(
    names: &Names,
    dir: &std::path::Path,
    paths: &mut [Path],
    transactional: bool,
    honest: bool,
) {
    let brokers = shared_brokers();
    let entries: Vec<_> = paths.iter().map(Path::entry).collect();
    let mut toml = names.config(&brokers, &entries, "");
    if transactional {
        toml = toml.replacen("[kafka]\n", "[kafka]\ntransactional = true\n", 1);
    }
    let mut service = Service::start(BIN.as_ref(), dir, &toml, &[]).expect("ingestor");
    for p in paths.iter() {
        wait_delivered(&service, p);
    }
    for p in paths.iter_mut() {
        p.mine_live();
    }
    for p in paths.iter() {
        wait_delivered(&service, p);
        assert_view_matches_node(&brokers, &names.topic(p.id), &p.anvil.node(), p.id);
        let status = chain_status(&service, &p.name()).expect("status");
        assert_eq!(status["completeness"], p.proof, "{}: {status}", p.name());
        assert!(status["stalled"].is_null(), "{}: {status}", p.name());
        if honest {
            assert_eq!(
                metric(&service, "ethhook_incomplete_answers_total", &p.name()),
                Some(0.0),
                "{}: an honest node's answer was refused\n{}",
                p.name(),
                service.process.log_tail(40)
            );
        }
    }
    let log = service.process.log_text();
    assert!(
        !log.contains("chain stalled"),
        "{}",
        service.process.log_tail(40)
    );
    stop_cleanly(&mut service);
}

#[test]
fn every_shape_live_and_in_catch_up_over_each_transport_and_receipts_method() {
    let dir = tempdir();
    let names = Names::new();
    let without = Habits {
        no_block_receipts: true,
        ..Habits::default()
    };
    let unchecked = ["verify_log_completeness = false"];
    let mut paths = vec![
        Path::start(dir.path(), 6001, Via::Ws, &[]),
        Path::start(dir.path(), 6002, Via::Http, &[]),
        Path::start(dir.path(), 6003, Via::ProxyWs(without.clone()), &[]),
        Path::start(dir.path(), 6004, Via::ProxyHttp(without), &[]),
        Path::start(dir.path(), 6005, Via::Ws, &unchecked),
        Path::start(dir.path(), 6006, Via::Http, &unchecked),
    ];
    run(&names, dir.path(), &mut paths, false, true);
    for p in &paths[2..4] {
        let proxy = p.proxy.as_ref().expect("proxy");
        assert!(proxy.counts().refused_methods.load(Ordering::SeqCst) >= 1);
    }
}

#[test]
fn every_shape_in_exactly_once_mode() {
    let dir = tempdir();
    let names = Names::new();
    let without = Habits {
        no_block_receipts: true,
        ..Habits::default()
    };
    let mut paths = vec![
        Path::start(dir.path(), 6011, Via::Ws, &[]),
        Path::start(dir.path(), 6012, Via::ProxyHttp(without), &[]),
    ];
    run(&names, dir.path(), &mut paths, true, true);
}

/// The batch limits and habits of hosted HTTP endpoints, each through a catch-up of quiet
/// blocks and then live blocks: a node that refuses every batch (one error object with a
/// `null` id), one that takes at most 10 calls, one that writes addresses in EIP-55 mixed
/// case, and one that repeats a log in a ranged answer (followed without the proof, where
/// ranged `eth_getLogs` is what it reads).
#[test]
fn batch_limits_and_provider_habits_through_quiet_blocks() {
    let dir = tempdir();
    let names = Names::new();
    let habits = |h: Habits| Via::ProxyHttp(h);
    let mut paths = vec![
        Path::start(
            dir.path(),
            6021,
            habits(Habits {
                batches: Some(Batches::RefuseAll),
                ..Habits::default()
            }),
            &["rpc_batch_max = 64"],
        ),
        Path::start(
            dir.path(),
            6022,
            habits(Habits {
                batches: Some(Batches::Cap(10)),
                ..Habits::default()
            }),
            // Ranges of up to 64 blocks: header batches over the cap.
            &["rpc_batch_max = 64", "backfill_range_blocks = 64"],
        ),
        Path::start(
            dir.path(),
            6023,
            habits(Habits {
                checksum_addresses: true,
                ..Habits::default()
            }),
            &[],
        ),
        Path::start(
            dir.path(),
            6024,
            habits(Habits {
                repeat_log: true,
                ..Habits::default()
            }),
            &["verify_log_completeness = false"],
        ),
    ];
    // Refused batches and repeated logs are refused answers: not honest.
    run(&names, dir.path(), &mut paths, false, false);
    let counts = |i: usize| paths[i].proxy.as_ref().expect("proxy").counts();
    assert!(counts(0).refused_batches.load(Ordering::SeqCst) >= 1);
    assert!(counts(1).refused_batches.load(Ordering::SeqCst) >= 1);
    assert!(counts(2).checksummed.load(Ordering::SeqCst) >= 10);
    assert!(counts(3).repeated_logs.load(Ordering::SeqCst) >= 1);
}

#[test]
fn eip55_matches_the_eips_vectors() {
    for v in [
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
        "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
    ] {
        assert_eq!(eip55(&v.to_ascii_lowercase()), v);
    }
}
